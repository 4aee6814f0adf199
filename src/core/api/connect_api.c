/* connect_api.c: the connect entry points (ImapConnect, ImapConnectEx, ImapAsyncConnect):
 * the arguments checked and copied into a new client, then its run begun and handed on. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../runtime/loop.h"
#include "../../security/ssh_policy.h"
#include "api.h"
#include "../../security/tls_policy.h"
#include "../../transports/forward.h"
#include "../../transports/resolve.h"

static int iw_has_crlf(const char *s)
{
    for (; s != NULL && *s; s++)
        if (*s == '\r' || *s == '\n')
            return 1;
    return 0;
}

#define IW_ALL_OPTIONS (IMAP_OPTION_IDENTIFY | IMAP_OPTION_TUNNEL | IMAP_OPTION_TRUSTEDSITE | \
                        IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_SECURE_IMPLICIT | \
                        IMAP_OPTION_FREETHREAD)

/* Reads field f of an IMAPCONNECTINFO only if the caller's dwSize covers it. */
#define IW_INFO(in, f) \
    ((in)->dwSize >= offsetof(IMAPCONNECTINFO, f) + sizeof((in)->f) ? (in)->f : 0)

/* The TLS side of a secure connect, settled before any byte is sent: the shared context
 * (a bad CA file or client key fails here), the name to verify, the resumption key. */
static int iw_prepare_tls(iw_client *c, const char *host, unsigned port)
{
    const char *name = c->cfg.creds ? c->cfg.creds->server_name : NULL;
    size_t n;

    /* A forward the caller made says nothing about the server's name: it must be given. */
    if (name == NULL && (c->cfg.options & IMAP_OPTION_TUNNEL) &&
        (c->cfg.creds == NULL || c->cfg.creds->tunnel_host == NULL) &&
        !(c->cfg.options & IMAP_OPTION_TRUSTEDSITE))
        return ST_ERROR_INVALID_PARAMETER;
    if (name == NULL)
        name = host;
    n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
        name++;
        n -= 2;
    }
    if (n == 0)
        return ST_ERROR_INVALID_PARAMETER;
    return iw_tls_use_new(c->cfg.creds, host, port, name, n,
                          !(c->cfg.options & IMAP_OPTION_TRUSTEDSITE), &c->cfg.tls);
}

/* *out = a copy of the caller's value, else of the environment variable env_name if set
 * and not empty (secure_getenv: a setuid or file-capability program ignores the
 * environment), else NULL. A copy that failed must not read as "none given": the connect
 * would go direct instead of through the caller's transport, or ask the system's DNS. */
static int iw_copy_setting(const char *given, const char *env_name, char **out)
{
    const char *v = given;
    if (v == NULL && env_name != NULL && (v = secure_getenv(env_name)) != NULL && *v == '\0')
        v = NULL;
    *out = iw_strdup(v);
    return v != NULL && *out == NULL ? ST_ERROR_OUT_OF_MEMORY : 0;
}

/* "ssh config PATH line N: what" as the error info: IMAP_STAGE_FILE with "PATH:N";
 * a refusal without a line (a token, a route) stays the arguments' fault. */
static void iw_config_why(iw_client *c, int rc, const char *why)
{
    static const char head[] = "ssh config ";
    const char *at = strncmp(why, head, sizeof head - 1) == 0 ? strstr(why, " line ") : NULL;
    char file[300];
    unsigned line;
    if (at != NULL && sscanf(at, " line %u:", &line) == 1) {
        snprintf(file, sizeof file, "%.*s:%u", (int)(at - why - (sizeof head - 1)) < 280
                 ? (int)(at - why - (sizeof head - 1)) : 280, why + sizeof head - 1, line);
        iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)rc, IMAP_STAGE_FILE, 0, NULL, file, NULL,
                       why);
    } else {
        iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)rc, IMAP_STAGE_ARGUMENTS, 0, NULL, NULL,
                       NULL, why);
    }
}

/* The host, port, options and timeout; *port with its default. */
static int iw_prepare_target(iw_client *c, const IMAPCONNECTINFO *in, unsigned *port)
{
    const char *host = in->lpszHostName;
    DWORD opt = in->dwOptions;

    *port = in->nRemotePort;
    if (host == NULL || *host == '\0' || strlen(host) > 255 || iw_has_crlf(host) ||
        *port > 65535 || (opt & ~IW_ALL_OPTIONS) != 0 ||
        ((opt & IMAP_OPTION_SECURE_EXPLICIT) && (opt & IMAP_OPTION_SECURE_IMPLICIT)))
        return ST_ERROR_INVALID_PARAMETER;
    if (*port == 0)
        *port = (opt & IMAP_OPTION_SECURE_IMPLICIT) ? IMAP_PORT_SECURE : IMAP_PORT_DEFAULT;
    /* The secure port means implicit TLS, except through a tunnel whose local port says
     * nothing about the far end. */
    if (*port == IMAP_PORT_SECURE && !(opt & (IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_TUNNEL)))
        opt |= IMAP_OPTION_SECURE_IMPLICIT;
    c->cfg.options = opt;
    c->cfg.timeout_ms = (in->nTimeout ? in->nTimeout : IMAP_TIMEOUT_DEFAULT) * 1000u;
    if (in->nTimeout > 86400)
        return ST_ERROR_INVALID_PARAMETER;
    c->owner = iw_thread_id();
    c->cfg.trace = IW_INFO(in, lpTraceProc);
    c->cfg.trace_param = IW_INFO(in, lpParam);
    return 0;
}

static int iw_prepare_creds(iw_client *c, const IMAPCONNECTINFO *in)
{
    char why[256] = "";
    int rc = iw_creds_copy_why(in->lpCredentials, &c->cfg.creds, why, sizeof why);
    /* the SSH configuration's line and keyword: the one thing to fix */
    if (rc != 0 && why[0] != '\0') {
        iw_client_note(c, why);
        iw_config_why(c, rc, why);
    }
    return rc;
}

/* Copies of the caller's strings (transport, local address, DNS servers, ID, host),
 * each checked for what it must be. */
static int iw_prepare_settings(iw_client *c, const IMAPCONNECTINFO *in)
{
    int rc = iw_copy_setting(IW_INFO(in, lpszTransport), "IMAPWIRE_TRANSPORT", &c->cfg.transport);
    if (rc != 0)
        return rc;
    if (c->cfg.transport != NULL) {
        char name[IW_TYPE_NAME_MAX + 1];
        const char *args;
        if (iw_transport_spec_split(c->cfg.transport, name, &args) != 0)
            return ST_ERROR_INVALID_PARAMETER;
    }
    rc = iw_copy_setting(IW_INFO(in, lpszLocalAddress), NULL, &c->cfg.local_address);
    if (rc == 0)
        rc = iw_copy_setting(IW_INFO(in, lpszDnsServers), "IMAPWIRE_DNS_SERVERS",
                             &c->cfg.dns_servers);
    if (rc != 0)
        return rc;
    if (c->cfg.dns_servers != NULL && !iw_dns_servers_valid(c->cfg.dns_servers))
        return ST_ERROR_INVALID_PARAMETER;
    if (c->cfg.local_address != NULL) {
        iw_addr local;
        rc = iw_parse_local_address(c->cfg.local_address, &local);
        if (rc != 0)
            return rc;
    }
    rc = iw_copy_setting(IW_INFO(in, lpszClientName), NULL, &c->cfg.client_name);
    if (rc == 0)
        rc = iw_copy_setting(IW_INFO(in, lpszClientVersion), NULL, &c->cfg.client_version);
    if (rc != 0)
        return rc;
    c->cfg.host = iw_strdup(in->lpszHostName);
    if (c->cfg.host == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    if (iw_has_crlf(c->cfg.client_name) || iw_has_crlf(c->cfg.client_version))
        return ST_ERROR_INVALID_PARAMETER;
    if ((c->cfg.client_name && !iw_quotable(c->cfg.client_name)) ||
        (c->cfg.client_version && !iw_quotable(c->cfg.client_version)))
        return ST_ERROR_INVALID_PARAMETER;
    return 0;
}

/* The endpoint the chain connects to, the TLS settings, and the SSH route (or the
 * private forward that carries it). */
static int iw_prepare_route(iw_client *c, const IMAPCONNECTINFO *in, unsigned port)
{
    int rc;

    c->cfg.ep.host = c->cfg.host;
    c->cfg.ep.port = port;
    c->cfg.ep.timeout_ms = c->cfg.timeout_ms;
    c->cfg.ep.local_address = c->cfg.local_address;
    c->cfg.ep.dns_servers = c->cfg.dns_servers;

    if (c->cfg.options & (IMAP_OPTION_SECURE_EXPLICIT | IMAP_OPTION_SECURE_IMPLICIT)) {
        rc = iw_prepare_tls(c, in->lpszHostName, port);
        if (rc != 0)
            return rc;
    }
    if ((c->cfg.options & IMAP_OPTION_TUNNEL) && c->cfg.creds != NULL &&
        c->cfg.creds->tunnel_host != NULL) {
        if (!iw_ssh_route_valid(c->cfg.creds))
            return ST_ERROR_INVALID_PARAMETER;
        if (c->cfg.creds->options & CREDENTIAL_TUNNEL_FORWARD) {
            /* Through a library-managed forward that only this connect can reach (a socket
             * pair); its SSH hop takes the connect's local address and DNS servers, and
             * names and certificates still concern the far host. */
            rc = iw_forward_open_private(in->lpCredentials, &c->cfg.ep,
                                         IW_INFO(in, lpEventProc) == NULL, &c->io.forward);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Validates the arguments and fills a new client; no I/O. */
static int iw_prepare(iw_client *c, const IMAPCONNECTINFO *in)
{
    unsigned port;
    int rc = iw_prepare_target(c, in, &port);
    if (rc == 0)
        rc = iw_prepare_creds(c, in);
    if (rc == 0)
        rc = iw_prepare_settings(c, in);
    if (rc == 0)
        rc = iw_prepare_route(c, in, port);
    return rc;
}

/* What refuses a connect before a client exists. */
static int iw_connect_args(const IMAPCONNECTINFO *in, int own_loop)
{
    if (!iw_initialized())
        return ST_ERROR_NOT_INITIALIZED;
    if (in == NULL || in->dwSize < offsetof(IMAPCONNECTINFO, lpszTransport))
        return ST_ERROR_INVALID_PARAMETER;
    /* a blocking connect waits: not on the loop thread (see iw_client_wait) */
    if (!own_loop && IW_INFO(in, lpEventProc) == NULL && iw_loop_is_current())
        return ST_ERROR_IN_PROGRESS;
    return 0;
}

/* The caller's loop cannot wait for an event procedure, nor for a private forward:
 * opening one authenticates SSH at once and its bridge runs on the library's loop
 * thread. */
static int iw_own_loop_args(const IMAPCONNECTINFO *in, int own_loop)
{
    if (own_loop && IW_INFO(in, lpEventProc) != NULL)
        return ST_ERROR_INVALID_PARAMETER;
    if (own_loop && in->lpCredentials != NULL && (in->dwOptions & IMAP_OPTION_TUNNEL) &&
        in->lpCredentials->dwSize >= offsetof(SECURITYCREDENTIALS, lpszCertificate) &&
        (in->lpCredentials->dwOptions & CREDENTIAL_TUNNEL_FORWARD))
        return ST_ERROR_FEATURE_NOT_AVAILABLE;
    return 0;
}

/* The chain begun, then handed to the caller's loop, the library's, or driven here. */
static int iw_connect_run(iw_client *c, const IMAPCONNECTINFO *in, int own_loop)
{
    int rc = iw_connect_begin(c);
    /* The chain is built and each layer took what it needs: the transport text (which
     * may hold a proxy password) and the credential secrets go now, not at disconnect. */
    iw_creds_forget_secrets(c->cfg.creds);
    iw_free_secret(c->cfg.transport);
    c->cfg.transport = NULL;
    /* Once the loop has the connect, its event may free c before this returns: c is not
     * touched after iw_async_start succeeds. */
    if (rc == 0 && own_loop)
        rc = iw_own_start(c);
    else if (rc == 0 && IW_INFO(in, lpEventProc) != NULL)
        rc = iw_async_start(c, IW_INFO(in, lpEventProc), IW_INFO(in, lpParam));
    else if (rc == 0) {
        /* the handle is in the table already: its trace callback may name it, and must
         * not free or use the client under the connect (ST_ERROR_IN_PROGRESS) */
        __atomic_store_n(&c->io.busy_thread, iw_thread_id(), __ATOMIC_RELEASE);
        rc = iw_drive(c, iw_connect_step, NULL, &c->cm.deadline_ms);
        __atomic_store_n(&c->io.busy_thread, 0, __ATOMIC_RELEASE);
    }
    if (rc != 0) {
        /* the chain was begun: the stage it stopped at, and its timings so far */
        /* a plugin that did not load */
        iw_errinfo_take_pending(iw_ei(&c->rec.ei_work), (DWORD)rc);
        iw_connect_fail(c, rc);
        iw_set_last_timings(&c->rec.timings);
    }
    return rc;
}

/* A connect that failed with a client made: its trace, the thread's error info, and the
 * client gone. */
static void iw_connect_drop(iw_client *c, int rc)
{
    char note[160];
    IMAPERRORINFO ei;
    snprintf(note, sizeof note, "connect failed: %s", iw_error_name((DWORD)rc));
    iw_trace_line(c, IMAP_TRACE_INFO, note, strlen(note));
    /* a failure before the chain: what the preparation reported, if anything */
    if (c->rec.ei == NULL || c->rec.ei->dwError == 0) {
        iw_errinfo_take_pending(iw_ei(&c->rec.ei_work), (DWORD)rc);
        iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)rc, IMAP_STAGE_NONE, 0, NULL, NULL, NULL,
                       NULL);
    }
    ei = c->rec.ei != NULL && c->rec.ei->dwError != 0 ? *c->rec.ei : *iw_ei(&c->rec.ei_work);
    ei.dwError = (DWORD)rc;
    if (c->handle != 0)
        iw_handle_remove(c->handle, IW_KIND_CLIENT);
    iw_client_free(c);
    iw_set_error_info(&ei);
}

/* own_loop: ImapConnectStart's connect, stepped by the caller's loop (own_loop.c). */
HCLIENT iw_api_connect(const IMAPCONNECTINFO *in, int own_loop)
{
    iw_client *c = NULL;
    HCLIENT h = INVALID_CLIENT;
    int rc;

    iw_errinfo_take_pending(NULL, 0);           /* nothing of an earlier call */
    iw_forget_last_timings();
    rc = iw_connect_args(in, own_loop);
    if (rc != 0)
        goto out;
    c = iw_client_new();
    if (c == NULL) {
        rc = ST_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    rc = iw_own_loop_args(in, own_loop);
    if (rc == 0)
        rc = iw_prepare(c, in);
    if (rc != 0)
        goto out;
    c->handle = iw_handle_add(IW_KIND_CLIENT, c);
    if (c->handle == 0) {
        rc = ST_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    h = c->handle;
    rc = iw_connect_run(c, in, own_loop);
out:
    if (rc == 0)
        return h;
    if (c != NULL)
        iw_connect_drop(c, rc);
    else
        iw_set_error((DWORD)rc);
    return INVALID_CLIENT;
}

/* The five ImapConnect arguments as a zeroed IMAPCONNECTINFO: every entry point is
 * ImapConnectEx underneath. */
static void iw_info_fill(IMAPCONNECTINFO *in, LPCTSTR host, UINT port, UINT timeout,
                         DWORD options, LPSECURITYCREDENTIALS creds)
{
    memset(in, 0, sizeof *in);
    in->dwSize = sizeof *in;
    in->lpszHostName = host;
    in->nRemotePort = port;
    in->nTimeout = timeout;
    in->dwOptions = options;
    in->lpCredentials = creds;
}

HCLIENT ImapConnect(LPCTSTR lpszHostName, UINT nRemotePort, UINT nTimeout,
                    DWORD dwOptions, LPSECURITYCREDENTIALS lpCredentials)
{
    IMAPCONNECTINFO in;
    iw_info_fill(&in, lpszHostName, nRemotePort, nTimeout, dwOptions, lpCredentials);
    return iw_api_connect(&in, 0);
}

HCLIENT ImapConnectEx(const IMAPCONNECTINFO *lpInfo)
{
    return iw_api_connect(lpInfo, 0);
}

HCLIENT ImapAsyncConnect(LPCTSTR lpszHostName, UINT nRemotePort, UINT nTimeout,
                         DWORD dwOptions, LPSECURITYCREDENTIALS lpCredentials,
                         IMAPEVENTPROC lpEventProc, LPVOID lpParam)
{
    IMAPCONNECTINFO in;
    if (lpEventProc == NULL) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return INVALID_CLIENT;
    }
    iw_info_fill(&in, lpszHostName, nRemotePort, nTimeout, dwOptions, lpCredentials);
    in.lpEventProc = lpEventProc;
    in.lpParam = lpParam;
    return iw_api_connect(&in, 0);
}
