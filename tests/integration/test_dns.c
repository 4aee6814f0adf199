/* test_dns.c: names resolved through c-ares against a real dnsmasq: A and AAAA, RFC 8305
 * racing (refused and silent first addresses), errors, server lists, local address. */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "iwtest.h"

static iwt_dovecot dv;
static char dns_server[64];

static void setup(void)
{
    const char *env = getenv("IW_DNS_ENV");
    char line[256];
    FILE *f;
    iwt_dovecot_load(&dv);
    ck_assert_msg(env != NULL, "IW_DNS_ENV not set (run through ctest)");
    f = fopen(env, "r");
    ck_assert_ptr_nonnull(f);
    dns_server[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "DNSMASQ_SERVER=%63s", dns_server) == 1)
            break;
    fclose(f);
    ck_assert_msg(dns_server[0] != '\0', "no DNSMASQ_SERVER in %s", env);
    /* every lookup in this suite goes to the local dnsmasq, never the system's */
    setenv("IMAPWIRE_DNS_SERVERS", dns_server, 1);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

typedef struct note_log {
    char text[16384];
    size_t len;
} note_log;

static void note_cb(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    note_log *t = param;
    (void)h;
    if (dir != 3 || n < 0 || t->len + (size_t)n + 2 >= sizeof t->text)
        return;
    memcpy(t->text + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->text[t->len++] = '\n';
    t->text[t->len] = '\0';
}

static HCLIENT connect_traced(const char *host, unsigned port, UINT timeout, note_log *t,
                              const char *local)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = port;
    ci.nTimeout = timeout;
    ci.lpszLocalAddress = local;
    ci.lpTraceProc = note_cb;
    ci.lpParam = t;
    return ImapConnectEx(&ci);
}

/* The TCP phase of one connect (IMAPTIMINGS.dwConnect) in ms: it leaves out resolution
 * and the greeting, whose cost on a loaded machine says nothing about the race. */
static long long tcp_phase_ms(const char *host, note_log *t)
{
    IMAPTIMINGS tm;
    HCLIENT h;
    t->len = 0;
    t->text[0] = '\0';
    h = connect_traced(host, dv.port, 10, t, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u\n%s", (unsigned)ImapGetLastError(), t->text);
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    return (long long)tm.dwConnect / 1000;
}

/* The attempt delay is a floor the code cannot get under, while a loaded machine only
 * ever adds time: the fastest of a few runs tells "waited for the delay" from "did not"
 * without a bound a busy scheduler can break. */
#define ATTEMPT_DELAY_MS 250
#define RACE_RUNS 3

/* Lines of a log file holding needle, waited for (bounded): the file is written by
 * another process, so a read right after the event may come too early. */
static int wait_in_file(const char *path, const char *needle, int want, long long ms)
{
    long long until = iwt_now_ms() + ms;
    int n;
    while ((n = iwt_count_in_file(path, needle)) < want && iwt_now_ms() < until)
        usleep(20000);
    return n;
}

START_TEST(v4_name)
{
    static const char *names[] = { "v4.imapwire.test", "v4.imapwire.test.", "V4.IMAPWIRE.TEST" };
    note_log *t = calloc(1, sizeof *t);
    IMAPTIMINGS tm;
    HCLIENT h = connect_traced(names[_i], dv.port, 10, t, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u\n%s", (unsigned)ImapGetLastError(), t->text);
    ck_assert_ptr_nonnull(strstr(t->text, "has address 127.0.0.1"));
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_uint_gt(tm.dwResolve, 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(t);
}
END_TEST

/* An IPv6-only name: the answer is ::1, which this test serves itself. */
static void *v6_server(void *arg)
{
    int ls = *(int *)arg, cs;
    char buf[256];
    ssize_t n;
    cs = accept(ls, NULL, NULL);
    if (cs < 0)
        return NULL;
    if (write(cs, "* OK [CAPABILITY IMAP4rev1] v6 here\r\n", 37) < 0) {
        close(cs);
        return NULL;
    }
    n = read(cs, buf, sizeof buf);
    if (n > 0 && write(cs, "* BYE bye\r\nA0001 OK done\r\n", 26) < 0)
        n = 0;
    close(cs);
    return NULL;
}

START_TEST(v6_name)
{
    struct sockaddr_in6 a;
    socklen_t len = sizeof a;
    pthread_t th;
    note_log *t = calloc(1, sizeof *t);
    int ls = socket(AF_INET6, SOCK_STREAM, 0);
    HCLIENT h;

    ck_assert_int_ge(ls, 0);
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(ls, 4), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, v6_server, &ls), 0);
    h = connect_traced("v6.imapwire.test", ntohs(a.sin6_port), 5, t, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u\n%s", (unsigned)ImapGetLastError(), t->text);
    ck_assert_msg(strstr(t->text, "connected to [::1]") != NULL, "%s", t->text);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    pthread_join(th, NULL);
    close(ls);
    free(t);
}
END_TEST

/* Both families: ::1 is refused (Dovecot listens on IPv4), the next family follows at
 * once, not after the attempt delay. */
START_TEST(both_families)
{
    note_log *t = calloc(1, sizeof *t);
    long long ms, best = -1;
    int run;
    for (run = 0; run < RACE_RUNS && (best < 0 || best >= ATTEMPT_DELAY_MS); run++) {
        ms = tcp_phase_ms("both.imapwire.test", t);
        ck_assert_msg(strstr(t->text, "has address [::1]") != NULL, "%s", t->text);
        ck_assert_msg(strstr(t->text, "has address 127.0.0.1") != NULL, "%s", t->text);
        ck_assert_msg(strstr(t->text, "connected to 127.0.0.1") != NULL, "%s", t->text);
        if (best < 0 || ms < best)
            best = ms;
    }
    ck_assert_msg(best < ATTEMPT_DELAY_MS, "TCP phase %lld ms at best in %d runs", best, run);
    free(t);
}
END_TEST

/* The first address refuses: the second is tried immediately, not after 250 ms. */
START_TEST(refused_then_next)
{
    note_log *t = calloc(1, sizeof *t);
    long long ms, best = -1;
    int run;
    for (run = 0; run < RACE_RUNS && (best < 0 || best >= ATTEMPT_DELAY_MS); run++) {
        ms = tcp_phase_ms("fallback.imapwire.test", t);
        ck_assert_msg(strstr(t->text, "trying 127.0.0.2") != NULL, "%s", t->text);
        ck_assert_msg(strstr(t->text, "connected to 127.0.0.1") != NULL, "%s", t->text);
        if (best < 0 || ms < best)
            best = ms;
    }
    ck_assert_msg(best < ATTEMPT_DELAY_MS, "TCP phase %lld ms at best in %d runs", best, run);
    free(t);
}
END_TEST

/* The first address swallows SYNs: the second starts one attempt delay later (never
 * sooner, and not two delays later) and wins; the loser is closed at once. */
START_TEST(happy_eyeballs)
{
    const char *bin = getenv("IW_TCP_BLACKHOLE_BIN");
    char port[16];
    const char *argv[] = { bin, "--addr", "127.0.0.3", "--port", port, "--idle-exit", "60", NULL };
    note_log *t = calloc(1, sizeof *t);
    iwt_fixture f;
    long long ms, best = -1;
    HCLIENT h;
    int fds, run;

    ck_assert_ptr_nonnull(bin);
    snprintf(port, sizeof port, "%u", dv.port);
    memset(&f, 0, sizeof f);
    iwt_spawn(&f, argv, "tcp_blackhole");
    for (run = 0; run < RACE_RUNS && (best < 0 || best >= 2 * ATTEMPT_DELAY_MS); run++) {
        ms = tcp_phase_ms("blackhole.imapwire.test", t);
        printf("happy eyeballs: tcp phase %lld ms\n", ms);
        ck_assert_msg(strstr(t->text, "trying 127.0.0.3") != NULL, "%s", t->text);
        ck_assert_msg(strstr(t->text, "connected to 127.0.0.1") != NULL, "%s", t->text);
        /* the delay is a floor on every run, load or not */
        ck_assert_msg(ms >= ATTEMPT_DELAY_MS - 10, "tcp phase %lld ms", ms);
        if (best < 0 || ms < best)
            best = ms;
    }
    ck_assert_msg(best < 2 * ATTEMPT_DELAY_MS, "TCP phase %lld ms at best in %d runs", best, run);
    /* only the winner's socket is left open */
    fds = iwt_count_fds();
    h = connect_traced("blackhole.imapwire.test", dv.port, 10, t, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(iwt_count_fds(), fds + 1);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
    free(t);
}
END_TEST

/* Twelve addresses, the first eleven swallowing SYNs: more attempts in flight than a poll
 * set has room for. Every attempt must stay watched, so the twelfth (Dovecot) wins about
 * 11 x 250 ms in, long before the timeout. */
START_TEST(many_addresses)
{
    const char *bin = getenv("IW_TCP_BLACKHOLE_BIN");
    enum { NHOLES = 11, TIMEOUT_S = 10 };
    iwt_fixture holes[NHOLES];
    note_log *t = calloc(1, sizeof *t);
    long long t0, took;
    HCLIENT h;
    int i, fds;

    ck_assert_ptr_nonnull(bin);
    for (i = 0; i < NHOLES; i++) {
        char addr[32], port[16];
        const char *argv[] = { bin, "--addr", addr, "--port", port, "--idle-exit", "60", NULL };
        snprintf(addr, sizeof addr, "127.0.0.%d", 11 + i);
        snprintf(port, sizeof port, "%u", dv.port);
        memset(&holes[i], 0, sizeof holes[i]);
        iwt_spawn(&holes[i], argv, "tcp_blackhole");
    }
    fds = iwt_count_fds();
    t0 = iwt_now_ms();
    h = connect_traced("many.imapwire.test", dv.port, TIMEOUT_S, t, NULL);
    took = iwt_now_ms() - t0;
    printf("many addresses: 12th address connected after %lld ms\n", took);
    ck_assert_msg(h != INVALID_CLIENT, "error %u after %lld ms\n%s", (unsigned)ImapGetLastError(),
                  took, t->text);
    ck_assert_msg(strstr(t->text, "trying 127.0.0.21") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "connected to 127.0.0.1") != NULL, "%s", t->text);
    /* the twelfth attempt starts after eleven delays; the timeout is far beyond */
    ck_assert_msg(took >= 11 * 250 - 10 && took < TIMEOUT_S * 1000 / 2, "took %lld ms", took);
    /* the eleven losers are closed: only the winner's socket is left */
    ck_assert_int_eq(iwt_count_fds(), fds + 1);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    for (i = 0; i < NHOLES; i++)
        iwt_fixture_stop(&holes[i]);
    free(t);
}
END_TEST

/* Twenty addresses (all but the last refuse): the client races a bounded number of them,
 * and says so in the trace instead of dropping the rest without a word. */
START_TEST(too_many_addresses)
{
    note_log *t = calloc(1, sizeof *t);
    HCLIENT h = connect_traced("toomany.imapwire.test", dv.port, 10, t, NULL);
    ck_assert(h == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert_msg(strstr(t->text, "toomany.imapwire.test has 20 addresses; trying the first 16")
                  != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "trying 127.0.0.46") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "trying 127.0.0.47") == NULL, "%s", t->text);
    free(t);
}
END_TEST

/* Ten DNS servers, the first nine silent: c-ares opens a socket per server and keeps them
 * all until the lookup ends, more than a poll set holds. The tenth must still be asked
 * and its answer read, within the one timeout. */
START_TEST(many_dns_servers)
{
    const char *bin = getenv("IW_DNS_BLACKHOLE_BIN");
    enum { NSILENT = 9, TIMEOUT_S = 10 };
    iwt_fixture silent[NSILENT];
    char servers[512];
    size_t used = 0;
    note_log *t = calloc(1, sizeof *t);
    long long t0, took;
    IMAPCONNECTINFO ci;
    HCLIENT h;
    int i, fds;

    ck_assert_ptr_nonnull(bin);
    for (i = 0; i < NSILENT; i++) {
        const char *argv[] = { bin, "--idle-exit", "60", NULL };
        memset(&silent[i], 0, sizeof silent[i]);
        iwt_spawn(&silent[i], argv, "dns_blackhole");
        used += (size_t)snprintf(servers + used, sizeof servers - used, "127.0.0.1:%u,",
                                 silent[i].port);
    }
    snprintf(servers + used, sizeof servers - used, "%s", dns_server);
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "v4.imapwire.test";
    ci.nRemotePort = dv.port;
    ci.nTimeout = TIMEOUT_S;
    ci.lpszDnsServers = servers;
    ci.lpTraceProc = note_cb;
    ci.lpParam = t;
    fds = iwt_count_fds();
    t0 = iwt_now_ms();
    h = ImapConnectEx(&ci);
    took = iwt_now_ms() - t0;
    printf("many DNS servers: answered by the 10th after %lld ms\n", took);
    ck_assert_msg(h != INVALID_CLIENT, "error %u after %lld ms\n%s", (unsigned)ImapGetLastError(),
                  took, t->text);
    ck_assert_msg(strstr(t->text, "has address 127.0.0.1") != NULL, "%s", t->text);
    ck_assert_msg(took < TIMEOUT_S * 1000, "took %lld ms", took);
    /* the resolver's sockets are gone with the lookup */
    ck_assert_int_eq(iwt_count_fds(), fds + 1);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    for (i = 0; i < NSILENT; i++)
        iwt_fixture_stop(&silent[i]);
    free(t);
}
END_TEST

START_TEST(name_errors)
{
    static const char *names[] = { "nosuch.imapwire.test", "empty.imapwire.test" };
    long long t0 = iwt_now_ms();
    ck_assert(ImapConnect(names[_i], dv.port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_HOST_NOT_FOUND);
    ck_assert_int_lt(iwt_now_ms() - t0, 2000);
}
END_TEST

/* A DNS server that never answers: the lookup ends with the timeout, not later. */
START_TEST(dns_timeout)
{
    const char *bin = getenv("IW_DNS_BLACKHOLE_BIN");
    const char *argv[] = { bin, "--idle-exit", "60", NULL };
    char servers[64];
    iwt_fixture f;
    IMAPCONNECTINFO ci;
    long long t0, took;

    ck_assert_ptr_nonnull(bin);
    memset(&f, 0, sizeof f);
    iwt_spawn(&f, argv, "dns_blackhole");
    snprintf(servers, sizeof servers, "127.0.0.1:%u", f.port);
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "v4.imapwire.test";
    ci.nRemotePort = dv.port;
    ci.nTimeout = 2;
    ci.lpszDnsServers = servers;
    t0 = iwt_now_ms();
    ck_assert(ImapConnectEx(&ci) == INVALID_CLIENT);
    took = iwt_now_ms() - t0;
    iwt_assert_error(ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_msg(took >= 1500 && took < 3000, "took %lld ms", took);
    iwt_fixture_stop(&f);
}
END_TEST

START_TEST(bad_parameters)
{
    static const char *bad_servers[] = { "127.0.0.1:notaport", "300.1.1.1", "[::1", "127.0.0.1,",
                                         "127.0.0.1:0", "dns.example.com" };
    IMAPCONNECTINFO ci;
    size_t i;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "v4.imapwire.test";
    ci.nRemotePort = dv.port;
    ci.nTimeout = 5;
    for (i = 0; i < sizeof bad_servers / sizeof bad_servers[0]; i++) {
        ci.lpszDnsServers = bad_servers[i];
        ck_assert_msg(ImapConnectEx(&ci) == INVALID_CLIENT, "%s accepted", bad_servers[i]);
        iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    }
    ci.lpszDnsServers = NULL;
    ci.lpszLocalAddress = "300.1.1.1";
    ck_assert(ImapConnectEx(&ci) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ci.lpszLocalAddress = "not-an-address";
    ck_assert(ImapConnectEx(&ci) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    /* an environment list that is not valid is refused the same way */
    setenv("IMAPWIRE_DNS_SERVERS", "nonsense", 1);
    ck_assert(ImapConnect("v4.imapwire.test", dv.port, 5, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

/* The outgoing socket is bound where asked: Dovecot logs the address it saw. */
START_TEST(local_address)
{
    note_log *t = calloc(1, sizeof *t);
    int before = iwt_count_in_file(dv.log, "rip=127.0.0.5");
    HCLIENT h = connect_traced("v4.imapwire.test", dv.port, 10, t, "127.0.0.5");
    ck_assert_msg(h != INVALID_CLIENT, "error %u\n%s", (unsigned)ImapGetLastError(), t->text);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* Dovecot writes its log from another process: wait for the line, bounded */
    ck_assert_msg(wait_in_file(dv.log, "rip=127.0.0.5", before + 1, 5000) >= before + 1,
                  "Dovecot did not see 127.0.0.5");
    free(t);
}
END_TEST

/* 1,000 resolving connects leave no channel or socket behind. */
START_TEST(no_leaks_over_many)
{
    int fds, i;
    for (i = 0; i < 3; i++) {
        HCLIENT h = ImapConnect("v4.imapwire.test", dv.port, 10, IMAP_OPTION_NONE, NULL);
        ck_assert(h != INVALID_CLIENT);
        ImapDisconnect(h);
    }
    fds = iwt_count_fds();
    for (i = 0; i < 1000; i++) {
        HCLIENT h = ImapConnect(i % 2 ? "v4.imapwire.test" : "fallback.imapwire.test", dv.port,
                                10, IMAP_OPTION_NONE, NULL);
        ck_assert_msg(h != INVALID_CLIENT, "connect %d: error %u", i, (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    ck_assert_int_eq(iwt_count_fds(), fds);
    /* failures too: not found */
    for (i = 0; i < 100; i++)
        ck_assert(ImapConnect("nosuch.imapwire.test", dv.port, 10, IMAP_OPTION_NONE, NULL) == INVALID_CLIENT);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("dns");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, v4_name, 0, 3);
    tcase_add_test(tc, v6_name);
    tcase_add_test(tc, both_families);
    tcase_add_test(tc, refused_then_next);
    tcase_add_test(tc, happy_eyeballs);
    tcase_add_test(tc, many_addresses);
    tcase_add_test(tc, too_many_addresses);
    tcase_add_test(tc, many_dns_servers);
    tcase_add_loop_test(tc, name_errors, 0, 2);
    tcase_add_test(tc, dns_timeout);
    tcase_add_test(tc, bad_parameters);
    tcase_add_test(tc, local_address);
    tcase_add_test(tc, no_leaks_over_many);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
