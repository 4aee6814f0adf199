/* ssh_policy.h: what an SSH tunnel layer needs from the connection it serves: the SSH
 * server, the account and secrets to authenticate with, and the known-hosts file. */
#ifndef IW_SSH_POLICY_H
#define IW_SSH_POLICY_H

#include "../core/transport/chain.h"
#include "creds.h"

typedef struct iw_ssh_params {
    const char *host;              /* the SSH server */
    unsigned    port;              /* 22 when the caller said 0 */
    const char *user;
    const char *key;               /* private key file, or NULL */
    const char *password;          /* key passphrase, or account password */
    const char *known_hosts;       /* NULL: ~/.ssh/known_hosts */
    /* What carries the hop to the SSH server: a transport text ("socks5:...",
     * "httpconnect:...", "command:...", a filter over TCP), or NULL for TCP. It may hold a
     * proxy password: read only while the layer is created, never kept. */
    const char *transport;
    /* Called when the layer enters a new SSH phase (TCP to the server, handshake and host
     * key, authentication, channel): each gets its own nTimeout, so the connection's
     * deadline restarts too. NULL: nothing to tell. */
    void      (*phase_started)(void *core);
} iw_ssh_params;

/* Implemented by the core from the connection's owned credentials. */
int iw_core_ssh_params(void *core, iw_ssh_params *out);

/* The built-in SSH transport type (src/transports/ssh.c) and its process-wide state. */
extern const imapwire_transport_type iw_transport_ssh;
int  iw_ssh_global_init(void);
/* A reference to an authenticated session for core's credentials (no channel); each
 * phase of setting it up is bounded by ep->timeout_ms. */
int  iw_ssh_hold(void *core, const iw_layer_sink *sink, const imapwire_endpoint *ep,
                 void **hold);
void iw_ssh_unhold(void *hold);
void iw_ssh_global_cleanup(void);

#endif /* IW_SSH_POLICY_H */
