/* advice.c: the words for an error: its name, its exit code, the message and what to
 * do, from the library's record of the failing party or else from the code alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const struct {
    DWORD code;
    const char *name;
} names[] = {
    {ST_ERROR_NOT_INITIALIZED, "ST_ERROR_NOT_INITIALIZED"},
    {ST_ERROR_INVALID_PARAMETER, "ST_ERROR_INVALID_PARAMETER"},
    {ST_ERROR_INVALID_HANDLE, "ST_ERROR_INVALID_HANDLE"},
    {ST_ERROR_NOT_HANDLE_OWNER, "ST_ERROR_NOT_HANDLE_OWNER"},
    {ST_ERROR_OUT_OF_MEMORY, "ST_ERROR_OUT_OF_MEMORY"},
    {ST_ERROR_HOST_NOT_FOUND, "ST_ERROR_HOST_NOT_FOUND"},
    {ST_ERROR_CONNECTION_REFUSED, "ST_ERROR_CONNECTION_REFUSED"},
    {ST_ERROR_OPERATION_TIMEOUT, "ST_ERROR_OPERATION_TIMEOUT"},
    {ST_ERROR_CONNECTION_CLOSED, "ST_ERROR_CONNECTION_CLOSED"},
    {ST_ERROR_INVALID_RESPONSE, "ST_ERROR_INVALID_RESPONSE"},
    {ST_ERROR_RESPONSE_TOO_LARGE, "ST_ERROR_RESPONSE_TOO_LARGE"},
    {ST_ERROR_SERVER_REJECTED, "ST_ERROR_SERVER_REJECTED"},
    {ST_ERROR_SECURE_NOT_SUPPORTED, "ST_ERROR_SECURE_NOT_SUPPORTED"},
    {ST_ERROR_TLS_HANDSHAKE, "ST_ERROR_TLS_HANDSHAKE"},
    {ST_ERROR_CERTIFICATE_UNTRUSTED, "ST_ERROR_CERTIFICATE_UNTRUSTED"},
    {ST_ERROR_CERTIFICATE_NAME_MISMATCH, "ST_ERROR_CERTIFICATE_NAME_MISMATCH"},
    {ST_ERROR_CERTIFICATE_EXPIRED, "ST_ERROR_CERTIFICATE_EXPIRED"},
    {ST_ERROR_SSH_HOST_KEY_UNKNOWN, "ST_ERROR_SSH_HOST_KEY_UNKNOWN"},
    {ST_ERROR_SSH_HOST_KEY_MISMATCH, "ST_ERROR_SSH_HOST_KEY_MISMATCH"},
    {ST_ERROR_SSH_AUTH_FAILED, "ST_ERROR_SSH_AUTH_FAILED"},
    {ST_ERROR_SSH_CHANNEL_FAILED, "ST_ERROR_SSH_CHANNEL_FAILED"},
    {ST_ERROR_LOGIN_FAILED, "ST_ERROR_LOGIN_FAILED"},
    {ST_ERROR_ALREADY_AUTHENTICATED, "ST_ERROR_ALREADY_AUTHENTICATED"},
    {ST_ERROR_NOT_AUTHENTICATED, "ST_ERROR_NOT_AUTHENTICATED"},
    {ST_ERROR_TRANSPORT_NOT_FOUND, "ST_ERROR_TRANSPORT_NOT_FOUND"},
    {ST_ERROR_TRANSPORT_EXISTS, "ST_ERROR_TRANSPORT_EXISTS"},
    {ST_ERROR_PLUGIN_VERSION, "ST_ERROR_PLUGIN_VERSION"},
    {ST_ERROR_FEATURE_NOT_AVAILABLE, "ST_ERROR_FEATURE_NOT_AVAILABLE"},
    {ST_ERROR_NETWORK_UNREACHABLE, "ST_ERROR_NETWORK_UNREACHABLE"},
    {ST_ERROR_NETWORK_ERROR, "ST_ERROR_NETWORK_ERROR"},
    {ST_ERROR_SYSTEM_LIMIT, "ST_ERROR_SYSTEM_LIMIT"},
    {ST_ERROR_COMMAND_FAILED, "ST_ERROR_COMMAND_FAILED"},
    {ST_ERROR_BUFFER_TOO_SMALL, "ST_ERROR_BUFFER_TOO_SMALL"},
    {ST_ERROR_TRANSPORT_IN_USE, "ST_ERROR_TRANSPORT_IN_USE"},
    {ST_ERROR_PLUGIN_LOAD_FAILED, "ST_ERROR_PLUGIN_LOAD_FAILED"},
    {ST_ERROR_CLIENT_CERTIFICATE, "ST_ERROR_CLIENT_CERTIFICATE"},
    {ST_ERROR_MESSAGE_NOT_FOUND, "ST_ERROR_MESSAGE_NOT_FOUND"},
    {ST_ERROR_IN_PROGRESS, "ST_ERROR_IN_PROGRESS"},
    {ST_ERROR_TLS_LIBRARY, "ST_ERROR_TLS_LIBRARY"},
};

const char *cli_error_name(DWORD err)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == err)
            return names[i].name;
    return "ST_ERROR_UNKNOWN";
}

int cli_exit_code(DWORD err)
{
    switch (err) {
    case ST_ERROR_INVALID_PARAMETER:         return EXIT_USAGE;
    case ST_ERROR_HOST_NOT_FOUND:            return EXIT_RESOLVE;
    case ST_ERROR_CONNECTION_REFUSED:
    case ST_ERROR_NETWORK_UNREACHABLE:
    case ST_ERROR_NETWORK_ERROR:             return EXIT_CONNECT;
    case ST_ERROR_OPERATION_TIMEOUT:         return EXIT_TIMEOUT;
    case ST_ERROR_TLS_HANDSHAKE:
    case ST_ERROR_TLS_LIBRARY:
    case ST_ERROR_SECURE_NOT_SUPPORTED:      return EXIT_TLS;
    case ST_ERROR_CERTIFICATE_UNTRUSTED:
    case ST_ERROR_CERTIFICATE_NAME_MISMATCH:
    case ST_ERROR_CERTIFICATE_EXPIRED:
    case ST_ERROR_CLIENT_CERTIFICATE:        return EXIT_CERTIFICATE;
    case ST_ERROR_SSH_HOST_KEY_UNKNOWN:
    case ST_ERROR_SSH_HOST_KEY_MISMATCH:     return EXIT_SSH_HOST_KEY;
    case ST_ERROR_SSH_AUTH_FAILED:
    case ST_ERROR_SSH_CHANNEL_FAILED:        return EXIT_SSH;
    case ST_ERROR_LOGIN_FAILED:
    case ST_ERROR_NOT_AUTHENTICATED:         return EXIT_LOGIN;
    case ST_ERROR_CONNECTION_CLOSED:
    case ST_ERROR_INVALID_RESPONSE:
    case ST_ERROR_RESPONSE_TOO_LARGE:
    case ST_ERROR_SERVER_REJECTED:
    case ST_ERROR_COMMAND_FAILED:            return EXIT_PROTOCOL;
    case ST_ERROR_TRANSPORT_NOT_FOUND:
    case ST_ERROR_PLUGIN_VERSION:
    case ST_ERROR_PLUGIN_LOAD_FAILED:
    case ST_ERROR_FEATURE_NOT_AVAILABLE:     return EXIT_TRANSPORT;
    case ST_ERROR_MESSAGE_NOT_FOUND:         return EXIT_NOT_FOUND;
    default:                                 return EXIT_FAILURE_OTHER;
    }
}

/* What to do about each code, in the words of the command line (the flags that change
 * it): the cause, then the fix. A cause names the host (%s) and then the port (%u) where it
 * needs them; printf ignores arguments a format does not use (C11 7.21.6.1). */
static const struct {
    DWORD code;
    const char *cause, *fix;
} advices[] = {
    {ST_ERROR_HOST_NOT_FOUND, "the name %s does not resolve",
     "check its spelling, or name a resolver with --dns-server"},
    {ST_ERROR_CONNECTION_REFUSED, "nothing listens on %s port %u",
     "check the port (143 plain and STARTTLS, 993 imaps://) and that the server runs"},
    {ST_ERROR_NETWORK_UNREACHABLE, "no route to %s",
     "check the network, or go through --tunnel or --proxy"},
    {ST_ERROR_NETWORK_ERROR, "a socket call failed on the way to %s",
     "check --local-address and the network"},
    {ST_ERROR_OPERATION_TIMEOUT, "%s port %u did not answer in time",
     "a firewall may drop the packets; raise --timeout or check the host and port"},
    {ST_ERROR_CONNECTION_CLOSED, "%s closed the connection",
     "it may not be an IMAP server, or it wants TLS (try imaps:// or --starttls)"},
    {ST_ERROR_INVALID_RESPONSE, "what %s port %u sent is not IMAP",
     "check the port; a TLS port needs imaps://"},
    {ST_ERROR_SERVER_REJECTED, "%s greeted with BYE",
     "it is refusing connections now; try later or ask its administrator"},
    {ST_ERROR_SECURE_NOT_SUPPORTED, "%s offers no STARTTLS",
     "use imaps:// on its TLS port (993), or drop --starttls on a network you trust"},
    {ST_ERROR_TLS_HANDSHAKE, "the TLS handshake with %s failed",
     "the port may not speak TLS (use --starttls on 143, imaps:// on 993), or no TLS version "
     "is shared"},
    {ST_ERROR_TLS_LIBRARY, "TLS stopped working in this process after memory ran out inside "
     "the TLS library; %s is not at fault", "run the command again"},
    {ST_ERROR_CERTIFICATE_UNTRUSTED, "no trusted CA signed the certificate of %s",
     "pass the issuing CA with --ca FILE (or --insecure to skip the check, only for testing)"},
    {ST_ERROR_CERTIFICATE_NAME_MISMATCH, "the certificate is not for %s",
     "check the host name, or pass --servername with the name the certificate carries"},
    {ST_ERROR_CERTIFICATE_EXPIRED, "the certificate of %s has expired (or is not yet valid)",
     "the server must renew it; check this machine's clock"},
    {ST_ERROR_CLIENT_CERTIFICATE, "the client certificate or its key could not be used",
     "check the files and the key's passphrase"},
    {ST_ERROR_SSH_HOST_KEY_UNKNOWN, "the SSH server's host key is not in the known_hosts file",
     "connect once with ssh to add it, or pass --known-hosts FILE"},
    {ST_ERROR_SSH_HOST_KEY_MISMATCH, "the SSH server's host key has CHANGED",
     "someone may be in the middle; confirm the new key with its administrator before "
     "updating known_hosts"},
    {ST_ERROR_SSH_AUTH_FAILED, "the SSH server refused us",
     "check the user in --tunnel, the key (--ssh-key, or the agent in SSH_AUTH_SOCK) or "
     "IMAPWIRE_SSH_PASSWORD"},
    {ST_ERROR_SSH_CHANNEL_FAILED, "the SSH server could not reach %s port %u",
     "the host is named as the SSH server sees it; check it and the server's "
     "AllowTcpForwarding"},
    {ST_ERROR_LOGIN_FAILED, "the server refused the user name or password",
     "check both, or try another --auth mechanism"},
    {ST_ERROR_TRANSPORT_NOT_FOUND, "no such transport",
     "check the name in --transport/--proxy, IMAPWIRE_PLUGIN_PATH, or load it with --plugin "
     "FILE"},
    {ST_ERROR_PLUGIN_LOAD_FAILED, "no such transport",
     "check the name in --transport/--proxy, IMAPWIRE_PLUGIN_PATH, or load it with --plugin "
     "FILE"},
    {ST_ERROR_PLUGIN_VERSION, "the plugin was built for another imapwire",
     "rebuild it against this version"},
    {ST_ERROR_FEATURE_NOT_AVAILABLE, "this build of imapwire cannot do that",
     "see imapwire(1)"},
    {ST_ERROR_MESSAGE_NOT_FOUND, "no such mailbox or message",
     "check the mailbox name and the UID"},
    {ST_ERROR_COMMAND_FAILED, "the server answered NO or BAD",
     "the trace (--trace) shows its reason"},
    {ST_ERROR_INVALID_PARAMETER, "an argument was refused",
     "check the option values (imapwire --help)"},
};

static void advice(DWORD err, const char *host, unsigned port, char *out, size_t size)
{
    for (size_t i = 0; i < sizeof advices / sizeof advices[0]; i++) {
        if (advices[i].code == err) {
            int n = snprintf(out, size, advices[i].cause, host, port);
            if (n >= 0 && (size_t)n < size)
                snprintf(out + n, size - (size_t)n, ": %s", advices[i].fix);
            return;
        }
    }
    snprintf(out, size, "run again with --trace to see where it stops");
}

const char *cli_stage_name(DWORD stage)
{
    static const char *const stage_names[] = {
        "none", "arguments", "file", "resolve", "tcp", "proxy", "ssh", "tls", "greeting",
        "login", "command",
    };
    return stage < sizeof stage_names / sizeof stage_names[0] ? stage_names[stage] : "none";
}

/* The library's record of err, if the thread's last failure is err (else zeroed). */
static void error_info(DWORD err, IMAPERRORINFO *ei)
{
    memset(ei, 0, sizeof *ei);
    ei->dwSize = sizeof *ei;
    if (ImapGetErrorInfo(INVALID_CLIENT, ei) != 0 || ei->dwError != err) {
        memset(ei, 0, sizeof *ei);
        ei->dwSize = sizeof *ei;
    }
}

/* The fields of the record, shown: what a peer sent may hold anything. */
struct shown_info {
    char peer[300], file[300], fp[160], detail[700], host[300], entry[320];
    unsigned port;
};

static void show_info(const IMAPERRORINFO *ei, struct shown_info *v)
{
    const char *colon = strrchr(ei->szPeer, ':');
    cli_visible(ei->szPeer, strlen(ei->szPeer), v->peer, sizeof v->peer);
    cli_visible(ei->szFile, strlen(ei->szFile), v->file, sizeof v->file);
    cli_visible(ei->szFingerprint, strlen(ei->szFingerprint), v->fp, sizeof v->fp);
    cli_visible(ei->szDetail, strlen(ei->szDetail), v->detail, sizeof v->detail);
    v->port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    snprintf(v->host, sizeof v->host, "%.*s", colon ? (int)(colon - ei->szPeer) : 0,
             ei->szPeer);
    cli_visible(v->host, strlen(v->host), v->host, sizeof v->host);
    /* the name known_hosts files use, as ssh-keygen -R wants it */
    if (v->port == 22)
        snprintf(v->entry, sizeof v->entry, "%s", v->host);
    else
        snprintf(v->entry, sizeof v->entry, "[%s]:%u", v->host, v->port);
}

/* A proxy that failed: which of its answers, from the words of the library's detail. */
static void advice_proxy(DWORD err, const IMAPERRORINFO *ei, const struct shown_info *v,
                         char *out, size_t size)
{
    if (err == ST_ERROR_HOST_NOT_FOUND && strstr(ei->szDetail, "does not resolve"))
        snprintf(out, size, "the name of the proxy %s does not resolve: check the host in "
                 "--proxy, or name a resolver with --dns-server", v->peer);
    else if (strstr(ei->szDetail, "credentials") != NULL)
        snprintf(out, size, "the proxy %s (hop %u) refused the credentials: check the user "
                 "in --proxy and IMAPWIRE_PROXY_PASSWORD", v->peer, ei->nHop);
    else if (strstr(ei->szDetail, "accepted the connection") != NULL)
        snprintf(out, size, "the proxy %s (hop %u) accepted the connection and did not "
                 "answer: check that the port in --proxy is the proxy's and of its kind "
                 "(socks5:// or http://), or raise --timeout", v->peer, ei->nHop);
    else if (strstr(ei->szDetail, "no connection") != NULL ||
             strstr(ei->szDetail, ": connection refused") != NULL ||
             err == ST_ERROR_OPERATION_TIMEOUT)
        snprintf(out, size, "the proxy %s (hop %u) %s: check the host and port in --proxy "
                 "and that the proxy runs", v->peer, ei->nHop,
                 err == ST_ERROR_OPERATION_TIMEOUT ? "did not answer in time"
                                                    : "cannot be reached");
    else
        snprintf(out, size, "the proxy %s (hop %u) would not make the tunnel: %s; check "
                 "that it may reach the IMAP host and port, and --proxy", v->peer, ei->nHop,
                 v->detail);
}

/* An SSH hop's channel refused: only a later hop has more to say than the generic advice
 * (the first hop's target is the IMAP server the command line named). */
static int advice_ssh_channel(const IMAPERRORINFO *ei, const struct shown_info *v,
                              char *out, size_t size)
{
    if (ei->nHop <= 1)
        return 0;
    snprintf(out, size, "SSH host %s (hop %u) cannot be reached from the hop before it: "
             "check the host and port as that hop sees them, and its AllowTcpForwarding",
             v->peer, ei->nHop);
    return 1;
}

static int advice_ssh_unreachable(const IMAPERRORINFO *ei, const struct shown_info *v,
                                  char *out, size_t size)
{
    snprintf(out, size, "SSH host %s (hop %u) cannot be reached: check the host and port in "
             "--tunnel and that sshd runs there", v->peer, ei->nHop);
    return 1;
}

/* An SSH hop that ran out of time: in which phase, from the library's detail. */
static int advice_ssh_timeout(const IMAPERRORINFO *ei, const struct shown_info *v,
                              char *out, size_t size)
{
    if (strstr(ei->szDetail, "accepted the connection") != NULL) {
        snprintf(out, size, "SSH host %s (hop %u) accepted the connection but did not speak "
                 "SSH in time: check that the port in --tunnel is sshd's, or raise --timeout",
                 v->peer, ei->nHop);
        return 1;
    }
    if (strstr(ei->szDetail, "opened no channel to") != NULL)
        return advice_ssh_channel(ei, v, out, size);
    if (strstr(ei->szDetail, "authentication") != NULL) {
        snprintf(out, size, "SSH host %s (hop %u) did not answer the authentication in time: "
                 "raise --timeout, or check its load", v->peer, ei->nHop);
        return 1;
    }
    /* nothing came back at all: said as for a refused connection */
    return advice_ssh_unreachable(ei, v, out, size);
}

static int advice_ssh(DWORD err, const IMAPERRORINFO *ei, const struct shown_info *v,
                      char *out, size_t size)
{
    switch (err) {
    case ST_ERROR_SSH_HOST_KEY_UNKNOWN:
        snprintf(out, size, "SSH host %s (hop %u) presented the host key %s, which is not in "
                 "the known_hosts file %s (entry %s): if its administrator confirms that "
                 "fingerprint, add it (ssh-keyscan -p %u %s >> %s), or pass --known-hosts FILE",
                 v->peer, ei->nHop, v->fp, v->file, v->entry, v->port, v->host, v->file);
        return 1;
    case ST_ERROR_SSH_HOST_KEY_MISMATCH:
        snprintf(out, size, "SSH host %s (hop %u): its host key has CHANGED to %s, unlike %s "
                 "in %s; someone may be in the middle: confirm the new key with its "
                 "administrator, then run: ssh-keygen -R '%s' -f %s", v->peer, ei->nHop,
                 v->fp, v->entry, v->file, v->entry, v->file);
        return 1;
    case ST_ERROR_SSH_AUTH_FAILED:
        snprintf(out, size, "SSH host %s (hop %u) refused us: check the user in --tunnel, the "
                 "key (--ssh-key, or the agent in SSH_AUTH_SOCK) or IMAPWIRE_SSH_PASSWORD",
                 v->peer, ei->nHop);
        return 1;
    case ST_ERROR_HOST_NOT_FOUND:
        snprintf(out, size, "SSH host %s (hop %u): the name does not resolve: check --tunnel "
                 "(or its ssh_config alias), or name a resolver with --dns-server", v->peer,
                 ei->nHop);
        return 1;
    case ST_ERROR_OPERATION_TIMEOUT:
        return advice_ssh_timeout(ei, v, out, size);
    case ST_ERROR_CONNECTION_REFUSED:
    case ST_ERROR_NETWORK_UNREACHABLE:
        return advice_ssh_unreachable(ei, v, out, size);
    case ST_ERROR_SSH_CHANNEL_FAILED:
        return advice_ssh_channel(ei, v, out, size);
    default:
        return 0;
    }
}

static int advice_greeting(DWORD err, const IMAPERRORINFO *ei, const struct shown_info *v,
                           char *out, size_t size)
{
    if (strstr(ei->szDetail, "implicit TLS") != NULL) {
        snprintf(out, size, "%s wants TLS at once: use imaps:// (its TLS port, usually 993), "
                 "or the server's plain port (143) for imap://", v->peer);
        return 1;
    }
    if (err == ST_ERROR_OPERATION_TIMEOUT) {
        snprintf(out, size, "%s accepted the connection but sent no IMAP greeting: check the "
                 "port (143 plain and STARTTLS, 993 imaps://); raise --timeout for a slow "
                 "server", v->peer);
        return 1;
    }
    return 0;
}

/* What to do, from what the library knows of the party that failed; 0 when it knows
 * nothing the generic advice would not say. */
static int advice_info(DWORD err, const IMAPERRORINFO *ei, char *out, size_t size)
{
    struct shown_info v;
    show_info(ei, &v);
    switch (ei->dwStage) {
    case IMAP_STAGE_FILE:
        snprintf(out, size, "fix or replace the file %s (%s): check the path given to --ca, "
                 "--cert/--key, --ssh-key, --known-hosts, --ssh-config or --plugin", v.file,
                 v.detail);
        return 1;
    case IMAP_STAGE_PROXY:
        advice_proxy(err, ei, &v, out, size);
        return 1;
    case IMAP_STAGE_SSH:
        return advice_ssh(err, ei, &v, out, size);
    case IMAP_STAGE_LOGIN:
        if (err != ST_ERROR_LOGIN_FAILED || ei->szDetail[0] == '\0')
            return 0;
        snprintf(out, size, "the server refused the user name or password (it said: %s): "
                 "check both, or try another --auth mechanism", v.detail);
        return 1;
    case IMAP_STAGE_GREETING:
        return advice_greeting(err, ei, &v, out, size);
    default:
        return 0;
    }
}

/* The message: the library's own words for what failed, with the party's where it said
 * some. */
static void message_info(DWORD err, const IMAPERRORINFO *ei, char *out, size_t size)
{
    char text[256], detail[700];
    if (ImapGetErrorString(err, text, (INT)sizeof text) == IMAP_ERROR)
        snprintf(text, sizeof text, "error %u", (unsigned)err);
    cli_visible(ei->szDetail, strlen(ei->szDetail), detail, sizeof detail);
    if (detail[0] == '\0')
        snprintf(out, size, "%s", text);
    else if (ei->dwStage == IMAP_STAGE_LOGIN || ei->dwStage == IMAP_STAGE_COMMAND)
        snprintf(out, size, "the server said: %s", detail);   /* "login failed: " before */
    else
        snprintf(out, size, "%s", detail);
}

/* The message and the advice for err: from the library's error info where it names
 * the party, else from the code and the host the command line gave. */
void cli_describe(DWORD err, const char *host, unsigned port, IMAPERRORINFO *ei,
                  char *text, size_t text_size, char *fix, size_t fix_size)
{
    error_info(err, ei);
    message_info(err, ei, text, text_size);
    if (!advice_info(err, ei, fix, fix_size))
        advice(err, host ? host : "the server", port, fix, fix_size);
}
