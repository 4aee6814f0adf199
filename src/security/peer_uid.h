/* peer_uid.h: who owns the other end of a local connection: the check that keeps other
 * users of the machine off a port-forward (SO_PEERCRED, sock_diag, /proc/net/tcp). */
#ifndef IW_PEER_UID_H
#define IW_PEER_UID_H

#include <sys/types.h>

/* The uid owning the peer socket of the connected socket fd (AF_UNIX, or TCP whose peer
 * is on this machine; IPv4, IPv6, and IPv4 written as ::ffff:a.b.c.d on either end).
 * 0, or ST_ERROR_NETWORK_ERROR when the owner cannot be found. */
int iw_peer_uid(int fd, uid_t *uid);

/* The two ways for TCP, exposed so tests can check each: NETLINK_SOCK_DIAG asked for
 * the exact 4-tuple, and the /proc/net/tcp{,6} table iw_peer_uid falls back to. */
int iw_peer_uid_diag(int fd, uid_t *uid);
int iw_peer_uid_proc(int fd, uid_t *uid);

#endif /* IW_PEER_UID_H */
