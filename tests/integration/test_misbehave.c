/* test_misbehave.c: every scripted bad server in tests/fixtures yields its one specific
 * ST_ERROR_* within the time bound, without leaking fds or memory. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

#define TIMEOUT_S 2

typedef struct bad_case {
    const char *scenario;
    DWORD       error;         /* what ImapConnect must report */
    long long   max_ms;        /* it must fail within this */
} bad_case;

/* The drip server stays under each per-wait timeout forever, so only the whole-connect
 * ceiling (a small multiple of nTimeout) stops it. */
static const bad_case cases[] = {
    { "silent",               ST_ERROR_OPERATION_TIMEOUT, TIMEOUT_S * 1000 + 1500 },
    { "drip",                 ST_ERROR_OPERATION_TIMEOUT, TIMEOUT_S * 3000 + 1500 },
    { "garbage",              ST_ERROR_INVALID_RESPONSE,  1500 },
    { "binary",               ST_ERROR_INVALID_RESPONSE,  1500 },
    { "bye",                  ST_ERROR_SERVER_REJECTED,   1500 },
    { "hugeline",             ST_ERROR_RESPONSE_TOO_LARGE, 3000 },
    { "hugeliteral",          ST_ERROR_RESPONSE_TOO_LARGE, 1500 },
    { "hugeliteral-greeting", ST_ERROR_RESPONSE_TOO_LARGE, 1500 },
    { "reset",                ST_ERROR_CONNECTION_CLOSED, 1500 },
    { "close",                ST_ERROR_CONNECTION_CLOSED, 1500 },
};

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

START_TEST(bad_server)
{
    const bad_case *bc = &cases[_i];
    iwt_fixture f;
    int fds;
    size_t heap0, heap1;
    long long t0, took;
    HCLIENT h;
    int round;

    iwt_fixture_start(&f, bc->scenario, 10);
    /* a first round warms one-time allocations (thread-locals, error tables) */
    for (round = 0; round < 2; round++) {
        fds = iwt_count_fds();
        heap0 = iwt_heap_in_use();
        t0 = iwt_now_ms();
        h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_NONE, NULL);
        took = iwt_now_ms() - t0;
        ck_assert_msg(h == INVALID_CLIENT, "%s: connect succeeded", bc->scenario);
        iwt_assert_error(bc->error);
        ck_assert_msg(took <= bc->max_ms, "%s: failed after %lld ms, bound %lld ms",
                      bc->scenario, took, bc->max_ms);
        ck_assert_int_eq(iwt_count_fds(), fds);
        heap1 = iwt_heap_in_use();
        /* the server claims 4 GiB or sends 10 MiB: none of it may stay behind */
        if (round == 1)
            ck_assert_msg(heap1 <= heap0 + 4096, "%s: heap grew from %zu to %zu",
                          bc->scenario, heap0, heap1);
    }
    iwt_fixture_stop(&f);
}
END_TEST

/* Memory held while reading a huge line stays bounded by the line limit, not by what
 * the server sends: watched from a trace callback that samples the heap. */
static size_t peak_heap;
static void sample_heap(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID p)
{
    size_t now = iwt_heap_in_use();
    (void)h; (void)dir; (void)line; (void)n; (void)p;
    if (now > peak_heap)
        peak_heap = now;
}

START_TEST(hugeline_memory_bounded)
{
    IMAPCONNECTINFO ci;
    iwt_fixture f;
    size_t base;

    iwt_fixture_start(&f, "hugeline", 2);
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = f.port;
    ci.nTimeout = TIMEOUT_S;
    ci.lpTraceProc = sample_heap;
    base = iwt_heap_in_use();
    peak_heap = base;
    ck_assert(ImapConnectEx(&ci) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_RESPONSE_TOO_LARGE);
    /* the server sent 10 MiB; the reader may hold at most its 1 MiB line limit (x2 slack) */
    ck_assert_msg(peak_heap - base < 2u * 1024 * 1024 + 65536, "peak heap grew by %zu",
                  peak_heap - base);
    iwt_fixture_stop(&f);
}
END_TEST

/* PREAUTH is a usable session that needs no login. */
START_TEST(preauth)
{
    iwt_fixture f;
    HCLIENT h;
    iwt_fixture_start(&f, "preauth", 2);
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_ALREADY_AUTHENTICATED);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* A server that forbids LOGIN never receives one, whichever auth type is asked for. */
START_TEST(logindisabled)
{
    iwt_fixture f;
    HCLIENT h;
    char *log;
    iwt_fixture_start(&f, "logindisabled", 4);
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, "u", "p"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "LOGIN") == NULL, "LOGIN was sent: %s", log);
    ck_assert_msg(strstr(log, " p") == NULL, "password was sent: %s", log);
    free(log);
}
END_TEST

/* Capabilities asked for when the greeting has none; ID only when advertised. */
START_TEST(nocapa_and_id)
{
    iwt_fixture f;
    HCLIENT h;
    char *log;
    iwt_fixture_start(&f, "nocapa", 4);
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_IDENTIFY, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert(ImapHasCapability(h, "SASL-IR"));
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, "u", "p"), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "1 A0001 CAPABILITY") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, " ID (") != NULL, "ID not sent: %s", log);
    free(log);

    iwt_fixture_start(&f, "id-noadvert", 4);
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_IDENTIFY, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, " ID") == NULL, "ID sent though not advertised: %s", log);
    free(log);
}
END_TEST

/* A server that never answers LOGOUT cannot hold ImapDisconnect for long. */
START_TEST(slow_logout)
{
    iwt_fixture f;
    HCLIENT h;
    long long t0;
    int fds;
    iwt_fixture_start(&f, "slow-logout", 2);
    fds = iwt_count_fds();
    h = ImapConnect("127.0.0.1", f.port, TIMEOUT_S, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    t0 = iwt_now_ms();
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_lt(iwt_now_ms() - t0, 3500);
    ck_assert_int_eq(iwt_count_fds(), fds);
    iwt_fixture_stop(&f);
}
END_TEST

/* 1.2 MB of untagged noise before the answer is read through, not held. */
START_TEST(untagged_flood)
{
    iwt_fixture f;
    HCLIENT h;
    char result[256];
    iwt_fixture_start(&f, "untagged-flood", 2);
    h = ImapConnect("127.0.0.1", f.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapCommand(h, "CAPABILITY", result, sizeof result), 0);
    ck_assert(ImapHasCapability(h, "SASL-IR"));
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* A server that goes away between commands is reported as closed, not as a hang. */
START_TEST(refused_port)
{
    iwt_fixture f;
    unsigned port;
    long long t0;
    iwt_fixture_start(&f, "normal", 1);
    port = f.port;
    iwt_fixture_stop(&f);
    /* A refusal ends the connect at once, not at the timeout: with a long timeout, a
     * bound of a quarter of it tells the two apart even on a loaded machine. */
    t0 = iwt_now_ms();
    ck_assert(ImapConnect("127.0.0.1", port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert_int_lt(iwt_now_ms() - t0, 10 * 1000 / 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("misbehave");
    TCase *tc = tcase_create("servers");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, bad_server, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, hugeline_memory_bounded);
    tcase_add_test(tc, preauth);
    tcase_add_test(tc, logindisabled);
    tcase_add_test(tc, nocapa_and_id);
    tcase_add_test(tc, slow_logout);
    tcase_add_test(tc, untagged_flood);
    tcase_add_test(tc, refused_port);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
