/* ssh_config.h: CREDENTIAL_TUNNEL_SSH_CONFIG: a Host alias of the OpenSSH client
 * configuration turned into the tunnel fields of a connect's credentials. */
#ifndef IW_SSH_CONFIG_H
#define IW_SSH_CONFIG_H

#include <stddef.h>
#include "creds.h"

/* What the configuration says for one host, first value wins per keyword as in ssh.
 * Strings are owned (NULL: not set); numbers are 0 when not set. */
typedef struct iw_ssh_config {
    char    *hostname, *user, *identity_file, *proxy_jump, *known_hosts, *global_known_hosts;
    char    *proxy_command;        /* as written (tokens not expanded); "none" too */
    unsigned port;
    int      identities_only;      /* -1 not set, 0 no, 1 yes */
    int      hash_known_hosts;     /* -1 not set, 0 no, 1 yes */
    int      accept_new;           /* StrictHostKeyChecking: -1 not set, 1 accept-new, 0 else */
    unsigned connect_timeout;      /* seconds */
    unsigned alive_interval;       /* seconds */
} iw_ssh_config;

/* Reads path (and what it includes) for alias. A missing file is an empty configuration
 * when must_exist is 0. 0, or ST_ERROR_INVALID_PARAMETER with why saying which line and
 * keyword could not be honoured, or ST_ERROR_OUT_OF_MEMORY. */
int  iw_ssh_config_lookup(const char *path, int must_exist, const char *alias,
                          iw_ssh_config *out, char *why, size_t why_size);
void iw_ssh_config_clear(iw_ssh_config *cfg);
/* Marks the tri-state fields "not set" (after a memset to 0). */
void iw_ssh_config_unset(iw_ssh_config *cfg);
/* A decimal number up to max, digits only, as ssh reads ports and seconds: 0 or -1. */
int  iw_ssh_config_number(const char *v, unsigned max, unsigned *out);

/* (ssh_route.c) Rewrites k's tunnel fields from the configuration (IMAPWIRE_SSH_CONFIG, else
 * ~/.ssh/config): the host list becomes the explicit route (ProxyJump hops first, each
 * resolved through the file too), and user, port, key, known_hosts, ConnectTimeout and
 * ServerAliveInterval are filled where the caller left them unset. */
int  iw_ssh_config_apply(iw_creds *k, char *why, size_t why_size);

/* A comma-separated host pattern list (*, ?, case-insensitive, !negation) against s, as
 * ssh reads Host lines and known_hosts names: -1 when a negated pattern matches (the list
 * can never apply), 1 when a positive one does, else 0. */
int  iw_ssh_pattern_list_match(const char *s, const char *list);

/* The effective user's home ($HOME by secure_getenv when absolute, else the password entry
 * of geteuid(), by getpwuid_r since connects on several threads may ask at once) and name. */
typedef struct iw_account {
    char home[2048];               /* room for "/.ssh/..." after it */
    char name[256];
} iw_account;
void iw_account_get(iw_account *a);

#endif /* IW_SSH_CONFIG_H */
