/* tokenizer.c: splits IMAP text into tokens (RFC 3501 section 4 and 9) without ever looking
 * past the length it is given; every parser of server bytes and of caller commands uses it. */
#include <string.h>
#include <strings.h>
#include "client.h"
#include "tokenizer.h"

void iw_tok_init(iw_tokenizer *t, const iw_response *r)
{
    memset(t, 0, sizeof *t);
    t->d = r->data;
    t->len = r->len;
    t->r = r;
    if (r->rest != NULL && r->rest >= r->data && r->rest <= r->data + r->len)
        t->pos = (size_t)(r->rest - r->data);
}

void iw_tok_init_mem(iw_tokenizer *t, const char *p, size_t n)
{
    memset(t, 0, sizeof *t);
    t->d = p;
    t->len = n;
}

void iw_tok_init_command(iw_tokenizer *t, const char *p, size_t n)
{
    iw_tok_init_mem(t, p, n);
    t->command = 1;
}

/* A literal of a caller's command, as a server reads it: a server takes "{n}" CRLF as a
 * literal wherever a line ends so, and the bytes after it as the rest of the command.
 * So the head must stand where an argument may start, and exactly n bytes must follow
 * it, ending where an argument may end; a head at the end of the text is refused too (the
 * server would wait for bytes that never come). */
static int iw_command_literal_ok(const iw_tokenizer *t, size_t head, size_t at, size_t v)
{
    size_t end;
    if (head == 0 || (t->d[head - 1] != ' ' && t->d[head - 1] != '('))
        return 0;
    if (at < head + 2 || t->d[at - 2] != '\r' || v > t->len - at)
        return 0;
    end = at + v;
    return end == t->len || t->d[end] == ' ' || t->d[end] == ')';
}

/* RFC 3501 atom-specials plus the brackets, which are tokens of their own here so that
 * "BODY[1]<0>" and "[UIDNEXT 5]" split the same way everywhere. Bytes >= 0x80 are let
 * into atoms: a UTF8=ACCEPT server may send them. */
static int iw_atom_char(unsigned char ch)
{
    return ch > 0x20 && ch != 0x7f && ch != '(' && ch != ')' && ch != '{' && ch != '"' &&
           ch != '[' && ch != ']';
}

/* "{n}" or "{n+}" then CRLF (or a bare LF) at t->pos: the literal after it. */
static int iw_tok_literal(iw_tokenizer *t, iw_tok *out)
{
    size_t j = t->pos + 1, v = 0, digits = 0, at, avail;

    while (j < t->len && t->d[j] >= '0' && t->d[j] <= '9') {
        if (++digits > 10)
            return ST_ERROR_INVALID_RESPONSE;
        v = v * 10 + (size_t)(t->d[j] - '0');
        j++;
    }
    if (digits == 0)
        return ST_ERROR_INVALID_RESPONSE;
    if (j < t->len && t->d[j] == '+')
        j++;
    if (j >= t->len || t->d[j] != '}')
        return ST_ERROR_INVALID_RESPONSE;
    j++;
    if (j < t->len && t->d[j] == '\r')
        j++;
    if (j >= t->len || t->d[j] != '\n')
        return ST_ERROR_INVALID_RESPONSE;
    at = j + 1;
    if (t->command && !iw_command_literal_ok(t, t->pos, at, v))
        return ST_ERROR_INVALID_RESPONSE;
    memset(out, 0, sizeof *out);
    out->type = IW_TOK_LITERAL;
    out->n = v;
    out->at = at;
    out->head = t->pos;
    avail = t->len - at;
    if (t->r != NULL && iw_literal_span(t->r, at, v) == 0 && v > 0) {
        out->gone = 1;                 /* its bytes are in the caller's destination */
        t->pos = at;
        return 0;
    }
    if (avail == 0 && v > 0) {
        out->pending = 1;              /* a hook's head ends where the literal starts */
        t->pos = at;
        return 0;
    }
    /* only a literal held here must be within the reader's limit: one on its way or
     * gone was sized by the reader (a stream may take one past it) */
    if (v > avail || v > IW_MAX_LITERAL)
        return ST_ERROR_INVALID_RESPONSE;
    out->p = t->d + at;
    t->pos = at + v;
    return 0;
}

static int iw_tok_quoted(iw_tokenizer *t, iw_tok *out)
{
    size_t j = t->pos + 1;
    while (j < t->len) {
        char ch = t->d[j];
        if (ch == '"') {
            memset(out, 0, sizeof *out);
            out->type = IW_TOK_QUOTED;
            out->p = t->d + t->pos + 1;
            out->n = j - t->pos - 1;
            out->at = t->pos + 1;
            t->pos = j + 1;
            return 0;
        }
        if (ch == '\r' || ch == '\n' || ch == '\0')
            return ST_ERROR_INVALID_RESPONSE;
        if (ch == '\\') {
            /* RFC 3501 quoted-specials are the only escapes */
            if (j + 1 >= t->len || (t->d[j + 1] != '\\' && t->d[j + 1] != '"'))
                return ST_ERROR_INVALID_RESPONSE;
            j++;
        }
        j++;
    }
    return ST_ERROR_INVALID_RESPONSE;
}

int iw_tok_next(iw_tokenizer *t, iw_tok *out)
{
    unsigned char ch;
    size_t start;

    /* SP separates tokens; a tab too, as some servers put one in capability lists */
    while (t->pos < t->len && (t->d[t->pos] == ' ' || t->d[t->pos] == '\t'))
        t->pos++;
    memset(out, 0, sizeof *out);
    out->at = t->pos;
    if (t->pos >= t->len)
        return 0;                      /* IW_TOK_END */
    ch = (unsigned char)t->d[t->pos];
    if ((ch == '\r' || ch == '\n') && t->command)
        return ST_ERROR_INVALID_RESPONSE;      /* a command's only line end is its last */
    if (ch == '\r' || ch == '\n') {
        /* a line end outside a literal's head can only be the response's last */
        if (ch == '\r' && (t->pos + 1 >= t->len || t->d[t->pos + 1] != '\n'))
            return ST_ERROR_INVALID_RESPONSE;
        return 0;                      /* IW_TOK_END; the position stays on it */
    }
    switch (ch) {
    case '(':
        if (t->depth >= IW_TOK_MAX_DEPTH)
            return ST_ERROR_INVALID_RESPONSE;
        t->depth++;
        out->type = IW_TOK_LPAREN;
        break;
    case ')':
        if (t->depth == 0)
            return ST_ERROR_INVALID_RESPONSE;
        t->depth--;
        out->type = IW_TOK_RPAREN;
        break;
    case '[':
        out->type = IW_TOK_LBRACKET;
        break;
    case ']':
        out->type = IW_TOK_RBRACKET;
        break;
    case '"':
        return iw_tok_quoted(t, out);
    case '{':
        return iw_tok_literal(t, out);
    default:
        if (!iw_atom_char(ch))
            return ST_ERROR_INVALID_RESPONSE;
        start = t->pos;
        while (t->pos < t->len && iw_atom_char((unsigned char)t->d[t->pos]))
            t->pos++;
        out->type = IW_TOK_ATOM;
        out->p = t->d + start;
        out->n = t->pos - start;
        if (iw_tok_is(out, "NIL"))
            out->type = IW_TOK_NIL;
        return 0;
    }
    out->p = t->d + t->pos;
    out->n = 1;
    t->pos++;
    return 0;
}

int iw_tok_peek(const iw_tokenizer *t, iw_tok *out)
{
    iw_tokenizer copy = *t;
    return iw_tok_next(&copy, out);
}

void iw_tok_text(iw_tokenizer *t, const char **p, size_t *n)
{
    size_t e;
    if (t->pos < t->len && t->d[t->pos] == ' ')
        t->pos++;
    for (e = t->pos; e < t->len && t->d[e] != '\r' && t->d[e] != '\n'; e++)
        ;
    *p = t->d + t->pos;
    *n = e - t->pos;
    t->pos = e;
}

int iw_tok_skip_to(iw_tokenizer *t, int close)
{
    int depth = t->depth, brackets = close == IW_TOK_RBRACKET ? 1 : 0;
    iw_tok k;

    /* each turn consumes at least one byte, so this ends within len turns */
    for (;;) {
        int rc = iw_tok_next(t, &k);
        if (rc != 0)
            return rc;
        if (k.type == IW_TOK_END || k.pending)
            return ST_ERROR_INVALID_RESPONSE;
        if (close == IW_TOK_RPAREN && k.type == IW_TOK_RPAREN && t->depth == depth - 1)
            return 0;
        if (close == IW_TOK_RBRACKET) {
            if (k.type == IW_TOK_LBRACKET)
                brackets++;
            else if (k.type == IW_TOK_RBRACKET && --brackets == 0 && t->depth == depth)
                return 0;
        }
    }
}

int iw_tok_is(const iw_tok *k, const char *w)
{
    size_t n = strlen(w);
    return (k->type == IW_TOK_ATOM || k->type == IW_TOK_NIL) && k->n == n &&
           strncasecmp(k->p, w, n) == 0;
}

int iw_tok_number(const iw_tok *k, uint32_t *v)
{
    uint64_t x = 0;
    size_t i;
    if (k->type != IW_TOK_ATOM || k->n == 0 || k->n > 10)
        return 0;
    for (i = 0; i < k->n; i++) {
        if (k->p[i] < '0' || k->p[i] > '9')
            return 0;
        x = x * 10 + (uint64_t)(k->p[i] - '0');
    }
    if (x > 0xffffffffu)
        return 0;
    *v = (uint32_t)x;
    return 1;
}

size_t iw_tok_unquote(const iw_tok *k, char *out)
{
    size_t i, o = 0;
    for (i = 0; i < k->n; i++) {
        if (k->p[i] == '\\' && i + 1 < k->n)
            i++;
        out[o++] = k->p[i];
    }
    return o;
}

int iw_resp_status(const iw_response *r)
{
    static const char *const words[] = { "OK", "NO", "BAD", "PREAUTH", "BYE" };
    iw_tokenizer t;
    iw_tok k;
    size_t i;

    iw_tok_init(&t, r);
    if (iw_tok_next(&t, &k) != 0 || k.type != IW_TOK_ATOM)
        return IW_STATUS_WORD_NONE;
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        if (iw_tok_is(&k, words[i]))
            return (int)i + 1;
    return IW_STATUS_WORD_NONE;
}

int iw_resp_code(const iw_response *r, iw_tokenizer *t, iw_tok *name)
{
    iw_tok k;
    if (iw_resp_status(r) == IW_STATUS_WORD_NONE)
        return 0;
    iw_tok_init(t, r);
    if (iw_tok_next(t, &k) != 0 || iw_tok_next(t, &k) != 0 || k.type != IW_TOK_LBRACKET ||
        iw_tok_next(t, name) != 0 || name->type != IW_TOK_ATOM)
        return 0;
    return 1;
}
