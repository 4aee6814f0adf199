/* plain.c: the first program to read: connect over plain TCP, log in, print the
 * server's capabilities, log out. Only for servers on a trusted network or loopback.
 *
 *   usage: IMAPWIRE_PASSWORD=... plain HOST PORT USER
 */
#include <stdio.h>
#include <stdlib.h>
#include <imapwire/imapwire.h>

/* Every call that fails sets a per-thread error code; this turns it into text. */
static int fail(const char *what)
{
    char text[256];
    ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
    fprintf(stderr, "%s failed: %s\n", what, text);
    return 1;
}

int main(int argc, char **argv)
{
    const char *password = getenv("IMAPWIRE_PASSWORD");   /* never on the command line */
    char capa[2048];
    HCLIENT h;
    int rc = 0;

    if (argc != 4 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s HOST PORT USER\n", argv[0]);
        return 2;
    }
    /* Once per program (counted): starts the library; ImapUninitialize ends it. */
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");

    /* Blocks until the greeting and CAPABILITY are in, or 10 s per phase pass. */
    h = ImapConnect(argv[1], (UINT)strtoul(argv[2], NULL, 10), 10, IMAP_OPTION_NONE, NULL);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnect");
        goto out;
    }
    /* IMAP_AUTH_DEFAULT picks the strongest mechanism both sides have (SCRAM first). */
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[3], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else if (ImapGetCapabilities(h, capa, (INT)sizeof capa) != IMAP_ERROR)
        printf("logged in as %s; capabilities: %s\n", argv[3], capa);   /* they change after login */
    /* Sends LOGOUT when it can and frees the handle, whatever happened before. */
    ImapDisconnect(h);
out:
    ImapUninitialize();
    return rc;
}
