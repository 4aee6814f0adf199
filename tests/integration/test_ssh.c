/* test_ssh.c: IMAP through in-process SSH tunnels (libssh2) to a real OpenSSH sshd and a
 * real Dovecot: every auth path, host key checks, TLS inside the tunnel, session sharing. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void *share_worker(void *arg)
{
    long i = (long)arg;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    pthread_barrier_wait(&share_barrier);
    shared_handles[i] = ImapConnect("127.0.0.1", dv.port, 20,
                                    IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD, &sc);
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
        if (shared_handles[i] == INVALID_CLIENT)
            continue;
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
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
