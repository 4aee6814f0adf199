/* port_forward.c: the library makes the forward (like "ssh -L") and keeps it open while
 * the program runs; any code that speaks TCP, this library or another, then connects to
 * 127.0.0.1:PORT. Only the forward's own user may use it (checked per connection).
 *
 *   usage: IMAPWIRE_PASSWORD=... port_forward SSH_HOST SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS IMAP_HOST IMAP_PORT USER
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
    HFORWARD fw;
    HCLIENT h;
    UINT port = 0;
    int i, rc = 0;

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
    sc.lpszTunnelKey = argv[4];
    sc.lpszKnownHosts = argv[5];

    /* Local port 0: the system picks a free one and "port" tells which. The SSH session
     * is made now, so a wrong key or host key fails here, not at the first connection. */
    fw = ImapCreatePortForward(&sc, argv[6], (UINT)strtoul(argv[7], NULL, 10), 0, &port);
    if (fw == INVALID_FORWARD) {
        rc = fail("ImapCreatePortForward");
        goto out;
    }
    printf("forward: 127.0.0.1:%u -> %s:%s via %s\n", port, argv[6], argv[7], argv[1]);

    /* Two connections to show the forward serves many (one SSH session, a channel each).
     * They are plain connects: the forward is just a local port to them. */
    for (i = 0; i < 2 && rc == 0; i++) {
        h = ImapConnect("127.0.0.1", port, 10, IMAP_OPTION_NONE, NULL);
        if (h == INVALID_CLIENT)
            rc = fail("ImapConnect");
        else if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[8], password) == IMAP_ERROR)
            rc = fail("ImapLogin");
        else
            printf("connection %d: logged in as %s\n", i + 1, argv[8]);
        if (h != INVALID_CLIENT)
            ImapDisconnect(h);
    }
    ImapClosePortForward(fw);          /* stops listening and ends the SSH session */
out:
    ImapUninitialize();
    return rc;
}
