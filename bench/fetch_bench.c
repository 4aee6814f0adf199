/* fetch_bench.c: FETCH throughput, CPU and peak RSS of imapwire beside a minimal
 * blocking-socket client (the floor) and libcurl, plus memory per idle connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <imapwire/imapwire.h>

#define SMALL_SIZE 4760000u        /* the 4.76 MB message */
#define BIG_SIZE   49000000u       /* and its 49 MB one */
#define MAX_ROUNDS 1000
#define MAX_CONNS  2000
#define MAX_SIZES  8
#define MIN_SIZE   1000u           /* room for the header and a few lines */
#define MAX_SIZE   200000000u

struct cfg {
    char host[64], user[128], pass[128], ca[600];
    unsigned port, imaps_port;
    int rounds, conns;
    char box[64];
    size_t sizes[MAX_SIZES];       /* message i+1 of the mailbox has sizes[i] bytes */
    int nsizes, cpu_us;            /* cpu_us: --sizes also prints the CPU in microseconds */
};
static struct cfg cfg;

static void die(const char *what)
{
    fprintf(stderr, "fetch_bench: %s\n", what);
    exit(1);
}

static void read_env(const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    int i;
    if (f == NULL)
        die("cannot open the env file");
    for (i = 0; i < 200 && fgets(line, sizeof line, f) != NULL; i++) {
        char *eq = strchr(line, '='), *v;
        if (eq == NULL)
            continue;
        *eq = '\0';
        v = eq + 1;
        v[strcspn(v, "\r\n")] = '\0';
        if (strcmp(line, "DOVECOT_HOST") == 0)
            snprintf(cfg.host, sizeof cfg.host, "%s", v);
        else if (strcmp(line, "DOVECOT_USER") == 0)
            snprintf(cfg.user, sizeof cfg.user, "%s", v);
        else if (strcmp(line, "DOVECOT_PASS") == 0)
            snprintf(cfg.pass, sizeof cfg.pass, "%s", v);
        else if (strcmp(line, "DOVECOT_PORT") == 0)
            cfg.port = (unsigned)atoi(v);
        else if (strcmp(line, "DOVECOT_IMAPS_PORT") == 0)
            cfg.imaps_port = (unsigned)atoi(v);
    }
    fclose(f);
    if (cfg.host[0] == '\0' || cfg.user[0] == '\0' || cfg.port == 0)
        die("the env file lacks DOVECOT_HOST/PORT/USER/PASS");
    if (strcmp(cfg.host, "127.0.0.1") != 0 && strcmp(cfg.host, "localhost") != 0)
        die("loopback only: over a network the bench would measure the network");
}

/* ------------------------------------------------------------------ measures */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

/* Minor page faults of this process: the fresh pages a fetch touched. */
static double minflt(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_minflt;
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

static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok;
    if (f == NULL)
        return 0;
    ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* ------------------------------------------------------------------ imapwire */

static HCLIENT iw_open(int tls, int do_select)
{
    SECURITYCREDENTIALS sc;
    HCLIENT h;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = cfg.ca;
    h = ImapConnect(cfg.host, tls ? cfg.imaps_port : cfg.port, 30,
                    tls ? IMAP_OPTION_SECURE_IMPLICIT : IMAP_OPTION_NONE, tls ? &sc : NULL);
    if (h == INVALID_CLIENT)
        die("imapwire: connect failed");
    if (ImapLogin(h, IMAP_AUTH_PLAIN, cfg.user, cfg.pass) != 0)
        die("imapwire: login failed");
    if (do_select && ImapSelectMailbox(h, cfg.box, NULL) != 0)
        die("imapwire: select failed");
    return h;
}

static void iw_fetch(HCLIENT h, unsigned seq, size_t size, char *buf)
{
    DWORD len;
    if (buf != NULL) {
        len = (DWORD)size + 1;
        if (ImapGetMessage(h, seq, 0, buf, &len, 0) != 0 || len != size)
            die("imapwire: fetch into the caller's buffer failed");
    } else {
        char *p = NULL;
        len = 0;
        if (ImapGetMessage(h, seq, 0, &p, &len, 0) != 0 || len != size)
            die("imapwire: fetch failed");
        ImapFreeMemory(p);
    }
}

static void setup_mailbox(void)
{
    size_t i;
    int k;
    HCLIENT h = iw_open(0, 0);
    char cmd[160];

    snprintf(cfg.box, sizeof cfg.box, "fetch-bench-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", cfg.box);
    if (ImapCommand(h, cmd, NULL, 0) != 0)
        die("CREATE failed");
    for (k = 0; k < cfg.nsizes; k++) {
        size_t n = cfg.sizes[k];
        int hl = snprintf(cmd, sizeof cmd, "APPEND %s {%zu}\r\n", cfg.box, n);
        char *c = malloc((size_t)hl + n + 1);
        if (c == NULL)
            die("out of memory");
        memcpy(c, cmd, (size_t)hl);
        memcpy(c + hl, "Subject: bench\r\n\r\n", 18);
        for (i = 18; i < n; i++)
            c[hl + i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
        c[hl + n] = '\0';
        if (ImapCommand(h, c, NULL, 0) != 0)
            die("APPEND failed");
        free(c);
    }
    ImapDisconnect(h);
}

static void drop_mailbox(void)
{
    HCLIENT h = iw_open(0, 0);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "DELETE %s", cfg.box);
    ImapCommand(h, cmd, NULL, 0);
    ImapDisconnect(h);
}

/* ------------------------------------------------------------------ the floor */

/* The least a client can do: one blocking socket (and OpenSSL for IMAPS), lines read
 * through a 4 KB buffer, the literal received straight into its destination. */
typedef struct floor_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[4096];
    size_t have, off;
    unsigned tag;
} floor_conn;

static long fl_recv(floor_conn *f, void *p, size_t n)
{
    if (f->ssl != NULL) {
        size_t got = 0;
        return SSL_read_ex(f->ssl, p, n, &got) == 1 ? (long)got : -1;
    }
    return (long)recv(f->fd, p, n, 0);
}

static void fl_send(floor_conn *f, const char *s)
{
    size_t n = strlen(s), got = 0;
    if (f->ssl != NULL ? SSL_write_ex(f->ssl, s, n, &got) != 1
                       : send(f->fd, s, n, MSG_NOSIGNAL) != (ssize_t)n)
        die("floor: send failed");
}

/* One line (without CRLF) into line; its length. */
static size_t fl_line(floor_conn *f, char *line, size_t size)
{
    size_t n = 0;
    for (;;) {
        while (f->off < f->have) {
            char ch = f->buf[f->off++];
            if (ch == '\n') {
                if (n > 0 && line[n - 1] == '\r')
                    n--;
                line[n] = '\0';
                return n;
            }
            if (n + 1 < size)
                line[n++] = ch;
        }
        long k = fl_recv(f, f->buf, sizeof f->buf);
        if (k <= 0)
            die("floor: connection closed");
        f->have = (size_t)k;
        f->off = 0;
    }
}

/* Sends a command and reads to its tagged OK, the literal (if any) into dest (or a
 * malloc of its size when dest is NULL); the literal's length. */
static size_t fl_command(floor_conn *f, const char *text, char *dest)
{
    char tag[16], line[1024], cmd[512];
    size_t lit = 0;
    snprintf(tag, sizeof tag, "F%u", ++f->tag);
    snprintf(cmd, sizeof cmd, "%s %s\r\n", tag, text);
    fl_send(f, cmd);
    for (;;) {
        size_t n = fl_line(f, line, sizeof line), tl = strlen(tag);
        if (n > 0 && line[n - 1] == '}') {
            char *open = strrchr(line, '{'), *p;
            size_t got, take;
            lit = strtoul(open + 1, NULL, 10);
            p = dest != NULL ? dest : malloc(lit ? lit : 1);
            if (p == NULL)
                die("floor: out of memory");
            take = f->have - f->off < lit ? f->have - f->off : lit;
            memcpy(p, f->buf + f->off, take);
            f->off += take;
            for (got = take; got < lit;) {
                long k = fl_recv(f, p + got, lit - got);
                if (k <= 0)
                    die("floor: closed inside a literal");
                got += (size_t)k;
            }
            if (dest == NULL)
                free(p);
            continue;
        }
        if (n > tl && strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
            if (strncmp(line + tl + 1, "OK", 2) != 0)
                die("floor: command failed");
            return lit;
        }
    }
}

static void floor_open(floor_conn *f, int tls)
{
    struct sockaddr_in a;
    char line[1024], cmd[400];
    int one = 1;
    memset(f, 0, sizeof *f);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)(tls ? cfg.imaps_port : cfg.port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("floor: connect failed");
    setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tls) {
        f->ctx = SSL_CTX_new(TLS_client_method());
        if (f->ctx == NULL || SSL_CTX_load_verify_locations(f->ctx, cfg.ca, NULL) != 1)
            die("floor: SSL_CTX");
        SSL_CTX_set_verify(f->ctx, SSL_VERIFY_PEER, NULL);
        f->ssl = SSL_new(f->ctx);
        SSL_set_fd(f->ssl, f->fd);
        SSL_set_tlsext_host_name(f->ssl, "localhost");
        if (SSL_connect(f->ssl) != 1)
            die("floor: TLS handshake failed");
    }
    fl_line(f, line, sizeof line);
    snprintf(cmd, sizeof cmd, "LOGIN \"%s\" \"%s\"", cfg.user, cfg.pass);
    fl_command(f, cmd, NULL);
    snprintf(cmd, sizeof cmd, "SELECT %s", cfg.box);
    fl_command(f, cmd, NULL);
}

static void floor_close(floor_conn *f)
{
    if (f->ssl != NULL) {
        SSL_free(f->ssl);
        SSL_CTX_free(f->ctx);
    }
    close(f->fd);
}

static void floor_fetch(floor_conn *f, unsigned seq, size_t size, char *buf)
{
    char text[64];
    snprintf(text, sizeof text, "FETCH %u BODY.PEEK[]", seq);
    if (fl_command(f, text, buf) != size)
        die("floor: wrong size");
}

/* ------------------------------------------------------------------ libcurl */

typedef struct sink {
    char  *p;
    size_t len, cap;
} sink;

static size_t curl_write(char *data, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (s->p == NULL || s->len + n > s->cap)
        return 0;
    memcpy(s->p + s->len, data, n);
    s->len += n;
    return n;
}

static CURL *curl_open(int tls, sink *s)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        die("curl_easy_init");
    curl_easy_setopt(e, CURLOPT_USERNAME, cfg.user);
    curl_easy_setopt(e, CURLOPT_PASSWORD, cfg.pass);
    curl_easy_setopt(e, CURLOPT_LOGIN_OPTIONS, "AUTH=PLAIN");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    if (tls) {
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg.ca);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    }
    return e;
}

static void set_url(CURL *e, int tls, const char *tail)
{
    char url[300];
    snprintf(url, sizeof url, "%s://%s:%u/%s", tls ? "imaps" : "imap",
             tls ? "localhost" : cfg.host, tls ? cfg.imaps_port : cfg.port, tail);
    curl_easy_setopt(e, CURLOPT_URL, url);
}

static void curl_fetch(CURL *e, int tls, unsigned uid, size_t size, sink *s)
{
    char tail[128];
    CURLcode rc;
    snprintf(tail, sizeof tail, "%s;UID=%u", cfg.box, uid);
    set_url(e, tls, tail);
    s->len = 0;
    rc = curl_easy_perform(e);
    if (rc != CURLE_OK || s->len != size) {
        fprintf(stderr, "curl: %s, %zu bytes\n", curl_easy_strerror(rc), s->len);
        die("curl: fetch failed");
    }
}

/* ------------------------------------------------------------------ throughput */

enum side { IW_LIB, IW_BUF, FLOOR_LIB, FLOOR_BUF, CURL_SIDE, NSIDES };
static const char *const side_name[NSIDES] = {
    "imapwire (library buffer)", "imapwire (caller buffer)", "floor (malloc per fetch)",
    "floor (caller buffer)", "libcurl (write callback)"
};

typedef struct stats {
    double mbs[MAX_ROUNDS], cpu[MAX_ROUNDS], flt[MAX_ROUNDS];
    long   peak_kb;
    int    n;
} stats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double t[MAX_ROUNDS];
    memcpy(t, v, sizeof *v * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void throughput(int tls, unsigned seq, size_t size)
{
    stats st[NSIDES];
    HCLIENT h = iw_open(tls, 1);
    floor_conn fc;
    sink s = { NULL, 0, 0 };
    CURL *e;
    char *buf = malloc(size + 1);
    int r, k;

    memset(st, 0, sizeof st);
    if (buf == NULL)
        die("out of memory");
    memset(buf, 0, size + 1);               /* the caller's buffer is resident */
    s.p = buf;
    s.cap = size + 1;
    floor_open(&fc, tls);
    e = curl_open(tls, &s);
    /* warm-up, untimed: curl connects on its first transfer */
    iw_fetch(h, seq, size, NULL);
    floor_fetch(&fc, seq, size, NULL);
    curl_fetch(e, tls, seq, size, &s);
    for (r = 0; r < cfg.rounds; r++) {
        for (k = 0; k < NSIDES; k++) {
            int side = (k + r) % NSIDES;          /* a different side first each round */
            double t0, c0, f0, dt, dc;
            long before, peak;
            int reset = reset_peak();
            before = status_kb("VmRSS");
            t0 = now_s();
            c0 = cpu_s();
            f0 = minflt();
            switch (side) {
            case IW_LIB: iw_fetch(h, seq, size, NULL); break;
            case IW_BUF: iw_fetch(h, seq, size, buf); break;
            case FLOOR_LIB: floor_fetch(&fc, seq, size, NULL); break;
            case FLOOR_BUF: floor_fetch(&fc, seq, size, buf); break;
            default: curl_fetch(e, tls, seq, size, &s); break;
            }
            dc = cpu_s() - c0;
            dt = now_s() - t0;
            st[side].flt[st[side].n] = minflt() - f0;
            peak = status_kb("VmHWM");
            st[side].mbs[st[side].n] = (double)size / 1e6 / dt;
            st[side].cpu[st[side].n++] = dc;
            if (reset && peak - before > st[side].peak_kb)
                st[side].peak_kb = peak - before;
        }
    }
    printf("\nFETCH %.2f MB, %s, %d rounds (median; CPU is this process: client side only)\n",
           (double)size / 1e6, tls ? "IMAPS" : "plain", cfg.rounds);
    printf("  %-28s %9s %9s %9s %10s %10s %12s %10s\n", "side", "MB/s", "min", "max", "CPU ms",
           "x floor", "peak RSS MiB", "minflt");
    for (k = 0; k < NSIDES; k++) {
        double m = median(st[k].mbs, st[k].n), lo = m, hi = m;
        int floor_side = (k == IW_BUF || k == FLOOR_BUF) ? FLOOR_BUF : FLOOR_LIB;
        int i;
        for (i = 0; i < st[k].n; i++) {
            lo = st[k].mbs[i] < lo ? st[k].mbs[i] : lo;
            hi = st[k].mbs[i] > hi ? st[k].mbs[i] : hi;
        }
        printf("  %-28s %9.0f %9.0f %9.0f %10.1f %10.2f %12.1f %10.0f\n", side_name[k], m, lo,
               hi, median(st[k].cpu, st[k].n) * 1e3,
               m / median(st[floor_side].mbs, st[floor_side].n), st[k].peak_kb / 1024.0,
               median(st[k].flt, st[k].n));
    }
    printf("  ratios: imapwire/floor throughput %.2f (library buffer) %.2f (caller buffer),"
           " CPU %.2f / %.2f; imapwire/libcurl throughput %.2f (library buffer) %.2f (caller"
           " buffer)\n",
           median(st[IW_LIB].mbs, st[IW_LIB].n) / median(st[FLOOR_LIB].mbs, st[FLOOR_LIB].n),
           median(st[IW_BUF].mbs, st[IW_BUF].n) / median(st[FLOOR_BUF].mbs, st[FLOOR_BUF].n),
           median(st[IW_LIB].cpu, st[IW_LIB].n) / median(st[FLOOR_LIB].cpu, st[FLOOR_LIB].n),
           median(st[IW_BUF].cpu, st[IW_BUF].n) / median(st[FLOOR_BUF].cpu, st[FLOOR_BUF].n),
           median(st[IW_LIB].mbs, st[IW_LIB].n) / median(st[CURL_SIDE].mbs, st[CURL_SIDE].n),
           median(st[IW_BUF].mbs, st[IW_BUF].n) / median(st[CURL_SIDE].mbs, st[CURL_SIDE].n));
    printf("  goals: throughput >= 0.9x the floor; peak RSS < 1.1x the message (%.1f MB) with "
           "the library's buffer, < 1 MB beyond the caller's\n", 1.1 * (double)size / 1048576.0);
    /* the table's 0.1 ms is too coarse for a small message's CPU per MB */
    if (cfg.cpu_us) {
        printf("  CPU us (median):");
        for (k = 0; k < NSIDES; k++)
            printf(" %.0f", median(st[k].cpu, st[k].n) * 1e6);
        printf("\n");
    }
    curl_easy_cleanup(e);
    floor_close(&fc);
    ImapDisconnect(h);
    free(buf);
}

/* ------------------------------------------------------------------ idle memory */

static void idle_memory(int tls)
{
    HCLIENT *hs = calloc((size_t)cfg.conns, sizeof *hs);
    CURL **es = calloc((size_t)cfg.conns, sizeof *es);
    size_t one = cfg.sizes[0];     /* message 1: 4.76 MB unless --sizes says otherwise */
    sink s = { malloc(one + 1), 0, one + 1 };
    size_t heap0, heap1, heap2;
    long rss0, rss1, rss2;
    double n = cfg.conns;
    int i;

    if (hs == NULL || es == NULL || s.p == NULL)
        die("out of memory");
    memset(s.p, 0, one + 1);
    ImapDisconnect(iw_open(tls, 0));          /* shared state (TLS context) made first */
    malloc_trim(0);
    heap0 = heap_bytes();
    rss0 = status_kb("VmRSS");
    for (i = 0; i < cfg.conns; i++)
        hs[i] = iw_open(tls, 0);
    heap1 = heap_bytes();
    rss1 = status_kb("VmRSS");
    for (i = 0; i < cfg.conns; i++) {
        if (ImapSelectMailbox(hs[i], cfg.box, NULL) != 0)
            die("imapwire: select failed");
        iw_fetch(hs[i], 1, one, NULL);
    }
    malloc_trim(0);
    heap2 = heap_bytes();
    rss2 = status_kb("VmRSS");
    printf("\nidle connections, %s, %d each (per connection)\n", tls ? "IMAPS" : "plain",
           cfg.conns);
    printf("  %-10s %16s %16s %22s %22s\n", "side", "fresh malloc KB", "fresh RSS KB",
           "after use malloc KB", "after use RSS KB");
    printf("  %-10s %16.1f %16.1f %22.1f %22.1f\n", "imapwire",
           ((double)heap1 - (double)heap0) / n / 1024, (double)(rss1 - rss0) / n,
           ((double)heap2 - (double)heap0) / n / 1024, (double)(rss2 - rss0) / n);
    for (i = 0; i < cfg.conns; i++)
        ImapDisconnect(hs[i]);

    malloc_trim(0);
    heap0 = heap_bytes();
    rss0 = status_kb("VmRSS");
    for (i = 0; i < cfg.conns; i++) {
        es[i] = curl_open(tls, &s);
        set_url(es[i], tls, "");
        curl_easy_setopt(es[i], CURLOPT_CUSTOMREQUEST, "NOOP");
        if (curl_easy_perform(es[i]) != CURLE_OK)
            die("curl: NOOP failed");
        curl_easy_setopt(es[i], CURLOPT_CUSTOMREQUEST, NULL);
    }
    heap1 = heap_bytes();
    rss1 = status_kb("VmRSS");
    for (i = 0; i < cfg.conns; i++)
        curl_fetch(es[i], tls, 1, one, &s);
    malloc_trim(0);
    heap2 = heap_bytes();
    rss2 = status_kb("VmRSS");
    printf("  %-10s %16.1f %16.1f %22.1f %22.1f\n", "libcurl",
           ((double)heap1 - (double)heap0) / n / 1024, (double)(rss1 - rss0) / n,
           ((double)heap2 - (double)heap0) / n / 1024, (double)(rss2 - rss0) / n);
    printf("  goals: imapwire at most %d KB per connection, fresh and after use, and below "
           "libcurl\n", tls ? 40 : 8);
    for (i = 0; i < cfg.conns; i++)
        curl_easy_cleanup(es[i]);
    free(s.p);
    free(hs);
    free(es);
}

/* "0.1,1,4.76" (decimal MB, as the output prints them) into cfg.sizes; 0 if malformed. */
static int parse_sizes(const char *list)
{
    const char *p = list;
    cfg.nsizes = 0;
    while (*p != '\0') {
        char *end;
        double mb = strtod(p, &end);
        if (end == p || mb * 1e6 < MIN_SIZE || mb * 1e6 > MAX_SIZE || cfg.nsizes == MAX_SIZES)
            return 0;
        cfg.sizes[cfg.nsizes++] = (size_t)(mb * 1e6 + 0.5);
        if (*end != ',' && *end != '\0')
            return 0;
        p = *end == ',' ? end + 1 : end;
    }
    return cfg.nsizes > 0;
}

int main(int argc, char **argv)
{
    const char *env = NULL;
    int i, k, only_memory = 0, only_fetch = 0;

    cfg.rounds = 5;
    cfg.conns = 500;
    cfg.sizes[0] = SMALL_SIZE;
    cfg.sizes[1] = BIG_SIZE;
    cfg.nsizes = 2;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--env") == 0 && i + 1 < argc)
            env = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
            snprintf(cfg.ca, sizeof cfg.ca, "%s", argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            cfg.rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            cfg.conns = atoi(argv[++i]);
        else if (strcmp(argv[i], "--memory-only") == 0)
            only_memory = 1;
        else if (strcmp(argv[i], "--fetch-only") == 0)
            only_fetch = 1;
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            if (!parse_sizes(argv[++i]))
                die("--sizes takes up to 8 sizes in MB, 0.001 to 200, e.g. 0.1,1,4.76");
            cfg.cpu_us = 1;
        } else {
            fprintf(stderr, "usage: %s --env DIR/env --ca CA.pem [--rounds N] [--conns N] "
                            "[--sizes MB,MB,...] [--memory-only|--fetch-only]\n", argv[0]);
            return 2;
        }
    }
    if (env == NULL || cfg.ca[0] == '\0')
        die("--env and --ca are required (scripts/bench-fetch.sh sets them up)");
    if (cfg.rounds < 1 || cfg.rounds > MAX_ROUNDS || cfg.conns < 1 || cfg.conns > MAX_CONNS)
        die("--rounds 1..1000, --conns 1..2000");
    read_env(env);
    if (cfg.imaps_port == 0)
        die("the env file has no DOVECOT_IMAPS_PORT (tests/harness/dovecot-tls.sh)");
    if (!ImapInitialize(NULL, NULL) || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("initialisation failed");
    setup_mailbox();
    if (!only_memory)
        for (i = 0; i < 2; i++)                 /* plain, then IMAPS */
            for (k = 0; k < cfg.nsizes; k++)
                throughput(i, (unsigned)k + 1, cfg.sizes[k]);
    if (!only_fetch) {
        idle_memory(0);
        idle_memory(1);
    }
    drop_mailbox();
    curl_global_cleanup();
    ImapUninitialize();
    return 0;
}
