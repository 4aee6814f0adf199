/* tokenizer.h: the one tokenizer of IMAP text (atoms, quoted strings, literals, lists, NIL,
 * response-code brackets): server bytes as the reader returns them, and the caller's commands. */
#ifndef IW_TOKENIZER_H
#define IW_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "reader.h"

#define IW_TOK_MAX_DEPTH 64            /* nested lists deeper than this are refused */

enum iw_tok_type {
    IW_TOK_END = 0,   /* the end of the response (its final CRLF or its last byte) */
    IW_TOK_ATOM,      /* p[0..n) */
    IW_TOK_NIL,       /* the atom NIL, any case */
    IW_TOK_QUOTED,    /* p[0..n) between the quotes, escapes still in (iw_tok_unquote) */
    IW_TOK_LITERAL,   /* n bytes at p; p NULL when they are not in the data (see below) */
    IW_TOK_LPAREN, IW_TOK_RPAREN, IW_TOK_LBRACKET, IW_TOK_RBRACKET
};

typedef struct iw_tok {
    int         type;
    const char *p;
    size_t      n;
    size_t      at;        /* offset in the data of p (a literal: of its first byte) */
    int         pending;   /* a literal whose bytes are yet to come: the data ends at `at`
                              (a reader hook's head) */
    int         gone;      /* a literal whose bytes went to a hook's destination */
    size_t      head;      /* a literal: offset of its "{" */
} iw_tok;

typedef struct iw_tokenizer {
    const char         *d;
    size_t              len, pos;
    const iw_response  *r;             /* NULL over plain bytes */
    int                 depth;
    int                 command;       /* client-side mode (iw_tok_init_command) */
} iw_tokenizer;

/* Over r from its rest (after "* ", "+ " or the tag). */
void iw_tok_init(iw_tokenizer *t, const iw_response *r);
/* Over p[0..n) alone (no literal goes elsewhere). */
void iw_tok_init_mem(iw_tokenizer *t, const char *p, size_t n);
/* Client-side mode, over the text of one command without its tag and final CRLF (what a
 * caller gives ImapCommand): CR and LF only in a literal's head; a literal ("{n}" or
 * "{n+}", CRLF, exactly n bytes) only where an argument starts (after SP or "("), never
 * short, and followed by the end, SP or ")". Anything else is an error. */
void iw_tok_init_command(iw_tokenizer *t, const char *p, size_t n);
/* The next token: 0, or ST_ERROR_INVALID_RESPONSE for bytes no token starts with, an
 * unterminated quoted string, a literal longer than what follows it (or past the
 * reader's limit), a ")" with no "(" or lists nested deeper than IW_TOK_MAX_DEPTH.
 * Nothing at or past len is ever read. */
int iw_tok_next(iw_tokenizer *t, iw_tok *out);
/* The next token without moving on. */
int iw_tok_peek(const iw_tokenizer *t, iw_tok *out);
/* Human text up to the end of the current line piece (resp-text after a code, a SASL
 * challenge), after one space; the tokenizer moves past it. */
void iw_tok_text(iw_tokenizer *t, const char **p, size_t *n);
/* Skips what follows an LPAREN up to and including its RPAREN (or the code after an
 * LBRACKET up to its RBRACKET); 0 or ST_ERROR_INVALID_RESPONSE. */
int iw_tok_skip_to(iw_tokenizer *t, int close);

/* An atom equal to w (ASCII, any case). */
int iw_tok_is(const iw_tok *k, const char *w);
/* An atom of digits 0..4294967295: 1 and *v. */
int iw_tok_number(const iw_tok *k, uint32_t *v);
/* A quoted string's value into out (at least k->n bytes); its length. */
size_t iw_tok_unquote(const iw_tok *k, char *out);

/* The status word that starts r's rest: one of these, or IW_STATUS_WORD_NONE. */
enum iw_status_word { IW_STATUS_WORD_NONE = 0, IW_STATUS_WORD_OK, IW_STATUS_WORD_NO,
                      IW_STATUS_WORD_BAD, IW_STATUS_WORD_PREAUTH, IW_STATUS_WORD_BYE };
int iw_resp_status(const iw_response *r);
/* A status response's code "[NAME ...]": 1 with *name and t just after it (the code's
 * arguments follow, up to its RBRACKET); 0 when r has none. */
int iw_resp_code(const iw_response *r, iw_tokenizer *t, iw_tok *name);

#endif /* IW_TOKENIZER_H */
