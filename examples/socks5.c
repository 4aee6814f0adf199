/* socks5.c: reach the IMAP server through a SOCKS5 proxy, with the shipped "socks5"
 * transport plugin found by name (installed beside the library, or in a directory of
 * IMAPWIRE_PLUGIN_PATH). The proxy resolves the IMAP host name, not this machine.
 *
 *   usage: IMAPWIRE_PASSWORD=... [IMAPWIRE_PROXY_USER=u IMAPWIRE_PROXY_PASSWORD=p] \
 *          socks5 PROXY_HOST PROXY_PORT IMAP_HOST IMAP_PORT USER
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
    const char *puser = getenv("IMAPWIRE_PROXY_USER"), *ppass = getenv("IMAPWIRE_PROXY_PASSWORD");
    IMAPCONNECTINFO ci;
    char transport[512];
    HCLIENT h;
    int rc = 0;

    if (argc != 6 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s PROXY_HOST PROXY_PORT IMAP_HOST IMAP_PORT USER\n",
                argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    /* The transport string: "socks5:[user:password@]host:port". It holds a secret, so
     * it is built here from the environment and wiped after use (traces redact it). */
    if (puser != NULL && ppass != NULL)
        snprintf(transport, sizeof transport, "socks5:%s:%s@%s:%s", puser, ppass, argv[1], argv[2]);
    else
        snprintf(transport, sizeof transport, "socks5:%s:%s", argv[1], argv[2]);

    /* ImapConnectEx takes what ImapConnect does plus extras such as the transport. */
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = argv[3];
    ci.nRemotePort = (UINT)strtoul(argv[4], NULL, 10);
    ci.nTimeout = 10;
    ci.lpszTransport = transport;      /* the bottom layer instead of TCP */
    h = ImapConnectEx(&ci);
    memset(transport, 0, sizeof transport);   /* a real program would use explicit_bzero */
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnectEx");    /* refused proxy credentials: ST_ERROR_CONNECTION_REFUSED */
        goto out;
    }
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[5], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else
        printf("logged in as %s through SOCKS5 proxy %s:%s\n", argv[5], argv[1], argv[2]);
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
