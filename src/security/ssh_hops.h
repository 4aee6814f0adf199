/* ssh_hops.h: the SSH hop list of lpszTunnelHost ("[user@]host[:port],..." as ssh -J
 * takes it): split and checked once, so every hop is named and bounded before any traffic. */
#ifndef IW_SSH_HOPS_H
#define IW_SSH_HOPS_H

#include <stddef.h>

/* ssh itself stops following ProxyJump chains well before this; a longer list is a
 * mistake or an attack on our stack, not a route. */
#define IW_SSH_MAX_HOPS 8

typedef struct iw_ssh_hop {
    char     host[256];            /* a DNS name or an address (IPv6 without brackets) */
    char     user[128];
    unsigned port;
} iw_ssh_hop;

/* Splits list into hops, the first being the one reached directly. A hop without a user
 * takes def_user, without a port def_port (0 means 22); a hop may carry an "ssh://"
 * prefix. 0 and *n, or ST_ERROR_INVALID_PARAMETER (empty hop, bad port, a character that
 * has no place in a host or user name, no user at all, more than max hops). */
int iw_ssh_hops_parse(const char *list, const char *def_user, unsigned def_port,
                      iw_ssh_hop *hops, int max, int *n);

/* The length of the text before the list's last hop, without its comma: 0 when the list
 * is one hop. That prefix is itself a valid list: the route to the last hop. */
size_t iw_ssh_hops_via_len(const char *list);

/* "user@host:port" of a hop, IPv6 in brackets, for traces and the next hop's route. */
void iw_ssh_hop_format(const iw_ssh_hop *h, char *out, size_t size);

#endif /* IW_SSH_HOPS_H */
