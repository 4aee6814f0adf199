/* forward.h: library-managed SSH port-forwards, used by ImapCreatePortForward and by
 * connects with CREDENTIAL_TUNNEL_FORWARD. */
#ifndef IW_FORWARD_H
#define IW_FORWARD_H

#include "../core/transport/chain.h"

struct iw_forward;
/* Authenticates the SSH session and listens on 127.0.0.1:local_port (0 = any); only
 * connections whose peer socket belongs to our effective uid are forwarded. */
int      iw_forward_open(const SECURITYCREDENTIALS *creds, const char *remote_host,
                         unsigned remote_port, unsigned local_port, unsigned timeout_ms,
                         struct iw_forward **out);
/* A connect's own forward (CREDENTIAL_TUNNEL_FORWARD): like the above, but bridging one
 * end of a socket pair, so nothing on the machine can reach it but us. far gives the
 * channel's host and port, the timeout, and the SSH hop's local address and DNS servers.
 * hold: authenticate now, on the caller's thread (a blocking connect); otherwise the
 * loop sets the SSH side up and the pair's other end reports its error (an async one). */
int      iw_forward_open_private(const SECURITYCREDENTIALS *creds, const imapwire_endpoint *far,
                                 int hold, struct iw_forward **out);
/* The bottom layer of that connect: the other end of the pair (taken once). */
int      iw_forward_client_layer(struct iw_forward *fw, const imapwire_endpoint *ep,
                                 const iw_layer_sink *sink, void *core, imapwire_layer **out);
unsigned iw_forward_port(const struct iw_forward *fw);
/* Stops the listener and every bridge, then frees: the port refuses afterwards. */
void     iw_forward_close(struct iw_forward *fw);

#endif /* IW_FORWARD_H */
