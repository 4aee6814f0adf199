/* fuzz_parsers.c: the library's parsers of server bytes and of caller text, one per
 * input (the first byte picks): FETCH bodies, mailbox names, command literals, SCRAM. */
/* Each gets an exact-size heap copy, so any look past the input is an ASan report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/auth.h"
#include "imap/session.h"

static void fetch_parse(const uint8_t *d, size_t n)
{
    char *buf = malloc(n + 2);
    const char *lf;
    iw_response r;
    struct iw_fetch f;
    if (buf == NULL)
        return;
    /* as the reader returns it: "* " then the rest, one or more line pieces */
    memcpy(buf, "* ", 2);
    memcpy(buf + 2, d, n);
    memset(&r, 0, sizeof r);
    r.kind = IW_RESP_UNTAGGED;
    r.data = buf;
    r.len = n + 2;
    lf = memchr(buf, '\n', n + 2);
    r.line_len = lf ? (size_t)(lf - buf) : n + 2;
    if (lf && r.line_len > 2 && buf[r.line_len - 1] == '\r')
        r.line_len--;
    r.rest = buf + 2;
    r.rest_len = r.line_len - 2;
    memset(&f, 0, sizeof f);
    f.id = 1;
    if (iw_fetch_parse(&r, &f) == 0 && f.found) {
        if (f.len > n)
            abort();                   /* a body larger than the response */
        free(f.body);
    }
    free(buf);
}

static char *cstring(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, d, n);
        s[n] = '\0';
    }
    return s;
}

static void mutf7(const uint8_t *d, size_t n)
{
    char *s = cstring(d, n);
    iw_sb out = {0};
    size_t i;
    if (s == NULL)
        return;
    if (iw_mutf7_encode(s, &out) == 0)
        for (i = 0; i < out.len; i++)
            if (out.p[i] < 0x20 || out.p[i] > 0x7e)
                abort();               /* modified UTF-7 is printable ASCII only */
    iw_sb_free(&out);
    free(s);
}

static void command_wire(const uint8_t *d, size_t n)
{
    char *s = cstring(d, n);
    size_t cuts[IW_MAX_CUTS], first;
    int ncuts;
    iw_sb out = {0};
    if (s == NULL)
        return;
    if (iw_command_wire(s, strlen(s), n & 1, n & 2, &out, cuts, &ncuts, &first) == 0) {
        int i;
        for (i = 0; i < ncuts; i++)
            if (cuts[i] > out.len)
                abort();
    }
    iw_sb_free(&out);
    free(s);
}

/* A whole SCRAM exchange against the input: the server-first, then the server-final
 * after the first NUL (if any). */
static void scram(const uint8_t *d, size_t n, unsigned type)
{
    const uint8_t *nul = memchr(d, 0, n);
    size_t first = nul ? (size_t)(nul - d) : n;
    char *a = malloc(first ? first : 1), *b = NULL;
    iw_scram s;
    iw_sb out = {0};
    /* the RFCs' client nonces, so their vectors (the seeds) reach the signature check */
    const char *nonce = type == IMAP_AUTH_SCRAM_SHA1 ? "fyko+d2lbbFgONRv9qkxdawL"
                                                     : "rOprNGfwEbeRWgbNEkqO";
    if (a == NULL)
        return;
    memcpy(a, d, first);
    memset(&s, 0, sizeof s);
    if (iw_scram_start(&s, type, "user", "pencil", nonce, &out) == 0) {
        iw_sb_free(&out);
        if (iw_scram_client_final(&s, a, first, &out) == 0 && nul != NULL) {
            size_t rest = n - first - 1;
            b = malloc(rest ? rest : 1);
            if (b != NULL) {
                memcpy(b, nul + 1, rest);
                iw_scram_verify(&s, b, rest);
            }
        }
    }
    iw_sb_free(&out);
    iw_scram_clear(&s);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 5) {
    case 0: fetch_parse(data + 1, size - 1); break;
    case 1: mutf7(data + 1, size - 1); break;
    case 2: command_wire(data + 1, size - 1); break;
    case 3: scram(data + 1, size - 1, IMAP_AUTH_SCRAM_SHA256); break;
    default: scram(data + 1, size - 1, IMAP_AUTH_SCRAM_SHA1); break;
    }
    return 0;
}
