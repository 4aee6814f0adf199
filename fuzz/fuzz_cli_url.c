/* fuzz_cli_url.c: libFuzzer target for the imapwire command's URL parser (src/cli/url.c):
 * any bytes in, and what it accepts must be a URL it would give back unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* %-escapes every byte the parser gives meaning to, so the re-written URL must parse to
 * the same parts; returns the length or -1 when out is too small. */
static int escape(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (k + 4 >= size)
            return -1;
        if (c == '%' || c == '@' || c == '/' || c == ':' || c == ';' || c == '?' || c <= 0x20 ||
            c >= 0x7f)
            k += (size_t)snprintf(out + k, size - k, "%%%02X", c);
        else
            out[k++] = (char)c;
    }
    out[k] = '\0';
    return (int)k;
}

static void check_parts(const struct cli_url *u)
{
    size_t i;
    if (u->host[0] == '\0' || u->port > 65535)
        abort();
    for (i = 0; u->mailbox[i] != '\0'; i++)
        if ((unsigned char)u->mailbox[i] < 0x20 || u->mailbox[i] == '"' || u->mailbox[i] == '\\')
            abort();
    if (memchr(u->user, ':', strlen(u->user)) != NULL && u->user[0] == '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cli_url u, again;
    char text[1024], user[800], box[1600], sect[400], query[3100], url[8192], why[256];
    int n;

    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    why[0] = '\0';
    if (cli_url_parse(text, &u, why, sizeof why) != 0) {
        if (why[0] == '\0')         /* a refusal always says why */
            abort();
        return 0;
    }
    check_parts(&u);

    /* the round trip: parts written back as a URL parse to the same parts */
    if (escape(u.user, user, sizeof user) < 0 || escape(u.mailbox, box, sizeof box) < 0 ||
        escape(u.section, sect, sizeof sect) < 0 || escape(u.query, query, sizeof query) < 0)
        return 0;
    n = snprintf(url, sizeof url, "%s://%s%s%s%s%s", u.imaps ? "imaps" : "imap", user,
                 u.user[0] ? "@" : "", strchr(u.host, ':') ? "[" : "", u.host,
                 strchr(u.host, ':') ? "]" : "");
    if (u.port != 0)
        n += snprintf(url + n, sizeof url - (size_t)n, ":%u", u.port);
    if (u.mailbox[0] != '\0' || u.uid != 0 || u.mailindex != 0 || u.query[0] != '\0')
        n += snprintf(url + n, sizeof url - (size_t)n, "/%s", box);
    if (u.uid != 0)
        n += snprintf(url + n, sizeof url - (size_t)n, ";UID=%u", u.uid);
    if (u.mailindex != 0)
        n += snprintf(url + n, sizeof url - (size_t)n, ";MAILINDEX=%u", u.mailindex);
    if (u.section[0] != '\0')
        n += snprintf(url + n, sizeof url - (size_t)n, ";SECTION=%s", sect);
    if (u.partial && u.partial_len != 0)
        n += snprintf(url + n, sizeof url - (size_t)n, ";PARTIAL=%lu.%lu", u.partial_off,
                      u.partial_len);
    else if (u.partial)
        n += snprintf(url + n, sizeof url - (size_t)n, ";PARTIAL=%lu", u.partial_off);
    if (u.query[0] != '\0')
        snprintf(url + n, sizeof url - (size_t)n, "?%s", query);
    if (cli_url_parse(url, &again, why, sizeof why) != 0) {
        fprintf(stderr, "accepted %s, refused its own rewrite %s: %s\n", text, url, why);
        abort();
    }
    if (again.imaps != u.imaps || again.port != u.port || again.uid != u.uid ||
        strcmp(again.user, u.user) != 0 || strcmp(again.host, u.host) != 0 ||
        strcmp(again.mailbox, u.mailbox) != 0 || again.mailindex != u.mailindex ||
        strcmp(again.section, u.section) != 0 || again.partial != u.partial ||
        again.partial_off != u.partial_off || again.partial_len != u.partial_len ||
        strcmp(again.query, u.query) != 0) {
        fprintf(stderr, "%s and its rewrite %s parse differently\n", text, url);
        abort();
    }
    return 0;
}
