/* output.c: how the imapwire command tells its results: the facts of a connection as
 * JSON (json-c) or as lines for a person, and each error with its cause, fix and exit code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

#define C_RED   "\033[31m"
#define C_GREEN "\033[32m"
#define C_YEL   "\033[33m"
#define C_BOLD  "\033[1m"
#define C_OFF   "\033[0m"

/* Colour only where a person looks: a terminal that is not "dumb", and no NO_COLOR. */
void cli_colors(struct cli_opts *o)
{
    /* getenv: TERM and NO_COLOR only choose whether to colour our own output; a setuid
     * caller gains nothing by setting them (server text is escaped either way). */
    const char *term = getenv("TERM");
    int ok = getenv("NO_COLOR") == NULL && term != NULL && strcmp(term, "dumb") != 0;
    o->color_out = ok && isatty(STDOUT_FILENO);
    o->color_err = ok && isatty(STDERR_FILENO);
}

/* The length of the UTF-8 sequence at s (at most n bytes) when it is well formed and
 * not a C1 control (U+0080..U+009F, which some terminals obey as ESC sequences); else 0. */
static size_t utf8_printable(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned char lo = 0x80, hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (s[0] == 0xc2)
        lo = 0xa0;                 /* C2 80..C2 9F: the C1 controls */
    else if (s[0] == 0xe0)
        lo = 0xa0;                 /* overlong */
    else if (s[0] == 0xed)
        hi = 0x9f;                 /* surrogates */
    else if (s[0] == 0xf0)
        lo = 0x90;                 /* overlong */
    else if (s[0] == 0xf4)
        hi = 0x8f;                 /* past U+10FFFF */
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* One unit of s made visible into out (at most 4 bytes, not terminated): printable ASCII
 * and well-formed UTF-8 as they are, any other byte as \xNN. The bytes of s consumed. */
static size_t visible_unit(const unsigned char *s, size_t n, char out[4], size_t *outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t u;

    if (s[0] >= 0x20 && s[0] < 0x7f) {
        out[0] = (char)s[0];
        *outlen = 1;
        return 1;
    }
    if ((u = utf8_printable(s, n)) != 0) {
        memcpy(out, s, u);
        *outlen = u;
        return u;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[s[0] >> 4];
    out[3] = hex[s[0] & 15];
    *outlen = 4;
    return 1;
}

/* Server words (a trace line, a capability, a certificate name) as text that cannot drive
 * a terminal: ESC, BEL, CR, the C1 controls and bytes that are not UTF-8 are shown as
 * \xNN. Into out (always terminated); cut short rather than overflow. */
void cli_visible(const char *s, size_t n, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t k = 0, used, len;
    char unit[4];

    if (size == 0)
        return;
    for (size_t i = 0; i < n; i += used) {
        used = visible_unit(p + i, n - i, unit, &len);
        if (k + len >= size)
            break;
        memcpy(out + k, unit, len);
        k += len;
    }
    out[k] = '\0';
}

/* Whether s (n bytes) is the start of a UTF-8 sequence that the next bytes may finish. */
static int utf8_cut(const unsigned char *s, size_t n)
{
    size_t want = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    if (s[0] < 0xc2 || s[0] > 0xf4 || n >= want)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return 1;
}

/* The same, written to f as it goes (trace lines and messages have no fixed bound). text:
 * a message for a person, where newline and tab stay, CR goes (it could overwrite a line
 * with another), and a UTF-8 sequence cut at the end is left for the next call. The bytes
 * of s consumed. */
size_t cli_put_visible(FILE *f, const char *s, size_t n, int text)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t used, len;
    char unit[4];

    for (size_t i = 0; i < n; i += used) {
        used = 1;
        if (text && (p[i] == '\n' || p[i] == '\t'))
            fputc(p[i], f);
        else if (text && p[i] == '\r')
            continue;
        else if (text && utf8_cut(p + i, n - i))
            return i;
        else {
            used = visible_unit(p + i, n - i, unit, &len);
            fwrite(unit, 1, len, f);
        }
    }
    return n;
}

/* A json-c string of server words. json-c escapes C0 controls as \u00XX but passes DEL,
 * C1 controls and bytes that are not UTF-8 as they are, so the JSON report carries the
 * same visible form as the text one (and stays valid UTF-8). */
static json_object *visible_string(const char *s)
{
    char buf[4 * 1024];
    cli_visible(s, strlen(s), buf, sizeof buf);
    return json_object_new_string(buf);
}

/* A URL or transport string as it may be shown: the password of "scheme://user:pass@host"
 * or "name:user:pass@host:port" (socks5, httpconnect) becomes ***, so neither the report,
 * the JSON nor an error repeats it. The '@' is the last one, as the plugins read it (a
 * password may hold '@' or '/'); a command transport is a command line, not a URL. */
void cli_hide_password(const char *in, char *out, size_t size)
{
    const char *start = strstr(in, "://"), *at, *colon = NULL;

    if (start != NULL)
        start += 3;
    else
        start = (start = strchr(in, ':')) != NULL ? start + 1 : in;
    at = strncmp(in, "command:", 8) == 0 ? NULL : strrchr(start, '@');
    if (at != NULL)
        colon = memchr(start, ':', (size_t)(at - start));
    if (colon != NULL)
        snprintf(out, size, "%.*s***%s", (int)(colon + 1 - in), in, at);
    else
        snprintf(out, size, "%s", in);
}

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

/* What to do about err, in the words of the command line (the flags that change it). */
static void advice(DWORD err, const char *host, unsigned port, char *out, size_t size)
{
    switch (err) {
    case ST_ERROR_HOST_NOT_FOUND:
        snprintf(out, size, "the name %s does not resolve: check its spelling, or name a "
                 "resolver with --dns-server", host);
        break;
    case ST_ERROR_CONNECTION_REFUSED:
        snprintf(out, size, "nothing listens on %s port %u: check the port (143 plain and "
                 "STARTTLS, 993 imaps://) and that the server runs", host, port);
        break;
    case ST_ERROR_NETWORK_UNREACHABLE:
        snprintf(out, size, "no route to %s: check the network, or go through --tunnel or "
                 "--proxy", host);
        break;
    case ST_ERROR_NETWORK_ERROR:
        snprintf(out, size, "a socket call failed on the way to %s: check --local-address "
                 "and the network", host);
        break;
    case ST_ERROR_OPERATION_TIMEOUT:
        snprintf(out, size, "%s port %u did not answer in time: a firewall may drop the "
                 "packets; raise --timeout or check the host and port", host, port);
        break;
    case ST_ERROR_CONNECTION_CLOSED:
        snprintf(out, size, "%s closed the connection: it may not be an IMAP server, or it "
                 "wants TLS (try imaps:// or --starttls)", host);
        break;
    case ST_ERROR_INVALID_RESPONSE:
        snprintf(out, size, "what %s port %u sent is not IMAP: check the port; a TLS port "
                 "needs imaps://", host, port);
        break;
    case ST_ERROR_SERVER_REJECTED:
        snprintf(out, size, "%s greeted with BYE: it is refusing connections now; try later "
                 "or ask its administrator", host);
        break;
    case ST_ERROR_SECURE_NOT_SUPPORTED:
        snprintf(out, size, "%s offers no STARTTLS: use imaps:// on its TLS port (993), or "
                 "drop --starttls on a network you trust", host);
        break;
    case ST_ERROR_TLS_HANDSHAKE:
        snprintf(out, size, "the TLS handshake with %s failed: the port may not speak TLS "
                 "(use --starttls on 143, imaps:// on 993), or no TLS version is shared", host);
        break;
    case ST_ERROR_TLS_LIBRARY:
        snprintf(out, size, "TLS stopped working in this process after memory ran out inside "
                 "the TLS library; %s is not at fault: run the command again", host);
        break;
    case ST_ERROR_CERTIFICATE_UNTRUSTED:
        snprintf(out, size, "no trusted CA signed the certificate of %s: pass the issuing CA "
                 "with --ca FILE (or --insecure to skip the check, only for testing)", host);
        break;
    case ST_ERROR_CERTIFICATE_NAME_MISMATCH:
        snprintf(out, size, "the certificate is not for %s: check the host name, or pass "
                 "--servername with the name the certificate carries", host);
        break;
    case ST_ERROR_CERTIFICATE_EXPIRED:
        snprintf(out, size, "the certificate of %s has expired (or is not yet valid): the "
                 "server must renew it; check this machine's clock", host);
        break;
    case ST_ERROR_CLIENT_CERTIFICATE:
        snprintf(out, size, "the client certificate or its key could not be used: check the "
                 "files and the key's passphrase");
        break;
    case ST_ERROR_SSH_HOST_KEY_UNKNOWN:
        snprintf(out, size, "the SSH server's host key is not in the known_hosts file: "
                 "connect once with ssh to add it, or pass --known-hosts FILE");
        break;
    case ST_ERROR_SSH_HOST_KEY_MISMATCH:
        snprintf(out, size, "the SSH server's host key has CHANGED: someone may be in the "
                 "middle; confirm the new key with its administrator before updating "
                 "known_hosts");
        break;
    case ST_ERROR_SSH_AUTH_FAILED:
        snprintf(out, size, "the SSH server refused us: check the user in --tunnel, the key "
                 "(--ssh-key, or the agent in SSH_AUTH_SOCK) or IMAPWIRE_SSH_PASSWORD");
        break;
    case ST_ERROR_SSH_CHANNEL_FAILED:
        snprintf(out, size, "the SSH server could not reach %s port %u: the host is named as "
                 "the SSH server sees it; check it and the server's AllowTcpForwarding", host,
                 port);
        break;
    case ST_ERROR_LOGIN_FAILED:
        snprintf(out, size, "the server refused the user name or password: check both, or "
                 "try another --auth mechanism");
        break;
    case ST_ERROR_TRANSPORT_NOT_FOUND:
    case ST_ERROR_PLUGIN_LOAD_FAILED:
        snprintf(out, size, "no such transport: check the name in --transport/--proxy, "
                 "IMAPWIRE_PLUGIN_PATH, or load it with --plugin FILE");
        break;
    case ST_ERROR_PLUGIN_VERSION:
        snprintf(out, size, "the plugin was built for another imapwire: rebuild it against "
                 "this version");
        break;
    case ST_ERROR_FEATURE_NOT_AVAILABLE:
        snprintf(out, size, "this build of imapwire cannot do that: see imapwire(1)");
        break;
    case ST_ERROR_MESSAGE_NOT_FOUND:
        snprintf(out, size, "no such mailbox or message: check the mailbox name and the UID");
        break;
    case ST_ERROR_COMMAND_FAILED:
        snprintf(out, size, "the server answered NO or BAD: the trace (--trace) shows its "
                 "reason");
        break;
    case ST_ERROR_INVALID_PARAMETER:
        snprintf(out, size, "an argument was refused: check the option values "
                 "(imapwire --help)");
        break;
    default:
        snprintf(out, size, "run again with --trace to see where it stops");
        break;
    }
}

static const char *const stage_names[] = {
    "none", "arguments", "file", "resolve", "tcp", "proxy", "ssh", "tls", "greeting", "login",
    "command",
};

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
        if (err == ST_ERROR_HOST_NOT_FOUND && strstr(ei->szDetail, "does not resolve"))
            snprintf(out, size, "the name of the proxy %s does not resolve: check the host in "
                     "--proxy, or name a resolver with --dns-server", v.peer);
        else if (strstr(ei->szDetail, "credentials") != NULL)
            snprintf(out, size, "the proxy %s (hop %u) refused the credentials: check the user "
                     "in --proxy and IMAPWIRE_PROXY_PASSWORD", v.peer, ei->nHop);
        else if (strstr(ei->szDetail, "accepted the connection") != NULL)
            snprintf(out, size, "the proxy %s (hop %u) accepted the connection and did not "
                     "answer: check that the port in --proxy is the proxy's and of its kind "
                     "(socks5:// or http://), or raise --timeout", v.peer, ei->nHop);
        else if (strstr(ei->szDetail, "no connection") != NULL || strstr(ei->szDetail, ": connection refused") != NULL ||
                 err == ST_ERROR_OPERATION_TIMEOUT)
            snprintf(out, size, "the proxy %s (hop %u) %s: check the host and port in --proxy "
                     "and that the proxy runs", v.peer, ei->nHop,
                     err == ST_ERROR_OPERATION_TIMEOUT ? "did not answer in time"
                                                        : "cannot be reached");
        else
            snprintf(out, size, "the proxy %s (hop %u) would not make the tunnel: %s; check "
                     "that it may reach the IMAP host and port, and --proxy", v.peer, ei->nHop,
                     v.detail);
        return 1;
    case IMAP_STAGE_SSH:
        switch (err) {
        case ST_ERROR_SSH_HOST_KEY_UNKNOWN:
            snprintf(out, size, "SSH host %s (hop %u) presented the host key %s, which is not "
                     "in the known_hosts file %s (entry %s): if its administrator confirms "
                     "that fingerprint, add it (ssh-keyscan -p %u %s >> %s), or pass "
                     "--known-hosts FILE", v.peer, ei->nHop, v.fp, v.file, v.entry, v.port,
                     v.host, v.file);
            return 1;
        case ST_ERROR_SSH_HOST_KEY_MISMATCH:
            snprintf(out, size, "SSH host %s (hop %u): its host key has CHANGED to %s, unlike "
                     "%s in %s; someone may be in the middle: confirm the new key with its "
                     "administrator, then run: ssh-keygen -R '%s' -f %s", v.peer, ei->nHop,
                     v.fp, v.entry, v.file, v.entry, v.file);
            return 1;
        case ST_ERROR_SSH_AUTH_FAILED:
            snprintf(out, size, "SSH host %s (hop %u) refused us: check the user in --tunnel, "
                     "the key (--ssh-key, or the agent in SSH_AUTH_SOCK) or "
                     "IMAPWIRE_SSH_PASSWORD", v.peer, ei->nHop);
            return 1;
        case ST_ERROR_HOST_NOT_FOUND:
            snprintf(out, size, "SSH host %s (hop %u): the name does not resolve: check "
                     "--tunnel (or its ssh_config alias), or name a resolver with "
                     "--dns-server", v.peer, ei->nHop);
            return 1;
        case ST_ERROR_OPERATION_TIMEOUT:
            if (strstr(ei->szDetail, "accepted the connection") != NULL) {
                snprintf(out, size, "SSH host %s (hop %u) accepted the connection but did not "
                         "speak SSH in time: check that the port in --tunnel is sshd's, or "
                         "raise --timeout", v.peer, ei->nHop);
                return 1;
            }
            if (strstr(ei->szDetail, "opened no channel to") != NULL)
                return advice_info(ST_ERROR_SSH_CHANNEL_FAILED, ei, out, size);
            if (strstr(ei->szDetail, "authentication") != NULL) {
                snprintf(out, size, "SSH host %s (hop %u) did not answer the authentication in "
                         "time: raise --timeout, or check its load", v.peer, ei->nHop);
                return 1;
            }
            /* nothing came back at all: said as for a refused connection */
            /* fall through */
        case ST_ERROR_CONNECTION_REFUSED:
        case ST_ERROR_NETWORK_UNREACHABLE:
            snprintf(out, size, "SSH host %s (hop %u) cannot be reached: check the host and "
                     "port in --tunnel and that sshd runs there", v.peer, ei->nHop);
            return 1;
        case ST_ERROR_SSH_CHANNEL_FAILED:
            if (ei->nHop > 1) {
                snprintf(out, size, "SSH host %s (hop %u) cannot be reached from the hop "
                         "before it: check the host and port as that hop sees them, and its "
                         "AllowTcpForwarding", v.peer, ei->nHop);
                return 1;
            }
            return 0;
        default:
            return 0;
        }
    case IMAP_STAGE_LOGIN:
        if (err != ST_ERROR_LOGIN_FAILED || ei->szDetail[0] == '\0')
            return 0;
        snprintf(out, size, "the server refused the user name or password (it said: %s): "
                 "check both, or try another --auth mechanism", v.detail);
        return 1;
    case IMAP_STAGE_GREETING:
        if (strstr(ei->szDetail, "implicit TLS") != NULL) {
            snprintf(out, size, "%s wants TLS at once: use imaps:// (its TLS port, usually "
                     "993), or the server's plain port (143) for imap://", v.peer);
            return 1;
        }
        if (err == ST_ERROR_OPERATION_TIMEOUT) {
            snprintf(out, size, "%s accepted the connection but sent no IMAP greeting: check "
                     "the port (143 plain and STARTTLS, 993 imaps://); raise --timeout for a "
                     "slow server", v.peer);
            return 1;
        }
        return 0;
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

/* error.stage, hop, peer, file, fingerprint, detail (null when the library had none). */
static void add_info(json_object *e, const IMAPERRORINFO *ei)
{
    const char *const f[] = { ei->szPeer, ei->szFile, ei->szFingerprint, ei->szDetail };
    const char *const k[] = { "peer", "file", "fingerprint", "detail" };
    json_object_object_add(e, "stage", json_object_new_string(
        ei->dwStage < sizeof stage_names / sizeof stage_names[0] ? stage_names[ei->dwStage]
                                                                 : "none"));
    json_object_object_add(e, "hop", json_object_new_int((int)ei->nHop));
    for (size_t i = 0; i < 4; i++)
        json_object_object_add(e, k[i], f[i][0] ? json_object_new_string(f[i]) : NULL);
}

void cli_warn(const struct cli_opts *o, const char *fmt, ...)
{
    va_list ap;
    if (o->silent)
        return;                /* -s: no warnings, even with -S (errors only) */
    fprintf(stderr, "%simapwire: warning:%s ", o->color_err ? C_YEL C_BOLD : "",
            o->color_err ? C_OFF : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void set_error(json_object *report, DWORD err, const char *name, const char *what,
                      const char *text, const char *fix, int code)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_int((int)err));
    json_object_object_add(e, "name", json_object_new_string(name));
    json_object_object_add(e, "during", json_object_new_string(what));
    json_object_object_add(e, "message", json_object_new_string(text));
    json_object_object_add(e, "advice", json_object_new_string(fix));
    json_object_object_add(report, "error", e);
    json_object_object_add(report, "exit_code", json_object_new_int(code));
}

/* The message and the advice for err: from the library's error info where it names
 * the party, else from the code and the host the command line gave. */
static void describe(DWORD err, const char *host, unsigned port, IMAPERRORINFO *ei,
                     char *text, size_t text_size, char *fix, size_t fix_size)
{
    error_info(err, ei);
    message_info(err, ei, text, text_size);
    if (!advice_info(err, ei, fix, fix_size))
        advice(err, host ? host : "the server", port, fix, fix_size);
}

json_object *cli_error_object(DWORD err, const char *host, unsigned port)
{
    char text[1200], fix[4096];
    json_object *e = json_object_new_object();
    IMAPERRORINFO ei;

    describe(err, host, port, &ei, text, sizeof text, fix, sizeof fix);
    json_object_object_add(e, "code", json_object_new_int((int)err));
    json_object_object_add(e, "name", json_object_new_string(cli_error_name(err)));
    json_object_object_add(e, "message", json_object_new_string(text));
    json_object_object_add(e, "advice", json_object_new_string(fix));
    json_object_object_add(e, "exit_code", json_object_new_int(cli_exit_code(err)));
    add_info(e, &ei);
    return e;
}

int cli_fail(const struct cli_opts *o, json_object *report, DWORD err, const char *what,
             const char *host, unsigned port)
{
    char text[1200], fix[4096];
    int code = cli_exit_code(err);
    IMAPERRORINFO ei;
    json_object *e;

    describe(err, host, port, &ei, text, sizeof text, fix, sizeof fix);
    set_error(report, err, cli_error_name(err), what, text, fix, code);
    if (json_object_object_get_ex(report, "error", &e))
        add_info(e, &ei);
    fprintf(stderr, "%simapwire: %s failed:%s %s (%s)\n  fix: %s\n",
            o->color_err ? C_RED C_BOLD : "", what, o->color_err ? C_OFF : "", text,
            cli_error_name(err), fix);
    return code;
}

int cli_usage_error(const struct cli_opts *o, json_object *report, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (report != NULL)
        set_error(report, ST_ERROR_INVALID_PARAMETER, "USAGE", "arguments", text,
                  "see imapwire --help", EXIT_USAGE);
    fprintf(stderr, "%simapwire:%s %s\n  (imapwire --help lists every option)\n",
            o->color_err ? C_RED C_BOLD : "", o->color_err ? C_OFF : "", text);
    return EXIT_USAGE;
}

/* A URL the parser refused, told without the password it may hold. */
int cli_url_error(const struct cli_opts *o, json_object *report, const char *url,
                  const char *why)
{
    char shown[1024];
    cli_hide_password(url, shown, sizeof shown);
    return cli_usage_error(o, report, "%s: %s", shown, why);
}

int cli_finish(const struct cli_opts *o, json_object *report, int code)
{
    if (json_object_object_get_ex(report, "exit_code", NULL) == 0)
        json_object_object_add(report, "exit_code", json_object_new_int(code));
    if (json_object_object_get_ex(report, "error", NULL) == 0)
        json_object_object_add(report, "error", NULL);
    if (o->json) {
        puts(json_object_to_json_string_ext(report, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
    }
    json_object_put(report);
    return code;
}

/* Trace lines as they happen; the library has already redacted credentials. The
 * server's lines are escaped whether or not stderr is a terminal: a log that is later
 * shown with cat must not drive the terminal either. */
void cli_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    fputs(dir == IMAP_TRACE_SEND ? "C: " : dir == IMAP_TRACE_RECV ? "S: " : "*  ", stderr);
    cli_put_visible(stderr, line, len > 0 ? (size_t)len : 0, 0);
    fputc('\n', stderr);
}

static const char *cert_status(DWORD s)
{
    switch (s) {
    case CERTIFICATE_STATUS_VALID:         return "valid";
    case CERTIFICATE_STATUS_UNTRUSTED:     return "untrusted";
    case CERTIFICATE_STATUS_NAME_MISMATCH: return "name-mismatch";
    case CERTIFICATE_STATUS_EXPIRED:       return "expired";
    case CERTIFICATE_STATUS_NOT_CHECKED:   return "not-checked";
    default:                               return "none";
    }
}

/* Splits the capability list; AUTH=x entries also go to the mechanism list. */
static void add_capabilities(HCLIENT h, json_object *facts)
{
    char capa[8192], *save = NULL, *w;
    json_object *all = json_object_new_array(), *mech = json_object_new_array();

    if (ImapGetCapabilities(h, capa, (INT)sizeof capa) != IMAP_ERROR) {
        for (w = strtok_r(capa, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
            json_object_array_add(all, visible_string(w));
            if (strncasecmp(w, "AUTH=", 5) == 0)
                json_object_array_add(mech, visible_string(w + 5));
        }
    }
    json_object_object_add(facts, "capabilities", all);
    json_object_object_add(facts, "auth_mechanisms", mech);
}

static json_object *timings_object(const IMAPTIMINGS *tm)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "resolve", json_object_new_int64(tm->dwResolve));
    json_object_object_add(t, "connect", json_object_new_int64(tm->dwConnect));
    json_object_object_add(t, "tunnel", json_object_new_int64(tm->dwTunnel));
    json_object_object_add(t, "secure", json_object_new_int64(tm->dwSecure));
    json_object_object_add(t, "greeting", json_object_new_int64(tm->dwGreeting));
    json_object_object_add(t, "total", json_object_new_int64(tm->dwTotal));
    return t;
}

json_object *cli_failed_timings(void)
{
    IMAPTIMINGS tm;
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    return ImapGetLastTimings(&tm) == 0 ? timings_object(&tm) : NULL;
}

json_object *cli_facts(HCLIENT h)
{
    json_object *facts = json_object_new_object(), *t, *tls = NULL, *ssh = NULL;
    IMAPTIMINGS tm;
    SECURITYINFO si;

    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    t = ImapGetTimings(h, &tm) == 0 ? timings_object(&tm) : json_object_new_object();
    json_object_object_add(facts, "timings_us", t);

    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapGetSecurityInformation(h, &si) == 0) {
        if (si.dwProtocol != SECURITY_PROTOCOL_NONE) {
            tls = json_object_new_object();
            json_object_object_add(tls, "protocol", json_object_new_string(
                si.dwProtocol == SECURITY_PROTOCOL_TLS13 ? "TLSv1.3" : "TLSv1.2"));
            json_object_object_add(tls, "cipher", visible_string(si.szCipher));
            json_object_object_add(tls, "certificate_status",
                                   json_object_new_string(cert_status(si.dwCertificateStatus)));
            json_object_object_add(tls, "subject", visible_string(si.szSubject));
            json_object_object_add(tls, "issuer", visible_string(si.szIssuer));
            json_object_object_add(tls, "valid_from", json_object_new_string(si.szValidFrom));
            json_object_object_add(tls, "valid_to", json_object_new_string(si.szValidTo));
            json_object_object_add(tls, "sha256_fingerprint",
                                   json_object_new_string(si.szFingerprint));
            json_object_object_add(tls, "session_resumed",
                                   json_object_new_boolean(si.bSessionResumed));
        }
        if (si.dwTunnelProtocol == SECURITY_PROTOCOL_SSH2) {
            ssh = json_object_new_object();
            json_object_object_add(ssh, "protocol", json_object_new_string("SSH-2"));
            json_object_object_add(ssh, "host_key_fingerprint",
                                   json_object_new_string(si.szHostKeyFingerprint));
        }
    }
    json_object_object_add(facts, "tls", tls);
    json_object_object_add(facts, "ssh", ssh);
    add_capabilities(h, facts);
    return facts;
}

static const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static void print_list(const char *indent, const char *label, json_object *arr)
{
    size_t n = arr ? json_object_array_length(arr) : 0;
    printf("%s%-17s", indent, label);
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(arr, i)));
    printf("%s\n", n ? "" : "(none)");
}

void cli_print_facts(const struct cli_opts *o, json_object *facts, const char *indent)
{
    static const char *phases[][2] = {
        {"resolve", "resolve"}, {"connect", "tcp connect"}, {"tunnel", "ssh or proxy"},
        {"secure", "tls"}, {"greeting", "greeting"}, {"total", "total"}};
    json_object *t, *tls, *ssh, *v, *caps, *mech;
    const char *on = o->color_out ? C_GREEN : "", *off = o->color_out ? C_OFF : "";

    if (json_object_object_get_ex(facts, "timings_us", &t)) {
        for (size_t i = 0; i < 6; i++) {
            if (!json_object_object_get_ex(t, phases[i][0], &v))
                continue;
            int64_t us = json_object_get_int64(v);
            if (us == 0 && i != 5)
                printf("%sphase %-12s         -\n", indent, phases[i][1]);
            else
                printf("%sphase %-12s %9.3f ms\n", indent, phases[i][1], (double)us / 1000.0);
        }
    }
    if (json_object_object_get_ex(facts, "ssh", &ssh) && ssh != NULL)
        printf("%sssh:             %s, host key %s\n", indent, str(ssh, "protocol"),
               str(ssh, "host_key_fingerprint"));
    if (json_object_object_get_ex(facts, "tls", &tls) && tls != NULL) {
        const char *st = str(tls, "certificate_status");
        int good = strcmp(st, "valid") == 0;
        printf("%stls:             %s, cipher %s, certificate %s%s%s%s\n", indent,
               str(tls, "protocol"), str(tls, "cipher"), good ? on : (o->color_out ? C_YEL : ""),
               st, o->color_out ? C_OFF : "",
               json_object_get_boolean(json_object_object_get(tls, "session_resumed"))
                   ? ", session resumed" : "");
        printf("%scertificate:     subject %s\n", indent, str(tls, "subject"));
        printf("%s                 issuer %s\n", indent, str(tls, "issuer"));
        printf("%s                 valid %s .. %s\n", indent, str(tls, "valid_from"),
               str(tls, "valid_to"));
        printf("%s                 sha256 %s\n", indent, str(tls, "sha256_fingerprint"));
    } else if (json_object_object_get_ex(facts, "tls", &tls)) {
        printf("%stls:             none (%sno encryption%s)\n", indent,
               o->color_out ? C_YEL : "", off);
    }
    if (json_object_object_get_ex(facts, "capabilities", &caps))
        print_list(indent, "capabilities:", caps);
    if (json_object_object_get_ex(facts, "auth_mechanisms", &mech))
        print_list(indent, "auth mechanisms:", mech);
}
