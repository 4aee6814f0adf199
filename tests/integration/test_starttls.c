/* test_starttls.c: STARTTLS attacks and refusals from scripted servers: each fails with
 * its specific error, and the server's log proves no credential left in clear. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

#define TIMEOUT_S 2

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

typedef struct attack {
    const char *scenario;
    DWORD       options;
    DWORD       error;
    long long   max_ms;
} attack;

static const attack attacks[] = {
    /* no STARTTLS capability at all */
    { "nostarttls",      IMAP_OPTION_SECURE_EXPLICIT, ST_ERROR_SECURE_NOT_SUPPORTED, 1500 },
    /* advertised, then answered NO */
    { "starttls-no",     IMAP_OPTION_SECURE_EXPLICIT, ST_ERROR_SECURE_NOT_SUPPORTED, 1500 },
    /* PREAUTH in clear while security is required */
    { "preauth",         IMAP_OPTION_SECURE_EXPLICIT, ST_ERROR_SECURE_NOT_SUPPORTED, 1500 },
    /* a response smuggled behind the OK, before the handshake (CVE-2021-22947) */
    { "starttls-inject", IMAP_OPTION_SECURE_EXPLICIT, ST_ERROR_INVALID_RESPONSE, 1500 },
    /* the handshake never completes */
    { "starttls-stall",  IMAP_OPTION_SECURE_EXPLICIT, ST_ERROR_OPERATION_TIMEOUT,
      TIMEOUT_S * 1000 + 1500 },
    /* a plain-text server on the implicit-TLS path */
    { "normal",          IMAP_OPTION_SECURE_IMPLICIT, ST_ERROR_TLS_HANDSHAKE, 1500 },
    { "silent",          IMAP_OPTION_SECURE_IMPLICIT, ST_ERROR_OPERATION_TIMEOUT,
      TIMEOUT_S * 1000 + 1500 },
};

/* What a client that got past the checkpoint would send in clear next: ID (asked for)
 * and a login. Searching the server's log for them only means something if they can
 * be found there, which plain_control below proves on the same servers. */
static int log_shows_client_secrets(const char *log)
{
    return strstr(log, "LOGIN") != NULL || strstr(log, "AUTHENTICATE") != NULL ||
           strstr(log, " ID ") != NULL || strstr(log, "NOOP") != NULL ||
           strstr(log, "attack-pass") != NULL;
}

START_TEST(starttls_attack)
{
    const attack *a = &attacks[_i];
    iwt_fixture f;
    HCLIENT h;
    long long t0, took;
    int fds, login_rc = IMAP_ERROR;
    DWORD err;
    char *log;

    iwt_fixture_start(&f, a->scenario, 4);
    fds = iwt_count_fds();
    t0 = iwt_now_ms();
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S,
                    a->options | IMAP_OPTION_TRUSTEDSITE | IMAP_OPTION_IDENTIFY, NULL);
    took = iwt_now_ms() - t0;
    err = ImapGetLastError();
    /* Try what an application does next, whatever the connect said: a connect that
     * wrongly succeeded in clear would now send the password. */
    if (h != INVALID_CLIENT) {
        login_rc = ImapLogin(h, IMAP_AUTH_LOGIN, "attack-user", "attack-pass");
        ImapCommand(h, "NOOP", NULL, 0);
        ImapDisconnect(h);
    }
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    /* Checkpoint 1: nothing but CAPABILITY and STARTTLS ever went out in clear. */
    ck_assert_msg(!log_shows_client_secrets(log), "%s: a command went out in clear:\n%s",
                  a->scenario, log);
    ck_assert_msg(h == INVALID_CLIENT, "%s: connect succeeded (login %d)", a->scenario, login_rc);
    ImapSetLastError(err);
    iwt_assert_error(a->error);
    ck_assert_msg(took <= a->max_ms, "%s: took %lld ms", a->scenario, took);
    ck_assert_int_eq(iwt_count_fds(), fds);
    if (!strcmp(a->scenario, "starttls-inject"))
        /* the injected bytes were refused before any handshake began */
        ck_assert_msg(strstr(log, "<binary") == NULL, "handshake started:\n%s", log);
    free(log);
}
END_TEST

/* The control: on the same scripted servers, a plain connect with ID and a login leaves
 * exactly what the attack test looks for in the server's log, so its absence above is
 * a finding, not a blind spot. */
START_TEST(plain_control)
{
    static const char *const scenarios[] = { "nostarttls", "starttls-inject" };
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, scenarios[_i], 2);
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_IDENTIFY, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    /* the fixture knows only u/p: refused, but sent, which is what counts here */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "attack-user", "attack-pass"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(log_shows_client_secrets(log) && strstr(log, " ID ") != NULL &&
                  strstr(log, "attack-pass") != NULL, "log:\n%s", log);
    free(log);
}
END_TEST

/* Without a secure option the same servers are fine, so the refusals above are the
 * policy, not a parsing accident. */
START_TEST(plain_is_allowed_when_asked)
{
    iwt_fixture f;
    HCLIENT h;
    iwt_fixture_start(&f, "nostarttls", 2);
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

START_TEST(option_rules)
{
    /* both secure options at once */
    ck_assert(ImapConnect("127.0.0.1", 1, TIMEOUT_S,
                          IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_SECURE_IMPLICIT, NULL)
              == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("starttls");
    TCase *tc = tcase_create("attacks");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, starttls_attack, 0, (int)(sizeof attacks / sizeof attacks[0]));
    tcase_add_loop_test(tc, plain_control, 0, 2);
    tcase_add_test(tc, plain_is_allowed_when_asked);
    tcase_add_test(tc, option_rules);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
