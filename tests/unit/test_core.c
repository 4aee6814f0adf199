/* test_core.c: library life cycle, per-thread errors, error texts and the handle table:
 * counted init, ImapGetErrorString's buffer rules, stale/forged/wrong-kind handles. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "transport/chain.h"

#define FORGED_CLIENT ((HCLIENT)0x5eed1234u)

/* Leaves the library uninitialized even when CK_FORK=no runs tests in one process. */
static void teardown(void)
{
    int i;
    for (i = 0; i < 64 && ImapUninitialize(); i++)
        ;
}

START_TEST(calls_before_initialize)
{
    char buf[64];
    DWORD len = sizeof buf;
    UINT bound = 0;

    ck_assert(!iw_initialized());
    ImapSetLastError(0);
    ck_assert_uint_eq(ImapConnect("127.0.0.1", 143, 1, IMAP_OPTION_NONE, NULL), INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapLogin(FORGED_CLIENT, IMAP_AUTH_LOGIN, "u", "p"), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapDisconnect(FORGED_CLIENT), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapCommand(FORGED_CLIENT, "NOOP", buf, sizeof buf), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapGetMessage(FORGED_CLIENT, 1, 0, buf, &len, 0), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_uint_eq(ImapAttachThread(FORGED_CLIENT, 0), (DWORD)IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapUnregisterTransport("tcp"), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapLoadPlugin("socks5"), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert_uint_eq(ImapCreatePortForward(NULL, "127.0.0.1", 143, 0, &bound), INVALID_FORWARD);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert(!ImapClosePortForward((HFORWARD)0x77));
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    ImapSetLastError(0);
    ck_assert(!ImapUninitialize());
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
}
END_TEST

/* NOT_FOUND proves the library is up; NOT_INITIALIZED proves it is down. */
static DWORD probe(void)
{
    ImapSetLastError(0);
    ck_assert_int_eq(ImapUnregisterTransport("no-such-transport"), IMAP_ERROR);
    return ImapGetLastError();
}

/* A filter type: the smallest thing the registry accepts, to see what survives. */
static const imapwire_transport_type marker_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "coremarker",
};

START_TEST(initialize_is_counted)
{
    ck_assert_uint_eq(probe(), ST_ERROR_NOT_INITIALIZED);
    ck_assert(ImapInitialize(NULL, NULL));
    ck_assert(ImapInitialize("any licence text", NULL));
    ck_assert_int_eq(ImapRegisterTransport(&marker_type), 0);
    ck_assert(ImapUninitialize());
    ck_assert(iw_initialized());
    ck_assert_uint_eq(probe(), ST_ERROR_TRANSPORT_NOT_FOUND);
    /* Only the last Uninitialize tears down: the registry is still whole. */
    ck_assert_int_eq(ImapRegisterTransport(&marker_type), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_TRANSPORT_EXISTS);
    ck_assert(ImapUninitialize());
    ck_assert(!iw_initialized());
    ck_assert_uint_eq(probe(), ST_ERROR_NOT_INITIALIZED);
    ck_assert(!ImapUninitialize());
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_NOT_INITIALIZED);
    /* A full cycle leaves a fresh library: built-ins back, the caller's types gone. */
    ck_assert(ImapInitialize(NULL, NULL));
    ck_assert_uint_eq(probe(), ST_ERROR_TRANSPORT_NOT_FOUND);
    ck_assert_int_eq(ImapRegisterTransport(&marker_type), 0);
    ck_assert(ImapUninitialize());
}
END_TEST

static void *init_once(void *arg)
{
    *(int *)arg = ImapInitialize(NULL, NULL);
    return NULL;
}

static void *uninit_once(void *arg)
{
    *(int *)arg = ImapUninitialize();
    return NULL;
}

START_TEST(initialize_from_threads)
{
    pthread_t t[8];
    int ok[8], i;
    for (i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, init_once, &ok[i]), 0);
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert(ok[i]);
    }
    for (i = 0; i < 7; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, uninit_once, &ok[i]), 0);
    for (i = 0; i < 7; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert(ok[i]);
    }
    ck_assert_uint_eq(probe(), ST_ERROR_TRANSPORT_NOT_FOUND);
    ck_assert(ImapUninitialize());
    ck_assert_uint_eq(probe(), ST_ERROR_NOT_INITIALIZED);
}
END_TEST

/* ---- per-thread state ---- */

typedef struct seen {
    DWORD before, after, tid, tid_again;
} seen;

static void *other_thread(void *arg)
{
    seen *s = arg;
    s->before = ImapGetLastError();
    ImapSetLastError(ST_ERROR_LOGIN_FAILED);
    s->after = ImapGetLastError();
    s->tid = ImapGetCurrentThreadId();
    s->tid_again = ImapGetCurrentThreadId();
    return NULL;
}

START_TEST(last_error_is_per_thread)
{
    pthread_t t;
    seen s;
    ImapSetLastError(ST_ERROR_OPERATION_TIMEOUT);
    memset(&s, 0xff, sizeof s);
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &s), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_eq(s.before, 0);
    ck_assert_uint_eq(s.after, ST_ERROR_LOGIN_FAILED);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_OPERATION_TIMEOUT);
}
END_TEST

START_TEST(thread_ids)
{
    pthread_t t;
    seen s;
    DWORD me = ImapGetCurrentThreadId();
    memset(&s, 0, sizeof s);
    ck_assert_uint_ne(me, 0);
    ck_assert_uint_eq(ImapGetCurrentThreadId(), me);
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &s), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_ne(s.tid, 0);
    ck_assert_uint_ne(s.tid, me);
    ck_assert_uint_eq(s.tid_again, s.tid);
    ck_assert_uint_eq(ImapGetCurrentThreadId(), me);
}
END_TEST

/* ---- ImapGetErrorString ---- */

/* The contract's header is the list of codes a program sees: every ST_ERROR_* it
 * defines must have, under its own value, that same name and a text of its own, and
 * the library must know no code the header lacks. Read from the header itself, so a
 * code added there without a row in errors.c fails here. */
START_TEST(every_code_has_a_distinct_text)
{
    static char texts[256][256];
    char line[512], name[128];
    unsigned value, max = 0, seen = 0;
    FILE *f = fopen(IW_SOURCE_DIR "/include/imapwire/imapwire.h", "r");
    DWORD other;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        char *t;
        int n;
        if (sscanf(line, "#define %127s %uu", name, &value) != 2 ||
            strncmp(name, "ST_ERROR_", 9) != 0)
            continue;
        ck_assert_uint_lt(value, 256);
        seen++;
        if (value > max)
            max = value;
        ck_assert_msg(iw_error_name(value) != NULL && strcmp(iw_error_name(value), name) == 0,
                      "%s = %u is %s in the library", name, value,
                      iw_error_name(value) ? iw_error_name(value) : "missing");
        if (value == 0)
            continue;
        t = texts[value];
        ImapSetLastError(0);
        n = ImapGetErrorString(value, t, (INT)sizeof texts[value]);
        ck_assert_msg(n > 0, "%s has no text", name);
        ck_assert_int_eq((size_t)n, strlen(t));
        ck_assert_int_lt(n, (int)sizeof texts[value] - 1);     /* not truncated here */
        for (other = 1; other < value; other++)
            ck_assert_msg(strcmp(texts[other], t) != 0, "codes %u and %u share \"%s\"",
                          (unsigned)other, value, t);
    }
    fclose(f);
    /* dense from 0, and nothing in the library beyond the header's last code */
    ck_assert_uint_gt(seen, 30);
    ck_assert_uint_eq(seen, max + 1);
    ck_assert_uint_eq(iw_error_max(), max);
}
END_TEST

START_TEST(unknown_code)
{
    char buf[64];
    DWORD codes[] = { 9999, ST_ERROR_TLS_LIBRARY + 1, 0xffffffffu };
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        memset(buf, 'Z', sizeof buf);
        ImapSetLastError(0);
        ck_assert_int_eq(ImapGetErrorString(codes[i], buf, sizeof buf), IMAP_ERROR);
        ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    }
}
END_TEST

START_TEST(truncation)
{
    char full[256], buf[32];
    int len = ImapGetErrorString(ST_ERROR_INVALID_RESPONSE, full, sizeof full);
    ck_assert_int_gt(len, 10);

    /* As much as fits, NUL-terminated; the return value is what was copied. */
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_RESPONSE, buf, 8), 7);
    ck_assert_mem_eq(buf, full, 7);
    ck_assert_int_eq(buf[7], '\0');
    ck_assert_int_eq(buf[8], 'Z');                       /* nothing past nMaxLength */

    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_RESPONSE, buf, 1), 0);
    ck_assert_int_eq(buf[0], '\0');
    ck_assert_int_eq(buf[1], 'Z');

    /* The exact size needed is the length plus the terminator. */
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_RESPONSE, full, len), len - 1);
    ck_assert_int_eq((int)strlen(full), len - 1);
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_RESPONSE, full, len + 1), len);
    ck_assert_int_eq((int)strlen(full), len);
}
END_TEST

START_TEST(bad_buffer_arguments)
{
    char buf[16];
    ImapSetLastError(0);
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_HANDLE, NULL, 100), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_HANDLE, buf, 0), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    ImapSetLastError(0);
    ck_assert_int_eq(ImapGetErrorString(ST_ERROR_INVALID_HANDLE, buf, -5), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
}
END_TEST

/* ---- the handle table ---- */

START_TEST(stale_handle_cannot_reach_reused_slot)
{
    int a, b;
    uintptr_t h1, h2;

    ck_assert_int_eq(iw_handles_init(), 0);
    h1 = iw_handle_add(IW_KIND_FORWARD, &a);
    ck_assert_uint_ne(h1, 0);
    ck_assert_ptr_eq(iw_handle_get(h1, IW_KIND_FORWARD), &a);
    ck_assert_ptr_eq(iw_handle_remove(h1, IW_KIND_FORWARD), &a);
    ck_assert_ptr_null(iw_handle_get(h1, IW_KIND_FORWARD));
    ck_assert_ptr_null(iw_handle_remove(h1, IW_KIND_FORWARD));   /* no double free */

    h2 = iw_handle_add(IW_KIND_FORWARD, &b);
    ck_assert_uint_ne(h2, 0);
    /* Only a reused slot makes this test mean anything: the free list is LIFO. */
    ck_assert_uint_eq(h1 & 0xffffffu, h2 & 0xffffffu);
    ck_assert_uint_ne(h1, h2);
    ck_assert_ptr_null(iw_handle_get(h1, IW_KIND_FORWARD));
    ck_assert_ptr_null(iw_handle_remove(h1, IW_KIND_FORWARD));
    ck_assert_ptr_eq(iw_handle_get(h2, IW_KIND_FORWARD), &b);
    ck_assert_ptr_eq(iw_handle_remove(h2, IW_KIND_FORWARD), &b);
}
END_TEST

START_TEST(handle_churn)
{
    static uintptr_t seen_h[1000];
    int obj, i, j, repeats = 0;
    for (i = 0; i < 1000; i++) {
        seen_h[i] = iw_handle_add(IW_KIND_CLIENT, &obj);
        ck_assert_uint_ne(seen_h[i], 0);
        /* a plain comparison: each ck_assert writes a mark to Check's pipe, and half a
         * million of them outran the suite's timeout under ASan at load 5 */
        for (j = 0; j < i; j++)
            repeats += seen_h[j] == seen_h[i];
        ck_assert_ptr_eq(iw_handle_remove(seen_h[i], IW_KIND_CLIENT), &obj);
    }
    ck_assert_int_eq(repeats, 0);
    for (i = 0; i < 1000; i++)
        ck_assert_ptr_null(iw_handle_get(seen_h[i], IW_KIND_CLIENT));
}
END_TEST

START_TEST(forged_handles)
{
    int obj;
    uintptr_t live = iw_handle_add(IW_KIND_FORWARD, &obj), forged[6], v = (uintptr_t)0x9e3779b97f4a7c15ull;
    size_t i;
    int reached = 0;

    ck_assert_uint_ne(live, 0);
    forged[0] = 0;
    forged[1] = 1;
    forged[2] = ~(uintptr_t)0;
    forged[3] = live ^ ((uintptr_t)1 << 24);          /* right slot, wrong generation */
    forged[4] = live + 1;                             /* a slot nobody holds */
    forged[5] = live & 0xffffffu;                     /* generation 0 never exists */
    for (i = 0; i < 6; i++) {
        ck_assert_ptr_null(iw_handle_get(forged[i], IW_KIND_FORWARD));
        ck_assert_ptr_null(iw_handle_remove(forged[i], IW_KIND_FORWARD));
    }
    /* Fixed-seed xorshift: random-looking values, the same on every run. */
    for (i = 0; i < 100000; i++) {
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
        if (v == live)
            continue;
        /* counted, then asserted once: a ck_assert per value is a write to Check's pipe */
        reached += iw_handle_get(v, IW_KIND_FORWARD) != NULL;
        reached += iw_handle_get(v, IW_KIND_CLIENT) != NULL;
    }
    ck_assert_int_eq(reached, 0);
    ck_assert_ptr_eq(iw_handle_get(live, IW_KIND_FORWARD), &obj);
    ck_assert_ptr_eq(iw_handle_remove(live, IW_KIND_FORWARD), &obj);
}
END_TEST

START_TEST(kind_mismatch)
{
    int obj;
    uintptr_t h = iw_handle_add(IW_KIND_FORWARD, &obj);
    ck_assert_uint_ne(h, 0);
    ck_assert_ptr_null(iw_handle_get(h, IW_KIND_CLIENT));
    ck_assert_ptr_null(iw_handle_remove(h, IW_KIND_CLIENT));
    ck_assert_ptr_null(iw_handle_get(h, 0));
    ck_assert_ptr_eq(iw_handle_get(h, IW_KIND_FORWARD), &obj);   /* still there */
    ck_assert_ptr_eq(iw_handle_remove(h, IW_KIND_FORWARD), &obj);
}
END_TEST

/* Every per-client entry point: each must say INVALID_HANDLE without touching memory. */
static void expect_invalid_handle(HCLIENT h)
{
    char buf[64];
    DWORD len = sizeof buf;
    IMAPMAILBOX mb;
    SECURITYINFO si;
    IMAPTIMINGS tm;
    int step;

    si.dwSize = sizeof si;
    tm.dwSize = sizeof tm;
    for (step = 0; step < 11; step++) {
        int failed = 0;
        ImapSetLastError(0);
        switch (step) {
        case 0: failed = ImapDisconnect(h) == IMAP_ERROR; break;
        case 1: failed = ImapLogin(h, IMAP_AUTH_LOGIN, "user", "pass") == IMAP_ERROR; break;
        case 2: failed = ImapCommand(h, "NOOP", buf, sizeof buf) == IMAP_ERROR; break;
        case 3: failed = ImapGetCapabilities(h, buf, sizeof buf) == IMAP_ERROR; break;
        case 4: failed = !ImapHasCapability(h, "IMAP4rev1"); break;
        case 5: failed = ImapSelectMailbox(h, "INBOX", &mb) == IMAP_ERROR; break;
        case 6: failed = ImapGetMessage(h, 1, 0, buf, &len, 0) == IMAP_ERROR; break;
        case 7: failed = ImapGetSecurityInformation(h, &si) == IMAP_ERROR; break;
        case 8: failed = ImapGetTimings(h, &tm) == IMAP_ERROR; break;
        case 9: failed = ImapAttachThread(h, 0) == (DWORD)IMAP_ERROR; break;
        default: failed = ImapCommand(h, "NOOP", NULL, 0) == IMAP_ERROR; break;
        }
        ck_assert_msg(failed, "call %d accepted handle %#lx", step, (unsigned long)h);
        ck_assert_msg(ImapGetLastError() == ST_ERROR_INVALID_HANDLE, "call %d: error %u", step,
                      (unsigned)ImapGetLastError());
    }
}

START_TEST(made_up_client_handles)
{
    int fake;
    uintptr_t other_kind;

    ck_assert(ImapInitialize(NULL, NULL));
    expect_invalid_handle(INVALID_CLIENT);
    expect_invalid_handle(FORGED_CLIENT);
    expect_invalid_handle(~(HCLIENT)0);
    /* A live handle of another kind must not be taken for a client. */
    other_kind = iw_handle_add(IW_KIND_FORWARD, &fake);
    ck_assert_uint_ne(other_kind, 0);
    expect_invalid_handle((HCLIENT)other_kind);
    ck_assert_ptr_eq(iw_handle_remove(other_kind, IW_KIND_FORWARD), &fake);
    ck_assert(ImapUninitialize());
}
END_TEST

START_TEST(forged_forward_handle)
{
    ck_assert(ImapInitialize(NULL, NULL));
    ImapSetLastError(0);
    ck_assert(!ImapClosePortForward((HFORWARD)0x1000001u));
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_HANDLE);
    ImapSetLastError(0);
    ck_assert(!ImapClosePortForward(INVALID_FORWARD));
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_HANDLE);
    ck_assert(ImapUninitialize());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *life = tcase_create("lifecycle"), *err = tcase_create("errors");
    TCase *hnd = tcase_create("handles");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(life, NULL, teardown);
    tcase_add_test(life, calls_before_initialize);
    tcase_add_test(life, initialize_is_counted);
    tcase_add_test(life, initialize_from_threads);
    tcase_add_test(life, last_error_is_per_thread);
    tcase_add_test(life, thread_ids);
    suite_add_tcase(s, life);

    tcase_add_test(err, every_code_has_a_distinct_text);
    tcase_add_test(err, unknown_code);
    tcase_add_test(err, truncation);
    tcase_add_test(err, bad_buffer_arguments);
    suite_add_tcase(s, err);

    tcase_add_checked_fixture(hnd, NULL, teardown);
    tcase_add_test(hnd, stale_handle_cannot_reach_reused_slot);
    tcase_add_test(hnd, handle_churn);
    tcase_add_test(hnd, forged_handles);
    tcase_add_test(hnd, kind_mismatch);
    tcase_add_test(hnd, made_up_client_handles);
    tcase_add_test(hnd, forged_forward_handle);
    suite_add_tcase(s, hnd);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
