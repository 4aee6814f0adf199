/* test_auth.c: the SASL messages of the one-step mechanisms, byte for byte (escaping of
 * the OAUTHBEARER authzid, refusal of values that would inject fields), and the SCRAM
 * client against the RFC 5802 / RFC 7677 vectors and hostile server messages. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imap/auth.h"

static int build(unsigned type, const char *user, const char *pass, iw_sb *out)
{
    memset(out, 0, sizeof *out);
    return iw_sasl_message(type, user, pass, "imap.example", 993, out);
}

static void expect(const iw_sb *sb, const char *want, size_t n)
{
    ck_assert_uint_eq(sb->len, n);
    ck_assert_msg(memcmp(sb->p, want, n) == 0, "got %.*s", (int)sb->len, sb->p);
}

START_TEST(plain_layout)
{
    iw_sb sb;
    ck_assert_int_eq(build(IMAP_AUTH_PLAIN, "user", "pa ss", &sb), 0);
    expect(&sb, "\0user\0pa ss", 11);
    iw_sb_free(&sb);
}
END_TEST

/* RFC 5801: ',' is =2C and '=' is =3D in a saslname; nothing else changes. */
START_TEST(oauthbearer_escapes_authzid)
{
    static const char want[] =
        "n,a=a=2Cb=3Dc@example,\001host=imap.example\001port=993\001auth=Bearer tok\001\001";
    iw_sb sb;
    ck_assert_int_eq(build(IMAP_AUTH_BEARER, "a,b=c@example", "tok", &sb), 0);
    expect(&sb, want, sizeof want - 1);
    iw_sb_free(&sb);
}
END_TEST

/* A 0x01 in any field of XOAUTH2 or OAUTHBEARER would add a field: refused. */
START_TEST(field_injection_refused)
{
    static const unsigned types[] = { IMAP_AUTH_XOAUTH2, IMAP_AUTH_BEARER };
    iw_sb sb;
    unsigned t = types[_i];
    ck_assert_int_eq(build(t, "u\001auth=Bearer evil", "tok", &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    ck_assert_int_eq(build(t, "user", "tok\001\001", &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    ck_assert_int_eq(build(t, "user", "tok\r\nA1 LOGOUT", &sb), ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    ck_assert_int_eq(build(t, "user", "tok", &sb), 0);
    ck_assert_int_gt((int)sb.len, 0);
    iw_sb_free(&sb);
}
END_TEST

START_TEST(xoauth2_layout)
{
    static const char want[] = "user=me@example\001auth=Bearer tok\001\001";
    iw_sb sb;
    ck_assert_int_eq(build(IMAP_AUTH_XOAUTH2, "me@example", "tok", &sb), 0);
    expect(&sb, want, sizeof want - 1);
    iw_sb_free(&sb);
}
END_TEST


/* ---- SCRAM ---- */

typedef struct scram_vector {
    unsigned    type;
    const char *nonce, *client_first, *server_first, *client_final, *server_final;
} scram_vector;

/* RFC 5802 section 5 (SHA-1) and RFC 7677 section 3 (SHA-256): user "user", password
 * "pencil". */
static const scram_vector vectors[] = {
    { IMAP_AUTH_SCRAM_SHA1, "fyko+d2lbbFgONRv9qkxdawL",
      "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
      "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
      "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
    { IMAP_AUTH_SCRAM_SHA256, "rOprNGfwEbeRWgbNEkqO",
      "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
      "i=4096",
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
};

/* Server bytes go in as exact-size heap copies: under ASan a read one byte past the
 * message is caught (the reader's spare byte would hide it). */
static char *exact(const char *s, size_t *n)
{
    char *p;
    *n = strlen(s);
    p = malloc(*n ? *n : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, s, *n);
    return p;
}

static int feed_first(iw_scram *s, const char *server_first, iw_sb *out)
{
    size_t n;
    char *m = exact(server_first, &n);
    int rc;
    memset(out, 0, sizeof *out);
    rc = iw_scram_client_final(s, m, n, out);
    free(m);
    return rc;
}

static int feed_final(iw_scram *s, const char *server_final)
{
    size_t n;
    char *m = exact(server_final, &n);
    int rc = iw_scram_verify(s, m, n);
    free(m);
    return rc;
}

static void start_vector(const scram_vector *v, iw_scram *s)
{
    iw_sb first = {0};
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(iw_scram_start(s, v->type, "user", "pencil", v->nonce, &first), 0);
    expect(&first, v->client_first, strlen(v->client_first));
    iw_sb_free(&first);
}

/* The RFCs' exchanges, byte for byte, and their server signature accepted. */
START_TEST(scram_rfc_vectors)
{
    const scram_vector *v = &vectors[_i];
    iw_scram s;
    iw_sb fin;
    start_vector(v, &s);
    ck_assert_int_eq(feed_first(&s, v->server_first, &fin), 0);
    expect(&fin, v->client_final, strlen(v->client_final));
    iw_sb_free(&fin);
    ck_assert_ptr_null(s.pass);                   /* wiped and freed once keys exist */
    ck_assert_int_eq(feed_final(&s, v->server_final), 0);
    ck_assert_int_eq(s.step, IW_SCRAM_VERIFIED);
    iw_scram_clear(&s);
}
END_TEST

/* One byte changed anywhere in the signature, a missing v=, an e= report, extra or
 * missing bytes: refused. */
START_TEST(scram_wrong_signature)
{
    const scram_vector *v = &vectors[_i];
    size_t len = strlen(v->server_final), pos;
    for (pos = 2; pos < len; pos++) {
        char bad[128];
        iw_scram s;
        iw_sb fin;
        if (v->server_final[pos] == '=')
            continue;                              /* padding: not a signature byte */
        start_vector(v, &s);
        ck_assert_int_eq(feed_first(&s, v->server_first, &fin), 0);
        iw_sb_free(&fin);
        memcpy(bad, v->server_final, len + 1);
        bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(feed_final(&s, bad), ST_ERROR_LOGIN_FAILED);
        ck_assert_int_ne(s.step, IW_SCRAM_VERIFIED);
        iw_scram_clear(&s);
    }
}
END_TEST

START_TEST(scram_bad_server_final)
{
    static const char *const finals[] = {
        "", "v=", "v", "e=invalid-proof", "x=1", "v=!!!!",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ",             /* not a multiple of 4 */
        "v=rmF9pqV8S7suAoZWja4dJRkF",                /* too short a signature */
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=AAAA",
    };
    const scram_vector *v = &vectors[0];
    size_t i;
    for (i = 0; i < sizeof finals / sizeof finals[0]; i++) {
        iw_scram s;
        iw_sb fin;
        start_vector(v, &s);
        ck_assert_int_eq(feed_first(&s, v->server_first, &fin), 0);
        iw_sb_free(&fin);
        ck_assert_msg(feed_final(&s, finals[i]) == ST_ERROR_LOGIN_FAILED, "%s", finals[i]);
        iw_scram_clear(&s);
    }
}
END_TEST

/* Malformed server-first messages: refused before any key is derived. */
START_TEST(scram_bad_server_first)
{
    static const char *const firsts[] = {
        "",
        "s=QSXCR+Q6sek8bf92,i=4096",                                   /* no r= */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096",                       /* no s= */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92",           /* no i= */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=",
        "r=XXXX+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096",    /* not our nonce */
        "r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",        /* nothing added */
        "r=fyko+d2lbbFgONRv9qkx,s=QSXCR+Q6sek8bf92,i=4096",            /* shorter */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=0",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=1000001",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=99999999999999999999",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=-1",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096x",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSX!R+Q6sek8bf92,i=4096",    /* bad base64 */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf9,i=4096",     /* bad length */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QS=CR+Q6sek8bf92,i=4096",    /* '=' inside */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=,i=4096",                    /* empty salt */
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096,s=QSXCR+Q6sek8bf92",    /* out of order */
        "m=ext,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096",
        "r=fyko+d2lbbFgONRv9qkxdawL3r\001c,s=QSXCR+Q6sek8bf92,i=4096",  /* control byte */
        "r", "r=", "r=fyko+d2lbbFgONRv9qkxdawL3rfc", "r=fyko+d2lbbFgONRv9qkxdawL3rfc,",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s", "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i",
    };
    size_t i;
    for (i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        iw_scram s;
        iw_sb fin;
        start_vector(&vectors[0], &s);
        ck_assert_msg(feed_first(&s, firsts[i], &fin) == ST_ERROR_INVALID_RESPONSE,
                      "accepted: %s", firsts[i]);
        ck_assert_uint_eq(fin.len, 0);
        iw_sb_free(&fin);
        /* and nothing is verified afterwards */
        ck_assert_int_eq(feed_final(&s, vectors[0].server_final), ST_ERROR_LOGIN_FAILED);
        iw_scram_clear(&s);
    }
}
END_TEST

/* RFC 7677's floor: below 4096 iterations no client-final (no proof) is built, and the
 * error is the login's, not a malformed message's; at 4096 the exchange goes on. */
START_TEST(scram_iteration_floor)
{
    static const char *const counts[] = { "1", "2", "4095", "4096" };
    char first[160];
    iw_scram s;
    iw_sb fin = {0};
    int want = _i == 3 ? 0 : (int)ST_ERROR_LOGIN_FAILED;

    snprintf(first, sizeof first, "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=%s",
             counts[_i]);
    start_vector(&vectors[0], &s);
    ck_assert_int_eq(feed_first(&s, first, &fin), want);
    if (want != 0)
        ck_assert_uint_eq(fin.len, 0);
    else
        ck_assert_ptr_nonnull(strstr(fin.p, ",p="));
    iw_sb_free(&fin);
    iw_scram_clear(&s);
}
END_TEST

/* A NUL inside the message (a decoded base64 may hold one) ends nothing early. */
START_TEST(scram_nul_in_server_first)
{
    static const char msg[] = "r=fyko+d2lbbFgONRv9qkxdawL3rfc\0,s=QSXCR+Q6sek8bf92,i=4096";
    iw_scram s;
    iw_sb fin = {0};
    char *m = malloc(sizeof msg - 1);
    memcpy(m, msg, sizeof msg - 1);
    start_vector(&vectors[0], &s);
    ck_assert_int_eq(iw_scram_client_final(&s, m, sizeof msg - 1, &fin),
                     ST_ERROR_INVALID_RESPONSE);
    free(m);
    iw_sb_free(&fin);
    iw_scram_clear(&s);
}
END_TEST

/* Extensions after i= are allowed and ignored (RFC 5802 section 7). */
START_TEST(scram_extension_ignored)
{
    const scram_vector *v = &vectors[0];
    char first[256];
    iw_scram s;
    iw_sb fin;
    snprintf(first, sizeof first, "%s,x=future", v->server_first);
    start_vector(v, &s);
    ck_assert_int_eq(feed_first(&s, first, &fin), 0);
    iw_sb_free(&fin);
    iw_scram_clear(&s);
}
END_TEST

/* The user name is a saslname (',' and '=' escaped); control characters in the user
 * name or password are refused (SASLprep prohibits them); non-ASCII passes unchanged. */
START_TEST(scram_names_and_passwords)
{
    iw_scram s;
    iw_sb sb = {0};
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(iw_scram_start(&s, IMAP_AUTH_SCRAM_SHA256, "a,b=c", "pw", "NONCE", &sb), 0);
    expect(&sb, "n,,n=a=2Cb=3Dc,r=NONCE", 22);
    iw_sb_free(&sb);
    iw_scram_clear(&s);
    ck_assert_int_eq(iw_scram_start(&s, IMAP_AUTH_SCRAM_SHA256, "u", "p\tw", "N", &sb),
                     ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    iw_scram_clear(&s);
    ck_assert_int_eq(iw_scram_start(&s, IMAP_AUTH_SCRAM_SHA256, "u", "p\177w", "N", &sb),
                     ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    iw_scram_clear(&s);
    ck_assert_int_eq(iw_scram_start(&s, IMAP_AUTH_SCRAM_SHA256, "u\r\n", "pw", "N", &sb),
                     ST_ERROR_INVALID_PARAMETER);
    iw_sb_free(&sb);
    iw_scram_clear(&s);
    ck_assert_int_eq(iw_scram_start(&s, IMAP_AUTH_SCRAM_SHA1, "u", "w\xc3\xb6rd", "N", &sb), 0);
    ck_assert_str_eq(s.pass, "w\xc3\xb6rd");
    iw_sb_free(&sb);
    iw_scram_clear(&s);
}
END_TEST

/* A random nonce: at least 18 random bytes in base64, different each time. */
START_TEST(scram_random_nonce)
{
    iw_scram a, b;
    iw_sb sa = {0}, sb = {0};
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(iw_scram_start(&a, IMAP_AUTH_SCRAM_SHA256, "u", "p", NULL, &sa), 0);
    ck_assert_int_eq(iw_scram_start(&b, IMAP_AUTH_SCRAM_SHA256, "u", "p", NULL, &sb), 0);
    ck_assert_uint_ge(strlen(a.nonce), 24);
    ck_assert_ptr_null(strchr(a.nonce, ','));
    ck_assert_str_ne(a.nonce, b.nonce);
    iw_sb_free(&sa);
    iw_sb_free(&sb);
    iw_scram_clear(&a);
    iw_scram_clear(&b);
}
END_TEST

/* A server-final inside the tagged OK's response code is verified too. */
START_TEST(scram_tagged_final)
{
    const scram_vector *v = &vectors[1];
    static const char ok[] = "OK [SASL dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==] done";
    static const char bad[] = "OK [SASL dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc1PQ==] done";
    static const char *const none[] = { "OK done", "OK [CAPABILITY IMAP4rev1] done", "OK [",
                                        "OK [SASL", "OK [SASL =]", "OK []" };
    iw_scram s;
    iw_sb fin;
    size_t i, n;
    char *m;

    start_vector(v, &s);
    ck_assert_int_eq(feed_first(&s, v->server_first, &fin), 0);
    iw_sb_free(&fin);
    m = exact(bad, &n);
    ck_assert_int_eq(iw_scram_verify_tagged(&s, m, n), ST_ERROR_LOGIN_FAILED);
    free(m);
    for (i = 0; i < sizeof none / sizeof none[0]; i++) {
        m = exact(none[i], &n);
        ck_assert_int_eq(iw_scram_verify_tagged(&s, m, n), ST_ERROR_LOGIN_FAILED);
        free(m);
    }
    iw_scram_clear(&s);

    start_vector(v, &s);
    ck_assert_int_eq(feed_first(&s, v->server_first, &fin), 0);
    iw_sb_free(&fin);
    m = exact(ok, &n);
    ck_assert_int_eq(iw_scram_verify_tagged(&s, m, n), 0);
    free(m);
    iw_scram_clear(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("sasl");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, plain_layout);
    tcase_add_test(tc, oauthbearer_escapes_authzid);
    tcase_add_loop_test(tc, field_injection_refused, 0, 2);
    tcase_add_test(tc, xoauth2_layout);
    suite_add_tcase(s, tc);
    tc = tcase_create("scram");
    tcase_add_loop_test(tc, scram_rfc_vectors, 0, 2);
    tcase_add_loop_test(tc, scram_wrong_signature, 0, 2);
    tcase_add_test(tc, scram_bad_server_final);
    tcase_add_test(tc, scram_bad_server_first);
    tcase_add_loop_test(tc, scram_iteration_floor, 0, 4);
    tcase_add_test(tc, scram_nul_in_server_first);
    tcase_add_test(tc, scram_extension_ignored);
    tcase_add_test(tc, scram_names_and_passwords);
    tcase_add_test(tc, scram_random_nonce);
    tcase_add_test(tc, scram_tagged_final);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
