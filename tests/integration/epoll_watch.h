/* epoll_watch.h: a stand-in for libc's epoll_ctl in a test binary, which can hold the
 * loop thread inside each removal and count removals of closed or replaced descriptors. */
#ifndef IWT_EPOLL_WATCH_H
#define IWT_EPOLL_WATCH_H

/* Each EPOLL_CTL_DEL waits ms first (0: passes straight through). */
void iwt_epoll_slow(int ms);
/* Both counters back to zero. */
void iwt_epoll_reset(void);
/* Removals, while slowed, of a descriptor already closed when the loop asked. */
int iwt_epoll_closed(void);
/* Removals, while slowed, whose descriptor was closed or its number reused by another
 * thread during the wait: the loop's removal raced its owner's close. */
int iwt_epoll_raced(void);

#endif
