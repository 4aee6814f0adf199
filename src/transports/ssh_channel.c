/* ssh_channel.c: the "ssh" transport layer: one direct-tcpip channel per connection over
 * a shared session, each set-up phase with its own deadline; the transport's type. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../core/runtime/loop.h"
#include "ssh.h"
#include "ssh_internal.h"

/* ---- the layer ---- */

/* Starts the phase's own deadline when the connection enters a new one; the timeout
 * error once the current one has run out. */
static int ssh_phase_check(imapwire_layer *l, int phase)
{
    struct ssh_ctx *c = l->ctx;
    int64_t now = iw_now_ms();
    if (phase != c->phase) {
        int64_t t = l->endpoint->timeout_ms;
        /* ConnectTimeout from the SSH configuration bounds reaching the server */
        if (phase == P_TCP && c->connect_timeout_ms != 0 && c->connect_timeout_ms < t)
            t = c->connect_timeout_ms;
        c->phase = phase;
        c->phase_deadline_ms = now + t;
        if (c->phase_started != NULL)
            c->phase_started(l->core);
        return 0;
    }
    return now >= c->phase_deadline_ms ? (int)ST_ERROR_OPERATION_TIMEOUT : 0;
}

/* The session for the layer's parameters: a shared one, or a new one. */
static int ssh_layer_session(imapwire_layer *l, ssh_session **out)
{
    const iw_ssh_params *p = l->params;
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    int rc, n;
    /* the last hop is this layer's SSH server; the ones before it are its route */
    rc = iw_ssh_hops_parse(p->host, p->user, p->port, hops, IW_SSH_MAX_HOPS, &n);
    if (rc != 0)
        return rc;
    return ssh_session_get(p, &hops[n - 1], l->endpoint, out);
}

static int ssh_create(imapwire_layer *l, const char *args)
{
    struct ssh_ctx *c = l->ctx;
    const iw_ssh_params *p = l->params;
    int rc;
    (void)args;
    c->wake_fd = -1;
    /* everything comes from the creator; without it there is no server to trust */
    if (p == NULL || p->struct_size < sizeof *p)
        return ST_ERROR_INVALID_PARAMETER;
    rc = ssh_layer_session(l, &c->sess);
    if (rc != 0)
        return rc;
    rc = ssh_wake_open(c);
    if (rc != 0) {
        ssh_session_release(c->sess);
        c->sess = NULL;
        return rc;
    }
    c->phase = -1;
    c->phase_started = p->phase_started;
    c->connect_timeout_ms = p->connect_timeout_ms;
    c->state = L_SESSION;
    return 0;
}

static void ssh_destroy(imapwire_layer *l)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    ssh_wake_close(c);
    if (s->opener == c) {
        /* gone with its open unanswered: the next opener finishes it, and the channels
         * waiting for their turn hear that it is free */
        s->opener = NULL;
        s->open_orphaned = 1;
        s->moved = 1;
    }
    ssh_wake_up_remove(c);
    if (c->channel != NULL) {
        /* A close that would wait longer is finished by the session's next driver or by
         * its end; the loop thread does not wait for the peer at all. */
        if (s->state == S_READY) {
            int i, tries = iw_loop_is_current() || s->unanswered ? 0 : SSH_CLOSE_TRIES;
            for (i = 0; libssh2_channel_free(c->channel) == LIBSSH2_ERROR_EAGAIN; i++) {
                if (i >= tries) {
                    if (tries > 0)
                        s->unanswered = 1;
                    ssh_close_later(s, c->channel);
                    break;
                }
                ssh_wait(s, SSH_CLOSE_WAIT_MS);
            }
        }
        c->channel = NULL;
    }
    ssh_unlock(s, c);
    ssh_session_release(s);
    c->sess = NULL;
}

/* Under s->lock: 1 when c may open its channel now. The session's one open in flight
 * (ssh_session.opener) is c's, or nobody's and c takes it, finishing first an open
 * whose connection went away (its channel is closed unused); 0 while it is another's
 * or the orphan's answer has not come. */
static int ssh_open_turn(ssh_session *s, struct ssh_ctx *c, const imapwire_endpoint *ep)
{
    LIBSSH2_CHANNEL *orphan;
    if (s->opener != NULL && s->opener != c)
        return 0;
    s->opener = c;
    if (s->open_orphaned) {
        /* libssh2 continues the open in flight whatever the arguments say */
        orphan = libssh2_channel_direct_tcpip_ex(s->s, ep->host, (int)ep->port, "127.0.0.1", 0);
        if (orphan == NULL && libssh2_session_last_errno(s->s) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        s->open_orphaned = 0;
        __atomic_store_n(&s->open_since_ms, 0, __ATOMIC_RELEASE);
        if (orphan != NULL && libssh2_channel_free(orphan) == LIBSSH2_ERROR_EAGAIN)
            ssh_close_later(s, orphan);
    }
    if (__atomic_load_n(&s->open_since_ms, __ATOMIC_ACQUIRE) == 0)
        __atomic_store_n(&s->open_since_ms, iw_now_ms(), __ATOMIC_RELEASE);
    return 1;
}

/* ssh_channel_open's answer when c should leave its session for another (below). */
#define SSH_REJOIN (-2)

/* Under s->lock: c waits for a turn behind an open answered so late that it may take
 * minutes (sshd connecting to a host that drops packets): the session is handed to no
 * new connect, and c moves to another (SSH_REJOIN). */
static int ssh_open_wait(imapwire_layer *l, ssh_session *s, struct ssh_ctx *c)
{
    if (!ssh_session_stuck(s, iw_now_ms()))
        return ssh_phase_check(l, P_CHANNEL);
    if (s->opener == c)
        s->opener = NULL;          /* its turn went to the orphan's answer */
    ssh_session_retire(s);
    return SSH_REJOIN;
}

/* After SSH_REJOIN, with no lock held: the layer moves to the session that replaced its
 * own (same id, made by a later connect, which brought the secrets this one no longer
 * has) and starts over there; 1 while there is none yet (it keeps waiting here). */
static int ssh_rejoin(imapwire_layer *l)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *old = c->sess, *n = ssh_session_successor(old);
    if (n == NULL)
        return 1;
    l->host->trace(l, "ssh: a channel open on this SSH connection has waited %d ms or more: "
                   "going on over another one", SSH_OPEN_STUCK_MS);
    c->sess = n;
    c->state = L_SESSION;
    c->seen_reads = 0;
    ssh_session_release(old);
    return 0;
}

/* L_CHANNEL: one direct-tcpip channel to the endpoint, when the session's turn is ours.
 * The SSH server resolves and connects to the IMAP host: no local DNS for it. */
static int ssh_channel_open(imapwire_layer *l, int *done)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    const imapwire_endpoint *ep = l->endpoint;
    int e, rc;
    char *msg = NULL;

    if (!ssh_open_turn(s, c, ep))
        return ssh_open_wait(l, s, c);
    c->channel = libssh2_channel_direct_tcpip_ex(s->s, ep->host, (int)ep->port, "127.0.0.1", 0);
    if (c->channel != NULL) {
        c->state = L_UP;
        ssh_wake_up_add(s, c);
        *done = 1;
        l->host->trace(l, "ssh: channel to %s:%u open", ep->host, ep->port);
        rc = 0;
    } else {
        e = libssh2_session_last_errno(s->s);
        if (e == LIBSSH2_ERROR_EAGAIN)
            return ssh_phase_check(l, P_CHANNEL);
        /* the server's reason, for the report of the hop this channel was to reach */
        libssh2_session_last_error(s->s, &msg, NULL, 0);
        iw_strlcpy(c->said, msg != NULL ? msg : "", sizeof c->said);
        rc = (e == LIBSSH2_ERROR_CHANNEL_FAILURE || e == LIBSSH2_ERROR_CHANNEL_UNKNOWN)
                 ? (int)ST_ERROR_SSH_CHANNEL_FAILED
                 : ssh_libssh2_error(s, e, ST_ERROR_SSH_CHANNEL_FAILED);
    }
    /* answered: the next channel's turn, and the ones waiting for it hear so */
    s->opener = NULL;
    __atomic_store_n(&s->open_since_ms, 0, __ATOMIC_RELEASE);
    s->moved = 1;
    return rc;
}

static int ssh_connect_once(imapwire_layer *l, int *done);

/* One step of the connect; a layer that moved to another session is stepped there at
 * once (its new session's set-up starts with this step), once. */
static int ssh_connect(imapwire_layer *l, int *done)
{
    int rc = ssh_connect_once(l, done);
    if (rc != SSH_REJOIN)
        return rc;
    if (ssh_rejoin(l) != 0)
        return 0;                  /* no other session yet: looked for again soon */
    rc = ssh_connect_once(l, done);
    /* stuck again at once (no session answers in time): wait here for the phase */
    return rc == SSH_REJOIN ? 0 : rc;
}

static int ssh_connect_once(imapwire_layer *l, int *done)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    int rc = 0;

    *done = 0;
    pthread_mutex_lock(&s->lock);
    ssh_wake_take(c);
    if (c->state == L_SESSION) {
        int was = s->state;
        rc = ssh_session_step(s, l);
        /* the channels waiting for the session hear of its progress */
        if (s->state != was)
            s->moved = 1;
        if (rc == 1) {
            c->state = L_CHANNEL;
            rc = 0;
        } else if (rc != 0) {
            ssh_trace_failed_hop(s, l, rc);
            ssh_explain_command(s, l, rc);
        }
    }
    if (rc == 0 && c->state == L_SESSION) {
        int was = c->phase;
        rc = ssh_phase_check(l, ssh_session_phase(s));
        /* a timeout names the hop it waited for; a new phase tells the core whom it waits for */
        if (rc != 0 || c->phase != was || s->carrier_news)
            ssh_trace_failed_hop(s, l, rc);
        s->carrier_news = 0;
    }
    if (rc == 0 && c->state == L_CHANNEL) {
        rc = ssh_channel_open(l, done);
    } else if (rc == 0 && c->state == L_UP) {
        *done = 1;
    }
    c->seen_reads = s->reads;
    ssh_unlock(s, c);
    return rc;
}

/* A channel's send or receive takes the session's lock (held on success): a dead
 * session refuses, and channels closed earlier get their close sent on the way. */
static int ssh_io_begin(ssh_session *s, struct ssh_ctx *c)
{
    pthread_mutex_lock(&s->lock);
    ssh_wake_take(c);
    if (s->state == S_DEAD) {
        pthread_mutex_unlock(&s->lock);
        return ST_ERROR_CONNECTION_CLOSED;
    }
    if (s->nclosing > 0)
        ssh_closing_step(s);
    (void)ssh_tx_flush(s);         /* a hop that failed says so to the call itself */
    return 0;
}

static int ssh_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    ssize_t n;
    int rc;

    *sent = 0;
    if (c->state != L_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    if (ssh_io_begin(s, c) != 0)
        return ST_ERROR_CONNECTION_CLOSED;
    if (s->tx_len >= SSH_TX_SOFT) {
        /* the hop is behind: more would only be held; the pollset asks for its room */
        ssh_unlock(s, c);
        return IMAPWIRE_AGAIN;
    }
    s->rx_skip = s->rx_dry;
    n = libssh2_channel_write(c->channel, buf, len);
    s->rx_skip = 0;
    s->rx_after_write = n > 0 && s->rx_dry;
    /* nothing written: it may be waiting for the window, so the next try reads for real */
    if (n == 0 || n == LIBSSH2_ERROR_EAGAIN)
        s->rx_dry = 0;
    if (n >= 0) {
        *sent = (size_t)n;
        rc = n > 0 ? 0 : IMAPWIRE_AGAIN;
    } else if (n == LIBSSH2_ERROR_EAGAIN) {
        rc = IMAPWIRE_AGAIN;
    } else {
        rc = ssh_libssh2_error(s, (int)n, ST_ERROR_CONNECTION_CLOSED);
    }
    ssh_unlock(s, c);
    return rc;
}

static int ssh_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    ssize_t n;
    int rc;

    *got = 0;
    if (c->state == L_CLOSED)
        return 0;
    if (c->state != L_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    if (ssh_io_begin(s, c) != 0)
        return ST_ERROR_CONNECTION_CLOSED;
    /* right after our write the server has not answered yet, most likely: the read
     * takes what libssh2 holds and leaves the socket to the wait (which then reads) */
    s->rx_skip = s->rx_after_write;
    s->rx_after_write = 0;
    n = libssh2_channel_read(c->channel, buf, len);
    s->rx_skip = 0;
    if (n > 0) {
        *got = (size_t)n;
        rc = 0;
    } else if (n == 0 || n == LIBSSH2_ERROR_EAGAIN) {
        /* 0 is not the end: only the channel's EOF is. */
        if (libssh2_channel_eof(c->channel)) {
            c->state = L_CLOSED;
            rc = 0;
        } else {
            rc = IMAPWIRE_AGAIN;
        }
    } else {
        rc = ssh_libssh2_error(s, (int)n, ST_ERROR_CONNECTION_CLOSED);
    }
    ssh_unlock(s, c);
    return rc;
}

/* A turn that waits for another open's answer looks again when that open becomes stuck,
 * and then now and again for a session to move to. */
static void ssh_open_stuck_wakeup(ssh_session *s, imapwire_pollset *ps)
{
    int64_t since = __atomic_load_n(&s->open_since_ms, __ATOMIC_ACQUIRE), now = iw_now_ms();
    if (since == 0)
        return;
    /* stuck already: a session to move to may come at any time (no one signals it) */
    imapwire_pollset_wakeup(ps, now < since + SSH_OPEN_STUCK_MS ? since + SSH_OPEN_STUCK_MS
                                                                : now + SSH_REJOIN_LOOK_MS);
}

static void ssh_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    unsigned below = 0;
    int dir, now = 0;

    pthread_mutex_lock(&s->lock);
    /* Listed before looking: what anyone reads from here on signals our descriptor, and
     * what was read before is in the queue or the states we look at below. */
    ssh_wake_wait(s, c, want, ps);
    if (s->state == S_LOWER) {
        iw_layer_pollset(s->tcp, want, ps);
    } else if (s->state == S_DEAD) {
        now = 1;                   /* the step reports it */
    } else if (c->state == L_CHANNEL && s->opener != c) {
        /* waits for its turn to open (the opener reads its answer and signals), or takes
         * a turn that came free since its step */
        now = s->opener == NULL;
        ssh_open_stuck_wakeup(s, ps);
    } else {
        ssh_ack(s);
        dir = libssh2_session_block_directions(s->s);
        if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
            below |= IMAPWIRE_WANT_READ;
        if ((dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) || s->tx_len > 0)
            below |= IMAPWIRE_WANT_WRITE;
        iw_layer_pollset(s->tcp, below ? below : IMAPWIRE_WANT_READ, ps);
        /* Another channel's read may have queued our data or end inside libssh2, or
         * finished the session's set-up for us: the socket will not say so. */
        if (c->state == L_UP)
            now = (want & IMAPWIRE_WANT_READ) && (libssh2_poll_channel_read(c->channel, 0) ||
                                                   libssh2_channel_eof(c->channel));
        else if (c->state == L_SESSION)
            now = s->state == S_READY;
        else if (c->state == L_CHANNEL)
            /* its open's answer may have been read (and decoded) by another channel
             * since its step, when it was not listed to hear of it */
            now = s->reads != c->seen_reads;
        if (c->state == L_CHANNEL && s->open_orphaned)
            ssh_open_stuck_wakeup(s, ps);
    }
    pthread_mutex_unlock(&s->lock);
    if (now)
        imapwire_pollset_wakeup(ps, iw_now_ms());
    /* A phase that runs out must be noticed even if the socket stays silent. */
    if (c->state == L_SESSION || c->state == L_CHANNEL)
        imapwire_pollset_wakeup(ps, c->phase_deadline_ms);
}

static size_t ssh_pending(imapwire_layer *l)
{
    struct ssh_ctx *c = l->ctx;
    size_t n = 0;
    if (c->state != L_UP)
        return 0;
    pthread_mutex_lock(&c->sess->lock);
    if (c->sess->state == S_READY)
        n = libssh2_poll_channel_read(c->channel, 0) ? 1 : 0;
    pthread_mutex_unlock(&c->sess->lock);
    return n;
}

static int ssh_shutdown(imapwire_layer *l, int *done)
{
    struct ssh_ctx *c = l->ctx;
    *done = 1;
    if (c->state == L_UP && c->channel != NULL) {
        pthread_mutex_lock(&c->sess->lock);
        ssh_wake_take(c);
        if (c->sess->state == S_READY)
            libssh2_channel_send_eof(c->channel);
        ssh_unlock(c->sess, c);
    }
    return 0;
}

static int ssh_query(imapwire_layer *l, int what, void *out)
{
    struct ssh_ctx *c = l->ctx;
    if (what == IMAPWIRE_QUERY_SECURITY) {
        SECURITYINFO *si = out;
        si->dwTunnelProtocol = SECURITY_PROTOCOL_SSH2;
        if (si->dwSize >= offsetof(SECURITYINFO, szHostKeyFingerprint) + sizeof si->szHostKeyFingerprint)
            iw_strlcpy(si->szHostKeyFingerprint, c->sess->fingerprint, sizeof si->szHostKeyFingerprint);
        return 0;
    }
    if (what == IMAPWIRE_QUERY_SOCKET)
        return iw_layer_query(c->sess->tcp, what, out);
    return IMAPWIRE_PASS;
}

const imapwire_transport_type iw_transport_ssh = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "ssh",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM | IMAPWIRE_TRANSPORT_ENCRYPTED,
    .ctx_size = sizeof(struct ssh_ctx),
    .create = ssh_create,
    .destroy = ssh_destroy,
    .connect = ssh_connect,
    .shutdown = ssh_shutdown,
    .send = ssh_send,
    .recv = ssh_recv,
    .pollset = ssh_pollset,
    .pending = ssh_pending,
    .query = ssh_query,
};
