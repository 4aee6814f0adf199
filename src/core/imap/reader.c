/* reader.c: the incremental IMAP response reader. It never allocates for what a server
 * merely claims ({4294967295}); buffers grow only with bytes that really arrived. */
#include <stdlib.h>
#include <string.h>
#include "reader.h"

#define IW_MIN_BUF    4096u        /* the buffer's size at rest: protocol lines fit */
#define IW_MIN_ROOM   1024u        /* free bytes a read is given at least */
#define IW_DROP_READ  16384u       /* one read of a literal that is dropped */
#define IW_LITERAL_READ (256u << 10) /* one read of a literal into its destination: as
                                        much as a loopback socket holds; larger reads
                                        measured no faster */

void iw_reader_init(iw_reader *r)
{
    memset(r, 0, sizeof *r);
    r->max_line = IW_MAX_LINE;
    r->max_literal = IW_MAX_LITERAL;
    r->max_response = IW_MAX_RESPONSE;
}

void iw_reader_free(iw_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = 0;
}

void iw_reader_set_hook(iw_reader *r, iw_lit_hook hook, void *arg)
{
    r->hook = hook;
    r->hook_arg = arg;
    r->all = 0;
    r->div_mode = IW_LIT_INLINE;
    memset(&r->div, 0, sizeof r->div);
    r->div_left = 0;
}

void iw_reader_set_hook_all(iw_reader *r, iw_lit_hook hook, void *arg)
{
    iw_reader_set_hook(r, hook, arg);
    r->all = hook != NULL;
}

size_t iw_reader_capacity(const iw_reader *r)
{
    return r->cap;
}

size_t iw_reader_buffered(const iw_reader *r)
{
    return r->len - r->consumed;
}

static void iw_reader_restart(iw_reader *r)
{
    r->consumed = r->scan = r->line_start = r->literal_left = 0;
    r->literals = 0;
    r->div_mode = IW_LIT_INLINE;
    memset(&r->div, 0, sizeof r->div);
    r->div_size = r->div_left = r->div_counted = r->gone_at = 0;
}

void iw_reader_rest(iw_reader *r)
{
    if (r->len != r->consumed || r->div_mode != IW_LIT_INLINE)
        return;
    iw_reader_free(r);
    iw_reader_restart(r);
}

void iw_reader_reset(iw_reader *r)
{
    r->len = 0;
    iw_reader_restart(r);
}

/* Drops the response returned last time; a buffer grown for a big response goes back
 * to its resting size once what it holds fits, so an idle connection costs little. */
static void iw_reader_compact(iw_reader *r)
{
    if (r->consumed > 0) {
        memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
        r->len -= r->consumed;
        iw_reader_restart(r);
    }
    if (r->cap > IW_MIN_BUF && r->scan == 0 && r->len < IW_MIN_BUF) {
        char *b = realloc(r->buf, IW_MIN_BUF);
        if (b != NULL) {
            r->buf = b;
            r->cap = IW_MIN_BUF;
        }
    }
}

/* Makes room for at least want more bytes (+1 for the terminator), within the limit. */
static int iw_reader_reserve(iw_reader *r, size_t want)
{
    size_t need = r->len + want + 1, cap;
    char *b;

    if (need <= r->cap)
        return 0;
    if (r->len >= r->max_response + 2)
        return ST_ERROR_RESPONSE_TOO_LARGE;
    cap = r->cap ? r->cap : IW_MIN_BUF;
    while (cap < need)
        cap *= 2;
    if (cap > r->max_response + IW_MIN_ROOM + 1)
        cap = r->max_response + IW_MIN_ROOM + 1;
    if (cap < need)
        return ST_ERROR_RESPONSE_TOO_LARGE;    /* the capped buffer cannot take it all */
    b = realloc(r->buf, cap);
    if (b == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    r->buf = b;
    r->cap = cap;
    return 0;
}

int iw_reader_feed(iw_reader *r, const void *p, size_t n)
{
    int rc = iw_reader_reserve(r, n);
    if (rc != 0)
        return rc;
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

static int iw_is_tag_char(unsigned char c)
{
    /* ASTRING-CHAR less '+' (RFC 3501 tag): ']' is allowed, '*' and '+' start the
     * other kinds. */
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    return strchr("(){%*\"\\+", c) == NULL;
}

/* A line piece ending "{n}" or "{n+}" (before CRLF) announces a literal of n bytes. */
int iw_literal_size(const char *s, size_t n, size_t *size)
{
    size_t i, digits = 0;
    uint64_t v = 0;

    if (n < 3 || s[n - 1] != '}')
        return 0;
    i = n - 1;
    if (i > 0 && s[i - 1] == '+')
        i--;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
        i--;
        digits++;
    }
    if (digits == 0 || i == 0 || s[i - 1] != '{')
        return 0;
    /* Leading zeros carry no size; more than 10 significant digits exceed 2^32. */
    while (digits > 1 && s[i] == '0') {
        i++;
        digits--;
    }
    if (digits > 10)
        return -1;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > SIZE_MAX)
        return -1;
    *size = (size_t)v;
    return 1;
}

/* The response held in buf[0..end): kind, tag and first line. */
static int iw_describe(const iw_reader *r, size_t end, iw_response *out)
{
    const char *d = r->buf;
    size_t first_end, sp;

    memset(out, 0, sizeof *out);
    out->data = d;
    out->len = end;
    out->literals = r->literals;
    out->gone_at = r->gone_at;
    out->all_gone = r->all;
    first_end = (const char *)memchr(d, '\n', end) - d;
    if (first_end > 0 && d[first_end - 1] == '\r')
        first_end--;
    out->line_len = first_end;
    if (d[0] == '*' || d[0] == '+') {
        if (first_end < 1 || (first_end > 1 && d[1] != ' '))
            return ST_ERROR_INVALID_RESPONSE;
        out->kind = d[0] == '*' ? IW_RESP_UNTAGGED : IW_RESP_CONTINUATION;
        out->rest = first_end > 1 ? d + 2 : d + first_end;
        out->rest_len = first_end > 1 ? first_end - 2 : 0;
        return 0;
    }
    for (sp = 0; sp < first_end && d[sp] != ' '; sp++)
        if (!iw_is_tag_char((unsigned char)d[sp]))
            return ST_ERROR_INVALID_RESPONSE;
    if (sp == 0 || sp >= first_end)
        return ST_ERROR_INVALID_RESPONSE;
    out->kind = IW_RESP_TAGGED;
    out->tag = d;
    out->tag_len = sp;
    out->rest = d + sp + 1;
    out->rest_len = first_end - sp - 1;
    return 0;
}

static int iw_finish(iw_reader *r, size_t end, iw_response *out)
{
    r->consumed = end;
    return iw_describe(r, end, out);
}

/* Moves what is held of a literal received elsewhere to its destination (or drops it):
 * at most one read's worth, since later bytes go there directly. */
static void iw_divert_held(iw_reader *r)
{
    size_t have = r->len - r->scan, take = have < r->div_left ? have : r->div_left;
    if (take == 0)
        return;
    if (r->div_mode == IW_LIT_TO)
        memcpy(r->div.p + (r->div_size - r->div_left), r->buf + r->scan, take);
    else if (r->div_mode == IW_LIT_STREAM)
        r->div.piece(r->div.piece_arg, r->buf + r->scan, take);
    memmove(r->buf + r->scan, r->buf + r->scan + take, have - take);
    r->len -= take;
    r->div_left -= take;
}

/* Asks the hook where the literal just announced goes; 1 when it leaves the buffer. */
static int iw_ask_hook(iw_reader *r, size_t lit, int over, int *rc)
{
    iw_response head;
    iw_lit_dest d;

    memset(&d, 0, sizeof d);
    *rc = 0;
    if (r->hook == NULL || (r->gone_at != 0 && !r->all))
        return 0;
    if ((*rc = iw_describe(r, r->scan, &head)) != 0 ||
        (*rc = r->hook(r->hook_arg, &head, lit, over, &d)) != 0)
        return 0;
    if (r->all && d.mode != IW_LIT_STREAM && d.mode != IW_LIT_DROP) {
        *rc = ST_ERROR_INVALID_PARAMETER;      /* a response cannot keep some of them */
        return 0;
    }
    if (d.mode == IW_LIT_INLINE || (over && d.mode != IW_LIT_STREAM && !r->all))
        return 0;
    if ((d.mode == IW_LIT_TO && d.p == NULL && lit > 0) ||
        (d.mode == IW_LIT_STREAM && (d.p == NULL || d.cap == 0 || d.piece == NULL)) ||
        d.mode > IW_LIT_STREAM) {
        *rc = ST_ERROR_INVALID_PARAMETER;
        return 0;
    }
    r->div_mode = d.mode;
    r->div = d;
    r->div_size = r->div_left = lit;
    /* a streamed literal holds no memory, so it does not count towards the response */
    r->div_counted = d.mode == IW_LIT_STREAM || r->all ? 0 : lit;
    if (r->gone_at == 0)
        r->gone_at = r->scan;
    return 1;
}

int iw_reader_parse(iw_reader *r, iw_response *out)
{
    iw_reader_compact(r);
    if (r->len > 0) {
        unsigned char c0 = (unsigned char)r->buf[0];
        /* Fail on the first byte, not after a timeout, when it cannot start a response. */
        if (c0 != '*' && c0 != '+' && !iw_is_tag_char(c0))
            return ST_ERROR_INVALID_RESPONSE;
    }
    for (;;) {
        const char *lf;
        size_t piece, lit;
        int k;

        if (r->div_mode != IW_LIT_INLINE) {
            iw_divert_held(r);
            if (r->div_left > 0)
                return IMAPWIRE_AGAIN;
            r->div_mode = IW_LIT_INLINE;
            r->line_start = r->scan;
        }
        if (r->literal_left > 0) {
            size_t have = r->len - r->scan;
            if (have < r->literal_left) {
                r->literal_left -= have;
                r->scan = r->len;
                return IMAPWIRE_AGAIN;
            }
            r->scan += r->literal_left;
            r->literal_left = 0;
            r->line_start = r->scan;
        }
        if (r->scan >= r->len) {
            if (r->len - r->line_start > r->max_line + 1)
                return ST_ERROR_RESPONSE_TOO_LARGE;
            return IMAPWIRE_AGAIN;
        }
        lf = memchr(r->buf + r->scan, '\n', r->len - r->scan);
        if (memchr(r->buf + r->scan, '\0', (lf ? (size_t)(lf - r->buf) : r->len) - r->scan))
            return ST_ERROR_INVALID_RESPONSE;  /* NUL never appears outside a literal */
        if (lf == NULL) {
            r->scan = r->len;
            /* one more byte may be the CR of a line exactly at the limit */
            if (r->len - r->line_start > r->max_line + 1)
                return ST_ERROR_RESPONSE_TOO_LARGE;
            return IMAPWIRE_AGAIN;
        }
        piece = (size_t)(lf - r->buf) - r->line_start;    /* without the LF */
        if (piece > 0 && r->buf[r->line_start + piece - 1] == '\r')
            piece--;
        /* the limit is on the line's content: CRLF does not count */
        if (piece > r->max_line)
            return ST_ERROR_RESPONSE_TOO_LARGE;
        r->scan = (size_t)(lf - r->buf) + 1;
        k = iw_literal_size(r->buf + r->line_start, piece, &lit);
        if (k < 0)
            return ST_ERROR_RESPONSE_TOO_LARGE;
        if (k > 0) {
            /* a literal received elsewhere still counts towards the response */
            int rc, over = lit > r->max_literal ||
                           r->scan + r->div_counted + lit > r->max_response;
            r->literals++;
            if (iw_ask_hook(r, lit, over, &rc))
                continue;
            if (rc != 0)
                return rc;
            if (over)
                return ST_ERROR_RESPONSE_TOO_LARGE;
            r->literal_left = lit;
            r->line_start = r->scan;
            continue;
        }
        return iw_finish(r, r->scan, out);
    }
}

int iw_reader_next(iw_reader *r, imapwire_layer *top, iw_response *out, uint64_t *rx)
{
    for (;;) {
        size_t got = 0;
        int rc = iw_reader_parse(r, out);
        if (rc != IMAPWIRE_AGAIN)
            return rc;
        if (r->div_mode == IW_LIT_TO) {
            /* The literal's bytes go from the layer to where they belong, no copy
             * through the buffer, in reads large enough to take what the socket holds. */
            size_t want = r->div_left < IW_LITERAL_READ ? r->div_left : IW_LITERAL_READ;
            rc = iw_layer_recv(top, r->div.p + (r->div_size - r->div_left), want, &got);
            if (rc == 0)
                r->div_left -= got;
        } else if (r->div_mode == IW_LIT_STREAM) {
            size_t want = r->div_left < r->div.cap ? r->div_left : r->div.cap;
            rc = iw_layer_recv(top, r->div.p, want, &got);
            if (rc == 0 && got > 0) {
                r->div_left -= got;
                r->div.piece(r->div.piece_arg, r->div.p, got);
            }
        } else if (r->div_mode == IW_LIT_DROP) {
            char sink[IW_DROP_READ];
            rc = iw_layer_recv(top, sink, r->div_left < sizeof sink ? r->div_left : sizeof sink,
                               &got);
            if (rc == 0)
                r->div_left -= got;
        } else {
            rc = iw_reader_reserve(r, IW_MIN_ROOM);
            if (rc != 0)
                return rc;
            rc = iw_layer_recv(top, r->buf + r->len, r->cap - r->len - 1, &got);
            if (rc == 0)
                r->len += got;
            /* Nothing held and nothing came (an idle watcher's look): keep no buffer. */
            if (rc == IMAPWIRE_AGAIN && r->len == 0)
                iw_reader_free(r);
        }
        if (rc != 0)
            return rc;
        if (got == 0)
            return ST_ERROR_CONNECTION_CLOSED;
        if (rx != NULL)
            *rx += got;
    }
}
