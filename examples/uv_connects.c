/* uv_connects.c: many IMAP connects at once on a libuv loop, stepped through imapwire's
 * own-loop extension (a uv_poll_t per socket, a uv_timer_t for the deadline).
 *
 *   usage: uv_connects [--cut K] HOST PORT [COUNT [USER PASSWORD]]
 *
 * Prints how many connected and the wall time; exits 0 only if all of them did. With
 * USER and PASSWORD, every connected handle then logs in and sends NOOP (not timed).
 * With --cut K, every K-th connect is disconnected from inside its second libuv
 * callback instead; then the others must connect, and no descriptor may be left. */
#define _POSIX_C_SOURCE 200809L       /* uv.h needs pthread_rwlock_t under -std=c11 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <imapwire/imapwire.h>

#define MAX_COUNT 10000

typedef struct conn conn;

/* One watched socket; freed when libuv has closed it. */
typedef struct watch {
    uv_poll_t poll;
    conn     *c;
    int       fd;
    DWORD     events;
    struct watch *next;
} watch;

struct conn {
    HCLIENT    h;
    uv_timer_t timer;
    watch     *watches;
    int        done;               /* 1 connected, -1 failed, 2 cut short */
    int        steps;
    int        cut;                /* to be disconnected in its second callback */
    DWORD      error;
};

static int finished, connected, cut_ok;
static double t_last;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void free_watch(uv_handle_t *h)
{
    free(h->data);
}

static void unwatch(watch **pp)
{
    watch *w = *pp;
    *pp = w->next;
    /* Stopped now, while the descriptor is still open: imapwire closes it only at our
     * next call on the handle. */
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, free_watch);
}

static void step(conn *c, int fd, DWORD events);

static void on_poll(uv_poll_t *p, int status, int events)
{
    watch *w = p->data;
    DWORD ev = 0;
    /* an error on the socket is the connect's to find: let it read */
    if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)))
        ev |= IMAP_SOCKET_READ;
    if (events & UV_WRITABLE)
        ev |= IMAP_SOCKET_WRITE;
    step(w->c, w->fd, ev);
}

static void on_timer(uv_timer_t *t)
{
    step(t->data, IMAP_SOCKET_TIMEOUT, 0);
}

/* Makes the watchers match the set imapwire hands out now. */
static int sync_watches(conn *c)
{
    IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
    int timeout, n = ImapConnectSockets(c->h, s, IMAP_CONNECT_SOCKETS_MAX, &timeout), i;
    watch **pp;

    if (n < 0)
        return -1;
    for (pp = &c->watches; *pp != NULL;) {
        for (i = 0; i < n && s[i].nSocket != (*pp)->fd; i++)
            ;
        if (i == n)
            unwatch(pp);
        else
            pp = &(*pp)->next;
    }
    for (i = 0; i < n; i++) {
        int uvev = ((s[i].dwEvents & IMAP_SOCKET_READ) ? UV_READABLE : 0) |
                   ((s[i].dwEvents & IMAP_SOCKET_WRITE) ? UV_WRITABLE : 0);
        watch *w;
        for (w = c->watches; w != NULL && w->fd != s[i].nSocket; w = w->next)
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
            w->next = c->watches;
            c->watches = w;
        } else if (w->events == s[i].dwEvents) {
            continue;
        }
        w->events = s[i].dwEvents;
        if (uv_poll_start(&w->poll, uvev | UV_DISCONNECT, on_poll) != 0)
            return -1;
    }
    if (timeout >= 0)
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout, 0);
    else
        uv_timer_stop(&c->timer);
    return 0;
}

static void finish(conn *c, int ok, DWORD error)
{
    c->done = ok ? 1 : -1;
    c->error = error;
    while (c->watches != NULL)
        unwatch(&c->watches);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, NULL);
    finished++;
    connected += ok;
    t_last = now_s();
}

static void step(conn *c, int fd, DWORD events)
{
    int rc;
    if (c->cut && ++c->steps == 2) {
        /* In the middle of the connect. Stop watching first: ImapDisconnect closes the
         * descriptors handed out. */
        finish(c, 0, 0);
        c->done = 2;
        cut_ok += ImapDisconnect(c->h) == 0;
        c->h = INVALID_CLIENT;
        return;
    }
    rc = ImapConnectAction(c->h, fd, events);
    if (rc == IMAP_CONNECT_PENDING && sync_watches(c) == 0)
        return;
    finish(c, rc == 0, rc == 0 ? 0 : ImapGetLastError());
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    static conn conns[MAX_COUNT];
    const char *user, *pass;
    int count, i, logged = 0, cut_every = 0, ncut = 0, fds, want;
    uv_loop_t *loop = uv_default_loop();
    IMAPCONNECTINFO ci;
    double t0;
    char err[128];

    if (argc > 2 && strcmp(argv[1], "--cut") == 0) {
        cut_every = atoi(argv[2]);
        argc -= 2;
        argv += 2;
    }
    user = argc > 5 ? argv[4] : NULL;
    pass = argc > 5 ? argv[5] : NULL;
    count = argc > 3 ? atoi(argv[3]) : 100;
    if (argc < 3 || count < 1 || count > MAX_COUNT || cut_every < 0) {
        fprintf(stderr, "usage: uv_connects [--cut K] HOST PORT [COUNT (1..%d) [USER PASSWORD]]\n",
                MAX_COUNT);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return 1;
    fds = count_fds();
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = argv[1];
    ci.nRemotePort = (UINT)atoi(argv[2]);
    ci.nTimeout = 20;
    t0 = now_s();
    for (i = 0; i < count; i++) {
        conn *c = &conns[i];
        c->cut = cut_every > 0 && i % cut_every == cut_every - 1;
        ncut += c->cut;
        c->h = ImapConnectStart(&ci);
        if (c->h == INVALID_CLIENT) {
            ImapGetErrorString(ImapGetLastError(), err, sizeof err);
            fprintf(stderr, "connect %d: %s\n", i, err);
            c->done = -1;
            c->error = ImapGetLastError();
            finished++;
            continue;
        }
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        /* the first step is due at once: the timer runs it from inside the loop */
        if (sync_watches(c) != 0)
            finish(c, 0, ImapGetLastError());
    }
    uv_run(loop, UV_RUN_DEFAULT);
    want = count - ncut;
    printf("%d of %d connected on one libuv loop in %.3f s\n", connected, want,
           (finished > 0 ? t_last : now_s()) - t0);
    if (ncut > 0)
        printf("%d of %d disconnected from inside their second callback\n", cut_ok, ncut);
    for (i = 0; i < count; i++) {
        if (conns[i].done < 0 && conns[i].error != 0) {
            ImapGetErrorString(conns[i].error, err, sizeof err);
            fprintf(stderr, "connect %d failed: %s\n", i, err);
        }
        if (conns[i].done == 1 && user != NULL) {
            char result[128];
            if (ImapLogin(conns[i].h, IMAP_AUTH_LOGIN, user, pass) == 0 &&
                ImapCommand(conns[i].h, "NOOP", result, sizeof result) == 0)
                logged++;
        }
        if (conns[i].h != INVALID_CLIENT)
            ImapDisconnect(conns[i].h);
    }
    if (user != NULL)
        printf("%d of %d logged in and answered NOOP\n", logged, connected);
    /* every socket and every duplicate handed out went with its handle */
    if (count_fds() != fds) {
        printf("%d descriptors left open\n", count_fds() - fds);
        want = -1;
    }
    uv_loop_close(loop);
    ImapUninitialize();
    return connected == want && cut_ok == ncut && (user == NULL || logged == want) ? 0 : 1;
}
