/* auth.h: the login exchange builder (auth.c) used by ImapLogin.
 * It owns the secret bytes of one login and wipes them when cleared. */
#ifndef IW_AUTH_H
#define IW_AUTH_H

#include "client.h"

typedef struct iw_login {
    iw_cmd   cmd;
    unsigned type;        /* the mechanism actually used */
    iw_sb    ir;          /* base64 SASL response, sent at once or on "+" */
    int      ir_sent;
} iw_login;

int  iw_login_start(iw_client *c, iw_login *lg, unsigned type, const char *user,
                    const char *pass);
void iw_login_clear(iw_login *lg);
/* The unencoded SASL initial response of a one-step mechanism (PLAIN, XOAUTH2,
 * OAUTHBEARER, ANONYMOUS) into raw; 0 or ST_ERROR_INVALID_PARAMETER for a value the
 * mechanism cannot carry safely. */
int  iw_sasl_message(unsigned type, const char *user, const char *pass, const char *host,
                     unsigned port, iw_sb *raw);

#endif /* IW_AUTH_H */
