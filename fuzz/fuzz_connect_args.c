/* fuzz_connect_args.c: libFuzzer target for the connect arguments the library parses
 * (transport string, DNS server list, local address) through ImapConnectEx alone. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <imapwire/imapwire.h>

/* Input: byte 0 picks which fields are set (bit 0 transport, 1 DNS servers, 2 local
 * address, 3 dwSize stops before lpszDnsServers); the rest is split at the first two
 * NUL bytes into the transport string, the DNS list and the local address. */

/* A port that refuses: a socket bound to it but never listening. Nobody else can take
 * the port while we hold it, so every connect that gets as far as TCP is refused. */
static unsigned fz_refusing_port;

static char fz_plugin_dir[] = "/tmp/imapwire-fuzz-plugins-XXXXXX";

/* The temporary directory goes with the process (libFuzzer exits through exit()). */
static void fz_remove_plugin_dir(void)
{
    rmdir(fz_plugin_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const plugins[] = { "command", "socks5", "httpconnect" };
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    size_t i;
    int fd;

    (void)argc;
    (void)argv;
    /* An unknown transport name makes the library look for NAME.so: only in an empty
     * directory here. */
    if (mkdtemp(fz_plugin_dir) == NULL || setenv("IMAPWIRE_PLUGIN_PATH", fz_plugin_dir, 1) != 0)
        abort();
    atexit(fz_remove_plugin_dir);
    unsetenv("IMAPWIRE_TRANSPORT");
    unsetenv("IMAPWIRE_DNS_SERVERS");
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        abort();
    fz_refusing_port = ntohs(a.sin_port);
    if (!ImapInitialize(NULL, NULL))
        abort();
    /* "command:<anything>" would run a shell command: refuse to fuzz at all if any
     * shipped plugin can be found (an installed library, a stray plugin directory). */
    for (i = 0; i < sizeof plugins / sizeof plugins[0]; i++)
        if (ImapLoadPlugin(plugins[i]) == 0) {
            fprintf(stderr, "fuzz_connect_args: plugin %s is loadable; not fuzzing "
                            "transport strings with it around\n", plugins[i]);
            abort();
        }
    return 0;
}

/* The next NUL-terminated piece of [p, end), copied so it is terminated even when the
 * input is not. */
static char *fz_piece(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
    size_t n = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nul ? nul + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data + (size > 0), *end = data + size;
    uint8_t flags = size > 0 ? data[0] : 0;
    char *transport = fz_piece(&p, end);
    char *dns = fz_piece(&p, end);
    char *local = fz_piece(&p, end);
    IMAPCONNECTINFO info;
    HCLIENT h;

    memset(&info, 0, sizeof info);
    info.dwSize = (flags & 8) ? (DWORD)offsetof(IMAPCONNECTINFO, lpszDnsServers) : sizeof info;
    info.lpszHostName = "127.0.0.1";
    info.nRemotePort = fz_refusing_port;
    info.nTimeout = 1;
    info.lpszTransport = (flags & 1) ? transport : NULL;
    info.lpszDnsServers = (flags & 2) ? dns : NULL;
    info.lpszLocalAddress = (flags & 4) ? local : NULL;

    ImapSetLastError(0);
    h = ImapConnectEx(&info);
    if (h != INVALID_CLIENT) {
        fprintf(stderr, "fuzz_connect_args: connected to a port that refuses\n");
        abort();
    }
    if (ImapGetLastError() == ST_ERROR_NONE) {
        fprintf(stderr, "fuzz_connect_args: connect failed without an error code\n");
        abort();
    }
    free(transport);
    free(dns);
    free(local);
    return 0;
}
