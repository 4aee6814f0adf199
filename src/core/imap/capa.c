/* capa.c: the server's capability list: stored from CAPABILITY responses and
 * [CAPABILITY ...] codes, queried case-insensitively, bounded in size. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client.h"
#include "tokenizer.h"

/* The capability atoms from t up to the end (or, in a response code, its "]"), stored
 * separated by single spaces. A code cut short with nothing in it is no code. */
static int iw_capa_collect(iw_client *c, iw_tokenizer *t, int in_code)
{
    iw_sb sb = {0};
    iw_tok k;
    int rc;
    char *s;

    for (;;) {
        size_t i;
        rc = iw_tok_next(t, &k);
        if (rc != 0)
            break;
        if (k.type == IW_TOK_END) {
            rc = in_code && sb.len > 0 ? ST_ERROR_INVALID_RESPONSE : 0;
            if (in_code)
                goto out;
            break;
        }
        if (in_code && k.type == IW_TOK_RBRACKET)
            break;
        if (k.type != IW_TOK_ATOM && k.type != IW_TOK_NIL) {
            rc = ST_ERROR_INVALID_RESPONSE;
            break;
        }
        for (i = 0; i < k.n; i++)
            if ((unsigned char)k.p[i] >= 0x7f)
                rc = ST_ERROR_INVALID_RESPONSE;    /* capability names are ASCII */
        if (rc != 0)
            break;
        if (sb.len > 0)
            iw_sb_str(&sb, " ");
        iw_sb_add(&sb, k.p, k.n);
        if (sb.len > IW_MAX_CAPA) {
            rc = ST_ERROR_RESPONSE_TOO_LARGE;
            break;
        }
    }
    if (rc == 0)
        rc = sb.err;
    if (rc == 0) {
        s = malloc(sb.len + 1);
        if (s == NULL) {
            rc = ST_ERROR_OUT_OF_MEMORY;
        } else {
            if (sb.len > 0)
                memcpy(s, sb.p, sb.len);
            s[sb.len] = '\0';
            iw_capa_store(c, s);
        }
    }
out:
    iw_sb_free(&sb);
    return rc;
}

/* The new list (owned; NULL forgets it) in place of the old, which is freed: under capa_lock,
 * so a reader on another thread (ImapGetCapabilities) never holds a freed one. */
void iw_capa_store(iw_client *c, char *list)
{
    char *old;
    pthread_mutex_lock(&c->sess.capa_lock);
    old = c->sess.capa;
    c->sess.capa = list;
    if (list != NULL)
        c->sess.capa_gen++;        /* a new list; forgetting one (STARTTLS) is not */
    pthread_mutex_unlock(&c->sess.capa_lock);
    free(old);
}

int iw_capa_set(iw_client *c, const char *p, size_t n)
{
    iw_tokenizer t;
    if (n > IW_MAX_CAPA)
        return ST_ERROR_RESPONSE_TOO_LARGE;
    iw_tok_init_mem(&t, p, n);
    return iw_capa_collect(c, &t, 0);
}

int iw_capa_refresh(iw_client *c, unsigned gen)
{
    iw_cmd cmd;
    int rc;
    if (c->sess.capa_gen != gen)
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
    const char *p = c->sess.capa;
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

/* rest is a status response after its tag: "OK [CAPABILITY a b] text". Any other code,
 * or text the tokenizer cannot split before a code starts, carries no capabilities. */
int iw_capa_from_code(iw_client *c, const char *p, size_t n)
{
    iw_tokenizer t;
    iw_tok k;

    iw_tok_init_mem(&t, p, n);
    if (iw_tok_next(&t, &k) != 0 || k.type != IW_TOK_ATOM ||
        iw_tok_next(&t, &k) != 0 || k.type != IW_TOK_LBRACKET ||
        iw_tok_next(&t, &k) != 0 || !iw_tok_is(&k, "CAPABILITY"))
        return 0;
    return iw_capa_collect(c, &t, 1);
}

/* An untagged "CAPABILITY a b c" response: 1 when r is one (its list stored into c). */
int iw_capa_from_untagged(iw_client *c, const iw_response *r, int *rc)
{
    iw_tokenizer t;
    iw_tok k;

    iw_tok_init(&t, r);
    if (r->kind != IW_RESP_UNTAGGED || iw_tok_next(&t, &k) != 0 || !iw_tok_is(&k, "CAPABILITY"))
        return 0;
    if (r->rest_len - k.n > IW_MAX_CAPA + 1)
        *rc = ST_ERROR_RESPONSE_TOO_LARGE;
    else
        *rc = iw_capa_collect(c, &t, 0);
    return 1;
}
