/* state_api.c: ImapGetState and ImapGetAuthType (extensions): what a session is now and
 * which mechanism logged it in, read under the handle's call bracket, no I/O. */
#include "api.h"

INT ImapGetState(HCLIENT hClient)
{
    iw_client *c = iw_api_client_ready(hClient);
    int state;
    if (c == NULL)
        return IMAP_ERROR;
    iw_api_call_enter(c);
    state = c->sess.state;
    iw_api_call_leave(c);
    switch (state) {
    case IW_NOT_AUTH: return IMAP_STATE_NOT_AUTHENTICATED;
    case IW_AUTH:     return IMAP_STATE_AUTHENTICATED;
    case IW_SELECTED: return IMAP_STATE_SELECTED;
    default:          return IMAP_STATE_LOGOUT;
    }
}

INT ImapGetAuthType(HCLIENT hClient)
{
    iw_client *c = iw_api_client_ready(hClient);
    int done;
    unsigned type;
    if (c == NULL)
        return IMAP_ERROR;
    iw_api_call_enter(c);
    done = c->sess.auth_done;
    type = c->sess.auth_used;
    iw_api_call_leave(c);
    if (!done) {
        iw_set_error(ST_ERROR_NOT_AUTHENTICATED);
        return IMAP_ERROR;
    }
    return (INT)type;
}
