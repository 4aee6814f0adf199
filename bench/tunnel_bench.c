/* tunnel_bench.c: what an SSH tunnel costs: the 2nd..Nth tunnelled connect over a shared
 * session beside a direct connect, and a first tunnelled connect beside `ssh -L` + connect.
 *
 *   tunnel_bench SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS IMAP_PORT ROUNDS
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <imapwire/imapwire.h>

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long median(long long *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_ll);
    return v[n / 2];
}

static SECURITYCREDENTIALS creds(char **argv)
{
    SECURITYCREDENTIALS sc;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = "127.0.0.1";
    sc.nTunnelPort = (UINT)atoi(argv[1]);
    sc.lpszTunnelUser = argv[2];
    sc.lpszTunnelKey = argv[3];
    sc.lpszKnownHosts = argv[4];
    return sc;
}

/* One connect (to the greeting and capabilities), timed; the handle is closed after. */
static long long timed_connect(const char *host, unsigned port, DWORD opt, SECURITYCREDENTIALS *sc)
{
    long long t0 = now_us(), t;
    HCLIENT h = ImapConnect(host, port, 10, opt, sc);
    t = now_us() - t0;
    if (h == INVALID_CLIENT) {
        fprintf(stderr, "connect failed: %u\n", (unsigned)ImapGetLastError());
        exit(1);
    }
    ImapDisconnect(h);
    return t;
}

static int port_listening(unsigned port)
{
    char needle[40], line[512];
    FILE *f = fopen("/proc/net/tcp", "r");
    int found = 0;
    if (!f)
        return 0;
    snprintf(needle, sizeof needle, "0100007F:%04X 00000000:0000 0A", port);
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* What people do today: start `ssh -L`, wait for its port, connect through it. */
static long long ssh_l_connect(char **argv, unsigned local)
{
    char spec[96], known[600];
    long long t0 = now_us(), t;
    int i;
    pid_t pid;

    snprintf(spec, sizeof spec, "127.0.0.1:%u:127.0.0.1:%s", local, argv[5]);
    snprintf(known, sizeof known, "UserKnownHostsFile=%s", argv[4]);
    pid = fork();
    if (pid == 0) {
        execlp("ssh", "ssh", "-N", "-L", spec, "-p", argv[1], "-i", argv[3], "-o", known,
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-l", argv[2],
               "127.0.0.1", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 5000 && !port_listening(local); i++)
        usleep(1000);
    t = timed_connect("127.0.0.1", local, IMAP_OPTION_TUNNEL, NULL);
    t = now_us() - t0;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return t;
}

int main(int argc, char **argv)
{
    SECURITYCREDENTIALS sc;
    long long *a, *b;
    unsigned imap_port, local;
    int rounds, i;
    HCLIENT keep;
    UINT bound = 0;
    HFORWARD f;

    if (argc != 7) {
        fprintf(stderr, "usage: %s SSH_PORT SSH_USER SSH_KEY KNOWN_HOSTS IMAP_PORT ROUNDS\n", argv[0]);
        return 2;
    }
    imap_port = (unsigned)atoi(argv[5]);
    rounds = atoi(argv[6]);
    if (rounds < 3 || rounds > 10000)
        return 2;
    a = calloc((size_t)rounds, sizeof *a);
    b = calloc((size_t)rounds, sizeof *b);
    if (!a || !b || !ImapInitialize(NULL, NULL))
        return 1;
    sc = creds(argv);

    /* 1. Over a shared session: one tunnel stays open, the rest reuse its session. */
    keep = ImapConnect("127.0.0.1", imap_port, 10, IMAP_OPTION_TUNNEL, &sc);
    if (keep == INVALID_CLIENT)
        return 1;
    for (i = 0; i < rounds; i++) {
        a[i] = timed_connect("127.0.0.1", imap_port, IMAP_OPTION_TUNNEL, &sc);
        b[i] = timed_connect("127.0.0.1", imap_port, IMAP_OPTION_NONE, NULL);
    }
    printf("shared-session tunnelled connect: median %lld us; direct connect: median %lld us; "
           "ratio %.2f\n", median(a, rounds), median(b, rounds),
           (double)median(a, rounds) / (double)median(b, rounds));
    ImapDisconnect(keep);

    /* 2. A first tunnelled connect (new SSH connection each time) beside ssh -L. A port
     * for ssh -L: let the library find a free one, then release it. */
    f = ImapCreatePortForward(&sc, "127.0.0.1", imap_port, 0, &bound);
    if (f == INVALID_FORWARD)
        return 1;
    ImapClosePortForward(f);
    local = bound;
    for (i = 0; i < rounds; i++) {
        ImapUninitialize();             /* no session survives: this is a first connect */
        ImapInitialize(NULL, NULL);
        a[i] = timed_connect("127.0.0.1", imap_port, IMAP_OPTION_TUNNEL, &sc);
        b[i] = ssh_l_connect(argv, local);
    }
    printf("first tunnelled connect: median %lld us; ssh -L start + connect: median %lld us; "
           "ratio %.2f\n", median(a, rounds), median(b, rounds),
           (double)median(a, rounds) / (double)median(b, rounds));
    ImapUninitialize();
    free(a);
    free(b);
    return 0;
}
