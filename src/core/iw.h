/* iw.h: internal declarations shared by the core, transports and security modules.
 * Nothing here is part of the public API; every name carries the iw_ prefix. */
#ifndef IW_H
#define IW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <imapwire/imapwire.h>
#include <imapwire/transport.h>
#include <poll.h>

#define IW_UNUSED(x) ((void)(x))

/* ---- limits (security checkpoint 5: nothing grows without bound) ---- */
#define IW_MAX_LINE      (1u << 20)          /* one line piece of a response */
#define IW_MAX_LITERAL   (256u << 20)        /* one literal */
#define IW_MAX_RESPONSE  (260u << 20)        /* a whole response with its literals */
#define IW_MAX_CAPA      (64u << 10)         /* the stored capability list */
#define IW_LOGOUT_WAIT_MS 3000               /* ImapDisconnect's bound on LOGOUT */
#define IW_CONNECT_CEILING 2                 /* whole connect <= this many timeouts */
#define IW_MIN_RATE      16u                 /* bytes per ms a command must average beyond
                                                its ceiling (16 KB/s) to keep going */

/* ---- errors.c ---- */
void        iw_set_error(DWORD err);
const char *iw_error_text(DWORD err);        /* NULL if unknown */
const char *iw_error_name(DWORD err);        /* "ST_ERROR_..." or NULL */
DWORD       iw_error_max(void);

/* ---- clock.c ---- */
int64_t iw_now_us(void);
int64_t iw_now_ms(void);

/* ---- init.c ---- */
int  iw_initialized(void);                   /* nonzero between Initialize and last Uninitialize */

/* ---- handles.c: index + generation table; lookups never dereference bad values ---- */
enum iw_kind { IW_KIND_CLIENT = 1, IW_KIND_FORWARD = 2 };
int       iw_handles_init(void);
void      iw_handles_shutdown(void (*free_obj)(int kind, void *obj));
uintptr_t iw_handle_add(int kind, void *obj);             /* 0 when out of memory */
void     *iw_handle_get(uintptr_t h, int kind);           /* NULL if stale or forged */
void     *iw_handle_remove(uintptr_t h, int kind);        /* NULL if stale or forged */
/* Runs fn(obj, arg) with the table locked, *rc = its result; NULL if stale or forged. */
void     *iw_handle_visit(uintptr_t h, int kind, int (*fn)(void *obj, void *arg), void *arg,
                          int *rc);

/* ---- threads ---- */
DWORD iw_thread_id(void);

/* ---- registry.c ---- */
#define IW_TYPE_NAME_MAX 31
typedef struct iw_type_entry iw_type_entry;
int   iw_transport_name_valid(const char *p, size_t n);   /* [a-z0-9_-]{1,31} */
/* "name" or "name:args": the name checked and copied, *args after the colon or NULL;
 * 0 or ST_ERROR_INVALID_PARAMETER. */
int   iw_transport_spec_split(const char *spec, char name[IW_TYPE_NAME_MAX + 1],
                              const char **args);
int   iw_registry_init(void);
void  iw_registry_shutdown(void);
int   iw_registry_add(const imapwire_transport_type *type, void *plugin_owner);
/* Takes a reference on success; the layer releases it. */
int   iw_registry_acquire(const char *name, iw_type_entry **out);
void  iw_registry_release(iw_type_entry *e);
const imapwire_transport_type *iw_registry_type(const iw_type_entry *e);
int   iw_transport_flags(const char *name, unsigned *flags);
void  iw_registry_set_loader(void *plugin);      /* types registered now belong to it */
void  iw_registry_remove_owner(void *plugin);

/* ---- layer.c: the chain and its pass-through defaults ---- */
extern const imapwire_host_api iw_host_api;
int    iw_layer_new(const char *name, const char *args, const imapwire_endpoint *ep,
                    void *core, imapwire_layer *below, imapwire_layer **out);
int    iw_layer_new_internal(const imapwire_transport_type *t, const imapwire_endpoint *ep,
                             void *core, imapwire_layer *below, imapwire_layer **out);
void   iw_layer_free_chain(imapwire_layer *top);
int    iw_layer_connect(imapwire_layer *l, int *done);
int    iw_layer_shutdown(imapwire_layer *l, int *done);
int    iw_layer_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent);
int    iw_layer_recv(imapwire_layer *l, void *buf, size_t len, size_t *got);
void   iw_layer_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps);
size_t iw_layer_pending(imapwire_layer *l);
int    iw_layer_query(imapwire_layer *l, int what, void *out);
struct pollfd;
nfds_t iw_pollset_to_pollfd(const imapwire_pollset *ps, struct pollfd *out);

/* ---- callbacks from layers into the connection that owns them (client.c) ---- */
void iw_core_note(void *core, const char *text);
void iw_core_mark(void *core, int mark);
int  iw_core_traces(void *core);
int  iw_loop_is_current(void);                 /* called on the library's loop thread */              /* nonzero when a trace callback is set */

/* ---- plugin.c ---- */
void iw_plugins_unload_all(void);
int  iw_plugin_load(const char *path_or_name);   /* 0 or ST_ERROR_* */

/* ---- resolve.c: addresses for a host (literals and localhost for now) ---- */
#include <sys/socket.h>
typedef struct iw_addr {
    struct sockaddr_storage sa;
    socklen_t               len;
} iw_addr;
#define IW_MAX_ADDRS 16
int iw_resolve_literal(const char *host, unsigned port, iw_addr *out, int max, int *count);
int iw_parse_local_address(const char *text, iw_addr *out);
void iw_addr_text(const iw_addr *a, char *buf, size_t size);

/* ---- dns.c: asynchronous resolution through c-ares ---- */
typedef struct iw_dns iw_dns;
int  iw_dns_global_init(void);
void iw_dns_global_cleanup(void);
int  iw_dns_start(const char *host, unsigned port, const char *servers, unsigned timeout_ms,
                  iw_dns **out);
/* Non-blocking: *done = 1 with the addresses (families interleaved), or an ST_ERROR_*. */
int  iw_dns_step(iw_dns *d, iw_addr *out, int max, int *count, int *done);
/* Addresses in a successful answer before the IW_MAX_ADDRS cut (so a cut can be traced). */
int  iw_dns_found(const iw_dns *d);
void iw_dns_pollset(iw_dns *d, imapwire_pollset *ps);
void iw_dns_free(iw_dns *d);
int  iw_dns_servers_valid(const char *csv);

/* ---- transports ---- */
extern const imapwire_transport_type iw_transport_tcp;

/* ---- credentials (src/security) ---- */
typedef struct iw_creds iw_creds;
int  iw_creds_copy(const SECURITYCREDENTIALS *in, iw_creds **out);
void iw_creds_free(iw_creds *c);
/* Wipes and drops the passphrase and the tunnel password: once the TLS context is
 * loaded and the chain is built (the SSH layer has taken its own copy), a connect
 * keeps no secret it will not use again. */
void iw_creds_forget_secrets(iw_creds *c);
void iw_wipe(void *p, size_t n);
void iw_free_secret(char *s);

/* ---- strings ---- */
char *iw_strdup(const char *s);               /* NULL in, NULL out */
int   iw_strcaseeq(const char *a, size_t alen, const char *b);
size_t iw_strlcpy(char *dst, const char *src, size_t size);

typedef struct iw_sb {
    char  *p;
    size_t len, cap;
    int    err;                   /* first failure; later adds do nothing */
} iw_sb;
int  iw_sb_add(iw_sb *sb, const void *p, size_t n);
int  iw_sb_str(iw_sb *sb, const char *s);
int  iw_sb_quoted(iw_sb *sb, const char *s);   /* caller checked iw_quotable */
int  iw_quotable(const char *s);
void iw_sb_free(iw_sb *sb);                    /* wipes: builders may hold secrets */

#endif /* IW_H */
