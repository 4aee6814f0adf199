/* script_transport.h: "script", an in-memory bottom transport (SDK only) that plays an
 * IMAP server from a script, so the connect machine and command engine run without sockets. */
#ifndef SCRIPT_TRANSPORT_H
#define SCRIPT_TRANSPORT_H

#include <stddef.h>
#include <imapwire/transport.h>

/* A script is a NULL-terminated array of steps, each a string whose first word says what:
 *   "S text"    the server sends text and CRLF; a leading "$" is the last client tag
 *   "B text"    the server sends text as it is (no CRLF added, no tag)
 *   "C text"    the client must send this line (without CRLF); "$ rest" takes the line's
 *               first word as the tag; a trailing '*' makes it a prefix match
 *   "TLS"       the client must start a TLS handshake (a record of type 22); everything
 *               it sends from then on is taken unread
 *   "AGAIN n"   the next n send/recv calls say IMAPWIRE_AGAIN
 *   "EOF"       the server closes once the bytes before it are read
 *   "RESET"     the connection is reset: recv and send fail once those bytes are read
 *   "FAIL n"    the same with the layer's error n (an ST_ERROR_* code)
 *   "STALL"     the server never says anything again (a timeout)
 *   "WAIT ms"   the server says nothing for ms milliseconds, then goes on
 *   "CONNECT n" (first step only) connect() needs n more calls ("CONNECT never": a stall)
 *   "REFUSE"    (first step only) connect() fails with ST_ERROR_CONNECTION_REFUSED
 * After the last step a LOGOUT is answered (BYE, OK) and then the stream ends; any other
 * line is recorded as unexpected. */
enum { ST_CUT_EOF = 1, ST_CUT_RESET = 2 };

typedef struct st_run {
    /* set by the test */
    const char *const *steps;
    size_t   chunk;            /* at most this many bytes per send/recv (0: any) */
    unsigned storm;            /* IMAPWIRE_AGAIN this many times before each real call */
    int      cut;              /* 0; ST_CUT_EOF or ST_CUT_RESET after cut_after ... */
    size_t   cut_after;        /* ... server bytes: the script stops there */
    /* filled by the transport */
    int      created, destroyed;
    size_t   pos;              /* steps taken */
    int      tls_seen;         /* a TLS record arrived where the script said TLS */
    int      logout_seen;
    unsigned agains;           /* IMAPWIRE_AGAIN answers given */
    size_t   server_bytes;     /* bytes the script queued for the client */
    char     wire[16384];      /* what the client wrote, in order (clear-text part) */
    size_t   wire_len;
    char     error[320];       /* the first way the client left the script, or "" */
} st_run;

/* Registers the type (again is fine): 0 or an ST_ERROR_*. */
int st_register(void);
/* The lpszTransport text that connects through run (valid while buf is). */
const char *st_spec(st_run *run, char *buf, size_t n);
/* Zeroes what the transport fills, keeping the test's settings. */
void st_reset(st_run *run);

#endif /* SCRIPT_TRANSPORT_H */
