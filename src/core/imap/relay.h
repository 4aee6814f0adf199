/* relay.h: the byte relay behind ImapRelay: the session's stream, whatever its layers,
 * joined to two descriptors of the caller until one side ends. */
#ifndef IW_RELAY_H
#define IW_RELAY_H

#include "client.h"

/* Runs until in ends (then the server's output for up to drain_ms of silence), the
 * server closes or out's reader goes; fills info. 0 or an ST_ERROR_*. */
int iw_relay(iw_client *c, int in, int out, unsigned drain_ms, IMAPRELAYINFO *info);

#endif /* IW_RELAY_H */
