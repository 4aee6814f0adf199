/* test_tls.c: TLS against a real Dovecot (STARTTLS and IMAPS) and OpenSSL's s_server
 * with bad certificates: validation errors, TRUSTEDSITE, protocols, resumption, info. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

static iwt_dovecot dv;
static char certs[600], ca[700], capath[700];

/* What a TRUSTEDSITE session against s_server needs: a greeting, and LOGOUT's answer
 * queued behind it (s_server does not read our commands, it only relays its stdin). */
static const char *const IMAP_SCRIPT =
    "* OK [CAPABILITY IMAP4rev1] s_server\r\n* BYE bye\r\nA0001 OK LOGOUT done\r\n";

static void setup(void)
{
    const char *env = getenv("IW_DOVECOT_TLS_ENV");
    ck_assert_msg(env != NULL, "IW_DOVECOT_TLS_ENV not set (run through ctest)");
    iwt_dovecot_load_file(&dv, env);
    ck_assert_uint_gt(dv.imaps_port, 0);
    snprintf(certs, sizeof certs, "%s/certs", dv.dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    snprintf(capath, sizeof capath, "%s/capath", certs);
    ck_assert(ImapInitialize(NULL, NULL));
    /* IW_TLS_PLUGIN: the built-in tls type is replaced by src/transports/tls.c built as
     * a plugin against the SDK only, and every test below runs through it. */
    if (getenv("IW_TLS_PLUGIN") != NULL) {
        ck_assert_int_eq(ImapUnregisterTransport("tls"), 0);
        /* without a tls type a secure connect cannot start: the plugin is what serves */
        ck_assert(ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT,
                              NULL) == INVALID_CLIENT);
        iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
        ck_assert_msg(ImapLoadPlugin(getenv("IW_TLS_PLUGIN")) == 0, "error %u",
                      (unsigned)ImapGetLastError());
    }
}

static void teardown(void)
{
    ImapUninitialize();
}

static SECURITYCREDENTIALS creds_ca(void)
{
    SECURITYCREDENTIALS sc;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    return sc;
}

static void check_info(HCLIENT h, DWORD status)
{
    SECURITYINFO si;
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_msg(si.dwProtocol == SECURITY_PROTOCOL_TLS12 || si.dwProtocol == SECURITY_PROTOCOL_TLS13,
                  "protocol %u", (unsigned)si.dwProtocol);
    ck_assert_uint_eq(si.dwCertificateStatus, status);
    ck_assert_int_gt((int)strlen(si.szCipher), 0);
    ck_assert_msg(strstr(si.szSubject, "CN=") != NULL, "subject: %s", si.szSubject);
    ck_assert_int_gt((int)strlen(si.szIssuer), 0);
    ck_assert_int_eq((int)strlen(si.szValidFrom), 20);
    ck_assert_int_eq(si.szValidFrom[10], 'T');
    ck_assert_int_eq(si.szValidTo[19], 'Z');
    ck_assert_int_eq((int)strlen(si.szFingerprint), 32 * 3 - 1);
    ck_assert_uint_eq(si.dwTunnelProtocol, SECURITY_PROTOCOL_NONE);
}

START_TEST(starttls_valid)
{
    SECURITYCREDENTIALS sc = creds_ca();
    IMAPCONNECTINFO ci;
    IMAPTIMINGS tm;
    trace_log *t = calloc(1, sizeof *t);
    HCLIENT h;
    const char *starttls, *capa;

    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = dv.port;
    ci.nTimeout = 10;
    ci.dwOptions = IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_IDENTIFY;
    ci.lpCredentials = &sc;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "error %u, trace:\n%s", (unsigned)ImapGetLastError(), t->text);
    check_info(h, CERTIFICATE_STATUS_VALID);
    /* STARTTLS first; capabilities asked again inside TLS; ID only after that */
    starttls = strstr(t->text, ">A0001 STARTTLS");
    capa = strstr(t->text, ">A0002 CAPABILITY");
    ck_assert_msg(starttls && capa && capa > starttls, "trace:\n%s", t->text);
    ck_assert_msg(strstr(t->text, ">A0003 ID (") != NULL, "trace:\n%s", t->text);
    /* the post-TLS set is the one reported */
    ck_assert(!ImapHasCapability(h, "STARTTLS"));
    ck_assert(ImapHasCapability(h, "AUTH=PLAIN"));
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ck_assert_int_eq(ImapGetTimings(h, &tm), 0);
    ck_assert_uint_gt(tm.dwSecure, 0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(t);
}
END_TEST

START_TEST(implicit_valid)
{
    static const char *hosts[] = { "127.0.0.1", "localhost" };
    SECURITYCREDENTIALS sc = creds_ca();
    HCLIENT h;
    sc.lpszCAFile = _i == 2 ? NULL : ca;
    sc.lpszCAPath = _i == 2 ? capath : NULL;
    h = ImapConnect(hosts[_i % 2], dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    check_info(h, CERTIFICATE_STATUS_VALID);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(protocol_versions)
{
    static const DWORD protos[] = { SECURITY_PROTOCOL_TLS12, SECURITY_PROTOCOL_TLS13 };
    SECURITYCREDENTIALS sc = creds_ca();
    SECURITYINFO si;
    HCLIENT h;
    sc.dwProtocol = protos[_i];
    h = ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    ck_assert_uint_eq(si.dwProtocol, protos[_i]);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* a protocol bit we do not speak is refused before any traffic */
    sc.dwProtocol = 0x1;
    ck_assert(ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc)
              == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

START_TEST(name_mismatch_dovecot)
{
    SECURITYCREDENTIALS sc = creds_ca();
    sc.lpszServerName = "imap.other.example";
    ck_assert(ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_SECURE_EXPLICIT, &sc)
              == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CERTIFICATE_NAME_MISMATCH);
    ck_assert(ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc)
              == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CERTIFICATE_NAME_MISMATCH);
}
END_TEST

/* Our private CA is not in the system store. */
START_TEST(system_store_untrusted)
{
    HCLIENT h = ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, NULL);
    ck_assert(h == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CERTIFICATE_UNTRUSTED);
}
END_TEST

typedef struct bad_cert {
    const char *cert;
    DWORD       error;
} bad_cert;

static const bad_cert bad_certs[] = {
    { "wrongname",  ST_ERROR_CERTIFICATE_NAME_MISMATCH },
    { "expired",    ST_ERROR_CERTIFICATE_EXPIRED },
    { "selfsigned", ST_ERROR_CERTIFICATE_UNTRUSTED },
};

START_TEST(bad_certificate)
{
    const bad_cert *b = &bad_certs[_i];
    SECURITYCREDENTIALS sc = creds_ca();
    iwt_fixture f;
    HCLIENT h;
    int fds;

    iwt_tls_server_start(&f, certs, b->cert, NULL);
    fds = iwt_count_fds();
    ck_assert(ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_SECURE_IMPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(b->error);
    ck_assert_int_eq(iwt_count_fds(), fds);
    iwt_fixture_stop(&f);
    /* TRUSTEDSITE skips exactly this check, and says so */
    iwt_tls_server_start(&f, certs, b->cert, IMAP_SCRIPT);
    h = ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_SECURE_IMPLICIT | IMAP_OPTION_TRUSTEDSITE, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "%s: error %u", b->cert, (unsigned)ImapGetLastError());
    check_info(h, CERTIFICATE_STATUS_NOT_CHECKED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    iwt_fixture_stop(&f);
}
END_TEST

START_TEST(trustedsite_dovecot)
{
    HCLIENT h = ImapConnect("127.0.0.1", dv.port, 10,
                            IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_TRUSTEDSITE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    check_info(h, CERTIFICATE_STATUS_NOT_CHECKED);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* An idle IMAPS connection keeps little heap, fresh (greeting and capabilities read) and
 * after login, select and a fetch: OpenSSL's 16 KB read buffer is given back when the
 * connection rests (it was kept: 39 KB fresh). Resumed, one keeps 18.9 KB; on a loaded
 * machine the server's ticket may come too late for the next connect, whose full
 * handshake keeps the peer's certificate chain too (22.7 KB seen under ctest -j2). */
#define IDLE_CONNS 40
#define IDLE_MAX   (24 * 1024)
START_TEST(idle_connection_memory)
{
    SECURITYCREDENTIALS sc = creds_ca();
    HCLIENT h[IDLE_CONNS];
    IMAPMAILBOX mb;
    size_t heap0, heap1, heap2;
    char buf[512];
    DWORD len;
    int i;

    /* warm-up: the shared context, its session cache, thread-locals */
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(ImapDisconnect(ImapConnect("127.0.0.1", dv.imaps_port, 10,
                                                    IMAP_OPTION_SECURE_IMPLICIT, &sc)), 0);
    heap0 = iwt_heap_in_use();
    for (i = 0; i < IDLE_CONNS; i++) {
        h[i] = ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
        ck_assert(h[i] != INVALID_CLIENT);
    }
    heap1 = iwt_heap_in_use();
    for (i = 0; i < IDLE_CONNS; i++) {
        len = sizeof buf;
        ck_assert_int_eq(ImapLogin(h[i], IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert_int_eq(ImapSelectMailbox(h[i], "INBOX", &mb), 0);
        ImapGetMessage(h[i], 1, 1, buf, &len, 0);   /* a part that may not exist: either way */
    }
    heap2 = iwt_heap_in_use();
    for (i = 0; i < IDLE_CONNS; i++)
        ck_assert_int_eq(ImapDisconnect(h[i]), 0);
    fprintf(stderr, "idle IMAPS connection: %zu bytes fresh, %zu after use\n",
            (heap1 - heap0) / IDLE_CONNS, (heap2 > heap0 ? heap2 - heap0 : 0) / IDLE_CONNS);
    ck_assert_msg((heap1 - heap0) / IDLE_CONNS <= IDLE_MAX, "fresh: %zu bytes per connection",
                  (heap1 - heap0) / IDLE_CONNS);
    ck_assert_msg(heap2 <= heap0 || (heap2 - heap0) / IDLE_CONNS <= IDLE_MAX,
                  "after use: %zu bytes per connection", (heap2 - heap0) / IDLE_CONNS);
}
END_TEST

START_TEST(resumption)
{
    SECURITYCREDENTIALS sc = creds_ca();
    SECURITYINFO si;
    HCLIENT h;
    int round;
    for (round = 0; round < 2; round++) {
        h = ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
        ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
        ck_assert_msg(si.bSessionResumed == (round == 1), "round %d resumed=%d", round,
                      si.bSessionResumed);
        ck_assert_uint_eq(si.dwCertificateStatus, CERTIFICATE_STATUS_VALID);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
}
END_TEST

/* Orderings that decide trust: a session cached by one connect must never let a later
 * connect skip a check that the later one asked for. Each round uses TLS 1.2 (_i 0) or
 * TLS 1.3 (_i 1), because resumption works differently in each. */
static const DWORD resume_protos[] = { SECURITY_PROTOCOL_TLS12, SECURITY_PROTOCOL_TLS13 };

static HCLIENT connect_proto(unsigned port, DWORD options, SECURITYCREDENTIALS *sc)
{
    return ImapConnect("127.0.0.1", port, 10, options, sc);
}

static DWORD resumed_status(HCLIENT h, BOOL *resumed)
{
    SECURITYINFO si;
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    *resumed = si.bSessionResumed;
    return si.dwCertificateStatus;
}

/* TRUSTEDSITE with a CA that does not sign the server, then a verifying connect with the
 * same credentials: the second must fail as untrusted, not resume the first's session. */
START_TEST(trustedsite_then_verify)
{
    SECURITYCREDENTIALS sc = creds_ca();
    char wrong_ca[700];
    BOOL resumed;
    HCLIENT h;
    int round;

    snprintf(wrong_ca, sizeof wrong_ca, "%s/selfsigned.pem", certs);
    sc.lpszCAFile = wrong_ca;
    sc.dwProtocol = resume_protos[_i];
    for (round = 0; round < 2; round++) {
        h = connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT | IMAP_OPTION_TRUSTEDSITE, &sc);
        ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
        ck_assert_uint_eq(resumed_status(h, &resumed), CERTIFICATE_STATUS_NOT_CHECKED);
        /* the session is complete (TLS 1.3 tickets come after the handshake) */
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    h = connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT, &sc);
    if (h != INVALID_CLIENT) {
        DWORD st = resumed_status(h, &resumed);
        /* the hole: the password would go to a server nobody verified */
        ImapDisconnect(h);
        ck_abort_msg("verifying connect succeeded (status %u, resumed %d)", (unsigned)st, resumed);
    }
    iwt_assert_error(ST_ERROR_CERTIFICATE_UNTRUSTED);
    /* and over STARTTLS, the same */
    h = connect_proto(dv.port, IMAP_OPTION_SECURE_EXPLICIT, &sc);
    if (h != INVALID_CLIENT) {
        ImapDisconnect(h);
        ck_abort_msg("verifying STARTTLS connect succeeded");
    }
    iwt_assert_error(ST_ERROR_CERTIFICATE_UNTRUSTED);
}
END_TEST

/* A verified session does resume for the same checks, and only for them: another name,
 * another CA file or TRUSTEDSITE each get a session of their own. */
START_TEST(resumption_keyed_by_trust)
{
    SECURITYCREDENTIALS sc = creds_ca();
    char wrong_ca[700];
    BOOL resumed;
    HCLIENT h;
    int round;

    snprintf(wrong_ca, sizeof wrong_ca, "%s/selfsigned.pem", certs);
    sc.dwProtocol = resume_protos[_i];
    sc.lpszServerName = "localhost";
    for (round = 0; round < 2; round++) {
        h = connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT, &sc);
        ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
        ck_assert_uint_eq(resumed_status(h, &resumed), CERTIFICATE_STATUS_VALID);
        ck_assert_msg(resumed == (round == 1), "round %d resumed %d", round, resumed);
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    /* name A's session is not name B's */
    sc.lpszServerName = "imap.other.example";
    ck_assert(connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CERTIFICATE_NAME_MISMATCH);
    /* a CA file that does not sign the server gets no session verified with another */
    sc.lpszServerName = "localhost";
    sc.lpszCAFile = wrong_ca;
    ck_assert(connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CERTIFICATE_UNTRUSTED);
    /* TRUSTEDSITE does its own full handshake and says NOT_CHECKED */
    sc.lpszCAFile = ca;
    h = connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT | IMAP_OPTION_TRUSTEDSITE, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_uint_eq(resumed_status(h, &resumed), CERTIFICATE_STATUS_NOT_CHECKED);
    ck_assert_msg(!resumed, "TRUSTEDSITE resumed a verified session");
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* the verified one is still there for the verifying connect */
    h = connect_proto(dv.imaps_port, IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_uint_eq(resumed_status(h, &resumed), CERTIFICATE_STATUS_VALID);
    ck_assert(resumed);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* Unusable client credentials fail before a single byte reaches the server. */
START_TEST(client_key_errors_before_traffic)
{
    SECURITYCREDENTIALS sc = creds_ca();
    char cert[700], enckey[700], missing[700];
    iwt_fixture f;
    char *log;

    snprintf(cert, sizeof cert, "%s/client.pem", certs);
    snprintf(enckey, sizeof enckey, "%s/client-enc.key", certs);
    snprintf(missing, sizeof missing, "%s/no-such-file.pem", certs);
    iwt_fixture_start(&f, "normal", 10);
    sc.lpszCertificate = cert;
    sc.lpszPrivateKey = enckey;
    sc.lpszPassword = "wrong-pass";
    ck_assert(ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_SECURE_EXPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CLIENT_CERTIFICATE);
    sc.lpszPassword = NULL;
    ck_assert(ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_SECURE_EXPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CLIENT_CERTIFICATE);
    sc.lpszCertificate = missing;
    ck_assert(ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_SECURE_EXPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CLIENT_CERTIFICATE);
    sc = creds_ca();
    sc.lpszCAFile = missing;
    ck_assert(ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_SECURE_EXPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "<connected>") == NULL, "the server was contacted:\n%s", log);
    free(log);
}
END_TEST

/* A forward the caller made (TUNNEL without a tunnel host) needs the real server name. */
START_TEST(caller_forward_needs_server_name)
{
    SECURITYCREDENTIALS sc = creds_ca();
    HCLIENT h;
    ck_assert(ImapConnect("127.0.0.1", dv.imaps_port, 10,
                          IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    sc.lpszServerName = "localhost";
    h = ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    check_info(h, CERTIFICATE_STATUS_VALID);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, starttls_valid);
    tcase_add_loop_test(tc, implicit_valid, 0, 3);
    tcase_add_loop_test(tc, protocol_versions, 0, 2);
    tcase_add_test(tc, name_mismatch_dovecot);
    tcase_add_test(tc, system_store_untrusted);
    tcase_add_loop_test(tc, bad_certificate, 0, (int)(sizeof bad_certs / sizeof bad_certs[0]));
    tcase_add_test(tc, trustedsite_dovecot);
    tcase_add_test(tc, resumption);
    tcase_add_test(tc, idle_connection_memory);
    tcase_add_loop_test(tc, trustedsite_then_verify, 0, 2);
    tcase_add_loop_test(tc, resumption_keyed_by_trust, 0, 2);
    tcase_add_test(tc, client_key_errors_before_traffic);
    tcase_add_test(tc, caller_forward_needs_server_name);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
