/* test_ssh_proxy.c: the SSH tunnel's hop carried by a transport: IMAP through tinyproxy
 * (HTTP CONNECT), Dante (SOCKS5) or a command to the test sshd, and on to Dovecot. */
#define _GNU_SOURCE
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "iwtest.h"

static iwt_sshd sshd;
static iwt_dovecot dv, dvtls;
static char ca[700];
static struct {
    unsigned port;
    char user[64], pass[64], log[600];
} dante;
static struct {
    unsigned port;
    char log[600];
} tp;

typedef struct trace_log {
    char text[65536];
    size_t len;
} trace_log;

static void trace_cb(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    trace_log *t = param;
    (void)h;
    if (n < 0 || t->len + (size_t)n + 4 >= sizeof t->text)
        return;
    t->text[t->len++] = dir == IMAP_TRACE_SEND ? '>' : dir == IMAP_TRACE_RECV ? '<' : '-';
    memcpy(t->text + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->text[t->len++] = '\n';
    t->text[t->len] = '\0';
}

static unsigned env_uint(const char *path, const char *key)
{
    char v[32];
    iwt_env_value(path, key, v, sizeof v);
    ck_assert_msg(v[0] != '\0', "%s missing in %s", key, path);
    return (unsigned)strtoul(v, NULL, 10);
}

static void setup(void)
{
    const char *tmp = getenv("IW_TMPDIR");
    char path[600];

    ck_assert_msg(tmp != NULL && getenv("IW_SSHD_ENV") != NULL, "run through ctest");
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    snprintf(path, sizeof path, "%s/danted/env", tmp);
    dante.port = env_uint(path, "DANTED_PORT");
    iwt_env_value(path, "DANTED_USER", dante.user, sizeof dante.user);
    iwt_env_value(path, "DANTED_PASS", dante.pass, sizeof dante.pass);
    iwt_env_value(path, "DANTED_LOG", dante.log, sizeof dante.log);
    snprintf(path, sizeof path, "%s/tinyproxy/env", tmp);
    tp.port = env_uint(path, "TINYPROXY_PORT");
    iwt_env_value(path, "TINYPROXY_LOG", tp.log, sizeof tp.log);
    unsetenv("SSH_AUTH_SOCK");
    unsetenv("IMAPWIRE_TRANSPORT");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* Polls path until needle occurs at least want times or 3 s pass; the count seen. */
static int wait_in_file(const char *path, const char *needle, int want)
{
    long long until = iwt_now_ms() + 3000;
    int n;
    while ((n = iwt_count_in_file(path, needle)) < want && iwt_now_ms() < until)
        usleep(20000);
    return n;
}

/* Lines of Dante's log with both needles: one per relayed connection when a is the
 * "connect [" prefix (the line of the close has "connect ]"). */
static int count_lines(const char *path, const char *a, const char *b)
{
    char *text = iwt_read_file(path), *line = text, *nl;
    int n = 0;
    while (*line) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, a) && strstr(line, b))
            n++;
        if (!nl)
            break;
        line = nl + 1;
    }
    free(text);
    return n;
}

/* IMAP to port of Dovecot's host "localhost" (which the SSH server resolves) through an
 * SSH tunnel whose hop to sshd is carried by transport (NULL: TCP). mode 0 is plain,
 * 1 STARTTLS, 2 implicit TLS, inside the tunnel. */
static HCLIENT tunnel_via(const char *transport, int mode, trace_log *t)
{
    SECURITYCREDENTIALS sc;
    IMAPCONNECTINFO ci;

    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = sshd.host;
    sc.nTunnelPort = sshd.port;
    sc.lpszTunnelUser = sshd.user;
    sc.lpszTunnelKey = sshd.key;
    sc.lpszKnownHosts = sshd.known;
    sc.lpszCAFile = ca;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "localhost";
    ci.nRemotePort = mode == 0 ? dv.port : mode == 1 ? dvtls.port : dvtls.imaps_port;
    ci.nTimeout = 10;
    ci.dwOptions = IMAP_OPTION_TUNNEL | (mode == 1 ? IMAP_OPTION_SECURE_EXPLICIT
                                         : mode == 2 ? IMAP_OPTION_SECURE_IMPLICIT : 0);
    ci.lpCredentials = &sc;
    ci.lpszTransport = transport;
    if (t != NULL) {
        ci.lpTraceProc = trace_cb;
        ci.lpParam = t;
    }
    return ImapConnectEx(&ci);
}

/* The connect worked, went through SSH (and TLS for modes 1 and 2); login, NOOP, out. */
static void use_and_close(HCLIENT h, int mode, const trace_log *t)
{
    const iwt_dovecot *d = mode == 0 ? &dv : &dvtls;
    SECURITYINFO si;

    ck_assert_msg(h != INVALID_CLIENT, "mode %d: error %u, trace:\n%s", mode,
                  (unsigned)ImapGetLastError(), t ? t->text : "");
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwTunnelProtocol, SECURITY_PROTOCOL_SSH2);
    ck_assert_str_eq(si.szHostKeyFingerprint, sshd.fingerprint);
    if (mode)
        ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
    else
        ck_assert_uint_eq(si.dwProtocol, SECURITY_PROTOCOL_NONE);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, d->user, d->pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}

/* tinyproxy carries the SSH connection: its log shows the CONNECT to sshd's port (the
 * proxy named "localhost", the SSH server's name resolved by the proxy). */
START_TEST(ssh_through_httpconnect)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[100], req[100];
    int before;

    snprintf(tr, sizeof tr, "httpconnect:localhost:%u", tp.port);
    snprintf(req, sizeof req, "CONNECT %s:%u HTTP/1.1", sshd.host, sshd.port);
    before = iwt_count_in_file(tp.log, req);
    use_and_close(tunnel_via(tr, _i, t), _i, t);
    ck_assert_int_eq(wait_in_file(tp.log, req, before + 1), before + 1);
    free(t);
}
END_TEST

/* Dante (SOCKS5 with username/password) carries it: its log shows the relayed connection
 * to sshd's port. */
START_TEST(ssh_through_socks5)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200], dest[100];
    int before;

    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, dante.port);
    snprintf(dest, sizeof dest, " %s.%u", sshd.host, sshd.port);
    before = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", dest);
    use_and_close(tunnel_via(tr, _i, t), _i, t);
    {
        long long until = iwt_now_ms() + 3000;
        int n;
        /* Dante writes its log from another process: wait (bounded) for the line */
        while ((n = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", dest)) <
                   before + 1 && iwt_now_ms() < until)
            usleep(20000);
        ck_assert_int_eq(n, before + 1);
    }
    ck_assert_msg(strstr(t->text, dante.pass) == NULL, "%s", t->text);
    free(t);
}
END_TEST

/* A command carries it: OpenSSH's client with -W, as a ProxyCommand would, relays the
 * bytes to sshd (here through sshd itself, the only SSH server there is). */
START_TEST(ssh_through_command)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[2000];
    snprintf(tr, sizeof tr,
             "command:exec ssh -q -W %s:%u -p %u -i %s -o UserKnownHostsFile=%s "
             "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes "
             "-o IdentitiesOnly=yes -l %s %s",
             sshd.host, sshd.port, sshd.port, sshd.key, sshd.known, sshd.user, sshd.host);
    use_and_close(tunnel_via(tr, 0, t), 0, t);
    free(t);
}
END_TEST

/* Shared sessions are keyed by what carries them: a tunnel through the proxy gets its own
 * session beside a direct one to the same server, and shares it with the next tunnel
 * through the same proxy. */
START_TEST(ssh_sessions_keyed_by_transport)
{
    char tr[100], req[100], marker[100];
    HCLIENT direct, first, second, probe;
    int before, marks;

    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
    snprintf(req, sizeof req, "CONNECT %s:%u HTTP/1.1", sshd.host, sshd.port);
    before = iwt_count_in_file(tp.log, req);
    direct = tunnel_via(NULL, 0, NULL);
    ck_assert_msg(direct != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    first = tunnel_via(tr, 0, NULL);
    ck_assert_msg(first != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(wait_in_file(tp.log, req, before + 1), before + 1);
    second = tunnel_via(tr, 0, NULL);
    ck_assert_msg(second != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapCommand(direct, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(first, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(second, "NOOP", NULL, 0), 0);
    /* A CONNECT made after the second tunnel: once it is logged, a CONNECT of that
     * tunnel would be logged too. */
    snprintf(marker, sizeof marker, "CONNECT 127.0.0.1:%u HTTP/1.1", dv.port);
    marks = iwt_count_in_file(tp.log, marker);
    {
        IMAPCONNECTINFO ci;
        memset(&ci, 0, sizeof ci);
        ci.dwSize = sizeof ci;
        ci.lpszHostName = "127.0.0.1";
        ci.nRemotePort = dv.port;
        ci.nTimeout = 10;
        ci.lpszTransport = tr;
        probe = ImapConnectEx(&ci);
    }
    ck_assert_msg(probe != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapDisconnect(probe), 0);
    ck_assert_int_eq(wait_in_file(tp.log, marker, marks + 1), marks + 1);
    ck_assert_int_eq(iwt_count_in_file(tp.log, req), before + 1);
    ck_assert_int_eq(ImapDisconnect(second), 0);
    ck_assert_int_eq(ImapDisconnect(first), 0);
    ck_assert_int_eq(ImapDisconnect(direct), 0);
}
END_TEST

/* What fails on the way to the SSH server fails the connect as it would without a
 * tunnel: a proxy that is down, a transport that does not exist; nothing is left open. */
START_TEST(ssh_through_failures)
{
    int fds = iwt_count_fds();
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    char tr[100];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port nobody listens on: bind port 0, read it, close */
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", ntohs(a.sin_port));
    ck_assert(tunnel_via(tr, 0, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert(tunnel_via("no-such-transport", 0, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
    ck_assert(tunnel_via("socks5:not a proxy", 0, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh_proxy");
    TCase *tc = tcase_create("ssh hop over a transport");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, ssh_through_httpconnect, 0, 3);
    tcase_add_loop_test(tc, ssh_through_socks5, 0, 3);
    tcase_add_test(tc, ssh_through_command);
    tcase_add_test(tc, ssh_sessions_keyed_by_transport);
    tcase_add_test(tc, ssh_through_failures);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
