/* tunnel_relay_bench.c: one client, two paths: straight to Dovecot (its own socket, its
 * own OpenSSL for IMAPS) and through "imapwire tunnel" (pipes): 49 MB FETCH, NOOP. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <imapwire/imapwire.h>

#define BIG 49000000u              /* the 49 MB message */
#define MAX_ROUNDS 100
#define MAX_NOOPS 100000

static struct {
    char user[128], pass[128], ca[600], cli[600], box[64];
    unsigned port, imaps_port;
    int rounds, noops;
} cfg = { .rounds = 5, .noops = 2000 };

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "tunnel_relay_bench: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A path to the server as the client sees it: where it reads, where it writes. */
typedef struct path {
    int rfd, wfd;
    SSL_CTX *ctx;
    SSL *ssl;
    pid_t child;                   /* the tunnel process, or 0 */
    char *in;                      /* received bytes not yet used */
    size_t cap, lo, hi;
    unsigned tag;
} path;

static size_t p_read(path *p, char *dst, size_t n)
{
    if (p->ssl != NULL) {
        size_t got = 0;
        if (SSL_read_ex(p->ssl, dst, n, &got) != 1)
            die("TLS read failed");
        return got;
    }
    ssize_t r = read(p->rfd, dst, n);
    if (r <= 0)
        die("the server or the tunnel closed");
    return (size_t)r;
}

static void p_write(path *p, const char *s, size_t n)
{
    size_t got = 0;
    if (p->ssl != NULL ? SSL_write_ex(p->ssl, s, n, &got) != 1
                       : write(p->wfd, s, n) != (ssize_t)n)
        die("write failed");
}

/* Reads until one whole line is held; returns its length with the LF. */
static size_t p_line(path *p)
{
    for (;;) {
        char *lf = memchr(p->in + p->lo, '\n', p->hi - p->lo);
        if (lf != NULL)
            return (size_t)(lf - (p->in + p->lo)) + 1;
        if (p->lo > 0) {
            memmove(p->in, p->in + p->lo, p->hi - p->lo);
            p->hi -= p->lo;
            p->lo = 0;
        }
        if (p->hi == p->cap)
            die("a line too long");
        p->hi += p_read(p, p->in + p->hi, p->cap - p->hi);
    }
}

/* One command to its tagged OK; a literal is received into sink; its size. */
static size_t p_cmd(path *p, const char *text, char *sink)
{
    char tag[16], cmd[512];
    size_t lit = 0, tl;
    tl = (size_t)snprintf(tag, sizeof tag, "B%u ", ++p->tag);
    p_write(p, cmd, (size_t)snprintf(cmd, sizeof cmd, "%s%s\r\n", tag, text));
    for (;;) {
        size_t n = p_line(p), have;
        char *l = p->in + p->lo;
        p->lo += n;
        if (n >= 3 && l[n - 3] == '}') {
            char *open = memrchr(l, '{', n);
            lit = strtoul(open + 1, NULL, 10);
            if (sink == NULL || lit > BIG)
                die("a literal where none was expected");
            have = p->hi - p->lo < lit ? p->hi - p->lo : lit;
            memcpy(sink, p->in + p->lo, have);
            p->lo += have;
            while (have < lit)
                have += p_read(p, sink + have, lit - have);
            continue;
        }
        if (n > tl && memcmp(l, tag, tl) == 0) {
            if (memcmp(l + tl, "OK", 2) != 0)
                die("a command failed");
            return lit;
        }
    }
}

static void p_init(path *p)
{
    memset(p, 0, sizeof *p);
    p->cap = 1u << 20;
    p->in = malloc(p->cap);
    if (p->in == NULL)
        die("out of memory");
}

/* Straight: a socket, TCP_NODELAY, OpenSSL verifying the test CA for IMAPS; LOGIN. */
static void open_direct(path *p, int tls)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    char cmd[400];
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    p_init(p);
    a.sin_port = htons((unsigned short)(tls ? cfg.imaps_port : cfg.port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect failed");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p->rfd = p->wfd = fd;
    if (tls) {
        p->ctx = SSL_CTX_new(TLS_client_method());
        if (p->ctx == NULL || SSL_CTX_load_verify_locations(p->ctx, cfg.ca, NULL) != 1)
            die("SSL_CTX");
        SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, NULL);
        p->ssl = SSL_new(p->ctx);
        SSL_set_fd(p->ssl, fd);
        SSL_set_tlsext_host_name(p->ssl, "localhost");
        if (SSL_connect(p->ssl) != 1)
            die("TLS handshake failed");
    }
    p->lo += p_line(p);
    snprintf(cmd, sizeof cmd, "LOGIN \"%s\" \"%s\"", cfg.user, cfg.pass);
    p_cmd(p, cmd, NULL);
}

/* Through the tunnel: imapwire tunnel on two pipes, as mbsync runs it; it logs in. */
static void open_tunnel(path *p, int tls)
{
    int to[2], from[2];
    char url[300];
    p_init(p);
    snprintf(url, sizeof url, "%s://%s@127.0.0.1:%u", tls ? "imaps" : "imap", cfg.user,
             tls ? cfg.imaps_port : cfg.port);
    if (pipe(to) != 0 || pipe(from) != 0)
        die("pipe");
    p->child = fork();
    if (p->child == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        setenv("IMAPWIRE_PASSWORD", cfg.pass, 1);
        execl(cfg.cli, "imapwire", "tunnel", url, "--ca", cfg.ca, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    p->wfd = to[1];
    p->rfd = from[0];
    p->lo += p_line(p);
    if (strncmp(p->in, "* PREAUTH ", 10) != 0)
        die("the tunnel did not greet with PREAUTH");
}

static void close_path(path *p)
{
    p_cmd(p, "LOGOUT", NULL);
    if (p->ssl != NULL) {
        SSL_free(p->ssl);
        SSL_CTX_free(p->ctx);
    }
    close(p->wfd);
    if (p->rfd != p->wfd)
        close(p->rfd);
    if (p->child > 0) {
        int st;
        waitpid(p->child, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("the tunnel did not exit 0");
    }
    free(p->in);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The message: made once in a mailbox of the bench's own with the library. */
static void mailbox(int create)
{
    HCLIENT h = ImapConnect("127.0.0.1", cfg.port, 20, IMAP_OPTION_NONE, NULL);
    char head[160];
    if (h == INVALID_CLIENT || ImapLogin(h, IMAP_AUTH_DEFAULT, cfg.user, cfg.pass) != 0)
        die("imapwire: connect or login failed");
    if (!create) {
        snprintf(head, sizeof head, "DELETE %s", cfg.box);
        ImapCommand(h, head, NULL, 0);
    } else {
        int hl;
        char *c;
        snprintf(head, sizeof head, "CREATE %s", cfg.box);
        if (ImapCommand(h, head, NULL, 0) != 0)
            die("CREATE failed");
        hl = snprintf(head, sizeof head, "APPEND %s {%u}\r\n", cfg.box, BIG);
        c = malloc((size_t)hl + BIG + 1);
        if (c == NULL)
            die("out of memory");
        memcpy(c, head, (size_t)hl);
        for (size_t i = 0; i < BIG; i++)
            c[hl + i] = i % 64 == 62 ? '\r' : i % 64 == 63 ? '\n' : (char)('A' + i % 26);
        memcpy(c + hl, "Subject: relay bench\r\n\r\n", 24);
        c[hl + BIG] = '\0';
        if (ImapCommand(h, c, NULL, 0) != 0)
            die("APPEND failed");
        free(c);
    }
    ImapDisconnect(h);
}

static void run_mode(int tls, char *sink)
{
    static double mbs[2][MAX_ROUNDS], rtt[2][MAX_NOOPS];
    static const char *names[2] = { "direct", "imapwire tunnel" };
    path p[2];
    char sel[100];
    double med[2], lat[2];
    int r, s, i;

    open_direct(&p[0], tls);
    open_tunnel(&p[1], tls);
    snprintf(sel, sizeof sel, "SELECT %s", cfg.box);
    for (s = 0; s < 2; s++) {
        p_cmd(&p[s], sel, NULL);
        if (p_cmd(&p[s], "FETCH 1 BODY.PEEK[]", sink) != BIG)   /* untimed warm-up */
            die("the FETCH's size is not the message's");
    }
    for (r = 0; r < cfg.rounds; r++)
        for (i = 0; i < 2; i++) {
            s = (r + i) % 2;       /* who goes first turns each round */
            double t0 = now_s();
            p_cmd(&p[s], "FETCH 1 BODY.PEEK[]", sink);
            mbs[s][r] = BIG / 1e6 / (now_s() - t0);
        }
    /* NOOP round trips in alternating batches of 100, so drift hits both paths alike */
    for (i = 0; i < cfg.noops; i += 100)
        for (s = 0; s < 2; s++)
            for (int k = i; k < i + 100 && k < cfg.noops; k++) {
                double t0 = now_s();
                p_cmd(&p[s], "NOOP", NULL);
                rtt[s][k] = (now_s() - t0) * 1e6;
            }
    printf("\n%s: 49 MB FETCH x %d rounds, %d NOOP round trips\n", tls ? "IMAPS" : "plain",
           cfg.rounds, cfg.noops);
    for (s = 0; s < 2; s++) {
        double lo, hi;
        med[s] = median(mbs[s], cfg.rounds);
        lo = mbs[s][0];
        hi = mbs[s][cfg.rounds - 1];
        lat[s] = median(rtt[s], cfg.noops);
        printf("  %-16s %8.1f MB/s (min %.1f, max %.1f)   NOOP median %7.1f us, p90 %7.1f us\n",
               names[s], med[s], lo, hi, lat[s], rtt[s][cfg.noops * 9 / 10]);
    }
    printf("  throughput tunnel/direct: %.3f (goal >= 0.9)\n", med[1] / med[0]);
    printf("  NOOP added by the tunnel: %.1f us median (goal < 100 us)\n", lat[1] - lat[0]);
    for (s = 0; s < 2; s++)
        close_path(&p[s]);
}

int main(int argc, char **argv)
{
    char line[1024], *sink;
    FILE *f;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--env") == 0 && i + 1 < argc && (f = fopen(argv[++i], "r"))) {
            while (fgets(line, sizeof line, f) != NULL) {
                char *v = strchr(line, '=');
                if (v == NULL)
                    continue;
                *v++ = '\0';
                v[strcspn(v, "\r\n")] = '\0';
                if (strcmp(line, "DOVECOT_USER") == 0)
                    snprintf(cfg.user, sizeof cfg.user, "%s", v);
                else if (strcmp(line, "DOVECOT_PASS") == 0)
                    snprintf(cfg.pass, sizeof cfg.pass, "%s", v);
                else if (strcmp(line, "DOVECOT_PORT") == 0)
                    cfg.port = (unsigned)atoi(v);
                else if (strcmp(line, "DOVECOT_IMAPS_PORT") == 0)
                    cfg.imaps_port = (unsigned)atoi(v);
            }
            fclose(f);
        } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            snprintf(cfg.ca, sizeof cfg.ca, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--imapwire") == 0 && i + 1 < argc) {
            snprintf(cfg.cli, sizeof cfg.cli, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            cfg.rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--noops") == 0 && i + 1 < argc) {
            cfg.noops = atoi(argv[++i]);
        } else {
            die("usage: --env FILE --ca CA --imapwire PATH [--rounds N] [--noops N]");
        }
    }
    if (!cfg.port || !cfg.imaps_port || !cfg.ca[0] || !cfg.cli[0] || cfg.rounds < 1 ||
        cfg.rounds > MAX_ROUNDS || cfg.noops < 100 || cfg.noops > MAX_NOOPS)
        die("usage: --env FILE --ca CA --imapwire PATH [--rounds 1..100] [--noops 100..100000]");
    signal(SIGPIPE, SIG_IGN);
    if (!ImapInitialize(NULL, NULL))
        die("ImapInitialize");
    snprintf(cfg.box, sizeof cfg.box, "relay-bench-%d", (int)getpid());
    sink = malloc(BIG);
    if (sink == NULL)
        die("out of memory");
    mailbox(1);
    run_mode(0, sink);
    run_mode(1, sink);
    mailbox(0);
    free(sink);
    ImapUninitialize();
    return 0;
}
