/* session.h: the session calls behind ImapLogin, ImapCommand, ImapSelectMailbox and
 * ImapGetMessage; each returns 0 or an ST_ERROR_* code. */
#ifndef IW_SESSION_H
#define IW_SESSION_H

#include "client.h"

int iw_session_login(iw_client *c, unsigned type, const char *user, const char *pass);
int iw_session_command(iw_client *c, const char *text, char *result, size_t max);
int iw_session_select(iw_client *c, const char *mailbox, IMAPMAILBOX *mb);
int iw_session_fetch(iw_client *c, unsigned id, unsigned part, char **body, size_t *len);

#endif /* IW_SESSION_H */
