/* test_stream.c: ImapCommandStream against Dovecot and dying servers: a 49 MB literal
 * streamed byte for byte in bounded memory, pieces that reassemble to ImapCommandEx's
 * responses, calls from inside the callback refused, and the command buffer at rest. */
#define _GNU_SOURCE
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "iwtest.h"

#define PIECE_MAX 65536u

static HCLIENT login(iwt_dovecot *dv, const char *box)
{
    char cmd[128];
    HCLIENT h;
    iwt_dovecot_load(dv);
    h = ImapConnect(dv->host, dv->port, 30, IMAP_OPTION_NONE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv->user, dv->pass), 0);
    if (box != NULL) {
        snprintf(cmd, sizeof cmd, "CREATE %s", box);
        ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    }
    return h;
}

static void drop_box(HCLIENT h, const char *box)
{
    char cmd[128];
    ImapCommand(h, "UNSELECT", NULL, 0);
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
}

/* What the pieces said, checked as they come: literal pieces contiguous and bounded,
 * responses numbered in order, each ended once. Text (and literals when keep is set)
 * is reassembled per response into resp[]. */
#define MAX_RESP 16
typedef struct pieces {
    int         keep;              /* keep literal bytes in resp[] */
    EVP_MD_CTX *md;                /* set: literal bytes go into the digest */
    char       *resp[MAX_RESP];
    size_t      len[MAX_RESP];
    unsigned    ended[MAX_RESP];
    DWORD       responses, literal_pieces, largest, literals, text_pieces;
    size_t      lit_bytes, lit_expect, lit_next;
    int         bad;
    char        why[160];
    /* calls from inside the callback */
    HCLIENT     h;
    int         call_inside;
    DWORD       inside_err[3];
    int         inside_rc[3];
} pieces;

static void bad(pieces *p, const char *why)
{
    if (!p->bad)
        snprintf(p->why, sizeof p->why, "%s", why);
    p->bad = 1;
}

static void keep_bytes(pieces *p, DWORD r, const char *d, size_t n)
{
    char *b = realloc(p->resp[r], p->len[r] + n + 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b + p->len[r], d, n);
    p->len[r] += n;
    b[p->len[r]] = '\0';
    p->resp[r] = b;
}

static VOID on_piece(HCLIENT h, const IMAPRESPONSEPIECE *pc, LPVOID param)
{
    pieces *p = param;
    DWORD r = pc->dwResponse;
    (void)h;
    if (pc->dwSize != sizeof *pc)
        bad(p, "dwSize");
    if (r == 0 || r >= MAX_RESP || r < p->responses || r > p->responses + 1) {
        bad(p, "response number out of order");
        return;
    }
    if (r > p->responses) {
        if (p->responses > 0 && !p->ended[p->responses])
            bad(p, "a response began before the last one ended");
        p->responses = r;
    }
    if (p->ended[r])
        bad(p, "a piece after its response's end");
    if (pc->dwFlags & IMAP_PIECE_LITERAL) {
        p->literal_pieces++;
        if (pc->dwLength > p->largest)
            p->largest = pc->dwLength;
        if (pc->dwLength == 0 || pc->dwLength > PIECE_MAX || (pc->dwFlags & IMAP_PIECE_END))
            bad(p, "literal piece size or flags");
        if (pc->dwLiteralSize != p->lit_expect || pc->dwLiteralOffset != p->lit_next ||
            (size_t)pc->dwLiteralOffset + pc->dwLength > pc->dwLiteralSize)
            bad(p, "literal piece not where expected");
        p->lit_next += pc->dwLength;
        p->lit_bytes += pc->dwLength;
        if (p->md != NULL)
            EVP_DigestUpdate(p->md, pc->lpData, pc->dwLength);
        if (p->keep)
            keep_bytes(p, r, pc->lpData, pc->dwLength);
    } else {
        p->text_pieces++;
        if (p->lit_next != p->lit_expect)
            bad(p, "text before the literal was complete");
        /* every text piece but the last of its response ends with a literal's head */
        if (!(pc->dwFlags & IMAP_PIECE_END)) {
            char head[32];
            int hl = snprintf(head, sizeof head, "{%u}\r\n", (unsigned)pc->dwLiteralSize);
            int hl2 = snprintf(head + 16, 16, "{%u+}\r\n", (unsigned)pc->dwLiteralSize);
            if (pc->dwLength < (DWORD)hl ||
                (memcmp(pc->lpData + pc->dwLength - hl, head, (size_t)hl) != 0 &&
                 (pc->dwLength < (DWORD)hl2 ||
                  memcmp(pc->lpData + pc->dwLength - hl2, head + 16, (size_t)hl2) != 0)))
                bad(p, "a text piece with a literal size does not end with its head");
            p->literals++;
        }
        if ((pc->dwFlags & IMAP_PIECE_END) && pc->dwLiteralSize != 0)
            bad(p, "the end piece announces a literal");
        p->lit_expect = pc->dwLiteralSize;
        p->lit_next = 0;
        keep_bytes(p, r, pc->lpData, pc->dwLength);
        if (pc->dwFlags & IMAP_PIECE_END)
            p->ended[r] = 1;
    }
    if (p->call_inside && p->call_inside-- > 0) {
        /* only the first piece tries: a command, a fetch and the disconnect */
        DWORD len = 0;
        char *body = NULL;
        p->inside_rc[0] = ImapCommand(p->h, "NOOP", NULL, 0);
        p->inside_err[0] = ImapGetLastError();
        p->inside_rc[1] = ImapGetMessage(p->h, 1, 0, &body, &len, 0);
        p->inside_err[1] = ImapGetLastError();
        p->inside_rc[2] = ImapDisconnect(p->h);
        p->inside_err[2] = ImapGetLastError();
        p->call_inside = 0;
    }
}

static void pieces_free(pieces *p)
{
    int i;
    for (i = 0; i < MAX_RESP; i++)
        free(p->resp[i]);
}

/* ImapCommandEx's responses, for comparison. */
typedef struct whole {
    char  *resp[MAX_RESP];
    size_t len[MAX_RESP];
    DWORD  n;
} whole;

static VOID on_whole(HCLIENT h, LPCTSTR d, DWORD n, LPVOID param)
{
    whole *w = param;
    (void)h;
    if (w->n + 1 >= MAX_RESP)
        return;
    w->n++;
    w->resp[w->n] = malloc(n + 1);
    ck_assert_ptr_nonnull(w->resp[w->n]);
    memcpy(w->resp[w->n], d, n);
    w->len[w->n] = n;
}

/* The pieces of cmd, each response reassembled, equal ImapCommandEx's responses. */
static void same_as_ex(HCLIENT h, const char *cmd, DWORD want_responses, DWORD want_literals)
{
    pieces p;
    whole w;
    char r1[256], r2[256];
    DWORD i;

    memset(&p, 0, sizeof p);
    memset(&w, 0, sizeof w);
    p.keep = 1;
    ck_assert_msg(ImapCommandStream(h, cmd, on_piece, &p, r1, sizeof r1) == 0, "%s: error %u",
                  cmd, (unsigned)ImapGetLastError());
    ck_assert_msg(!p.bad, "%s: %s", cmd, p.why);
    ck_assert_int_eq(ImapCommandEx(h, cmd, on_whole, &w, r2, sizeof r2), 0);
    ck_assert_uint_eq(p.responses, want_responses);
    ck_assert_uint_eq(w.n, want_responses);
    ck_assert_uint_eq(p.literals, want_literals);
    for (i = 1; i <= w.n; i++) {
        ck_assert_msg(p.ended[i], "%s: response %u has no end", cmd, (unsigned)i);
        ck_assert_msg(p.len[i] == w.len[i] && memcmp(p.resp[i], w.resp[i], w.len[i]) == 0,
                      "%s: response %u: pieces '%.*s' vs '%.*s'", cmd, (unsigned)i,
                      (int)(p.len[i] < 200 ? p.len[i] : 200), p.resp[i],
                      (int)(w.len[i] < 200 ? w.len[i] : 200), w.resp[i]);
        free(w.resp[i]);
    }
    /* the tagged reply says the same (Dovecot's text carries timings: up to them) */
    ck_assert_int_eq(strcspn(r1, "("), strcspn(r2, "("));
    ck_assert(strncmp(r1, r2, strcspn(r1, "(")) == 0);
    pieces_free(&p);
}

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* UID FETCH of a 49 MB message streamed: its SHA-256 equals the message's, and the
 * peak RSS grows less than 1 MB (normal build; ASan keeps and pads memory). */
START_TEST(big_stream)
{
    const size_t n = 49u * 1000u * 1000u;
    unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
    unsigned wl = 0, gl = 0;
    char *msg = iwt_message(n), box[64], cmd[128], result[128];
    IMAPMAILBOX mb;
    long before, peak;
    iwt_dovecot dv;
    pieces p;
    HCLIENT h;
    int sanitized = 0;

#if defined(__SANITIZE_ADDRESS__)
    sanitized = 1;
#endif
    ck_assert(EVP_Digest(msg, n, want, &wl, EVP_sha256(), NULL));
    snprintf(box, sizeof box, "stbig-%d", (int)getpid());
    h = login(&dv, box);
    iwt_append(h, box, msg, n);
    free(msg);
    ck_assert_int_eq(ImapSelectMailbox(h, box, &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 1);
    snprintf(cmd, sizeof cmd, "UID FETCH %u BODY.PEEK[]", (unsigned)(mb.dwUidNext - 1));

    memset(&p, 0, sizeof p);
    p.md = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(p.md);
    ck_assert(EVP_DigestInit_ex(p.md, EVP_sha256(), NULL));
    ck_assert(iwt_reset_peak() || sanitized);
    before = iwt_status_kb("VmRSS");
    ck_assert_msg(ImapCommandStream(h, cmd, on_piece, &p, result, sizeof result) == 0,
                  "error %u", (unsigned)ImapGetLastError());
    peak = iwt_status_kb("VmHWM");
    ck_assert(EVP_DigestFinal_ex(p.md, got, &gl));
    EVP_MD_CTX_free(p.md);
    ck_assert_msg(!p.bad, "%s", p.why);
    ck_assert_uint_eq(p.responses, 1);
    ck_assert_uint_eq(p.literals, 1);
    ck_assert_uint_eq(p.lit_bytes, n);
    ck_assert_uint_le(p.largest, PIECE_MAX);
    ck_assert(p.ended[1]);
    ck_assert_uint_eq(gl, wl);
    ck_assert_msg(memcmp(got, want, wl) == 0, "the streamed body's digest differs");
    /* the text around the literal: the FETCH's head and its closing parenthesis */
    ck_assert_msg(strncmp(p.resp[1], "* 1 FETCH (", 11) == 0, "%s", p.resp[1]);
    snprintf(cmd, sizeof cmd, "{%zu}\r\n", n);
    ck_assert_msg(strstr(p.resp[1], cmd) != NULL, "%s", p.resp[1]);
    ck_assert_int_eq(p.resp[1][p.len[1] - 1], ')');
    fprintf(stderr, "big_stream: 49 MB streamed, peak RSS %ld KB over %ld KB\n",
            peak - before, before);
    if (!sanitized)
        ck_assert_msg(peak - before < 1024, "streamed: peak %ld KB over %ld KB",
                      peak - before, before);
    pieces_free(&p);
    drop_box(h, box);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* Several literals in one response, several responses, and responses with none: the
 * pieces reassemble to exactly what ImapCommandEx delivers. */
START_TEST(several_literals)
{
    static const size_t sizes[] = { 100, 70000, 5 };
    char box[64], cmd[128];
    iwt_dovecot dv;
    HCLIENT h;
    size_t i;

    snprintf(box, sizeof box, "stmany-%d", (int)getpid());
    h = login(&dv, box);
    for (i = 0; i < 3; i++) {
        char *m = iwt_message(sizes[i]);
        iwt_append(h, box, m, sizes[i]);
        free(m);
    }
    ck_assert_int_eq(ImapSelectMailbox(h, box, NULL), 0);
    /* two literals a response (header and text), three responses */
    same_as_ex(h, "FETCH 1:3 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])", 3, 6);
    /* one literal each */
    same_as_ex(h, "FETCH 1:3 BODY.PEEK[]", 3, 3);
    /* no literal at all */
    same_as_ex(h, "FETCH 1:3 (FLAGS UID)", 3, 0);
    snprintf(cmd, sizeof cmd, "STATUS %s (MESSAGES)", box);
    same_as_ex(h, cmd, 1, 0);
    /* none at all: no piece */
    same_as_ex(h, "NOOP", 0, 0);
    drop_box(h, box);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* A failing command still delivers what came and fails as ImapCommandEx does. */
START_TEST(command_fails)
{
    iwt_dovecot dv;
    pieces p;
    HCLIENT h = login(&dv, NULL);
    memset(&p, 0, sizeof p);
    ck_assert_int_eq(ImapCommandStream(h, "FETCH 1 BODY[]", on_piece, &p, NULL, 0),
                     IMAP_ERROR);
    iwt_assert_error(ST_ERROR_COMMAND_FAILED);       /* no mailbox selected: BAD */
    ck_assert_int_eq(ImapCommandStream(h, NULL, on_piece, &p, NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapCommandStream(h, "NOOP", NULL, NULL, NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapCommandStream(h, "NOOP", on_piece, &p, NULL, 0), 0);
    pieces_free(&p);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* From inside the callback, a command, a fetch and the disconnect are refused with
 * ST_ERROR_IN_PROGRESS; the call goes on to its end and the handle stays usable. Also
 * from ImapGetMessageStream's and ImapCommandEx's callbacks. */
static pieces *g_inside;

static VOID on_body_inside(HCLIENT h, const VOID *d, DWORD n, LPVOID param)
{
    IMAPRESPONSEPIECE pc;
    (void)d;
    memset(&pc, 0, sizeof pc);
    pc.dwSize = sizeof pc;
    pc.dwResponse = 1;
    pc.dwFlags = IMAP_PIECE_END;
    pc.lpData = "";
    (void)n;
    if (g_inside->responses == 0)
        on_piece(h, &pc, param);
}

static VOID on_whole_inside(HCLIENT h, LPCTSTR d, DWORD n, LPVOID param)
{
    on_body_inside(h, d, n, param);
}

START_TEST(call_inside)
{
    char box[64];
    iwt_dovecot dv;
    pieces p;
    DWORD len = 0;
    HCLIENT h;
    char *m = iwt_message(3000);
    int i;

    snprintf(box, sizeof box, "stin-%d-%d", (int)getpid(), _i);
    h = login(&dv, box);
    iwt_append(h, box, m, 3000);
    free(m);
    ck_assert_int_eq(ImapSelectMailbox(h, box, NULL), 0);
    memset(&p, 0, sizeof p);
    p.h = h;
    p.call_inside = 1;
    g_inside = &p;
    if (_i == 0)
        ck_assert_int_eq(ImapCommandStream(h, "FETCH 1 BODY.PEEK[]", on_piece, &p, NULL, 0),
                         0);
    else if (_i == 1)
        ck_assert_int_eq(ImapGetMessageStream(h, 1, 0, on_body_inside, &p, &len), 0);
    else
        ck_assert_int_eq(ImapCommandEx(h, "FETCH 1 BODY.PEEK[]", on_whole_inside, &p, NULL,
                                       0), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_msg(p.inside_rc[i] == IMAP_ERROR, "call %d from inside succeeded", i);
        ck_assert_msg(p.inside_err[i] == ST_ERROR_IN_PROGRESS, "call %d: error %u", i,
                      (unsigned)p.inside_err[i]);
    }
    /* after the call, the handle is whole */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    pieces_free(&p);
    drop_box(h, box);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* The server resets the connection halfway through a literal: the pieces so far came,
 * no end piece, ST_ERROR_CONNECTION_CLOSED, and the handle refuses further commands. */
START_TEST(dies_mid_literal)
{
    iwt_fixture f;
    pieces p;
    HCLIENT h;

    iwt_fixture_start(&f, "die-fetch-literal", 2);
    h = ImapConnect("127.0.0.1", f.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", NULL), 0);
    memset(&p, 0, sizeof p);
    p.keep = 1;
    ck_assert_int_eq(ImapCommandStream(h, "FETCH 1 BODY[]", on_piece, &p, NULL, 0),
                     IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_msg(!p.bad, "%s", p.why);
    ck_assert_uint_eq(p.responses, 1);
    ck_assert(!p.ended[1]);
    ck_assert_uint_eq(p.lit_expect, 1000);
    ck_assert_uint_gt(p.lit_bytes, 0);
    ck_assert_uint_lt(p.lit_bytes, 1000);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    pieces_free(&p);
    ImapDisconnect(h);
    iwt_fixture_stop(&f);
}
END_TEST

/* After a large command (a 4 MB APPEND; a 60 KB command line) the connection's heap
 * returns to within a few KB of what it held before: no buffer keeps its peak size. */
#define REST_SLACK 4096
START_TEST(command_buffer_rests)
{
    const size_t n = 4u << 20;
    char box[64], *m, *line;
    size_t heap0, heap1, heap2;
    iwt_dovecot dv;
    HCLIENT h;

    snprintf(box, sizeof box, "strest-%d", (int)getpid());
    h = login(&dv, box);
    /* one round of each first: one-time allocations (error strings, tables) settle */
    iwt_append(h, box, "Subject: x\r\n\r\nx", 15);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    heap0 = iwt_heap_in_use();
    m = iwt_message(n);                    /* the test's own, freed before the next look */
    iwt_append(h, box, m, n);
    free(m);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    heap1 = iwt_heap_in_use();
    ck_assert_msg(heap1 <= heap0 + REST_SLACK, "after a 4 MB APPEND: heap %zu -> %zu bytes",
                  heap0, heap1);
    /* a long line: the server may refuse it (BAD), the buffer must rest all the same */
    line = malloc(60000);
    ck_assert_ptr_nonnull(line);
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'a', 60000 - 6);
    line[60000 - 1] = '\0';
    ImapCommand(h, line, NULL, 0);
    free(line);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    heap2 = iwt_heap_in_use();
    ck_assert_msg(heap2 <= heap0 + REST_SLACK, "after a 60 KB line: heap %zu -> %zu bytes",
                  heap0, heap2);
    fprintf(stderr, "command_buffer_rests: heap %zu, after 4 MB APPEND %zu, after 60 KB line "
            "%zu bytes\n", heap0, heap1, heap2);
    drop_box(h, box);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stream");
    TCase *t = tcase_create("dovecot");
    TCase *f = tcase_create("fixture");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 240);
    tcase_add_test(t, big_stream);
    tcase_add_test(t, several_literals);
    tcase_add_test(t, command_fails);
    tcase_add_loop_test(t, call_inside, 0, 3);
    tcase_add_test(t, command_buffer_rests);
    suite_add_tcase(s, t);
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_set_timeout(f, 60);
    tcase_add_test(f, dies_mid_literal);
    suite_add_tcase(s, f);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
