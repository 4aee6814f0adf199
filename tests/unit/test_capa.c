/* test_capa.c: the capability list: stored from CAPABILITY data and [CAPABILITY] codes,
 * matched whole-word and case-insensitively, bounded, and refused when malformed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "imap/client.h"

static iw_client *c;

static void setup(void)
{
    c = iw_client_new();
    ck_assert_ptr_nonnull(c);
}

static void teardown(void)
{
    iw_client_free(c);
}

static int set(const char *s)
{
    return iw_capa_set(c, s, strlen(s));
}

START_TEST(whole_words_any_case)
{
    ck_assert_int_eq(set("IMAP4rev1  AUTH=PLAIN\tSASL-IR ID "), 0);
    ck_assert_str_eq(c->sess.capa, "IMAP4rev1 AUTH=PLAIN SASL-IR ID");
    ck_assert(iw_capa_has(c, "auth=plain"));
    ck_assert(iw_capa_has(c, "ID"));
    ck_assert(!iw_capa_has(c, "AUTH=PLAINX"));
    ck_assert(!iw_capa_has(c, "AUTH"));
    ck_assert(!iw_capa_has(c, "I"));
    ck_assert(!iw_capa_has(c, ""));
}
END_TEST

START_TEST(empty_and_replaced)
{
    ck_assert_int_eq(set(""), 0);
    ck_assert(!iw_capa_has(c, "IMAP4rev1"));
    ck_assert_int_eq(set("STARTTLS LOGINDISABLED"), 0);
    ck_assert(iw_capa_has(c, "STARTTLS"));
    /* a new list replaces the old one: nothing survives from before */
    ck_assert_int_eq(set("IMAP4rev1 AUTH=PLAIN"), 0);
    ck_assert(!iw_capa_has(c, "STARTTLS"));
    ck_assert(!iw_capa_has(c, "LOGINDISABLED"));
}
END_TEST

START_TEST(malformed_refused)
{
    ck_assert_int_eq(set("IMAP4rev1"), 0);
    ck_assert_int_eq(set("IMAP4rev1 \x01X"), ST_ERROR_INVALID_RESPONSE);
    ck_assert_int_eq(set("IMAP4rev1 caf\xc3\xa9"), ST_ERROR_INVALID_RESPONSE);
    /* a refused list leaves the previous one in place */
    ck_assert(iw_capa_has(c, "IMAP4rev1"));
}
END_TEST

START_TEST(bounded)
{
    size_t n = IW_MAX_CAPA + 1;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'A', n);
    big[n] = '\0';
    ck_assert_int_eq(iw_capa_set(c, big, n), ST_ERROR_RESPONSE_TOO_LARGE);
    ck_assert_int_eq(iw_capa_set(c, big, n - 1), 0);
    free(big);
}
END_TEST

static int code(const char *s)
{
    return iw_capa_from_code(c, s, strlen(s));
}

START_TEST(response_codes)
{
    ck_assert_int_eq(set("OLD"), 0);
    ck_assert_int_eq(code("OK [CAPABILITY IMAP4rev1 ID] ready"), 0);
    ck_assert(iw_capa_has(c, "ID") && !iw_capa_has(c, "OLD"));
    /* other codes and plain text change nothing */
    ck_assert_int_eq(code("OK [ALERT] CAPABILITY IMAP4rev1"), 0);
    ck_assert_int_eq(code("OK"), 0);
    ck_assert_int_eq(code("OK [CAPABILITY"), 0);
    ck_assert(iw_capa_has(c, "ID"));
    /* an unclosed code is malformed */
    ck_assert_int_eq(code("OK [CAPABILITY IMAP4rev1 ID ready"), ST_ERROR_INVALID_RESPONSE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("capa");
    TCase *tc = tcase_create("capa");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, whole_words_any_case);
    tcase_add_test(tc, empty_and_replaced);
    tcase_add_test(tc, malformed_refused);
    tcase_add_test(tc, bounded);
    tcase_add_test(tc, response_codes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
