/* noentry.c: a test plugin without imapwire_plugin_init: a valid shared object that is
 * no plugin, so ImapLoadPlugin must fail with ST_ERROR_PLUGIN_LOAD_FAILED. */
#include <imapwire/transport.h>

/* The ABI symbol alone does not make a plugin. */
__attribute__((visibility("default")))
const unsigned imapwire_plugin_abi = IMAPWIRE_TRANSPORT_ABI;

__attribute__((visibility("default")))
int imapwire_noentry_marker(void)
{
    return 42;
}
