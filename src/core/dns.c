/* dns.c: asynchronous name resolution through c-ares, driven from the connect machine's
 * poll loop: one channel per lookup, its sockets in the poll set, never a blocking call. */
#include <arpa/inet.h>
#include <ares.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include "iw.h"

#define IW_DNS_MAX_FDS 8

struct iw_dns {
    ares_channel channel;
    int          have_channel;
    struct { int fd; unsigned want; } fds[IW_DNS_MAX_FDS];
    int          nfds;
    int          done;
    int          status;           /* ST_ERROR_* once done, 0 on success */
    iw_addr      addrs[IW_MAX_ADDRS];
    int          naddr;
    unsigned     port;
};

int iw_dns_global_init(void)
{
    return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : ST_ERROR_OUT_OF_MEMORY;
}

void iw_dns_global_cleanup(void)
{
    ares_library_cleanup();
}

/* c-ares tells us which sockets it needs watched; we keep the list for the poll set. */
static void iw_dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    iw_dns *d = data;
    unsigned want = (readable ? IMAPWIRE_WANT_READ : 0) | (writable ? IMAPWIRE_WANT_WRITE : 0);
    int i;
    for (i = 0; i < d->nfds; i++) {
        if (d->fds[i].fd == (int)fd) {
            if (want == 0)
                d->fds[i] = d->fds[--d->nfds];
            else
                d->fds[i].want = want;
            return;
        }
    }
    if (want != 0 && d->nfds < IW_DNS_MAX_FDS) {
        d->fds[d->nfds].fd = (int)fd;
        d->fds[d->nfds].want = want;
        d->nfds++;
    }
}

static int iw_dns_map(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
    case ARES_EBADNAME:
        return ST_ERROR_HOST_NOT_FOUND;
    case ARES_ETIMEOUT:
        return ST_ERROR_OPERATION_TIMEOUT;
    case ARES_ENOMEM:
        return ST_ERROR_OUT_OF_MEMORY;
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
        return ST_ERROR_NETWORK_ERROR;
    default:
        return ST_ERROR_NETWORK_ERROR;
    }
}

/* RFC 8305 section 4: alternate the families, starting with the one sorted first, so a
 * broken family costs one attempt delay, not a whole list. */
static void iw_dns_collect(iw_dns *d, const struct ares_addrinfo_node *list)
{
    const struct ares_addrinfo_node *n;
    iw_addr v4[IW_MAX_ADDRS], v6[IW_MAX_ADDRS];
    int n4 = 0, n6 = 0, i4 = 0, i6 = 0, six_first = -1;

    for (n = list; n != NULL; n = n->ai_next) {
        iw_addr *a;
        if (n->ai_family == AF_INET && n4 < IW_MAX_ADDRS && n->ai_addrlen <= sizeof v4[0].sa)
            a = &v4[n4++];
        else if (n->ai_family == AF_INET6 && n6 < IW_MAX_ADDRS && n->ai_addrlen <= sizeof v6[0].sa)
            a = &v6[n6++];
        else
            continue;
        if (six_first < 0)
            six_first = n->ai_family == AF_INET6;
        memset(a, 0, sizeof *a);
        memcpy(&a->sa, n->ai_addr, n->ai_addrlen);
        a->len = n->ai_addrlen;
        if (n->ai_family == AF_INET)
            ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)d->port);
        else
            ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)d->port);
    }
    d->naddr = 0;
    while (d->naddr < IW_MAX_ADDRS && (i4 < n4 || i6 < n6)) {
        int take_six = (six_first == 1) == (d->naddr % 2 == 0);
        if ((take_six && i6 < n6) || i4 >= n4)
            d->addrs[d->naddr++] = v6[i6++];
        else
            d->addrs[d->naddr++] = v4[i4++];
    }
}

/* May run inside ares_getaddrinfo (an answer from /etc/hosts) or inside ares_destroy
 * (ARES_EDESTRUCTION): both only record what happened. */
static void iw_dns_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    iw_dns *d = arg;
    (void)timeouts;
    if (!d->done) {
        d->done = 1;
        d->status = iw_dns_map(status);
        if (status == ARES_SUCCESS && res != NULL) {
            iw_dns_collect(d, res->nodes);
            if (d->naddr == 0)
                d->status = ST_ERROR_HOST_NOT_FOUND;
        }
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
}

int iw_dns_start(const char *host, unsigned port, const char *servers, unsigned timeout_ms,
                 iw_dns **out)
{
    struct ares_options opt;
    struct ares_addrinfo_hints hints;
    iw_dns *d;
    int rc;

    *out = NULL;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    d->port = port;
    memset(&opt, 0, sizeof opt);
    opt.sock_state_cb = iw_dns_sock_state;
    opt.sock_state_cb_data = d;
    /* Three tries fit in one wait: each server gets a third of it before the next. */
    opt.timeout = (int)(timeout_ms / 3 > 250 ? timeout_ms / 3 : 250);
    opt.tries = 3;
    rc = ares_init_options(&d->channel, &opt,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        free(d);
        return rc == ARES_ENOMEM ? ST_ERROR_OUT_OF_MEMORY : ST_ERROR_NETWORK_ERROR;
    }
    d->have_channel = 1;
    if (servers != NULL && ares_set_servers_ports_csv(d->channel, servers) != ARES_SUCCESS) {
        iw_dns_free(d);
        return ST_ERROR_INVALID_PARAMETER;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    *out = d;
    ares_getaddrinfo(d->channel, host, NULL, &hints, iw_dns_done, d);
    return 0;
}

int iw_dns_step(iw_dns *d, iw_addr *out, int max, int *count, int *done)
{
    struct pollfd pfd[IW_DNS_MAX_FDS];
    int i, n, nfds = d->nfds > IW_DNS_MAX_FDS ? IW_DNS_MAX_FDS : d->nfds;

    *done = 0;
    if (!d->done) {
        /* Our driver polled for us; ask the kernel again, without waiting, which of
         * c-ares' sockets are ready, and let it read exactly those. */
        for (i = 0; i < nfds; i++) {
            pfd[i].fd = d->fds[i].fd;
            pfd[i].events = (short)(((d->fds[i].want & IMAPWIRE_WANT_READ) ? POLLIN : 0) |
                                    ((d->fds[i].want & IMAPWIRE_WANT_WRITE) ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        n = nfds > 0 ? poll(pfd, (nfds_t)nfds, 0) : 0;
        for (i = 0; n > 0 && i < nfds && !d->done; i++) {
            ares_socket_t rfd = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t wfd = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
            if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
                ares_process_fd(d->channel, rfd, wfd);
        }
        /* Retransmissions and c-ares' own timeouts. */
        if (!d->done)
            ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    if (!d->done)
        return 0;
    *done = 1;
    if (d->status != 0)
        return d->status;
    *count = d->naddr < max ? d->naddr : max;
    memcpy(out, d->addrs, (size_t)*count * sizeof *out);
    return 0;
}

void iw_dns_pollset(iw_dns *d, imapwire_pollset *ps)
{
    struct timeval tv, *tvp;
    int i;
    if (d->done)
        return;
    for (i = 0; i < d->nfds; i++)
        imapwire_pollset_add(ps, d->fds[i].fd, d->fds[i].want);
    tvp = ares_timeout(d->channel, NULL, &tv);
    if (tvp != NULL)
        imapwire_pollset_wakeup(ps, iw_now_ms() + (int64_t)tvp->tv_sec * 1000 +
                                        tvp->tv_usec / 1000 + 1);
}

void iw_dns_free(iw_dns *d)
{
    if (d == NULL)
        return;
    /* Destroyed, not cancelled: the callback sees ARES_EDESTRUCTION and only records it. */
    if (d->have_channel)
        ares_destroy(d->channel);
    free(d);
}

/* "ip", "ip:port", "[ipv6]", "[ipv6]:port", comma-separated: what c-ares accepts, checked
 * up front so a bad list fails before any traffic, whatever the host is. */
int iw_dns_servers_valid(const char *csv)
{
    const char *p = csv;
    if (csv == NULL || *csv == '\0')
        return 0;
    while (*p) {
        char item[80], host[64];
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *port = NULL;
        unsigned char buf[16];
        if (n == 0 || n >= sizeof item)
            return 0;
        memcpy(item, p, n);
        item[n] = '\0';
        if (item[0] == '[') {
            char *close = strchr(item, ']');
            if (close == NULL || (size_t)(close - item - 1) >= sizeof host)
                return 0;
            memcpy(host, item + 1, (size_t)(close - item - 1));
            host[close - item - 1] = '\0';
            if (close[1] == ':')
                port = close + 2;
            else if (close[1] != '\0')
                return 0;
            if (inet_pton(AF_INET6, host, buf) != 1)
                return 0;
        } else if (inet_pton(AF_INET6, item, buf) == 1) {
            /* a bare IPv6 address, no port */
        } else {
            char *colon = strchr(item, ':');
            if (colon != NULL) {
                *colon = '\0';
                port = colon + 1;
            }
            if (inet_pton(AF_INET, item, buf) != 1)
                return 0;
        }
        if (port != NULL) {
            char *e;
            unsigned long v = strtoul(port, &e, 10);
            if (*port == '\0' || *e != '\0' || v == 0 || v > 65535)
                return 0;
        }
        p += n;
        if (*p == ',')
            p++;
        if (end != NULL && *p == '\0')
            return 0;
    }
    return 1;
}
