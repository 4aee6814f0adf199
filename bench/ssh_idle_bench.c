/* ssh_idle_bench.c: what an idle IMAP connection through an SSH tunnel costs: N channels
 * of one shared session (and N private forwards, each a bridge to a channel), malloc'd
 * bytes (mallinfo2) and RSS per connection, fresh and after one fetch, beside the same N
 * plain connections to the same Dovecot.
 *
 *   imapwire_ssh_idle_bench DOVECOT_ENV SSHD_ENV [N] [--fetch BYTES]
 *
 * DOVECOT_ENV and SSHD_ENV are the env files of tests/harness/dovecot.sh and sshd.sh
 * (bench/ssh_idle_bench.sh starts both). Loopback only. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <imapwire/imapwire.h>

#define MAX_CONNS 1000

static char g_host[64], g_user[128], g_pass[128];
static unsigned g_port;
static char s_host[64], s_user[128], s_key[600], s_known[600];
static unsigned s_port;
static char g_box[64];

static void die(const char *what)
{
    fprintf(stderr, "ssh_idle_bench: %s (error %u)\n", what, (unsigned)ImapGetLastError());
    exit(1);
}

/* One KEY=value of an env file into out ("" if absent). */
static void env_value(const char *path, const char *key, char *out, size_t size)
{
    char line[1024];
    size_t kl = strlen(key);
    int i;
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f == NULL)
        die("cannot open an env file");
    for (i = 0; i < 500 && fgets(line, sizeof line, f) != NULL; i++)
        if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(out, size, "%s", line + kl + 1);
            break;
        }
    fclose(f);
}

static long status_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

enum { R_PLAIN, R_CHANNEL, R_FORWARD };
static const char *const route_name[] = { "plain TCP", "SSH channel (shared)",
                                          "SSH private forward" };

static HCLIENT open_one(int tunnel, int select)
{
    SECURITYCREDENTIALS sc;
    HCLIENT h;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = s_host;
    sc.nTunnelPort = s_port;
    sc.lpszTunnelUser = s_user;
    sc.lpszTunnelKey = s_key;
    sc.lpszKnownHosts = s_known;
    sc.dwOptions = tunnel == R_FORWARD ? CREDENTIAL_TUNNEL_FORWARD : 0;
    h = ImapConnect(g_host, g_port, 30, tunnel ? IMAP_OPTION_TUNNEL : IMAP_OPTION_NONE,
                    tunnel ? &sc : NULL);
    if (h == INVALID_CLIENT)
        die("connect failed");
    if (ImapLogin(h, IMAP_AUTH_PLAIN, g_user, g_pass) != 0)
        die("login failed");
    if (select && ImapSelectMailbox(h, g_box, NULL) != 0)
        die("select failed");
    return h;
}

static void fetch_one(HCLIENT h, size_t size)
{
    char *body = NULL;
    DWORD len = 0;
    if (ImapGetMessage(h, 1, 0, &body, &len, 0) != 0 || len != size)
        die("fetch failed");
    ImapFreeMemory(body);
}

/* N idle connections: per connection, heap and RSS fresh (after login) and after a
 * SELECT and one fetch of the message. */
static void measure(int tunnel, int n, size_t size)
{
    HCLIENT *hs = calloc((size_t)n, sizeof *hs), keep;
    size_t heap0, heap1, heap2;
    long rss0, rss1, rss2;
    int i;

    if (hs == NULL)
        die("out of memory");
    /* the shared state first (the SSH session, which one connection keeps alive) */
    keep = open_one(tunnel, 0);
    malloc_trim(0);
    heap0 = heap_bytes();
    rss0 = status_kb("VmRSS");
    for (i = 0; i < n; i++)
        hs[i] = open_one(tunnel, 0);
    malloc_trim(0);
    heap1 = heap_bytes();
    rss1 = status_kb("VmRSS");
    for (i = 0; i < n; i++) {
        if (ImapSelectMailbox(hs[i], g_box, NULL) != 0)
            die("select failed");
        fetch_one(hs[i], size);
    }
    malloc_trim(0);
    heap2 = heap_bytes();
    rss2 = status_kb("VmRSS");
    printf("  %-22s %16.2f %14.2f %22.2f %20.2f\n", route_name[tunnel],
           ((double)heap1 - (double)heap0) / n / 1024, (double)(rss1 - rss0) / n,
           ((double)heap2 - (double)heap0) / n / 1024, (double)(rss2 - rss0) / n);
    fflush(stdout);
    for (i = 0; i < n; i++)
        ImapDisconnect(hs[i]);
    ImapDisconnect(keep);
    free(hs);
}

static char *message(size_t n)
{
    char *m = malloc(n + 1);
    size_t i;
    if (m == NULL)
        die("out of memory");
    memcpy(m, "Subject: bench\r\n\r\n", 18);
    for (i = 18; i < n; i++)
        m[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n' : (char)('!' + i % 90);
    m[n] = '\0';
    return m;
}

int main(int argc, char **argv)
{
    size_t size = 4760000;
    int n = 100, i;
    char num[32], head[128], *msg, *cmd;
    HCLIENT h;

    if (argc < 3) {
        fprintf(stderr, "usage: %s DOVECOT_ENV SSHD_ENV [N] [--fetch BYTES]\n", argv[0]);
        return 2;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--fetch") == 0 && i + 1 < argc)
            size = (size_t)strtoul(argv[++i], NULL, 10);
        else
            n = atoi(argv[i]);
    }
    if (n < 1 || n > MAX_CONNS || size < 64 || size > (256u << 20))
        die("N is 1..1000, --fetch 64..256 MB");
    env_value(argv[1], "DOVECOT_HOST", g_host, sizeof g_host);
    env_value(argv[1], "DOVECOT_USER", g_user, sizeof g_user);
    env_value(argv[1], "DOVECOT_PASS", g_pass, sizeof g_pass);
    env_value(argv[1], "DOVECOT_PORT", num, sizeof num);
    g_port = (unsigned)atoi(num);
    env_value(argv[2], "SSHD_HOST", s_host, sizeof s_host);
    env_value(argv[2], "SSHD_USER", s_user, sizeof s_user);
    env_value(argv[2], "SSHD_KEY", s_key, sizeof s_key);
    env_value(argv[2], "SSHD_KNOWN_HOSTS", s_known, sizeof s_known);
    env_value(argv[2], "SSHD_PORT", num, sizeof num);
    s_port = (unsigned)atoi(num);
    if (strcmp(g_host, "127.0.0.1") != 0 || strcmp(s_host, "127.0.0.1") != 0 || !g_port ||
        !s_port)
        die("the env files must name servers on 127.0.0.1");
    if (!ImapInitialize(NULL, NULL))
        die("ImapInitialize");

    /* the message every connection fetches, in a mailbox of the bench's own */
    snprintf(g_box, sizeof g_box, "sshidle-%d", (int)getpid());
    h = open_one(0, 0);
    snprintf(head, sizeof head, "CREATE %s", g_box);
    if (ImapCommand(h, head, NULL, 0) != 0)
        die("CREATE failed");
    msg = message(size);
    snprintf(head, sizeof head, "APPEND %s {%zu}\r\n", g_box, size);
    cmd = malloc(strlen(head) + size + 1);
    if (cmd == NULL)
        die("out of memory");
    memcpy(cmd, head, strlen(head));
    memcpy(cmd + strlen(head), msg, size + 1);
    if (ImapCommand(h, cmd, NULL, 0) != 0)
        die("APPEND failed");
    free(cmd);
    free(msg);

    printf("idle connections, %d of each, message %zu bytes (per connection)\n", n, size);
    printf("  %-22s %16s %14s %22s %20s\n", "route", "fresh malloc KB", "fresh RSS KB",
           "after fetch malloc KB", "after fetch RSS KB");
    measure(R_PLAIN, n, size);
    measure(R_CHANNEL, n, size);
    measure(R_FORWARD, n, size);

    snprintf(head, sizeof head, "DELETE %s", g_box);
    ImapCommand(h, head, NULL, 0);
    ImapDisconnect(h);
    ImapUninitialize();
    return 0;
}
