/* ssh_setup.c: a session's set-up, one non-blocking step at a time (hop, handshake, host
 * key, authentication), the phase nTimeout counts, and which hop a failure belongs to. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "ssh_internal.h"
#include "ssh_report.h"

/* The session a jump host's layer serves (s->jump: s->tcp is one of ours). */
static ssh_session *ssh_route(const ssh_session *s)
{
    const struct ssh_ctx *lc = s->tcp->ctx;
    return lc->sess;
}

/* Where the set-up of the route stands (for a timeout, where it stalled): down the route
 * while the hop below is not up, as each layer kept its phase (a lower session's own
 * fields are its lock's). A hop whose channel the hop before is still opening is not
 * reached; one whose own hop is up waits in its own steps. */
static const ssh_session *ssh_stalled(const ssh_session *s, int *stalled)
{
    const ssh_session *cur = s;
    int phase = ssh_session_phase(s);
    while (cur->jump) {
        const struct ssh_ctx *lc = cur->tcp->ctx;
        if (lc->state == L_UP)
            break;
        if (lc->state == L_CHANNEL) {
            phase = P_TCP;
            break;
        }
        phase = lc->phase;
        cur = lc->sess;
    }
    *stalled = (cur == s && s->route_failed) || phase == P_TCP || phase < 0
               ? IW_SSH_STALL_REACH
               : phase == P_HANDSHAKE ? IW_SSH_STALL_HANDSHAKE
               : phase == P_AUTH ? IW_SSH_STALL_AUTH : IW_SSH_STALL_CHANNEL;
    return cur;
}

/* Behind jump hosts, says which hop a failure belongs to, counted from the first: the
 * deepest session on the route that died in its own steps (host key, authentication), or
 * the first one the hop before it could not open a channel to. A timeout, or error 0
 * (whom the connect waits for now), names the hop where the set-up stands. */
void ssh_trace_failed_hop(const ssh_session *s, imapwire_layer *l, int error)
{
    const ssh_session *cur = s, *lower;
    int depth = 0, hop, stalled = IW_SSH_STALL_NONE;
    const char *text = iw_error_name((DWORD)error);
    char before[300];
    if (error == ST_ERROR_OPERATION_TIMEOUT || error == 0)
        cur = ssh_stalled(s, &stalled);
    while (cur->route_failed && cur->jump && (lower = ssh_route(cur)) != NULL &&
           __atomic_load_n(&lower->dead, __ATOMIC_ACQUIRE))
        cur = lower;
    for (lower = cur; lower->jump; lower = ssh_route(lower))
        depth++;
    hop = depth + 1;
    if (s->jump && error != 0)
        l->host->trace(l, "ssh: hop %d (%s@%s:%u) failed: %s", hop, cur->user, cur->host,
                       cur->ep.port, text ? text : "error");
    {
        /* lower is the first hop: a transport other than TCP under it is a hop before it */
        int proxied = strcmp(lower->tcp->type->name, "tcp") != 0;
        iw_ssh_failure f = { error, (unsigned)(hop + proxied), cur->host, cur->ep.port,
                             cur->user, cur->fingerprint,
                             cur->kh.n > 0 ? cur->kh.path[0] : NULL, cur->key,
                             cur == lower && (cur->route_failed ||
                                              stalled == IW_SSH_STALL_REACH)
                                 ? &cur->carrier : NULL,
                             stalled, (unsigned)(l->endpoint->timeout_ms / 1000), NULL,
                             cur->jump ? ((const struct ssh_ctx *)cur->tcp->ctx)->said : NULL };
        if (cur->jump) {
            iw_errinfo_peer(before, sizeof before, ssh_route(cur)->host, ssh_route(cur)->ep.port);
            f.before = before;
        }
        iw_ssh_report(l, &f);
    }
}

/* A hop carried by a command ends when the command does: its own trace (stderr, exit
 * status) has no sink here, since the session outlives the connect, so say what it was. */
void ssh_explain_command(const ssh_session *s, imapwire_layer *l, int error)
{
    const char *text = iw_error_name((DWORD)error);
    if (s->via_command && (s->route_failed || s->io_error != 0))
        l->host->trace(l, "ssh: the command that carries the connection to %s:%u "
                       "(ProxyCommand, or a command: transport) failed or ended: %s",
                       s->host, s->ep.port, text ? text : "error");
}

/* S_LOWER: the session's own hop to the server; then a descriptor for libssh2 and the
 * host key algorithms to offer. */
static int ssh_lower_state(ssh_session *s, imapwire_layer *l)
{
    int rc, done = 0;

    rc = iw_layer_connect(s->tcp, &done);
    if (rc != 0) {
        s->route_failed = 1;
        return ssh_session_die(s, rc);
    }
    if (!done)
        return 0;
    l->host->mark(l, IMAPWIRE_MARK_CONNECTED);
    /* A jump host's channel would name the jump host's socket: not ours. */
    if (s->jump || iw_layer_query(s->tcp, IMAPWIRE_QUERY_SOCKET, &s->fd) != 0 ||
        s->fd < 0) {
        /* libssh2 wants a descriptor to put in non-blocking mode even when its
         * I/O goes through our callbacks; give it one of its own. */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
            return ssh_session_die(s, ST_ERROR_SYSTEM_LIMIT);
        close(sv[1]);
        s->fd = s->dummy_fd = sv[0];
    }
    rc = ssh_offer_hostkeys(s, l);
    if (rc != 0)
        return ssh_session_die(s, rc);
    s->state = S_HANDSHAKE;
    return SSH_STEP_NEXT;
}

/* S_READY: what an authenticated session no longer needs, and its keepalives; 1. */
static int ssh_ready_state(ssh_session *s)
{
    /* Authenticated: the secret has done its work. A session found dead later is
     * replaced with the next connect's own credentials. */
    if (s->password != NULL) {
        iw_free_secret(s->password);
        s->password = NULL;
    }
    if (!s->jump && s->dummy_fd < 0)
        __atomic_store_n(&s->live_fd, s->fd, __ATOMIC_RELEASE);
    /* ServerAliveInterval: libssh2 paces them, a loop task sends them */
    if (s->alive_s != 0) {
        libssh2_keepalive_config(s->s, 1, s->alive_s);
        ssh_alive_start(s);
    }
    return 1;
}

/* One non-blocking round of session set-up under s->lock: 1 when ready, 0 to wait. */
int ssh_session_step(ssh_session *s, imapwire_layer *l)
{
    int rc;

    for (;;) {
        switch (s->state) {
        case S_LOWER:
            rc = ssh_lower_state(s, l);
            break;
        case S_HANDSHAKE:
        case S_HOSTKEY:
            rc = ssh_hostkey_step(s, l);
            break;
        case S_AUTH_LIST:
        case S_AUTH_KEY:
        case S_AUTH_AGENT_CONNECT:
        case S_AUTH_AGENT:
        case S_AUTH_PASSWORD:
        case S_AUTH_KBD:
            rc = ssh_auth_step(s, l);
            break;
        case S_READY:
            return ssh_ready_state(s);
        default:
            return s->error ? s->error : (int)ST_ERROR_CONNECTION_CLOSED;
        }
        if (rc != SSH_STEP_NEXT)
            return rc;
    }
}

/* The phase a session's set-up is in, as nTimeout counts them. */
int ssh_session_phase(const ssh_session *s)
{
    switch (s->state) {
    case S_LOWER:
        /* The route's layer is driven only under our lock: its phase is ours to read. */
        if (s->jump) {
            const struct ssh_ctx *lc = s->tcp->ctx;
            return P_VIA + lc->phase + 1;
        }
        return P_TCP;
    case S_HANDSHAKE:
    case S_HOSTKEY:
        return P_HANDSHAKE;
    case S_READY:
    case S_DEAD:
        return P_CHANNEL;
    default:
        return P_AUTH;
    }
}
