/* sasl_text.c: the text encodings SASL mechanisms share: base64 out, strict base64 in
 * for server bytes, and GS2 saslname escaping (RFC 5801). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"
#include "sasl_text.h"

int iw_base64(const unsigned char *in, size_t n, iw_sb *out)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    unsigned char *b;
    int len;

    if (n > 65536)
        return ST_ERROR_INVALID_PARAMETER;
    b = malloc(need);
    if (b == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    len = EVP_EncodeBlock(b, in, (int)n);
    iw_sb_add(out, b, (size_t)len);
    iw_wipe(b, need);
    free(b);
    return out->err;
}

/* A GS2 saslname (RFC 5801 section 4): ',' and '=' are escaped, so a user name cannot
 * end the authzid field early and add fields of its own. */
void iw_add_saslname(iw_sb *sb, const char *s)
{
    for (; *s; s++) {
        if (*s == ',')
            iw_sb_str(sb, "=2C");
        else if (*s == '=')
            iw_sb_str(sb, "=3D");
        else
            iw_sb_add(sb, s, 1);
    }
}

/* Strict base64 of server bytes: the RFC 4648 alphabet, '=' only as final padding, a
 * length that is a multiple of 4, at most max decoded bytes. EVP_DecodeBlock alone would
 * skip surrounding whitespace and count padding as zero bytes. *out is malloc'd (one
 * spare byte, never read by the parsers, which go by *outlen). */
int iw_unbase64(const char *in, size_t n, size_t max, unsigned char **out,
                       size_t *outlen)
{
    size_t i, pad = 0, full;
    unsigned char *b;

    *out = NULL;
    *outlen = 0;
    if (n == 0 || n % 4 != 0 || n > IW_SCRAM_MAX_MSG)
        return ST_ERROR_INVALID_RESPONSE;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    for (i = 0; i < n - pad; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return ST_ERROR_INVALID_RESPONSE;
    }
    full = n / 4 * 3;
    if (full - pad == 0 || full - pad > max)
        return ST_ERROR_INVALID_RESPONSE;
    b = malloc(full + 1);
    if (b == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    if (EVP_DecodeBlock(b, (const unsigned char *)in, (int)n) != (int)full) {
        free(b);
        return ST_ERROR_INVALID_RESPONSE;
    }
    b[full - pad] = '\0';
    *out = b;
    *outlen = full - pad;
    return 0;
}
