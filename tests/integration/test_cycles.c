/* test_cycles.c: 1,000 connect/login/command/disconnect cycles against Dovecot leave the
 * process with the same open fds and the same heap as before; prints the figures. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

static iwt_dovecot dv;

static int cycle(void)
{
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    if (h == INVALID_CLIENT)
        return -1;
    if (ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass) != 0 ||
        ImapCommand(h, "NOOP", NULL, 0) != 0) {
        ImapDisconnect(h);
        return -1;
    }
    return ImapDisconnect(h);
}

/* The heap is sampled three times: before the loop, after its first tenth (one-time
 * growth such as the handle table settles there) and at the end. A leak of even one
 * byte per cycle shows as a difference between the last two. */
START_TEST(thousand_cycles)
{
    int fds0, fds1, i, n = 1000, settle;
    size_t heap0, heap_settled = 0, heap1;
    long long t0, took;
    const char *env = getenv("IW_CYCLES");

    if (env)
        n = atoi(env);
    ck_assert_int_ge(n, 20);
    settle = n / 10;
    iwt_dovecot_load(&dv);
    ck_assert(ImapInitialize(NULL, NULL));
    /* a heap that reads 0 would make every check below pass without measuring */
    ck_assert_uint_gt(iwt_heap_in_use(), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(cycle(), 0);
    fds0 = iwt_count_fds();
    heap0 = iwt_heap_in_use();
    t0 = iwt_now_ms();
    for (i = 0; i < n; i++) {
        ck_assert_msg(cycle() == 0, "cycle %d failed: error %u", i,
                      (unsigned)ImapGetLastError());
        if (i + 1 == settle)
            heap_settled = iwt_heap_in_use();
    }
    took = iwt_now_ms() - t0;
    fds1 = iwt_count_fds();
    heap1 = iwt_heap_in_use();
    printf("cycles=%d wall_ms=%lld per_cycle_us=%lld fds_before=%d fds_after=%d "
           "heap_before=%zu heap_after_%d=%zu heap_after=%zu\n",
           n, took, took * 1000 / n, fds0, fds1, heap0, settle, heap_settled, heap1);
    fflush(stdout);
    ck_assert_int_eq(fds1, fds0);
    ck_assert_msg(heap1 <= heap_settled, "heap grew from %zu to %zu", heap_settled, heap1);
    /* and the one-time growth stays small */
    ck_assert_msg(heap_settled <= heap0 + 16384, "heap grew from %zu to %zu", heap0,
                  heap_settled);
    ck_assert(ImapUninitialize());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cycles");
    TCase *tc = tcase_create("cycles");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 580);
    tcase_add_test(tc, thousand_cycles);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
