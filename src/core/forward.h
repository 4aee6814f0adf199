/* forward.h: library-managed SSH port-forwards, used by ImapCreatePortForward and by
 * connects with CREDENTIAL_TUNNEL_FORWARD. */
#ifndef IW_FORWARD_H
#define IW_FORWARD_H

#include "iw.h"

struct iw_forward;
/* Authenticates the SSH session and listens on 127.0.0.1:local_port (0 = any). */
int      iw_forward_open(const SECURITYCREDENTIALS *creds, const char *remote_host,
                         unsigned remote_port, unsigned local_port, unsigned timeout_ms,
                         struct iw_forward **out);
unsigned iw_forward_port(const struct iw_forward *fw);
/* Stops the listener and every bridge, then frees: the port refuses afterwards. */
void     iw_forward_close(struct iw_forward *fw);

#endif /* IW_FORWARD_H */
