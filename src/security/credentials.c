/* credentials.c: SECURITYCREDENTIALS made by the library (strings owned, secrets wiped)
 * and the private copy every connect takes, so the caller's struct may go at once. */
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "creds.h"
#include "ssh_config.h"

/* Structs the library allocated: only these have strings it may free. */
struct iw_owned {
    SECURITYCREDENTIALS pub;
    struct iw_owned    *next;
};

static pthread_mutex_t iw_owned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iw_owned *iw_owned_list;

static struct iw_owned *iw_owned_find_locked(const SECURITYCREDENTIALS *p)
{
    struct iw_owned *o;
    for (o = iw_owned_list; o != NULL; o = o->next)
        if (&o->pub == p)
            return o;
    return NULL;
}

/* Replaces an owned string field with a copy of v; returns 0 or ST_ERROR_OUT_OF_MEMORY. */
static int iw_set_field(LPCTSTR *field, const char *v, int secret)
{
    char *copy = NULL;
    if (v != NULL && (copy = iw_strdup(v)) == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    if (secret)
        iw_free_secret((char *)*field);
    else
        free((char *)*field);
    *field = copy;
    return 0;
}

static void iw_owned_strings_free(SECURITYCREDENTIALS *p)
{
    free((char *)p->lpszCertificate);
    free((char *)p->lpszPrivateKey);
    iw_free_secret((char *)p->lpszPassword);
    free((char *)p->lpszCAFile);
    free((char *)p->lpszCAPath);
    free((char *)p->lpszServerName);
    free((char *)p->lpszTunnelHost);
    free((char *)p->lpszTunnelUser);
    free((char *)p->lpszTunnelKey);
    iw_free_secret((char *)p->lpszTunnelPassword);
    free((char *)p->lpszKnownHosts);
    iw_wipe(p, sizeof *p);
}

LPSECURITYCREDENTIALS ImapCreateSecurityCredentials(DWORD dwProtocol, DWORD dwOptions,
        LPCTSTR lpszCertificate, LPCTSTR lpszPrivateKey, LPCTSTR lpszPassword, LPCTSTR lpszCAFile)
{
    struct iw_owned *o;
    int rc = 0;

    if ((dwProtocol & ~(SECURITY_PROTOCOL_TLS12 | SECURITY_PROTOCOL_TLS13)) != 0 ||
        (dwOptions & ~IW_CREDENTIAL_ALL) != 0) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return NULL;
    }
    o = calloc(1, sizeof *o);
    if (o == NULL) {
        iw_set_error(ST_ERROR_OUT_OF_MEMORY);
        return NULL;
    }
    o->pub.dwSize = sizeof o->pub;
    o->pub.dwProtocol = dwProtocol;
    o->pub.dwOptions = dwOptions;
    rc |= iw_set_field(&o->pub.lpszCertificate, lpszCertificate, 0);
    rc |= iw_set_field(&o->pub.lpszPrivateKey, lpszPrivateKey, 0);
    rc |= iw_set_field(&o->pub.lpszPassword, lpszPassword, 1);
    rc |= iw_set_field(&o->pub.lpszCAFile, lpszCAFile, 0);
    if (rc != 0) {
        iw_owned_strings_free(&o->pub);
        free(o);
        iw_set_error(ST_ERROR_OUT_OF_MEMORY);
        return NULL;
    }
    pthread_mutex_lock(&iw_owned_lock);
    o->next = iw_owned_list;
    iw_owned_list = o;
    pthread_mutex_unlock(&iw_owned_lock);
    return &o->pub;
}

BOOL ImapSetTunnelCredentials(LPSECURITYCREDENTIALS lpCredentials, LPCTSTR lpszTunnelHost,
        UINT nTunnelPort, LPCTSTR lpszUserName, LPCTSTR lpszPrivateKey, LPCTSTR lpszPassword,
        LPCTSTR lpszKnownHosts)
{
    int owned, rc = 0;

    if (lpCredentials == NULL || nTunnelPort > 65535 ||
        lpCredentials->dwSize < offsetof(SECURITYCREDENTIALS, lpszKnownHosts) + sizeof(LPCTSTR)) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    pthread_mutex_lock(&iw_owned_lock);
    owned = iw_owned_find_locked(lpCredentials) != NULL;
    if (owned) {
        rc |= iw_set_field(&lpCredentials->lpszTunnelHost, lpszTunnelHost, 0);
        rc |= iw_set_field(&lpCredentials->lpszTunnelUser, lpszUserName, 0);
        rc |= iw_set_field(&lpCredentials->lpszTunnelKey, lpszPrivateKey, 0);
        rc |= iw_set_field(&lpCredentials->lpszTunnelPassword, lpszPassword, 1);
        rc |= iw_set_field(&lpCredentials->lpszKnownHosts, lpszKnownHosts, 0);
    } else {
        /* A caller-filled struct: it owns its strings, we only point at them. */
        lpCredentials->lpszTunnelHost = lpszTunnelHost;
        lpCredentials->lpszTunnelUser = lpszUserName;
        lpCredentials->lpszTunnelKey = lpszPrivateKey;
        lpCredentials->lpszTunnelPassword = lpszPassword;
        lpCredentials->lpszKnownHosts = lpszKnownHosts;
    }
    lpCredentials->nTunnelPort = nTunnelPort;
    pthread_mutex_unlock(&iw_owned_lock);
    if (rc != 0) {
        iw_set_error(ST_ERROR_OUT_OF_MEMORY);
        return FALSE;
    }
    return TRUE;
}

VOID ImapDeleteSecurityCredentials(LPSECURITYCREDENTIALS lpCredentials)
{
    struct iw_owned **pp, *o = NULL;

    if (lpCredentials == NULL)
        return;
    pthread_mutex_lock(&iw_owned_lock);
    for (pp = &iw_owned_list; *pp != NULL; pp = &(*pp)->next) {
        if (&(*pp)->pub == lpCredentials) {
            o = *pp;
            *pp = o->next;
            break;
        }
    }
    pthread_mutex_unlock(&iw_owned_lock);
    if (o != NULL) {
        iw_owned_strings_free(&o->pub);
        free(o);
    } else {
        /* Not ours: the strings are the caller's, but the secrets' pointers go. */
        lpCredentials->lpszPassword = NULL;
        lpCredentials->lpszTunnelPassword = NULL;
    }
}

/* ---- the connect-time private copy ---- */

/* Reads field f only if the caller's dwSize says the struct has it. */
#define IW_HAS(in, f) ((in)->dwSize >= offsetof(SECURITYCREDENTIALS, f) + sizeof((in)->f))

int iw_creds_copy(const SECURITYCREDENTIALS *in, iw_creds **out)
{
    char why[8];
    return iw_creds_copy_why(in, out, why, sizeof why);
}

int iw_creds_copy_why(const SECURITYCREDENTIALS *in, iw_creds **out, char *why, size_t size)
{
    iw_creds *c;
    int bad = 0, rc;

    *out = NULL;
    if (in == NULL)
        return 0;
    if (in->dwSize < offsetof(SECURITYCREDENTIALS, lpszCertificate))
        return ST_ERROR_INVALID_PARAMETER;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    c->protocol = in->dwProtocol;
    c->options = in->dwOptions;
#define IW_COPY(f, dst) \
    if (IW_HAS(in, f) && in->f != NULL && (c->dst = iw_strdup(in->f)) == NULL) bad = 1
    IW_COPY(lpszCertificate, certificate);
    IW_COPY(lpszPrivateKey, private_key);
    IW_COPY(lpszPassword, password);
    IW_COPY(lpszCAFile, ca_file);
    IW_COPY(lpszCAPath, ca_path);
    IW_COPY(lpszServerName, server_name);
    IW_COPY(lpszTunnelHost, tunnel_host);
    IW_COPY(lpszTunnelUser, tunnel_user);
    IW_COPY(lpszTunnelKey, tunnel_key);
    IW_COPY(lpszTunnelPassword, tunnel_password);
    IW_COPY(lpszKnownHosts, known_hosts);
#undef IW_COPY
    if (IW_HAS(in, nTunnelPort))
        c->tunnel_port = in->nTunnelPort;
    if (bad) {
        iw_creds_free(c);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    if ((c->protocol & ~(SECURITY_PROTOCOL_TLS12 | SECURITY_PROTOCOL_TLS13)) != 0 ||
        (c->options & ~IW_CREDENTIAL_ALL) != 0 || c->tunnel_port > 65535) {
        iw_creds_free(c);
        return ST_ERROR_INVALID_PARAMETER;
    }
    /* The alias becomes the route and fields now, once: every layer after this sees
     * only explicit hops, as if the caller had written them. */
    rc = iw_ssh_config_apply(c, why, size);
    if (rc != 0) {
        iw_creds_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void iw_creds_forget_secrets(iw_creds *c)
{
    if (c == NULL)
        return;
    iw_free_secret(c->password);
    iw_free_secret(c->tunnel_password);
    c->password = NULL;
    c->tunnel_password = NULL;
}

void iw_creds_free(iw_creds *c)
{
    if (c == NULL)
        return;
    free(c->certificate);
    free(c->private_key);
    iw_free_secret(c->password);
    free(c->ca_file);
    free(c->ca_path);
    free(c->server_name);
    free(c->tunnel_host);
    free(c->tunnel_user);
    free(c->tunnel_key);
    iw_free_secret(c->tunnel_password);
    free(c->known_hosts);
    free(c->global_known_hosts);
    free(c->ssh_proxy_transport);
    free(c);
}
