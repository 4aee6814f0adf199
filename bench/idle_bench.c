/* idle_bench.c: N concurrent async connects on the library's loop thread beside libcurl's
 * multi interface, then the N held idle: loop CPU, and how fast a server close is seen. */
/* Each side runs in a child process of its own (CPU and RSS are then its own), against a
 * fresh imapwire_greeter per N. Printed per N: connect wall and CPU, RSS per connection,
 * idle CPU over the hold, and the median time from the greeter's close of one connection
 * to that handle's IMAP_EVENT_DISCONNECT. Usage:
 *   imapwire_idle_bench GREETER [N ...] [--idle S] [--no-curl-above N] */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <imapwire/imapwire.h>

#define CLOSES 5

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

static long status_kb(const char *key)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, n) == 0) {
            kb = atol(line + n);
            break;
        }
    fclose(f);
    return kb;
}

static void raise_nofile(void)
{
    struct rlimit rl = { 1 << 20, 1 << 20 };
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        rl.rlim_cur = rl.rlim_max = 300000;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- the greeter ---- */

typedef struct greeter {
    pid_t    pid;
    FILE    *out;
    unsigned ports[16];
    int      nports;
} greeter;

static void greeter_start(greeter *g, const char *path, int nports)
{
    int p[2];
    char arg[16], line[256], *tok, *save = NULL;
    if (pipe(p) != 0)
        exit(1);
    g->pid = fork();
    if (g->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        snprintf(arg, sizeof arg, "%d", nports);
        execl(path, path, arg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    g->out = fdopen(p[0], "r");
    if (g->out == NULL || fgets(line, sizeof line, g->out) == NULL || strncmp(line, "ports", 5)) {
        fprintf(stderr, "greeter did not start\n");
        exit(1);
    }
    g->nports = 0;
    for (tok = strtok_r(line + 5, " \n", &save); tok && g->nports < 16;
         tok = strtok_r(NULL, " \n", &save))
        g->ports[g->nports++] = (unsigned)atoi(tok);
}

static void greeter_stop(greeter *g)
{
    kill(g->pid, SIGKILL);
    waitpid(g->pid, NULL, 0);
    fclose(g->out);
}

/* ---- imapwire: ImapAsyncConnect x N on the library's loop ---- */

static int g_connected, g_failed, g_disconnects;
static DWORD g_first_error;
static long long g_disc_ns;

static void on_event(HCLIENT h, UINT event, DWORD error, LPVOID param)
{
    (void)h;
    (void)param;
    if (event == IMAP_EVENT_CONNECT) {
        if (error == 0)
            __atomic_add_fetch(&g_connected, 1, __ATOMIC_RELAXED);
        else {
            DWORD none = 0;
            __atomic_compare_exchange_n(&g_first_error, &none, error, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
            __atomic_add_fetch(&g_failed, 1, __ATOMIC_RELAXED);
        }
    } else if (event == IMAP_EVENT_DISCONNECT) {
        __atomic_store_n(&g_disc_ns, mono_ns(), __ATOMIC_RELEASE);
        __atomic_add_fetch(&g_disconnects, 1, __ATOMIC_RELEASE);
    }
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void imapwire_side(greeter *g, int n, int idle_s)
{
    HCLIENT *h = calloc((size_t)n, sizeof *h);
    long rss0, rss1, hwm;
    long long t0, t1, lat[CLOSES];
    double c0, c1, ci0, ci1;
    IMAPLOOPSTATS st0, st1;
    int i, k, closes = 0;

    raise_nofile();
    ImapInitialize(NULL, NULL);
    rss0 = status_kb("VmRSS:");
    t0 = mono_ns();
    c0 = cpu_ms();
    for (i = 0; i < n; i++) {
        h[i] = ImapAsyncConnect("127.0.0.1", g->ports[i % g->nports], 30, IMAP_OPTION_NONE,
                                NULL, on_event, NULL);
        if (h[i] == INVALID_CLIENT) {
            if (g_first_error == 0)
                g_first_error = ImapGetLastError();
            __atomic_add_fetch(&g_failed, 1, __ATOMIC_RELAXED);
        }
    }
    while (__atomic_load_n(&g_connected, __ATOMIC_RELAXED) +
               __atomic_load_n(&g_failed, __ATOMIC_RELAXED) < n &&
           mono_ns() - t0 < 120000000000LL)
        usleep(1000);
    t1 = mono_ns();
    c1 = cpu_ms();
    rss1 = status_kb("VmRSS:");
    hwm = status_kb("VmHWM:");
    /* idle: the loop watches every connection for a server close */
    st0.dwSize = st1.dwSize = sizeof st0;
    ImapGetLoopStatistics(&st0, FALSE);
    ci0 = cpu_ms();
    sleep((unsigned)idle_s);
    ci1 = cpu_ms();
    ImapGetLoopStatistics(&st1, FALSE);
    /* a server close on one of them, CLOSES times */
    for (k = 0; k < CLOSES; k++) {
        char line[128];
        long long closed_ns = 0, deadline;
        int before = __atomic_load_n(&g_disconnects, __ATOMIC_ACQUIRE);
        kill(g->pid, SIGUSR1);
        if (fgets(line, sizeof line, g->out) == NULL || sscanf(line, "closed %lld", &closed_ns) != 1)
            break;
        deadline = mono_ns() + 5000000000LL;
        while (__atomic_load_n(&g_disconnects, __ATOMIC_ACQUIRE) == before && mono_ns() < deadline)
            usleep(50);
        if (__atomic_load_n(&g_disconnects, __ATOMIC_ACQUIRE) == before)
            break;
        lat[closes++] = __atomic_load_n(&g_disc_ns, __ATOMIC_ACQUIRE) - closed_ns;
    }
    qsort(lat, (size_t)closes, sizeof lat[0], cmp_ll);
    if (g_failed > 0) {
        char text[128] = "";
        ImapGetErrorString(g_first_error, text, (INT)sizeof text);
        printf("imapwire  N=%-6d first failure: %s\n", n, text);
    }
    printf("imapwire  N=%-6d connected %d failed %d: wall %.0f ms, CPU %.0f ms, RSS %.1f KB/conn "
           "(peak %ld KB); idle %d s: CPU %.2f%% of a core, %u loop turns; DISCONNECT seen "
           "%.0f us after the close (median of %d)\n",
           n, g_connected, g_failed, (t1 - t0) / 1e6, c1 - c0,
           n ? (double)(rss1 - rss0) / n : 0.0, hwm, idle_s,
           100.0 * (ci1 - ci0) / (idle_s * 1000.0), (unsigned)(st1.dwTurns - st0.dwTurns),
           closes ? lat[closes / 2] / 1e3 : -1.0, closes);
    fflush(stdout);
    t0 = mono_ns();
    for (i = 0; i < n; i++)
        if (h[i] != INVALID_CLIENT)
            ImapDisconnect(h[i]);
    ImapUninitialize();
    printf("imapwire  N=%-6d all disconnected in %.0f ms\n", n, (mono_ns() - t0) / 1e6);
    free(h);
}

/* ---- libcurl: the multi interface, CONNECT_ONLY (greeting and CAPABILITY) ---- */

static void curl_side(greeter *g, int n)
{
    CURL **e = calloc((size_t)n, sizeof *e);
    CURLM *m;
    long rss0, rss1, hwm;
    long long t0, t1;
    double c0, c1;
    int i, running = 1, ok = 0, failed = 0;
    char url[64];

    raise_nofile();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n);
    rss0 = status_kb("VmRSS:");
    t0 = mono_ns();
    c0 = cpu_ms();
    for (i = 0; i < n; i++) {
        e[i] = curl_easy_init();
        snprintf(url, sizeof url, "imap://127.0.0.1:%u/", g->ports[i % g->nports]);
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 30L);
        curl_multi_add_handle(m, e[i]);
    }
    while (running > 0 && mono_ns() - t0 < 120000000000LL) {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE) {
                if (msg->data.result == CURLE_OK)
                    ok++;
                else
                    failed++;
            }
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    t1 = mono_ns();
    c1 = cpu_ms();
    rss1 = status_kb("VmRSS:");
    hwm = status_kb("VmHWM:");
    printf("libcurl   N=%-6d connected %d failed %d: wall %.0f ms, CPU %.0f ms, RSS %.1f KB/conn "
           "(peak %ld KB); no idle watching (nothing to compare)\n",
           n, ok, failed, (t1 - t0) / 1e6, c1 - c0, n ? (double)(rss1 - rss0) / n : 0.0, hwm);
    fflush(stdout);
    for (i = 0; i < n; i++) {
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    free(e);
}

static void run_child(void (*fn)(greeter *, int, int), greeter *g, int n, int idle)
{
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        fn(g, n, idle);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void curl_child(greeter *g, int n, int idle)
{
    (void)idle;
    curl_side(g, n);
}

/* Sockets in TIME_WAIT (state 06 in /proc/net/tcp and tcp6): thousands left by the side
 * that ran before make the next side's connects slower (the same binary measured 476 and
 * 931 ms for 10,000 connects), so each side starts with them drained. */
static long time_wait_count(void)
{
    static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    char line[512];
    long n = 0;
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(files[i], "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL) {
            char st[8];
            if (sscanf(line, "%*s %*s %*s %7s", st) == 1 && strcmp(st, "06") == 0)
                n++;
        }
        fclose(f);
    }
    return n;
}

/* Waits (at most 75 s: Linux keeps TIME_WAIT 60 s) until no more than 100 are left
 * beyond those the machine had when the bench started (other programs' own). */
static long time_wait_base = -1;

static void drain_time_wait(int enabled)
{
    long n = time_wait_count(), waited = 0;
    if (!enabled)
        return;
    if (time_wait_base < 0)
        time_wait_base = n;
    while (n >= time_wait_base + 100 && waited < 75) {
        sleep(1);
        waited++;
        n = time_wait_count();
    }
    if (waited > 0)
        printf("  (waited %ld s for TIME_WAIT sockets to drain: %ld left)\n", waited, n);
}

static void run_side(int curl, greeter *g, const char *gpath, int n, int idle, int drain)
{
    drain_time_wait(drain);
    greeter_start(g, gpath, n / 20000 + 1);
    run_child(curl ? curl_child : imapwire_side, g, n, idle);
    greeter_stop(g);
}

int main(int argc, char **argv)
{
    int counts[16], ncounts = 0, idle = 10, curl_max = 10000, drain = 1, i;
    const char *gpath;
    if (argc < 2) {
        fprintf(stderr, "usage: %s GREETER [N ...] [--idle S] [--no-curl-above N] [--no-drain]\n", argv[0]);
        return 2;
    }
    gpath = argv[1];
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc)
            idle = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-curl-above") == 0 && i + 1 < argc)
            curl_max = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-drain") == 0)
            drain = 0;
        else if (ncounts < 16)
            counts[ncounts++] = atoi(argv[i]);
    }
    if (ncounts == 0) {
        counts[ncounts++] = 10;
        counts[ncounts++] = 10000;
    }
    signal(SIGPIPE, SIG_IGN);
    /* which side goes first alternates from one N to the next, so neither always meets
     * a machine the other has just warmed or littered */
    for (i = 0; i < ncounts; i++) {
        greeter g;
        int n = counts[i], curl_first = i % 2 == 1 && n <= curl_max;
        if (curl_first)
            run_side(1, &g, gpath, n, idle, drain);
        run_side(0, &g, gpath, n, idle, drain);
        if (n <= curl_max && !curl_first)
            run_side(1, &g, gpath, n, idle, drain);
    }
    return 0;
}
