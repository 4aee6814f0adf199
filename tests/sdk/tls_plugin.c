/* tls_plugin.c: the library's own src/transports/tls.c built as a plugin, against the
 * SDK and OpenSSL only, so a test can prove the tls type has no private door. */
#include "../../src/transports/tls.h"

__attribute__((visibility("default")))
const unsigned imapwire_plugin_abi = IMAPWIRE_TRANSPORT_ABI;

__attribute__((visibility("default")))
int imapwire_plugin_init(const imapwire_host_api *host)
{
    if ((host->abi_version >> 16) != IMAPWIRE_TRANSPORT_ABI_MAJOR)
        return ST_ERROR_PLUGIN_VERSION;
    return host->register_transport(&iw_transport_tls);
}
