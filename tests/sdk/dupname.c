/* dupname.c: a test plugin whose init registers a fresh type, then one named "tcp" that
 * exists: the error must reach ImapLoadPlugin and the fresh type must not stay behind. */
#include <imapwire/transport.h>

static const imapwire_transport_type fresh_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "dupname-fresh",
};

static const imapwire_transport_type clash_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "tcp",
};

__attribute__((visibility("default")))
int imapwire_plugin_init(const imapwire_host_api *host)
{
    int rc = host->register_transport(&fresh_type);
    if (rc != 0)
        return rc;
    /* The half-done state a careless plugin leaves: the loader has to clean it up. */
    return host->register_transport(&clash_type);
}
