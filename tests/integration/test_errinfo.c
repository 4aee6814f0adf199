/* test_errinfo.c: ImapGetErrorInfo across the failure matrix: each failure class on each
 * route where it can happen, checking stage, hop, peer and file exactly, the peer's words. */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "iwtest.h"

#define T_S 5                        /* connect timeout of the cases that fail at once */

static iwt_dovecot dv, dvtls;
static iwt_sshd sshd;
static char ca[700], dns_server[64];
static iwt_dante dante;
static iwt_tinyproxy tp;

static void setup(void)
{
    iwt_dovecot_load(&dv);
    iwt_dovecot_load_file(&dvtls, getenv("IW_DOVECOT_TLS_ENV"));
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dvtls.dir);
    iwt_proxies_load(&dante, &tp);
    iwt_env_value(getenv("IW_DNS_ENV"), "DNSMASQ_SERVER", dns_server, sizeof dns_server);
    unsetenv("IMAPWIRE_TRANSPORT");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* A listener that completes TCP handshakes (the kernel does) and never says a word. */
static int silent_listener(unsigned *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static HCLIENT connect_via(const char *host, unsigned port, unsigned timeout, DWORD opts,
                           LPSECURITYCREDENTIALS sc, const char *transport, const char *dns)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = port;
    ci.nTimeout = timeout;
    ci.dwOptions = opts;
    ci.lpCredentials = sc;
    ci.lpszTransport = transport;
    ci.lpszDnsServers = dns;
    return ImapConnectEx(&ci);
}

/* The thread's record after a failed call: code, stage, hop, peer and file exactly; the
 * detail holds each of the words (NULL-ended), and no field holds a secret. */
static void expect(HCLIENT h, DWORD err, DWORD stage, UINT hop, const char *peer,
                   const char *file, const char *const *words, const char *const *secrets)
{
    IMAPERRORINFO ei;
    const char *fields[4];
    int i, j;
    memset(&ei, 0x5a, sizeof ei);
    ei.dwSize = sizeof ei;
    ck_assert_int_eq(ImapGetErrorInfo(h, &ei), 0);
    ck_assert_msg(ei.dwError == err, "error %u, not %u (detail: %s)", (unsigned)ei.dwError,
                  (unsigned)err, ei.szDetail);
    ck_assert_msg(ei.dwStage == stage, "stage %u, not %u (detail: %s)", (unsigned)ei.dwStage,
                  (unsigned)stage, ei.szDetail);
    ck_assert_msg(ei.nHop == hop, "hop %u, not %u (detail: %s)", ei.nHop, hop, ei.szDetail);
    ck_assert_str_eq(ei.szPeer, peer ? peer : "");
    ck_assert_str_eq(ei.szFile, file ? file : "");
    ck_assert_msg(ei.szDetail[0] != '\0', "no detail");
    for (i = 0; words != NULL && words[i] != NULL; i++)
        ck_assert_msg(strstr(ei.szDetail, words[i]) != NULL, "'%s' not in the detail: %s",
                      words[i], ei.szDetail);
    fields[0] = ei.szPeer;
    fields[1] = ei.szFile;
    fields[2] = ei.szFingerprint;
    fields[3] = ei.szDetail;
    for (i = 0; secrets != NULL && secrets[i] != NULL; i++)
        for (j = 0; j < 4; j++)
            ck_assert_msg(strstr(fields[j], secrets[i]) == NULL, "a secret in field %d: %s", j,
                          fields[j]);
}

static void peer_of(char *out, size_t size, const char *host, unsigned port)
{
    snprintf(out, size, "%s:%u", host, port);
}

/* ---- the record itself ---- */

START_TEST(arguments_and_size)
{
    IMAPERRORINFO ei;
    ck_assert(ImapConnect(NULL, 143, T_S, 0, NULL) == INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    /* a caller's struct of an older, shorter form: nothing written past its dwSize */
    memset(&ei, 0x5a, sizeof ei);
    ei.dwSize = (DWORD)offsetof(IMAPERRORINFO, nHop);
    ck_assert_int_eq(ImapGetErrorInfo(INVALID_CLIENT, &ei), 0);
    ck_assert_uint_eq(ei.dwError, ST_ERROR_INVALID_PARAMETER);
    ck_assert_uint_eq(ei.dwStage, IMAP_STAGE_ARGUMENTS);
    ck_assert_uint_eq(ei.nHop, 0x5a5a5a5au);
    ck_assert_int_eq((unsigned char)ei.szPeer[0], 0x5a);
    ei.dwSize = 4;
    ck_assert_int_eq(ImapGetErrorInfo(INVALID_CLIENT, &ei), IMAP_ERROR);
    ck_assert_int_eq(ImapGetErrorInfo(INVALID_CLIENT, NULL), IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
}
END_TEST

/* ---- direct ---- */

START_TEST(direct_refused)
{
    char peer[300];
    unsigned port = iwt_free_port();
    IMAPTIMINGS t;
    ck_assert(ImapConnect("127.0.0.1", port, T_S, 0, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_TCP, 0, peer, NULL,
           (const char *[]){ peer, NULL }, NULL);
    memset(&t, 0, sizeof t);
    t.dwSize = sizeof t;
    ck_assert_int_eq(ImapGetLastTimings(&t), 0);
    ck_assert_uint_gt(t.dwTotal, 0);
    ck_assert_uint_eq(t.dwGreeting, 0);
}
END_TEST

START_TEST(direct_name_unknown)
{
    ck_assert(connect_via("nosuch.imapwire.test", 143, T_S, 0, NULL, NULL, dns_server) ==
              INVALID_CLIENT);
    expect(INVALID_CLIENT, ST_ERROR_HOST_NOT_FOUND, IMAP_STAGE_RESOLVE, 0,
           "nosuch.imapwire.test:143", NULL, (const char *[]){ "nosuch.imapwire.test", NULL },
           NULL);
}
END_TEST

/* A listener at 127.0.0.3 that never completes a connection (tests/fixtures
 * tcp_blackhole): what an address behind a firewall that drops packets looks like. */
static void blackhole_start(iwt_fixture *f)
{
    const char *bin = getenv("IW_TCP_BLACKHOLE_BIN");
    const char *argv[] = { bin, "--addr", "127.0.0.3", "--idle-exit", "30", NULL };
    ck_assert_ptr_nonnull(bin);
    memset(f, 0, sizeof *f);
    iwt_spawn(f, argv, "tcp_blackhole");
}

START_TEST(direct_unreachable)
{
    iwt_fixture f;
    char peer[300];
    IMAPTIMINGS t;
    blackhole_start(&f);
    ck_assert(ImapConnect("127.0.0.3", f.port, 1, 0, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.3", f.port);
    expect(INVALID_CLIENT, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_TCP, 0, peer, NULL,
           (const char *[]){ peer, NULL }, NULL);
    memset(&t, 0, sizeof t);
    t.dwSize = sizeof t;
    ck_assert_int_eq(ImapGetLastTimings(&t), 0);
    ck_assert_uint_ge(t.dwConnect, 900000);       /* the phase that stalled */
    iwt_fixture_stop(&f);
}
END_TEST

START_TEST(direct_silent_after_connect)
{
    unsigned port;
    int fd = silent_listener(&port);
    char peer[300];
    IMAPTIMINGS t;
    ck_assert(ImapConnect("127.0.0.1", port, 1, 0, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_GREETING, 0, peer, NULL,
           (const char *[]){ "no greeting", NULL }, NULL);
    memset(&t, 0, sizeof t);
    t.dwSize = sizeof t;
    ck_assert_int_eq(ImapGetLastTimings(&t), 0);
    ck_assert_uint_ge(t.dwGreeting, 900000);      /* connected at once, then waited */
    ck_assert_uint_lt(t.dwConnect, 900000);
    close(fd);
}
END_TEST

/* A port that speaks TLS at once answers a client in clear with a TLS alert. */
static void *tls_alert_server(void *arg)
{
    int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
    static const unsigned char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46 };
    if (fd >= 0) {
        ck_assert_int_eq(write(fd, alert, sizeof alert), (int)sizeof alert);
        sleep(3);
        close(fd);
    }
    return NULL;
}

START_TEST(direct_tls_bytes_in_clear)
{
    unsigned port;
    int fd = silent_listener(&port);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, tls_alert_server, &fd), 0);
    ck_assert(ImapConnect("127.0.0.1", port, 1, 0, NULL) == INVALID_CLIENT);
    {
        IMAPERRORINFO ei;
        ei.dwSize = sizeof ei;
        ck_assert_int_eq(ImapGetErrorInfo(INVALID_CLIENT, &ei), 0);
        ck_assert_uint_eq(ei.dwStage, IMAP_STAGE_GREETING);
        ck_assert_msg(strstr(ei.szDetail, "implicit TLS") != NULL, "%s", ei.szDetail);
    }
    pthread_join(th, NULL);
    close(fd);
}
END_TEST

START_TEST(direct_bad_credentials)
{
    char peer[300];
    static const char wrong[] = "Wr0ng-Pass-Xq7";
    HCLIENT h = ImapConnect(dv.host, dv.port, T_S, 0, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, wrong), IMAP_ERROR);
    peer_of(peer, sizeof peer, dv.host, dv.port);
    /* the thread's record and the handle's say the same */
    expect(INVALID_CLIENT, ST_ERROR_LOGIN_FAILED, IMAP_STAGE_LOGIN, 0, peer, NULL,
           (const char *[]){ "[AUTHENTICATIONFAILED]", NULL }, (const char *[]){ wrong, NULL });
    expect(h, ST_ERROR_LOGIN_FAILED, IMAP_STAGE_LOGIN, 0, peer, NULL,
           (const char *[]){ "[AUTHENTICATIONFAILED]", NULL }, (const char *[]){ wrong, NULL });
    /* a later failure of another kind replaces it */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapSelectMailbox(h, "NoSuchBox-ei", NULL), IMAP_ERROR);
    expect(h, ST_ERROR_COMMAND_FAILED, IMAP_STAGE_COMMAND, 0, peer, NULL, NULL,
           (const char *[]){ dv.pass, NULL });
    ImapDisconnect(h);
}
END_TEST

static volatile int async_done;
static volatile DWORD async_err;
static void on_event(HCLIENT h, UINT ev, DWORD err, LPVOID p)
{
    (void)h;
    (void)p;
    if (ev == IMAP_EVENT_CONNECT) {
        async_err = err;
        __atomic_store_n(&async_done, 1, __ATOMIC_RELEASE);
    }
}

START_TEST(async_refused)
{
    char peer[300];
    unsigned port = iwt_free_port();
    IMAPTIMINGS t;
    int i;
    HCLIENT h = ImapAsyncConnect("127.0.0.1", port, T_S, 0, NULL, on_event, NULL);
    ck_assert(h != INVALID_CLIENT);
    for (i = 0; i < 500 && !__atomic_load_n(&async_done, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    ck_assert(async_done);
    ck_assert_uint_eq(async_err, ST_ERROR_CONNECTION_REFUSED);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(h, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_TCP, 0, peer, NULL, NULL, NULL);
    memset(&t, 0, sizeof t);
    t.dwSize = sizeof t;
    ck_assert_int_eq(ImapGetTimings(h, &t), 0);
    ck_assert_uint_gt(t.dwTotal, 0);
    ImapDisconnect(h);
}
END_TEST

static volatile int drop_seen, up_seen;
static void on_drop(HCLIENT h, UINT ev, DWORD err, LPVOID p)
{
    (void)h;
    (void)err;
    (void)p;
    if (ev == IMAP_EVENT_DISCONNECT)
        __atomic_store_n(&drop_seen, 1, __ATOMIC_RELEASE);
    else if (ev == IMAP_EVENT_CONNECT && err == 0)
        __atomic_store_n(&up_seen, 1, __ATOMIC_RELEASE);
}

/* What an IMAP_EVENT_DISCONNECT reported is the handle's last failure. */
START_TEST(async_disconnect_event)
{
    iwt_fixture f;
    char peer[300];
    HCLIENT h;
    int i;
    iwt_fixture_start(&f, "idle-bye", 2);
    h = ImapAsyncConnect("127.0.0.1", f.port, T_S, 0, NULL, on_drop, NULL);
    ck_assert(h != INVALID_CLIENT);
    for (i = 0; i < 500 && !__atomic_load_n(&up_seen, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    ck_assert(up_seen);
    /* the fixture answers this NOOP, then says BYE to the idle connection */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    for (i = 0; i < 500 && !__atomic_load_n(&drop_seen, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    ck_assert(drop_seen);
    peer_of(peer, sizeof peer, "127.0.0.1", f.port);
    expect(h, ST_ERROR_CONNECTION_CLOSED, IMAP_STAGE_COMMAND, 0, peer, NULL,
           (const char *[]){ "closed the idle connection", NULL }, NULL);
    ImapDisconnect(h);
    iwt_fixture_stop(&f);
}
END_TEST

/* ---- SOCKS5 through Dante ---- */

START_TEST(socks5_refused)
{
    char tr[200], peer[300];
    unsigned port = iwt_free_port();
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, port);
    ck_assert(connect_via(dv.host, dv.port, T_S, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "socks5 proxy", peer, NULL }, (const char *[]){ dante.pass, NULL });
}
END_TEST

START_TEST(socks5_bad_credentials)
{
    char tr[200], peer[300];
    static const char wrong[] = "Wr0ng-Dante-Xq7";
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, wrong, dante.port);
    ck_assert(connect_via(dv.host, dv.port, T_S, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", dante.port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "refused the credentials", "status 0x01", NULL },
           (const char *[]){ wrong, NULL });
}
END_TEST

START_TEST(socks5_name_unknown)
{
    char tr[200];
    /* the proxy's own name */
    snprintf(tr, sizeof tr, "socks5:%s:%s@nosuch.imapwire.test:%u", dante.user, dante.pass,
             dante.port);
    ck_assert(connect_via(dv.host, dv.port, T_S, 0, NULL, tr, dns_server) == INVALID_CLIENT);
    {
        char peer[300];
        peer_of(peer, sizeof peer, "nosuch.imapwire.test", dante.port);
        expect(INVALID_CLIENT, ST_ERROR_HOST_NOT_FOUND, IMAP_STAGE_PROXY, 1, peer, NULL,
               (const char *[]){ "does not resolve", NULL },
               (const char *[]){ dante.pass, NULL });
    }
}
END_TEST

START_TEST(socks5_target_refused)
{
    char tr[200], peer[300];
    unsigned port = iwt_free_port();
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, dante.port);
    ck_assert(connect_via("127.0.0.1", port, T_S, 0, NULL, tr, NULL) == INVALID_CLIENT);
    /* the proxy answered; it is the party that says so, in its reply code */
    peer_of(peer, sizeof peer, "127.0.0.1", dante.port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "reply 0x05", "connection refused", NULL },
           (const char *[]){ dante.pass, NULL });
}
END_TEST

static void proxy_unreachable(const char *scheme)
{
    iwt_fixture f;
    char tr[200], peer[300];
    blackhole_start(&f);
    snprintf(tr, sizeof tr, "%s:127.0.0.3:%u", scheme, f.port);
    ck_assert(connect_via(dv.host, dv.port, 1, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.3", f.port);
    expect(INVALID_CLIENT, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_PROXY, 1, peer, NULL, NULL,
           NULL);
    iwt_fixture_stop(&f);
}

START_TEST(socks5_unreachable)
{
    proxy_unreachable("socks5");
}
END_TEST

START_TEST(socks5_bad_login_behind)
{
    /* through the proxy, a login the IMAP server refuses is the IMAP server's */
    char tr[200], peer[300];
    HCLIENT h;
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, dante.port);
    h = connect_via(dv.host, dv.port, T_S, 0, NULL, tr, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, "Wr0ng-Pass-Xq7"), IMAP_ERROR);
    peer_of(peer, sizeof peer, dv.host, dv.port);
    expect(h, ST_ERROR_LOGIN_FAILED, IMAP_STAGE_LOGIN, 0, peer, NULL,
           (const char *[]){ "[AUTHENTICATIONFAILED]", NULL },
           (const char *[]){ "Wr0ng-Pass-Xq7", dante.pass, NULL });
    ImapDisconnect(h);
}
END_TEST

/* ---- HTTP CONNECT through tinyproxy ---- */

START_TEST(http_refused)
{
    char tr[200], peer[300];
    unsigned port = iwt_free_port();
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", port);
    ck_assert(connect_via(dv.host, dv.port, T_S, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "httpconnect proxy", NULL }, NULL);
}
END_TEST

START_TEST(http_bad_credentials)
{
    char tr[200], peer[300];
    static const char wrong[] = "Wr0ng-Tiny-Xq7";
    snprintf(tr, sizeof tr, "httpconnect:%s:%s@127.0.0.1:%u", tp.user, wrong, tp.auth_port);
    ck_assert(connect_via(dv.host, dv.port, T_S, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", tp.auth_port);
    /* tinyproxy's own status line */
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "HTTP/1.", " 40", "refused the credentials", NULL },
           (const char *[]){ wrong, NULL });
}
END_TEST

START_TEST(http_name_unknown)
{
    char tr[200], peer[300];
    snprintf(tr, sizeof tr, "httpconnect:nosuch.imapwire.test:%u", tp.port);
    ck_assert(connect_via(dv.host, dv.port, T_S, 0, NULL, tr, dns_server) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "nosuch.imapwire.test", tp.port);
    expect(INVALID_CLIENT, ST_ERROR_HOST_NOT_FOUND, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "does not resolve", NULL }, NULL);
}
END_TEST

START_TEST(http_target_refused)
{
    char tr[200], peer[300];
    unsigned port = iwt_free_port();
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
    ck_assert(connect_via("127.0.0.1", port, T_S, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", tp.port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "HTTP/1.", NULL }, NULL);
}
END_TEST

/* ---- files ---- */

START_TEST(file_ca_missing)
{
    LPSECURITYCREDENTIALS sc = ImapCreateSecurityCredentials(0, 0, NULL, NULL, NULL,
                                                             "/nonexistent/ei-ca.pem");
    ck_assert_ptr_nonnull(sc);
    ck_assert(ImapConnect("127.0.0.1", dvtls.imaps_port, T_S, IMAP_OPTION_SECURE_IMPLICIT,
                          sc) == INVALID_CLIENT);
    expect(INVALID_CLIENT, ImapGetLastError(), IMAP_STAGE_FILE, 0, NULL,
           "/nonexistent/ei-ca.pem", NULL, NULL);
    ImapDeleteSecurityCredentials(sc);
}
END_TEST

START_TEST(file_ca_wrong_kind)
{
    char key[700];
    LPSECURITYCREDENTIALS sc;
    /* a private key given as the CA file: readable, but holds no certificate */
    snprintf(key, sizeof key, "%s", sshd.key);
    sc = ImapCreateSecurityCredentials(0, 0, NULL, NULL, NULL, key);
    ck_assert_ptr_nonnull(sc);
    ck_assert(ImapConnect("127.0.0.1", dvtls.imaps_port, T_S, IMAP_OPTION_SECURE_IMPLICIT,
                          sc) == INVALID_CLIENT);
    expect(INVALID_CLIENT, ImapGetLastError(), IMAP_STAGE_FILE, 0, NULL, key,
           (const char *[]){ "certificate", NULL }, NULL);
    ImapDeleteSecurityCredentials(sc);
}
END_TEST

START_TEST(file_plugin_missing)
{
    ck_assert_int_eq(ImapLoadPlugin("/nonexistent/ei-plugin.so"), IMAP_ERROR);
    expect(INVALID_CLIENT, ST_ERROR_PLUGIN_LOAD_FAILED, IMAP_STAGE_FILE, 0, NULL,
           "/nonexistent/ei-plugin.so", (const char *[]){ "No such file", NULL }, NULL);
}
END_TEST


/* ---- SSH, jump chains, SSH over a proxy ---- */

static HCLIENT ssh_via(const char *route, unsigned ssh_port, const char *key, const char *pass,
                       const char *known, const char *transport, const char *dns,
                       unsigned imap_port)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    IMAPCONNECTINFO in;
    sc.lpszTunnelHost = route;
    sc.nTunnelPort = ssh_port;
    sc.lpszTunnelKey = key;
    sc.lpszTunnelPassword = pass;
    sc.lpszKnownHosts = known;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = imap_port ? imap_port : dv.port;
    in.nTimeout = T_S;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = &sc;
    in.lpszTransport = transport;
    in.lpszDnsServers = dns;
    return ImapConnectEx(&in);
}

/* A known_hosts file of the test's own, with sshd's keys under [name]:port. */
static void known_for(char *path, size_t size, const char *src, const char *name,
                      const char *src2, const char *name2)
{
    const char *srcs[2] = { src, src2 }, *names[2] = { name, name2 };
    FILE *f;
    int i;
    snprintf(path, size, "%s/known-ei-%d-%s", getenv("IW_TMPDIR"), (int)getpid(), name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < 2 && srcs[i] != NULL; i++) {
        char *text = iwt_read_file(srcs[i]), *line, *save = NULL;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            const char *key = strchr(line, ' ');
            if (key != NULL)
                fprintf(f, "[%s]:%u%s\n", names[i], sshd.port, key);
        }
        free(text);
    }
    fclose(f);
}

static void expect_key(DWORD err, UINT hop, const char *host, const char *known)
{
    IMAPERRORINFO ei;
    char peer[300];
    peer_of(peer, sizeof peer, host, sshd.port);
    expect(INVALID_CLIENT, err, IMAP_STAGE_SSH, hop, peer, known, NULL, NULL);
    ei.dwSize = sizeof ei;
    ck_assert_int_eq(ImapGetErrorInfo(INVALID_CLIENT, &ei), 0);
    /* the key the server presented, as ssh-keygen -l prints it */
    ck_assert_str_eq(ei.szFingerprint, sshd.fingerprint);
}

START_TEST(ssh_refused)
{
    char peer[300];
    unsigned port = iwt_free_port();
    ck_assert(ssh_via("127.0.0.1", port, sshd.key, NULL, sshd.known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_SSH, 1, peer, NULL, NULL,
           NULL);
}
END_TEST

START_TEST(ssh_name_unknown)
{
    char peer[300];
    ck_assert(ssh_via("nosuch.imapwire.test", sshd.port, sshd.key, NULL, sshd.known, NULL,
                      dns_server, 0) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "nosuch.imapwire.test", sshd.port);
    expect(INVALID_CLIENT, ST_ERROR_HOST_NOT_FOUND, IMAP_STAGE_SSH, 1, peer, NULL, NULL, NULL);
}
END_TEST

START_TEST(ssh_host_key_unknown)
{
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known_empty, NULL, NULL,
                      0) == INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_UNKNOWN, 1, "127.0.0.1", sshd.known_empty);
}
END_TEST

START_TEST(ssh_host_key_changed)
{
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known_wrong, NULL, NULL,
                      0) == INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_MISMATCH, 1, "127.0.0.1", sshd.known_wrong);
}
END_TEST

START_TEST(ssh_bad_credentials)
{
    char peer[300];
    static const char wrong[] = "Wr0ng-Ssh-Xq7";
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ssh_via("127.0.0.1", sshd.port, NULL, wrong, sshd.known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ST_ERROR_SSH_AUTH_FAILED, IMAP_STAGE_SSH, 1, peer, NULL, NULL,
           (const char *[]){ wrong, NULL });
}
END_TEST

START_TEST(ssh_key_file_missing)
{
    char peer[300];
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ssh_via("127.0.0.1", sshd.port, "/nonexistent/ei_key", NULL, sshd.known, NULL,
                      NULL, 0) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ImapGetLastError(), IMAP_STAGE_FILE, 1, peer, "/nonexistent/ei_key",
           (const char *[]){ "No such file", NULL }, NULL);
}
END_TEST

START_TEST(ssh_key_file_wrong_kind)
{
    char peer[300];
    /* a known_hosts file given as the key */
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.known, NULL, sshd.known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ImapGetLastError(), IMAP_STAGE_FILE, 1, peer, sshd.known, NULL,
           NULL);
}
END_TEST

START_TEST(ssh_known_hosts_missing)
{
    char peer[300];
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, "/nonexistent/ei_known", NULL,
                      NULL, 0) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ImapGetLastError(), IMAP_STAGE_FILE, 1, peer,
           "/nonexistent/ei_known", (const char *[]){ "No such file", NULL }, NULL);
}
END_TEST

START_TEST(ssh_silent_behind)
{
    unsigned port;
    int fd = silent_listener(&port);
    char peer[300];
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    ck_assert(ImapConnect("127.0.0.1", port, 1, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    /* the IMAP server behind the tunnel is the silent one */
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_GREETING, 0, peer, NULL,
           (const char *[]){ "no greeting", NULL }, NULL);
    close(fd);
}
END_TEST

START_TEST(ssh_unreachable)
{
    iwt_fixture f;
    char peer[300];
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    blackhole_start(&f);
    sc.lpszTunnelHost = "127.0.0.3";
    sc.nTunnelPort = f.port;
    ck_assert(ImapConnect("127.0.0.1", dv.port, 1, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.3", f.port);
    expect(INVALID_CLIENT, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_SSH, 1, peer, NULL, NULL,
           NULL);
    iwt_fixture_stop(&f);
}
END_TEST

START_TEST(http_unreachable)
{
    proxy_unreachable("httpconnect");
}
END_TEST

/* Behind a proxy, a silent IMAP server is the IMAP server's fault, not the proxy's. */
static void silent_behind(const char *fmt, unsigned proxy_port)
{
    unsigned port;
    int fd = silent_listener(&port);
    char tr[200], peer[300];
    snprintf(tr, sizeof tr, fmt, proxy_port);
    ck_assert(connect_via("127.0.0.1", port, 1, 0, NULL, tr, NULL) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_GREETING, 0, peer, NULL,
           (const char *[]){ "no greeting", NULL }, NULL);
    close(fd);
}

START_TEST(socks5_silent_behind)
{
    char fmt[200];
    snprintf(fmt, sizeof fmt, "socks5:%s:%s@127.0.0.1:%%u", dante.user, dante.pass);
    silent_behind(fmt, dante.port);
}
END_TEST

START_TEST(http_silent_behind)
{
    silent_behind("httpconnect:127.0.0.1:%u", tp.port);
}
END_TEST

START_TEST(ssh_target_refused)
{
    char peer[300];
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known, NULL, NULL,
                      iwt_free_port()) == INVALID_CLIENT);
    /* the SSH server could not open the channel: it is the party that says so */
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ST_ERROR_SSH_CHANNEL_FAILED, IMAP_STAGE_SSH, 1, peer, NULL, NULL,
           NULL);
}
END_TEST

START_TEST(jump_hop1_bad_credentials)
{
    char peer[300];
    ck_assert(ssh_via("nosuchuser@127.0.0.1,127.0.0.1", sshd.port, sshd.key, NULL, sshd.known,
                      NULL, NULL, 0) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ST_ERROR_SSH_AUTH_FAILED, IMAP_STAGE_SSH, 1, peer, NULL, NULL, NULL);
}
END_TEST

START_TEST(jump_hop1_host_key_changed)
{
    char known[600];
    known_for(known, sizeof known, sshd.known_wrong, "localhost", sshd.known, "127.0.0.1");
    ck_assert(ssh_via("localhost,127.0.0.1", sshd.port, sshd.key, NULL, known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_MISMATCH, 1, "localhost", known);
}
END_TEST

START_TEST(jump_hop2_name_unknown)
{
    /* hop 1 resolves hop 2's name and cannot open the channel to it */
    ck_assert(ssh_via("127.0.0.1,nosuch.imapwire.test", sshd.port, sshd.key, NULL, sshd.known,
                      NULL, NULL, 0) == INVALID_CLIENT);
    {
        char peer[300];
        peer_of(peer, sizeof peer, "nosuch.imapwire.test", sshd.port);
        expect(INVALID_CLIENT, ST_ERROR_SSH_CHANNEL_FAILED, IMAP_STAGE_SSH, 2, peer, NULL, NULL,
               NULL);
    }
}
END_TEST

START_TEST(ssh_over_proxy_host_key_changed)
{
    char tr[200];
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known_wrong, tr, NULL, 0) ==
              INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_MISMATCH, 2, "127.0.0.1", sshd.known_wrong);
}
END_TEST

START_TEST(ssh_over_proxy_name_unknown)
{
    /* the proxy resolves the SSH host's name: its answer is the proxy's */
    char tr[200], peer[300];
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, dante.port);
    ck_assert(ssh_via("nosuch.imapwire.test", sshd.port, sshd.key, NULL, sshd.known, tr, NULL,
                      0) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", dante.port);
    expect(INVALID_CLIENT, ImapGetLastError(), IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "socks5 proxy", "nosuch.imapwire.test", NULL },
           (const char *[]){ dante.pass, NULL });
}
END_TEST

START_TEST(jump_hop1_refused)
{
    char route[128], peer[300];
    unsigned port = iwt_free_port();
    snprintf(route, sizeof route, "127.0.0.1:%u,127.0.0.1", port);
    ck_assert(ssh_via(route, sshd.port, sshd.key, NULL, sshd.known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_SSH, 1, peer, NULL, NULL,
           NULL);
}
END_TEST

START_TEST(jump_hop2_unreachable)
{
    ck_assert(ssh_via("127.0.0.1,127.0.0.1:1", sshd.port, sshd.key, NULL, sshd.known, NULL,
                      NULL, 0) == INVALID_CLIENT);
    expect(INVALID_CLIENT, ST_ERROR_SSH_CHANNEL_FAILED, IMAP_STAGE_SSH, 2, "127.0.0.1:1", NULL,
           NULL, NULL);
}
END_TEST

START_TEST(jump_hop1_host_key_unknown)
{
    char known[600];
    known_for(known, sizeof known, sshd.known, "127.0.0.1", NULL, NULL);
    ck_assert(ssh_via("localhost,127.0.0.1", sshd.port, sshd.key, NULL, known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_UNKNOWN, 1, "localhost", known);
}
END_TEST

START_TEST(jump_hop2_host_key_unknown)
{
    char known[600];
    known_for(known, sizeof known, sshd.known, "127.0.0.1", NULL, NULL);
    ck_assert(ssh_via("127.0.0.1,localhost", sshd.port, sshd.key, NULL, known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_UNKNOWN, 2, "localhost", known);
}
END_TEST

START_TEST(jump_hop2_host_key_changed)
{
    char known[600];
    known_for(known, sizeof known, sshd.known, "127.0.0.1", sshd.known_wrong, "localhost");
    ck_assert(ssh_via("127.0.0.1,localhost", sshd.port, sshd.key, NULL, known, NULL, NULL, 0) ==
              INVALID_CLIENT);
    expect_key(ST_ERROR_SSH_HOST_KEY_MISMATCH, 2, "localhost", known);
}
END_TEST

START_TEST(jump_hop2_bad_credentials)
{
    char peer[300];
    ck_assert(ssh_via("127.0.0.1,nosuchuser@127.0.0.1", sshd.port, sshd.key, NULL, sshd.known,
                      NULL, NULL, 0) == INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", sshd.port);
    expect(INVALID_CLIENT, ST_ERROR_SSH_AUTH_FAILED, IMAP_STAGE_SSH, 2, peer, NULL, NULL, NULL);
}
END_TEST

START_TEST(ssh_over_proxy_refused)
{
    char tr[200], peer[300];
    unsigned port = iwt_free_port();
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, port);
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known, tr, NULL, 0) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "socks5 proxy", NULL }, (const char *[]){ dante.pass, NULL });
}
END_TEST

START_TEST(ssh_over_proxy_bad_credentials)
{
    char tr[200], peer[300];
    snprintf(tr, sizeof tr, "httpconnect:%s:Wr0ng-Tiny-Xq7@127.0.0.1:%u", tp.user, tp.auth_port);
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known, tr, NULL, 0) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", tp.auth_port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "HTTP/1.", NULL }, (const char *[]){ "Wr0ng-Tiny-Xq7", NULL });
}
END_TEST

START_TEST(ssh_over_proxy_host_key_unknown)
{
    char tr[200];
    snprintf(tr, sizeof tr, "socks5:%s:%s@127.0.0.1:%u", dante.user, dante.pass, dante.port);
    ck_assert(ssh_via("127.0.0.1", sshd.port, sshd.key, NULL, sshd.known_empty, tr, NULL, 0) ==
              INVALID_CLIENT);
    /* the proxy is hop 1, the SSH server behind it hop 2 */
    expect_key(ST_ERROR_SSH_HOST_KEY_UNKNOWN, 2, "127.0.0.1", sshd.known_empty);
}
END_TEST

/* A TLS connect with the client certificate and key named in dvtls's certs/ fails at the
 * file named bad, with the words in the detail. */
static void client_cert_fails(const char *cert_name, const char *key_name, int key_is_bad,
                              const char *words)
{
    char cert[700], key[700];
    LPSECURITYCREDENTIALS sc;
    snprintf(cert, sizeof cert, "%s/certs/%s", dvtls.dir, cert_name);
    snprintf(key, sizeof key, "%s/certs/%s", dvtls.dir, key_name);
    sc = ImapCreateSecurityCredentials(0, 0, cert, key, NULL, ca);
    ck_assert_ptr_nonnull(sc);
    ck_assert(ImapConnect("127.0.0.1", dvtls.imaps_port, T_S, IMAP_OPTION_SECURE_IMPLICIT,
                          sc) == INVALID_CLIENT);
    expect(INVALID_CLIENT, ST_ERROR_CLIENT_CERTIFICATE, IMAP_STAGE_FILE, 0, NULL,
           key_is_bad ? key : cert, (const char *[]){ words, NULL }, NULL);
    ImapDeleteSecurityCredentials(sc);
}

/* A client certificate that does not load, and a key that is not the certificate's. */
START_TEST(file_client_cert_wrong_kind)
{
    client_cert_fails("client.key", "client.key", 0, "no certificate");
}
END_TEST

START_TEST(file_client_key_mismatch)
{
    client_cert_fails("client.pem", "expired.key", 1, "does not match");
}
END_TEST

START_TEST(file_ssh_config_line)
{
    char cfg[600], want[620];
    FILE *f;
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    snprintf(cfg, sizeof cfg, "%s/ei-ssh-config-%d", getenv("IW_TMPDIR"), (int)getpid());
    f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# refused on line 3\nHost eihost\n  HostKeyAlias other\n");
    fclose(f);
    setenv("IMAPWIRE_SSH_CONFIG", cfg, 1);
    sc.lpszTunnelHost = "eihost";
    sc.dwOptions |= CREDENTIAL_TUNNEL_SSH_CONFIG;
    ck_assert(ImapConnect("127.0.0.1", dv.port, T_S, IMAP_OPTION_TUNNEL, &sc) == INVALID_CLIENT);
    snprintf(want, sizeof want, "%s:3", cfg);
    expect(INVALID_CLIENT, ST_ERROR_INVALID_PARAMETER, IMAP_STAGE_FILE, 0, NULL, want,
           (const char *[]){ "HostKeyAlias", NULL }, NULL);
    unlink(cfg);
}
END_TEST

/* ---- hops and proxies that cannot be reached or say nothing ---- */

/* A route through SSH (and a transport under it, or NULL) that fails at one party: the
 * code, stage, hop and peer exactly, the detail's words, within max_ms of the start. */
static void expect_route(const char *route, const char *transport, unsigned timeout_s,
                         long long max_ms, DWORD err, DWORD stage, UINT hop, const char *peer,
                         const char *const *words)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    long long t0 = iwt_now_ms(), took;
    sc.lpszTunnelHost = route;
    ck_assert(connect_via("127.0.0.1", dv.port, timeout_s, IMAP_OPTION_TUNNEL, &sc, transport,
                          NULL) == INVALID_CLIENT);
    took = iwt_now_ms() - t0;
    ck_assert_msg(took <= max_ms, "%s gave up after %lld ms, not within %lld", route, took,
                  max_ms);
    expect(INVALID_CLIENT, err, stage, hop, peer, NULL, words,
           (const char *[]){ dante.pass, tp.pass, NULL });
}

/* hop n of route (the "%u" in it) is a listener that accepts and never sends a banner */
static void jump_silent(const char *fmt, UINT hop)
{
    unsigned port;
    int fd = silent_listener(&port);
    char route[200], peer[300];
    snprintf(route, sizeof route, fmt, port, sshd.port);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    /* each SSH phase has the whole timeout: hop 1 in 1 s, then at most the next phases */
    expect_route(route, NULL, 1, 5000, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_SSH, hop, peer,
                 (const char *[]){ peer, "accepted the connection", NULL });
    close(fd);
}

START_TEST(jump_hop1_silent)
{
    jump_silent("127.0.0.1:%u,127.0.0.1:%u", 1);
}
END_TEST

START_TEST(jump_hop2_silent)
{
    char fmt[100];
    snprintf(fmt, sizeof fmt, "127.0.0.1:%u,127.0.0.1:%%u", sshd.port);
    jump_silent(fmt, 2);
}
END_TEST

START_TEST(jump3_hop2_silent)
{
    char fmt[100];
    snprintf(fmt, sizeof fmt, "127.0.0.1:%u,127.0.0.1:%%u,127.0.0.1:%%u", sshd.port);
    jump_silent(fmt, 2);
}
END_TEST

START_TEST(jump3_hop2_refused)
{
    char route[200], peer[300];
    unsigned port = iwt_free_port();
    snprintf(route, sizeof route, "127.0.0.1:%u,127.0.0.1:%u,127.0.0.1:%u", sshd.port, port,
             sshd.port);
    peer_of(peer, sizeof peer, "127.0.0.1", port);
    /* hop 1's server could not connect to hop 2: hop 2 is named, in hop 1's words */
    expect_route(route, NULL, T_S, T_S * 1000, ST_ERROR_SSH_CHANNEL_FAILED, IMAP_STAGE_SSH, 2,
                 peer, (const char *[]){ peer, "connect failed", NULL });
}
END_TEST

START_TEST(jump_hop1_unreachable)
{
    iwt_fixture f;
    char route[200], peer[300];
    blackhole_start(&f);
    snprintf(route, sizeof route, "127.0.0.3:%u,127.0.0.1:%u", f.port, sshd.port);
    peer_of(peer, sizeof peer, "127.0.0.3", f.port);
    expect_route(route, NULL, 1, 3000, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_SSH, 1, peer,
                 (const char *[]){ peer, "no answer", NULL });
    iwt_fixture_stop(&f);
}
END_TEST

/* The proxy under SSH, or under IMAP itself, at proxy_port: a failure is the proxy's. */
static void expect_proxy(const char *scheme, int under_ssh, unsigned proxy_port,
                         unsigned timeout_s, DWORD err, const char *const *words)
{
    char tr[200], peer[300];
    snprintf(tr, sizeof tr, "%s:127.0.0.1:%u", scheme, proxy_port);
    peer_of(peer, sizeof peer, "127.0.0.1", proxy_port);
    if (under_ssh) {
        char route[100];
        snprintf(route, sizeof route, "127.0.0.1:%u", sshd.port);
        /* the caller's timeout, and no more: the proxy's phase is the first */
        expect_route(route, tr, timeout_s, timeout_s * 1000 + 1500, err, IMAP_STAGE_PROXY, 1,
                     peer, words);
        return;
    }
    {
        long long t0 = iwt_now_ms(), took;
        ck_assert(connect_via(dv.host, dv.port, timeout_s, 0, NULL, tr, NULL) == INVALID_CLIENT);
        took = iwt_now_ms() - t0;
        ck_assert_msg(took <= timeout_s * 1000 + 1500, "%s gave up after %lld ms", tr, took);
        expect(INVALID_CLIENT, err, IMAP_STAGE_PROXY, 1, peer, NULL, words, NULL);
    }
}

static const char *const silent_words[] = { "accepted the connection", "did not answer", NULL };

/* A proxy that accepts and never answers, alone and under SSH: SOCKS5, HTTP CONNECT. */
static const struct { const char *kind; int under_ssh; } silent_cases[] = {
    { "socks5", 0 }, { "httpconnect", 0 }, { "socks5", 1 }, { "httpconnect", 1 },
};

START_TEST(silent_proxy)
{
    unsigned port;
    int fd = silent_listener(&port);
    expect_proxy(silent_cases[_i].kind, silent_cases[_i].under_ssh, port, 1,
                 ST_ERROR_OPERATION_TIMEOUT, silent_words);
    close(fd);
}
END_TEST

START_TEST(ssh_over_http_refused)
{
    expect_proxy("httpconnect", 1, iwt_free_port(), T_S, ST_ERROR_CONNECTION_REFUSED,
                 (const char *[]){ "httpconnect proxy", "nothing listens", NULL });
}
END_TEST

static void ssh_over_unreachable(const char *scheme)
{
    iwt_fixture f;
    char tr[200], peer[300], route[100];
    blackhole_start(&f);
    snprintf(tr, sizeof tr, "%s:127.0.0.3:%u", scheme, f.port);
    snprintf(route, sizeof route, "127.0.0.1:%u", sshd.port);
    peer_of(peer, sizeof peer, "127.0.0.3", f.port);
    expect_route(route, tr, 1, 2500, ST_ERROR_OPERATION_TIMEOUT, IMAP_STAGE_PROXY, 1, peer,
                 (const char *[]){ peer, "no answer", NULL });
    iwt_fixture_stop(&f);
}

START_TEST(ssh_over_socks5_unreachable)
{
    ssh_over_unreachable("socks5");
}
END_TEST

START_TEST(ssh_over_http_unreachable)
{
    ssh_over_unreachable("httpconnect");
}
END_TEST

START_TEST(http_target_name_unknown)
{
    /* tinyproxy resolves the IMAP host's name and fails. Its answer ("500 Unable to
     * connect") is byte for byte the one it gives for a refused port, so the code is the
     * refusal's (API.md names no code for a name a proxy could not resolve); the record
     * carries its status line and names the target. */
    char tr[200], peer[300];
    snprintf(tr, sizeof tr, "httpconnect:127.0.0.1:%u", tp.port);
    ck_assert(connect_via("nosuch.imapwire.invalid", dv.port, T_S, 0, NULL, tr, NULL) ==
              INVALID_CLIENT);
    peer_of(peer, sizeof peer, "127.0.0.1", tp.port);
    expect(INVALID_CLIENT, ST_ERROR_CONNECTION_REFUSED, IMAP_STAGE_PROXY, 1, peer, NULL,
           (const char *[]){ "HTTP/1.", "nosuch.imapwire.invalid", NULL }, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("errinfo");
    TCase *tc = tcase_create("matrix");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, arguments_and_size);
    tcase_add_test(tc, direct_refused);
    tcase_add_test(tc, direct_name_unknown);
    tcase_add_test(tc, direct_unreachable);
    tcase_add_test(tc, direct_silent_after_connect);
    tcase_add_test(tc, direct_tls_bytes_in_clear);
    tcase_add_test(tc, direct_bad_credentials);
    tcase_add_test(tc, async_refused);
    tcase_add_test(tc, async_disconnect_event);
    tcase_add_test(tc, socks5_refused);
    tcase_add_test(tc, socks5_bad_credentials);
    tcase_add_test(tc, socks5_name_unknown);
    tcase_add_test(tc, socks5_target_refused);
    tcase_add_test(tc, socks5_unreachable);
    tcase_add_test(tc, socks5_bad_login_behind);
    tcase_add_test(tc, http_refused);
    tcase_add_test(tc, http_bad_credentials);
    tcase_add_test(tc, http_name_unknown);
    tcase_add_test(tc, http_target_refused);
    tcase_add_test(tc, file_ca_missing);
    tcase_add_test(tc, file_ca_wrong_kind);
    tcase_add_test(tc, file_plugin_missing);
    tcase_add_test(tc, file_ssh_config_line);
    tcase_add_test(tc, file_client_cert_wrong_kind);
    tcase_add_test(tc, file_client_key_mismatch);
    suite_add_tcase(s, tc);
    tc = tcase_create("ssh");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ssh_refused);
    tcase_add_test(tc, ssh_name_unknown);
    tcase_add_test(tc, ssh_host_key_unknown);
    tcase_add_test(tc, ssh_host_key_changed);
    tcase_add_test(tc, ssh_bad_credentials);
    tcase_add_test(tc, ssh_key_file_missing);
    tcase_add_test(tc, ssh_key_file_wrong_kind);
    tcase_add_test(tc, ssh_known_hosts_missing);
    tcase_add_test(tc, ssh_silent_behind);
    tcase_add_test(tc, ssh_unreachable);
    tcase_add_test(tc, http_unreachable);
    tcase_add_test(tc, jump_hop1_refused);
    tcase_add_test(tc, socks5_silent_behind);
    tcase_add_test(tc, http_silent_behind);
    tcase_add_test(tc, ssh_target_refused);
    tcase_add_test(tc, jump_hop1_bad_credentials);
    tcase_add_test(tc, jump_hop1_host_key_changed);
    tcase_add_test(tc, jump_hop2_name_unknown);
    tcase_add_test(tc, ssh_over_proxy_host_key_changed);
    tcase_add_test(tc, ssh_over_proxy_name_unknown);
    tcase_add_test(tc, jump_hop2_unreachable);
    tcase_add_test(tc, jump_hop1_host_key_unknown);
    tcase_add_test(tc, jump_hop2_host_key_unknown);
    tcase_add_test(tc, jump_hop2_host_key_changed);
    tcase_add_test(tc, jump_hop2_bad_credentials);
    tcase_add_test(tc, ssh_over_proxy_refused);
    tcase_add_test(tc, ssh_over_proxy_bad_credentials);
    tcase_add_test(tc, ssh_over_proxy_host_key_unknown);
    tcase_add_test(tc, jump_hop1_silent);
    tcase_add_test(tc, jump_hop2_silent);
    tcase_add_test(tc, jump3_hop2_silent);
    tcase_add_test(tc, jump3_hop2_refused);
    tcase_add_test(tc, jump_hop1_unreachable);
    tcase_add_loop_test(tc, silent_proxy, 0, (int)(sizeof silent_cases / sizeof silent_cases[0]));
    tcase_add_test(tc, ssh_over_http_refused);
    tcase_add_test(tc, ssh_over_socks5_unreachable);
    tcase_add_test(tc, ssh_over_http_unreachable);
    tcase_add_test(tc, http_target_name_unknown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
