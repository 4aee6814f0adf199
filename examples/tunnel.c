/* tunnel.c: IMAP through an in-process SSH tunnel: the SSH server opens the connection
 * to the IMAP host (and resolves its name); prints the host key and per-phase timings.
 *
 *   usage: tunnel SSH_HOST SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS IMAP_HOST IMAP_PORT USER PASSWORD
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/imapwire.h>

int main(int argc, char **argv)
{
    SECURITYCREDENTIALS sc;
    SECURITYINFO si;
    IMAPTIMINGS t;
    HCLIENT h;
    char text[128];
    int rc = 1;

    if (argc != 10) {
        fprintf(stderr, "usage: %s SSH_HOST SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS "
                        "IMAP_HOST IMAP_PORT USER PASSWORD\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return 1;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = argv[1];
    sc.nTunnelPort = (UINT)strtoul(argv[2], NULL, 10);
    sc.lpszTunnelUser = argv[3];
    sc.lpszTunnelKey = argv[4];
    sc.lpszKnownHosts = argv[5];
    h = ImapConnect(argv[6], (UINT)strtoul(argv[7], NULL, 10), 10, IMAP_OPTION_TUNNEL, &sc);
    if (h != INVALID_CLIENT && ImapLogin(h, IMAP_AUTH_DEFAULT, argv[8], argv[9]) == 0) {
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        memset(&t, 0, sizeof t);
        t.dwSize = sizeof t;
        ImapGetSecurityInformation(h, &si);
        ImapGetTimings(h, &t);
        printf("tunnel: %s via SSH 2, host key %s\n", argv[1], si.szHostKeyFingerprint);
        printf("timings (us): connect %u, tunnel %u, greeting %u, total %u\n",
               (unsigned)t.dwConnect, (unsigned)t.dwTunnel, (unsigned)t.dwGreeting,
               (unsigned)t.dwTotal);
        printf("logged in as %s through the tunnel\n", argv[8]);
        rc = 0;
    }
    if (rc != 0) {
        ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
        fprintf(stderr, "tunnel failed: %s\n", text);
    }
    if (h != INVALID_CLIENT)
        ImapDisconnect(h);
    ImapUninitialize();
    return rc;
}
