/* ssh_policy.h: what an SSH tunnel layer needs from the connection it serves: the SSH
 * server, the account and secrets to authenticate with, and the known-hosts file. */
#ifndef IW_SSH_POLICY_H
#define IW_SSH_POLICY_H

#include "../core/transport/chain.h"
#include "creds.h"

/* The parameters an "ssh" layer is created with (imapwire_layer.params). The layer
 * reads them in create and keeps copies of what it needs, so they need only live
 * until iw_layer_new returns. */
typedef struct iw_ssh_params {
    size_t      struct_size;       /* sizeof(iw_ssh_params) */
    const char *host;              /* the SSH server, or a jump-host list ending with it
                                      ("[user@]host[:port],...", see ssh_hops.h) */
    unsigned    port;              /* 22 when the caller said 0; hops' default */
    const char *user;              /* hops' default user */
    const char *key;               /* private key file, or NULL */
    const char *password;          /* key passphrase, or account password */
    const char *known_hosts;       /* NULL: ~/.ssh/known_hosts and known_hosts2 */
    const char *known_hosts_global; /* NULL: see iw_kh_files_resolve */
    /* What carries the hop to the SSH server: a transport text ("socks5:...",
     * "httpconnect:...", "command:...", a filter over TCP), or NULL for TCP. It may hold a
     * proxy password: read only while the layer is created, never kept. */
    const char *transport;
    /* Called when the layer enters a new SSH phase (TCP to the server, handshake and host
     * key, authentication, channel): each gets its own nTimeout, so the connection's
     * deadline restarts too. NULL: nothing to tell. */
    void      (*phase_started)(void *core);
    unsigned    connect_timeout_ms; /* 0, or a shorter bound for each hop's TCP phase */
    unsigned    alive_interval_s;   /* 0, or seconds between keepalives of the session */
    int         accept_new;         /* an unknown host key is accepted and recorded */
    int         hash_known_hosts;   /* ... under a hashed name */
} iw_ssh_params;

/* Nonzero when the tunnel host list parses with the credentials' user and port as the
 * hops' defaults (every hop then has a user, a host and a port). */
int iw_ssh_route_valid(const iw_creds *k);

/* The parameters for a connect's tunnel credentials: 0, or ST_ERROR_INVALID_PARAMETER
 * when they name no SSH server or user. Strings point into k. */
static inline int iw_ssh_params_from(const iw_creds *k, const char *transport,
                                     void (*phase_started)(void *core), iw_ssh_params *out)
{
    if (k == NULL || k->tunnel_host == NULL || !iw_ssh_route_valid(k))
        return ST_ERROR_INVALID_PARAMETER;
    out->struct_size = sizeof *out;
    out->host = k->tunnel_host;
    out->port = k->tunnel_port ? k->tunnel_port : 22;
    out->user = k->tunnel_user;
    out->key = k->tunnel_key;
    out->password = k->tunnel_password;
    out->known_hosts = k->known_hosts;
    out->known_hosts_global = k->global_known_hosts;
    out->accept_new = (k->options & CREDENTIAL_TUNNEL_ACCEPT_NEW) != 0;
    out->hash_known_hosts = k->ssh_hash_known_hosts != 0;
    /* the caller's transport wins over the SSH configuration's ProxyCommand */
    out->transport = transport != NULL && *transport != '\0' ? transport : k->ssh_proxy_transport;
    out->phase_started = phase_started;
    out->connect_timeout_ms = k->ssh_connect_timeout * 1000u;
    out->alive_interval_s = k->ssh_alive_interval;
    return 0;
}

#endif /* IW_SSH_POLICY_H */
