/* test_ssh_hop.c: the SSH hop honours the connect's contract: each SSH phase has its own
 * nTimeout, and lpszLocalAddress and lpszDnsServers apply to it (tunnels and forwards). */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "iwtest.h"
#include "sshd_log.h"

static iwt_sshd sshd;
static iwt_dovecot dv;
static char dns_server[64];

static void setup(void)
{
    const char *p = getenv("IW_SSHD_ENV");
    ck_assert_msg(p != NULL, "IW_SSHD_ENV not set (run through ctest)");
    iwt_sshd_load(&sshd, p);
    iwt_dovecot_load(&dv);
    iwt_env_value(getenv("IW_DNS_ENV"), "DNSMASQ_SERVER", dns_server, sizeof dns_server);
    ck_assert_msg(dns_server[0] != '\0', "no DNSMASQ_SERVER in $IW_DNS_ENV");
    unsetenv("SSH_AUTH_SOCK");
    /* the SSH hop must get its DNS servers from the connect, not from the environment */
    unsetenv("IMAPWIRE_DNS_SERVERS");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* A known_hosts file naming sshd's keys for [host]:port, in the test's scratch dir. */
static void known_hosts_for(const char *host, unsigned port, char *path, size_t size)
{
    char *text = iwt_read_file(sshd.known), *line, *save = NULL;
    FILE *f;
    snprintf(path, size, "%s/known-%s-%u-%d", getenv("IW_TMPDIR"), host, port, (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        const char *key = strchr(line, ' ');
        if (key != NULL)
            fprintf(f, "[%s]:%u%s\n", host, port, key);
    }
    fclose(f);
    free(text);
}

/* ---- a relay in front of sshd that can hold the server's bytes back ---- */

static struct relay {
    int       listen_fd;
    unsigned  port;
    pthread_t thread;
    /* server-to-client bytes wait while now < hold_until (ms); forever when -1 */
    long long hold_until;
    long long hold_ms;             /* the hold set when the host key is reported */
    int       hold_forever_after_hostkey;
    int       stop;
} relay;

static long long relay_get_hold(void)
{
    return __atomic_load_n(&relay.hold_until, __ATOMIC_SEQ_CST);
}

static void *relay_main(void *arg)
{
    struct sockaddr_in a;
    int c, s, i;
    char buf[65536];
    (void)arg;

    c = accept(relay.listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)sshd.port);
    inet_pton(AF_INET, sshd.host, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c);
        close(s);
        return NULL;
    }
    /* bounded: the test's own timeout ends it long before */
    for (i = 0; i < 100000 && !__atomic_load_n(&relay.stop, __ATOMIC_SEQ_CST); i++) {
        long long hold = relay_get_hold();
        int held = hold < 0 || iwt_now_ms() < hold;
        struct pollfd p[2] = { { c, POLLIN, 0 }, { s, held ? 0 : POLLIN, 0 } };
        ssize_t n;
        if (poll(p, 2, 10) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            n = read(c, buf, sizeof buf);
            if (n <= 0 || write(s, buf, (size_t)n) != n)
                break;
        }
        if (p[1].revents) {
            n = read(s, buf, sizeof buf);
            if (n <= 0 || write(c, buf, (size_t)n) != n)
                break;
        }
    }
    close(c);
    close(s);
    return NULL;
}

static void relay_start(long long first_hold_ms, long long hostkey_hold_ms, int forever_after)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&relay, 0, sizeof relay);
    relay.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(relay.listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(relay.listen_fd, 4), 0);
    ck_assert_int_eq(getsockname(relay.listen_fd, (struct sockaddr *)&a, &len), 0);
    relay.port = ntohs(a.sin_port);
    relay.hold_until = first_hold_ms < 0 ? -1 : iwt_now_ms() + first_hold_ms;
    relay.hold_ms = hostkey_hold_ms;
    relay.hold_forever_after_hostkey = forever_after;
    ck_assert_int_eq(pthread_create(&relay.thread, NULL, relay_main, NULL), 0);
}

static void relay_stop(void)
{
    __atomic_store_n(&relay.stop, 1, __ATOMIC_SEQ_CST);
    shutdown(relay.listen_fd, SHUT_RDWR);
    pthread_join(relay.thread, NULL);
    close(relay.listen_fd);
}

/* The host key line comes between the handshake and authentication: hold the server's
 * answers from there, so authentication is slow (or never ends). */
/* The last trace lines with their time, printed when a phase test fails: a failure
 * seen once under load must say where the time went. */
#define TRACE_KEEP 24
static struct { long long ms; unsigned dir; char text[100]; } trace_ring[TRACE_KEEP];
static unsigned trace_n;

static void trace_dump(long long t0)
{
    unsigned i = trace_n > TRACE_KEEP ? trace_n - TRACE_KEEP : 0;
    for (; i < trace_n; i++)
        fprintf(stderr, "  +%lld ms %u %s\n", trace_ring[i % TRACE_KEEP].ms - t0,
                trace_ring[i % TRACE_KEEP].dir, trace_ring[i % TRACE_KEEP].text);
}

static void hold_on_hostkey(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    unsigned k = trace_n++ % TRACE_KEEP;
    (void)h; (void)param;
    trace_ring[k].ms = iwt_now_ms();
    trace_ring[k].dir = dir;
    snprintf(trace_ring[k].text, sizeof trace_ring[k].text, "%.*s",
             len > 0 ? (len < 99 ? (int)len : 99) : 0, line);
    if (dir == IMAP_TRACE_INFO && len > 0 && memmem(line, (size_t)len, "host key", 8) != NULL) {
        long long until = relay.hold_forever_after_hostkey ? -1 : iwt_now_ms() + relay.hold_ms;
        __atomic_store_n(&relay.hold_until, until, __ATOMIC_SEQ_CST);
    }
}

static HCLIENT connect_through_relay(unsigned timeout_s, char *known, size_t known_size)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPCONNECTINFO in;
    known_hosts_for("127.0.0.1", relay.port, known, known_size);
    sc.nTunnelPort = relay.port;
    sc.lpszKnownHosts = known;
    iwt_tunnel_info(&in, &dv, &sc, NULL);
    in.nTimeout = timeout_s;
    in.lpTraceProc = hold_on_hostkey;
    return ImapConnectEx(&in);
}

#define T_S 2                      /* nTimeout of the phase tests */

/* A handshake and an authentication that each take 0.6 nTimeout: each phase is within
 * its own bound, so the connect succeeds although the SSH set-up took 1.2 nTimeout. */
START_TEST(each_ssh_phase_has_its_own_timeout)
{
    char known[700];
    long long t0 = iwt_now_ms(), took;
    HCLIENT h;
    /* Dovecot's first login of its life starts its auth and imap processes, which at the
     * start of a parallel run (a dozen servers starting beside it) took longer than this
     * test's 2 s bound once: the server is warmed first, so the bound times our phases. */
    h = ImapConnect(dv.host, dv.port, 20, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    t0 = iwt_now_ms();
    relay_start(T_S * 600, T_S * 600, 0);
    h = connect_through_relay(T_S, known, sizeof known);
    took = iwt_now_ms() - t0;
    ck_assert_msg(h != INVALID_CLIENT, "error %u after %lld ms", (unsigned)ImapGetLastError(), took);
    ck_assert_int_ge(took, T_S * 1200);
    if (ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass) != 0) {
        unsigned e = (unsigned)ImapGetLastError();
        trace_dump(t0);
        ck_abort_msg("login: error %u after %lld ms", e, iwt_now_ms() - t0);
    }
    ck_assert_int_eq(ImapDisconnect(h), 0);
    relay_stop();
    unlink(known);
}
END_TEST

/* The server stops answering after the handshake (as a SIGSTOPped sshd would): the
 * authentication phase times out a full nTimeout after it began, not earlier. */
START_TEST(auth_phase_times_out_on_its_own)
{
    char known[700];
    long long t0 = iwt_now_ms(), took;
    relay_start(T_S * 600, 0, 1);
    ck_assert(connect_through_relay(T_S, known, sizeof known) == INVALID_CLIENT);
    took = iwt_now_ms() - t0;
    iwt_assert_error(ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_msg(took >= T_S * 1600 - 100, "timed out after %lld ms", took);
    ck_assert_msg(took <= T_S * 1600 + 1500, "timed out after %lld ms", took);
    relay_stop();
    unlink(known);
}
END_TEST

/* A server that accepts TCP and never sends its banner: nTimeout and a margin. */
START_TEST(silent_ssh_server_times_out)
{
    iwt_fixture f;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    long long t0, took;
    iwt_fixture_start(&f, "silent", 1);
    sc.nTunnelPort = f.port;
    t0 = iwt_now_ms();
    ck_assert(ImapConnect("127.0.0.1", dv.port, T_S, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    took = iwt_now_ms() - t0;
    iwt_assert_error(ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_msg(took >= T_S * 1000 - 100 && took <= T_S * 1000 + 1500, "took %lld ms", took);
    iwt_fixture_stop(&f);
}
END_TEST

static HCLIENT connect_ex(SECURITYCREDENTIALS *sc, const char *local, const char *dns)
{
    IMAPCONNECTINFO in;
    iwt_tunnel_info(&in, &dv, sc, NULL);
    in.lpszLocalAddress = local;
    in.lpszDnsServers = dns;
    return ImapConnectEx(&in);
}

/* lpszLocalAddress binds the SSH hop's socket: sshd sees the connection come from it,
 * for an in-process tunnel (_i 0) and for CREDENTIAL_TUNNEL_FORWARD (_i 1). */
START_TEST(local_address_binds_ssh_hop)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    int before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.2 "), after;
    HCLIENT h;
    if (_i)
        sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    h = connect_ex(&sc, "127.0.0.2", NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    /* the SSH connection is up, so sshd logged it already; still, wait rather than read once */
    after = iwt_log_wait(sshd.log, "Connection from 127.0.0.2 ", before + 1, 5000);
    ck_assert_msg(after == before + 1, "sshd saw %d connections from 127.0.0.2", after - before);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* An address this machine does not have: the bind fails here, before any packet leaves,
 * with the same error a plain TCP connect gives for it. */
START_TEST(foreign_local_address_fails)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPCONNECTINFO in;
    DWORD direct;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 5;
    in.lpszLocalAddress = "192.0.2.1";
    ck_assert(ImapConnectEx(&in) == INVALID_CLIENT);
    direct = ImapGetLastError();
    ck_assert_uint_ne(direct, ST_ERROR_NONE);
    if (_i)
        sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    ck_assert(connect_ex(&sc, "192.0.2.1", NULL) == INVALID_CLIENT);
    iwt_assert_error(direct);
}
END_TEST

/* lpszDnsServers resolves the SSH server's name: v4.imapwire.test exists only in the
 * test's dnsmasq, never in the system's resolver. */
START_TEST(dns_servers_resolve_ssh_host)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    char known[700];
    HCLIENT h;
    known_hosts_for("v4.imapwire.test", sshd.port, known, sizeof known);
    sc.lpszTunnelHost = "v4.imapwire.test";
    sc.lpszKnownHosts = known;
    if (_i)
        sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    h = connect_ex(&sc, NULL, dns_server);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    unlink(known);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh_hop");
    TCase *tc = tcase_create("hop");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_ssh_phase_has_its_own_timeout);
    tcase_add_test(tc, auth_phase_times_out_on_its_own);
    tcase_add_test(tc, silent_ssh_server_times_out);
    tcase_add_loop_test(tc, local_address_binds_ssh_hop, 0, 2);
    tcase_add_loop_test(tc, foreign_local_address_fails, 0, 2);
    tcase_add_loop_test(tc, dns_servers_resolve_ssh_host, 0, 2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
