/* fuzz_tokenizer.c: the tokenizer of server bytes, and the parsers built on it (status,
 * response codes, SELECT data), over one response in an exact-size heap copy. */
/* Any token outside the input, or a walk that does not end, aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/session.h"
#include "imap/tokenizer.h"

static void walk(iw_tokenizer *t, const char *d, size_t n)
{
    iw_tok k;
    size_t turns = 0;
    while (iw_tok_next(t, &k) == 0 && k.type != IW_TOK_END && !k.pending) {
        if (k.p != NULL && (k.p < d || k.p + k.n > d + n))
            abort();
        if (k.type == IW_TOK_QUOTED) {
            char *q = malloc(k.n ? k.n : 1);
            if (q == NULL || iw_tok_unquote(&k, q) > k.n)
                abort();
            free(q);
        }
        if (k.type == IW_TOK_LPAREN && (turns & 1) && iw_tok_skip_to(t, IW_TOK_RPAREN) != 0)
            break;
        if (++turns > n + 1)
            abort();                   /* every token takes at least one byte */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    iw_response r;
    iw_tokenizer t;
    iw_tok name;
    IMAPMAILBOX mb;
    const char *lf;
    size_t n = size + 2;

    buf = malloc(n);
    if (buf == NULL)
        return 0;
    /* as the reader returns an untagged response: "* " then one or more line pieces */
    memcpy(buf, "* ", 2);
    memcpy(buf + 2, data, size);
    memset(&r, 0, sizeof r);
    r.kind = IW_RESP_UNTAGGED;
    r.data = buf;
    r.len = n;
    lf = memchr(buf, '\n', n);
    r.line_len = lf ? (size_t)(lf - buf) : n;
    if (lf && r.line_len > 2 && buf[r.line_len - 1] == '\r')
        r.line_len--;
    r.rest = buf + 2;
    r.rest_len = r.line_len - 2;
    /* some inputs have their first literal's bytes gone, as after a hook took them */
    if (size > 0 && (data[0] & 1) && lf != NULL)
        r.gone_at = (size_t)(lf - buf) + 1;

    iw_tok_init(&t, &r);
    walk(&t, buf, n);
    iw_tok_init_mem(&t, buf + 2, size);
    walk(&t, buf, n);
    (void)iw_resp_status(&r);
    if (iw_resp_code(&r, &t, &name) && iw_tok_skip_to(&t, IW_TOK_RBRACKET) == 0)
        walk(&t, buf, n);
    memset(&mb, 0, sizeof mb);
    iw_select_parse(&r, &mb);
    if (memchr(mb.szFlags, '\0', sizeof mb.szFlags) == NULL)
        abort();
    free(buf);
    return 0;
}
