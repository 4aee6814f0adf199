/* mutf7.c: mailbox names from UTF-8 to IMAP's modified UTF-7 (RFC 3501 5.1.3), so a
 * caller passes names as text and the server sees them as the protocol spells them. */
#include <openssl/evp.h>
#include <string.h>
#include "client.h"

/* One code point from UTF-8 at s[*i], shortest form only; -1 if the bytes are not UTF-8. */
static long iw_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    long cp;
    size_t len, k;
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return -1;
    }
    if (len > n - *i)
        return -1;
    for (k = 1; k < len; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3f);
    }
    /* overlong forms, surrogates and values past Unicode are not text */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += len;
    return cp;
}

/* The UTF-16BE bytes of a run of non-printable code points as "&<modified base64>-". */
static int iw_mutf7_run(iw_sb *out, const unsigned char *u16, size_t n)
{
    unsigned char b64[4 * ((IW_MUTF7_RUN * 2 + 2) / 3) + 1];
    int len, k;
    if (n > IW_MUTF7_RUN * 2)
        return ST_ERROR_INVALID_PARAMETER;
    len = EVP_EncodeBlock(b64, u16, (int)n);
    /* modified base64: ',' for '/', and no padding */
    while (len > 0 && b64[len - 1] == '=')
        len--;
    for (k = 0; k < len; k++)
        if (b64[k] == '/')
            b64[k] = ',';
    iw_sb_add(out, "&", 1);
    iw_sb_add(out, b64, (size_t)len);
    return iw_sb_add(out, "-", 1);
}

int iw_mutf7_encode(const char *utf8, iw_sb *out)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t n = strlen(utf8), i = 0, m = 0;
    unsigned char u16[IW_MUTF7_RUN * 2];
    int rc = 0;

    while (i < n && rc == 0) {
        long cp = iw_utf8_next(s, n, &i);
        if (cp < 0)
            return ST_ERROR_INVALID_PARAMETER;
        if (cp >= 0x20 && cp <= 0x7e) {
            if (m > 0) {
                rc = iw_mutf7_run(out, u16, m);
                m = 0;
            }
            iw_sb_add(out, cp == '&' ? "&-" : (const char *)&s[i - 1], cp == '&' ? 2 : 1);
            continue;
        }
        /* a run longer than the buffer is closed and a new one opened: still valid */
        if (m + 4 > sizeof u16) {
            rc = iw_mutf7_run(out, u16, m);
            m = 0;
        }
        if (cp >= 0x10000) {
            long v = cp - 0x10000;
            long hi = 0xd800 + (v >> 10), lo = 0xdc00 + (v & 0x3ff);
            u16[m++] = (unsigned char)(hi >> 8);
            u16[m++] = (unsigned char)hi;
            u16[m++] = (unsigned char)(lo >> 8);
            u16[m++] = (unsigned char)lo;
        } else {
            u16[m++] = (unsigned char)(cp >> 8);
            u16[m++] = (unsigned char)cp;
        }
    }
    if (rc == 0 && m > 0)
        rc = iw_mutf7_run(out, u16, m);
    return rc ? rc : out->err;
}
