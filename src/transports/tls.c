/* tls.c: the TLS layer. OpenSSL runs over whatever layer is below through a custom BIO
 * that calls that layer (never a socket), so TLS works over TCP, SSH and plugins alike. */
/* Built from the SDK alone (trust decisions come in imapwire_tls_params), so the same
 * source also builds as a plugin; tests/sdk/tls_plugin.c proves it. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "tls.h"

enum { TLS_LOWER, TLS_HANDSHAKE, TLS_UP, TLS_CLOSED };

struct tls_layer {
    int            state;
    SSL           *ssl;
    const imapwire_tls_params *params;   /* the core's policy for this connect */
    unsigned       below_wants;    /* what the BIO last waited for: IMAPWIRE_WANT_* */
    int            below_error;    /* an ST_ERROR_* from the layer below, if any */
};

/* Made on first use and kept for the process; a failure is retried next time rather
 * than remembered, so one failed allocation does not end TLS for good. */
static BIO_METHOD *tls_bio_method;
static pthread_mutex_t tls_bio_lock = PTHREAD_MUTEX_INITIALIZER;

/* The BIO's data pointer is the layer; reads and writes go to the layer below. */
static int tls_bio_write(BIO *b, const char *buf, int len)
{
    imapwire_layer *l = BIO_get_data(b);
    struct tls_layer *t = l->ctx;
    size_t sent = 0;
    int rc;

    BIO_clear_retry_flags(b);
    rc = l->host->send_next(l, buf, (size_t)len, &sent);
    if (rc == IMAPWIRE_AGAIN) {
        t->below_wants |= IMAPWIRE_WANT_WRITE;
        BIO_set_retry_write(b);
        return -1;
    }
    if (rc != IMAPWIRE_OK) {
        t->below_error = rc;
        return -1;
    }
    return (int)sent;
}

static int tls_bio_read(BIO *b, char *buf, int len)
{
    imapwire_layer *l = BIO_get_data(b);
    struct tls_layer *t = l->ctx;
    size_t got = 0;
    int rc;

    BIO_clear_retry_flags(b);
    rc = l->host->recv_next(l, buf, (size_t)len, &got);
    if (rc == IMAPWIRE_AGAIN) {
        t->below_wants |= IMAPWIRE_WANT_READ;
        BIO_set_retry_read(b);
        return -1;
    }
    if (rc != IMAPWIRE_OK) {
        t->below_error = rc;
        return -1;
    }
    if (got == 0)
        t->below_error = ST_ERROR_CONNECTION_CLOSED;
    return (int)got;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Writes go straight down, so there is never anything to flush. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_bio_write(BIO *b, const char *buf, int len);
static int tls_bio_read(BIO *b, char *buf, int len);
static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr);

static BIO_METHOD *tls_bio_get(void)
{
    BIO_METHOD *m;
    pthread_mutex_lock(&tls_bio_lock);
    if (tls_bio_method == NULL) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "imapwire-layer");
        if (m != NULL && BIO_meth_set_write(m, tls_bio_write) == 1 &&
            BIO_meth_set_read(m, tls_bio_read) == 1 && BIO_meth_set_ctrl(m, tls_bio_ctrl) == 1)
            tls_bio_method = m;
        else
            BIO_meth_free(m);
    }
    m = tls_bio_method;
    pthread_mutex_unlock(&tls_bio_lock);
    return m;
}

/* When the code goes (exit, or a tls plugin unloaded at the last ImapUninitialize), the
 * method goes with it: no layer can be left to use it by then. */
__attribute__((destructor)) static void tls_bio_free(void)
{
    BIO_meth_free(tls_bio_method);
    tls_bio_method = NULL;
}

/* Whether a reason says only that something inside this process failed (a call into
 * another part of OpenSSL, an initialisation, an "internal error"), not what was wrong
 * with the data: OpenSSL 3.0 reports most failed allocations of a handshake that way. */
static int tls_reason_generic(unsigned long e)
{
    int r = ERR_GET_REASON(e);
    int base = r & ~(int)(ERR_RFLAG_COMMON | ERR_RFLAG_FATAL);
    if ((r & ERR_RFLAG_COMMON) != 0)
        return base < 256 || r == ERR_R_INTERNAL_ERROR || r == ERR_R_INIT_FAIL ||
               r == ERR_R_FETCH_FAILED || r == ERR_R_OPERATION_FAIL;
    return (ERR_GET_LIB(e) == ERR_LIB_EVP &&
            (r == EVP_R_INITIALIZATION_ERROR || r == EVP_R_NOT_ABLE_TO_COPY_CTX)) ||
           (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            (r == SSL_R_MISSING_FATAL || r == SSL_R_COPY_PARAMETERS_FAILED));
}

/* Whether an OpenSSL call that failed did so for want of memory; empties OpenSSL's error
 * queue. Told "handshake failed" or "untrusted certificate", a user would go after the
 * wrong problem. It did when malloc's ENOMEM is still in errno (the caller zeroed errno
 * before the call; OpenSSL clears it when it sends an alert), when OpenSSL says so, or
 * when every reason in the queue is a local, generic one: a peer's bad data or alert
 * always comes with a specific reason. */
static int tls_drain_oom(int errno_after)
{
    unsigned long e;
    int oom = errno_after == ENOMEM, generic = 0, specific = 0;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_SYSTEM_ERROR(e) ? ERR_GET_REASON(e) == ENOMEM
                                : ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            oom = 1;
        else if (!ERR_SYSTEM_ERROR(e) && tls_reason_generic(e))
            generic = 1;
        else
            specific = 1;
    }
    return oom || (generic && !specific);
}

static int tls_create(imapwire_layer *l, const char *args)
{
    struct tls_layer *t = l->ctx;
    const imapwire_tls_params *p = l->params;
    BIO_METHOD *method;
    BIO *bio;
    SSL_SESSION *sess;
    X509_VERIFY_PARAM *vp;
    unsigned char ip[16];
    int is_ip;

    (void)args;
    /* Without the core's policy there is nothing to verify against: refuse. */
    if (p == NULL || p->struct_size < sizeof *p || p->ssl_ctx == NULL || p->server_name == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    t->params = p;
    method = tls_bio_get();
    if (method == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    t->ssl = SSL_new(p->ssl_ctx);
    if (t->ssl == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    bio = BIO_new(method);
    if (bio == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    BIO_set_data(bio, l);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio);
    p->session_attach(p->policy, t->ssl);

    is_ip = inet_pton(AF_INET, p->server_name, ip) == 1 ||
            inet_pton(AF_INET6, p->server_name, ip) == 1;
    errno = 0;
    /* both copy the name: a failure is a bad name or a failed allocation */
    if (!is_ip && SSL_set_tlsext_host_name(t->ssl, p->server_name) != 1)
        return tls_drain_oom(errno) ? ST_ERROR_OUT_OF_MEMORY : ST_ERROR_INVALID_PARAMETER;
    if (p->verify) {
        vp = SSL_get0_param(t->ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, p->server_name)
                   : X509_VERIFY_PARAM_set1_host(vp, p->server_name, 0)) != 1)
            return tls_drain_oom(errno) ? ST_ERROR_OUT_OF_MEMORY : ST_ERROR_INVALID_PARAMETER;
    } else {
        SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    }
    sess = p->session_get(p->policy);
    if (sess != NULL) {
        SSL_set_session(t->ssl, sess);
        SSL_SESSION_free(sess);
    }
    t->state = TLS_LOWER;
    return 0;
}

static void tls_destroy(imapwire_layer *l)
{
    struct tls_layer *t = l->ctx;
    if (t->ssl != NULL)
        SSL_free(t->ssl);
    ERR_clear_error();
}

/* A failed handshake may be this process's TLS library, not the server: the core checks
 * (params of ABI 1.2 on), and the trace says which it was. */
static int tls_library_check(imapwire_layer *l, int error)
{
    struct tls_layer *t = l->ctx;
    const imapwire_tls_params *p = t->params;
    if (p->struct_size >= offsetof(imapwire_tls_params, handshake_error) +
                              sizeof p->handshake_error && p->handshake_error != NULL)
        error = p->handshake_error(p->policy, error);
    if (error == ST_ERROR_TLS_LIBRARY)
        l->host->trace(l, "tls: the TLS library is unusable in this process since an earlier "
                          "failure inside it (memory ran out); the server is not at fault: "
                          "restart the process");
    return error;
}

/* The one place an OpenSSL result becomes our answer: AGAIN with the wait recorded,
 * or the most specific error known. */
static int tls_result(imapwire_layer *l, int ret, int handshake)
{
    struct tls_layer *t = l->ctx;
    int errno_after = errno;           /* the caller zeroed it before the OpenSSL call */
    int err = SSL_get_error(t->ssl, ret);
    long vr;

    switch (err) {
    case SSL_ERROR_WANT_READ:
        t->below_wants |= IMAPWIRE_WANT_READ;
        return IMAPWIRE_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->below_wants |= IMAPWIRE_WANT_WRITE;
        return IMAPWIRE_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        t->state = TLS_CLOSED;
        return ST_ERROR_CONNECTION_CLOSED;
    default:
        break;
    }
    if (tls_drain_oom(errno_after))
        return ST_ERROR_OUT_OF_MEMORY;
    if (handshake && t->params->verify && (vr = SSL_get_verify_result(t->ssl)) != X509_V_OK)
        return tls_library_check(l, t->params->verify_error(t->params->policy, vr));
    if (t->below_error != 0 && (!handshake || t->below_error != ST_ERROR_CONNECTION_CLOSED))
        return t->below_error;
    if (!handshake)
        return ST_ERROR_CONNECTION_CLOSED;
    return tls_library_check(l, ST_ERROR_TLS_HANDSHAKE);
}

static int tls_connect(imapwire_layer *l, int *done)
{
    struct tls_layer *t = l->ctx;
    int rc, ret;

    *done = 0;
    if (t->state == TLS_LOWER) {
        rc = l->host->connect_next(l, done);
        if (rc != 0 || !*done)
            return rc;
        *done = 0;
        t->state = TLS_HANDSHAKE;
    }
    if (t->state == TLS_UP) {
        *done = 1;
        return 0;
    }
    t->below_wants = 0;
    errno = 0;
    ret = SSL_connect(t->ssl);
    if (ret == 1) {
        /* A resumed handshake verifies nothing: the result is the one stored with the
         * session. Check it every time, so no path through the cache skips the check. */
        if (t->params->verify) {
            long vr = SSL_get_verify_result(t->ssl);
            X509 *peer = SSL_get0_peer_certificate(t->ssl);
            if (vr != X509_V_OK || peer == NULL) {
                l->host->trace(l, "tls: the server certificate failed verification%s",
                               SSL_session_reused(t->ssl) ? " (resumed session refused)" : "");
                return tls_library_check(l, t->params->verify_error(t->params->policy,
                                         vr == X509_V_OK ? X509_V_ERR_UNSPECIFIED : vr));
            }
        }
        t->state = TLS_UP;
        *done = 1;
        l->host->trace(l, "tls: %s %s%s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
                       SSL_session_reused(t->ssl) ? " (resumed)" : "");
        return 0;
    }
    rc = tls_result(l, ret, 1);
    return rc == IMAPWIRE_AGAIN ? 0 : rc;
}

static int tls_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct tls_layer *t = l->ctx;
    int ret;
    if (t->state != TLS_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    t->below_wants = 0;
    errno = 0;
    ret = SSL_write_ex(t->ssl, buf, len, sent);
    return ret == 1 ? IMAPWIRE_OK : tls_result(l, ret, 0);
}

static int tls_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct tls_layer *t = l->ctx;
    int ret, rc;
    if (t->state == TLS_CLOSED) {
        *got = 0;
        return IMAPWIRE_OK;
    }
    if (t->state != TLS_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    t->below_wants = 0;
    errno = 0;
    ret = SSL_read_ex(t->ssl, buf, len, got);
    if (ret == 1)
        return IMAPWIRE_OK;
    rc = tls_result(l, ret, 0);
    if (rc == ST_ERROR_CONNECTION_CLOSED && t->state == TLS_CLOSED) {
        *got = 0;                  /* close_notify: an orderly end of stream */
        return IMAPWIRE_OK;
    }
    return rc;
}

/* TLS may need to write to read (and read to write): wait for what OpenSSL asked of the
 * layer below, not only what the caller above wants. */
static void tls_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct tls_layer *t = l->ctx;
    unsigned below = t->below_wants ? t->below_wants : want;
    if (t->state == TLS_LOWER)
        below = want;
    l->host->pollset_next(l, below ? below : IMAPWIRE_WANT_READ, ps);
}

static size_t tls_pending(imapwire_layer *l)
{
    struct tls_layer *t = l->ctx;
    size_t n = t->ssl && t->state == TLS_UP ? (size_t)SSL_pending(t->ssl) : 0;
    return n + l->host->pending_next(l);
}

static int tls_shutdown(imapwire_layer *l, int *done)
{
    struct tls_layer *t = l->ctx;
    *done = 1;
    /* One close_notify, no wait for the peer's: the connection is going away. */
    if (t->state == TLS_UP)
        SSL_shutdown(t->ssl);
    t->state = TLS_CLOSED;
    ERR_clear_error();
    return l->host->shutdown_next(l, done);
}

static int tls_query(imapwire_layer *l, int what, void *out)
{
    struct tls_layer *t = l->ctx;
    /* OpenSSL keeps its 16 KB read buffer after the handshake's last records, whatever
     * SSL_MODE_RELEASE_BUFFERS says: an idle IMAPS connection held 39 KB, 17 of them
     * this. It comes back with the next record. */
    if (what == IMAPWIRE_QUERY_REST && t->state == TLS_UP && !SSL_has_pending(t->ssl))
        SSL_free_buffers(t->ssl);
    if (what == IMAPWIRE_QUERY_SECURITY && t->state == TLS_UP) {
        /* the layers below (an SSH hop) add their own fields */
        l->host->query_next(l, what, out);
        t->params->describe(t->params->policy, t->ssl, t->params->verify, out);
        return IMAPWIRE_OK;
    }
    return l->host->query_next(l, what, out);
}

const imapwire_transport_type iw_transport_tls = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "tls",
    .flags = IMAPWIRE_TRANSPORT_ENCRYPTED,
    .ctx_size = sizeof(struct tls_layer),
    .create = tls_create,
    .destroy = tls_destroy,
    .connect = tls_connect,
    .shutdown = tls_shutdown,
    .send = tls_send,
    .recv = tls_recv,
    .pollset = tls_pollset,
    .pending = tls_pending,
    .query = tls_query,
};
