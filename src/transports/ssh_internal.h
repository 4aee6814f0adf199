/* ssh_internal.h: what the parts of the SSH transport (ssh_*.c) share: the session every
 * connection's channel runs over, the layer's context, and the calls between the parts. */
#ifndef IW_SSH_INTERNAL_H
#define IW_SSH_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <libssh2.h>
#include "../core/transport/chain.h"
#include "../security/known_hosts.h"
#include "../security/ssh_hops.h"
#include "../security/ssh_policy.h"

/* The calls between the parts keep the names they had as statics of one file, so code
 * moves between the parts unchanged; their link names carry the library's prefix, so the
 * static library defines no ssh_* symbol (libssh's own names start so). */
#define ssh_list_lock           iw_ssh_list_lock
#define ssh_send_cb             iw_ssh_send_cb
#define ssh_recv_cb             iw_ssh_recv_cb
#define ssh_mem_alloc           iw_ssh_mem_alloc
#define ssh_mem_drop            iw_ssh_mem_drop
#define ssh_mem_free            iw_ssh_mem_free
#define ssh_mem_realloc         iw_ssh_mem_realloc
#define ssh_ack                 iw_ssh_ack
#define ssh_tx_flush            iw_ssh_tx_flush
#define ssh_wait_fds            iw_ssh_wait_fds
#define ssh_wait                iw_ssh_wait
#define ssh_session_free        iw_ssh_session_free
#define ssh_closing_step        iw_ssh_closing_step
#define ssh_close_later         iw_ssh_close_later
#define ssh_session_release     iw_ssh_session_release
#define ssh_session_get         iw_ssh_session_get
#define ssh_session_die         iw_ssh_session_die
#define ssh_session_stuck       iw_ssh_session_stuck
#define ssh_session_retire      iw_ssh_session_retire
#define ssh_session_successor   iw_ssh_session_successor
#define ssh_libssh2_error       iw_ssh_libssh2_error
#define ssh_offer_hostkeys      iw_ssh_offer_hostkeys
#define ssh_hostkey_step        iw_ssh_hostkey_step
#define ssh_auth_step           iw_ssh_auth_step
#define ssh_alive_start         iw_ssh_alive_start
#define ssh_session_step        iw_ssh_session_step
#define ssh_session_phase       iw_ssh_session_phase
#define ssh_trace_failed_hop    iw_ssh_trace_failed_hop
#define ssh_explain_command     iw_ssh_explain_command
#define ssh_wake_open           iw_ssh_wake_open
#define ssh_wake_take           iw_ssh_wake_take
#define ssh_wake_close          iw_ssh_wake_close
#define ssh_wake_wait           iw_ssh_wake_wait
#define ssh_wake_others         iw_ssh_wake_others
#define ssh_wake_up_add         iw_ssh_wake_up_add
#define ssh_wake_up_remove      iw_ssh_wake_up_remove
#define ssh_unlock              iw_ssh_unlock

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

struct ssh_ctx;

typedef struct ssh_session {
    struct ssh_session *next;
    unsigned char    id[32];        /* keyed digest of server, hop, account and secrets */
    unsigned         refs;
    pthread_mutex_t  lock;
    /* A read by one channel can take another's packets off the socket into libssh2's
     * queue, where that channel's poll cannot see them: the channels about to wait are
     * listed here (under lock), and whoever read packets (moved) signals them
     * (ssh_wake.c). */
    struct ssh_ctx  *waiters;
    int              moved;         /* packets were read since the last signalling */
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
    /* libssh2 keeps one channel open in flight per session (the open's state and its
     * request are the session's): an open started meanwhile would continue that one and
     * get its channel, to its destination. One channel opens at a time (under lock); an
     * open whose connection went away unanswered is finished by the next opener, and
     * its channel closed unused. */
    struct ssh_ctx  *opener;
    int              open_orphaned;
    /* When the open in flight (the opener's or the orphan's) began, 0 if none (atomic:
     * lookups read it). One unanswered this long is stuck (sshd still connecting to a
     * host that drops packets, for minutes): the session is handed to no new connect, so
     * the next one makes a new session, and the connects waiting for their turn move to
     * that one once it is there (ssh_channel.c). */
    int64_t          open_since_ms;
    /* The channels open now (L_UP and later, until destroyed): any of them can make
     * libssh2 decode what it read and has not looked at (ssh_wake.c). */
    struct ssh_ctx  *ups;
    int              rx_fresh;      /* the last read of the hop brought bytes */
    /* What the hop did not take yet, in order (under lock). libssh2 keeps a packet it
     * could not send whole as the session's, and refuses any other packet until the
     * call that began it comes back (LIBSSH2_ERROR_BAD_USE: the session died of it when
     * another channel wrote meanwhile): so the send callback takes every packet whole
     * and holds the rest here, sent before anything else goes to the hop. */
    unsigned char   *tx;
    size_t           tx_off, tx_len, tx_cap;
    unsigned         reads;         /* reads of the hop that brought something, ever */
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
    int              phase;        /* P_*, or -1 before the first step */
    int64_t          phase_deadline_ms;
    unsigned         connect_timeout_ms;   /* 0: the endpoint's timeout */
    void           (*phase_started)(void *core);
    char             said[96];     /* libssh2's words for a channel the server refused */
    /* its wake-up descriptor (ssh_wake.c), the waiters list and its state: under s->lock */
    int              wake_fd;
    int              waiting, signalled, wants_write;
    struct ssh_ctx  *wnext, **wpprev;   /* wpprev: the pointer that points at us */
    struct ssh_ctx  *unext, **upprev;   /* in s->ups while its channel is open */
    unsigned         seen_reads;   /* s->reads when its last step ended */
};

/* libssh2's closing calls may want the network even when freeing: give each a short,
 * bounded chance, then go on (the socket closes right after either way). */
#define SSH_CLOSE_TRIES 20
#define SSH_CLOSE_WAIT_MS 10

/* the session list (ssh_session.c) and its lock, which also guards refs and the drivers */
extern pthread_mutex_t ssh_list_lock;

/* ssh_io.c: libssh2's I/O through the session's hop, its memory, the waits */
ssize_t ssh_send_cb(libssh2_socket_t fd, const void *buf, size_t len, int flags,
                    void **abstract);
ssize_t ssh_recv_cb(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract);
void   *ssh_mem_alloc(size_t n, void **abstract);
void    ssh_mem_drop(ssh_session *s, ssh_mem_block *b);
void    ssh_mem_free(void *ptr, void **abstract);
void   *ssh_mem_realloc(void *ptr, size_t n, void **abstract);
void    ssh_ack(ssh_session *s);
int     ssh_tx_flush(ssh_session *s);
/* A channel's write waits (the layer says AGAIN) while this much is held unsent. */
#define SSH_TX_SOFT (64u * 1024)
nfds_t  ssh_wait_fds(ssh_session *s, struct pollfd *pfd);
void    ssh_wait(ssh_session *s, int ms);

#define SSH_OPEN_STUCK_MS 1500
#define SSH_REJOIN_LOOK_MS 100     /* how often a turn behind a stuck open looks for one */

/* ssh_session.c: the shared sessions */
void ssh_session_release(ssh_session *s);
int  ssh_session_get(const iw_ssh_params *p, const iw_ssh_hop *hop,
                     const imapwire_endpoint *ep, ssh_session **out);
int  ssh_session_die(ssh_session *s, int error);
int  ssh_session_stuck(ssh_session *s, int64_t now);
void ssh_session_retire(ssh_session *s);
ssh_session *ssh_session_successor(const ssh_session *s);
int  ssh_libssh2_error(ssh_session *s, int rc, int during);

/* ssh_teardown.c: a session's end, and the channel closes left to finish */
void ssh_session_free(ssh_session *s);
void ssh_closing_step(ssh_session *s);
void ssh_close_later(ssh_session *s, LIBSSH2_CHANNEL *ch);

/* The set-up's states are stepped by ssh_session_step (ssh_setup.c) through the part
 * that owns them, each returning 1 (ready), 0 (wait), an ST_ERROR_* (the session died),
 * or SSH_STEP_NEXT: the state changed, step again at once. */
#define SSH_STEP_NEXT (-1)

/* A state's libssh2 call answered rc: wait on EAGAIN, the session dies of another
 * failure (during: what it failed in), and success moves it to state next. */
static inline int ssh_state_result(ssh_session *s, int rc, int during, int next)
{
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (rc != 0)
        return ssh_libssh2_error(s, rc, during);
    s->state = next;
    return SSH_STEP_NEXT;
}

/* ssh_hostkey.c: the algorithms to offer before the handshake; S_HANDSHAKE, S_HOSTKEY */
int  ssh_offer_hostkeys(ssh_session *s, imapwire_layer *l);
int  ssh_hostkey_step(ssh_session *s, imapwire_layer *l);

/* ssh_auth.c: the S_AUTH_* states */
int  ssh_auth_step(ssh_session *s, imapwire_layer *l);

/* ssh_keepalive.c */
void ssh_alive_start(ssh_session *s);

/* ssh_wake.c: the channels' wake-up descriptors. A channel's poll set lists it as a
 * waiter; its steps take it off (and read its signal); whoever ran libssh2 under s->lock
 * unlocks with ssh_unlock, which signals the waiters its reads may concern. */
#define SSH_WAKE_FALLBACK_MS 20    /* only when a poll set has no room for the descriptor */
int  ssh_wake_open(struct ssh_ctx *c);
void ssh_wake_take(struct ssh_ctx *c);
void ssh_wake_close(struct ssh_ctx *c);
void ssh_wake_wait(ssh_session *s, struct ssh_ctx *c, unsigned want, imapwire_pollset *ps);
void ssh_wake_others(ssh_session *s, struct ssh_ctx *self);
void ssh_wake_up_add(ssh_session *s, struct ssh_ctx *c);
void ssh_wake_up_remove(struct ssh_ctx *c);
void ssh_unlock(ssh_session *s, struct ssh_ctx *self);

/* ssh_setup.c: the session's set-up steps, their phases, and who failed */
int  ssh_session_step(ssh_session *s, imapwire_layer *l);
int  ssh_session_phase(const ssh_session *s);
void ssh_trace_failed_hop(const ssh_session *s, imapwire_layer *l, int error);
void ssh_explain_command(const ssh_session *s, imapwire_layer *l, int error);

#endif /* IW_SSH_INTERNAL_H */
