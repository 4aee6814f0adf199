/* doc_driver.c: loads the plugin built from docs/transport-sdk.md's text and goes through
 * it to Dovecot: login, INBOX, message 1 byte for byte; exits 0 only if all of that works.
 *
 *   usage: doc_driver PLUGIN.so NAME HOST PORT USER PASSWORD MESSAGE1_FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/imapwire.h>

static char notes[8192];
static size_t notes_len;

/* Keeps the library's and the layers' notes: the plugin reports itself there. */
static void trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    if (dir == IMAP_TRACE_INFO && len >= 0 && notes_len + (size_t)len + 2 < sizeof notes) {
        memcpy(notes + notes_len, line, (size_t)len);
        notes_len += (size_t)len;
        notes[notes_len++] = '\n';
        notes[notes_len] = '\0';
    }
}

static int fail(const char *what)
{
    char text[128];
    ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
    fprintf(stderr, "doc_driver: %s: %s\n%s", what, text, notes);
    return 1;
}

static HCLIENT connect_through(const char *transport, const char *host, const char *port)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = host;
    ci.nRemotePort = (UINT)strtoul(port, NULL, 10);
    ci.nTimeout = 10;
    ci.lpszTransport = transport;
    ci.lpTraceProc = trace;
    return ImapConnectEx(&ci);
}

static int run(char **argv)
{
    char transport[64], want[4096], got[4096];
    IMAPMAILBOX mb;
    DWORD len = sizeof got;
    size_t want_len;
    FILE *f;
    HCLIENT h;

    if (ImapLoadPlugin(argv[1]) != 0)
        return fail("ImapLoadPlugin");
    /* a bad argument is refused by create(), before any connection is made */
    snprintf(transport, sizeof transport, "%s:0", argv[2]);
    if (connect_through(transport, argv[3], argv[4]) != INVALID_CLIENT ||
        ImapGetLastError() != ST_ERROR_INVALID_PARAMETER)
        return fail("a zero slice size was not refused");
    /* 7 bytes per call: every line and the message arrive in many short pieces */
    snprintf(transport, sizeof transport, "%s:7", argv[2]);
    h = connect_through(transport, argv[3], argv[4]);
    if (h == INVALID_CLIENT)
        return fail("ImapConnectEx");
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[5], argv[6]) != 0)
        return fail("ImapLogin");
    if (ImapSelectMailbox(h, "INBOX", &mb) != 0 || mb.dwMessages != 2)
        return fail("ImapSelectMailbox (2 messages expected)");
    if (ImapGetMessage(h, 1, 0, got, &len, 0) != 0)
        return fail("ImapGetMessage");
    f = fopen(argv[7], "rb");
    if (f == NULL)
        return fail("cannot open the message file");
    want_len = fread(want, 1, sizeof want, f);
    fclose(f);
    if (want_len != len || memcmp(want, got, len) != 0)
        return fail("message 1 differs from the file");
    if (ImapDisconnect(h) != 0)
        return fail("ImapDisconnect");
    /* the plugin's destroy() reported what went through it */
    if (strstr(notes, "slice: ") == NULL)
        return fail("no note from the plugin in the trace");
    printf("%sdoc_driver: message 1 (%u bytes) read through %s\n", notes, (unsigned)len,
           transport);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;
    if (argc != 8) {
        fprintf(stderr, "usage: %s PLUGIN.so NAME HOST PORT USER PASSWORD MESSAGE1_FILE\n",
                argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return 1;
    rc = run(argv);
    ImapUninitialize();
    return rc;
}
