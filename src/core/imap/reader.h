/* reader.h: the incremental IMAP response reader (lines, literals, limits).
 * It turns bytes from the top layer into whole responses without unbounded memory. */
#ifndef IW_READER_H
#define IW_READER_H

#include "../transport/chain.h"

/* Nothing a server sends grows without bound. */
#define IW_MAX_LINE      (1u << 20)          /* one line piece of a response */
#define IW_MAX_LITERAL   (256u << 20)        /* one literal */
#define IW_MAX_RESPONSE  (260u << 20)        /* a whole response with its literals */

enum iw_resp_kind { IW_RESP_UNTAGGED = 1, IW_RESP_CONTINUATION, IW_RESP_TAGGED };

/* A whole response: its first line piece, literals and later line pieces, in data[0..len)
 * (not NUL-terminated: the next response may follow). Valid until the next call. */
typedef struct iw_response {
    int         kind;
    const char *data;
    size_t      len;
    const char *tag;           /* IW_RESP_TAGGED: the tag */
    size_t      tag_len;
    const char *rest;          /* after "* ", "+ " or "TAG ", up to the first CRLF */
    size_t      rest_len;
    size_t      line_len;      /* length of the first line piece without CRLF */
    unsigned    literals;      /* how many literals the response carries */
} iw_response;

typedef struct iw_reader {
    char    *buf;
    size_t   cap, len;         /* allocated, held */
    size_t   consumed;         /* bytes of the last returned response, dropped next call */
    size_t   scan;             /* next byte to examine */
    size_t   line_start;       /* start of the current line piece */
    size_t   literal_left;     /* literal bytes still expected */
    unsigned literals;
    size_t   max_line, max_literal, max_response;
} iw_reader;

/* 1 and *size when a line piece (without CRLF) ends in {n} or {n+}; 0 if not; -1 if
 * the number is beyond any size. */
int iw_literal_size(const char *s, size_t n, size_t *size);
void iw_reader_init(iw_reader *r);
void iw_reader_free(iw_reader *r);
/* Bytes held beyond the last returned response (STARTTLS injection check). */
size_t iw_reader_buffered(const iw_reader *r);
/* Drops everything held (after the last returned response too). */
void iw_reader_reset(iw_reader *r);
/* Appends bytes as if received (tests and in-memory transports). */
int iw_reader_feed(iw_reader *r, const void *p, size_t n);
/* Parses the next whole response out of what is held: 0 and *out, IMAPWIRE_AGAIN when
 * more bytes are needed, or ST_ERROR_RESPONSE_TOO_LARGE / ST_ERROR_INVALID_RESPONSE. */
int iw_reader_parse(iw_reader *r, iw_response *out);
/* Like iw_reader_parse, reading from the layer chain as needed; *rx counts bytes read.
 * End of stream is ST_ERROR_CONNECTION_CLOSED. */
int iw_reader_next(iw_reader *r, imapwire_layer *top, iw_response *out, uint64_t *rx);

#endif /* IW_READER_H */
