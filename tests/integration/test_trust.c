/* test_trust.c: rules an attacker tries to break: a transport string never loads a file
 * by path, and secrets sent through ImapCommand never reach a trace. */
#define _GNU_SOURCE
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "iwtest.h"

static iwt_dovecot dv;
static char evil_so[700], marker[700], short_link[64];

static const char *dirname_of(const char *path)
{
    static char dir[700];
    char *slash;
    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    return dir;
}

static void setup(void)
{
    const char *build = getenv("IW_BUILD_DIR"), *tmp = getenv("IW_TMPDIR");
    ck_assert_msg(build != NULL && tmp != NULL, "run through ctest");
    iwt_dovecot_load(&dv);
    snprintf(evil_so, sizeof evil_so, "%s/sdk-plugins/evil.so", build);
    mkdir(tmp, 0755);
    snprintf(marker, sizeof marker, "%s/evil-marker-%d", tmp, (int)getpid());
    unlink(marker);
    setenv("IW_EVIL_MARKER", marker, 1);
    unsetenv("IMAPWIRE_TRANSPORT");
    /* names short enough to fit a transport name's length: ./evil.so from its own
     * directory, and an absolute link to it */
    ck_assert_int_eq(chdir(dirname_of(evil_so)), 0);
    snprintf(short_link, sizeof short_link, "/tmp/iwev%d.so", (int)getpid() % 100000);
    unlink(short_link);
    ck_assert_int_eq(symlink(evil_so, short_link), 0);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
    unsetenv("IMAPWIRE_TRANSPORT");
    unlink(marker);
    unlink(short_link);
}

static int marker_exists(void)
{
    return access(marker, F_OK) == 0;
}

/* Transport strings whose name part is not [a-z0-9_-]{1,31}. */
static const char *const bad_names[] = {
    "./evil.so:x", NULL /* an absolute path, filled in */, "evil.so", "Tcp", "a/b",
    "tcp.", "0123456789012345678901234567890123", ":args", "sock s5:x", "t\x01",
};

static HCLIENT connect_via(unsigned port, const char *transport)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = port;
    ci.nTimeout = 5;
    ci.lpszTransport = transport;
    return ImapConnectEx(&ci);
}

/* Each bad name is refused before any load and any traffic, given as lpszTransport and
 * as IMAPWIRE_TRANSPORT; the file's constructor never runs. */
START_TEST(transport_string_never_loads_a_path)
{
    const char *name = bad_names[_i];
    char abs_spec[800];
    iwt_fixture f;
    char *log;

    snprintf(abs_spec, sizeof abs_spec, "%s:x", short_link);
    if (name == NULL)
        name = abs_spec;
    ck_assert_msg(access(evil_so, R_OK) == 0, "%s not built", evil_so);
    iwt_fixture_start(&f, "normal", 10);
    ck_assert(connect_via(f.port, name) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    setenv("IMAPWIRE_TRANSPORT", name, 1);
    ck_assert(connect_via(f.port, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    unsetenv("IMAPWIRE_TRANSPORT");
    ck_assert_msg(!marker_exists(), "%s: the file's code ran", name);
    /* a good connect proves the server was there to be reached */
    {
        HCLIENT h = connect_via(f.port, NULL);
        ck_assert(h != INVALID_CLIENT);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "1 <connected>") != NULL && strstr(log, "2 <connected>") == NULL,
                  "%s: the server saw more than the good connect:\n%s", name, log);
    free(log);
}
END_TEST

/* The positive side: a valid name that is not registered is "not found", and an explicit
 * ImapLoadPlugin path is the one way to run a file (the marker proves the check above
 * would have seen it). */
START_TEST(explicit_load_is_the_only_path)
{
    ck_assert(connect_via(1, "nosuchtransport") == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
    ck_assert(!marker_exists());
    ck_assert_int_eq(ImapLoadPlugin(evil_so), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_PLUGIN_LOAD_FAILED);   /* no entry point: no plugin */
    ck_assert(marker_exists());
}
END_TEST

static char *b64(const char *raw, size_t n)
{
    char *out = calloc(1, 4 * ((n + 2) / 3) + 1);
    ck_assert_ptr_nonnull(out);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)n);
    return out;
}

static HCLIENT connect_traced(trace_log *t)
{
    IMAPCONNECTINFO ci;
    HCLIENT h;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = dv.host;
    ci.nRemotePort = dv.port;
    ci.nTimeout = 10;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    return h;
}

/* LOGIN and AUTHENTICATE with an initial response sent through ImapCommand: the server
 * accepts them (they really went out) and neither the password nor the SASL response
 * appears in the trace, in any letter case. */
START_TEST(command_secrets_redacted)
{
    static const char *const forms[] = { "LOGIN", "login", "AUTHENTICATE", "authenticate" };
    trace_log *t = calloc(1, sizeof *t);
    char cmd[512], raw[256], *ir;
    size_t rawlen;
    HCLIENT h;

    rawlen = (size_t)snprintf(raw, sizeof raw, "%c%s%c%s", 0, dv.user, 0, dv.pass);
    ir = b64(raw, rawlen);
    if (_i < 2)
        snprintf(cmd, sizeof cmd, "%s %s %s", forms[_i], dv.user, dv.pass);
    else
        snprintf(cmd, sizeof cmd, "%s PLAIN %s", forms[_i], ir);
    h = connect_traced(t);
    ck_assert_msg(ImapCommand(h, cmd, NULL, 0) == 0, "error %u, trace:\n%s",
                  (unsigned)ImapGetLastError(), t->text);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_ALREADY_AUTHENTICATED);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* the command itself was traced (redacted), so the checks below look at real lines */
    ck_assert_msg(strcasestr(t->text, _i < 2 ? " LOGIN " : " AUTHENTICATE PLAIN") != NULL,
                  "trace:\n%s", t->text);
    ck_assert_msg(strstr(t->text, dv.pass) == NULL, "password in trace:\n%s", t->text);
    ck_assert_msg(strstr(t->text, ir) == NULL, "SASL response in trace:\n%s", t->text);
    free(ir);
    free(t);
}
END_TEST

/* A server that says LOGINDISABLED gets no LOGIN from ImapCommand either. */
START_TEST(command_login_respects_logindisabled)
{
    iwt_fixture f;
    HCLIENT h;
    char *log;

    iwt_fixture_start(&f, "logindisabled", 2);
    h = ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapCommand(h, "LOGIN user secret-pass", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "NOOP") != NULL, "log incomplete:\n%s", log);
    ck_assert_msg(strstr(log, "secret-pass") == NULL, "LOGIN went out:\n%s", log);
    free(log);
}
END_TEST

/* A server that answers a command one byte at a time, each well inside nTimeout, cannot
 * hold the call forever: a command has a total ceiling like the connect's. */
START_TEST(dripping_command_has_a_ceiling)
{
    iwt_fixture f;
    HCLIENT h;
    long long t0, took;
    iwt_fixture_start(&f, "drip-command", 2);
    h = ImapConnect("127.0.0.1", f.port, 2, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    t0 = iwt_now_ms();
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    took = iwt_now_ms() - t0;
    iwt_assert_error(ST_ERROR_OPERATION_TIMEOUT);
    /* the ceiling is 2 x nTimeout plus a margin that only real throughput earns */
    ck_assert_msg(took >= 2000 && took <= 3 * 2000 + 1500, "took %lld ms", took);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trust");
    TCase *tc = tcase_create("trust");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_loop_test(tc, transport_string_never_loads_a_path, 0,
                        (int)(sizeof bad_names / sizeof bad_names[0]));
    tcase_add_test(tc, explicit_load_is_the_only_path);
    tcase_add_loop_test(tc, command_secrets_redacted, 0, 4);
    tcase_add_test(tc, command_login_respects_logindisabled);
    tcase_add_test(tc, dripping_command_has_a_ceiling);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
