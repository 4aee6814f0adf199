/* tls_warmup.c: enters OpenSSL's once-only set-up at ImapInitialize, not at some connect,
 * and tells a TLS library that an earlier failure left unusable from a peer's fault. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>
#include "tls_policy.h"

/*
 * Why this exists: OpenSSL 3.0 does parts of its set-up once per process and remembers
 * the outcome, a failure included. An allocation that fails while the configuration is
 * loaded, while a provider's algorithms of one kind are first built (they are marked as
 * fetched even when building one failed), or while the random generators are made, makes
 * every later TLS connect of the process fail. Done here, under ImapInitialize, a failure
 * makes ImapInitialize return FALSE instead of breaking a connect hours later, and a
 * process that initialised successfully has nothing of the kind left to do.
 */

static pthread_mutex_t iw_warm_lock = PTHREAD_MUTEX_INITIALIZER;
static int iw_warmed;                  /* under iw_warm_lock: a warm-up succeeded */

static void iw_noop_md(EVP_MD *m, void *arg) { (void)m; (void)arg; }
static void iw_noop_cipher(EVP_CIPHER *c, void *arg) { (void)c; (void)arg; }
static void iw_noop_mac(EVP_MAC *m, void *arg) { (void)m; (void)arg; }
static void iw_noop_kdf(EVP_KDF *k, void *arg) { (void)k; (void)arg; }
static void iw_noop_rand(EVP_RAND *r, void *arg) { (void)r; (void)arg; }
static void iw_noop_keymgmt(EVP_KEYMGMT *k, void *arg) { (void)k; (void)arg; }
static void iw_noop_keyexch(EVP_KEYEXCH *k, void *arg) { (void)k; (void)arg; }
static void iw_noop_sig(EVP_SIGNATURE *s, void *arg) { (void)s; (void)arg; }
static void iw_noop_asym(EVP_ASYM_CIPHER *a, void *arg) { (void)a; (void)arg; }
static void iw_noop_kem(EVP_KEM *k, void *arg) { (void)k; (void)arg; }
static void iw_noop_dec(OSSL_DECODER *d, void *arg) { (void)d; (void)arg; }
static void iw_noop_enc(OSSL_ENCODER *e, void *arg) { (void)e; (void)arg; }
static void iw_noop_store(OSSL_STORE_LOADER *s, void *arg) { (void)s; (void)arg; }

/* Builds every algorithm of every kind the providers offer: the step whose failure
 * OpenSSL remembers. Whether it all got built is checked by the fetches that follow. */
static void iw_build_all(void)
{
    EVP_MD_do_all_provided(NULL, iw_noop_md, NULL);
    EVP_CIPHER_do_all_provided(NULL, iw_noop_cipher, NULL);
    EVP_MAC_do_all_provided(NULL, iw_noop_mac, NULL);
    EVP_KDF_do_all_provided(NULL, iw_noop_kdf, NULL);
    EVP_RAND_do_all_provided(NULL, iw_noop_rand, NULL);
    EVP_KEYMGMT_do_all_provided(NULL, iw_noop_keymgmt, NULL);
    EVP_KEYEXCH_do_all_provided(NULL, iw_noop_keyexch, NULL);
    EVP_SIGNATURE_do_all_provided(NULL, iw_noop_sig, NULL);
    EVP_ASYM_CIPHER_do_all_provided(NULL, iw_noop_asym, NULL);
    EVP_KEM_do_all_provided(NULL, iw_noop_kem, NULL);
    OSSL_DECODER_do_all_provided(NULL, iw_noop_dec, NULL);
    OSSL_ENCODER_do_all_provided(NULL, iw_noop_enc, NULL);
    OSSL_STORE_LOADER_do_all_provided(NULL, iw_noop_store, NULL);
}

/* The algorithms a connect of ours can need, whatever the server picks: the TLS 1.2 and
 * 1.3 suites and groups of the default provider, certificate and host key signatures,
 * SCRAM's HMAC and PBKDF2, the context ids' HMAC-SHA-256. A name that the providers of
 * this process do not offer at all (a FIPS-only build without ChaCha20) is optional. */
enum { IW_MD, IW_CIPHER, IW_MAC, IW_KDF, IW_KEYMGMT, IW_KEYEXCH, IW_SIG };
static const struct iw_alg { int kind; const char *name; int required; } iw_algs[] = {
    { IW_MD, "SHA1", 1 }, { IW_MD, "SHA2-224", 1 }, { IW_MD, "SHA2-256", 1 },
    { IW_MD, "SHA2-384", 1 }, { IW_MD, "SHA2-512", 1 }, { IW_MD, "MD5-SHA1", 0 },
    { IW_CIPHER, "AES-128-GCM", 1 }, { IW_CIPHER, "AES-256-GCM", 1 },
    { IW_CIPHER, "AES-128-CBC", 1 }, { IW_CIPHER, "AES-256-CBC", 1 },
    { IW_CIPHER, "AES-128-CTR", 1 }, { IW_CIPHER, "AES-256-CTR", 1 },
    { IW_CIPHER, "ChaCha20-Poly1305", 0 }, { IW_CIPHER, "AES-128-CCM", 0 },
    { IW_MAC, "HMAC", 1 },
    { IW_KDF, "PBKDF2", 1 }, { IW_KDF, "HKDF", 1 }, { IW_KDF, "TLS13-KDF", 1 },
    { IW_KDF, "TLS1-PRF", 1 },
    { IW_KEYMGMT, "RSA", 1 }, { IW_KEYMGMT, "RSA-PSS", 1 }, { IW_KEYMGMT, "EC", 1 },
    { IW_KEYMGMT, "X25519", 0 }, { IW_KEYMGMT, "X448", 0 }, { IW_KEYMGMT, "ED25519", 0 },
    { IW_KEYMGMT, "ED448", 0 }, { IW_KEYMGMT, "DH", 0 }, { IW_KEYMGMT, "HMAC", 0 },
    { IW_KEYEXCH, "ECDH", 1 }, { IW_KEYEXCH, "X25519", 0 }, { IW_KEYEXCH, "X448", 0 },
    { IW_KEYEXCH, "DH", 0 },
    { IW_SIG, "RSA", 1 }, { IW_SIG, "ECDSA", 1 }, { IW_SIG, "ED25519", 0 },
    { IW_SIG, "ED448", 0 }, { IW_SIG, "HMAC", 0 },
};

/* 1 when the algorithm is there (fetched and let go), 0 when not. */
static int iw_fetch(const struct iw_alg *a)
{
    void *p = NULL;
    switch (a->kind) {
    case IW_MD:      if ((p = EVP_MD_fetch(NULL, a->name, NULL)))        EVP_MD_free(p);        break;
    case IW_CIPHER:  if ((p = EVP_CIPHER_fetch(NULL, a->name, NULL)))    EVP_CIPHER_free(p);    break;
    case IW_MAC:     if ((p = EVP_MAC_fetch(NULL, a->name, NULL)))       EVP_MAC_free(p);       break;
    case IW_KDF:     if ((p = EVP_KDF_fetch(NULL, a->name, NULL)))       EVP_KDF_free(p);       break;
    case IW_KEYMGMT: if ((p = EVP_KEYMGMT_fetch(NULL, a->name, NULL)))   EVP_KEYMGMT_free(p);   break;
    case IW_KEYEXCH: if ((p = EVP_KEYEXCH_fetch(NULL, a->name, NULL)))   EVP_KEYEXCH_free(p);   break;
    case IW_SIG:     if ((p = EVP_SIGNATURE_fetch(NULL, a->name, NULL))) EVP_SIGNATURE_free(p); break;
    default: break;
    }
    return p != NULL;
}

/* ---- an in-memory handshake with verification: a CA, a server, a client ---- */

static EVP_PKEY *iw_ec_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A certificate for subject's key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *iw_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    ok = X509_set_version(x, 2) == 1 &&
         ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_gmtime_adj(X509_getm_notAfter(x), 3600) != NULL &&
         X509_set_pubkey(x, key) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
                                    -1, 0) == 1 &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1;
    if (ok) {
        X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, ca ? NID_basic_constraints : NID_subject_alt_name,
                                  ca ? "critical,CA:TRUE" : "DNS:warmup.imapwire.invalid");
        ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
    }
    if (ok)
        ok = X509_sign(x, issuer_key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

struct iw_pki {
    EVP_PKEY *ca_key, *key;
    X509     *ca, *cert;
};

static int iw_pki_make(struct iw_pki *p)
{
    memset(p, 0, sizeof *p);
    p->ca_key = iw_ec_key();
    p->key = iw_ec_key();
    if (p->ca_key == NULL || p->key == NULL)
        return 0;
    p->ca = iw_cert(p->ca_key, "imapwire warm-up CA", NULL, p->ca_key, 1);
    if (p->ca == NULL)
        return 0;
    p->cert = iw_cert(p->key, "warmup.imapwire.invalid", p->ca, p->ca_key, 0);
    return p->cert != NULL;
}

static void iw_pki_free(struct iw_pki *p)
{
    X509_free(p->cert);
    X509_free(p->ca);
    EVP_PKEY_free(p->key);
    EVP_PKEY_free(p->ca_key);
}

/* One handshake between a client set up as our contexts are (peer verification against a
 * store, host name check) and a server, through a BIO pair, then a few bytes each way. */
static int iw_handshake(const struct iw_pki *p, int version)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL *c = NULL, *s = NULL;
    BIO *cb = NULL, *sb = NULL;
    int ok = 0, cdone = 0, sdone = 0, round;
    char buf[8];
    size_t n;

    if (cctx == NULL || sctx == NULL)
        goto out;
    if (SSL_CTX_set_min_proto_version(cctx, version) != 1 ||
        SSL_CTX_set_max_proto_version(cctx, version) != 1 ||
        X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), p->ca) != 1 ||
        SSL_CTX_use_certificate(sctx, p->cert) != 1 || SSL_CTX_use_PrivateKey(sctx, p->key) != 1)
        goto out;
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    if (c == NULL || s == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
        goto out;
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    cb = sb = NULL;
    if (SSL_set_tlsext_host_name(c, "warmup.imapwire.invalid") != 1 ||
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(c), "warmup.imapwire.invalid", 0) != 1)
        goto out;
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    /* each round moves at least one flight; a handshake has a handful */
    for (round = 0; round < 32 && !(cdone && sdone); round++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                goto out;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                goto out;
        }
    }
    if (!cdone || !sdone || SSL_get_verify_result(c) != X509_V_OK || SSL_version(c) != version)
        goto out;
    /* the record layer's ciphers, both ways (a TLS 1.3 ticket rides along) */
    ok = SSL_write_ex(c, "A1 NOOP", 7, &n) == 1 && SSL_read_ex(s, buf, sizeof buf, &n) == 1 &&
         n == 7 && SSL_write_ex(s, "A1 OK", 5, &n) == 1 &&
         SSL_read_ex(c, buf, sizeof buf, &n) == 1 && n == 5;
out:
    BIO_free(cb);
    BIO_free(sb);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return ok;
}

/* Both protocol versions against a fresh certificate pair: 1 if TLS works here. */
static int iw_selftest_run(void)
{
    struct iw_pki p;
    int ok = iw_pki_make(&p) && iw_handshake(&p, TLS1_3_VERSION) &&
             iw_handshake(&p, TLS1_2_VERSION);
    iw_pki_free(&p);
    ERR_clear_error();
    return ok;
}

int iw_tls_warmup(void)
{
    unsigned char r[16];
    size_t i;
    int ok;

    pthread_mutex_lock(&iw_warm_lock);
    if (iw_warmed) {
        pthread_mutex_unlock(&iw_warm_lock);
        return 0;
    }
    /* First, alone: when building OpenSSL's default library context fails, OpenSSL says
     * so only here (NULL, for good) and every other call would use the half-built context
     * and crash. Such a process has no TLS: ImapInitialize fails every time. */
    ok = OSSL_LIB_CTX_get0_global_default() != NULL;
    /* the same options SSL_CTX_new asks for, so its own call has nothing left to do */
    ok = ok && OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_LOAD_SSL_STRINGS |
                          OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) == 1;
    /* the primary generator and this thread's public and private ones */
    ok = ok && RAND_bytes(r, sizeof r) == 1 && RAND_priv_bytes(r, sizeof r) == 1;
    OPENSSL_cleanse(r, sizeof r);
    if (ok) {
        iw_build_all();
        for (i = 0; ok && i < sizeof iw_algs / sizeof iw_algs[0]; i++)
            ok = iw_fetch(&iw_algs[i]) || !iw_algs[i].required;
    }
    ok = ok && iw_selftest_run();
    ERR_clear_error();
    iw_warmed = ok;
    pthread_mutex_unlock(&iw_warm_lock);
    /* Nothing here depends on the caller's input: with no allocation failing, all of it
     * works in any process that has TLS at all. */
    return ok ? 0 : ST_ERROR_OUT_OF_MEMORY;
}

/* A success is trusted for this long: a server refusing every handshake (or a test that
 * repeats one) does not pay two in-memory handshakes per failure, nor grow OpenSSL's
 * caches with each. A failure is never remembered: the next one asks again. */
#define IW_SELFTEST_TRUST_MS 10000

static int64_t iw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int iw_tls_selftest(void)
{
    static int64_t ok_until;           /* under iw_warm_lock */
    int saved = errno, rc;
    int64_t now = iw_mono_ms();

    pthread_mutex_lock(&iw_warm_lock);
    if (ok_until != 0 && now < ok_until) {
        pthread_mutex_unlock(&iw_warm_lock);
        return 1;
    }
    pthread_mutex_unlock(&iw_warm_lock);
    /* malloc leaves ENOMEM: a handshake that failed for memory now says nothing about
     * the library's state */
    errno = 0;
    rc = iw_selftest_run() ? 1 : errno == ENOMEM ? -1 : 0;
    errno = saved;
    pthread_mutex_lock(&iw_warm_lock);
    ok_until = rc == 1 ? now + IW_SELFTEST_TRUST_MS : 0;
    pthread_mutex_unlock(&iw_warm_lock);
    return rc;
}

int iw_tls_library_check(int error)
{
    switch (iw_tls_selftest()) {
    case 0:  return ST_ERROR_TLS_LIBRARY;
    case -1: return ST_ERROR_OUT_OF_MEMORY;
    default: return error;
    }
}
