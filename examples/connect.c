/* connect.c: the smallest useful imapwire program: connect, log in, print what the
 * server can do and how long each connect phase took, then disconnect.
 *
 *   usage: connect HOST PORT USER PASSWORD [starttls|imaps|plain] [trace]
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
    IMAPTIMINGS t;
    HCLIENT h;
    char capa[4096];
    DWORD options = IMAP_OPTION_IDENTIFY;
    int rc = 0;

    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT USER PASSWORD [starttls|imaps|plain] [trace]\n",
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

    h = ImapConnectEx(&info);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[3], argv[4]) == IMAP_ERROR) {
        rc = fail("ImapLogin");
        ImapDisconnect(h);
        goto out;
    }
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
