/* proxy_socket.h: what the proxy plugins (socks5, httpconnect) share: the argument
 * "[user:password@]host:port", the non-blocking TCP hop to the proxy, byte I/O, wiping. */
#ifndef IMAPWIRE_PROXY_SOCKET_H
#define IMAPWIRE_PROXY_SOCKET_H

#include <stddef.h>
#include <sys/socket.h>
#include <imapwire/transport.h>

/* RFC 1929 gives user name and password one length byte each; HTTP Basic gets the same
 * limits so both plugins accept the same arguments. */
#define PX_CRED_MAX 255

typedef struct px_hop {
    const char *name;                      /* "socks5" or "httpconnect", for traces */
    char        user[PX_CRED_MAX + 1];
    char        pass[PX_CRED_MAX + 1];     /* secret: wiped by px_forget_password */
    size_t      user_len, pass_len;
    int         auth;                      /* "user:password@" was given */
    char        text[64];                  /* the proxy as "host:port", for traces */
    struct sockaddr_storage addr[2];       /* "localhost" is 127.0.0.1, then ::1 */
    socklen_t   addr_len[2];
    int         naddr, next;               /* addresses, and the next one to try */
    int         fd;                        /* -1 when closed */
    int         up;                        /* the TCP hop to the proxy is connected */
    int         last_error;                /* ST_ERROR_* of the last failed attempt */
} px_hop;

/* Fills h from the transport arguments (no I/O, no name resolution). 0 or an ST_ERROR_*. */
int  px_hop_parse(imapwire_layer *l, px_hop *h, const char *name, const char *args);
/* Advances the TCP connect to the proxy: 0 with *up set when connected, IMAPWIRE_AGAIN,
 * or an ST_ERROR_*. Marks IMAPWIRE_MARK_CONNECTED when the hop is up. */
int  px_hop_connect(imapwire_layer *l, px_hop *h, int *up);
/* Non-blocking I/O on the hop: 0, IMAPWIRE_AGAIN or an ST_ERROR_*; recv's *got == 0 with
 * 0 is the end of the stream. */
int  px_send(px_hop *h, const void *buf, size_t len, size_t *sent);
int  px_recv(px_hop *h, void *buf, size_t len, size_t *got);
/* The socket's directions while connecting, or want once up. */
void px_hop_pollset(px_hop *h, unsigned want, imapwire_pollset *ps);
/* IMAPWIRE_QUERY_SOCKET and _PEER (the proxy's address), else IMAPWIRE_PASS. */
int  px_hop_query(px_hop *h, int what, void *out);
void px_hop_close(px_hop *h);
/* Overwrites n bytes in a way the compiler may not drop as a dead store. */
void px_wipe(void *p, size_t n);
void px_forget_password(px_hop *h);

#endif
