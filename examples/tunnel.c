/* tunnel.c: IMAP through an in-process SSH tunnel: the SSH server opens the connection
 * to the IMAP host (and resolves its name); prints the host key and per-phase timings.
 *
 *   usage: tunnel SSH_HOST SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS IMAP_HOST IMAP_PORT USER PASSWORD [forward]
 * With "forward", a library-managed port-forward is made first and the connect goes
 * through its local port, as any program (or ssh -L user) would. */
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

    HFORWARD fw = INVALID_FORWARD;
    const char *host;
    UINT port, options = IMAP_OPTION_TUNNEL;
    LPSECURITYCREDENTIALS use = NULL;

    if (argc != 10 && !(argc == 11 && strcmp(argv[10], "forward") == 0)) {
        fprintf(stderr, "usage: %s SSH_HOST SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS "
                        "IMAP_HOST IMAP_PORT USER PASSWORD [forward]\n", argv[0]);
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
    host = argv[6];
    port = (UINT)strtoul(argv[7], NULL, 10);
    use = &sc;
    if (argc == 11) {
        UINT bound = 0;
        fw = ImapCreatePortForward(&sc, host, port, 0, &bound);
        if (fw == INVALID_FORWARD) {
            ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
            fprintf(stderr, "port-forward failed: %s\n", text);
            ImapUninitialize();
            return 1;
        }
        printf("port-forward: 127.0.0.1:%u -> %s:%u through %s\n", bound, host, port, argv[1]);
        host = "127.0.0.1";
        port = bound;
        use = NULL;                /* a forward needs nothing more from the client */
    }
    h = ImapConnect(host, port, 10, options, use);
    if (h != INVALID_CLIENT && ImapLogin(h, IMAP_AUTH_DEFAULT, argv[8], argv[9]) == 0) {
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        memset(&t, 0, sizeof t);
        t.dwSize = sizeof t;
        ImapGetSecurityInformation(h, &si);
        ImapGetTimings(h, &t);
        if (fw == INVALID_FORWARD)
            printf("tunnel: %s via SSH 2, host key %s\n", argv[1], si.szHostKeyFingerprint);
        printf("timings (us): connect %u, tunnel %u, greeting %u, total %u\n",
               (unsigned)t.dwConnect, (unsigned)t.dwTunnel, (unsigned)t.dwGreeting,
               (unsigned)t.dwTotal);
        printf("logged in as %s through the %s\n", argv[8], fw == INVALID_FORWARD ? "tunnel" : "forward");
        rc = 0;
    }
    if (rc != 0) {
        ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
        fprintf(stderr, "tunnel failed: %s\n", text);
    }
    if (h != INVALID_CLIENT)
        ImapDisconnect(h);
    if (fw != INVALID_FORWARD)
        ImapClosePortForward(fw);
    ImapUninitialize();
    return rc;
}
