/* script_harness.c: the drivers (ImapConnectEx, and ImapConnectStart stepped by a bounded
 * loop of our own) and the checks shared by the suites that run on the "script" transport. */
#define _GNU_SOURCE
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "script_harness.h"

const sh_variant sh_variants[] = {
    { "plain", 0, 0 },
    { "1-byte", 1, 0 },
    { "storm", 0, 3 },
    { "1-byte+storm", 1, 2 },
    { "7-byte+storm", 7, 1 },
};
const size_t sh_nvariants = sizeof sh_variants / sizeof sh_variants[0];

static unsigned g_connects;
static char g_trace[65536];
static size_t g_trace_len;

static VOID sh_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    const char *p = dir == IMAP_TRACE_RECV ? "S: " : dir == IMAP_TRACE_SEND ? "C: " : "I: ";
    int k;
    (void)h;
    (void)param;
    if (g_trace_len >= sizeof g_trace)
        return;
    k = snprintf(g_trace + g_trace_len, sizeof g_trace - g_trace_len, "%s%.*s\n", p, n, line);
    if (k > 0)
        g_trace_len += (size_t)k;
    if (g_trace_len > sizeof g_trace - 1)
        g_trace_len = sizeof g_trace - 1;
}

const char *sh_trace_text(void)
{
    return g_trace;
}

unsigned sh_connects(void)
{
    return g_connects;
}

long long sh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sh_setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
    ck_assert_int_eq(st_register(), 0);
    g_trace_len = 0;
    g_trace[0] = '\0';
}

void sh_teardown(void)
{
    ImapUninitialize();
}

size_t sh_nsteps(const char *const *steps)
{
    size_t n = 0;
    while (steps[n] != NULL)
        n++;
    return n;
}

/* The caller's loop: no descriptor is ever handed out, so it only sleeps to the
 * timeout the library gives and steps; bounded by rounds and by the timeout's ceiling. */
static DWORD sh_own_loop(HCLIENT h, UINT timeout)
{
    long long end = sh_now_ms() + (long long)timeout * 2000 + 2000;
    int round;

    for (round = 0; round < 1000000 && sh_now_ms() < end; round++) {
        IMAPSOCKET socks[IMAP_CONNECT_SOCKETS_MAX];
        INT wait = 0, n, rc;
        n = ImapConnectSockets(h, socks, IMAP_CONNECT_SOCKETS_MAX, &wait);
        if (n == IMAP_ERROR)
            return ImapGetLastError();
        ck_assert_int_eq(n, 0);
        if (wait > 0)
            poll(NULL, 0, wait);
        rc = ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0);
        if (rc == 0)
            return 0;
        if (rc == IMAP_ERROR)
            return ImapGetLastError();
        ck_assert_int_eq(rc, IMAP_CONNECT_PENDING);
    }
    ck_abort_msg("own-loop connect did not end in time");
    return 0;
}

DWORD sh_connect(st_run *run, DWORD options, UINT timeout, int driver, HCLIENT *h)
{
    IMAPCONNECTINFO info;
    char spec[64];
    DWORD rc;

    memset(&info, 0, sizeof info);
    info.dwSize = sizeof info;
    info.lpszHostName = "script.invalid";
    info.nRemotePort = 143;
    info.nTimeout = timeout;
    info.dwOptions = options;
    info.lpszTransport = st_spec(run, spec, sizeof spec);
    info.lpTraceProc = sh_trace;
    *h = INVALID_CLIENT;
    g_connects++;
    g_trace_len = 0;                   /* one connect's trace at a time */
    g_trace[0] = '\0';
    if (driver == SH_BLOCKING) {
        *h = ImapConnectEx(&info);
        return *h != INVALID_CLIENT ? 0 : ImapGetLastError();
    }
    *h = ImapConnectStart(&info);
    if (*h == INVALID_CLIENT)
        return ImapGetLastError();
    rc = sh_own_loop(*h, timeout ? timeout : IMAP_TIMEOUT_DEFAULT);
    if (rc != 0) {
        ImapDisconnect(*h);
        *h = INVALID_CLIENT;
    }
    return rc;
}

void sh_check_server(const st_run *run, int all, const char *label)
{
    ck_assert_msg(run->error[0] == '\0', "%s: script: %s", label, run->error);
    ck_assert_msg(run->created == 1 && run->destroyed == 1,
                  "%s: layer created %d, destroyed %d times", label, run->created,
                  run->destroyed);
    if (all)
        ck_assert_msg(run->steps[run->pos] == NULL, "%s: script stopped at step %zu \"%s\"",
                      label, run->pos, run->steps[run->pos]);
}
