/* test_reader.c: the incremental IMAP response reader (reader.c): response kinds, literals,
 * independence from how bytes are split, the size limits and malformed input. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imap/reader.h"

/* A response copied out of the reader, whose pointers die at the next parse. */
typedef struct snap {
    int      kind;
    char     tag[32];
    char     rest[256];
    size_t   len, line_len;
    unsigned literals;
    char     data[512];
} snap;

static void take(snap *s, const iw_response *r)
{
    memset(s, 0, sizeof *s);
    s->kind = r->kind;
    ck_assert_uint_lt(r->tag_len, sizeof s->tag);
    ck_assert_uint_lt(r->rest_len, sizeof s->rest);
    ck_assert_uint_le(r->len, sizeof s->data);
    if (r->tag_len)
        memcpy(s->tag, r->tag, r->tag_len);
    if (r->rest_len)
        memcpy(s->rest, r->rest, r->rest_len);
    memcpy(s->data, r->data, r->len);
    s->len = r->len;
    s->line_len = r->line_len;
    s->literals = r->literals;
}

/* Parses until the reader wants more bytes; any error fails the test. */
static void drain(iw_reader *r, snap *out, int max, int *n)
{
    int i;
    for (i = 0; i < 16; i++) {
        iw_response resp;
        int rc = iw_reader_parse(r, &resp);
        if (rc == IMAPWIRE_AGAIN)
            return;
        ck_assert_int_eq(rc, 0);
        ck_assert_int_lt(*n, max);
        take(&out[(*n)++], &resp);
    }
    ck_abort_msg("reader returned more responses than were fed");
}

/* Feeds one whole buffer and parses exactly one response out of it. */
static int parse_one(iw_reader *r, const char *p, size_t n, snap *s)
{
    iw_response resp;
    int rc;
    ck_assert_int_eq(iw_reader_feed(r, p, n), 0);
    rc = iw_reader_parse(r, &resp);
    if (rc == 0)
        take(s, &resp);
    return rc;
}

static int parse_str(iw_reader *r, const char *p, snap *s)
{
    return parse_one(r, p, strlen(p), s);
}

START_TEST(tagged_ok)
{
    iw_reader r;
    snap s;
    const char *in = "A0001 OK LOGIN completed\r\n";
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, in, &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_TAGGED);
    ck_assert_str_eq(s.tag, "A0001");
    ck_assert_str_eq(s.rest, "OK LOGIN completed");
    ck_assert_uint_eq(s.len, strlen(in));
    ck_assert_uint_eq(s.line_len, strlen(in) - 2);
    ck_assert_uint_eq(s.literals, 0);
    ck_assert_uint_eq(iw_reader_buffered(&r), 0);
    iw_reader_free(&r);
}
END_TEST

START_TEST(untagged_and_continuation)
{
    iw_reader r;
    snap s;
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, "* 3 EXISTS\r\n", &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_UNTAGGED);
    ck_assert_str_eq(s.rest, "3 EXISTS");
    ck_assert_str_eq(s.tag, "");
    ck_assert_int_eq(parse_str(&r, "+ go ahead\r\n", &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_CONTINUATION);
    ck_assert_str_eq(s.rest, "go ahead");
    ck_assert_uint_eq(s.len, 12);
    /* An AUTHENTICATE challenge: base64 after "+ ". */
    ck_assert_int_eq(parse_str(&r, "+ dGVzdA==\r\n", &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_CONTINUATION);
    ck_assert_str_eq(s.rest, "dGVzdA==");
    iw_reader_free(&r);
}
END_TEST

START_TEST(one_literal)
{
    iw_reader r;
    snap s;
    const char *in = "* 1 FETCH (BODY[] {5}\r\nhello)\r\n";
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, in, &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_UNTAGGED);
    ck_assert_str_eq(s.rest, "1 FETCH (BODY[] {5}");
    ck_assert_uint_eq(s.line_len, strlen("* 1 FETCH (BODY[] {5}"));
    ck_assert_uint_eq(s.literals, 1);
    ck_assert_uint_eq(s.len, strlen(in));
    ck_assert_mem_eq(s.data, in, strlen(in));
    iw_reader_free(&r);
}
END_TEST

START_TEST(several_literals)
{
    iw_reader r;
    snap s;
    /* A zero-length literal and a literal whose bytes look like a line with a literal. */
    const char *in = "* 2 FETCH (BODY[1] {3}\r\nabc BODY[2] {0}\r\n BODY[3] {7}\r\n{2}\r\nhi)\r\n";
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, in, &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_UNTAGGED);
    ck_assert_uint_eq(s.literals, 3);
    ck_assert_str_eq(s.rest, "2 FETCH (BODY[1] {3}");
    ck_assert_uint_eq(s.len, strlen(in));
    ck_assert_uint_eq(iw_reader_buffered(&r), 0);
    iw_reader_free(&r);
}
END_TEST

START_TEST(literal8_may_carry_nul)
{
    /* RFC 3516/9051 literal8 (~{n}) is binary: NUL is legal inside it, and only there. */
    static const char in[] = "* 4 FETCH (BINARY[] ~{3}\r\na\0b)\r\n";
    iw_reader r;
    snap s;
    iw_reader_init(&r);
    ck_assert_int_eq(parse_one(&r, in, sizeof in - 1, &s), 0);
    ck_assert_uint_eq(s.literals, 1);
    ck_assert_uint_eq(s.len, sizeof in - 1);
    ck_assert_mem_eq(s.data, in, sizeof in - 1);
    iw_reader_free(&r);
}
END_TEST

START_TEST(two_responses_one_feed)
{
    iw_reader r;
    snap s[4];
    int n = 0;
    const char *a = "* OK [UNSEEN 3] first\r\n", *b = "A7 NO [ALERT] second\r\n";
    char in[64];
    snprintf(in, sizeof in, "%s%s", a, b);
    iw_reader_init(&r);
    ck_assert_int_eq(iw_reader_feed(&r, in, strlen(in)), 0);
    drain(&r, s, 4, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(s[0].kind, IW_RESP_UNTAGGED);
    ck_assert_str_eq(s[0].rest, "OK [UNSEEN 3] first");
    ck_assert_uint_eq(s[0].len, strlen(a));
    ck_assert_int_eq(s[1].kind, IW_RESP_TAGGED);
    ck_assert_str_eq(s[1].tag, "A7");
    ck_assert_str_eq(s[1].rest, "NO [ALERT] second");
    ck_assert_uint_eq(s[1].len, strlen(b));
    iw_reader_free(&r);
}
END_TEST

/* ---- split points: the same responses whatever the chunking ---- */

/* The literal holds CRLF and "{3}" + CRLF, which must stay literal bytes. */
#define LIT "ab\r\n{3}\r\nxyz\r\n"
static const char *const split_parts[] = {
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID] memtest ready\r\n",
    "* 1 FETCH (BODY[] {14}\r\n" LIT ")\r\n",
    "A0001 OK FETCH done\r\n",
};
static const int split_kinds[] = { IW_RESP_UNTAGGED, IW_RESP_UNTAGGED, IW_RESP_TAGGED };
static const char *const split_tags[] = { "", "", "A0001" };
static const char *const split_rests[] = {
    "OK [CAPABILITY IMAP4rev1 LITERAL+ ID] memtest ready", "1 FETCH (BODY[] {14}",
    "OK FETCH done",
};
static const unsigned split_lits[] = { 0, 1, 0 };

static size_t split_stream(char *buf, size_t size)
{
    size_t i, n = 0;
    ck_assert_uint_eq(strlen(LIT), 14);
    for (i = 0; i < 3; i++) {
        size_t k = strlen(split_parts[i]);
        ck_assert_uint_le(n + k, size);
        memcpy(buf + n, split_parts[i], k);
        n += k;
    }
    return n;
}

static void split_check(const snap *s, int n, const char *where)
{
    int i;
    ck_assert_msg(n == 3, "%s: %d responses", where, n);
    for (i = 0; i < 3; i++) {
        ck_assert_msg(s[i].kind == split_kinds[i], "%s: kind of %d", where, i);
        ck_assert_msg(strcmp(s[i].tag, split_tags[i]) == 0, "%s: tag of %d", where, i);
        ck_assert_msg(strcmp(s[i].rest, split_rests[i]) == 0, "%s: rest of %d", where, i);
        ck_assert_msg(s[i].literals == split_lits[i], "%s: literals of %d", where, i);
        ck_assert_msg(s[i].len == strlen(split_parts[i]) &&
                      memcmp(s[i].data, split_parts[i], s[i].len) == 0,
                      "%s: bytes of %d", where, i);
    }
}

START_TEST(every_split_point)
{
    char in[256], where[32];
    size_t total = split_stream(in, sizeof in), cut;
    for (cut = 0; cut <= total; cut++) {
        iw_reader r;
        snap s[4];
        int n = 0;
        iw_reader_init(&r);
        ck_assert_int_eq(iw_reader_feed(&r, in, cut), 0);
        drain(&r, s, 4, &n);
        ck_assert_int_eq(iw_reader_feed(&r, in + cut, total - cut), 0);
        drain(&r, s, 4, &n);
        snprintf(where, sizeof where, "cut at %zu", cut);
        split_check(s, n, where);
        ck_assert_uint_eq(iw_reader_buffered(&r), 0);
        iw_reader_free(&r);
    }
}
END_TEST

START_TEST(one_byte_at_a_time)
{
    char in[256];
    size_t total = split_stream(in, sizeof in), i;
    iw_reader r;
    snap s[4];
    int n = 0;
    iw_reader_init(&r);
    for (i = 0; i < total; i++) {
        ck_assert_int_eq(iw_reader_feed(&r, in + i, 1), 0);
        drain(&r, s, 4, &n);
    }
    split_check(s, n, "byte by byte");
    iw_reader_free(&r);
}
END_TEST

/* ---- limits ---- */

/* Feeds a CRLF-less line in chunks until the reader refuses it; returns bytes fed. */
static size_t feed_until_refused(iw_reader *r, size_t chunk, size_t max_feed)
{
    char *buf = malloc(chunk);
    size_t fed = 0;
    iw_response resp;
    int rc = IMAPWIRE_AGAIN;

    ck_assert_ptr_nonnull(buf);
    memset(buf, 'a', chunk);
    buf[0] = '*';
    buf[1] = ' ';
    while (fed < max_feed) {
        ck_assert_int_eq(iw_reader_feed(r, buf, chunk), 0);
        fed += chunk;
        buf[0] = buf[1] = 'a';
        rc = iw_reader_parse(r, &resp);
        if (rc != IMAPWIRE_AGAIN)
            break;
    }
    free(buf);
    ck_assert_int_eq(rc, ST_ERROR_RESPONSE_TOO_LARGE);
    /* Sticky: a caller that asks again must not be told to read more. */
    ck_assert_int_eq(iw_reader_parse(r, &resp), ST_ERROR_RESPONSE_TOO_LARGE);
    return fed;
}

START_TEST(long_line_default_limit)
{
    iw_reader r;
    size_t chunk = 64u << 10, fed;
    iw_reader_init(&r);
    fed = feed_until_refused(&r, chunk, 8 * r.max_line);
    ck_assert_uint_le(fed, r.max_line + chunk);
    /* Memory follows what was needed to see the line is too long, not a multiple of it. */
    ck_assert_uint_le(r.cap, 2 * (r.max_line + chunk));
    iw_reader_free(&r);
}
END_TEST

START_TEST(long_line_small_limit)
{
    iw_reader r;
    size_t fed;
    iw_reader_init(&r);
    r.max_line = 1000;
    fed = feed_until_refused(&r, 100, 100000);
    ck_assert_uint_le(fed, 1100);
    ck_assert_uint_le(r.cap, 8192);
    iw_reader_free(&r);
}
END_TEST

START_TEST(line_limit_boundary)
{
    /* One byte under the limit is a normal line; one past it is refused. */
    iw_reader r;
    snap s;
    char line[160];
    iw_reader_init(&r);
    r.max_line = 100;
    memset(line, 'x', sizeof line);
    memcpy(line, "* ", 2);
    memcpy(line + 99, "\r\n", 2);
    ck_assert_int_eq(parse_one(&r, line, 101, &s), 0);
    ck_assert_uint_eq(s.line_len, 99);
    iw_reader_free(&r);
    iw_reader_init(&r);
    r.max_line = 100;
    memset(line, 'x', sizeof line);
    memcpy(line, "* ", 2);
    memcpy(line + 101, "\r\n", 2);
    ck_assert_int_eq(parse_one(&r, line, 103, &s), ST_ERROR_RESPONSE_TOO_LARGE);
    iw_reader_free(&r);
    /* Exactly at the limit: the CRLF does not count against it. */
    iw_reader_init(&r);
    r.max_line = 100;
    memset(line, 'x', sizeof line);
    memcpy(line, "* ", 2);
    memcpy(line + 100, "\r\n", 2);
    ck_assert_int_eq(parse_one(&r, line, 102, &s), 0);
    ck_assert_uint_eq(s.line_len, 100);
    iw_reader_free(&r);
}
END_TEST

static void huge_literal(const char *line)
{
    iw_reader r;
    snap s;
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, line, &s), ST_ERROR_RESPONSE_TOO_LARGE);
    /* Refused from the announcement alone: nothing was reserved for the claimed size. */
    ck_assert_uint_lt(r.cap, 65536);
    iw_reader_free(&r);
}

START_TEST(huge_literals_refused_at_once)
{
    huge_literal("* 1 FETCH (BODY[] {4294967295}\r\n");
    huge_literal("* 1 FETCH (BODY[] {99999999999999999999}\r\n");
    huge_literal("* 1 FETCH (BODY[] {268435457}\r\n");       /* max_literal + 1 */
    huge_literal("A1 OK {4294967296}\r\n");
}
END_TEST

START_TEST(literal_at_limit_waits)
{
    iw_reader r;
    snap s;
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, "* 1 FETCH (BODY[] {268435456}\r\n", &s), IMAPWIRE_AGAIN);
    ck_assert_uint_lt(r.cap, 65536);
    iw_reader_free(&r);
}
END_TEST

START_TEST(feed_never_overflows_buffer)
{
    /* iw_reader_feed serves in-memory transports: however much they hand over at once,
     * the reader must refuse or hold it, never write past its buffer. */
    iw_reader r;
    char *big = malloc(20000);
    int rc;
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 20000);
    iw_reader_init(&r);
    r.max_line = 50;
    r.max_literal = 50;
    r.max_response = 100;
    rc = iw_reader_feed(&r, big, 20000);
    ck_assert_msg(rc == ST_ERROR_RESPONSE_TOO_LARGE || r.len < r.cap,
                  "feed returned %d holding %zu bytes in a %zu-byte buffer", rc, r.len, r.cap);
    iw_reader_free(&r);
    free(big);
}
END_TEST

/* ---- malformed input ---- */

static void invalid(const char *p, size_t n)
{
    iw_reader r;
    iw_response resp;
    iw_reader_init(&r);
    ck_assert_int_eq(iw_reader_feed(&r, p, n), 0);
    ck_assert_msg(iw_reader_parse(&r, &resp) == ST_ERROR_INVALID_RESPONSE,
                  "accepted %zu bytes starting 0x%02x", n, (unsigned char)p[0]);
    iw_reader_free(&r);
}

START_TEST(malformed_refused)
{
    static const char garbage[] = "\x80\x81\xfe\xff\x16\x03\x01";
    static const char nul_line[] = "* OK hel\0lo\r\n";
    static const char nul_partial[] = "* OK he\0";
    static const char nul_after_literal[] = "* 1 FETCH (BODY[] {1}\r\nx)\0\r\n";
    invalid(garbage, sizeof garbage - 1);                 /* a TLS record, not IMAP */
    invalid(nul_line, sizeof nul_line - 1);
    invalid(nul_partial, sizeof nul_partial - 1);          /* no need to wait for CRLF */
    invalid(nul_after_literal, sizeof nul_after_literal - 1);
    invalid("\r\n", 2);
    invalid(" OK\r\n", 5);
    invalid("(OK)\r\n", 6);
    invalid("{5}\r\nhello\r\n", 12);
    invalid("\"A1\" OK\r\n", 9);
    invalid("*OK\r\n", 5);                                  /* "*" must be followed by SP */
    invalid("+OK\r\n", 5);
    invalid("A0001\r\n", 7);                                /* a tag alone */
    invalid("A(1 OK\r\n", 8);
    invalid("A%1 OK\r\n", 8);
    invalid("A+1 OK\r\n", 8);                               /* '+' is not a tag char */
}
END_TEST

START_TEST(tag_may_contain_resp_special)
{
    /* RFC 3501/9051: tag = 1*<any ASTRING-CHAR except "+">, ASTRING-CHAR = ATOM-CHAR /
     * resp-specials, resp-specials = "]": a tag may hold ']'. */
    iw_reader r;
    snap s;
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, "a]1 OK done\r\n", &s), 0);
    ck_assert_int_eq(s.kind, IW_RESP_TAGGED);
    ck_assert_str_eq(s.tag, "a]1");
    iw_reader_free(&r);
}
END_TEST

START_TEST(literal_size_leading_zeros)
{
    /* RFC 3501 number / RFC 9051 number64 = 1*DIGIT: leading zeros do not make it big. */
    iw_reader r;
    snap s;
    size_t size = 0;
    ck_assert_int_eq(iw_literal_size("{000000000005}", 14, &size), 1);
    ck_assert_uint_eq(size, 5);
    iw_reader_init(&r);
    ck_assert_int_eq(parse_str(&r, "* 1 FETCH (BODY[] {000000000005}\r\nhello)\r\n", &s), 0);
    ck_assert_uint_eq(s.literals, 1);
    iw_reader_free(&r);
}
END_TEST

/* ---- iw_literal_size ---- */

static int lit(const char *s, size_t *size)
{
    *size = 12345;
    return iw_literal_size(s, strlen(s), size);
}

START_TEST(literal_size)
{
    size_t n;
    ck_assert_int_eq(lit("{0}", &n), 1);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(lit("{12}", &n), 1);
    ck_assert_uint_eq(n, 12);
    ck_assert_int_eq(lit("{12+}", &n), 1);
    ck_assert_uint_eq(n, 12);
    ck_assert_int_eq(lit("* 1 FETCH (BODY[] ~{7}", &n), 1);
    ck_assert_uint_eq(n, 7);
#if SIZE_MAX > 0xffffffffu
    ck_assert_int_eq(lit("{4294967295}", &n), 1);
    ck_assert_uint_eq(n, 4294967295u);
#endif
    ck_assert_int_eq(lit("{99999999999999999999}", &n), -1);
    ck_assert_int_eq(lit("{}", &n), 0);
    ck_assert_int_eq(lit("{+}", &n), 0);
    ck_assert_int_eq(lit("{1a}", &n), 0);
    ck_assert_int_eq(lit("{a1}", &n), 0);
    ck_assert_int_eq(lit("12}", &n), 0);
    ck_assert_int_eq(lit("{12", &n), 0);
    ck_assert_int_eq(lit("{12} ", &n), 0);              /* only at the end of a piece */
    ck_assert_int_eq(lit("no brace", &n), 0);
    ck_assert_int_eq(lit("", &n), 0);
    ck_assert_uint_eq(n, 12345);                        /* untouched when there is none */
    /* Counted, not NUL-terminated: the bytes after n do not count. */
    ck_assert_int_eq(iw_literal_size("{5}\r\n", 3, &n), 1);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(iw_literal_size("{5}", 2, &n), 0);
}
END_TEST

START_TEST(reset_drops_everything)
{
    iw_reader r;
    snap s;
    iw_reader_init(&r);
    ck_assert_int_eq(iw_reader_feed(&r, "* OK partial", 12), 0);
    ck_assert_uint_eq(iw_reader_buffered(&r), 12);
    iw_reader_reset(&r);
    ck_assert_uint_eq(iw_reader_buffered(&r), 0);
    ck_assert_int_eq(parse_str(&r, "* OK fresh\r\n", &s), 0);
    ck_assert_str_eq(s.rest, "OK fresh");
    iw_reader_free(&r);
}
END_TEST

/* A hook that sends the first literal of each response to dest (mode), remembering
 * what it was shown. */
typedef struct hook_state {
    int    mode, calls, fail;
    char   dest[64];
    size_t size;
    char   head[128];
} hook_state;

static int test_hook(void *arg, const iw_response *head, size_t size, int over,
                     iw_lit_dest *d)
{
    hook_state *h = arg;
    (void)over;
    h->calls++;
    if (h->fail)
        return ST_ERROR_OUT_OF_MEMORY;
    h->size = size;
    ck_assert_uint_lt(head->len, sizeof h->head);
    memcpy(h->head, head->data, head->len);
    h->head[head->len] = '\0';
    d->mode = h->mode;
    d->p = h->mode == IW_LIT_TO ? h->dest : NULL;
    return 0;
}

/* Whatever the split of the bytes, a literal sent elsewhere lands there whole, leaves
 * only its head and the rest of the response in the buffer, and a second literal of
 * the same response stays inline. */
START_TEST(hook_literal_any_split)
{
    static const char in[] = "* 1 FETCH (BODY[] {10}\r\n0123456789 X {3}\r\nabc)\r\n"
                             "A1 OK done\r\n";
    static const char left[] = "* 1 FETCH (BODY[] {10}\r\n X {3}\r\nabc)\r\n";
    size_t total = sizeof in - 1, cut;
    for (cut = 1; cut < total; cut++) {
        iw_reader r;
        hook_state h;
        snap got[4];
        int n = 0;
        memset(&h, 0, sizeof h);
        h.mode = IW_LIT_TO;
        iw_reader_init(&r);
        iw_reader_set_hook(&r, test_hook, &h);
        ck_assert_int_eq(iw_reader_feed(&r, in, cut), 0);
        drain(&r, got, 4, &n);
        ck_assert_int_eq(iw_reader_feed(&r, in + cut, total - cut), 0);
        drain(&r, got, 4, &n);
        ck_assert_int_eq(n, 2);
        ck_assert_int_eq(h.calls, 1);
        ck_assert_uint_eq(h.size, 10);
        ck_assert_str_eq(h.head, "* 1 FETCH (BODY[] {10}\r\n");
        ck_assert(memcmp(h.dest, "0123456789", 10) == 0);
        ck_assert_uint_eq(got[0].len, sizeof left - 1);
        ck_assert(memcmp(got[0].data, left, sizeof left - 1) == 0);
        ck_assert_uint_eq(got[0].literals, 2);
        ck_assert_str_eq(got[1].tag, "A1");
        iw_reader_free(&r);
    }
}
END_TEST

/* Dropped literals and empty ones; a hook's error is the parse's; the limit on a whole
 * response still counts a literal that left the buffer. */
START_TEST(hook_drop_empty_error_limit)
{
    static const char in[] = "* 1 FETCH (BODY[] {4}\r\nabcd)\r\n";
    static const char empty[] = "* 1 FETCH (BODY[] {0}\r\n)\r\n";
    iw_reader r;
    hook_state h;
    snap got[2];
    int n = 0;
    char line[64];

    memset(&h, 0, sizeof h);
    h.mode = IW_LIT_DROP;
    iw_reader_init(&r);
    iw_reader_set_hook(&r, test_hook, &h);
    ck_assert_int_eq(iw_reader_feed(&r, in, sizeof in - 1), 0);
    drain(&r, got, 2, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(got[0].data, "* 1 FETCH (BODY[] {4}\r\n)\r\n");

    h.mode = IW_LIT_TO;
    ck_assert_int_eq(iw_reader_feed(&r, empty, sizeof empty - 1), 0);
    n = 0;
    drain(&r, got, 2, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(h.size, 0);
    ck_assert_uint_eq(got[0].len, sizeof empty - 1);
    iw_reader_free(&r);

    iw_reader_init(&r);
    h.fail = 1;
    iw_reader_set_hook(&r, test_hook, &h);
    ck_assert_int_eq(iw_reader_feed(&r, in, sizeof in - 1), 0);
    {
        iw_response resp;
        ck_assert_int_eq(iw_reader_parse(&r, &resp), ST_ERROR_OUT_OF_MEMORY);
    }
    iw_reader_free(&r);

    /* 40 bytes of literal taken elsewhere, 30 more inline: over a 64-byte response */
    iw_reader_init(&r);
    r.max_response = 64;
    h.fail = 0;
    h.mode = IW_LIT_TO;
    iw_reader_set_hook(&r, test_hook, &h);
    snprintf(line, sizeof line, "* 1 X {40}\r\n");
    ck_assert_int_eq(iw_reader_feed(&r, line, strlen(line)), 0);
    ck_assert_int_eq(iw_reader_feed(&r, "0123456789012345678901234567890123456789", 40), 0);
    ck_assert_int_eq(iw_reader_feed(&r, " {30}\r\n", 7), 0);
    {
        iw_response resp;
        ck_assert_int_eq(iw_reader_parse(&r, &resp), ST_ERROR_RESPONSE_TOO_LARGE);
    }
    iw_reader_free(&r);
}
END_TEST

/* At rest the reader holds nothing; a large response's buffer goes back to 4 KB as soon
 * as what it holds fits. */
START_TEST(buffer_at_rest)
{
    iw_reader r;
    iw_response resp;
    char *big = malloc(100000);
    size_t i;

    ck_assert_ptr_nonnull(big);
    iw_reader_init(&r);
    ck_assert_uint_eq(iw_reader_capacity(&r), 0);
    i = (size_t)snprintf(big, 100000, "* 1 X {%d}\r\n", 90000);
    memset(big + i, 'x', 90000);
    memcpy(big + i + 90000, ")\r\n* OK next\r\n", 14);
    ck_assert_int_eq(iw_reader_feed(&r, big, i + 90000 + 14), 0);
    ck_assert_int_eq(iw_reader_parse(&r, &resp), 0);
    ck_assert_uint_gt(iw_reader_capacity(&r), 90000);
    ck_assert_int_eq(iw_reader_parse(&r, &resp), 0);    /* "* OK next" */
    ck_assert_uint_le(iw_reader_capacity(&r), 4096);
    ck_assert_int_eq(iw_reader_parse(&r, &resp), IMAPWIRE_AGAIN);
    iw_reader_rest(&r);
    ck_assert_uint_eq(iw_reader_capacity(&r), 0);
    iw_reader_free(&r);
    free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reader");
    TCase *tc = tcase_create("reader");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tagged_ok);
    tcase_add_test(tc, untagged_and_continuation);
    tcase_add_test(tc, one_literal);
    tcase_add_test(tc, several_literals);
    tcase_add_test(tc, literal8_may_carry_nul);
    tcase_add_test(tc, two_responses_one_feed);
    tcase_add_test(tc, every_split_point);
    tcase_add_test(tc, one_byte_at_a_time);
    tcase_add_test(tc, long_line_default_limit);
    tcase_add_test(tc, long_line_small_limit);
    tcase_add_test(tc, line_limit_boundary);
    tcase_add_test(tc, huge_literals_refused_at_once);
    tcase_add_test(tc, literal_at_limit_waits);
    tcase_add_test(tc, feed_never_overflows_buffer);
    tcase_add_test(tc, malformed_refused);
    tcase_add_test(tc, tag_may_contain_resp_special);
    tcase_add_test(tc, literal_size_leading_zeros);
    tcase_add_test(tc, literal_size);
    tcase_add_test(tc, reset_drops_everything);
    tcase_add_test(tc, hook_literal_any_split);
    tcase_add_test(tc, hook_drop_empty_error_limit);
    tcase_add_test(tc, buffer_at_rest);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
