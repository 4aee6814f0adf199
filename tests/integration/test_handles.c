/* test_handles.c: handle ownership across threads against a real Dovecot: another
 * thread is refused, ImapAttachThread moves a handle, FREETHREAD lets any thread in. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
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

typedef struct job {
    HCLIENT h;
    int     rc;
    DWORD   err;
    DWORD   tid;
} job;

static void *run_noop(void *arg)
{
    job *j = arg;
    ImapSetLastError(0);
    j->rc = ImapCommand(j->h, "NOOP", NULL, 0);
    j->err = ImapGetLastError();
    j->tid = ImapGetCurrentThreadId();
    return NULL;
}

static void *run_attach_self(void *arg)
{
    job *j = arg;
    j->tid = ImapGetCurrentThreadId();
    j->rc = (int)ImapAttachThread(j->h, 0);
    j->err = ImapGetLastError();
    return NULL;
}

static void in_thread(void *(*fn)(void *), job *j)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, j), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

START_TEST(other_thread_refused)
{
    job j;
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    memset(&j, 0, sizeof j);
    j.h = h;
    in_thread(run_noop, &j);
    ck_assert_int_eq(j.rc, IMAP_ERROR);
    ck_assert_uint_eq(j.err, ST_ERROR_NOT_HANDLE_OWNER);
    ck_assert_uint_ne(j.tid, ImapGetCurrentThreadId());
    /* the refusal did not touch the owner's session */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(attach_moves_ownership)
{
    job j;
    DWORD me = ImapGetCurrentThreadId();
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);

    /* another thread takes the handle for itself: the previous owner is returned */
    memset(&j, 0, sizeof j);
    j.h = h;
    in_thread(run_attach_self, &j);
    ck_assert_uint_eq((DWORD)j.rc, me);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_NOT_HANDLE_OWNER);
    ck_assert_int_eq(ImapDisconnect(h), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_NOT_HANDLE_OWNER);

    /* taking it back returns the thread that had it */
    ck_assert_uint_eq(ImapAttachThread(h, 0), j.tid);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    /* a thread id that is not a thread of this process is refused */
    ck_assert_uint_eq(ImapAttachThread(h, 0x7ffffff0u), (DWORD)IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

typedef struct give_job {
    HCLIENT h;
    DWORD   to;
    DWORD   prev;
    int     noop;
} give_job;

static void *use_then_give(void *arg)
{
    give_job *g = arg;
    ImapAttachThread(g->h, 0);
    g->noop = ImapCommand(g->h, "NOOP", NULL, 0);
    g->prev = ImapAttachThread(g->h, g->to);
    return NULL;
}

START_TEST(attach_by_id_round_trip)
{
    give_job g;
    pthread_t t;
    DWORD me = ImapGetCurrentThreadId();
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    memset(&g, 0, sizeof g);
    g.h = h;
    g.to = me;
    ck_assert_int_eq(pthread_create(&t, NULL, use_then_give, &g), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(g.noop, 0);
    ck_assert_uint_ne(g.prev, (DWORD)IMAP_ERROR);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(freethread)
{
    job j;
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_FREETHREAD, NULL);
    ck_assert(h != INVALID_CLIENT);
    memset(&j, 0, sizeof j);
    j.h = h;
    in_thread(run_noop, &j);
    ck_assert_int_eq(j.rc, 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(bad_handles)
{
    static const HCLIENT forged[] = { 0, 1, 2, 0x12345678, (HCLIENT)-1 };
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    HCLIENT h2;
    size_t i;
    ck_assert(h != INVALID_CLIENT);
    for (i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        ck_assert_int_eq(ImapCommand(forged[i], "NOOP", NULL, 0), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    }
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* the slot is reused, but the old value must not reach the new client */
    h2 = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h2 != INVALID_CLIENT);
    ck_assert(h2 != h);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert_int_eq(ImapCommand(h2, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h2), 0);
}
END_TEST

/* A FREETHREAD handle's capability list read on one thread while another thread's
 * CAPABILITY commands replace it: each read sees a whole list, never a freed one. */
#define CAPA_ROUNDS 300

static void *capability_commands(void *arg)
{
    job *j = arg;
    int i;
    for (i = 0; i < CAPA_ROUNDS && j->rc == 0; i++)
        j->rc = ImapCommand(j->h, "CAPABILITY", NULL, 0);
    j->err = j->rc != 0 ? ImapGetLastError() : 0;
    __atomic_store_n(&j->tid, 1, __ATOMIC_RELEASE);   /* done */
    return NULL;
}

START_TEST(freethread_capabilities_while_replaced)
{
    HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_FREETHREAD, NULL);
    char buf[4096];
    pthread_t t;
    job j;
    int reads = 0, n;

    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    memset(&j, 0, sizeof j);
    j.h = h;
    ck_assert_int_eq(pthread_create(&t, NULL, capability_commands, &j), 0);
    while (!__atomic_load_n(&j.tid, __ATOMIC_ACQUIRE) && reads < 10000000) {
        n = ImapGetCapabilities(h, buf, (INT)sizeof buf);
        ck_assert_msg(n > 0 && strstr(buf, "IMAP4rev1") != NULL, "read %d: %d \"%s\"", reads, n,
                      n > 0 ? buf : "");
        ck_assert(ImapHasCapability(h, "IMAP4rev1"));
        reads++;
    }
    pthread_join(t, NULL);
    ck_assert_msg(j.rc == 0, "CAPABILITY failed: error %u", (unsigned)j.err);
    ck_assert_int_gt(reads, 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* Many threads each connect and work at once: the library state they share is safe. */
static void *worker(void *arg)
{
    int *ok = arg;
    int i;
    for (i = 0; i < 10; i++) {
        HCLIENT h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
        if (h == INVALID_CLIENT)
            return NULL;
        if (ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass) != 0 ||
            ImapCommand(h, "NOOP", NULL, 0) != 0) {
            ImapDisconnect(h);
            return NULL;
        }
        ImapDisconnect(h);
    }
    *ok = 1;
    return NULL;
}

/* A call on the handle from its own trace callback while its blocking connect runs is
 * refused (ST_ERROR_IN_PROGRESS) with or without FREETHREAD: the connect holds the
 * stream, and a command sent from inside it would interleave with the greeting. */
typedef struct in_trace {
    HCLIENT h;
    int     tried;
    INT     rc;
    DWORD   error;
} in_trace;

static VOID call_from_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    in_trace *t = param;
    (void)dir;
    (void)line;
    (void)len;
    if (t->tried)
        return;
    t->tried = 1;
    t->h = h;
    t->rc = ImapCommand(h, "NOOP", NULL, 0);
    t->error = t->rc == 0 ? 0 : ImapGetLastError();
}

START_TEST(trace_call_during_blocking_connect)
{
    IMAPCONNECTINFO in;
    in_trace t;
    HCLIENT h;

    memset(&t, 0, sizeof t);
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = dv.host;
    in.nRemotePort = dv.port;
    in.nTimeout = 5;
    in.dwOptions = _i == 0 ? IMAP_OPTION_NONE : IMAP_OPTION_FREETHREAD;
    in.lpTraceProc = call_from_trace;
    in.lpParam = &t;
    h = ImapConnectEx(&in);
    ck_assert_msg(h != INVALID_CLIENT, "connect: %u", (unsigned)ImapGetLastError());
    ck_assert(t.tried);
    ck_assert_msg(t.rc == IMAP_ERROR && t.error == ST_ERROR_IN_PROGRESS,
                  "%s: the call in the trace gave %d, error %u",
                  _i == 0 ? "owned" : "FREETHREAD", t.rc, (unsigned)t.error);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ImapDisconnect(h);
}
END_TEST

START_TEST(parallel_threads)
{
    pthread_t t[8];
    int ok[8] = { 0 };
    int i;
    for (i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &ok[i]), 0);
    for (i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(ok[i], "thread %d failed", i);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("handles");
    TCase *tc = tcase_create("threads");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, other_thread_refused);
    tcase_add_test(tc, attach_moves_ownership);
    tcase_add_test(tc, attach_by_id_round_trip);
    tcase_add_test(tc, freethread);
    tcase_add_test(tc, bad_handles);
    tcase_add_test(tc, parallel_threads);
    tcase_add_test(tc, freethread_capabilities_while_replaced);
    tcase_add_loop_test(tc, trace_call_during_blocking_connect, 0, 2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
