/* tls_verify.c: what a server certificate check means for the caller: the distinct
 * errors and statuses of API.md, and the description ImapGetSecurityInformation gives. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/x509v3.h>
#include "tls_policy.h"

int iw_tls_verify_error(long r)
{
    switch (r) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
        return ST_ERROR_CERTIFICATE_NAME_MISMATCH;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return ST_ERROR_CERTIFICATE_EXPIRED;
    case X509_V_ERR_OUT_OF_MEM:
        /* the check could not be made: nothing is known about the certificate */
        return ST_ERROR_OUT_OF_MEMORY;
    default:
        /* Self-signed, unknown issuer, bad signature, wrong purpose: not trusted. */
        return ST_ERROR_CERTIFICATE_UNTRUSTED;
    }
}

DWORD iw_tls_cert_status(long r, int verify)
{
    if (!verify)
        return CERTIFICATE_STATUS_NOT_CHECKED;
    if (r == X509_V_OK)
        return CERTIFICATE_STATUS_VALID;
    switch (iw_tls_verify_error(r)) {
    case ST_ERROR_CERTIFICATE_NAME_MISMATCH: return CERTIFICATE_STATUS_NAME_MISMATCH;
    case ST_ERROR_CERTIFICATE_EXPIRED:       return CERTIFICATE_STATUS_EXPIRED;
    default:                                 return CERTIFICATE_STATUS_UNTRUSTED;
    }
}

static void iw_name_text(X509_NAME *name, char *out, size_t size)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;
    out[0] = '\0';
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(b, out, (int)size - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

static void iw_time_text(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;
    out[0] = '\0';
    if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void iw_tls_describe(SSL *ssl, int verify, SECURITYINFO *info)
{
    X509 *cert;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    size_t pos = 0;

    info->dwProtocol = SSL_version(ssl) == TLS1_3_VERSION ? SECURITY_PROTOCOL_TLS13
                                                           : SECURITY_PROTOCOL_TLS12;
    info->dwCertificateStatus = iw_tls_cert_status(SSL_get_verify_result(ssl), verify);
    info->bSessionResumed = SSL_session_reused(ssl) ? 1 : 0;
    iw_strlcpy(info->szCipher, SSL_get_cipher_name(ssl), sizeof info->szCipher);
    cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL)
        return;
    iw_name_text(X509_get_subject_name(cert), info->szSubject, sizeof info->szSubject);
    iw_name_text(X509_get_issuer_name(cert), info->szIssuer, sizeof info->szIssuer);
    iw_time_text(X509_get0_notBefore(cert), info->szValidFrom, sizeof info->szValidFrom);
    iw_time_text(X509_get0_notAfter(cert), info->szValidTo, sizeof info->szValidTo);
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1) {
        for (i = 0; i < mdlen && pos + 3 < sizeof info->szFingerprint; i++)
            pos += (size_t)snprintf(info->szFingerprint + pos, sizeof info->szFingerprint - pos,
                                    i ? ":%02X" : "%02X", md[i]);
    }
    X509_free(cert);
}
