/* capa.c: the server's capability list: stored from CAPABILITY responses and
 * [CAPABILITY ...] codes, queried case-insensitively, bounded in size. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client.h"

/* Stores the tokens of p[0..n) separated by single spaces. */
int iw_capa_set(iw_client *c, const char *p, size_t n)
{
    char *s;
    size_t i, o = 0;

    if (n > IW_MAX_CAPA)
        return ST_ERROR_RESPONSE_TOO_LARGE;
    s = malloc(n + 1);
    if (s == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == ' ' || ch == '\t') {
            if (o > 0 && s[o - 1] != ' ')
                s[o++] = ' ';
        } else if (ch >= 0x21 && ch < 0x7f) {
            s[o++] = (char)ch;
        } else {
            free(s);
            return ST_ERROR_INVALID_RESPONSE;
        }
    }
    if (o > 0 && s[o - 1] == ' ')
        o--;
    s[o] = '\0';
    free(c->capa);
    c->capa = s;
    c->capa_gen++;
    return 0;
}

int iw_capa_refresh(iw_client *c, unsigned gen)
{
    iw_cmd cmd;
    int rc;
    if (c->capa_gen != gen)
        return 0;
    memset(&cmd, 0, sizeof cmd);
    rc = iw_cmd_start(c, &cmd, "CAPABILITY", 10, NULL, 0, 0, NULL);
    if (rc == 0)
        rc = iw_run_command(c, &cmd);
    /* a server that will not say keeps the list it gave before */
    iw_cmd_clear(&cmd);
    return rc;
}

int iw_capa_has(const iw_client *c, const char *name)
{
    const char *p = c->capa;
    size_t n = strlen(name);

    if (p == NULL || n == 0)
        return 0;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        if (len == n && strncasecmp(p, name, n) == 0)
            return 1;
        if (sp == NULL)
            break;
        p = sp + 1;
    }
    return 0;
}

/* rest is a status response after its tag: "OK [CAPABILITY a b] text". */
int iw_capa_from_code(iw_client *c, const char *p, size_t n)
{
    const char *sp, *close;
    size_t off;

    sp = memchr(p, ' ', n);
    if (sp == NULL)
        return 0;
    off = (size_t)(sp - p) + 1;
    if (off + 12 > n || p[off] != '[' || !iw_strcaseeq(p + off + 1, 11, "CAPABILITY "))
        return 0;
    off += 12;
    close = memchr(p + off, ']', n - off);
    if (close == NULL)
        return ST_ERROR_INVALID_RESPONSE;
    return iw_capa_set(c, p + off, (size_t)(close - (p + off)));
}
