/* layer.c: builds layer chains and dispatches calls down them, applying the SDK's
 * pass-through defaults (a NULL slot means "ask the layer below"); also the host API. */
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include "chain.h"
#include "../runtime/reaper.h"

struct iw_layer_box {
    imapwire_layer pub;        /* first, so a layer pointer is a box pointer */
    iw_type_entry *entry;      /* registry reference, released on free */
    const iw_layer_sink *sink; /* the chain builder's notes and marks, or NULL */
    int            created;    /* create() ran, so destroy() must */
};

#define IW_CTX_OFFSET \
    ((sizeof(struct iw_layer_box) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

/* A layer of type t; entry (the registry's reference, or NULL for an internal type)
 * passes to the layer, or is released on failure. */
static int iw_layer_make(const imapwire_transport_type *t, iw_type_entry *entry,
                         const char *args, const void *params, const imapwire_endpoint *ep,
                         const iw_layer_sink *sink, void *core, imapwire_layer *below,
                         imapwire_layer **out)
{
    struct iw_layer_box *box = NULL;
    int rc = 0;

    if ((t->flags & IMAPWIRE_TRANSPORT_BOTTOM) ? below != NULL : below == NULL) {
        rc = ST_ERROR_INVALID_PARAMETER;
        goto out;
    }
    if (t->ctx_size > (1u << 20)) {
        rc = ST_ERROR_INVALID_PARAMETER;
        goto out;
    }
    box = calloc(1, IW_CTX_OFFSET + t->ctx_size);
    if (box == NULL) {
        rc = ST_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    box->entry = entry;
    entry = NULL;
    box->pub.type = t;
    box->pub.next = below;
    box->pub.ctx = t->ctx_size ? (char *)box + IW_CTX_OFFSET : NULL;
    box->pub.endpoint = ep;
    box->pub.host = &iw_host_api;
    box->pub.core = core;
    box->pub.params = params;
    box->sink = sink;
    /* destroy runs once whatever happens, also for types without create: their
     * connect may allocate. */
    box->created = 1;
    if (t->create != NULL) {
        rc = t->create(&box->pub, args);
        if (rc != 0) {
            box->pub.next = NULL;   /* the caller still owns what is below */
            iw_layer_free_chain(&box->pub);
            box = NULL;
            goto out;
        }
    }
    *out = &box->pub;
    box = NULL;
out:
    iw_registry_release(entry);
    return rc;
}

int iw_layer_new_params(const char *name, const char *args, const void *params,
                        const imapwire_endpoint *ep, const iw_layer_sink *sink, void *core,
                        imapwire_layer *below, imapwire_layer **out)
{
    iw_type_entry *entry = NULL;
    int rc;

    *out = NULL;
    rc = iw_registry_acquire(name, &entry);
    if (rc != 0)
        return rc;
    return iw_layer_make(iw_registry_type(entry), entry, args, params, ep, sink, core, below,
                         out);
}

int iw_layer_new(const char *name, const char *args, const imapwire_endpoint *ep,
                 const iw_layer_sink *sink, void *core, imapwire_layer *below,
                 imapwire_layer **out)
{
    return iw_layer_new_params(name, args, NULL, ep, sink, core, below, out);
}

/* Internal types are not in the registry: no transport string can name them. */
int iw_layer_new_internal(const imapwire_transport_type *t, const imapwire_endpoint *ep,
                          const iw_layer_sink *sink, void *core, imapwire_layer *below,
                          imapwire_layer **out)
{
    *out = NULL;
    return iw_layer_make(t, NULL, NULL, NULL, ep, sink, core, below, out);
}

int iw_transport_lookup(const char *spec, char name[IW_TYPE_NAME_MAX + 1], const char **args,
                        unsigned *flags)
{
    int rc;
    if (spec == NULL || *spec == '\0')
        spec = "tcp";
    /* Only a valid name reaches the loader, which then looks in the plugin directories:
     * a transport text never names a file. */
    rc = iw_transport_spec_split(spec, name, args);
    if (rc != 0)
        return rc;
    rc = iw_transport_flags(name, flags);
    if (rc == ST_ERROR_TRANSPORT_NOT_FOUND && iw_plugin_load(name) == 0)
        rc = iw_transport_flags(name, flags);
    return rc;
}

int iw_layer_new_spec(const char *spec, const imapwire_endpoint *ep, const iw_layer_sink *sink,
                      void *core, imapwire_layer **out)
{
    char name[IW_TYPE_NAME_MAX + 1];
    const char *args = NULL;
    imapwire_layer *bottom = NULL;
    unsigned flags = 0;
    int rc;

    *out = NULL;
    rc = iw_transport_lookup(spec, name, &args, &flags);
    if (rc != 0)
        return rc;
    /* a filter needs a connection to filter: TCP to the same endpoint */
    if (!(flags & IMAPWIRE_TRANSPORT_BOTTOM)) {
        rc = iw_layer_new("tcp", NULL, ep, sink, core, NULL, &bottom);
        if (rc != 0)
            return rc;
    }
    rc = iw_layer_new(name, args, ep, sink, core, bottom, out);
    if (rc != 0)
        iw_layer_free_chain(bottom);
    return rc;
}

void iw_layer_free_chain(imapwire_layer *top)
{
    while (top != NULL) {
        struct iw_layer_box *box = (struct iw_layer_box *)top;
        imapwire_layer *next = top->next;
        if (box->created && top->type->destroy != NULL)
            top->type->destroy(top);
        iw_registry_release(box->entry);
        free(box);
        top = next;
    }
}

int iw_layer_connect(imapwire_layer *l, int *done)
{
    *done = 0;
    if (l == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    if (l->type->connect != NULL)
        return l->type->connect(l, done);
    return iw_layer_connect(l->next, done);
}

int iw_layer_shutdown(imapwire_layer *l, int *done)
{
    *done = 1;
    if (l == NULL)
        return 0;
    if (l->type->shutdown != NULL)
        return l->type->shutdown(l, done);
    return iw_layer_shutdown(l->next, done);
}

int iw_layer_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    *sent = 0;
    if (l == NULL)
        return ST_ERROR_CONNECTION_CLOSED;
    if (l->type->send != NULL)
        return l->type->send(l, buf, len, sent);
    return iw_layer_send(l->next, buf, len, sent);
}

int iw_layer_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    *got = 0;
    if (l == NULL)
        return ST_ERROR_CONNECTION_CLOSED;
    if (l->type->recv != NULL)
        return l->type->recv(l, buf, len, got);
    return iw_layer_recv(l->next, buf, len, got);
}

void iw_layer_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    if (l == NULL)
        return;
    if (l->type->pollset != NULL)
        l->type->pollset(l, want, ps);
    else
        iw_layer_pollset(l->next, want, ps);
}

size_t iw_layer_pending(imapwire_layer *l)
{
    if (l == NULL)
        return 0;
    if (l->type->pending != NULL)
        return l->type->pending(l);
    return iw_layer_pending(l->next);
}

int iw_layer_query(imapwire_layer *l, int what, void *out)
{
    for (; l != NULL; l = l->next) {
        if (l->type->query != NULL) {
            int rc = l->type->query(l, what, out);
            if (rc != IMAPWIRE_PASS)
                return rc;
        }
    }
    return IMAPWIRE_PASS;
}

/* ---- the host API handed to layers and plugins ---- */

static int iw_host_register(const imapwire_transport_type *type)
{
    return iw_registry_add(type, NULL);
}

static void iw_host_trace(imapwire_layer *layer, const char *fmt, ...)
{
    const iw_layer_sink *sink = layer ? ((struct iw_layer_box *)layer)->sink : NULL;
    char line[512];
    va_list ap;
    int n;
    /* Formatting costs more than the rest of a connect's bookkeeping: skip it when
     * nobody listens. */
    if (sink == NULL || sink->note == NULL || (sink->traces && !sink->traces(layer->core)))
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sink->note(layer->core, line);
}

static void iw_host_mark(imapwire_layer *layer, int mark)
{
    const iw_layer_sink *sink = layer ? ((struct iw_layer_box *)layer)->sink : NULL;
    if (sink != NULL && sink->mark != NULL)
        sink->mark(layer->core, mark);
}

static int iw_next_connect(imapwire_layer *l, int *done)
{
    return iw_layer_connect(l->next, done);
}

static int iw_next_shutdown(imapwire_layer *l, int *done)
{
    return iw_layer_shutdown(l->next, done);
}

static int iw_next_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    return iw_layer_send(l->next, buf, len, sent);
}

static int iw_next_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    return iw_layer_recv(l->next, buf, len, got);
}

static void iw_next_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    iw_layer_pollset(l->next, want, ps);
}

static size_t iw_next_pending(imapwire_layer *l)
{
    return iw_layer_pending(l->next);
}

static int iw_next_query(imapwire_layer *l, int what, void *out)
{
    return iw_layer_query(l->next, what, out);
}

/* ---- hops: connections a layer opens for itself (host->hop_*) ---- */

/* The plugin sees only the opaque pointer; behind it is an ordinary tcp layer whose
 * endpoint is the hop's own copy: the owner's settings with the hop's host and port. */
struct imapwire_hop {
    imapwire_layer   *tcp;
    imapwire_endpoint ep;
    char              host[];      /* ep.host points here */
};

/* A host text the resolver may see: a name or a literal, nothing that could smuggle a
 * second meaning (spaces, control bytes) into a trace or a query. */
static int iw_hop_host_ok(const char *host, size_t n)
{
    size_t i;
    if (n == 0 || n > 255)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)host[i] <= 0x20 || host[i] == 0x7f)
            return 0;
    return 1;
}

static int iw_host_hop_open(imapwire_layer *owner, const char *host, unsigned port,
                            imapwire_hop **out)
{
    const struct iw_layer_box *box = (const struct iw_layer_box *)owner;
    imapwire_hop *hop;
    size_t n;
    int rc;

    if (out == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    *out = NULL;
    if (owner == NULL || owner->endpoint == NULL || host == NULL || port == 0 || port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    n = strlen(host);
    if (!iw_hop_host_ok(host, n))
        return ST_ERROR_INVALID_PARAMETER;
    hop = calloc(1, sizeof *hop + n + 1);
    if (hop == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    memcpy(hop->host, host, n + 1);
    /* The whole endpoint is copied, so settings added to it later reach hops as well;
     * its strings belong to the owner, which outlives the hop. */
    hop->ep = *owner->endpoint;
    hop->ep.host = hop->host;
    hop->ep.port = port;
    /* The owner's sink: the hop's traces and its RESOLVED mark belong to the same connect. */
    rc = iw_layer_new("tcp", NULL, &hop->ep, box->sink, owner->core, NULL, &hop->tcp);
    if (rc != 0) {
        free(hop);
        return rc;
    }
    *out = hop;
    return 0;
}

static int iw_host_hop_connect(imapwire_hop *hop, int *done)
{
    return iw_layer_connect(hop->tcp, done);
}

static int iw_host_hop_send(imapwire_hop *hop, const void *buf, size_t len, size_t *sent)
{
    return iw_layer_send(hop->tcp, buf, len, sent);
}

static int iw_host_hop_recv(imapwire_hop *hop, void *buf, size_t len, size_t *got)
{
    return iw_layer_recv(hop->tcp, buf, len, got);
}

static void iw_host_hop_pollset(imapwire_hop *hop, unsigned want, imapwire_pollset *ps)
{
    iw_layer_pollset(hop->tcp, want, ps);
}

static size_t iw_host_hop_pending(imapwire_hop *hop)
{
    return iw_layer_pending(hop->tcp);
}

static int iw_host_hop_query(imapwire_hop *hop, int what, void *out)
{
    /* only what describes the hop's own connection: nothing of the owner's chain */
    if (what != IMAPWIRE_QUERY_SOCKET && what != IMAPWIRE_QUERY_PEER)
        return IMAPWIRE_PASS;
    return iw_layer_query(hop->tcp, what, out);
}

static void iw_host_hop_free(imapwire_hop *hop)
{
    if (hop == NULL)
        return;
    iw_layer_free_chain(hop->tcp);
    free(hop);
}

static void iw_host_report(imapwire_layer *layer, const imapwire_error_report *r)
{
    const iw_layer_sink *sink = layer ? ((struct iw_layer_box *)layer)->sink : NULL;
    /* a report from a plugin built before a field existed reads as that field unset */
    imapwire_error_report copy = {0};
    if (r == NULL || sink == NULL || sink->report == NULL)
        return;
    memcpy(&copy, r, r->struct_size < sizeof copy ? r->struct_size : sizeof copy);
    sink->report(layer->core, &copy);
}

static int iw_host_child_end(imapwire_layer *layer, int pid, int pidfd, int err_fd,
                             unsigned grace_ms, unsigned term_ms)
{
    IW_UNUSED(layer);
    return iw_child_end(pid, pidfd, err_fd, grace_ms, term_ms);
}

const imapwire_host_api iw_host_api = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_host_api),
    .register_transport = iw_host_register,
    .trace = iw_host_trace,
    .now_ms = iw_now_ms,
    .mark = iw_host_mark,
    .connect_next = iw_next_connect,
    .shutdown_next = iw_next_shutdown,
    .send_next = iw_next_send,
    .recv_next = iw_next_recv,
    .pollset_next = iw_next_pollset,
    .pending_next = iw_next_pending,
    .query_next = iw_next_query,
    .hop_open = iw_host_hop_open,
    .hop_connect = iw_host_hop_connect,
    .hop_send = iw_host_hop_send,
    .hop_recv = iw_host_hop_recv,
    .hop_pollset = iw_host_hop_pollset,
    .hop_pending = iw_host_hop_pending,
    .hop_query = iw_host_hop_query,
    .hop_free = iw_host_hop_free,
    .child_end = iw_host_child_end,
    .report = iw_host_report,
};
