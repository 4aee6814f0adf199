/* test_peerdeath_real.c: real Dovecot, sshd, Dante and tinyproxy stopped (SIGSTOP) or killed
 * (SIGKILL) at each phase of a session: the right error in time, and the next session works. */
/* The suite starts private instances of the four servers (the harness scripts, in
 * IW_TMPDIR/peerdeath) and only ever signals those and their children. The signal is sent
 * from inside the client at the phase: a filter layer under the connection (right after
 * the TCP connect), the trace callback (before a command's bytes are queued; library notes
 * for the SSH and proxy handshakes) or the streaming fetch's callback (a megabyte into a
 * 24 MB literal). The whole server tree is stopped first, so nothing it does after the
 * signal is sent can race the test; for the kill cases it is then killed and started again
 * with the same configuration and port. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <imapwire/transport.h>
#include "iwtest.h"

#define TIMEOUT_S 2
/* a stopped peer must be noticed after the timeout and not much later */
#define STOP_BOUND_MS (TIMEOUT_S * 1000 + 2000)
/* a dead peer is noticed at once */
#define KILL_BOUND_MS 1500
#define BIG_SIZE (24u << 20)
#define BIG_TRIGGER (1u << 20)

enum { S_DOVECOT, S_SSHD, S_DANTE, S_TINY, S_COUNT };

/* A private server instance: where its pid file is and how to start it again. */
typedef struct server {
    const char *name;
    char dir[512];
    char pidfile[560];
    char revive[2400];     /* shell command: the daemon again with the same configuration */
    unsigned port;
} server;

static server srv[S_COUNT];
static iwt_dovecot dv;
static iwt_sshd sshd;
static char dante_user[64], dante_pass[64];
static char *msg1;
static size_t msg1_len;

/* ---- process trees ---- */

/* State letter and parent of pid from /proc, or 0 when it is gone. */
static char proc_state(pid_t pid, pid_t *ppid)
{
    char path[64], buf[512], *rp;
    char st = 0;
    int p = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof buf, f) != NULL && (rp = strrchr(buf, ')')) != NULL &&
        sscanf(rp + 1, " %c %d", &st, &p) != 2)
        st = 0;
    fclose(f);
    if (ppid != NULL)
        *ppid = p;
    return st;
}

/* root and every live descendant, root first; returns the count. */
static int tree(pid_t root, pid_t *out, int max)
{
    pid_t all[4096], par[4096];
    int n = 0, count = 0, i, j, grew;
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < 4096) {
        pid_t pid = (pid_t)atoi(e->d_name), pp;
        char st;
        if (pid <= 0)
            continue;
        st = proc_state(pid, &pp);
        if (st == 0 || st == 'Z' || st == 'X')
            continue;
        all[n] = pid;
        par[n++] = pp;
    }
    closedir(d);
    if (proc_state(root, NULL) == 0)
        return 0;
    out[count++] = root;
    /* bounded: each pass adds at least one or ends */
    do {
        grew = 0;
        for (i = 0; i < n; i++) {
            int known = 0, parent_in = 0;
            for (j = 0; j < count; j++) {
                if (out[j] == all[i])
                    known = 1;
                if (out[j] == par[i])
                    parent_in = 1;
            }
            if (!known && parent_in && count < max) {
                out[count++] = all[i];
                grew = 1;
            }
        }
    } while (grew);
    return count;
}

static pid_t server_pid(const server *s)
{
    char buf[32] = "";
    FILE *f = fopen(s->pidfile, "r");
    pid_t pid;
    char st;
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof buf, f) == NULL)
        buf[0] = '\0';
    fclose(f);
    pid = (pid_t)atoi(buf);
    if (pid <= 0)
        return 0;
    st = proc_state(pid, NULL);
    return st == 0 || st == 'Z' || st == 'X' ? 0 : pid;
}

/* Stops the whole tree: root first, so it forks nothing new, then its descendants, until
 * every one is seen stopped (bounded). */
static void stop_tree(pid_t root)
{
    pid_t t[256];
    int round, n, i, all;
    long long until = iwt_now_ms() + 3000;
    for (round = 0; round < 50; round++) {
        n = tree(root, t, 256);
        all = 1;
        for (i = 0; i < n; i++) {
            char st = proc_state(t[i], NULL);
            if (st != 'T' && st != 't' && st != 0 && st != 'Z') {
                kill(t[i], SIGSTOP);
                all = 0;
            }
        }
        if (all)
            return;
        ck_assert_msg(iwt_now_ms() < until, "process tree of %d did not stop", (int)root);
        usleep(2000);
    }
    ck_abort_msg("process tree of %d kept changing", (int)root);
}

static void cont_tree(pid_t root)
{
    pid_t t[256];
    int n = tree(root, t, 256), i;
    for (i = 0; i < n; i++)
        kill(t[i], SIGCONT);
}

/* Stopped first, then killed: gone (or a zombie, whose sockets are closed) on return. */
static void kill_tree(pid_t root)
{
    pid_t t[256];
    int n, i;
    long long until = iwt_now_ms() + 5000;
    stop_tree(root);
    n = tree(root, t, 256);
    for (i = 0; i < n; i++)
        kill(t[i], SIGKILL);
    for (i = 0; i < n; i++) {
        char st;
        while ((st = proc_state(t[i], NULL)) != 0 && st != 'Z' && st != 'X') {
            ck_assert_msg(iwt_now_ms() < until, "%d survived SIGKILL", (int)t[i]);
            usleep(2000);
        }
    }
}

/* Back to serving: resumed if stopped, started again (same configuration and port) if
 * dead. Bounded. */
static void heal(server *s)
{
    pid_t pid = server_pid(s);
    long long until;
    if (pid > 0) {
        cont_tree(pid);
        return;
    }
    unlink(s->pidfile);
    ck_assert_msg(system(s->revive) == 0, "%s: %s failed", s->name, s->revive);
    until = iwt_now_ms() + 10000;
    while (server_pid(s) == 0 || !iwt_port_listening(s->port)) {
        ck_assert_msg(iwt_now_ms() < until, "%s did not come back on port %u", s->name,
                      s->port);
        usleep(10000);
    }
}

/* ---- the trigger ---- */

enum { T_CONNECTED, T_TRACE, T_BYTES, T_RECV };
enum { A_STOP, A_KILL };

static struct {
    int          kind;
    char         dir;       /* T_TRACE: '>' sent, '<' received, '-' library note */
    const char  *match;     /* T_TRACE: a substring of the line */
    server      *target;
    int          action;
    int          armed, fired, prestopped;
    long long    fired_ms;
    size_t       bytes;     /* T_BYTES: body bytes seen; T_RECV: bytes read by the filter */
    int          counting;  /* T_RECV: the fetch has begun */
} trig;

static trace_log tlog;

static void fire(void)
{
    pid_t pid;
    if (!trig.armed || trig.fired)
        return;
    trig.fired = 1;
    pid = server_pid(trig.target);
    ck_assert_msg(pid > 0, "%s is not running", trig.target->name);
    if (trig.action == A_STOP)
        stop_tree(pid);
    else
        kill_tree(pid);
    trig.fired_ms = iwt_now_ms();
}

static void on_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    char d = dir == IMAP_TRACE_SEND ? '>' : dir == IMAP_TRACE_RECV ? '<' : '-';
    trace_cb(h, dir, line, n, param);
    if (trig.armed && trig.kind == T_TRACE && d == trig.dir && n > 0 &&
        memmem(line, (size_t)n, trig.match, strlen(trig.match)) != NULL)
        fire();
}

static void on_body(HCLIENT h, const VOID *data, DWORD len, LPVOID param)
{
    (void)h;
    (void)data;
    (void)param;
    trig.bytes += len;
    if (trig.armed && trig.kind == T_BYTES && trig.bytes >= BIG_TRIGGER)
        fire();
}

/* A filter with nothing but a connect slot: it sees the connect begin and the moment the
 * connection below it is up, before a byte of IMAP or SSH has crossed it. The server is
 * stopped before the connect begins (the kernel still completes the handshake into the
 * listener's queue): stopped any later, it could have sent its greeting already. The kill
 * then comes once the connection is up. */
static int pd_connect(imapwire_layer *l, int *done)
{
    int rc;
    if (trig.armed && trig.kind == T_CONNECTED && !trig.fired && !trig.prestopped) {
        pid_t pid = server_pid(trig.target);
        ck_assert_msg(pid > 0, "%s is not running", trig.target->name);
        stop_tree(pid);
        trig.prestopped = 1;
    }
    rc = l->host->connect_next(l, done);
    if (rc == 0 && *done && trig.armed && trig.kind == T_CONNECTED)
        fire();
    return rc;
}

/* Counts what arrives during a fetch, for the buffered ImapGetMessage, which shows nothing
 * of a body until it is whole. */
static int pd_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    int rc = l->host->recv_next(l, buf, len, got);
    if (rc == 0 && trig.armed && trig.kind == T_RECV && trig.counting) {
        trig.bytes += *got;
        if (trig.bytes >= BIG_TRIGGER)
            fire();
    }
    return rc;
}

static const imapwire_transport_type pd_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "pdfilter",
    .connect = pd_connect,
    .recv = pd_recv,
};

/* ---- sessions ---- */

enum { M_PLAIN, M_STARTTLS, M_IMAPS, M_SSH, M_SOCKS5, M_HTTP };
/* The call that meets the dead or stopped peer. */
enum { AT_CONNECT, AT_LOGIN, AT_SELECT, AT_FETCH, AT_NONE };
static const char *const at_name[] = { "connect", "login", "select", "fetch", "none" };

static HCLIENT open_in(int mode, unsigned timeout)
{
    IMAPCONNECTINFO in;
    static SECURITYCREDENTIALS sc;
    static char tr[300];

    memset(&in, 0, sizeof in);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = timeout;
    in.lpszTransport = "pdfilter";
    in.lpTraceProc = on_trace;
    in.lpParam = &tlog;
    switch (mode) {
    case M_STARTTLS:
        in.dwOptions = IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_TRUSTEDSITE;
        break;
    case M_IMAPS:
        in.nRemotePort = dv.imaps_port;
        in.dwOptions = IMAP_OPTION_SECURE_IMPLICIT | IMAP_OPTION_TRUSTEDSITE;
        break;
    case M_SSH:
        sc = iwt_tunnel_creds(&sshd);
        in.dwOptions = IMAP_OPTION_TUNNEL;   /* the filter carries the SSH hop */
        in.lpCredentials = &sc;
        break;
    case M_SOCKS5:
        snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante_user, dante_pass,
                 srv[S_DANTE].port);
        in.lpszTransport = tr;
        break;
    case M_HTTP:
        snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", srv[S_TINY].port);
        in.lpszTransport = tr;
        break;
    default:
        break;
    }
    return ImapConnectEx(&in);
}

/* Connect, login, select and a fetch of message 1 (compared with the harness's copy). */
static void healthy_session(int mode, const char *what)
{
    char buf[4096];
    DWORD len = sizeof buf;
    HCLIENT h;

    memset(&tlog, 0, sizeof tlog);
    h = open_in(mode, 10);
    ck_assert_msg(h != INVALID_CLIENT, "%s: connect failed: %u\n%s", what,
                  (unsigned)ImapGetLastError(), tlog.text);
    ck_assert_msg(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass) == 0, "%s: login: %u", what,
                  (unsigned)ImapGetLastError());
    ck_assert_msg(ImapSelectMailbox(h, "INBOX", NULL) == 0, "%s: select: %u", what,
                  (unsigned)ImapGetLastError());
    ck_assert_msg(ImapGetMessage(h, 1, 0, buf, &len, 0) == 0, "%s: fetch: %u", what,
                  (unsigned)ImapGetLastError());
    ck_assert_msg(len == msg1_len && memcmp(buf, msg1, len) == 0, "%s: message 1 differs",
                  what);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}

typedef struct pcase {
    const char *name;
    int         server;
    int         mode;
    int         kind;
    char        dir;
    const char *match;
    int         at;
    DWORD       kill_error;    /* 0: ST_ERROR_CONNECTION_CLOSED */
} pcase;

static const pcase cases[] = {
    /* Dovecot itself */
    { "dovecot/tcp-connected", S_DOVECOT, M_PLAIN,    T_CONNECTED, 0,   NULL,        AT_CONNECT, 0 },
    { "dovecot/starttls",      S_DOVECOT, M_STARTTLS, T_TRACE,     '>', " STARTTLS", AT_CONNECT, 0 },
    /* After "OK Begin TLS", before the ClientHello. A peer that drops the handshake is
     * reported as a failed handshake, as test_peerdeath's scripted server has it: the TLS
     * layer cannot tell a dead server from one refusing our version or cipher by closing,
     * and API.md lists ST_ERROR_TLS_HANDSHAKE for a handshake that fails. */
    { "dovecot/tls-handshake", S_DOVECOT, M_STARTTLS, T_TRACE,     '<', "OK Begin TLS", AT_CONNECT,
      ST_ERROR_TLS_HANDSHAKE },
    /* implicit TLS: the server dies before its first handshake byte; as above */
    { "dovecot/imaps-connected", S_DOVECOT, M_IMAPS,  T_CONNECTED, 0,   NULL,        AT_CONNECT,
      ST_ERROR_TLS_HANDSHAKE },
    { "dovecot/login",         S_DOVECOT, M_PLAIN,    T_TRACE,     '>', " LOGIN ",   AT_LOGIN, 0 },
    { "dovecot/select",        S_DOVECOT, M_PLAIN,    T_TRACE,     '>', " SELECT ",  AT_SELECT, 0 },
    { "dovecot/mid-fetch",     S_DOVECOT, M_PLAIN,    T_BYTES,     0,   NULL,        AT_FETCH, 0 },
    { "dovecot/mid-fetch-buffered", S_DOVECOT, M_PLAIN, T_RECV,    0,   NULL,        AT_FETCH, 0 },
    { "dovecot/mid-fetch-tls", S_DOVECOT, M_STARTTLS, T_BYTES,     0,   NULL,        AT_FETCH, 0 },
    /* sshd carrying the tunnel (Dovecot stays up) */
    { "sshd/before-kex",       S_SSHD,    M_SSH,      T_CONNECTED, 0,   NULL,        AT_CONNECT, 0 },
    { "sshd/auth",             S_SSHD,    M_SSH,      T_TRACE,     '-', "host key",  AT_CONNECT, 0 },
    { "sshd/channel-login",    S_SSHD,    M_SSH,      T_TRACE,     '>', " LOGIN ",   AT_LOGIN, 0 },
    { "sshd/mid-fetch",        S_SSHD,    M_SSH,      T_BYTES,     0,   NULL,        AT_FETCH, 0 },
    /* the proxies */
    { "dante/handshake",       S_DANTE,   M_SOCKS5,   T_TRACE,     '-', "socks5: asking", AT_CONNECT, 0 },
    { "dante/mid-fetch",       S_DANTE,   M_SOCKS5,   T_BYTES,     0,   NULL,        AT_FETCH, 0 },
    { "tinyproxy/handshake",   S_TINY,    M_HTTP,     T_TRACE,     '-', "httpconnect: CONNECT", AT_CONNECT, 0 },
    { "tinyproxy/mid-fetch",   S_TINY,    M_HTTP,     T_BYTES,     0,   NULL,        AT_FETCH, 0 },
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Runs the session until the call that fails; returns its error, *at that call and
 * *ended the time it returned. */
static DWORD run_until_death(const pcase *c, int *at, long long *ended, long long *began)
{
    HCLIENT h;
    DWORD err = 0, blen = 0;
    IMAPMAILBOX mb;

    *at = AT_CONNECT;
    *began = iwt_now_ms();
    h = open_in(c->mode, TIMEOUT_S);
    if (h == INVALID_CLIENT) {
        err = ImapGetLastError();
        *ended = iwt_now_ms();
        return err;
    }
    *at = AT_LOGIN;
    *began = iwt_now_ms();
    if (ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass) == 0) {
        *at = AT_SELECT;
        *began = iwt_now_ms();
        if (ImapSelectMailbox(h, "INBOX", &mb) == 0) {
            *at = AT_FETCH;
            ck_assert_uint_eq(mb.dwMessages, 3);
            *began = iwt_now_ms();
            if (c->kind == T_RECV) {
                void *body = NULL;
                trig.counting = 1;
                if (ImapGetMessage(h, 3, 0, &body, &blen, 0) == 0) {
                    ImapFreeMemory(body);
                    *at = AT_NONE;
                }
            } else if (ImapGetMessageStream(h, 3, 0, on_body, NULL, &blen) == 0) {
                *at = AT_NONE;
            }
        }
    }
    err = *at == AT_NONE ? 0 : ImapGetLastError();
    *ended = iwt_now_ms();
    /* a dead or stopped peer's handle still ends cleanly and promptly */
    {
        long long t0 = iwt_now_ms(), took;
        int rc = ImapDisconnect(h);
        took = iwt_now_ms() - t0;
        ck_assert_msg(rc == 0, "%s: ImapDisconnect returned %d (%u)", c->name, rc,
                      (unsigned)ImapGetLastError());
        ck_assert_msg(took <= KILL_BOUND_MS, "%s: ImapDisconnect took %lld ms", c->name, took);
        printf("%s: disconnect %lld ms\n", c->name, took);
    }
    return err;
}

static void setup(void)
{
    char path[700];
    int i;
    snprintf(path, sizeof path, "%s/env", srv[S_DOVECOT].dir);
    iwt_dovecot_load_file(&dv, path);
    snprintf(path, sizeof path, "%s/env", srv[S_SSHD].dir);
    iwt_sshd_load(&sshd, path);
    msg1 = iwt_read_file(dv.msg1);
    msg1_len = strlen(msg1);
    ck_assert_uint_gt(msg1_len, 0);
    ck_assert(ImapInitialize(NULL, NULL));
    if (ImapRegisterTransport(&pd_type) != 0)
        ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_TRANSPORT_EXISTS);
    /* whatever an earlier case left behind (an aborted check) is undone first */
    for (i = 0; i < S_COUNT; i++)
        heal(&srv[i]);
}

static void teardown(void)
{
    ImapUninitialize();
    free(msg1);
    msg1 = NULL;
}

START_TEST(peer_death)
{
    const pcase *c = &cases[_i / 2];
    int action = _i % 2, at, fds;
    long long began, ended, detect;
    DWORD err, want = action == A_STOP ? ST_ERROR_OPERATION_TIMEOUT
                      : c->kill_error ? c->kill_error : ST_ERROR_CONNECTION_CLOSED;
    const char *an = action == A_STOP ? "SIGSTOP" : "SIGKILL";
    char what[128];

    snprintf(what, sizeof what, "%s %s", c->name, an);
    /* the path works before the death (and one-time state is made before fds are counted) */
    healthy_session(c->mode, what);
    fds = iwt_count_fds();

    memset(&trig, 0, sizeof trig);
    memset(&tlog, 0, sizeof tlog);
    trig.kind = c->kind;
    trig.dir = c->dir;
    trig.match = c->match;
    trig.target = &srv[c->server];
    trig.action = action;
    trig.armed = 1;
    err = run_until_death(c, &at, &ended, &began);
    trig.armed = 0;

    ck_assert_msg(trig.fired, "%s: the trigger never fired (stopped at %s)\n%s", what,
                  at_name[at], tlog.text);
    detect = ended - trig.fired_ms;
    printf("%s: %s failed with %u after %lld ms (call %lld ms)\n", what, at_name[at],
           (unsigned)err, detect, ended - began);
    ck_assert_msg(at == c->at, "%s: the session stopped at %s, not %s (error %u)\n%s", what,
                  at_name[at], at_name[c->at], (unsigned)err, tlog.text);
    ck_assert_msg(err == want, "%s: error %u, not %u\n%s", what, (unsigned)err,
                  (unsigned)want, tlog.text);
    if (action == A_STOP) {
        /* the wait's deadline may start a little before the stop (a proxy's handshake is
         * bounded from the layer's start), never before the call: not sooner than the
         * timeout from the call's start, not much later than it from the stop */
        ck_assert_msg(ended - began >= TIMEOUT_S * 1000 - 50 && detect <= STOP_BOUND_MS,
                      "%s: timed out %lld ms after the stop, %lld ms into the call", what,
                      detect, ended - began);
    } else {
        ck_assert_msg(detect <= KILL_BOUND_MS, "%s: noticed %lld ms after the kill", what,
                      detect);
    }
    ck_assert_int_eq(iwt_count_fds(), fds);

    /* the peer returns: the next session succeeds */
    heal(&srv[c->server]);
    healthy_session(c->mode, what);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

/* ---- asynchronous connects and the idle watch ---- */

typedef struct events {
    int       connects, disconnects;   /* atomic */
    DWORD     connect_error, disconnect_error;
    long long connect_ms, disconnect_ms;
} events;

static void on_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    events *e = param;
    (void)h;
    if (id == IMAP_EVENT_CONNECT) {
        e->connect_error = err;
        e->connect_ms = iwt_now_ms();
        __atomic_add_fetch(&e->connects, 1, __ATOMIC_ACQ_REL);
    } else if (id == IMAP_EVENT_DISCONNECT) {
        e->disconnect_error = err;
        e->disconnect_ms = iwt_now_ms();
        __atomic_add_fetch(&e->disconnects, 1, __ATOMIC_ACQ_REL);
    }
}

static int wait_for(int *counter, long long ms)
{
    long long until = iwt_now_ms() + ms;
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < 1 && iwt_now_ms() < until)
        usleep(2000);
    return __atomic_load_n(counter, __ATOMIC_ACQUIRE);
}

static HCLIENT open_async(events *e)
{
    IMAPCONNECTINFO in;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = TIMEOUT_S;
    in.lpszTransport = "pdfilter";
    in.lpEventProc = on_event;
    in.lpParam = e;
    return ImapConnectEx(&in);
}

/* One asynchronous connect that succeeds: the library's loop thread and its descriptors
 * exist from then on (until ImapUninitialize), so they are made before fds are counted. */
static void healthy_async(void)
{
    events e;
    HCLIENT h;
    memset(&e, 0, sizeof e);
    h = open_async(&e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_for(&e.connects, 10000), 1);
    ck_assert_uint_eq(e.connect_error, 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}

/* Dovecot stopped or killed as the asynchronous connect's TCP connection comes up: the
 * connect event carries the error, in time, on the library's loop thread. */
START_TEST(async_connect_death)
{
    int action = _i, fds;
    events e;
    HCLIENT h;
    long long detect;
    DWORD want = action == A_STOP ? ST_ERROR_OPERATION_TIMEOUT : ST_ERROR_CONNECTION_CLOSED;

    healthy_session(M_PLAIN, "async");
    healthy_async();
    fds = iwt_count_fds();
    memset(&e, 0, sizeof e);
    memset(&trig, 0, sizeof trig);
    trig.kind = T_CONNECTED;
    trig.target = &srv[S_DOVECOT];
    trig.action = action;
    trig.armed = 1;
    h = open_async(&e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_for(&e.connects, STOP_BOUND_MS + 5000), 1);
    trig.armed = 0;
    ck_assert(trig.fired);
    detect = e.connect_ms - trig.fired_ms;
    printf("async %s: connect event %u after %lld ms\n", action == A_STOP ? "SIGSTOP" : "SIGKILL",
           (unsigned)e.connect_error, detect);
    ck_assert_uint_eq(e.connect_error, want);
    ck_assert_msg(detect <= (action == A_STOP ? STOP_BOUND_MS : KILL_BOUND_MS), "%lld ms", detect);
    if (action == A_STOP)
        ck_assert_msg(detect >= TIMEOUT_S * 1000 - 50, "%lld ms", detect);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(iwt_count_fds(), fds);
    heal(&srv[S_DOVECOT]);
    healthy_session(M_PLAIN, "async");
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

/* Dovecot killed under a connected, logged-in, idle handle: IMAP_EVENT_DISCONNECT once,
 * with ST_ERROR_CONNECTION_CLOSED, at once; the handle still ends cleanly. */
START_TEST(async_idle_kill)
{
    events e;
    HCLIENT h;
    long long killed;
    int fds;

    healthy_session(M_PLAIN, "idle");
    healthy_async();
    fds = iwt_count_fds();
    memset(&e, 0, sizeof e);
    h = open_async(&e);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(wait_for(&e.connects, 10000), 1);
    ck_assert_uint_eq(e.connect_error, 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", NULL), 0);
    /* from before the stop that precedes the kill: an upper bound on the delay */
    killed = iwt_now_ms();
    kill_tree(server_pid(&srv[S_DOVECOT]));
    ck_assert_int_eq(wait_for(&e.disconnects, 5000), 1);
    printf("idle SIGKILL: disconnect event %u after %lld ms\n", (unsigned)e.disconnect_error,
           e.disconnect_ms - killed);
    ck_assert_uint_eq(e.disconnect_error, ST_ERROR_CONNECTION_CLOSED);
    ck_assert_msg(e.disconnect_ms - killed <= KILL_BOUND_MS, "%lld ms", e.disconnect_ms - killed);
    usleep(100000);
    ck_assert_int_eq(__atomic_load_n(&e.disconnects, __ATOMIC_ACQUIRE), 1);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(iwt_count_fds(), fds);
    heal(&srv[S_DOVECOT]);
    healthy_session(M_PLAIN, "idle");
}
END_TEST

/* ---- the private instances ---- */

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "%s not set (run through ctest)\n", name);
        exit(EXIT_FAILURE);
    }
    return v;
}

/* Runs the four harness scripts at once (start or stop); 0 when all succeeded. */
static int harness_all(const char *cmd)
{
    const char *src = env_or_die("IW_SOURCE_DIR");
    const char *scripts[S_COUNT] = { "dovecot-tls.sh", "sshd.sh", "danted.sh", "tinyproxy.sh" };
    pid_t kids[S_COUNT];
    int i, rc = 0;
    for (i = 0; i < S_COUNT; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/tests/harness/%s", src, scripts[i]);
        kids[i] = fork();
        if (kids[i] == 0) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, 1);
            if (i == S_DOVECOT)
                execl(path, path, cmd, srv[i].dir, "tls", (char *)NULL);
            else
                execl(path, path, cmd, srv[i].dir, (char *)NULL);
            _exit(127);
        }
    }
    for (i = 0; i < S_COUNT; i++) {
        int st = 0;
        if (kids[i] < 0 || waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0) {
            fprintf(stderr, "%s %s failed\n", scripts[i], cmd);
            rc = -1;
        }
    }
    return rc;
}

/* One KEY=value of an env file, without Check (main runs outside any test). */
static int envget(const char *path, const char *key, char *out, size_t size)
{
    char line[1024];
    size_t klen = strlen(key);
    int found = -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (found != 0 && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == '=' &&
            strlen(line + klen + 1) < size) {
            strcpy(out, line + klen + 1);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

static unsigned env_port(const server *s, const char *key)
{
    char path[700], v[32];
    snprintf(path, sizeof path, "%s/env", s->dir);
    if (envget(path, key, v, sizeof v) != 0)
        return 0;
    return (unsigned)strtoul(v, NULL, 10);
}

/* Message 3: BIG_SIZE bytes of text, far more than loopback socket buffers hold, so a
 * fetch of it is really in flight when the peer dies. */
static int add_big_message(const char *user)
{
    char md[800], path[900], line[80];
    struct stat st;
    FILE *f;
    size_t written = 0;
    snprintf(md, sizeof md, "%s/mail/%s/Maildir", srv[S_DOVECOT].dir, user);
    snprintf(path, sizeof path, "%s/cur/1700000003.M100003P1003.imapwire:2,", md);
    if (stat(md, &st) != 0 || (f = fopen(path, "w")) == NULL)
        return -1;
    fprintf(f, "From: imapwire test <sender@imapwire.test>\nTo: imapwire@imapwire.test\n"
               "Subject: big\nMessage-ID: <imapwire-big@imapwire.test>\n\n");
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    while (written < BIG_SIZE) {
        fwrite(line, 1, sizeof line, f);
        written += sizeof line;
    }
    if (fclose(f) != 0 || chown(path, st.st_uid, st.st_gid) != 0 || chmod(path, 0600) != 0)
        return -1;
    return 0;
}

/* A daemon's path: the variable the harness script honours, else its default. */
static const char *bin(const char *var, const char *def)
{
    const char *v = getenv(var);
    return v != NULL && *v != '\0' ? v : def;
}

/* Ports, pid files and the commands that start each daemon again, from the env files. */
static int describe_instances(void)
{
    server *d = &srv[S_DOVECOT], *h = &srv[S_SSHD], *x = &srv[S_DANTE], *t = &srv[S_TINY];
    char path[700], user[64];

    d->port = env_port(d, "DOVECOT_PORT");
    snprintf(d->pidfile, sizeof d->pidfile, "%s/run/master.pid", d->dir);
    snprintf(d->revive, sizeof d->revive, "'%s' -c '%s/dovecot.conf'",
             bin("DOVECOT_BIN", "dovecot"), d->dir);

    h->port = env_port(h, "SSHD_PORT");
    snprintf(h->pidfile, sizeof h->pidfile, "%s/sshd.pid", h->dir);
    snprintf(h->revive, sizeof h->revive,
             "'%s' -f '%s/sshd_config' -E '%s/sshd.log' </dev/null",
             bin("SSHD_BIN", "/usr/sbin/sshd"), h->dir, h->dir);

    x->port = env_port(x, "DANTED_PORT");
    snprintf(path, sizeof path, "%s/env", x->dir);
    if (envget(path, "DANTED_USER", dante_user, sizeof dante_user) != 0 ||
        envget(path, "DANTED_PASS", dante_pass, sizeof dante_pass) != 0)
        return -1;
    snprintf(x->pidfile, sizeof x->pidfile, "%s/danted.pid", x->dir);
    snprintf(x->revive, sizeof x->revive,
             "TMPDIR='%s/tmp' '%s' -D -f '%s/danted.conf' -p '%s' "
             "</dev/null >/dev/null 2>&1", x->dir, bin("DANTED_BIN", "/usr/sbin/danted"),
             x->dir, x->pidfile);

    t->port = env_port(t, "TINYPROXY_PORT");
    snprintf(t->pidfile, sizeof t->pidfile, "%s/open/tinyproxy.pid", t->dir);
    snprintf(t->revive, sizeof t->revive,
             "'%s' -c '%s/open/tinyproxy.conf' </dev/null >/dev/null 2>&1",
             bin("TINYPROXY_BIN", "tinyproxy"), t->dir);

    snprintf(path, sizeof path, "%s/env", d->dir);
    if (d->port == 0 || h->port == 0 || x->port == 0 || t->port == 0 ||
        envget(path, "DOVECOT_USER", user, sizeof user) != 0)
        return -1;
    return add_big_message(user);
}

Suite *peerdeath_real_suite(void);
Suite *peerdeath_real_suite(void)
{
    Suite *s = suite_create("peerdeath_real");
    TCase *tc = tcase_create("death");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, peer_death, 0, NCASES * 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("async");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, async_connect_death, A_STOP, A_KILL + 1);
    tcase_add_test(tc, async_idle_kill);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *tmp = env_or_die("IW_TMPDIR");
    const char *names[S_COUNT] = { "dovecot", "sshd", "danted", "tinyproxy" };
    SRunner *sr;
    long long t0 = iwt_now_ms();
    int failed = 1, i;

    setvbuf(stdout, NULL, _IOLBF, 0);     /* the figures survive a failing case's exit */
    for (i = 0; i < S_COUNT; i++) {
        srv[i].name = names[i];
        snprintf(srv[i].dir, sizeof srv[i].dir, "%s/peerdeath/%s", tmp, names[i]);
    }
    {
        char base[600];
        snprintf(base, sizeof base, "%s/peerdeath", tmp);
        mkdir(tmp, 0755);
        mkdir(base, 0755);
        chmod(base, 0755);        /* Dovecot's and sshd's users must reach below it */
    }
    if (harness_all("start") == 0 && describe_instances() == 0) {
        printf("private instances up in %lld ms\n", iwt_now_ms() - t0);
        fflush(stdout);
        sr = srunner_create(peerdeath_real_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    /* whatever state the last case left them in, they are resumed before the stop */
    for (i = 0; i < S_COUNT; i++) {
        pid_t pid = srv[i].pidfile[0] ? server_pid(&srv[i]) : 0;
        if (pid > 0)
            cont_tree(pid);
    }
    harness_all("stop");
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
