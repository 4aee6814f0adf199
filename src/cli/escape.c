/* escape.c: server words and URLs made fit to show: bytes that could drive a terminal
 * (ESC, C1, broken UTF-8) written as \xNN, and the password of a URL hidden. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

/* The length of the UTF-8 sequence at s (at most n bytes) when it is well formed and
 * not a C1 control (U+0080..U+009F, which some terminals obey as ESC sequences); else 0. */
static size_t utf8_printable(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned char lo = 0x80, hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (s[0] == 0xc2)
        lo = 0xa0;                 /* C2 80..C2 9F: the C1 controls */
    else if (s[0] == 0xe0)
        lo = 0xa0;                 /* overlong */
    else if (s[0] == 0xed)
        hi = 0x9f;                 /* surrogates */
    else if (s[0] == 0xf0)
        lo = 0x90;                 /* overlong */
    else if (s[0] == 0xf4)
        hi = 0x8f;                 /* past U+10FFFF */
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* One unit of s made visible into out (at most 4 bytes, not terminated): printable ASCII
 * and well-formed UTF-8 as they are, any other byte as \xNN. The bytes of s consumed. */
static size_t visible_unit(const unsigned char *s, size_t n, char out[4], size_t *outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t u;

    if (s[0] >= 0x20 && s[0] < 0x7f) {
        out[0] = (char)s[0];
        *outlen = 1;
        return 1;
    }
    if ((u = utf8_printable(s, n)) != 0) {
        memcpy(out, s, u);
        *outlen = u;
        return u;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[s[0] >> 4];
    out[3] = hex[s[0] & 15];
    *outlen = 4;
    return 1;
}

/* Server words (a trace line, a capability, a certificate name) as text that cannot drive
 * a terminal: ESC, BEL, CR, the C1 controls and bytes that are not UTF-8 are shown as
 * \xNN. Into out (always terminated); cut short rather than overflow. */
void cli_visible(const char *s, size_t n, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t k = 0, used, len;
    char unit[4];

    if (size == 0)
        return;
    for (size_t i = 0; i < n; i += used) {
        used = visible_unit(p + i, n - i, unit, &len);
        if (k + len >= size)
            break;
        memcpy(out + k, unit, len);
        k += len;
    }
    out[k] = '\0';
}

/* Whether s (n bytes) is the start of a UTF-8 sequence that the next bytes may finish. */
static int utf8_cut(const unsigned char *s, size_t n)
{
    size_t want = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    if (s[0] < 0xc2 || s[0] > 0xf4 || n >= want)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return 1;
}

/* The same, written to f as it goes (trace lines and messages have no fixed bound). text:
 * a message for a person, where newline and tab stay, CR goes (it could overwrite a line
 * with another), and a UTF-8 sequence cut at the end is left for the next call. The bytes
 * of s consumed. */
size_t cli_put_visible(FILE *f, const char *s, size_t n, int text)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t used, len;
    char unit[4];

    for (size_t i = 0; i < n; i += used) {
        used = 1;
        if (text && (p[i] == '\n' || p[i] == '\t'))
            fputc(p[i], f);
        else if (text && p[i] == '\r')
            continue;
        else if (text && utf8_cut(p + i, n - i))
            return i;
        else {
            used = visible_unit(p + i, n - i, unit, &len);
            fwrite(unit, 1, len, f);
        }
    }
    return n;
}

/* A URL or transport string as it may be shown: the password of "scheme://user:pass@host"
 * or "name:user:pass@host:port" (socks5, httpconnect) becomes ***, so neither the report,
 * the JSON nor an error repeats it. The '@' is the last one, as the plugins read it (a
 * password may hold '@' or '/'); a command transport is a command line, not a URL. */
void cli_hide_password(const char *in, char *out, size_t size)
{
    const char *start = strstr(in, "://"), *at, *colon = NULL;

    if (start != NULL)
        start += 3;
    else
        start = (start = strchr(in, ':')) != NULL ? start + 1 : in;
    at = strncmp(in, "command:", 8) == 0 ? NULL : strrchr(start, '@');
    if (at != NULL)
        colon = memchr(start, ':', (size_t)(at - start));
    if (colon != NULL)
        snprintf(out, size, "%.*s***%s", (int)(colon + 1 - in), in, at);
    else
        snprintf(out, size, "%s", in);
}
