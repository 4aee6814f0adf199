/* test_mutf7.c: UTF-8 mailbox names in modified UTF-7, byte for byte (RFC 3501 5.1.3),
 * and the wire form of ImapCommand texts with literals. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "imap/client.h"
#include "imap/session.h"

static void expect_name(const char *utf8, const char *want)
{
    iw_sb sb = {0};
    ck_assert_int_eq(iw_mutf7_encode(utf8, &sb), 0);
    ck_assert_msg(sb.len == strlen(want) && memcmp(sb.p, want, sb.len) == 0,
                  "%s: got %.*s, want %s", utf8, (int)sb.len, sb.p ? sb.p : "", want);
    iw_sb_free(&sb);
}

START_TEST(names)
{
    expect_name("INBOX", "INBOX");
    expect_name("a&b", "a&-b");
    expect_name("Sp ace \"q\" \\", "Sp ace \"q\" \\");
    expect_name("\xc3\xa9", "&AOk-");                         /* é */
    expect_name("\xe6\x97\xa5\xe6\x9c\xac", "&ZeVnLA-");      /* 日本 */
    expect_name("Entw\xc3\xbcrfe & Co", "Entw&APw-rfe &- Co");
    expect_name("\xf0\x9f\x98\x80", "&2D3eAA-");               /* U+1F600, a surrogate pair */
    expect_name("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                "~peter/mail/&U,BTFw-/&ZeVnLIqe-");           /* RFC 3501's own example */
    expect_name("tab\there", "tab&AAk-here");                /* control bytes encoded */
}
END_TEST

START_TEST(not_utf8)
{
    static const char *const bad[] = { "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf5\x80\x80\x80",
                                       "a\xffz", "\xe6\x97" };
    iw_sb sb = {0};
    ck_assert_int_eq(iw_mutf7_encode(bad[_i], &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
}
END_TEST

START_TEST(long_runs_split)
{
    /* 200 x é: several runs, each a valid "&...-" */
    char in[401];
    iw_sb sb = {0};
    int i;
    for (i = 0; i < 200; i++)
        memcpy(in + 2 * i, "\xc3\xa9", 2);
    in[400] = '\0';
    ck_assert_int_eq(iw_mutf7_encode(in, &sb), 0);
    ck_assert_int_gt((int)sb.len, 0);
    ck_assert_int_eq(sb.p[0], '&');
    ck_assert_int_eq(sb.p[sb.len - 1], '-');
    iw_sb_free(&sb);
}
END_TEST

static size_t first;                /* iw_command_wire's first_line of the last call */

static int wire(const char *text, int plus, int minus, iw_sb *out, size_t *cuts, int *ncuts)
{
    memset(out, 0, sizeof *out);
    return iw_command_wire(text, strlen(text), plus, minus, out, cuts, ncuts, &first);
}

START_TEST(literals)
{
    size_t cuts[IW_MAX_CUTS];
    int ncuts;
    iw_sb sb;
    static const char cmd[] = "APPEND INBOX {5}\r\nab\r\nc";
    /* synchronising: the wire is the text, with a cut after the head */
    ck_assert_int_eq(wire(cmd, 0, 0, &sb, cuts, &ncuts), 0);
    ck_assert_int_eq(ncuts, 1);
    ck_assert_uint_eq(sb.len, strlen(cmd));
    ck_assert(memcmp(sb.p, cmd, sb.len) == 0);
    ck_assert_uint_eq(cuts[0], strlen("APPEND INBOX {5}\r\n"));
    ck_assert_uint_eq(first, strlen("APPEND INBOX {5}"));
    iw_sb_free(&sb);
    /* LITERAL+: no cut, {5+} */
    ck_assert_int_eq(wire(cmd, 1, 0, &sb, cuts, &ncuts), 0);
    ck_assert_int_eq(ncuts, 0);
    ck_assert(sb.len == strlen(cmd) + 1 && memcmp(sb.p, "APPEND INBOX {5+}\r\nab\r\nc", sb.len) == 0);
    /* the trace shows the line up to the end of the head as sent, "{5+}" */
    ck_assert_uint_eq(first, strlen("APPEND INBOX {5+}"));
    iw_sb_free(&sb);
    /* LITERAL-: only up to 4096 bytes go without a wait */
    ck_assert_int_eq(wire(cmd, 0, 1, &sb, cuts, &ncuts), 0);
    ck_assert_int_eq(ncuts, 0);
    iw_sb_free(&sb);
}
END_TEST

START_TEST(smuggling_refused)
{
    static const char *const bad[] = {
        "NOOP\r\nA1 LOGOUT",              /* a second command */
        "NOOP\n",
        "APPEND INBOX {5}\r\nab",         /* fewer bytes than announced */
        "APPEND INBOX {2}\r\nab\r\nX",    /* a CRLF after the literal */
        "APPEND INBOX {x}\r\nab",
        "APPEND INBOX {99999999999}\r\nab",
    };
    size_t cuts[IW_MAX_CUTS];
    int ncuts;
    iw_sb sb;
    ck_assert_int_eq(wire(bad[_i], 1, 0, &sb, cuts, &ncuts), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mutf7");
    TCase *tc = tcase_create("mutf7");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, names);
    tcase_add_loop_test(tc, not_utf8, 0, 6);
    tcase_add_test(tc, long_runs_split);
    tcase_add_test(tc, literals);
    tcase_add_loop_test(tc, smuggling_refused, 0, 6);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
