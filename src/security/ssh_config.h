/* ssh_config.h: CREDENTIAL_TUNNEL_SSH_CONFIG: a Host alias of the OpenSSH client
 * configuration turned into the tunnel fields of a connect's credentials. */
#ifndef IW_SSH_CONFIG_H
#define IW_SSH_CONFIG_H

#include <stddef.h>
#include "creds.h"

/* What the configuration says for one host, first value wins per keyword as in ssh.
 * Strings are owned (NULL: not set); numbers are 0 when not set. */
typedef struct iw_ssh_config {
    char    *hostname, *user, *identity_file, *proxy_jump, *known_hosts;
    unsigned port;
    int      identities_only;      /* -1 not set, 0 no, 1 yes */
    unsigned connect_timeout;      /* seconds */
    unsigned alive_interval;       /* seconds */
} iw_ssh_config;

/* Reads path (and what it includes) for alias. A missing file is an empty configuration
 * when must_exist is 0. 0, or ST_ERROR_INVALID_PARAMETER with why saying which line and
 * keyword could not be honoured, or ST_ERROR_OUT_OF_MEMORY. */
int  iw_ssh_config_lookup(const char *path, int must_exist, const char *alias,
                          iw_ssh_config *out, char *why, size_t why_size);
void iw_ssh_config_clear(iw_ssh_config *cfg);

/* Rewrites k's tunnel fields from the configuration (IMAPWIRE_SSH_CONFIG, else
 * ~/.ssh/config): the host list becomes the explicit route (ProxyJump hops first, each
 * resolved through the file too), and user, port, key, known_hosts, ConnectTimeout and
 * ServerAliveInterval are filled where the caller left them unset. */
int  iw_ssh_config_apply(iw_creds *k, char *why, size_t why_size);

#endif /* IW_SSH_CONFIG_H */
