/* connect.c: the smallest useful imapwire program: connect, log in, print what the
 * server can do and how long each connect phase took, then disconnect.
 *
 *   usage: connect HOST PORT USER PASSWORD [starttls|imaps|plain] [trace] [CAFILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/imapwire.h>

static void trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    printf("  %s %.*s\n", dir == IMAP_TRACE_SEND ? "C:" : dir == IMAP_TRACE_RECV ? "S:" : "--",
           len, line);
}

static const char *status_name(DWORD s)
{
    switch (s) {
    case CERTIFICATE_STATUS_VALID:         return "valid";
    case CERTIFICATE_STATUS_UNTRUSTED:     return "untrusted";
    case CERTIFICATE_STATUS_NAME_MISMATCH: return "name mismatch";
    case CERTIFICATE_STATUS_EXPIRED:       return "expired";
    case CERTIFICATE_STATUS_NOT_CHECKED:   return "not checked";
    default:                               return "none (no TLS)";
    }
}

static void print_security(HCLIENT h)
{
    SECURITYINFO si;
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapGetSecurityInformation(h, &si) != 0)
        return;
    if (si.dwProtocol == SECURITY_PROTOCOL_NONE) {
        printf("security: none (no TLS)\n");
        return;
    }
    printf("security: %s, cipher %s, certificate %s%s\n",
           si.dwProtocol == SECURITY_PROTOCOL_TLS13 ? "TLS 1.3" : "TLS 1.2", si.szCipher,
           status_name(si.dwCertificateStatus), si.bSessionResumed ? ", session resumed" : "");
    printf("certificate: subject %s, issuer %s, valid %s .. %s\n", si.szSubject, si.szIssuer,
           si.szValidFrom, si.szValidTo);
    printf("sha-256: %s\n", si.szFingerprint);
}

static int fail(const char *what)
{
    char text[256];
    DWORD err = ImapGetLastError();
    ImapGetErrorString(err, text, (INT)sizeof text);
    fprintf(stderr, "%s failed: error %u: %s\n", what, (unsigned)err, text);
    return 1;
}

int main(int argc, char **argv)
{
    IMAPCONNECTINFO info;
    SECURITYCREDENTIALS creds;
    IMAPTIMINGS t;
    HCLIENT h;
    char capa[4096];
    DWORD options = IMAP_OPTION_IDENTIFY;
    int rc = 0;

    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT USER PASSWORD [starttls|imaps|plain] [trace|quiet] [CAFILE]\n",
                argv[0]);
        return 2;
    }
    if (argc > 5 && strcmp(argv[5], "starttls") == 0)
        options |= IMAP_OPTION_SECURE_EXPLICIT;
    else if (argc > 5 && strcmp(argv[5], "imaps") == 0)
        options |= IMAP_OPTION_SECURE_IMPLICIT;

    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");

    memset(&info, 0, sizeof info);
    info.dwSize = sizeof info;
    info.lpszHostName = argv[1];
    info.nRemotePort = (UINT)strtoul(argv[2], NULL, 10);
    info.nTimeout = 10;
    info.dwOptions = options;
    info.lpszClientName = "imapwire-example";
    if (argc > 6 && strcmp(argv[6], "trace") == 0)
        info.lpTraceProc = trace;
    if (argc > 7) {
        /* A private CA for the server's certificate (NULL would mean the system store). */
        memset(&creds, 0, sizeof creds);
        creds.dwSize = sizeof creds;
        creds.lpszCAFile = argv[7];
        info.lpCredentials = &creds;
    }

    h = ImapConnectEx(&info);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[3], argv[4]) == IMAP_ERROR) {
        if (ImapGetLastError() == ST_ERROR_ALREADY_AUTHENTICATED) {
            /* a PREAUTH greeting: the transport (e.g. a command) logged us in already */
            printf("server greeted PREAUTH: already logged in\n");
        } else {
            rc = fail("ImapLogin");
            ImapDisconnect(h);
            goto out;
        }
    }
    print_security(h);
    if (ImapGetCapabilities(h, capa, (INT)sizeof capa) != IMAP_ERROR)
        printf("capabilities: %s\n", capa);
    memset(&t, 0, sizeof t);
    t.dwSize = sizeof t;
    if (ImapGetTimings(h, &t) == 0)
        printf("timings (us): resolve %u, connect %u, tunnel %u, secure %u, greeting %u, total %u\n",
               (unsigned)t.dwResolve, (unsigned)t.dwConnect, (unsigned)t.dwTunnel,
               (unsigned)t.dwSecure, (unsigned)t.dwGreeting, (unsigned)t.dwTotal);
    if (ImapDisconnect(h) == IMAP_ERROR)
        rc = fail("ImapDisconnect");
    else
        printf("logged in as %s and disconnected\n", argv[3]);
out:
    ImapUninitialize();
    return rc;
}
