/* relay.c: moves bytes both ways between the session's top layer and two descriptors,
 * without parsing them: what the reader already holds first, then whatever arrives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "relay.h"

/* One direction's buffer: a bulk FETCH moves in few system calls, and nothing waits for
 * a line to be complete. 128 KB measured faster than 256 KB and 1 MB through a pipe
 * (bench/tunnel_relay_bench: the buffers stay in cache). */
#define IW_RELAY_BUF (128u << 10)
#define IW_RELAY_READS 16          /* receives gathered before one write, at most */

typedef struct iw_pipe {
    char  *p;
    size_t cap, off, len;
} iw_pipe;

typedef struct iw_relay_fd {
    int fd;
    int flags;                     /* as the caller had them, restored at the end */
    int socket;                    /* 1: send/recv with MSG_NOSIGNAL; 0: write/read */
} iw_relay_fd;

static int iw_pipe_init(iw_pipe *b, size_t need)
{
    b->cap = need > IW_RELAY_BUF ? need : IW_RELAY_BUF;
    b->off = b->len = 0;
    b->p = malloc(b->cap);
    return b->p == NULL ? ST_ERROR_OUT_OF_MEMORY : 0;
}

/* The buffer emptied starts over at its beginning, so reads get its whole size. */
static void iw_pipe_used(iw_pipe *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

static ssize_t iw_fd_write(iw_relay_fd *f, const char *p, size_t n)
{
    if (f->socket) {
        ssize_t w = send(f->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0 || errno != ENOTSOCK)
            return w;
        f->socket = 0;             /* a pipe or a terminal after all */
    }
    return write(f->fd, p, n);
}

/* Bytes the reader received past the last response it returned (a reply pipelined
 * behind the login's, an unsolicited EXISTS): they are the client's, ahead of the rest. */
static int iw_take_buffered(iw_client *c, iw_pipe *down)
{
    size_t held = iw_reader_buffered(&c->io.reader);
    int rc = iw_pipe_init(down, held);
    if (rc == 0 && held > 0) {
        memcpy(down->p, c->io.reader.buf + c->io.reader.consumed, held);
        down->len = held;
    }
    iw_reader_reset(&c->io.reader);
    return rc;
}

static void iw_fd_prepare(iw_relay_fd *f, int fd)
{
    int type;
    socklen_t len = sizeof type;
    f->fd = fd;
    f->flags = fcntl(fd, F_GETFL);
    f->socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
    if (f->flags >= 0)
        fcntl(fd, F_SETFL, f->flags | O_NONBLOCK);
}

/* A pipe to the caller holds 64 KB by default: a bulk FETCH would then cost a wake-up of
 * each side per 64 KB. As large as our buffer (within the system's pipe-max-size, else
 * left alone), it moves at the speed of the connection (bench/tunnel_relay_bench). */
static void iw_fd_widen(const iw_relay_fd *f)
{
    if (!f->socket && fcntl(f->fd, F_GETPIPE_SZ) > 0 &&
        fcntl(f->fd, F_GETPIPE_SZ) < (int)IW_RELAY_BUF)
        fcntl(f->fd, F_SETPIPE_SZ, (int)IW_RELAY_BUF);
}

typedef struct iw_relay_run {
    iw_client  *c;
    iw_relay_fd in, out;
    iw_pipe     up, down;          /* to the server, from the server */
    int         in_end, srv_end;
    unsigned    srv_want;          /* what the top layer waits for after an AGAIN */
    int         out_wait, in_wait;
    int         in_ready;      /* poll said nInput is readable (or not asked yet): an
                                  idle client costs no read per server chunk */
    int         splice_fd;     /* the server's socket when it may go straight to out */
    IMAPRELAYINFO *info;
} iw_relay_run;

/* A plain TCP session (no TLS, SSH or proxy layer above the socket, nothing held in
 * a layer) to a pipe: the kernel moves the bytes from socket to pipe (splice), with no
 * copy through our buffer. */
static int iw_splice_source(iw_client *c, const iw_relay_fd *out)
{
    int fd = -1;
    if (out->socket || fcntl(out->fd, F_GETPIPE_SZ) <= 0 || c->io.top->next != NULL ||
        strcmp(c->io.top->type->name, "tcp") != 0 || iw_layer_pending(c->io.top) != 0 ||
        iw_layer_query(c->io.top, IMAPWIRE_QUERY_SOCKET, &fd) != 0)
        return -1;
    return fd;
}

/* 1 moved, 0 nothing to do now (what to wait for is set), -1 splice cannot be used
 * after all (the copying path takes over), or an ST_ERROR_* (negated). */
static int iw_relay_splice(iw_relay_run *r)
{
    ssize_t n = splice(r->splice_fd, NULL, r->out.fd, NULL, IW_RELAY_BUF,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    int avail = 0;
    if (n > 0) {
        r->c->io.rx_bytes += (uint64_t)n;
        r->info->qwFromServer += (uint64_t)n;
        return 1;
    }
    if (n == 0 || errno == ECONNRESET) {
        r->srv_end = 1;
        return 0;
    }
    if (errno == EAGAIN || errno == EINTR) {
        /* either side may be the one that is not ready: the socket says which */
        if (ioctl(r->splice_fd, FIONREAD, &avail) == 0 && avail > 0)
            r->out_wait = 1;
        else
            r->srv_want |= IMAPWIRE_WANT_READ;
        return 0;
    }
    if (errno == EPIPE) {
        r->info->dwEnded = IMAP_RELAY_ENDED_OUTPUT;
        return 0;
    }
    if (errno == EINVAL || errno == ENOSYS) {
        r->splice_fd = -1;
        return -1;
    }
    return -(int)ST_ERROR_NETWORK_ERROR;
}

/* Server to caller: one receive (into free room) and one write. 1 when bytes moved, 0
 * when nothing could, or an ST_ERROR_* (negated) on failure. */
static int iw_relay_down(iw_relay_run *r)
{
    int moved = 0, reads;
    if (r->splice_fd >= 0 && r->down.off == r->down.len && !r->srv_end) {
        int rc = iw_relay_splice(r);
        if (rc != -1)
            return rc;
    }
    /* what is there already is taken in a few reads (a TLS record is 16 KB) before one
     * write: fewer system calls per byte, and nothing waits that has not arrived yet */
    for (reads = 0; reads < IW_RELAY_READS && !r->srv_end && r->down.len < r->down.cap;
         reads++) {
        size_t got = 0;
        int rc = iw_layer_recv(r->c->io.top, r->down.p + r->down.len, r->down.cap - r->down.len,
                               &got);
        if (rc == 0 && got > 0) {
            r->down.len += got;
            r->c->io.rx_bytes += got;
            moved = 1;
            continue;
        }
        if (rc == IMAPWIRE_AGAIN)
            r->srv_want |= IMAPWIRE_WANT_READ;
        else if (rc == 0 || rc == (int)ST_ERROR_CONNECTION_CLOSED)
            r->srv_end = 1;
        else
            return -rc;
        break;
    }
    if (r->down.off < r->down.len) {
        ssize_t w = iw_fd_write(&r->out, r->down.p + r->down.off, r->down.len - r->down.off);
        if (w > 0) {
            r->info->qwFromServer += (uint64_t)w;
            iw_pipe_used(&r->down, (size_t)w);
            moved = 1;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            r->out_wait = 1;
        } else if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            r->info->dwEnded = IMAP_RELAY_ENDED_OUTPUT;
        } else {
            return -(int)ST_ERROR_NETWORK_ERROR;
        }
    }
    return moved;
}

/* Caller to server: one read (into free room) and one send; as iw_relay_down. */
static int iw_relay_up(iw_relay_run *r)
{
    int moved = 0;
    if (!r->in_end && r->up.len < r->up.cap && !r->in_ready) {
        r->in_wait = 1;
    } else if (!r->in_end && r->up.len < r->up.cap) {
        ssize_t n = read(r->in.fd, r->up.p + r->up.len, r->up.cap - r->up.len);
        if (n > 0) {
            r->up.len += (size_t)n;
            moved = 1;
        } else if (n == 0 || (errno == ECONNRESET)) {
            r->in_end = 1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            r->in_wait = 1;
            r->in_ready = 0;
        } else {
            return -(int)ST_ERROR_NETWORK_ERROR;
        }
    }
    if (r->up.off < r->up.len) {
        size_t sent = 0;
        int rc = iw_layer_send(r->c->io.top, r->up.p + r->up.off, r->up.len - r->up.off, &sent);
        if (rc == 0) {
            r->info->qwToServer += sent;
            iw_pipe_used(&r->up, sent);
            moved = 1;
        } else if (rc == IMAPWIRE_AGAIN) {
            r->srv_want |= IMAPWIRE_WANT_WRITE;
        } else if (rc == (int)ST_ERROR_CONNECTION_CLOSED) {
            r->srv_end = 1;        /* what it still sent reaches the caller first */
        } else {
            return -rc;
        }
    }
    return moved;
}

/* Waits for what the last round could not do, at most until deadline (0: none). */
static int iw_relay_wait(iw_relay_run *r, int64_t deadline)
{
    struct pollfd pfd[IMAPWIRE_POLLSET_MAX + 2];
    imapwire_pollset ps = {0};
    nfds_t n = 0, in_at = (nfds_t)-1;
    int64_t now = iw_now_ms(), until = deadline;

    if (r->srv_want != 0) {
        iw_layer_pollset(r->c->io.top, r->srv_want, &ps);
        n = iw_pollset_to_pollfd(&ps, pfd);
        if (ps.wakeup_ms != 0 && (until == 0 || ps.wakeup_ms < until))
            until = ps.wakeup_ms;
    }
    if (r->in_wait) {
        in_at = n;
        pfd[n].fd = r->in.fd;
        pfd[n].events = POLLIN;
        pfd[n++].revents = 0;
    }
    if (r->out_wait) {
        pfd[n].fd = r->out.fd;
        pfd[n].events = POLLOUT;
        pfd[n++].revents = 0;
    }
    if (poll(pfd, n, until == 0 ? -1 : until > now ? (int)(until - now) : 0) < 0) {
        if (errno != EINTR)
            return ST_ERROR_NETWORK_ERROR;
        pfd[in_at == (nfds_t)-1 ? 0 : in_at].revents = 0;
    }
    if (in_at != (nfds_t)-1 && pfd[in_at].revents != 0)
        r->in_ready = 1;
    return 0;
}

static int iw_relay_loop(iw_relay_run *r, unsigned drain_ms)
{
    int64_t drain_until = 0;
    uint64_t seen = 0;

    for (;;) {
        int d, u;
        r->srv_want = 0;
        r->out_wait = r->in_wait = 0;
        d = iw_relay_down(r);
        if (d < 0)
            return -d;
        if (r->info->dwEnded == IMAP_RELAY_ENDED_OUTPUT)
            return 0;
        u = iw_relay_up(r);
        if (u < 0)
            return -u;
        if (r->srv_end && r->down.off == r->down.len) {
            r->info->dwEnded = IMAP_RELAY_ENDED_SERVER;
            return 0;
        }
        if (r->in_end && r->up.off == r->up.len) {
            /* the caller said all it will; its last answer (LOGOUT's) still goes out */
            if (drain_until == 0 || r->info->qwFromServer != seen) {
                seen = r->info->qwFromServer;
                drain_until = iw_now_ms() + drain_ms;
            }
            if (iw_now_ms() >= drain_until && r->down.off == r->down.len) {
                r->info->dwEnded = IMAP_RELAY_ENDED_INPUT;
                return 0;
            }
        }
        if (d > 0 || u > 0)
            continue;
        if (iw_relay_wait(r, drain_until) != 0)
            return ST_ERROR_NETWORK_ERROR;
    }
}

int iw_relay(iw_client *c, int in, int out, unsigned drain_ms, IMAPRELAYINFO *info)
{
    iw_relay_run r;
    int rc;

    memset(&r, 0, sizeof r);
    r.c = c;
    r.in_ready = 1;
    r.info = info;
    rc = iw_take_buffered(c, &r.down);
    if (rc == 0)
        rc = iw_pipe_init(&r.up, 0);
    if (rc == 0) {
        iw_fd_prepare(&r.in, in);
        iw_fd_prepare(&r.out, out);
        iw_fd_widen(&r.out);
        r.splice_fd = iw_splice_source(c, &r.out);
        rc = iw_relay_loop(&r, drain_ms);
        /* restored in reverse: one description behind both gets its own flags back */
        if (r.out.flags >= 0)
            fcntl(out, F_SETFL, r.out.flags);
        if (r.in.flags >= 0)
            fcntl(in, F_SETFL, r.in.flags);
    }
    free(r.up.p);
    free(r.down.p);
    if (rc != 0)
        info->dwEnded = IMAP_RELAY_ENDED_ERROR;
    return rc;
}
