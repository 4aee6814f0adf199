/* consumer.c: an outside program that uses only API.md names: connect to the server
 * named on the command line, log in, run NOOP, disconnect. Exit status 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <imapwire/imapwire.h>

int main(int argc, char **argv)
{
    HCLIENT h;
    char err[128];
    int rc = 1;

    if (argc != 5)
        return 2;
    if (!ImapInitialize(NULL, NULL))
        return 1;
    h = ImapConnect(argv[1], (UINT)atoi(argv[2]), 10, IMAP_OPTION_NONE, NULL);
    if (h != INVALID_CLIENT && ImapLogin(h, IMAP_AUTH_LOGIN, argv[3], argv[4]) == 0 &&
        ImapCommand(h, "NOOP", NULL, 0) == 0)
        rc = 0;
    if (rc != 0) {
        ImapGetErrorString(ImapGetLastError(), err, (INT)sizeof err);
        fprintf(stderr, "consumer: %s\n", err);
    }
    if (h != INVALID_CLIENT && ImapDisconnect(h) != 0)
        rc = 1;
    ImapUninitialize();
    if (rc == 0)
        printf("consumer: connected, logged in and disconnected\n");
    return rc;
}
