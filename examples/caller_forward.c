/* caller_forward.c: connect through a port-forward someone else made, e.g.
 *     ssh -N -L 10993:imap.internal:993 bastion
 * The library sees only 127.0.0.1:10993, so the caller says two things it cannot guess:
 * which TLS mode the far port speaks, and the name the server's certificate carries.
 *
 *   usage: IMAPWIRE_PASSWORD=... caller_forward LOCAL_PORT SERVER_NAME CAFILE USER
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
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s LOCAL_PORT SERVER_NAME CAFILE USER\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    /* lpszTunnelHost stays NULL: IMAP_OPTION_TUNNEL then means "this local port is a
     * tunnel already". The certificate cannot match 127.0.0.1, so the real name is
     * required (connect fails with ST_ERROR_INVALID_PARAMETER without it). */
    sc.lpszServerName = argv[2];
    sc.lpszCAFile = argv[3];

    /* The far end is an IMAPS port: say so; the local port number implies nothing. */
    h = ImapConnect("127.0.0.1", (UINT)strtoul(argv[1], NULL, 10), 10,
                    IMAP_OPTION_TUNNEL | IMAP_OPTION_SECURE_IMPLICIT, &sc);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[4], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else if (ImapGetSecurityInformation(h, &si) == 0 && si.dwCertificateStatus == CERTIFICATE_STATUS_VALID)
        printf("logged in as %s through the forward on port %s; certificate valid for %s\n",
               argv[4], argv[1], argv[2]);
    else
        rc = fail("certificate check");
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
