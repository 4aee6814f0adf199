/* plugin.c: load a transport plugin (a shared object built against <imapwire/transport.h>)
 * from an explicit path and connect through the type it registers. Here the shipped
 * "httpconnect" plugin, which tunnels IMAP through an HTTP proxy with CONNECT.
 * Loading by path is optional: a bare name is also looked up in IMAPWIRE_PLUGIN_PATH.
 *
 *   usage: IMAPWIRE_PASSWORD=... plugin PLUGIN.so PROXY_HOST:PORT IMAP_HOST IMAP_PORT USER
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
    IMAPCONNECTINFO ci;
    char transport[300];
    HCLIENT h;
    int rc = 0;

    if (argc != 6 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s PLUGIN.so PROXY_HOST:PORT IMAP_HOST IMAP_PORT USER\n",
                argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return fail("ImapInitialize");
    /* The plugin's ABI version is checked before its init runs: one built for another
     * major version fails with ST_ERROR_PLUGIN_VERSION, a missing file with
     * ST_ERROR_PLUGIN_LOAD_FAILED. Loading twice is harmless. */
    if (ImapLoadPlugin(argv[1]) == IMAP_ERROR) {
        rc = fail("ImapLoadPlugin");
        goto out;
    }
    /* The type is named after the plugin: "httpconnect:host:port" puts it at the bottom. */
    snprintf(transport, sizeof transport, "httpconnect:%s", argv[2]);
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = argv[3];
    ci.nRemotePort = (UINT)strtoul(argv[4], NULL, 10);
    ci.nTimeout = 10;
    ci.lpszTransport = transport;
    h = ImapConnectEx(&ci);
    if (h == INVALID_CLIENT) {
        rc = fail("ImapConnectEx");
        goto out;
    }
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[5], password) == IMAP_ERROR)
        rc = fail("ImapLogin");
    else
        printf("logged in as %s through plugin %s (transport %s)\n", argv[5], argv[1], transport);
    ImapDisconnect(h);
out:
    ImapUninitialize();   /* plugins stay loaded until the library's last Uninitialize */
    return rc;
}
