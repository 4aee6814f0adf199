/* url.c: imap:// and imaps:// URLs (RFC 5092 shape) for the imapwire command:
 * [user@]host[:port][/MAILBOX[;UID=n]], with %-escapes decoded in user and mailbox. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes n bytes of s into out; a NUL byte or a bad escape is refused because both
 * would silently change what reaches the server. */
static int decode(const char *s, size_t n, char *out, size_t size)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (k + 1 >= size)
            return -1;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

static int fail(char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return -1;
}

int cli_url_parse(const char *text, struct cli_url *u, char *why, size_t why_size)
{
    const char *p, *end, *at, *slash, *hp_end, *colon;
    size_t hlen;

    memset(u, 0, sizeof *u);
    if (strncmp(text, "imaps://", 8) == 0) {
        u->imaps = 1;
        p = text + 8;
    } else if (strncmp(text, "imap://", 7) == 0) {
        p = text + 7;
    } else if (strstr(text, "://") != NULL) {
        return fail(why, why_size, "only imap:// and imaps:// URLs are understood");
    } else {
        p = text;              /* a bare host[:port] reads as imap:// */
    }
    end = p + strlen(p);
    slash = strchr(p, '/');
    hp_end = slash ? slash : end;
    at = NULL;
    for (const char *q = p; q < hp_end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        if (at == p || decode(p, (size_t)(at - p), u->user, sizeof u->user) != 0)
            return fail(why, why_size, "the user name before '@' is empty or badly escaped");
        if (memchr(p, ':', (size_t)(at - p)) != NULL)
            return fail(why, why_size,
                        "a password does not belong in the URL (it would show in ps); "
                        "use the prompt, --password-file or IMAPWIRE_PASSWORD");
        p = at + 1;
    }
    if (p < hp_end && *p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hp_end - p));
        if (rb == NULL)
            return fail(why, why_size, "an IPv6 address needs its closing ']'");
        hlen = (size_t)(rb - p - 1);
        if (hlen == 0 || hlen >= sizeof u->host)
            return fail(why, why_size, "the host is empty or too long");
        memcpy(u->host, p + 1, hlen);
        colon = rb + 1 < hp_end && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 < hp_end && colon == NULL)
            return fail(why, why_size, "unexpected text after the IPv6 address");
    } else {
        colon = memchr(p, ':', (size_t)(hp_end - p));
        hlen = (size_t)((colon ? colon : hp_end) - p);
        if (hlen == 0 || hlen >= sizeof u->host)
            return fail(why, why_size, "the URL names no host");
        memcpy(u->host, p, hlen);
    }
    for (size_t i = 0; u->host[i]; i++)
        if (!(isalnum((unsigned char)u->host[i]) || strchr("-._:", u->host[i])))
            return fail(why, why_size, "the host holds a character no host name has");
    if (colon != NULL) {
        char *e;
        unsigned long v;
        if (colon + 1 == hp_end)
            return fail(why, why_size, "a ':' with no port after it");
        v = strtoul(colon + 1, &e, 10);
        if (e != hp_end || v == 0 || v > 65535)
            return fail(why, why_size, "the port must be a number from 1 to 65535");
        u->port = (unsigned)v;
    }
    if (slash != NULL && slash + 1 < end) {
        const char *semi = strstr(slash + 1, ";UID=");
        const char *mend = semi ? semi : end;
        if (semi == NULL)
            semi = strstr(slash + 1, ";uid=");
        if (semi != NULL) {
            char *e;
            unsigned long v;
            mend = semi;
            v = strtoul(semi + 5, &e, 10);
            if (*e != '\0' || v == 0 || v > 0xffffffffUL)
                return fail(why, why_size, ";UID= needs a number from 1 to 4294967295");
            u->uid = (unsigned)v;
        }
        if (mend > slash + 1 &&
            decode(slash + 1, (size_t)(mend - slash - 1), u->mailbox, sizeof u->mailbox) != 0)
            return fail(why, why_size, "the mailbox name is badly escaped or too long");
        for (size_t i = 0; u->mailbox[i]; i++)
            if ((unsigned char)u->mailbox[i] < 0x20 || u->mailbox[i] == '"' ||
                u->mailbox[i] == '\\')
                return fail(why, why_size, "the mailbox name holds a control byte, '\"' or '\\'");
    }
    return 0;
}
