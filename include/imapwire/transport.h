/* transport.h: the SDK for people who write imapwire transports and plugins.
 * A transport type is a const vtable; a layer is one instance of it in a connection's chain. */
/** @file
 *  The transport SDK: write a transport type (a vtable of non-blocking slots), register it
 *  with ImapRegisterTransport() or ship it as a plugin with IMAPWIRE_PLUGIN_DEFINE(). The
 *  guide is docs/transport-sdk.md; examples/custom_transport.c is a complete filter. */
#ifndef IMAPWIRE_TRANSPORT_H
#define IMAPWIRE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <imapwire/imapwire.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI of this header. A type or plugin built against a different MAJOR is refused with
 *  ST_ERROR_PLUGIN_VERSION; a newer MINOR only appends slots and fields. */
#define IMAPWIRE_TRANSPORT_ABI_MAJOR 1  /**< incompatible changes */
#define IMAPWIRE_TRANSPORT_ABI_MINOR 3  /**< appended slots and fields */
/** Both as one number, MAJOR << 16 | MINOR: what abi_version fields hold. */
#define IMAPWIRE_TRANSPORT_ABI \
    ((unsigned)((IMAPWIRE_TRANSPORT_ABI_MAJOR << 16) | IMAPWIRE_TRANSPORT_ABI_MINOR))

/** Status values of the slots below: 0 is success, IMAPWIRE_AGAIN means "would block,
 *  call again when the poll set says so", a positive value is an ST_ERROR_* code. */
#define IMAPWIRE_OK       0     /**< success */
#define IMAPWIRE_AGAIN    (-1)  /**< would block: call again when the poll set says so */
/** From query(): this layer does not answer that code; the core asks the layer below. */
#define IMAPWIRE_PASS     (-2)

/** Directions a layer waits for (bits). */
#define IMAPWIRE_WANT_READ  0x1u  /**< readable */
#define IMAPWIRE_WANT_WRITE 0x2u  /**< writable */

/** Type flags. */
#define IMAPWIRE_TRANSPORT_BOTTOM    0x1u  /**< opens its own connection; has no layer below */
#define IMAPWIRE_TRANSPORT_ENCRYPTED 0x2u  /**< bytes written above it are protected on the wire */

/** Query codes for query(); unknown codes MUST return IMAPWIRE_PASS. */
#define IMAPWIRE_QUERY_SOCKET   1  /**< out: int, the descriptor of the bottom socket */
#define IMAPWIRE_QUERY_SECURITY 2  /**< out: SECURITYINFO, fill the fields this layer knows */
#define IMAPWIRE_QUERY_PEER     3  /**< out: char[64], the connected peer as "addr port" */
/** out: NULL. The connection is at rest (no command outstanding, nothing buffered
 *  above): a layer may free what it keeps only for traffic (record buffers), then SHOULD
 *  return what the layers below answer, so they rest too. */
#define IMAPWIRE_QUERY_REST     4

/** Phase marks a layer may report through imapwire_host_api.mark(). */
#define IMAPWIRE_MARK_RESOLVED  1  /**< name resolution finished */
#define IMAPWIRE_MARK_CONNECTED 2  /**< the first hop is connected (before a tunnel or proxy handshake) */

#define IMAPWIRE_POLLSET_MAX 8  /**< the most descriptors one poll set holds */

/** What a chain waits for: descriptors with directions, and an optional wake-up time. */
typedef struct imapwire_pollset {
    unsigned count;                /**< entries used in fds */
    struct {
        int      fd;               /**< a descriptor to watch */
        unsigned want;             /**< IMAPWIRE_WANT_* bits */
    } fds[IMAPWIRE_POLLSET_MAX];   /**< the descriptors; use imapwire_pollset_add() */
    int64_t wakeup_ms;             /**< monotonic ms (host->now_ms) to call again; 0 = none */
} imapwire_pollset;

/** Add a descriptor (merging directions for one already there). 0, or -1 when full. */
static inline int imapwire_pollset_add(imapwire_pollset *ps, int fd, unsigned want)
{
    unsigned i;
    for (i = 0; i < ps->count; i++) {
        if (ps->fds[i].fd == fd) {
            ps->fds[i].want |= want;
            return 0;
        }
    }
    if (ps->count >= IMAPWIRE_POLLSET_MAX)
        return -1;
    ps->fds[ps->count].fd = fd;
    ps->fds[ps->count].want = want;
    ps->count++;
    return 0;
}

/** Ask to be called again no later than at_ms (monotonic milliseconds). */
static inline void imapwire_pollset_wakeup(imapwire_pollset *ps, int64_t at_ms)
{
    if (at_ms <= 0)
        return;                    /* "no deadline" must not erase someone else's */
    if (ps->wakeup_ms == 0 || at_ms < ps->wakeup_ms)
        ps->wakeup_ms = at_ms;
}

typedef struct imapwire_layer imapwire_layer;          /**< see struct imapwire_layer */

/** What a layer knows of its own failure, for host->report (ABI 1.3): it goes into the
 *  connect's IMAPERRORINFO. Fields a lower layer already filled stay as they are. */
typedef struct imapwire_error_report {
    size_t      struct_size;       /**< sizeof(imapwire_error_report) of the layer */
    int         error;             /**< the ST_ERROR_* the layer returns */
    unsigned    stage;             /**< IMAP_STAGE_*: IMAP_STAGE_PROXY for a proxy */
    unsigned    hop;               /**< 1-based position of the failing party in the route
                                        (a proxy at the bottom is 1); 0 = none */
    const char *peer;              /**< "host:port" of the party that failed, or NULL */
    const char *file;              /**< a file the layer was given and could not use, or NULL */
    const char *fingerprint;       /**< an SSH host key presented, "SHA256:<base64>", or NULL */
    /** One line in plain words, with the peer's own words where it sent some (a status
     *  line, a reply code), or NULL. NEVER a password or other secret. */
    const char *detail;
} imapwire_error_report;
typedef struct imapwire_host_api imapwire_host_api;    /**< see struct imapwire_host_api */
/** A connection a layer opens for itself through the host API (hop_open): opaque, used
 *  only through the host->hop_* calls, so a layer never depends on how the core makes it. */
typedef struct imapwire_hop imapwire_hop;

/** Where the connection is going, as the caller asked (read-only for layers). */
typedef struct imapwire_endpoint {
    const char *host;              /**< the host name or address the caller gave */
    unsigned    port;              /**< the remote port after the port rules */
    unsigned    timeout_ms;        /**< the bound of each wait */
    const char *local_address;     /**< bind address for outgoing sockets, or NULL */
    const char *dns_servers;       /**< c-ares server list, or NULL for the system's */
} imapwire_endpoint;

/** A transport type. Fill it with designated initialisers; leave unused slots NULL.
 *  A NULL slot passes the call to the layer below (a bottom type MUST fill
 *  connect, send, recv and pollset). Slots are only ever appended. */
typedef struct imapwire_transport_type {
    unsigned    abi_version;       /**< IMAPWIRE_TRANSPORT_ABI the type was built against */
    size_t      struct_size;       /**< sizeof(imapwire_transport_type) it was built with */
    const char *name;              /**< "tcp", "tls", "socks5", ...: [a-z0-9_-], at most 31 */
    unsigned    flags;             /**< IMAPWIRE_TRANSPORT_* */
    size_t      ctx_size;          /**< bytes of zeroed private state the core allocates */

    /** Set up from the argument text (after "name:"; NULL if none). No I/O. */
    int  (*create)(imapwire_layer *layer, const char *args);
    /** Free what create and connect made. Called once, also after a failed create. */
    void (*destroy)(imapwire_layer *layer);
    /** Make progress without blocking; set *done = 1 once the layer is up. A layer with a
     *  layer below MUST connect that one first (host->connect_next). */
    int  (*connect)(imapwire_layer *layer, int *done);
    /** Orderly close (TLS close_notify, SSH channel EOF); best effort, non-blocking. */
    int  (*shutdown)(imapwire_layer *layer, int *done);
    /** Write up to len bytes; *sent gets how many (> 0 on IMAPWIRE_OK). */
    int  (*send)(imapwire_layer *layer, const void *buf, size_t len, size_t *sent);
    /** Read up to len bytes; *got gets how many; IMAPWIRE_OK with *got == 0 is end of stream. */
    int  (*recv)(imapwire_layer *layer, void *buf, size_t len, size_t *got);
    /** Add the descriptors this layer needs to make progress, given what the caller above
     *  wants (IMAPWIRE_WANT_*); translate, e.g. TLS may need to write to read. */
    void (*pollset)(imapwire_layer *layer, unsigned want, imapwire_pollset *ps);
    /** Bytes this layer holds that a recv would return without waiting. */
    size_t (*pending)(imapwire_layer *layer);
    /** Answer an IMAPWIRE_QUERY_* code, or return IMAPWIRE_PASS. */
    int  (*query)(imapwire_layer *layer, int what, void *out);
} imapwire_transport_type;

/** One instance of a type in a connection's chain. The core owns it; implementers read
 *  these fields and keep their own state in ctx. */
struct imapwire_layer {
    const imapwire_transport_type *type;     /**< the layer's type */
    imapwire_layer                *next;     /**< the layer below; NULL for a bottom layer */
    void                          *ctx;      /**< type->ctx_size zeroed bytes */
    const imapwire_endpoint       *endpoint; /**< where the chain goes */
    const imapwire_host_api       *host;     /**< core services */
    void                          *core;     /**< the core's; implementers MUST NOT touch */
    /* ABI 1.1 */
    /** What the layer's creator gives it besides the argument text, or NULL: a struct
     *  whose first field is its size (for "tls", an imapwire_tls_params). A type MUST
     *  check that size covers every field it reads. The creator keeps it, and all it
     *  points to, valid until the layer is destroyed. */
    const void                    *params;
};

/** The parameters the core gives a layer of the type named "tls" (ABI 1.1): where trust
 *  comes from stays the core's (its security module): the layer asks it through these
 *  calls, so a TLS type needs nothing but this header and OpenSSL. OpenSSL objects are
 *  passed as void pointers so this header does not need OpenSSL's. */
typedef struct imapwire_tls_params {
    size_t      struct_size;       /**< sizeof(imapwire_tls_params) of the core */
    const char *server_name;       /**< the name to verify and send as SNI: a host name, or
                                        an IP literal (no brackets), which gets no SNI */
    int         verify;            /**< 0 with IMAP_OPTION_TRUSTEDSITE: no chain or name check */
    void       *ssl_ctx;           /**< SSL_CTX *: shared; the layer MUST NOT change or free it */
    void       *policy;            /**< the core's; passed back to every call below */
    /** A session to offer for resumption (SSL_SESSION *, a new reference the layer frees
     *  with SSL_SESSION_free), or NULL. Only ever one made under the same checks. */
    void      *(*session_get)(void *policy);
    /** Ties ssl (SSL *) to this connect before the handshake, so the sessions the server
     *  issues are cached under this connect's checks. */
    void       (*session_attach)(void *policy, void *ssl);
    /** The ST_ERROR_CERTIFICATE_* for a failed X509 verification result. */
    int        (*verify_error)(void *policy, long x509_result);
    /** Fills the TLS fields of a SECURITYINFO from a connected ssl (SSL *). */
    void       (*describe)(void *policy, void *ssl, int verify, SECURITYINFO *info);
    /** (Since 1.2; read only when struct_size covers it.) The error to report for a
     *  handshake that failed with error (ST_ERROR_TLS_HANDSHAKE, or what verify_error
     *  gave): the core answers ST_ERROR_TLS_LIBRARY when TLS no longer works in this
     *  process at all, else error. */
    int        (*handshake_error)(void *policy, int error);
} imapwire_tls_params;

/** Core services handed to plugins, so a plugin never links to library internals. */
struct imapwire_host_api {
    unsigned abi_version;          /**< IMAPWIRE_TRANSPORT_ABI of the library */
    size_t   struct_size;          /**< sizeof(imapwire_host_api) in the library */
    int     (*register_transport)(const imapwire_transport_type *type); /**< as ImapRegisterTransport(); returns an ST_ERROR_* or 0 */
    /** A note to the connection's trace callback (IMAP_TRACE_INFO). */
    void    (*trace)(imapwire_layer *layer, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    int64_t (*now_ms)(void);       /**< monotonic clock */
    void    (*mark)(imapwire_layer *layer, int mark);  /**< IMAPWIRE_MARK_* happened now */
    /* The layer below, with the pass-through defaults applied. */
    int     (*connect_next)(imapwire_layer *layer, int *done);   /**< the connect slot of the layer below */
    int     (*shutdown_next)(imapwire_layer *layer, int *done);  /**< its shutdown slot */
    int     (*send_next)(imapwire_layer *layer, const void *buf, size_t len, size_t *sent); /**< its send slot */
    int     (*recv_next)(imapwire_layer *layer, void *buf, size_t len, size_t *got); /**< its recv slot */
    void    (*pollset_next)(imapwire_layer *layer, unsigned want, imapwire_pollset *ps); /**< its pollset slot */
    size_t  (*pending_next)(imapwire_layer *layer);              /**< its pending slot */
    int     (*query_next)(imapwire_layer *layer, int what, void *out); /**< its query slot */

    /* ABI 1.1: a hop, a connection of the calling layer's own (check IMAPWIRE_HOST_HAS). */
    /** Makes a TCP connection to host:port owned by layer, without I/O yet: the library's
     *  own TCP, resolving a name with c-ares, racing the addresses (RFC 8305) and binding
     *  the local address, with the DNS servers and timeout of layer->endpoint. host is a
     *  name, an IPv4 literal or an IPv6 literal with or without brackets; it is copied.
     *  The hop's traces and its IMAPWIRE_MARK_RESOLVED go where layer's go; the layer
     *  marks IMAPWIRE_MARK_CONNECTED itself if the hop is its first one.
     *  Returns 0 with *hop set, ST_ERROR_INVALID_PARAMETER (bad host or port) or
     *  ST_ERROR_OUT_OF_MEMORY. A layer MAY call it from create or connect; it MUST free
     *  the hop with hop_free by the end of its destroy. A hop MUST NOT outlive its layer
     *  or be used by another layer, and is used by one thread at a time, as its layer. */
    int     (*hop_open)(imapwire_layer *layer, const char *host, unsigned port,
                        imapwire_hop **hop);
    /** As the connect slot: non-blocking; 0 with *done = 1 once connected, 0 with
     *  *done = 0 (or IMAPWIRE_AGAIN) to wait on hop_pollset, or an ST_ERROR_* such as
     *  ST_ERROR_HOST_NOT_FOUND or ST_ERROR_CONNECTION_REFUSED. The hop MUST be connected
     *  before hop_send or hop_recv are called. */
    int     (*hop_connect)(imapwire_hop *hop, int *done);
    /** As the send and recv slots: 0 with *sent > 0, or with *got bytes (0 is the end of
     *  the stream), IMAPWIRE_AGAIN, or an ST_ERROR_*. They never block. */
    int     (*hop_send)(imapwire_hop *hop, const void *buf, size_t len, size_t *sent);
    int     (*hop_recv)(imapwire_hop *hop, void *buf, size_t len, size_t *got); /**< see hop_send */
    /** Adds what the hop waits for, given what the caller wants (IMAPWIRE_WANT_*); while
     *  connecting, what the connect waits for. A layer MUST add its hop's poll set to its
     *  own from its pollset slot, or it is never woken for the hop. */
    void    (*hop_pollset)(imapwire_hop *hop, unsigned want, imapwire_pollset *ps);
    /** Bytes the hop holds that hop_recv would return without waiting. */
    size_t  (*hop_pending)(imapwire_hop *hop);
    /** Answers IMAPWIRE_QUERY_SOCKET and IMAPWIRE_QUERY_PEER for the hop (its peer is
     *  host:port of hop_open, as an address), else IMAPWIRE_PASS. */
    int     (*hop_query)(imapwire_hop *hop, int what, void *out);
    /** Closes the hop and frees it; NULL is allowed. The pointer MUST NOT be used again. */
    void    (*hop_free)(imapwire_hop *hop);

    /* ABI 1.2 (check IMAPWIRE_HOST_HAS). */
    /** Ends a child process the layer started, without anyone waiting for it. destroy may
     *  run on the library's event-loop thread, which serves every asynchronous connect and
     *  forward and must never wait; a layer whose destroy would wait for a child calls
     *  this first (with the child's stdin already closed). On the loop thread the library
     *  takes the child and returns 0: it gives it grace_ms to exit, then SIGTERM and
     *  term_ms, then SIGKILL, reaps it, and closes pidfd and err_fd (each may be -1;
     *  err_fd, the child's stderr, is read and dropped meanwhile). On any other thread it
     *  returns IMAPWIRE_PASS and takes nothing: the layer ends the child itself as
     *  before, so a blocking disconnect returns with the child gone. Otherwise an
     *  ST_ERROR_*, and the layer keeps the child. */
    int     (*child_end)(imapwire_layer *layer, int pid, int pidfd, int err_fd,
                         unsigned grace_ms, unsigned term_ms);

    /* ABI 1.3 (check IMAPWIRE_HOST_HAS). */
    /** Says what failed, before the layer returns the error from a slot: who (peer, hop),
     *  at which step (stage), and the peer's own words (detail), so the application's
     *  ImapGetErrorInfo() names the proxy or host that failed instead of the IMAP server.
     *  Strings are copied (truncated to the IMAPERRORINFO fields); control bytes become
     *  spaces. Once per failure is enough; later reports fill only what is still empty.
     *  With error 0 it is no failure but a note of the party the layer now waits for
     *  (stage, hop, peer, and in detail how far it got, e.g. "accepted the connection and
     *  did not answer"): if the connect times out before the layer is up, that party is
     *  named, with the detail and how long it waited; a later note replaces it. */
    void    (*report)(imapwire_layer *layer, const imapwire_error_report *r);
};

/** Whether the library's host API has member (one appended in a later minor version):
 *  a plugin MUST check this before it calls such a member, e.g.
 *  IMAPWIRE_HOST_HAS(host, hop_open). */
#define IMAPWIRE_HOST_HAS(host, member) \
    ((host)->struct_size >= offsetof(imapwire_host_api, member) + sizeof((host)->member))

/** The one symbol a plugin exports. Check host->abi_version's major, register types with
 *  host->register_transport, return 0 or an ST_ERROR_* code. */
typedef int (*imapwire_plugin_init_fn)(const imapwire_host_api *host);
#define IMAPWIRE_PLUGIN_INIT_SYMBOL "imapwire_plugin_init"  /**< its name, for dlsym */

/** Plugins are often built with -fvisibility=hidden: the two symbols are exported anyway. */
#if defined(__GNUC__)
#define IMAPWIRE_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define IMAPWIRE_PLUGIN_EXPORT
#endif
#ifdef __cplusplus
#define IMAPWIRE_PLUGIN_LINKAGE extern "C"  /**< C linkage for the exports */
/** Internal to IMAPWIRE_PLUGIN_DEFINE: the imapwire_plugin_abi export; a namespace-scope
 *  const has internal linkage in C++ unless declared extern. */
#define IMAPWIRE_PLUGIN_ABI_EXPORT_                                                        \
    extern "C" IMAPWIRE_PLUGIN_EXPORT const unsigned imapwire_plugin_abi = IMAPWIRE_TRANSPORT_ABI
#else
#define IMAPWIRE_PLUGIN_LINKAGE extern  /**< linkage of the exports */
/** Internal to IMAPWIRE_PLUGIN_DEFINE: the imapwire_plugin_abi export, declared first,
 *  so -Wmissing-variable-declarations has nothing to say. */
#define IMAPWIRE_PLUGIN_ABI_EXPORT_                                                        \
    extern IMAPWIRE_PLUGIN_EXPORT const unsigned imapwire_plugin_abi;                      \
    IMAPWIRE_PLUGIN_EXPORT const unsigned imapwire_plugin_abi = IMAPWIRE_TRANSPORT_ABI
#endif

/** What IMAPWIRE_PLUGIN_DEFINE's init does: refuses another ABI major (before it reads
 *  anything else of host), then registers the n types in order and stops at the first
 *  error, which it returns (the loader then removes what was registered). */
static inline int imapwire_plugin_register(const imapwire_host_api *host,
                                           const imapwire_transport_type *const *types,
                                           size_t n)
{
    size_t i;
    if (host == NULL || (host->abi_version >> 16) != IMAPWIRE_TRANSPORT_ABI_MAJOR)
        return ST_ERROR_PLUGIN_VERSION;
    for (i = 0; i < n; i++) {
        int rc = host->register_transport(types[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/** Writes a plugin's two exports: imapwire_plugin_init, which registers the types given
 *  as pointers, and imapwire_plugin_abi, which the loader reads before it runs any code
 *  of the file. Use it once, at file scope, in one file of the plugin, ending with a ';':
 *  IMAPWIRE_PLUGIN_DEFINE(&my_type); or IMAPWIRE_PLUGIN_DEFINE(&type_a, &type_b); */
#define IMAPWIRE_PLUGIN_DEFINE(...)                                                        \
    IMAPWIRE_PLUGIN_LINKAGE IMAPWIRE_PLUGIN_EXPORT int                                     \
    imapwire_plugin_init(const imapwire_host_api *host);                                   \
    IMAPWIRE_PLUGIN_EXPORT int imapwire_plugin_init(const imapwire_host_api *host)         \
    {                                                                                      \
        static const imapwire_transport_type *const imapwire_plugin_types_[] = {          \
            __VA_ARGS__ };                                                                 \
        return imapwire_plugin_register(host, imapwire_plugin_types_,                      \
                                        sizeof imapwire_plugin_types_ /                    \
                                            sizeof imapwire_plugin_types_[0]);             \
    }                                                                                      \
    IMAPWIRE_PLUGIN_ABI_EXPORT_

#ifdef __cplusplus
}
#endif

#endif /* IMAPWIRE_TRANSPORT_H */
