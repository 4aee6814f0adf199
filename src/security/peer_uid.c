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

/* Our end and the peer's end of a connected TCP socket, same family. */
static int iw_tcp_ends(int fd, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
    socklen_t ll = sizeof *local, pl = sizeof *peer;
    if (getsockname(fd, (struct sockaddr *)local, &ll) != 0 ||
        getpeername(fd, (struct sockaddr *)peer, &pl) != 0 ||
        local->ss_family != peer->ss_family ||
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
        if (m->idiag_family != local.ss_family ||
            memcmp(m->id.idiag_src, q.req.id.idiag_src, 16) != 0 ||
            memcmp(m->id.idiag_dst, q.req.id.idiag_dst, 16) != 0 ||
            m->id.idiag_sport != q.req.id.idiag_sport ||
            m->id.idiag_dport != q.req.id.idiag_dport)
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

int iw_peer_uid_proc(int fd, uid_t *uid)
{
    struct sockaddr_storage local, peer;
    char want_local[64], want_remote[64], line[512];
    unsigned lines;
    FILE *f;
    int rc = ST_ERROR_NETWORK_ERROR;

    if (iw_tcp_ends(fd, &local, &peer) != 0)
        return ST_ERROR_NETWORK_ERROR;
    /* The peer's row: its local address is their end, its remote address is ours. */
    iw_proc_text(&peer, want_local, sizeof want_local);
    iw_proc_text(&local, want_remote, sizeof want_remote);
    f = fopen(local.ss_family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "re");
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
