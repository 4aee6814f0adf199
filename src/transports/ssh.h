/* ssh.h: the built-in SSH tunnel transport (ssh_*.c): its type, its process-wide libssh2
 * state, and authenticated sessions held without a channel (port-forwards). */
#ifndef IW_SSH_H
#define IW_SSH_H

#include "../core/transport/chain.h"
#include "../security/ssh_policy.h"

extern const imapwire_transport_type iw_transport_ssh;
int  iw_ssh_global_init(void);
/* A reference to an authenticated session for these parameters (no channel); each
 * phase of setting it up is bounded by ep->timeout_ms; sink and core get its traces. */
int  iw_ssh_hold(const iw_ssh_params *p, const iw_layer_sink *sink, void *core,
                 const imapwire_endpoint *ep, void **hold);
void iw_ssh_unhold(void *hold);
void iw_ssh_global_cleanup(void);

#endif /* IW_SSH_H */
