/* fuzz_proxy.c: libFuzzer target for a proxy plugin's handshake (linked with socks5.c or
 * httpconnect.c): a fake host API (hops) or fake sockets replay the input as the reply. */
#define _GNU_SOURCE               /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/transport.h>
#include "fz_net.h"

/* Input: a 4-byte header, then the proxy's bytes.
 *   h[0] 0-1 proxy argument, 2-3 destination host, 4 reset (not EOF) at the end,
 *        5 bind a local address, 6-7 how the TCP connect to the proxy goes
 *   h[1] 0-5 seed of the piece-size generator, 6-7 largest piece class
 *   h[2] 0-1 how often calls say EAGAIN, 2 EINTR too, 3 short sends, 4 socket() fails
 *   h[3] reserved (kept so both proxy corpora share a layout) */
#define FZ_HEADER_LEN 4
#define FZ_FD_BASE    7000        /* fake descriptors: never real, never poll(2)ed */
#define FZ_MAX_FDS    4

static const char *const fz_args[4] = {
    "127.0.0.1:1080",
    "imapwire:s3cret-Pw@127.0.0.1:1080",
    "localhost:1080",             /* two addresses: 127.0.0.1, then ::1 */
    "u:p@ss:w0rd-Pw@[::1]:1080",  /* the last '@' ends the password */
};
static const char *const fz_passwords[4] = { NULL, "s3cret-Pw", NULL, "p@ss:w0rd-Pw" };
static const char *const fz_hosts[4] = {
    "imap.example.test", "192.0.2.7", "[2001:db8::1]", "mail",
};

static struct fz_net {
    const uint8_t *data;
    size_t         len, pos;
    uint32_t       rng;
    size_t         max_piece;
    unsigned       again_mask, agains_left;
    int            eintr, short_sends, socket_fails, reset_at_end, connect_mode;
    int            open[FZ_MAX_FDS];
    int            sockets;           /* socket() calls so far */
    int            in_progress;       /* a connect is in flight on the newest socket */
    const char    *password;          /* must never reach a trace */
    int            password_in_input; /* then the proxy's bytes (kept in the layer, shown
                                         in traces) may hold it: no secret checks */
} fz;

static uint32_t fz_rand(void)
{
    uint32_t x = fz.rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    fz.rng = x;
    return x;
}

static int fz_again(void)
{
    if (fz.again_mask == 0 || fz.agains_left == 0 || (fz_rand() & fz.again_mask) != 0)
        return 0;
    fz.agains_left--;
    return 1;
}

static int fz_fd_index(int fd)
{
    int i = fd - FZ_FD_BASE;
    if (i < 0 || i >= FZ_MAX_FDS || !fz.open[i]) {
        fprintf(stderr, "fuzz proxy: call on descriptor %d, which is not open\n", fd);
        abort();
    }
    return i;
}

int fz_net_socket(int domain, int type, int protocol)
{
    (void)domain;
    (void)type;
    (void)protocol;
    if (fz.socket_fails || fz.sockets >= FZ_MAX_FDS) {
        errno = EMFILE;
        return -1;
    }
    fz.open[fz.sockets] = 1;
    fz.in_progress = 0;
    return FZ_FD_BASE + fz.sockets++;
}

int fz_net_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    (void)level;
    (void)name;
    (void)val;
    (void)len;
    fz_fd_index(fd);
    return 0;
}

int fz_net_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    fz_fd_index(fd);
    return 0;
}

/* Modes: 0 connected at once, 1 in progress then connected, 2 the first address
 * refuses (localhost then tries ::1), 3 in progress then refused. */
int fz_net_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int i = fz_fd_index(fd);
    (void)addr;
    (void)len;
    if (fz.connect_mode == 0)
        return 0;
    if (fz.connect_mode == 2 && i == 0) {
        errno = ECONNREFUSED;
        return -1;
    }
    fz.in_progress = 1;
    errno = EINPROGRESS;
    return -1;
}

int fz_net_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    nfds_t i;
    (void)timeout;
    for (i = 0; i < n; i++)
        fz_fd_index(fds[i].fd);
    if (fz_again())
        return 0;
    for (i = 0; i < n; i++)
        fds[i].revents = fds[i].events;
    return (int)n;
}

int fz_net_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    fz_fd_index(fd);
    if (level != SOL_SOCKET || name != SO_ERROR || *len < sizeof(int)) {
        errno = EINVAL;
        return -1;
    }
    *(int *)val = fz.connect_mode == 3 ? ECONNREFUSED : 0;
    fz.in_progress = 0;
    return 0;
}

ssize_t fz_net_send(int fd, const void *buf, size_t len, int flags)
{
    (void)buf;
    (void)flags;
    fz_fd_index(fd);
    if (fz.eintr && (fz_rand() & 7) == 0) {
        errno = EINTR;
        return -1;
    }
    if (fz_again()) {
        errno = EAGAIN;
        return -1;
    }
    if (fz.short_sends && len > 1)
        return (ssize_t)(1 + fz_rand() % len);
    return (ssize_t)len;
}

ssize_t fz_net_recv(int fd, void *buf, size_t len, int flags)
{
    size_t n, left = fz.len - fz.pos;
    (void)flags;
    fz_fd_index(fd);
    if (fz.eintr && (fz_rand() & 7) == 0) {
        errno = EINTR;
        return -1;
    }
    if (left > 0 && fz_again()) {
        errno = EAGAIN;
        return -1;
    }
    if (left == 0) {
        if (!fz.reset_at_end)
            return 0;
        errno = ECONNRESET;
        return -1;
    }
    n = 1 + fz_rand() % fz.max_piece;
    if (n > len)
        n = len;
    if (n > left)
        n = left;
    memcpy(buf, fz.data + fz.pos, n);
    fz.pos += n;
    return (ssize_t)n;
}

int fz_net_close(int fd)
{
    fz.open[fz_fd_index(fd)] = 0;
    return 0;
}

/* ---- hops (SDK 1.1): the same replay behind host->hop_*, for plugins that reach the
 * proxy through the library's TCP instead of their own sockets ---- */
#ifdef IMAPWIRE_HOST_HAS
struct imapwire_hop {
    int fd;                       /* a fake descriptor: fz.open[] tracks hop_free */
    int up;
};

static struct imapwire_hop fz_hops[FZ_MAX_FDS];

static int fz_hop_open(imapwire_layer *l, const char *host, unsigned port, imapwire_hop **hop)
{
    int fd;
    (void)l;
    *hop = NULL;
    if (host == NULL || *host == '\0' || port == 0 || port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    fd = fz_net_socket(0, 0, 0);
    if (fd < 0)
        return ST_ERROR_OUT_OF_MEMORY;
    *hop = &fz_hops[fd - FZ_FD_BASE];
    (*hop)->fd = fd;
    (*hop)->up = 0;
    return 0;
}

/* connect modes as for sockets: 0 at once, 1 after waiting, 2 and 3 refused */
static int fz_hop_connect(imapwire_hop *hop, int *done)
{
    fz_fd_index(hop->fd);
    *done = 0;
    if (fz.connect_mode >= 2)
        return ST_ERROR_CONNECTION_REFUSED;
    if (fz.connect_mode == 1 && fz_again())
        return IMAPWIRE_AGAIN;
    hop->up = 1;
    *done = 1;
    return 0;
}

static int fz_hop_send(imapwire_hop *hop, const void *buf, size_t len, size_t *sent)
{
    ssize_t n;
    *sent = 0;
    if (!hop->up)
        abort();                  /* "MUST be connected before hop_send" */
    do
        n = fz_net_send(hop->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return IMAPWIRE_AGAIN;
    *sent = (size_t)n;
    return 0;
}

static int fz_hop_recv(imapwire_hop *hop, void *buf, size_t len, size_t *got)
{
    ssize_t n;
    *got = 0;
    if (!hop->up)
        abort();                  /* "MUST be connected before hop_recv" */
    do
        n = fz_net_recv(hop->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? IMAPWIRE_AGAIN : (int)ST_ERROR_CONNECTION_CLOSED;
    *got = (size_t)n;
    return 0;
}

static void fz_hop_pollset(imapwire_hop *hop, unsigned want, imapwire_pollset *ps)
{
    fz_fd_index(hop->fd);
    imapwire_pollset_add(ps, hop->fd, want);
}

static size_t fz_hop_pending(imapwire_hop *hop)
{
    fz_fd_index(hop->fd);
    return 0;
}

static int fz_hop_query(imapwire_hop *hop, int what, void *out)
{
    fz_fd_index(hop->fd);
    if (what == IMAPWIRE_QUERY_SOCKET) {
        *(int *)out = hop->fd;
        return 0;
    }
    return IMAPWIRE_PASS;
}

static void fz_hop_free(imapwire_hop *hop)
{
    if (hop != NULL)
        fz_net_close(hop->fd);
}
#endif

/* ---- the fake host API ---- */

static const imapwire_transport_type *fz_type;

static int fz_register(const imapwire_transport_type *type)
{
    fz_type = type;
    return 0;
}

static void fz_check_secret(const char *where, const void *p, size_t n)
{
    if (fz.password != NULL && !fz.password_in_input && memmem(p, n, fz.password, strlen(fz.password)) != NULL) {
        fprintf(stderr, "fuzz proxy: the proxy password is still in %s\n", where);
        abort();
    }
}

/* Formats every note (so a bad argument shows under ASan) and checks it for the secret. */
static void fz_trace(imapwire_layer *l, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;
    (void)l;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        fz_check_secret("a trace line", line, strlen(line));
}

static int64_t fz_clock;
static int64_t fz_now_ms(void)
{
    return ++fz_clock;
}

static void fz_mark(imapwire_layer *l, int mark)
{
    (void)l;
    (void)mark;
}

/* A bottom layer has nothing below: these must never be called. */
static int fz_no_connect(imapwire_layer *l, int *done)
{
    (void)l;
    (void)done;
    abort();
}
static int fz_no_io(imapwire_layer *l, const void *buf, size_t len, size_t *n)
{
    (void)l;
    (void)buf;
    (void)len;
    (void)n;
    abort();
}
static int fz_no_recv(imapwire_layer *l, void *buf, size_t len, size_t *n)
{
    (void)l;
    (void)buf;
    (void)len;
    (void)n;
    abort();
}
static void fz_no_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    (void)l;
    (void)want;
    (void)ps;
    abort();
}
static size_t fz_no_pending(imapwire_layer *l)
{
    (void)l;
    abort();
}
static int fz_no_query(imapwire_layer *l, int what, void *out)
{
    (void)l;
    (void)what;
    (void)out;
    abort();
}

static const imapwire_host_api fz_host = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_host_api),
    .register_transport = fz_register,
    .trace = fz_trace,
    .now_ms = fz_now_ms,
    .mark = fz_mark,
    .connect_next = fz_no_connect,
    .shutdown_next = fz_no_connect,
    .send_next = fz_no_io,
    .recv_next = fz_no_recv,
    .pollset_next = fz_no_pollset,
    .pending_next = fz_no_pending,
    .query_next = fz_no_query,
#ifdef IMAPWIRE_HOST_HAS
    .hop_open = fz_hop_open,
    .hop_connect = fz_hop_connect,
    .hop_send = fz_hop_send,
    .hop_recv = fz_hop_recv,
    .hop_pollset = fz_hop_pollset,
    .hop_pending = fz_hop_pending,
    .hop_query = fz_hop_query,
    .hop_free = fz_hop_free,
#endif
};

int imapwire_plugin_init(const imapwire_host_api *host);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    imapwire_host_api other = fz_host;
    (void)argc;
    (void)argv;
    /* A library of another ABI major is refused before anything is registered. */
    other.abi_version = (IMAPWIRE_TRANSPORT_ABI_MAJOR + 1u) << 16;
    if (imapwire_plugin_init(&other) != ST_ERROR_PLUGIN_VERSION || fz_type != NULL)
        abort();
    if (imapwire_plugin_init(&fz_host) != 0 || fz_type == NULL ||
        !(fz_type->flags & IMAPWIRE_TRANSPORT_BOTTOM) || fz_type->connect == NULL)
        abort();
    return 0;
}

/* The tunnel is up: what the proxy sent after its answer is IMAP, handed out by recv
 * (httpconnect keeps it, so pending must agree); sends go straight through. */
static void fz_use_tunnel(imapwire_layer *l)
{
    const imapwire_transport_type *t = fz_type;
    char buf[64], peer[64];
    size_t got, sent;
    int round, sock = -1;

    for (round = 0; round < 8; round++) {
        size_t pending = t->pending ? t->pending(l) : 0;
        int rc = t->recv(l, buf, sizeof buf, &got);
        if (rc != IMAPWIRE_OK)
            break;
        if (got > sizeof buf || (pending > 0 && got == 0)) {
            fprintf(stderr, "fuzz proxy: recv returned %zu bytes with %zu pending\n", got,
                    pending);
            abort();
        }
        if (got == 0)
            break;
    }
    t->send(l, "A0001 CAPABILITY\r\n", 18, &sent);
    if (t->query != NULL) {
        t->query(l, IMAPWIRE_QUERY_SOCKET, &sock);
        t->query(l, IMAPWIRE_QUERY_PEER, peer);
        if (t->query(l, 99, buf) != IMAPWIRE_PASS)
            abort();          /* unknown codes MUST pass */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[4] = { 1, 3, 16, 8192 };
    uint8_t h[FZ_HEADER_LEN] = { 0 };
    size_t used = size < FZ_HEADER_LEN ? size : FZ_HEADER_LEN;
    imapwire_endpoint ep;
    imapwire_layer layer;
    int rc, created, done = 0, round, i;

    memcpy(h, data, used);
    memset(&fz, 0, sizeof fz);
    fz.data = data + used;
    fz.len = size - used;
    fz.rng = 0x2545f491u ^ (uint32_t)(h[1] & 0x3f) * 2654435761u;
    if (fz.rng == 0)
        fz.rng = 1;
    fz.max_piece = pieces[h[1] >> 6];
    fz.again_mask = (unsigned[]){ 0, 1, 3, 15 }[h[2] & 3];
    fz.agains_left = 64;
    fz.eintr = (h[2] >> 2) & 1;
    fz.short_sends = (h[2] >> 3) & 1;
    fz.socket_fails = (h[2] >> 4) & 1;
    fz.reset_at_end = (h[0] >> 4) & 1;
    fz.connect_mode = h[0] >> 6;
    fz.password = fz_passwords[h[0] & 3];
    fz.password_in_input = fz.password != NULL &&
                           memmem(data, size, fz.password, strlen(fz.password)) != NULL;

    memset(&ep, 0, sizeof ep);
    ep.host = fz_hosts[(h[0] >> 2) & 3];
    ep.port = 143;
    ep.timeout_ms = 1000;
    ep.local_address = (h[0] & 0x20) ? "127.0.0.1" : NULL;

    memset(&layer, 0, sizeof layer);
    layer.type = fz_type;
    layer.endpoint = &ep;
    layer.host = &fz_host;
    layer.ctx = calloc(1, fz_type->ctx_size ? fz_type->ctx_size : 1);
    if (layer.ctx == NULL)
        return 0;

    rc = fz_type->create(&layer, fz_args[h[0] & 3]);
    created = rc == 0;
    /* Each round consumes input, an EAGAIN of a bounded supply, or ends the handshake;
     * the bound only keeps a plugin that spins from hanging the fuzzer. */
    for (round = 0; rc == 0 && !done && round < 4096; round++) {
        imapwire_pollset ps;
        memset(&ps, 0, sizeof ps);
        fz_type->pollset(&layer, IMAPWIRE_WANT_READ, &ps);
        rc = fz_type->connect(&layer, &done);
    }
    if (rc == 0 && !done) {
        fprintf(stderr, "fuzz proxy: handshake neither done nor failed after %d rounds\n",
                round);
        abort();
    }
    /* "wiped from memory once sent": whatever the outcome, the handshake is over */
    /* FZ_VERBOSE=1: how a seed ends, to check it reaches the part it was made for */
    if (getenv("FZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz proxy: %s: create %s, handshake rc %d done %d after %d rounds\n",
                fz_type->name, created ? "ok" : "failed", rc, done, round);
    if (created && (rc != 0 || done))
        fz_check_secret("the layer after the handshake", layer.ctx, fz_type->ctx_size);
    if (rc == 0 && done)
        fz_use_tunnel(&layer);
    fz_type->destroy(&layer);
    fz_check_secret("the layer after destroy", layer.ctx, fz_type->ctx_size);
    for (i = 0; i < FZ_MAX_FDS; i++)
        if (fz.open[i]) {
            fprintf(stderr, "fuzz proxy: descriptor or hop %d left open after destroy\n",
                    FZ_FD_BASE + i);
            abort();
        }
    free(layer.ctx);
    return 0;
}
