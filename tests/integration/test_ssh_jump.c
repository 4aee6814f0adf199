/* test_ssh_jump.c: jump hosts (lpszTunnelHost "hop,hop,..."): SSH over a channel of the hop
 * before, every hop's host key checked, each hop's failure named, sessions shared per route. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "iwtest.h"
#include "sshd_log.h"

static iwt_sshd sshd;
static iwt_dovecot dv;
static trace_log tl;

static void setup(void)
{
    const char *p = getenv("IW_SSHD_ENV");
    ck_assert_msg(p != NULL, "IW_SSHD_ENV not set (run through ctest)");
    iwt_sshd_load(&sshd, p);
    iwt_dovecot_load(&dv);
    unsetenv("SSH_AUTH_SOCK");
    memset(&tl, 0, sizeof tl);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void inner_stop_if_started(void);

static void teardown(void)
{
    ImapUninitialize();
    /* a failed check leaves the test before its own stop: never leave an sshd behind */
    inner_stop_if_started();
}

/* A tunnelled connect to Dovecot's plain port through route, from local (NULL: any). */
static HCLIENT jump_connect(const char *route, const char *known, const char *local)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPCONNECTINFO in;
    sc.lpszTunnelHost = route;
    sc.nTunnelPort = sshd.port;
    if (known != NULL)
        sc.lpszKnownHosts = known;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 10;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = &sc;
    in.lpszLocalAddress = local;
    in.lpTraceProc = trace_cb;
    in.lpParam = &tl;
    return ImapConnectEx(&in);
}

static void login_noop(HCLIENT h)
{
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u\n%s", (unsigned)ImapGetLastError(),
                  tl.text);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
}

/* Two hops on the one sshd: we reach it from 127.0.0.4, and the second SSH connection
 * comes from sshd itself (127.0.0.1) through the first one's channel. */
START_TEST(two_hops_reach_dovecot)
{
    char route[128];
    int from_us, from_hop1, accepted;
    HCLIENT h;

    snprintf(route, sizeof route, "127.0.0.1,%s@127.0.0.1:%u", sshd.user, sshd.port);
    from_us = iwt_count_in_file(sshd.log, "Connection from 127.0.0.4 ");
    from_hop1 = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1 ");
    accepted = iwt_count_in_file(sshd.log, "Accepted publickey for ");
    h = jump_connect(route, NULL, "127.0.0.4");
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Connection from 127.0.0.4 ") - from_us, 1);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Connection from 127.0.0.1 ") - from_hop1, 1);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - accepted, 2);
}
END_TEST

START_TEST(three_hops)
{
    char route[128];
    int accepted = iwt_count_in_file(sshd.log, "Accepted publickey for ");
    HCLIENT h;
    snprintf(route, sizeof route, "127.0.0.1,127.0.0.1,127.0.0.1");
    h = jump_connect(route, NULL, NULL);
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - accepted, 3);
}
END_TEST

/* A second connect over the same route, and a direct one to the first hop, open no new
 * SSH connection while the first connect is up: sessions are shared per route. */
START_TEST(sessions_shared_per_route)
{
    int before = iwt_count_in_file(sshd.log, "Accepted publickey for ");
    HCLIENT a, b, c;
    a = jump_connect("127.0.0.1,127.0.0.1", NULL, NULL);
    login_noop(a);
    b = jump_connect("127.0.0.1,127.0.0.1", NULL, NULL);
    login_noop(b);
    c = jump_connect("127.0.0.1", NULL, NULL);
    login_noop(c);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - before, 2);
    ck_assert_int_eq(ImapDisconnect(b), 0);
    ck_assert_int_eq(ImapCommand(a, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(a), 0);
    ck_assert_int_eq(ImapCommand(c, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(c), 0);
}
END_TEST

/* known_hosts lines of sshd's keys under the name [name]:port, from src (the right keys,
 * or the wrong ones), appended to path. */
static void known_add(const char *path, const char *src, const char *name)
{
    char *text = iwt_read_file(src), *line, *save = NULL;
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(text);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        const char *key = strchr(line, ' ');
        if (key != NULL)
            fprintf(f, "[%s]:%u%s\n", name, sshd.port, key);
    }
    fclose(f);
    free(text);
}

static void known_path(char *path, size_t size, const char *what)
{
    snprintf(path, size, "%s/known-jump-%s-%d", getenv("IW_TMPDIR"), what, (int)getpid());
    unlink(path);
}

/* The failing hop is named in the trace with its own error. */
static void expect_hop_failure(const char *route, const char *known, DWORD error, int hop,
                               const char *who)
{
    char needle[160];
    HCLIENT h = jump_connect(route, known, NULL);
    ck_assert(h == INVALID_CLIENT);
    iwt_assert_error(error);
    snprintf(needle, sizeof needle, "hop %d (%s) failed", hop, who);
    ck_assert_msg(strstr(tl.text, needle) != NULL, "no \"%s\" in trace:\n%s", needle, tl.text);
}

START_TEST(hop2_host_key_unknown)
{
    char known[512], who[128];
    known_path(known, sizeof known, "h2unknown");
    known_add(known, sshd.known, "127.0.0.1");
    snprintf(who, sizeof who, "%s@localhost:%u", sshd.user, sshd.port);
    expect_hop_failure("127.0.0.1,localhost", known, ST_ERROR_SSH_HOST_KEY_UNKNOWN, 2, who);
}
END_TEST

START_TEST(hop1_host_key_unknown)
{
    char known[512], who[128];
    known_path(known, sizeof known, "h1unknown");
    known_add(known, sshd.known, "127.0.0.1");
    snprintf(who, sizeof who, "%s@localhost:%u", sshd.user, sshd.port);
    expect_hop_failure("localhost,127.0.0.1", known, ST_ERROR_SSH_HOST_KEY_UNKNOWN, 1, who);
}
END_TEST

START_TEST(hop2_host_key_mismatch)
{
    char known[512], who[128];
    known_path(known, sizeof known, "h2wrong");
    known_add(known, sshd.known, "127.0.0.1");
    known_add(known, sshd.known_wrong, "localhost");
    snprintf(who, sizeof who, "%s@localhost:%u", sshd.user, sshd.port);
    expect_hop_failure("127.0.0.1,localhost", known, ST_ERROR_SSH_HOST_KEY_MISMATCH, 2, who);
}
END_TEST

START_TEST(hop2_auth_failed)
{
    char route[128], who[128];
    snprintf(route, sizeof route, "127.0.0.1,nosuchuser@127.0.0.1");
    snprintf(who, sizeof who, "nosuchuser@127.0.0.1:%u", sshd.port);
    expect_hop_failure(route, NULL, ST_ERROR_SSH_AUTH_FAILED, 2, who);
}
END_TEST

/* The first hop cannot reach the second: its channel is refused. */
START_TEST(hop2_unreachable)
{
    char who[128];
    snprintf(who, sizeof who, "%s@127.0.0.1:1", sshd.user);
    expect_hop_failure("127.0.0.1,127.0.0.1:1", NULL, ST_ERROR_SSH_CHANNEL_FAILED, 2, who);
}
END_TEST

/* A malformed route fails before any traffic. */
START_TEST(bad_route_no_traffic)
{
    static const char *const bad[] = { "127.0.0.1,", ",127.0.0.1", "127.0.0.1,,127.0.0.1",
                                       "127.0.0.1, 127.0.0.1", "127.0.0.1,-oProxyCommand=x",
                                       "a,b,c,d,e,f,g,h,i" };
    int before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1 ");
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(jump_connect(bad[i], NULL, NULL) == INVALID_CLIENT, "%s", bad[i]);
        iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    }
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Connection from 127.0.0.1 ") - before, 0);
}
END_TEST

/* A port-forward through two hops carries a whole IMAP session. */
START_TEST(forward_through_jump)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    UINT port = 0;
    HFORWARD fw;
    HCLIENT h;
    int accepted = iwt_count_in_file(sshd.log, "Accepted publickey for ");
    sc.lpszTunnelHost = "127.0.0.1,127.0.0.1";
    fw = ImapCreatePortForward(&sc, "127.0.0.1", dv.port, 0, &port);
    ck_assert_msg(fw != INVALID_FORWARD, "forward: %u", (unsigned)ImapGetLastError());
    h = ImapConnect("127.0.0.1", port, 10, IMAP_OPTION_TUNNEL, NULL);
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert(ImapClosePortForward(fw));
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - accepted, 2);
}
END_TEST


/* ---- CREDENTIAL_TUNNEL_SSH_CONFIG ---- */

static void write_config(char *path, size_t size, const char *extra)
{
    FILE *f;
    snprintf(path, size, "%s/ssh-config-%d", getenv("IW_TMPDIR"), (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "Host imapbastion\n"
               "  HostName 127.0.0.1\n"
               "  Port %u\n"
               "  User %s\n"
               "  IdentityFile %s\n"
               "  UserKnownHostsFile %s\n"
               "  ServerAliveInterval 15\n"
               "Host imapinner\n"
               "  HostName 127.0.0.1\n"
               "  ProxyJump imapbastion\n"
               "%s"
               "Host *\n"
               "  Port %u\n"
               "  User %s\n"
               "  IdentityFile %s\n"
               "  UserKnownHostsFile %s\n",
            sshd.port, sshd.user, sshd.key, sshd.known, extra, sshd.port, sshd.user,
            sshd.key, sshd.known);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
    setenv("IMAPWIRE_SSH_CONFIG", path, 1);
}

static HCLIENT config_connect(const char *alias)
{
    SECURITYCREDENTIALS sc;
    IMAPCONNECTINFO in;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.dwOptions = CREDENTIAL_TUNNEL_SSH_CONFIG;
    sc.lpszTunnelHost = alias;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 10;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = &sc;
    in.lpTraceProc = trace_cb;
    in.lpParam = &tl;
    return ImapConnectEx(&in);
}

/* Only the alias comes from the caller: host, port, user, key and known_hosts from the
 * file; an alias with ProxyJump goes through the bastion. */
START_TEST(config_alias_and_proxyjump)
{
    char path[512];
    int accepted;
    HCLIENT h;
    write_config(path, sizeof path, "");
    accepted = iwt_count_in_file(sshd.log, "Accepted publickey for ");
    h = config_connect("imapbastion");
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - accepted, 1);
    /* the bastion's session outlives its connect while its keepalives run (up to one
     * ServerAliveInterval): the route reuses it, so only the inner hop logs in anew */
    h = config_connect("imapinner");
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - accepted, 2);
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST

/* A keyword we cannot honour fails before any traffic, named with its line. */
START_TEST(config_refusal_named)
{
    char path[512];
    int before;
    write_config(path, sizeof path, "Host imapproxied\n  CertificateFile /x\n");
    before = iwt_count_in_file(sshd.log, "Connection from 127.0.0.1 ");
    ck_assert(config_connect("imapproxied") == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(tl.text, "CertificateFile") != NULL && strstr(tl.text, "line 12") != NULL,
                  "trace:\n%s", tl.text);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Connection from 127.0.0.1 ") - before, 0);
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST


/* ---- ProxyCommand (through the command transport) ---- */

/* A ProxyCommand that leaves a mark, then relays with nc (netcat-openbsd): shows the
 * command ran and that its quotes reach the shell as written. */
static void mark_command(char *cmd, size_t size, char *mark, size_t mark_size)
{
    snprintf(mark, mark_size, "%s/proxycommand-mark-%d", getenv("IW_TMPDIR"), (int)getpid());
    unlink(mark);
    snprintf(cmd, size, "  ProxyCommand sh -c 'echo %%n > %s; exec nc %%h %%p'\n", mark);
}

static void mark_says(const char *mark, const char *alias)
{
    char *text = iwt_read_file(mark);
    ck_assert_msg(strncmp(text, alias, strlen(alias)) == 0, "mark: \"%s\"", text);
    free(text);
    unlink(mark);
}

/* Through a command that is not ssh; and a jump chain whose first hop has it. */
START_TEST(config_proxycommand_not_ssh)
{
    char path[512], mark[512], cmd[800], extra[2400];
    HCLIENT h;
    mark_command(cmd, sizeof cmd, mark, sizeof mark);
    snprintf(extra, sizeof extra, "Host viacmd\n  HostName 127.0.0.1\n%s"
             "Host innerviacmd\n  HostName 127.0.0.1\n  ProxyJump viacmd\n", cmd);
    write_config(path, sizeof path, extra);
    h = config_connect(_i == 0 ? "viacmd" : "innerviacmd");
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    mark_says(mark, "viacmd");
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST

/* Through a bastion with ssh -W %h:%p: the bastion logs the ssh client in, the target
 * the library. */
START_TEST(config_proxycommand_ssh_w)
{
    char path[512], extra[2400];
    int accepted;
    HCLIENT h;
    snprintf(extra, sizeof extra, "Host viassh\n  HostName 127.0.0.1\n"
             "  ProxyCommand ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes "
             "-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes "
             "-i %s -p %u %s@127.0.0.1 -W %%h:%%p\n", sshd.known, sshd.key, sshd.port, sshd.user);
    write_config(path, sizeof path, extra);
    accepted = iwt_count_in_file(sshd.log, "Accepted publickey for ");
    h = config_connect("viassh");
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_sshd_marker(&sshd);
    ck_assert_int_eq(iwt_count_in_file(sshd.log, "Accepted publickey for ") - accepted, 2);
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST

/* The first of ProxyCommand and ProxyJump wins: "ProxyCommand none" first keeps a later
 * (unreachable) ProxyJump out; a ProxyJump first keeps a later failing command out. */
START_TEST(config_proxycommand_precedence)
{
    char path[512];
    HCLIENT h;
    write_config(path, sizeof path,
                 "Host nonefirst\n  HostName 127.0.0.1\n  ProxyCommand none\n"
                 "  ProxyJump nowhere.invalid\n"
                 "Host jumpfirst\n  HostName 127.0.0.1\n  ProxyJump imapbastion\n"
                 "  ProxyCommand false\n");
    h = config_connect(_i == 0 ? "nonefirst" : "jumpfirst");
    login_noop(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST

/* A command that fails: the connect fails, and the trace names the command as the cause. */
START_TEST(config_proxycommand_fails)
{
    char path[512];
    write_config(path, sizeof path,
                 "Host badcmd\n  HostName 127.0.0.1\n  ProxyCommand /nonexistent/proxy %h %p\n");
    ck_assert(config_connect("badcmd") == INVALID_CLIENT);
    ck_assert_msg(strstr(tl.text, "ProxyCommand") != NULL, "trace:\n%s", tl.text);
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST

/* ---- a second sshd that only the first can reach ---- */

static iwt_sshd inner;
static char inner_dir[600];
static int inner_started;

/* Starts (once per test process) an sshd that refuses the test user from 127.0.0.4,
 * with a debug log; the client connects from 127.0.0.4, so it gets in only through the
 * first sshd, whose onward connections come from 127.0.0.1. */
static void inner_start(void)
{
    char conf[700], cmd[4096], envp[700];
    FILE *f;
    snprintf(inner_dir, sizeof inner_dir, "%s-inner-%d", sshd.dir, (int)getpid());
    snprintf(conf, sizeof conf, "%s.conf", inner_dir);
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    /* DenyUsers wins over the harness's AllowUsers */
    fprintf(f, "DenyUsers %s@127.0.0.4\n", sshd.user);
    fclose(f);
    snprintf(cmd, sizeof cmd, "SSHD_LOGLEVEL=DEBUG1 SSHD_EXTRA_CONF=%s %s/../harness/sshd.sh "
             "start %s >/dev/null 2>&1", conf, getenv("IW_TESTS_DIR"), inner_dir);
    ck_assert_int_eq(system(cmd), 0);
    inner_started = 1;
    snprintf(envp, sizeof envp, "%s/env", inner_dir);
    iwt_sshd_load(&inner, envp);
}

static void inner_stop(void)
{
    char cmd[4096];
    inner_started = 0;
    snprintf(cmd, sizeof cmd, "%s/../harness/sshd.sh stop %s >/dev/null 2>&1; rm -rf %s %s.conf",
             getenv("IW_TESTS_DIR"), inner_dir, inner_dir, inner_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void inner_stop_if_started(void)
{
    if (inner_started)
        inner_stop();
}

/* A known_hosts naming both servers (each keyed [127.0.0.1]:its port). */
static void both_known(char *path, size_t size)
{
    char cmd[4096];
    snprintf(path, size, "%s/known-both-%d", getenv("IW_TMPDIR"), (int)getpid());
    snprintf(cmd, sizeof cmd, "cat %s %s > %s", sshd.known, inner.known, path);
    ck_assert_int_eq(system(cmd), 0);
}

static HCLIENT pw_connect(const char *route, const char *known, const char *host, unsigned port,
                          DWORD opt, const char *ca, const char *local)
{
    SECURITYCREDENTIALS sc;
    IMAPCONNECTINFO in;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = route;
    sc.lpszTunnelUser = sshd.user;
    sc.lpszTunnelPassword = sshd.pass;
    sc.lpszKnownHosts = known;
    sc.lpszCAFile = ca;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = host;
    in.nRemotePort = port;
    in.nTimeout = 10;
    in.dwOptions = IMAP_OPTION_TUNNEL | opt;
    in.lpCredentials = &sc;
    in.lpszLocalAddress = local;
    in.lpTraceProc = trace_cb;
    in.lpParam = &tl;
    return ImapConnectEx(&in);
}

/* jump -> inner sshd -> Dovecot with STARTTLS inside: the inner server admits us only
 * through the jump host; each hop with a wrong host key fails with that hop named. */
START_TEST(inner_only_through_jump)
{
    iwt_dovecot dvtls;
    char known[600], route[160], ca[700], who[128];
    SECURITYINFO si;
    HCLIENT h;

    inner_start();
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    both_known(known, sizeof known);
    /* directly, from 127.0.0.4: refused by the inner server */
    snprintf(route, sizeof route, "127.0.0.1:%u", inner.port);
    ck_assert(pw_connect(route, known, "127.0.0.1", dv.port, 0, NULL, "127.0.0.4") == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_SSH_AUTH_FAILED);
    /* through the jump host: in, and STARTTLS verified inside */
    snprintf(route, sizeof route, "127.0.0.1:%u,127.0.0.1:%u", sshd.port, inner.port);
    h = pw_connect(route, known, "localhost", dvtls.port, IMAP_OPTION_SECURE_EXPLICIT, ca,
                   "127.0.0.4");
    ck_assert_msg(h != INVALID_CLIENT, "error %u\n%s", (unsigned)ImapGetLastError(), tl.text);
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dvtls.user, dvtls.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert(iwt_log_wait(inner.log, "Accepted password for", 1, 5000) >= 1);
    /* a wrong host key for each hop in turn */
    snprintf(who, sizeof who, "%s@127.0.0.1:%u", sshd.user, inner.port);
    ImapUninitialize();
    ck_assert(ImapInitialize(NULL, NULL));
    memset(&tl, 0, sizeof tl);
    ck_assert(pw_connect(route, sshd.known, "127.0.0.1", dv.port, 0, NULL, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_SSH_HOST_KEY_UNKNOWN);
    ck_assert_msg(strstr(tl.text, "hop 2") && strstr(tl.text, who), "%s", tl.text);
    memset(&tl, 0, sizeof tl);
    ck_assert(pw_connect(route, inner.known, "127.0.0.1", dv.port, 0, NULL, NULL) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_SSH_HOST_KEY_UNKNOWN);
    ck_assert_msg(strstr(tl.text, "hop 1") != NULL, "%s", tl.text);
    inner_stop();
}
END_TEST

/* ServerAliveInterval from the SSH configuration: keepalives reach sshd while the
 * session sits idle, sent by the loop. */
START_TEST(keepalives_while_idle)
{
    char path[600];
    FILE *f;
    HCLIENT h;
    int before;

    inner_start();
    snprintf(path, sizeof path, "%s/alive-config-%d", getenv("IW_TMPDIR"), (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "Host alive\n  HostName 127.0.0.1\n  Port %u\n  User %s\n  IdentityFile %s\n"
               "  UserKnownHostsFile %s\n  ServerAliveInterval 2\n",
            inner.port, inner.user, inner.key, inner.known);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
    setenv("IMAPWIRE_SSH_CONFIG", path, 1);
    h = config_connect("alive");
    login_noop(h);
    before = iwt_count_in_file(inner.log, "keepalive@");
    /* every 2 s (libssh2's shortest interval: it reads 1 as 2) */
    sleep(5);
    ck_assert_msg(iwt_count_in_file(inner.log, "keepalive@") - before >= 2,
                  "%d keepalives in 5 s", iwt_count_in_file(inner.log, "keepalive@") - before);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    unsetenv("IMAPWIRE_SSH_CONFIG");
    inner_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh_jump");
    TCase *tc = tcase_create("jump");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, two_hops_reach_dovecot);
    tcase_add_test(tc, three_hops);
    tcase_add_test(tc, sessions_shared_per_route);
    tcase_add_test(tc, hop2_host_key_unknown);
    tcase_add_test(tc, hop1_host_key_unknown);
    tcase_add_test(tc, hop2_host_key_mismatch);
    tcase_add_test(tc, hop2_auth_failed);
    tcase_add_test(tc, hop2_unreachable);
    tcase_add_test(tc, bad_route_no_traffic);
    tcase_add_test(tc, forward_through_jump);
    tcase_add_test(tc, config_alias_and_proxyjump);
    tcase_add_test(tc, config_refusal_named);
    tcase_add_loop_test(tc, config_proxycommand_not_ssh, 0, 2);
    tcase_add_test(tc, config_proxycommand_ssh_w);
    tcase_add_loop_test(tc, config_proxycommand_precedence, 0, 2);
    tcase_add_test(tc, config_proxycommand_fails);
    tcase_add_test(tc, inner_only_through_jump);
    tcase_add_test(tc, keepalives_while_idle);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
