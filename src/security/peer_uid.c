/* peer_uid.c: finds which uid owns the other end of a local connection, so forwards serve
 * only the caller's own user: SO_PEERCRED for Unix sockets, sock_diag (else /proc) for TCP. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <poll.h>
#include "../core/runtime/runtime.h"
#include "peer_uid.h"

#define IW_DIAG_WAIT_MS 1000       /* the kernel answers at once; this only bounds a bug */

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) in a as the IPv4 address it stands for. */
static void iw_unmap(struct sockaddr_storage *a)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
    struct sockaddr_in s4;

    if (a->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    s4.sin_port = s6->sin6_port;
    memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    memset(a, 0, sizeof *a);
    memcpy(a, &s4, sizeof s4);
}

/* The IPv4 address in a as the IPv4-mapped IPv6 address a v6 socket sees it as. */
static void iw_map(const struct sockaddr_storage *a, struct sockaddr_storage *out)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof *out);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = s4->sin_port;
    s6->sin6_addr.s6_addr[10] = 0xff;
    s6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&s6->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
}

/* Our end and the peer's end of a connected TCP socket, same family. IPv4 seen through a
 * dual-stack socket (::ffff:a.b.c.d) is given as IPv4: the peer's own socket may be
 * either family, and only the IPv4 form finds both. */
static int iw_tcp_ends(int fd, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
    socklen_t ll = sizeof *local, pl = sizeof *peer;
    if (getsockname(fd, (struct sockaddr *)local, &ll) != 0 ||
        getpeername(fd, (struct sockaddr *)peer, &pl) != 0)
        return ST_ERROR_NETWORK_ERROR;
    iw_unmap(local);
    iw_unmap(peer);
    if (local->ss_family != peer->ss_family ||
        (local->ss_family != AF_INET && local->ss_family != AF_INET6))
        return ST_ERROR_NETWORK_ERROR;
    return 0;
}

/* Writes the address and port of a into the diag id's 16-byte address and port fields. */
static void iw_diag_put(const struct sockaddr_storage *a, __be32 addr[4], __be16 *port)
{
    memset(addr, 0, 16);
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        memcpy(addr, &s->sin_addr, 4);
        *port = s->sin_port;
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        memcpy(addr, &s->sin6_addr, 16);
        *port = s->sin6_port;
    }
}

/* Whether the kernel's answer m is the socket asked for by q. An IPv4 question finds an
 * IPv6 socket connected over IPv4 too (the kernel looks in one table); such a socket
 * answers in its own family, with the addresses mapped. */
static int iw_diag_is(const struct inet_diag_msg *m, const struct inet_diag_req_v2 *q)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    __be32 src[4], dst[4];

    memcpy(src, m->id.idiag_src, sizeof src);
    memcpy(dst, m->id.idiag_dst, sizeof dst);
    if (m->idiag_family == AF_INET6 && q->sdiag_family == AF_INET) {
        if (memcmp(src, mapped, 12) != 0 || memcmp(dst, mapped, 12) != 0)
            return 0;
        src[0] = src[3];
        dst[0] = dst[3];
        src[1] = src[2] = src[3] = dst[1] = dst[2] = dst[3] = 0;
    } else if (m->idiag_family != q->sdiag_family) {
        return 0;
    }
    return memcmp(src, q->id.idiag_src, sizeof src) == 0 &&
           memcmp(dst, q->id.idiag_dst, sizeof dst) == 0 &&
           m->id.idiag_sport == q->id.idiag_sport && m->id.idiag_dport == q->id.idiag_dport;
}

int iw_peer_uid_diag(int fd, uid_t *uid)
{
    struct sockaddr_storage local, peer;
    struct {
        struct nlmsghdr         nh;
        struct inet_diag_req_v2 req;
    } q;
    struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
    union {
        struct nlmsghdr nh;
        char            buf[8192];
    } r;
    struct pollfd p;
    struct nlmsghdr *h;
    ssize_t n;
    int s, rc = ST_ERROR_NETWORK_ERROR;

    if (iw_tcp_ends(fd, &local, &peer) != 0)
        return ST_ERROR_NETWORK_ERROR;
    memset(&q, 0, sizeof q);
    q.nh.nlmsg_len = sizeof q;
    q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    /* No NLM_F_DUMP: the kernel looks up exactly one socket by its 4-tuple. */
    q.nh.nlmsg_flags = NLM_F_REQUEST;
    q.nh.nlmsg_seq = 1;
    q.req.sdiag_family = (unsigned char)local.ss_family;
    q.req.sdiag_protocol = IPPROTO_TCP;
    q.req.idiag_states = ~0u;
    /* The peer's socket: its source is their end, its destination is ours. */
    iw_diag_put(&peer, q.req.id.idiag_src, &q.req.id.idiag_sport);
    iw_diag_put(&local, q.req.id.idiag_dst, &q.req.id.idiag_dport);
    q.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0)
        return ST_ERROR_NETWORK_ERROR;
    if (sendto(s, &q, sizeof q, 0, (struct sockaddr *)&nl, sizeof nl) != (ssize_t)sizeof q)
        goto out;
    p.fd = s;
    p.events = POLLIN;
    if (poll(&p, 1, IW_DIAG_WAIT_MS) != 1)
        goto out;
    n = recv(s, r.buf, sizeof r.buf, MSG_DONTWAIT);
    if (n <= 0)
        goto out;
    for (h = &r.nh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        const struct inet_diag_msg *m;
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            h->nlmsg_len < NLMSG_LENGTH(sizeof *m))
            break;                 /* NLMSG_ERROR: no such socket */
        m = NLMSG_DATA(h);
        /* Only the exact peer counts: a listener or another socket that happens to share
         * the peer's port must never lend its owner. */
        if (!iw_diag_is(m, &q.req))
            continue;
        *uid = (uid_t)m->idiag_uid;
        rc = 0;
        break;
    }
out:
    close(s);
    return rc;
}

/* The "ADDR:PORT" text /proc/net/tcp{,6} shows for a: each 32-bit word of the address as
 * the kernel holds it, printed %08X, then the port in host order. */
static void iw_proc_text(const struct sockaddr_storage *a, char *out, size_t size)
{
    uint32_t w[4];
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        memcpy(w, &s->sin_addr, 4);
        snprintf(out, size, "%08X:%04X", w[0], ntohs(s->sin_port));
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        memcpy(w, &s->sin6_addr, 16);
        snprintf(out, size, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], ntohs(s->sin6_port));
    }
}

/* The row of table whose local and remote addresses are want_local and want_remote. */
static int iw_proc_scan(const char *table, const char *want_local, const char *want_remote,
                        uid_t *uid)
{
    char line[512];
    unsigned lines;
    FILE *f = fopen(table, "re");
    int rc = ST_ERROR_NETWORK_ERROR;

    if (f == NULL)
        return ST_ERROR_NETWORK_ERROR;
    /* Bounded: a machine has at most a few million sockets. */
    for (lines = 0; lines < (1u << 24) && fgets(line, sizeof line, f) != NULL; lines++) {
        char l[64], rem[64];
        unsigned long u;
        if (sscanf(line, " %*s %63s %63s %*s %*s %*s %*s %lu", l, rem, &u) != 3)
            continue;
        if (strcmp(l, want_local) == 0 && strcmp(rem, want_remote) == 0) {
            *uid = (uid_t)u;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int iw_peer_uid_proc(int fd, uid_t *uid)
{
    struct sockaddr_storage local, peer, m_local, m_peer;
    char want_local[64], want_remote[64];

    if (iw_tcp_ends(fd, &local, &peer) != 0)
        return ST_ERROR_NETWORK_ERROR;
    /* The peer's row: its local address is their end, its remote address is ours. */
    iw_proc_text(&peer, want_local, sizeof want_local);
    iw_proc_text(&local, want_remote, sizeof want_remote);
    if (local.ss_family == AF_INET6)
        return iw_proc_scan("/proc/net/tcp6", want_local, want_remote, uid);
    if (iw_proc_scan("/proc/net/tcp", want_local, want_remote, uid) == 0)
        return 0;
    /* an IPv6 socket that reached us over IPv4 is listed with its mapped addresses */
    iw_map(&peer, &m_peer);
    iw_map(&local, &m_local);
    iw_proc_text(&m_peer, want_local, sizeof want_local);
    iw_proc_text(&m_local, want_remote, sizeof want_remote);
    return iw_proc_scan("/proc/net/tcp6", want_local, want_remote, uid);
}

int iw_peer_uid(int fd, uid_t *uid)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;

    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return ST_ERROR_NETWORK_ERROR;
    if (a.ss_family == AF_UNIX) {
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cl != sizeof cr)
            return ST_ERROR_NETWORK_ERROR;
        *uid = cr.uid;
        return 0;
    }
    /* sock_diag can be missing (a kernel without inet_diag, a seccomp filter): the
     * /proc table says the same, only slower to read. */
    if (iw_peer_uid_diag(fd, uid) == 0)
        return 0;
    return iw_peer_uid_proc(fd, uid);
}
