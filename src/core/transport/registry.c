/* registry.c: the process-wide table of transport types, shared by built-ins and plugins.
 * One locking rule: types are copied by value under the lock; layers hold a reference. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "chain.h"


struct iw_type_entry {
    imapwire_transport_type type;      /* full-size copy: missing slots are NULL */
    char                    name[IW_TYPE_NAME_MAX + 1];
    unsigned                refs;      /* live layers */
    void                   *plugin;    /* the plugin that registered it, or NULL */
    struct iw_type_entry   *next;
};

static pthread_mutex_t iw_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iw_type_entry *iw_types;
/* The plugin whose init runs on this thread: what it registers belongs to it. */
static _Thread_local void *iw_loading_plugin;

void iw_registry_set_loader(void *plugin)
{
    iw_loading_plugin = plugin;
}

/* [a-z0-9_-]{1,31}, tested byte by byte (no locale): a name is never a path, so no
 * transport string can make the loader open a file the caller did not name. */
int iw_transport_name_valid(const char *p, size_t n)
{
    size_t i;
    if (p == NULL || n == 0 || n > IW_TYPE_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int iw_transport_spec_split(const char *spec, char name[IW_TYPE_NAME_MAX + 1],
                            const char **args)
{
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!iw_transport_name_valid(spec, n))
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(name, spec, n);
    name[n] = '\0';
    *args = colon ? colon + 1 : NULL;
    return 0;
}

static int iw_valid_type_name(const char *name)
{
    return name != NULL && iw_transport_name_valid(name, strlen(name));
}

static struct iw_type_entry *iw_find_locked(const char *name)
{
    struct iw_type_entry *e;
    for (e = iw_types; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

int iw_registry_add(const imapwire_transport_type *type, void *plugin_owner)
{
    struct iw_type_entry *e, *old;
    size_t n;
    int rc = 0;

    if (type == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    /* abi_version is the first field of every version of the struct: check it before
     * trusting anything else the type says about itself. */
    if ((type->abi_version >> 16) != IMAPWIRE_TRANSPORT_ABI_MAJOR)
        return ST_ERROR_PLUGIN_VERSION;
    if (type->struct_size < offsetof(imapwire_transport_type, create) ||
        !iw_valid_type_name(type->name))
        return ST_ERROR_INVALID_PARAMETER;
    if ((type->flags & IMAPWIRE_TRANSPORT_BOTTOM) &&
        (type->struct_size < offsetof(imapwire_transport_type, pending) ||
         !type->connect || !type->send || !type->recv || !type->pollset))
        return ST_ERROR_INVALID_PARAMETER;

    e = calloc(1, sizeof *e);
    if (e == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    n = type->struct_size < sizeof e->type ? type->struct_size : sizeof e->type;
    memcpy(&e->type, type, n);
    iw_strlcpy(e->name, type->name, sizeof e->name);
    e->type.name = e->name;
    e->type.struct_size = sizeof e->type;
    e->plugin = plugin_owner ? plugin_owner : iw_loading_plugin;

    pthread_mutex_lock(&iw_registry_lock);
    old = iw_find_locked(e->name);
    if (old == NULL) {
        e->next = iw_types;
        iw_types = e;
        e = NULL;
    } else if (old->plugin == NULL || old->plugin != e->plugin) {
        rc = ST_ERROR_TRANSPORT_EXISTS;
    }
    /* else: a plugin's init run again (after one of its types was unregistered)
     * registers what it still has; that is not a clash. */
    pthread_mutex_unlock(&iw_registry_lock);
    free(e);
    return rc;
}

static void iw_unlink_locked(struct iw_type_entry *e)
{
    struct iw_type_entry **pp;
    for (pp = &iw_types; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            return;
        }
    }
}

int iw_registry_acquire(const char *name, iw_type_entry **out)
{
    struct iw_type_entry *e;
    pthread_mutex_lock(&iw_registry_lock);
    e = iw_find_locked(name);
    if (e != NULL)
        e->refs++;
    pthread_mutex_unlock(&iw_registry_lock);
    *out = e;
    return e ? 0 : ST_ERROR_TRANSPORT_NOT_FOUND;
}

void iw_registry_release(iw_type_entry *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&iw_registry_lock);
    if (e->refs > 0)
        e->refs--;
    pthread_mutex_unlock(&iw_registry_lock);
}

const imapwire_transport_type *iw_registry_type(const iw_type_entry *e)
{
    return &e->type;
}

int iw_transport_flags(const char *name, unsigned *flags)
{
    struct iw_type_entry *e;
    pthread_mutex_lock(&iw_registry_lock);
    e = iw_find_locked(name);
    if (e != NULL)
        *flags = e->type.flags;
    pthread_mutex_unlock(&iw_registry_lock);
    return e ? 0 : ST_ERROR_TRANSPORT_NOT_FOUND;
}

/* A plugin whose init failed is unloaded: the types it managed to register go first,
 * so nothing points into unmapped code. No layer can use them yet. */
void iw_registry_remove_owner(void *plugin)
{
    struct iw_type_entry **pp, *e, *dead = NULL;
    pthread_mutex_lock(&iw_registry_lock);
    for (pp = &iw_types; (e = *pp) != NULL;) {
        if (e->plugin == plugin && e->refs == 0) {
            *pp = e->next;
            e->next = dead;
            dead = e;
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&iw_registry_lock);
    while ((e = dead) != NULL) {
        dead = e->next;
        free(e);
    }
}

/* Frees every entry; layers are gone by now (handles were freed first). */
void iw_registry_shutdown(void)
{
    struct iw_type_entry *e, *next;
    pthread_mutex_lock(&iw_registry_lock);
    e = iw_types;
    iw_types = NULL;
    pthread_mutex_unlock(&iw_registry_lock);
    for (; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
}

INT ImapRegisterTransport(const IMAPTRANSPORTTYPE *lpType)
{
    int rc;
    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return IMAP_ERROR;
    }
    rc = iw_registry_add(lpType, NULL);
    if (rc != 0) {
        iw_set_error((DWORD)rc);
        return IMAP_ERROR;
    }
    return 0;
}

INT ImapUnregisterTransport(LPCTSTR lpszName)
{
    struct iw_type_entry *e;
    int rc = 0;

    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return IMAP_ERROR;
    }
    if (lpszName == NULL) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    pthread_mutex_lock(&iw_registry_lock);
    e = iw_find_locked(lpszName);
    if (e == NULL) {
        rc = ST_ERROR_TRANSPORT_NOT_FOUND;
    } else if (e->refs > 0) {
        /* A live layer calls through this copy; pulling it would leave it dangling. */
        rc = ST_ERROR_TRANSPORT_IN_USE;
    } else {
        iw_unlink_locked(e);
    }
    pthread_mutex_unlock(&iw_registry_lock);
    if (rc != 0) {
        iw_set_error((DWORD)rc);
        return IMAP_ERROR;
    }
    free(e);
    return 0;
}
