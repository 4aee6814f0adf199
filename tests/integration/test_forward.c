/* test_forward.c: port-forwards with OpenSSH sshd and Dovecot: library-managed forwards
 * (ImapCreatePortForward, CREDENTIAL_TUNNEL_FORWARD) and a forward the caller made (ssh -L). */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "iwtest.h"
#include "sshd_log.h"

static iwt_sshd sshd;
static iwt_dovecot dv, dvtls;
static char ca[700];

static void setup(void)
{
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

#define FORWARDED 100

/* 100 connections at once through one forward: one SSH connection carries them all;
 * closing stops the port and leaves no descriptor behind. */
START_TEST(hundred_through_one_forward)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    static HCLIENT h[FORWARDED];
    UINT bound = 0;
    HFORWARD f;
    int fds0, before, i;

    fds0 = iwt_count_fds();
    before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1");
    f = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &bound);
    ck_assert_msg(f != INVALID_FORWARD, "error %u", (unsigned)ImapGetLastError());
    ck_assert_uint_gt(bound, 0);
    for (i = 0; i < FORWARDED; i++) {
        /* the local port says nothing of the far end: TUNNEL keeps 993 from meaning TLS */
        h[i] = ImapConnect("127.0.0.1", bound, 10, IMAP_OPTION_TUNNEL, NULL);
        ck_assert_msg(h[i] != INVALID_CLIENT, "connect %d: error %u", i, (unsigned)ImapGetLastError());
    }
    for (i = 0; i < FORWARDED; i++) {
        ck_assert_int_eq(ImapLogin(h[i], IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert_int_eq(ImapCommand(h[i], "NOOP", NULL, 0), 0);
    }
    for (i = 0; i < FORWARDED; i++)
        ck_assert_int_eq(ImapDisconnect(h[i]), 0);
    /* the marker proves sshd's log caught up: no second SSH connection can hide */
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Connection from 127.0.0.1") - before, 1);
    ck_assert(ImapClosePortForward(f));
    ck_assert(ImapConnect("127.0.0.1", bound, 5, IMAP_OPTION_TUNNEL, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert(!ImapClosePortForward(f));
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    /* the loop thread's own wake-up descriptor goes with the last ImapUninitialize */
    ck_assert(ImapUninitialize());
    ck_assert_int_eq(iwt_count_fds(), fds0);
    ck_assert(ImapInitialize(NULL, NULL));
}
END_TEST

/* Errors come back from the create call itself, before anyone uses the port. */
START_TEST(forward_errors)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    UINT bound = 0;
    ck_assert(ImapCreatePortForward(NULL, "127.0.0.1", dv.port, 0, &bound) == INVALID_FORWARD);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(ImapCreatePortForward(&sc, "", dv.port, 0, &bound) == INVALID_FORWARD);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(ImapCreatePortForward(&sc, "127.0.0.1", 0, 0, &bound) == INVALID_FORWARD);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    sc.lpszKnownHosts = sshd.known_wrong;
    ck_assert(ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &bound) == INVALID_FORWARD);
    iwt_assert_error(ST_ERROR_SSH_HOST_KEY_MISMATCH);
    sc = iwt_tunnel_creds(&sshd);
    sc.lpszTunnelKey = sshd.wrong_key;
    ck_assert(ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &bound) == INVALID_FORWARD);
    iwt_assert_error(ST_ERROR_SSH_AUTH_FAILED);
    ck_assert(!ImapClosePortForward((HFORWARD)12345));
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
}
END_TEST

/* A fixed local port is honoured, and a taken one is refused. */
START_TEST(forward_fixed_port)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    UINT bound = 0, again = 0;
    HFORWARD f = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &bound), g;
    ck_assert(f != INVALID_FORWARD);
    ck_assert(ImapClosePortForward(f));
    g = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, bound, &again);
    ck_assert_msg(g != INVALID_FORWARD, "error %u", (unsigned)ImapGetLastError());
    ck_assert_uint_eq(again, bound);
    ck_assert(ImapCreatePortForward(&sc, "127.0.0.1", dv.port, bound, NULL) == INVALID_FORWARD);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(ImapClosePortForward(g));
}
END_TEST

/* CREDENTIAL_TUNNEL_FORWARD: a normal tunnelled connect, carried by a forward; TLS inside
 * is checked against the far host's name. */
START_TEST(connect_through_managed_forward)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    SECURITYINFO si;
    HCLIENT h;
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);

    sc.lpszCAFile = ca;
    h = ImapConnect("localhost", dvtls.imaps_port, 10, IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dvtls.user, dvtls.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* Connects to 127.0.0.1:port as nobody (setpriv) or as ourselves and returns the first 4
 * bytes received (malloc'd); *closed: the read ended within 4 s (4 bytes or end of stream). */
static char *connect_as(const char *user, unsigned port, int *closed)
{
    char cmd[600];
    char *out = calloc(1, 4096);
    size_t len = 0, n;
    long long t0;
    FILE *p;
    int st;

    ck_assert_ptr_nonnull(out);
    snprintf(cmd, sizeof cmd,
             "%s bash -c 'exec 3<>/dev/tcp/127.0.0.1/%u || exit 9; timeout 4 head -c 4 <&3; echo \"<rc=$?>\"'",
             user ? "setpriv --reuid=nobody --regid=nogroup --clear-groups" : "", port);
    t0 = iwt_now_ms();
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    while (len < 4095 && (n = fread(out + len, 1, 4095 - len, p)) > 0)
        len += n;
    st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", cmd, st);
    /* head ends by itself (rc 0) after 4 bytes or at the end of the stream; timeout says 124 */
    *closed = strstr(out, "<rc=0>") != NULL && iwt_now_ms() - t0 < 4000;
    return out;
}

/* Another local user connecting to the forward's port gets nothing through the caller's
 * SSH session: no greeting, and the connection is closed. The caller's own user still
 * gets the greeting, before and after. */
START_TEST(forward_refuses_other_uid)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    UINT bound = 0;
    HFORWARD f;
    char *got;
    int closed = 0;

    ck_assert_msg(geteuid() == 0, "this test switches to nobody and must run as root");
    f = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &bound);
    ck_assert_msg(f != INVALID_FORWARD, "error %u", (unsigned)ImapGetLastError());
    got = connect_as(NULL, bound, &closed);
    ck_assert_msg(strncmp(got, "* OK", 4) == 0, "our own connection got no greeting: %s", got);
    free(got);
    got = connect_as("nobody", bound, &closed);
    ck_assert_msg(strstr(got, "* ") == NULL, "nobody got IMAP bytes through our session: %s", got);
    ck_assert_msg(closed, "nobody's connection was not closed: %s", got);
    free(got);
    got = connect_as(NULL, bound, &closed);
    ck_assert_msg(strncmp(got, "* OK", 4) == 0, "our own connection got no greeting: %s", got);
    free(got);
    ck_assert(ImapClosePortForward(f));
}
END_TEST

/* TCP sockets of this process in LISTEN state (/proc/net/tcp and tcp6 by inode). */
static int own_listeners(void)
{
    unsigned long inodes[256];
    int ninodes = 0, found = 0, v;
    char path[300], link[64];
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL && ninodes < 256) {
        ssize_t n;
        unsigned long ino;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (sscanf(link, "socket:[%lu]", &ino) == 1)
            inodes[ninodes++] = ino;
    }
    closedir(d);
    for (v = 0; v < 2; v++) {
        char *text = iwt_read_file(v ? "/proc/net/tcp6" : "/proc/net/tcp"), *line, *save = NULL;
        for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
            char st[8];
            unsigned long ino;
            int i;
            if (sscanf(line, "%*s %*s %*s %7s %*s %*s %*s %*s %*s %lu", st, &ino) != 2 ||
                strcmp(st, "0A") != 0)
                continue;
            for (i = 0; i < ninodes; i++)
                if (inodes[i] == ino)
                    found++;
        }
        free(text);
    }
    return found;
}

static int listeners_in_greeting = -1;

static void count_listeners_on_greeting(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h; (void)param;
    if (dir == IMAP_TRACE_RECV && len >= 4 && strncmp(line, "* OK", 4) == 0 &&
        listeners_in_greeting < 0)
        listeners_in_greeting = own_listeners();
}

/* CREDENTIAL_TUNNEL_FORWARD: the library is the forward's only client, so no listening
 * socket anyone on the machine could reach exists, during the connect or after. */
START_TEST(managed_forward_has_no_listener)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPCONNECTINFO in;
    HCLIENT h;

    ck_assert_int_eq(own_listeners(), 0);
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    iwt_tunnel_info(&in, &dv, &sc, NULL);
    in.lpTraceProc = count_listeners_on_greeting;
    listeners_in_greeting = -1;
    h = ImapConnectEx(&in);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_msg(listeners_in_greeting == 0, "%d listening sockets during the connect",
                  listeners_in_greeting);
    ck_assert_int_eq(own_listeners(), 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* A forward the caller made with OpenSSH's ssh -L: the port implies no TLS mode, and the
 * certificate is checked against lpszServerName, which is then required. */
START_TEST(caller_made_forward)
{
    char spec[128], port_s[16], known_opt[600];
    SECURITYCREDENTIALS sc;
    HCLIENT h;
    iwt_fixture ssh;
    long long until;
    unsigned local;
    int up = 0;

    /* any free port will do: ImapCreatePortForward finds one for us, then lets it go */
    {
        SECURITYCREDENTIALS t = iwt_tunnel_creds(&sshd);
        UINT bound = 0;
        HFORWARD f = ImapCreatePortForward(&t, "127.0.0.1", dv.port, 0, &bound);
        ck_assert(f != INVALID_FORWARD);
        ImapClosePortForward(f);
        local = bound;
    }
    snprintf(spec, sizeof spec, "127.0.0.1:%u:127.0.0.1:%u", local, dvtls.imaps_port);
    snprintf(port_s, sizeof port_s, "%u", sshd.port);
    snprintf(known_opt, sizeof known_opt, "UserKnownHostsFile=%s", sshd.known);
    memset(&ssh, 0, sizeof ssh);
    ssh.pid = fork();
    ck_assert_int_ge(ssh.pid, 0);
    if (ssh.pid == 0) {
        char errlog[700];
        FILE *e;
        snprintf(errlog, sizeof errlog, "%s/ssh-L.log", getenv("IW_TMPDIR"));
        e = freopen(errlog, "w", stderr);
        (void)e;
        execlp("ssh", "ssh", "-N", "-L", spec, "-p", port_s, "-i", sshd.key, "-o", known_opt,
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
               "-l", sshd.user, sshd.host, (char *)NULL);
        _exit(127);
    }
    until = iwt_now_ms() + 10000;
    while (!up && iwt_now_ms() < until) {
        char needle[32];
        snprintf(needle, sizeof needle, ":%04X 00000000:0000 0A", local);
        up = iwt_count_in_file("/proc/net/tcp", needle) > 0;
        if (!up)
            usleep(20000);
    }
    ck_assert_msg(up, "ssh -L did not start listening");

    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    ck_assert(ImapConnect("127.0.0.1", local, 10, IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc)
              == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    sc.lpszServerName = "localhost";
    h = ImapConnect("127.0.0.1", local, 10, IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dvtls.user, dvtls.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* TRUSTEDSITE needs no name */
    sc.lpszServerName = NULL;
    h = ImapConnect("127.0.0.1", local, 10,
                    IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT | IMAP_OPTION_TRUSTEDSITE, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&ssh);
}
END_TEST


/* ---- CREDENTIAL_TUNNEL_FORWARD with an asynchronous connect ---- */

struct fw_event {
    pthread_mutex_t lock;
    int             events;
    DWORD           error;
    long long       at_ms;
};

static void fw_event_cb(HCLIENT h, UINT event, DWORD error, LPVOID param)
{
    struct fw_event *e = param;
    (void)h;
    if (event != IMAP_EVENT_CONNECT)
        return;
    pthread_mutex_lock(&e->lock);
    e->events++;
    e->error = error;
    e->at_ms = iwt_now_ms();
    pthread_mutex_unlock(&e->lock);
}

static int fw_event_wait(struct fw_event *e, int timeout_ms)
{
    long long until = iwt_now_ms() + timeout_ms;
    int n;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        n = e->events;
        pthread_mutex_unlock(&e->lock);
        if (n > 0 || iwt_now_ms() >= until)
            return n;
        usleep(5000);
    }
}

/* An "SSH server" that takes the connection and never says a word, as a stopped sshd:
 * the kernel completes the handshake from the listen queue. */
static int silent_listener(unsigned *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* The SSH side of a private forward is set up by the loop, never by the caller: with an
 * SSH server that does not answer, ImapAsyncConnect still returns at once. */
START_TEST(async_forward_never_blocks)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    struct fw_event ev = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0 };
    unsigned port;
    int lfd = silent_listener(&port), i;
    long long t0, took, worst = 0;
    HCLIENT h;

    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    sc.nTunnelPort = port;
    /* 20 rounds, each disconnected while its SSH handshake waits */
    for (i = 0; i < 20; i++) {
        t0 = iwt_now_ms();
        h = ImapAsyncConnect("127.0.0.1", dv.port, 1, IMAP_OPTION_TUNNEL, &sc, fw_event_cb, &ev);
        took = iwt_now_ms() - t0;
        ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
        if (took > worst)
            worst = took;
        if (i % 2)
            usleep(20000);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    ck_assert_msg(worst < 50, "ImapAsyncConnect took %lld ms", worst);
    usleep(100000);
    ck_assert_int_eq(ev.events, 0);
    /* one that runs its course: the silence becomes a timeout event */
    t0 = iwt_now_ms();
    h = ImapAsyncConnect("127.0.0.1", dv.port, 1, IMAP_OPTION_TUNNEL, &sc, fw_event_cb, &ev);
    ck_assert_int_lt(iwt_now_ms() - t0, 50);
    ck_assert_int_eq(fw_event_wait(&ev, 8000), 1);
    ck_assert_msg(ev.error == ST_ERROR_OPERATION_TIMEOUT, "event error %u", (unsigned)ev.error);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    close(lfd);
}
END_TEST

/* Set up by the loop, the SSH side still reports its own error, not a closed stream. */
START_TEST(async_forward_precise_errors)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    struct fw_event ev = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0 };
    HCLIENT h;

    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    sc.lpszKnownHosts = sshd.known_empty;
    h = ImapAsyncConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc, fw_event_cb, &ev);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(fw_event_wait(&ev, 8000), 1);
    ck_assert_msg(ev.error == ST_ERROR_SSH_HOST_KEY_UNKNOWN, "event error %u", (unsigned)ev.error);
    ck_assert_int_eq(ImapDisconnect(h), 0);

    sc = iwt_tunnel_creds(&sshd);
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    sc.lpszTunnelKey = sshd.wrong_key;
    ev.events = 0;
    h = ImapAsyncConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc, fw_event_cb, &ev);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(fw_event_wait(&ev, 8000), 1);
    ck_assert_msg(ev.error == ST_ERROR_SSH_AUTH_FAILED, "event error %u", (unsigned)ev.error);
    ck_assert_int_eq(ImapDisconnect(h), 0);

    /* and the good case: connected by the event, usable by its owner */
    sc = iwt_tunnel_creds(&sshd);
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    ev.events = 0;
    h = ImapAsyncConnect("127.0.0.1", dv.port, 5, IMAP_OPTION_TUNNEL, &sc, fw_event_cb, &ev);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(fw_event_wait(&ev, 8000), 1);
    ck_assert_msg(ev.error == 0, "event error %u", (unsigned)ev.error);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST


/* The forward's SSH session dies (its sshd processes are killed): the next connection
 * through the forward gets a new session and works. */
START_TEST(forward_recovers_dead_session)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    UINT port = 0;
    HFORWARD fw;
    HCLIENT h;
    char cmd[300];

    fw = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &port);
    ck_assert_msg(fw != INVALID_FORWARD, "forward: %u", (unsigned)ImapGetLastError());
    h = ImapConnect("127.0.0.1", port, 10, IMAP_OPTION_TUNNEL, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ImapDisconnect(h);
    snprintf(cmd, sizeof cmd, "for p in $(pgrep -P %d); do pkill -KILL -P $p; "
             "kill -KILL $p; done; exit 0", sshd.pid);
    ck_assert_int_eq(system(cmd), 0);
    usleep(200000);
    h = ImapConnect("127.0.0.1", port, 10, IMAP_OPTION_TUNNEL, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "after the session died: error %u",
                  (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ImapDisconnect(h);
    ck_assert(ImapClosePortForward(fw));
}
END_TEST

/* The caller's own user reaching the forward as ::ffff:127.0.0.1 (an IPv6 socket on the
 * IPv4 listener) is served like one that wrote 127.0.0.1. */
START_TEST(forward_admits_mapped_own_uid)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    UINT port = 0;
    HFORWARD fw = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &port);
    HCLIENT h;

    ck_assert_msg(fw != INVALID_FORWARD, "forward: %u", (unsigned)ImapGetLastError());
    h = ImapConnect("::ffff:127.0.0.1", port, 10, IMAP_OPTION_TUNNEL, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "as ::ffff:127.0.0.1: error %u",
                  (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ImapDisconnect(h);
    ck_assert(ImapClosePortForward(fw));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("forward");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hundred_through_one_forward);
    tcase_add_test(tc, forward_errors);
    tcase_add_test(tc, forward_fixed_port);
    tcase_add_test(tc, connect_through_managed_forward);
    tcase_add_test(tc, forward_refuses_other_uid);
    tcase_add_test(tc, managed_forward_has_no_listener);
    tcase_add_test(tc, caller_made_forward);
    tcase_add_test(tc, async_forward_never_blocks);
    tcase_add_test(tc, async_forward_precise_errors);
    tcase_add_test(tc, forward_recovers_dead_session);
    tcase_add_test(tc, forward_admits_mapped_own_uid);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
