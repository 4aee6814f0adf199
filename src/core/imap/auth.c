/* auth.c: builds the login exchange for each IMAP_AUTH_* type: LOGIN with quoted or
 * literal arguments, SASL PLAIN, XOAUTH2, OAUTHBEARER, ANONYMOUS, and SCRAM-SHA-1/256. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "auth.h"
#include "tokenizer.h"

/* An astring argument: quoted when it can be, else a literal (non-synchronising with
 * LITERAL+, else we stop at a cut and wait for the server's "+"). */
static void iw_astring(iw_client *c, iw_sb *sb, const char *s, size_t *cuts, int *ncuts)
{
    char head[32];
    size_t n = strlen(s);
    int plus = iw_capa_has(c, "LITERAL+");

    if (iw_quotable(s) && n < 1024) {
        iw_sb_quoted(sb, s);
        return;
    }
    snprintf(head, sizeof head, "{%zu%s}\r\n", n, plus ? "+" : "");
    iw_sb_str(sb, head);
    if (!plus && *ncuts < IW_MAX_CUTS)
        cuts[(*ncuts)++] = sb->len;
    iw_sb_add(sb, s, n);
}

static int iw_base64(const unsigned char *in, size_t n, iw_sb *out)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    unsigned char *b;
    int len;

    if (n > 65536)
        return ST_ERROR_INVALID_PARAMETER;
    b = malloc(need);
    if (b == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    len = EVP_EncodeBlock(b, in, (int)n);
    iw_sb_add(out, b, (size_t)len);
    iw_wipe(b, need);
    free(b);
    return out->err;
}

/* A GS2 saslname (RFC 5801 section 4): ',' and '=' are escaped, so a user name cannot
 * end the authzid field early and add fields of its own. */
static void iw_add_saslname(iw_sb *sb, const char *s)
{
    for (; *s; s++) {
        if (*s == ',')
            iw_sb_str(sb, "=2C");
        else if (*s == '=')
            iw_sb_str(sb, "=3D");
        else
            iw_sb_add(sb, s, 1);
    }
}

/* Fields of XOAUTH2 and OAUTHBEARER are separated by 0x01: a value holding one (or any
 * other control byte) would inject a field, so it is refused, not sent. */
static int iw_kvsafe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int iw_sasl_message(unsigned type, const char *user, const char *pass, const char *host,
                    unsigned port, iw_sb *raw)
{
    char num[16];

    switch (type) {
    case IMAP_AUTH_PLAIN:
        iw_sb_add(raw, "", 1);             /* empty authorization identity */
        iw_sb_str(raw, user);
        iw_sb_add(raw, "", 1);
        iw_sb_str(raw, pass);
        break;
    case IMAP_AUTH_XOAUTH2:
        if (!iw_kvsafe(user) || !iw_kvsafe(pass))
            return ST_ERROR_INVALID_PARAMETER;
        iw_sb_str(raw, "user=");
        iw_sb_str(raw, user);
        iw_sb_str(raw, "\001auth=Bearer ");
        iw_sb_str(raw, pass);
        iw_sb_str(raw, "\001\001");
        break;
    case IMAP_AUTH_BEARER:                 /* RFC 7628 section 3.1 */
        if (!iw_kvsafe(user) || !iw_kvsafe(pass) || !iw_kvsafe(host))
            return ST_ERROR_INVALID_PARAMETER;
        snprintf(num, sizeof num, "%u", port);
        iw_sb_str(raw, "n,a=");
        iw_add_saslname(raw, user);
        iw_sb_str(raw, ",\001host=");
        iw_sb_str(raw, host);
        iw_sb_str(raw, "\001port=");
        iw_sb_str(raw, num);
        iw_sb_str(raw, "\001auth=Bearer ");
        iw_sb_str(raw, pass);
        iw_sb_str(raw, "\001\001");
        break;
    case IMAP_AUTH_ANONYMOUS:              /* the trace token, RFC 4505 */
        iw_sb_str(raw, user);
        break;
    default:
        return ST_ERROR_INVALID_PARAMETER;
    }
    return raw->err;
}

/* The SASL initial response of each mechanism, base64-encoded into out. */
static int iw_sasl_response(iw_client *c, unsigned type, const char *user, const char *pass,
                            iw_sb *out)
{
    iw_sb raw = {0};
    int rc = iw_sasl_message(type, user, pass, c->cfg.ep.host, c->cfg.ep.port, &raw);
    if (rc == 0)
        rc = iw_base64((const unsigned char *)raw.p, raw.len, out);
    iw_sb_free(&raw);
    return rc;
}

/* ---- SCRAM (RFC 5802, RFC 7677) ---- */

static const EVP_MD *iw_scram_md(unsigned type)
{
    if (type == IMAP_AUTH_SCRAM_SHA256)
        return EVP_sha256();
    if (type == IMAP_AUTH_SCRAM_SHA1)
        return EVP_sha1();
    return NULL;
}

static int iw_is_scram(unsigned type)
{
    return iw_scram_md(type) != NULL;
}

/* Strict base64 of server bytes: the RFC 4648 alphabet, '=' only as final padding, a
 * length that is a multiple of 4, at most max decoded bytes. EVP_DecodeBlock alone would
 * skip surrounding whitespace and count padding as zero bytes. *out is malloc'd (one
 * spare byte, never read by the parsers, which go by *outlen). */
static int iw_unbase64(const char *in, size_t n, size_t max, unsigned char **out,
                       size_t *outlen)
{
    size_t i, pad = 0, full;
    unsigned char *b;

    *out = NULL;
    *outlen = 0;
    if (n == 0 || n % 4 != 0 || n > IW_SCRAM_MAX_MSG)
        return ST_ERROR_INVALID_RESPONSE;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    for (i = 0; i < n - pad; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return ST_ERROR_INVALID_RESPONSE;
    }
    full = n / 4 * 3;
    if (full - pad == 0 || full - pad > max)
        return ST_ERROR_INVALID_RESPONSE;
    b = malloc(full + 1);
    if (b == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    if (EVP_DecodeBlock(b, (const unsigned char *)in, (int)n) != (int)full) {
        free(b);
        return ST_ERROR_INVALID_RESPONSE;
    }
    b[full - pad] = '\0';
    *out = b;
    *outlen = full - pad;
    return 0;
}

/* SASLprep (RFC 4013) as far as we apply it: ASCII passes unchanged except that control
 * characters (prohibited output, RFC 4013 section 2.3 / RFC 3454 C.2.1) are refused.
 * Non-ASCII bytes are used as they are, as UTF-8, with no mapping or normalisation: that
 * is what Dovecot 2.3 hashes (it does no SASLprep), and a caller whose server normalises
 * can pass the NFKC form itself. */
static int iw_scram_prepable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

void iw_scram_clear(iw_scram *s)
{
    iw_sb_free(&s->msg);
    iw_free_secret(s->pass);
    iw_wipe(s, sizeof *s);
    memset(s, 0, sizeof *s);
}

/* s is overwritten: clear a previous exchange first. */
int iw_scram_start(iw_scram *s, unsigned type, const char *user, const char *pass,
                   const char *nonce, iw_sb *out)
{
    memset(s, 0, sizeof *s);
    s->type = type;
    if (!iw_is_scram(type) || !iw_scram_prepable(user) || !iw_scram_prepable(pass))
        return ST_ERROR_INVALID_PARAMETER;
    if (nonce == NULL) {
        /* 24 random bytes: 32 base64 characters, never a ',' */
        unsigned char rnd[24];
        if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
            return ST_ERROR_SYSTEM_LIMIT;
        EVP_EncodeBlock((unsigned char *)s->nonce, rnd, (int)sizeof rnd);
        iw_wipe(rnd, sizeof rnd);
    } else {
        size_t i, n = strlen(nonce);
        if (n == 0 || n >= sizeof s->nonce)
            return ST_ERROR_INVALID_PARAMETER;
        for (i = 0; i < n; i++)
            if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',')
                return ST_ERROR_INVALID_PARAMETER;
        memcpy(s->nonce, nonce, n + 1);
    }
    s->pass = iw_strdup(pass);
    if (s->pass == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    /* client-first-message-bare; it starts the AuthMessage too */
    iw_sb_str(&s->msg, "n=");
    iw_add_saslname(&s->msg, user);
    iw_sb_str(&s->msg, ",r=");
    iw_sb_str(&s->msg, s->nonce);
    if (s->msg.err)
        return s->msg.err;
    iw_sb_str(out, "n,,");             /* no channel binding, no authzid */
    iw_sb_add(out, s->msg.p, s->msg.len);
    s->step = IW_SCRAM_FIRST;
    return out->err;
}

/* The value of attribute `name` at *pos ("name=value", up to the next ',' or the end).
 * *pos moves past the value and its ','; *comma says whether one followed. */
static int iw_scram_attr(const char *m, size_t n, size_t *pos, char name, const char **val,
                         size_t *vlen, int *comma)
{
    size_t p = *pos, e;
    if (p >= n || n - p < 2 || m[p] != name || m[p + 1] != '=')
        return 0;
    for (e = p + 2; e < n && m[e] != ','; e++)
        ;
    *val = m + p + 2;
    *vlen = e - (p + 2);
    *comma = e < n;
    *pos = e < n ? e + 1 : n;
    return 1;
}

/* What one client-final is built from: the server-first's parts and the keys derived
 * from them (wiped when done). */
typedef struct {
    const EVP_MD *md;
    int dlen;
    const char *nonce, *salt64;
    size_t nl, sl;
    unsigned long iters;
    unsigned char ckey[IW_SCRAM_KEY_MAX], skey[IW_SCRAM_KEY_MAX], stored[IW_SCRAM_KEY_MAX];
} iw_scram_work;

static int iw_scram_parse_first(const iw_scram *s, const char *m, size_t n, iw_scram_work *w)
{
    const char *iter;
    size_t il, pos = 0, ourl, i;
    int comma = 0;

    /* r=, s=, i= in that order (RFC 5802 section 7); an "m=" mandatory extension is one
     * we cannot know, so the message is refused. A NUL is never valid. */
    if (n == 0 || n > IW_SCRAM_MAX_MSG || memchr(m, '\0', n) != NULL)
        return ST_ERROR_INVALID_RESPONSE;
    if (!iw_scram_attr(m, n, &pos, 'r', &w->nonce, &w->nl, &comma) || !comma ||
        !iw_scram_attr(m, n, &pos, 's', &w->salt64, &w->sl, &comma) || !comma ||
        !iw_scram_attr(m, n, &pos, 'i', &iter, &il, &comma))
        return ST_ERROR_INVALID_RESPONSE;
    if (comma && (n - pos < 2 || !((m[pos] >= 'a' && m[pos] <= 'z') ||
                                   (m[pos] >= 'A' && m[pos] <= 'Z')) || m[pos + 1] != '='))
        return ST_ERROR_INVALID_RESPONSE;  /* "," must start another attribute */
    /* The server's nonce extends ours: it proves this answer is to this exchange. */
    ourl = strlen(s->nonce);
    if (w->nl <= ourl || memcmp(w->nonce, s->nonce, ourl) != 0)
        return ST_ERROR_INVALID_RESPONSE;
    for (i = 0; i < w->nl; i++)
        if (w->nonce[i] < 0x21 || w->nonce[i] > 0x7e)
            return ST_ERROR_INVALID_RESPONSE;
    if (il == 0 || il > 7)
        return ST_ERROR_INVALID_RESPONSE;
    for (i = 0; i < il; i++) {
        if (iter[i] < '0' || iter[i] > '9')
            return ST_ERROR_INVALID_RESPONSE;
        w->iters = w->iters * 10 + (unsigned long)(iter[i] - '0');
    }
    if (w->iters < 1 || w->iters > IW_SCRAM_MAX_ITER)
        return ST_ERROR_INVALID_RESPONSE;
    if (w->iters < IW_SCRAM_MIN_ITER)
        return ST_ERROR_LOGIN_FAILED;
    return 0;
}

/* ClientKey, ServerKey and StoredKey; the password goes once it has been used. */
static int iw_scram_keys(iw_scram *s, iw_scram_work *w, const unsigned char *salt,
                         size_t saltl)
{
    unsigned char salted[IW_SCRAM_KEY_MAX];
    unsigned int len = 0;
    int rc = ST_ERROR_OUT_OF_MEMORY;   /* what OpenSSL fails for below */

    /* SaltedPassword := Hi(Normalize(password), salt, i) */
    if (PKCS5_PBKDF2_HMAC(s->pass, (int)strlen(s->pass), salt, (int)saltl, (int)w->iters,
                          w->md, w->dlen, salted) != 1)
        goto out;
    iw_free_secret(s->pass);           /* no longer needed */
    s->pass = NULL;
    if (HMAC(w->md, salted, w->dlen, (const unsigned char *)"Client Key", 10, w->ckey,
             &len) == NULL ||
        HMAC(w->md, salted, w->dlen, (const unsigned char *)"Server Key", 10, w->skey,
             &len) == NULL)
        goto out;
    iw_wipe(salted, sizeof salted);
    if (EVP_Digest(w->ckey, (size_t)w->dlen, w->stored, &len, w->md, NULL) != 1)
        goto out;
    rc = 0;
out:
    iw_wipe(salted, sizeof salted);
    return rc;
}

/* The client-final with its proof into out; the server's signature kept for the
 * server-final. */
static int iw_scram_proof(iw_scram *s, const iw_scram_work *w, const char *m, size_t n,
                          iw_sb *out)
{
    unsigned char csig[IW_SCRAM_KEY_MAX], proof[IW_SCRAM_KEY_MAX];
    unsigned int len = 0;
    size_t i;
    int rc = ST_ERROR_OUT_OF_MEMORY;   /* what OpenSSL fails for below */
    iw_sb bare = {0};                  /* client-final-message-without-proof */

    /* AuthMessage := client-first-bare "," server-first "," client-final-without-proof */
    iw_sb_str(&bare, "c=biws,r=");     /* biws = base64("n,,") */
    iw_sb_add(&bare, w->nonce, w->nl);
    iw_sb_str(&s->msg, ",");
    iw_sb_add(&s->msg, m, n);
    iw_sb_str(&s->msg, ",");
    iw_sb_add(&s->msg, bare.p, bare.len);
    if (bare.err || s->msg.err)
        goto out;
    if (HMAC(w->md, w->stored, w->dlen, (const unsigned char *)s->msg.p, s->msg.len, csig,
             &len) == NULL ||
        HMAC(w->md, w->skey, w->dlen, (const unsigned char *)s->msg.p, s->msg.len,
             s->server_sig, &len) == NULL)
        goto out;
    s->sig_len = (size_t)w->dlen;
    for (i = 0; i < (size_t)w->dlen; i++)
        proof[i] = w->ckey[i] ^ csig[i];
    iw_sb_add(out, bare.p, bare.len);
    iw_sb_str(out, ",p=");
    rc = iw_base64(proof, (size_t)w->dlen, out);
out:
    iw_wipe(csig, sizeof csig);
    iw_wipe(proof, sizeof proof);
    iw_sb_free(&bare);
    return rc;
}

/* Derives the keys from the server-first message m and builds the client-final. */
int iw_scram_client_final(iw_scram *s, const char *m, size_t n, iw_sb *out)
{
    iw_scram_work w = {0};
    unsigned char *salt = NULL;
    size_t saltl = 0;
    int rc = ST_ERROR_INVALID_RESPONSE;

    w.md = iw_scram_md(s->type);
    if (s->step != IW_SCRAM_FIRST || w.md == NULL || s->pass == NULL) {
        s->step = IW_SCRAM_FAILED;
        return ST_ERROR_INVALID_RESPONSE;
    }
    s->step = IW_SCRAM_FAILED;         /* until the client-final is built */
    w.dlen = EVP_MD_get_size(w.md);
    if (w.dlen <= 0 || (size_t)w.dlen > IW_SCRAM_KEY_MAX)
        goto out;
    rc = iw_scram_parse_first(s, m, n, &w);
    if (rc == 0)
        rc = iw_unbase64(w.salt64, w.sl, 1024, &salt, &saltl);
    if (rc == 0)
        rc = iw_scram_keys(s, &w, salt, saltl);
    if (rc == 0)
        rc = iw_scram_proof(s, &w, m, n, out);
    if (rc == 0)
        s->step = IW_SCRAM_FINAL;
out:
    if (s->step != IW_SCRAM_FINAL) {
        iw_free_secret(s->pass);
        s->pass = NULL;
        iw_wipe(s->server_sig, sizeof s->server_sig);
    }
    iw_wipe(&w, sizeof w);
    free(salt);
    return rc;
}

/* The server-final: "v=" base64(ServerSignature) [",..."]. It is compared as base64 text
 * with the encoding of the expected signature, so a non-canonical encoding of the right
 * bytes is refused too; CRYPTO_memcmp keeps the time independent of where they differ. */
int iw_scram_verify(iw_scram *s, const char *m, size_t n)
{
    iw_sb want = {0};
    size_t vl;
    int rc = ST_ERROR_LOGIN_FAILED;

    if (s->step != IW_SCRAM_FINAL) {
        s->step = IW_SCRAM_FAILED;
        return ST_ERROR_LOGIN_FAILED;
    }
    s->step = IW_SCRAM_FAILED;
    if (n < 2 || m[0] != 'v' || m[1] != '=')
        goto out;                      /* missing, or an e= server error */
    for (vl = 0; vl < n - 2 && m[2 + vl] != ','; vl++)
        ;
    if (iw_base64(s->server_sig, s->sig_len, &want) != 0)
        goto out;
    if (vl == want.len && CRYPTO_memcmp(m + 2, want.p, vl) == 0) {
        s->step = IW_SCRAM_VERIFIED;
        rc = 0;
    }
out:
    iw_wipe(s->server_sig, sizeof s->server_sig);
    iw_sb_free(&want);
    return rc;
}

/* Some servers put the server-final in the tagged OK's response code, base64-encoded
 * ("OK [SASL dj0uLi4=] ..."): the first token of the code that decodes to "v=..." is
 * verified. Anything else is a missing signature. */
int iw_scram_verify_tagged(iw_scram *s, const char *text, size_t n)
{
    iw_tokenizer t;
    iw_tok k;

    iw_tok_init_mem(&t, text, n);
    if (iw_tok_next(&t, &k) == 0 && k.type == IW_TOK_ATOM && iw_tok_next(&t, &k) == 0 &&
        k.type == IW_TOK_LBRACKET) {
        /* at most one token per byte of the code */
        while (iw_tok_next(&t, &k) == 0 && k.type != IW_TOK_RBRACKET && k.type != IW_TOK_END) {
            unsigned char *dec = NULL;
            size_t dl = 0;
            if (k.type == IW_TOK_ATOM &&
                iw_unbase64(k.p, k.n, IW_SCRAM_MAX_MSG, &dec, &dl) == 0 && dl >= 2 &&
                dec[0] == 'v' && dec[1] == '=') {
                int rc = iw_scram_verify(s, (const char *)dec, dl);
                free(dec);
                return rc;
            }
            free(dec);
        }
    }
    s->step = IW_SCRAM_FAILED;
    return ST_ERROR_LOGIN_FAILED;
}

/* The text of a "+" continuation: the SASL challenge, base64 (possibly empty). */
static void iw_challenge(const iw_response *r, const char **p, size_t *n)
{
    iw_tokenizer t;
    iw_tok_init(&t, r);
    iw_tok_text(&t, p, n);
}

/* One line of the SASL exchange from us: never traced, wiped once sent. */
static int iw_send_secret_line(iw_client *c, const char *p, size_t n)
{
    int rc;
    iw_trace_line(c, IMAP_TRACE_SEND, "<redacted>", 10);
    rc = n ? iw_queue(c, p, n, 1) : 0;
    return rc ? rc : iw_queue(c, "\r\n", 2, 0);
}

/* The SCRAM steps, one per "+" continuation: the client-first (without SASL-IR), the
 * client-final for the server-first, and an empty line for a verified server-final
 * (IMAP has no "additional data with success": Dovecot sends v= as a continuation and
 * waits for that empty line). A malformed challenge or a wrong signature ends the call
 * with an error, which leaves the connection marked broken: a server that cannot prove
 * it knows the password is not one to keep talking to. */
static int iw_on_scram_continue(iw_client *c, const iw_response *r, void *arg)
{
    iw_login *lg = arg;
    iw_sb out = {0}, b64 = {0};
    unsigned char *dec = NULL;
    const char *ch;
    size_t dl = 0, chn;
    int rc;

    if (!lg->ir_sent) {
        lg->ir_sent = 1;
        return iw_send_secret_line(c, lg->ir.p, lg->ir.len);
    }
    iw_challenge(r, &ch, &chn);
    switch (lg->scram.step) {
    case IW_SCRAM_FIRST:
        rc = iw_unbase64(ch, chn, IW_SCRAM_MAX_MSG, &dec, &dl);
        if (rc == 0)
            rc = iw_scram_client_final(&lg->scram, (const char *)dec, dl, &out);
        if (rc == 0)
            rc = iw_base64((const unsigned char *)out.p, out.len, &b64);
        if (rc == 0) {
            rc = iw_send_secret_line(c, b64.p, b64.len);
        } else if (rc == ST_ERROR_LOGIN_FAILED) {
            /* a downgrade, not a broken server: the exchange is cancelled in step and
             * the tagged answer ends the login (failed, whatever it says) */
            iw_client_note(c, "auth: the server asks for fewer SCRAM iterations than "
                              "RFC 7677's floor of 4096; no proof sent, exchange cancelled");
            lg->no_retry = 1;
            iw_trace_line(c, IMAP_TRACE_SEND, "*", 1);
            rc = iw_queue(c, "*\r\n", 3, 0);
        } else {
            iw_client_note(c, "auth: the server's SCRAM challenge is malformed; login abandoned");
        }
        break;
    case IW_SCRAM_FINAL:
        rc = iw_unbase64(ch, chn, IW_SCRAM_MAX_MSG, &dec, &dl);
        rc = rc == 0 ? iw_scram_verify(&lg->scram, (const char *)dec, dl)
                     : (int)ST_ERROR_LOGIN_FAILED;
        if (rc == 0) {
            rc = iw_send_secret_line(c, "", 0);
        } else {
            lg->scram.step = IW_SCRAM_FAILED;
            iw_client_note(c, "auth: the server's SCRAM signature is wrong or missing: it did "
                              "not prove it knows the password; connection dropped");
        }
        break;
    default:
        /* A challenge after the end of the exchange: cancel (RFC 3501 "*"). */
        iw_trace_line(c, IMAP_TRACE_SEND, "*", 1);
        rc = iw_queue(c, "*\r\n", 3, 0);
        break;
    }
    free(dec);
    iw_sb_free(&out);
    iw_sb_free(&b64);
    return rc;
}

/* A value of the server's JSON error (RFC 7628 section 3.2.2): the string after "key":,
 * printable ASCII only, at most cap - 1 bytes; "" if there is none. A reading for the
 * trace, not a JSON parser: escapes end the value. */
static void iw_json_string(const char *j, size_t n, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key), i, o = 0;
    out[0] = '\0';
    for (i = 0; i + kl + 2 <= n; i++) {
        size_t p;
        if (j[i] != '"' || memcmp(j + i + 1, key, kl) != 0 || j[i + 1 + kl] != '"')
            continue;
        p = i + kl + 2;
        while (p < n && (j[p] == ' ' || j[p] == ':' || j[p] == '\t'))
            p++;
        if (p >= n || j[p] != '"')
            return;
        for (p++; p < n && j[p] != '"' && j[p] != '\\' && o + 1 < cap; p++)
            if (j[p] >= 0x20 && j[p] < 0x7f)
                out[o++] = j[p];
        out[o] = '\0';
        return;
    }
}

/* One-step mechanisms (PLAIN, XOAUTH2, OAUTHBEARER, ANONYMOUS): the initial response on
 * the first "+" when SASL-IR was not used; a challenge after it is the server's error.
 * OAUTHBEARER's (RFC 7628 3.2.3) and XOAUTH2's is a JSON object: its status goes to the
 * trace, and the exchange is ended as each mechanism says (OAUTHBEARER: the dummy
 * "\x01"; XOAUTH2: an empty line), so the server ends it with its tagged NO; any other
 * mechanism's challenge is cancelled with "*". */
static int iw_on_sasl_continue(iw_client *c, const iw_response *r, void *arg)
{
    iw_login *lg = arg;
    const char *ch;
    size_t chn;

    if (!lg->ir_sent && lg->ir.p != NULL) {
        lg->ir_sent = 1;
        return iw_send_secret_line(c, lg->ir.p, lg->ir.len);
    }
    if (lg->type == IMAP_AUTH_BEARER || lg->type == IMAP_AUTH_XOAUTH2) {
        unsigned char *dec = NULL;
        size_t dl = 0;
        char status[64], note[128];
        iw_challenge(r, &ch, &chn);
        status[0] = '\0';
        if (chn > 0 && iw_unbase64(ch, chn, IW_SCRAM_MAX_MSG, &dec, &dl) == 0)
            iw_json_string((const char *)dec, dl, "status", status, sizeof status);
        free(dec);
        snprintf(note, sizeof note, "auth: the server refused the token (status \"%s\")",
                 status[0] ? status : "none given");
        iw_client_note(c, note);
        if (lg->type == IMAP_AUTH_BEARER) {
            iw_trace_line(c, IMAP_TRACE_SEND, "AQ==", 4);
            return iw_queue(c, "AQ==\r\n", 6, 0);          /* base64 of 0x01 */
        }
        iw_trace_line(c, IMAP_TRACE_SEND, "", 0);
        return iw_queue(c, "\r\n", 2, 0);
    }
    iw_trace_line(c, IMAP_TRACE_SEND, "*", 1);
    return iw_queue(c, "*\r\n", 3, 0);
}

/* ---- the SASL table ---- */

static int iw_start_sasl(iw_client *c, iw_login *lg, const char *user, const char *pass)
{
    return iw_sasl_response(c, lg->type, user, pass, &lg->ir);
}

static int iw_start_scram(iw_client *c, iw_login *lg, const char *user, const char *pass)
{
    iw_sb first = {0};
    int rc;
    IW_UNUSED(c);
    rc = iw_scram_start(&lg->scram, lg->type, user, pass, NULL, &first);
    if (rc == 0)
        rc = iw_base64((const unsigned char *)first.p, first.len, &lg->ir);
    iw_sb_free(&first);
    return rc;
}

/* One row per mechanism: a new one is one row (and its start/step). The LOGIN command
 * is a row too, without a SASL name: it needs no AUTH= capability. rank: the order
 * IMAP_AUTH_DEFAULT tries them in, highest first; 0 = only when asked for by name. */
typedef struct iw_mech {
    unsigned    id;
    const char *name;
    int         rank;
    int (*start)(iw_client *c, iw_login *lg, const char *user, const char *pass);
    int (*step)(iw_client *c, const iw_response *r, void *arg);
} iw_mech;

static const iw_mech iw_mechs[] = {
    { IMAP_AUTH_SCRAM_SHA256, "SCRAM-SHA-256", 4, iw_start_scram, iw_on_scram_continue },
    { IMAP_AUTH_SCRAM_SHA1,   "SCRAM-SHA-1",   3, iw_start_scram, iw_on_scram_continue },
    { IMAP_AUTH_PLAIN,        "PLAIN",         2, iw_start_sasl,  iw_on_sasl_continue },
    { IMAP_AUTH_LOGIN,        NULL,            1, NULL,           NULL },
    { IMAP_AUTH_XOAUTH2,      "XOAUTH2",       0, iw_start_sasl,  iw_on_sasl_continue },
    { IMAP_AUTH_BEARER,       "OAUTHBEARER",   0, iw_start_sasl,  iw_on_sasl_continue },
    { IMAP_AUTH_ANONYMOUS,    "ANONYMOUS",     0, iw_start_sasl,  iw_on_sasl_continue },
};

static const iw_mech *iw_mech_find(unsigned type)
{
    size_t i;
    for (i = 0; i < sizeof iw_mechs / sizeof iw_mechs[0]; i++)
        if (iw_mechs[i].id == type)
            return &iw_mechs[i];
    return NULL;
}

int iw_auth_type_known(unsigned type)
{
    return type == IMAP_AUTH_DEFAULT || iw_mech_find(type) != NULL;
}

static int iw_mech_offered(iw_client *c, const iw_mech *m)
{
    char want[40];
    if (m->name == NULL)
        return 1;
    snprintf(want, sizeof want, "AUTH=%s", m->name);
    return iw_capa_has(c, want);
}

/* Picks the mechanism (IMAP_AUTH_DEFAULT: the highest rank both sides have). */
static int iw_pick(iw_client *c, unsigned type, const iw_mech **out)
{
    const iw_mech *m = NULL;
    size_t i;

    if (type == IMAP_AUTH_DEFAULT) {
        for (i = 0; i < sizeof iw_mechs / sizeof iw_mechs[0]; i++)
            if (iw_mechs[i].rank > 0 && iw_mech_offered(c, &iw_mechs[i]) &&
                (m == NULL || iw_mechs[i].rank > m->rank))
                m = &iw_mechs[i];
    } else {
        m = iw_mech_find(type);
        if (m == NULL)
            return ST_ERROR_INVALID_PARAMETER;
        if (!iw_mech_offered(c, m)) {
            char note[80];
            snprintf(note, sizeof note, "auth: the server does not offer %s", m->name);
            iw_client_note(c, note);
            return ST_ERROR_LOGIN_FAILED;
        }
    }
    if (m != NULL && m->name == NULL && iw_capa_has(c, "LOGINDISABLED")) {
        /* RFC 3501 6.2.3: a server saying LOGINDISABLED must not be sent LOGIN. */
        iw_client_note(c, "auth: the server advertises LOGINDISABLED; LOGIN not sent");
        return ST_ERROR_LOGIN_FAILED;
    }
    if (m == NULL)
        return ST_ERROR_LOGIN_FAILED;
    *out = m;
    return 0;
}

int iw_login_start(iw_client *c, iw_login *lg, unsigned type, const char *user,
                   const char *pass)
{
    const iw_mech *m = NULL;
    iw_sb sb = {0};
    size_t cuts[IW_MAX_CUTS];
    int ncuts = 0, rc;
    char trace[64];

    memset(lg, 0, sizeof *lg);
    lg->c = c;
    rc = iw_pick(c, type, &m);
    if (rc != 0)
        return rc;
    lg->type = m->id;
    if (m->name == NULL) {
        iw_sb_str(&sb, "LOGIN ");
        iw_astring(c, &sb, user, cuts, &ncuts);
        iw_sb_str(&sb, " ");
        iw_astring(c, &sb, pass, cuts, &ncuts);
        snprintf(trace, sizeof trace, "LOGIN <redacted>");
    } else {
        rc = m->start(c, lg, user, pass);
        if (rc != 0)
            goto out;
        iw_sb_str(&sb, "AUTHENTICATE ");
        iw_sb_str(&sb, m->name);
        snprintf(trace, sizeof trace, "AUTHENTICATE %s", m->name);
        if (iw_capa_has(c, "SASL-IR")) {
            /* RFC 4959: an empty initial response is sent as "=". */
            iw_sb_str(&sb, " ");
            if (lg->ir.len == 0)
                iw_sb_str(&sb, "=");
            else
                iw_sb_add(&sb, lg->ir.p, lg->ir.len);
            lg->ir_sent = 1;
            snprintf(trace, sizeof trace, "AUTHENTICATE %s <redacted>", m->name);
        }
    }
    rc = sb.err;
    if (rc == 0)
        rc = iw_cmd_start(c, &lg->cmd, sb.p, sb.len, cuts, ncuts, 1, trace);
    /* after the start, which clears the command */
    lg->cmd.on_continue = m->step;
    lg->cmd.arg = m->step != NULL ? lg : NULL;
out:
    iw_sb_free(&sb);
    return rc;
}

int iw_login_finish(iw_client *c, iw_login *lg)
{
    int rc = 0;

    lg->finished = 1;
    if (!iw_is_scram(lg->type) || lg->cmd.status != IW_STATUS_OK ||
        lg->scram.step == IW_SCRAM_VERIFIED)
        return 0;
    /* OK without a verified continuation: the signature may be in the OK's code; if not,
     * a server that skipped it (or an impostor) gets no session. */
    if (lg->scram.step == IW_SCRAM_FINAL)
        rc = iw_scram_verify_tagged(&lg->scram, lg->cmd.text,
                                    strnlen(lg->cmd.text, sizeof lg->cmd.text));
    else
        rc = ST_ERROR_LOGIN_FAILED;
    if (rc != 0)
        iw_client_note(c, "auth: the server said OK without a valid SCRAM signature: it "
                          "did not prove it knows the password");
    return rc;
}

int iw_login_fallback(iw_client *c, const iw_login *lg, unsigned *type)
{
    const iw_mech *from = iw_mech_find(lg->type), *to = iw_mech_find(IMAP_AUTH_PLAIN);
    char note[160];

    if (!iw_is_scram(lg->type) || lg->cmd.status != IW_STATUS_NO || lg->no_retry ||
        lg->scram.step == IW_SCRAM_FAILED || c->io.broken)
        return 0;
    if (!iw_mech_offered(c, to)) {
        to = iw_mech_find(IMAP_AUTH_LOGIN);
        if (iw_capa_has(c, "LOGINDISABLED")) {
            snprintf(note, sizeof note, "auth: %s ended in NO; no PLAIN offered and "
                     "LOGINDISABLED: no other mechanism to try", from->name);
            iw_client_note(c, note);
            return 0;
        }
    }
    snprintf(note, sizeof note, "auth: %s ended in NO; falling back to %s once "
             "(IMAP_AUTH_DEFAULT)", from->name, to->name ? to->name : "LOGIN");
    iw_client_note(c, note);
    *type = to->id;
    return 1;
}

void iw_login_clear(iw_login *lg)
{
    /* A SCRAM OK that nobody checked with iw_login_finish: check it now, and if the
     * server did not prove itself, the session it claims to have opened is not used. */
    if (!lg->finished && lg->c != NULL && iw_login_finish(lg->c, lg) != 0) {
        lg->c->sess.state = IW_NOT_AUTH;
        iw_client_break(lg->c, ST_ERROR_LOGIN_FAILED);
    }
    iw_cmd_clear(&lg->cmd);
    iw_sb_free(&lg->ir);
    iw_scram_clear(&lg->scram);
}
