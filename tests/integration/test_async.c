/* test_async.c: asynchronous connects on the library's one loop thread: many at once
 * against Dovecot, events with the right errors, calls while pending, cancellation. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "epoll_watch.h"
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

typedef struct events {
    int      count;                /* atomic */
    int      failed;               /* atomic */
    DWORD    last_error;
    DWORD    thread;
} events;

static void on_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    events *e = param;
    (void)h;
    if (id != IMAP_EVENT_CONNECT)
        return;
    e->last_error = err;
    e->thread = ImapGetCurrentThreadId();
    if (err != 0)
        __atomic_add_fetch(&e->failed, 1, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&e->count, 1, __ATOMIC_ACQ_REL);
}

static int wait_events(events *e, int n, long long ms)
{
    long long until = iwt_now_ms() + ms;
    while (__atomic_load_n(&e->count, __ATOMIC_ACQUIRE) < n && iwt_now_ms() < until)
        usleep(2000);
    return __atomic_load_n(&e->count, __ATOMIC_ACQUIRE);
}

/* Many connects at once from one thread; the loop thread carries them all. */
START_TEST(many_at_once)
{
    static HCLIENT h[1000];
    struct rlimit rl;
    events e;
    int n = 1000, i, fds;
    long long t0, took;

    /* each connect holds a socket: make room for them under the fd limit */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
        rl.rlim_cur = 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < n + 200)
        n = (int)rl.rlim_cur - 200;
    memset(&e, 0, sizeof e);
    fds = iwt_count_fds();
    t0 = iwt_now_ms();
    for (i = 0; i < n; i++) {
        h[i] = ImapAsyncConnect(dv.host, dv.port, 20, IMAP_OPTION_NONE, NULL, on_event, &e);
        ck_assert_msg(h[i] != INVALID_CLIENT, "async connect %d: error %u", i,
                      (unsigned)ImapGetLastError());
    }
    ck_assert_int_eq(wait_events(&e, n, 30000), n);
    took = iwt_now_ms() - t0;
    printf("async: %d connects ready in %lld ms on one loop thread\n", n, took);
    ck_assert_int_eq(e.failed, 0);
    ck_assert_uint_ne(e.thread, ImapGetCurrentThreadId());
    /* ready handles are ordinary ones, owned by the thread that made them */
    for (i = 0; i < n; i += 100) {
        ck_assert_int_eq(ImapLogin(h[i], IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert_int_eq(ImapCommand(h[i], "NOOP", NULL, 0), 0);
    }
    for (i = 0; i < n; i++)
        ck_assert_int_eq(ImapDisconnect(h[i]), 0);
    /* the loop thread's own wake-up and epoll descriptors stay until the last
     * ImapUninitialize */
    ck_assert_int_le(iwt_count_fds(), fds + 2);
}
END_TEST

START_TEST(failures_are_events)
{
    iwt_fixture f;
    events e;
    HCLIENT h;
    long long t0;

    /* a silent server: the event carries the timeout, on time */
    iwt_fixture_start(&f, "silent", 4);
    memset(&e, 0, sizeof e);
    t0 = iwt_now_ms();
    h = ImapAsyncConnect("127.0.0.1", f.port, 1, IMAP_OPTION_NONE, NULL, on_event, &e);
    ck_assert(h != INVALID_CLIENT);
    /* while it runs, the handle answers "in progress" */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_IN_PROGRESS);
    ck_assert_int_eq(wait_events(&e, 1, 5000), 1);
    ck_assert_uint_eq(e.last_error, ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_int_lt(iwt_now_ms() - t0, 2500);
    /* afterwards the handle is a failed one until it is disconnected */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);

    /* a BYE greeting */
    iwt_fixture_start(&f, "bye", 4);
    memset(&e, 0, sizeof e);
    h = ImapAsyncConnect("127.0.0.1", f.port, 5, IMAP_OPTION_NONE, NULL, on_event, &e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_events(&e, 1, 5000), 1);
    ck_assert_uint_eq(e.last_error, ST_ERROR_SERVER_REJECTED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);

    /* nobody listening */
    memset(&e, 0, sizeof e);
    h = ImapAsyncConnect("127.0.0.1", f.port, 5, IMAP_OPTION_NONE, NULL, on_event, &e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_events(&e, 1, 5000), 1);
    ck_assert_uint_eq(e.last_error, ST_ERROR_CONNECTION_REFUSED);
    ck_assert_int_eq(ImapDisconnect(h), 0);

    /* arguments are still checked at once */
    ck_assert(ImapAsyncConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_NONE, NULL, NULL, NULL)
              == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

/* Disconnecting a connect that is still running abandons it: no event comes later. */
START_TEST(cancel_while_pending)
{
    iwt_fixture f;
    events e;
    HCLIENT h;
    int fds;

    iwt_fixture_start(&f, "silent", 4);
    memset(&e, 0, sizeof e);
    fds = iwt_count_fds();
    h = ImapAsyncConnect("127.0.0.1", f.port, 1, IMAP_OPTION_NONE, NULL, on_event, &e);
    ck_assert(h != INVALID_CLIENT);
    usleep(100000);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(wait_events(&e, 1, 2000), 0);
    ck_assert_int_le(iwt_count_fds(), fds + 2);   /* the loop's eventfd and epoll fd */
    iwt_fixture_stop(&f);
}
END_TEST

/* The event may free the handle itself. */
static void disconnect_in_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    events *e = param;
    (void)id;
    e->last_error = err;
    e->thread = (DWORD)ImapDisconnect(h);
    __atomic_add_fetch(&e->count, 1, __ATOMIC_ACQ_REL);
}

START_TEST(disconnect_inside_event)
{
    events e;
    HCLIENT h;
    memset(&e, 0, sizeof e);
    h = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_FREETHREAD, NULL, disconnect_in_event, &e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_events(&e, 1, 5000), 1);
    ck_assert_uint_eq(e.last_error, 0);
    ck_assert_uint_eq(e.thread, 0);            /* ImapDisconnect returned 0 */
    ck_assert_int_eq(ImapDisconnect(h), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
}
END_TEST

/* An event that disconnects another handle whose connect is still pending: the loop must
 * not step, poll or free that connect's task under its own feet (it used to free it
 * while walking its task list: a use-after-free under ASan). */
typedef struct cross {
    HCLIENT other;
    int     rc;                    /* ImapDisconnect(other) in the event */
    int     count;                 /* atomic */
} cross;

static void disconnect_other(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    cross *x = param;
    (void)h;
    (void)id;
    (void)err;
    x->rc = ImapDisconnect(x->other);
    __atomic_add_fetch(&x->count, 1, __ATOMIC_ACQ_REL);
}

START_TEST(event_disconnects_pending_other)
{
    iwt_fixture silent;
    events e;
    int round;

    iwt_fixture_start(&silent, "silent", 100);
    for (round = 0; round < 20; round++) {
        cross x;
        HCLIENT a;
        memset(&x, 0, sizeof x);
        memset(&e, 0, sizeof e);
        /* b waits on a silent server; a's event (Dovecot answers at once) cancels it */
        x.other = ImapAsyncConnect("127.0.0.1", silent.port, 10, IMAP_OPTION_FREETHREAD, NULL,
                                   on_event, &e);
        ck_assert(x.other != INVALID_CLIENT);
        a = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_FREETHREAD, NULL,
                             disconnect_other, &x);
        ck_assert(a != INVALID_CLIENT);
        {
            long long until = iwt_now_ms() + 5000;
            while (__atomic_load_n(&x.count, __ATOMIC_ACQUIRE) == 0 && iwt_now_ms() < until)
                usleep(1000);
        }
        ck_assert_int_eq(__atomic_load_n(&x.count, __ATOMIC_ACQUIRE), 1);
        ck_assert_int_eq(x.rc, 0);
        ck_assert_int_eq(ImapDisconnect(a), 0);
        /* the cancelled connect never reports */
        ck_assert_int_eq(wait_events(&e, 1, 50), 0);
    }
    iwt_fixture_stop(&silent);
}
END_TEST

/* ImapDisconnect from this thread races the event on the loop thread: whichever wins,
 * no event starts after ImapDisconnect has returned, and lpParam is never touched after
 * (it is poisoned, then freed, right after the call). */
typedef struct racer {
    int disconnected;              /* atomic: set once ImapDisconnect returned */
    int late;                      /* atomic: events that started after that */
    int magic;
} racer;

static int race_late_total;        /* atomic */

static void race_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    racer *r = param;
    (void)h;
    (void)id;
    (void)err;
    if (r->magic != 0x5eed || __atomic_load_n(&r->disconnected, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&race_late_total, 1, __ATOMIC_ACQ_REL);
}

START_TEST(disconnect_races_event)
{
    int round, spin;
    for (round = 0; round < 1000; round++) {
        racer *r = calloc(1, sizeof *r);
        HCLIENT h;
        ck_assert_ptr_nonnull(r);
        r->magic = 0x5eed;
        h = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL, race_event, r);
        ck_assert(h != INVALID_CLIENT);
        /* vary the moment: from at once to after the connect has most likely finished */
        for (spin = 0; spin < (round % 50) * 200; spin++)
            __asm__ volatile("" ::: "memory");
        if (round % 7 == 0)
            usleep((unsigned)(round % 3) * 500);
        ck_assert_int_eq(ImapDisconnect(h), 0);
        __atomic_store_n(&r->disconnected, 1, __ATOMIC_RELEASE);
        r->magic = 0;
        free(r);
    }
    ck_assert_int_eq(__atomic_load_n(&race_late_total, __ATOMIC_ACQUIRE), 0);
}
END_TEST

/* ImapDisconnect from inside an event runs on the loop thread, which must never wait:
 * LOGOUT goes out, but a server that never answers it (slow-logout) costs nothing
 * (it used to hold the loop for min(nTimeout, 3 s)). */
typedef struct timed {
    long long took_ms;
    int       rc;
    int       count;               /* atomic */
} timed;

static void disconnect_timed(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    timed *t = param;
    long long t0 = iwt_now_ms();
    (void)id;
    (void)err;
    t->rc = ImapDisconnect(h);
    t->took_ms = iwt_now_ms() - t0;
    __atomic_add_fetch(&t->count, 1, __ATOMIC_ACQ_REL);
}

START_TEST(disconnect_in_event_does_not_wait)
{
    iwt_fixture f;
    timed t;
    HCLIENT h;
    char *log;
    long long until;

    iwt_fixture_start(&f, "slow-logout", 2);
    memset(&t, 0, sizeof t);
    h = ImapAsyncConnect("127.0.0.1", f.port, 5, IMAP_OPTION_FREETHREAD, NULL,
                         disconnect_timed, &t);
    ck_assert(h != INVALID_CLIENT);
    until = iwt_now_ms() + 10000;
    while (__atomic_load_n(&t.count, __ATOMIC_ACQUIRE) == 0 && iwt_now_ms() < until)
        usleep(1000);
    ck_assert_int_eq(__atomic_load_n(&t.count, __ATOMIC_ACQUIRE), 1);
    ck_assert_int_eq(t.rc, 0);
    /* a tenth of the 3 s it used to hold the loop, on a loaded 2-core machine */
    ck_assert_msg(t.took_ms < 300, "ImapDisconnect in the event took %lld ms", t.took_ms);
    /* still polite: the server got its LOGOUT */
    until = iwt_now_ms() + 3000;
    for (;;) {
        log = iwt_read_file(f.log);
        if (strstr(log, "LOGOUT") != NULL || iwt_now_ms() >= until)
            break;
        free(log);
        usleep(10000);
    }
    ck_assert_msg(strstr(log, "LOGOUT") != NULL, "no LOGOUT:\n%s", log);
    free(log);
    iwt_fixture_stop(&f);
}
END_TEST

/* ImapUninitialize with many connects in flight: it returns, every handle is gone, and
 * no event starts after it has returned (ASan's leak check covers what it frees). */
static int uninit_done;            /* atomic */
static int uninit_late;            /* atomic */

static void uninit_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    (void)h;
    (void)id;
    (void)err;
    (void)param;
    if (__atomic_load_n(&uninit_done, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&uninit_late, 1, __ATOMIC_ACQ_REL);
}

START_TEST(uninitialize_with_connects_in_flight)
{
    static HCLIENT h[1000];
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    struct rlimit rl;
    int lfd, i, n = 1000, fds;

    /* a listener that never accepts: connects complete in the kernel and then wait for
     * a greeting that never comes */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2600 && rl.rlim_max >= 2600) {
        rl.rlim_cur = 2600;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 4096), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    fds = iwt_count_fds();
    for (i = 0; i < n; i++) {
        h[i] = ImapAsyncConnect("127.0.0.1", ntohs(sa.sin_port), 30, IMAP_OPTION_NONE, NULL,
                                uninit_event, NULL);
        ck_assert_msg(h[i] != INVALID_CLIENT, "connect %d: error %u", i,
                      (unsigned)ImapGetLastError());
    }
    usleep(200000);                 /* most are now waiting for their greeting */
    ck_assert(ImapUninitialize());
    __atomic_store_n(&uninit_done, 1, __ATOMIC_RELEASE);
    usleep(300000);
    ck_assert_int_eq(__atomic_load_n(&uninit_late, __ATOMIC_ACQUIRE), 0);
    /* every connection and the loop's own descriptors are gone */
    ck_assert_int_le(iwt_count_fds(), fds);
    ck_assert(ImapInitialize(NULL, NULL));   /* for teardown */
    ck_assert_int_eq(ImapDisconnect(h[0]), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    close(lfd);
}
END_TEST

/* IMAP_EVENT_DISCONNECT: after a successful connect the library watches the idle
 * connection and reports, once, a server that goes away while no call runs. */
typedef struct watch {
    int   connects, disconnects;   /* atomic */
    DWORD disc_error;
    int   after_disconnect;        /* atomic: events once ImapDisconnect returned */
    int   disconnected;            /* atomic */
} watch;

static void on_watch(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    watch *w = param;
    (void)h;
    if (__atomic_load_n(&w->disconnected, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&w->after_disconnect, 1, __ATOMIC_ACQ_REL);
    if (id == IMAP_EVENT_CONNECT)
        __atomic_add_fetch(&w->connects, 1, __ATOMIC_ACQ_REL);
    else if (id == IMAP_EVENT_DISCONNECT) {
        w->disc_error = err;
        __atomic_add_fetch(&w->disconnects, 1, __ATOMIC_ACQ_REL);
    }
}

static int wait_count(int *counter, int n, long long ms)
{
    long long until = iwt_now_ms() + ms;
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < n && iwt_now_ms() < until)
        usleep(2000);
    return __atomic_load_n(counter, __ATOMIC_ACQUIRE);
}

/* A watched handle to a fixture of the given scenario, connected, after one NOOP. */
static HCLIENT watched_after_noop(iwt_fixture *f, const char *scenario, watch *w)
{
    HCLIENT h;
    iwt_fixture_start(f, scenario, 2);
    memset(w, 0, sizeof *w);
    h = ImapAsyncConnect("127.0.0.1", f->port, 5, IMAP_OPTION_NONE, NULL, on_watch, w);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_count(&w->connects, 1, 5000), 1);
    /* a call while watched works, and its answer is the call's, not the watcher's */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    return h;
}

START_TEST(disconnect_event_on_bye)
{
    iwt_fixture f;
    watch w;
    HCLIENT h = watched_after_noop(&f, "idle-bye", &w);

    ck_assert_int_eq(wait_count(&w.disconnects, 1, 5000), 1);
    ck_assert_uint_eq(w.disc_error, ST_ERROR_CONNECTION_CLOSED);
    /* once only, and the handle stays valid until ImapDisconnect */
    usleep(100000);
    ck_assert_int_eq(__atomic_load_n(&w.disconnects, __ATOMIC_ACQUIRE), 1);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* The parent pid of pid from /proc, 0 when unknown. */
static long parent_of(long pid)
{
    char path[64], line[128];
    long ppid = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "PPid: %ld", &ppid) == 1)
            break;
    fclose(f);
    return ppid;
}

/* Our end's local port of the one TCP connection this process has to the server's port. */
static unsigned our_port_to(unsigned server_port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    unsigned found = 0, n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || getpeername(fd, (struct sockaddr *)&a, &len) != 0 ||
            a.sin_family != AF_INET || ntohs(a.sin_port) != server_port)
            continue;
        len = sizeof a;
        if (getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
            found = ntohs(a.sin_port);
            n++;
        }
    }
    closedir(d);
    ck_assert_msg(n == 1, "%u connections to port %u", n, server_port);
    return found;
}

/* The socket inode of the server's end of the loopback connection server_port <-> port. */
static unsigned long server_inode(unsigned server_port, unsigned port)
{
    char line[512];
    unsigned long inode = 0;
    FILE *f = fopen("/proc/net/tcp", "r");
    ck_assert_ptr_nonnull(f);
    while (inode == 0 && fgets(line, sizeof line, f) != NULL) {
        unsigned lport, rport;
        unsigned long ino;
        if (sscanf(line, " %*d: %*8x:%x %*8x:%x %*x %*x:%*x %*x:%*x %*x %*d %*d %lu",
                   &lport, &rport, &ino) == 3 && lport == server_port && rport == port)
            inode = ino;
    }
    fclose(f);
    ck_assert_msg(inode != 0, "no socket 127.0.0.1:%u -> :%u in /proc/net/tcp", server_port, port);
    return inode;
}

/* The "imap" child of this suite's Dovecot master that holds the server's end of our one
 * connection: found by its socket, not by being new, since other suites' sessions on the
 * same Dovecot come and go while this runs. */
static long imap_pid_serving(unsigned server_port)
{
    char master_text[32], want[48];
    long master, victim = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    iwt_env_value(getenv("IW_DOVECOT_ENV"), "DOVECOT_PID", master_text, sizeof master_text);
    master = strtol(master_text, NULL, 10);
    ck_assert_msg(master > 0, "no DOVECOT_PID in $IW_DOVECOT_ENV");
    snprintf(want, sizeof want, "socket:[%lu]", server_inode(server_port, our_port_to(server_port)));
    ck_assert_ptr_nonnull(d);
    while (victim == 0 && (e = readdir(d)) != NULL) {
        char path[64], comm[32] = "";
        long pid = strtol(e->d_name, NULL, 10);
        DIR *fds;
        struct dirent *fe;
        FILE *f;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(comm, sizeof comm, f) == NULL || strcmp(comm, "imap\n") != 0 ||
            parent_of(pid) != master) {
            fclose(f);
            continue;
        }
        fclose(f);
        snprintf(path, sizeof path, "/proc/%ld/fd", pid);
        fds = opendir(path);
        while (fds != NULL && victim == 0 && (fe = readdir(fds)) != NULL) {
            char link[400], target[64];
            ssize_t n;
            snprintf(link, sizeof link, "%s/%s", path, fe->d_name);
            n = readlink(link, target, sizeof target - 1);
            if (n > 0) {
                target[n] = '\0';
                if (strcmp(target, want) == 0)
                    victim = pid;
            }
        }
        if (fds != NULL)
            closedir(fds);
    }
    closedir(d);
    return victim;
}

START_TEST(disconnect_event_when_imap_killed)
{
    watch w;
    HCLIENT h;
    long victim;

    memset(&w, 0, sizeof w);
    h = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL, on_watch, &w);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_count(&w.connects, 1, 5000), 1);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    victim = imap_pid_serving(dv.port);
    ck_assert_msg(victim > 0, "no imap process holds our connection");
    ck_assert_int_eq(kill((pid_t)victim, SIGKILL), 0);
    ck_assert_int_eq(wait_count(&w.disconnects, 1, 5000), 1);
    ck_assert_uint_eq(w.disc_error, ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* The BYE came in the same read as the call's tagged answer, so the call's read took it
 * off the socket: the watcher must look at what is already read, not only the socket. */
START_TEST(disconnect_event_on_bye_already_read)
{
    iwt_fixture f;
    watch w;
    HCLIENT h = watched_after_noop(&f, "bye-behind-ok", &w);
    long long t0 = iwt_now_ms();

    /* the server keeps the connection open for 5 s: an event before then saw the BYE */
    ck_assert_msg(wait_count(&w.disconnects, 1, 2000) == 1, "no event %lld ms after the BYE",
                  iwt_now_ms() - t0);
    ck_assert_uint_eq(w.disc_error, ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* A watched idle connection with nothing to read costs no wake-ups: the watcher's look
 * at what is already read must not turn into a spin. */
START_TEST(idle_watch_does_not_spin)
{
    iwt_fixture f;
    watch w;
    HCLIENT h = watched_after_noop(&f, "normal", &w);
    IMAPLOOPSTATS a, b;

    usleep(100000);
    a.dwSize = b.dwSize = sizeof a;
    ck_assert(ImapGetLoopStatistics(&a, FALSE));
    usleep(1000000);
    ck_assert(ImapGetLoopStatistics(&b, FALSE));
    ck_assert_msg(b.dwTurns - a.dwTurns < 10, "%u loop turns in 1 s idle",
                  (unsigned)(b.dwTurns - a.dwTurns));
    ck_assert_int_eq(__atomic_load_n(&w.disconnects, __ATOMIC_ACQUIRE), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* ImapDisconnect right after the DISCONNECT event, with no other call between: the loop
 * is still ending the watcher's task (taking its socket out of epoll, held there 30 ms
 * here) when the event is seen, and the socket must not be closed under it (TSan once saw
 * the close race the loop's epoll_ctl). Five rounds on one fixture. */
START_TEST(disconnect_just_after_disconnect_event)
{
    iwt_fixture f;
    int round;

    iwt_fixture_start(&f, "idle-bye", 5);
    iwt_epoll_reset();
    for (round = 0; round < 5; round++) {
        watch w;
        HCLIENT h;
        memset(&w, 0, sizeof w);
        h = ImapAsyncConnect("127.0.0.1", f.port, 5, IMAP_OPTION_NONE, NULL, on_watch, &w);
        ck_assert(h != INVALID_CLIENT);
        ck_assert_int_eq(wait_count(&w.connects, 1, 5000), 1);
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);   /* the BYE comes in 300 ms */
        iwt_epoll_slow(30);
        ck_assert_msg(wait_count(&w.disconnects, 1, 5000) == 1, "round %d: no event", round);
        ck_assert_int_eq(ImapDisconnect(h), 0);
        iwt_epoll_slow(0);
        ck_assert_uint_eq(w.disc_error, ST_ERROR_CONNECTION_CLOSED);
    }
    iwt_fixture_stop(&f);
    ck_assert_msg(iwt_epoll_raced() == 0,
                  "%d descriptors closed while the loop took them out of epoll",
                  iwt_epoll_raced());
}
END_TEST

/* The same from inside each event, on the loop thread (FREETHREAD): the handle's socket
 * is closed in the callback, so the loop must have let go of it before calling. */
static void disconnect_on_disconnect_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    watch *w = param;
    if (id == IMAP_EVENT_DISCONNECT)
        w->disc_error = err | (ImapDisconnect(h) == 0 ? 0 : 0x80000000u);
    __atomic_add_fetch(id == IMAP_EVENT_CONNECT ? &w->connects : &w->disconnects, 1,
                       __ATOMIC_ACQ_REL);
}

START_TEST(disconnect_inside_events_after_unwatch)
{
    iwt_fixture f;
    events e;
    watch w;
    HCLIENT h;

    iwt_epoll_reset();
    /* inside the connect event */
    memset(&e, 0, sizeof e);
    iwt_epoll_slow(5);
    h = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_FREETHREAD, NULL, disconnect_in_event, &e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_events(&e, 1, 5000), 1);
    ck_assert_uint_eq(e.thread, 0);
    usleep(50000);                 /* the loop ends the task after the event */
    iwt_epoll_slow(0);
    ck_assert_int_eq(iwt_epoll_closed(), 0);
    /* inside the disconnect event */
    iwt_fixture_start(&f, "idle-bye", 2);
    memset(&w, 0, sizeof w);
    h = ImapAsyncConnect("127.0.0.1", f.port, 5, IMAP_OPTION_FREETHREAD, NULL,
                         disconnect_on_disconnect_event, &w);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_count(&w.connects, 1, 5000), 1);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);   /* the BYE comes in 300 ms */
    iwt_epoll_slow(5);
    ck_assert_int_eq(wait_count(&w.disconnects, 1, 5000), 1);
    usleep(50000);
    iwt_epoll_slow(0);
    ck_assert_uint_eq(w.disc_error, ST_ERROR_CONNECTION_CLOSED);   /* and it returned 0 */
    ck_assert_int_eq(iwt_epoll_closed(), 0);
    ck_assert_int_eq(iwt_epoll_raced(), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* From another thread right after the connect event: the event may still be running, or
 * the task watching; either way the disconnect waits for the loop to let go. */
START_TEST(disconnect_just_after_connect_event)
{
    int round;

    iwt_epoll_reset();
    for (round = 0; round < 5; round++) {
        watch w;
        HCLIENT h;
        memset(&w, 0, sizeof w);
        iwt_epoll_slow(30);
        h = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL, on_watch, &w);
        ck_assert(h != INVALID_CLIENT);
        ck_assert_int_eq(wait_count(&w.connects, 1, 5000), 1);
        ck_assert_int_eq(ImapDisconnect(h), 0);
        iwt_epoll_slow(0);
    }
    ck_assert_int_eq(iwt_epoll_raced(), 0);
}
END_TEST

/* No event of any kind after ImapDisconnect has returned, with the watcher running. */
START_TEST(no_disconnect_event_after_disconnect)
{
    iwt_fixture f;
    watch w;
    HCLIENT h;

    iwt_fixture_start(&f, "idle-bye", 2);
    memset(&w, 0, sizeof w);
    h = ImapAsyncConnect("127.0.0.1", f.port, 5, IMAP_OPTION_NONE, NULL, on_watch, &w);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_count(&w.connects, 1, 5000), 1);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);   /* the BYE comes in 300 ms */
    ck_assert_int_eq(ImapDisconnect(h), 0);
    __atomic_store_n(&w.disconnected, 1, __ATOMIC_RELEASE);
    usleep(600000);
    ck_assert_int_eq(__atomic_load_n(&w.after_disconnect, __ATOMIC_ACQUIRE), 0);
    ck_assert_int_eq(__atomic_load_n(&w.disconnects, __ATOMIC_ACQUIRE), 0);
    iwt_fixture_stop(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("async");
    TCase *tc = tcase_create("async");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, many_at_once);
    tcase_add_test(tc, failures_are_events);
    tcase_add_test(tc, cancel_while_pending);
    tcase_add_test(tc, disconnect_inside_event);
    tcase_add_test(tc, event_disconnects_pending_other);
    tcase_add_test(tc, disconnect_races_event);
    tcase_add_test(tc, disconnect_in_event_does_not_wait);
    tcase_add_test(tc, uninitialize_with_connects_in_flight);
    tcase_add_test(tc, disconnect_event_on_bye);
    tcase_add_test(tc, disconnect_event_on_bye_already_read);
    tcase_add_test(tc, idle_watch_does_not_spin);
    tcase_add_test(tc, disconnect_event_when_imap_killed);
    tcase_add_test(tc, no_disconnect_event_after_disconnect);
    tcase_add_test(tc, disconnect_just_after_disconnect_event);
    tcase_add_test(tc, disconnect_inside_events_after_unwatch);
    tcase_add_test(tc, disconnect_just_after_connect_event);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
