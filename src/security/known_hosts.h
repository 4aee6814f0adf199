/* known_hosts.h: SSH host-key policy as OpenSSH's known_hosts files state it: which files,
 * which algorithms to offer a host first, whether a key is acceptable, and accept-new. */
#ifndef IW_KNOWN_HOSTS_H
#define IW_KNOWN_HOSTS_H

#include <stddef.h>

#define IW_KH_FILES_MAX 4

/* The files consulted for one SSH server, resolved once per connect (the SSH session
 * cache keys on them): user files first (the ones accept-new writes to), then global. */
typedef struct iw_kh_files {
    char *path[IW_KH_FILES_MAX];
    int   n, nuser;                /* nuser: how many of path[] are user files */
    int   accept_new;              /* an unknown key is accepted and recorded */
    int   hash_new;                /* ... with a hashed name (HashKnownHosts yes) */
} iw_kh_files;

/* user: the caller's file, or NULL for ~/.ssh/known_hosts and ~/.ssh/known_hosts2 (home
 * from secure_getenv("HOME"), else the effective user's password entry). global: a file,
 * or NULL for /etc/ssh/ssh_known_hosts when user is NULL, none when the caller named one.
 * 0 or ST_ERROR_OUT_OF_MEMORY. */
int  iw_kh_files_resolve(const char *user, const char *global, iw_kh_files *out);
void iw_kh_files_clear(iw_kh_files *f);

/* Says what a connect should hear (a skipped line, a key that cannot be verified). */
typedef void (*iw_kh_note)(void *arg, const char *text);

/* The host key algorithms to offer host:port, as libssh2_session_method_pref takes them:
 * the types on file for it first (in file order), then the rest of supported (libssh2's
 * comma-separated list, in its order). 1 with out filled, 0 when no key of a usable type
 * is on file (keep libssh2's order), ST_ERROR_OUT_OF_MEMORY. */
int  iw_kh_algorithms(const iw_kh_files *f, const char *host, unsigned port,
                      const char *supported, char *out, size_t size, iw_kh_note note, void *arg);

/* The server's key (libssh2_session_hostkey's blob) against the files: 0 when on file,
 * ST_ERROR_SSH_HOST_KEY_MISMATCH when revoked or when another key of its type is on file,
 * else ST_ERROR_SSH_HOST_KEY_UNKNOWN. With accept_new an unknown key is appended to the
 * first user file that can be written, and 0 returned. */
int  iw_kh_check(const iw_kh_files *f, const char *host, unsigned port,
                 const unsigned char *blob, size_t len, iw_kh_note note, void *arg);

#endif /* IW_KNOWN_HOSTS_H */
