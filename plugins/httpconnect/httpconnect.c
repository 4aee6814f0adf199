/* httpconnect.c: the "httpconnect:[user:password@]host:port" transport plugin: a bottom
 * layer that reaches the IMAP server through an HTTP proxy's CONNECT tunnel (RFC 9110 9.3.6). */

/* The proxy is a host name, an IPv4 literal or an [IPv6] literal; the library's TCP hop
 * (host API) resolves a name, races its addresses and binds lpszLocalAddress. The IMAP
 * host goes in the request as given ("CONNECT host:port", IPv6 in brackets); the proxy
 * resolves names.
 * With credentials, "Proxy-Authorization: Basic base64(user:password)" is sent (RFC 7617).
 * Credentials: the user name holds no ':', the password may hold ':' and '@' (the last '@'
 * ends it); no %-decoding; each 1 to 255 bytes. They are wiped from memory once sent and
 * when the layer goes. The handshake is part of the connect: the core bounds it by nTimeout.
 *
 * The response head is read with a bound (HC_HEAD_MAX bytes, interim 1xx heads included)
 * and every line checked. Errors, as ST_ERROR_* (the status line is traced):
 *   proxy name unknown                             HOST_NOT_FOUND (as for TCP)
 *   proxy down / refuses TCP                       CONNECTION_REFUSED (as for TCP)
 *   2xx                                            the tunnel is up
 *   407, 401 (tinyproxy answers 401 to a wrong
 *   password): credentials missing or refused      CONNECTION_REFUSED, traced as such
 *   403, 502, 503, 504 and any other final status  CONNECTION_REFUSED
 *   not HTTP/1.x, malformed line, control byte     INVALID_RESPONSE
 *   head longer than HC_HEAD_MAX                   RESPONSE_TOO_LARGE
 *   proxy closes before the head ends              CONNECTION_CLOSED
 * Bytes the proxy sent after the head already belong to IMAP: they are kept and returned
 * first by recv (and reported by pending). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "../common/proxy.h"

#define HC_HEAD_MAX 8192
/* The request: two authorities of at most 255 + 2 + 6 bytes, and base64 of 511 bytes. */
#define HC_OUT_MAX  2048

/* The handshake's states, after the hop to the proxy is up. */
enum { HC_REQUEST, HC_HEAD, HC_DONE };

struct hc_ctx {
    px_proxy      px;                  /* first: the part shared with socks5 */
    int           state;
    char          authority[272];      /* "host:port" or "[v6]:port" */
    char          out[HC_OUT_MAX];
    unsigned char in[HC_HEAD_MAX];
    size_t        in_len;
    size_t        pos;                 /* first byte of the line not yet parsed */
    int           want_status;         /* the next line starts a response */
    int           status;              /* of the response being read */
};

/* A host text fit for an HTTP authority: no byte that could end the request line or the
 * authority. The proxy resolves names, so anything else is its business. */
static int hc_host_ok(const char *h, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("\"<>\\^`{|}/?#@[]", ch) != NULL)
            return 0;
    }
    return n > 0;
}

static int hc_handshake(imapwire_layer *l);

static int hc_create(imapwire_layer *l, const char *args)
{
    struct hc_ctx *c = l->ctx;
    unsigned char v6[16];
    char bare[256];
    size_t n;
    int rc;

    rc = px_create(l, "httpconnect", args, hc_handshake, bare, &n);
    if (rc != 0)
        return rc;
    if (inet_pton(AF_INET6, bare, v6) == 1)
        snprintf(c->authority, sizeof c->authority, "[%s]:%u", bare, l->endpoint->port);
    else if (hc_host_ok(bare, n))
        snprintf(c->authority, sizeof c->authority, "%s:%u", bare, l->endpoint->port);
    else
        return ST_ERROR_INVALID_PARAMETER;
    c->state = HC_REQUEST;
    c->want_status = 1;
    return 0;
}

static size_t hc_base64(const unsigned char *src, size_t n, char *dst)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8 | src[i + 2];
        dst[o++] = abc[v >> 18];
        dst[o++] = abc[(v >> 12) & 63];
        dst[o++] = abc[(v >> 6) & 63];
        dst[o++] = abc[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)src[i] << 16 | (i + 1 < n ? (unsigned)src[i + 1] << 8 : 0);
        dst[o++] = abc[v >> 18];
        dst[o++] = abc[(v >> 12) & 63];
        dst[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

static int hc_build_request(struct hc_ctx *c)
{
    int n = snprintf(c->out, sizeof c->out, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n",
                     c->authority, c->authority);
    size_t len;

    if (n < 0 || (size_t)n >= sizeof c->out)
        return ST_ERROR_INVALID_PARAMETER;
    len = (size_t)n;
    if (c->px.auth) {
        static const char field[] = "Proxy-Authorization: Basic ";
        unsigned char cred[2 * PX_CRED_MAX + 1];
        size_t cn = 0;
        /* base64 of at most 511 bytes is 684 characters: the sizes leave room for it */
        if (len + sizeof field - 1 + 4 * ((2 * PX_CRED_MAX + 1 + 2) / 3) + 5 > sizeof c->out)
            return ST_ERROR_INVALID_PARAMETER;
        memcpy(cred, c->px.user, c->px.user_len);
        cn = c->px.user_len;
        cred[cn++] = ':';
        memcpy(cred + cn, c->px.pass, c->px.pass_len);
        cn += c->px.pass_len;
        memcpy(c->out + len, field, sizeof field - 1);
        len += sizeof field - 1;
        len += hc_base64(cred, cn, c->out + len);
        px_wipe(cred, sizeof cred);
        memcpy(c->out + len, "\r\n", 2);
        len += 2;
    }
    memcpy(c->out + len, "\r\n", 2);
    /* sent before the next step; the credentials in it are wiped once they have left */
    px_queue(&c->px, c->out, len + 2, c->px.auth);
    return 0;
}

/* "HTTP/1.x SSS[ reason]": the status, or -1. */
static int hc_status_line(const unsigned char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return -1;
    if (s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
        return -1;
    if (n > 12 && s[12] != ' ')
        return -1;
    return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

/* "name: value" with a token name (RFC 9110 5.1); the value is only checked for bytes. */
static int hc_field_line(const unsigned char *s, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t i;
    for (i = 0; i < n && s[i] != ':'; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || (s[i] != '\0' && strchr(tchar, s[i]) != NULL)))
            return 0;
    return i > 0 && i < n;
}

static int hc_final_status(imapwire_layer *l, const unsigned char *line, size_t n)
{
    struct hc_ctx *c = l->ctx;
    int shown = n > 120 ? 120 : (int)n;

    if (c->status >= 200 && c->status <= 299) {
        l->host->trace(l, "httpconnect: proxy %s: %.*s", c->px.text, shown, (const char *)line);
        return 0;
    }
    px_why(l, "httpconnect proxy %s refused CONNECT %s: %.*s%s", c->px.text, c->authority,
           shown, (const char *)line,
           c->status != 407 && c->status != 401 ? ""
           : c->px.auth ? " (it refused the credentials)" : " (it requires credentials)");
    l->host->trace(l, "httpconnect: proxy %s refused CONNECT %s: %.*s", c->px.text,
                   c->authority, shown, (const char *)line);
    if (c->status == 407 || c->status == 401)
        l->host->trace(l, "httpconnect: proxy %s %s", c->px.text,
                       c->px.auth ? "refused the credentials" : "requires credentials");
    /* 3xx (we follow no redirect), 4xx and 5xx alike: the proxy will not make the tunnel */
    return ST_ERROR_CONNECTION_REFUSED;
}

/* Parses the complete lines read so far. 0 with c->state == HC_DONE at the end of a final
 * 2xx head, IMAPWIRE_AGAIN for more bytes, or an ST_ERROR_*. */
static int hc_parse(imapwire_layer *l)
{
    struct hc_ctx *c = l->ctx;
    /* each round consumes one line of a buffer of HC_HEAD_MAX bytes */
    unsigned rounds;

    for (rounds = 0; rounds <= HC_HEAD_MAX; rounds++) {
        unsigned char *line = c->in + c->pos;
        unsigned char *nl = memchr(line, '\n', c->in_len - c->pos);
        size_t n, i;

        if (nl == NULL)
            return c->in_len == sizeof c->in ? (int)ST_ERROR_RESPONSE_TOO_LARGE : IMAPWIRE_AGAIN;
        n = (size_t)(nl - line);
        c->pos += n + 1;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        for (i = 0; i < n; i++)
            if ((line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f) {
                l->host->trace(l, "httpconnect: proxy %s sent a control byte in its head",
                               c->px.text);
                return ST_ERROR_INVALID_RESPONSE;
            }
        if (c->want_status) {
            c->status = hc_status_line(line, n);
            if (c->status < 0) {
                l->host->trace(l, "httpconnect: proxy %s sent no HTTP/1.x status line",
                               c->px.text);
                px_why(l, "httpconnect proxy %s sent no HTTP/1.x status line", c->px.text);
                return ST_ERROR_INVALID_RESPONSE;
            }
            /* 101 is no answer to CONNECT; other 1xx are interim heads to skip */
            if (c->status == 101)
                return ST_ERROR_INVALID_RESPONSE;
            c->want_status = 0;
            if (c->status >= 200) {
                int rc = hc_final_status(l, line, n);
                if (rc != 0)
                    return rc;     /* no need to read the rest of a refusal */
            }
            continue;
        }
        if (n == 0) {
            if (c->status < 200) {
                c->want_status = 1;
                continue;
            }
            /* The end of a 2xx head: what follows is the tunnel. Content-Length and
             * Transfer-Encoding mean nothing here (RFC 9110 9.3.6). */
            if (c->in_len > c->pos)
                l->host->trace(l, "httpconnect: %zu IMAP bytes arrived with the proxy's answer",
                               c->in_len - c->pos);
            c->state = HC_DONE;
            px_tunnel_up(&c->px, c->in + c->pos, c->in_len - c->pos);
            return 0;
        }
        if (line[0] == ' ' || line[0] == '\t' || !hc_field_line(line, n)) {
            l->host->trace(l, "httpconnect: proxy %s sent a malformed header line", c->px.text);
            return ST_ERROR_INVALID_RESPONSE;
        }
    }
    return ST_ERROR_RESPONSE_TOO_LARGE;
}

/* One state's work once the hop is up and nothing is left to send. */
static int hc_handshake(imapwire_layer *l)
{
    struct hc_ctx *c = l->ctx;
    size_t got;
    int rc;

    switch (c->state) {
    case HC_REQUEST:
        rc = hc_build_request(c);
        if (rc != 0)
            return rc;
        l->host->trace(l, "httpconnect: CONNECT %s through proxy %s%s%s", c->authority,
                       c->px.text, c->px.auth ? " as user " : "", c->px.auth ? c->px.user : "");
        c->state = HC_HEAD;
        return 0;
    case HC_HEAD:
        /* the request has left: with or without Basic, no password is needed any more */
        px_forget_password(&c->px);
        if (c->in_len == sizeof c->in)
            return ST_ERROR_RESPONSE_TOO_LARGE;
        rc = px_read(l, c->in + c->in_len, sizeof c->in - c->in_len, &got);
        if (rc != 0)
            return rc;
        if (got == 0) {
            l->host->trace(l, "httpconnect: proxy %s closed the connection before its answer "
                              "ended", c->px.text);
            px_why(l, "httpconnect proxy %s closed the connection before its answer ended",
                   c->px.text);
            return ST_ERROR_CONNECTION_CLOSED;
        }
        c->in_len += got;
        return hc_parse(l);
    default:
        return ST_ERROR_CONNECTION_CLOSED;
    }
}

static const imapwire_transport_type hc_type = PX_TYPE("httpconnect", struct hc_ctx, hc_create);

IMAPWIRE_PLUGIN_DEFINE(&hc_type);
