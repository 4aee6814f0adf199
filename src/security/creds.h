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
};

typedef struct iw_creds iw_creds;
int  iw_creds_copy(const SECURITYCREDENTIALS *in, iw_creds **out);
void iw_creds_free(iw_creds *c);
/* Wipes and drops the passphrase and the tunnel password: once the TLS context is
 * loaded and the chain is built (the SSH layer has taken its own copy), a connect
 * keeps no secret it will not use again. */
void iw_creds_forget_secrets(iw_creds *c);

#endif /* IW_CREDS_H */
