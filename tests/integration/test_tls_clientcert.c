/* test_tls_clientcert.c: client certificates against a Dovecot that requires them:
 * separate, combined and encrypted keys log in; without a certificate login is refused. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "iwtest.h"

static iwt_dovecot dv;
static char ca[700], cert[700], key[700], combined[700], enckey[700];

static void setup(void)
{
    const char *env = getenv("IW_DOVECOT_CC_ENV");
    ck_assert_msg(env != NULL, "IW_DOVECOT_CC_ENV not set (run through ctest)");
    iwt_dovecot_load_file(&dv, env);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dv.dir);
    snprintf(cert, sizeof cert, "%s/certs/client.pem", dv.dir);
    snprintf(key, sizeof key, "%s/certs/client.key", dv.dir);
    snprintf(combined, sizeof combined, "%s/certs/client-combined.pem", dv.dir);
    snprintf(enckey, sizeof enckey, "%s/certs/client-enc.key", dv.dir);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* 0: cert + key, 1: one combined file, 2: encrypted key with its passphrase, each over
 * STARTTLS and IMAPS; the credentials object comes from the API this time. */
START_TEST(client_certificate_accepted)
{
    int form = _i % 3, implicit = _i / 3;
    LPSECURITYCREDENTIALS sc;
    HCLIENT h;

    if (form == 0)
        sc = ImapCreateSecurityCredentials(0, 0, cert, key, NULL, ca);
    else if (form == 1)
        sc = ImapCreateSecurityCredentials(0, 0, combined, NULL, NULL, ca);
    else
        sc = ImapCreateSecurityCredentials(0, 0, cert, enckey, "client-pass", ca);
    ck_assert_ptr_nonnull(sc);
    h = ImapConnect("127.0.0.1", implicit ? dv.imaps_port : dv.port, 10,
                    implicit ? IMAP_OPTION_SECURE_IMPLICIT : IMAP_OPTION_SECURE_EXPLICIT, sc);
    ImapDeleteSecurityCredentials(sc);
    ck_assert_msg(h != INVALID_CLIENT, "form %d: error %u", form, (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

typedef struct note_log {
    char text[16384];
    size_t len;
} note_log;

static void note_cb(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    note_log *t = param;
    (void)h;
    (void)dir;
    if (n < 0 || t->len + (size_t)n + 2 >= sizeof t->text)
        return;
    memcpy(t->text + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->text[t->len++] = '\n';
    t->text[t->len] = '\0';
}

/* Dovecot completes the handshake without a certificate and refuses the login instead:
 * the error is LOGIN_FAILED and the server's reason reaches the trace. */
START_TEST(client_certificate_missing)
{
    SECURITYCREDENTIALS sc;
    IMAPCONNECTINFO ci;
    note_log *t = calloc(1, sizeof *t);
    HCLIENT h;

    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = dv.imaps_port;
    ci.nTimeout = 10;
    ci.dwOptions = IMAP_OPTION_SECURE_IMPLICIT;
    ci.lpCredentials = &sc;
    ci.lpTraceProc = note_cb;
    ci.lpParam = t;
    h = ImapConnectEx(&ci);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_LOGIN_FAILED);
    ck_assert_msg(strstr(t->text, "certificate") != NULL, "trace:\n%s", t->text);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls-clientcert");
    TCase *tc = tcase_create("clientcert");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, client_certificate_accepted, 0, 6);
    tcase_add_test(tc, client_certificate_missing);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
