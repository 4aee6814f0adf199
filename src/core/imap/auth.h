/* auth.h: the login exchange builder (auth.c) used by ImapLogin.
 * It owns the secret bytes of one login and wipes them when cleared. */
#ifndef IW_AUTH_H
#define IW_AUTH_H

#include "client.h"

#define IW_SCRAM_MAX_ITER   1000000u   /* larger counts are refused: a hostile server could
                                          otherwise pin the caller's CPU for minutes */
#define IW_SCRAM_MIN_ITER   4096u      /* RFC 7677's floor: fewer makes the proof cheap to
                                          crack offline, so none is sent */
#define IW_SCRAM_MAX_MSG    8192u      /* longest base64 server message accepted */
#define IW_SCRAM_KEY_MAX    64u        /* EVP_MAX_MD_SIZE */

enum iw_scram_step {
    IW_SCRAM_FIRST = 1,   /* client-first built; the server-first is awaited */
    IW_SCRAM_FINAL,       /* client-final sent; the server-final is awaited */
    IW_SCRAM_VERIFIED,    /* the server proved it knows the password */
    IW_SCRAM_FAILED
};

/* One SCRAM (RFC 5802 / RFC 7677) client exchange. */
typedef struct iw_scram {
    unsigned      type;          /* IMAP_AUTH_SCRAM_SHA256 or IMAP_AUTH_SCRAM_SHA1 */
    int           step;          /* enum iw_scram_step */
    char          nonce[64];     /* our nonce, NUL-terminated */
    iw_sb         msg;           /* client-first-bare, then the whole AuthMessage */
    char         *pass;          /* the prepared password; wiped once keys are derived */
    unsigned char server_sig[IW_SCRAM_KEY_MAX];
    size_t        sig_len;
} iw_scram;

typedef struct iw_login {
    iw_cmd     cmd;
    unsigned   type;        /* the mechanism actually used */
    iw_sb      ir;          /* base64 SASL response, sent at once or on "+" */
    int        ir_sent;
    iw_scram   scram;       /* the SCRAM state when type is a SCRAM mechanism */
    iw_client *c;
    int        finished;    /* iw_login_finish ran */
    int        no_retry;    /* the server asked for a weaker exchange: no second try */
} iw_login;

/* A type ImapLogin takes: a row of the SASL table or IMAP_AUTH_DEFAULT. */
int  iw_auth_type_known(unsigned type);
int  iw_login_start(iw_client *c, iw_login *lg, unsigned type, const char *user,
                    const char *pass);
/* After the command's tagged end: a SCRAM login that ended OK without the server's
 * signature verified (in a continuation or in the tagged OK's [..]) is
 * ST_ERROR_LOGIN_FAILED; 0 otherwise. iw_session_login should call it when the status is
 * OK; if nobody did, iw_login_clear drops the connection of an unverified server. */
int  iw_login_finish(iw_client *c, iw_login *lg);
void iw_login_clear(iw_login *lg);
/* IMAP_AUTH_DEFAULT's one second try (API.md, Auth types), asked after a failed attempt:
 * when lg was a SCRAM exchange the server ended with a tagged NO and showed no sign of an
 * impostor, the next family the server takes (IMAP_AUTH_PLAIN, else IMAP_AUTH_LOGIN unless
 * LOGINDISABLED) into *type with a trace line, and 1; 0 for none. */
int  iw_login_fallback(iw_client *c, const iw_login *lg, unsigned *type);
/* The unencoded SASL initial response of a one-step mechanism (PLAIN, XOAUTH2,
 * OAUTHBEARER, ANONYMOUS) into raw; 0 or ST_ERROR_INVALID_PARAMETER for a value the
 * mechanism cannot carry safely. */
int  iw_sasl_message(unsigned type, const char *user, const char *pass, const char *host,
                     unsigned port, iw_sb *raw);

/* SCRAM, exposed for the unit tests (the RFC vectors need a fixed nonce).
 * iw_scram_start: the client-first message (unencoded) into out; nonce NULL picks a
 * random one. ST_ERROR_INVALID_PARAMETER for a user name or password with a control
 * character. */
int  iw_scram_start(iw_scram *s, unsigned type, const char *user, const char *pass,
                    const char *nonce, iw_sb *out);
/* The server-first message (unencoded, n bytes, no NUL needed) in; the client-final out.
 * A message RFC 5802's grammar refuses, a nonce that does not extend ours, a salt that
 * is not base64, or an iteration count outside 1..IW_SCRAM_MAX_ITER is
 * ST_ERROR_INVALID_RESPONSE; a count below IW_SCRAM_MIN_ITER is ST_ERROR_LOGIN_FAILED.
 * Either way no client-final (no proof) is built. */
int  iw_scram_client_final(iw_scram *s, const char *msg, size_t n, iw_sb *out);
/* The server-final message: 0 when its v= is the server signature we expect, else
 * ST_ERROR_LOGIN_FAILED (missing, wrong, malformed, or an e= error). */
int  iw_scram_verify(iw_scram *s, const char *msg, size_t n);
/* A tagged OK's text ("OK [...] ..."): verifies a base64 server-final carried in its
 * response code; ST_ERROR_LOGIN_FAILED when there is none or it is wrong. */
int  iw_scram_verify_tagged(iw_scram *s, const char *text, size_t n);
void iw_scram_clear(iw_scram *s);
/* type is IMAP_AUTH_SCRAM_SHA1 or IMAP_AUTH_SCRAM_SHA256 */
int  iw_is_scram(unsigned type);

#endif /* IW_AUTH_H */
