/* test_faults.c: the connect/login/select/fetch matrix (plain, STARTTLS, IMAPS, SSH
 * tunnel, SOCKS5) under the fault layer: benign schedules and truncations and resets. */
/* Benign schedules (split, again, delay, all three) must change nothing: the message
 * comes back byte for byte in both buffer modes. A clean end or a reset at any point of
 * the dialogue is the peer going away: the call that meets it fails with
 * ST_ERROR_CONNECTION_CLOSED (API.md: "closed or reset by the peer"), in the SSH key
 * exchange and authentication and the SOCKS5 handshake too (no SSH or proxy error: the
 * server refused nothing); inside a TLS handshake it is ST_ERROR_TLS_HANDSHAKE, since
 * servers refuse a version or a cipher by closing (docs/architecture.md, test_peerdeath).
 * Each fails quickly, without leaking a descriptor or heap across repeats, and the next
 * clean connect succeeds. The points are placed from a probe of each mode's dialogue
 * (bytes in and out at the end of each call), so they follow the servers. */
#define _GNU_SOURCE
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fault_layer.h"
#include "iwtest.h"

#define TIMEOUT_S 5                /* nTimeout of every connect */
#define SLACK_MS  3000
/* What a repeat may add to the heap: ASan counts live bytes exactly (the strict check);
 * mallinfo2 also counts the chunks parked in each thread's tcache, which moved by up to
 * 9 KB between repeats of the SSH cuts here while ASan saw no change at all. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_SLACK 1024           /* a cached TLS session replaced by one of another size */
#else
#define HEAP_SLACK 32768
#endif

static iwt_dovecot dv, dvtls;
static iwt_sshd sshd;
static char ca[700];
static unsigned dante_port;
static char dante_user[64], dante_pass[64];
static char *msg_plain, *msg_tls;
static size_t msg_plain_len, msg_tls_len;

enum { M_PLAIN, M_STARTTLS, M_IMAPS, M_SSH, M_SOCKS5, M_COUNT };
static const char *const mode_name[M_COUNT] = { "plain", "starttls", "imaps", "ssh", "socks5" };

/* ---- one connection in one mode ---- */

/* Where a connect's TLS handshake stood, from its trace: a cut inside it is reported as a
 * failed handshake (docs/architecture.md: servers refuse a version or a cipher by closing). */
typedef struct tls_watch {
    int starttls_sent;             /* the client sent STARTTLS */
    int started;                   /* the handshake began before any cut */
    int done;                      /* "tls: TLSv..." was traced */
} tls_watch;

static void watch_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    tls_watch *w = param;
    fault_stats st;
    (void)h;
    if (n < 0)
        return;
    if (dir == IMAP_TRACE_SEND && n >= 9 && memmem(line, (size_t)n, " STARTTLS", 9) != NULL)
        w->starttls_sent = 1;
    else if (dir == IMAP_TRACE_RECV && w->starttls_sent && !w->started) {
        fault_stats_get(&st);
        w->started = st.fired_phase < 0;   /* the reply came whole: TLS begins next */
    } else if (dir == IMAP_TRACE_INFO && n >= 9 && strncmp(line, "tls: TLSv", 9) == 0)
        w->done = 1;
}

typedef struct conn_spec {
    IMAPCONNECTINFO     in;
    SECURITYCREDENTIALS sc;
    char                tr[300];
    const iwt_dovecot  *d;
    const char         *msg;
    size_t              msg_len;
    tls_watch           tls;
} conn_spec;

static void spec_make(conn_spec *c, int mode, unsigned seed, const char *sched)
{
    memset(c, 0, sizeof *c);
    c->sc.dwSize = sizeof c->sc;
    c->in.dwSize = sizeof c->in;
    c->in.lpszHostName = "127.0.0.1";
    c->in.nRemotePort = dv.port;
    c->in.nTimeout = TIMEOUT_S;
    c->d = &dv;
    c->msg = msg_plain;
    c->msg_len = msg_plain_len;
    snprintf(c->tr, sizeof c->tr, "fault:%u:%s", seed, sched);
    switch (mode) {
    case M_STARTTLS:
    case M_IMAPS:
        c->d = &dvtls;
        c->msg = msg_tls;
        c->msg_len = msg_tls_len;
        c->sc.lpszCAFile = ca;
        c->in.lpszHostName = "localhost";
        c->in.nRemotePort = mode == M_IMAPS ? dvtls.imaps_port : dvtls.port;
        c->in.dwOptions = mode == M_IMAPS ? IMAP_OPTION_SECURE_IMPLICIT
                                          : IMAP_OPTION_SECURE_EXPLICIT;
        c->in.lpCredentials = &c->sc;
        break;
    case M_SSH:
        c->sc = iwt_tunnel_creds(&sshd);
        c->in.dwOptions = IMAP_OPTION_TUNNEL;   /* the fault layer carries the SSH hop */
        c->in.lpCredentials = &c->sc;
        break;
    case M_SOCKS5:
        snprintf(c->tr, sizeof c->tr, "faultproxy:%u:%s;socks5:%s:%s@127.0.0.1:%u", seed,
                 sched, dante_user, dante_pass, dante_port);
        break;
    default:
        break;
    }
    c->in.lpszTransport = c->tr;
    c->in.lpTraceProc = watch_trace;
    c->in.lpParam = &c->tls;
    c->tls.started = mode == M_IMAPS;
}

/* The phases of a session, each ended by one API call. */
enum { P_CONNECT, P_LOGIN, P_SELECT, P_FETCH, P_FETCH2, P_COUNT };
static const char *const phase_name[P_COUNT] = { "connect", "login", "select",
                                                 "fetch (library buffer)",
                                                 "fetch (caller's buffer)" };

typedef struct outcome {
    int       failed_phase;        /* P_COUNT when every call succeeded */
    DWORD     error;
    int       fired_phase;         /* where the layer cut, or -1 */
    int       in_handshake;        /* the cut fell inside a TLS handshake */
    long long disconnect_ms;       /* how long ImapDisconnect took */
    long long ms;                  /* how long the failing call took */
    unsigned long long in[P_COUNT], out[P_COUNT];   /* layer bytes when each call ended */
} outcome;

static void stats_now(unsigned long long *in, unsigned long long *out)
{
    fault_stats st;
    fault_stats_get(&st);
    *in = st.bytes_in;
    *out = st.bytes_out;
}

/* Connect, login, select, fetch message 1 into a library buffer and into ours; the
 * bytes must be the message's. Stops at the first failing call. */
static outcome run_session(int mode, unsigned seed, const char *sched)
{
    conn_spec c;
    outcome o;
    HCLIENT h = INVALID_CLIENT;
    char *buf = NULL;
    DWORD len = 0;
    long long t0;
    int rc, p;

    memset(&o, 0, sizeof o);
    o.failed_phase = P_COUNT;
    spec_make(&c, mode, seed, sched);
    fault_stats_reset();
    for (p = P_CONNECT; p < P_COUNT; p++) {
        if (p != P_CONNECT)
            fault_anchor();
        t0 = iwt_now_ms();
        switch (p) {
        case P_CONNECT:
            h = ImapConnectEx(&c.in);
            rc = h == INVALID_CLIENT ? IMAP_ERROR : 0;
            break;
        case P_LOGIN:
            rc = ImapLogin(h, IMAP_AUTH_PLAIN, c.d->user, c.d->pass);
            break;
        case P_SELECT:
            rc = ImapSelectMailbox(h, "INBOX", NULL);
            break;
        case P_FETCH:
            len = 0;
            rc = ImapGetMessage(h, 1, 0, &buf, &len, 0);
            if (rc == 0) {
                ck_assert_msg(len == c.msg_len && memcmp(buf, c.msg, len) == 0,
                              "%s %s seed %u: fetched %u bytes differ from the message (%zu)",
                              mode_name[mode], sched, seed, (unsigned)len, c.msg_len);
                ImapFreeMemory(buf);
            }
            break;
        default:
            buf = calloc(1, c.msg_len + 64);
            ck_assert_ptr_nonnull(buf);
            len = (DWORD)(c.msg_len + 64);
            rc = ImapGetMessage(h, 1, 0, buf, &len, 0);
            if (rc == 0)
                ck_assert_msg(len == c.msg_len && memcmp(buf, c.msg, len) == 0,
                              "%s %s seed %u: fetched %u bytes into our buffer differ",
                              mode_name[mode], sched, seed, (unsigned)len);
            free(buf);
            break;
        }
        o.ms = iwt_now_ms() - t0;
        stats_now(&o.in[p], &o.out[p]);
        if (rc != 0) {
            o.failed_phase = p;
            o.error = ImapGetLastError();
            break;
        }
    }
    if (o.failed_phase != P_CONNECT) {
        fault_anchor();            /* phase P_COUNT: the disconnect's LOGOUT */
        t0 = iwt_now_ms();
        ImapDisconnect(h);
        o.disconnect_ms = iwt_now_ms() - t0;
    }
    {
        fault_stats st;
        fault_stats_get(&st);
        o.fired_phase = st.fired_phase;
    }
    o.in_handshake = o.fired_phase == P_CONNECT && c.tls.started && !c.tls.done;
    return o;
}

static void expect_success(int mode, unsigned seed, const char *sched)
{
    outcome o = run_session(mode, seed, sched);
    char text[128] = "";
    if (o.failed_phase != P_COUNT)
        ImapGetErrorString(o.error, text, (INT)sizeof text);
    ck_assert_msg(o.failed_phase == P_COUNT, "%s under %s seed %u: %s failed: %u (%s)",
                  mode_name[mode], sched, seed, phase_name[o.failed_phase < P_COUNT ?
                  o.failed_phase : 0], (unsigned)o.error, text);
}

/* ---- benign schedules ---- */

static const char *const benign[] = {
    "split",                       /* every read and write cut to 1 byte */
    "split=5",                     /* 1..5 bytes */
    "again%40",                    /* 40% of calls refused */
    "delay=4%15",                  /* 15% of calls held for 1..4 ms */
    "split=3+again%30+delay=3%5",
};

static void benign_mode(int mode)
{
    size_t i;
    unsigned seed;
    fault_stats st;
    long long t0 = iwt_now_ms();
    for (i = 0; i < sizeof benign / sizeof benign[0]; i++) {
        for (seed = 1; seed <= 3; seed++) {
            fault_stats_reset();
            expect_success(mode, seed * 7919u + (unsigned)i, benign[i]);
            fault_stats_get(&st);
            /* the schedule was applied, and a refusal never turned into a spin: no
             * more than a few calls per byte moved, however the refusals fell */
            ck_assert_msg(st.bytes_in > 0 && st.bytes_out > 0, "%s: no bytes through the layer",
                          mode_name[mode]);
            if (strstr(benign[i], "split") != NULL)
                ck_assert_uint_gt(st.splits, 0);
            if (strstr(benign[i], "again") != NULL || strstr(benign[i], "delay") != NULL)
                ck_assert_uint_gt(st.agains, 0);
            if (strstr(benign[i], "delay") != NULL)
                ck_assert_uint_gt(st.delays, 0);
            ck_assert_msg(st.calls <= 4 * (st.bytes_in + st.bytes_out) + 500,
                          "%s under %s: %lu layer calls for %llu bytes", mode_name[mode],
                          benign[i], st.calls, st.bytes_in + st.bytes_out);
        }
    }
    printf("faults: %s: %zu benign schedules x 3 seeds in %lld ms\n", mode_name[mode],
           sizeof benign / sizeof benign[0], iwt_now_ms() - t0);
    fflush(stdout);
}

START_TEST(benign_plain) { benign_mode(M_PLAIN); }
END_TEST
START_TEST(benign_starttls) { benign_mode(M_STARTTLS); }
END_TEST
START_TEST(benign_imaps) { benign_mode(M_IMAPS); }
END_TEST
START_TEST(benign_ssh) { benign_mode(M_SSH); }
END_TEST
START_TEST(benign_socks5) { benign_mode(M_SOCKS5); }
END_TEST

/* ---- asynchronous connects (lpEventProc) ---- */

struct async_wait {
    pthread_mutex_t lock;          /* first: the event callback's view */
    int             done;
    DWORD           error;
    tls_watch       tls;           /* the trace callback's, on the same lpParam */
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

static void async_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID p)
{
    struct async_wait *w = p;
    watch_trace(h, dir, line, n, &w->tls);
}

/* The connect runs on the library's loop thread, where a hold must be a wake-up time.
 * lpParam goes to both callbacks; the wait lives as long as the handle may call back.
 * *in_handshake (may be NULL): a cut fell inside the TLS handshake. */
static struct async_wait async_w = { PTHREAD_MUTEX_INITIALIZER, 0, 0, { 0, 0, 0 } };
static conn_spec async_c;

static DWORD async_connect(int mode, const char *sched, HCLIENT *out, int *in_handshake)
{
    int i, done = 0;
    fault_stats st;
    spec_make(&async_c, mode, 5, sched);
    async_c.in.lpTraceProc = async_trace;
    async_c.in.lpEventProc = on_connect;
    async_c.in.lpParam = &async_w;
    pthread_mutex_lock(&async_w.lock);
    async_w.done = 0;
    async_w.error = 0;
    async_w.tls = async_c.tls;
    pthread_mutex_unlock(&async_w.lock);
    fault_stats_reset();
    *out = ImapConnectEx(&async_c.in);
    if (*out == INVALID_CLIENT)
        return ImapGetLastError();
    for (i = 0; i < (TIMEOUT_S * 2000 + SLACK_MS) / 5 && !done; i++) {
        pthread_mutex_lock(&async_w.lock);
        done = async_w.done;
        pthread_mutex_unlock(&async_w.lock);
        if (!done)
            usleep(5000);
    }
    ck_assert_msg(done, "%s %s: no connect event", mode_name[mode], sched);
    fault_stats_get(&st);
    if (in_handshake != NULL)
        *in_handshake = st.fired_phase == P_CONNECT && async_w.tls.started && !async_w.tls.done;
    return async_w.error;
}

/* ImapConnectStart stepped by poll(): a held read must show as a timeout, not as a
 * ready socket the loop would spin on. Returns the connect's result; *steps counts. */
static DWORD own_loop_connect(int mode, const char *sched, int *steps, int *in_handshake)
{
    conn_spec c;
    fault_stats st;
    HCLIENT h;
    int rc = IMAP_CONNECT_PENDING;
    long long deadline = iwt_now_ms() + TIMEOUT_S * 2000 + SLACK_MS;
    spec_make(&c, mode, 11, sched);
    fault_stats_reset();
    h = ImapConnectStart(&c.in);
    ck_assert(h != INVALID_CLIENT);
    *steps = 0;
    while (rc == IMAP_CONNECT_PENDING && iwt_now_ms() < deadline && *steps < 100000) {
        IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
        struct pollfd pfd[IMAP_CONNECT_SOCKETS_MAX];
        int timeout = -1, n, i, r;
        n = ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &timeout);
        ck_assert_int_ge(n, 0);
        for (i = 0; i < n; i++) {
            pfd[i].fd = s[i].nSocket;
            pfd[i].events = (short)(((s[i].dwEvents & IMAP_SOCKET_READ) ? POLLIN : 0) |
                                    ((s[i].dwEvents & IMAP_SOCKET_WRITE) ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        r = poll(pfd, (nfds_t)n, timeout < 0 || timeout > 1000 ? 1000 : timeout);
        (*steps)++;
        if (r <= 0) {
            rc = ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0);
            continue;
        }
        for (i = 0; i < n && rc == IMAP_CONNECT_PENDING; i++)
            if (pfd[i].revents != 0)
                rc = ImapConnectAction(h, pfd[i].fd,
                                       ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) ?
                                        IMAP_SOCKET_READ : 0) |
                                       ((pfd[i].revents & POLLOUT) ? IMAP_SOCKET_WRITE : 0));
    }
    fault_stats_get(&st);
    if (in_handshake != NULL)
        *in_handshake = st.fired_phase == P_CONNECT && c.tls.started && !c.tls.done;
    if (rc == 0) {
        ImapDisconnect(h);
        return 0;
    }
    ck_assert_int_eq(rc, IMAP_ERROR);
    rc = (int)ImapGetLastError();
    ImapDisconnect(h);
    return (DWORD)rc;
}

/* ---- truncations and resets ---- */

#define MAX_POINTS 64

typedef struct point {
    unsigned long long n;          /* bytes into the phase: in (truncate), in + out (reset) */
    int                phase;      /* the call whose dialogue it cuts */
} point;

/* Points spread over each phase of the probe: at its first bytes, then at fractions of
 * it, never at its last byte (the call must need more than it gets). Small absolute
 * offsets at the start cover greetings and proxy handshakes, which are a few bytes. */
static int make_points(const unsigned long long end[P_COUNT], point *pts)
{
    static const unsigned early[] = { 0, 1, 2, 3, 5, 8, 12, 20, 40 };
    static const unsigned frac[] = { 5, 15, 30, 50, 70, 90 };   /* percent */
    unsigned long long start = 0, n, last;
    int np = 0, p;
    size_t i;
    for (p = P_CONNECT; p < P_COUNT; p++) {
        unsigned long long span = end[p] - start;
        last = ~0ull;
        for (i = 0; i < sizeof early / sizeof early[0] + sizeof frac / sizeof frac[0]; i++) {
            if (i < sizeof early / sizeof early[0]) {
                if (p != P_CONNECT && i > 2)
                    continue;      /* later phases: their start, then fractions */
                n = early[i];
            } else {
                n = span * frac[i - sizeof early / sizeof early[0]] / 100;
            }
            if (n >= span || (last != ~0ull && n <= last) || np >= MAX_POINTS)
                continue;
            pts[np].n = n;
            pts[np].phase = p;
            last = n;
            np++;
        }
        start = end[p];
    }
    return np;
}

static unsigned long cuts_in_handshake, cuts_carried;
static long long cuts_slowest_ms;   /* the slowest failing call */

/* One cut: the call whose dialogue it falls in fails, with CONNECTION_CLOSED, or with
 * TLS_HANDSHAKE when it fell inside a TLS handshake. A cut placed past the end of a phase
 * that came out shorter than the probe's (a resumed TLS session) falls at the start of
 * the next call, and is asserted there. */
static void cut_one(int mode, const char *kind, const point *pt, unsigned seed)
{
    char sched[96];
    outcome o;
    char text[128];
    DWORD want;
    snprintf(sched, sizeof sched, "%s@%d.%llu%s", kind, pt->phase, pt->n,
             seed & 1 ? "+split=4" : "");
    o = run_session(mode, seed, sched);
    ImapGetErrorString(o.error, text, (INT)sizeof text);
    ck_assert_msg(o.fired_phase == pt->phase || o.fired_phase == pt->phase + 1,
                  "%s %s: the cut fell in phase %d", mode_name[mode], sched, o.fired_phase);
    if (o.fired_phase != pt->phase)
        cuts_carried++;
    want = o.in_handshake ? ST_ERROR_TLS_HANDSHAKE : ST_ERROR_CONNECTION_CLOSED;
    cuts_in_handshake += o.in_handshake != 0;
    ck_assert_msg(o.failed_phase == o.fired_phase && o.error == want,
                  "%s %s: expected %s to fail with %u; %s failed with %u (%s)",
                  mode_name[mode], sched, phase_name[o.fired_phase], (unsigned)want,
                  o.failed_phase < P_COUNT ? phase_name[o.failed_phase] : "nothing",
                  (unsigned)o.error, text);
    if (o.ms > cuts_slowest_ms)
        cuts_slowest_ms = o.ms;
    ck_assert_msg(o.ms < TIMEOUT_S * 1000 + SLACK_MS, "%s %s: the failing call took %lld ms",
                  mode_name[mode], sched, o.ms);
}

/* The heap once the library's loop thread has finished what disconnects left it (an SSH
 * session's close can complete there a moment later): the same reading twice running. */
static size_t heap_settled(void)
{
    size_t a = iwt_heap_in_use(), b;
    int i;
    for (i = 0; i < 40; i++) {
        usleep(25000);
        b = iwt_heap_in_use();
        if (b == a)
            break;
        a = b;
    }
    return a;
}

static void cuts_mode(int mode)
{
    outcome probe;
    point pts[2][MAX_POINTS];
    unsigned long long tot[P_COUNT];
    int np[2], k, i, pass, fds0, async_cuts = 0, steps;
    long long logout_ms = 0;
    size_t heap[3];
    long long t0 = iwt_now_ms();
    static const char *const kinds[2] = { "truncate", "reset" };

    HCLIENT warm;
    /* a warm run: caches and the loop thread (its descriptors) exist before anything is
     * counted */
    ck_assert_uint_eq(async_connect(mode, "split=64%1", &warm, NULL), 0);
    ImapDisconnect(warm);
    probe = run_session(mode, 1, "split=64%1");
    ck_assert_msg(probe.failed_phase == P_COUNT, "%s: the probe failed (%u)", mode_name[mode],
                  (unsigned)probe.error);
    probe = run_session(mode, 1, "split=64%1");
    ck_assert_msg(probe.failed_phase == P_COUNT, "%s: the probe failed (%u)", mode_name[mode],
                  (unsigned)probe.error);
    cuts_in_handshake = cuts_carried = 0;
    cuts_slowest_ms = 0;
    np[0] = make_points(probe.in, pts[0]);
    for (i = 0; i < P_COUNT; i++)
        tot[i] = probe.in[i] + probe.out[i];
    np[1] = make_points(tot, pts[1]);
    fds0 = iwt_count_fds();
    heap[0] = heap_settled();
    for (pass = 0; pass < 2; pass++) {
        for (k = 0; k < 2; k++)
            for (i = 0; i < np[k]; i++) {
                cut_one(mode, kinds[k], &pts[k][i], (unsigned)(i + pass));
                ck_assert_int_eq(iwt_count_fds(), fds0);
            }
        heap[pass + 1] = heap_settled();
        /* the next clean connect in the same process succeeds */
        expect_success(mode, 99, "split=64%1");
    }
    /* a cut in the disconnect's LOGOUT: it still returns at once, and closes all */
    for (k = 0; k < 2; k++) {
        char sched[32];
        snprintf(sched, sizeof sched, "%s@%d.%d", kinds[k], P_COUNT, k);
        outcome lo = run_session(mode, 3, sched);
        ck_assert_msg(lo.failed_phase == P_COUNT && lo.fired_phase == P_COUNT,
                      "%s %s: phase %d failed, the cut fell in %d", mode_name[mode], sched,
                      lo.failed_phase, lo.fired_phase);
        ck_assert_msg(lo.disconnect_ms < SLACK_MS, "%s %s: the disconnect took %lld ms",
                      mode_name[mode], sched, lo.disconnect_ms);
        if (lo.disconnect_ms > logout_ms)
            logout_ms = lo.disconnect_ms;
        ck_assert_int_eq(iwt_count_fds(), fds0);
    }
    /* the connect's points again, connecting on the library's loop thread */
    for (k = 0; k < 2; k++)
        for (i = 0; i < np[k] && pts[k][i].phase == P_CONNECT; i++) {
            char sched[64];
            HCLIENT h;
            int in_hs = 0;
            DWORD err, want;
            snprintf(sched, sizeof sched, "%s@%llu+again%%20", kinds[k], pts[k][i].n);
            err = async_connect(mode, sched, &h, &in_hs);
            want = in_hs ? ST_ERROR_TLS_HANDSHAKE : ST_ERROR_CONNECTION_CLOSED;
            ck_assert_msg(err == want, "%s async %s: error %u, expected %u", mode_name[mode],
                          sched, (unsigned)err, (unsigned)want);
            if (h != INVALID_CLIENT)
                ImapDisconnect(h);
            /* and on the test's own poll() loop */
            err = own_loop_connect(mode, sched, &steps, &in_hs);
            want = in_hs ? ST_ERROR_TLS_HANDSHAKE : ST_ERROR_CONNECTION_CLOSED;
            ck_assert_msg(err == want, "%s own loop %s: error %u, expected %u",
                          mode_name[mode], sched, (unsigned)err, (unsigned)want);
            async_cuts++;
        }
    ck_assert_int_eq(iwt_count_fds(), fds0);
    printf("faults: %s: %d truncation and %d reset points (dialogue %llu bytes in, %llu out), "
           "2 passes in %lld ms (%lu cuts in a TLS handshake, %lu carried to the next call, "
           "slowest failing call %lld ms), %d connect cuts each asynchronous and on our "
           "own loop; disconnect cut at LOGOUT in %lld ms; heap %zu, %zu, %zu bytes\n",
           mode_name[mode], np[0], np[1], probe.in[P_FETCH2], probe.out[P_FETCH2],
           iwt_now_ms() - t0, cuts_in_handshake, cuts_carried, cuts_slowest_ms, async_cuts,
           logout_ms, heap[0], heap[1], heap[2]);
    fflush(stdout);
    /* the second pass repeats the first: nothing it allocates may stay behind */
    ck_assert_msg(heap[2] <= heap[1] + HEAP_SLACK, "%s: heap grew from %zu to %zu bytes across "
                  "a repeat", mode_name[mode], heap[1], heap[2]);
    ck_assert_int_gt(np[0], 8);
    ck_assert_int_gt(np[1], 8);
}

START_TEST(cuts_plain) { cuts_mode(M_PLAIN); }
END_TEST
START_TEST(cuts_starttls) { cuts_mode(M_STARTTLS); }
END_TEST
START_TEST(cuts_imaps) { cuts_mode(M_IMAPS); }
END_TEST
START_TEST(cuts_ssh) { cuts_mode(M_SSH); }
END_TEST
START_TEST(cuts_socks5) { cuts_mode(M_SOCKS5); }
END_TEST

/* ---- asynchronous connect (lpEventProc), and a connect driven by our own loop ---- */

START_TEST(async_rows)
{
    static const int modes[] = { M_PLAIN, M_STARTTLS, M_SSH };
    size_t i;
    int fds0;
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        HCLIENT h;
        conn_spec c;
        char *buf = NULL;
        DWORD len = 0;
        ck_assert_uint_eq(async_connect(modes[i], "split=3+again%30+delay=3%5", &h, NULL), 0);
        spec_make(&c, modes[i], 5, "");
        ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, c.d->user, c.d->pass), 0);
        ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", NULL), 0);
        ck_assert_int_eq(ImapGetMessage(h, 1, 0, &buf, &len, 0), 0);
        ck_assert(len == c.msg_len && memcmp(buf, c.msg, len) == 0);
        ImapFreeMemory(buf);
        ImapDisconnect(h);
    }
    /* a cut in the middle of the connect: the event carries the error */
    fds0 = iwt_count_fds();
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        HCLIENT h;
        ck_assert_uint_eq(async_connect(modes[i], "split=3+again%30+reset@150", &h, NULL),
                          ST_ERROR_CONNECTION_CLOSED);
        if (h != INVALID_CLIENT)
            ImapDisconnect(h);
        ck_assert_uint_eq(async_connect(modes[i], "delay=3%20+truncate@60", &h, NULL),
                          ST_ERROR_CONNECTION_CLOSED);
        if (h != INVALID_CLIENT)
            ImapDisconnect(h);
    }
    ck_assert_int_eq(iwt_count_fds(), fds0);
}
END_TEST

START_TEST(own_loop_rows)
{
    static const int modes[] = { M_PLAIN, M_IMAPS, M_SSH };
    size_t i;
    int steps;
    fault_stats st;
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        fault_stats_reset();
        ck_assert_uint_eq(own_loop_connect(modes[i], "split=3+again%30+delay=3%10", &steps,
                                           NULL), 0);
        fault_stats_get(&st);
        /* each step is a poll that returned: no more of them than calls to the layer */
        ck_assert_msg(steps <= (int)st.calls + 50, "%s: %d steps for %lu layer calls",
                      mode_name[modes[i]], steps, st.calls);
        /* 40 bytes in: the greeting, the SSH banner, or the TLS server hello */
        ck_assert_uint_eq(own_loop_connect(modes[i], "again%30+truncate@40", &steps, NULL),
                          modes[i] == M_IMAPS ? ST_ERROR_TLS_HANDSHAKE
                                              : ST_ERROR_CONNECTION_CLOSED);
    }
}
END_TEST

/* ---- setup ---- */

static char *slurp(const char *path, size_t *len)
{
    char *s = iwt_read_file(path);
    *len = strlen(s);
    return s;
}

static void setup(void)
{
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    iwt_dante_load(&dante_port, dante_user, sizeof dante_user, dante_pass, sizeof dante_pass);
    msg_plain = slurp(dv.msg1, &msg_plain_len);
    msg_tls = slurp(dvtls.msg1, &msg_tls_len);
    ck_assert(msg_plain_len > 0 && msg_tls_len > 0);
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ImapInitialize(NULL, NULL));
    ck_assert_int_eq(fault_register(getenv("IMAPWIRE_PLUGIN_PATH")), 0);
}

static void teardown(void)
{
    ImapUninitialize();
    free(msg_plain);
    free(msg_tls);
}

/* ---- one SSH session, short sends, several writers ---- */

/* libssh2 keeps the packet a short send left as the session's, and only the call that
 * began it may finish it: with every send under SSH cut short or refused now and then,
 * one handle APPENDs while four others on the same session send NOOPs. None may fail
 * (a session that died of it would fail them all). */
#define SHORT_WRITERS 4
#define SHORT_BYTES (1u << 20)
static const char *const short_sched = "split%60+again%30";

typedef struct short_writer {
    HCLIENT h;
    int     stop;                  /* atomic */
    int     noops, failed;
} short_writer;

static HCLIENT short_connect(SECURITYCREDENTIALS *sc, char *tr)
{
    IMAPCONNECTINFO in;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 20;
    /* FREETHREAD: the writers' handles are used on their own threads */
    in.dwOptions = IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD;
    in.lpCredentials = sc;
    in.lpszTransport = tr;
    return ImapConnectEx(&in);
}

static void *short_writer_run(void *arg)
{
    short_writer *w = arg;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) && w->noops < 100000) {
        if (ImapCommand(w->h, "NOOP", NULL, 0) != 0) {
            w->failed = (int)ImapGetLastError();
            break;
        }
        w->noops++;
    }
    return NULL;
}

START_TEST(ssh_shared_short_sends)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    short_writer w[SHORT_WRITERS];
    pthread_t t[SHORT_WRITERS];
    char tr[128], box[64], cmd[96], *msg;
    fault_stats st;
    HCLIENT h;
    int i, noops = 0;

    snprintf(tr, sizeof tr, "fault:11:%s", short_sched);
    fault_stats_reset();
    h = short_connect(&sc, tr);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    memset(w, 0, sizeof w);
    for (i = 0; i < SHORT_WRITERS; i++) {
        w[i].h = short_connect(&sc, tr);
        ck_assert_msg(w[i].h != INVALID_CLIENT, "writer %d: error %u", i,
                      (unsigned)ImapGetLastError());
        ck_assert_int_eq(pthread_create(&t[i], NULL, short_writer_run, &w[i]), 0);
    }
    snprintf(box, sizeof box, "shortsend-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    msg = iwt_message(SHORT_BYTES);
    iwt_append(h, box, msg, SHORT_BYTES);
    free(msg);
    for (i = 0; i < SHORT_WRITERS; i++) {
        __atomic_store_n(&w[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].failed == 0, "writer %d failed after %d NOOPs: error %d", i,
                      w[i].noops, w[i].failed);
        noops += w[i].noops;
        ImapDisconnect(w[i].h);
    }
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    ImapDisconnect(h);
    fault_stats_get(&st);
    printf("ssh_shared_short_sends: 1 MB up beside %d NOOPs; %lu calls, %lu cut short, %lu "
           "refused\n", noops, st.calls, st.splits, st.agains);
    ck_assert(st.splits > 0 && st.agains > 0);
}
END_TEST

/* FAULTS_ONLY=name[,name] runs only those tests (for chasing one row). */
#define ADD(t)                                                                     \
    do {                                                                           \
        const char *only_ = getenv("FAULTS_ONLY");                                 \
        if (only_ == NULL || strstr(only_, #t) != NULL)                            \
            tcase_add_test(tc, t);                                                 \
    } while (0)

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    ADD(benign_plain);
    ADD(benign_starttls);
    ADD(benign_imaps);
    ADD(benign_ssh);
    ADD(benign_socks5);
    ADD(cuts_plain);
    ADD(cuts_starttls);
    ADD(cuts_imaps);
    ADD(cuts_ssh);
    ADD(cuts_socks5);
    ADD(async_rows);
    ADD(own_loop_rows);
    ADD(ssh_shared_short_sends);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
