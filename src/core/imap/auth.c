/* auth.c: builds the login exchange for each IMAP_AUTH_* type: LOGIN with quoted or
 * literal arguments, SASL PLAIN, XOAUTH2, OAUTHBEARER, ANONYMOUS, and SCRAM-SHA-1/256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "auth.h"
#include "tokenizer.h"
#include "sasl_text.h"

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
