/* dns.c: asynchronous name resolution through c-ares, driven from the connect machine's
 * poll loop: one channel per lookup, its sockets behind one epoll descriptor in the poll set. */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "resolve.h"

/* ares_process_fd calls per step: each one handles one ready socket, and a batch is
 * taken again only while it came back full, so one step stays bounded. */
#define IW_DNS_EVENTS 16
#define IW_DNS_BATCHES 8

struct iw_dns {
    ares_channel channel;
    int          have_channel;
    /* c-ares opens a socket per server and keeps each until the lookup ends: a list of
     * ten servers is ten sockets, more than a poll set holds. They all live in this
     * epoll set, and the poll set gets the one descriptor. */
    int          epfd;
    int          nsock;
    int          sock_error;       /* ST_ERROR_* when a socket could not be watched */
    int          done;
    int          status;           /* ST_ERROR_* once done, 0 on success */
    iw_addr      addrs[IW_MAX_ADDRS];
    int          naddr;
    int          nfound;           /* usable addresses in the answer, before the cut */
    unsigned     port;
    unsigned     failed_mark;      /* iw_ares_failed when the lookup started */
};

/* c-ares allocations that failed in this process: a lookup that ends badly while this
 * moved failed for want of memory, whatever status c-ares gives. */
static atomic_uint iw_ares_failed;

static void *iw_ares_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        atomic_fetch_add(&iw_ares_failed, 1u);
    return p;
}

static void *iw_ares_realloc(void *old, size_t n)
{
    void *p = realloc(old, n);
    if (p == NULL && n != 0)
        atomic_fetch_add(&iw_ares_failed, 1u);
    return p;
}

static void iw_ares_free(void *p)
{
    free(p);
}

int iw_dns_global_init(void)
{
    return ares_library_init_mem(ARES_LIB_INIT_ALL, iw_ares_malloc, iw_ares_free,
                                 iw_ares_realloc) == ARES_SUCCESS ? 0 : ST_ERROR_OUT_OF_MEMORY;
}

void iw_dns_global_cleanup(void)
{
    ares_library_cleanup();
}

/* c-ares tells us which sockets it needs watched, and for what. */
static void iw_dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    iw_dns *d = data;
    struct epoll_event ev;

    memset(&ev, 0, sizeof ev);
    ev.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    ev.data.fd = (int)fd;
    if (ev.events == 0) {
        /* it is about to be closed, which would drop it too; say so while it is open */
        if (epoll_ctl(d->epfd, EPOLL_CTL_DEL, (int)fd, NULL) == 0)
            d->nsock--;
        return;
    }
    if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, (int)fd, &ev) == 0)
        return;
    if (errno == ENOENT && epoll_ctl(d->epfd, EPOLL_CTL_ADD, (int)fd, &ev) == 0) {
        d->nsock++;
        return;
    }
    /* A socket nobody watches would turn into a timeout later: fail now, and say why. */
    if (d->sock_error == 0)
        d->sock_error = (errno == ENOMEM || errno == ENOSPC) ? ST_ERROR_SYSTEM_LIMIT
                                                             : ST_ERROR_NETWORK_ERROR;
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
    d->nfound = 0;
    for (n = list; n != NULL; n = n->ai_next)
        if ((n->ai_family == AF_INET || n->ai_family == AF_INET6) && d->nfound < 65536)
            d->nfound++;
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
        /* c-ares reports some failed allocations as "not found" (a query it could not
         * build, so it tried the next name): the count of its failed ones tells */
        if (status != ARES_SUCCESS && atomic_load(&iw_ares_failed) != d->failed_mark)
            d->status = ST_ERROR_OUT_OF_MEMORY;
        if (status == ARES_SUCCESS && res != NULL) {
            iw_dns_collect(d, res->nodes);
            if (d->naddr == 0)
                d->status = ST_ERROR_HOST_NOT_FOUND;
        }
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
}

/* The servers the channel will ask: the caller's list, or the system's. */
static int iw_dns_server_count(ares_channel ch)
{
    struct ares_addr_port_node *list = NULL, *n;
    int count = 0;
    if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
        return 1;
    for (n = list; n != NULL && count < 1024; n = n->next)
        count++;
    ares_free_data(list);
    return count > 0 ? count : 1;
}

/* c-ares moves to the next server when one has not answered within the per-try time, so
 * the last of n servers is first asked after (n - 1) of them. Three rounds over every
 * server are fitted into the one wait: a long list shortens each try instead of leaving
 * its last servers beyond the timeout. */
static int iw_dns_per_try_ms(unsigned timeout_ms, int nservers)
{
    unsigned ms = timeout_ms / (3u * (unsigned)nservers);
    return (int)(ms > 250 ? ms : 250);
}

static int iw_dns_channel(iw_dns *d, const char *servers, int per_try_ms)
{
    struct ares_options opt;
    int rc;

    memset(&opt, 0, sizeof opt);
    opt.sock_state_cb = iw_dns_sock_state;
    opt.sock_state_cb_data = d;
    opt.timeout = per_try_ms;
    opt.tries = 3;
    rc = ares_init_options(&d->channel, &opt,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS)
        return rc == ARES_ENOMEM ? ST_ERROR_OUT_OF_MEMORY : ST_ERROR_NETWORK_ERROR;
    d->have_channel = 1;
    if (servers != NULL && (rc = ares_set_servers_ports_csv(d->channel, servers)) != ARES_SUCCESS)
        return rc == ARES_ENOMEM ? ST_ERROR_OUT_OF_MEMORY : ST_ERROR_INVALID_PARAMETER;
    return 0;
}

int iw_dns_start(const char *host, unsigned port, const char *servers, unsigned timeout_ms,
                 iw_dns **out)
{
    struct ares_addrinfo_hints hints;
    iw_dns *d;
    int rc, guess = 1, count;
    const char *p;

    *out = NULL;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    d->port = port;
    d->failed_mark = atomic_load(&iw_ares_failed);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d->epfd < 0) {
        rc = (errno == EMFILE || errno == ENFILE || errno == ENOMEM) ? ST_ERROR_SYSTEM_LIMIT
                                                                     : ST_ERROR_NETWORK_ERROR;
        free(d);
        return rc;
    }
    for (p = servers; p != NULL && *p != '\0'; p++)
        if (*p == ',')
            guess++;
    rc = iw_dns_channel(d, servers, iw_dns_per_try_ms(timeout_ms, guess));
    if (rc == 0 && (count = iw_dns_server_count(d->channel)) != guess) {
        /* the system's list, known only once read: the per-try time is an init option */
        ares_destroy(d->channel);
        d->have_channel = 0;
        rc = iw_dns_channel(d, servers, iw_dns_per_try_ms(timeout_ms, count));
    }
    if (rc != 0) {
        iw_dns_free(d);
        return rc;
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
    struct epoll_event ev[IW_DNS_EVENTS];
    int i, n, batch;

    *done = 0;
    for (batch = 0; !d->done && d->sock_error == 0 && batch < IW_DNS_BATCHES; batch++) {
        /* Our driver polled the epoll descriptor; ask it, without waiting, which of
         * c-ares' sockets are ready, and let c-ares read or write exactly those. */
        n = d->nsock > 0 ? epoll_wait(d->epfd, ev, IW_DNS_EVENTS, 0) : 0;
        for (i = 0; i < n && !d->done; i++) {
            ares_socket_t fd = ev[i].data.fd;
            ares_socket_t rfd = (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD;
            ares_socket_t wfd = (ev[i].events & EPOLLOUT) ? fd : ARES_SOCKET_BAD;
            ares_process_fd(d->channel, rfd, wfd);
        }
        if (n < IW_DNS_EVENTS)
            break;
    }
    /* Retransmissions and c-ares' own timeouts. */
    if (!d->done && d->sock_error == 0)
        ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (!d->done && d->sock_error != 0) {
        *done = 1;
        return d->sock_error;
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

int iw_dns_found(const iw_dns *d)
{
    return d->done && d->status == 0 ? d->nfound : 0;
}

void iw_dns_pollset(iw_dns *d, imapwire_pollset *ps)
{
    struct timeval tv, *tvp;
    if (d->done)
        return;
    tvp = ares_timeout(d->channel, NULL, &tv);
    if (tvp != NULL)
        imapwire_pollset_wakeup(ps, iw_now_ms() + (int64_t)tvp->tv_sec * 1000 +
                                        tvp->tv_usec / 1000 + 1);
    /* A full poll set would leave the answer unread until the next retransmission:
     * look again soon instead. */
    if (d->nsock > 0 && imapwire_pollset_add(ps, d->epfd, IMAPWIRE_WANT_READ) != 0)
        imapwire_pollset_wakeup(ps, iw_now_ms() + 10);
}

void iw_dns_free(iw_dns *d)
{
    if (d == NULL)
        return;
    /* Destroyed, not cancelled: the callback sees ARES_EDESTRUCTION and only records it. */
    if (d->have_channel)
        ares_destroy(d->channel);
    /* after ares_destroy, whose socket callbacks still use it */
    if (d->epfd >= 0)
        close(d->epfd);
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
