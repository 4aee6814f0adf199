/* jump_host.c: an SSH tunnel over more than one hop, as "ssh -J bastion,inner": the
 * library reaches the first host, tunnels SSH to the next through it, and so on; the
 * last hop opens the connection to the IMAP server. Every hop's host key is checked.
 *
 *   usage: IMAPWIRE_PASSWORD=... jump_host HOPS SSH_USER SSH_KEY KNOWN_HOSTS IMAP_HOST IMAP_PORT USER
 *   HOPS: "[user@]host[:port],[user@]host[:port],..." (first hop first)
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
    IMAPTIMINGS t;
    HCLIENT h;
    int rc = 0;

    if (argc != 8 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s HOPS SSH_USER SSH_KEY KNOWN_HOSTS "
                        "IMAP_HOST IMAP_PORT USER\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = argv[1];       /* the whole list; a hop without user@ uses SSH_USER */
    sc.lpszTunnelUser = argv[2];
    sc.lpszTunnelKey = argv[3];        /* offered to every hop */
    sc.lpszKnownHosts = argv[4];       /* must hold every hop's key (as [host]:port) */

    h = ImapConnect(argv[5], (UINT)strtoul(argv[6], NULL, 10), 10, IMAP_OPTION_TUNNEL, &sc);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    memset(&t, 0, sizeof t);
    t.dwSize = sizeof t;
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[7], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else if (ImapGetTimings(h, &t) == 0)
        /* dwTunnel covers all hops: handshakes, host keys, authentication, channels */
        printf("logged in as %s via %s; ssh took %u us of %u us\n", argv[7], argv[1],
               (unsigned)t.dwTunnel, (unsigned)t.dwTotal);
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
