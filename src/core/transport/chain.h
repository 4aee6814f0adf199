/* chain.h: the transport framework: the registry of types, layer chains with the SDK's
 * pass-through defaults, the host API handed to layers, and the plugin loader. */
#ifndef IW_CHAIN_H
#define IW_CHAIN_H

#include "../runtime/runtime.h"

/* ---- registry.c ---- */
#define IW_TYPE_NAME_MAX 31
typedef struct iw_type_entry iw_type_entry;
int   iw_transport_name_valid(const char *p, size_t n);   /* [a-z0-9_-]{1,31} */
/* "name" or "name:args": the name checked and copied, *args after the colon or NULL;
 * 0 or ST_ERROR_INVALID_PARAMETER. */
int   iw_transport_spec_split(const char *spec, char name[IW_TYPE_NAME_MAX + 1],
                              const char **args);
void  iw_registry_shutdown(void);
int   iw_registry_add(const imapwire_transport_type *type, void *plugin_owner);
/* Takes a reference on success; the layer releases it. */
int   iw_registry_acquire(const char *name, iw_type_entry **out);
void  iw_registry_release(iw_type_entry *e);
const imapwire_transport_type *iw_registry_type(const iw_type_entry *e);
int   iw_transport_flags(const char *name, unsigned *flags);
void  iw_registry_set_loader(void *plugin);      /* types registered now belong to it */
void  iw_registry_remove_owner(void *plugin);

/* ---- layer.c: the chain and its pass-through defaults ---- */

/* Where a layer's trace notes and phase marks go: handed in by whoever builds the
 * chain, so the framework never calls up into the code that uses it. */
typedef struct iw_layer_sink {
    void (*note)(void *core, const char *text);
    void (*mark)(void *core, int mark);
    int  (*traces)(void *core);   /* nonzero when notes are wanted (else none is formatted) */
    /* What a layer knows of its failure (host->report): into the connect's error info */
    void (*report)(void *core, const imapwire_error_report *r);
} iw_layer_sink;

extern const imapwire_host_api iw_host_api;
/* A layer of the registered type name over below (NULL for a bottom type); sink may be
 * NULL (no notes, no marks), core is passed back to it. */
int    iw_layer_new(const char *name, const char *args, const imapwire_endpoint *ep,
                    const iw_layer_sink *sink, void *core, imapwire_layer *below,
                    imapwire_layer **out);
/* The same, with the parameters the type documents (layer->params); the caller keeps
 * them valid until the layer is freed. */
int    iw_layer_new_params(const char *name, const char *args, const void *params,
                           const imapwire_endpoint *ep, const iw_layer_sink *sink,
                           void *core, imapwire_layer *below, imapwire_layer **out);
/* The same for a type that is not in the registry (no transport string can name it). */
int    iw_layer_new_internal(const imapwire_transport_type *t, const imapwire_endpoint *ep,
                             const iw_layer_sink *sink, void *core, imapwire_layer *below,
                             imapwire_layer **out);
/* A transport text ("name" or "name:args"; NULL or "" is "tcp"): the name checked and
 * copied, *args after the colon or NULL, and the type's flags; a name not registered
 * yet is loaded as a plugin first. 0, ST_ERROR_INVALID_PARAMETER or
 * ST_ERROR_TRANSPORT_NOT_FOUND. */
int    iw_transport_lookup(const char *spec, char name[IW_TYPE_NAME_MAX + 1],
                           const char **args, unsigned *flags);
/* The bottom of a chain to ep from a transport text: its type alone when that is a
 * bottom type, else the filter over TCP to ep. */
int    iw_layer_new_spec(const char *spec, const imapwire_endpoint *ep,
                         const iw_layer_sink *sink, void *core, imapwire_layer **out);
void   iw_layer_free_chain(imapwire_layer *top);
int    iw_layer_connect(imapwire_layer *l, int *done);
int    iw_layer_shutdown(imapwire_layer *l, int *done);
int    iw_layer_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent);
int    iw_layer_recv(imapwire_layer *l, void *buf, size_t len, size_t *got);
void   iw_layer_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps);
size_t iw_layer_pending(imapwire_layer *l);
int    iw_layer_query(imapwire_layer *l, int what, void *out);

/* ---- plugin.c ---- */
void iw_plugins_unload_all(void);
int  iw_plugin_load(const char *path_or_name);   /* 0 or ST_ERROR_* */

#endif /* IW_CHAIN_H */
