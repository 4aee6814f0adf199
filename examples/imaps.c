/* imaps.c: implicit TLS ("IMAPS", port 993): TLS starts before the first IMAP byte, so
 * nothing is ever sent in clear text. Prints the certificate and the per-phase timings.
 *
 *   usage: IMAPWIRE_PASSWORD=... imaps HOST PORT USER [CAFILE]
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
    IMAPTIMINGS t;
    HCLIENT h;
    int rc = 0;

    if ((argc != 4 && argc != 5) || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s HOST PORT USER [CAFILE]\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    /* Without a CA file the system's trust store is used, as for a public server. */
    memset(&creds, 0, sizeof creds);
    creds.dwSize = sizeof creds;
    creds.lpszCAFile = argc == 5 ? argv[4] : NULL;

    h = ImapConnect(argv[1], (UINT)strtoul(argv[2], NULL, 10), 10, IMAP_OPTION_SECURE_IMPLICIT, &creds);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[3], password) == IMAP_ERROR) {
        rc = fail("ImapLogin");
    } else {
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        memset(&t, 0, sizeof t);
        t.dwSize = sizeof t;
        /* A pinned-certificate check would compare si.szFingerprint with a known value. */
        if (ImapGetSecurityInformation(h, &si) == 0 && ImapGetTimings(h, &t) == 0) {
            printf("IMAPS: cipher %s; certificate %s, valid to %s, sha-256 %s\n",
                   si.szCipher, si.szSubject, si.szValidTo, si.szFingerprint);
            printf("timings (us): connect %u, tls %u, greeting %u, total %u; logged in as %s\n",
                   (unsigned)t.dwConnect, (unsigned)t.dwSecure, (unsigned)t.dwGreeting,
                   (unsigned)t.dwTotal, argv[3]);
        } else {
            rc = fail("ImapGetSecurityInformation");
        }
    }
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
