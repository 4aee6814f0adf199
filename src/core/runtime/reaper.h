/* reaper.h: the library's side of the SDK's child_end: children of layers destroyed on
 * the loop thread are ended by a loop task instead of a wait in destroy. */
#ifndef IW_REAPER_H
#define IW_REAPER_H

/* Takes the child (and closes pidfd and err_fd when done) when called on the loop
 * thread: 0; elsewhere IMAPWIRE_PASS (the caller may wait itself); or an ST_ERROR_*. */
int iw_child_end(int pid, int pidfd, int err_fd, unsigned grace_ms, unsigned term_ms);

#endif /* IW_REAPER_H */
