/* test_peerdeath.c: the server resets the connection at each step of the dialogue (CAPABILITY,
 * STARTTLS, mid-handshake, LOGIN, SELECT, inside FETCH's literal): one specific error, in time. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

#define TIMEOUT_S 3

/* The call that meets the reset, in the order a session makes them. */
enum { AT_CONNECT, AT_LOGIN, AT_SELECT, AT_FETCH };

#define STARTTLS_OPTS (IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_TRUSTEDSITE)

typedef struct death {
    const char *scenario;      /* tests/fixtures/imap_fixture.c */
    DWORD       options;
    int         at;
    DWORD       error;
} death;

/* The greeting itself (reset, close) is test_misbehave's. A peer that drops a TLS
 * handshake is how many servers refuse a version or a cipher: the TLS layer reports it
 * as a failed handshake, as API.md's list of errors has it. */
static const death deaths[] = {
    { "die-capability",    IMAP_OPTION_NONE, AT_CONNECT, ST_ERROR_CONNECTION_CLOSED },
    { "die-starttls",      STARTTLS_OPTS,    AT_CONNECT, ST_ERROR_CONNECTION_CLOSED },
    { "die-tls-handshake", STARTTLS_OPTS,    AT_CONNECT, ST_ERROR_TLS_HANDSHAKE },
    { "die-login",         IMAP_OPTION_NONE, AT_LOGIN,   ST_ERROR_CONNECTION_CLOSED },
    { "die-select",        IMAP_OPTION_NONE, AT_SELECT,  ST_ERROR_CONNECTION_CLOSED },
    { "die-fetch-literal", IMAP_OPTION_NONE, AT_FETCH,   ST_ERROR_CONNECTION_CLOSED },
};

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* Runs the session up to the step that meets the reset; returns that step's error. */
static DWORD run_until_death(const death *d, unsigned port, int *at)
{
    IMAPMAILBOX mb;
    char buf[4096];
    DWORD len = sizeof buf, err;
    HCLIENT h;

    *at = AT_CONNECT;
    h = ImapConnect("127.0.0.1", port, TIMEOUT_S, d->options, NULL);
    if (h == INVALID_CLIENT)
        return ImapGetLastError();
    *at = AT_LOGIN;
    if (ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p") == 0) {
        *at = AT_SELECT;
        if (ImapSelectMailbox(h, "INBOX", &mb) == 0) {
            *at = AT_FETCH;
            if (ImapGetMessage(h, 1, 0, buf, &len, 0) == 0)
                *at = -1;
        }
    }
    err = *at < 0 ? 0 : ImapGetLastError();
    /* a dead connection still ends cleanly, at once, and frees the handle */
    ImapDisconnect(h);
    return err;
}

START_TEST(reset_at_step)
{
    const death *d = &deaths[_i];
    iwt_fixture f;
    int round, at, fds;
    size_t heap0, heap1;
    long long t0, took;
    DWORD err;

    iwt_fixture_start(&f, d->scenario, 10);
    /* a first round warms one-time allocations (thread-locals, error tables, OpenSSL) */
    for (round = 0; round < 2; round++) {
        fds = iwt_count_fds();
        heap0 = iwt_heap_in_use();
        t0 = iwt_now_ms();
        err = run_until_death(d, f.port, &at);
        took = iwt_now_ms() - t0;
        ck_assert_msg(at == d->at, "%s: the session stopped at step %d, not %d (error %u)",
                      d->scenario, at, d->at, (unsigned)err);
        ck_assert_msg(err == d->error, "%s: error %u, not %u", d->scenario, (unsigned)err,
                      (unsigned)d->error);
        /* a reset is seen at once: nowhere near a timeout */
        ck_assert_msg(took < 1500, "%s: %lld ms", d->scenario, took);
        ck_assert_int_eq(iwt_count_fds(), fds);
        heap1 = iwt_heap_in_use();
        if (round == 1)
            ck_assert_msg(heap1 <= heap0 + 4096, "%s: heap grew from %zu to %zu", d->scenario,
                          heap0, heap1);
    }
    iwt_fixture_stop(&f);
}
END_TEST

Suite *peerdeath_suite(void);
Suite *peerdeath_suite(void)
{
    Suite *s = suite_create("peerdeath");
    TCase *tc = tcase_create("reset");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, reset_at_step, 0, (int)(sizeof deaths / sizeof deaths[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(peerdeath_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
