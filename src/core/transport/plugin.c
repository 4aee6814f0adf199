/* plugin.c: ImapLoadPlugin: finds a plugin file, dlopens it privately, checks its ABI
 * and lets it register its transport types; plugins stay loaded until Uninitialize. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chain.h"

#ifndef IMAPWIRE_PLUGIN_DIR
#define IMAPWIRE_PLUGIN_DIR "/usr/local/lib/imapwire/plugins"
#endif

struct iw_plugin {
    void             *dl;
    struct iw_plugin *next;
};

static pthread_mutex_t iw_plugin_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iw_plugin *iw_plugins;

static struct iw_plugin *iw_plugin_loaded_locked(void *dl)
{
    struct iw_plugin *p;
    for (p = iw_plugins; p != NULL; p = p->next)
        if (p->dl == dl)
            return p;
    return NULL;
}

/* <directory of this library>/imapwire/plugins, so an install tree that was moved (or
 * installed with another prefix) still finds its own plugins; "" if unknown. */
static void iw_plugin_dir_beside_library(char *out, size_t size)
{
    Dl_info info;
    const char *slash;
    out[0] = '\0';
    if (dladdr((void *)iw_plugin_dir_beside_library, &info) == 0 || info.dli_fname == NULL)
        return;
    slash = strrchr(info.dli_fname, '/');
    if (slash != NULL && (size_t)(slash - info.dli_fname) + 20 < size)
        snprintf(out, size, "%.*s/imapwire/plugins", (int)(slash - info.dli_fname),
                 info.dli_fname);
}

/* A bare name is looked for as NAME.so in IMAPWIRE_PLUGIN_PATH, then the install dir,
 * then beside the library. */
static int iw_plugin_find(const char *name, char *out, size_t size)
{
    const char *env = secure_getenv("IMAPWIRE_PLUGIN_PATH");
    char dirs[4096], beside[1024];
    char *save = NULL, *dir;

    if (strlen(name) > 64 || strchr(name, '.') != NULL)
        return ST_ERROR_INVALID_PARAMETER;
    iw_plugin_dir_beside_library(beside, sizeof beside);
    snprintf(dirs, sizeof dirs, "%s%s%s%s%s", env ? env : "", env ? ":" : "", IMAPWIRE_PLUGIN_DIR,
             beside[0] ? ":" : "", beside);
    for (dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        int n = snprintf(out, size, "%s/%s.so", dir, name);
        if (n > 0 && (size_t)n < size && access(out, R_OK) == 0)
            return 0;
    }
    return ST_ERROR_PLUGIN_LOAD_FAILED;
}

int iw_plugin_load(const char *path_or_name)
{
    char path[PATH_MAX];
    void *dl;
    const unsigned *abi;
    imapwire_plugin_init_fn init;
    struct iw_plugin *p = NULL;
    int rc;

    if (path_or_name == NULL || *path_or_name == '\0')
        return ST_ERROR_INVALID_PARAMETER;
    if (strchr(path_or_name, '/') != NULL) {
        if (strlen(path_or_name) >= sizeof path)
            return ST_ERROR_INVALID_PARAMETER;
        iw_strlcpy(path, path_or_name, sizeof path);
    } else if ((rc = iw_plugin_find(path_or_name, path, sizeof path)) != 0) {
        return rc;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        /* dlerror's words: a missing file, a missing library, a wrong architecture */
        const char *why = dlerror();
        iw_errinfo_note(ST_ERROR_PLUGIN_LOAD_FAILED, IMAP_STAGE_FILE, path, why);
        return ST_ERROR_PLUGIN_LOAD_FAILED;
    }
    pthread_mutex_lock(&iw_plugin_lock);
    if ((p = iw_plugin_loaded_locked(dl)) != NULL) {
        /* Loading twice is harmless: drop the extra dlopen reference, and let init put
         * back any of its types that were unregistered meanwhile (what is still there
         * is re-registered as a no-op). */
        *(void **)(&init) = dlsym(dl, IMAPWIRE_PLUGIN_INIT_SYMBOL);
        rc = 0;
        if (init != NULL) {
            iw_registry_set_loader(p);
            rc = init(&iw_host_api);
            iw_registry_set_loader(NULL);
        }
        pthread_mutex_unlock(&iw_plugin_lock);
        dlclose(dl);
        return rc;
    }
    abi = (const unsigned *)dlsym(dl, "imapwire_plugin_abi");
    *(void **)(&init) = dlsym(dl, IMAPWIRE_PLUGIN_INIT_SYMBOL);
    if (abi != NULL && (*abi >> 16) != IMAPWIRE_TRANSPORT_ABI_MAJOR) {
        rc = ST_ERROR_PLUGIN_VERSION;
        iw_errinfo_note((DWORD)rc, IMAP_STAGE_FILE, path, "the plugin was built for another "
                        "major version of the transport SDK");
    } else if (init == NULL) {
        rc = ST_ERROR_PLUGIN_LOAD_FAILED;
        iw_errinfo_note((DWORD)rc, IMAP_STAGE_FILE, path, "the file exports no "
                        IMAPWIRE_PLUGIN_INIT_SYMBOL);
    }
    else if ((p = calloc(1, sizeof *p)) == NULL)
        rc = ST_ERROR_OUT_OF_MEMORY;
    else {
        iw_registry_set_loader(p);
        rc = init(&iw_host_api);
        iw_registry_set_loader(NULL);
        if (rc != 0)
            iw_registry_remove_owner(p);
    }
    if (rc == 0) {
        p->dl = dl;
        p->next = iw_plugins;
        iw_plugins = p;
    }
    pthread_mutex_unlock(&iw_plugin_lock);
    if (rc != 0) {
        free(p);
        dlclose(dl);
    }
    return rc;
}

void iw_plugins_unload_all(void)
{
    struct iw_plugin *p, *next;
    pthread_mutex_lock(&iw_plugin_lock);
    p = iw_plugins;
    iw_plugins = NULL;
    pthread_mutex_unlock(&iw_plugin_lock);
    for (; p != NULL; p = next) {
        next = p->next;
        dlclose(p->dl);
        free(p);
    }
}

INT ImapLoadPlugin(LPCTSTR lpszPath)
{
    int rc;
    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return IMAP_ERROR;
    }
    iw_errinfo_take_pending(NULL, 0);
    rc = iw_plugin_load(lpszPath);
    if (rc != 0) {
        iw_set_error((DWORD)rc);
        return IMAP_ERROR;
    }
    return 0;
}
