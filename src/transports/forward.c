/* forward.c: library-managed port-forwards (like ssh -L on 127.0.0.1): a listener whose
 * every connection from the caller's uid is bridged to its own SSH channel by the loop
 * thread; a connect's private forward bridges one end of a socket pair instead. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../core/runtime/loop.h"
#include "forward.h"
#include "../security/creds.h"
#include "../security/peer_uid.h"
#include "../security/ssh_policy.h"
#include "ssh.h"

#define IW_BRIDGE_BUF 16384
#define IW_BRIDGE_LINGER_MS 2000       /* after one side ends, the other gets this long */

struct iw_forward {
    HFORWARD          handle;
    iw_creds         *creds;       /* the tunnel credentials, for the forward's life */
    imapwire_endpoint ep;          /* the far end, as the SSH server will reach it */
    char             *remote_host, *local_address, *dns_servers;
    int               listen_fd;
    int               client_fd;   /* private forward: our end of the pair, until taken */
    unsigned          port;
    void             *session;     /* the held SSH session, shared by every bridge */
    int               error;       /* atomic: why a private forward's bridge ended early */
    int               refs;        /* atomic: the owner (handle or connect) holds one, the
                                      listener and each bridge one: the last frees */
    iw_task           listener;    /* lives in this memory: released by the loop only */
};

static void iw_forward_unref(struct iw_forward *fw);

enum { BR_CONNECTING, BR_PUMP };

typedef struct iw_bridge {
    iw_task          task;
    struct iw_forward *fw;
    int              fd;
    int              state;
    imapwire_layer  *layer;
    int64_t          deadline_ms;  /* connect, or linger once one side has ended */
    int              client_eof, chan_eof, eof_sent;
    size_t           up_len, down_len;
    /* IW_BRIDGE_BUF each while bytes move, NULL once drained: an idle bridge holds none
     * (it held 32 KB for its whole life) */
    char            *up;                    /* client to channel */
    char            *down;                  /* channel to client */
} iw_bridge;

/* ---- bridges ---- */

static void iw_bridge_release(iw_task *t)
{
    iw_bridge *b = (iw_bridge *)t;
    if (b->layer != NULL)
        iw_layer_free_chain(b->layer);
    if (b->fd >= 0)
        close(b->fd);
    free(b->up);
    free(b->down);
    /* its forward's creds, endpoint and session were what its layer used */
    if (b->fw != NULL)
        iw_forward_unref(b->fw);
    free(b);
}

static void iw_bridge_pollset(iw_task *t, imapwire_pollset *ps)
{
    iw_bridge *b = (iw_bridge *)t;
    unsigned cw = 0, lw = IMAPWIRE_WANT_READ;
    if (b->state == BR_PUMP) {
        /* no room for the channel's data: do not ask to be woken for it */
        if (b->chan_eof || b->down_len == IW_BRIDGE_BUF)
            lw = 0;
        if (!b->client_eof && b->up_len < IW_BRIDGE_BUF)
            cw |= IMAPWIRE_WANT_READ;
        if (b->down_len > 0)
            cw |= IMAPWIRE_WANT_WRITE;
        if (cw)
            imapwire_pollset_add(ps, b->fd, cw);
        if (b->up_len > 0)
            lw |= IMAPWIRE_WANT_WRITE;
    }
    iw_layer_pollset(b->layer, lw, ps);
    if (b->deadline_ms != 0)
        imapwire_pollset_wakeup(ps, b->deadline_ms);
}

/* Moves what it can both ways without blocking (both buffers present); nonzero when
 * the bridge is done. */
static int iw_bridge_move(iw_bridge *b)
{
    size_t n;
    ssize_t k;
    int rc, rounds;

    for (rounds = 0; rounds < 64; rounds++) {
        int moved = 0;
        if (!b->client_eof && b->up_len < IW_BRIDGE_BUF) {
            k = recv(b->fd, b->up + b->up_len, IW_BRIDGE_BUF - b->up_len, 0);
            if (k > 0) {
                b->up_len += (size_t)k;
                moved = 1;
            } else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                b->client_eof = 1;
            }
        }
        if (b->up_len > 0) {
            rc = iw_layer_send(b->layer, b->up, b->up_len, &n);
            if (rc == 0 && n > 0) {
                memmove(b->up, b->up + n, b->up_len - n);
                b->up_len -= n;
                moved = 1;
            } else if (rc != IMAPWIRE_AGAIN && rc != 0) {
                return 1;
            }
        }
        if (!b->chan_eof && b->down_len < IW_BRIDGE_BUF) {
            rc = iw_layer_recv(b->layer, b->down + b->down_len, IW_BRIDGE_BUF - b->down_len, &n);
            if (rc == 0 && n > 0) {
                b->down_len += n;
                moved = 1;
            } else if (rc != IMAPWIRE_AGAIN) {
                b->chan_eof = 1;
            }
        }
        if (b->down_len > 0) {
            k = send(b->fd, b->down, b->down_len, MSG_NOSIGNAL);
            if (k > 0) {
                memmove(b->down, b->down + k, b->down_len - (size_t)k);
                b->down_len -= (size_t)k;
                moved = 1;
            } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return 1;
            }
        }
        if (!moved)
            break;
    }
    if (b->client_eof && b->up_len == 0 && !b->eof_sent) {
        int done;
        iw_layer_shutdown(b->layer, &done);
        b->eof_sent = 1;
        b->deadline_ms = iw_now_ms() + IW_BRIDGE_LINGER_MS;
    }
    if (b->chan_eof && b->down_len == 0)
        return 1;
    if ((b->client_eof || b->chan_eof) && iw_now_ms() >= b->deadline_ms)
        return 1;
    if (b->chan_eof && !b->client_eof && b->deadline_ms == 0)
        b->deadline_ms = iw_now_ms() + IW_BRIDGE_LINGER_MS;
    return 0;
}

/* Drained buffers go: between exchanges an idle bridge keeps no pump memory. */
static void iw_bridge_rest(iw_bridge *b)
{
    if (b->up_len == 0) {
        free(b->up);
        b->up = NULL;
    }
    if (b->down_len == 0) {
        free(b->down);
        b->down = NULL;
    }
}

/* Moves what it can both ways without blocking; nonzero when the bridge is done. */
static int iw_bridge_pump(iw_bridge *b)
{
    int done;

    if ((b->up == NULL && (b->up = malloc(IW_BRIDGE_BUF)) == NULL) ||
        (b->down == NULL && (b->down = malloc(IW_BRIDGE_BUF)) == NULL))
        return 1;                  /* out of memory: the connection ends, as on an error */
    done = iw_bridge_move(b);
    iw_bridge_rest(b);
    return done;
}

static int iw_bridge_step(iw_task *t)
{
    iw_bridge *b = (iw_bridge *)t;
    int rc, done = 0;
    if (b->state == BR_CONNECTING) {
        rc = iw_layer_connect(b->layer, &done);
        if (rc == 0 && !done && iw_now_ms() >= b->deadline_ms)
            rc = ST_ERROR_OPERATION_TIMEOUT;
        if (rc != 0) {
            /* before the pair closes: its other end reports this, not a bare close */
            __atomic_store_n(&b->fw->error, rc, __ATOMIC_RELEASE);
            return 1;
        }
        if (!done)
            return 0;
        b->state = BR_PUMP;
        b->deadline_ms = 0;
    }
    return iw_bridge_pump(b);
}

/* Bridges fd (now owned by the bridge, closed on any failure) to a new SSH channel. */
static int iw_bridge_start(struct iw_forward *fw, int fd)
{
    iw_bridge *b = calloc(1, sizeof *b);
    iw_ssh_params p;
    int rc;
    if (b == NULL) {
        close(fd);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    b->fd = fd;
    /* A forward has no trace callback: its layers get no sink. */
    rc = iw_ssh_params_from(fw->creds, NULL, NULL, &p);
    if (rc == 0)
        rc = iw_layer_new_params("ssh", NULL, &p, &fw->ep, NULL, NULL, NULL, &b->layer);
    if (rc != 0) {
        iw_bridge_release(&b->task);
        return rc;
    }
    b->fw = fw;
    __atomic_add_fetch(&fw->refs, 1, __ATOMIC_ACQ_REL);
    b->state = BR_CONNECTING;
    /* The SSH layer bounds each phase by nTimeout; this only backstops the whole (a
     * session found dead is set up again: TCP, handshake, auth, channel). */
    b->deadline_ms = iw_now_ms() + 4 * (int64_t)fw->ep.timeout_ms;
    b->task.pollset = iw_bridge_pollset;
    b->task.step = iw_bridge_step;
    b->task.release = iw_bridge_release;
    b->task.owner = fw;
    rc = iw_loop_add(&b->task);
    if (rc != 0)
        iw_bridge_release(&b->task);
    return rc;
}

/* ---- the listener ---- */

static void iw_listener_pollset(iw_task *t, imapwire_pollset *ps)
{
    struct iw_forward *fw = t->owner;
    imapwire_pollset_add(ps, fw->listen_fd, IMAPWIRE_WANT_READ);
}

/* Only the caller's own user may ride its SSH session: the peer socket's owner is asked
 * of the kernel before a single byte is read or forwarded. */
static int iw_listener_admits(int fd)
{
    uid_t uid = (uid_t)-1;
    return iw_peer_uid(fd, &uid) == 0 && uid == geteuid();
}

static int iw_listener_step(iw_task *t)
{
    struct iw_forward *fw = t->owner;
    int i, one = 1;
    /* Bounded per round so one busy listener cannot starve the bridges. */
    for (i = 0; i < 64; i++) {
        int fd = accept4(fw->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        if (!iw_listener_admits(fd)) {
            close(fd);
            continue;
        }
        /* IMAP is request/response: Nagle plus delayed ACKs would add 40 ms per turn. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        iw_bridge_start(fw, fd);
    }
    return 0;
}

static void iw_listener_release(iw_task *t)
{
    /* The listener lives inside the forward: the forward goes with the last reference,
     * which may be this one (a close from inside a callback returned long ago). */
    iw_forward_unref(t->owner);
}

/* ---- open and close ---- */

static void iw_forward_free(struct iw_forward *fw)
{
    if (fw->listen_fd >= 0)
        close(fw->listen_fd);
    if (fw->client_fd >= 0)
        close(fw->client_fd);
    iw_ssh_unhold(fw->session);
    iw_creds_free(fw->creds);
    free(fw->remote_host);
    free(fw->local_address);
    free(fw->dns_servers);
    free(fw);
}

static void iw_forward_unref(struct iw_forward *fw)
{
    if (__atomic_sub_fetch(&fw->refs, 1, __ATOMIC_ACQ_REL) == 0)
        iw_forward_free(fw);
}

/* The forward's SSH side, authenticated: far is where its channels go, and the local
 * address and DNS servers its SSH hop uses. */
static int iw_forward_new(const SECURITYCREDENTIALS *creds, const imapwire_endpoint *far,
                          int hold, struct iw_forward **out)
{
    struct iw_forward *fw;
    iw_ssh_params p;
    int rc;

    *out = NULL;
    if (creds == NULL || far->host == NULL || *far->host == '\0' || strlen(far->host) > 255 ||
        far->port == 0 || far->port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    fw = calloc(1, sizeof *fw);
    if (fw == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    fw->listen_fd = -1;
    fw->client_fd = -1;
    fw->refs = 1;                  /* the owner's */
    fw->remote_host = iw_strdup(far->host);
    fw->local_address = iw_strdup(far->local_address);
    fw->dns_servers = iw_strdup(far->dns_servers);
    if (fw->remote_host == NULL ||
        (far->local_address != NULL && fw->local_address == NULL) ||
        (far->dns_servers != NULL && fw->dns_servers == NULL)) {
        iw_forward_free(fw);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    rc = iw_creds_copy(creds, &fw->creds);
    if (rc == 0 && (fw->creds == NULL || fw->creds->tunnel_host == NULL ||
                    !iw_ssh_route_valid(fw->creds)))
        rc = ST_ERROR_INVALID_PARAMETER;
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
    fw->ep.host = fw->remote_host;
    fw->ep.port = far->port;
    fw->ep.timeout_ms = far->timeout_ms;
    fw->ep.local_address = fw->local_address;
    fw->ep.dns_servers = fw->dns_servers;

    /* Authenticate now: a wrong host key or password is the caller's error today, not a
     * mystery on the first forwarded connection. */
    rc = iw_ssh_params_from(fw->creds, NULL, NULL, &p);
    if (rc == 0 && hold)
        rc = iw_ssh_hold(&p, NULL, NULL, &fw->ep, &fw->session);
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
    *out = fw;
    return 0;
}

int iw_forward_open(const SECURITYCREDENTIALS *creds, const char *remote_host,
                    unsigned remote_port, unsigned local_port, unsigned timeout_ms,
                    struct iw_forward **out)
{
    struct iw_forward *fw;
    imapwire_endpoint far;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1, rc;

    *out = NULL;
    if (local_port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    memset(&far, 0, sizeof far);
    far.host = remote_host;
    far.port = remote_port;
    far.timeout_ms = timeout_ms;
    rc = iw_forward_new(creds, &far, 1, &fw);
    if (rc != 0)
        return rc;
    fw->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fw->listen_fd < 0) {
        iw_forward_free(fw);
        return ST_ERROR_SYSTEM_LIMIT;
    }
    setsockopt(fw->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)local_port);
    if (bind(fw->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fw->listen_fd, 128) != 0 ||
        getsockname(fw->listen_fd, (struct sockaddr *)&a, &len) != 0) {
        rc = errno == EADDRINUSE || errno == EACCES ? ST_ERROR_INVALID_PARAMETER : ST_ERROR_NETWORK_ERROR;
        iw_forward_free(fw);
        return rc;
    }
    fw->port = ntohs(a.sin_port);
    fw->listener.pollset = iw_listener_pollset;
    fw->listener.step = iw_listener_step;
    fw->listener.release = iw_listener_release;
    fw->listener.owner = fw;
    fw->refs++;                    /* the listener's: not on the loop yet, no race */
    rc = iw_loop_add(&fw->listener);
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
    *out = fw;
    return 0;
}

/* ---- a connect's private forward: a socket pair, no listener ---- */

struct iw_pair_ctx {
    int        fd;
    const int *error;              /* the forward's: what ended its bridge, if anything */
};

/* The pair ended: the bridge's own reason when it gave one (SSH host key, auth, ...). */
static int iw_pair_closed(const struct iw_pair_ctx *p, int fallback)
{
    int e = p->error ? __atomic_load_n(p->error, __ATOMIC_ACQUIRE) : 0;
    return e != 0 ? e : fallback;
}

static int iw_pair_create(imapwire_layer *l, const char *args)
{
    struct iw_pair_ctx *p = l->ctx;
    IW_UNUSED(args);
    p->fd = -1;
    return 0;
}

static void iw_pair_destroy(imapwire_layer *l)
{
    struct iw_pair_ctx *p = l->ctx;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static int iw_pair_connect(imapwire_layer *l, int *done)
{
    struct iw_pair_ctx *p = l->ctx;
    *done = p->fd >= 0;
    return p->fd >= 0 ? 0 : ST_ERROR_CONNECTION_CLOSED;
}

static int iw_pair_error(int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK)
        return IMAPWIRE_AGAIN;
    return e == EPIPE || e == ECONNRESET ? ST_ERROR_CONNECTION_CLOSED : ST_ERROR_NETWORK_ERROR;
}

static int iw_pair_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct iw_pair_ctx *p = l->ctx;
    ssize_t n;
    do
        n = send(p->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    *sent = n > 0 ? (size_t)n : 0;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
        return iw_pair_closed(p, ST_ERROR_CONNECTION_CLOSED);
    return n >= 0 ? 0 : iw_pair_error(errno);
}

static int iw_pair_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct iw_pair_ctx *p = l->ctx;
    ssize_t n;
    do
        n = recv(p->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    *got = n > 0 ? (size_t)n : 0;
    if (n == 0)
        return iw_pair_closed(p, 0);
    if (n < 0 && errno == ECONNRESET)
        return iw_pair_closed(p, ST_ERROR_CONNECTION_CLOSED);
    return n >= 0 ? 0 : iw_pair_error(errno);
}

static void iw_pair_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct iw_pair_ctx *p = l->ctx;
    imapwire_pollset_add(ps, p->fd, want);
}

static int iw_pair_shutdown(imapwire_layer *l, int *done)
{
    struct iw_pair_ctx *p = l->ctx;
    *done = 1;
    shutdown(p->fd, SHUT_WR);
    return 0;
}

static int iw_pair_query(imapwire_layer *l, int what, void *out)
{
    struct iw_pair_ctx *p = l->ctx;
    if (what == IMAPWIRE_QUERY_SOCKET) {
        *(int *)out = p->fd;
        return 0;
    }
    return IMAPWIRE_PASS;
}

/* Not in the registry: a transport string can never name it or hand it a descriptor. */
static const imapwire_transport_type iw_pair_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "forward-pair",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct iw_pair_ctx),
    .create = iw_pair_create,
    .destroy = iw_pair_destroy,
    .connect = iw_pair_connect,
    .shutdown = iw_pair_shutdown,
    .send = iw_pair_send,
    .recv = iw_pair_recv,
    .pollset = iw_pair_pollset,
    .query = iw_pair_query,
};

int iw_forward_open_private(const SECURITYCREDENTIALS *creds, const imapwire_endpoint *far,
                            int hold, struct iw_forward **out)
{
    struct iw_forward *fw;
    int sv[2], rc;

    *out = NULL;
    rc = iw_forward_new(creds, far, hold, &fw);
    if (rc != 0)
        return rc;
    /* The library is this forward's only client: a socket pair has no address anyone
     * else on the machine could connect to. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        iw_forward_free(fw);
        return ST_ERROR_SYSTEM_LIMIT;
    }
    fw->client_fd = sv[1];
    /* A bridge that failed to start was never on the loop: freeing is enough. */
    rc = iw_bridge_start(fw, sv[0]);
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
    *out = fw;
    return 0;
}

int iw_forward_client_layer(struct iw_forward *fw, const imapwire_endpoint *ep,
                            const iw_layer_sink *sink, void *core,
                            imapwire_layer **out)
{
    int rc;
    *out = NULL;
    if (fw->client_fd < 0)
        return ST_ERROR_INVALID_PARAMETER;
    rc = iw_layer_new_internal(&iw_pair_type, ep, sink, core, NULL, out);
    if (rc == 0) {
        struct iw_pair_ctx *p = (*out)->ctx;
        p->fd = fw->client_fd;
        p->error = &fw->error;     /* the client frees its chain before its forward */
        fw->client_fd = -1;
    }
    return rc;
}

unsigned iw_forward_port(const struct iw_forward *fw)
{
    return fw->port;
}

static void iw_forward_cancel(void *arg)
{
    iw_loop_release_owned(arg);
}

void iw_forward_close(struct iw_forward *fw)
{
    int fd;
    if (fw == NULL)
        return;
    /* The loop releases the listener and every bridge: at once between turns, or, from
     * inside a callback on the loop thread, where its walk no longer holds them. Either
     * way the loop frees them, and the forward with the last of their references. */
    iw_loop_call(iw_forward_cancel, fw);
    /* The port refuses from now on, even while a release is still to come: the listener
     * is closing and never polled again. */
    fd = fw->listen_fd;
    fw->listen_fd = -1;
    if (fd >= 0)
        close(fd);
    iw_forward_unref(fw);
}

/* ---- the public calls ---- */

HFORWARD ImapCreatePortForward(LPSECURITYCREDENTIALS lpCredentials, LPCTSTR lpszRemoteHost,
                               UINT nRemotePort, UINT nLocalPort, UINT *lpnBoundPort)
{
    struct iw_forward *fw;
    int rc;

    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return INVALID_FORWARD;
    }
    rc = iw_forward_open(lpCredentials, lpszRemoteHost, nRemotePort, nLocalPort,
                         IMAP_TIMEOUT_DEFAULT * 1000u, &fw);
    if (rc == 0) {
        fw->handle = iw_handle_add(IW_KIND_FORWARD, fw);
        if (fw->handle == 0) {
            iw_forward_close(fw);
            rc = ST_ERROR_OUT_OF_MEMORY;
        }
    }
    if (rc != 0) {
        iw_set_error((DWORD)rc);
        return INVALID_FORWARD;
    }
    if (lpnBoundPort != NULL)
        *lpnBoundPort = fw->port;
    return fw->handle;
}

BOOL ImapClosePortForward(HFORWARD hForward)
{
    struct iw_forward *fw;
    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return FALSE;
    }
    fw = iw_handle_remove(hForward, IW_KIND_FORWARD);
    if (fw == NULL) {
        iw_set_error(ST_ERROR_INVALID_HANDLE);
        return FALSE;
    }
    iw_forward_close(fw);
    return TRUE;
}
