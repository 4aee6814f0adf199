/* test_scram.c: SCRAM-SHA-1 and SCRAM-SHA-256 logins against a real Dovecot (right and
 * wrong passwords, IMAP_AUTH_DEFAULT's choice, nothing secret traced) and against a
 * scripted server that answers with a wrong server signature and then OK. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "iwtest.h"

static iwt_dovecot dv;

static void setup(void)
{
    iwt_dovecot_load(&dv);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

static HCLIENT connect_traced(const char *host, unsigned port, trace_log *t)
{
    IMAPCONNECTINFO ci;
    HCLIENT h;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = port;
    ci.nTimeout = 10;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    return h;
}

/* Nothing the client sent in the exchange is in the trace: the password, and the SCRAM
 * messages, whose base64 starts "biws" (client-first, "n,,") or "Yz1i" ("c=biws"). */
static void assert_nothing_secret(const trace_log *t, const char *pass)
{
    const char *line;
    ck_assert_msg(strstr(t->text, pass) == NULL, "password traced: %s", t->text);
    for (line = t->text; *line; line = strchr(line, '\n') + 1) {
        if (*line != '>')
            continue;
        ck_assert_msg(strncmp(line, ">biws", 5) != 0 && strncmp(line, ">Yz1i", 5) != 0 &&
                      strstr(line, " biws") == NULL && strstr(line, " Yz1i") == NULL,
                      "SCRAM message traced: %s", t->text);
    }
    ck_assert_ptr_nonnull(strstr(t->text, "<redacted>"));
}

/* Dovecot logs "Login: user=<u>, method=M": waits (bounded) until such lines number
 * more than before. */
static int log_logins(const char *user, const char *method)
{
    char needle[160];
    snprintf(needle, sizeof needle, "Login: user=<%s>, method=%s,", user, method);
    return iwt_count_in_file(dv.log, needle);
}

static void wait_login_logged(const char *user, const char *method, int before)
{
    long long deadline = iwt_now_ms() + 10000;
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    while (log_logins(user, method) <= before) {
        ck_assert_msg(iwt_now_ms() < deadline, "no %s login of %s in %s", method, user,
                      dv.log);
        nanosleep(&ts, NULL);
    }
}

static const UINT scram_types[] = { IMAP_AUTH_SCRAM_SHA256, IMAP_AUTH_SCRAM_SHA1 };
static const char *const scram_names[] = { "SCRAM-SHA-256", "SCRAM-SHA-1" };

START_TEST(scram_login)
{
    trace_log *t = calloc(1, sizeof *t);
    int before = log_logins(dv.user, scram_names[_i]);
    HCLIENT h = connect_traced(dv.host, dv.port, t);
    ck_assert_int_eq(ImapLogin(h, scram_types[_i], dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    wait_login_logged(dv.user, scram_names[_i], before);
    assert_nothing_secret(t, dv.pass);
    free(t);
}
END_TEST

/* Wrong password: ST_ERROR_LOGIN_FAILED, and the handle can still log in. */
START_TEST(scram_wrong_password)
{
    trace_log *t = calloc(1, sizeof *t);
    HCLIENT h = connect_traced(dv.host, dv.port, t);
    ck_assert_int_eq(ImapLogin(h, scram_types[_i], dv.user, "not-the-password"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapLogin(h, scram_types[_i], dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    assert_nothing_secret(t, "not-the-password");
    free(t);
}
END_TEST

/* The non-ASCII rule: the UTF-8 bytes as given, which is what Dovecot hashes. */
START_TEST(scram_non_ascii_password)
{
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, scram_types[_i], dv.user2, dv.pass2), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* IMAP_AUTH_DEFAULT takes the strongest both sides have: SCRAM-SHA-256 with Dovecot. */
START_TEST(default_is_scram_sha256)
{
    trace_log *t = calloc(1, sizeof *t);
    int before = log_logins(dv.user, "SCRAM-SHA-256");
    HCLIENT h = connect_traced(dv.host, dv.port, t);
    ck_assert(ImapHasCapability(h, "AUTH=SCRAM-SHA-256"));
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, dv.user, dv.pass), 0);
    ck_assert_ptr_nonnull(strstr(t->text, " AUTHENTICATE SCRAM-SHA-256 <redacted>\n"));
    ck_assert_int_eq(ImapDisconnect(h), 0);
    wait_login_logged(dv.user, "SCRAM-SHA-256", before);
    assert_nothing_secret(t, dv.pass);
    free(t);
}
END_TEST

/* The scripted server knows no password, sends a wrong v= and then OK: the login fails,
 * whether asked for by name or by IMAP_AUTH_DEFAULT. */
START_TEST(scram_bad_signature)
{
    static const UINT types[] = { IMAP_AUTH_SCRAM_SHA256, IMAP_AUTH_DEFAULT };
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, "scram-bad-signature", 4);
    h = connect_traced("127.0.0.1", f.port, t);
    ck_assert_int_eq(ImapLogin(h, types[_i], "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_ptr_nonnull(strstr(t->text, "SCRAM signature is wrong"));
    /* the session the server claims to have opened is not used */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    /* the exchange did reach the signature: the client-final was sent */
    ck_assert_msg(strstr(log, "1 Yz1i") != NULL, "log: %s", log);
    /* an impostor gets no second try, and no password */
    ck_assert_msg(strstr(log, "AUTHENTICATE PLAIN") == NULL, "log: %s", log);
    free(log);
    free(t);
}
END_TEST

/* A server that answers the proof with a plain OK, never sending its signature, has not
 * shown it knows the password: the login fails and the session is not used. */
START_TEST(scram_no_signature)
{
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, "scram-no-signature", 4);
    h = connect_traced("127.0.0.1", f.port, t);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_SCRAM_SHA256, "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "1 Yz1i") != NULL, "log: %s", log);   /* the proof went out */
    free(log);
    free(t);
}
END_TEST

/* A mechanism the server does not offer is not tried. */
START_TEST(scram_not_offered)
{
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, "normal", 4);
    h = connect_traced("127.0.0.1", f.port, t);
    ck_assert_int_eq(ImapLogin(h, scram_types[_i], "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_ptr_nonnull(strstr(t->text, "does not offer SCRAM"));
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, "u", "p"), 0);   /* PLAIN */
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "SCRAM") == NULL, "log: %s", log);
    free(log);
    free(t);
}
END_TEST

/* RFC 7677's floor: a server-first asking for fewer than 4096 iterations gets no proof
 * (it would be cheap to crack offline), whether SCRAM was asked for by name or by
 * IMAP_AUTH_DEFAULT, which does not fall back to PLAIN after such a server either. */
START_TEST(scram_iteration_floor)
{
    static const char *const scen[] = { "scram-iter-1", "scram-iter-4095" };
    static const UINT types[] = { IMAP_AUTH_SCRAM_SHA256, IMAP_AUTH_DEFAULT };
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, scen[_i / 2], 4);
    h = connect_traced("127.0.0.1", f.port, t);
    ck_assert_int_eq(ImapLogin(h, types[_i % 2], "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_msg(strstr(t->text, "4096") != NULL, "no trace line: %s", t->text);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "Yz1i") == NULL, "the proof was sent: %s", log);
    ck_assert_msg(strstr(log, "AUTHENTICATE PLAIN") == NULL, "fell back: %s", log);
    free(log);
    free(t);
}
END_TEST

/* At the floor the exchange goes on: the proof is sent. */
START_TEST(scram_iteration_at_floor)
{
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, "scram-iter-4096", 4);
    h = ImapConnect("127.0.0.1", f.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_SCRAM_SHA256, "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);       /* the scripted server's NO */
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "1 Yz1i") != NULL, "no proof: %s", log);
    free(log);
}
END_TEST

/* A server that advertises SCRAM it cannot serve ends a well-formed exchange with NO:
 * IMAP_AUTH_DEFAULT tries once more on the same connection with PLAIN (scram-no), else
 * LOGIN (scram-no-login), and the trace names both attempts; with LOGINDISABLED and no
 * PLAIN there is nothing to fall back to. */
START_TEST(default_falls_back_after_no)
{
    static const char *const scen[] = { "scram-no", "scram-no-login", "scram-no-logindisabled" };
    static const char *const second[] = { "AUTHENTICATE PLAIN", " LOGIN ", NULL };
    trace_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, scen[_i], 4);
    h = connect_traced("127.0.0.1", f.port, t);
    if (second[_i] != NULL) {
        ck_assert_msg(ImapLogin(h, IMAP_AUTH_DEFAULT, "u", "p") == 0, "error %u: %s",
                      (unsigned)ImapGetLastError(), t->text);
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
        ck_assert_msg(strstr(t->text, " AUTHENTICATE SCRAM-SHA-256 <redacted>\n") != NULL &&
                      strstr(t->text, "falling back") != NULL, "%s", t->text);
    } else {
        ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, "u", "p"), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    }
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "1 Yz1i") != NULL, "log: %s", log);   /* SCRAM went first */
    if (second[_i] != NULL)
        ck_assert_msg(strstr(log, second[_i]) != NULL, "no %s: %s", second[_i], log);
    else
        ck_assert_msg(strstr(log, " LOGIN ") == NULL && strstr(log, " PLAIN") == NULL,
                      "log: %s", log);
    free(log);
    free(t);
}
END_TEST

/* A mechanism asked for by name never falls back. */
START_TEST(explicit_scram_never_falls_back)
{
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, "scram-no", 4);
    h = ImapConnect("127.0.0.1", f.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_SCRAM_SHA256, "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "AUTHENTICATE PLAIN") == NULL, "log: %s", log);
    free(log);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scram");
    TCase *tc = tcase_create("scram");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, scram_login, 0, 2);
    tcase_add_loop_test(tc, scram_wrong_password, 0, 2);
    tcase_add_loop_test(tc, scram_non_ascii_password, 0, 2);
    tcase_add_test(tc, default_is_scram_sha256);
    tcase_add_loop_test(tc, scram_bad_signature, 0, 2);
    tcase_add_loop_test(tc, scram_not_offered, 0, 2);
    tcase_add_test(tc, scram_no_signature);
    tcase_add_loop_test(tc, scram_iteration_floor, 0, 4);
    tcase_add_test(tc, scram_iteration_at_floor);
    tcase_add_loop_test(tc, default_falls_back_after_no, 0, 3);
    tcase_add_test(tc, explicit_scram_never_falls_back);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
