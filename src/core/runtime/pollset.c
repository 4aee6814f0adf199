/* pollset.c: an SDK poll set in the form poll(2) takes, shared by the blocking driver,
 * the loop thread and the SSH transport. */
#include "runtime.h"

nfds_t iw_pollset_to_pollfd(const imapwire_pollset *ps, struct pollfd *out)
{
    unsigned i;
    for (i = 0; i < ps->count && i < IMAPWIRE_POLLSET_MAX; i++) {
        out[i].fd = ps->fds[i].fd;
        out[i].events = (short)(((ps->fds[i].want & IMAPWIRE_WANT_READ) ? POLLIN : 0) |
                                ((ps->fds[i].want & IMAPWIRE_WANT_WRITE) ? POLLOUT : 0));
        out[i].revents = 0;
    }
    return (nfds_t)i;
}
