/* fault_layer.c: the tests' fault-injection transport, written against the SDK alone: a
 * seeded schedule of short, refused, held, truncated and reset I/O on any chain. */
/* Two types share one fault engine: "fault", a filter (over TCP, or carrying an SSH hop),
 * and "faultproxy", a bottom type that runs a proxy plugin (socks5) on a host API whose
 * hop goes through the engine, so the proxy's handshake meets the faults too. Holds and
 * refusals are reported through the poll set (a wake-up time), never by sleeping: the
 * loop thread serving asynchronous connects must not wait in a layer. */
#define _GNU_SOURCE
#include "fault_layer.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/transport.h>

/* ---- statistics, summed over all connections (connects may run on the loop thread) ---- */

static fault_stats g_stats = { .fired_phase = -1 };
static unsigned g_anchor;          /* fault_anchor() calls so far */

void fault_anchor(void)
{
    __atomic_add_fetch(&g_anchor, 1u, __ATOMIC_RELAXED);
}

#define STAT_ADD(field, n) __atomic_add_fetch(&g_stats.field, (n), __ATOMIC_RELAXED)

void fault_stats_get(fault_stats *out)
{
    out->calls = __atomic_load_n(&g_stats.calls, __ATOMIC_RELAXED);
    out->splits = __atomic_load_n(&g_stats.splits, __ATOMIC_RELAXED);
    out->agains = __atomic_load_n(&g_stats.agains, __ATOMIC_RELAXED);
    out->delays = __atomic_load_n(&g_stats.delays, __ATOMIC_RELAXED);
    out->truncations = __atomic_load_n(&g_stats.truncations, __ATOMIC_RELAXED);
    out->resets = __atomic_load_n(&g_stats.resets, __ATOMIC_RELAXED);
    out->bytes_in = __atomic_load_n(&g_stats.bytes_in, __ATOMIC_RELAXED);
    out->bytes_out = __atomic_load_n(&g_stats.bytes_out, __ATOMIC_RELAXED);
    out->fired_phase = __atomic_load_n(&g_stats.fired_phase, __ATOMIC_RELAXED);
}

void fault_stats_reset(void)
{
    __atomic_store_n(&g_stats.calls, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.splits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.agains, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.delays, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.truncations, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.resets, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.bytes_in, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.bytes_out, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_stats.fired_phase, -1, __ATOMIC_RELAXED);
}

/* ---- the engine ---- */

enum { RX = 0, TX = 1 };

struct fault_dir {
    int64_t hold_until;            /* a delay in progress: AGAIN until then */
    int     refused;               /* the last call was an injected AGAIN */
};

/* A truncation or reset: off bytes into phase (0 = from the start); rel when the
 * schedule named the phase, and then a phase that ends short of off carries the cut to
 * the first I/O of the next one. */
struct fault_cut {
    int                on, rel, phase;
    unsigned long long off;
};

struct fault {
    unsigned rng;
    unsigned split_max, split_pct; /* 0 = off */
    unsigned again_pct;
    unsigned delay_ms, delay_pct;
    struct fault_cut   trunc, reset;  /* counted in bytes received, and in both ways */
    unsigned long long rx, tx;
    unsigned           anchor0;       /* g_anchor when the layer was made */
    int                phase;         /* fault_anchor() calls seen since */
    unsigned long long phase_rx, phase_all;   /* rx and rx + tx when the phase began */
    int      told;                 /* the truncation or reset was traced */
    struct fault_dir dir[2];
};

/* The layer (or hop) below, as the engine sees it. */
struct lower {
    int  (*io)(void *arg, int dir, void *buf, size_t len, size_t *n);
    void (*note)(void *arg, const char *text);
    int64_t (*now)(void *arg);
    void *arg;
};

static int roll(struct fault *f, unsigned pct)
{
    return pct != 0 && (unsigned)rand_r(&f->rng) % 100u < pct;
}

static int parse_u(const char **p, unsigned long long lo, unsigned long long hi,
                   unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;
    if (**p < '0' || **p > '9')
        return -1;
    v = strtoull(*p, &end, 10);
    if (v < lo || v > hi)
        return -1;
    *p = end;
    *out = v;
    return 0;
}

/* "SEED:item+item..." up to the end or stop; 0 or ST_ERROR_INVALID_PARAMETER. */
static int fault_parse(struct fault *f, const char *s, const char *stop)
{
    unsigned long long v;
    const char *p = s;
    if (stop == NULL)
        stop = s + strlen(s);
    if (parse_u(&p, 0, 0xffffffffull, &v) != 0 || *p != ':')
        return ST_ERROR_INVALID_PARAMETER;
    f->rng = (unsigned)v;
    p++;
    while (p < stop) {
        size_t n = strcspn(p, "=%@+;");
        unsigned long long k = 0, pct = 101;
        if (p + n > stop)
            n = (size_t)(stop - p);
        if (n == 5 && strncmp(p, "split", 5) == 0) {
            p += n;
            k = 1;
            if (*p == '=' && (p++, parse_u(&p, 1, 65536, &k) != 0))
                return ST_ERROR_INVALID_PARAMETER;
            if (*p == '%' && (p++, parse_u(&p, 1, 100, &pct) != 0))
                return ST_ERROR_INVALID_PARAMETER;
            f->split_max = (unsigned)k;
            f->split_pct = pct > 100 ? 100u : (unsigned)pct;
        } else if (n == 5 && strncmp(p, "again", 5) == 0) {
            p += n;
            if (*p == '%' && (p++, parse_u(&p, 1, 90, &pct) != 0))
                return ST_ERROR_INVALID_PARAMETER;
            f->again_pct = pct > 100 ? 25u : (unsigned)pct;
        } else if (n == 5 && strncmp(p, "delay", 5) == 0) {
            p += n;
            k = 3;
            if (*p == '=' && (p++, parse_u(&p, 1, 1000, &k) != 0))
                return ST_ERROR_INVALID_PARAMETER;
            if (*p == '%' && (p++, parse_u(&p, 1, 100, &pct) != 0))
                return ST_ERROR_INVALID_PARAMETER;
            f->delay_ms = (unsigned)k;
            f->delay_pct = pct > 100 ? 10u : (unsigned)pct;
        } else if ((n == 8 && strncmp(p, "truncate", 8) == 0 && p[8] == '@') ||
                   (n == 5 && strncmp(p, "reset", 5) == 0 && p[5] == '@')) {
            struct fault_cut *c = n == 8 ? &f->trunc : &f->reset;
            p += n + 1;
            if (parse_u(&p, 0, 1ull << 40, &k) != 0)
                return ST_ERROR_INVALID_PARAMETER;
            c->on = 1;
            c->off = k;
            if (*p == '.') {       /* K.N: N bytes into phase K */
                p++;
                if (k > 1000 || parse_u(&p, 0, 1ull << 40, &c->off) != 0)
                    return ST_ERROR_INVALID_PARAMETER;
                c->rel = 1;
                c->phase = (int)k;
            }
        } else {
            return ST_ERROR_INVALID_PARAMETER;
        }
        if (p < stop && *p != '+')
            return ST_ERROR_INVALID_PARAMETER;
        if (p < stop)
            p++;
    }
    return 0;
}

/* Follows fault_anchor(): the counts at the start of each phase. */
static void fault_phase(struct fault *f)
{
    int now = (int)(__atomic_load_n(&g_anchor, __ATOMIC_RELAXED) - f->anchor0);
    if (now != f->phase) {
        f->phase = now;
        f->phase_rx = f->rx;
        f->phase_all = f->rx + f->tx;
    }
}

/* Bytes that may still pass before the cut (0: it is due), or ~0 when there is none. */
static unsigned long long cut_room(const struct fault *f, const struct fault_cut *c,
                                   unsigned long long count, unsigned long long at_phase)
{
    unsigned long long done;
    if (!c->on || f->phase < c->phase)
        return ~0ull;
    if (f->phase > c->phase)
        return c->rel ? 0 : (count >= c->off ? 0 : c->off - count);
    done = count - at_phase;
    return done >= c->off ? 0 : c->off - done;
}

static unsigned long long reset_room(const struct fault *f)
{
    return cut_room(f, &f->reset, f->rx + f->tx, f->reset.rel ? f->phase_all : 0);
}

static unsigned long long truncate_room(const struct fault *f)
{
    return cut_room(f, &f->trunc, f->rx, f->trunc.rel ? f->phase_rx : 0);
}

static int reset_due(const struct fault *f)
{
    return reset_room(f) == 0;
}

static int truncate_due(const struct fault *f)
{
    return truncate_room(f) == 0;
}

static void tell(struct fault *f, const struct lower *lo, const char *what)
{
    char text[160];
    if (f->told)
        return;
    f->told = 1;
    __atomic_store_n(&g_stats.fired_phase, f->phase, __ATOMIC_RELAXED);
    snprintf(text, sizeof text, "fault: %s after %llu bytes in, %llu out", what, f->rx, f->tx);
    lo->note(lo->arg, text);
}

static int fault_io(struct fault *f, const struct lower *lo, int d, void *buf, size_t len,
                    size_t *n)
{
    struct fault_dir *fd = &f->dir[d];
    int64_t now;
    int rc, fresh = 0;

    *n = 0;
    STAT_ADD(calls, 1);
    fault_phase(f);
    if (reset_due(f)) {
        tell(f, lo, "reset");
        STAT_ADD(resets, 1);
        return ST_ERROR_CONNECTION_CLOSED;   /* what TCP reports for ECONNRESET */
    }
    if (d == RX && truncate_due(f)) {
        tell(f, lo, "end of stream");
        STAT_ADD(truncations, 1);
        return IMAPWIRE_OK;                  /* *n == 0: the peer's clean end */
    }
    if (fd->hold_until != 0) {
        now = lo->now(lo->arg);
        if (now < fd->hold_until) {
            STAT_ADD(agains, 1);
            return IMAPWIRE_AGAIN;           /* the poll set carries the wake-up */
        }
        fd->hold_until = 0;
        fresh = 1;                           /* a hold ends in I/O, not in another hold */
    }
    if (!fresh && !fd->refused) {
        if (f->delay_ms != 0 && roll(f, f->delay_pct)) {
            fd->hold_until = lo->now(lo->arg) + 1 + (unsigned)rand_r(&f->rng) % f->delay_ms;
            STAT_ADD(delays, 1);
            STAT_ADD(agains, 1);
            return IMAPWIRE_AGAIN;
        }
        if (roll(f, f->again_pct)) {
            /* never twice in a row: a refusal is followed by a real attempt, so a
             * caller that polls a ready descriptor makes progress at the next call */
            fd->refused = 1;
            STAT_ADD(agains, 1);
            return IMAPWIRE_AGAIN;
        }
    }
    fd->refused = 0;
    if (f->split_max != 0 && len > 1 && roll(f, f->split_pct)) {
        size_t cut = 1 + (size_t)((unsigned)rand_r(&f->rng) % f->split_max);
        if (cut < len) {
            len = cut;
            STAT_ADD(splits, 1);
        }
    }
    if (len > reset_room(f))
        len = (size_t)reset_room(f);
    if (d == RX && len > truncate_room(f))
        len = (size_t)truncate_room(f);
    rc = lo->io(lo->arg, d, buf, len, n);
    if (rc == IMAPWIRE_OK) {
        if (d == RX) {
            f->rx += *n;
            STAT_ADD(bytes_in, *n);
        } else {
            f->tx += *n;
            STAT_ADD(bytes_out, *n);
        }
    }
    return rc;
}

/* What the engine waits for, given the caller's want: a held direction is not polled
 * (its descriptor may be ready, and polling it would spin until the hold ends) but
 * woken at the hold's end; a refusal, a reset or a due end of stream wake at once. */
static unsigned fault_want(struct fault *f, const struct lower *lo, unsigned want,
                           imapwire_pollset *ps)
{
    int64_t now = lo->now(lo->arg);
    fault_phase(f);
    if (reset_due(f) || ((want & IMAPWIRE_WANT_READ) && truncate_due(f))) {
        imapwire_pollset_wakeup(ps, now > 0 ? now : 1);
        return want;
    }
    if ((want & IMAPWIRE_WANT_READ) && f->dir[RX].hold_until != 0) {
        want &= ~IMAPWIRE_WANT_READ;
        imapwire_pollset_wakeup(ps, f->dir[RX].hold_until);
    }
    if ((want & IMAPWIRE_WANT_WRITE) && f->dir[TX].hold_until != 0) {
        want &= ~IMAPWIRE_WANT_WRITE;
        imapwire_pollset_wakeup(ps, f->dir[TX].hold_until);
    }
    /* only for a direction the caller waits on: a refused write nobody retries must not
     * wake every wait of the connection's life */
    if (((want & IMAPWIRE_WANT_READ) && f->dir[RX].refused) ||
        ((want & IMAPWIRE_WANT_WRITE) && f->dir[TX].refused))
        imapwire_pollset_wakeup(ps, now + 2);
    return want;
}

/* ---- "fault": the engine as a filter ---- */

static int flt_lower_io(void *arg, int d, void *buf, size_t len, size_t *n)
{
    imapwire_layer *l = arg;
    return d == RX ? l->host->recv_next(l, buf, len, n) : l->host->send_next(l, buf, len, n);
}

static void flt_note(void *arg, const char *text)
{
    imapwire_layer *l = arg;
    l->host->trace(l, "%s", text);
}

static int64_t flt_now(void *arg)
{
    imapwire_layer *l = arg;
    return l->host->now_ms();
}

static struct lower flt_lower(imapwire_layer *l)
{
    struct lower lo = { flt_lower_io, flt_note, flt_now, l };
    return lo;
}

static int flt_create(imapwire_layer *l, const char *args)
{
    struct fault *f = l->ctx;
    if (args == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    f->anchor0 = __atomic_load_n(&g_anchor, __ATOMIC_RELAXED);
    return fault_parse(f, args, NULL);
}

static int flt_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct lower lo = flt_lower(l);
    return fault_io(l->ctx, &lo, TX, (void *)(uintptr_t)buf, len, sent);
}

static int flt_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct lower lo = flt_lower(l);
    return fault_io(l->ctx, &lo, RX, buf, len, got);
}

static void flt_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct lower lo = flt_lower(l);
    want = fault_want(l->ctx, &lo, want, ps);
    if (want != 0)
        l->host->pollset_next(l, want, ps);
}

static size_t flt_pending(imapwire_layer *l)
{
    struct fault *f = l->ctx;
    if (f->dir[RX].hold_until != 0 || truncate_due(f) || reset_due(f))
        return 0;                    /* nothing comes out without a wait for the hold */
    return l->host->pending_next(l);
}

static const imapwire_transport_type fault_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "fault",
    .ctx_size = sizeof(struct fault),
    .create = flt_create,
    .send = flt_send,
    .recv = flt_recv,
    .pollset = flt_pollset,
    .pending = flt_pending,
};

/* ---- "faultproxy": a proxy plugin whose hop runs through the engine ---- */

static char g_plugin_dir[512];
static pthread_mutex_t g_plugin_lock = PTHREAD_MUTEX_INITIALIZER;
static const imapwire_transport_type *g_captured;

struct fhop {
    imapwire_hop *real;
    imapwire_layer *outer;
};

struct fproxy {
    struct fault       f;
    imapwire_layer     inner;      /* the proxy's layer; its core is our outer layer */
    imapwire_host_api  host;       /* the outer host with hop and trace calls wrapped */
    void              *inner_ctx;
    int                created;
    struct fhop        hop;        /* the proxy opens one hop */
    int                hop_open;
};

static imapwire_layer *outer_of(imapwire_layer *inner)
{
    return inner->core;
}

static int capture_register(const imapwire_transport_type *t)
{
    if (t == NULL || !(t->flags & IMAPWIRE_TRANSPORT_BOTTOM))
        return ST_ERROR_INVALID_PARAMETER;
    g_captured = t;
    return 0;
}

/* The plugin's type, read by running its init against a host that only records. */
static int load_plugin_type(const char *name, const imapwire_transport_type **out)
{
    static const imapwire_host_api capture = {
        .abi_version = IMAPWIRE_TRANSPORT_ABI,
        .struct_size = sizeof(imapwire_host_api),
        .register_transport = capture_register,
    };
    char path[700];
    void *dl;
    imapwire_plugin_init_fn init;
    int rc;

    if (g_plugin_dir[0] == '\0' || strchr(name, '/') != NULL || strlen(name) > 31)
        return ST_ERROR_TRANSPORT_NOT_FOUND;
    snprintf(path, sizeof path, "%s/%s.so", g_plugin_dir, name);
    /* kept loaded for the life of the process, as the library keeps its plugins */
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        return ST_ERROR_TRANSPORT_NOT_FOUND;
    *(void **)&init = dlsym(dl, IMAPWIRE_PLUGIN_INIT_SYMBOL);
    if (init == NULL)
        return ST_ERROR_PLUGIN_LOAD_FAILED;
    pthread_mutex_lock(&g_plugin_lock);
    g_captured = NULL;
    rc = init(&capture);
    *out = g_captured;
    pthread_mutex_unlock(&g_plugin_lock);
    if (rc == 0 && *out == NULL)
        rc = ST_ERROR_PLUGIN_LOAD_FAILED;
    return rc;
}

__attribute__((format(printf, 2, 3)))
static void fp_trace(imapwire_layer *inner, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    outer_of(inner)->host->trace(outer_of(inner), "%s", text);
}

/* SDK 1.3: what the proxy says of its failure goes to the outer layer's connect. */
static void fp_report(imapwire_layer *inner, const imapwire_error_report *r)
{
    outer_of(inner)->host->report(outer_of(inner), r);
}

static void fp_mark(imapwire_layer *inner, int mark)
{
    outer_of(inner)->host->mark(outer_of(inner), mark);
}

static int fp_hop_open(imapwire_layer *inner, const char *host, unsigned port,
                       imapwire_hop **hop)
{
    imapwire_layer *outer = outer_of(inner);
    struct fproxy *p = outer->ctx;
    int rc;
    *hop = NULL;
    if (p->hop_open)
        return ST_ERROR_INVALID_PARAMETER;  /* one hop is all a proxy needs */
    rc = outer->host->hop_open(outer, host, port, &p->hop.real);
    if (rc != 0)
        return rc;
    p->hop.outer = outer;
    p->hop_open = 1;
    *hop = (imapwire_hop *)(void *)&p->hop;
    return 0;
}

static struct fhop *fh(imapwire_hop *hop)
{
    return (struct fhop *)(void *)hop;
}

static int fp_hop_connect(imapwire_hop *hop, int *done)
{
    return fh(hop)->outer->host->hop_connect(fh(hop)->real, done);
}

static int hop_lower_io(void *arg, int d, void *buf, size_t len, size_t *n)
{
    struct fhop *h = arg;
    return d == RX ? h->outer->host->hop_recv(h->real, buf, len, n)
                   : h->outer->host->hop_send(h->real, buf, len, n);
}

static void hop_note(void *arg, const char *text)
{
    struct fhop *h = arg;
    h->outer->host->trace(h->outer, "%s", text);
}

static int64_t hop_now(void *arg)
{
    struct fhop *h = arg;
    return h->outer->host->now_ms();
}

static struct lower hop_lower(struct fhop *h)
{
    struct lower lo = { hop_lower_io, hop_note, hop_now, h };
    return lo;
}

static int fp_hop_send(imapwire_hop *hop, const void *buf, size_t len, size_t *sent)
{
    struct fproxy *p = fh(hop)->outer->ctx;
    struct lower lo = hop_lower(fh(hop));
    return fault_io(&p->f, &lo, TX, (void *)(uintptr_t)buf, len, sent);
}

static int fp_hop_recv(imapwire_hop *hop, void *buf, size_t len, size_t *got)
{
    struct fproxy *p = fh(hop)->outer->ctx;
    struct lower lo = hop_lower(fh(hop));
    return fault_io(&p->f, &lo, RX, buf, len, got);
}

static void fp_hop_pollset(imapwire_hop *hop, unsigned want, imapwire_pollset *ps)
{
    struct fproxy *p = fh(hop)->outer->ctx;
    struct lower lo = hop_lower(fh(hop));
    want = fault_want(&p->f, &lo, want, ps);
    if (want != 0)
        fh(hop)->outer->host->hop_pollset(fh(hop)->real, want, ps);
}

static size_t fp_hop_pending(imapwire_hop *hop)
{
    struct fproxy *p = fh(hop)->outer->ctx;
    if (p->f.dir[RX].hold_until != 0 || truncate_due(&p->f) || reset_due(&p->f))
        return 0;
    return fh(hop)->outer->host->hop_pending(fh(hop)->real);
}

static int fp_hop_query(imapwire_hop *hop, int what, void *out)
{
    return fh(hop)->outer->host->hop_query(fh(hop)->real, what, out);
}

static void fp_hop_free(imapwire_hop *hop)
{
    struct fproxy *p;
    if (hop == NULL)
        return;
    p = fh(hop)->outer->ctx;
    fh(hop)->outer->host->hop_free(fh(hop)->real);
    fh(hop)->real = NULL;
    p->hop_open = 0;
}

static int fp_create(imapwire_layer *l, const char *args)
{
    struct fproxy *p = l->ctx;
    const imapwire_transport_type *t = NULL;
    const char *semi = args ? strchr(args, ';') : NULL;
    char name[32];
    const char *inner_args;
    size_t n;
    int rc;

    if (semi == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    p->f.anchor0 = __atomic_load_n(&g_anchor, __ATOMIC_RELAXED);
    rc = fault_parse(&p->f, args, semi);
    if (rc != 0)
        return rc;
    n = strcspn(semi + 1, ":");
    if (n == 0 || n >= sizeof name)
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(name, semi + 1, n);
    name[n] = '\0';
    inner_args = semi[1 + n] == ':' ? semi + 2 + n : NULL;
    rc = load_plugin_type(name, &t);
    if (rc != 0)
        return rc;
    p->host = *l->host;
    p->host.trace = fp_trace;
    p->host.mark = fp_mark;
    p->host.hop_open = fp_hop_open;
    p->host.hop_connect = fp_hop_connect;
    p->host.hop_send = fp_hop_send;
    p->host.hop_recv = fp_hop_recv;
    p->host.hop_pollset = fp_hop_pollset;
    p->host.hop_pending = fp_hop_pending;
    p->host.hop_query = fp_hop_query;
    p->host.hop_free = fp_hop_free;
    p->host.report = fp_report;
    p->inner_ctx = calloc(1, t->ctx_size ? t->ctx_size : 1);
    if (p->inner_ctx == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    p->inner.type = t;
    p->inner.next = NULL;
    p->inner.ctx = p->inner_ctx;
    p->inner.endpoint = l->endpoint;
    p->inner.host = &p->host;
    p->inner.core = l;
    p->inner.params = NULL;
    p->created = 1;
    return t->create != NULL ? t->create(&p->inner, inner_args) : 0;
}

static void fp_destroy(imapwire_layer *l)
{
    struct fproxy *p = l->ctx;
    if (p->created && p->inner.type->destroy != NULL)
        p->inner.type->destroy(&p->inner);
    if (p->hop_open)                  /* a proxy that forgot its hop: the core's rule */
        fp_hop_free((imapwire_hop *)(void *)&p->hop);
    free(p->inner_ctx);
    p->inner_ctx = NULL;
}

static int fp_connect(imapwire_layer *l, int *done)
{
    struct fproxy *p = l->ctx;
    return p->inner.type->connect(&p->inner, done);
}

static int fp_shutdown(imapwire_layer *l, int *done)
{
    struct fproxy *p = l->ctx;
    *done = 1;
    return p->inner.type->shutdown ? p->inner.type->shutdown(&p->inner, done) : 0;
}

static int fp_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct fproxy *p = l->ctx;
    return p->inner.type->send(&p->inner, buf, len, sent);
}

static int fp_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct fproxy *p = l->ctx;
    return p->inner.type->recv(&p->inner, buf, len, got);
}

static void fp_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct fproxy *p = l->ctx;
    p->inner.type->pollset(&p->inner, want, ps);
}

static size_t fp_pending(imapwire_layer *l)
{
    struct fproxy *p = l->ctx;
    return p->inner.type->pending ? p->inner.type->pending(&p->inner) : 0;
}

static int fp_query(imapwire_layer *l, int what, void *out)
{
    struct fproxy *p = l->ctx;
    return p->inner.type->query ? p->inner.type->query(&p->inner, what, out) : IMAPWIRE_PASS;
}

static const imapwire_transport_type faultproxy_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "faultproxy",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct fproxy),
    .create = fp_create,
    .destroy = fp_destroy,
    .connect = fp_connect,
    .shutdown = fp_shutdown,
    .send = fp_send,
    .recv = fp_recv,
    .pollset = fp_pollset,
    .pending = fp_pending,
    .query = fp_query,
};

/* ImapRegisterTransport answers IMAP_ERROR; the code is the thread's last error. A type
 * already there (a second setup in one process) is fine. */
static int register_type(const imapwire_transport_type *t)
{
    DWORD e;
    if (ImapRegisterTransport(t) == 0)
        return 0;
    e = ImapGetLastError();
    return e == ST_ERROR_TRANSPORT_EXISTS ? 0 : (int)e;
}

int fault_register(const char *plugin_dir)
{
    int rc = register_type(&fault_type);
    if (rc != 0 || plugin_dir == NULL)
        return rc;
    snprintf(g_plugin_dir, sizeof g_plugin_dir, "%s", plugin_dir);
    return register_type(&faultproxy_type);
}
