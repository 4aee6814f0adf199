/* tls_use.c: one connect's use of the shared TLS policy: the context, the name and the
 * session key it was prepared with, offered to its tls layer as imapwire_tls_params. */
#include <stdlib.h>
#include <string.h>
#include "tls_policy.h"

struct iw_tls_use {
    imapwire_tls_params pub;       /* what the layer sees; first, so policy == use */
    iw_tls_ctx *ctx;
    char       *name;
    char       *session_key;
};

static void *iw_use_session_get(void *policy)
{
    iw_tls_use *u = policy;
    return iw_tls_session_get(u->ctx, u->session_key);
}

static void iw_use_session_attach(void *policy, void *ssl)
{
    iw_tls_use *u = policy;
    /* iw_tls_ctx's new-session callback files what the server issues under this key */
    SSL_set_ex_data(ssl, iw_tls_ex_slot(), u->session_key);
}

/* An untrusted certificate or a failed handshake is what a TLS library that an earlier
 * failure left broken reports for every server (OpenSSL 3.0 does not build again what it
 * failed to build once): before blaming the server, check that TLS works here at all. */
static int iw_use_library_check(int error)
{
    if (error == ST_ERROR_CERTIFICATE_UNTRUSTED || error == ST_ERROR_TLS_HANDSHAKE)
        return iw_tls_library_check(error);
    return error;
}

static int iw_use_verify_error(void *policy, long x509_result)
{
    iw_tls_use *u = policy;
    /* OpenSSL caches what it decodes of a trusted certificate in the certificate itself,
     * a failure included: after a check that ran out of memory the shared context's trust
     * store may fail every later check, so the next connect gets a new one. */
    if (x509_result == X509_V_ERR_OUT_OF_MEM)
        iw_tls_ctx_forget(u->ctx);
    return iw_tls_verify_error(x509_result);
}

static int iw_use_handshake_error(void *policy, int error)
{
    (void)policy;
    return iw_use_library_check(error);
}

static void iw_use_describe(void *policy, void *ssl, int verify, SECURITYINFO *info)
{
    (void)policy;
    iw_tls_describe(ssl, verify, info);
}

int iw_tls_use_new(const struct iw_creds *creds, const char *host, unsigned port,
                   const char *name, size_t name_len, int verify, iw_tls_use **out)
{
    iw_tls_use *u;
    int rc;

    *out = NULL;
    u = calloc(1, sizeof *u);
    if (u == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    u->name = malloc(name_len + 1);
    if (u->name == NULL) {
        iw_tls_use_free(u);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    memcpy(u->name, name, name_len);
    u->name[name_len] = '\0';
    u->session_key = iw_tls_session_key(host, port, u->name, verify);
    if (u->session_key == NULL) {
        iw_tls_use_free(u);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    /* a bad CA file or client key fails here, before any byte is sent */
    rc = iw_tls_ctx_acquire(creds, &u->ctx);
    if (rc != 0) {
        iw_tls_use_free(u);
        return rc;
    }
    u->pub.struct_size = sizeof u->pub;
    u->pub.server_name = u->name;
    u->pub.verify = verify;
    u->pub.ssl_ctx = iw_tls_ctx_ssl(u->ctx);
    u->pub.policy = u;
    u->pub.session_get = iw_use_session_get;
    u->pub.session_attach = iw_use_session_attach;
    u->pub.verify_error = iw_use_verify_error;
    u->pub.describe = iw_use_describe;
    u->pub.handshake_error = iw_use_handshake_error;
    *out = u;
    return 0;
}

const imapwire_tls_params *iw_tls_use_params(const iw_tls_use *u)
{
    return &u->pub;
}

void iw_tls_use_free(iw_tls_use *u)
{
    if (u == NULL)
        return;
    iw_tls_ctx_release(u->ctx);
    free(u->name);
    free(u->session_key);
    free(u);
}
