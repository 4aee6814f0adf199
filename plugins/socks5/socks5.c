/* socks5.c: the "socks5:[user:password@]host:port" transport plugin: a bottom layer that
 * reaches the IMAP server through a SOCKS5 proxy (RFC 1928, RFC 1929 username/password). */

/* The proxy is a host name, an IPv4 literal or an [IPv6] literal; the library's TCP hop
 * (host API) resolves a name, races its addresses and binds lpszLocalAddress. The IMAP
 * host is sent as given: a name as ATYP DOMAINNAME, so the proxy resolves it (RFC 1928
 * remote resolution; nothing is looked up here), a literal as ATYP IPV4/IPV6.
 * Credentials: the user name holds no ':', the password may hold ':' and '@' (the last '@'
 * ends it); no %-decoding; each 1 to 255 bytes. They are wiped from memory once sent and
 * when the layer goes. The handshake is part of the connect: the core bounds it by nTimeout.
 *
 * Methods offered: "no authentication", plus "username/password" when credentials are
 * given (the proxy chooses). Errors, as ST_ERROR_* (each one also traced with the code):
 *   proxy name unknown                              HOST_NOT_FOUND (as for TCP)
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
#include "../common/proxy.h"

#define S5_VERSION      0x05
#define S5_AUTH_VERSION 0x01           /* RFC 1929's own version byte */
#define S5_NO_AUTH      0x00
#define S5_USERPASS     0x02
#define S5_NO_METHOD    0xFF
#define S5_CONNECT      0x01
#define S5_ATYP_IPV4    0x01
#define S5_ATYP_DOMAIN  0x03
#define S5_ATYP_IPV6    0x04

/* The handshake's states, after the hop to the proxy is up. */
enum { S5_GREET, S5_METHOD, S5_AUTH_REPLY, S5_REPLY_HEAD, S5_REPLY_ADDR, S5_DONE };

struct s5_ctx {
    px_proxy      px;                  /* first: the part shared with httpconnect */
    int           state;
    /* The largest message is RFC 1929's: 1 + 1 + 255 + 1 + 255 bytes. */
    unsigned char out[3 + 2 * PX_CRED_MAX];
    /* The largest reply: 4 + 1 + 255 (domain) + 2. */
    unsigned char in[4 + 1 + 255 + 2];
    size_t        in_len, need;
    unsigned char atyp;                /* what we asked for: a name or a literal */
    unsigned char dst[256];            /* the destination in request form */
    size_t        dst_len;
};

static int s5_handshake(imapwire_layer *l);

static int s5_create(imapwire_layer *l, const char *args)
{
    struct s5_ctx *c = l->ctx;
    char bare[256];
    size_t n, i;
    int rc;

    rc = px_create(l, "socks5", args, s5_handshake, bare, &n);
    if (rc != 0)
        return rc;
    if (inet_pton(AF_INET, bare, c->dst) == 1) {
        c->atyp = S5_ATYP_IPV4;
        c->dst_len = 4;
    } else if (inet_pton(AF_INET6, bare, c->dst) == 1) {
        c->atyp = S5_ATYP_IPV6;
        c->dst_len = 16;
    } else {
        /* The proxy resolves it; only bytes that cannot be part of a name are refused. */
        for (i = 0; i < n; i++)
            if ((unsigned char)bare[i] <= 0x20 || bare[i] == 0x7f)
                return ST_ERROR_INVALID_PARAMETER;
        c->atyp = S5_ATYP_DOMAIN;
        memcpy(c->dst, bare, n);
        c->dst_len = n;
    }
    c->state = S5_GREET;
    return 0;
}

/* Queues a message, then reads `need` bytes of its answer in state `next`. */
static void s5_queue(struct s5_ctx *c, size_t len, int secret, int next, size_t need)
{
    px_queue(&c->px, c->out, len, secret);
    c->state = next;
    c->in_len = 0;
    c->need = need;
}

/* Reads up to exactly c->need bytes: nothing past the reply may be taken from the hop,
 * since what follows it is the IMAP stream. */
static int s5_fill(imapwire_layer *l)
{
    struct s5_ctx *c = l->ctx;
    while (c->in_len < c->need) {
        size_t got = 0;
        int rc = px_read(l, c->in + c->in_len, c->need - c->in_len, &got);
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
    s5_queue(c, n, 0, S5_REPLY_HEAD, 4);
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
    l->host->trace(l, "socks5: proxy %s answered 0x%02x (%s)", c->px.text, rep,
                   s5_reply_text(rep));
    px_why(l, "socks5 proxy %s answered CONNECT %s port %u with reply 0x%02x (%s)",
           c->px.text, l->endpoint->host, l->endpoint->port, rep, s5_reply_text(rep));
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
    l->host->trace(l, "socks5: proxy %s sent no valid SOCKS5 %s", c->px.text, what);
    px_why(l, "socks5 proxy %s sent no valid SOCKS5 %s", c->px.text, what);
    return ST_ERROR_INVALID_RESPONSE;
}

/* The method the proxy chose: go on to the request, or to RFC 1929 authentication. */
static int s5_method(imapwire_layer *l)
{
    struct s5_ctx *c = l->ctx;
    size_t n = 0;

    if (c->in[0] != S5_VERSION)
        return s5_not_socks(l, "method selection");
    if (c->in[1] == S5_NO_AUTH) {
        l->host->trace(l, "socks5: proxy %s needs no authentication", c->px.text);
        px_forget_password(&c->px);               /* it will not be asked for */
        s5_queue_request(c, l->endpoint);
        return 0;
    }
    if (c->in[1] == S5_USERPASS && c->px.auth) {
        c->out[n++] = S5_AUTH_VERSION;
        c->out[n++] = (unsigned char)c->px.user_len;
        memcpy(c->out + n, c->px.user, c->px.user_len);
        n += c->px.user_len;
        c->out[n++] = (unsigned char)c->px.pass_len;
        memcpy(c->out + n, c->px.pass, c->px.pass_len);
        n += c->px.pass_len;
        s5_queue(c, n, 1, S5_AUTH_REPLY, 2);
        return 0;
    }
    if (c->in[1] == S5_NO_METHOD) {
        px_why(l, "socks5 proxy %s accepts none of our methods (%s)", c->px.text,
               c->px.auth ? "none, username/password"
                          : "none; it may require a user name and password");
        l->host->trace(l, "socks5: %s", c->px.why + strlen("socks5 "));
        return ST_ERROR_CONNECTION_REFUSED;
    }
    return s5_not_socks(l, "method selection (a method we did not offer)");
}

/* The head of the reply to CONNECT: the code, then how long the bound address is. */
static int s5_reply_head(imapwire_layer *l)
{
    struct s5_ctx *c = l->ctx;
    int rc = s5_fill(l);

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
        c->need = 4 + 1;              /* the length first, then the rest */
        break;
    default:
        return s5_not_socks(l, "reply (unknown address type)");
    }
    c->state = S5_REPLY_ADDR;
    return 0;
}

/* One state's work once the hop is up and nothing is left to send. */
static int s5_handshake(imapwire_layer *l)
{
    struct s5_ctx *c = l->ctx;
    const imapwire_endpoint *ep = l->endpoint;
    size_t n = 0;
    int rc;

    switch (c->state) {
    case S5_GREET:
        l->host->trace(l, "socks5: asking proxy %s for %s port %u%s", c->px.text, ep->host,
                       ep->port, c->atyp == S5_ATYP_DOMAIN ? " (the proxy resolves the name)" : "");
        c->out[n++] = S5_VERSION;
        c->out[n++] = c->px.auth ? 2 : 1;
        c->out[n++] = S5_NO_AUTH;
        if (c->px.auth)
            c->out[n++] = S5_USERPASS;
        s5_queue(c, n, 0, S5_METHOD, 2);
        return 0;
    case S5_METHOD:
        if ((rc = s5_fill(l)) != 0)
            return rc;
        return s5_method(l);
    case S5_AUTH_REPLY:
        if ((rc = s5_fill(l)) != 0)
            return rc;
        if (c->in[0] != S5_AUTH_VERSION)
            return s5_not_socks(l, "username/password reply");
        if (c->in[1] != 0x00) {
            px_why(l, "socks5 proxy %s refused the credentials of user %s (status 0x%02x)",
                   c->px.text, c->px.user, c->in[1]);
            l->host->trace(l, "socks5: %s", c->px.why + strlen("socks5 "));
            return ST_ERROR_CONNECTION_REFUSED;
        }
        l->host->trace(l, "socks5: proxy %s accepted user %s", c->px.text, c->px.user);
        s5_queue_request(c, ep);
        return 0;
    case S5_REPLY_HEAD:
        return s5_reply_head(l);
    case S5_REPLY_ADDR:
        if ((rc = s5_fill(l)) != 0)
            return rc;
        if (c->in[3] == S5_ATYP_DOMAIN && c->need == 4 + 1) {
            if (c->in[4] == 0)
                return s5_not_socks(l, "reply (empty bound name)");
            c->need = 4 + 1 + (size_t)c->in[4] + 2;
            return 0;
        }
        l->host->trace(l, "socks5: proxy %s connected us to %s:%u", c->px.text, ep->host,
                       ep->port);
        c->state = S5_DONE;
        px_tunnel_up(&c->px, NULL, 0);
        return 0;
    default:
        return ST_ERROR_CONNECTION_CLOSED;
    }
}

static const imapwire_transport_type s5_type = PX_TYPE("socks5", struct s5_ctx, s5_create);

IMAPWIRE_PLUGIN_DEFINE(&s5_type);
