/* httpconnect.c: the "httpconnect:[user:password@]host:port" transport plugin: a bottom
 * layer that reaches the IMAP server through an HTTP proxy's CONNECT tunnel (RFC 9110 9.3.6). */

/* The proxy itself must be an IP literal ("127.0.0.1:3128", "[::1]:3128") or
 * "localhost:3128": naming it would need a resolver that can block. The IMAP host goes in
 * the request as given ("CONNECT host:port", IPv6 in brackets); the proxy resolves names.
 * With credentials, "Proxy-Authorization: Basic base64(user:password)" is sent (RFC 7617).
 * Credentials: the user name holds no ':', the password may hold ':' and '@' (the last '@'
 * ends it); no %-decoding; each 1 to 255 bytes. They are wiped from memory once sent and
 * when the layer goes. The handshake is part of the connect: the core bounds it by nTimeout.
 *
 * The response head is read with a bound (HC_HEAD_MAX bytes, interim 1xx heads included)
 * and every line checked. Errors, as ST_ERROR_* (the status line is traced):
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
#include "../common/proxy_socket.h"

#define HC_HEAD_MAX 8192
/* The request: two authorities of at most 255 + 2 + 6 bytes, and base64 of 511 bytes. */
#define HC_OUT_MAX  2048

enum { HC_TCP, HC_SEND, HC_HEAD, HC_UP, HC_FAILED };

struct hc_ctx {
    px_hop        hop;
    int           state;
    int           error;
    int           out_secret;          /* out[] holds the encoded password */
    char          authority[272];      /* "host:port" or "[v6]:port" */
    char          out[HC_OUT_MAX];
    size_t        out_len, out_off;
    unsigned char in[HC_HEAD_MAX];
    size_t        in_len;
    size_t        pos;                 /* first byte of the line not yet parsed */
    int           want_status;         /* the next line starts a response */
    int           status;              /* of the response being read */
    size_t        left_off, left_len;  /* IMAP bytes read along with the head */
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

static int hc_create(imapwire_layer *l, const char *args)
{
    struct hc_ctx *c = l->ctx;
    const char *host = l->endpoint->host;
    size_t n = strlen(host);
    unsigned char v6[16];
    char bare[256];
    int rc;

    rc = px_hop_parse(l, &c->hop, "httpconnect", args);
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
    if (inet_pton(AF_INET6, bare, v6) == 1)
        snprintf(c->authority, sizeof c->authority, "[%s]:%u", bare, l->endpoint->port);
    else if (hc_host_ok(bare, n))
        snprintf(c->authority, sizeof c->authority, "%s:%u", bare, l->endpoint->port);
    else
        return ST_ERROR_INVALID_PARAMETER;
    c->state = HC_TCP;
    c->want_status = 1;
    return 0;
}

static void hc_destroy(imapwire_layer *l)
{
    struct hc_ctx *c = l->ctx;
    px_hop_close(&c->hop);
    px_wipe(c, sizeof *c);
}

static int hc_fail(imapwire_layer *l, int error)
{
    struct hc_ctx *c = l->ctx;
    c->state = HC_FAILED;
    c->error = error;
    px_wipe(c->out, sizeof c->out);
    c->out_secret = 0;
    px_hop_close(&c->hop);         /* also forgets the password */
    return error;
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
    if (c->hop.auth) {
        static const char field[] = "Proxy-Authorization: Basic ";
        unsigned char cred[2 * PX_CRED_MAX + 1];
        size_t cn = 0;
        /* base64 of at most 511 bytes is 684 characters: the sizes leave room for it */
        if (len + sizeof field - 1 + 4 * ((2 * PX_CRED_MAX + 1 + 2) / 3) + 5 > sizeof c->out)
            return ST_ERROR_INVALID_PARAMETER;
        memcpy(cred, c->hop.user, c->hop.user_len);
        cn = c->hop.user_len;
        cred[cn++] = ':';
        memcpy(cred + cn, c->hop.pass, c->hop.pass_len);
        cn += c->hop.pass_len;
        memcpy(c->out + len, field, sizeof field - 1);
        len += sizeof field - 1;
        len += hc_base64(cred, cn, c->out + len);
        px_wipe(cred, sizeof cred);
        c->out_secret = 1;
        memcpy(c->out + len, "\r\n", 2);
        len += 2;
    }
    memcpy(c->out + len, "\r\n", 2);
    c->out_len = len + 2;
    c->out_off = 0;
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
        l->host->trace(l, "httpconnect: proxy %s: %.*s", c->hop.text, shown, (const char *)line);
        return 0;
    }
    l->host->trace(l, "httpconnect: proxy %s refused CONNECT %s: %.*s", c->hop.text,
                   c->authority, shown, (const char *)line);
    if (c->status == 407 || c->status == 401)
        l->host->trace(l, "httpconnect: proxy %s %s", c->hop.text,
                       c->hop.auth ? "refused the credentials" : "requires credentials");
    /* 3xx (we follow no redirect), 4xx and 5xx alike: the proxy will not make the tunnel */
    return ST_ERROR_CONNECTION_REFUSED;
}

/* Parses the complete lines read so far. 0 with c->state == HC_UP at the end of a final
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
                               c->hop.text);
                return ST_ERROR_INVALID_RESPONSE;
            }
        if (c->want_status) {
            c->status = hc_status_line(line, n);
            if (c->status < 0) {
                l->host->trace(l, "httpconnect: proxy %s sent no HTTP/1.x status line",
                               c->hop.text);
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
            c->left_off = c->pos;
            c->left_len = c->in_len - c->pos;
            if (c->left_len > 0)
                l->host->trace(l, "httpconnect: %zu IMAP bytes arrived with the proxy's answer",
                               c->left_len);
            c->state = HC_UP;
            return 0;
        }
        if (line[0] == ' ' || line[0] == '\t' || !hc_field_line(line, n)) {
            l->host->trace(l, "httpconnect: proxy %s sent a malformed header line", c->hop.text);
            return ST_ERROR_INVALID_RESPONSE;
        }
    }
    return ST_ERROR_RESPONSE_TOO_LARGE;
}

static int hc_step(imapwire_layer *l)
{
    struct hc_ctx *c = l->ctx;
    size_t sent, got;
    int rc, up = 0;

    switch (c->state) {
    case HC_TCP:
        rc = px_hop_connect(l, &c->hop, &up);
        if (rc != 0)
            return rc;
        rc = hc_build_request(c);
        if (rc != 0)
            return rc;
        l->host->trace(l, "httpconnect: CONNECT %s through proxy %s%s%s", c->authority,
                       c->hop.text, c->hop.auth ? " as user " : "", c->hop.auth ? c->hop.user : "");
        c->state = HC_SEND;
        return 0;
    case HC_SEND:
        while (c->out_off < c->out_len) {
            rc = px_send(&c->hop, c->out + c->out_off, c->out_len - c->out_off, &sent);
            if (rc != 0)
                return rc;
            c->out_off += sent;
        }
        if (c->out_secret) {
            /* the credentials have left: no copy of them stays behind */
            px_wipe(c->out, sizeof c->out);
            c->out_secret = 0;
        }
        px_forget_password(&c->hop);
        c->state = HC_HEAD;
        return 0;
    case HC_HEAD:
        if (c->in_len == sizeof c->in)
            return ST_ERROR_RESPONSE_TOO_LARGE;
        rc = px_recv(&c->hop, c->in + c->in_len, sizeof c->in - c->in_len, &got);
        if (rc != 0)
            return rc;
        if (got == 0) {
            l->host->trace(l, "httpconnect: proxy %s closed the connection before its answer "
                              "ended", c->hop.text);
            return ST_ERROR_CONNECTION_CLOSED;
        }
        c->in_len += got;
        return hc_parse(l);
    case HC_UP:
        return 0;
    default:
        return c->error ? c->error : (int)ST_ERROR_CONNECTION_CLOSED;
    }
}

static int hc_connect(imapwire_layer *l, int *done)
{
    struct hc_ctx *c = l->ctx;
    unsigned round;
    int rc;

    *done = 0;
    /* Each round waits, moves to the next state or reads more of a bounded head. */
    for (round = 0; round < 64 && c->state != HC_UP; round++) {
        if (c->state == HC_FAILED)
            return c->error;
        rc = hc_step(l);
        if (rc == IMAPWIRE_AGAIN)
            return 0;
        if (rc != 0)
            return hc_fail(l, rc);
    }
    *done = c->state == HC_UP;
    return 0;
}

static int hc_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct hc_ctx *c = l->ctx;
    *sent = 0;
    if (c->state != HC_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    return px_send(&c->hop, buf, len, sent);
}

static int hc_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct hc_ctx *c = l->ctx;
    *got = 0;
    if (c->state != HC_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    if (c->left_len > 0) {
        size_t n = len < c->left_len ? len : c->left_len;
        memcpy(buf, c->in + c->left_off, n);
        c->left_off += n;
        c->left_len -= n;
        *got = n;
        return 0;
    }
    return px_recv(&c->hop, buf, len, got);
}

static size_t hc_pending(imapwire_layer *l)
{
    struct hc_ctx *c = l->ctx;
    return c->state == HC_UP ? c->left_len : 0;
}

static void hc_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct hc_ctx *c = l->ctx;
    switch (c->state) {
    case HC_UP:
        px_hop_pollset(&c->hop, want, ps);
        /* bytes kept from the head: the socket will not announce them again */
        if ((want & IMAPWIRE_WANT_READ) && c->left_len > 0)
            imapwire_pollset_wakeup(ps, l->host->now_ms());
        break;
    case HC_SEND:
        px_hop_pollset(&c->hop, IMAPWIRE_WANT_WRITE, ps);
        break;
    case HC_FAILED:
        break;
    default:
        /* while connecting the hop waits for writability; afterwards for the answer */
        px_hop_pollset(&c->hop, IMAPWIRE_WANT_READ, ps);
        break;
    }
}

static int hc_query(imapwire_layer *l, int what, void *out)
{
    struct hc_ctx *c = l->ctx;
    return px_hop_query(&c->hop, what, out);
}

static const imapwire_transport_type hc_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "httpconnect",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct hc_ctx),
    .create = hc_create,
    .destroy = hc_destroy,
    .connect = hc_connect,
    .send = hc_send,
    .recv = hc_recv,
    .pollset = hc_pollset,
    .pending = hc_pending,
    .query = hc_query,
};

__attribute__((visibility("default")))
const unsigned imapwire_plugin_abi = IMAPWIRE_TRANSPORT_ABI;

__attribute__((visibility("default")))
int imapwire_plugin_init(const imapwire_host_api *host)
{
    if ((host->abi_version >> 16) != IMAPWIRE_TRANSPORT_ABI_MAJOR)
        return ST_ERROR_PLUGIN_VERSION;
    return host->register_transport(&hc_type);
}
