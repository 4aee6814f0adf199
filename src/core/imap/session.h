/* session.h: the session calls behind ImapLogin, ImapCommand, ImapSelectMailbox and
 * ImapGetMessage; each returns 0 or an ST_ERROR_* code. */
#ifndef IW_SESSION_H
#define IW_SESSION_H

#include "client.h"

int iw_session_login(iw_client *c, unsigned type, const char *user, const char *pass);
/* One command with its tagged reply in result; proc (may be NULL) gets each untagged
 * response. CR and LF only inside literals ({n} CRLF, then n bytes). */
int iw_session_command(iw_client *c, const char *text, IMAPRESPONSEPROC proc, void *param,
                       char *result, size_t max);
/* As iw_session_command, each untagged response to fn in pieces (ImapCommandStream): the
 * line text up to and with each literal's head, that literal's bytes (at most
 * IW_STREAM_CHUNK a piece) as they arrive, and the rest (IMAP_PIECE_END), no final CRLF.
 * Literals bypass the reader's 256 MiB limit (up to 4 GiB - 1): none is held. */
typedef void (*iw_piece_fn)(void *arg, const IMAPRESPONSEPIECE *piece);
int iw_session_command_stream(iw_client *c, const char *text, iw_piece_fn fn, void *arg,
                              char *result, size_t max);
/* FETCH BODY[...] of message id in one untagged response: body (malloc'd, NUL after
 * len bytes) once found; 0, or ST_ERROR_* for a malformed or oversized answer. With dest
 * set, a literal body is received into dest instead (body stays NULL). */
struct iw_fetch {
    unsigned id;
    int      uid;                  /* id is a UID: UID FETCH, matched by its UID item */
    const char *section;           /* the BODY[section] asked for ("" the whole message);
                                      NULL: the first BODY[...] of any section */
    char    *body;
    size_t   len;
    int      found;
    char    *dest;                 /* the caller's buffer, or NULL */
    size_t   dest_cap;
    int      too_small;            /* the body (len bytes) did not fit dest_cap */
    void   (*piece)(void *arg, const char *p, size_t n);   /* set: stream the body */
    void    *piece_arg;
    char    *chunk;                /* the scratch a streamed body passes through */
};
#define IW_STREAM_CHUNK (64u << 10)   /* the largest piece of a streamed body */
int iw_fetch_parse(const iw_response *r, struct iw_fetch *f);
/* The wire form of ImapCommand's text (see session.c): 0 or ST_ERROR_INVALID_PARAMETER;
 * cuts (IW_MAX_CUTS of them) where a synchronising literal waits for "+", first_line the
 * length of the wire text up to the end of the first literal's head ((size_t)-1 if the
 * text has no literal): what the trace shows of it. */
int iw_command_wire(const char *text, size_t len, int plus, int minus, iw_sb *out,
                    size_t *cuts, int *ncuts, size_t *first_line);
/* SELECT's untagged data into mb (which the caller zeroed): EXISTS, RECENT, FLAGS and the
 * UNSEEN, UIDVALIDITY and UIDNEXT codes; anything else is left alone. Always 0. */
int iw_select_parse(const iw_response *r, IMAPMAILBOX *mb);
int iw_session_select(iw_client *c, const char *mailbox, IMAPMAILBOX *mb);
/* dest NULL: *body gets a malloc'd copy (NUL after *len bytes). dest set: the body is
 * received into dest[0..cap) and *len is its length, or ST_ERROR_BUFFER_TOO_SMALL with
 * *len the length it needs (the connection stays usable). */
int iw_session_fetch(iw_client *c, unsigned id, int uid, unsigned part, char *dest, size_t cap,
                     char **body, size_t *len);
/* The body to piece in order as it arrives (pieces of at most IW_STREAM_CHUNK bytes; a
 * literal past the 256 MiB limit is allowed, up to 4 GiB - 1), *len its length. */
int iw_session_fetch_stream(iw_client *c, unsigned id, int uid, unsigned part,
                            void (*piece)(void *arg, const char *p, size_t n), void *arg,
                            size_t *len);

#endif /* IW_SESSION_H */
