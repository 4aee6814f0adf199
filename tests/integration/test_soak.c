/* test_soak.c: mixed connects in every mode, for SOAK_SECONDS (default 3600), under the
 * fault layer splitting and refusing I/O; descriptors, threads and RSS must stay flat. */
/* Not in the default run (ctest label "soak"): ctest --test-dir build -L soak. Every
 * minute it prints the samples; at the end descriptors and threads must equal the
 * reference sample (taken after a twelfth of the run, when caches are warm) and RSS must
 * be within 5% of it. Each mode must keep succeeding: a failure fails the soak. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fault_layer.h"
#include "iwtest.h"

static iwt_dovecot dv, dvtls;
static iwt_sshd sshd;
static char ca[700];
static unsigned dante_port;
static char dante_user[64], dante_pass[64];

/* The fault layer (fault_layer.c) splits a quarter of reads and writes to 1 byte and
 * answers "again" to an eighth of calls, on a seeded schedule; nothing it does may change
 * a result. SOCKS5 runs it beneath the proxy's handshake ("faultproxy"). */
#define SOAK_SCHEDULE "split%25+again%12"

/* ---- samples ---- */

static long status_value(const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, n) == 0) {
            v = atol(line + n);
            break;
        }
    fclose(f);
    return v;
}

typedef struct sample {
    int  fds;
    long threads, rss_kb;
} sample;

static sample take(void)
{
    sample s;
    s.fds = iwt_count_fds();
    s.threads = status_value("Threads:");
    s.rss_kb = status_value("VmRSS:");
    return s;
}

/* ---- one round in one mode ---- */

enum { M_PLAIN, M_STARTTLS, M_IMAPS, M_SSH, M_SOCKS5, M_ASYNC, M_COUNT };
static const char *const mode_name[M_COUNT] = { "plain", "starttls", "imaps", "ssh",
                                                "socks5", "async" };

struct async_wait {
    pthread_mutex_t lock;
    int             done;
    DWORD           error;
};

static void on_connect(HCLIENT h, UINT ev, DWORD err, LPVOID p)
{
    struct async_wait *w = p;
    (void)h;
    if (ev != IMAP_EVENT_CONNECT)
        return;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->error = err;
    pthread_mutex_unlock(&w->lock);
}

static int session(HCLIENT h, const iwt_dovecot *d)
{
    char *msg = NULL;
    DWORD len = 0;
    int rc;
    if (ImapLogin(h, IMAP_AUTH_PLAIN, d->user, d->pass) != 0 ||
        ImapSelectMailbox(h, "INBOX", NULL) != 0)
        return -1;
    rc = ImapGetMessage(h, 1, 0, &msg, &len, 0);
    if (rc == 0)
        ImapFreeMemory(msg);
    return rc == 0 && len > 0 ? 0 : -1;
}

static int round_in(int mode, unsigned seed)
{
    IMAPCONNECTINFO in;
    SECURITYCREDENTIALS sc;
    char tr[200];
    const iwt_dovecot *d = &dv;
    struct async_wait w = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
    HCLIENT h;
    int rc, i;

    memset(&in, 0, sizeof in);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 10;
    snprintf(tr, sizeof tr, "fault:%u:%s", seed, SOAK_SCHEDULE);
    in.lpszTransport = tr;
    switch (mode) {
    case M_STARTTLS:
    case M_IMAPS:
        d = &dvtls;
        sc.lpszCAFile = ca;
        in.lpszHostName = "localhost";
        in.nRemotePort = mode == M_IMAPS ? dvtls.imaps_port : dvtls.port;
        in.dwOptions = mode == M_IMAPS ? IMAP_OPTION_SECURE_IMPLICIT : IMAP_OPTION_SECURE_EXPLICIT;
        in.lpCredentials = &sc;
        break;
    case M_SSH:
        sc = iwt_tunnel_creds(&sshd);
        in.dwOptions = IMAP_OPTION_TUNNEL;   /* the fault layer carries the SSH hop */
        in.lpCredentials = &sc;
        break;
    case M_SOCKS5:
        snprintf(tr, sizeof tr, "faultproxy:%u:%s;socks5:%s:%s@127.0.0.1:%u", seed,
                 SOAK_SCHEDULE, dante_user, dante_pass, dante_port);
        break;
    case M_ASYNC:
        in.lpEventProc = on_connect;
        in.lpParam = &w;
        break;
    default:
        break;
    }
    h = ImapConnectEx(&in);
    if (h == INVALID_CLIENT)
        return (int)ImapGetLastError();
    if (mode == M_ASYNC) {
        for (i = 0; i < 2000; i++) {
            int done;
            pthread_mutex_lock(&w.lock);
            done = w.done;
            pthread_mutex_unlock(&w.lock);
            if (done)
                break;
            usleep(5000);
        }
        if (!w.done || w.error != 0) {
            ImapDisconnect(h);
            return w.done ? (int)w.error : -2;
        }
    }
    rc = session(h, d);
    if (rc != 0)
        rc = (int)ImapGetLastError();
    ImapDisconnect(h);
    return rc;
}

START_TEST(soak)
{
    const char *env = getenv("SOAK_SECONDS");
    long seconds = env ? atol(env) : 3600, elapsed;
    long long start = iwt_now_ms(), next_sample, ref_at;
    sample first, ref = { 0, 0, 0 }, now;
    unsigned long rounds[M_COUNT] = { 0 };
    int have_ref = 0, mode = 0;
    fault_stats faults;
    unsigned seed = 1;

    ck_assert_int_eq(fault_register(getenv("IMAPWIRE_PLUGIN_PATH")), 0);
    /* warm up every mode once, then the first sample */
    for (mode = 0; mode < M_COUNT; mode++)
    {
        int rc = round_in(mode, seed++);
        ck_assert_msg(rc == 0, "warm-up %s failed: error %d", mode_name[mode], rc);
    }
    first = take();
    printf("soak: %ld s; start: %d fds, %ld threads, %ld KB RSS\n", seconds, first.fds,
           first.threads, first.rss_kb);
    fflush(stdout);
    ref_at = start + seconds * 1000 / 12;
    next_sample = start + 60000;
    mode = 0;
    while ((elapsed = (long)((iwt_now_ms() - start) / 1000)) < seconds) {
        int rc = round_in(mode, seed++);
        ck_assert_msg(rc == 0, "%s round %lu failed: error %d", mode_name[mode], rounds[mode], rc);
        rounds[mode]++;
        mode = (mode + 1) % M_COUNT;
        if (!have_ref && iwt_now_ms() >= ref_at) {
            ref = take();
            have_ref = 1;
        }
        if (iwt_now_ms() >= next_sample) {
            now = take();
            printf("soak: %ld s: %d fds, %ld threads, %ld KB RSS\n", elapsed, now.fds,
                   now.threads, now.rss_kb);
            fflush(stdout);
            next_sample += 60000;
        }
    }
    now = take();
    printf("soak: end after %ld s: %d fds, %ld threads, %ld KB RSS (reference %d, %ld, %ld); "
           "rounds: plain %lu, starttls %lu, imaps %lu, ssh %lu, socks5 %lu, async %lu\n",
           seconds, now.fds, now.threads, now.rss_kb, ref.fds, ref.threads, ref.rss_kb,
           rounds[M_PLAIN], rounds[M_STARTTLS], rounds[M_IMAPS], rounds[M_SSH],
           rounds[M_SOCKS5], rounds[M_ASYNC]);
    fault_stats_get(&faults);
    printf("soak: fault layer: %lu calls, %lu cut short, %lu refused, %llu bytes in, %llu out\n",
           faults.calls, faults.splits, faults.agains, faults.bytes_in, faults.bytes_out);
    ck_assert(faults.splits > 0 && faults.agains > 0);
    ck_assert(have_ref);
    ck_assert_int_eq(now.fds, ref.fds);
    ck_assert_int_eq(now.threads, ref.threads);
    ck_assert_msg(now.rss_kb <= ref.rss_kb + ref.rss_kb / 20, "RSS grew from %ld to %ld KB",
                  ref.rss_kb, now.rss_kb);
}
END_TEST

static void setup(void)
{
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    iwt_dante_load(&dante_port, dante_user, sizeof dante_user, dante_pass, sizeof dante_pass);
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

int main(void)
{
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("soak");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 0);      /* the soak bounds itself by SOAK_SECONDS */
    tcase_add_test(tc, soak);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
