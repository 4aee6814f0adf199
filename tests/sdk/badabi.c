/* badabi.c: a test plugin built for a transport ABI with another MAJOR: the loader must
 * refuse it (ST_ERROR_PLUGIN_VERSION) before its init can register anything. */
#include <imapwire/transport.h>

static const imapwire_transport_type badabi_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "badabi",
};

/* What a plugin from a future, incompatible SDK would export. */
__attribute__((visibility("default")))
const unsigned imapwire_plugin_abi = (unsigned)((IMAPWIRE_TRANSPORT_ABI_MAJOR + 1) << 16);

/* Must never run: if it did, "badabi" would show up in the registry, which the test checks. */
__attribute__((visibility("default")))
int imapwire_plugin_init(const imapwire_host_api *host)
{
    return host->register_transport(&badabi_type);
}
