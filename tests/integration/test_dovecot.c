/* test_dovecot.c: the blocking API against a real Dovecot on loopback: connect, every
 * login form, commands, mailbox and message access, ID, timings and argument errors. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static HCLIENT connect_plain(void)
{
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    if (h == INVALID_CLIENT)
        iwt_assert_error(ST_ERROR_NONE);
    return h;
}

START_TEST(login_each_mechanism)
{
    static const UINT mechs[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN, IMAP_AUTH_DEFAULT };
    HCLIENT h = connect_plain();
    ck_assert_int_eq(ImapLogin(h, mechs[_i], dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* A password with '"', '\', a space and UTF-8 must survive LOGIN quoting and PLAIN. */
START_TEST(login_odd_password)
{
    static const UINT mechs[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN };
    HCLIENT h = connect_plain();
    ck_assert_ptr_nonnull(strchr(dv.pass2, '"'));
    ck_assert_int_eq(ImapLogin(h, mechs[_i], dv.user2, dv.pass2), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(login_wrong_password)
{
    static const UINT mechs[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN };
    HCLIENT h = connect_plain();
    ck_assert_int_eq(ImapLogin(h, mechs[_i], dv.user, "not-the-password"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    /* the session stays usable after a refused login */
    ck_assert_int_eq(ImapLogin(h, mechs[_i], dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(login_twice)
{
    HCLIENT h = connect_plain();
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_ALREADY_AUTHENTICATED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(login_bad_arguments)
{
    HCLIENT h = connect_plain();
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, NULL, dv.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapLogin(h, 99, dv.user, dv.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(commands)
{
    char result[512];
    HCLIENT h = connect_plain();

    /* before login a mailbox command is refused by the server */
    ck_assert_int_eq(ImapCommand(h, "SELECT INBOX", result, sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_COMMAND_FAILED);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", result, sizeof result), 0);
    ck_assert_msg(strncmp(result, "OK", 2) == 0, "NOOP result: %s", result);
    ck_assert_int_eq(ImapCommand(h, "FROBNICATE", result, sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_COMMAND_FAILED);
    ck_assert_msg(strncmp(result, "BAD", 3) == 0, "bogus command result: %s", result);
    /* a command with CRLF inside would smuggle a second command: refused */
    ck_assert_int_eq(ImapCommand(h, "NOOP\r\nA1 LOGOUT", result, sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapCommand(h, "LIST \"\" *", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(capabilities)
{
    char before[4096], after[4096], tiny[4];
    HCLIENT h = connect_plain();
    INT n = ImapGetCapabilities(h, before, sizeof before);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq((int)strlen(before), n);
    ck_assert_ptr_nonnull(strstr(before, "IMAP4rev1"));
    ck_assert(ImapHasCapability(h, "imap4REV1"));
    ck_assert(ImapHasCapability(h, "auth=plain"));
    ck_assert(!ImapHasCapability(h, "IMAP4"));
    ck_assert(!ImapHasCapability(h, "XNOSUCHTHING"));
    ck_assert_int_eq(ImapGetCapabilities(h, tiny, sizeof tiny), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_BUFFER_TOO_SMALL);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    /* Dovecot announces a larger set once logged in; the current one is reported */
    ck_assert_int_gt(ImapGetCapabilities(h, after, sizeof after), n);
    ck_assert(ImapHasCapability(h, "MOVE"));
    ck_assert(!strstr(before, "MOVE"));
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(select_and_fetch)
{
    IMAPMAILBOX mb;
    char *expected = iwt_read_file(dv.msg1);
    char buf[4096];
    DWORD len = sizeof buf;
    LPVOID whole = NULL;
    DWORD wlen = 0;
    HCLIENT h = connect_plain();

    ck_assert_int_gt((int)strlen(expected), 100);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_NOT_AUTHENTICATED);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    memset(&mb, 0xff, sizeof mb);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 2);
    ck_assert_uint_ne(mb.dwUidValidity, 0);
    ck_assert_uint_eq(mb.dwUidNext, 3);
    ck_assert_ptr_nonnull(strstr(mb.szFlags, "\\Seen"));

    ck_assert_int_eq(ImapGetMessage(h, 1, 0, buf, &len, 0), 0);
    ck_assert_uint_eq(len, strlen(expected));
    ck_assert(memcmp(buf, expected, len) == 0);

    ck_assert_int_eq(ImapGetMessage(h, 1, 0, &whole, &wlen, 0), 0);
    ck_assert_ptr_nonnull(whole);
    ck_assert_uint_eq(wlen, strlen(expected));
    ck_assert(memcmp(whole, expected, wlen) == 0);
    ImapFreeMemory(whole);

    len = 16;
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, buf, &len, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_BUFFER_TOO_SMALL);
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, 99, 0, buf, &len, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_MESSAGE_NOT_FOUND);
    ck_assert_int_eq(ImapSelectMailbox(h, "NoSuchBox", &mb), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_COMMAND_FAILED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(expected);
}
END_TEST

START_TEST(identify_and_trace)
{
    IMAPCONNECTINFO ci;
    trace_log *t = calloc(1, sizeof *t);
    HCLIENT h;

    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = dv.host;
    ci.nRemotePort = dv.port;
    ci.nTimeout = 10;
    ci.dwOptions = IMAP_OPTION_IDENTIFY;
    ci.lpszClientName = "iwtest";
    ci.lpszClientVersion = "9.9";
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_msg(strstr(t->text, "ID (\"name\" \"iwtest\" \"version\" \"9.9\")") != NULL,
                  "trace: %s", t->text);
    ck_assert_ptr_nonnull(strstr(t->text, "<* ID ("));
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    /* the password never reaches the trace */
    ck_assert_ptr_null(strstr(t->text, dv.pass));
    ck_assert_int_eq(ImapDisconnect(h), 0);

    /* without the option there is no ID */
    memset(t, 0, sizeof *t);
    ci.dwOptions = IMAP_OPTION_NONE;
    h = ImapConnectEx(&ci);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_msg(strstr(t->text, " ID (\"name\"") == NULL, "trace: %s", t->text);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(t);
}
END_TEST

START_TEST(timings)
{
    IMAPTIMINGS tm;
    HCLIENT h = connect_plain();
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_uint_gt(tm.dwConnect, 0);
    ck_assert_uint_gt(tm.dwGreeting, 0);
    ck_assert_uint_eq(tm.dwTunnel, 0);
    ck_assert_uint_eq(tm.dwSecure, 0);
    ck_assert_uint_ge(tm.dwTotal, tm.dwConnect + tm.dwGreeting);
    ck_assert_uint_lt(tm.dwTotal, 10u * 1000 * 1000);
    tm.dwSize = 0;
    ck_assert_int_eq(ImapGetTimings(h, &tm), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(security_info_plain)
{
    SECURITYINFO si;
    HCLIENT h = connect_plain();
    memset(&si, 0x5a, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwProtocol, SECURITY_PROTOCOL_NONE);
    ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_NONE);
    ck_assert_str_eq(si.szCipher, "");
    ck_assert_uint_eq(si.dwTunnelProtocol, SECURITY_PROTOCOL_NONE);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(connect_localhost)
{
    HCLIENT h = ImapConnect("localhost", dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(connect_errors)
{
    long long t0;
    /* Dovecot listens on IPv4 only, so IPv6 loopback is refused at once */
    t0 = iwt_now_ms();
    ck_assert(ImapConnect("::1", dv.port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert(ImapConnect("[::1]", dv.port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert_int_lt(iwt_now_ms() - t0, 2000);
    ck_assert(ImapConnect(NULL, dv.port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(ImapConnect("", dv.port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(ImapConnect(dv.host, 70000, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(ImapConnect(dv.host, dv.port, 10,
                          IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_SECURE_IMPLICIT,
                          NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

START_TEST(disconnect_then_use)
{
    HCLIENT h = connect_plain();
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(ImapDisconnect(h), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert(!ImapHasCapability(h, "IMAP4rev1"));
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
}
END_TEST

/* Server-side LOGOUT: the session learns the connection is gone and says so. */
START_TEST(server_logout)
{
    HCLIENT h = connect_plain();
    ck_assert_int_eq(ImapCommand(h, "LOGOUT", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* The last ImapUninitialize frees what the program forgot to disconnect. */
START_TEST(uninitialize_frees_open_handles)
{
    int fds = iwt_count_fds();
    HCLIENT a = connect_plain(), b = connect_plain();
    ck_assert_int_eq(iwt_count_fds(), fds + 2);
    ck_assert(ImapUninitialize());
    ck_assert_int_eq(iwt_count_fds(), fds);
    ck_assert(ImapInitialize(NULL, NULL));
    ck_assert_int_eq(ImapDisconnect(a), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert_int_eq(ImapDisconnect(b), IMAP_ERROR);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dovecot");
    TCase *tc = tcase_create("blocking");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, login_each_mechanism, 0, 3);
    tcase_add_loop_test(tc, login_odd_password, 0, 2);
    tcase_add_loop_test(tc, login_wrong_password, 0, 2);
    tcase_add_test(tc, login_twice);
    tcase_add_test(tc, login_bad_arguments);
    tcase_add_test(tc, commands);
    tcase_add_test(tc, capabilities);
    tcase_add_test(tc, select_and_fetch);
    tcase_add_test(tc, identify_and_trace);
    tcase_add_test(tc, timings);
    tcase_add_test(tc, security_info_plain);
    tcase_add_test(tc, connect_localhost);
    tcase_add_test(tc, connect_errors);
    tcase_add_test(tc, disconnect_then_use);
    tcase_add_test(tc, server_logout);
    tcase_add_test(tc, uninitialize_frees_open_handles);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
