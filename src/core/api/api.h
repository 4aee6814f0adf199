/* api.h: what the facade's files share: the one connect entry behind every Imap*Connect*
 * and the owner-checked handle lookup. */
#ifndef IW_API_H
#define IW_API_H

#include "../imap/client.h"

/* Validates, prepares and starts a connect; own_loop: leave it to the caller's loop
 * (ImapConnectStart). INVALID_CLIENT with the error set on failure. */
HCLIENT    iw_api_connect(const IMAPCONNECTINFO *in, int own_loop);
/* The live client behind h for the calling thread, a running connect included; NULL
 * with the error set (not initialized, invalid handle, not the owner). */
iw_client *iw_api_client(HCLIENT h);
/* The same for a call that needs the connect finished (ST_ERROR_IN_PROGRESS until then). */
iw_client *iw_api_client_ready(HCLIENT h);
/* Brackets a call that uses the chain: io.lock held, callbacks may not call back in. */
void       iw_api_call_enter(iw_client *c);
void       iw_api_call_leave(iw_client *c);

#endif /* IW_API_H */
