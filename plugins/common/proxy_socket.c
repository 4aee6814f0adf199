/* proxy_socket.c: the TCP hop to a proxy for the proxy plugins: argument parsing without
 * any resolver (IP literals and localhost only), non-blocking connect, I/O, wiping. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "proxy_socket.h"

void px_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

void px_forget_password(px_hop *h)
{
    px_wipe(h->pass, sizeof h->pass);
    h->pass_len = 0;
}

static int px_map_errno(int e)
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

/* One address from text: an IPv4 literal, a bracketed IPv6 literal, or localhost (both
 * loopbacks, RFC 6761). Anything else would need a resolver that may block: refused. */
static int px_parse_host(px_hop *h, const char *host, size_t n, unsigned port)
{
    char buf[64];
    struct sockaddr_in *v4 = (struct sockaddr_in *)&h->addr[0];
    struct sockaddr_in6 *v6;
    int bracketed = n >= 2 && host[0] == '[' && host[n - 1] == ']';

    if (bracketed) {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf)
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(buf, host, n);
    buf[n] = '\0';
    memset(h->addr, 0, sizeof h->addr);
    if (!bracketed && inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        h->addr_len[0] = sizeof *v4;
        h->naddr = 1;
        return 0;
    }
    v6 = (struct sockaddr_in6 *)&h->addr[0];
    if (bracketed && inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        h->addr_len[0] = sizeof *v6;
        h->naddr = 1;
        return 0;
    }
    if (!bracketed && strcasecmp(buf, "localhost") == 0) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        h->addr_len[0] = sizeof *v4;
        v6 = (struct sockaddr_in6 *)&h->addr[1];
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        v6->sin6_addr = in6addr_loopback;
        h->addr_len[1] = sizeof *v6;
        h->naddr = 2;
        return 0;
    }
    return ST_ERROR_INVALID_PARAMETER;
}

int px_hop_parse(imapwire_layer *l, px_hop *h, const char *name, const char *args)
{
    const char *at, *hostport, *colon;
    unsigned long port = 0;
    size_t i, hn;

    h->name = name;
    h->fd = -1;
    h->last_error = ST_ERROR_CONNECTION_REFUSED;
    if (args == NULL || *args == '\0' || strlen(args) > 1024) {
        l->host->trace(l, "%s: the argument must be [user:password@]host:port", name);
        return ST_ERROR_INVALID_PARAMETER;
    }
    /* The host part never holds '@', the password may: the last '@' separates them. */
    at = strrchr(args, '@');
    hostport = args;
    if (at != NULL) {
        const char *sep = memchr(args, ':', (size_t)(at - args));
        if (sep == NULL || sep == args || at - sep - 1 < 1 ||
            (size_t)(sep - args) > PX_CRED_MAX || (size_t)(at - sep - 1) > PX_CRED_MAX) {
            l->host->trace(l, "%s: credentials must be user:password, each 1 to %d bytes",
                           name, PX_CRED_MAX);
            return ST_ERROR_INVALID_PARAMETER;
        }
        h->user_len = (size_t)(sep - args);
        memcpy(h->user, args, h->user_len);
        /* the user name goes into traces: no control bytes (the password may hold any) */
        for (i = 0; i < h->user_len; i++)
            if ((unsigned char)h->user[i] < 0x20 || h->user[i] == 0x7f) {
                l->host->trace(l, "%s: control byte in the user name", name);
                return ST_ERROR_INVALID_PARAMETER;
            }
        h->pass_len = (size_t)(at - sep - 1);
        memcpy(h->pass, sep + 1, h->pass_len);
        h->auth = 1;
        hostport = at + 1;
    }
    /* "[v6]:port" or "v4:port" / "localhost:port": the port follows the last ':'. */
    colon = strrchr(hostport, ':');
    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
        goto bad_address;
    for (i = 1; colon[i] != '\0'; i++) {
        if (colon[i] < '0' || colon[i] > '9')
            goto bad_address;
        port = port * 10 + (unsigned long)(colon[i] - '0');
    }
    hn = (size_t)(colon - hostport);
    if (port == 0 || port > 65535 || hn == 0 ||
        (hostport[0] != '[' && memchr(hostport, ':', hn) != NULL) ||
        px_parse_host(h, hostport, hn, (unsigned)port) != 0)
        goto bad_address;
    snprintf(h->text, sizeof h->text, "%.*s:%lu", (int)(hn < 48 ? hn : 48), hostport, port);
    return 0;
bad_address:
    /* the layer will never use the password: it goes now, not when the layer is freed */
    px_forget_password(h);
    l->host->trace(l, "%s: the proxy must be IPv4:port, [IPv6]:port or localhost:port "
                      "(no name resolution for the proxy itself)", name);
    return ST_ERROR_INVALID_PARAMETER;
}

/* The caller's local address (IMAPCONNECTINFO.lpszLocalAddress) also binds the hop to the
 * proxy. 1 if bound, 0 if the families differ (try another address), or an ST_ERROR_*. */
static int px_bind_local(imapwire_layer *l, int fd, int family)
{
    const char *text = l->endpoint->local_address;
    struct sockaddr_storage a;
    char buf[64];
    size_t n;

    if (text == NULL)
        return 1;
    n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf)
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(buf, text, n);
    buf[n] = '\0';
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)&a)->sin_addr) == 1) {
        if (family != AF_INET)
            return 0;
        a.ss_family = AF_INET;
        n = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)&a)->sin6_addr) == 1) {
        if (family != AF_INET6)
            return 0;
        a.ss_family = AF_INET6;
        n = sizeof(struct sockaddr_in6);
    } else {
        return ST_ERROR_INVALID_PARAMETER;
    }
    if (bind(fd, (struct sockaddr *)&a, (socklen_t)n) != 0)
        return px_map_errno(errno);
    return 1;
}

/* Starts a connect to the next address; the socket is left in h->fd while in flight. */
static int px_start(imapwire_layer *l, px_hop *h, int *up)
{
    while (h->next < h->naddr) {
        int i = h->next++, one = 1, fd, rc;
        int family = h->addr[i].ss_family;

        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            h->last_error = px_map_errno(errno);
            continue;
        }
        /* IMAP is a dialogue of short lines: Nagle would hold each one for an ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        rc = px_bind_local(l, fd, family);
        if (rc != 1) {
            h->last_error = rc == 0 ? (int)ST_ERROR_INVALID_PARAMETER : rc;
            close(fd);
            continue;
        }
        if (connect(fd, (struct sockaddr *)&h->addr[i], h->addr_len[i]) == 0) {
            h->fd = fd;
            *up = 1;
            return 0;
        }
        if (errno == EINPROGRESS) {
            h->fd = fd;
            return IMAPWIRE_AGAIN;
        }
        h->last_error = px_map_errno(errno);
        l->host->trace(l, "%s: proxy %s: %s", h->name, h->text, strerror(errno));
        close(fd);
    }
    return h->last_error;
}

int px_hop_connect(imapwire_layer *l, px_hop *h, int *up)
{
    int tries, rc;

    *up = h->up;
    /* Each round either finishes or consumes one of at most two addresses. */
    for (tries = 0; !h->up && tries < 4; tries++) {
        if (h->fd < 0) {
            rc = px_start(l, h, up);
            if (rc != 0)
                return rc;
        } else {
            struct pollfd p = { .fd = h->fd, .events = POLLOUT, .revents = 0 };
            int err = 0;
            socklen_t elen = sizeof err;
            if (poll(&p, 1, 0) == 0)
                return IMAPWIRE_AGAIN;
            if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
                err = errno;
            if (err == EINPROGRESS)
                return IMAPWIRE_AGAIN;
            if (err != 0) {
                h->last_error = px_map_errno(err);
                l->host->trace(l, "%s: proxy %s: %s", h->name, h->text, strerror(err));
                close(h->fd);
                h->fd = -1;
                continue;
            }
            *up = 1;
        }
        if (*up) {
            h->up = 1;
            l->host->mark(l, IMAPWIRE_MARK_CONNECTED);
            l->host->trace(l, "%s: connected to proxy %s", h->name, h->text);
        }
    }
    *up = h->up;
    return h->up ? 0 : h->last_error;
}

int px_send(px_hop *h, const void *buf, size_t len, size_t *sent)
{
    ssize_t n;

    *sent = 0;
    if (h->fd < 0 || !h->up)
        return ST_ERROR_CONNECTION_CLOSED;
    do
        n = send(h->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? IMAPWIRE_AGAIN : px_map_errno(errno);
    *sent = (size_t)n;
    return 0;
}

int px_recv(px_hop *h, void *buf, size_t len, size_t *got)
{
    ssize_t n;

    *got = 0;
    if (h->fd < 0 || !h->up)
        return ST_ERROR_CONNECTION_CLOSED;
    do
        n = recv(h->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? IMAPWIRE_AGAIN : px_map_errno(errno);
    *got = (size_t)n;
    return 0;
}

void px_hop_pollset(px_hop *h, unsigned want, imapwire_pollset *ps)
{
    if (h->fd < 0)
        return;
    /* a connect in flight reports completion (or failure) as writability */
    imapwire_pollset_add(ps, h->fd, h->up ? want : IMAPWIRE_WANT_WRITE);
}

int px_hop_query(px_hop *h, int what, void *out)
{
    switch (what) {
    case IMAPWIRE_QUERY_SOCKET:
        *(int *)out = h->fd;
        return 0;
    case IMAPWIRE_QUERY_PEER:
        /* the peer of this socket is the proxy, not the IMAP server */
        if (!h->up)
            return IMAPWIRE_PASS;
        snprintf(out, 64, "%s", h->text);
        return 0;
    default:
        return IMAPWIRE_PASS;
    }
}

void px_hop_close(px_hop *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->up = 0;
    px_forget_password(h);
}
