/* reader.c: the incremental IMAP response reader. It never allocates for what a server
 * merely claims ({4294967295}); buffers grow only with bytes that really arrived. */
#include <stdlib.h>
#include <string.h>
#include "reader.h"

#define IW_READ_CHUNK 16384u
#define IW_MIN_BUF    4096u
#define IW_KEEP_BUF   65536u       /* a buffer larger than this is shrunk when idle */

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

size_t iw_reader_buffered(const iw_reader *r)
{
    return r->len - r->consumed;
}

void iw_reader_reset(iw_reader *r)
{
    r->len = r->consumed = r->scan = r->line_start = r->literal_left = 0;
    r->literals = 0;
}

/* Drops the response returned last time; a big idle buffer is given back. */
static void iw_reader_compact(iw_reader *r)
{
    if (r->consumed > 0) {
        memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
        r->len -= r->consumed;
        r->consumed = 0;
        r->scan = r->line_start = 0;
        r->literal_left = 0;
        r->literals = 0;
    }
    if (r->cap > IW_KEEP_BUF && r->len < IW_KEEP_BUF / 2) {
        char *b = realloc(r->buf, IW_KEEP_BUF);
        if (b != NULL) {
            r->buf = b;
            r->cap = IW_KEEP_BUF;
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
    if (cap > r->max_response + IW_READ_CHUNK + 1)
        cap = r->max_response + IW_READ_CHUNK + 1;
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

static int iw_finish(iw_reader *r, size_t end, iw_response *out)
{
    const char *d = r->buf;
    size_t first_end, sp;

    memset(out, 0, sizeof *out);
    out->data = d;
    out->len = end;
    out->literals = r->literals;
    first_end = (const char *)memchr(d, '\n', end) - d;
    if (first_end > 0 && d[first_end - 1] == '\r')
        first_end--;
    out->line_len = first_end;
    r->consumed = end;
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
        if (k < 0 || (k > 0 && (lit > r->max_literal || r->scan + lit > r->max_response)))
            return ST_ERROR_RESPONSE_TOO_LARGE;
        if (k > 0) {
            r->literals++;
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
        rc = iw_reader_reserve(r, IW_READ_CHUNK);
        if (rc != 0)
            return rc;
        rc = iw_layer_recv(top, r->buf + r->len, r->cap - r->len - 1, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return ST_ERROR_CONNECTION_CLOSED;
        r->len += got;
        if (rx != NULL)
            *rx += got;
    }
}
