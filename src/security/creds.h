/* creds.h: the library's private, owned copy of a caller's SECURITYCREDENTIALS.
 * Transports and the TLS/SSH code read this, never the caller's struct. */
#ifndef IW_CREDS_H
#define IW_CREDS_H

#include "../core/iw.h"

struct iw_creds {
    DWORD    protocol;         /* SECURITY_PROTOCOL_TLS12 | _TLS13; 0 = both */
    DWORD    options;          /* CREDENTIAL_* */
    char    *certificate, *private_key, *password;
    char    *ca_file, *ca_path, *server_name;
    char    *tunnel_host, *tunnel_user, *tunnel_key, *tunnel_password, *known_hosts;
    unsigned tunnel_port;
};

#endif /* IW_CREDS_H */
