/* test_ssh.c: IMAP through in-process SSH tunnels (libssh2) to a real OpenSSH sshd and a
 * real Dovecot: every auth path, host key checks, TLS inside the tunnel, session sharing. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "iwtest.h"
#include "sshd_log.h"

static iwt_sshd sshd;
static iwt_dovecot dv, dvtls;

static void setup(void)
{
    const char *p = getenv("IW_SSHD_ENV");
    ck_assert_msg(p != NULL, "IW_SSHD_ENV not set (run through ctest)");
    iwt_sshd_load(&sshd, p);
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

static void login_and_out(HCLIENT h)
{
    ck_assert_msg(h != INVALID_CLIENT, "connect: error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}

START_TEST(tunnel_plain)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    SECURITYINFO si;
    IMAPTIMINGS tm;
    HCLIENT h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwTunnelProtocol, SECURITY_PROTOCOL_SSH2);
    ck_assert_uint_eq(si.dwProtocol, SECURITY_PROTOCOL_NONE);
    ck_assert_str_eq(si.szHostKeyFingerprint, sshd.fingerprint);
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_uint_gt(tm.dwTunnel, 0);
    ck_assert_uint_gt(tm.dwConnect, 0);
    login_and_out(h);
}
END_TEST

/* The IMAP host name is resolved by the SSH server, not here. */
START_TEST(tunnel_far_name)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    HCLIENT h;
    /* a name only the far side could know would do; localhost shows the path */
    h = ImapConnect("localhost", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    login_and_out(h);
}
END_TEST

START_TEST(tunnel_starttls_and_implicit)
{
    char ca[700];
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    SECURITYINFO si;
    HCLIENT h;
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    sc.lpszCAFile = ca;
    h = ImapConnect("localhost", _i ? dvtls.imaps_port : dvtls.port, 10,
                    IMAP_OPTION_TUNNEL | (_i ? IMAP_OPTION_SECURE_IMPLICIT : IMAP_OPTION_SECURE_EXPLICIT),
                    &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwTunnelProtocol, SECURITY_PROTOCOL_SSH2);
    ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dvtls.user, dvtls.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* through a tunnel, port 993 says nothing: the certificate name is still checked */
    sc.lpszServerName = "wrong.example.test";
    ck_assert(ImapConnect("localhost", dvtls.imaps_port, 10,
                          IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CERTIFICATE_NAME_MISMATCH);
}
END_TEST

START_TEST(auth_methods)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    switch (_i) {
    case 0:                                   /* key with a passphrase */
        sc.lpszTunnelKey = sshd.key_pass_file;
        sc.lpszTunnelPassword = sshd.passphrase;
        break;
    case 1:                                   /* account password */
        sc.lpszTunnelKey = NULL;
        sc.lpszTunnelPassword = sshd.pass;
        break;
    case 2:                                   /* hashed known_hosts entries */
        sc.lpszKnownHosts = sshd.known_hashed;
        break;
    default:
        break;
    }
    login_and_out(ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc));
}
END_TEST

START_TEST(auth_agent)
{
    char agent_env[600], sock[512];
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    snprintf(agent_env, sizeof agent_env, "%s/agent.env", sshd.dir);
    iwt_env_value(agent_env, "SSH_AUTH_SOCK", sock, sizeof sock);
    ck_assert_msg(sock[0] != '\0', "no agent socket in %s", agent_env);
    setenv("SSH_AUTH_SOCK", sock, 1);
    sc.lpszTunnelKey = NULL;
    sc.lpszTunnelPassword = NULL;
    login_and_out(ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc));
    unsetenv("SSH_AUTH_SOCK");
}
END_TEST

typedef struct bad_case {
    int   what;
    DWORD error;
} bad_case;

static const bad_case bad_cases[] = {
    { 0, ST_ERROR_SSH_HOST_KEY_MISMATCH },    /* known_hosts has another key */
    { 1, ST_ERROR_SSH_HOST_KEY_UNKNOWN },     /* known_hosts does not know it */
    { 2, ST_ERROR_SSH_HOST_KEY_UNKNOWN },     /* no known_hosts file at all */
    { 3, ST_ERROR_SSH_AUTH_FAILED },          /* a key the server does not accept */
    { 4, ST_ERROR_SSH_AUTH_FAILED },          /* wrong password */
    { 5, ST_ERROR_SSH_AUTH_FAILED },          /* right key, wrong passphrase */
    { 6, ST_ERROR_SSH_CHANNEL_FAILED },       /* nothing listens at the far end */
    { 7, ST_ERROR_CONNECTION_REFUSED },       /* no SSH server there */
};

START_TEST(tunnel_failures)
{
    const bad_case *b = &bad_cases[_i];
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    char missing[600];
    unsigned port = dv.port;
    long long t0;
    int fds = iwt_count_fds();

    snprintf(missing, sizeof missing, "%s/no-such-known-hosts", sshd.dir);
    switch (b->what) {
    case 0: sc.lpszKnownHosts = sshd.known_wrong; break;
    case 1: sc.lpszKnownHosts = sshd.known_empty; break;
    case 2: sc.lpszKnownHosts = missing; break;
    case 3: sc.lpszTunnelKey = sshd.wrong_key; break;
    case 4: sc.lpszTunnelKey = NULL; sc.lpszTunnelPassword = "not-the-password"; break;
    case 5: sc.lpszTunnelKey = sshd.key_pass_file; sc.lpszTunnelPassword = "wrong"; break;
    case 6: port = 1; break;
    case 7: sc.nTunnelPort = 1; break;
    default: break;
    }
    t0 = iwt_now_ms();
    ck_assert(ImapConnect("127.0.0.1", port, 10, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    iwt_assert_error(b->error);
    ck_assert_int_lt(iwt_now_ms() - t0, 8000);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

/* ---- sharing: many concurrent connects, one SSH connection ---- */

#define SHARERS 50
static pthread_barrier_t share_barrier;
static HCLIENT shared_handles[SHARERS];
static unsigned shared_errors[SHARERS];
static long long shared_ms[SHARERS];

static void *share_worker(void *arg)
{
    long i = (long)arg;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    long long t0;
    pthread_barrier_wait(&share_barrier);
    t0 = iwt_now_ms();
    shared_handles[i] = ImapConnect("127.0.0.1", dv.port, 20,
                                    IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD, &sc);
    shared_ms[i] = iwt_now_ms() - t0;
    shared_errors[i] = shared_handles[i] == INVALID_CLIENT ? (unsigned)ImapGetLastError() : 0;
    return NULL;
}

START_TEST(session_sharing)
{
    pthread_t t[SHARERS];
    int before, after, i, ok = 0;

    before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    pthread_barrier_init(&share_barrier, NULL, SHARERS);
    for (i = 0; i < SHARERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, share_worker, (void *)(long)i), 0);
    for (i = 0; i < SHARERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&share_barrier);
    for (i = 0; i < SHARERS; i++) {
        if (shared_handles[i] == INVALID_CLIENT) {
            fprintf(stderr, "session_sharing: connect %d failed with error %u after %lld ms\n",
                    i, shared_errors[i], shared_ms[i]);
            continue;
        }
        ok++;
        ck_assert_int_eq(ImapCommand(shared_handles[i], "NOOP", NULL, 0), 0);
    }
    ck_assert_int_eq(ok, SHARERS);
    for (i = 0; i < SHARERS; i++)
        ImapDisconnect(shared_handles[i]);
    /* sshd logs each accepted TCP connection once: the marker proves the log caught up,
     * so a second SSH connection could not hide behind a slow logger */
    iwt_sshd_marker(&sshd);
    after = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    ck_assert_msg(after - before == 1, "%d SSH connections for %d tunnels", after - before, SHARERS);
}
END_TEST

/* Rounds of concurrent connects on one shared session, each with its NOOP and its
 * disconnect on its own thread: a reply libssh2 decoded for nobody (left behind another
 * channel's packet) stalls a connect until its timeout. */
#define ROUND_THREADS 50
#define ROUNDS 10
static pthread_barrier_t round_barrier;
static char round_known[600];      /* this round's spelling of the known_hosts path */
static unsigned round_errors[ROUND_THREADS];
static long long round_ms[ROUND_THREADS];

static void *round_worker(void *arg)
{
    long i = (long)arg;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    long long t0;
    HCLIENT h;
    sc.lpszKnownHosts = round_known;
    pthread_barrier_wait(&round_barrier);
    t0 = iwt_now_ms();
    h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    if (h == INVALID_CLIENT)
        round_errors[i] = (unsigned)ImapGetLastError();
    else if (ImapCommand(h, "NOOP", NULL, 0) != 0)
        round_errors[i] = 0x10000u | (unsigned)ImapGetLastError();
    else
        round_errors[i] = 0;
    round_ms[i] = iwt_now_ms() - t0;
    if (h != INVALID_CLIENT)
        ImapDisconnect(h);
    return NULL;
}

START_TEST(sharing_rounds)
{
    pthread_t t[ROUND_THREADS];
    long long slowest = 0;
    int i, round, bad = 0, before, after;

    before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    for (round = 0; round < ROUNDS; round++) {
        /* the path spelled with one more slash each round: a session of its own, set up
         * while all the round's connects wait for it */
        snprintf(round_known, sizeof round_known, "%.*s%s", round + 1, "////////////////",
                 sshd.known);
        pthread_barrier_init(&round_barrier, NULL, ROUND_THREADS);
        for (i = 0; i < ROUND_THREADS; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, round_worker, (void *)(long)i), 0);
        for (i = 0; i < ROUND_THREADS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&round_barrier);
        for (i = 0; i < ROUND_THREADS; i++) {
            if (round_ms[i] > slowest)
                slowest = round_ms[i];
            if (round_errors[i] != 0) {
                fprintf(stderr, "sharing_rounds: round %d thread %d: error %#x after %lld ms\n",
                        round, i, round_errors[i], round_ms[i]);
                bad++;
            }
        }
    }
    iwt_sshd_marker(&sshd);
    after = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    printf("sharing_rounds: %d rounds of %d on %d SSH connections, slowest connect and NOOP "
           "%lld ms\n", ROUNDS, ROUND_THREADS, after - before, slowest);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(after - before, ROUNDS);
}
END_TEST

/* Connects on one session to two places at once: each channel reaches the port its own
 * connect named (libssh2 keeps one channel open in flight per session: a second open
 * started meanwhile would take over the first one's, and its destination). */
static unsigned two_ports[2];
static int two_wrong, two_failed;  /* atomic */

static void *two_worker(void *arg)
{
    long i = (long)arg;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    HCLIENT h;
    sc.lpszKnownHosts = round_known;
    pthread_barrier_wait(&round_barrier);
    h = ImapConnect("127.0.0.1", two_ports[i % 2], 10, IMAP_OPTION_TUNNEL, &sc);
    if (h == INVALID_CLIENT) {
        fprintf(stderr, "two_targets: thread %ld: error %u\n", i, (unsigned)ImapGetLastError());
        __atomic_add_fetch(&two_failed, 1, __ATOMIC_ACQ_REL);
        return NULL;
    }
    /* Dovecot says IDLE before login; the fixture does not */
    if (ImapHasCapability(h, "IDLE") != (i % 2 == 0))
        __atomic_add_fetch(&two_wrong, 1, __ATOMIC_ACQ_REL);
    ImapDisconnect(h);
    return NULL;
}

START_TEST(shared_session_two_targets)
{
    pthread_t t[ROUND_THREADS];
    iwt_fixture f;
    int i, round;

    iwt_fixture_start(&f, "normal", 1000);
    two_ports[0] = dv.port;
    two_ports[1] = f.port;
    for (round = 0; round < 5; round++) {
        snprintf(round_known, sizeof round_known, "%.*s%s", round + 1, "////////////////",
                 sshd.known);
        pthread_barrier_init(&round_barrier, NULL, ROUND_THREADS);
        for (i = 0; i < ROUND_THREADS; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, two_worker, (void *)(long)i), 0);
        for (i = 0; i < ROUND_THREADS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&round_barrier);
    }
    iwt_fixture_stop(&f);
    ck_assert_int_eq(__atomic_load_n(&two_failed, __ATOMIC_ACQUIRE), 0);
    ck_assert_msg(__atomic_load_n(&two_wrong, __ATOMIC_ACQUIRE) == 0,
                  "%d of %d connects reached the other port",
                  __atomic_load_n(&two_wrong, __ATOMIC_ACQUIRE), 5 * ROUND_THREADS);
}
END_TEST

/* A destination behind a firewall that drops packets (tests/fixtures tcp_blackhole): sshd
 * waits minutes for its TCP connect, so that channel's open is answered late, and libssh2
 * opens one channel at a time per session. Once that open is stuck (1.5 s), a new connect
 * through the same SSH server makes a new session instead of queueing behind it; a
 * connect already queued moves to that session as soon as it is there; after the stuck
 * connect timed out, connects use the new session; the first connection, on the old
 * session, still works. */
typedef struct stuck_run {
    unsigned port;
    UINT     timeout;
    HCLIENT  h;
    DWORD    error;
    long long ms;
} stuck_run;

static void *stuck_connect(void *arg)
{
    stuck_run *r = arg;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    long long t0 = iwt_now_ms();
    sc.lpszKnownHosts = round_known;
    r->h = ImapConnect(r->port == dv.port ? "127.0.0.1" : "127.0.0.3", r->port, r->timeout,
                       IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD, &sc);
    r->error = r->h == INVALID_CLIENT ? ImapGetLastError() : 0;
    r->ms = iwt_now_ms() - t0;
    return NULL;
}

START_TEST(stuck_open_holds_no_one)
{
    const char *bin = getenv("IW_TCP_BLACKHOLE_BIN");
    const char *argv[] = { bin, "--addr", "127.0.0.3", "--idle-exit", "60", NULL };
    stuck_run a, b, c, d;
    iwt_fixture f;
    pthread_t ta, tb;
    HCLIENT first;

    ck_assert_ptr_nonnull(bin);
    memset(&f, 0, sizeof f);
    iwt_spawn(&f, argv, "tcp_blackhole");
    /* a session of its own (this spelling of the known_hosts path is used nowhere else) */
    snprintf(round_known, sizeof round_known, "/./%s", sshd.known);
    memset(&a, 0, sizeof a);
    b = c = d = a;
    a.port = f.port;
    a.timeout = 3;
    b.port = c.port = d.port = dv.port;
    b.timeout = c.timeout = d.timeout = 5;
    stuck_connect(&d);             /* the first connection makes the session */
    first = d.h;
    ck_assert_msg(first != INVALID_CLIENT, "error %u", (unsigned)d.error);
    ck_assert_int_eq(pthread_create(&ta, NULL, stuck_connect, &a), 0);
    usleep(300000);                /* a's open is in flight: b queues behind it */
    ck_assert_int_eq(pthread_create(&tb, NULL, stuck_connect, &b), 0);
    usleep(1700000);               /* a's open is stuck now */
    stuck_connect(&c);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    stuck_connect(&d);
    printf("stuck_open_holds_no_one: queued behind the stuck open %lld ms, after it was "
           "stuck %lld ms, after it timed out %lld ms; the blackholed one failed after "
           "%lld ms\n", b.ms, c.ms, d.ms, a.ms);
    ck_assert_msg(a.h == INVALID_CLIENT && a.error == ST_ERROR_OPERATION_TIMEOUT,
                  "the blackholed connect: error %u after %lld ms", (unsigned)a.error, a.ms);
    ck_assert_msg(c.h != INVALID_CLIENT && c.ms < 1000, "once stuck: error %u after %lld ms",
                  (unsigned)c.error, c.ms);
    ck_assert_msg(b.h != INVALID_CLIENT && b.ms < 3000, "queued: error %u after %lld ms",
                  (unsigned)b.error, b.ms);
    ck_assert_msg(d.h != INVALID_CLIENT && d.ms < 1000, "after: error %u after %lld ms",
                  (unsigned)d.error, d.ms);
    ck_assert_int_eq(ImapCommand(b.h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(c.h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(d.h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(first, "NOOP", NULL, 0), 0);
    ImapDisconnect(b.h);
    ImapDisconnect(c.h);
    ImapDisconnect(d.h);
    ImapDisconnect(first);
    iwt_fixture_stop(&f);
}
END_TEST

/* A session authenticated with the right secret is never handed to a connect that brings
 * a wrong one: that connect authenticates on its own SSH connection, and fails. */
START_TEST(shared_session_wrong_secret)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    const char *right, *wrong = "not-the-secret";
    HCLIENT h1, h3;
    int before, after;

    if (_i == 0) {                            /* account password */
        sc.lpszTunnelKey = NULL;
        right = sshd.pass;
    } else {                                  /* key passphrase */
        sc.lpszTunnelKey = sshd.key_pass_file;
        right = sshd.passphrase;
    }
    before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    sc.lpszTunnelPassword = right;
    h1 = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h1 != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    sc.lpszTunnelPassword = wrong;
    ck_assert(ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_SSH_AUTH_FAILED);
    /* the right secret still shares the first session (which keeps no secret itself) */
    sc.lpszTunnelPassword = right;
    h3 = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h3 != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapCommand(h1, "NOOP", NULL, 0), 0);
    login_and_out(h3);
    ck_assert_int_eq(ImapDisconnect(h1), 0);
    iwt_sshd_marker(&sshd);
    after = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    ck_assert_msg(after - before == 2, "%d SSH connections, expected 2 (shared + wrong)",
                  after - before);
}
END_TEST

/* A private sshd from the harness (its own directory, tagged), for tests that stop or
 * kill it; started and loaded into *mine. */
static void private_sshd(const char *tag, char *dir, size_t size, iwt_sshd *mine)
{
    char cmd[1400], envp[700];
    snprintf(dir, size, "%s-%s-%d", sshd.dir, tag, (int)getpid());
    snprintf(cmd, sizeof cmd, "%s/../harness/sshd.sh start %s >/dev/null 2>&1",
             getenv("IW_TESTS_DIR"), dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(envp, sizeof envp, "%s/env", dir);
    iwt_sshd_load(mine, envp);
}

/* The SSH server dies under a live tunnel: the next command fails at once with a clear
 * error, and the dead session is never handed to a new connect. */
START_TEST(sshd_killed_mid_session)
{
    char dir[600], cmd[1400];
    iwt_sshd mine;
    SECURITYCREDENTIALS sc;
    HCLIENT h;
    long long t0;

    private_sshd("kill", dir, sizeof dir, &mine);
    sc = iwt_tunnel_creds(&mine);
    h = ImapConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);

    snprintf(cmd, sizeof cmd, "%s/../harness/sshd.sh stop %s >/dev/null 2>&1",
             getenv("IW_TESTS_DIR"), dir);
    ck_assert_int_eq(system(cmd), 0);
    t0 = iwt_now_ms();
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_lt(iwt_now_ms() - t0, 5500);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* nothing listens any more, and nothing stale answers in its place */
    ck_assert(ImapConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST


/* The SSH server stops answering (SIGSTOP: a hung host, a dead route) under four handles
 * sharing its session: their commands time out, and then disconnecting them must not wait
 * for SSH courtesy replies that cannot come, once per handle and again for the session. */
START_TEST(stalled_session_disconnects_fast)
{
    char dir[600], cmd[1400];
    iwt_sshd mine;
    SECURITYCREDENTIALS sc;
    HCLIENT h[4];
    long long t0, took;
    int i, fds0;

    private_sshd("stall", dir, sizeof dir, &mine);
    sc = iwt_tunnel_creds(&mine);
    fds0 = iwt_count_fds();
    for (i = 0; i < 4; i++) {
        h[i] = ImapConnect("127.0.0.1", dv.port, 1, IMAP_OPTION_TUNNEL, &sc);
        ck_assert_msg(h[i] != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    }
    /* the listener and its per-connection processes, two levels down */
    snprintf(cmd, sizeof cmd, "for p in $(pgrep -P %d); do pkill -STOP -P $p; kill -STOP $p; "
             "done; kill -STOP %d; exit 0", mine.pid, mine.pid);
    ck_assert_int_eq(system(cmd), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(ImapCommand(h[i], "NOOP", NULL, 0), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_OPERATION_TIMEOUT);
    }
    t0 = iwt_now_ms();
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(ImapDisconnect(h[i]), 0);
    took = iwt_now_ms() - t0;
    snprintf(cmd, sizeof cmd, "for p in $(pgrep -P %d); do pkill -CONT -P $p; kill -CONT $p; "
             "done; kill -CONT %d; exit 0", mine.pid, mine.pid);
    ck_assert_int_eq(system(cmd), 0);
    printf("stalled session: 4 disconnects in %lld ms\n", took);
    /* one courtesy wait (200 ms) at most, not one per handle plus the session's */
    ck_assert_msg(took < 500, "4 disconnects took %lld ms", took);
    ck_assert_int_eq(iwt_count_fds(), fds0);
    /* the server is back: a new connect works */
    h[0] = ImapConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h[0] != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapDisconnect(h[0]), 0);
    snprintf(cmd, sizeof cmd, "%s/../harness/sshd.sh stop %s >/dev/null 2>&1; rm -rf %s",
             getenv("IW_TESTS_DIR"), dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The server side of a shared session goes away while nobody uses it (its sshd process
 * is killed, as by a restart or a reset): the next connect with the same credentials
 * gets a new session and succeeds; the dead one is not handed out, nor is it refused. */
START_TEST(shared_session_replaced_when_dead)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    char cmd[300];
    int before, after, round;
    HCLIENT h1, h2;

    for (round = 0; round < 2; round++) {
        before = iwt_count_in_file(sshd.log, "Accepted publickey for ");
        h1 = ImapConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc);
        ck_assert_msg(h1 != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapCommand(h1, "NOOP", NULL, 0), 0);
        /* sshd's per-connection processes (children of the listener) go; it listens on */
        snprintf(cmd, sizeof cmd, "for p in $(pgrep -P %d); do pkill -KILL -P $p; "
                 "kill -KILL $p; done; exit 0", sshd.pid);
        ck_assert_int_eq(system(cmd), 0);
        usleep(200000);
        /* round 0: the idle first handle is still open; round 1: closed before */
        if (round == 1)
            ImapDisconnect(h1);
        h2 = ImapConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc);
        ck_assert_msg(h2 != INVALID_CLIENT, "round %d: error %u", round,
                      (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapLogin(h2, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert_int_eq(ImapDisconnect(h2), 0);
        if (round == 0) {
            ck_assert_int_eq(ImapCommand(h1, "NOOP", NULL, 0), IMAP_ERROR);
            ImapDisconnect(h1);
        }
        iwt_sshd_marker(&sshd);
        after = iwt_count_in_file(sshd.log, "Accepted publickey for ");
        ck_assert_int_eq(after - before, 2);
    }
}
END_TEST


/* An RSA user key under libssh2 1.10 (which signs only with SHA-1) against OpenSSH 9:
 * refused, and the trace says why and what to do instead. */
START_TEST(rsa_key_explained)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPCONNECTINFO in;
    char key[600], cmd[4096];
    static trace_log tl;
    HCLIENT h;

    snprintf(key, sizeof key, "%s/rsa-%d", getenv("IW_TMPDIR"), (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -f %s %s.pub && ssh-keygen -q -t rsa -b 2048 -N '' -f %s && "
             "cat %s.pub >> %s/authorized_keys", key, key, key, key, sshd.dir);
    ck_assert_int_eq(system(cmd), 0);
    sc.lpszTunnelKey = key;
    memset(&in, 0, sizeof in);
    memset(&tl, 0, sizeof tl);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 5;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = &sc;
    in.lpTraceProc = trace_cb;
    in.lpParam = &tl;
    h = ImapConnectEx(&in);
    if (h != INVALID_CLIENT) {
        /* a libssh2 that signs with rsa-sha2 (1.11+): RSA simply works */
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
        ImapDisconnect(h);
        return;
    }
    iwt_assert_error(ST_ERROR_SSH_AUTH_FAILED);
    ck_assert_msg(strstr(tl.text, "is an RSA key") != NULL &&
                  strstr(tl.text, "ed25519 or ECDSA") != NULL, "trace:\n%s", tl.text);
    /* an ed25519 key on the same server still works */
    sc = iwt_tunnel_creds(&sshd);
    h = ImapConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ImapDisconnect(h);
}
END_TEST

/* Keyboard-interactive (PAM) with the password: libssh2 frees our answers itself, with
 * the session's allocator that wipes; ASan checks the two sides of that pairing. */
START_TEST(auth_keyboard_interactive)
{
    char dir[600], conf[700], cmd[2000], envp[700];
    iwt_sshd mine;
    SECURITYCREDENTIALS sc;
    FILE *f;

    snprintf(dir, sizeof dir, "%s-kbd-%d", sshd.dir, (int)getpid());
    snprintf(conf, sizeof conf, "%s-kbd-%d.conf", sshd.dir, (int)getpid());
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    /* no "password" method: libssh2 must take keyboard-interactive */
    fputs("PasswordAuthentication no\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "SSHD_USE_PAM=yes SSHD_EXTRA_CONF=%s %s/../harness/sshd.sh start %s >/dev/null 2>&1",
             conf, getenv("IW_TESTS_DIR"), dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(envp, sizeof envp, "%s/env", dir);
    iwt_sshd_load(&mine, envp);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = mine.host;
    sc.nTunnelPort = mine.port;
    sc.lpszTunnelUser = mine.user;
    sc.lpszTunnelPassword = mine.pass;
    sc.lpszKnownHosts = mine.known;
    login_and_out(ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc));
    ck_assert_msg(iwt_log_wait(mine.log, "Accepted keyboard-interactive/pam", 1, 5000) == 1,
                  "sshd did not log a keyboard-interactive login");
    sc.lpszTunnelPassword = "not-the-password";
    ck_assert(ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_SSH_AUTH_FAILED);
    snprintf(cmd, sizeof cmd, "%s/../harness/sshd.sh stop %s >/dev/null 2>&1; rm -rf %s %s",
             getenv("IW_TESTS_DIR"), dir, dir, conf);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- wake-ups: one session shared by the loop thread and another thread ---- */

static int wake_event_rc = -1;             /* atomic: the connect event's error, -1 before */

static void wake_event(HCLIENT h, UINT ev, DWORD err, LPVOID param)
{
    (void)h;
    (void)param;
    if (ev == IMAP_EVENT_CONNECT)
        __atomic_store_n(&wake_event_rc, (int)err, __ATOMIC_RELEASE);
}

/* A handle connected through the tunnel by the loop thread (an event handle), logged in;
 * fails the test when the connect does not report success within 10 s. */
static HCLIENT wake_loop_handle(SECURITYCREDENTIALS *sc)
{
    IMAPCONNECTINFO in;
    HCLIENT h;
    int i;
    iwt_tunnel_info(&in, &dv, sc, NULL);
    in.dwOptions |= IMAP_OPTION_FREETHREAD;
    in.lpEventProc = wake_event;
    __atomic_store_n(&wake_event_rc, -1, __ATOMIC_RELEASE);
    h = ImapConnectEx(&in);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    for (i = 0; i < 1000 && __atomic_load_n(&wake_event_rc, __ATOMIC_ACQUIRE) < 0; i++)
        usleep(10000);
    ck_assert_int_eq(__atomic_load_n(&wake_event_rc, __ATOMIC_ACQUIRE), 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    return h;
}

/* The threads that were there before the test (the caller's, a sanitizer's own): a
 * snapshot, so only the threads the library starts meanwhile are counted. */
#define MAX_TIDS 64
static int old_tids[MAX_TIDS], nold_tids;

/* Calls f(tid, arg) for each thread of the process (bounded: 1,000). */
static void each_thread(void (*f)(int tid, void *arg), void *arg)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL && n++ < 1000)
        if (e->d_name[0] != '.')
            f(atoi(e->d_name), arg);
    closedir(d);
}

static void note_tid(int tid, void *arg)
{
    (void)arg;
    if (nold_tids < MAX_TIDS)
        old_tids[nold_tids++] = tid;
}

static void add_switches(int tid, void *arg)
{
    char path[64], line[256];
    FILE *f;
    int i;
    for (i = 0; i < nold_tids; i++)
        if (old_tids[i] == tid)
            return;
    /* a sanitizer's background thread wakes on its own timer, sleeping in nanosleep
     * between: the library's threads sleep in poll, epoll_wait or a lock */
    snprintf(path, sizeof path, "/proc/self/task/%d/wchan", tid);
    f = fopen(path, "r");
    if (f != NULL) {
        int timer = fgets(line, sizeof line, f) != NULL && strstr(line, "nanosleep") != NULL;
        fclose(f);
        if (timer)
            return;
    }
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    f = fopen(path, "r");
    if (f == NULL)
        return;                    /* the thread ended meanwhile */
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            *(long *)arg += atol(line + 24);
    fclose(f);
}

/* Voluntary context switches of the threads the library started since the snapshot:
 * each is one wake-up of a thread that slept (a poll, an epoll_wait, a lock). */
static long library_threads_switches(void)
{
    long total = 0;
    each_thread(add_switches, &total);
    return total;
}

typedef struct wake_blocker {
    SECURITYCREDENTIALS sc;
    HCLIENT             h;
} wake_blocker;

static void *wake_blocker_connect(void *arg)
{
    wake_blocker *b = arg;
    b->h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD,
                       &b->sc);
    if (b->h != INVALID_CLIENT && ImapLogin(b->h, IMAP_AUTH_PLAIN, dv.user, dv.pass) != 0) {
        ImapDisconnect(b->h);
        b->h = INVALID_CLIENT;
    }
    return NULL;
}

/* Loop turns and the library's threads' wake-ups per second over ms of idleness. */
static void idle_rates(long ms, double *turns, double *wakeups)
{
    IMAPLOOPSTATS st0, st1;
    long sw0, sw1;
    long long t0, took;
    memset(&st0, 0, sizeof st0);
    st0.dwSize = sizeof st0;
    st1 = st0;
    ck_assert(ImapGetLoopStatistics(&st0, FALSE));
    sw0 = library_threads_switches();
    t0 = iwt_now_ms();
    usleep((useconds_t)ms * 1000);
    took = iwt_now_ms() - t0;
    ck_assert(ImapGetLoopStatistics(&st1, FALSE));
    sw1 = library_threads_switches();
    *turns = (st1.dwTurns - st0.dwTurns) * 1000.0 / (double)took;
    *wakeups = (sw1 - sw0) * 1000.0 / (double)took;
}

/* One SSH session carrying three idle connections: a channel the loop thread drives (a
 * bridge of ImapCreatePortForward), an event handle the loop watches, and a handle
 * connected by another thread. While all are idle, the library's threads sleep. */
START_TEST(shared_idle_no_wakeups)
{
    wake_blocker b;
    pthread_t t;
    HFORWARD f;
    UINT bound = 0;
    HCLIENT a, fh;
    double turns, wakeups;
    int before, after;

    nold_tids = 0;
    each_thread(note_tid, NULL);
    b.sc = iwt_tunnel_creds(&sshd);
    before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    f = ImapCreatePortForward(&b.sc, "127.0.0.1", dv.port, 0, &bound);
    ck_assert_msg(f != INVALID_FORWARD, "error %u", (unsigned)ImapGetLastError());
    fh = ImapConnect("127.0.0.1", bound, 10, IMAP_OPTION_TUNNEL, NULL);
    ck_assert_msg(fh != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(fh, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    a = wake_loop_handle(&b.sc);
    ck_assert_int_eq(pthread_create(&t, NULL, wake_blocker_connect, &b), 0);
    pthread_join(t, NULL);
    ck_assert_msg(b.h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapCommand(fh, "NOOP", NULL, 0), 0);
    usleep(200000);                /* what the last exchange left settles */
    idle_rates(2000, &turns, &wakeups);
    printf("shared_idle_no_wakeups: loop turns %.1f/s, the library's threads wake %.1f/s\n",
           turns, wakeups);
    /* the 20 ms recheck woke it 49 times a second; a keepalive or a stray turn is fine */
    ck_assert_msg(turns < 5 && wakeups < 10, "%.1f loop turns/s, %.1f wake-ups/s while idle",
                  turns, wakeups);
    ck_assert_int_eq(ImapCommand(a, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(b.h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(fh, "NOOP", NULL, 0), 0);
    ImapDisconnect(b.h);
    ImapDisconnect(a);
    ImapDisconnect(fh);
    ck_assert(ImapClosePortForward(f));
    /* all of it went over one SSH connection */
    iwt_sshd_marker(&sshd);
    after = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    ck_assert_msg(after - before == 1, "%d SSH connections", after - before);
}
END_TEST

#define LATENCY_ROUNDS 50

/* A handle busy with NOOPs until told to stop (bounded: 20 s, 100,000 commands): its
 * reads take whatever packets of the session the socket holds. The first
 * LATENCY_ROUNDS NOOPs' times are kept. */
typedef struct wake_reader {
    HCLIENT   h;
    int       stop;                /* atomic */
    int       rounds;              /* atomic: read by the other thread */
    int       failed;
    long long us[LATENCY_ROUNDS];
    long long slowest_us;          /* of all its NOOPs */
} wake_reader;

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One NOOP of r, timed; 0, or -1 when it failed. */
static int wake_reader_once(wake_reader *r)
{
    long long t0 = now_us();
    int n = __atomic_load_n(&r->rounds, __ATOMIC_RELAXED);
    if (ImapCommand(r->h, "NOOP", NULL, 0) != 0) {
        r->failed = ImapGetLastError() != 0 ? (int)ImapGetLastError() : -1;  /* the error */
        return -1;
    }
    t0 = now_us() - t0;
    if (n < LATENCY_ROUNDS)
        r->us[n] = t0;
    if (t0 > r->slowest_us)
        r->slowest_us = t0;
    __atomic_store_n(&r->rounds, n + 1, __ATOMIC_RELEASE);
    return 0;
}

static void *wake_reader_run(void *arg)
{
    wake_reader *r = arg;
    long long until = iwt_now_ms() + 20000;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && r->rounds < 100000 &&
           iwt_now_ms() < until && wake_reader_once(r) == 0)
        ;
    return NULL;
}

/* r on a logged-in FREETHREAD handle of the shared session (timeout seconds per phase),
 * sending NOOPs without pause on thread t until r->stop. */
static void wake_reader_start(wake_reader *r, pthread_t *t, SECURITYCREDENTIALS *sc,
                              UINT timeout)
{
    memset(r, 0, sizeof *r);
    r->h = ImapConnect("127.0.0.1", dv.port, timeout, IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD,
                       sc);
    ck_assert_msg(r->h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(r->h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(pthread_create(t, NULL, wake_reader_run, r), 0);
}

static int cmp_ll(const void *x, const void *y)
{
    long long a = *(const long long *)x, b = *(const long long *)y;
    return a < b ? -1 : a > b;
}

/* The median of r's kept NOOP times (sorted in place). */
static long long wake_reader_median(wake_reader *r)
{
    qsort(r->us, LATENCY_ROUNDS, sizeof r->us[0], cmp_ll);
    return r->us[LATENCY_ROUNDS / 2];
}

/* Replies for one channel read off the socket by another thread's channel reach their
 * own channel at once, not at the next look-around: two handles on one session, each
 * sending NOOPs without pause, one on another thread, the other on this one, directly
 * (_i 0) or through a forward's bridge, which the loop thread drives (_i 1). Until both
 * have done LATENCY_ROUNDS, each NOOP is timed. (A thread woken by a reply another one
 * then takes off the socket finds it empty and sleeps on: before, until the 20 ms
 * recheck.) */
START_TEST(shared_reply_latency)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    wake_reader r, mine;
    pthread_t t;
    HFORWARD f = INVALID_FORWARD;
    UINT bound = 0;
    long long until, med_mine, med_other;

    memset(&mine, 0, sizeof mine);
    if (_i == 1) {
        f = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &bound);
        ck_assert_msg(f != INVALID_FORWARD, "error %u", (unsigned)ImapGetLastError());
        mine.h = ImapConnect("127.0.0.1", bound, 10, IMAP_OPTION_TUNNEL, NULL);
    } else {
        mine.h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    }
    ck_assert_msg(mine.h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(mine.h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    wake_reader_start(&r, &t, &sc, 10);
    until = iwt_now_ms() + 20000;
    while ((mine.rounds < LATENCY_ROUNDS ||
            __atomic_load_n(&r.rounds, __ATOMIC_ACQUIRE) < LATENCY_ROUNDS) &&
           mine.rounds < 100000 && iwt_now_ms() < until && wake_reader_once(&mine) == 0)
        ;
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    ck_assert(!r.failed && !mine.failed);
    ck_assert_int_ge(mine.rounds, LATENCY_ROUNDS);
    ck_assert_int_ge(r.rounds, LATENCY_ROUNDS);
    med_mine = wake_reader_median(&mine);
    med_other = wake_reader_median(&r);
    printf("shared_reply_latency(%s): NOOP median %lld us here (%d NOOPs), %lld us on the "
           "other thread (%d), slowest %lld and %lld us\n",
           _i == 1 ? "a bridge on the loop" : "direct", med_mine, mine.rounds, med_other,
           r.rounds, mine.us[LATENCY_ROUNDS - 1], r.us[LATENCY_ROUNDS - 1]);
    ck_assert_msg(med_mine < 10000 && med_other < 10000, "median NOOP %lld and %lld us",
                  med_mine, med_other);
    ImapDisconnect(r.h);
    ImapDisconnect(mine.h);
    if (f != INVALID_FORWARD)
        ck_assert(ImapClosePortForward(f));
}
END_TEST

#define BUSY_OPENS 8
#define BUSY_BYTES (6u << 20)      /* three times a channel's window each way */

/* While another thread's handle on the session reads without pause (and so takes other
 * channels' packets off the socket): channels open (their confirmations), a 6 MB APPEND
 * goes up (the window adjustments it waits for) and comes back down. Each finishes on
 * what that thread read for it, never on a timeout. */
START_TEST(shared_busy_open_and_bulk)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    HCLIENT h[BUSY_OPENS];
    wake_reader r;
    pthread_t t;
    char box[64], cmd[96], *msg, *body = NULL;
    DWORD len = 0;
    long long t0, open_ms, up_ms, down_ms;
    int i;

    wake_reader_start(&r, &t, &sc, 10);
    t0 = iwt_now_ms();
    for (i = 0; i < BUSY_OPENS; i++) {
        h[i] = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
        ck_assert_msg(h[i] != INVALID_CLIENT, "connect %d: error %u", i,
                      (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapLogin(h[i], IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    }
    open_ms = iwt_now_ms() - t0;
    snprintf(box, sizeof box, "sshwake-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h[0], cmd, NULL, 0), 0);
    msg = iwt_message(BUSY_BYTES);
    t0 = iwt_now_ms();
    iwt_append(h[0], box, msg, BUSY_BYTES);
    up_ms = iwt_now_ms() - t0;
    ck_assert_int_eq(ImapSelectMailbox(h[0], box, NULL), 0);
    t0 = iwt_now_ms();
    ck_assert_int_eq(ImapGetMessage(h[0], 1, 0, &body, &len, 0), 0);
    down_ms = iwt_now_ms() - t0;
    ck_assert_uint_eq(len, BUSY_BYTES);
    ck_assert(memcmp(body, msg, BUSY_BYTES) == 0);
    ImapFreeMemory(body);
    free(msg);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    ck_assert(!r.failed);
    printf("shared_busy_open_and_bulk: %d connects in %lld ms, 6 MB up in %lld ms, down in "
           "%lld ms; the other thread ran %d NOOPs\n", BUSY_OPENS, open_ms, up_ms, down_ms,
           r.rounds);
    ck_assert_int_eq(ImapCommand(h[0], "CLOSE", NULL, 0), 0);
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h[0], cmd, NULL, 0), 0);
    for (i = 0; i < BUSY_OPENS; i++)
        ImapDisconnect(h[i]);
    ImapDisconnect(r.h);
}
END_TEST

#define UNPARSED_ROUNDS 5
#define UNPARSED_STILL_MS 1200

/* libssh2 stops reading once the packet a call waits for is in (a channel's open
 * confirmation, the close it waits for) and leaves the packets read behind it unparsed
 * in its own buffer, where neither the socket nor the queue of the channel they are for
 * shows them: such a call's reads must wake every waiting channel. A reader on another
 * thread sends NOOPs without pause while this thread opens and closes a channel on the
 * same session and then keeps still: a reply left behind the close would wait for this
 * thread's next open (or the reader's 2-s timeout). */
START_TEST(replies_behind_a_close)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    wake_reader r;
    pthread_t t;
    int round;

    wake_reader_start(&r, &t, &sc, 2);
    for (round = 0; round < UNPARSED_ROUNDS && !__atomic_load_n(&r.failed, __ATOMIC_ACQUIRE);
         round++) {
        HCLIENT h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
        ck_assert_msg(h != INVALID_CLIENT, "open %d: error %u", round, (unsigned)ImapGetLastError());
        ImapDisconnect(h);
        usleep(UNPARSED_STILL_MS * 1000);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    printf("replies_behind_a_close: %d opens and closes, %d NOOPs on the other thread, the "
           "slowest %lld us\n", round, r.rounds, r.slowest_us);
    ck_assert_msg(!r.failed, "the reader failed after %d NOOPs: error %d", r.rounds, r.failed);
    ck_assert_msg(r.slowest_us < UNPARSED_STILL_MS * 1000 * 3 / 4,
                  "a NOOP took %lld us: its reply waited for the next open", r.slowest_us);
    ImapDisconnect(r.h);
}
END_TEST

/* A 6 MB APPEND goes up while four other handles on the session send NOOPs without
 * pause: libssh2 keeps one packet in flight per session (what a short send left), and
 * only the call that began it may finish it; another channel's write meanwhile must
 * wait, not kill the session or lose its bytes. */
#define BULK_WRITERS 4
START_TEST(shared_bulk_with_writers)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    wake_reader r[BULK_WRITERS];
    pthread_t t[BULK_WRITERS];
    HCLIENT h;
    char box[64], cmd[96], *msg;
    long long t0;
    int i, noops = 0;

    h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    for (i = 0; i < BULK_WRITERS; i++)
        wake_reader_start(&r[i], &t[i], &sc, 10);
    snprintf(box, sizeof box, "sshbulk-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    msg = iwt_message(BUSY_BYTES);
    t0 = iwt_now_ms();
    iwt_append(h, box, msg, BUSY_BYTES);
    t0 = iwt_now_ms() - t0;
    free(msg);
    for (i = 0; i < BULK_WRITERS; i++) {
        __atomic_store_n(&r[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(t[i], NULL);
        ck_assert_msg(!r[i].failed, "writer %d failed after %d NOOPs: error %d", i,
                      r[i].rounds, r[i].failed);
        noops += r[i].rounds;
        ImapDisconnect(r[i].h);
    }
    printf("shared_bulk_with_writers: 6 MB up in %lld ms beside %d NOOPs on %d handles\n", t0,
           noops, BULK_WRITERS);
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    ImapDisconnect(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh");
    TCase *tc = tcase_create("tunnel");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tunnel_plain);
    tcase_add_test(tc, tunnel_far_name);
    tcase_add_loop_test(tc, tunnel_starttls_and_implicit, 0, 2);
    tcase_add_loop_test(tc, auth_methods, 0, 3);
    tcase_add_test(tc, auth_agent);
    tcase_add_test(tc, auth_keyboard_interactive);
    tcase_add_loop_test(tc, tunnel_failures, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, session_sharing);
    tcase_add_loop_test(tc, shared_session_wrong_secret, 0, 2);
    tcase_add_test(tc, sshd_killed_mid_session);
    tcase_add_test(tc, stalled_session_disconnects_fast);
    tcase_add_test(tc, shared_session_replaced_when_dead);
    tcase_add_test(tc, rsa_key_explained);
    suite_add_tcase(s, tc);
    tc = tcase_create("share");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, sharing_rounds);
    tcase_add_test(tc, shared_session_two_targets);
    tcase_add_test(tc, stuck_open_holds_no_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("wake");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shared_idle_no_wakeups);
    tcase_add_loop_test(tc, shared_reply_latency, 0, 2);
    tcase_add_test(tc, shared_busy_open_and_bulk);
    tcase_add_test(tc, shared_bulk_with_writers);
    tcase_add_test(tc, replies_behind_a_close);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
