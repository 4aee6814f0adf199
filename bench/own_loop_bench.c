/* own_loop_bench.c: N concurrent IMAP connects three ways in one run: imapwire's own-loop
 * extension on a libuv loop, ImapAsyncConnect on the library's loop thread, and libcurl's
 * multi interface with CURLOPT_CONNECT_ONLY; wall and CPU time, and the ratios.
 *
 *   usage: imapwire_own_loop_bench HOST PORT [N [ROUNDS]]     (N <= 10000, ROUNDS <= 50)
 *
 * Rounds alternate the order of the three sides; each figure is the median over rounds.
 * Disconnecting is not timed. Every side must connect all N or the bench fails. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <curl/curl.h>
#include <uv.h>
#include <imapwire/imapwire.h>

#define MAX_N      10000
#define MAX_ROUNDS 50

enum { SIDE_UV, SIDE_ASYNC, SIDE_CURL, NSIDES };
static const char *const side_name[NSIDES] = { "own loop on libuv", "ImapAsyncConnect",
                                               "curl multi CONNECT_ONLY" };

static const char *g_host;
static unsigned g_port;
static HCLIENT g_h[MAX_N];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- own loop on libuv ---------------------------------------------------------- */
typedef struct uvconn uvconn;
typedef struct uvwatch {
    uv_poll_t poll;
    uvconn   *c;
    int       fd;
    DWORD     events;
    struct uvwatch *next;
} uvwatch;
struct uvconn {
    HCLIENT    h;
    uv_timer_t timer;
    uvwatch   *w;
};
static uvconn g_uv[MAX_N];
static int g_uv_ok, g_uv_done;

static void uv_free_watch(uv_handle_t *h)
{
    free(h->data);
}

static void uv_unwatch(uvwatch **pp)
{
    uvwatch *w = *pp;
    *pp = w->next;
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, uv_free_watch);
}

static void uv_step(uvconn *c, int fd, DWORD ev);

static void uv_on_poll(uv_poll_t *p, int status, int events)
{
    uvwatch *w = p->data;
    DWORD ev = (status < 0 || (events & (UV_READABLE | UV_DISCONNECT))) ? IMAP_SOCKET_READ : 0;
    if (events & UV_WRITABLE)
        ev |= IMAP_SOCKET_WRITE;
    uv_step(w->c, w->fd, ev);
}

static void uv_on_timer(uv_timer_t *t)
{
    uv_step(t->data, IMAP_SOCKET_TIMEOUT, 0);
}

static int uv_sync(uvconn *c)
{
    IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
    int tmo, n = ImapConnectSockets(c->h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo), i;
    uvwatch **pp, *w;
    if (n < 0)
        return -1;
    for (pp = &c->w; *pp != NULL;) {
        for (i = 0; i < n && s[i].nSocket != (*pp)->fd; i++)
            ;
        if (i == n)
            uv_unwatch(pp);
        else
            pp = &(*pp)->next;
    }
    for (i = 0; i < n; i++) {
        for (w = c->w; w != NULL && w->fd != s[i].nSocket; w = w->next)
            ;
        if (w == NULL) {
            w = calloc(1, sizeof *w);
            if (w == NULL || uv_poll_init(c->timer.loop, &w->poll, s[i].nSocket) != 0) {
                free(w);
                return -1;
            }
            w->poll.data = w;
            w->c = c;
            w->fd = s[i].nSocket;
            w->next = c->w;
            c->w = w;
        } else if (w->events == s[i].dwEvents) {
            continue;
        }
        w->events = s[i].dwEvents;
        if (uv_poll_start(&w->poll, ((s[i].dwEvents & IMAP_SOCKET_READ) ? UV_READABLE : 0) |
                                        ((s[i].dwEvents & IMAP_SOCKET_WRITE) ? UV_WRITABLE : 0),
                          uv_on_poll) != 0)
            return -1;
    }
    if (tmo >= 0)
        uv_timer_start(&c->timer, uv_on_timer, (uint64_t)tmo, 0);
    return 0;
}

static void uv_finish(uvconn *c, int ok)
{
    while (c->w != NULL)
        uv_unwatch(&c->w);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, NULL);
    g_uv_ok += ok;
    g_uv_done++;
}

static void uv_step(uvconn *c, int fd, DWORD ev)
{
    int rc = ImapConnectAction(c->h, fd, ev);
    if (rc == IMAP_CONNECT_PENDING && uv_sync(c) == 0)
        return;
    uv_finish(c, rc == 0);
}

static int run_uv(int n)
{
    IMAPCONNECTINFO ci;
    uv_loop_t loop;
    int i;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = g_host;
    ci.nRemotePort = g_port;
    ci.nTimeout = 20;
    g_uv_ok = g_uv_done = 0;
    uv_loop_init(&loop);
    for (i = 0; i < n; i++) {
        uvconn *c = &g_uv[i];
        memset(c, 0, sizeof *c);
        c->h = ImapConnectStart(&ci);
        uv_timer_init(&loop, &c->timer);
        c->timer.data = c;
        if (c->h == INVALID_CLIENT || uv_sync(c) != 0)
            uv_finish(c, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (i = 0; i < n; i++)
        g_h[i] = g_uv[i].h;
    return g_uv_ok;
}

/* ---- ImapAsyncConnect ------------------------------------------------------------ */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_events, g_async_ok;

static void on_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    (void)h;
    (void)param;
    if (id != IMAP_EVENT_CONNECT)
        return;
    pthread_mutex_lock(&g_lock);
    g_events++;
    g_async_ok += err == 0;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static int run_async(int n)
{
    int i, started = 0, ok;
    struct timespec until;
    g_events = g_async_ok = 0;
    for (i = 0; i < n; i++) {
        g_h[i] = ImapAsyncConnect(g_host, g_port, 20, IMAP_OPTION_FREETHREAD, NULL, on_event, NULL);
        started += g_h[i] != INVALID_CLIENT;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&g_lock);
    while (g_events < started &&
           pthread_cond_timedwait(&g_cond, &g_lock, &until) == 0)
        ;
    ok = g_async_ok;
    pthread_mutex_unlock(&g_lock);
    return ok;
}

/* ---- libcurl multi, CONNECT_ONLY ------------------------------------------------- */
static CURL *g_easy[MAX_N];

static int run_curl(int n, CURLM *m)
{
    char url[300];
    int i, running = 0, ok = 0, rounds;
    CURLMsg *msg;
    int left;
    snprintf(url, sizeof url, "imap://%s:%u/", g_host, g_port);
    for (i = 0; i < n; i++) {
        g_easy[i] = curl_easy_init();
        curl_easy_setopt(g_easy[i], CURLOPT_URL, url);
        curl_easy_setopt(g_easy[i], CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(g_easy[i], CURLOPT_CONNECTTIMEOUT, 20L);
        curl_multi_add_handle(m, g_easy[i]);
    }
    /* bounded: a minute of 1 s waits at most, far beyond any real run */
    for (rounds = 0; rounds < 100000; rounds++) {
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE)
                ok += msg->data.result == CURLE_OK;
        if (running == 0)
            break;
        curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    return ok;
}

static void curl_cleanup(int n, CURLM *m)
{
    int i;
    for (i = 0; i < n; i++) {
        curl_multi_remove_handle(m, g_easy[i]);
        curl_easy_cleanup(g_easy[i]);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    static double wall[NSIDES][MAX_ROUNDS], cpu[NSIDES][MAX_ROUNDS];
    int n = argc > 3 ? atoi(argv[3]) : 1000, rounds = argc > 4 ? atoi(argv[4]) : 5, r, k, i;
    struct rlimit rl;
    double mw[NSIDES], mc[NSIDES];

    if (argc < 3 || n < 1 || n > MAX_N || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: %s HOST PORT [N (1..%d) [ROUNDS (1..%d)]]\n", argv[0], MAX_N,
                MAX_ROUNDS);
        return 2;
    }
    g_host = argv[1];
    g_port = (unsigned)atoi(argv[2]);
    /* up to three descriptors per connect on the own-loop side (socket, duplicate,
     * a lookup's), plus curl's */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(4 * n + 256)) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)(4 * n + 256) ? rl.rlim_max : (rlim_t)(4 * n + 256);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!ImapInitialize(NULL, NULL) || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    for (r = 0; r < rounds; r++) {
        for (k = 0; k < NSIDES; k++) {
            int side = (k + r) % NSIDES, ok;
            CURLM *m = NULL;
            double t0, c0;
            if (side == SIDE_CURL) {
                m = curl_multi_init();
                curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n);
            }
            t0 = now_s();
            c0 = cpu_s();
            ok = side == SIDE_UV ? run_uv(n) : side == SIDE_ASYNC ? run_async(n) : run_curl(n, m);
            wall[side][r] = now_s() - t0;
            cpu[side][r] = cpu_s() - c0;
            if (side == SIDE_CURL) {
                curl_cleanup(n, m);
                curl_multi_cleanup(m);
            } else {
                for (i = 0; i < n; i++)
                    if (g_h[i] != INVALID_CLIENT)
                        ImapDisconnect(g_h[i]);
            }
            printf("round %d %-24s %d/%d connected  wall %.4f s  cpu %.4f s\n", r + 1,
                   side_name[side], ok, n, wall[side][r], cpu[side][r]);
            fflush(stdout);
            if (ok != n) {
                fprintf(stderr, "%s: only %d of %d connected\n", side_name[side], ok, n);
                return 1;
            }
        }
    }
    for (k = 0; k < NSIDES; k++) {
        mw[k] = median(wall[k], rounds);
        mc[k] = median(cpu[k], rounds);
        printf("median %-24s wall %.4f s  cpu %.4f s  (%d connects, %d rounds)\n", side_name[k],
               mw[k], mc[k], n, rounds);
    }
    printf("ratio own-loop/async  wall %.2f  cpu %.2f\n", mw[SIDE_UV] / mw[SIDE_ASYNC],
           mc[SIDE_UV] / mc[SIDE_ASYNC]);
    printf("ratio own-loop/curl   wall %.2f  cpu %.2f\n", mw[SIDE_UV] / mw[SIDE_CURL],
           mc[SIDE_UV] / mc[SIDE_CURL]);
    curl_global_cleanup();
    ImapUninitialize();
    return 0;
}
