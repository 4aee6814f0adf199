/* typeabi.c: a test plugin that passes the loader's check (no imapwire_plugin_abi symbol)
 * but registers a type stamped with another MAJOR: registration itself must refuse it. */
#include <imapwire/transport.h>

static const imapwire_transport_type future_type = {
    .abi_version = (unsigned)((IMAPWIRE_TRANSPORT_ABI_MAJOR + 1) << 16),
    .struct_size = sizeof(imapwire_transport_type),
    .name = "typeabi",
};

__attribute__((visibility("default")))
int imapwire_plugin_init(const imapwire_host_api *host)
{
    return host->register_transport(&future_type);
}
