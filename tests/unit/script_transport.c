/* script_transport.c: the "script" transport: a bottom layer built only on the SDK that
 * plays a server from a list of steps, with short I/O, would-block storms, closes and stalls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "script_transport.h"

struct st_ctx {
    st_run  *run;
    const imapwire_host_api *host;
    int64_t  wait_until;       /* a WAIT step: the script goes on at this time */
    char    *rx;               /* server bytes not yet read by the client */
    size_t   rx_len, rx_off, rx_cap;
    char     line[8192];       /* the client line being assembled */
    size_t   line_len;
    char     tag[32];
    unsigned again_left;       /* from AGAIN steps */
    unsigned storm_left;       /* before the next call that moves bytes */
    unsigned connect_left;
    int      refuse, never, eof, stall, ended, binary;
    int      reset;            /* 0, or the ST_ERROR_* that send and recv now fail with */
};

static void st_fail(struct st_ctx *s, const char *fmt, const char *a, const char *b)
{
    if (s->run->error[0] == '\0')
        snprintf(s->run->error, sizeof s->run->error, fmt, a, b);
    s->eof = 1;                /* the client learns at once; the test reads the reason */
}

static const char *st_step(const struct st_ctx *s)
{
    return s->run->steps[s->run->pos];
}

static int st_is(const char *step, const char *word)
{
    size_t n = strlen(word);
    return strncmp(step, word, n) == 0 && (step[n] == '\0' || step[n] == ' ');
}

/* The client must act before the script goes on. */
static int st_waiting(const struct st_ctx *s)
{
    const char *st = st_step(s);
    return !s->ended && !s->eof && !s->reset && !s->stall && s->wait_until == 0 && st != NULL &&
           (st_is(st, "C") || st_is(st, "TLS"));
}

/* Queues server bytes, stopping at the cut point. */
static void st_queue(struct st_ctx *s, const char *p, size_t n)
{
    st_run *r = s->run;
    if (r->cut && r->server_bytes + n > r->cut_after)
        n = r->cut_after - r->server_bytes;
    if (n == 0)
        return;
    if (s->rx_len + n > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 1024;
        char *b;
        while (cap < s->rx_len + n)
            cap *= 2;
        b = realloc(s->rx, cap);
        if (b == NULL) {
            st_fail(s, "out of memory queueing %.140s%.140s", "", "");
            return;
        }
        s->rx = b;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, p, n);
    s->rx_len += n;
    r->server_bytes += n;
}

/* Runs the server's steps up to the next one that needs the client (or the end). */
static void st_advance(struct st_ctx *s)
{
    st_run *r = s->run;
    while (!s->ended && !s->eof && !s->reset && !s->stall && s->wait_until == 0) {
        const char *st = st_step(s);
        if (r->cut && r->server_bytes >= r->cut_after) {
            if (r->cut == ST_CUT_RESET)
                s->reset = ST_ERROR_CONNECTION_CLOSED;
            else
                s->eof = 1;
            return;
        }
        if (st == NULL) {
            s->ended = 1;
            return;
        }
        if (st_is(st, "C") || st_is(st, "TLS"))
            return;
        r->pos++;
        if (st_is(st, "S")) {
            const char *text = st + 2;
            if (text[0] == '$') {
                st_queue(s, s->tag, strlen(s->tag));
                text++;
            }
            st_queue(s, text, strlen(text));
            st_queue(s, "\r\n", 2);
        } else if (st_is(st, "B")) {
            st_queue(s, st + 2, strlen(st + 2));
        } else if (st_is(st, "AGAIN")) {
            s->again_left += (unsigned)strtoul(st + 6, NULL, 10);
        } else if (st_is(st, "EOF")) {
            s->eof = 1;
        } else if (st_is(st, "RESET")) {
            s->reset = ST_ERROR_CONNECTION_CLOSED;  /* what TCP makes of ECONNRESET */
        } else if (st_is(st, "FAIL")) {
            s->reset = (int)strtoul(st + 5, NULL, 10);
        } else if (st_is(st, "STALL")) {
            s->stall = 1;
        } else if (st_is(st, "WAIT")) {
            s->wait_until = s->host->now_ms() + (int64_t)strtoul(st + 5, NULL, 10);
        } else {
            st_fail(s, "bad or misplaced step \"%.140s\"%.140s", st, "");
        }
    }
}

/* One whole client line (without CRLF) against the step the script is at. */
static void st_line(struct st_ctx *s, const char *line, size_t n)
{
    char text[8192];
    const char *want = st_step(s), *body = text;
    size_t wn;

    snprintf(text, sizeof text, "%.*s", (int)n, line);
    if (s->eof || s->reset || s->stall)
        return;                            /* nobody listens any more */
    if (s->ended) {
        const char *sp = strchr(text, ' ');
        if (sp != NULL && strcmp(sp + 1, "LOGOUT") == 0 && (size_t)(sp - text) < sizeof s->tag) {
            snprintf(s->tag, sizeof s->tag, "%.*s", (int)(sp - text), text);
            s->run->logout_seen = 1;
            st_queue(s, "* BYE script over\r\n", 19);
            st_queue(s, s->tag, strlen(s->tag));
            st_queue(s, " OK LOGOUT done\r\n", 17);
            s->eof = 1;
        } else {
            st_fail(s, "line after the script's end: \"%.140s\"%.140s", text, "");
        }
        return;
    }
    if (!st_is(want, "C")) {
        st_fail(s, "client line \"%.140s\" where the script has \"%.140s\"", text, want);
        return;
    }
    want += 2;
    if (want[0] == '$' && want[1] == ' ') {
        const char *sp = strchr(text, ' ');
        if (sp == NULL || (size_t)(sp - text) >= sizeof s->tag) {
            st_fail(s, "client line \"%.140s\" has no tag (script: \"%.140s\")", text, want);
            return;
        }
        snprintf(s->tag, sizeof s->tag, "%.*s", (int)(sp - text), text);
        body = sp + 1;
        want += 2;
    }
    wn = strlen(want);
    if (wn > 0 && want[wn - 1] == '*' ? strncmp(body, want, wn - 1) != 0
                                      : strcmp(body, want) != 0) {
        st_fail(s, "client sent \"%.140s\", the script wants \"%.140s\"", text, st_step(s) + 2);
        return;
    }
    s->run->pos++;
    st_advance(s);
}

static void st_client_byte(struct st_ctx *s, unsigned char b)
{
    st_run *r = s->run;
    if (s->binary)
        return;
    if (s->line_len == 0 && st_step(s) != NULL && st_is(st_step(s), "TLS") && !s->ended) {
        if (b != 0x16) {
            st_fail(s, "the script wants a TLS handshake%.140s%.140s", "", "");
            return;
        }
        r->tls_seen = 1;
        s->binary = 1;
        r->pos++;
        st_advance(s);
        return;
    }
    if (r->wire_len < sizeof r->wire)
        r->wire[r->wire_len++] = (char)b;
    if (s->line_len >= sizeof s->line) {
        st_fail(s, "client line longer than %.140s bytes%.140s", "8192", "");
        return;
    }
    s->line[s->line_len++] = (char)b;
    if (s->line_len >= 2 && s->line[s->line_len - 2] == '\r' && b == '\n') {
        st_line(s, s->line, s->line_len - 2);
        s->line_len = 0;
    }
}

/* A WAIT step whose time has come lets the script go on. */
static void st_resume(struct st_ctx *s)
{
    if (s->wait_until != 0 && s->host->now_ms() >= s->wait_until) {
        s->wait_until = 0;
        st_advance(s);
    }
}

/* A storm and the script's AGAIN steps come before every call that moves bytes. */
static int st_would_block(struct st_ctx *s)
{
    st_resume(s);
    if (s->storm_left > 0) {
        s->storm_left--;
        s->run->agains++;
        return 1;
    }
    if (s->again_left > 0) {
        s->again_left--;
        s->run->agains++;
        return 1;
    }
    return 0;
}

static int st_create(imapwire_layer *l, const char *args)
{
    struct st_ctx *s = l->ctx;
    void *p = NULL;
    const char *first;

    if (args == NULL || sscanf(args, "%p", &p) != 1 || p == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    s->run = p;
    s->host = l->host;
    s->run->created++;
    s->storm_left = s->run->storm;
    first = st_step(s);
    if (first != NULL && st_is(first, "CONNECT")) {
        s->never = strcmp(first + 8, "never") == 0;
        s->connect_left = (unsigned)strtoul(first + 8, NULL, 10);
        s->run->pos++;
    } else if (first != NULL && st_is(first, "REFUSE")) {
        s->refuse = 1;
        s->run->pos++;
    }
    st_advance(s);
    return IMAPWIRE_OK;
}

static void st_destroy(imapwire_layer *l)
{
    struct st_ctx *s = l->ctx;
    free(s->rx);
    s->rx = NULL;
    if (s->run != NULL)
        s->run->destroyed++;
}

static int st_connect(imapwire_layer *l, int *done)
{
    struct st_ctx *s = l->ctx;
    *done = 0;
    if (s->refuse)
        return ST_ERROR_CONNECTION_REFUSED;
    if (s->never || s->connect_left > 0) {
        if (s->connect_left > 0)
            s->connect_left--;
        return IMAPWIRE_OK;
    }
    *done = 1;
    return IMAPWIRE_OK;
}

static int st_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct st_ctx *s = l->ctx;
    size_t i, n = len;

    *sent = 0;
    if (st_would_block(s))
        return IMAPWIRE_AGAIN;
    if (s->reset)
        return s->reset;
    if (s->run->chunk != 0 && n > s->run->chunk)
        n = s->run->chunk;
    for (i = 0; i < n; i++)
        st_client_byte(s, ((const unsigned char *)buf)[i]);
    s->storm_left = s->run->storm;
    *sent = n;
    return IMAPWIRE_OK;
}

static int st_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct st_ctx *s = l->ctx;
    size_t n;

    *got = 0;
    if (st_would_block(s))
        return IMAPWIRE_AGAIN;
    n = s->rx_len - s->rx_off;         /* after a WAIT that may just have ended */
    if (n == 0) {
        if (s->reset)
            return s->reset;
        if (s->eof || s->ended)
            return IMAPWIRE_OK;            /* end of stream */
        s->run->agains++;
        return IMAPWIRE_AGAIN;             /* the server has nothing to say yet */
    }
    if (n > len)
        n = len;
    if (s->run->chunk != 0 && n > s->run->chunk)
        n = s->run->chunk;
    memcpy(buf, s->rx + s->rx_off, n);
    s->rx_off += n;
    if (s->rx_off == s->rx_len)
        s->rx_off = s->rx_len = 0;
    s->storm_left = s->run->storm;
    *got = n;
    return IMAPWIRE_OK;
}

/* No descriptor ever: progress possible now is a wake-up now; otherwise (a stall) the
 * core sleeps to its deadline. A client that only reads while the script waits for it
 * would sleep the same way: that is a script or library fault, reported at once. */
static void st_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct st_ctx *s = l->ctx;
    int ready = s->storm_left > 0 || s->again_left > 0 || (want & IMAPWIRE_WANT_WRITE);

    if (s->never || s->connect_left > 0) {
        if (!s->never)                     /* still connecting: call again at once */
            imapwire_pollset_wakeup(ps, l->host->now_ms());
        return;
    }
    st_resume(s);
    if (s->wait_until != 0)
        imapwire_pollset_wakeup(ps, s->wait_until);
    if (want & IMAPWIRE_WANT_READ)
        ready |= s->rx_len > s->rx_off || s->eof || s->reset || s->ended;
    if (!ready && st_waiting(s)) {
        st_fail(s, "the client waits to read while the script wants \"%.140s\"%.140s", st_step(s), "");
        ready = 1;
    }
    if (ready)
        imapwire_pollset_wakeup(ps, l->host->now_ms());
}

static size_t st_pending(imapwire_layer *l)
{
    struct st_ctx *s = l->ctx;
    return s->rx_len - s->rx_off;
}

static int st_query(imapwire_layer *l, int what, void *out)
{
    (void)l;
    (void)what;
    (void)out;
    return IMAPWIRE_PASS;
}

static const imapwire_transport_type st_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "script",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct st_ctx),
    .create = st_create,
    .destroy = st_destroy,
    .connect = st_connect,
    .send = st_send,
    .recv = st_recv,
    .pollset = st_pollset,
    .pending = st_pending,
    .query = st_query,
};

int st_register(void)
{
    DWORD e;
    if (ImapRegisterTransport(&st_type) == 0)
        return 0;
    e = ImapGetLastError();
    return e == ST_ERROR_TRANSPORT_EXISTS ? 0 : (int)e;
}

const char *st_spec(st_run *run, char *buf, size_t n)
{
    snprintf(buf, n, "script:%p", (void *)run);
    return buf;
}

void st_reset(st_run *run)
{
    size_t keep = offsetof(st_run, created);
    memset((char *)run + keep, 0, sizeof *run - keep);
}
