/* own_loop_api.c: the extension's entry points for connects driven by the caller's own
 * event loop: argument checks and handle lookup, then one call into own_loop.c. */
#include "api.h"

static int iw_fail_with(int err)
{
    iw_set_error((DWORD)err);
    return IMAP_ERROR;
}

HCLIENT ImapConnectStart(const IMAPCONNECTINFO *lpInfo)
{
    return iw_api_connect(lpInfo, 1);
}

/* Only handles that ImapConnectStart made; any other live one is the wrong kind. */
static iw_client *iw_own_client(HCLIENT h)
{
    iw_client *c = iw_api_client(h);
    if (c != NULL && c->io.own == NULL) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return NULL;
    }
    return c;
}

INT ImapConnectSockets(HCLIENT hClient, LPIMAPSOCKET lpSockets, INT nMaxSockets,
                       INT *lpnTimeoutMs)
{
    iw_client *c = iw_own_client(hClient);
    int count = 0, timeout = -1, rc;
    if (c == NULL)
        return IMAP_ERROR;
    if (lpnTimeoutMs == NULL || nMaxSockets < 0 || (lpSockets == NULL && nMaxSockets > 0))
        return iw_fail_with(ST_ERROR_INVALID_PARAMETER);
    rc = iw_own_sockets(c, lpSockets, nMaxSockets, &count, &timeout);
    if (rc != 0)
        return iw_fail_with(rc);
    *lpnTimeoutMs = timeout;
    return count;
}

INT ImapConnectAction(HCLIENT hClient, INT nSocket, DWORD dwEvents)
{
    iw_client *c = iw_own_client(hClient);
    int rc;
    if (c == NULL)
        return IMAP_ERROR;
    rc = iw_own_action(c, nSocket, dwEvents);
    if (rc == IMAPWIRE_AGAIN)
        return IMAP_CONNECT_PENDING;
    if (rc != 0)
        return iw_fail_with(rc);
    return 0;
}
