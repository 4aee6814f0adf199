/* test_imap4d.c: a real IMAP server that is not Dovecot, GNU Mailutils' imap4d, which
 * advertises SCRAM it cannot serve: IMAP_AUTH_DEFAULT, then a session with literals. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

static char host[64], port[16], user[64], pass[64], logpath[512];

static void setup(void)
{
    const char *env = getenv("IW_IMAP4D_ENV");
    ck_assert_msg(env != NULL, "IW_IMAP4D_ENV not set (run through ctest)");
    iwt_env_value(env, "IMAP4D_HOST", host, sizeof host);
    iwt_env_value(env, "IMAP4D_PORT", port, sizeof port);
    iwt_env_value(env, "IMAP4D_USER", user, sizeof user);
    iwt_env_value(env, "IMAP4D_PASS", pass, sizeof pass);
    iwt_env_value(env, "IMAP4D_LOG", logpath, sizeof logpath);
    ck_assert_msg(port[0] != '\0', "no IMAP4D_PORT in %s", env);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

static HCLIENT connect_traced(trace_log *t)
{
    IMAPCONNECTINFO ci;
    HCLIENT h;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = (UINT)atoi(port);
    ci.nTimeout = 10;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "connect: %u", (unsigned)ImapGetLastError());
    return h;
}

/* The everyday case of issue 24: SCRAM advertised, the account has only a crypt hash, so
 * SCRAM ends in NO; DEFAULT goes on with PLAIN on the same connection, and the session
 * works: SELECT, an APPEND with a literal, a FETCH. */
START_TEST(default_login_and_session)
{
    static const char msg[] = "From: imapwire@test.example\r\nSubject: imap4d\r\n\r\nhello\r\n";
    trace_log *t = calloc(1, sizeof *t);
    char text[256], result[256], body[256];
    DWORD len = sizeof body;
    IMAPMAILBOX mb;
    HCLIENT h = connect_traced(t);
    char *log;

    ck_assert(ImapHasCapability(h, "AUTH=SCRAM-SHA-256"));
    ck_assert_msg(ImapLogin(h, IMAP_AUTH_DEFAULT, user, pass) == 0, "error %u: %s",
                  (unsigned)ImapGetLastError(), t->text);
    /* imap4d has no SASL-IR: each mechanism's messages follow its "+" */
    ck_assert_msg(strstr(t->text, " AUTHENTICATE SCRAM-SHA-256\n") != NULL &&
                  strstr(t->text, "falling back to PLAIN") != NULL &&
                  strstr(t->text, " AUTHENTICATE PLAIN\n") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, pass) == NULL, "%s", t->text);
    snprintf(text, sizeof text, "APPEND INBOX {%zu}\r\n%s", sizeof msg - 1, msg);
    ck_assert_msg(ImapCommand(h, text, result, sizeof result) == 0, "%s", result);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), 0);
    ck_assert_uint_ge(mb.dwMessages, 1);
    ck_assert_int_eq(ImapGetMessage(h, mb.dwMessages, 0, body, &len, 0), 0);
    ck_assert_uint_eq(len, sizeof msg - 1);
    ck_assert(memcmp(body, msg, len) == 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    log = iwt_read_file(logpath);
    ck_assert_msg(strstr(log, "AUTHENTICATE SCRAM-SHA-256") != NULL &&
                  strstr(log, "AUTHENTICATE PLAIN") != NULL, "%s", log);
    free(log);
    free(t);
}
END_TEST

/* SCRAM by name does not fall back; a wrong password fails both of DEFAULT's attempts
 * with the last one's error, and the handle can still log in. */
START_TEST(no_fallback_by_name_wrong_password)
{
    trace_log *t = calloc(1, sizeof *t);
    HCLIENT h = connect_traced(t);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_SCRAM_SHA256, user, pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_ptr_null(strstr(t->text, "falling back"));
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, user, "not-the-password"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, user, pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("imap4d");
    TCase *tc = tcase_create("imap4d");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, default_login_and_session);
    tcase_add_test(tc, no_fallback_by_name_wrong_password);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
