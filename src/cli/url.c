/* url.c: imap:// and imaps:// URLs (RFC 5092 shape) for the imapwire command:
 * [user@]host[:port][/MAILBOX[;UID=n|;MAILINDEX=n][;SECTION=s][;PARTIAL=o.l]][?QUERY],
 * with %-escapes decoded in user, mailbox, section and query. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* n: a number from 1 to max. */
static int number(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    char buf[16], *e;
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!isdigit((unsigned char)buf[0]))
        return -1;
    *out = strtoul(buf, &e, 10);
    return *e == '\0' && *out >= 1 && *out <= max ? 0 : -1;
}

/* A value that goes into a command line: no byte that ends it or starts another. */
static int command_safe(const char *s, const char *also)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f ||
            !(isalnum((unsigned char)*s) || strchr(also, *s)))
            return 0;
    return 1;
}

/* ;KEY=VALUE, with the '/' RFC 5092 allows before the next ';'. */
static int parse_param(const char *p, const char *e, struct cli_url *u, char *why, size_t ws)
{
    const char *eq = memchr(p, '=', (size_t)(e - p));
    size_t klen;
    unsigned long v;

    if (e > p && e[-1] == '/')
        e--;
    if (eq == NULL)
        return fail(why, ws, "a ';' part needs KEY=VALUE (;UID=, ;MAILINDEX=, ;SECTION=, "
                    ";PARTIAL=)");
    klen = (size_t)(eq - p);
    eq++;
    if (klen == 3 && strncasecmp(p, "UID", 3) == 0) {
        if (number(eq, (size_t)(e - eq), 0xffffffffUL, &v) != 0)
            return fail(why, ws, ";UID= needs a number from 1 to 4294967295");
        u->uid = (unsigned)v;
    } else if (klen == 9 && strncasecmp(p, "MAILINDEX", 9) == 0) {
        if (number(eq, (size_t)(e - eq), 0xffffffffUL, &v) != 0)
            return fail(why, ws, ";MAILINDEX= needs a number from 1 to 4294967295");
        u->mailindex = (unsigned)v;
    } else if (klen == 11 && strncasecmp(p, "UIDVALIDITY", 11) == 0) {
        if (number(eq, (size_t)(e - eq), 0xffffffffUL, &v) != 0)
            return fail(why, ws, ";UIDVALIDITY= needs a number");
    } else if (klen == 7 && strncasecmp(p, "SECTION", 7) == 0) {
        if (decode(eq, (size_t)(e - eq), u->section, sizeof u->section) != 0 ||
            u->section[0] == '\0' || !command_safe(u->section, ". ()-"))
            return fail(why, ws, ";SECTION= needs a section such as 1.2, HEADER or TEXT");
    } else if (klen == 7 && strncasecmp(p, "PARTIAL", 7) == 0) {
        const char *dot = memchr(eq, '.', (size_t)(e - eq));
        unsigned long off;
        u->partial = 1;
        u->partial_len = 0;
        if ((eq < e && *eq == '0' && (dot ? dot : e) == eq + 1))
            off = 0;
        else if (number(eq, (size_t)((dot ? dot : e) - eq), 0xffffffffUL, &off) != 0)
            return fail(why, ws, ";PARTIAL= needs OFFSET or OFFSET.LENGTH");
        if (dot != NULL && number(dot + 1, (size_t)(e - dot - 1), 0xffffffffUL,
                                  &u->partial_len) != 0)
            return fail(why, ws, ";PARTIAL= needs OFFSET or OFFSET.LENGTH (LENGTH from 1)");
        u->partial_off = off;
    } else {
        return fail(why, ws, "unknown ';' part: use ;UID=, ;MAILINDEX=, ;SECTION= or ;PARTIAL=");
    }
    return 0;
}

/* MAILBOX[;PARAM=...]...[?QUERY] after the host's '/'. */
static int parse_path(const char *p, const char *end, struct cli_url *u, char *why, size_t ws)
{
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pend = q ? q : end, *semi = memchr(p, ';', (size_t)(pend - p));
    const char *mend = semi ? semi : pend;

    if (q != NULL && (decode(q + 1, (size_t)(end - q - 1), u->query, sizeof u->query) != 0 ||
                      !command_safe(u->query, " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")))
        return fail(why, ws, "the ?QUERY is badly escaped, too long or holds a control byte");
    if (mend > p && mend[-1] == '/')
        mend--;
    if (mend > p && decode(p, (size_t)(mend - p), u->mailbox, sizeof u->mailbox) != 0)
        return fail(why, ws, "the mailbox name is badly escaped or too long");
    for (size_t i = 0; u->mailbox[i]; i++)
        if ((unsigned char)u->mailbox[i] < 0x20 || u->mailbox[i] == '"' ||
            u->mailbox[i] == '\\')
            return fail(why, ws, "the mailbox name holds a control byte, '\"' or '\\'");
    while (semi != NULL) {
        const char *next = memchr(semi + 1, ';', (size_t)(pend - semi - 1));
        if (parse_param(semi + 1, next ? next : pend, u, why, ws) != 0)
            return -1;
        semi = next;
    }
    if (u->uid != 0 && u->mailindex != 0)
        return fail(why, ws, "name the message once: ;UID= or ;MAILINDEX=, not both");
    if ((u->section[0] || u->partial) && u->uid == 0 && u->mailindex == 0)
        return fail(why, ws, ";SECTION= and ;PARTIAL= need ;UID= or ;MAILINDEX=");
    if ((u->uid || u->mailindex) && u->query[0])
        return fail(why, ws, "a ?QUERY searches a mailbox: it does not go with ;UID=");
    return 0;
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
    if (slash != NULL && slash + 1 < end)
        return parse_path(slash + 1, end, u, why, why_size);
    return 0;
}
