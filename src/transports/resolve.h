/* resolve.h: addresses for the TCP transport: literals and localhost without DNS,
 * local-address parsing, and asynchronous resolution through c-ares. */
#ifndef IW_RESOLVE_H
#define IW_RESOLVE_H

#include <sys/socket.h>
#include "../core/runtime/runtime.h"

typedef struct iw_addr {
    struct sockaddr_storage sa;
    socklen_t               len;
} iw_addr;
#define IW_MAX_ADDRS 16

/* ---- resolve.c ---- */
int  iw_resolve_literal(const char *host, unsigned port, iw_addr *out, int max, int *count);
int  iw_parse_local_address(const char *text, iw_addr *out);
void iw_addr_text(const iw_addr *a, char *buf, size_t size);

/* ---- dns.c ---- */
typedef struct iw_dns iw_dns;
int  iw_dns_global_init(void);
void iw_dns_global_cleanup(void);
int  iw_dns_start(const char *host, unsigned port, const char *servers, unsigned timeout_ms,
                  iw_dns **out);
/* Non-blocking: *done = 1 with the addresses (families interleaved), or an ST_ERROR_*. */
int  iw_dns_step(iw_dns *d, iw_addr *out, int max, int *count, int *done);
/* Addresses in a successful answer before the IW_MAX_ADDRS cut (so a cut can be traced). */
int  iw_dns_found(const iw_dns *d);
void iw_dns_pollset(iw_dns *d, imapwire_pollset *ps);
void iw_dns_free(iw_dns *d);
int  iw_dns_servers_valid(const char *csv);

/* ---- tcp.c: the built-in bottom transport ---- */
extern const imapwire_transport_type iw_transport_tcp;

#endif /* IW_RESOLVE_H */
