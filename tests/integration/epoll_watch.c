/* epoll_watch.c: the test binary's epoll_ctl, found before libc's by the library (the
 * binary exports it), so a test can see whether epoll is told of closed descriptors. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include "epoll_watch.h"

static int slow_ms;                /* atomic */
static int n_closed, n_raced;      /* atomic */

void iwt_epoll_slow(int ms)
{
    __atomic_store_n(&slow_ms, ms, __ATOMIC_RELEASE);
}

void iwt_epoll_reset(void)
{
    __atomic_store_n(&n_closed, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&n_raced, 0, __ATOMIC_RELEASE);
}

int iwt_epoll_closed(void)
{
    return __atomic_load_n(&n_closed, __ATOMIC_ACQUIRE);
}

int iwt_epoll_raced(void)
{
    return __atomic_load_n(&n_raced, __ATOMIC_ACQUIRE);
}

/* Under TSan this calls libc's epoll_ctl past TSan's own wrapper, which then no longer
 * sees these descriptors: the counters below do that check instead, in every build. */

/* The file behind fd (its inode), 0 if fd is not open. */
static ino_t inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

__attribute__((visibility("default"))) int epoll_ctl(int epfd, int op, int fd,
                                                 struct epoll_event *ev)
{
    int (*real)(int, int, int, struct epoll_event *);
    int ms = __atomic_load_n(&slow_ms, __ATOMIC_ACQUIRE);
    *(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && ms > 0) {
        ino_t before = inode_of(fd);
        if (before == 0)
            __atomic_add_fetch(&n_closed, 1, __ATOMIC_ACQ_REL);
        usleep((useconds_t)ms * 1000);
        if (before != 0 && inode_of(fd) != before)
            __atomic_add_fetch(&n_raced, 1, __ATOMIC_ACQ_REL);
    }
    return real(epfd, op, fd, ev);
}
