/* forward.c: library-managed port-forwards (like ssh -L on 127.0.0.1): a listener whose
 * every accepted connection is bridged to its own SSH channel, all run by the loop thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "client.h"
#include "loop.h"
#include "forward.h"
#include "../security/creds.h"
#include "../security/ssh_policy.h"

#define IW_BRIDGE_BUF 16384
#define IW_BRIDGE_LINGER_MS 2000       /* after one side ends, the other gets this long */
#define IW_FORWARD_CONNECT_MS 20000    /* a channel that cannot open within this is dropped */

struct iw_forward {
    HFORWARD          handle;
    iw_client        *core;        /* owns the credentials; the layers' core */
    imapwire_endpoint ep;          /* the far end, as the SSH server will reach it */
    char             *remote_host;
    int               listen_fd;
    unsigned          port;
    void             *session;     /* the held SSH session, shared by every bridge */
    iw_task           listener;
};

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
    char             up[IW_BRIDGE_BUF];     /* client to channel */
    char             down[IW_BRIDGE_BUF];   /* channel to client */
} iw_bridge;

/* ---- bridges ---- */

static void iw_bridge_release(iw_task *t)
{
    iw_bridge *b = (iw_bridge *)t;
    if (b->layer != NULL)
        iw_layer_free_chain(b->layer);
    if (b->fd >= 0)
        close(b->fd);
    free(b);
}

static void iw_bridge_pollset(iw_task *t, imapwire_pollset *ps)
{
    iw_bridge *b = (iw_bridge *)t;
    unsigned cw = 0, lw = IMAPWIRE_WANT_READ;
    if (b->state == BR_PUMP) {
        /* no room for the channel's data: do not ask to be woken for it */
        if (b->chan_eof || b->down_len == sizeof b->down)
            lw = 0;
        if (!b->client_eof && b->up_len < sizeof b->up)
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

/* Moves what it can both ways without blocking; nonzero when the bridge is done. */
static int iw_bridge_pump(iw_bridge *b)
{
    size_t n;
    ssize_t k;
    int rc, rounds;

    for (rounds = 0; rounds < 64; rounds++) {
        int moved = 0;
        if (!b->client_eof && b->up_len < sizeof b->up) {
            k = recv(b->fd, b->up + b->up_len, sizeof b->up - b->up_len, 0);
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
        if (!b->chan_eof && b->down_len < sizeof b->down) {
            rc = iw_layer_recv(b->layer, b->down + b->down_len, sizeof b->down - b->down_len, &n);
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

static int iw_bridge_step(iw_task *t)
{
    iw_bridge *b = (iw_bridge *)t;
    int rc, done = 0;
    if (b->state == BR_CONNECTING) {
        rc = iw_layer_connect(b->layer, &done);
        if (rc != 0 || (!done && iw_now_ms() >= b->deadline_ms))
            return 1;
        if (!done)
            return 0;
        b->state = BR_PUMP;
        b->deadline_ms = 0;
    }
    return iw_bridge_pump(b);
}

/* ---- the listener ---- */

static void iw_listener_pollset(iw_task *t, imapwire_pollset *ps)
{
    struct iw_forward *fw = t->owner;
    imapwire_pollset_add(ps, fw->listen_fd, IMAPWIRE_WANT_READ);
}

static int iw_listener_step(iw_task *t)
{
    struct iw_forward *fw = t->owner;
    int i, one = 1;
    /* Bounded per round so one busy listener cannot starve the bridges. */
    for (i = 0; i < 64; i++) {
        iw_bridge *b;
        int fd = accept4(fw->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        b = calloc(1, sizeof *b);
        if (b == NULL || iw_layer_new("ssh", NULL, &fw->ep, fw->core, NULL, &b->layer) != 0) {
            free(b);
            close(fd);
            continue;
        }
        /* IMAP is request/response: Nagle plus delayed ACKs would add 40 ms per turn. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        b->fd = fd;
        b->fw = fw;
        b->state = BR_CONNECTING;
        b->deadline_ms = iw_now_ms() + IW_FORWARD_CONNECT_MS;
        b->task.pollset = iw_bridge_pollset;
        b->task.step = iw_bridge_step;
        b->task.release = iw_bridge_release;
        b->task.owner = fw;
        if (iw_loop_add(&b->task) != 0)
            iw_bridge_release(&b->task);
    }
    return 0;
}

static void iw_listener_release(iw_task *t)
{
    /* The forward owns the listener's memory; its close frees it. */
    (void)t;
}

/* ---- open and close ---- */

static void iw_forward_free(struct iw_forward *fw)
{
    if (fw->listen_fd >= 0)
        close(fw->listen_fd);
    iw_ssh_unhold(fw->session);
    if (fw->core != NULL)
        iw_client_free(fw->core);
    free(fw->remote_host);
    free(fw);
}

int iw_forward_open(const SECURITYCREDENTIALS *creds, const char *remote_host,
                    unsigned remote_port, unsigned local_port, unsigned timeout_ms,
                    struct iw_forward **out)
{
    struct iw_forward *fw;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1, rc;

    *out = NULL;
    if (creds == NULL || remote_host == NULL || *remote_host == '\0' || strlen(remote_host) > 255 ||
        remote_port == 0 || remote_port > 65535 || local_port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    fw = calloc(1, sizeof *fw);
    if (fw == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    fw->listen_fd = -1;
    fw->core = iw_client_new();
    fw->remote_host = iw_strdup(remote_host);
    if (fw->core == NULL || fw->remote_host == NULL) {
        iw_forward_free(fw);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    rc = iw_creds_copy(creds, &fw->core->creds);
    if (rc == 0 && (fw->core->creds == NULL || fw->core->creds->tunnel_host == NULL ||
                    fw->core->creds->tunnel_user == NULL))
        rc = ST_ERROR_INVALID_PARAMETER;
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
    fw->core->options = IMAP_OPTION_TUNNEL;
    fw->core->timeout_ms = timeout_ms;
    fw->ep.host = fw->remote_host;
    fw->ep.port = remote_port;
    fw->ep.timeout_ms = timeout_ms;

    /* Authenticate now: a wrong host key or password is the caller's error today, not a
     * mystery on the first forwarded connection. */
    rc = iw_ssh_hold(fw->core, &fw->ep, iw_now_ms() + timeout_ms, &fw->session);
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
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
    rc = iw_loop_add(&fw->listener);
    if (rc != 0) {
        iw_forward_free(fw);
        return rc;
    }
    *out = fw;
    return 0;
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
    if (fw == NULL)
        return;
    /* The loop thread drops the listener and every bridge; after that nothing refers to
     * the forward and the port refuses. */
    iw_loop_call(iw_forward_cancel, fw);
    iw_forward_free(fw);
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
