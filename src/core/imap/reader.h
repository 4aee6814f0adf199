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
    size_t      gone_at;       /* 0, or where the one literal whose bytes went to a hook's
                                  destination would start in data (its head stays) */
    int         all_gone;      /* every literal's bytes went to the hook (heads stay) */
} iw_response;

/* Bytes in r->data of a literal of n announced by the line piece whose LF ends just
 * before data offset at: none when its bytes went elsewhere. */
static inline size_t iw_literal_span(const iw_response *r, size_t at, size_t n)
{
    return r->all_gone || (r->gone_at != 0 && at == r->gone_at) ? 0 : n;
}

/* Where a hook sends a literal: kept in the response (INLINE), received straight into
 * p (TO, p holds the whole size), received and dropped (DROP), or handed to piece in
 * order as it arrives, through p as a scratch of cap bytes (STREAM). */
enum iw_lit_mode { IW_LIT_INLINE = 0, IW_LIT_TO, IW_LIT_DROP, IW_LIT_STREAM };
typedef struct iw_lit_dest {
    int    mode;
    char  *p;
    size_t cap;
    void (*piece)(void *arg, const char *p, size_t n);
    void  *piece_arg;
} iw_lit_dest;
/* Asked once a literal's size is known, with the response so far (through the LF of the
 * line that announces it); 0 (dest filled in) or an ST_ERROR_*. over: the size is past
 * the reader's limits, and only STREAM (which holds none of it) may take it. At most one
 * literal of a response leaves it, unless the hook was set for all (then every literal
 * must leave: STREAM or DROP). */
typedef int (*iw_lit_hook)(void *arg, const iw_response *head, size_t size, int over,
                           iw_lit_dest *d);

typedef struct iw_reader {
    char    *buf;
    size_t   cap, len;         /* allocated, held */
    size_t   consumed;         /* bytes of the last returned response, dropped next call */
    size_t   scan;             /* next byte to examine */
    size_t   line_start;       /* start of the current line piece */
    size_t   literal_left;     /* literal bytes still expected */
    unsigned literals;
    size_t   max_line, max_literal, max_response;
    iw_lit_hook hook;          /* NULL: every literal stays in buf */
    void    *hook_arg;
    int      div_mode;         /* the literal being received elsewhere: IW_LIT_* */
    iw_lit_dest div;
    size_t   div_size, div_left;
    size_t   div_counted;      /* its bytes that count towards the response limit */
    size_t   gone_at;          /* as in iw_response, for the response being read */
    int      all;              /* the hook takes every literal (iw_reader_set_hook_all) */
} iw_reader;

/* 1 and *size when a line piece (without CRLF) ends in {n} or {n+}; 0 if not; -1 if
 * the number is beyond any size. */
int iw_literal_size(const char *s, size_t n, size_t *size);
void iw_reader_init(iw_reader *r);
void iw_reader_free(iw_reader *r);
/* Routes literals through hook from now on (NULL: none); a literal being received
 * elsewhere is abandoned (the stream is then out of step: only after an error). */
void iw_reader_set_hook(iw_reader *r, iw_lit_hook hook, void *arg);
/* As iw_reader_set_hook, for a hook that sends every literal of every response away
 * (a streamed command): responses then hold their line pieces only (all_gone). */
void iw_reader_set_hook_all(iw_reader *r, iw_lit_hook hook, void *arg);
/* Between commands: with nothing held beyond the last response, the buffer is freed
 * (the next read allocates IW_MIN_BUF again), so an idle connection keeps none. The
 * last response's data is invalid afterwards. */
void iw_reader_rest(iw_reader *r);
/* Bytes allocated for the buffer (the footprint at rest). */
size_t iw_reader_capacity(const iw_reader *r);
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
