/* test_oauth.c: OAUTHBEARER and XOAUTH2 logins against real Dovecot with its oauth2
 * passdb (token introspection by POST and by GET), and against a scripted server whose
 * token check fails (RFC 7628 error challenge): the login fails with
 * ST_ERROR_LOGIN_FAILED, the server's status is in the trace and the token never is. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

#define TOKEN "ya29.fixture-token-never-traced"

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

static HCLIENT connect_traced(unsigned port, trace_log *t)
{
    IMAPCONNECTINFO ci;
    HCLIENT h;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = port;
    ci.nTimeout = 10;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    return h;
}

/* OAUTHBEARER answers the error challenge with the dummy 0x01 (AQ==), XOAUTH2 with an
 * empty line; both give the server's NO as ST_ERROR_LOGIN_FAILED, and the session stays
 * usable (not authenticated). */
START_TEST(json_error)
{
    static const unsigned types[] = { IMAP_AUTH_BEARER, IMAP_AUTH_XOAUTH2 };
    static const char *const answer[] = { "1 AQ==\n", "1 \n" };
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    char *log;

    ck_assert_ptr_nonnull(t);
    iwt_fixture_start(&f, "oauth-error", 4);
    h = connect_traced(f.port, t);
    ck_assert_int_eq(ImapLogin(h, types[_i], "me@example.org", TOKEN), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_msg(strstr(t->text, "status \"invalid_token\"") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, TOKEN) == NULL, "token traced: %s", t->text);
    ck_assert_ptr_nonnull(strstr(t->text, "<redacted>"));
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "1 initial response received\n") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, answer[_i]) != NULL, "log: %s", log);
    free(log);
    free(t);
}
END_TEST

/* Types that are no row of the SASL table are refused before anything is sent; with
 * OAUTHBEARER and XOAUTH2 only, IMAP_AUTH_DEFAULT (which never picks them) has LOGIN. */
START_TEST(unknown_types)
{
    static const unsigned bad[] = { 2, 3, 10, 0xffffffffu };
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    size_t i;
    int sends;

    ck_assert_ptr_nonnull(t);
    iwt_fixture_start(&f, "oauth-error", 4);
    h = connect_traced(f.port, t);
    sends = t->sends;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(ImapLogin(h, bad[i], "u", "p"), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    }
    ck_assert_int_eq(t->sends, sends);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, "u", "p"), 0);
    ck_assert_msg(strstr(t->text, "LOGIN <redacted>") != NULL, "%s", t->text);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    free(t);
}
END_TEST

/* The Dovecot instance of mode i (0 post, 1 get) from $IW_DOVECOT_OAUTH_ENVS. */
static void oauth_instance(int i, iwt_dovecot *d, char *token, size_t tcap, char *log,
                           size_t lcap)
{
    const char *envs = getenv("IW_DOVECOT_OAUTH_ENVS");
    char path[1024];
    const char *colon;
    ck_assert_msg(envs != NULL, "IW_DOVECOT_OAUTH_ENVS not set (run through ctest)");
    colon = strchr(envs, ':');
    ck_assert_ptr_nonnull(colon);
    if (i == 0)
        snprintf(path, sizeof path, "%.*s", (int)(colon - envs), envs);
    else
        snprintf(path, sizeof path, "%s", colon + 1);
    iwt_dovecot_load_file(d, path);
    iwt_env_value(path, "DOVECOT_OAUTH_TOKEN", token, tcap);
    iwt_env_value(path, "DOVECOT_OAUTH_LOG", log, lcap);
    ck_assert_int_gt((int)strlen(token), 10);
}

/* Each mechanism with each introspection mode: the right token logs in (a command then
 * works), a wrong one is ST_ERROR_LOGIN_FAILED; Dovecot asked the introspection server
 * both times; neither token is in any trace. */
START_TEST(dovecot_oauth2)
{
    static const unsigned types[] = { IMAP_AUTH_BEARER, IMAP_AUTH_XOAUTH2 };
    static const char *const modes[] = { "POST post", "GET get" };
    char token[128], wrong[160], logpath[512], *log;
    iwt_dovecot d;
    trace_log *t = calloc(1, sizeof *t);
    HCLIENT h;
    int before_right, before_wrong, mode = _i / 2;
    char right_line[32], wrong_line[32];

    ck_assert_ptr_nonnull(t);
    oauth_instance(mode, &d, token, sizeof token, logpath, sizeof logpath);
    snprintf(wrong, sizeof wrong, "%s-not", token);
    snprintf(right_line, sizeof right_line, "%s right", modes[mode]);
    snprintf(wrong_line, sizeof wrong_line, "%s wrong", modes[mode]);
    before_right = iwt_count_in_file(logpath, right_line);
    before_wrong = iwt_count_in_file(logpath, wrong_line);

    h = connect_traced(d.port, t);
    ck_assert_int_eq(ImapLogin(h, types[_i % 2], d.user, wrong), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapLogin(h, types[_i % 2], d.user, token), 0);
    ck_assert_int_eq(ImapCommand(h, "SELECT INBOX", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_msg(strstr(t->text, token) == NULL, "token traced: %s", t->text);
    ck_assert_ptr_nonnull(strstr(t->text, "<redacted>"));
    ck_assert_int_gt(iwt_count_in_file(logpath, right_line), before_right);
    ck_assert_int_gt(iwt_count_in_file(logpath, wrong_line), before_wrong);
    log = iwt_read_file(d.log);
    ck_assert_msg(strstr(log, token) == NULL, "token in Dovecot's log");
    free(log);
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oauth");
    TCase *tc = tcase_create("oauth");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, json_error, 0, 2);
    tcase_add_test(tc, unknown_types);
    tcase_add_loop_test(tc, dovecot_oauth2, 0, 4);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
