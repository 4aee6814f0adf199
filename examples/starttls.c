/* starttls.c: connect on the plain IMAP port (143) and upgrade to TLS with STARTTLS before
 * the password is sent; the certificate is checked against a CA file given by the caller.
 *
 *   usage: IMAPWIRE_PASSWORD=... starttls HOST PORT USER CAFILE
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
    SECURITYCREDENTIALS creds;
    SECURITYINFO si;
    HCLIENT h;
    int rc = 0;

    if (argc != 5 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s HOST PORT USER CAFILE\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");

    /* dwSize first: the struct may grow, and the library reads only what you know of.
     * A private CA (a company's, or a test one); NULL would mean the system store. */
    memset(&creds, 0, sizeof creds);
    creds.dwSize = sizeof creds;
    creds.lpszCAFile = argv[4];

    /* SECURE_EXPLICIT = STARTTLS. If the server does not offer it, the connect fails
     * (ST_ERROR_SECURE_NOT_SUPPORTED) instead of going on in clear text. */
    h = ImapConnect(argv[1], (UINT)strtoul(argv[2], NULL, 10), 10, IMAP_OPTION_SECURE_EXPLICIT, &creds);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");   /* e.g. ST_ERROR_CERTIFICATE_UNTRUSTED without the CA */
        goto out;
    }
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[3], password) == IMAP_ERROR) {
        rc = fail("ImapLogin");
    } else {
        /* What the handshake agreed on, for the log or the user. */
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        if (ImapGetSecurityInformation(h, &si) == 0 && si.dwCertificateStatus == CERTIFICATE_STATUS_VALID)
            printf("STARTTLS: %s, cipher %s, certificate of %s valid; logged in as %s\n",
                   si.dwProtocol == SECURITY_PROTOCOL_TLS13 ? "TLS 1.3" : "TLS 1.2",
                   si.szCipher, si.szSubject, argv[3]);
        else
            rc = fail("ImapGetSecurityInformation");
    }
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
