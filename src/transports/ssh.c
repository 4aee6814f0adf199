/* ssh.c: the SSH tunnel transport: a libssh2 session over a TCP layer of its own, and one
 * direct-tcpip channel per connection; sessions with the same server and secrets are shared. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <libssh2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "../core/runtime/loop.h"
#include "../core/transport/chain.h"
#include "../security/known_hosts.h"
#include "../security/ssh_hops.h"
#include "../security/ssh_keyfile.h"
#include "../security/ssh_policy.h"
#include "ssh.h"
#include "ssh_report.h"

/* How often a connection that shares its session with another thread re-checks its
 * channel: that thread may have read our packets off the socket into libssh2's queue. */
#define SSH_SHARED_RECHECK_MS 20
#define SSH_LOOP_RECHECK_MS 100
#define SSH_QUICKACK_BELOW 2048
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000              /* Linux: the peer shut down its writing side */
#endif       /* bytes: a read this small is an exchange, not bulk */

enum { S_LOWER, S_HANDSHAKE, S_HOSTKEY, S_AUTH_LIST, S_AUTH_KEY, S_AUTH_AGENT_CONNECT,
       S_AUTH_AGENT, S_AUTH_PASSWORD, S_AUTH_KBD, S_READY, S_DEAD };

/* The phases nTimeout bounds one by one: TCP to the server, handshake with the host key
 * check, authentication, and (per connection) the channel. Behind a jump host the route
 * to the server has phases of its own: P_VIA plus the route's phase, so each hop's
 * phases get their own deadline too. */
enum { P_TCP, P_HANDSHAKE, P_AUTH, P_CHANNEL, P_UP, P_VIA = 16 };

typedef struct ssh_mem_block {
    struct ssh_mem_block *prev, *next;
    size_t                n;
} ssh_mem_block;

typedef struct ssh_session {
    struct ssh_session *next;
    unsigned char    id[32];        /* keyed digest of server, hop, account and secrets */
    unsigned         refs;
    /* Channels driven by the loop thread and by other threads: a channel can only miss
     * a wake-up when a different thread read its packets. */
    unsigned         loop_drivers, other_drivers;
    pthread_mutex_t  lock;
    int              state, error;  /* under lock */
    int              dead;          /* atomic: read by lookups that do not take lock */
    int              live_fd;       /* atomic: the server socket once ready, else -1 */
    LIBSSH2_SESSION *s;
    LIBSSH2_AGENT   *agent;
    struct libssh2_agent_publickey *identity;
    imapwire_layer  *tcp;           /* the session's own hop to the SSH server (TCP, the
                                       caller's transport, or a channel through the
                                       previous jump host) */
    int              jump;          /* tcp is an "ssh" layer: a channel of a jump host */
    int              route_failed;  /* died because tcp failed, not in its own steps */
    int              via_command;   /* tcp is a command (ProxyCommand): say so when it fails */
    /* libssh2 drains the socket before every channel write. When the last read of it
     * found nothing, a write skips that read (a system call that would find nothing
     * again, most likely); the next read of the channel reads for real. Under lock. */
    int              rx_dry;        /* the last read of the socket said EAGAIN */
    int              rx_skip;       /* a channel write is running with rx_dry set */
    /* Only our write happened since the socket was found empty: the channel read that
     * follows at once skips the socket too (once: the wait after it then looks). */
    int              rx_after_write;
    /* The last read of the socket was short: it emptied the receive queue, so the read
     * libssh2 makes next (it reads until EAGAIN) would find nothing; it gets EAGAIN
     * without the system call, once, and the wait that follows sees any later byte. */
    int              rx_short;
    int              ack_owed;      /* small data read and not acknowledged yet */
    /* What the hop to the server said when it failed or ended (under lock): libssh2
     * reports that as a failure of whatever step it was in (an authentication, a
     * channel), but the cause is the connection, and the caller must hear that. */
    int              io_error;
    /* A courtesy close (channel close, disconnect) went unanswered for its whole wait
     * (under lock): the server is not answering, so later closes on this session do not
     * wait again, one wait per handle; any byte from the server clears it. */
    int              unanswered;
    unsigned         alive_s;       /* keepalive interval once ready (0: none) */
    int              alive_task;    /* a loop task sends the keepalives (under lock) */
    /* Channels whose close the loop thread could not finish at once: whoever drives the
     * session next retries them (the loop never waits for a peer), and the session's
     * own end frees what is left. Under lock. */
    ssh_mem_block   *blocks;        /* what libssh2 holds of ours (see ssh_mem_alloc) */
    LIBSSH2_CHANNEL **closing;
    size_t           nclosing, capclosing;
    imapwire_endpoint ep;
    /* password (or passphrase) is wiped and dropped once the session is authenticated */
    char            *host, *user, *key, *password, *methods;
    iw_kh_files      kh;            /* the known_hosts files, resolved once */
    char            *local_address, *dns_servers;   /* the hop's, owned (s->ep points here) */
    char             fingerprint[64];
    IMAPERRORINFO    carrier;       /* what the caller's transport under tcp reported */
    int              carrier_news;  /* it said whom it waits for now: tell the core */
    int              fd;            /* what libssh2 is told the socket is */
    int              dummy_fd;      /* a socket we made for it when the hop has none */
} ssh_session;

enum { L_SESSION, L_CHANNEL, L_UP, L_CLOSED };

struct ssh_ctx {
    int              state;
    ssh_session     *sess;
    LIBSSH2_CHANNEL *channel;
    int              on_loop;      /* made (and driven) by the loop thread */
    int              phase;        /* P_*, or -1 before the first step */
    int64_t          phase_deadline_ms;
    unsigned         connect_timeout_ms;   /* 0: the endpoint's timeout */
    void           (*phase_started)(void *core);
    char             said[96];     /* libssh2's words for a channel the server refused */
};

static pthread_mutex_t ssh_list_lock = PTHREAD_MUTEX_INITIALIZER;
static ssh_session *ssh_sessions;

int iw_ssh_global_init(void)
{
    return libssh2_init(0) == 0 ? 0 : ST_ERROR_OUT_OF_MEMORY;
}

void iw_ssh_global_cleanup(void)
{
    libssh2_exit();
}

/* ---- libssh2 I/O goes through the session's lower layer, never a socket directly ---- */

static ssize_t ssh_send_cb(libssh2_socket_t fd, const void *buf, size_t len, int flags,
                           void **abstract)
{
    ssh_session *s = *abstract;
    size_t sent = 0;
    int rc;
    /* libssh2 also talks to the SSH agent through these callbacks, on the agent's own
     * socket: that traffic is not ours to tunnel. */
    if ((int)fd != s->fd) {
        ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL);
        return n < 0 ? -errno : n;
    }
    rc = iw_layer_send(s->tcp, buf, len, &sent);
    if (sent > 0)
        s->ack_owed = 0;           /* our packet carried the ACK */
    if (rc == IMAPWIRE_AGAIN)
        return -EAGAIN;
    if (rc != 0) {
        if (s->io_error == 0)
            s->io_error = rc;
        return rc == ST_ERROR_CONNECTION_CLOSED ? -ECONNRESET : -EIO;
    }
    return (ssize_t)sent;
}

static ssize_t ssh_recv_cb(libssh2_socket_t fd, void *buf, size_t len, int flags,
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
    if (s->rx_skip || s->rx_short) {
        s->rx_short = 0;
        return -EAGAIN;
    }
    rc = iw_layer_recv(s->tcp, buf, len, &got);
    /* a socket only: a short read of another hop (a channel, a pipe) proves nothing */
    s->rx_short = rc == 0 && got > 0 && got < len && s->dummy_fd < 0;
    s->rx_dry = rc == IMAPWIRE_AGAIN || s->rx_short;
    s->rx_after_write = 0;
    if (got > 0)
        s->unanswered = 0;
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

static void *ssh_mem_alloc(size_t n, void **abstract)
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

static void ssh_mem_drop(ssh_session *s, ssh_mem_block *b)
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

static void ssh_mem_free(void *ptr, void **abstract)
{
    if (ptr == NULL)
        return;
    ssh_mem_drop(*abstract, (ssh_mem_block *)(void *)((unsigned char *)ptr - SSH_MEM_HDR));
}

static void *ssh_mem_realloc(void *ptr, size_t n, void **abstract)
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

static void ssh_kbd_cb(const char *name, int name_len, const char *instruction,
                       int instruction_len, int num_prompts,
                       const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
                       LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses, void **abstract)
{
    ssh_session *s = *abstract;
    size_t n = s->password ? strlen(s->password) : 0;
    int i;
    (void)name; (void)name_len; (void)instruction; (void)instruction_len; (void)prompts;
    /* Every prompt gets the password: keyboard-interactive is how PAM asks for it.
     * libssh2 frees the answers with the session's free, which wipes them. */
    for (i = 0; i < num_prompts; i++) {
        responses[i].text = s->password ? ssh_mem_alloc(n + 1, abstract) : NULL;
        if (responses[i].text != NULL)
            memcpy(responses[i].text, s->password, n + 1);
        responses[i].length = responses[i].text ? (unsigned)n : 0;
    }
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

/* Before a wait: the ACK a small read left owed goes now (one system call per wait,
 * not one per read). Under s->lock. */
static void ssh_ack(ssh_session *s)
{
    if (s->ack_owed) {
        int one = 1;
        s->ack_owed = 0;
        setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
}

/* The descriptors to wait on for the direction libssh2 is blocked on; under s->lock. */
static nfds_t ssh_wait_fds(ssh_session *s, struct pollfd *pfd)
{
    imapwire_pollset ps = {0};
    int dir = libssh2_session_block_directions(s->s);
    ssh_ack(s);
    iw_layer_pollset(s->tcp, ((dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) ? IMAPWIRE_WANT_WRITE : 0) |
                                 IMAPWIRE_WANT_READ, &ps);
    return ps.count > 0 ? iw_pollset_to_pollfd(&ps, pfd) : 0;
}

/* Waits up to ms for the session's socket (teardown, which owns the session). */
static void ssh_wait(ssh_session *s, int ms)
{
    struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
    nfds_t n = ssh_wait_fds(s, pfd);
    if (n > 0)
        poll(pfd, n, ms);
}

/* libssh2's closing calls may want the network even when freeing: give each a short,
 * bounded chance, then go on (the socket closes right after either way). */
#define SSH_CLOSE_TRIES 20
#define SSH_CLOSE_WAIT_MS 10

static void ssh_session_free(ssh_session *s)
{
    /* The loop thread never waits for a peer, nor does anyone for a server that left a
     * close unanswered: one polite try, then the socket goes. */
    int i, tries = iw_loop_is_current() || s->unanswered ? 0 : SSH_CLOSE_TRIES;
    /* The agent handle lives inside the session's memory: it goes first. */
    if (s->agent != NULL) {
        libssh2_agent_disconnect(s->agent);
        libssh2_agent_free(s->agent);
    }
    if (s->s != NULL) {
        if (s->state == S_READY) {
            for (i = 0; libssh2_session_disconnect(s->s, "imapwire: done") == LIBSSH2_ERROR_EAGAIN &&
                        i < tries;
                 i++)
                ssh_wait(s, SSH_CLOSE_WAIT_MS);
        }
        /* Freeing must finish, or the session's memory stays behind: once the socket is
         * dead (closed below) nothing can block any more. */
        for (i = 0; i < tries && libssh2_session_free(s->s) == LIBSSH2_ERROR_EAGAIN; i++)
            ssh_wait(s, SSH_CLOSE_WAIT_MS);
        if (i == tries) {
            iw_layer_free_chain(s->tcp);
            s->tcp = NULL;
            s->state = S_DEAD;
            while (libssh2_session_free(s->s) == LIBSSH2_ERROR_EAGAIN && ++i < 4 * SSH_CLOSE_TRIES)
                ;
        }
    }
    /* what libssh2 forgot to free (a key exchange cut short) */
    while (s->blocks != NULL)
        ssh_mem_drop(s, s->blocks);
    if (s->tcp != NULL)
        iw_layer_free_chain(s->tcp);
    if (s->dummy_fd >= 0)
        close(s->dummy_fd);
    free(s->host);
    free(s->user);
    iw_free_secret(s->key);
    iw_free_secret(s->password);
    iw_kh_files_clear(&s->kh);
    free(s->methods);
    free(s->local_address);
    free(s->dns_servers);
    free(s->closing);              /* the channels themselves went with the session */
    pthread_mutex_destroy(&s->lock);
    free(s);
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

static void ssh_session_release(ssh_session *s)
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
static ssh_session *ssh_session_find_locked(const unsigned char id[32])
{
    ssh_session **pp, *s;
    for (pp = &ssh_sessions; (s = *pp) != NULL;) {
        if (memcmp(s->id, id, 32) != 0 || __atomic_load_n(&s->dead, __ATOMIC_ACQUIRE)) {
            pp = &s->next;
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

/* The session for these parameters: a live shared one, or a new one in the list. */
static int ssh_session_get(const iw_ssh_params *p, const iw_ssh_hop *hop,
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
static int ssh_session_die(ssh_session *s, int error)
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

static int ssh_libssh2_error(ssh_session *s, int rc, int during)
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

static void ssh_fingerprint(ssh_session *s)
{
    const char *h = libssh2_hostkey_hash(s->s, LIBSSH2_HOSTKEY_HASH_SHA256);
    unsigned char b64[48];
    int n;
    if (h == NULL)
        return;
    n = EVP_EncodeBlock(b64, (const unsigned char *)h, 32);
    /* ssh-keygen -l prints base64 without the '=' padding */
    while (n > 0 && b64[n - 1] == '=')
        n--;
    b64[n] = '\0';
    memcpy(s->fingerprint, "SHA256:", 7);
    memcpy(s->fingerprint + 7, b64, (size_t)n + 1);     /* 43 characters and the NUL */
}

static void ssh_note(void *arg, const char *text)
{
    imapwire_layer *l = arg;
    l->host->trace(l, "ssh: %s", text);
}

/* Before the handshake: the host key algorithms with the types on file for this server
 * first, so the server shows the key the user has (a server with no key on file keeps
 * libssh2's order). Without this, libssh2 would pick ECDSA from a server that also has
 * the Ed25519 key ssh recorded. */
static int ssh_offer_hostkeys(ssh_session *s, imapwire_layer *l)
{
    const char **algs = NULL;
    iw_sb all = {0};
    char pref[1024];
    int i, n, rc;
    n = libssh2_session_supported_algs(s->s, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (n <= 0)
        return 0;                  /* libssh2 keeps its own order */
    for (i = 0; i < n; i++) {
        if (i > 0)
            iw_sb_add(&all, ",", 1);
        iw_sb_str(&all, algs[i]);
    }
    libssh2_free(s->s, (void *)algs);
    rc = all.err ? all.err
                 : iw_kh_algorithms(&s->kh, s->host, s->ep.port, all.p, pref, sizeof pref,
                                    ssh_note, l);
    iw_sb_free(&all);
    if (rc == 1) {
        if (libssh2_session_method_pref(s->s, LIBSSH2_METHOD_HOSTKEY, pref) != 0)
            return ST_ERROR_OUT_OF_MEMORY;
        l->host->trace(l, "ssh: %s:%u: algorithms offered, types on file first: %s", s->host,
                       s->ep.port, pref);
        rc = 0;
    }
    return rc;
}

/* After it: the server's key against the known_hosts files (accept-new may add it). */
static int ssh_check_hostkey(ssh_session *s, imapwire_layer *l)
{
    const char *key;
    size_t len = 0;
    int type = 0;

    key = libssh2_session_hostkey(s->s, &len, &type);
    if (key == NULL)
        return ST_ERROR_SSH_HOST_KEY_UNKNOWN;
    ssh_fingerprint(s);
    return iw_kh_check(&s->kh, s->host, s->ep.port, (const unsigned char *)key, len, ssh_note, l);
}

/* Retries the closes the loop thread left behind; under s->lock, session ready. */
static void ssh_closing_step(ssh_session *s)
{
    size_t i = 0;
    while (i < s->nclosing) {
        if (libssh2_channel_free(s->closing[i]) == LIBSSH2_ERROR_EAGAIN) {
            i++;
            continue;
        }
        s->closing[i] = s->closing[--s->nclosing];
    }
}

/* The session a jump host's layer serves (s->jump: s->tcp is one of ours). */
static ssh_session *ssh_route(const ssh_session *s)
{
    const struct ssh_ctx *lc = s->tcp->ctx;
    return lc->sess;
}

static int ssh_session_phase(const ssh_session *s);

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
static void ssh_trace_failed_hop(const ssh_session *s, imapwire_layer *l, int error)
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
static void ssh_explain_command(const ssh_session *s, imapwire_layer *l, int error)
{
    const char *text = iw_error_name((DWORD)error);
    if (s->via_command && (s->route_failed || s->io_error != 0))
        l->host->trace(l, "ssh: the command that carries the connection to %s:%u "
                       "(ProxyCommand, or a command: transport) failed or ended: %s",
                       s->host, s->ep.port, text ? text : "error");
}

/* libssh2 before 1.11 signs with an RSA key only as "ssh-rsa" (SHA-1), which OpenSSH 8.8
 * and later refuse by default: a refused RSA key is most likely that, so say so. */
static void ssh_explain_key_failure(const ssh_session *s, imapwire_layer *l)
{
#if LIBSSH2_VERSION_NUM < 0x010b00
    if (iw_ssh_key_is_rsa(s->key))
        l->host->trace(l, "ssh: %s is an RSA key, which libssh2 %s can sign only with SHA-1 "
                       "(ssh-rsa), refused by OpenSSH 8.8 and later: use an ed25519 or ECDSA "
                       "key, or build imapwire with libssh2 1.11 or later",
                       s->key, LIBSSH2_VERSION);
#else
    (void)s;
    (void)l;
#endif
}

/* ---- keepalives: a loop task per session, so an idle session is kept alive too ---- */

typedef struct ssh_alive {
    iw_task      task;             /* first: the loop hands us this pointer */
    ssh_session *s;                /* a reference of the task's own */
    int64_t      next_ms;
} ssh_alive;

static void ssh_alive_pollset(iw_task *t, imapwire_pollset *ps)
{
    imapwire_pollset_wakeup(ps, ((ssh_alive *)t)->next_ms);
}

static int ssh_alive_step(iw_task *t)
{
    ssh_alive *a = (ssh_alive *)t;
    ssh_session *s = a->s;
    int64_t now = iw_now_ms();
    int alone, next = 0;

    pthread_mutex_lock(&ssh_list_lock);
    alone = s->refs == 1;
    pthread_mutex_unlock(&ssh_list_lock);
    if (alone || __atomic_load_n(&s->dead, __ATOMIC_ACQUIRE))
        return 1;                  /* nobody uses the session any more: it goes */
    if (now < a->next_ms)
        return 0;
    /* never wait for the lock: a connection busy on the session is traffic enough */
    if (pthread_mutex_trylock(&s->lock) == 0) {
        if (s->state == S_READY && libssh2_keepalive_send(s->s, &next) != 0)
            next = 1;
        pthread_mutex_unlock(&s->lock);
    }
    /* libssh2 counts in whole seconds of time(): a second's boundary may come just after
     * we ask, so the last second before a send is looked at twice */
    a->next_ms = now + (next > 1 ? (int64_t)(next - 1) * 1000 : 0) + 500;
    return 0;
}

static void ssh_alive_release(iw_task *t)
{
    ssh_alive *a = (ssh_alive *)t;
    ssh_session_release(a->s);
    free(a);
}

/* Starts the keepalive task of a session that asked for one; under s->lock. */
static void ssh_alive_start(ssh_session *s)
{
    ssh_alive *a;
    if (s->alive_s == 0 || s->alive_task)
        return;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return;                    /* no keepalives: the session works without them */
    pthread_mutex_lock(&ssh_list_lock);
    s->refs++;
    pthread_mutex_unlock(&ssh_list_lock);
    a->s = s;
    a->next_ms = iw_now_ms() + (int64_t)s->alive_s * 1000;
    a->task.pollset = ssh_alive_pollset;
    a->task.step = ssh_alive_step;
    a->task.release = ssh_alive_release;
    if (iw_loop_add(&a->task) != 0) {
        pthread_mutex_lock(&ssh_list_lock);
        s->refs--;
        pthread_mutex_unlock(&ssh_list_lock);
        free(a);
        return;
    }
    s->alive_task = 1;
}

/* One non-blocking round of session set-up under s->lock: 1 when ready, 0 to wait. */
static int ssh_session_step(ssh_session *s, imapwire_layer *l)
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
static int ssh_session_phase(const ssh_session *s)
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

static int ssh_create(imapwire_layer *l, const char *args)
{
    struct ssh_ctx *c = l->ctx;
    const iw_ssh_params *p = l->params;
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    int rc, n;
    (void)args;
    /* everything comes from the creator; without it there is no server to trust */
    if (p == NULL || p->struct_size < sizeof *p)
        return ST_ERROR_INVALID_PARAMETER;
    /* the last hop is this layer's SSH server; the ones before it are its route */
    rc = iw_ssh_hops_parse(p->host, p->user, p->port, hops, IW_SSH_MAX_HOPS, &n);
    if (rc != 0)
        return rc;
    rc = ssh_session_get(p, &hops[n - 1], l->endpoint, &c->sess);
    if (rc != 0)
        return rc;
    c->phase = -1;
    c->phase_started = p->phase_started;
    c->connect_timeout_ms = p->connect_timeout_ms;
    c->on_loop = iw_loop_is_current();
    pthread_mutex_lock(&ssh_list_lock);
    if (c->on_loop)
        c->sess->loop_drivers++;
    else
        c->sess->other_drivers++;
    pthread_mutex_unlock(&ssh_list_lock);
    c->state = L_SESSION;
    return 0;
}

static void ssh_destroy(imapwire_layer *l)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    if (s == NULL)
        return;
    if (c->channel != NULL) {
        pthread_mutex_lock(&s->lock);
        /* A close that would wait longer is finished by the session's next driver or by
         * its end; the loop thread does not wait for the peer at all. */
        if (s->state == S_READY) {
            int i, tries = iw_loop_is_current() || s->unanswered ? 0 : SSH_CLOSE_TRIES;
            for (i = 0; libssh2_channel_free(c->channel) == LIBSSH2_ERROR_EAGAIN; i++) {
                if (i >= tries) {
                    if (tries > 0)
                        s->unanswered = 1;
                    if (s->nclosing == s->capclosing) {
                        size_t cap = s->capclosing ? 2 * s->capclosing : 8;
                        LIBSSH2_CHANNEL **n = realloc(s->closing, cap * sizeof *n);
                        if (n == NULL)
                            break;  /* the session's end frees it */
                        s->closing = n;
                        s->capclosing = cap;
                    }
                    s->closing[s->nclosing++] = c->channel;
                    break;
                }
                ssh_wait(s, SSH_CLOSE_WAIT_MS);
            }
        }
        pthread_mutex_unlock(&s->lock);
        c->channel = NULL;
    }
    pthread_mutex_lock(&ssh_list_lock);
    if (c->on_loop)
        s->loop_drivers--;
    else
        s->other_drivers--;
    pthread_mutex_unlock(&ssh_list_lock);
    ssh_session_release(s);
    c->sess = NULL;
}

static int ssh_connect(imapwire_layer *l, int *done)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    const imapwire_endpoint *ep = l->endpoint;
    int rc = 0;

    *done = 0;
    pthread_mutex_lock(&s->lock);
    if (c->state == L_SESSION) {
        rc = ssh_session_step(s, l);
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
        /* The SSH server resolves and connects to the IMAP host: no local DNS for it. */
        c->channel = libssh2_channel_direct_tcpip_ex(s->s, ep->host, (int)ep->port, "127.0.0.1", 0);
        if (c->channel != NULL) {
            c->state = L_UP;
            *done = 1;
            l->host->trace(l, "ssh: channel to %s:%u open", ep->host, ep->port);
        } else {
            int e = libssh2_session_last_errno(s->s);
            char *msg = NULL;
            if (e != LIBSSH2_ERROR_EAGAIN) {
                /* the server's reason, for the report of the hop this channel was to reach */
                libssh2_session_last_error(s->s, &msg, NULL, 0);
                iw_strlcpy(c->said, msg != NULL ? msg : "", sizeof c->said);
            }
            if (e != LIBSSH2_ERROR_EAGAIN)
                rc = (e == LIBSSH2_ERROR_CHANNEL_FAILURE || e == LIBSSH2_ERROR_CHANNEL_UNKNOWN)
                         ? (int)ST_ERROR_SSH_CHANNEL_FAILED
                         : ssh_libssh2_error(s, e, ST_ERROR_SSH_CHANNEL_FAILED);
            else
                rc = ssh_phase_check(l, P_CHANNEL);
        }
    } else if (rc == 0 && c->state == L_UP) {
        *done = 1;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
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
    pthread_mutex_lock(&s->lock);
    if (s->state == S_DEAD) {
        pthread_mutex_unlock(&s->lock);
        return ST_ERROR_CONNECTION_CLOSED;
    }
    if (s->nclosing > 0)
        ssh_closing_step(s);
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
    pthread_mutex_unlock(&s->lock);
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
    pthread_mutex_lock(&s->lock);
    if (s->state == S_DEAD) {
        pthread_mutex_unlock(&s->lock);
        return ST_ERROR_CONNECTION_CLOSED;
    }
    if (s->nclosing > 0)
        ssh_closing_step(s);
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
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void ssh_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct ssh_ctx *c = l->ctx;
    ssh_session *s = c->sess;
    unsigned below = 0;
    int dir, shared, ready, eof;

    pthread_mutex_lock(&s->lock);
    /* what the end of this function looks at, read under the lock like the rest */
    ready = s->state == S_READY;
    eof = ready && c->state == L_UP && libssh2_channel_eof(c->channel);
    if (s->state == S_LOWER) {
        iw_layer_pollset(s->tcp, want, ps);
    } else if (s->state != S_DEAD) {
        ssh_ack(s);
        dir = libssh2_session_block_directions(s->s);
        if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
            below |= IMAPWIRE_WANT_READ;
        if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            below |= IMAPWIRE_WANT_WRITE;
        iw_layer_pollset(s->tcp, below ? below : IMAPWIRE_WANT_READ, ps);
        if (s->alive_s != 0 && s->state == S_READY) {
            int next = 0;
            if (libssh2_keepalive_send(s->s, &next) == 0 && next > 0)
                imapwire_pollset_wakeup(ps, iw_now_ms() + (int64_t)next * 1000);
        }
        /* Another channel's read may have queued our data inside libssh2: the socket
         * will not say so, so ask to be stepped again at once. */
        if ((want & IMAPWIRE_WANT_READ) && c->state == L_UP &&
            libssh2_poll_channel_read(c->channel, 0))
            imapwire_pollset_wakeup(ps, iw_now_ms());
    }
    pthread_mutex_unlock(&s->lock);
    /* A phase that runs out must be noticed even if the socket stays silent. */
    if (c->state == L_SESSION || c->state == L_CHANNEL)
        imapwire_pollset_wakeup(ps, c->phase_deadline_ms);
    pthread_mutex_lock(&ssh_list_lock);
    shared = s->other_drivers + (s->loop_drivers > 0 ? 1u : 0u) > 1;
    /* Channels all on the loop thread are stepped together and ask for an immediate
     * wake-up when libssh2 holds their data; a slow look-around stays as a safety net
     * for what the queue check cannot see (e.g. a window change). */
    if (!shared && s->loop_drivers > 1)
        imapwire_pollset_wakeup(ps, iw_now_ms() + SSH_LOOP_RECHECK_MS);
    pthread_mutex_unlock(&ssh_list_lock);
    /* While our channel opens, its confirmation may be read off the socket by another
     * channel's step: there is no per-channel queue to ask yet, so look again soon. */
    if (shared || !ready || c->state != L_UP || (want & IMAPWIRE_WANT_WRITE) || eof)
        imapwire_pollset_wakeup(ps, iw_now_ms() + SSH_SHARED_RECHECK_MS);
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
        if (c->sess->state == S_READY)
            libssh2_channel_send_eof(c->channel);
        pthread_mutex_unlock(&c->sess->lock);
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

/* ---- holding a session without a channel (library-managed forwards) ---- */

/* The set-up steps of a held session use a layer only for its traces and marks: one of
 * this type, which nothing else ever drives. */
static const imapwire_transport_type ssh_probe_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "ssh-probe",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
};

/* Gets or makes the session for core's tunnel credentials and drives it until it is
 * authenticated or deadline_ms passes: errors surface before anyone uses the forward. */
int iw_ssh_hold(const iw_ssh_params *p, const iw_layer_sink *sink, void *core,
                const imapwire_endpoint *ep, void **hold)
{
    ssh_session *s;
    imapwire_layer *probe = NULL;
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    int64_t deadline_ms = 0;
    int rc, n, phase = -1;

    *hold = NULL;
    rc = iw_ssh_hops_parse(p->host, p->user, p->port, hops, IW_SSH_MAX_HOPS, &n);
    if (rc != 0)
        return rc;
    rc = iw_layer_new_internal(&ssh_probe_type, ep, sink, core, NULL, &probe);
    if (rc != 0)
        return rc;
    rc = ssh_session_get(p, &hops[n - 1], ep, &s);
    if (rc != 0) {
        iw_layer_free_chain(probe);
        return rc;
    }
    /* Each phase has ep->timeout_ms; 20 ms waits bound the rounds well beyond that. */
    for (;;) {
        pthread_mutex_lock(&s->lock);
        rc = ssh_session_step(s, probe);
        if (rc != 0 && rc != 1) {
            ssh_trace_failed_hop(s, probe, rc);
            ssh_explain_command(s, probe, rc);
        }
        if (rc == 0 && ssh_session_phase(s) != phase) {
            phase = ssh_session_phase(s);
            deadline_ms = iw_now_ms() + ep->timeout_ms;
        }
        pthread_mutex_unlock(&s->lock);
        if (rc != 0)
            break;
        if (iw_now_ms() >= deadline_ms) {
            rc = ST_ERROR_OPERATION_TIMEOUT;
            pthread_mutex_lock(&s->lock);
            ssh_trace_failed_hop(s, probe, rc);
            pthread_mutex_unlock(&s->lock);
            break;
        }
        pthread_mutex_lock(&s->lock);
        if (s->state == S_LOWER) {
            imapwire_pollset ps = {0};
            struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
            nfds_t n;
            iw_layer_pollset(s->tcp, IMAPWIRE_WANT_WRITE, &ps);
            n = iw_pollset_to_pollfd(&ps, pfd);
            pthread_mutex_unlock(&s->lock);
            poll(pfd, n, 20);
        } else {
            /* never sleep holding the lock: other connects share this session */
            struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
            nfds_t n = ssh_wait_fds(s, pfd);
            pthread_mutex_unlock(&s->lock);
            poll(pfd, n, 20);
        }
    }
    iw_layer_free_chain(probe);
    if (rc != 1) {
        ssh_session_release(s);
        return rc;
    }
    *hold = s;
    return 0;
}

void iw_ssh_unhold(void *hold)
{
    if (hold != NULL)
        ssh_session_release(hold);
}
