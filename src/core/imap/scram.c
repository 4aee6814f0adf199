/* scram.c: the SCRAM-SHA-1 and SCRAM-SHA-256 client (RFC 5802, RFC 7677): client-first,
 * the keys and proof of the client-final, and the server signature's check. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"
#include "sasl_text.h"
#include "tokenizer.h"

/* ---- SCRAM (RFC 5802, RFC 7677) ---- */

static const EVP_MD *iw_scram_md(unsigned type)
{
    if (type == IMAP_AUTH_SCRAM_SHA256)
        return EVP_sha256();
    if (type == IMAP_AUTH_SCRAM_SHA1)
        return EVP_sha1();
    return NULL;
}

int iw_is_scram(unsigned type)
{
    return iw_scram_md(type) != NULL;
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
