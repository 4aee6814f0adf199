/* tls.h: the built-in TLS transport type. It depends on the SDK alone: its parameters
 * (imapwire_tls_params) carry every trust decision from the core's security module. */
#ifndef IW_TLS_H
#define IW_TLS_H

#include <imapwire/transport.h>

extern const imapwire_transport_type iw_transport_tls;

#endif /* IW_TLS_H */
