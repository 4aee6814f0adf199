/* ssh_session.c: the SSH session object and the process's list of them: sessions with
 * the same server, route and secrets are shared; a dead one is never handed out again. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "ssh.h"
#include "ssh_internal.h"

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000              /* Linux: the peer shut down its writing side */
#endif

pthread_mutex_t ssh_list_lock = PTHREAD_MUTEX_INITIALIZER;
static ssh_session *ssh_sessions;

int iw_ssh_global_init(void)
{
    return libssh2_init(0) == 0 ? 0 : ST_ERROR_OUT_OF_MEMORY;
}

void iw_ssh_global_cleanup(void)
{
    libssh2_exit();
}

/* ---- shared sessions ---- */

/* The session list's key: an HMAC under a key drawn once per process, so the id (which
 * outlives the password in the list) is no offline test for guessed secrets. */
static pthread_once_t ssh_id_once = PTHREAD_ONCE_INIT;
static unsigned char ssh_id_key[32];
static int ssh_id_key_ok;

static void ssh_id_key_init(void)
{
    ssh_id_key_ok = RAND_bytes(ssh_id_key, sizeof ssh_id_key) == 1;
}

/* Length-prefixed, so no two different field lists give the same bytes. */
static void ssh_id_str(iw_sb *sb, const char *v)
{
    size_t n = v ? strlen(v) : SIZE_MAX;
    iw_sb_add(sb, &n, sizeof n);
    if (v)
        iw_sb_add(sb, v, n);
}

static int ssh_session_id(const iw_ssh_params *p, const iw_kh_files *kh,
                          const imapwire_endpoint *ep, unsigned char id[32])
{
    int i;
    iw_sb sb = {0};
    unsigned int n = 0;
    int rc = 0;

    pthread_once(&ssh_id_once, ssh_id_key_init);
    if (!ssh_id_key_ok)
        return ST_ERROR_SYSTEM_LIMIT;
    /* Everything that decides what the session is: where it goes, from where, as whom. */
    ssh_id_str(&sb, p->host);
    iw_sb_add(&sb, &p->port, sizeof p->port);
    ssh_id_str(&sb, p->user);
    ssh_id_str(&sb, p->key);
    ssh_id_str(&sb, p->password);
    /* what decides trust: the files as resolved (not the NULL that means "the
     * defaults", which depend on whose home this is), and whether new keys are taken */
    iw_sb_add(&sb, &kh->n, sizeof kh->n);
    for (i = 0; i < kh->n; i++)
        ssh_id_str(&sb, kh->path[i]);
    iw_sb_add(&sb, &kh->accept_new, sizeof kh->accept_new);
    iw_sb_add(&sb, &kh->hash_new, sizeof kh->hash_new);
    ssh_id_str(&sb, ep->local_address);
    ssh_id_str(&sb, ep->dns_servers);
    /* the same server through another proxy is another session (NULL, TCP, differs
     * from every text, "tcp" included: harmless, at most one session more) */
    ssh_id_str(&sb, p->transport);
    if (sb.err != 0)
        rc = sb.err;
    else if (HMAC(EVP_sha256(), ssh_id_key, (int)sizeof ssh_id_key, (const unsigned char *)sb.p,
                  sb.len, id, &n) == NULL || n != 32)
        rc = ST_ERROR_OUT_OF_MEMORY;
    iw_sb_free(&sb);               /* wipes: it held the password */
    return rc;
}

static void ssh_session_unlist(ssh_session *s)
{
    ssh_session **pp;
    for (pp = &ssh_sessions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            s->next = NULL;
            return;
        }
    }
}

void ssh_session_release(ssh_session *s)
{
    int last;
    pthread_mutex_lock(&ssh_list_lock);
    last = --s->refs == 0;
    if (last)
        ssh_session_unlist(s);
    pthread_mutex_unlock(&ssh_list_lock);
    if (last)
        ssh_session_free(s);
}

/* The caller's transport under the first hop (a proxy) says what failed: kept for the
 * report of this session's failure (ImapGetErrorInfo names the proxy, not the host). */
static void ssh_carrier_report(void *core, const imapwire_error_report *r)
{
    ssh_session *s = core;
    /* whom it waits for (error 0) is replaced as it gets on; its failure stays */
    if (s->carrier.dwError == 0)
        iw_errinfo_clear(&s->carrier);
    s->carrier_news = r->error == 0;
    iw_errinfo_add(&s->carrier, (DWORD)r->error, r->stage, r->hop, r->peer, r->file,
                   r->fingerprint, r->detail);
}

static const iw_layer_sink ssh_carrier_sink = { .report = ssh_carrier_report };

static int ssh_session_new(const iw_ssh_params *p, const iw_ssh_hop *hop, iw_kh_files *kh,
                           const imapwire_endpoint *ep, const unsigned char id[32],
                           ssh_session **out)
{
    size_t via_len = iw_ssh_hops_via_len(p->host);
    ssh_session *s = calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (s == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    pthread_mutex_init(&s->lock, NULL);
    s->dummy_fd = -1;
    s->fd = -1;
    s->live_fd = -1;
    memcpy(s->id, id, 32);
    s->refs = 1;
    s->alive_s = p->alive_interval_s;
    s->host = iw_strdup(hop->host);
    s->user = iw_strdup(hop->user);
    s->key = iw_strdup(p->key);
    s->password = iw_strdup(p->password);
    s->local_address = iw_strdup(ep->local_address);
    s->dns_servers = iw_strdup(ep->dns_servers);
    s->kh = *kh;                   /* taken over */
    memset(kh, 0, sizeof *kh);
    if (s->host == NULL || s->user == NULL ||
        (p->key && !s->key) || (p->password && !s->password) ||
        (ep->local_address && !s->local_address) || (ep->dns_servers && !s->dns_servers)) {
        ssh_session_free(s);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    /* The session's hop: the caller's local address and DNS settings, the SSH server,
     * through the caller's transport when one is given (a proxy then resolves the SSH
     * server's name). It outlives the connect that made it, so it gets no trace sink. */
    s->ep = *ep;
    s->ep.host = s->host;
    s->ep.port = hop->port;
    s->ep.local_address = s->local_address;
    s->ep.dns_servers = s->dns_servers;
    if (via_len > 0) {
        /* Behind jump hosts: the hop is a channel of the session to the route before
         * it (itself shared, and itself perhaps behind jump hosts), which carries the
         * caller's transport down to the first SSH server. */
        iw_ssh_params via = *p;
        char *route = malloc(via_len + 1);
        rc = ST_ERROR_OUT_OF_MEMORY;
        if (route != NULL) {
            memcpy(route, p->host, via_len);
            route[via_len] = '\0';
            via.host = route;
            via.phase_started = NULL;
            rc = iw_layer_new_params("ssh", NULL, &via, &s->ep, NULL, NULL, NULL, &s->tcp);
            free(route);
        }
        s->jump = rc == 0;
    } else {
        rc = iw_layer_new_spec(p->transport, &s->ep, &ssh_carrier_sink, s, &s->tcp);
        s->via_command = p->transport != NULL && strncmp(p->transport, "command:", 8) == 0;
    }
    if (rc == 0) {
        s->s = libssh2_session_init_ex(ssh_mem_alloc, ssh_mem_free, ssh_mem_realloc, s);
        if (s->s == NULL)
            rc = ST_ERROR_OUT_OF_MEMORY;
    }
    if (rc != 0) {
        ssh_session_free(s);
        return rc;
    }
    libssh2_session_set_blocking(s->s, 0);
    libssh2_session_callback_set(s->s, LIBSSH2_CALLBACK_SEND, (void *)ssh_send_cb);
    libssh2_session_callback_set(s->s, LIBSSH2_CALLBACK_RECV, (void *)ssh_recv_cb);
    s->state = S_LOWER;
    *out = s;
    return 0;
}

/* A ready session whose server has closed its end while nobody used it (sshd killed
 * or restarted, a reset): its socket says so without a byte being read. Behind a jump
 * host, the route's session answers. Under ssh_list_lock, which keeps s and its route
 * listed, so their sockets are open. */
static int ssh_session_gone(const ssh_session *s)
{
    int depth;
    for (depth = 0; depth <= IW_SSH_MAX_HOPS; depth++) {
        int fd = __atomic_load_n(&s->live_fd, __ATOMIC_ACQUIRE);
        struct pollfd pfd;
        char b;
        ssize_t n;
        if (__atomic_load_n(&s->dead, __ATOMIC_ACQUIRE))
            return 1;
        if (fd < 0) {
            if (!s->jump)
                return 0;          /* still being set up: its own steps will tell */
            s = ((const struct ssh_ctx *)s->tcp->ctx)->sess;
            continue;
        }
        /* The peer's FIN shows even behind bytes nobody read (the close of a channel
         * that ended): POLLRDHUP, not a peek. */
        pfd.fd = fd;
        pfd.events = POLLIN | POLLRDHUP;
        pfd.revents = 0;
        if (poll(&pfd, 1, 0) <= 0)
            return 0;
        if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
            return 1;
        n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return 0;
}

/* A live listed session with this id, with a reference taken; under ssh_list_lock. A
 * shared session found dead is dropped from the list (its users see the error on their
 * next call) and replaced by the caller, never handed out. */
/* Nonzero when the open in flight on s began SSH_OPEN_STUCK_MS or more before now. */
int ssh_session_stuck(ssh_session *s, int64_t now)
{
    int64_t since = __atomic_load_n(&s->open_since_ms, __ATOMIC_ACQUIRE);
    return since != 0 && now - since >= SSH_OPEN_STUCK_MS;
}

/* s is handed to no new connect; its channels go on (under no list lock). */
void ssh_session_retire(ssh_session *s)
{
    pthread_mutex_lock(&ssh_list_lock);
    ssh_session_unlist(s);
    pthread_mutex_unlock(&ssh_list_lock);
}

static ssh_session *ssh_session_find_locked(const unsigned char id[32])
{
    ssh_session **pp, *s;
    for (pp = &ssh_sessions; (s = *pp) != NULL;) {
        if (memcmp(s->id, id, 32) != 0 || __atomic_load_n(&s->dead, __ATOMIC_ACQUIRE)) {
            pp = &s->next;
            continue;
        }
        /* a new channel would wait behind an open that may take minutes */
        if (ssh_session_stuck(s, iw_now_ms())) {
            *pp = s->next;
            s->next = NULL;
            continue;
        }
        if (ssh_session_gone(s)) {
            __atomic_store_n(&s->dead, 1, __ATOMIC_RELEASE);
            *pp = s->next;
            s->next = NULL;
            continue;
        }
        s->refs++;
        return s;
    }
    return NULL;
}

/* A live listed session with the id of s other than s (its replacement, made by a connect
 * that brought the secrets), with a reference taken; or NULL. */
ssh_session *ssh_session_successor(const ssh_session *s)
{
    ssh_session *n;
    pthread_mutex_lock(&ssh_list_lock);
    n = ssh_session_find_locked(s->id);
    pthread_mutex_unlock(&ssh_list_lock);
    if (n == s) {                  /* still listed: not retired after all */
        ssh_session_release(n);
        n = NULL;
    }
    return n;
}

/* The session for these parameters: a live shared one, or a new one in the list. */
int ssh_session_get(const iw_ssh_params *p, const iw_ssh_hop *hop,
                    const imapwire_endpoint *ep, ssh_session **out)
{
    unsigned char id[32];
    ssh_session *s, *other;
    iw_kh_files kh;
    int rc = iw_kh_files_resolve(p->known_hosts, p->known_hosts_global, &kh);
    if (rc != 0)
        return rc;
    kh.accept_new = p->accept_new;
    kh.hash_new = p->hash_known_hosts;
    rc = ssh_session_id(p, &kh, ep, id);
    if (rc != 0) {
        iw_kh_files_clear(&kh);
        return rc;
    }
    pthread_mutex_lock(&ssh_list_lock);
    s = ssh_session_find_locked(id);
    pthread_mutex_unlock(&ssh_list_lock);
    if (s != NULL) {
        iw_kh_files_clear(&kh);
        *out = s;
        return 0;
    }
    /* Made outside the lock: behind a jump host, making it gets the route's session. */
    rc = ssh_session_new(p, hop, &kh, ep, id, &s);
    iw_kh_files_clear(&kh);        /* what the session did not take */
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&ssh_list_lock);
    other = ssh_session_find_locked(id);
    if (other == NULL) {
        s->next = ssh_sessions;
        ssh_sessions = s;
    }
    pthread_mutex_unlock(&ssh_list_lock);
    if (other != NULL) {
        /* another thread made the same session meanwhile: share theirs */
        ssh_session_free(s);
        s = other;
    }
    *out = s;
    return 0;
}

/* A dead session is never handed out again; its channels report the closed connection. */
int ssh_session_die(ssh_session *s, int error)
{
    if (s->state != S_DEAD) {
        s->state = S_DEAD;
        s->error = error;
        __atomic_store_n(&s->dead, 1, __ATOMIC_RELEASE);
        pthread_mutex_lock(&ssh_list_lock);
        ssh_session_unlist(s);
        pthread_mutex_unlock(&ssh_list_lock);
    }
    return s->error;
}

int ssh_libssh2_error(ssh_session *s, int rc, int during)
{
    /* the connection under the session failed: that is the error, whatever the step */
    if (s->io_error != 0 && rc != LIBSSH2_ERROR_ALLOC)
        return ssh_session_die(s, s->io_error);
    switch (rc) {
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
        return ssh_session_die(s, ST_ERROR_CONNECTION_CLOSED);
    case LIBSSH2_ERROR_ALLOC:
        return ssh_session_die(s, ST_ERROR_OUT_OF_MEMORY);
    default:
        return ssh_session_die(s, during);
    }
}
