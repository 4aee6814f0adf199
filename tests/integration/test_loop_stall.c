/* test_loop_stall.c: the loop thread never waits: while a command-plugin connect fails
 * (its child ignores SIGTERM) and an SSH session is torn down on the loop, 100 other
 * asynchronous connects complete on time and no single loop step takes long. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "iwtest.h"

#define OTHERS 100

/* What this suite catches is a wait: the command's grace alone is 200 ms, then 500 ms for
 * SIGTERM. A step's wall time also holds time the loop thread spent preempted (the 100
 * logins' Dovecot processes share the two cores; a CI run once saw 18.9 ms), so the bound
 * sits at half the shortest wait, not at what a quiet machine's steps take. */
#define STEP_BOUND_US 100000

static iwt_dovecot dv;
static iwt_sshd sshd;

struct ev {
    pthread_mutex_t lock;
    int             n;
    DWORD           error;
    long long       at_ms;
};

static struct ev others[OTHERS], slow_cmd, ssh_fail;

static void on_event(HCLIENT h, UINT event, DWORD error, LPVOID param)
{
    struct ev *e = param;
    (void)h;
    if (event != IMAP_EVENT_CONNECT)
        return;
    pthread_mutex_lock(&e->lock);
    e->n++;
    e->error = error;
    e->at_ms = iwt_now_ms();
    pthread_mutex_unlock(&e->lock);
}

static int ev_count(struct ev *e)
{
    int n;
    pthread_mutex_lock(&e->lock);
    n = e->n;
    pthread_mutex_unlock(&e->lock);
    return n;
}

static void setup(void)
{
    int i;
    iwt_dovecot_load(&dv);
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    unsetenv("SSH_AUTH_SOCK");
    for (i = 0; i < OTHERS; i++)
        pthread_mutex_init(&others[i].lock, NULL);
    pthread_mutex_init(&slow_cmd.lock, NULL);
    pthread_mutex_init(&ssh_fail.lock, NULL);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

START_TEST(loop_never_waits)
{
    IMAPCONNECTINFO in;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPLOOPSTATS st;
    HCLIENT hc, hs, h[OTHERS];
    long long t0, until;
    int i, done;

    /* a greeting that never comes from a child that ignores SIGTERM: its connect times
     * out on the loop, and ending the child takes 200 ms of grace, 500 ms after SIGTERM */
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = 143;
    in.nTimeout = 1;
    in.lpszTransport = "command:trap '' TERM; exec sleep 20";
    in.lpEventProc = on_event;
    in.lpParam = &slow_cmd;
    hc = ImapConnectEx(&in);
    ck_assert_msg(hc != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    /* an SSH session made and torn down on the loop: its channel is refused (port 1) */
    hs = ImapAsyncConnect("127.0.0.1", 1, 5, IMAP_OPTION_TUNNEL, &sc, on_event, &ssh_fail);
    ck_assert(hs != INVALID_CLIENT);
    /* wait until the command's timeout is near, then start the others */
    usleep(800000);
    st.dwSize = sizeof st;
    ck_assert(ImapGetLoopStatistics(&st, TRUE));
    t0 = iwt_now_ms();
    for (i = 0; i < OTHERS; i++) {
        h[i] = ImapAsyncConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_NONE, NULL, on_event,
                                &others[i]);
        ck_assert_msg(h[i] != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    }
    until = t0 + 15000;
    do {
        done = 0;
        for (i = 0; i < OTHERS; i++)
            done += ev_count(&others[i]) > 0;
        if (done == OTHERS && ev_count(&slow_cmd) > 0 && ev_count(&ssh_fail) > 0)
            break;
        usleep(10000);
    } while (iwt_now_ms() < until);
    ck_assert_int_eq(done, OTHERS);
    ck_assert_int_eq(ev_count(&slow_cmd), 1);
    ck_assert_msg(slow_cmd.error == ST_ERROR_OPERATION_TIMEOUT, "command: %u",
                  (unsigned)slow_cmd.error);
    ck_assert_int_eq(ev_count(&ssh_fail), 1);
    ck_assert_msg(ssh_fail.error == ST_ERROR_SSH_CHANNEL_FAILED, "ssh: %u",
                  (unsigned)ssh_fail.error);
    for (i = 0; i < OTHERS; i++)
        ck_assert_msg(others[i].error == 0, "connect %d: %u", i, (unsigned)others[i].error);
    /* let the child's SIGTERM wait (500 ms) and SIGKILL pass while the loop serves others */
    usleep(900000);
    ck_assert(ImapGetLoopStatistics(&st, FALSE));
    {
        long long last = 0;
        for (i = 0; i < OTHERS; i++)
            if (others[i].at_ms > last)
                last = others[i].at_ms;
        printf("loop_never_waits: longest loop step %u us over %u turns, %u tasks; 100 "
               "connects done in %lld ms\n", (unsigned)st.dwLongestStepUs,
               (unsigned)st.dwTurns, (unsigned)st.dwTasks, last - t0);
    }
    ck_assert_msg(st.dwLongestStepUs < STEP_BOUND_US, "the loop was busy %u us in one step",
                  (unsigned)st.dwLongestStepUs);
    for (i = 0; i < OTHERS; i++)
        ImapDisconnect(h[i]);
    ImapDisconnect(hc);
    ImapDisconnect(hs);
}
END_TEST

/* The child handed to the loop is gone (reaped, not a zombie) soon after its SIGKILL. */
START_TEST(child_reaped_by_loop)
{
    IMAPCONNECTINFO in;
    char marker[64], cmd[200];
    long long until;
    int alive = 1;
    HCLIENT hc;

    snprintf(marker, sizeof marker, "iw-stall-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "command:trap '' TERM; exec -a %s sleep 20", marker);
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = 143;
    in.nTimeout = 1;
    in.lpszTransport = cmd;
    in.lpEventProc = on_event;
    in.lpParam = &slow_cmd;
    hc = ImapConnectEx(&in);
    ck_assert(hc != INVALID_CLIENT);
    until = iwt_now_ms() + 6000;
    while (iwt_now_ms() < until) {
        char check[160];
        snprintf(check, sizeof check, "pgrep -f '^%s' >/dev/null", marker);
        alive = system(check) == 0;
        if (ev_count(&slow_cmd) > 0 && !alive)
            break;
        usleep(50000);
    }
    ck_assert_int_eq(ev_count(&slow_cmd), 1);
    ck_assert_msg(!alive, "the child still runs");
    ImapDisconnect(hc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop_stall");
    TCase *tc = tcase_create("stall");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, loop_never_waits);
    tcase_add_test(tc, child_reaped_by_loop);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
