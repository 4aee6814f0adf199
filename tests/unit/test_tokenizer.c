/* test_tokenizer.c: the tokenizer of server bytes on inputs copied into buffers of exactly
 * their size, so ASan reports any look past the end. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imap/client.h"
#include "imap/tokenizer.h"

static char *exact(const char *text, size_t n)
{
    char *b = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, text, n);
    return b;
}

/* Every token of text, as "TYPE:value" words joined by spaces, into out; the status. */
static int walk(const char *text, size_t n, char *out, size_t cap)
{
    char *b = exact(text, n);
    iw_tokenizer t;
    iw_tok k;
    int rc, turns = 0;
    size_t o = 0;

    out[0] = '\0';
    iw_tok_init_mem(&t, b, n);
    while ((rc = iw_tok_next(&t, &k)) == 0 && k.type != IW_TOK_END && turns++ < 1000) {
        static const char *const names[] = { "END", "A", "NIL", "Q", "L", "(", ")", "[", "]" };
        char val[256];
        size_t vl = 0;
        if (k.type == IW_TOK_QUOTED)
            vl = iw_tok_unquote(&k, val);
        else if (k.p != NULL && k.type != IW_TOK_LPAREN && k.type != IW_TOK_RPAREN &&
                 k.type != IW_TOK_LBRACKET && k.type != IW_TOK_RBRACKET) {
            vl = k.n < sizeof val ? k.n : sizeof val - 1;
            memcpy(val, k.p, vl);
        }
        val[vl] = '\0';
        o += (size_t)snprintf(out + o, cap - o, "%s%s%s%s", o ? " " : "", names[k.type],
                              vl || k.type == IW_TOK_QUOTED || k.type == IW_TOK_LITERAL ? ":" : "",
                              val);
        if (k.pending)
            o += (size_t)snprintf(out + o, cap - o, "(pending %zu)", k.n);
        ck_assert_uint_lt(o, cap);
    }
    ck_assert_int_lt(turns, 1000);
    free(b);
    return rc;
}

START_TEST(kinds)
{
    char out[1024];
    const char *s = "FETCH (UID 7 FLAGS (\\Seen $x) BODY[1.MIME]<0> {3}\r\na b \"q\\\"\\\\\" nil)\r\n";
    ck_assert_int_eq(walk(s, strlen(s), out, sizeof out), 0);
    ck_assert_str_eq(out, "A:FETCH ( A:UID A:7 A:FLAGS ( A:\\Seen A:$x ) A:BODY [ A:1.MIME ] "
                          "A:<0> L:a b Q:q\"\\ NIL:nil )");
    s = "OK [UIDNEXT 5] Predicted next UID";
    ck_assert_int_eq(walk(s, strlen(s), out, sizeof out), 0);
    ck_assert_str_eq(out, "A:OK [ A:UIDNEXT A:5 ] A:Predicted A:next A:UID");
    s = "{0}\r\n";                                /* an empty literal */
    ck_assert_int_eq(walk(s, strlen(s), out, sizeof out), 0);
    ck_assert_str_eq(out, "L:");
    s = "{2+}\nab";                               /* LITERAL+ form, bare LF */
    ck_assert_int_eq(walk(s, strlen(s), out, sizeof out), 0);
    ck_assert_str_eq(out, "L:ab");
}
END_TEST

/* Malformed input is ST_ERROR_INVALID_RESPONSE, never a read past the buffer. */
START_TEST(malformed)
{
    static const char *const bad[] = {
        "\"abc", "\"a\\", "\"a\\x\"", "\"a\r\n\"", "{5}\r\nabc", "{}\r\n", "{5", "{5}", "{5}x",
        "{99999999999}\r\n", "{300000000}\r\nab", ")", "a)", "\x01", "a\rb", "(\"a",
    };
    char out[1024];
    ck_assert_int_eq(walk(bad[_i], strlen(bad[_i]), out, sizeof out), ST_ERROR_INVALID_RESPONSE);
}
END_TEST

START_TEST(depth)
{
    char s[IW_TOK_MAX_DEPTH + 2], out[4096];
    memset(s, '(', sizeof s);
    ck_assert_int_eq(walk(s, IW_TOK_MAX_DEPTH, out, sizeof out), 0);
    ck_assert_int_eq(walk(s, IW_TOK_MAX_DEPTH + 1, out, sizeof out), ST_ERROR_INVALID_RESPONSE);
}
END_TEST

/* Every prefix of real responses, each in its own exact-size buffer: 0 or the error,
 * and ASan quiet. The bare "* 1" of issue 14 is among them. */
START_TEST(prefixes)
{
    static const char *const full[] = {
        "* 1\r\n",
        "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {12}\r\nSubject: x\r\n BODY[] \"a\\\"b\")\r\n",
        "* OK [PERMANENTFLAGS (\\Answered \\*)] Flags permitted.\r\n",
        "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN\r\n",
        "* STATUS \"a b\" (MESSAGES 2 UIDNEXT 9)\r\n",
        "* ID (\"name\" \"Dovecot\" \"x\" NIL)\r\n",
    };
    char out[4096];
    size_t n = strlen(full[_i]), i;
    for (i = 0; i <= n; i++) {
        int rc = walk(full[_i], i, out, sizeof out);
        ck_assert_msg(rc == 0 || rc == ST_ERROR_INVALID_RESPONSE, "%zu: %d", i, rc);
    }
    ck_assert_int_eq(walk(full[_i], n, out, sizeof out), 0);
}
END_TEST

/* Over a response: a literal still to come (a reader hook's head) and one whose bytes
 * went to a destination are told apart from a short one. */
START_TEST(response_literals)
{
    const char *head = "* 1 FETCH (BODY[] {5}\r\n";
    const char *gone = "* 1 FETCH (BODY[] {5}\r\n)\r\n";
    iw_response r;
    iw_tokenizer t;
    iw_tok k;
    char *b = exact(head, strlen(head));
    int i;

    memset(&r, 0, sizeof r);
    r.kind = IW_RESP_UNTAGGED;
    r.data = b;
    r.len = strlen(head);
    r.rest = b + 2;
    iw_tok_init(&t, &r);
    for (i = 0; i < 7; i++)
        ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert_int_eq(k.type, IW_TOK_LITERAL);
    ck_assert(k.pending);
    ck_assert_ptr_null(k.p);
    ck_assert_uint_eq(k.n, 5);
    free(b);

    b = exact(gone, strlen(gone));
    r.data = b;
    r.len = strlen(gone);
    r.rest = b + 2;
    r.gone_at = strlen(head);
    iw_tok_init(&t, &r);
    for (i = 0; i < 7; i++)
        ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert(k.gone);
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert_int_eq(k.type, IW_TOK_RPAREN);
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert_int_eq(k.type, IW_TOK_END);
    free(b);
}
END_TEST

START_TEST(numbers_and_text)
{
    iw_tokenizer t;
    iw_tok k;
    uint32_t v = 0;
    const char *p;
    size_t n;
    char *b = exact("4294967295 4294967296 12a [ALERT] hello  world\r\n", 48);

    iw_tok_init_mem(&t, b, 48);
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert(iw_tok_number(&k, &v));
    ck_assert_uint_eq(v, 4294967295u);
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert(!iw_tok_number(&k, &v));
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert(!iw_tok_number(&k, &v));
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert_int_eq(iw_tok_skip_to(&t, IW_TOK_RBRACKET), 0);
    iw_tok_text(&t, &p, &n);
    ck_assert_uint_eq(n, 12);
    ck_assert(memcmp(p, "hello  world", 12) == 0);
    ck_assert_int_eq(iw_tok_next(&t, &k), 0);
    ck_assert_int_eq(k.type, IW_TOK_END);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("tokenizer");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, kinds);
    tcase_add_loop_test(tc, malformed, 0, 16);
    tcase_add_test(tc, depth);
    tcase_add_loop_test(tc, prefixes, 0, 6);
    tcase_add_test(tc, response_literals);
    tcase_add_test(tc, numbers_and_text);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
