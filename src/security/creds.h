/* creds.h: the library's private, owned copy of a caller's SECURITYCREDENTIALS.
 * Transports and the TLS/SSH code read this, never the caller's struct. */
#ifndef IW_CREDS_H
#define IW_CREDS_H

#include "../core/runtime/runtime.h"

struct iw_creds {
    DWORD    protocol;         /* SECURITY_PROTOCOL_TLS12 | _TLS13; 0 = both */
    DWORD    options;          /* CREDENTIAL_* */
    char    *certificate, *private_key, *password;
    char    *ca_file, *ca_path, *server_name;
    char    *tunnel_host, *tunnel_user, *tunnel_key, *tunnel_password, *known_hosts;
    unsigned tunnel_port;
    /* From the SSH configuration (CREDENTIAL_TUNNEL_SSH_CONFIG), seconds, 0 = not set:
     * ConnectTimeout bounds the TCP phase of each SSH hop, ServerAliveInterval paces
     * keepalives of the sessions. */
    unsigned ssh_connect_timeout, ssh_alive_interval;
    /* From the SSH configuration too: GlobalKnownHostsFile (NULL: /etc/ssh/ssh_known_hosts
     * when no user file is named, else none) and HashKnownHosts for accept-new. */
    char    *global_known_hosts;
    unsigned ssh_hash_known_hosts;
    /* ProxyCommand of the route's first hop, as a transport text ("command:..."), or NULL:
     * what carries the hop to the first SSH server unless the caller names a transport. */
    char    *ssh_proxy_transport;
};

typedef struct iw_creds iw_creds;
#define IW_CREDENTIAL_ALL \
    (CREDENTIAL_TUNNEL_FORWARD | CREDENTIAL_TUNNEL_SSH_CONFIG | CREDENTIAL_TUNNEL_ACCEPT_NEW)
int  iw_creds_copy(const SECURITYCREDENTIALS *in, iw_creds **out);
/* The same, with why (may be NULL) saying what in the SSH configuration could not be
 * honoured when that is the reason for ST_ERROR_INVALID_PARAMETER. */
int  iw_creds_copy_why(const SECURITYCREDENTIALS *in, iw_creds **out, char *why, size_t size);
void iw_creds_free(iw_creds *c);
/* Wipes and drops the passphrase and the tunnel password: once the TLS context is
 * loaded and the chain is built (the SSH layer has taken its own copy), a connect
 * keeps no secret it will not use again. */
void iw_creds_forget_secrets(iw_creds *c);

#endif /* IW_CREDS_H */
