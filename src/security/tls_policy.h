/* tls_policy.h: the security module's TLS side: cached SSL_CTX objects keyed by what
 * shapes them, session resumption, certificate checks and the errors they map to. */
#ifndef IW_TLS_POLICY_H
#define IW_TLS_POLICY_H

#include <openssl/ssl.h>
#include "creds.h"

typedef struct iw_tls_ctx iw_tls_ctx;

/* What one TLS layer needs: a shared context, the name to verify and send as SNI, and
 * the key under which its session is cached for resumption. */
typedef struct iw_tls_params {
    iw_tls_ctx *ctx;
    const char *verify_name;       /* host name or IP literal (no brackets) */
    int         verify;            /* 0 with IMAP_OPTION_TRUSTEDSITE */
    const char *session_key;       /* iw_tls_session_key() */
} iw_tls_params;

/* A context for these credentials, built once and shared: 0, or an ST_ERROR_* with
 * no network traffic (bad CA file, unusable client key, wrong passphrase). */
int  iw_tls_ctx_acquire(const struct iw_creds *creds, iw_tls_ctx **out);
void iw_tls_ctx_release(iw_tls_ctx *t);
iw_tls_ctx *iw_tls_ctx_ref(iw_tls_ctx *t);
SSL_CTX *iw_tls_ctx_ssl(iw_tls_ctx *t);
void iw_tls_shutdown(void);             /* last ImapUninitialize: drop every context */
int  iw_tls_ex_slot(void);              /* SSL ex_data index holding the session key */

/* The resumption key of a connect: everything that decided trust and is not already
 * part of the context (CA files and client certificate are): where it went, the name
 * verified and whether verification was on. malloc'd, NULL when out of memory. */
char *iw_tls_session_key(const char *host, unsigned port, const char *verify_name, int verify);
/* Resumption: the session saved under key (a new reference), or NULL. */
SSL_SESSION *iw_tls_session_get(iw_tls_ctx *t, const char *key);

/* Verification of a finished or failed handshake. */
int   iw_tls_verify_error(long x509_result);          /* ST_ERROR_CERTIFICATE_* */
DWORD iw_tls_cert_status(long x509_result, int verify);
/* Fills the TLS fields of a SECURITYINFO from a connected SSL. */
void  iw_tls_describe(SSL *ssl, int verify, SECURITYINFO *info);

/* Implemented by the core: the parameters of the connection a TLS layer belongs to. */
int   iw_core_tls_params(void *core, iw_tls_params *out);
/* The built-in TLS transport type (src/transports/tls.c). */
extern const imapwire_transport_type iw_transport_tls;

#endif /* IW_TLS_POLICY_H */
