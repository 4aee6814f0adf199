/* ssh_config.c: the tunnel's settings come from an OpenSSH client config "Host" entry, so
 * a user who already has "ssh ALIAS" working needs no other SSH setting here. The file is
 * $IMAPWIRE_SSH_CONFIG if set, else ~/.ssh/config (HostName, Port, User, IdentityFile,
 * ProxyJump, UserKnownHostsFile... are read; see docs/ssh.md).
 *
 *   usage: IMAPWIRE_PASSWORD=... ssh_config ALIAS IMAP_HOST IMAP_PORT USER
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

    if (argc != 5 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s ALIAS IMAP_HOST IMAP_PORT USER\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    /* The alias, not a host name. Any field set here as well (user, key, known hosts)
     * wins over the config file's value. */
    sc.lpszTunnelHost = argv[1];
    sc.dwOptions = CREDENTIAL_TUNNEL_SSH_CONFIG;

    h = ImapConnect(argv[2], (UINT)strtoul(argv[3], NULL, 10), 10, IMAP_OPTION_TUNNEL, &sc);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");      /* e.g. a HostKeyAlias in the entry: not supported */
        goto out;
    }
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[4], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else if (ImapGetSecurityInformation(h, &si) == 0)
        printf("logged in as %s through ssh alias %s (host key %s)\n", argv[4], argv[1],
               si.szHostKeyFingerprint);
    else
        rc = fail("ImapGetSecurityInformation");
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
