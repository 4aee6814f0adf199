/* ssh_tunnel.c: IMAP through an SSH tunnel run inside the program (no ssh process): the
 * SSH server opens the TCP connection to the IMAP host, which may be unreachable otherwise.
 *
 *   usage: IMAPWIRE_PASSWORD=... ssh_tunnel SSH_HOST SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS IMAP_HOST IMAP_PORT USER
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/imapwire.h>

static int fail(const char *what)
{
    char text[256];
    ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
    fprintf(stderr, "%s failed: %s\n", what, text);
    return 1;
}

int main(int argc, char **argv)
{
    const char *password = getenv("IMAPWIRE_PASSWORD");
    SECURITYCREDENTIALS sc;
    SECURITYINFO si;
    HCLIENT h;
    int rc = 0;

    if (argc != 9 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s SSH_HOST SSH_PORT SSH_USER SSH_KEY "
                        "KNOWN_HOSTS IMAP_HOST IMAP_PORT USER\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = argv[1];
    sc.nTunnelPort = (UINT)strtoul(argv[2], NULL, 10);
    sc.lpszTunnelUser = argv[3];
    sc.lpszTunnelKey = argv[4];        /* NULL would try the ssh-agent, then a password */
    /* The host key must already be in this file: an unknown or changed key fails the
     * connect (ST_ERROR_SSH_HOST_KEY_UNKNOWN / _MISMATCH); nothing is trusted on first use. */
    sc.lpszKnownHosts = argv[5];

    /* IMAP_HOST is resolved and reached by the SSH server, not by this machine. */
    h = ImapConnect(argv[6], (UINT)strtoul(argv[7], NULL, 10), 10, IMAP_OPTION_TUNNEL, &sc);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[8], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else if (ImapGetSecurityInformation(h, &si) == 0 && si.dwTunnelProtocol == SECURITY_PROTOCOL_SSH2)
        printf("logged in as %s through SSH %s (host key %s)\n", argv[8], argv[1], si.szHostKeyFingerprint);
    else
        rc = fail("ImapGetSecurityInformation");
    ImapDisconnect(h);                 /* closes the channel and the SSH session too */
out:
    ImapUninitialize();
    return rc;
}
