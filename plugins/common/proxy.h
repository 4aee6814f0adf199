/* proxy.h: what the proxy plugins (socks5, httpconnect) share: the argument
 * "[user:password@]host:port", the hop to the proxy (the host API's TCP), the connect
 * loop around a plugin's own handshake, the tunnel's I/O once it is up, and wiping. */
#ifndef IMAPWIRE_PLUGIN_PROXY_H
#define IMAPWIRE_PLUGIN_PROXY_H

#include <stddef.h>
#include <imapwire/transport.h>

/* RFC 1929 gives user name and password one length byte each; HTTP Basic gets the same
 * limits so both plugins accept the same arguments. */
#define PX_CRED_MAX 255

/* One step of a plugin's handshake with its proxy, called once the hop is up and
 * whenever nothing queued is left to send: 0 after progress (it is called again),
 * IMAPWIRE_AGAIN to wait for the proxy, or an ST_ERROR_*. It sends with px_queue and
 * ends with px_tunnel_up. */
typedef int (*px_handshake_fn)(imapwire_layer *l);

enum { PX_HOP, PX_HANDSHAKE, PX_UP, PX_FAILED };

/* The shared part of a proxy plugin's layer: the first member of its ctx. */
typedef struct px_proxy {
    const char     *name;                  /* "socks5" or "httpconnect", for traces */
    px_handshake_fn handshake;
    char            user[PX_CRED_MAX + 1];
    char            pass[PX_CRED_MAX + 1]; /* secret: wiped by px_forget_password */
    size_t          user_len, pass_len;
    int             auth;                  /* "user:password@" was given */
    char            text[64];              /* the proxy as "host:port", for traces */
    imapwire_hop   *hop;                   /* the connection to the proxy */
    int             state;                 /* PX_* */
    int             error;                 /* ST_ERROR_* once failed */
    unsigned char  *out;                   /* queued for the proxy (in the plugin's ctx) */
    size_t          out_len, out_off;
    int             out_secret;            /* out holds the password: wiped once sent */
    const unsigned char *left;             /* tunnel bytes read along with the handshake */
    size_t          left_len;
    char            why[256];              /* the failure in the proxy's words (px_say) */
    int             answered;              /* a byte came from the proxy */
} px_proxy;

/* For create: fills the shared part from the argument, puts the destination the proxy
 * is to be asked for (the endpoint's host without IPv6 brackets, 1 to 255 bytes) into
 * dest and its length into *dest_len, and opens the hop to the proxy (no I/O). 0,
 * ST_ERROR_INVALID_PARAMETER, ST_ERROR_PLUGIN_VERSION (a library without hops) or
 * ST_ERROR_OUT_OF_MEMORY. */
int  px_create(imapwire_layer *l, const char *name, const char *args, px_handshake_fn handshake,
               char dest[256], size_t *dest_len);
/* Sends len bytes of buf (which stays put) before the next handshake step. */
void px_queue(px_proxy *p, void *buf, size_t len, int secret);
/* Reads from the proxy during the handshake: 0, IMAPWIRE_AGAIN or an ST_ERROR_*. */
int  px_read(imapwire_layer *l, void *buf, size_t len, size_t *got);
/* The tunnel is made; left_len bytes at left (kept by the plugin) already belong to it. */
void px_tunnel_up(px_proxy *p, const unsigned char *left, size_t left_len);
/* Overwrites n bytes in a way the compiler may not drop as a dead store. */
void px_wipe(void *p, size_t n);
void px_forget_password(px_proxy *p);
/* The failure's detail for the application (the first one said wins): what the proxy
 * answered, in its own words. Never a secret. */
void px_why(imapwire_layer *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Slots shared by both types. */
void   px_destroy(imapwire_layer *l);
int    px_connect(imapwire_layer *l, int *done);
int    px_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent);
int    px_recv(imapwire_layer *l, void *buf, size_t len, size_t *got);
void   px_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps);
size_t px_pending(imapwire_layer *l);
int    px_query(imapwire_layer *l, int what, void *out);

/* A proxy type: a bottom layer with its own ctx (px_proxy first) and create. */
#define PX_TYPE(type_name, ctx_type, create_fn)            \
    {                                                      \
        .abi_version = IMAPWIRE_TRANSPORT_ABI,             \
        .struct_size = sizeof(imapwire_transport_type),    \
        .name = (type_name),                               \
        .flags = IMAPWIRE_TRANSPORT_BOTTOM,                \
        .ctx_size = sizeof(ctx_type),                      \
        .create = (create_fn),                             \
        .destroy = px_destroy,                             \
        .connect = px_connect,                             \
        .send = px_send,                                   \
        .recv = px_recv,                                   \
        .pollset = px_pollset,                             \
        .pending = px_pending,                             \
        .query = px_query,                                 \
    }

#endif
