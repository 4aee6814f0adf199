/* init.c: the counted, thread-safe ImapInitialize/ImapUninitialize pair. The first call
 * warms OpenSSL and registers the built-in transports; the last one frees every handle. */
#include <pthread.h>
#include "../imap/client.h"
#include "../runtime/loop.h"
#include "../../security/tls_policy.h"
#include "../../transports/forward.h"
#include "../../transports/resolve.h"
#include "../../transports/ssh.h"
#include "../../transports/tls.h"

static pthread_mutex_t iw_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int iw_init_count;

static void iw_free_handle_obj(int kind, void *obj)
{
    if (kind == IW_KIND_CLIENT) {
        iw_async_detach(obj);
        iw_client_free(obj);
    }
    else if (kind == IW_KIND_FORWARD)
        iw_forward_close(obj);
}

BOOL ImapInitialize(LPCTSTR lpszLicenseKey, LPVOID lpReserved)
{
    int rc = 0, dns = 0, ssh = 0;

    IW_UNUSED(lpszLicenseKey);
    IW_UNUSED(lpReserved);
    pthread_mutex_lock(&iw_init_lock);
    if (iw_init_count == 0) {
        /* OpenSSL's once-only set-up happens here or never: see tls_warmup.c */
        rc = iw_tls_warmup();
        if (rc == 0)
            rc = iw_dns_global_init();
        dns = rc == 0;
        if (rc == 0)
            rc = iw_ssh_global_init();
        ssh = dns && rc == 0;
    }
    if (rc == 0 && iw_init_count == 0) {
        /* Built-ins go through the same public path a plugin's types take. */
        rc = iw_registry_add(&iw_transport_tcp, NULL);
        if (rc == ST_ERROR_TRANSPORT_EXISTS)
            rc = 0;
        if (rc == 0)
            rc = iw_registry_add(&iw_transport_tls, NULL);
        if (rc == ST_ERROR_TRANSPORT_EXISTS)
            rc = 0;
        if (rc == 0)
            rc = iw_registry_add(&iw_transport_ssh, NULL);
        if (rc == ST_ERROR_TRANSPORT_EXISTS)
            rc = 0;
    }
    if (rc == 0) {
        iw_set_initialized(++iw_init_count);
    } else if (iw_init_count == 0) {
        /* a first call that failed (an allocation) leaves nothing behind: the next one
         * starts from scratch, and c-ares's and libssh2's init counts stay balanced */
        iw_registry_shutdown();
        if (ssh)
            iw_ssh_global_cleanup();
        if (dns)
            iw_dns_global_cleanup();
    }
    pthread_mutex_unlock(&iw_init_lock);
    if (rc != 0) {
        iw_set_error((DWORD)rc);
        return FALSE;
    }
    return TRUE;
}

BOOL ImapUninitialize(VOID)
{
    pthread_mutex_lock(&iw_init_lock);
    if (iw_init_count == 0) {
        pthread_mutex_unlock(&iw_init_lock);
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return FALSE;
    }
    if (iw_init_count == 1 && iw_callbacks_inside()) {
        /* From a callback (an event on the loop thread, a trace or response inside a
         * call): the loop cannot join itself, and the running call's client, chain and
         * TLS context would be freed under it. */
        pthread_mutex_unlock(&iw_init_lock);
        iw_set_error(ST_ERROR_IN_PROGRESS);
        return FALSE;
    }
    if (iw_init_count == 1) {
        /* Handles first: their layers hold registry references and plugin code. */
        iw_handles_shutdown(iw_free_handle_obj);
        /* no forward is left: the loop thread ends with nothing to do */
        iw_loop_shutdown();
        iw_registry_shutdown();
        iw_plugins_unload_all();
        iw_tls_shutdown();
        iw_dns_global_cleanup();
        iw_ssh_global_cleanup();
        iw_body_pool_drain();
    }
    iw_set_initialized(--iw_init_count);
    pthread_mutex_unlock(&iw_init_lock);
    return TRUE;
}
