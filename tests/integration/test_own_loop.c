/* test_own_loop.c: connects driven by the caller's own poll() loop through the
 * ImapConnectStart/Sockets/Action extension, against Dovecot and silent servers. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
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

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* What a drive saw: steps, the largest set, how often the set changed, timeouts. */
typedef struct drive_stats {
    int steps, max_set, changes, timeouts, write_wanted;
    int stalls;                    /* waits cut by the test's own 1 s bound, not asked for */
    int final_rc;
    DWORD error;
} drive_stats;

/* Steps h with poll() until the connect ends, max_steps Actions have run (-1: no
 * limit) or max_ms passed. Checks the contract on the way: every socket handed out is
 * open, and one that left the set is still open when the set is read again. */
static void drive(HCLIENT h, int max_steps, long long max_ms, drive_stats *st)
{
    IMAPSOCKET prev[IMAP_CONNECT_SOCKETS_MAX];
    int nprev = 0, i, j;
    long long until = iwt_now_ms() + max_ms;

    memset(st, 0, sizeof *st);
    st->final_rc = IMAP_CONNECT_PENDING;
    while (st->final_rc == IMAP_CONNECT_PENDING && iwt_now_ms() < until &&
           (max_steps < 0 || st->steps < max_steps)) {
        IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
        struct pollfd pfd[IMAP_CONNECT_SOCKETS_MAX];
        int n, tmo = -2, r, changed = 0, capped;

        n = ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo);
        ck_assert_msg(n >= 0, "sockets: error %u", (unsigned)ImapGetLastError());
        ck_assert_int_ge(tmo, 0);
        if (st->steps > 0)
            ck_assert_msg(n > 0 || tmo >= 0, "a running connect waits for something");
        for (i = 0; i < nprev; i++) {
            /* left the set or not, it was not closed under the caller */
            ck_assert_msg(fd_open(prev[i].nSocket), "fd %d closed before the caller saw the new set",
                          prev[i].nSocket);
        }
        for (i = 0; i < n; i++) {
            ck_assert(fd_open(s[i].nSocket));
            ck_assert(s[i].dwEvents != 0);
            ck_assert((s[i].dwEvents & ~(IMAP_SOCKET_READ | IMAP_SOCKET_WRITE)) == 0);
            if (s[i].dwEvents & IMAP_SOCKET_WRITE)
                st->write_wanted++;
            pfd[i].fd = s[i].nSocket;
            pfd[i].events = (short)(((s[i].dwEvents & IMAP_SOCKET_READ) ? POLLIN : 0) |
                                    ((s[i].dwEvents & IMAP_SOCKET_WRITE) ? POLLOUT : 0));
            pfd[i].revents = 0;
            for (j = 0; j < nprev && prev[j].nSocket != s[i].nSocket; j++)
                ;
            if (j == nprev)
                changed = 1;
        }
        if (n != nprev)
            changed = 1;
        if (getenv("IW_OWN_DEBUG")) {
            char path[64], link[128] = "";
            snprintf(path, sizeof path, "/proc/self/fd/%d", n ? s[0].nSocket : 0);
            if (readlink(path, link, sizeof link - 1) < 0)
                link[0] = '\0';
            printf("step %d: %d sockets (first %d/%u %s) timeout %d\n", st->steps, n,
                   n ? s[0].nSocket : -1, n ? (unsigned)s[0].dwEvents : 0u, link, tmo);
        }
        fflush(stdout);
        st->changes += changed && st->steps > 0;
        if (n > st->max_set)
            st->max_set = n;
        memcpy(prev, s, sizeof s[0] * (size_t)n);
        nprev = n;
        capped = tmo > 1000;
        if (capped)
            tmo = 1000;            /* the test's own bound on one wait */
        r = poll(pfd, (nfds_t)n, tmo);
        ck_assert(r >= 0 || errno == EINTR);
        if (r <= 0) {
            if (capped)
                st->stalls++;
            else
                st->timeouts += st->steps > 0;  /* the first step is due at once: no timeout */
            st->final_rc = ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0);
        } else {
            for (i = 0; i < n && pfd[i].revents == 0; i++)
                ;
            st->final_rc = ImapConnectAction(h, pfd[i].fd,
                                             ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                                                  ? IMAP_SOCKET_READ : 0) |
                                             ((pfd[i].revents & POLLOUT) ? IMAP_SOCKET_WRITE : 0));
        }
        st->steps++;
    }
    st->error = st->final_rc == IMAP_ERROR ? ImapGetLastError() : 0;
}

static IMAPCONNECTINFO info_for(const char *host, unsigned port, unsigned timeout, DWORD opt,
                                LPSECURITYCREDENTIALS sc)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = port;
    ci.nTimeout = timeout;
    ci.dwOptions = opt;
    ci.lpCredentials = sc;
    return ci;
}

static void login_noop(HCLIENT h, const iwt_dovecot *d)
{
    char result[256];
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, d->user, d->pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", result, sizeof result), 0);
    ck_assert_msg(strstr(result, "OK") != NULL, "%s", result);
}

/* A plain connect, step by step in a poll() loop; then an ordinary handle. */
START_TEST(plain_connect)
{
    IMAPCONNECTINFO ci = info_for(dv.host, dv.port, 10, IMAP_OPTION_IDENTIFY, NULL);
    IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
    IMAPTIMINGS tm;
    drive_stats st;
    int fds = iwt_count_fds(), tmo = -2;
    HCLIENT h = ImapConnectStart(&ci);

    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    /* nothing has run yet: no socket, and the first step is due at once */
    ck_assert_int_eq(ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo), 0);
    ck_assert_int_eq(tmo, 0);
    /* other calls wait for the end of the connect */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_IN_PROGRESS);
    drive(h, -1, 15000, &st);
    ck_assert_msg(st.final_rc == 0, "error %u after %d steps", (unsigned)st.error, st.steps);
    /* the first step only starts the connect: the server has not greeted yet */
    ck_assert_int_ge(st.steps, 2);
    /* ended: nothing to watch, no timeout; the same answer again */
    ck_assert_int_eq(ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo), 0);
    ck_assert_int_eq(tmo, -1);
    ck_assert_int_eq(ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0), 0);
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_uint_gt(tm.dwTotal, 0);
    login_noop(h, &dv);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* the duplicates went with the handle */
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

/* STARTTLS and implicit TLS on the TLS instance, driven the same way. */
START_TEST(tls_connects)
{
    const char *env = getenv("IW_DOVECOT_TLS_ENV");
    iwt_dovecot tv;
    char ca[700];
    SECURITYCREDENTIALS sc;
    int v;

    ck_assert_ptr_nonnull(env);
    iwt_dovecot_load_file(&tv, env);
    ck_assert_uint_gt(tv.imaps_port, 0);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", tv.dir);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    for (v = 0; v < 2; v++) {
        IMAPCONNECTINFO ci = v == 0
            ? info_for("127.0.0.1", tv.port, 10, IMAP_OPTION_SECURE_EXPLICIT, &sc)
            : info_for("127.0.0.1", tv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
        SECURITYINFO si;
        drive_stats st;
        int fds = iwt_count_fds();
        HCLIENT h = ImapConnectStart(&ci);
        ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
        drive(h, -1, 15000, &st);
        ck_assert_msg(st.final_rc == 0, "%s: error %u after %d steps",
                      v == 0 ? "starttls" : "implicit", (unsigned)st.error, st.steps);
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
        ck_assert(si.dwProtocol == SECURITY_PROTOCOL_TLS12 || si.dwProtocol == SECURITY_PROTOCOL_TLS13);
        ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
        login_noop(h, &tv);
        ck_assert_int_eq(ImapDisconnect(h), 0);
        ck_assert_int_eq(iwt_count_fds(), fds);
    }
}
END_TEST

/* A server that accepts and says nothing: the connect ends when the caller reports the
 * timeouts, with ST_ERROR_OPERATION_TIMEOUT, and not before the phase's nTimeout. */
START_TEST(silent_server_times_out)
{
    iwt_fixture f;
    IMAPCONNECTINFO ci;
    drive_stats st;
    long long t0, took;
    HCLIENT h;

    iwt_fixture_start(&f, "silent", 10);
    ci = info_for("127.0.0.1", f.port, 1, IMAP_OPTION_NONE, NULL);
    h = ImapConnectStart(&ci);
    ck_assert(h != INVALID_CLIENT);
    t0 = iwt_now_ms();
    drive(h, -1, 10000, &st);
    took = iwt_now_ms() - t0;
    ck_assert_int_eq(st.final_rc, IMAP_ERROR);
    ck_assert_uint_eq(st.error, ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_int_ge(st.timeouts, 1);
    ck_assert_msg(took >= 950 && took < 4000, "took %lld ms", took);
    /* the handle stays until disconnected; its calls say it is closed */
    ck_assert_int_eq(ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

/* A SYN that is never answered (tcp_blackhole): the same timeout, from the TCP phase. */
START_TEST(blackhole_times_out)
{
    const char *bin = getenv("IW_TCP_BLACKHOLE_BIN");
    const char *argv[] = { bin, "--addr", "127.0.0.3", "--idle-exit", "30", NULL };
    iwt_fixture f;
    IMAPCONNECTINFO ci;
    drive_stats st;
    long long t0, took;
    HCLIENT h;

    ck_assert_ptr_nonnull(bin);
    memset(&f, 0, sizeof f);
    iwt_spawn(&f, argv, "tcp_blackhole");
    ci = info_for("127.0.0.3", f.port, 1, IMAP_OPTION_NONE, NULL);
    h = ImapConnectStart(&ci);
    ck_assert(h != INVALID_CLIENT);
    t0 = iwt_now_ms();
    drive(h, -1, 10000, &st);
    took = iwt_now_ms() - t0;
    ck_assert_int_eq(st.final_rc, IMAP_ERROR);
    ck_assert_uint_eq(st.error, ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_int_ge(st.timeouts, 1);
    ck_assert_msg(took >= 950 && took < 4000, "took %lld ms", took);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

static unsigned free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

START_TEST(refused_port)
{
    IMAPCONNECTINFO ci = info_for("127.0.0.1", free_port(), 5, IMAP_OPTION_NONE, NULL);
    IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
    drive_stats st;
    int tmo = 0, fds = iwt_count_fds();
    HCLIENT h = ImapConnectStart(&ci);

    ck_assert(h != INVALID_CLIENT);
    drive(h, -1, 5000, &st);
    ck_assert_int_eq(st.final_rc, IMAP_ERROR);
    ck_assert_uint_eq(st.error, ST_ERROR_CONNECTION_REFUSED);
    ck_assert_int_eq(st.timeouts, 0);
    ck_assert_int_eq(ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo), 0);
    ck_assert_int_eq(tmo, -1);
    /* a failed connect is no session: no IN_PROGRESS, and no command goes anywhere */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), IMAP_ERROR);
    ck_assert_uint_ne(ImapGetLastError(), ST_ERROR_IN_PROGRESS);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

/* ImapDisconnect after 0, 1, 2, ... steps, three rounds each, plain and implicit TLS:
 * it always works, the handle is dead after it, and nothing is left open. */
START_TEST(disconnect_midway)
{
    const char *env = getenv("IW_DOVECOT_TLS_ENV");
    iwt_dovecot tv;
    SECURITYCREDENTIALS sc;
    char ca[700];
    int v, k, round, fds = iwt_count_fds(), completed = 0;

    iwt_dovecot_load_file(&tv, env);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", tv.dir);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    for (v = 0; v < 2; v++) {
        for (k = 0; k <= 12; k++) {
            for (round = 0; round < 3; round++) {
                IMAPCONNECTINFO ci = v == 0
                    ? info_for(dv.host, dv.port, 10, IMAP_OPTION_IDENTIFY, NULL)
                    : info_for("127.0.0.1", tv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
                drive_stats st;
                HCLIENT h = ImapConnectStart(&ci);
                ck_assert(h != INVALID_CLIENT);
                drive(h, k, 10000, &st);
                ck_assert_msg(st.final_rc == IMAP_CONNECT_PENDING || st.final_rc == 0,
                              "k=%d: rc %d error %u", k, st.final_rc, (unsigned)st.error);
                completed += st.final_rc == 0;
                ck_assert_int_eq(ImapDisconnect(h), 0);
                ck_assert_int_eq(ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0), IMAP_ERROR);
                iwt_assert_error(ST_ERROR_INVALID_HANDLE);
                ck_assert_int_eq(ImapDisconnect(h), IMAP_ERROR);
                iwt_assert_error(ST_ERROR_INVALID_HANDLE);
                ck_assert_int_eq(iwt_count_fds(), fds);
            }
        }
    }
    /* the later rounds get all the way: the cut comes at every point of the connect */
    ck_assert_int_gt(completed, 0);
    ck_assert_int_lt(completed, 2 * 13 * 3);
}
END_TEST

/* The trace callback disconnects its own handle at its n-th line, in the middle of a
 * step: the step frees the handle when it returns and says so. */
typedef struct cut_at {
    HCLIENT h;
    int lines, at, done;
    DWORD nested;                  /* what a nested ImapConnectAction said */
} cut_at;

static void cut_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    cut_at *c = param;
    (void)dir;
    (void)line;
    (void)n;
    if (c->done || h != c->h)
        return;
    /* a step cannot be entered again from inside itself */
    if (c->nested == 0 && ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0) == IMAP_ERROR)
        c->nested = ImapGetLastError();
    if (++c->lines == c->at) {
        ck_assert_int_eq(ImapDisconnect(h), 0);
        c->done = 1;
    }
}

START_TEST(disconnect_from_trace)
{
    int at, fds = iwt_count_fds();
    for (at = 1; at <= 6; at++) {
        cut_at cut;
        IMAPCONNECTINFO ci = info_for(dv.host, dv.port, 10, IMAP_OPTION_IDENTIFY, NULL);
        drive_stats st;
        HCLIENT h;
        memset(&cut, 0, sizeof cut);
        cut.at = at;
        ci.lpTraceProc = cut_trace;
        ci.lpParam = &cut;
        h = ImapConnectStart(&ci);
        ck_assert(h != INVALID_CLIENT);
        cut.h = h;
        drive(h, -1, 10000, &st);
        ck_assert_msg(cut.done, "only %d trace lines", cut.lines);
        ck_assert_uint_eq(cut.nested, ST_ERROR_IN_PROGRESS);
        ck_assert_int_eq(st.final_rc, IMAP_ERROR);
        ck_assert_uint_eq(st.error, ST_ERROR_INVALID_HANDLE);
        ck_assert_int_eq(ImapDisconnect(h), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_INVALID_HANDLE);
        ck_assert_int_eq(iwt_count_fds(), fds);
    }
}
END_TEST

/* A name with two addresses, the first swallowing SYNs, and implicit TLS: the set goes
 * from the lookup (c-ares behind an epoll descriptor, unless it answered inside the
 * first step) to the racing attempts (another epoll descriptor in the TCP layer) to the
 * winner's socket for the handshake; each descriptor that leaves stays open until the
 * caller has seen the set without it (drive checks that). */
static void changing_sets_run(void)
{
    const char *bin = getenv("IW_TCP_BLACKHOLE_BIN");
    const char *dns_env = getenv("IW_DNS_ENV");
    const char *tls_env = getenv("IW_DOVECOT_TLS_ENV");
    char port[16], servers[64];
    const char *argv[] = { bin, "--addr", "127.0.0.3", "--port", port, "--idle-exit", "60", NULL };
    iwt_dovecot tv;
    iwt_fixture f;
    IMAPCONNECTINFO ci;
    drive_stats st;
    int fds;
    HCLIENT h;

    ck_assert_ptr_nonnull(bin);
    ck_assert_ptr_nonnull(dns_env);
    ck_assert_ptr_nonnull(tls_env);
    iwt_dovecot_load_file(&tv, tls_env);
    iwt_env_value(dns_env, "DNSMASQ_SERVER", servers, sizeof servers);
    ck_assert(servers[0] != '\0');
    snprintf(port, sizeof port, "%u", tv.imaps_port);
    memset(&f, 0, sizeof f);
    iwt_spawn(&f, argv, "tcp_blackhole");
    fds = iwt_count_fds();
    /* the certificate names 127.0.0.1, not the test name: this test is about sockets */
    ci = info_for("blackhole.imapwire.test", tv.imaps_port, 10,
                  IMAP_OPTION_SECURE_IMPLICIT | IMAP_OPTION_TRUSTEDSITE, NULL);
    ci.lpszDnsServers = servers;
    h = ImapConnectStart(&ci);
    ck_assert(h != INVALID_CLIENT);
    drive(h, -1, 15000, &st);
    ck_assert_msg(st.final_rc == 0, "error %u", (unsigned)st.error);
    printf("changing sets: %d steps, %d changes, largest set %d, %d timeouts, %d stalls\n",
           st.steps, st.changes, st.max_set, st.timeouts, st.stalls);
    ck_assert_int_ge(st.changes, 2);
    /* Every step came from a descriptor or a timeout the library asked for: a caller
     * left watching a stale descriptor would sit until the test's 1 s bound. */
    ck_assert_int_eq(st.stalls, 0);
    /* the second attempt starts on a timer, not on a socket */
    ck_assert_int_ge(st.timeouts, 1);
    login_noop(h, &tv);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(iwt_count_fds(), fds);
    iwt_fixture_stop(&f);
}

START_TEST(changing_sets)
{
    changing_sets_run();
}
END_TEST

/* Where seccomp refuses kcmp (as container runtimes' default profiles do), sockets are
 * still told apart by inode and epoll descriptors count as new at each step: the same
 * connects work, under the same checks. */
START_TEST(without_kcmp)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kcmp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof filter / sizeof filter[0]), filter };
    IMAPCONNECTINFO ci = info_for(dv.host, dv.port, 10, IMAP_OPTION_IDENTIFY, NULL);
    drive_stats st;
    HCLIENT h;

    /* this test runs in its own forked process: the filter ends with it */
    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
    ck_assert_int_eq(syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    h = ImapConnectStart(&ci);
    ck_assert(h != INVALID_CLIENT);
    drive(h, -1, 15000, &st);
    ck_assert_msg(st.final_rc == 0, "error %u", (unsigned)st.error);
    login_noop(h, &dv);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    changing_sets_run();
}
END_TEST

/* Through an in-process SSH tunnel: the SSH phases run in the same steps, and a cut at
 * any step tears the half-made session down. */
START_TEST(ssh_tunnel)
{
    const char *env = getenv("IW_SSHD_ENV");
    iwt_sshd sshd;
    SECURITYCREDENTIALS sc;
    SECURITYINFO si;
    IMAPCONNECTINFO ci;
    drive_stats st;
    int fds, k, steps;
    HCLIENT h;

    ck_assert_ptr_nonnull(env);
    iwt_sshd_load(&sshd, env);
    sc = iwt_tunnel_creds(&sshd);
    ci = info_for("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    fds = iwt_count_fds();
    h = ImapConnectStart(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    drive(h, -1, 20000, &st);
    ck_assert_msg(st.final_rc == 0, "error %u after %d steps", (unsigned)st.error, st.steps);
    steps = st.steps;
    printf("ssh tunnel: %d steps, %d set changes, %d sets with writing\n", st.steps, st.changes,
           st.write_wanted);
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwTunnelProtocol, SECURITY_PROTOCOL_SSH2);
    login_noop(h, &dv);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* libssh2 (1.10) forgets 2 x 48 bytes when a session is freed in the middle of its
     * key exchange; the session's end frees them (ssh_io.c lists libssh2's blocks), so the
     * cuts run under LeakSanitizer too. */
    for (k = 1; k < steps; k++) {
        h = ImapConnectStart(&ci);
        ck_assert(h != INVALID_CLIENT);
        drive(h, k, 20000, &st);
        ck_assert_msg(st.final_rc == IMAP_CONNECT_PENDING || st.final_rc == 0,
                      "k=%d: rc %d error %u", k, st.final_rc, (unsigned)st.error);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    /* shared SSH sessions may outlive a connect briefly; give them a bounded moment */
    for (k = 0; k < 100 && iwt_count_fds() != fds; k++)
        usleep(20000);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

static void on_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    (void)h;
    (void)err;
    if (id == IMAP_EVENT_CONNECT)
        __atomic_store_n((int *)param, 1, __ATOMIC_RELEASE);
}

static void *other_thread(void *arg)
{
    HCLIENT h = *(HCLIENT *)arg;
    IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
    int tmo;
    DWORD *out = malloc(2 * sizeof *out);
    out[0] = ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0) == IMAP_ERROR ? ImapGetLastError() : 0;
    out[1] = ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo) == IMAP_ERROR
                 ? ImapGetLastError() : 0;
    return out;
}

/* Every misuse gets its own error, and none of them disturbs the connect. */
START_TEST(wrong_arguments)
{
    IMAPCONNECTINFO ci = info_for(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
    SECURITYCREDENTIALS sc;
    drive_stats st;
    pthread_t th;
    DWORD *errs;
    int tmo = 0, fired = 0;
    HCLIENT h, plain, async;

    ck_assert_int_eq(ImapConnectAction(INVALID_CLIENT, IMAP_SOCKET_TIMEOUT, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert_int_eq(ImapConnectSockets((HCLIENT)0x5a5a5a, s, 8, &tmo), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert(ImapConnectStart(NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    /* an event procedure belongs to the library's loop */
    ci.lpEventProc = on_event;
    ci.lpParam = &fired;
    ck_assert(ImapConnectStart(&ci) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ci.lpEventProc = NULL;
    ci.lpParam = NULL;
    /* a private forward is opened (SSH authenticated) at once: not for this loop */
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    sc.lpszTunnelHost = "127.0.0.1";
    sc.lpszTunnelUser = "nobody";
    ci.dwOptions = IMAP_OPTION_TUNNEL;
    ci.lpCredentials = &sc;
    ck_assert(ImapConnectStart(&ci) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_FEATURE_NOT_AVAILABLE);
    ci.dwOptions = IMAP_OPTION_NONE;
    ci.lpCredentials = NULL;
    ci.lpszHostName = "";
    ck_assert(ImapConnectStart(&ci) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ci.lpszHostName = dv.host;

    /* handles the extension did not make */
    plain = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(plain != INVALID_CLIENT);
    ck_assert_int_eq(ImapConnectAction(plain, IMAP_SOCKET_TIMEOUT, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapConnectSockets(plain, s, 8, &tmo), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    async = ImapAsyncConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL, on_event, &fired);
    ck_assert(async != INVALID_CLIENT);
    ck_assert_int_eq(ImapConnectAction(async, IMAP_SOCKET_TIMEOUT, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);

    h = ImapConnectStart(&ci);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapConnectSockets(h, s, 8, NULL), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapConnectSockets(h, NULL, 8, &tmo), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0x80), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    /* a descriptor it never handed out (stdin, the plain handle's, nonsense) */
    ck_assert_int_eq(ImapConnectAction(h, 0, IMAP_SOCKET_READ), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapConnectAction(h, -7, IMAP_SOCKET_READ), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    drive(h, 1, 5000, &st);
    ck_assert_int_eq(st.final_rc, IMAP_CONNECT_PENDING);
    ck_assert_int_eq(ImapConnectSockets(h, s, 8, &tmo), 1);
    /* no room for the set */
    ck_assert_int_eq(ImapConnectSockets(h, s, 0, &tmo), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_BUFFER_TOO_SMALL);
    /* another thread: not its handle */
    ck_assert_int_eq(pthread_create(&th, NULL, other_thread, &h), 0);
    ck_assert_int_eq(pthread_join(th, (void **)&errs), 0);
    ck_assert_uint_eq(errs[0], ST_ERROR_NOT_HANDLE_OWNER);
    ck_assert_uint_eq(errs[1], ST_ERROR_NOT_HANDLE_OWNER);
    free(errs);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_IN_PROGRESS);
    /* none of that hurt the connect */
    drive(h, -1, 10000, &st);
    ck_assert_msg(st.final_rc == 0, "error %u", (unsigned)st.error);
    login_noop(h, &dv);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(ImapDisconnect(plain), 0);
    ck_assert_int_eq(ImapDisconnect(async), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("own_loop");
    TCase *tc = tcase_create("own_loop");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, plain_connect);
    tcase_add_test(tc, tls_connects);
    tcase_add_test(tc, silent_server_times_out);
    tcase_add_test(tc, blackhole_times_out);
    tcase_add_test(tc, refused_port);
    tcase_add_test(tc, disconnect_midway);
    tcase_add_test(tc, disconnect_from_trace);
    tcase_add_test(tc, changing_sets);
    tcase_add_test(tc, without_kcmp);
    tcase_add_test(tc, wrong_arguments);
    tcase_add_test(tc, ssh_tunnel);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
