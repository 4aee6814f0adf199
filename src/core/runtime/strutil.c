/* strutil.c: the few string helpers the library needs, with explicit sizes, and the
 * wiping of secrets. Kept separate so bounded copies are written once and tested once. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "runtime.h"

void iw_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void iw_free_secret(char *s)
{
    if (s != NULL) {
        iw_wipe(s, strlen(s));
        free(s);
    }
}

char *iw_strdup(const char *s)
{
    size_t n;
    char *d;
    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Case-insensitive match of a counted token against a NUL-terminated word. */
int iw_strcaseeq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t iw_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size > 0) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

/* ---- a growable byte string for building commands; errors stick until checked ---- */

int iw_sb_add(iw_sb *sb, const void *p, size_t n)
{
    if (sb->err)
        return sb->err;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 128;
        char *b;
        while (cap < sb->len + n + 1)
            cap *= 2;
        b = malloc(cap);
        if (b == NULL)
            return sb->err = ST_ERROR_OUT_OF_MEMORY;
        if (sb->p != NULL) {
            memcpy(b, sb->p, sb->len);
            iw_wipe(sb->p, sb->cap);   /* it may hold a password */
            free(sb->p);
        }
        sb->p = b;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, p, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
    return 0;
}

int iw_sb_str(iw_sb *sb, const char *s)
{
    return iw_sb_add(sb, s, strlen(s));
}

void iw_sb_free(iw_sb *sb)
{
    if (sb->p != NULL) {
        iw_wipe(sb->p, sb->cap);
        free(sb->p);
    }
    memset(sb, 0, sizeof *sb);
}

/* A quoted string can carry any byte but NUL, CR, LF and 8-bit ones (RFC 3501). */
int iw_quotable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n' || c >= 0x80)
            return 0;
    }
    return 1;
}

int iw_sb_quoted(iw_sb *sb, const char *s)
{
    iw_sb_add(sb, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            iw_sb_add(sb, "\\", 1);
        iw_sb_add(sb, s, 1);
    }
    return iw_sb_add(sb, "\"", 1);
}
