/* proxy.c: the part of the socks5 and httpconnect plugins that is not their protocol:
 * arguments, the hop to the proxy through the host API, the connect loop, tunnel I/O. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "proxy.h"

void px_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

void px_forget_password(px_proxy *p)
{
    px_wipe(p->pass, sizeof p->pass);
    p->pass_len = 0;
}

void px_why(imapwire_layer *l, const char *fmt, ...)
{
    px_proxy *p = l->ctx;
    va_list ap;
    if (p->why[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

/* The words for an error of the hop to the proxy (the plugin has no library texts). */
static const char *px_hop_words(int error)
{
    switch (error) {
    case ST_ERROR_CONNECTION_REFUSED:  return "connection refused: nothing listens there";
    case ST_ERROR_HOST_NOT_FOUND:      return "the proxy's name does not resolve";
    case ST_ERROR_OPERATION_TIMEOUT:   return "no answer in time";
    case ST_ERROR_NETWORK_UNREACHABLE: return "network unreachable";
    case ST_ERROR_CONNECTION_CLOSED:   return "the proxy closed the connection";
    default:                           return "the connection failed";
    }
}

/* What failed, for ImapGetErrorInfo: this proxy (hop 1 of the route it is the bottom of)
 * in its own words; a library before SDK 1.3 has no report call and keeps the code only. */
static void px_report(imapwire_layer *l, int error)
{
    px_proxy *p = l->ctx;
    imapwire_error_report r;
    char detail[sizeof p->why + 80];
    if (!IMAPWIRE_HOST_HAS(l->host, report) || l->host->report == NULL)
        return;
    if (error == 0 && p->state == PX_HOP)
        detail[0] = '\0';
    else if (error == 0)
        /* how far it got, for a timeout the core declares (it appends how long it waited) */
        snprintf(detail, sizeof detail, p->answered
                 ? "%s proxy %s answered, then did not finish the tunnel"
                 : "%s proxy %s accepted the connection and did not answer", p->name, p->text);
    else if (p->why[0] != '\0')
        snprintf(detail, sizeof detail, "%s", p->why);
    else
        snprintf(detail, sizeof detail, "%s proxy %s: %s", p->name, p->text,
                 p->state == PX_HOP ? px_hop_words(error) : "the handshake failed");
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.error = error;
    r.stage = IMAP_STAGE_PROXY;
    r.hop = 1;
    r.peer = p->text;
    r.detail = detail[0] != '\0' ? detail : NULL;
    l->host->report(l, &r);
}

/* "user:password" before the last '@': the user name holds no ':' (the password may
 * hold ':' and '@'), each 1 to PX_CRED_MAX bytes, no %-decoding. */
static int px_parse_credentials(imapwire_layer *l, px_proxy *p, const char *s, size_t n)
{
    const char *sep = memchr(s, ':', n);
    size_t i;

    if (sep == NULL || sep == s || (size_t)(sep - s) > PX_CRED_MAX ||
        n - (size_t)(sep - s) - 1 < 1 || n - (size_t)(sep - s) - 1 > PX_CRED_MAX) {
        l->host->trace(l, "%s: credentials must be user:password, each 1 to %d bytes",
                       p->name, PX_CRED_MAX);
        return ST_ERROR_INVALID_PARAMETER;
    }
    p->user_len = (size_t)(sep - s);
    memcpy(p->user, s, p->user_len);
    /* the user name goes into traces: no control bytes (the password may hold any) */
    for (i = 0; i < p->user_len; i++)
        if ((unsigned char)p->user[i] < 0x20 || p->user[i] == 0x7f) {
            l->host->trace(l, "%s: control byte in the user name", p->name);
            return ST_ERROR_INVALID_PARAMETER;
        }
    p->pass_len = n - p->user_len - 1;
    memcpy(p->pass, sep + 1, p->pass_len);
    p->auth = 1;
    return 0;
}

/* The proxy's host: "[IPv6]" (a literal), or a name or IPv4 literal of letters, digits,
 * '-', '_' and '.'; copied into host without brackets. 0 or -1. */
static int px_parse_host(const char *s, size_t n, char host[256])
{
    unsigned char v6[16];
    size_t i;

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        if (n - 2 >= 64)
            return -1;
        memcpy(host, s + 1, n - 2);
        host[n - 2] = '\0';
        return inet_pton(AF_INET6, host, v6) == 1 ? 0 : -1;
    }
    if (n == 0 || n > 253)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return -1;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    return 0;
}

/* "host:port" after the credentials: the port follows the last ':'. 0 or -1. */
static int px_parse_address(const char *s, char host[256], unsigned *port)
{
    const char *colon = strrchr(s, ':');
    unsigned long v = 0;
    size_t i;

    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
        return -1;
    for (i = 1; colon[i] != '\0'; i++) {
        if (colon[i] < '0' || colon[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(colon[i] - '0');
    }
    if (v == 0 || v > 65535 || px_parse_host(s, (size_t)(colon - s), host) != 0)
        return -1;
    *port = (unsigned)v;
    return 0;
}

/* The destination the proxy is asked for: the endpoint's host without IPv6 brackets. */
static int px_destination(imapwire_layer *l, char bare[256], size_t *len)
{
    const char *host = l->endpoint->host;
    size_t n = strlen(host);

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
    *len = n;
    return 0;
}

int px_create(imapwire_layer *l, const char *name, const char *args, px_handshake_fn handshake,
              char dest[256], size_t *dest_len)
{
    px_proxy *p = l->ctx;
    const char *at, *address;
    char host[256];
    unsigned port = 0;
    int rc, hn;

    p->name = name;
    p->handshake = handshake;
    p->state = PX_HOP;
    if (args == NULL || *args == '\0' || strlen(args) > 1024) {
        l->host->trace(l, "%s: the argument must be [user:password@]host:port", name);
        return ST_ERROR_INVALID_PARAMETER;
    }
    /* The host part never holds '@', the password may: the last '@' separates them. */
    at = strrchr(args, '@');
    address = at != NULL ? at + 1 : args;
    if (at != NULL && (rc = px_parse_credentials(l, p, args, (size_t)(at - args))) != 0)
        return rc;
    if (px_parse_address(address, host, &port) != 0) {
        /* the layer will never use the password: it goes now, not when the layer is freed */
        px_forget_password(p);
        l->host->trace(l, "%s: the proxy must be host:port, IPv4:port or [IPv6]:port", name);
        return ST_ERROR_INVALID_PARAMETER;
    }
    hn = (int)(strrchr(address, ':') - address);     /* the host as given, for traces */
    snprintf(p->text, sizeof p->text, "%.*s:%u", hn < 48 ? hn : 48, address, port);
    if (!IMAPWIRE_HOST_HAS(l->host, hop_free)) {
        l->host->trace(l, "%s: this library has no hops (SDK 1.1 or later needed)", name);
        return ST_ERROR_PLUGIN_VERSION;
    }
    rc = px_destination(l, dest, dest_len);
    if (rc != 0)
        return rc;
    px_report(l, 0);           /* whom the connect waits for until the tunnel is up */
    return l->host->hop_open(l, host, port, &p->hop);
}

void px_queue(px_proxy *p, void *buf, size_t len, int secret)
{
    p->out = buf;
    p->out_len = len;
    p->out_off = 0;
    p->out_secret = secret;
}

int px_read(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    px_proxy *p = l->ctx;
    int rc = l->host->hop_recv(p->hop, buf, len, got);
    if (rc == 0 && *got > 0 && !p->answered) {
        p->answered = 1;
        px_report(l, 0);
    }
    return rc;
}

void px_tunnel_up(px_proxy *p, const unsigned char *left, size_t left_len)
{
    p->left = left;
    p->left_len = left_len;
    p->state = PX_UP;
}

/* Frees the hop if there is one: without one, the host may be a library that has no
 * hop_free at all (create refused it). */
static void px_close(imapwire_layer *l, px_proxy *p)
{
    if (p->hop != NULL)
        l->host->hop_free(p->hop);
    p->hop = NULL;
}

void px_destroy(imapwire_layer *l)
{
    px_proxy *p = l->ctx;
    px_close(l, p);
    /* the whole ctx: the plugin's buffers may hold what was sent and received */
    px_wipe(l->ctx, l->type->ctx_size);
}

static int px_fail(imapwire_layer *l, int error)
{
    px_proxy *p = l->ctx;
    px_report(l, error);
    p->state = PX_FAILED;
    p->error = error;
    if (p->out_secret) {
        px_wipe(p->out, p->out_len);
        p->out_secret = 0;
    }
    px_forget_password(p);
    /* nothing more will cross this connection: give the descriptor back now */
    px_close(l, p);
    return error;
}

/* One move: the hop's connect, a queued message, or the plugin's handshake step. 0 to
 * go on, IMAPWIRE_AGAIN to wait, or an ST_ERROR_*. */
static int px_advance(imapwire_layer *l)
{
    px_proxy *p = l->ctx;
    size_t sent;
    int rc, up = 0;

    if (p->state == PX_HOP) {
        rc = l->host->hop_connect(p->hop, &up);
        if (rc != 0 && rc != IMAPWIRE_AGAIN)
            l->host->trace(l, "%s: no connection to proxy %s", p->name, p->text);
        if (rc != 0 || !up)
            return rc != 0 ? rc : IMAPWIRE_AGAIN;
        /* the hop is the connect; what follows is the tunnel (ImapGetTimings) */
        l->host->mark(l, IMAPWIRE_MARK_CONNECTED);
        l->host->trace(l, "%s: connected to proxy %s", p->name, p->text);
        p->state = PX_HANDSHAKE;
        px_report(l, 0);
        return 0;
    }
    if (p->out_off < p->out_len) {
        while (p->out_off < p->out_len) {
            rc = l->host->hop_send(p->hop, p->out + p->out_off, p->out_len - p->out_off, &sent);
            if (rc != 0)
                return rc;
            p->out_off += sent;
        }
        if (p->out_secret) {
            /* the password has left: no copy of it stays behind */
            px_wipe(p->out, p->out_len);
            p->out_secret = 0;
            px_forget_password(p);
        }
        return 0;
    }
    return p->handshake(l);
}

int px_connect(imapwire_layer *l, int *done)
{
    px_proxy *p = l->ctx;
    unsigned round;
    int rc;

    *done = 0;
    /* Each round waits, or moves on by one bounded piece (a message, a reply, a line);
     * the bound only guards against a bug. */
    for (round = 0; round < 64 && p->state != PX_UP; round++) {
        if (p->state == PX_FAILED)
            return p->error;
        rc = px_advance(l);
        if (rc == IMAPWIRE_AGAIN)
            return 0;
        if (rc != 0)
            return px_fail(l, rc);
    }
    *done = p->state == PX_UP;
    return 0;
}

int px_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    px_proxy *p = l->ctx;
    *sent = 0;
    if (p->state != PX_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    return l->host->hop_send(p->hop, buf, len, sent);
}

int px_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    px_proxy *p = l->ctx;
    *got = 0;
    if (p->state != PX_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    if (p->left_len > 0) {
        size_t n = len < p->left_len ? len : p->left_len;
        memcpy(buf, p->left, n);
        p->left += n;
        p->left_len -= n;
        *got = n;
        return 0;
    }
    return l->host->hop_recv(p->hop, buf, len, got);
}

size_t px_pending(imapwire_layer *l)
{
    px_proxy *p = l->ctx;
    return p->state == PX_UP ? p->left_len + l->host->hop_pending(p->hop) : 0;
}

void px_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    px_proxy *p = l->ctx;
    switch (p->state) {
    case PX_UP:
        l->host->hop_pollset(p->hop, want, ps);
        /* bytes kept from the handshake: the socket will not announce them again */
        if ((want & IMAPWIRE_WANT_READ) && p->left_len > 0)
            imapwire_pollset_wakeup(ps, l->host->now_ms());
        break;
    case PX_FAILED:
        break;
    default:
        /* the handshake waits for its own reply whatever the caller wants; while the hop
         * connects, the hop knows what it waits for */
        l->host->hop_pollset(p->hop, p->out_off < p->out_len ? IMAPWIRE_WANT_WRITE
                                                               : IMAPWIRE_WANT_READ, ps);
        break;
    }
}

int px_query(imapwire_layer *l, int what, void *out)
{
    px_proxy *p = l->ctx;
    /* the socket and the peer are the proxy's, not the IMAP server's */
    return p->hop != NULL ? l->host->hop_query(p->hop, what, out) : IMAPWIRE_PASS;
}
