/* test_auth.c: the SASL messages of the one-step mechanisms, byte for byte: escaping of
 * the OAUTHBEARER authzid and refusal of values that would inject fields. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "imap/auth.h"

static int build(unsigned type, const char *user, const char *pass, iw_sb *out)
{
    memset(out, 0, sizeof *out);
    return iw_sasl_message(type, user, pass, "imap.example", 993, out);
}

static void expect(const iw_sb *sb, const char *want, size_t n)
{
    ck_assert_uint_eq(sb->len, n);
    ck_assert_msg(memcmp(sb->p, want, n) == 0, "got %.*s", (int)sb->len, sb->p);
}

START_TEST(plain_layout)
{
    iw_sb sb;
    ck_assert_int_eq(build(IMAP_AUTH_PLAIN, "user", "pa ss", &sb), 0);
    expect(&sb, "\0user\0pa ss", 11);
    iw_sb_free(&sb);
}
END_TEST

/* RFC 5801: ',' is =2C and '=' is =3D in a saslname; nothing else changes. */
START_TEST(oauthbearer_escapes_authzid)
{
    static const char want[] =
        "n,a=a=2Cb=3Dc@example,\001host=imap.example\001port=993\001auth=Bearer tok\001\001";
    iw_sb sb;
    ck_assert_int_eq(build(IMAP_AUTH_BEARER, "a,b=c@example", "tok", &sb), 0);
    expect(&sb, want, sizeof want - 1);
    iw_sb_free(&sb);
}
END_TEST

/* A 0x01 in any field of XOAUTH2 or OAUTHBEARER would add a field: refused. */
START_TEST(field_injection_refused)
{
    static const unsigned types[] = { IMAP_AUTH_XOAUTH2, IMAP_AUTH_BEARER };
    iw_sb sb;
    unsigned t = types[_i];
    ck_assert_int_eq(build(t, "u\001auth=Bearer evil", "tok", &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    ck_assert_int_eq(build(t, "user", "tok\001\001", &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    ck_assert_int_eq(build(t, "user", "tok\r\nA1 LOGOUT", &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    ck_assert_int_eq(build(t, "user", "tok", &sb), 0);
    ck_assert_int_gt((int)sb.len, 0);
    iw_sb_free(&sb);
}
END_TEST

START_TEST(xoauth2_layout)
{
    static const char want[] = "user=me@example\001auth=Bearer tok\001\001";
    iw_sb sb;
    ck_assert_int_eq(build(IMAP_AUTH_XOAUTH2, "me@example", "tok", &sb), 0);
    expect(&sb, want, sizeof want - 1);
    iw_sb_free(&sb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("sasl");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, plain_layout);
    tcase_add_test(tc, oauthbearer_escapes_authzid);
    tcase_add_loop_test(tc, field_injection_refused, 0, 2);
    tcase_add_test(tc, xoauth2_layout);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
