/* tls_policy.h: the security module's TLS side: cached SSL_CTX objects keyed by what
 * shapes them, session resumption, certificate checks and the errors they map to. */
#ifndef IW_TLS_POLICY_H
#define IW_TLS_POLICY_H

#include <openssl/ssl.h>
#include "creds.h"

typedef struct iw_tls_ctx iw_tls_ctx;

/* A context for these credentials, built once and shared: 0, or an ST_ERROR_* with
 * no network traffic (bad CA file, unusable client key, wrong passphrase). */
int  iw_tls_ctx_acquire(const struct iw_creds *creds, iw_tls_ctx **out);
void iw_tls_ctx_release(iw_tls_ctx *t);
iw_tls_ctx *iw_tls_ctx_ref(iw_tls_ctx *t);
/* Takes t out of the cache (the next connect builds a new one); users keep their refs. */
void iw_tls_ctx_forget(iw_tls_ctx *t);
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

/* ---- tls_warmup.c: OpenSSL's once-only set-up, done by ImapInitialize ---- */
/* Loads OpenSSL's configuration, random generators and every algorithm a connect can
 * use, and runs TLS 1.3 and 1.2 handshakes in memory; once per process after it first
 * succeeds. 0, or ST_ERROR_OUT_OF_MEMORY (the only way it fails). */
int  iw_tls_warmup(void);
/* Whether TLS still works in this process (the same in-memory handshakes): asked when a
 * real handshake fails in a way a broken TLS library could explain. 1 it works, 0 it is
 * broken, -1 it could not tell (memory ran out meanwhile). */
int  iw_tls_selftest(void);
/* The error to report for error (a failed handshake or verification, or a context that
 * could not be built): ST_ERROR_TLS_LIBRARY when the self-test says TLS is broken,
 * ST_ERROR_OUT_OF_MEMORY when it ran out of memory, else error. */
int  iw_tls_library_check(int error);

/* ---- tls_use.c: one connect's TLS, as the parameters of its tls layer ---- */
typedef struct iw_tls_use iw_tls_use;
/* Everything settled before a byte is sent: the shared context (a bad CA file or client
 * key fails here), the name to verify (name_len bytes of name) and the resumption key. */
int  iw_tls_use_new(const struct iw_creds *creds, const char *host, unsigned port,
                    const char *name, size_t name_len, int verify, iw_tls_use **out);
/* What the tls layer is created with; valid until iw_tls_use_free. */
const imapwire_tls_params *iw_tls_use_params(const iw_tls_use *u);
void iw_tls_use_free(iw_tls_use *u);                 /* after the layer is gone */

#endif /* IW_TLS_POLICY_H */
