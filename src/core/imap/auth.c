/* auth.c: builds the login exchange for each IMAP_AUTH_* type: LOGIN with quoted or
 * literal arguments, and SASL PLAIN, XOAUTH2, OAUTHBEARER and ANONYMOUS. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "auth.h"

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
    int rc = iw_sasl_message(type, user, pass, c->ep.host, c->ep.port, &raw);
    if (rc == 0)
        rc = iw_base64((const unsigned char *)raw.p, raw.len, out);
    iw_sb_free(&raw);
    return rc;
}

static const char *iw_mech_name(unsigned type)
{
    switch (type) {
    case IMAP_AUTH_PLAIN: return "PLAIN";
    case IMAP_AUTH_XOAUTH2: return "XOAUTH2";
    case IMAP_AUTH_BEARER: return "OAUTHBEARER";
    case IMAP_AUTH_ANONYMOUS: return "ANONYMOUS";
    default: return NULL;
    }
}

static int iw_on_sasl_continue(iw_client *c, const iw_response *r, void *arg)
{
    iw_login *lg = arg;
    IW_UNUSED(r);
    if (!lg->ir_sent && lg->ir.p != NULL) {
        /* The initial response the server asked for; never traced. */
        int rc;
        lg->ir_sent = 1;
        iw_trace_line(c, IMAP_TRACE_SEND, "<redacted>", 10);
        rc = iw_queue(c, lg->ir.p, lg->ir.len, 1);
        return rc ? rc : iw_queue(c, "\r\n", 2, 0);
    }
    /* A challenge after our response is an error report (XOAUTH2, OAUTHBEARER): cancel. */
    iw_trace_line(c, IMAP_TRACE_SEND, "*", 1);
    return iw_queue(c, "*\r\n", 3, 0);
}

/* Picks the mechanism (IMAP_AUTH_DEFAULT: the strongest both sides have). */
static int iw_pick(iw_client *c, unsigned type, unsigned *out)
{
    char want[40];
    const char *mech;

    if (type == IMAP_AUTH_DEFAULT)
        type = iw_capa_has(c, "AUTH=PLAIN") ? IMAP_AUTH_PLAIN : IMAP_AUTH_LOGIN;
    if (type == IMAP_AUTH_LOGIN) {
        /* RFC 3501 6.2.3: a server saying LOGINDISABLED must not be sent LOGIN. */
        if (iw_capa_has(c, "LOGINDISABLED")) {
            iw_client_note(c, "auth: the server advertises LOGINDISABLED; LOGIN not sent");
            return ST_ERROR_LOGIN_FAILED;
        }
        *out = type;
        return 0;
    }
    mech = iw_mech_name(type);
    if (mech == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    snprintf(want, sizeof want, "AUTH=%s", mech);
    if (!iw_capa_has(c, want)) {
        char note[80];
        snprintf(note, sizeof note, "auth: the server does not offer %s", mech);
        iw_client_note(c, note);
        return ST_ERROR_LOGIN_FAILED;
    }
    *out = type;
    return 0;
}

int iw_login_start(iw_client *c, iw_login *lg, unsigned type, const char *user,
                   const char *pass)
{
    iw_sb sb = {0};
    size_t cuts[IW_MAX_CUTS];
    int ncuts = 0, rc;
    char trace[64];

    memset(lg, 0, sizeof *lg);
    rc = iw_pick(c, type, &lg->type);
    if (rc != 0)
        return rc;
    if (lg->type == IMAP_AUTH_LOGIN) {
        iw_sb_str(&sb, "LOGIN ");
        iw_astring(c, &sb, user, cuts, &ncuts);
        iw_sb_str(&sb, " ");
        iw_astring(c, &sb, pass, cuts, &ncuts);
        snprintf(trace, sizeof trace, "LOGIN <redacted>");
    } else {
        rc = iw_sasl_response(c, lg->type, user, pass, &lg->ir);
        if (rc != 0)
            goto out;
        iw_sb_str(&sb, "AUTHENTICATE ");
        iw_sb_str(&sb, iw_mech_name(lg->type));
        snprintf(trace, sizeof trace, "AUTHENTICATE %s", iw_mech_name(lg->type));
        if (iw_capa_has(c, "SASL-IR")) {
            /* RFC 4959: an empty initial response is sent as "=". */
            iw_sb_str(&sb, " ");
            if (lg->ir.len == 0)
                iw_sb_str(&sb, "=");
            else
                iw_sb_add(&sb, lg->ir.p, lg->ir.len);
            lg->ir_sent = 1;
            snprintf(trace, sizeof trace, "AUTHENTICATE %s <redacted>", iw_mech_name(lg->type));
        }
        lg->cmd.on_continue = iw_on_sasl_continue;
        lg->cmd.arg = lg;
    }
    rc = sb.err;
    if (rc == 0) {
        int (*cont)(struct iw_client *, const iw_response *, void *) = lg->cmd.on_continue;
        void *arg = lg->cmd.arg;
        rc = iw_cmd_start(c, &lg->cmd, sb.p, sb.len, cuts, ncuts, 1, trace);
        lg->cmd.on_continue = cont;
        lg->cmd.arg = arg;
    }
out:
    iw_sb_free(&sb);
    return rc;
}

void iw_login_clear(iw_login *lg)
{
    iw_cmd_clear(&lg->cmd);
    iw_sb_free(&lg->ir);
}
