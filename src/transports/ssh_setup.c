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

/* Behind jump hosts, says which hop a failure belongs to, counted from the first: the
 * deepest session on the route that died in its own steps (host key, authentication), or
 * the first one the hop before it could not open a channel to. */
void ssh_trace_failed_hop(const ssh_session *s, imapwire_layer *l, int error)
{
    const ssh_session *cur = s, *lower;
    int depth = 0, hop;
    const char *text = iw_error_name((DWORD)error);
    while (cur->route_failed && cur->jump && (lower = ssh_route(cur)) != NULL &&
           __atomic_load_n(&lower->dead, __ATOMIC_ACQUIRE))
        cur = lower;
    for (lower = cur; lower->jump; lower = ssh_route(lower))
        depth++;
    hop = depth + 1;
    if (s->jump)
        l->host->trace(l, "ssh: hop %d (%s@%s:%u) failed: %s", hop, cur->user, cur->host,
                       cur->ep.port, text ? text : "error");
    {
        /* lower is the first hop: a transport other than TCP under it is a hop before it */
        int proxied = strcmp(lower->tcp->type->name, "tcp") != 0;
        iw_ssh_failure f = { error, (unsigned)(hop + proxied), cur->host, cur->ep.port,
                             cur->user, cur->fingerprint,
                             cur->kh.n > 0 ? cur->kh.path[0] : NULL, cur->key,
                             cur == lower && cur->route_failed ? &cur->carrier : NULL };
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

/* One non-blocking round of session set-up under s->lock: 1 when ready, 0 to wait. */
int ssh_session_step(ssh_session *s, imapwire_layer *l)
{
    int rc, done = 0;
    unsigned ulen;

    for (;;) {
        ulen = (unsigned)strlen(s->user);
        switch (s->state) {
        case S_LOWER:
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
            break;
        case S_HANDSHAKE:
            rc = libssh2_session_handshake(s->s, (libssh2_socket_t)s->fd);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc != 0)
                return ssh_libssh2_error(s, rc, ST_ERROR_CONNECTION_CLOSED);
            s->state = S_HOSTKEY;
            break;
        case S_HOSTKEY:
            rc = ssh_check_hostkey(s, l);
            if (rc != 0) {
                l->host->trace(l, "ssh: %s:%u host key %s not accepted", s->host, s->ep.port,
                               s->fingerprint);
                return ssh_session_die(s, rc);
            }
            l->host->trace(l, "ssh: %s:%u host key %s known", s->host, s->ep.port, s->fingerprint);
            s->state = S_AUTH_LIST;
            break;
        case S_AUTH_LIST:
            s->methods = NULL;
            {
                char *m = libssh2_userauth_list(s->s, s->user, ulen);
                if (m == NULL) {
                    if (libssh2_userauth_authenticated(s->s)) {
                        s->state = S_READY;
                        break;
                    }
                    if (libssh2_session_last_errno(s->s) == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                    return ssh_libssh2_error(s, libssh2_session_last_errno(s->s),
                                             ST_ERROR_SSH_AUTH_FAILED);
                }
                s->methods = iw_strdup(m);
                if (s->methods == NULL)
                    return ssh_session_die(s, ST_ERROR_OUT_OF_MEMORY);
            }
            /* The key when one is given (the password is then its passphrase), else the
             * agent, then the password itself. */
            if (s->key != NULL)
                s->state = S_AUTH_KEY;
            else if (secure_getenv("SSH_AUTH_SOCK") != NULL)
                s->state = S_AUTH_AGENT_CONNECT;
            else
                s->state = S_AUTH_PASSWORD;
            break;
        case S_AUTH_KEY:
            rc = libssh2_userauth_publickey_fromfile_ex(s->s, s->user, ulen, NULL, s->key,
                                                        s->password ? s->password : "");
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc != 0) {
                ssh_explain_key_failure(s, l);
                return ssh_libssh2_error(s, rc, ST_ERROR_SSH_AUTH_FAILED);
            }
            s->state = S_READY;
            break;
        case S_AUTH_AGENT_CONNECT:
            s->agent = libssh2_agent_init(s->s);
            /* the socket named by a trusted environment only: libssh2 itself would read
             * SSH_AUTH_SOCK with getenv, which a setuid program's caller controls */
            if (s->agent != NULL && secure_getenv("SSH_AUTH_SOCK") != NULL)
                libssh2_agent_set_identity_path(s->agent, secure_getenv("SSH_AUTH_SOCK"));
            if (s->agent == NULL || secure_getenv("SSH_AUTH_SOCK") == NULL ||
                libssh2_agent_connect(s->agent) != 0 ||
                libssh2_agent_list_identities(s->agent) != 0) {
                s->state = S_AUTH_PASSWORD;
                break;
            }
            s->identity = NULL;
            rc = libssh2_agent_get_identity(s->agent, &s->identity, NULL);
            s->state = rc == 0 ? S_AUTH_AGENT : S_AUTH_PASSWORD;
            break;
        case S_AUTH_AGENT:
            rc = libssh2_agent_userauth(s->agent, s->user, s->identity);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc == 0) {
                l->host->trace(l, "ssh: authenticated by the agent");
                s->state = S_READY;
                break;
            }
            if (libssh2_agent_get_identity(s->agent, &s->identity, s->identity) != 0)
                s->state = S_AUTH_PASSWORD;
            break;
        case S_AUTH_PASSWORD:
            if (s->password == NULL)
                return ssh_session_die(s, ST_ERROR_SSH_AUTH_FAILED);
            if (strstr(s->methods, "password") == NULL) {
                s->state = S_AUTH_KBD;
                break;
            }
            rc = libssh2_userauth_password_ex(s->s, s->user, ulen, s->password,
                                              (unsigned)strlen(s->password), NULL);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc == 0) {
                s->state = S_READY;
                break;
            }
            if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED && rc != LIBSSH2_ERROR_PASSWORD_EXPIRED)
                return ssh_libssh2_error(s, rc, ST_ERROR_SSH_AUTH_FAILED);
            s->state = S_AUTH_KBD;
            break;
        case S_AUTH_KBD:
            if (strstr(s->methods, "keyboard-interactive") == NULL)
                return ssh_session_die(s, ST_ERROR_SSH_AUTH_FAILED);
            rc = libssh2_userauth_keyboard_interactive_ex(s->s, s->user, ulen, ssh_kbd_cb);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return 0;
            if (rc != 0)
                return ssh_libssh2_error(s, rc, ST_ERROR_SSH_AUTH_FAILED);
            s->state = S_READY;
            break;
        case S_READY:
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
        default:
            return s->error ? s->error : (int)ST_ERROR_CONNECTION_CLOSED;
        }
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
