/* test_proxy.c: the socks5 and httpconnect plugins against real proxies on loopback
 * (OpenSSH's ssh -D, Dante, tinyproxy) in front of real Dovecots, also carrying SSH tunnels. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "iwtest.h"

static iwt_sshd sshd;
static iwt_dovecot dv, dvtls;
static char ca[700];
static char dns_server[64];         /* the test dnsmasq (tests/harness/dnsmasq.sh) */

static iwt_dante dante;
static iwt_tinyproxy tp;

/* The ssh -D of this suite: started once, in the runner, before the forked tests. */
static pid_t ssh_pid;
static unsigned ssh_port;

static void setup(void)
{
    const char *p = getenv("IW_SSHD_ENV");
    ck_assert_msg(p != NULL, "IW_SSHD_ENV not set (run through ctest)");
    iwt_sshd_load(&sshd, p);
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    ck_assert_uint_gt(dvtls.imaps_port, 0);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    iwt_proxies_load(&dante, &tp);
    iwt_env_value(getenv("IW_DNS_ENV"), "DNSMASQ_SERVER", dns_server, sizeof dns_server);
    ck_assert_msg(dns_server[0] != '\0', "no DNSMASQ_SERVER in $IW_DNS_ENV");
    unsetenv("IMAPWIRE_TRANSPORT");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

static int listening(unsigned port)
{
    char needle[40];
    snprintf(needle, sizeof needle, "0100007F:%04X 00000000:0000 0A", port);
    return iwt_count_in_file("/proc/net/tcp", needle) > 0;
}

/* OpenSSH's dynamic forward (a SOCKS5 server without authentication) to the test sshd. */
static void ssh_d_start(void)
{
    char listen_spec[64], port_s[16], known_opt[600];
    long long until;
    int attempt;

    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    for (attempt = 0; attempt < 3 && ssh_port == 0; attempt++) {
        unsigned port = iwt_free_port();
        snprintf(listen_spec, sizeof listen_spec, "127.0.0.1:%u", port);
        snprintf(port_s, sizeof port_s, "%u", sshd.port);
        snprintf(known_opt, sizeof known_opt, "UserKnownHostsFile=%s", sshd.known);
        ssh_pid = fork();
        ck_assert_int_ge(ssh_pid, 0);
        if (ssh_pid == 0) {
            char errlog[700];
            FILE *e;
            snprintf(errlog, sizeof errlog, "%s/ssh-D.log", getenv("IW_TMPDIR"));
            e = freopen(errlog, "w", stderr);
            (void)e;
            unsetenv("SSH_AUTH_SOCK");
            execlp("ssh", "ssh", "-N", "-D", listen_spec, "-p", port_s, "-i", sshd.key,
                   "-o", known_opt, "-o", "GlobalKnownHostsFile=/dev/null",
                   "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                   "-o", "IdentitiesOnly=yes", "-o", "ExitOnForwardFailure=yes",
                   "-l", sshd.user, sshd.host, (char *)NULL);
            _exit(127);
        }
        until = iwt_now_ms() + 10000;
        while (iwt_now_ms() < until) {
            if (listening(port)) {
                ssh_port = port;
                break;
            }
            if (waitpid(ssh_pid, NULL, WNOHANG) == ssh_pid) {
                ssh_pid = 0;           /* the port was taken: try another */
                break;
            }
            usleep(20000);
        }
        if (ssh_port == 0 && ssh_pid > 0) {
            kill(ssh_pid, SIGTERM);
            waitpid(ssh_pid, NULL, 0);
            ssh_pid = 0;
        }
    }
    ck_assert_msg(ssh_port != 0, "ssh -D did not start listening (see ssh-D.log)");
}

static void ssh_d_stop(void)
{
    iwt_fixture f;
    memset(&f, 0, sizeof f);
    f.pid = ssh_pid;
    iwt_fixture_stop(&f);
    ssh_pid = 0;
}

/* nTimeout of every connect through via(); bounds on "at once" are a fraction of it, so a
 * loaded machine cannot break them while a wait for the timeout still does. */
#define VIA_TIMEOUT_S 10

static HCLIENT via(const char *transport, const char *host, unsigned port, DWORD opts,
                   LPSECURITYCREDENTIALS sc, trace_log *t)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = port;
    ci.nTimeout = VIA_TIMEOUT_S;
    ci.dwOptions = opts;
    ci.lpCredentials = sc;
    ci.lpszTransport = transport;
    if (t != NULL) {
        ci.lpTraceProc = trace_cb;
        ci.lpParam = t;
    }
    return ImapConnectEx(&ci);
}

/* The three ways to Dovecot: 0 plain, 1 STARTTLS, 2 implicit TLS; login, NOOP, out. */
static void through(const char *transport, const char *host, int mode, trace_log *t)
{
    SECURITYCREDENTIALS sc;
    SECURITYINFO si;
    const iwt_dovecot *d = mode == 0 ? &dv : &dvtls;
    unsigned port = mode == 2 ? dvtls.imaps_port : d->port;
    DWORD opts = mode == 0 ? IMAP_OPTION_NONE
               : mode == 1 ? IMAP_OPTION_SECURE_EXPLICIT : IMAP_OPTION_SECURE_IMPLICIT;
    HCLIENT h;

    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    h = via(transport, host, port, opts, mode ? &sc : NULL, t);
    ck_assert_msg(h != INVALID_CLIENT, "%s to %s mode %d: error %u, trace:\n%s", transport, host,
                  mode, (unsigned)ImapGetLastError(), t ? t->text : "");
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    if (mode) {
        ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
        ck_assert(si.dwProtocol == SECURITY_PROTOCOL_TLS12 || si.dwProtocol == SECURITY_PROTOCOL_TLS13);
    } else {
        ck_assert_uint_eq(si.dwProtocol, SECURITY_PROTOCOL_NONE);
    }
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, d->user, d->pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}

/* Connects and expects the failure `error` within `max_ms`. */
static void refused(const char *transport, const char *host, unsigned port, DWORD error,
                    long long max_ms, trace_log *t)
{
    long long t0 = iwt_now_ms(), ms;
    HCLIENT h = via(transport, host, port, IMAP_OPTION_NONE, NULL, t);
    ms = iwt_now_ms() - t0;
    if (h != INVALID_CLIENT)
        ImapDisconnect(h);
    ck_assert_msg(h == INVALID_CLIENT, "%s to %s:%u worked", transport, host, port);
    if (ImapGetLastError() != error)
        fprintf(stderr, "trace of %s:\n%s\n", transport, t ? t->text : "(none)");
    iwt_assert_error(error);
    ck_assert_msg(ms <= max_ms, "%s took %lld ms", transport, ms);
}

/* Lines of a log holding both needles (one relayed connection each, in Dante's log). */
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

/* Dante writes its log from another process: wait (bounded) for the count to reach want. */
static int wait_count(const char *path, const char *a, const char *b, int want)
{
    long long until = iwt_now_ms() + 3000;
    int n;
    while ((n = count_lines(path, a, b)) < want && iwt_now_ms() < until)
        usleep(20000);
    return n;
}

/* The same for lines holding one needle (tinyproxy's log). */
static int wait_in_file(const char *path, const char *needle, int want)
{
    long long until = iwt_now_ms() + 3000;
    int n;
    while ((n = iwt_count_in_file(path, needle)) < want && iwt_now_ms() < until)
        usleep(20000);
    return n;
}

static void dante_transport(char *out, size_t size, const char *user, const char *pass)
{
    if (user)
        snprintf(out, size, "socks5:%s:%s@127.0.0.1:%u", user, pass, dante.port);
    else
        snprintf(out, size, "socks5:127.0.0.1:%u", dante.port);
}

/* ------------------------------------------------------------ SOCKS5 through ssh -D */

START_TEST(ssh_d_modes)
{
    static const char *hosts[] = { "127.0.0.1", "localhost" };
    trace_log *t = calloc(1, sizeof *t);
    char tr[64];
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", ssh_port);
    through(tr, hosts[_i / 3], _i % 3, t);
    ck_assert_msg(strstr(t->text, "-socks5: connected to proxy 127.0.0.1:") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "needs no authentication") != NULL, "%s", t->text);
    if (_i / 3 == 1) {
        /* the name went to the proxy: nothing here resolved it */
        ck_assert_msg(strstr(t->text, "(the proxy resolves the name)") != NULL, "%s", t->text);
        ck_assert_msg(strstr(t->text, "has address") == NULL, "%s", t->text);
    }
    free(t);
}
END_TEST

/* The proxy named "localhost" (no resolver: it is loopback by definition). */
START_TEST(ssh_d_proxy_localhost)
{
    char tr[64];
    IMAPTIMINGS tm;
    HCLIENT h;
    snprintf(tr, sizeof tr, "socks5:localhost:%u", ssh_port);
    h = via(tr, "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    /* the hop to the proxy is the connect, the SOCKS exchange the tunnel */
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_uint_gt(tm.dwConnect, 0);
    ck_assert_uint_gt(tm.dwTunnel, 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* ssh -D answers "succeeded" before its channel opens, so a refused destination can only
 * show as the proxy closing the connection where the greeting should be. */
START_TEST(ssh_d_refused_destination)
{
    char tr[64];
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", ssh_port);
    refused(tr, "127.0.0.1", iwt_free_port(), ST_ERROR_CONNECTION_CLOSED, 5000, NULL);
}
END_TEST

/* ------------------------------------------------- SOCKS5 through Dante (RFC 1929) */

START_TEST(dante_modes)
{
    static const char *hosts[] = { "127.0.0.1", "localhost" };
    trace_log *t = calloc(1, sizeof *t);
    char tr[200], dest[64];
    const char *host = hosts[_i / 3];
    int mode = _i % 3, before;
    unsigned port = mode == 0 ? dv.port : mode == 1 ? dvtls.port : dvtls.imaps_port;

    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    snprintf(dest, sizeof dest, ".%u", port);
    before = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", dest);
    through(tr, host, mode, t);
    ck_assert_msg(strstr(t->text, "accepted user imapwire-socks") != NULL, "%s", t->text);
    /* the secret never reaches the trace */
    ck_assert_msg(strstr(t->text, dante.pass) == NULL, "%s", t->text);
    ck_assert_int_eq(wait_count(dante.log, "tcp/connect [: username%imapwire-socks@", dest,
                                before + 1), before + 1);
    free(t);
}
END_TEST

START_TEST(dante_wrong_password)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    dante_transport(tr, sizeof tr, dante.user, "not-the-password");
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "refused the credentials of user imapwire-socks") != NULL,
                  "%s", t->text);
    ck_assert_msg(strstr(t->text, "not-the-password") == NULL, "%s", t->text);
    /* an unknown user is the same refusal */
    t->len = 0;
    dante_transport(tr, sizeof tr, "nobody-here", "x");
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    free(t);
}
END_TEST

/* Dante requires username/password: without credentials we offer only "none". */
START_TEST(dante_no_credentials)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    dante_transport(tr, sizeof tr, NULL, NULL);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "accepts none of our methods") != NULL, "%s", t->text);
    free(t);
}
END_TEST

/* A "socks block" rule: reply 0x02, not allowed by ruleset. */
START_TEST(dante_blocked_destination)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200], dest[64];
    int before;
    snprintf(dest, sizeof dest, " 127.0.0.1.%u", dante.block_port);
    before = count_lines(dante.log, "block(1): tcp/connect ]: username%imapwire-socks@", dest);
    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    refused(tr, "127.0.0.1", dante.block_port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "answered 0x02 (connection not allowed by ruleset)") != NULL,
                  "%s", t->text);
    ck_assert_int_eq(wait_count(dante.log, "block(1): tcp/connect ]: username%imapwire-socks@",
                                dest, before + 1), before + 1);
    free(t);
}
END_TEST

/* Nothing listens there: Dante tries and answers 0x05, connection refused. */
START_TEST(dante_refused_destination)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    refused(tr, "127.0.0.1", iwt_free_port(), ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "answered 0x05 (connection refused)") != NULL, "%s", t->text);
    free(t);
}
END_TEST

/* A name the proxy cannot resolve (RFC 6761 .invalid): reply 0x04 for a name. */
START_TEST(dante_unknown_name)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    refused(tr, "no-such-host.invalid", dv.port, ST_ERROR_HOST_NOT_FOUND, 15000, t);
    ck_assert_msg(strstr(t->text, "answered 0x04 (host unreachable)") != NULL, "%s", t->text);
    free(t);
}
END_TEST

/* 1,000 connects through the plugin, each with the RFC 1929 exchange, leave no descriptor
 * behind. (Dante rather than ssh -D: OpenSSH without a tty leaves Nagle on its SSH
 * connection, and every connect through it waits ~40 ms for a delayed ACK, plugin or not.) */
START_TEST(dante_thousand)
{
    char tr[200];
    HCLIENT h;
    int fds, i;
    long long t0, ms;
    size_t heap_settled = 0, heap_end;

    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    /* the first connect loads the plugin */
    h = via(tr, "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapDisconnect(h), 0);
    fds = iwt_count_fds();
    t0 = iwt_now_ms();
    for (i = 0; i < 1000; i++) {
        h = via(tr, "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, NULL);
        ck_assert_msg(h != INVALID_CLIENT, "connect %d: error %u", i, (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapDisconnect(h), 0);
        /* the heap after the first tenth is the reference: one-time growth settles */
        if (i == 99)
            heap_settled = iwt_heap_in_use();
    }
    ms = iwt_now_ms() - t0;
    heap_end = iwt_heap_in_use();
    fprintf(stderr, "test_proxy: 1000 connects through socks5 with username/password (Dante): "
                    "%lld ms, %.2f ms each; heap after 100 %zu, after 1000 %zu\n", ms, ms / 1000.0,
            heap_settled, heap_end);
    ck_assert_int_eq(iwt_count_fds(), fds);
    ck_assert_msg(heap_end <= heap_settled, "heap grew from %zu to %zu", heap_settled, heap_end);
    ck_assert_msg(ms < 60000, "1000 connects took %lld ms", ms);
}
END_TEST

/* IMAPWIRE_TRANSPORT sends an unchanged ImapConnect through the proxy, loading the plugin
 * on first use; Dante's log shows the relayed connection. */
START_TEST(env_transport)
{
    char tr[200], dest[64], marker[64];
    int before, marks;
    HCLIENT h;

    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    snprintf(dest, sizeof dest, " 127.0.0.1.%u", dv.port);
    before = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", dest);
    ck_assert_int_eq(setenv("IMAPWIRE_TRANSPORT", tr, 1), 0);
    h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    unsetenv("IMAPWIRE_TRANSPORT");
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(wait_count(dante.log, "tcp/connect [: username%imapwire-socks@", dest,
                                before + 1), before + 1);
    /* and without the variable, the same call goes straight to Dovecot again */
    h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* A marker through Dante to another destination, made after that connect: once its
     * line is in Dante's log, a relayed line of the connect above would be there too. */
    snprintf(marker, sizeof marker, " 127.0.0.1.%u", dvtls.port);
    marks = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", marker);
    h = via(tr, "127.0.0.1", dvtls.port, IMAP_OPTION_NONE, NULL, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(wait_count(dante.log, "tcp/connect [: username%imapwire-socks@", marker,
                                marks + 1), marks + 1);
    ck_assert_int_eq(count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", dest),
                     before + 1);
}
END_TEST

/* ------------------------------------------------------- HTTP CONNECT, tinyproxy */

START_TEST(http_modes)
{
    static const char *hosts[] = { "127.0.0.1", "localhost" };
    trace_log *t = calloc(1, sizeof *t);
    char tr[200], req[128];
    const char *host = hosts[_i / 3];
    int mode = _i % 3, before;
    unsigned port = mode == 0 ? dv.port : mode == 1 ? dvtls.port : dvtls.imaps_port;

    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
    snprintf(req, sizeof req, "CONNECT %s:%u HTTP/1.1", host, port);
    before = iwt_count_in_file(tp.log, req);
    through(tr, host, mode, t);
    ck_assert_msg(strstr(t->text, "HTTP/1.0 200 Connection established") != NULL, "%s", t->text);
    ck_assert_int_eq(wait_in_file(tp.log, req, before + 1), before + 1);
    free(t);
}
END_TEST

START_TEST(http_basic_auth)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    snprintf(tr, sizeof tr, "httpconnect:%s:%s@127.0.0.1:%u", tp.user, tp.pass, tp.auth_port);
    through(tr, "127.0.0.1", _i, t);
    ck_assert_msg(strstr(t->text, tp.pass) == NULL, "%s", t->text);
    free(t);
}
END_TEST

START_TEST(http_auth_refused)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    /* no credentials: 407 */
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.auth_port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, " 407 ") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "requires credentials") != NULL, "%s", t->text);
    /* wrong password: tinyproxy 1.11 answers 401 */
    t->len = 0;
    snprintf(tr, sizeof tr, "httpconnect:%s:wrong-pass@127.0.0.1:%u", tp.user, tp.auth_port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "refused the credentials") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "wrong-pass") == NULL, "%s", t->text);
    free(t);
}
END_TEST

/* ConnectPort: with none configured every port is allowed (the tests above); once lines
 * are given (443 and 563 here, as in Debian's stock config) any other port gets 403. */
START_TEST(http_connect_port_policy)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.restricted_port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, " 403 ") != NULL, "%s", t->text);
    free(t);
}
END_TEST

/* The destination refuses: tinyproxy answers 500 "Unable to connect". */
START_TEST(http_refused_destination)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[200];
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
    refused(tr, "127.0.0.1", iwt_free_port(), ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, " 500 ") != NULL, "%s", t->text);
    free(t);
}
END_TEST

/* ------------------------------------------------------------ proxies by name */

/* A connect through a proxy with the DNS servers and local address given: the hop to the
 * proxy is the library's TCP, so both apply to it. */
static HCLIENT via_named(const char *transport, const char *local, trace_log *t)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = dv.port;
    ci.nTimeout = VIA_TIMEOUT_S;
    ci.lpszTransport = transport;
    ci.lpszDnsServers = dns_server;
    ci.lpszLocalAddress = local;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    return ImapConnectEx(&ci);
}

/* The proxy named by host name: localhost, and names only the test dnsmasq serves (both
 * families for both.imapwire.test, where the proxies listen on 127.0.0.1 alone, so the
 * hop races ::1 and 127.0.0.1). The proxy still resolves the IMAP host. */
START_TEST(proxy_by_name)
{
    static const char *names[] = { "localhost", "v4.imapwire.test", "both.imapwire.test" };
    const char *name = names[_i % 3];
    int socks = _i < 3, before;
    trace_log *t = calloc(1, sizeof *t);
    char tr[300], seen[200], dest[64];
    HCLIENT h;

    if (socks) {
        snprintf(tr, sizeof tr, "socks5:%s:%s@%s:%u", dante.user, dante.pass, name, dante.port);
        snprintf(dest, sizeof dest, " 127.0.0.1.%u", dv.port);
        before = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@", dest);
    } else {
        snprintf(tr, sizeof tr, "httpconnect:%s:%u", name, tp.port);
        snprintf(dest, sizeof dest, "CONNECT 127.0.0.1:%u HTTP/1.1", dv.port);
        before = iwt_count_in_file(tp.log, dest);
    }
    h = via_named(tr, NULL, t);
    ck_assert_msg(h != INVALID_CLIENT, "%s: error %u, trace:\n%s", tr,
                  (unsigned)ImapGetLastError(), t->text);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    snprintf(seen, sizeof seen, "-%s: connected to proxy %s:%u", socks ? "socks5" : "httpconnect",
             name, socks ? dante.port : tp.port);
    ck_assert_msg(strstr(t->text, seen) != NULL, "no \"%s\" in:\n%s", seen, t->text);
    if (_i % 3 != 0) {
        /* resolved here, through the connect's DNS servers, by the hop's c-ares */
        snprintf(seen, sizeof seen, "-tcp: %s has address 127.0.0.1:", name);
        ck_assert_msg(strstr(t->text, seen) != NULL, "no \"%s\" in:\n%s", seen, t->text);
    }
    snprintf(seen, sizeof seen, "-tcp: connected to 127.0.0.1:%u", socks ? dante.port : tp.port);
    ck_assert_msg(strstr(t->text, seen) != NULL, "no \"%s\" in:\n%s", seen, t->text);
    if (socks)
        ck_assert_int_eq(wait_count(dante.log, "tcp/connect [: username%imapwire-socks@", dest,
                                    before + 1), before + 1);
    else
        ck_assert_int_eq(wait_in_file(tp.log, dest, before + 1), before + 1);
    ck_assert_msg(strstr(t->text, dante.pass) == NULL, "%s", t->text);
    free(t);
}
END_TEST

static void assert_no_secret(const trace_log *t, const char *user, const char *secret,
                             const char *what);

/* A proxy name that does not exist is the caller's HOST_NOT_FOUND, as for TCP, at once
 * (dnsmasq answers NXDOMAIN), and the password stays out of the trace. */
START_TEST(proxy_name_unknown)
{
    static const char *forms[] = { "socks5:u:Unkn0wn-S3cret@nosuch.imapwire.test:1080",
                                   "httpconnect:u:Unkn0wn-S3cret@nosuch.imapwire.test:3128" };
    trace_log *t = calloc(1, sizeof *t);
    long long t0 = iwt_now_ms();
    HCLIENT h = via_named(forms[_i], NULL, t);
    ck_assert(h == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_HOST_NOT_FOUND);
    ck_assert_msg(iwt_now_ms() - t0 < VIA_TIMEOUT_S * 1000 / 4, "took %lld ms", iwt_now_ms() - t0);
    ck_assert_msg(strstr(t->text, "no connection to proxy nosuch.imapwire.test:") != NULL, "%s",
                  t->text);
    assert_no_secret(t, "u", "Unkn0wn-S3cret", forms[_i]);
    free(t);
}
END_TEST

/* lpszLocalAddress binds the hop to the proxy: Dante logs the client address; a proxy
 * name with both families keeps to the local address's family; a literal of the other
 * family is refused as for TCP. */
START_TEST(proxy_local_address)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[300], dest[64];
    int before;
    HCLIENT h;

    snprintf(tr, sizeof tr, "socks5:%s:%s@both.imapwire.test:%u", dante.user, dante.pass,
             dante.port);
    snprintf(dest, sizeof dest, " 127.0.0.1.%u", dv.port);
    before = count_lines(dante.log, "tcp/connect [: username%imapwire-socks@127.0.0.2.", dest);
    h = via_named(tr, "127.0.0.2", t);
    ck_assert_msg(h != INVALID_CLIENT, "error %u, trace:\n%s", (unsigned)ImapGetLastError(),
                  t->text);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(wait_count(dante.log, "tcp/connect [: username%imapwire-socks@127.0.0.2.", dest, before + 1),
                     before + 1);
    ck_assert_msg(strstr(t->text, "trying [::1]") == NULL, "%s", t->text);
    t->len = 0;
    t->text[0] = '\0';
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", dante.port);
    h = via_named(tr, "::1", t);
    ck_assert(h == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    free(t);
}
END_TEST

/* ---------------------------------------------------------------- proxies down */

START_TEST(proxy_down)
{
    static const char *forms[] = { "socks5:127.0.0.1:%u", "socks5:localhost:%u",
                                   "httpconnect:127.0.0.1:%u", "httpconnect:localhost:%u",
                                   "socks5:u:p@127.0.0.1:%u", "socks5:[::1]:%u",
                                   "httpconnect:u:p@[::1]:%u" };
    char tr[100];
    snprintf(tr, sizeof tr, forms[_i], iwt_free_port());
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, VIA_TIMEOUT_S * 1000 / 4, NULL);
}
END_TEST

/* ------------------------------------------------------- the wrong kind of peer */

/* Each plugin pointed at a server of another protocol fails cleanly. */
START_TEST(wrong_protocol)
{
    char tr[100];
    /* sshd sends its banner first: "SSH-2.0-..." is neither SOCKS5 nor HTTP */
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", sshd.port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_INVALID_RESPONSE, 5000, NULL);
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", sshd.port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_INVALID_RESPONSE, 5000, NULL);
    /* Dovecot greets first: "* OK" is no SOCKS5 and no HTTP */
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", dv.port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_INVALID_RESPONSE, 5000, NULL);
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", dv.port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_INVALID_RESPONSE, 5000, NULL);
    /* Dante drops a client whose first byte is not a SOCKS version */
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", dante.port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_CLOSED, 5000, NULL);
}
END_TEST

/* Arguments are checked before any I/O. */
START_TEST(bad_arguments)
{
    static const char *bad[] = {
        "socks5", "socks5:", "socks5:127.0.0.1", "socks5:127.0.0.1:", "socks5:127.0.0.1:0",
        "socks5:127.0.0.1:65536", "socks5:127.0.0.1:12a", "socks5:proxy!example:1080",
        "socks5:::1:1080", "socks5:user@127.0.0.1:1080", "socks5::pw@127.0.0.1:1080",
        "socks5:user:@127.0.0.1:1080", "httpconnect", "httpconnect:[::1:3128",
        "httpconnect:[nothost]:3128", "httpconnect:10.0.0.1:123456",
        "httpconnect:us\ter:pw@127.0.0.1:3128",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        HCLIENT h = via(bad[i], "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, NULL);
        ck_assert_msg(h == INVALID_CLIENT, "%s worked", bad[i]);
        ck_assert_msg(ImapGetLastError() == ST_ERROR_INVALID_PARAMETER, "%s: error %u", bad[i],
                      (unsigned)ImapGetLastError());
    }
    /* a destination that cannot go into a CONNECT request line */
    {
        char tr[100];
        HCLIENT h;
        snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
        h = via(tr, "bad host", dv.port, IMAP_OPTION_NONE, NULL, NULL);
        ck_assert(h == INVALID_CLIENT);
        iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    }
}
END_TEST

/* ------------------------------------------- scripted proxies: edges real ones avoid */

/* A one-connection proxy that answers with fixed bytes: per step, read `expect` bytes
 * (0: up to an empty line), then send `reply`. With relay set, it connects to Dovecot
 * before the last reply and appends Dovecot's greeting to it, then relays both ways. */
typedef struct script_step {
    size_t expect;
    const char *reply;
    size_t reply_len;
} script_step;

typedef struct script_proxy {
    int lfd;
    unsigned port;
    pthread_t thread;
    const script_step *steps;
    int nsteps;
    unsigned relay_port;
} script_proxy;

/* What the client sent may hold its proxy password: the buffer is wiped before it goes,
 * so the memory scan below finds only the library's copies. */
static int read_until(int fd, size_t expect, long long until)
{
    char buf[16384];
    size_t have = 0;
    int rc = -1;
    while (have < sizeof buf - 1 && iwt_now_ms() < until) {
        struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
        ssize_t n;
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if (expect ? have >= expect : strstr(buf, "\r\n\r\n") != NULL) {
            rc = 0;
            break;
        }
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

static void relay(int a, int b, long long until)
{
    char buf[16384];
    while (iwt_now_ms() < until) {
        struct pollfd p[2] = { { .fd = a, .events = POLLIN, .revents = 0 },
                               { .fd = b, .events = POLLIN, .revents = 0 } };
        int i;
        if (poll(p, 2, 100) <= 0)
            continue;
        for (i = 0; i < 2; i++) {
            if (p[i].revents) {
                ssize_t n = recv(p[i].fd, buf, sizeof buf, 0);
                if (n <= 0 || send(p[1 - i].fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
                    return;
            }
        }
    }
}

static void *script_main(void *arg)
{
    script_proxy *sp = arg;
    long long until = iwt_now_ms() + 15000;
    struct pollfd p = { .fd = sp->lfd, .events = POLLIN, .revents = 0 };
    int fd, up = -1, i;

    if (poll(&p, 1, 10000) != 1 || (fd = accept(sp->lfd, NULL, NULL)) < 0)
        return NULL;
    for (i = 0; i < sp->nsteps; i++) {
        char out[20000];
        size_t len = sp->steps[i].reply_len;
        if (read_until(fd, sp->steps[i].expect, until) != 0)
            break;
        memcpy(out, sp->steps[i].reply, len);
        if (i == sp->nsteps - 1 && sp->relay_port) {
            struct sockaddr_in a;
            ssize_t n;
            memset(&a, 0, sizeof a);
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)sp->relay_port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            up = socket(AF_INET, SOCK_STREAM, 0);
            if (up < 0 || connect(up, (struct sockaddr *)&a, sizeof a) != 0)
                break;
            /* the greeting, so that it travels in the same segment as the answer */
            n = recv(up, out + len, sizeof out - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        if (send(fd, out, len, MSG_NOSIGNAL) != (ssize_t)len)
            break;
    }
    /* without a relay the script ends here: the close is part of some scenarios */
    if (up >= 0 && i == sp->nsteps)
        relay(fd, up, until);
    if (up >= 0)
        close(up);
    close(fd);
    return NULL;
}

static void script_start(script_proxy *sp, const script_step *steps, int nsteps,
                         unsigned relay_port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(sp, 0, sizeof *sp);
    sp->steps = steps;
    sp->nsteps = nsteps;
    sp->relay_port = relay_port;
    sp->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(sp->lfd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(sp->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(sp->lfd, 4), 0);
    ck_assert_int_eq(getsockname(sp->lfd, (struct sockaddr *)&a, &len), 0);
    sp->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&sp->thread, NULL, script_main, sp), 0);
}

static void script_stop(script_proxy *sp)
{
    pthread_join(sp->thread, NULL);
    close(sp->lfd);
}

#define STEP(e, s) { (e), (s), sizeof(s) - 1 }

/* IMAP bytes that arrive with the proxy's answer (after an interim 1xx head) are the
 * greeting: they must come out of recv first, and the session works. */
START_TEST(http_bytes_after_head)
{
    static const script_step steps[] = {
        STEP(0, "HTTP/1.1 100 Continue\r\n\r\n"
                "HTTP/1.1 200 Connection established\r\nProxy-agent: script\r\n"
                "Content-Length: 12345\r\n\r\n"),
    };
    trace_log *t = calloc(1, sizeof *t);
    script_proxy sp;
    char tr[100];
    HCLIENT h;

    script_start(&sp, steps, 1, dv.port);
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", sp.port);
    h = via(tr, "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, t);
    ck_assert_msg(h != INVALID_CLIENT, "error %u, trace:\n%s", (unsigned)ImapGetLastError(), t->text);
    ck_assert_msg(strstr(t->text, "IMAP bytes arrived with the proxy's answer") != NULL, "%s", t->text);
    ck_assert_msg(strstr(t->text, "<* OK") != NULL, "%s", t->text);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    script_stop(&sp);
    free(t);
}
END_TEST

static char big_head[12000];

/* Malformed or oversized answers from an HTTP proxy. */
START_TEST(http_bad_answers)
{
    static const struct { const char *reply; DWORD error; } cases[] = {
        { "HTTP/2 200\r\n\r\n", ST_ERROR_INVALID_RESPONSE },
        { "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", ST_ERROR_INVALID_RESPONSE },
        { "HTTP/1.1 200 OK\r\n folded: line\r\n\r\n", ST_ERROR_INVALID_RESPONSE },
        { "HTTP/1.1 200 O\001K\r\n\r\n", ST_ERROR_INVALID_RESPONSE },
        { "HTTP/1.1 20x OK\r\n\r\n", ST_ERROR_INVALID_RESPONSE },
        { "HTTP/1.1 101 Switching\r\n\r\n", ST_ERROR_INVALID_RESPONSE },
        { "SSH-2.0-OpenSSH\r\n", ST_ERROR_INVALID_RESPONSE },
        { "HTTP/1.1 200 OK\r\nX: y\r\n", ST_ERROR_CONNECTION_CLOSED },  /* then the close */
        { "HTTP/1.1 302 Found\r\nLocation: x\r\n\r\n", ST_ERROR_CONNECTION_REFUSED },
        { big_head, ST_ERROR_RESPONSE_TOO_LARGE },
    };
    script_step step;
    script_proxy sp;
    char tr[100];
    size_t n;

    if (cases[_i].reply == big_head) {
        /* a head that never ends within 8 KiB: a status line, then many fields */
        n = (size_t)snprintf(big_head, sizeof big_head, "HTTP/1.1 200 OK\r\n");
        while (n + 40 < sizeof big_head)
            n += (size_t)snprintf(big_head + n, sizeof big_head - n, "X-Filler: %027zu\r\n", n);
    }
    step.expect = 0;
    step.reply = cases[_i].reply;
    step.reply_len = strlen(cases[_i].reply);
    script_start(&sp, &step, 1, 0);
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", sp.port);
    refused(tr, "127.0.0.1", dv.port, cases[_i].error, 5000, NULL);
    script_stop(&sp);
}
END_TEST

/* SOCKS5 replies: the codes' mapping, bytes that are not SOCKS5, and a reply followed at
 * once by the greeting (only the reply's own bytes may be taken). */
START_TEST(socks_replies)
{
    static const struct { const char *reply; size_t len; DWORD error; } cases[] = {
        { "\x05\x01\x00\x01\0\0\0\0\0\0", 10, ST_ERROR_NETWORK_ERROR },
        { "\x05\x03\x00\x01\0\0\0\0\0\0", 10, ST_ERROR_NETWORK_UNREACHABLE },
        { "\x05\x04\x00\x01\0\0\0\0\0\0", 10, ST_ERROR_HOST_NOT_FOUND },   /* for a name */
        { "\x05\x06\x00\x01\0\0\0\0\0\0", 10, ST_ERROR_OPERATION_TIMEOUT },
        { "\x05\x07\x00\x01\0\0\0\0\0\0", 10, ST_ERROR_INVALID_RESPONSE },
        { "\x05\x09\x00\x01\0\0\0\0\0\0", 10, ST_ERROR_INVALID_RESPONSE },
        { "\x05\x00\x01\x01\0\0\0\0\0\0", 10, ST_ERROR_INVALID_RESPONSE }, /* reserved byte */
        { "\x05\x00\x00\x02\0\0\0\0\0\0", 10, ST_ERROR_INVALID_RESPONSE }, /* address type */
        { "\x04\x5a\x00\x00\0\0\0\0", 8, ST_ERROR_INVALID_RESPONSE },      /* SOCKS4 */
        { "\x05\x05", 2, ST_ERROR_CONNECTION_REFUSED },                    /* short, then closed */
    };
    script_step steps[2];
    script_proxy sp;
    char tr[100];

    steps[0].expect = 3;
    steps[0].reply = "\x05\x00";
    steps[0].reply_len = 2;
    steps[1].expect = 4 + 1 + 9 + 2;      /* a request for "localhost" */
    steps[1].reply = cases[_i].reply;
    steps[1].reply_len = cases[_i].len;
    script_start(&sp, steps, 2, 0);
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", sp.port);
    refused(tr, "localhost", dv.port, cases[_i].error, 5000, NULL);
    script_stop(&sp);
}
END_TEST

START_TEST(socks_method_not_offered)
{
    static const script_step steps[] = { STEP(3, "\x05\x02") };
    script_proxy sp;
    char tr[100];
    script_start(&sp, steps, 1, 0);
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", sp.port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_INVALID_RESPONSE, 5000, NULL);
    script_stop(&sp);
}
END_TEST

/* Reply with a bound name, and the greeting in the same segment. */
START_TEST(socks_reply_then_greeting)
{
    static const script_step steps[] = {
        STEP(3, "\x05\x00"),
        STEP(4 + 4 + 2, "\x05\x00\x00\x03\x0dproxy.example\x04\x00"
                        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted\r\n"),
        STEP(1, "* BYE bye\r\nA0001 OK LOGOUT done\r\n"),
    };
    trace_log *t = calloc(1, sizeof *t);
    script_proxy sp;
    char tr[100];
    HCLIENT h;

    script_start(&sp, steps, 3, 0);
    snprintf(tr, sizeof tr, "socks5:127.0.0.1:%u", sp.port);
    h = via(tr, "127.0.0.1", 143, IMAP_OPTION_NONE, NULL, t);
    ck_assert_msg(h != INVALID_CLIENT, "error %u, trace:\n%s", (unsigned)ImapGetLastError(), t->text);
    ck_assert(ImapHasCapability(h, "IMAP4rev1"));
    ck_assert_int_eq(ImapDisconnect(h), 0);
    script_stop(&sp);
    free(t);
}
END_TEST

/* --------------------------------- the SSH tunnel's hop carried by a transport */

/* IMAP to port of Dovecot's host "localhost" (which the SSH server resolves) through an
 * SSH tunnel whose hop to sshd is carried by transport (NULL: TCP). mode 0 is plain,
 * 1 STARTTLS, 2 implicit TLS, inside the tunnel. */
static HCLIENT tunnel_via(const char *transport, int mode, trace_log *t)
{
    SECURITYCREDENTIALS sc;
    IMAPCONNECTINFO ci;

    sc = iwt_tunnel_creds(&sshd);
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
    ck_assert_int_eq(wait_count(dante.log, "tcp/connect [: username%imapwire-socks@", dest,
                                before + 1), before + 1);
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
    probe = via(tr, "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, NULL);
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
    char tr[100];

    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", iwt_free_port());
    ck_assert(tunnel_via(tr, 0, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_REFUSED);
    ck_assert(tunnel_via("no-such-transport", 0, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
    ck_assert(tunnel_via("socks5:not a proxy", 0, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(iwt_count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------------ secrets in traces */

static void b64(const char *in, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), i, o = 0;
    for (i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Neither the secret, nor the Basic credentials made of it, in any trace line (notes, sent
 * and received lines alike) or in the text of the error the connect left behind. */
static void assert_no_secret(const trace_log *t, const char *user, const char *secret,
                             const char *what)
{
    char cred[300], enc[420], err[512];
    snprintf(cred, sizeof cred, "%s:%s", user, secret);
    b64(cred, enc);
    ck_assert_msg(t->len > 0, "%s: no trace at all", what);
    ck_assert_msg(strstr(t->text, secret) == NULL, "%s: secret in the trace:\n%s", what, t->text);
    ck_assert_msg(strstr(t->text, enc) == NULL, "%s: credentials in the trace:\n%s", what, t->text);
    err[0] = '\0';
    ImapGetErrorString(ImapGetLastError(), err, (INT)sizeof err);
    ck_assert_msg(strstr(err, secret) == NULL, "%s: secret in the error text: %s", what, err);
}

/* Through Dante and tinyproxy with credentials: accepted, and refused for a wrong password;
 * the trace of each carries no password. */
START_TEST(proxy_secrets_not_traced)
{
    trace_log *t = calloc(1, sizeof *t);
    char tr[300];
    HCLIENT h;

    /* socks5, accepted */
    dante_transport(tr, sizeof tr, dante.user, dante.pass);
    through(tr, "127.0.0.1", 0, t);
    ck_assert_msg(strstr(t->text, "accepted user") != NULL, "%s", t->text);
    assert_no_secret(t, dante.user, dante.pass, "socks5 accepted");
    /* socks5, refused */
    t->len = 0;
    t->text[0] = '\0';
    dante_transport(tr, sizeof tr, dante.user, "Wr0ng-s0cks-S3cret");
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "refused the credentials") != NULL, "%s", t->text);
    assert_no_secret(t, dante.user, "Wr0ng-s0cks-S3cret", "socks5 refused");
    /* socks5, a password with ':' and '@' (the last '@' ends it) */
    t->len = 0;
    t->text[0] = '\0';
    dante_transport(tr, sizeof tr, dante.user, "p:a@ss-S3cret");
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    assert_no_secret(t, dante.user, "p:a@ss-S3cret", "socks5 odd password");

    /* httpconnect, accepted */
    t->len = 0;
    t->text[0] = '\0';
    snprintf(tr, sizeof tr, "httpconnect:%s:%s@127.0.0.1:%u", tp.user, tp.pass, tp.auth_port);
    through(tr, "127.0.0.1", 0, t);
    assert_no_secret(t, tp.user, tp.pass, "httpconnect accepted");
    /* httpconnect, refused */
    t->len = 0;
    t->text[0] = '\0';
    snprintf(tr, sizeof tr, "httpconnect:%s:Wr0ng-http-S3cret@127.0.0.1:%u", tp.user,
             tp.auth_port);
    refused(tr, "127.0.0.1", dv.port, ST_ERROR_CONNECTION_REFUSED, 5000, t);
    ck_assert_msg(strstr(t->text, "refused the credentials") != NULL, "%s", t->text);
    assert_no_secret(t, tp.user, "Wr0ng-http-S3cret", "httpconnect refused");
    /* a bad proxy address after valid credentials: refused before any I/O, still quiet */
    t->len = 0;
    t->text[0] = '\0';
    h = via("socks5:someone:Unus3d-S3cret@proxy!example:1080", "127.0.0.1", dv.port,
            IMAP_OPTION_NONE, NULL, t);
    ck_assert(h == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    assert_no_secret(t, "someone", "Unus3d-S3cret", "socks5 bad address");
    free(t);
}
END_TEST

/* A command line may carry a secret anywhere (an assignment in front, an option): the
 * command plugin's trace names the program at most. */
START_TEST(command_secret_not_traced)
{
    static const struct { const char *line; int works; const char *shown; } cases[] = {
        { "command:IMAPW_TOKEN=Cmd-S3cret-1 sh -c \"printf '* PREAUTH [CAPABILITY IMAP4rev1] "
          "hi\\r\\n'; cat >/dev/null\"", 1, NULL },
        { "command:exec sh -c \"printf '* PREAUTH [CAPABILITY IMAP4rev1] hi\\r\\n'; "
          "cat >/dev/null\" imapd --token=Cmd-S3cret-1", 1, "runs sh\n" },
        { "command:'Cmd-S3cret-1' 2>/dev/null", 0, NULL },
        { "command:IMAPW_TOKEN=Cmd-S3cret-1 false", 0, NULL },
    };
    trace_log *t = calloc(1, sizeof *t);
    HCLIENT h = via(cases[_i].line, "127.0.0.1", 143, IMAP_OPTION_NONE, NULL, t);
    if (cases[_i].works) {
        ck_assert_msg(h != INVALID_CLIENT, "error %u\n%s", (unsigned)ImapGetLastError(), t->text);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    } else {
        ck_assert(h == INVALID_CLIENT);
    }
    ck_assert_msg(strstr(t->text, "command: pid ") != NULL, "%s", t->text);
    if (cases[_i].shown != NULL)
        ck_assert_msg(strstr(t->text, cases[_i].shown) != NULL, "%s", t->text);
    assert_no_secret(t, "-", "Cmd-S3cret-1", cases[_i].line);
    free(t);
}
END_TEST

/* ------------------------------------------------------------ secrets in memory */

#define SCAN_MASK 0x5a

/* Matches of masked[0..n) in [lo, hi) of this process, read through mem into buf. */
static int scan_range(int mem, unsigned char *buf, size_t size, unsigned long lo,
                      unsigned long hi, const unsigned char *masked, size_t n)
{
    unsigned long off = lo;
    int found = 0;
    while (off < hi) {
        size_t want = hi - off < size ? hi - off : size, i;
        ssize_t got = pread(mem, buf, want, (off_t)off);
        if (got <= 0) {
            off += 4096;               /* a page that cannot be read now: skip it */
            continue;
        }
        for (i = 0; i < (size_t)got; i++)
            buf[i] ^= SCAN_MASK;
        for (i = 0; i + n <= (size_t)got; i++)
            if (buf[i] == masked[0] && memcmp(buf + i, masked, n) == 0)
                found++;
        /* the next read overlaps this one by n - 1 bytes: nothing straddles a seam, and
         * no match is counted twice */
        off += (size_t)got > n ? (size_t)got - (n - 1) : (size_t)got;
    }
    return found;
}

/* Counts the places in this process's writable memory that hold the secret whose bytes,
 * each XORed with SCAN_MASK, are in masked[0..n). Only the masked form is ever kept here,
 * and each chunk is masked as soon as it is read, so the scan does not find itself; the
 * chunk buffer is a mapping of its own, left out (reading it into itself would smear
 * it). Reads go through /proc/self/mem, which ASan does not check; huge reservations
 * (ASan's shadow) are skipped. */
static int scan_memory(const unsigned char *masked, size_t n)
{
    enum { CHUNK = 1 << 20 };
    FILE *maps = fopen("/proc/self/maps", "r");
    unsigned char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                              -1, 0);
    unsigned long b0 = (unsigned long)buf, b1 = b0 + CHUNK;
    int mem = open("/proc/self/mem", O_RDONLY), found = 0;
    char line[512];

    ck_assert_ptr_nonnull(maps);
    ck_assert(buf != MAP_FAILED);
    ck_assert_int_ge(mem, 0);
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            perms[1] != 'w' || hi - lo > (256ul << 20) || strstr(line, "[vvar") != NULL)
            continue;
        if (lo < b0)
            found += scan_range(mem, buf, CHUNK, lo, hi < b0 ? hi : b0, masked, n);
        if (hi > b1)
            found += scan_range(mem, buf, CHUNK, lo > b1 ? lo : b1, hi, masked, n);
    }
    munmap(buf, CHUNK);
    close(mem);
    fclose(maps);
    return found;
}

/* A password made here, known to the test only in masked form once the connect is made. */
static void make_secret(char *out, size_t size, unsigned char *masked)
{
    unsigned char rnd[12];
    size_t i;
    FILE *f = fopen("/dev/urandom", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(rnd, 1, sizeof rnd, f), sizeof rnd);
    fclose(f);
    ck_assert_uint_gt(size, 2 * sizeof rnd + 3);
    out[0] = 'P';
    out[1] = 'w';
    for (i = 0; i < sizeof rnd; i++)
        snprintf(out + 2 + 2 * i, 3, "%02x", rnd[i]);
    for (i = 0; out[i] != '\0'; i++)
        masked[i] = (unsigned char)out[i] ^ SCAN_MASK;
    explicit_bzero(rnd, sizeof rnd);
}

static size_t mask_text(const char *text, unsigned char *out)
{
    size_t i;
    for (i = 0; text[i] != '\0'; i++)
        out[i] = (unsigned char)text[i] ^ SCAN_MASK;
    return i;
}

/* The proxy password is gone from the plugins' memory once the auth exchange is sent,
 * while the connection lives on, and from everywhere after ImapDisconnect: SOCKS5
 * (RFC 1929) and HTTP Basic, each through a scripted proxy that takes any credentials
 * and then relays to Dovecot. The caller's transport text (":password@127.0.0.1:") is
 * counted apart: the core keeps that one copy until the client goes (see the report of
 * issue 11); any other copy is a plugin's. */
START_TEST(proxy_password_wiped_after_auth)
{
    char secret[40], tr[200], cred[64], enc[100];
    unsigned char masked[40], masked_spec[64], masked_b64[100];
    size_t n, nspec, nb64;
    script_step steps[3];
    script_proxy sp;
    HCLIENT h;
    int nsteps, all, spec, b64_copies, after;

    make_secret(secret, sizeof secret, masked);
    n = strlen(secret);
    masked_spec[0] = ':' ^ SCAN_MASK;
    memcpy(masked_spec + 1, masked, n);
    nspec = 1 + n + mask_text("@127.0.0.1:", masked_spec + 1 + n);
    snprintf(cred, sizeof cred, "u:%s", secret);
    b64(cred, enc);
    nb64 = mask_text(enc, masked_b64);
    explicit_bzero(cred, sizeof cred);
    explicit_bzero(enc, sizeof enc);
    if (_i == 0) {
        /* methods (none, username/password), RFC 1929 "u" + secret, CONNECT 127.0.0.1 */
        steps[0] = (script_step){ 4, "\x05\x02", 2 };
        steps[1] = (script_step){ 3 + 1 + n, "\x01\x00", 2 };
        steps[2] = (script_step){ 4 + 4 + 2, "\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00", 10 };
        nsteps = 3;
    } else {
        steps[0] = (script_step){ 0, "HTTP/1.1 200 Connection established\r\n\r\n", 39 };
        nsteps = 1;
    }
    script_start(&sp, steps, nsteps, dv.port);
    snprintf(tr, sizeof tr, "%s:u:%s@127.0.0.1:%u", _i == 0 ? "socks5" : "httpconnect", secret,
             sp.port);
    explicit_bzero(secret, sizeof secret);
    h = via(tr, "127.0.0.1", dv.port, IMAP_OPTION_NONE, NULL, NULL);
    explicit_bzero(tr, sizeof tr);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    all = scan_memory(masked, n);
    spec = scan_memory(masked_spec, nspec);
    b64_copies = scan_memory(masked_b64, nb64);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    script_stop(&sp);
    after = scan_memory(masked, n) + scan_memory(masked_b64, nb64);
    printf("proxy password copies while connected (%s): %d, of which the transport text %d; "
           "base64 %d; after disconnect %d\n", _i == 0 ? "socks5" : "httpconnect", all, spec,
           b64_copies, after);
    /* each scan reads the memory of that moment: compare without subtracting */
    /* the core drops the transport text once the chain is built: no copy at all */
    ck_assert_msg(all == 0 && spec == 0, "%d copies of the proxy password, %d of them in the "
                  "transport text, after the auth exchange", all, spec);
    ck_assert_msg(b64_copies == 0, "%d copies of the Basic credentials", b64_copies);
    ck_assert_msg(after == 0, "the proxy password is still in memory %d time(s) after "
                  "ImapDisconnect", after);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *ssh = tcase_create("ssh -D");
    TCase *dt = tcase_create("dante");
    TCase *http = tcase_create("tinyproxy");
    TCase *edge = tcase_create("edges");
    TCase *tunnel = tcase_create("ssh hop over a proxy");
    TCase *secrets = tcase_create("secrets");
    SRunner *sr;
    int failed;

    tcase_add_unchecked_fixture(ssh, ssh_d_start, ssh_d_stop);
    tcase_add_checked_fixture(ssh, setup, teardown);
    tcase_set_timeout(ssh, 120);
    tcase_add_loop_test(ssh, ssh_d_modes, 0, 6);
    tcase_add_test(ssh, ssh_d_proxy_localhost);
    tcase_add_test(ssh, ssh_d_refused_destination);
    suite_add_tcase(s, ssh);

    tcase_add_checked_fixture(dt, setup, teardown);
    tcase_set_timeout(dt, 60);
    tcase_add_loop_test(dt, dante_modes, 0, 6);
    tcase_add_test(dt, dante_wrong_password);
    tcase_add_test(dt, dante_no_credentials);
    tcase_add_test(dt, dante_blocked_destination);
    tcase_add_test(dt, dante_refused_destination);
    tcase_add_test(dt, dante_unknown_name);
    tcase_add_test(dt, env_transport);
    tcase_add_test(dt, dante_thousand);
    suite_add_tcase(s, dt);

    tcase_add_checked_fixture(http, setup, teardown);
    tcase_set_timeout(http, 60);
    tcase_add_loop_test(http, http_modes, 0, 6);
    tcase_add_loop_test(http, http_basic_auth, 0, 3);
    tcase_add_test(http, http_auth_refused);
    tcase_add_test(http, http_connect_port_policy);
    tcase_add_test(http, http_refused_destination);
    suite_add_tcase(s, http);

    tcase_add_checked_fixture(edge, setup, teardown);
    tcase_set_timeout(edge, 60);
    tcase_add_loop_test(edge, proxy_down, 0, 7);
    tcase_add_loop_test(edge, proxy_by_name, 0, 6);
    tcase_add_loop_test(edge, proxy_name_unknown, 0, 2);
    tcase_add_test(edge, proxy_local_address);
    tcase_add_test(edge, wrong_protocol);
    tcase_add_test(edge, bad_arguments);
    tcase_add_test(edge, http_bytes_after_head);
    tcase_add_loop_test(edge, http_bad_answers, 0, 10);
    tcase_add_loop_test(edge, socks_replies, 0, 10);
    tcase_add_test(edge, socks_method_not_offered);
    tcase_add_test(edge, socks_reply_then_greeting);
    suite_add_tcase(s, edge);

    tcase_add_checked_fixture(tunnel, setup, teardown);
    tcase_set_timeout(tunnel, 60);
    tcase_add_loop_test(tunnel, ssh_through_httpconnect, 0, 3);
    tcase_add_loop_test(tunnel, ssh_through_socks5, 0, 3);
    tcase_add_test(tunnel, ssh_through_command);
    tcase_add_test(tunnel, ssh_sessions_keyed_by_transport);
    tcase_add_test(tunnel, ssh_through_failures);
    suite_add_tcase(s, tunnel);

    tcase_add_checked_fixture(secrets, setup, teardown);
    tcase_set_timeout(secrets, 60);
    tcase_add_test(secrets, proxy_secrets_not_traced);
    tcase_add_loop_test(secrets, command_secret_not_traced, 0, 4);
    tcase_add_loop_test(secrets, proxy_password_wiped_after_auth, 0, 2);
    suite_add_tcase(s, secrets);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
