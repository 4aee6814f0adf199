/* tcp.c: the built-in bottom transport: a non-blocking TCP socket to the endpoint.
 * It resolves the endpoint's address list and tries each address until one connects. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../core/iw.h"

enum { TCP_START, TCP_CONNECTING, TCP_UP, TCP_FAILED };

struct tcp_ctx {
    int     state;
    int     fd;
    int     naddr, next_addr;
    int     last_error;            /* ST_ERROR_* of the last failed address */
    int     have_local;
    iw_addr local;
    iw_addr addrs[IW_MAX_ADDRS];
    iw_addr *current;
};

static int tcp_map_errno(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return ST_ERROR_CONNECTION_REFUSED;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
        return ST_ERROR_NETWORK_UNREACHABLE;
    case ETIMEDOUT:
        return ST_ERROR_OPERATION_TIMEOUT;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
    case ENOTCONN:
        return ST_ERROR_CONNECTION_CLOSED;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        return ST_ERROR_SYSTEM_LIMIT;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
        return ST_ERROR_INVALID_PARAMETER;
    default:
        return ST_ERROR_NETWORK_ERROR;
    }
}

static int tcp_create(imapwire_layer *l, const char *args)
{
    struct tcp_ctx *c = l->ctx;
    IW_UNUSED(args);
    c->fd = -1;
    c->state = TCP_START;
    c->last_error = ST_ERROR_CONNECTION_REFUSED;
    return 0;
}

static void tcp_destroy(imapwire_layer *l)
{
    struct tcp_ctx *c = l->ctx;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void tcp_close_fd(struct tcp_ctx *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Starts connects until one is in progress or up; returns 0 or the error of the last. */
static int tcp_start_next(imapwire_layer *l, int *done)
{
    struct tcp_ctx *c = l->ctx;
    char text[80];

    while (c->next_addr < c->naddr) {
        iw_addr *a = &c->addrs[c->next_addr++];
        int one = 1, fd;

        if (c->have_local && c->local.sa.ss_family != a->sa.ss_family) {
            c->last_error = ST_ERROR_INVALID_PARAMETER;
            continue;
        }
        fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            c->last_error = tcp_map_errno(errno);
            continue;
        }
        c->fd = fd;
        c->current = a;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c->have_local && bind(fd, (struct sockaddr *)&c->local.sa, c->local.len) != 0) {
            c->last_error = tcp_map_errno(errno);
            tcp_close_fd(c);
            continue;
        }
        iw_addr_text(a, text, sizeof text);
        l->host->trace(l, "tcp: trying %s", text);
        if (connect(fd, (struct sockaddr *)&a->sa, a->len) == 0) {
            c->state = TCP_UP;
            *done = 1;
            l->host->trace(l, "tcp: connected to %s", text);
            return 0;
        }
        if (errno == EINPROGRESS) {
            c->state = TCP_CONNECTING;
            return 0;
        }
        c->last_error = tcp_map_errno(errno);
        l->host->trace(l, "tcp: %s failed: %s", text, strerror(errno));
        tcp_close_fd(c);
    }
    c->state = TCP_FAILED;
    return c->last_error;
}

static int tcp_connect(imapwire_layer *l, int *done)
{
    struct tcp_ctx *c = l->ctx;
    const imapwire_endpoint *ep = l->endpoint;
    int rc, err = 0;
    socklen_t elen = sizeof err;
    struct pollfd pfd;
    char text[80];

    *done = 0;
    switch (c->state) {
    case TCP_START:
        if (ep->local_address != NULL) {
            rc = iw_parse_local_address(ep->local_address, &c->local);
            if (rc != 0)
                return rc;
            c->have_local = 1;
        }
        rc = iw_resolve_literal(ep->host, ep->port, c->addrs, IW_MAX_ADDRS, &c->naddr);
        if (rc != 0)
            return rc;
        l->host->mark(l, IMAPWIRE_MARK_RESOLVED);
        return tcp_start_next(l, done);
    case TCP_CONNECTING:
        pfd.fd = c->fd;
        pfd.events = POLLOUT;
        pfd.revents = 0;
        if (poll(&pfd, 1, 0) <= 0)
            return 0;                      /* still in progress */
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        iw_addr_text(c->current, text, sizeof text);
        if (err == 0) {
            c->state = TCP_UP;
            *done = 1;
            l->host->trace(l, "tcp: connected to %s", text);
            return 0;
        }
        l->host->trace(l, "tcp: %s failed: %s", text, strerror(err));
        c->last_error = tcp_map_errno(err);
        tcp_close_fd(c);
        return tcp_start_next(l, done);
    case TCP_UP:
        *done = 1;
        return 0;
    default:
        return c->last_error;
    }
}

static int tcp_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct tcp_ctx *c = l->ctx;
    ssize_t n;

    *sent = 0;
    if (c->state != TCP_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    do
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? IMAPWIRE_AGAIN : tcp_map_errno(errno);
    *sent = (size_t)n;
    return 0;
}

static int tcp_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct tcp_ctx *c = l->ctx;
    ssize_t n;

    *got = 0;
    if (c->state != TCP_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? IMAPWIRE_AGAIN : tcp_map_errno(errno);
    *got = (size_t)n;
    return 0;
}

static void tcp_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct tcp_ctx *c = l->ctx;
    if (c->fd < 0)
        return;
    if (c->state == TCP_CONNECTING)
        want = IMAPWIRE_WANT_WRITE;
    imapwire_pollset_add(ps, c->fd, want);
}

static int tcp_query(imapwire_layer *l, int what, void *out)
{
    struct tcp_ctx *c = l->ctx;
    switch (what) {
    case IMAPWIRE_QUERY_SOCKET:
        *(int *)out = c->fd;
        return 0;
    case IMAPWIRE_QUERY_PEER:
        if (c->state != TCP_UP || c->current == NULL)
            return IMAPWIRE_PASS;
        iw_addr_text(c->current, out, 64);
        return 0;
    default:
        return IMAPWIRE_PASS;
    }
}

const imapwire_transport_type iw_transport_tcp = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "tcp",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct tcp_ctx),
    .create = tcp_create,
    .destroy = tcp_destroy,
    .connect = tcp_connect,
    .send = tcp_send,
    .recv = tcp_recv,
    .pollset = tcp_pollset,
    .query = tcp_query,
};
