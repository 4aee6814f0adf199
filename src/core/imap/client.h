/* client.h: the connection object behind an HCLIENT, and the command engine that the
 * connect machine and the session calls share (send a tagged command, read to its end). */
#ifndef IW_CLIENT_H
#define IW_CLIENT_H

#include <pthread.h>
#include "../transport/chain.h"
#include "../../security/creds.h"
#include "reader.h"

#define IW_MAX_CAPA        (64u << 10)   /* the stored capability list */
#define IW_LOGOUT_WAIT_MS  3000          /* ImapDisconnect's bound on LOGOUT */
#define IW_CONNECT_CEILING 2             /* whole connect <= this many timeouts */
#define IW_MIN_RATE        16u           /* bytes per ms a command must average beyond its
                                            ceiling (16 KB/s) to keep going */

enum iw_state { IW_NOT_AUTH, IW_AUTH, IW_SELECTED, IW_LOGOUT };
enum iw_status { IW_STATUS_OK = 1, IW_STATUS_NO, IW_STATUS_BAD };

#define IW_MAX_CUTS 16

struct iw_client;

/* A command on its way: wire bytes with the points where a synchronising literal makes
 * us wait for a "+" continuation, and what to do with responses until its tagged end. */
typedef struct iw_cmd {
    char   tag[16];
    char  *wire;                   /* "TAG ...\r\n", with literals */
    size_t wire_len;
    size_t cuts[IW_MAX_CUTS];      /* wire offsets to stop at until a continuation */
    int    ncuts, next_cut;
    int    secret;                 /* wipe wire on free */
    int    status;                 /* IW_STATUS_* once done */
    char   text[512];              /* the tagged reply after the tag, truncated */
    int  (*on_untagged)(struct iw_client *c, const iw_response *r, void *arg);
    int  (*on_continue)(struct iw_client *c, const iw_response *r, void *arg);
    void  *arg;
} iw_cmd;

typedef struct iw_connect_machine {
    int     state;
    int64_t phase_deadline_ms;
    int64_t total_deadline_ms;
    int64_t deadline_ms;           /* the nearer of the two: what the driver waits for */
    int64_t t_start_us, t_resolved_us, t_chain_us, t_ready_us;
    int64_t t_secure_start_us;     /* the STARTTLS command or the implicit handshake began */
    int64_t t_secure_us;           /* STARTTLS exchange and handshake, in total */
    int64_t t_connected_us;        /* first hop up (before a tunnel or proxy handshake) */
    iw_cmd *cmd;                   /* the connect's own commands (CAPABILITY, STARTTLS,
                                      ID): allocated for them, freed once ready, so an idle
                                      connection does not carry it */
} iw_connect_machine;

/* The client in parts, each with one rule for who writes it and when. "The driver" of a
 * moment is the one thread stepping the stream: during a connect the thread that steps
 * it (the caller in a blocking connect, the loop thread for ImapAsyncConnect, the
 * caller's loop for ImapConnectStart), afterwards a call holding io.lock, or the idle
 * watcher of an event handle, which only ever tries that lock. */

/* Configuration: what the caller asked for, copied and checked by connect_api.c before
 * the handle exists; read-only from iw_connect_begin on, by any thread that holds the
 * handle, without a lock. Two exceptions, right after iw_connect_begin and before the
 * connect is driven or handed to a loop: the transport text goes (it may hold a proxy
 * password) and the credentials' secrets are forgotten. */
typedef struct iw_client_config {
    DWORD              options;
    unsigned           timeout_ms;
    imapwire_endpoint  ep;         /* points into host, local_address, dns_servers */
    char              *host, *local_address, *dns_servers, *transport;
    char              *client_name, *client_version;
    iw_creds          *creds;
    struct iw_tls_use *tls;        /* the TLS policy of a secure connect (its layer's params) */
    IMAPTRACEPROC      trace;
    void              *trace_param;
} iw_client_config;

/* Session state: where the IMAP conversation is and what the server said it can do.
 * Written only by the driver, never by the idle watcher; read under io.lock, or between
 * calls on the owner's thread. capa is also read by ImapGetCapabilities and
 * ImapHasCapability while another thread's call on a FREETHREAD handle may replace it:
 * it is replaced (iw_capa_store) and read there under capa_lock. */
typedef struct iw_client_session {
    int                state;      /* enum iw_state */
    int                tls_up;     /* our TLS layer finished its handshake */
    pthread_mutex_t    capa_lock;
    char              *capa;       /* space-separated, as the server sent them */
    unsigned           capa_gen;   /* bumped by every new list: "did this answer have one?" */
    unsigned           next_tag;
    unsigned           auth_used;  /* the IMAP_AUTH_* of the login that succeeded, or 0
                                      with auth_done 0 (not logged in by ImapLogin) */
    int                auth_done;
} iw_client_session;

/* The driver: the stream and who may touch it. After the connect everything here but
 * lock and busy_thread belongs to whoever holds lock; during the connect, to the
 * thread stepping it. busy_thread is atomic; async and own are set by the connecting
 * thread before the loop or the caller can see them, and cleared on the owner's thread
 * by ImapDisconnect. broken only ever goes from 0 to 1, through iw_client_break. */
typedef struct iw_client_driver {
    pthread_mutex_t    lock;       /* held by a call using the chain; the idle watcher
                                      of an event handle only ever tries it */
    DWORD              busy_thread; /* the thread inside a call holding lock (0: none):
                                       its callbacks may not call back in */
    struct iw_async   *async;      /* an asynchronous connect's state (async.c), or NULL */
    struct iw_own     *own;        /* a connect stepped by the caller's loop (own_loop.c) */
    struct iw_forward *forward;    /* CREDENTIAL_TUNNEL_FORWARD: the forward below the chain,
                                      opened by api.c, closed after the chain */
    imapwire_layer    *top;
    iw_reader          reader;
    uint64_t           rx_bytes;
    char              *out;        /* bytes queued for the top layer */
    size_t             out_len, out_off, out_cap;
    int                out_secret; /* the queue holds a secret: wipe when drained */
    int                broken;     /* the stream is unusable: no command, no LOGOUT */
} iw_client_driver;

/* Records of what happened, each error record made on first use (an idle connection
 * keeps none of their 3.5 KB). timings: written by the connect's driver at its end,
 * read-only after. ei, the handle's last failure (ImapGetErrorInfo): written and read
 * under io.lock once the connect is over. ei_work: what the layers of the running call
 * reported, the driver's. ei_party: the party a layer of the chain last said it waits
 * for, the connect's only. */
typedef struct iw_client_records {
    IMAPTIMINGS        timings;
    IMAPERRORINFO     *ei;
    IMAPERRORINFO     *ei_work;
    IMAPERRORINFO     *ei_party;
} iw_client_records;

typedef struct iw_client {
    HCLIENT            handle;     /* set once, before the handle is in the table */
    DWORD              owner;      /* atomic: swapped under the handle table's lock */
    iw_client_config   cfg;
    iw_client_session  sess;
    iw_client_driver   io;
    iw_connect_machine cm;         /* the connect's driver's, until CM_READY */
    iw_client_records  rec;
} iw_client;

/* connect.c: frees the connect's command (after the connect, or with the client) */
void iw_connect_cmd_free(iw_client *c);

/* command.c */
int  iw_cmd_start(iw_client *c, iw_cmd *cmd, const char *text, size_t len,
                  const size_t *cuts, int ncuts, int secret, const char *trace_text);
int  iw_cmd_step(iw_client *c, iw_cmd *cmd, unsigned *want);
void iw_cmd_clear(iw_cmd *cmd);
int  iw_queue(iw_client *c, const char *p, size_t n, int secret);
int  iw_flush(iw_client *c, unsigned *want);
int  iw_handle_common(iw_client *c, const iw_response *r);
void iw_trace_response(iw_client *c, const iw_response *r);
void iw_trace_line(iw_client *c, unsigned dir, const char *p, size_t n);
int  iw_read_response(iw_client *c, iw_response *r, unsigned *want);

/* drive.c: run a step function to completion, polling what it waits for */
typedef int (*iw_step_fn)(iw_client *c, void *arg, unsigned *want);
int  iw_drive(iw_client *c, iw_step_fn step, void *arg, const int64_t *deadline_ms);
int  iw_run_command(iw_client *c, iw_cmd *cmd);

/* capa.c */
void iw_capa_store(iw_client *c, char *list);
int  iw_capa_set(iw_client *c, const char *p, size_t n);
int  iw_capa_has(const iw_client *c, const char *name);
int  iw_capa_from_code(iw_client *c, const char *p, size_t n);
int  iw_capa_from_untagged(iw_client *c, const iw_response *r, int *rc);
/* After a login: capabilities change (RFC 3501 6.2.3), so unless the answer carried the
 * new list (capa_gen moved past gen), they are asked for. */
int  iw_capa_refresh(iw_client *c, unsigned gen);

/* mutf7.c: a UTF-8 mailbox name in modified UTF-7 (RFC 3501 5.1.3), appended to out;
 * 0 or ST_ERROR_INVALID_PARAMETER for bytes that are not UTF-8. */
#define IW_MUTF7_RUN 64                       /* code units encoded per run at most */
int  iw_mutf7_encode(const char *utf8, iw_sb *out);

/* connect.c */
extern const iw_layer_sink iw_client_sink;   /* layers' notes and marks go to the client */
void iw_client_note(iw_client *c, const char *text);   /* an IMAP_TRACE_INFO line */
/* The connection is idle (a connect or command just finished): the reader and the layers
 * give back what they hold only for traffic. */
void iw_client_rest(iw_client *c);
/* The record behind *slot, made now if there is none; out of memory, a scratch record of
 * the thread takes what is written (the error code itself is kept by the caller). */
IMAPERRORINFO *iw_ei(IMAPERRORINFO **slot);
void iw_ei_drop(IMAPERRORINFO **slot);
/* The running call's record becomes the handle's last failure. */
void iw_ei_keep_work(iw_client *c);
int  iw_connect_begin(iw_client *c);
int  iw_connect_step(iw_client *c, void *arg, unsigned *want);
/* A connect that failed with rc: the stage it was at and the party, added to what the
 * layers reported, become the handle's error info; the timings so far are filled in.
 * Returns rc. */
int  iw_connect_fail(iw_client *c, int rc);
/* A call on a connected handle that failed with rc at stage: the same, without timings;
 * also the thread's record. Returns rc. */
int  iw_client_fail(iw_client *c, int rc, DWORD stage);
/* An idle connection the server ended (IMAP_EVENT_DISCONNECT): the handle's error info;
 * called with io.lock held. */
void iw_client_dropped(iw_client *c, int rc);

/* async.c: connects run by the loop thread */
typedef struct iw_async iw_async;
int  iw_async_start(iw_client *c, IMAPEVENTPROC proc, void *param);
int  iw_async_pending(const iw_client *c);
/* A call on a watched handle left bytes read and not looked at (under io.lock); then,
 * with the lock released, iw_async_look has the watcher look at them. */
int  iw_async_held(const iw_client *c);
void iw_async_look(iw_client *c);   /* the connect runs and its event is to come */
/* Before the client is freed: a pending connect is cancelled (no event ever; returns 1),
 * a running event is waited for (unless called from inside it); then the loop no longer
 * refers to the client. */
int  iw_async_detach(iw_client *c);

/* own_loop.c: connects stepped by the caller's own event loop (the extension's calls) */
typedef struct iw_own iw_own;
int  iw_own_start(iw_client *c);             /* after iw_connect_begin; no I/O */
int  iw_own_pending(const iw_client *c);     /* such a connect runs: other calls wait */
/* The sockets to watch now and the milliseconds until a timeout step is due. */
int  iw_own_sockets(iw_client *c, IMAPSOCKET *out, int max, int *count, int *timeout_ms);
/* One step: 0 connected, IMAPWIRE_AGAIN, or the connect's error; a client disconnected
 * inside the step (from its trace callback) is freed here: ST_ERROR_INVALID_HANDLE. */
int  iw_own_action(iw_client *c, int fd, unsigned events);
/* ImapDisconnect: 2 when a step is running (that step frees the client when it
 * returns), 1 when the connect did not succeed (no LOGOUT), else 0. */
int  iw_own_detach(iw_client *c);
void iw_own_free(iw_client *c);              /* closes the duplicates handed out */

/* client.c */
iw_client *iw_client_new(void);
/* The one way into "the stream is unusable" (an I/O error, a protocol violation, LOGOUT,
 * a relay that handed the stream over): no command goes out after it, nor a LOGOUT at
 * close. Returns rc. */
int  iw_client_break(iw_client *c, int rc);
void iw_client_free(iw_client *c);
void iw_client_close(iw_client *c, int polite);

#endif /* IW_CLIENT_H */
