/* socks5.c: the "socks5:[user:password@]host:port" transport plugin: a bottom layer that
 * reaches the IMAP server through a SOCKS5 proxy (RFC 1928, RFC 1929 username/password). */

/* The proxy itself must be an IP literal ("127.0.0.1:1080", "[::1]:1080") or
 * "localhost:1080": naming it would need a resolver that can block, and a connect step must
 * never block. The IMAP host is sent as given: a name as ATYP DOMAINNAME, so the proxy
 * resolves it (RFC 1928 remote resolution; nothing is looked up here), a literal as
 * ATYP IPV4/IPV6.
 * Credentials: the user name holds no ':', the password may hold ':' and '@' (the last '@'
 * ends it); no %-decoding; each 1 to 255 bytes. They are wiped from memory once sent and
 * when the layer goes. The handshake is part of the connect: the core bounds it by nTimeout.
 *
 * Methods offered: "no authentication", plus "username/password" when credentials are
 * given (the proxy chooses). Errors, as ST_ERROR_* (each one also traced with the code):
 *   proxy down / refuses TCP                        CONNECTION_REFUSED (as for TCP)
 *   no acceptable method (0xFF)                     CONNECTION_REFUSED
 *   credentials refused (RFC 1929 status != 0)      CONNECTION_REFUSED, traced as such;
 *                                                   never LOGIN_FAILED, which is IMAP's
 *   reply 0x02 not allowed by ruleset, 0x05 refused CONNECTION_REFUSED
 *   reply 0x03 network unreachable                  NETWORK_UNREACHABLE
 *   reply 0x04 host unreachable                     HOST_NOT_FOUND for a name (the proxy
 *                                                   could not resolve or reach it), else
 *                                                   NETWORK_UNREACHABLE
 *   reply 0x01 general failure                      NETWORK_ERROR
 *   reply 0x06 TTL expired                          OPERATION_TIMEOUT
 *   0x07, 0x08, unassigned codes, any byte that is
 *   not SOCKS5 (wrong version, reserved byte, ATYP) INVALID_RESPONSE
 *   proxy closes before its reply is complete       CONNECTION_CLOSED
 * A proxy that accepts before the destination answers (OpenSSH's ssh -D does) turns a
 * refused destination into CONNECTION_CLOSED at the greeting: the plugin cannot know. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "../common/proxy_socket.h"

#define S5_VERSION      0x05
#define S5_AUTH_VERSION 0x01           /* RFC 1929's own version byte */
#define S5_NO_AUTH      0x00
#define S5_USERPASS     0x02
#define S5_NO_METHOD    0xFF
#define S5_CONNECT      0x01
#define S5_ATYP_IPV4    0x01
#define S5_ATYP_DOMAIN  0x03
#define S5_ATYP_IPV6    0x04

enum { S5_TCP, S5_SEND, S5_METHOD, S5_AUTH_REPLY, S5_REPLY_HEAD, S5_REPLY_ADDR, S5_UP,
       S5_FAILED };

struct s5_ctx {
    px_hop        hop;
    int           state;
    int           after_send;          /* the state that reads the answer to out[] */
    int           error;               /* ST_ERROR_* once failed */
    int           out_secret;          /* out[] holds the password */
    /* The largest message is RFC 1929's: 1 + 1 + 255 + 1 + 255 bytes. */
    unsigned char out[3 + 2 * PX_CRED_MAX];
    size_t        out_len, out_off;
    /* The largest reply: 4 + 1 + 255 (domain) + 2. */
    unsigned char in[4 + 1 + 255 + 2];
    size_t        in_len, need;
    unsigned char atyp;                /* what we asked for: a name or a literal */
    unsigned char dst[256];            /* the destination in request form */
    size_t        dst_len;
};

static int s5_create(imapwire_layer *l, const char *args)
{
    struct s5_ctx *c = l->ctx;
    const char *host = l->endpoint->host;
    size_t n = strlen(host);
    char bare[256];
    int rc;

    rc = px_hop_parse(l, &c->hop, "socks5", args);
    if (rc != 0)
        return rc;
    if (l->endpoint->port == 0 || l->endpoint->port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n > 255)
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(bare, host, n);
    bare[n] = '\0';
    if (inet_pton(AF_INET, bare, c->dst) == 1) {
        c->atyp = S5_ATYP_IPV4;
        c->dst_len = 4;
    } else if (inet_pton(AF_INET6, bare, c->dst) == 1) {
        c->atyp = S5_ATYP_IPV6;
        c->dst_len = 16;
    } else {
        /* The proxy resolves it; only bytes that cannot be part of a name are refused. */
        size_t i;
        for (i = 0; i < n; i++)
            if ((unsigned char)bare[i] <= 0x20 || bare[i] == 0x7f)
                return ST_ERROR_INVALID_PARAMETER;
        c->atyp = S5_ATYP_DOMAIN;
        memcpy(c->dst, bare, n);
        c->dst_len = n;
    }
    c->state = S5_TCP;
    return 0;
}

static void s5_destroy(imapwire_layer *l)
{
    struct s5_ctx *c = l->ctx;
    px_hop_close(&c->hop);
    px_wipe(c, sizeof *c);
}

static int s5_fail(imapwire_layer *l, int error)
{
    struct s5_ctx *c = l->ctx;
    c->state = S5_FAILED;
    c->error = error;
    if (c->out_secret) {
        px_wipe(c->out, sizeof c->out);
        c->out_secret = 0;
    }
    px_forget_password(&c->hop);
    /* nothing more will cross this socket: give the descriptor back now */
    px_hop_close(&c->hop);
    return error;
}

/* Queues a message, then reads `need` bytes of its answer in state `next`. */
static void s5_queue(struct s5_ctx *c, size_t len, int next, size_t need)
{
    c->out_len = len;
    c->out_off = 0;
    c->after_send = next;
    c->in_len = 0;
    c->need = need;
    c->state = S5_SEND;
}

/* Reads up to exactly c->need bytes: nothing past the reply may be taken from the socket,
 * since what follows it is the IMAP stream. */
static int s5_fill(struct s5_ctx *c)
{
    while (c->in_len < c->need) {
        size_t got = 0;
        int rc = px_recv(&c->hop, c->in + c->in_len, c->need - c->in_len, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return ST_ERROR_CONNECTION_CLOSED;
        c->in_len += got;
    }
    return 0;
}

static void s5_queue_request(struct s5_ctx *c, const imapwire_endpoint *ep)
{
    size_t n = 0;
    c->out[n++] = S5_VERSION;
    c->out[n++] = S5_CONNECT;
    c->out[n++] = 0x00;                              /* reserved */
    c->out[n++] = c->atyp;
    if (c->atyp == S5_ATYP_DOMAIN)
        c->out[n++] = (unsigned char)c->dst_len;
    memcpy(c->out + n, c->dst, c->dst_len);
    n += c->dst_len;
    c->out[n++] = (unsigned char)(ep->port >> 8);
    c->out[n++] = (unsigned char)(ep->port & 0xff);
    s5_queue(c, n, S5_REPLY_HEAD, 4);
}

static const char *s5_reply_text(unsigned rep)
{
    static const char *const text[] = {
        "succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
        "network unreachable", "host unreachable", "connection refused", "TTL expired",
        "command not supported", "address type not supported",
    };
    return rep < sizeof text / sizeof text[0] ? text[rep] : "unassigned code";
}

static int s5_reply_error(imapwire_layer *l, unsigned rep)
{
    struct s5_ctx *c = l->ctx;
    l->host->trace(l, "socks5: proxy %s answered 0x%02x (%s)", c->hop.text, rep,
                   s5_reply_text(rep));
    switch (rep) {
    case 0x01:
        return ST_ERROR_NETWORK_ERROR;
    case 0x02:
    case 0x05:
        return ST_ERROR_CONNECTION_REFUSED;
    case 0x03:
        return ST_ERROR_NETWORK_UNREACHABLE;
    case 0x04:
        return c->atyp == S5_ATYP_DOMAIN ? ST_ERROR_HOST_NOT_FOUND
                                         : ST_ERROR_NETWORK_UNREACHABLE;
    case 0x06:
        return ST_ERROR_OPERATION_TIMEOUT;
    default:
        return ST_ERROR_INVALID_RESPONSE;
    }
}

static int s5_not_socks(imapwire_layer *l, const char *what)
{
    struct s5_ctx *c = l->ctx;
    l->host->trace(l, "socks5: proxy %s sent no valid SOCKS5 %s", c->hop.text, what);
    return ST_ERROR_INVALID_RESPONSE;
}

/* One state's work. 0 to go on, IMAPWIRE_AGAIN to wait, or an ST_ERROR_*. */
static int s5_step(imapwire_layer *l)
{
    struct s5_ctx *c = l->ctx;
    const imapwire_endpoint *ep = l->endpoint;
    size_t n, sent;
    int rc, up = 0;

    switch (c->state) {
    case S5_TCP:
        rc = px_hop_connect(l, &c->hop, &up);
        if (rc != 0)
            return rc;
        l->host->trace(l, "socks5: asking proxy %s for %s port %u%s", c->hop.text, ep->host,
                       ep->port, c->atyp == S5_ATYP_DOMAIN ? " (the proxy resolves the name)" : "");
        n = 0;
        c->out[n++] = S5_VERSION;
        c->out[n++] = c->hop.auth ? 2 : 1;
        c->out[n++] = S5_NO_AUTH;
        if (c->hop.auth)
            c->out[n++] = S5_USERPASS;
        s5_queue(c, n, S5_METHOD, 2);
        return 0;
    case S5_SEND:
        while (c->out_off < c->out_len) {
            rc = px_send(&c->hop, c->out + c->out_off, c->out_len - c->out_off, &sent);
            if (rc != 0)
                return rc;
            c->out_off += sent;
        }
        if (c->out_secret) {
            /* the password has left: no copy of it stays behind */
            px_wipe(c->out, sizeof c->out);
            c->out_secret = 0;
            px_forget_password(&c->hop);
        }
        c->state = c->after_send;
        return 0;
    case S5_METHOD:
        if ((rc = s5_fill(c)) != 0)
            return rc;
        if (c->in[0] != S5_VERSION)
            return s5_not_socks(l, "method selection");
        if (c->in[1] == S5_NO_AUTH) {
            l->host->trace(l, "socks5: proxy %s needs no authentication", c->hop.text);
            px_forget_password(&c->hop);          /* it will not be asked for */
            s5_queue_request(c, ep);
            return 0;
        }
        if (c->in[1] == S5_USERPASS && c->hop.auth) {
            n = 0;
            c->out[n++] = S5_AUTH_VERSION;
            c->out[n++] = (unsigned char)c->hop.user_len;
            memcpy(c->out + n, c->hop.user, c->hop.user_len);
            n += c->hop.user_len;
            c->out[n++] = (unsigned char)c->hop.pass_len;
            memcpy(c->out + n, c->hop.pass, c->hop.pass_len);
            n += c->hop.pass_len;
            c->out_secret = 1;
            s5_queue(c, n, S5_AUTH_REPLY, 2);
            return 0;
        }
        if (c->in[1] == S5_NO_METHOD) {
            l->host->trace(l, "socks5: proxy %s accepts none of our methods (%s)", c->hop.text,
                           c->hop.auth ? "none, username/password"
                                       : "none; it may require a user name and password");
            return ST_ERROR_CONNECTION_REFUSED;
        }
        return s5_not_socks(l, "method selection (a method we did not offer)");
    case S5_AUTH_REPLY:
        if ((rc = s5_fill(c)) != 0)
            return rc;
        if (c->in[0] != S5_AUTH_VERSION)
            return s5_not_socks(l, "username/password reply");
        if (c->in[1] != 0x00) {
            l->host->trace(l, "socks5: proxy %s refused the credentials of user %s (status 0x%02x)",
                           c->hop.text, c->hop.user, c->in[1]);
            return ST_ERROR_CONNECTION_REFUSED;
        }
        l->host->trace(l, "socks5: proxy %s accepted user %s", c->hop.text, c->hop.user);
        s5_queue_request(c, ep);
        return 0;
    case S5_REPLY_HEAD:
        rc = s5_fill(c);
        /* A refusal may come as a short reply followed by the close. */
        if (rc == ST_ERROR_CONNECTION_CLOSED && c->in_len >= 2 && c->in[0] == S5_VERSION &&
            c->in[1] != 0x00)
            return s5_reply_error(l, c->in[1]);
        if (rc != 0)
            return rc;
        if (c->in[0] != S5_VERSION)
            return s5_not_socks(l, "reply");
        if (c->in[1] != 0x00)
            return s5_reply_error(l, c->in[1]);
        if (c->in[2] != 0x00)
            return s5_not_socks(l, "reply (reserved byte not zero)");
        switch (c->in[3]) {
        case S5_ATYP_IPV4:
            c->need = 4 + 4 + 2;
            break;
        case S5_ATYP_IPV6:
            c->need = 4 + 16 + 2;
            break;
        case S5_ATYP_DOMAIN:
            c->need = 4 + 1;          /* the length first, then the rest */
            break;
        default:
            return s5_not_socks(l, "reply (unknown address type)");
        }
        c->state = S5_REPLY_ADDR;
        return 0;
    case S5_REPLY_ADDR:
        if ((rc = s5_fill(c)) != 0)
            return rc;
        if (c->in[3] == S5_ATYP_DOMAIN && c->need == 4 + 1) {
            if (c->in[4] == 0)
                return s5_not_socks(l, "reply (empty bound name)");
            c->need = 4 + 1 + (size_t)c->in[4] + 2;
            return 0;
        }
        l->host->trace(l, "socks5: proxy %s connected us to %s:%u", c->hop.text, ep->host,
                       ep->port);
        c->state = S5_UP;
        return 0;
    case S5_UP:
        return 0;
    default:
        return c->error ? c->error : (int)ST_ERROR_CONNECTION_CLOSED;
    }
}

static int s5_connect(imapwire_layer *l, int *done)
{
    struct s5_ctx *c = l->ctx;
    int round, rc;

    *done = 0;
    /* Every state either waits or moves forward; the bound only guards against a bug. */
    for (round = 0; round < 32 && c->state != S5_UP; round++) {
        if (c->state == S5_FAILED)
            return c->error;
        rc = s5_step(l);
        if (rc == IMAPWIRE_AGAIN)
            return 0;
        if (rc != 0)
            return s5_fail(l, rc);
    }
    *done = c->state == S5_UP;
    return 0;
}

static int s5_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct s5_ctx *c = l->ctx;
    *sent = 0;
    if (c->state != S5_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    return px_send(&c->hop, buf, len, sent);
}

static int s5_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct s5_ctx *c = l->ctx;
    *got = 0;
    if (c->state != S5_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    return px_recv(&c->hop, buf, len, got);
}

static void s5_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct s5_ctx *c = l->ctx;
    switch (c->state) {
    case S5_UP:
        px_hop_pollset(&c->hop, want, ps);
        break;
    case S5_SEND:
        px_hop_pollset(&c->hop, IMAPWIRE_WANT_WRITE, ps);
        break;
    case S5_FAILED:
        break;
    default:
        /* while connecting the hop waits for writability; afterwards for the answer */
        px_hop_pollset(&c->hop, IMAPWIRE_WANT_READ, ps);
        break;
    }
}

static int s5_query(imapwire_layer *l, int what, void *out)
{
    struct s5_ctx *c = l->ctx;
    return px_hop_query(&c->hop, what, out);
}

static const imapwire_transport_type s5_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "socks5",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct s5_ctx),
    .create = s5_create,
    .destroy = s5_destroy,
    .connect = s5_connect,
    .send = s5_send,
    .recv = s5_recv,
    .pollset = s5_pollset,
    .query = s5_query,
};

__attribute__((visibility("default")))
const unsigned imapwire_plugin_abi = IMAPWIRE_TRANSPORT_ABI;

__attribute__((visibility("default")))
int imapwire_plugin_init(const imapwire_host_api *host)
{
    if ((host->abi_version >> 16) != IMAPWIRE_TRANSPORT_ABI_MAJOR)
        return ST_ERROR_PLUGIN_VERSION;
    return host->register_transport(&s5_type);
}
