/* tls_context.c: SSL_CTX objects shared by every connect with the same protocol set,
 * trust anchors and client certificate, and the client session cache they carry. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "tls_policy.h"

#define IW_TLS_SESSIONS 32

typedef struct iw_tls_session {
    char        *key;
    SSL_SESSION *sess;
    uint64_t     used;             /* recency stamp: the oldest is replaced first */
} iw_tls_session;

struct iw_tls_ctx {
    struct iw_tls_ctx *next;
    unsigned      refs;
    unsigned char id[32];          /* iw_ctx_id(): keyed HMAC of what shaped the context */
    SSL_CTX      *ssl_ctx;
    iw_tls_session sessions[IW_TLS_SESSIONS];
    uint64_t      clock;
};

static pthread_mutex_t iw_tls_lock = PTHREAD_MUTEX_INITIALIZER;
static iw_tls_ctx *iw_tls_list;
static int iw_tls_ex_index = -1;       /* SSL ex_data slot: the session key of a layer */

/* Contexts are found by an HMAC of what shaped them under a key made once per process,
 * so the id (kept for the process's life) reveals nothing of the passphrase in it. */
static unsigned char iw_id_key[32];
static int iw_id_key_ready;            /* under iw_tls_lock; retried until RAND works */

static void iw_id_add(iw_sb *sb, const char *s)
{
    /* The length first, so ("ab","c") and ("a","bc") differ, and NULL differs from "". */
    size_t n = s ? strlen(s) + 1 : 0;
    iw_sb_add(sb, &n, sizeof n);
    if (s)
        iw_sb_add(sb, s, n);
}

static int iw_tls_oom(int errno_after);

/* An OpenSSL call that cannot fail but for memory failed: OUT_OF_MEMORY when memory ran
 * out, ST_ERROR_TLS_LIBRARY when TLS no longer works in this process at all. */
static int iw_tls_failed(int errno_after)
{
    if (iw_tls_oom(errno_after))
        return ST_ERROR_OUT_OF_MEMORY;
    return iw_tls_library_check(ST_ERROR_OUT_OF_MEMORY);
}

static int iw_ctx_id(const struct iw_creds *c, unsigned char id[32])
{
    iw_sb sb = {0};
    DWORD proto = c ? c->protocol : 0;
    unsigned int n = 0;
    int rc = 0;

    pthread_mutex_lock(&iw_tls_lock);
    if (!iw_id_key_ready && RAND_bytes(iw_id_key, sizeof iw_id_key) == 1)
        iw_id_key_ready = 1;
    pthread_mutex_unlock(&iw_tls_lock);
    if (!iw_id_key_ready)
        return ST_ERROR_OUT_OF_MEMORY;
    iw_sb_add(&sb, &proto, sizeof proto);
    iw_id_add(&sb, c ? c->ca_file : NULL);
    iw_id_add(&sb, c ? c->ca_path : NULL);
    iw_id_add(&sb, c ? c->certificate : NULL);
    iw_id_add(&sb, c ? c->private_key : NULL);
    /* The passphrase is part of the identity: a wrong one must fail every time. */
    iw_id_add(&sb, c ? c->password : NULL);
    if (sb.err != 0)
        rc = sb.err;
    else {
        errno = 0;
        if (HMAC(EVP_sha256(), iw_id_key, sizeof iw_id_key, (const unsigned char *)sb.p, sb.len,
                 id, &n) == NULL || n != 32)
            rc = iw_tls_failed(errno);
    }
    iw_sb_free(&sb);                   /* wipes the passphrase copy */
    ERR_clear_error();
    return rc;
}

/* OpenSSL hands every new client session here (TLS 1.3 tickets arrive after the
 * handshake); we keep one per host, port and name. */
static int iw_new_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_CTX *sctx = SSL_get_SSL_CTX(ssl);
    const char *key = SSL_get_ex_data(ssl, iw_tls_ex_index);
    iw_tls_ctx *t;
    iw_tls_session *slot = NULL;
    int i;

    if (key == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    pthread_mutex_lock(&iw_tls_lock);
    for (t = iw_tls_list; t != NULL && t->ssl_ctx != sctx; t = t->next)
        ;
    if (t != NULL) {
        for (i = 0; i < IW_TLS_SESSIONS; i++) {
            iw_tls_session *s = &t->sessions[i];
            if (s->key != NULL && strcmp(s->key, key) == 0) {
                slot = s;
                break;
            }
            if (slot == NULL || s->key == NULL || (slot->key != NULL && s->used < slot->used))
                slot = s;
        }
        if (slot->key == NULL || strcmp(slot->key, key) != 0) {
            free(slot->key);
            slot->key = iw_strdup(key);
        }
        if (slot->key != NULL) {
            if (slot->sess != NULL)
                SSL_SESSION_free(slot->sess);
            slot->sess = sess;         /* returning 1 hands us the reference */
            slot->used = ++t->clock;
            pthread_mutex_unlock(&iw_tls_lock);
            return 1;
        }
    }
    pthread_mutex_unlock(&iw_tls_lock);
    return 0;
}

char *iw_tls_session_key(const char *host, unsigned port, const char *verify_name, int verify)
{
    /* Lengths before strings: no host or name can make two keys collide. A session made
     * without verification is filed apart, so no verifying connect is ever offered it. */
    size_t n = strlen(host) + strlen(verify_name) + 64;
    char *key = malloc(n);
    if (key != NULL)
        snprintf(key, n, "%s %zu:%s %u %zu:%s", verify ? "verified" : "unverified",
                 strlen(host), host, port, strlen(verify_name), verify_name);
    return key;
}

SSL_SESSION *iw_tls_session_get(iw_tls_ctx *t, const char *key)
{
    SSL_SESSION *s = NULL;
    int i;
    pthread_mutex_lock(&iw_tls_lock);
    for (i = 0; i < IW_TLS_SESSIONS; i++) {
        if (t->sessions[i].key != NULL && strcmp(t->sessions[i].key, key) == 0) {
            s = t->sessions[i].sess;
            if (s != NULL && SSL_SESSION_up_ref(s) != 1)
                s = NULL;
            t->sessions[i].used = ++t->clock;
            break;
        }
    }
    pthread_mutex_unlock(&iw_tls_lock);
    return s;
}

/* Hands the caller's passphrase to OpenSSL without any prompt. */
static int iw_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pass = u;
    size_t n;
    (void)rwflag;
    if (pass == NULL || size <= 0)
        return -1;
    n = strlen(pass);
    if (n >= (size_t)size)
        return -1;
    memcpy(buf, pass, n);
    return (int)n;
}

/* Whether an OpenSSL call entered with errno 0 failed for want of memory (malloc leaves
 * ENOMEM; OpenSSL 3.0 does not always say so in its queue); empties the queue. A failed
 * allocation while a CA file is read must not read as a bad CA file. */
static int iw_tls_oom(int errno_after)
{
    unsigned long e;
    int oom = errno_after == ENOMEM;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_SYSTEM_ERROR(e) ? ERR_GET_REASON(e) == ENOMEM
                                : ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            oom = 1;
    }
    return oom;
}

/* A chain check that fails while an allocation fails says nothing about the certificate
 * (OpenSSL then finds no issuer, or no usable key): the TLS layer zeroes errno before each
 * handshake step, and malloc leaves ENOMEM in it. */
static int iw_verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok && errno == ENOMEM)
        X509_STORE_CTX_set_error(x, X509_V_ERR_OUT_OF_MEM);
    return ok;
}

/* Names a file the caller gave that cannot be used (IMAP_STAGE_FILE): unreadable with
 * the system's words, else what it should have held. OpenSSL's queue is left as it is. */
static void iw_tls_file_note(int rc, const char *path, const char *what, const char *wrong)
{
    char detail[512];
    int saved = errno;                 /* the caller looks for ENOMEM afterwards */
    int e = access(path, R_OK) == 0 ? 0 : errno;
    if (e != 0)
        snprintf(detail, sizeof detail, "%s %s cannot be read: %s", what, path, strerror(e));
    else
        snprintf(detail, sizeof detail, "%s %s %s", what, path, wrong);
    iw_errinfo_note((DWORD)rc, IMAP_STAGE_FILE, path, detail);
    errno = saved;
}

/* Whether the last OpenSSL error says a key is not the certificate's. */
static int iw_key_mismatch(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

static int iw_ctx_build(const struct iw_creds *c, SSL_CTX **out)
{
    DWORD proto = c ? c->protocol : 0;
    SSL_CTX *ctx;
    int rc = 0;

    *out = NULL;
    if (proto == 0)
        proto = SECURITY_PROTOCOL_TLS12 | SECURITY_PROTOCOL_TLS13;
    if ((proto & ~(DWORD)(SECURITY_PROTOCOL_TLS12 | SECURITY_PROTOCOL_TLS13)) != 0)
        return ST_ERROR_INVALID_PARAMETER;
    errno = 0;                         /* see below: ENOMEM after the set-up */
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        /* no cipher or group could be fetched: memory, or a TLS library left broken */
        return iw_tls_failed(errno);
    }
    /* Nothing older than TLS 1.2, ever. */
    SSL_CTX_set_min_proto_version(ctx, (proto & SECURITY_PROTOCOL_TLS12) ? TLS1_2_VERSION
                                                                       : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, (proto & SECURITY_PROTOCOL_TLS13) ? TLS1_3_VERSION
                                                                       : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, iw_verify_cb);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, iw_new_session);

    if (c != NULL && (c->ca_file != NULL || c->ca_path != NULL)) {
        if (SSL_CTX_load_verify_locations(ctx, c->ca_file, c->ca_path) != 1) {
            rc = ST_ERROR_INVALID_PARAMETER;
            iw_tls_file_note(rc, c->ca_file ? c->ca_file : c->ca_path,
                             c->ca_file ? "the CA file" : "the CA directory",
                             "holds no certificate OpenSSL can read (PEM)");
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        rc = ST_ERROR_INVALID_PARAMETER;
    }
    /* OpenSSL shrugs off some failed allocations and reports success: a context without
     * its cipher tables, a CA certificate whose key it could not decode. Cached, such a
     * context would fail every handshake or check for the process's life. */
    if (rc == 0 && errno == ENOMEM)
        rc = ST_ERROR_OUT_OF_MEMORY;
    if (rc == 0 && c != NULL && c->certificate != NULL) {
        const char *key = c->private_key ? c->private_key : c->certificate;
        SSL_CTX_set_default_passwd_cb(ctx, iw_passphrase_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, c->password);
        rc = ST_ERROR_CLIENT_CERTIFICATE;
        if (SSL_CTX_use_certificate_chain_file(ctx, c->certificate) != 1)
            iw_tls_file_note(rc, c->certificate, "the client certificate",
                             "holds no certificate OpenSSL can read (PEM)");
        else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            /* OpenSSL checks the key against the certificate as it loads it */
            iw_tls_file_note(rc, key, "the client key", iw_key_mismatch()
                             ? "does not match the certificate"
                             : "holds no private key OpenSSL can read (PEM), or its "
                               "passphrase is wrong");
        else if (SSL_CTX_check_private_key(ctx) != 1)
            iw_tls_file_note(rc, key, "the client key", "does not match the certificate");
        else
            rc = 0;
        /* The passphrase is not needed again: do not leave a pointer to it behind. */
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
        SSL_CTX_set_default_passwd_cb(ctx, NULL);
    }
    if (rc != 0) {
        if (iw_tls_oom(errno))
            rc = ST_ERROR_OUT_OF_MEMORY;
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int iw_tls_ctx_acquire(const struct iw_creds *creds, iw_tls_ctx **out)
{
    unsigned char id[32];
    iw_tls_ctx *t;
    SSL_CTX *ssl;
    int rc;

    *out = NULL;
    rc = iw_ctx_id(creds, id);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&iw_tls_lock);
    if (iw_tls_ex_index < 0)
        iw_tls_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    for (t = iw_tls_list; t != NULL; t = t->next) {
        if (memcmp(t->id, id, sizeof id) == 0) {
            t->refs++;
            pthread_mutex_unlock(&iw_tls_lock);
            *out = t;
            return 0;
        }
    }
    pthread_mutex_unlock(&iw_tls_lock);

    /* Built outside the lock: loading a CA bundle takes milliseconds. A racing thread
     * may build the same one; the first to publish wins and the other is dropped. */
    rc = iw_ctx_build(creds, &ssl);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&iw_tls_lock);
    for (t = iw_tls_list; t != NULL; t = t->next)
        if (memcmp(t->id, id, sizeof id) == 0)
            break;
    if (t != NULL) {
        t->refs++;
        pthread_mutex_unlock(&iw_tls_lock);
        SSL_CTX_free(ssl);
        *out = t;
        return 0;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        pthread_mutex_unlock(&iw_tls_lock);
        SSL_CTX_free(ssl);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    memcpy(t->id, id, sizeof id);
    t->ssl_ctx = ssl;
    t->refs = 2;                   /* the caller's, and the cache's until shutdown */
    t->next = iw_tls_list;
    iw_tls_list = t;
    pthread_mutex_unlock(&iw_tls_lock);
    *out = t;
    return 0;
}

static void iw_tls_ctx_free(iw_tls_ctx *t)
{
    int i;
    for (i = 0; i < IW_TLS_SESSIONS; i++) {
        free(t->sessions[i].key);
        if (t->sessions[i].sess != NULL)
            SSL_SESSION_free(t->sessions[i].sess);
    }
    SSL_CTX_free(t->ssl_ctx);
    free(t);
}

void iw_tls_ctx_release(iw_tls_ctx *t)
{
    int last;
    if (t == NULL)
        return;
    pthread_mutex_lock(&iw_tls_lock);
    last = --t->refs == 0;
    pthread_mutex_unlock(&iw_tls_lock);
    if (last)
        iw_tls_ctx_free(t);
}

void iw_tls_ctx_forget(iw_tls_ctx *t)
{
    iw_tls_ctx **pp;
    int found = 0;
    pthread_mutex_lock(&iw_tls_lock);
    for (pp = &iw_tls_list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&iw_tls_lock);
    if (found)
        iw_tls_ctx_release(t);         /* the cache's reference; users keep theirs */
}

iw_tls_ctx *iw_tls_ctx_ref(iw_tls_ctx *t)
{
    pthread_mutex_lock(&iw_tls_lock);
    t->refs++;
    pthread_mutex_unlock(&iw_tls_lock);
    return t;
}

SSL_CTX *iw_tls_ctx_ssl(iw_tls_ctx *t)
{
    return t->ssl_ctx;
}

int iw_tls_ex_slot(void)
{
    return iw_tls_ex_index;
}

void iw_tls_shutdown(void)
{
    iw_tls_ctx *list, *next;
    pthread_mutex_lock(&iw_tls_lock);
    list = iw_tls_list;
    iw_tls_list = NULL;
    pthread_mutex_unlock(&iw_tls_lock);
    for (; list != NULL; list = next) {
        next = list->next;
        iw_tls_ctx_release(list);
    }
}
