/* ssh_io.c: libssh2's side of a session: its I/O through the session's own hop (never a
 * socket directly), its memory (wiped before it is freed), and the waits on the hop. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include "ssh_internal.h"

#define SSH_QUICKACK_BELOW 2048       /* bytes: a read this small is an exchange, not bulk */

/* ---- libssh2 I/O goes through the session's lower layer, never a socket directly ---- */

#define SSH_TX_MAX (1u << 20)      /* held unsent at most: far above what SSH_TX_SOFT lets in */

/* The hop's failure as libssh2 hears it; the session keeps the first for its report. */
static ssize_t ssh_hop_failed(ssh_session *s, int rc)
{
    if (s->io_error == 0)
        s->io_error = rc;
    return rc == ST_ERROR_CONNECTION_CLOSED ? -ECONNRESET : -EIO;
}

/* Sends what is held, as much as the hop takes now: 0 (all, some or none of it went),
 * or the hop's error. Under s->lock. */
int ssh_tx_flush(ssh_session *s)
{
    while (s->tx_len > 0) {
        size_t sent = 0;
        int rc = iw_layer_send(s->tcp, s->tx + s->tx_off, s->tx_len, &sent);
        if (sent > 0) {
            s->ack_owed = 0;
            s->tx_off += sent;
            s->tx_len -= sent;
        }
        if (rc == IMAPWIRE_AGAIN || (rc == 0 && sent == 0))
            break;
        if (rc != 0)
            return rc;
    }
    if (s->tx_len == 0)
        s->tx_off = 0;
    return 0;
}

/* Holds n more bytes behind what is held: 0, or -1 (no memory, or past SSH_TX_MAX). */
static int ssh_tx_keep(ssh_session *s, const unsigned char *p, size_t n)
{
    if (n > SSH_TX_MAX - s->tx_len)
        return -1;
    if (s->tx_off + s->tx_len + n > s->tx_cap) {
        if (s->tx_off > 0) {
            memmove(s->tx, s->tx + s->tx_off, s->tx_len);
            s->tx_off = 0;
        }
        if (s->tx_len + n > s->tx_cap) {
            size_t cap = s->tx_cap ? s->tx_cap : 16384;
            unsigned char *q;
            while (cap < s->tx_len + n)
                cap *= 2;
            q = realloc(s->tx, cap);
            if (q == NULL)
                return -1;
            s->tx = q;
            s->tx_cap = cap;
        }
    }
    memcpy(s->tx + s->tx_off + s->tx_len, p, n);
    s->tx_len += n;
    return 0;
}

ssize_t ssh_send_cb(libssh2_socket_t fd, const void *buf, size_t len, int flags,
                    void **abstract)
{
    ssh_session *s = *abstract;
    size_t sent = 0;
    int rc = 0;
    /* libssh2 also talks to the SSH agent through these callbacks, on the agent's own
     * socket: that traffic is not ours to tunnel. */
    if ((int)fd != s->fd) {
        ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL);
        return n < 0 ? -errno : n;
    }
    /* what is held goes first: the bytes keep their order */
    if (s->tx_len > 0 && (rc = ssh_tx_flush(s)) != 0)
        return ssh_hop_failed(s, rc);
    if (s->tx_len == 0) {
        rc = iw_layer_send(s->tcp, buf, len, &sent);
        if (sent > 0)
            s->ack_owed = 0;       /* our packet carried the ACK */
        if (rc != 0 && rc != IMAPWIRE_AGAIN)
            return ssh_hop_failed(s, rc);
    }
    /* every packet is taken whole (see tx in ssh_internal.h); the pollsets ask for the
     * hop's room while anything is held */
    if (sent < len && ssh_tx_keep(s, (const unsigned char *)buf + sent, len - sent) != 0)
        return ssh_hop_failed(s, ST_ERROR_OUT_OF_MEMORY);
    return (ssize_t)len;
}

ssize_t ssh_recv_cb(libssh2_socket_t fd, void *buf, size_t len, int flags,
                    void **abstract)
{
    ssh_session *s = *abstract;
    size_t got = 0;
    int rc;
    if ((int)fd != s->fd) {
        ssize_t n = recv(fd, buf, len, flags);
        if (n > 0)
            s->unanswered = 0;
        return n < 0 ? -errno : n;
    }
    /* libssh2 reads for the answer to what it sent: what is held must go first */
    if (s->tx_len > 0 && (rc = ssh_tx_flush(s)) != 0)
        return ssh_hop_failed(s, rc);
    if (s->rx_skip || s->rx_short) {
        s->rx_short = 0;
        s->rx_fresh = 0;
        return -EAGAIN;
    }
    rc = iw_layer_recv(s->tcp, buf, len, &got);
    /* libssh2 asks for bytes only when no whole packet is left in its buffer: after a
     * read that brought some, it may stop at the packet it wanted with more behind it */
    s->rx_fresh = got > 0;
    /* a socket only: a short read of another hop (a channel, a pipe) proves nothing */
    s->rx_short = rc == 0 && got > 0 && got < len && s->dummy_fd < 0;
    s->rx_dry = rc == IMAPWIRE_AGAIN || s->rx_short;
    s->rx_after_write = 0;
    if (got > 0)
        s->unanswered = 0;
    /* packets, or the hop's end: news for the channels waiting (ssh_wake.c) */
    if (rc != IMAPWIRE_AGAIN) {
        s->moved = 1;
        s->reads++;
    }
    /* sshd leaves Nagle on for forwarded channels, so a small reply of its waits for our
     * ACK of the one before; a delayed ACK would cost 40 ms per exchange. The ACK is owed
     * after a small read only (during bulk data the kernel acknowledges every other
     * segment anyway) and sent when we are about to wait (ssh_ack), unless a packet of
     * ours carried it first. */
    if (rc == 0 && got > 0 && got < SSH_QUICKACK_BELOW && s->dummy_fd < 0)
        s->ack_owed = 1;
    if (rc == IMAPWIRE_AGAIN)
        return -EAGAIN;
    if (rc != 0 || got == 0) {
        if (s->io_error == 0)
            s->io_error = rc != 0 ? rc : (int)ST_ERROR_CONNECTION_CLOSED;
        if (rc != 0)
            return rc == ST_ERROR_CONNECTION_CLOSED ? -ECONNRESET : -EIO;
    }
    return (ssize_t)got;             /* 0: the server closed */
}

/* ---- libssh2's memory: every block is wiped before it is freed ---- */

/* libssh2 holds our keyboard-interactive answers, the packets that carried the password
 * and its key material in memory it allocates and frees itself: each block remembers
 * its size in front of it so the free can wipe it, and is listed in its session, since
 * libssh2 1.10 forgets a few blocks when a session is freed in the middle of its key
 * exchange: the session's end frees (and wipes) whatever libssh2 left. The list is the
 * session's, used under its lock like every other libssh2 call on it. */
#define SSH_MEM_HDR \
    ((sizeof(ssh_mem_block) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

void *ssh_mem_alloc(size_t n, void **abstract)
{
    ssh_session *s = *abstract;
    ssh_mem_block *b;
    if (n > SIZE_MAX - SSH_MEM_HDR)
        return NULL;
    b = malloc(SSH_MEM_HDR + n);
    if (b == NULL)
        return NULL;
    b->n = n;
    b->prev = NULL;
    b->next = s->blocks;
    if (s->blocks != NULL)
        s->blocks->prev = b;
    s->blocks = b;
    return (unsigned char *)b + SSH_MEM_HDR;
}

void ssh_mem_drop(ssh_session *s, ssh_mem_block *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        s->blocks = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    OPENSSL_cleanse((unsigned char *)b + SSH_MEM_HDR, b->n);
    free(b);
}

void ssh_mem_free(void *ptr, void **abstract)
{
    if (ptr == NULL)
        return;
    ssh_mem_drop(*abstract, (ssh_mem_block *)(void *)((unsigned char *)ptr - SSH_MEM_HDR));
}

void *ssh_mem_realloc(void *ptr, size_t n, void **abstract)
{
    size_t old;
    void *q;
    if (ptr == NULL)
        return ssh_mem_alloc(n, abstract);
    /* Never realloc in place: the old block may hold a secret and must be wiped. */
    q = ssh_mem_alloc(n, abstract);
    if (q == NULL)
        return NULL;
    old = ((ssh_mem_block *)(void *)((unsigned char *)ptr - SSH_MEM_HDR))->n;
    memcpy(q, ptr, old < n ? old : n);
    ssh_mem_free(ptr, abstract);
    return q;
}

/* Before a wait: the ACK a small read left owed goes now (one system call per wait,
 * not one per read). Under s->lock. */
void ssh_ack(ssh_session *s)
{
    if (s->ack_owed) {
        int one = 1;
        s->ack_owed = 0;
        setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
}

/* The descriptors to wait on for the direction libssh2 is blocked on; under s->lock. */
nfds_t ssh_wait_fds(ssh_session *s, struct pollfd *pfd)
{
    imapwire_pollset ps = {0};
    int dir = libssh2_session_block_directions(s->s);
    ssh_ack(s);
    iw_layer_pollset(s->tcp, ((dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) || s->tx_len > 0
                                  ? IMAPWIRE_WANT_WRITE : 0) | IMAPWIRE_WANT_READ, &ps);
    return ps.count > 0 ? iw_pollset_to_pollfd(&ps, pfd) : 0;
}

/* Waits up to ms for the session's socket (teardown, which owns the session). */
void ssh_wait(ssh_session *s, int ms)
{
    struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
    nfds_t n;
    (void)ssh_tx_flush(s);         /* the request the wait is for may still be held */
    n = ssh_wait_fds(s, pfd);
    if (n > 0)
        poll(pfd, n, ms);
}
