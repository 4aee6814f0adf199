/* test_fetch_parse.c: the FETCH body parser on responses copied into buffers of exactly
 * their size, so ASan sees any look past the end (the reader's spare byte hides it). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "imap/client.h"
#include "imap/session.h"

/* An untagged response as the reader would return it, in its own exact-size buffer. */
static char *respond(const char *text, size_t n, iw_response *r)
{
    char *buf = malloc(n ? n : 1);
    const char *lf;
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, text, n);
    memset(r, 0, sizeof *r);
    r->kind = IW_RESP_UNTAGGED;
    r->data = buf;
    r->len = n;
    lf = memchr(buf, '\n', n);
    r->line_len = lf ? (size_t)(lf - buf) : n;
    if (r->line_len > 0 && buf[r->line_len - 1] == '\r' && lf)
        r->line_len--;
    r->rest = buf + 2;
    r->rest_len = r->line_len - 2;
    return buf;
}

static int parse(const char *text, unsigned id, struct iw_fetch *f)
{
    iw_response r;
    char *buf = respond(text, strlen(text), &r);
    int rc;
    memset(f, 0, sizeof *f);
    f->id = id;
    rc = iw_fetch_parse(&r, f);
    free(buf);
    return rc;
}

/* A bare number, with CRLF, a bare LF or nothing after it: no read past the line. */
START_TEST(bare_number)
{
    static const char *const forms[] = { "* 1\r\n", "* 1\n", "* 1", "* 12", "* 1 " };
    struct iw_fetch f;
    ck_assert_int_eq(parse(forms[_i], 1, &f), 0);
    ck_assert(!f.found);
}
END_TEST

START_TEST(literal_body)
{
    struct iw_fetch f;
    ck_assert_int_eq(parse("* 1 FETCH (BODY[] {5}\r\nhello)\r\n", 1, &f), 0);
    ck_assert(f.found);
    ck_assert_uint_eq(f.len, 5);
    ck_assert(memcmp(f.body, "hello", 5) == 0);
    free(f.body);
    /* another message's data is not ours */
    ck_assert_int_eq(parse("* 2 FETCH (BODY[] {5}\r\nhello)\r\n", 1, &f), 0);
    ck_assert(!f.found);
}
END_TEST

START_TEST(quoted_and_nil)
{
    struct iw_fetch f;
    ck_assert_int_eq(parse("* 3 FETCH (BODY[1] \"a\\\"b\")\r\n", 3, &f), 0);
    ck_assert(f.found);
    ck_assert_str_eq(f.body, "a\"b");
    free(f.body);
    ck_assert_int_eq(parse("* 3 FETCH (BODY[9] NIL)\r\n", 3, &f), 0);
    ck_assert(!f.found);
}
END_TEST

/* Cut short at each interesting place: a specific error or nothing, never a read past. */
START_TEST(truncated)
{
    static const char *const forms[] = {
        "* 1 FETCH (BODY[", "* 1 FETCH (BODY[]", "* 1 FETCH (BODY[] ", "* 1 FETCH (BODY[]<0",
        "* 1 FETCH (BODY[]<0>", "* 1 FETCH (BODY[] {5}\r\nhel", "* 1 FETCH (BODY[] \"abc",
        "* 1 FETCH", "* 1 FETCH (BODY[] {99999999999}\r\n",
    };
    struct iw_fetch f;
    int rc = parse(forms[_i], 1, &f);
    ck_assert_msg(rc == 0 || rc == ST_ERROR_INVALID_RESPONSE, "%s: %d", forms[_i], rc);
    if (f.found)
        free(f.body);
}
END_TEST

/* Found by fuzz_parsers: our message's FETCH without its "(" is an error, and no body is
 * made from a value that was never read. */
START_TEST(no_list)
{
    struct iw_fetch f;
    ck_assert_int_eq(parse("* 1 FETCH f\xc3\xa9 & (BODY[1] \"a\\\"b\")\r\n", 1, &f),
                     ST_ERROR_INVALID_RESPONSE);
    ck_assert(!f.found);
    ck_assert_ptr_null(f.body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fetch_parse");
    TCase *tc = tcase_create("fetch_parse");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, bare_number, 0, 5);
    tcase_add_test(tc, literal_body);
    tcase_add_test(tc, quoted_and_nil);
    tcase_add_loop_test(tc, truncated, 0, 9);
    tcase_add_test(tc, no_list);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
