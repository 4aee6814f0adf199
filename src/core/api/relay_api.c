/* relay_api.c: ImapRelay (extension), the facade of the byte relay in imap/relay.c:
 * argument checks, the handle's lookup and call bracket, the error. */
#include <fcntl.h>
#include <string.h>
#include "../imap/relay.h"
#include "api.h"

INT ImapRelay(HCLIENT hClient, INT nInput, INT nOutput, UINT nTimeout, LPIMAPRELAYINFO lpInfo)
{
    iw_client *c = iw_api_client_ready(hClient);
    IMAPRELAYINFO info;
    int rc;

    if (c == NULL)
        return IMAP_ERROR;
    if (lpInfo != NULL && lpInfo->dwSize < sizeof *lpInfo) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    if (nInput < 0 || nOutput < 0 || fcntl(nInput, F_GETFL) < 0 || fcntl(nOutput, F_GETFL) < 0 ||
        nTimeout > 86400) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    memset(&info, 0, sizeof info);
    info.dwSize = sizeof info;
    iw_api_call_enter(c);
    rc = c->io.broken || c->io.top == NULL
             ? (int)ST_ERROR_CONNECTION_CLOSED
             : iw_relay(c, nInput, nOutput, nTimeout ? nTimeout * 1000u : c->cfg.timeout_ms,
                        &info);
    /* whatever happened, the conversation is the caller's now: no LOGOUT of ours */
    iw_client_break(c, rc);
    c->sess.state = IW_LOGOUT;
    iw_api_call_leave(c);
    if (lpInfo != NULL)
        *lpInfo = info;
    if (rc != 0) {
        iw_set_error((DWORD)rc);
        return IMAP_ERROR;
    }
    return 0;
}
