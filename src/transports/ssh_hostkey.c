/* ssh_hostkey.c: the SSH handshake and the host key around it: the algorithms offered (types
 * on file first), the key's check against known_hosts (its policy: security/known_hosts.c). */
#define _GNU_SOURCE
#include <string.h>
#include <openssl/evp.h>
#include "ssh_internal.h"

static void ssh_fingerprint(ssh_session *s)
{
    const char *h = libssh2_hostkey_hash(s->s, LIBSSH2_HOSTKEY_HASH_SHA256);
    unsigned char b64[48];
    int n;
    if (h == NULL)
        return;
    n = EVP_EncodeBlock(b64, (const unsigned char *)h, 32);
    /* ssh-keygen -l prints base64 without the '=' padding */
    while (n > 0 && b64[n - 1] == '=')
        n--;
    b64[n] = '\0';
    memcpy(s->fingerprint, "SHA256:", 7);
    memcpy(s->fingerprint + 7, b64, (size_t)n + 1);     /* 43 characters and the NUL */
}

static void ssh_note(void *arg, const char *text)
{
    imapwire_layer *l = arg;
    l->host->trace(l, "ssh: %s", text);
}

/* Before the handshake: the host key algorithms with the types on file for this server
 * first, so the server shows the key the user has (a server with no key on file keeps
 * libssh2's order). Without this, libssh2 would pick ECDSA from a server that also has
 * the Ed25519 key ssh recorded. */
int ssh_offer_hostkeys(ssh_session *s, imapwire_layer *l)
{
    const char **algs = NULL;
    iw_sb all = {0};
    char pref[1024];
    int i, n, rc;
    n = libssh2_session_supported_algs(s->s, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (n <= 0)
        return 0;                  /* libssh2 keeps its own order */
    for (i = 0; i < n; i++) {
        if (i > 0)
            iw_sb_add(&all, ",", 1);
        iw_sb_str(&all, algs[i]);
    }
    libssh2_free(s->s, (void *)algs);
    rc = all.err ? all.err
                 : iw_kh_algorithms(&s->kh, s->host, s->ep.port, all.p, pref, sizeof pref,
                                    ssh_note, l);
    iw_sb_free(&all);
    if (rc == 1) {
        if (libssh2_session_method_pref(s->s, LIBSSH2_METHOD_HOSTKEY, pref) != 0)
            return ST_ERROR_OUT_OF_MEMORY;
        l->host->trace(l, "ssh: %s:%u: algorithms offered, types on file first: %s", s->host,
                       s->ep.port, pref);
        rc = 0;
    }
    return rc;
}

/* After it: the server's key against the known_hosts files (accept-new may add it). */
static int ssh_check_hostkey(ssh_session *s, imapwire_layer *l)
{
    const char *key;
    size_t len = 0;
    int type = 0;

    key = libssh2_session_hostkey(s->s, &len, &type);
    if (key == NULL)
        return ST_ERROR_SSH_HOST_KEY_UNKNOWN;
    ssh_fingerprint(s);
    return iw_kh_check(&s->kh, s->host, s->ep.port, (const unsigned char *)key, len, ssh_note, l);
}

/* S_HANDSHAKE: the key exchange. */
static int ssh_handshake_state(ssh_session *s)
{
    int rc = libssh2_session_handshake(s->s, (libssh2_socket_t)s->fd);
    return ssh_state_result(s, rc, ST_ERROR_CONNECTION_CLOSED, S_HOSTKEY);
}

/* S_HOSTKEY: the key the server showed, against the files. */
static int ssh_hostkey_state(ssh_session *s, imapwire_layer *l)
{
    int rc = ssh_check_hostkey(s, l);
    if (rc != 0) {
        l->host->trace(l, "ssh: %s:%u host key %s not accepted", s->host, s->ep.port,
                       s->fingerprint);
        return ssh_session_die(s, rc);
    }
    l->host->trace(l, "ssh: %s:%u host key %s known", s->host, s->ep.port, s->fingerprint);
    s->state = S_AUTH_LIST;
    return SSH_STEP_NEXT;
}

int ssh_hostkey_step(ssh_session *s, imapwire_layer *l)
{
    return s->state == S_HANDSHAKE ? ssh_handshake_state(s) : ssh_hostkey_state(s, l);
}
