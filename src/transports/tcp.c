/* tcp.c: the built-in bottom transport: a non-blocking TCP socket to the endpoint.
 * It resolves the endpoint (literal, or c-ares) and races the addresses, RFC 8305 style. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "resolve.h"

enum { TCP_START, TCP_RESOLVING, TCP_CONNECTING, TCP_UP, TCP_FAILED };

/* RFC 8305: the next address is tried when the previous attempt has not connected
 * within this delay; attempts then race and the first to connect wins. */
#define TCP_ATTEMPT_DELAY_MS 250

struct tcp_attempt {
    int      fd;
    iw_addr *addr;
};

struct tcp_ctx {
    int      state;
    int      fd;                   /* the winner */
    int      naddr, next_addr;
    int      last_error;           /* ST_ERROR_* of the last failed address */
    int      have_local;
    int64_t  next_attempt_ms;
    iw_dns  *dns;
    iw_addr  local;
    iw_addr  addrs[IW_MAX_ADDRS];
    iw_addr *current;
    struct tcp_attempt attempts[IW_MAX_ADDRS];
    /* Attempts race on until one wins: usually two or three sockets wait at once, each
     * in the poll set itself (past its size, tcp_race looks at the rest every 10 ms). */
    int      nattempts;
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

static void tcp_close_attempts(struct tcp_ctx *c)
{
    int i;
    for (i = 0; i < c->nattempts; i++)
        close(c->attempts[i].fd);
    c->nattempts = 0;
}


static void tcp_destroy(imapwire_layer *l)
{
    struct tcp_ctx *c = l->ctx;
    tcp_close_attempts(c);
    iw_dns_free(c->dns);
    c->dns = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void tcp_won(imapwire_layer *l, int fd, iw_addr *a)
{
    struct tcp_ctx *c = l->ctx;
    char text[80];
    c->fd = fd;
    c->current = a;
    c->state = TCP_UP;
    /* The losers are closed at once: nothing else may reach their servers. */
    tcp_close_attempts(c);
    iw_addr_text(a, text, sizeof text);
    l->host->trace(l, "tcp: connected to %s", text);
}

/* Starts one more attempt (skipping addresses that fail at once). 1 if one is in flight
 * or won, 0 when the list is exhausted. */
static int tcp_start_attempt(imapwire_layer *l)
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
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c->have_local && bind(fd, (struct sockaddr *)&c->local.sa, c->local.len) != 0) {
            c->last_error = tcp_map_errno(errno);
            close(fd);
            continue;
        }
        iw_addr_text(a, text, sizeof text);
        l->host->trace(l, "tcp: trying %s", text);
        if (connect(fd, (struct sockaddr *)&a->sa, a->len) == 0) {
            tcp_won(l, fd, a);
            return 1;
        }
        if (errno == EINPROGRESS) {
            c->attempts[c->nattempts].fd = fd;
            c->attempts[c->nattempts].addr = a;
            c->nattempts++;
            c->next_attempt_ms = iw_now_ms() + TCP_ATTEMPT_DELAY_MS;
            return 1;
        }
        c->last_error = tcp_map_errno(errno);
        l->host->trace(l, "tcp: %s failed: %s", text, strerror(errno));
        close(fd);
    }
    return 0;
}

/* Checks the attempts in flight without waiting: a winner ends the race, a failure
 * starts the next address at once instead of waiting for the delay. */
static int tcp_race(imapwire_layer *l, int *done)
{
    struct tcp_ctx *c = l->ctx;
    struct pollfd pfd[IW_MAX_ADDRS];
    int i, n;

    for (i = 0; i < c->nattempts; i++) {
        pfd[i].fd = c->attempts[i].fd;
        pfd[i].events = POLLOUT;
        pfd[i].revents = 0;
    }
    n = c->nattempts > 0 && c->nattempts <= IW_MAX_ADDRS ? poll(pfd, (nfds_t)c->nattempts, 0) : 0;
    for (i = c->nattempts - 1; n > 0 && i >= 0; i--) {
        int err = 0;
        socklen_t elen = sizeof err;
        char text[80];
        if (pfd[i].revents == 0)
            continue;
        if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        if (err == 0) {
            struct tcp_attempt w = c->attempts[i];
            c->attempts[i] = c->attempts[--c->nattempts];
            tcp_won(l, w.fd, w.addr);
            *done = 1;
            return 0;
        }
        if (err == EINPROGRESS)
            continue;
        iw_addr_text(c->attempts[i].addr, text, sizeof text);
        l->host->trace(l, "tcp: %s failed: %s", text, strerror(err));
        c->last_error = tcp_map_errno(err);
        close(c->attempts[i].fd);
        c->attempts[i] = c->attempts[--c->nattempts];
        if (c->nattempts == 0)
            c->next_attempt_ms = 0;        /* nothing in flight: go on now */
    }
    if (c->next_addr < c->naddr && (c->nattempts == 0 || iw_now_ms() >= c->next_attempt_ms)) {
        tcp_start_attempt(l);
        if (c->state == TCP_UP) {
            *done = 1;
            return 0;
        }
    }
    if (c->nattempts == 0 && c->next_addr >= c->naddr) {
        c->state = TCP_FAILED;
        return c->last_error;
    }
    return 0;
}

static void tcp_resolved(imapwire_layer *l)
{
    struct tcp_ctx *c = l->ctx;
    char text[80];
    int i;
    l->host->mark(l, IMAPWIRE_MARK_RESOLVED);
    for (i = 0; i < c->naddr; i++) {
        iw_addr_text(&c->addrs[i], text, sizeof text);
        l->host->trace(l, "tcp: %s has address %s", l->endpoint->host, text);
    }
    c->state = TCP_CONNECTING;
}

static int tcp_connect(imapwire_layer *l, int *done)
{
    struct tcp_ctx *c = l->ctx;
    const imapwire_endpoint *ep = l->endpoint;
    int rc, fin = 0;

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
        if (rc == 0) {
            l->host->mark(l, IMAPWIRE_MARK_RESOLVED);
            c->state = TCP_CONNECTING;
            return tcp_race(l, done);
        }
        if (rc != ST_ERROR_HOST_NOT_FOUND)
            return rc;
        rc = iw_dns_start(ep->host, ep->port, ep->dns_servers, ep->timeout_ms, &c->dns);
        if (rc != 0)
            return rc;
        c->state = TCP_RESOLVING;
        /* the answer may already be there (/etc/hosts) */
        __attribute__((fallthrough));
    case TCP_RESOLVING:
        rc = iw_dns_step(c->dns, c->addrs, IW_MAX_ADDRS, &c->naddr, &fin);
        if (rc != 0 || !fin)
            return rc;
        if (iw_dns_found(c->dns) > c->naddr)
            l->host->trace(l, "tcp: %s has %d addresses; trying the first %d",
                           ep->host, iw_dns_found(c->dns), c->naddr);
        iw_dns_free(c->dns);
        c->dns = NULL;
        tcp_resolved(l);
        return tcp_race(l, done);
    case TCP_CONNECTING:
        return tcp_race(l, done);
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
    switch (c->state) {
    case TCP_RESOLVING:
        iw_dns_pollset(c->dns, ps);
        break;
    case TCP_CONNECTING: {
        /* The attempts themselves, not an epoll descriptor over them: a connect in flight
         * costs one descriptor (10,000 of them fit a 20,000 limit), and a race has two or
         * three at most. A full poll set looks again soon instead. */
        int i;
        for (i = 0; i < c->nattempts; i++)
            if (imapwire_pollset_add(ps, c->attempts[i].fd, IMAPWIRE_WANT_WRITE) != 0)
                imapwire_pollset_wakeup(ps, iw_now_ms() + 10);
        if (c->next_addr < c->naddr)
            imapwire_pollset_wakeup(ps, c->next_attempt_ms);
        break;
    }
    case TCP_UP:
        imapwire_pollset_add(ps, c->fd, want);
        break;
    default:
        break;
    }
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
