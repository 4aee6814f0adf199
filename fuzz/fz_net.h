/* fz_net.h: the socket calls of the proxy plugins' shared hop code, renamed so that the
 * proxy fuzz targets answer them from the input instead of the kernel. */
#ifndef IMAPWIRE_FUZZ_NET_H
#define IMAPWIRE_FUZZ_NET_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

int     fz_net_socket(int domain, int type, int protocol);
int     fz_net_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int     fz_net_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int     fz_net_bind(int fd, const struct sockaddr *addr, socklen_t len);
int     fz_net_connect(int fd, const struct sockaddr *addr, socklen_t len);
int     fz_net_poll(struct pollfd *fds, nfds_t n, int timeout);
ssize_t fz_net_send(int fd, const void *buf, size_t len, int flags);
ssize_t fz_net_recv(int fd, void *buf, size_t len, int flags);
int     fz_net_close(int fd);

#endif
