/* connect_bench.c: times connect + login + NOOP + logout with imapwire and with libcurl
 * against the same IMAP server in one run, and reports the ratio (machines are noisy).
 *
 *   usage: imapwire_bench [options] HOST PORT USER PASSWORD
 *          imapwire_bench [options] --env DIR/env        (tests/harness/dovecot.sh output)
 *   options: --rounds N --batch N --warmup N --timeout S --exchange same|natural
 *            --auth plain|login --curl-handle fresh|reuse --verify --only imapwire|curl
 *            --tls none|implicit|starttls --ca FILE --curl-share-ssl
 *            --iw-tls-cache keep|reset --no-resume-check
 */
#define _GNU_SOURCE                 /* RTLD_DEFAULT */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <curl/curl.h>
#include <imapwire/imapwire.h>

/* Caps keep every loop and allocation bounded whatever the command line says. */
#define MAX_ROUNDS  1000
#define MAX_BATCH   100000
#define MAX_SAMPLES 2000000L
#define MAX_ENV_LINES 1000

enum { SIDE_IW, SIDE_CURL, NSIDES };
static const char *const side_name[NSIDES] = { "imapwire", "curl" };

enum { TLS_NONE, TLS_IMPLICIT, TLS_STARTTLS };
static const char *const tls_name[] = { "none", "implicit", "starttls" };

struct cfg {
    char    *host, *user, *pass;
    unsigned port, timeout;
    int      rounds, batch, warmup;
    int      same;          /* imapwire sends CAPABILITY like curl: identical wire */
    int      auth_login;    /* IMAP LOGIN instead of AUTHENTICATE PLAIN (curl >= 8.2) */
    int      curl_reuse;    /* one easy handle for all connects instead of one each */
    int      verify;
    int      only;          /* -1: both sides; else SIDE_*: profile one side alone */
    int      tls;           /* TLS_*: plain, IMAPS, or STARTTLS on the plain port */
    unsigned imaps_port;    /* DOVECOT_IMAPS_PORT from --env; port is the one in use */
    char    *ca;            /* the one trust anchor file both sides use */
    int      curl_share;    /* curl: a CURLSH sharing SSL sessions between easy handles */
    int      iw_reset;      /* imapwire: ImapUninitialize+ImapInitialize before each
                               connect: no cached SSL_CTX, no session to resume */
    int      resume_check;  /* ask each side after every connect whether TLS resumed */
    CURLSH  *share;
    SECURITYCREDENTIALS creds;
    char     url[300];
};

/* What the TLS connects did, counted per side (timed connects only, see bench()). */
static long tls_seen[NSIDES], tls_resumed[NSIDES];

/* ---------------------------------------------------------------- small helpers */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* User + system time of the whole process (every thread, e.g. a resolver's). */
static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; q in [0,1]. */
static double quantile(double *v, long n, double q)
{
    long i;
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    i = (long)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static double median_of(const double *v, long n, double *lo, double *hi)
{
    double tmp[MAX_ROUNDS];
    double m;
    long i;
    for (i = 0; i < n && i < MAX_ROUNDS; i++)
        tmp[i] = v[i];
    m = quantile(tmp, i, 0.5);
    if (n % 2 == 0 && n > 0)
        m = (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
    if (lo)
        *lo = tmp[0];
    if (hi)
        *hi = tmp[n > 0 ? n - 1 : 0];
    return m;
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Reads DOVECOT_HOST/PORT/USER/PASS from the harness's KEY=value file. */
static int read_env(const char *path, struct cfg *c)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    int i;
    long port = 0, imaps = 0;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    for (i = 0; i < MAX_ENV_LINES && fgets(line, sizeof line, f) != NULL; i++) {
        char *eq = strchr(line, '='), *val;
        size_t n;
        if (eq == NULL)
            continue;
        *eq = '\0';
        val = eq + 1;
        n = strlen(val);
        while (n > 0 && (val[n - 1] == '\n' || val[n - 1] == '\r'))
            val[--n] = '\0';
        if (strcmp(line, "DOVECOT_HOST") == 0)
            c->host = strdup(val);
        else if (strcmp(line, "DOVECOT_USER") == 0)
            c->user = strdup(val);
        else if (strcmp(line, "DOVECOT_PASS") == 0)
            c->pass = strdup(val);
        else if (strcmp(line, "DOVECOT_PORT") == 0 && parse_int(val, 1, 65535, &port) != 0)
            port = 0;
        else if (strcmp(line, "DOVECOT_IMAPS_PORT") == 0 &&
                 parse_int(val, 1, 65535, &imaps) != 0)
            imaps = 0;
    }
    fclose(f);
    c->port = (unsigned)port;
    c->imaps_port = (unsigned)imaps;     /* only with tests/harness/dovecot-tls.sh */
    if (c->host == NULL || c->user == NULL || c->pass == NULL || c->port == 0) {
        fprintf(stderr, "%s: needs DOVECOT_HOST, DOVECOT_PORT, DOVECOT_USER, DOVECOT_PASS\n",
                path);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- traces (--verify) */

#define TRACE_LINES 64
#define TRACE_WIDTH 120

struct trace {
    int  n;
    int  last_was_continuation;   /* the next client line answers a "+", it has no tag */
    char line[TRACE_LINES][TRACE_WIDTH];
};

/* A client line without its tag and without credentials: what both sides must agree on. */
static void normalize_command(const char *p, size_t n, char *out, size_t size, int cont)
{
    char verb[32], mech[32];
    size_t i = 0, k;

    if (cont) {
        snprintf(out, size, "<continuation data>");
        return;
    }
    while (i < n && p[i] != ' ')          /* the tag */
        i++;
    while (i < n && p[i] == ' ')
        i++;
    for (k = 0; i < n && p[i] != ' ' && k + 1 < sizeof verb; i++)
        verb[k++] = (char)toupper((unsigned char)p[i]);
    verb[k] = '\0';
    while (i < n && p[i] == ' ')
        i++;
    if (strcmp(verb, "LOGIN") == 0) {
        snprintf(out, size, "LOGIN <redacted>");
    } else if (strcmp(verb, "AUTHENTICATE") == 0) {
        for (k = 0; i < n && p[i] != ' ' && k + 1 < sizeof mech; i++)
            mech[k++] = (char)toupper((unsigned char)p[i]);
        mech[k] = '\0';
        snprintf(out, size, "AUTHENTICATE %s%s", mech, i < n ? " <redacted>" : "");
    } else {
        snprintf(out, size, "%s%s%.*s", verb, i < n ? " " : "", (int)(n - i), p + i);
    }
}

static void trace_add(struct trace *t, int sent, const char *p, size_t n)
{
    char text[TRACE_WIDTH - 4];           /* room for the "C: " prefix */
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (t->n >= TRACE_LINES)
        return;
    if (sent) {
        normalize_command(p, n, text, sizeof text, t->last_was_continuation);
        snprintf(t->line[t->n++], TRACE_WIDTH, "C: %s", text);
        t->last_was_continuation = 0;
    } else {
        /* Long capability lists are cut: the point is which exchange happened. */
        snprintf(t->line[t->n++], TRACE_WIDTH, "S: %.*s%s", n > 90 ? 90 : (int)n, p,
                 n > 90 ? " ..." : "");
        t->last_was_continuation = n >= 1 && p[0] == '+';
    }
}

/* A TLS event ("T:" lines): shown, never compared; --verify checks that both have one. */
static void trace_tls(struct trace *t, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (t->n < TRACE_LINES)
        snprintf(t->line[t->n++], TRACE_WIDTH, "T: %.*s", n > 100 ? 100 : (int)n, p);
}

static VOID iw_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    struct trace *t = param;
    (void)h;
    /* src/transports/tls.c notes "tls: <version> <cipher>[ (resumed)]" when it is up. */
    if (dir == IMAP_TRACE_INFO && len > 4 && strncmp(line, "tls: ", 5) == 0) {
        trace_tls(t, line, (size_t)len);
        return;
    }
    if (len < 0 || (dir != IMAP_TRACE_SEND && dir != IMAP_TRACE_RECV))
        return;
    /* imapwire already redacts; trace_add drops the tag as it does curl's. */
    trace_add(t, dir == IMAP_TRACE_SEND, line, (size_t)len);
}

static int curl_trace(CURL *e, curl_infotype type, char *data, size_t size, void *param)
{
    struct trace *t = param;
    size_t pos = 0;
    int lines;
    (void)e;
    if (type == CURLINFO_TEXT && (size > 20 && (strncmp(data, "SSL connection using", 20) == 0 ||
                                                strncmp(data, "SSL re-using session", 20) == 0))) {
        trace_tls(t, data, size);
        return 0;
    }
    if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN)
        return 0;
    /* One callback may carry several lines; each is one trace entry. */
    for (lines = 0; pos < size && lines < TRACE_LINES; lines++) {
        const char *lf = memchr(data + pos, '\n', size - pos);
        size_t end = lf ? (size_t)(lf - data) + 1 : size;
        trace_add(t, type == CURLINFO_HEADER_OUT, data + pos, end - pos);
        pos = end;
    }
    return 0;
}

/* ---------------------------------------------------------------- one connect per side */

static int iw_fail(const char *what)
{
    char text[256];
    DWORD err = ImapGetLastError();
    if (ImapGetErrorString(err, text, (INT)sizeof text) < 0)
        snprintf(text, sizeof text, "?");
    fprintf(stderr, "imapwire: %s failed: error %u: %s\n", what, (unsigned)err, text);
    return -1;
}

static DWORD iw_options(const struct cfg *c)
{
    return c->tls == TLS_IMPLICIT   ? IMAP_OPTION_SECURE_IMPLICIT
           : c->tls == TLS_STARTTLS ? IMAP_OPTION_SECURE_EXPLICIT
                                    : IMAP_OPTION_NONE;
}

/* Whether this connect is TLS and was resumed: counted, and a plain one is an error. */
static int iw_check_tls(HCLIENT h)
{
    SECURITYINFO si;
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapGetSecurityInformation(h, &si) == IMAP_ERROR)
        return iw_fail("ImapGetSecurityInformation");
    if (si.dwProtocol == SECURITY_PROTOCOL_NONE ||
        si.dwCertificateStatus != CERTIFICATE_STATUS_VALID) {
        fprintf(stderr, "imapwire: connect is not TLS with a verified certificate\n");
        return -1;
    }
    tls_seen[SIDE_IW]++;
    tls_resumed[SIDE_IW] += si.bSessionResumed ? 1 : 0;
    return 0;
}

/* Connect, (CAPABILITY,) log in, NOOP, LOGOUT and close: a fresh client every time. */
static int iw_once(const struct cfg *c, struct trace *t)
{
    /* The credentials are copied by ImapConnect; the struct is never written. */
    LPSECURITYCREDENTIALS creds = c->tls ? (LPSECURITYCREDENTIALS)&c->creds : NULL;
    HCLIENT h;
    int rc = 0;

    /* Dropping the library's state drops its SSL_CTX cache and session cache with it:
     * every connect then builds a context, parses the CA and does a full handshake. */
    if (c->iw_reset && (!ImapUninitialize() || !ImapInitialize(NULL, NULL)))
        return iw_fail("ImapUninitialize/ImapInitialize");
    if (t == NULL) {
        h = ImapConnect(c->host, c->port, c->timeout, iw_options(c), creds);
    } else {
        IMAPCONNECTINFO info;
        memset(&info, 0, sizeof info);
        info.dwSize = sizeof info;
        info.lpszHostName = c->host;
        info.nRemotePort = c->port;
        info.nTimeout = c->timeout;
        info.dwOptions = iw_options(c);
        info.lpCredentials = creds;
        info.lpTraceProc = iw_trace;
        info.lpParam = t;
        h = ImapConnectEx(&info);
    }
    if (h == INVALID_CLIENT)
        return iw_fail("ImapConnect");
    if (c->same && ImapCommand(h, "CAPABILITY", NULL, 0) == IMAP_ERROR)
        rc = iw_fail("ImapCommand(CAPABILITY)");
    if (rc == 0 && ImapLogin(h, c->auth_login ? IMAP_AUTH_LOGIN : IMAP_AUTH_PLAIN,
                             c->user, c->pass) == IMAP_ERROR)
        rc = iw_fail("ImapLogin");
    if (rc == 0 && ImapCommand(h, "NOOP", NULL, 0) == IMAP_ERROR)
        rc = iw_fail("ImapCommand(NOOP)");
    if (rc == 0 && c->tls && c->resume_check)
        rc = iw_check_tls(h);
    if (ImapDisconnect(h) == IMAP_ERROR && rc == 0)
        rc = iw_fail("ImapDisconnect");
    return rc;
}

static size_t curl_discard(char *p, size_t size, size_t n, void *param)
{
    (void)p;
    (void)param;
    return size * n;
}

/* TLS resumption on the curl side: the SSL* of the live connection (CURLINFO_TLS_SSL_PTR,
 * valid only during the transfer, hence a progress callback) and OpenSSL's own
 * SSL_session_reused, found at run time in the libssl that libcurl already loaded (the
 * bench does not link OpenSSL itself). */
struct curl_probe {
    CURL *e;
    int   tls;              /* a TLS connection was seen */
    int   resumed;          /* SSL_session_reused() said 1 */
};

typedef int (*ssl_reused_fn)(const void *ssl);
static ssl_reused_fn ssl_session_reused;

static int curl_progress(void *param, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct curl_probe *p = param;
    struct curl_tlssessioninfo *ti = NULL;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    if (p == NULL || p->resumed)
        return 0;               /* known: nothing more to ask */
    if (curl_easy_getinfo(p->e, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || ti == NULL ||
        ti->backend != CURLSSLBACKEND_OPENSSL || ti->internals == NULL)
        return 0;               /* not (yet) TLS, e.g. before STARTTLS */
    p->tls = 1;
    /* 0 until the handshake has resumed; the last callbacks come after it. */
    if (ssl_session_reused != NULL && ssl_session_reused(ti->internals) == 1)
        p->resumed = 1;
    return 0;
}

static int curl_setup(const struct cfg *c, CURL *e, struct trace *t)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, c->url);
    SET(CURLOPT_PROTOCOLS_STR, c->tls == TLS_IMPLICIT ? "imaps" : "imap");
    if (c->tls) {
        /* Same trust as imapwire: the CA file and nothing else (no default CApath). */
        SET(CURLOPT_CAINFO, c->ca);
        SET(CURLOPT_CAPATH, NULL);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->tls == TLS_STARTTLS)
            SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (c->share != NULL)
            SET(CURLOPT_SHARE, c->share);
        if (c->resume_check) {
            SET(CURLOPT_XFERINFOFUNCTION, curl_progress);
            SET(CURLOPT_NOPROGRESS, 0L);
        }
    }
    SET(CURLOPT_USERNAME, c->user);
    SET(CURLOPT_PASSWORD, c->pass);
    /* AUTHENTICATE PLAIN with the initial response on the command line, as imapwire
     * sends it when the server has SASL-IR; AUTH=+LOGIN is the plain LOGIN command. */
    SET(CURLOPT_LOGIN_OPTIONS, c->auth_login ? "AUTH=+LOGIN" : "AUTH=PLAIN");
    SET(CURLOPT_SASL_IR, 1L);
    /* A custom request on a URL without a mailbox is sent as is: just "NOOP". */
    SET(CURLOPT_CUSTOMREQUEST, "NOOP");
    /* The connection is closed (LOGOUT sent and answered) at the end of each perform. */
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT, (long)c->timeout);
    SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)c->timeout);
    SET(CURLOPT_TIMEOUT, (long)c->timeout * 4);
    SET(CURLOPT_WRITEFUNCTION, curl_discard);
    if (t != NULL) {
        SET(CURLOPT_DEBUGFUNCTION, curl_trace);
        SET(CURLOPT_DEBUGDATA, t);
        SET(CURLOPT_VERBOSE, 1L);
    }
#undef SET
    if (rc != CURLE_OK) {
        fprintf(stderr, "curl: setopt failed: %s\n", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

static int curl_once(const struct cfg *c, CURL *reused, struct trace *t)
{
    CURL *e = reused;
    CURLcode rc;
    long connects = 0;
    int ret = 0;
    struct curl_probe probe;

    if (e == NULL) {
        e = curl_easy_init();
        if (e == NULL) {
            fprintf(stderr, "curl: curl_easy_init failed\n");
            return -1;
        }
        if (curl_setup(c, e, t) != 0) {
            curl_easy_cleanup(e);
            return -1;
        }
    }
    memset(&probe, 0, sizeof probe);
    probe.e = e;
    if (c->tls && c->resume_check &&
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, &probe) != CURLE_OK) {
        fprintf(stderr, "curl: setopt XFERINFODATA failed\n");
        ret = -1;
    }
    rc = ret == 0 ? curl_easy_perform(e) : CURLE_OK;
    if (ret != 0) {
        /* reported above */
    } else if (rc != CURLE_OK) {
        fprintf(stderr, "curl: perform failed: %s\n", curl_easy_strerror(rc));
        ret = -1;
    } else if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK ||
               connects != 1) {
        /* A reused connection would skip the very work being measured. */
        fprintf(stderr, "curl: expected 1 new connection, got %ld\n", connects);
        ret = -1;
    } else if (c->tls && c->resume_check) {
        if (!probe.tls) {
            fprintf(stderr, "curl: no TLS connection seen\n");
            ret = -1;
        }
        tls_seen[SIDE_CURL] += probe.tls;
        tls_resumed[SIDE_CURL] += probe.resumed;
    }
    if (reused == NULL)
        curl_easy_cleanup(e);
    return ret;
}

/* ---------------------------------------------------------------- modes */

static int run_side(int side, const struct cfg *c, CURL *reused, struct trace *t)
{
    return side == SIDE_IW ? iw_once(c, t) : curl_once(c, reused, t);
}

static void print_trace(const char *name, const struct trace *t)
{
    int i;
    printf("%s:\n", name);
    for (i = 0; i < t->n; i++)
        printf("  %s\n", t->line[i]);
}

/* The client lines of a trace, in order; with no_capa, CAPABILITY lines are left out.
 * *before_tls counts the client lines sent before the first TLS event ("T:"). */
static int trace_commands(const struct trace *t, int no_capa, const char **out, int *before_tls)
{
    int i, n = 0, tls = 0;
    *before_tls = 0;
    for (i = 0; i < t->n; i++) {
        if (strncmp(t->line[i], "T:", 2) == 0)
            tls = 1;
        if (strncmp(t->line[i], "C:", 2) != 0)
            continue;
        if (!tls)
            (*before_tls)++;
        if (no_capa && strcmp(t->line[i], "C: CAPABILITY") == 0)
            continue;
        out[n++] = t->line[i];
    }
    return n;
}

static int trace_has_tls(const struct trace *t)
{
    int i;
    for (i = 0; i < t->n; i++)
        if (strncmp(t->line[i], "T:", 2) == 0)
            return 1;
    return 0;
}

/* Equal command lists, all of them or all but CAPABILITY (with as many CAPABILITYs). */
static int same_commands(const struct trace *a, const struct trace *b, int no_capa)
{
    const char *la[TRACE_LINES], *lb[TRACE_LINES];
    int na, nb, ta, tb, i;
    na = trace_commands(a, no_capa, la, &ta);
    nb = trace_commands(b, no_capa, lb, &tb);
    if (na != nb)
        return 0;
    for (i = 0; i < na; i++)
        if (strcmp(la[i], lb[i]) != 0)
            return 0;
    if (no_capa)            /* as many CAPABILITYs on both sides, wherever they are */
        return trace_commands(a, 0, la, &ta) == trace_commands(b, 0, lb, &tb);
    return 1;
}

/* The client lines sent before the TLS handshake are exactly the n given. */
static int in_clear_is(const struct trace *t, const char *const *want, int n)
{
    const char *l[TRACE_LINES];
    int i, before;
    trace_commands(t, 0, l, &before);
    if (before != n)
        return 0;
    for (i = 0; i < n; i++)
        if (strcmp(l[i] + 3, want[i]) != 0)
            return 0;
    return 1;
}

static void print_in_clear(const char *name, const struct trace *t)
{
    const char *l[TRACE_LINES];
    int i, before;
    trace_commands(t, 0, l, &before);
    printf("  %s in clear:", name);
    for (i = 0; i < before; i++)
        printf("%s %s", i ? "," : "", l[i] + 3);
    printf("%s\n", before ? "" : " nothing");
}

/* One traced connect per side; the commands each sent (tags and secrets removed) must
 * be the same list, else the timings would compare different work. With STARTTLS the
 * API cannot make imapwire ask CAPABILITY in clear (it takes the capabilities from the
 * greeting), so there the lists must match apart from where one CAPABILITY is sent. */
static int verify(const struct cfg *c)
{
    static struct trace tr[NSIDES];
    int side, same, reordered = 0, tls_ok = 1;

    for (side = 0; side < NSIDES; side++) {
        memset(&tr[side], 0, sizeof tr[side]);
        if (run_side(side, c, NULL, &tr[side]) != 0)
            return -1;
        print_trace(side_name[side], &tr[side]);
        if (c->tls && !trace_has_tls(&tr[side])) {
            printf("verify: %s shows no TLS handshake\n", side_name[side]);
            tls_ok = 0;
        }
    }
    same = same_commands(&tr[SIDE_IW], &tr[SIDE_CURL], 0);
    if (!same && c->tls == TLS_STARTTLS) {
        /* The one accepted difference, exactly: imapwire STARTTLS in clear, curl
         * CAPABILITY + STARTTLS; inside TLS the same commands, as many CAPABILITYs. */
        static const char *const iw_clear[] = { "STARTTLS" };
        static const char *const curl_clear[] = { "CAPABILITY", "STARTTLS" };
        reordered = same_commands(&tr[SIDE_IW], &tr[SIDE_CURL], 1) &&
                    in_clear_is(&tr[SIDE_IW], iw_clear, 1) &&
                    in_clear_is(&tr[SIDE_CURL], curl_clear, 2);
    }
    if (c->tls == TLS_STARTTLS) {
        print_in_clear(side_name[SIDE_IW], &tr[SIDE_IW]);
        print_in_clear(side_name[SIDE_CURL], &tr[SIDE_CURL]);
    }
    if (same)
        printf("verify: client commands IDENTICAL on both sides\n");
    else if (reordered)
        printf("verify: client commands the SAME on both sides but one CAPABILITY: curl "
               "asks it in clear before STARTTLS, imapwire inside TLS (same count)\n");
    else
        printf("verify: client commands DIFFER\n");
    printf("logins: %d\n", NSIDES);
    if (!tls_ok)
        return -1;
    if (!same && !reordered && c->same)
        return -1;          /* in --exchange natural a difference is expected */
    return 0;
}

/* How many of the counted connects were TLS and resumed, per side. */
static void print_resumed(const struct cfg *c)
{
    int s;
    if (!c->tls)
        return;
    if (!c->resume_check) {
        printf("tls resumption: not checked (--no-resume-check)\n");
        return;
    }
    printf("tls resumed:");
    for (s = 0; s < NSIDES; s++) {
        if (c->only >= 0 && c->only != s)
            continue;
        if (s == SIDE_CURL && ssl_session_reused == NULL)
            printf("  curl ? of %ld (SSL_session_reused not found)", tls_seen[s]);
        else
            printf("  %s %ld of %ld", side_name[s], tls_resumed[s], tls_seen[s]);
    }
    printf("   [imapwire: %s; curl: %s]\n",
           c->iw_reset ? "library reset before each connect" : "SSL_CTX and sessions cached",
           c->share ? "CURLSH sharing SSL sessions"
           : c->curl_reuse ? "one easy handle's session cache" : "fresh easy handle each");
    if ((c->share || c->curl_reuse) && c->only != SIDE_IW && ssl_session_reused != NULL &&
        tls_seen[SIDE_CURL] > 0 && tls_resumed[SIDE_CURL] == 0)
        printf("note: curl was given a session cache but resumed nothing%s\n",
               c->tls == TLS_STARTTLS ? ": libcurl 7.88 stores a session under the scheme "
               "\"imaps\" after STARTTLS and looks it up under \"imap\" (bench/README.md)" : "");
}

/* What the resumption check adds to imapwire's figure: ImapGetSecurityInformation also
 * formats the certificate's names and dates and hashes it, once per connect. curl's
 * check (a progress callback asking for the SSL pointer) is a few calls. One extra
 * connect, not timed with the others. */
static int check_cost(const struct cfg *c)
{
    SECURITYINFO si;
    HCLIENT h = ImapConnect(c->host, c->port, c->timeout, iw_options(c),
                            (LPSECURITYCREDENTIALS)&c->creds);
    double c0;
    int i, n = 2000, rc = 0;

    if (h == INVALID_CLIENT)
        return iw_fail("ImapConnect");
    c0 = cpu_us();
    for (i = 0; i < n && rc == 0; i++) {
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        if (ImapGetSecurityInformation(h, &si) == IMAP_ERROR)
            rc = iw_fail("ImapGetSecurityInformation");
    }
    if (rc == 0)
        printf("resumption check: ImapGetSecurityInformation costs %.1f us cpu per call "
               "(inside imapwire's cpu per connect above)\n", (cpu_us() - c0) / n);
    /* ImapDisconnect sends LOGOUT without a login first: Dovecot logs no Login line,
     * so log in to keep bench.sh's count exact. */
    if (rc == 0 && ImapLogin(h, IMAP_AUTH_PLAIN, c->user, c->pass) == IMAP_ERROR)
        rc = iw_fail("ImapLogin");
    if (ImapDisconnect(h) == IMAP_ERROR && rc == 0)
        rc = iw_fail("ImapDisconnect");
    return rc;
}

static int bench(const struct cfg *c)
{
    double wall[NSIDES][MAX_ROUNDS], cpu[NSIDES][MAX_ROUNDS], ratio[MAX_ROUNDS];
    double cratio[MAX_ROUNDS], cmed, clo, chi;
    double *each[NSIDES] = { NULL, NULL };
    double med_w[NSIDES], med_c[NSIDES], lo[NSIDES], hi[NSIDES], p50[NSIDES], p90[NSIDES];
    double rlo, rhi, rmed, t0, c0, t1, c1;
    long samples = (long)c->rounds * c->batch, k[NSIDES] = { 0, 0 };
    CURL *reused = NULL;
    int r, i, s, rc = -1;
    long total = 0;

    for (s = 0; s < NSIDES; s++) {
        each[s] = malloc((size_t)samples * sizeof(double));
        if (each[s] == NULL)
            goto out;
    }
    if (c->curl_reuse) {
        reused = curl_easy_init();
        if (reused == NULL || curl_setup(c, reused, NULL) != 0)
            goto out;
    }
    /* Warm both sides up in turns: caches, the server's login and imap processes. */
    for (i = 0; i < c->warmup; i++)
        for (s = 0; s < NSIDES; s++) {
            if (run_side(s, c, reused, NULL) != 0)
                goto out;
            total++;
        }
    /* Only the timed connects count, so the warm-up's first full handshakes do not. */
    memset(tls_seen, 0, sizeof tls_seen);
    memset(tls_resumed, 0, sizeof tls_resumed);
    for (r = 0; r < c->rounds; r++) {
        /* Alternate who goes first, so a drift within a round hits both sides alike. */
        for (i = 0; i < NSIDES; i++) {
            int n;
            s = (r % 2 == 0) ? i : NSIDES - 1 - i;
            t0 = now_us();
            c0 = cpu_us();
            for (n = 0; n < c->batch; n++) {
                double a = now_us();
                if (run_side(s, c, reused, NULL) != 0)
                    goto out;
                each[s][k[s]++] = now_us() - a;
                total++;
            }
            t1 = now_us();
            c1 = cpu_us();
            wall[s][r] = (t1 - t0) / c->batch;
            cpu[s][r] = (c1 - c0) / c->batch;
        }
        ratio[r] = wall[SIDE_IW][r] / wall[SIDE_CURL][r];
        cratio[r] = cpu[SIDE_CURL][r] > 0 ? cpu[SIDE_IW][r] / cpu[SIDE_CURL][r] : 0.0;
    }
    for (s = 0; s < NSIDES; s++) {
        med_w[s] = median_of(wall[s], c->rounds, &lo[s], &hi[s]);
        med_c[s] = median_of(cpu[s], c->rounds, NULL, NULL);
        p50[s] = quantile(each[s], k[s], 0.5);
        p90[s] = quantile(each[s], k[s], 0.9);
    }
    rmed = median_of(ratio, c->rounds, &rlo, &rhi);
    cmed = median_of(cratio, c->rounds, &clo, &chi);

    printf("wall per connect, us (median of %d rounds x %d): imapwire %.1f [%.1f..%.1f]"
           "  curl %.1f [%.1f..%.1f]\n", c->rounds, c->batch, med_w[SIDE_IW], lo[SIDE_IW],
           hi[SIDE_IW], med_w[SIDE_CURL], lo[SIDE_CURL], hi[SIDE_CURL]);
    printf("single connects, us: imapwire p50 %.1f p90 %.1f  curl p50 %.1f p90 %.1f\n",
           p50[SIDE_IW], p90[SIDE_IW], p50[SIDE_CURL], p90[SIDE_CURL]);
    printf("cpu per connect, us (user+sys, median): imapwire %.1f  curl %.1f\n",
           med_c[SIDE_IW], med_c[SIDE_CURL]);
    printf("RATIO wall imapwire/curl: %.3f  (per-round ratios: median %.3f, range %.3f..%.3f)\n",
           med_w[SIDE_IW] / med_w[SIDE_CURL], rmed, rlo, rhi);
    printf("RATIO cpu  imapwire/curl: %.3f  (per-round ratios: median %.3f, range %.3f..%.3f)\n",
           med_c[SIDE_CURL] > 0 ? med_c[SIDE_IW] / med_c[SIDE_CURL] : 0.0, cmed, clo, chi);
    print_resumed(c);
    if (c->tls && c->resume_check) {
        if (check_cost(c) != 0)
            goto out;
        total++;
    }
    rc = 0;
out:
    printf("logins: %ld\n", total);     /* scripts/bench.sh checks Dovecot's log against it */
    if (reused != NULL)
        curl_easy_cleanup(reused);
    for (s = 0; s < NSIDES; s++)
        free(each[s]);
    return rc;
}

/* One side alone, so perf or strace -c see only its work; no ratio without the peer. */
static int profile_one(const struct cfg *c)
{
    CURL *reused = NULL;
    long i, n = (long)c->rounds * c->batch, done = 0;
    double t0, c0;
    int rc = -1;

    if (c->only == SIDE_CURL && c->curl_reuse) {
        reused = curl_easy_init();
        if (reused == NULL || curl_setup(c, reused, NULL) != 0)
            goto out;
    }
    for (i = 0; i < c->warmup; i++, done++)
        if (run_side(c->only, c, reused, NULL) != 0)
            goto out;
    memset(tls_seen, 0, sizeof tls_seen);
    memset(tls_resumed, 0, sizeof tls_resumed);
    t0 = now_us();
    c0 = cpu_us();
    for (i = 0; i < n; i++, done++)
        if (run_side(c->only, c, reused, NULL) != 0)
            goto out;
    printf("%s alone: %ld connects, wall %.1f us and cpu %.1f us per connect\n",
           side_name[c->only], n, (now_us() - t0) / (double)n, (cpu_us() - c0) / (double)n);
    print_resumed(c);
    rc = 0;
out:
    printf("logins: %ld\n", done);
    if (reused != NULL)
        curl_easy_cleanup(reused);
    return rc;
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [options] HOST PORT USER PASSWORD\n"
            "       %s [options] --env DOVECOT_DIR/env\n"
            "options:\n"
            "  --rounds N          timed rounds, each side once per round (default 10)\n"
            "  --batch N           connects per side per round (default 50)\n"
            "  --warmup N          untimed connects per side first (default 20)\n"
            "  --timeout S         per-wait timeout, both sides (default 10)\n"
            "  --exchange same     imapwire also sends CAPABILITY, as curl does (default)\n"
            "  --exchange natural  each library as it behaves by default\n"
            "  --auth plain|login  AUTHENTICATE PLAIN with SASL-IR (default) or LOGIN\n"
            "  --curl-handle fresh|reuse  a new easy handle per connect (default) or one\n"
            "  --verify            one traced connect per side; compare the commands sent\n"
            "  --only imapwire|curl  loop one side alone (for perf/strace); no ratio\n"
            "  --tls none|implicit|starttls  plain TCP (default), IMAPS (--env: on\n"
            "                      DOVECOT_IMAPS_PORT) or STARTTLS on the plain port\n"
            "  --ca FILE           the CA both sides trust, and only it (needed with --tls)\n"
            "  --curl-share-ssl    curl: one CURLSH sharing SSL sessions across easy handles\n"
            "  --iw-tls-cache keep|reset  imapwire: the library's cached SSL_CTX and sessions\n"
            "                      (default), or ImapUninitialize+ImapInitialize before each\n"
            "                      connect (a new context, CA parse, full handshake each time)\n"
            "  --no-resume-check   do not ask either side whether each TLS connect resumed\n",
            prog, prog);
    return 2;
}

int main(int argc, char **argv)
{
    struct cfg c;
    const char *pos[4];
    const char *env = NULL;
    int npos = 0, i, rc;
    long v;
    const curl_version_info_data *cv;

    memset(&c, 0, sizeof c);
    c.rounds = 10;
    c.batch = 50;
    c.warmup = 20;
    c.timeout = 10;
    c.same = 1;
    c.only = -1;
    c.resume_check = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--verify") == 0) {
            c.verify = 1;
            continue;
        }
        if (strcmp(a, "--curl-share-ssl") == 0) {
            c.curl_share = 1;
            continue;
        }
        if (strcmp(a, "--no-resume-check") == 0) {
            c.resume_check = 0;
            continue;
        }
        if (a[0] != '-' || a[1] != '-') {
            if (npos >= 4)
                return usage(argv[0]);
            pos[npos++] = a;
            continue;
        }
        if (val == NULL)
            return usage(argv[0]);
        i++;
        if (strcmp(a, "--env") == 0)
            env = val;
        else if (strcmp(a, "--rounds") == 0 && parse_int(val, 1, MAX_ROUNDS, &v) == 0)
            c.rounds = (int)v;
        else if (strcmp(a, "--batch") == 0 && parse_int(val, 1, MAX_BATCH, &v) == 0)
            c.batch = (int)v;
        else if (strcmp(a, "--warmup") == 0 && parse_int(val, 0, MAX_BATCH, &v) == 0)
            c.warmup = (int)v;
        else if (strcmp(a, "--timeout") == 0 && parse_int(val, 1, 3600, &v) == 0)
            c.timeout = (unsigned)v;
        else if (strcmp(a, "--exchange") == 0 && strcmp(val, "same") == 0)
            c.same = 1;
        else if (strcmp(a, "--exchange") == 0 && strcmp(val, "natural") == 0)
            c.same = 0;
        else if (strcmp(a, "--auth") == 0 && strcmp(val, "plain") == 0)
            c.auth_login = 0;
        else if (strcmp(a, "--auth") == 0 && strcmp(val, "login") == 0)
            c.auth_login = 1;
        else if (strcmp(a, "--only") == 0 && strcmp(val, "imapwire") == 0)
            c.only = SIDE_IW;
        else if (strcmp(a, "--only") == 0 && strcmp(val, "curl") == 0)
            c.only = SIDE_CURL;
        else if (strcmp(a, "--curl-handle") == 0 && strcmp(val, "fresh") == 0)
            c.curl_reuse = 0;
        else if (strcmp(a, "--curl-handle") == 0 && strcmp(val, "reuse") == 0)
            c.curl_reuse = 1;
        else if (strcmp(a, "--tls") == 0 && strcmp(val, "none") == 0)
            c.tls = TLS_NONE;
        else if (strcmp(a, "--tls") == 0 && strcmp(val, "implicit") == 0)
            c.tls = TLS_IMPLICIT;
        else if (strcmp(a, "--tls") == 0 && strcmp(val, "starttls") == 0)
            c.tls = TLS_STARTTLS;
        else if (strcmp(a, "--ca") == 0) {
            free(c.ca);
            c.ca = strdup(val);
        }
        else if (strcmp(a, "--iw-tls-cache") == 0 && strcmp(val, "keep") == 0)
            c.iw_reset = 0;
        else if (strcmp(a, "--iw-tls-cache") == 0 && strcmp(val, "reset") == 0)
            c.iw_reset = 1;
        else
            return usage(argv[0]);
    }
    if (env != NULL) {
        if (npos != 0 || read_env(env, &c) != 0)
            return usage(argv[0]);
        if (c.tls == TLS_IMPLICIT) {
            if (c.imaps_port == 0) {
                fprintf(stderr, "%s: no DOVECOT_IMAPS_PORT (start tests/harness/dovecot-tls.sh)\n",
                        env);
                return 2;
            }
            c.port = c.imaps_port;
        }
    } else {
        if (npos != 4 || parse_int(pos[1], 1, 65535, &v) != 0)
            return usage(argv[0]);
        c.host = strdup(pos[0]);
        c.port = (unsigned)v;
        c.user = strdup(pos[2]);
        c.pass = strdup(pos[3]);
        if (c.host == NULL || c.user == NULL || c.pass == NULL)
            return 1;
    }
    if ((long)c.rounds * c.batch > MAX_SAMPLES) {
        fprintf(stderr, "rounds x batch must not exceed %ld\n", MAX_SAMPLES);
        return 2;
    }
    /* The bench is for loopback: a remote server would measure the network instead. */
    if (strcmp(c.host, "127.0.0.1") != 0 && strcmp(c.host, "::1") != 0 &&
        strcmp(c.host, "localhost") != 0) {
        fprintf(stderr, "host must be 127.0.0.1, ::1 or localhost\n");
        return 2;
    }
    if (c.tls && c.ca == NULL) {
        fprintf(stderr, "--tls needs --ca FILE (e.g. DIR/certs/ca.pem of dovecot-tls.sh)\n");
        return 2;
    }
    if (!c.tls && (c.ca != NULL || c.curl_share || c.iw_reset)) {
        fprintf(stderr, "--ca, --curl-share-ssl and --iw-tls-cache need --tls\n");
        return 2;
    }
    if (c.tls) {
        FILE *f = fopen(c.ca, "r");
        if (f == NULL) {
            perror(c.ca);
            return 2;
        }
        fclose(f);
        /* Zeroed, dwSize, the CA file: the only trust anchor, as curl's CAINFO. */
        c.creds.dwSize = sizeof c.creds;
        c.creds.lpszCAFile = c.ca;
    }
    snprintf(c.url, sizeof c.url, strchr(c.host, ':') ? "%s://[%s]:%u/" : "%s://%s:%u/",
             c.tls == TLS_IMPLICIT ? "imaps" : "imap", c.host, c.port);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_global_init failed\n");
        return 1;
    }
    cv = curl_version_info(CURLVERSION_NOW);
    if (c.auth_login && cv->version_num < 0x080200) {
        /* Older curl has no way to send the LOGIN command to a server offering SASL. */
        fprintf(stderr, "--auth login needs libcurl >= 8.2.0 (AUTH=+LOGIN); this is %s\n",
                cv->version);
        curl_global_cleanup();
        return 2;
    }
    if (c.tls && (cv->ssl_version == NULL || strncmp(cv->ssl_version, "OpenSSL", 7) != 0)) {
        /* The resumption probe reads an OpenSSL SSL*; imapwire uses OpenSSL too. */
        fprintf(stderr, "--tls needs a libcurl built with OpenSSL; this one has %s\n",
                cv->ssl_version ? cv->ssl_version : "no TLS");
        curl_global_cleanup();
        return 2;
    }
    if (c.tls) {
        ssl_session_reused = (ssl_reused_fn)dlsym(RTLD_DEFAULT, "SSL_session_reused");
        if (c.curl_share) {
            c.share = curl_share_init();
            if (c.share == NULL ||
                curl_share_setopt(c.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
                    CURLSHE_OK) {
                fprintf(stderr, "curl: cannot make a share for SSL sessions\n");
                curl_global_cleanup();
                return 1;
            }
        }
    }
    if (!ImapInitialize(NULL, NULL)) {
        iw_fail("ImapInitialize");
        curl_global_cleanup();
        return 1;
    }
    printf("server %s:%u  user %s  exchange %s  auth %s  imapwire %s  libcurl %s (%s handle)\n",
           c.host, c.port, c.user, c.same ? "same" : "natural",
           c.auth_login ? "LOGIN" : "AUTHENTICATE PLAIN (SASL-IR)", IMAPWIRE_VERSION_STRING,
           cv->version, c.curl_reuse ? "one reused" : "fresh easy");
    if (c.tls)
        printf("tls %s (%s)  CA %s  verify peer+name  imapwire: %s  curl %s: %s\n",
               tls_name[c.tls], c.tls == TLS_IMPLICIT ? "imaps://, IMAP_OPTION_SECURE_IMPLICIT"
                                : "CURLUSESSL_ALL, IMAP_OPTION_SECURE_EXPLICIT",
               c.ca, c.iw_reset ? "library reset before each connect (no SSL_CTX cache, "
                                  "no resumption)" : "cached SSL_CTX, resumes sessions",
               cv->ssl_version, c.share ? "CURLSH shares SSL sessions"
               : c.curl_reuse ? "the easy handle's session cache" : "no session to resume");
    if (c.verify) {
        rc = verify(&c);
    } else if (c.only >= 0) {
        rc = profile_one(&c);
    } else {
        printf("%d warm-up connects per side, then %d rounds x %d connects per side, "
               "alternating order\n", c.warmup, c.rounds, c.batch);
        fflush(stdout);
        rc = bench(&c);
    }
    ImapUninitialize();
    if (c.share != NULL)
        curl_share_cleanup(c.share);
    curl_global_cleanup();
    free(c.ca);
    free(c.host);
    free(c.user);
    free(c.pass);
    return rc == 0 ? 0 : 1;
}
