/* resolve_bench.c: name resolution through imapwire (c-ares inside the connect machine)
 * beside glibc's getaddrinfo, same name, same DNS server, same run; prints the ratio.
 *
 *   resolve_bench NAME IMAP_PORT ROUNDS PER_ROUND
 * The DNS server comes from IMAPWIRE_DNS_SERVERS for imapwire and /etc/resolv.conf for
 * getaddrinfo; scripts/bench.sh points both at one dnsmasq. */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
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

/* imapwire's resolution time, as it reports it: the resolve phase of a real connect. */
static long long iw_resolve_once(const char *name, unsigned port)
{
    IMAPTIMINGS tm;
    HCLIENT h = ImapConnect(name, port, 10, IMAP_OPTION_NONE, NULL);
    if (h == INVALID_CLIENT)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ImapGetTimings(h, &tm);
    ImapDisconnect(h);
    return tm.dwResolve;
}

/* The same question (A and AAAA, stream sockets) through glibc. */
static long long gai_resolve_once(const char *name)
{
    struct addrinfo hints, *res = NULL;
    long long t0;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    t0 = now_us();
    rc = getaddrinfo(name, NULL, &hints, &res);
    t0 = now_us() - t0;
    if (rc != 0)
        return -1;
    freeaddrinfo(res);
    return t0;
}

int main(int argc, char **argv)
{
    const char *name;
    unsigned port;
    int rounds, per, r, i, n = 0;
    long long *iw, *gai, round_ratio[1000];

    if (argc != 5) {
        fprintf(stderr, "usage: %s NAME IMAP_PORT ROUNDS PER_ROUND\n", argv[0]);
        return 2;
    }
    name = argv[1];
    port = (unsigned)atoi(argv[2]);
    rounds = atoi(argv[3]);
    per = atoi(argv[4]);
    if (rounds < 1 || rounds > 1000 || per < 1 || per > 10000)
        return 2;
    iw = calloc((size_t)per, sizeof *iw);
    gai = calloc((size_t)per, sizeof *gai);
    if (!iw || !gai || !ImapInitialize(NULL, NULL))
        return 1;
    /* warm both paths (library init, resolv.conf parsing, first sockets) */
    for (i = 0; i < 10; i++)
        if (iw_resolve_once(name, port) < 0 || gai_resolve_once(name) < 0) {
            fprintf(stderr, "resolution of %s failed\n", name);
            return 1;
        }
    for (r = 0; r < rounds; r++) {
        /* alternate which side goes first so drift hits both alike */
        for (i = 0; i < per; i++) {
            if (r % 2 == 0) {
                iw[i] = iw_resolve_once(name, port);
                gai[i] = gai_resolve_once(name);
            } else {
                gai[i] = gai_resolve_once(name);
                iw[i] = iw_resolve_once(name, port);
            }
            if (iw[i] < 0 || gai[i] < 0)
                return 1;
        }
        {
            long long mi = median(iw, per), mg = median(gai, per);
            round_ratio[n++] = mg > 0 ? mi * 1000 / mg : 0;
            printf("round %d: imapwire (c-ares) median %lld us, getaddrinfo median %lld us\n",
                   r + 1, mi, mg);
        }
    }
    printf("resolve ratio imapwire/getaddrinfo (median of %d rounds x %d): %.3f\n", rounds, per,
           (double)median(round_ratio, n) / 1000.0);
    ImapUninitialize();
    free(iw);
    free(gai);
    return 0;
}
