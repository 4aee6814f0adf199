/* session.c: what a ready session does: log in, run a command, select a mailbox, fetch
 * a message. Each call is one command exchange driven to its tagged end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client.h"
#include "auth.h"
#include "session.h"
#include "command_table.h"
#include "tokenizer.h"

/* The tagged NO or BAD as the server worded it, for the error info: "NO " goes, the
 * rest ("[AUTHENTICATIONFAILED] Authentication failed.") is the peer's own words. */
static void iw_server_said(iw_client *c, const iw_cmd *cmd)
{
    const char *t = cmd->text;
    if (strncasecmp(t, "NO ", 3) == 0)
        t += 3;
    iw_errinfo_add(iw_ei(&c->rec.ei_work), 0, IMAP_STAGE_NONE, 0, NULL, NULL, NULL, t);
}

/* One login exchange to its end; *again set (and *next) for IMAP_AUTH_DEFAULT's second
 * try. */
static int iw_login_attempt(iw_client *c, unsigned type, const char *user, const char *pass,
                            int *again, unsigned *next)
{
    iw_login lg;
    int rc;

    *again = 0;
    rc = iw_login_start(c, &lg, type, user, pass);
    if (rc == 0)
        rc = iw_run_command(c, &lg.cmd);
    /* An OK is not enough for SCRAM: the server must have proved itself too. One that
     * did not is not talked to again (it claims a session it could not have opened). */
    if (rc == 0 && lg.cmd.status == IW_STATUS_OK && (rc = iw_login_finish(c, &lg)) != 0)
        iw_client_break(c, rc);
    if (rc == 0) {
        if (lg.cmd.status == IW_STATUS_OK) {
            c->sess.state = IW_AUTH;
            c->sess.auth_used = lg.type;    /* what ran, not what was asked (DEFAULT) */
            c->sess.auth_done = 1;
        } else {
            iw_server_said(c, &lg.cmd);
            rc = ST_ERROR_LOGIN_FAILED;
            if (type == IMAP_AUTH_DEFAULT)
                *again = iw_login_fallback(c, &lg, next);
        }
    }
    iw_login_clear(&lg);
    return rc;
}

int iw_session_login(iw_client *c, unsigned type, const char *user, const char *pass)
{
    unsigned gen = c->sess.capa_gen, next = 0;
    int rc, again;

    if (c->sess.state != IW_NOT_AUTH)
        return ST_ERROR_ALREADY_AUTHENTICATED;
    rc = iw_login_attempt(c, type, user, pass, &again, &next);
    /* once only: the second try (never IMAP_AUTH_DEFAULT) asks for no third */
    if (again)
        rc = iw_login_attempt(c, next, user, pass, &again, &next);
    if (rc == 0)
        rc = iw_capa_refresh(c, gen);
    iw_client_rest(c);
    return rc;
}

/* The caller's text is read as the server will read it (the tokenizer in its client-side
 * mode): one command whose verb is an atom, literals only at argument starts with all
 * their bytes, no other line end. It goes out as written, except each literal's head,
 * which takes the form the server's capabilities allow. */
int iw_command_wire(const char *text, size_t len, int plus, int minus, iw_sb *out,
                    size_t *cuts, int *ncuts, size_t *first_line)
{
    iw_tokenizer t;
    iw_tok k;
    size_t from = 0;
    int words = 0;

    *ncuts = 0;
    *first_line = (size_t)-1;
    iw_tok_init_command(&t, text, len);
    /* each token takes at least one byte: at most len turns */
    for (;;) {
        char head[32];
        int wait;
        if (iw_tok_next(&t, &k) != 0)
            return ST_ERROR_INVALID_PARAMETER;
        if (k.type == IW_TOK_END)
            break;
        /* the verb, which the command table judges, is a plain word */
        if (words++ == 0 && k.type != IW_TOK_ATOM)
            return ST_ERROR_INVALID_PARAMETER;
        if (k.type != IW_TOK_LITERAL)
            continue;
        if (k.head - from > IW_MAX_LINE)
            return ST_ERROR_INVALID_PARAMETER;
        /* RFC 7888: LITERAL+ takes any literal without a wait, LITERAL- up to 4096 bytes */
        wait = !(plus || (minus && k.n <= 4096));
        if (wait && *ncuts >= IW_MAX_CUTS)
            return ST_ERROR_INVALID_PARAMETER;
        iw_sb_add(out, text + from, k.head - from);
        snprintf(head, sizeof head, wait ? "{%zu}\r\n" : "{%zu+}\r\n", k.n);
        if (iw_sb_str(out, head) != 0)
            return out->err;
        if (*first_line == (size_t)-1)
            *first_line = out->len - 2;       /* up to the head, without its CRLF */
        if (wait)
            cuts[(*ncuts)++] = out->len;
        iw_sb_add(out, k.p, k.n);
        from = k.at + k.n;
    }
    if (words == 0 || t.depth != 0 || len - from > IW_MAX_LINE)
        return ST_ERROR_INVALID_PARAMETER;    /* no verb, a list left open, a long line */
    iw_sb_add(out, text + from, len - from);
    return out->err;
}

/* AUTHENTICATE sent through ImapCommand: the caller gave its initial response, if any;
 * a challenge after it is cancelled (RFC 3501 6.2.2), the one place "*" is an answer. */
static int iw_cancel_challenge(iw_client *c, const iw_response *r, void *arg)
{
    IW_UNUSED(r);
    IW_UNUSED(arg);
    iw_trace_line(c, IMAP_TRACE_SEND, "*", 1);
    return iw_queue(c, "*\r\n", 3, 0);
}

typedef struct iw_untagged_sink {
    IMAPRESPONSEPROC proc;
    void            *param;
} iw_untagged_sink;

/* Each untagged response to ImapCommandEx's caller as the server sent it, from "*",
 * literals inline, without its final CRLF. */
static int iw_deliver_untagged(iw_client *c, const iw_response *r, void *arg)
{
    iw_untagged_sink *u = arg;
    size_t n = r->len;
    if (n >= 2 && r->data[n - 2] == '\r' && r->data[n - 1] == '\n')
        n -= 2;
    else if (n >= 1 && r->data[n - 1] == '\n')
        n -= 1;
    if (n > 0xffffffffu)
        return ST_ERROR_RESPONSE_TOO_LARGE;
    u->proc(c->handle, r->data, (DWORD)n, u->param);
    return 0;
}

/* What refuses a command the grammar accepts, before it is sent. */
static int iw_command_refused(iw_client *c, const iw_command_row *row)
{
    if (row != NULL && row->refused != NULL) {
        char note[160];
        snprintf(note, sizeof note, "command: %s; not sent", row->refused);
        iw_client_note(c, note);
        return ST_ERROR_INVALID_PARAMETER;
    }
    /* RFC 3501 6.2.3, whichever call the LOGIN comes through. */
    if (row != NULL && strcmp(row->verb, "LOGIN") == 0 && iw_capa_has(c, "LOGINDISABLED")) {
        iw_client_note(c, "command: the server advertises LOGINDISABLED; LOGIN not sent");
        return ST_ERROR_LOGIN_FAILED;
    }
    return 0;
}

/* The line to trace in place of the command's own when it holds a secret or a literal,
 * written into redacted; NULL: trace the command as it is. */
static const char *iw_command_trace(const iw_command_row *row, const char *text, size_t n,
                                    const iw_sb *wire, size_t first_line, char *redacted,
                                    size_t size)
{
    if (row != NULL && row->secret) {
        iw_command_redact(row, text, n, redacted, size);
        return redacted;
    }
    if (first_line != (size_t)-1) {
        /* a literal's bytes are not traced: the line up to its head says enough */
        snprintf(redacted, size, "%.*s <literal>",
                 (int)(first_line < 200 ? first_line : 200), wire->p);
        return redacted;
    }
    return NULL;
}

/* A command that ran: its result text, the server's NO or BAD, or the state it leads to
 * (with the capabilities asked again after a login). */
static int iw_command_outcome(iw_client *c, const iw_cmd *cmd, const iw_command_row *row,
                              unsigned gen, char *result, size_t max)
{
    if (result != NULL && max > 0)
        iw_strlcpy(result, cmd->text, max);
    if (cmd->status != IW_STATUS_OK) {
        iw_server_said(c, cmd);
        return ST_ERROR_COMMAND_FAILED;
    }
    if (row != NULL && row->next_state >= 0) {
        int was = c->sess.state;
        c->sess.state = row->next_state;
        if (c->sess.state == IW_LOGOUT)
            iw_client_break(c, 0);
        if (was == IW_NOT_AUTH && c->sess.state == IW_AUTH)
            return iw_capa_refresh(c, gen);
    }
    return 0;
}

/* One command exchange: untagged responses to on_untagged (may be NULL); with hook set,
 * every literal of every response goes through it (a streamed command). */
static int iw_command_exchange(iw_client *c, const char *text,
                               int (*on_untagged)(iw_client *, const iw_response *, void *),
                               void *arg, iw_lit_hook hook, void *hook_arg,
                               char *result, size_t max)
{
    size_t n = strlen(text), cuts[IW_MAX_CUTS], first_line;
    const iw_command_row *row;
    unsigned gen = c->sess.capa_gen;
    char redacted[256];
    const char *trace;
    iw_sb wire = {0};
    iw_cmd cmd;
    int rc, ncuts = 0;

    memset(&cmd, 0, sizeof cmd);
    if (result != NULL && max > 0)
        result[0] = '\0';
    /* Parsed whole before anything is sent: text the grammar refuses leaves nothing. */
    rc = iw_command_wire(text, n, iw_capa_has(c, "LITERAL+"), iw_capa_has(c, "LITERAL-"),
                         &wire, cuts, &ncuts, &first_line);
    if (rc != 0) {
        iw_sb_free(&wire);
        iw_client_note(c, "command: not one command in IMAP syntax (a line end outside a "
                          "literal, or a literal without all its bytes); not sent");
        return rc;
    }
    row = iw_command_lookup(text, n);
    rc = iw_command_refused(c, row);
    if (rc != 0) {
        iw_sb_free(&wire);
        return rc;
    }
    trace = iw_command_trace(row, text, n, &wire, first_line, redacted, sizeof redacted);
    rc = iw_cmd_start(c, &cmd, wire.p, wire.len, cuts, ncuts, row != NULL && row->secret,
                      trace);
    iw_sb_free(&wire);
    cmd.on_untagged = on_untagged;     /* after the start, which clears the command */
    cmd.arg = arg;
    if (row != NULL && strcmp(row->verb, "AUTHENTICATE") == 0)
        cmd.on_continue = iw_cancel_challenge;
    if (hook != NULL)
        iw_reader_set_hook_all(&c->io.reader, hook, hook_arg);
    if (rc == 0)
        rc = iw_run_command(c, &cmd);
    /* after an error the reader may still point at the hook's scratch: it must forget */
    if (hook != NULL)
        iw_reader_set_hook(&c->io.reader, NULL, NULL);
    if (rc == 0)
        rc = iw_command_outcome(c, &cmd, row, gen, result, max);
    iw_cmd_clear(&cmd);
    iw_client_rest(c);
    return rc;
}

int iw_session_command(iw_client *c, const char *text, IMAPRESPONSEPROC proc, void *param,
                       char *result, size_t max)
{
    iw_untagged_sink sink = { proc, param };
    return iw_command_exchange(c, text, proc ? iw_deliver_untagged : NULL, &sink, NULL, NULL,
                               result, max);
}

/* ---- a command whose untagged responses are streamed in pieces ---- */

typedef struct iw_piece_sink {
    iw_client  *c;
    iw_piece_fn fn;
    void       *arg;
    DWORD       response;      /* the response being delivered, from 1 */
    int         open;          /* some of its pieces went out already */
    size_t      delivered;     /* bytes of its line pieces (in the reader's data) given */
    size_t      lit_size, lit_off;
    char       *chunk;         /* the scratch literal bytes are received into */
} iw_piece_sink;

static void iw_piece_out(iw_piece_sink *s, DWORD flags, const char *p, size_t n, size_t size,
                         size_t off)
{
    IMAPRESPONSEPIECE pc;
    memset(&pc, 0, sizeof pc);
    pc.dwSize = sizeof pc;
    pc.dwResponse = s->response;
    pc.dwFlags = flags;
    pc.lpData = p;
    pc.dwLength = (DWORD)n;
    pc.dwLiteralSize = (DWORD)size;
    pc.dwLiteralOffset = (DWORD)off;
    s->fn(s->arg, &pc);
}

static void iw_piece_begin(iw_piece_sink *s)
{
    if (!s->open) {
        s->response++;
        s->open = 1;
        s->delivered = 0;
    }
}

/* Literal bytes as the reader hands them over; a held read may exceed a piece. */
static void iw_piece_literal(void *arg, const char *p, size_t n)
{
    iw_piece_sink *s = arg;
    while (n > 0) {
        size_t k = n < IW_STREAM_CHUNK ? n : IW_STREAM_CHUNK;
        iw_piece_out(s, IMAP_PIECE_LITERAL, p, k, s->lit_size, s->lit_off);
        s->lit_off += k;
        p += k;
        n -= k;
    }
}

/* Each literal announced: the line text up to and with its head goes out first, then
 * its bytes are received into the scratch and handed on as they come. Literals of
 * tagged responses and continuations have no reader: dropped. */
static int iw_piece_hook(void *arg, const iw_response *head, size_t size, int over,
                         iw_lit_dest *d)
{
    iw_piece_sink *s = arg;
    IW_UNUSED(over);
    if (head->kind != IW_RESP_UNTAGGED) {
        d->mode = IW_LIT_DROP;
        return 0;
    }
    if (size > 0xffffffffu || head->len > 0xffffffffu)
        return ST_ERROR_RESPONSE_TOO_LARGE;    /* a size the piece cannot carry */
    if (s->chunk == NULL && (s->chunk = malloc(IW_STREAM_CHUNK)) == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    iw_piece_begin(s);
    iw_piece_out(s, 0, head->data + s->delivered, head->len - s->delivered, size, 0);
    s->delivered = head->len;
    s->lit_size = size;
    s->lit_off = 0;
    d->mode = IW_LIT_STREAM;
    d->p = s->chunk;
    d->cap = IW_STREAM_CHUNK;
    d->piece = iw_piece_literal;
    d->piece_arg = s;
    return 0;
}

/* The rest of the response after its last literal (all of it if it had none), without
 * the final CRLF, marked as its end. */
static int iw_piece_untagged(iw_client *c, const iw_response *r, void *arg)
{
    iw_piece_sink *s = arg;
    size_t n = r->len;
    IW_UNUSED(c);
    if (n >= 2 && r->data[n - 2] == '\r' && r->data[n - 1] == '\n')
        n -= 2;
    else if (n >= 1 && r->data[n - 1] == '\n')
        n -= 1;
    if (n > 0xffffffffu)
        return ST_ERROR_RESPONSE_TOO_LARGE;
    iw_piece_begin(s);
    if (n < s->delivered)
        n = s->delivered;
    iw_piece_out(s, IMAP_PIECE_END, r->data + s->delivered, n - s->delivered, 0, 0);
    s->open = 0;
    s->delivered = 0;
    return 0;
}

int iw_session_command_stream(iw_client *c, const char *text, iw_piece_fn fn, void *arg,
                              char *result, size_t max)
{
    iw_piece_sink sink;
    int rc;

    memset(&sink, 0, sizeof sink);
    sink.c = c;
    sink.fn = fn;
    sink.arg = arg;
    rc = iw_command_exchange(c, text, iw_piece_untagged, &sink, iw_piece_hook, &sink,
                             result, max);
    free(sink.chunk);
    return rc;
}

/* ---- SELECT ---- */

/* The number token after a code's name ("[UIDNEXT 5]"), if it is one. */
static void iw_code_number(iw_tokenizer *t, DWORD *out)
{
    iw_tok k;
    uint32_t v;
    if (iw_tok_next(t, &k) == 0 && iw_tok_number(&k, &v))
        *out = v;
}

int iw_select_parse(const iw_response *r, IMAPMAILBOX *mb)
{
    iw_tokenizer t;
    iw_tok k, name;
    uint32_t v;

    if (r->kind != IW_RESP_UNTAGGED)
        return 0;
    if (iw_resp_code(r, &t, &name)) {
        /* a server that leaves one out (Courier omits UIDNEXT) leaves it 0 */
        if (iw_tok_is(&name, "UNSEEN"))
            iw_code_number(&t, &mb->dwFirstUnseen);
        else if (iw_tok_is(&name, "UIDVALIDITY"))
            iw_code_number(&t, &mb->dwUidValidity);
        else if (iw_tok_is(&name, "UIDNEXT"))
            iw_code_number(&t, &mb->dwUidNext);
        return 0;
    }
    iw_tok_init(&t, r);
    if (iw_tok_next(&t, &k) != 0)
        return 0;                      /* not data SELECT knows: someone else's concern */
    if (iw_tok_number(&k, &v)) {
        if (iw_tok_next(&t, &k) != 0)
            return 0;
        if (iw_tok_is(&k, "EXISTS"))
            mb->dwMessages = v;
        else if (iw_tok_is(&k, "RECENT"))
            mb->dwRecent = v;
    } else if (iw_tok_is(&k, "FLAGS")) {
        char flags[sizeof mb->szFlags];
        size_t o = 0;
        if (iw_tok_next(&t, &k) != 0 || k.type != IW_TOK_LPAREN)
            return 0;
        /* whole flags only: one cut in half would be a different flag */
        while (iw_tok_next(&t, &k) == 0 && k.type == IW_TOK_ATOM) {
            if (o + (o > 0) + k.n >= sizeof flags)
                continue;
            if (o > 0)
                flags[o++] = ' ';
            memcpy(flags + o, k.p, k.n);
            o += k.n;
        }
        if (k.type != IW_TOK_RPAREN)
            return 0;
        memcpy(mb->szFlags, flags, o);
        mb->szFlags[o] = '\0';
    }
    return 0;
}

static int iw_on_select(iw_client *c, const iw_response *r, void *arg)
{
    IW_UNUSED(c);
    return arg == NULL ? 0 : iw_select_parse(r, arg);
}

int iw_session_select(iw_client *c, const char *mailbox, IMAPMAILBOX *mb)
{
    iw_sb sb = {0}, name = {0};
    iw_cmd cmd;
    int rc;

    if (c->sess.state == IW_NOT_AUTH)
        return ST_ERROR_NOT_AUTHENTICATED;
    if (mb != NULL)
        memset(mb, 0, sizeof *mb);
    memset(&cmd, 0, sizeof cmd);
    /* modified UTF-7 is printable ASCII: a quoted string always carries it */
    rc = iw_mutf7_encode(mailbox, &name);
    if (rc == 0)
        rc = iw_sb_add(&name, "", 1);          /* a C string for the quoting */
    if (rc == 0) {
        iw_sb_str(&sb, "SELECT ");
        iw_sb_quoted(&sb, name.p);
    }
    iw_sb_free(&name);
    if (rc == 0)
        rc = sb.err ? sb.err : iw_cmd_start(c, &cmd, sb.p, sb.len, NULL, 0, 0, NULL);
    cmd.on_untagged = iw_on_select;
    cmd.arg = mb;
    if (rc == 0)
        rc = iw_run_command(c, &cmd);
    if (rc == 0) {
        if (cmd.status == IW_STATUS_OK) {
            c->sess.state = IW_SELECTED;
        } else {
            /* RFC 3501: a failed SELECT leaves no mailbox selected. */
            c->sess.state = IW_AUTH;
            iw_server_said(c, &cmd);
            rc = ST_ERROR_COMMAND_FAILED;
        }
    }
    iw_cmd_clear(&cmd);
    iw_sb_free(&sb);
    iw_client_rest(c);
    return rc;
}

/* ---- FETCH BODY.PEEK[...] ---- */

/* Finds message f->id's first BODY[f->section]<origin> value in r (a whole response, or
 * a reader hook's head, which ends where its last literal's bytes would start): 1 with
 * *val (LITERAL, QUOTED or NIL), 0 if r has none, or ST_ERROR_INVALID_RESPONSE. Another
 * section (BODY[HEADER] beside BODY[], BODY[2.MIME] beside BODY[2]) is another item. */
static int iw_fetch_find(const iw_response *r, const struct iw_fetch *f, iw_tok *val)
{
    iw_tokenizer t;
    iw_tok k;
    uint32_t n, id = f->id;

    memset(val, 0, sizeof *val);
    iw_tok_init(&t, r);
    /* by UID, the sequence number may be any: the UID item tells (servers send it first
     * for a UID FETCH; one that comes after the body is not waited for, since nothing but
     * our command asks for BODY[] on this connection) */
    if (iw_tok_next(&t, &k) != 0 || !iw_tok_number(&k, &n) || (!f->uid && n != id) ||
        iw_tok_next(&t, &k) != 0 || !iw_tok_is(&k, "FETCH"))
        return 0;
    if (iw_tok_next(&t, &k) != 0 || k.type != IW_TOK_LPAREN)
        return ST_ERROR_INVALID_RESPONSE;
    /* each turn takes at least one token, and each token at least one byte */
    for (;;) {
        int body, section = 0, ours = 1, is_uid;
        if (iw_tok_next(&t, &k) != 0 || k.type == IW_TOK_END)
            return ST_ERROR_INVALID_RESPONSE;
        if (k.type == IW_TOK_RPAREN)
            return 0;
        if (k.type != IW_TOK_ATOM)
            return ST_ERROR_INVALID_RESPONSE;
        body = iw_tok_is(&k, "BODY");
        is_uid = f->uid && iw_tok_is(&k, "UID");
        if (iw_tok_peek(&t, &k) != 0)
            return ST_ERROR_INVALID_RESPONSE;
        if (k.type == IW_TOK_LBRACKET) {
            section = 1;
            if (iw_tok_next(&t, &k) != 0 || iw_tok_peek(&t, &k) != 0)
                return ST_ERROR_INVALID_RESPONSE;
            if (f->section != NULL)
                ours = f->section[0] == '\0'
                           ? k.type == IW_TOK_RBRACKET
                           : k.type == IW_TOK_ATOM && k.n == strlen(f->section) &&
                                 memcmp(k.p, f->section, k.n) == 0;
            if (iw_tok_skip_to(&t, IW_TOK_RBRACKET) != 0 || iw_tok_peek(&t, &k) != 0)
                return ST_ERROR_INVALID_RESPONSE;
            if (k.type == IW_TOK_ATOM && k.p[0] == '<' && iw_tok_next(&t, &k) != 0)
                return ST_ERROR_INVALID_RESPONSE;
        }
        if (iw_tok_next(&t, val) != 0 || val->type == IW_TOK_END)
            return ST_ERROR_INVALID_RESPONSE;
        if (is_uid) {
            uint32_t u;
            if (!iw_tok_number(val, &u))
                return ST_ERROR_INVALID_RESPONSE;
            if (u != id)
                return 0;              /* another message's */
            continue;
        }
        if (body && section && ours) {
            if (val->type != IW_TOK_LITERAL && val->type != IW_TOK_QUOTED &&
                val->type != IW_TOK_NIL)
                return ST_ERROR_INVALID_RESPONSE;
            return 1;
        }
        if (val->pending)
            return 0;                  /* another item's literal is on its way */
        if (val->type == IW_TOK_LPAREN && iw_tok_skip_to(&t, IW_TOK_RPAREN) != 0)
            return ST_ERROR_INVALID_RESPONSE;
        if (val->type == IW_TOK_RPAREN || val->type == IW_TOK_RBRACKET ||
            val->type == IW_TOK_LBRACKET)
            return ST_ERROR_INVALID_RESPONSE;
    }
}

int iw_fetch_parse(const iw_response *r, struct iw_fetch *f)
{
    iw_tok v;
    int k;

    if (f->found)
        return 0;                      /* taken already (straight to its destination) */
    k = iw_fetch_find(r, f, &v);
    if (k != 1)
        return k;                      /* none (0) or the error: v is not set */
    if (v.type == IW_TOK_NIL)
        return 0;                      /* the part does not exist */
    if (v.pending || v.gone)
        return ST_ERROR_INVALID_RESPONSE;          /* a whole response has its bytes */
    f->body = iw_body_alloc(v.n + 1);
    if (f->body == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    if (v.type == IW_TOK_LITERAL) {
        memcpy(f->body, v.p, v.n);
        f->len = v.n;
    } else {
        f->len = iw_tok_unquote(&v, f->body);
    }
    f->body[f->len] = '\0';
    f->found = 1;
    return 0;
}

/* The reader asks where a literal goes once its size is known: the body we wait for
 * goes straight into the caller's buffer, or into one allocation of its size made
 * now, or to the caller's piece function through a scratch buffer, or (too big for the
 * caller's buffer) is read and dropped; any other stays. */
static int iw_fetch_hook(void *arg, const iw_response *head, size_t size, int over,
                         iw_lit_dest *d)
{
    struct iw_fetch *f = arg;
    iw_tok v;

    /* ours only when the body's value is the literal whose bytes are yet to come */
    if (f->found || head->kind != IW_RESP_UNTAGGED || iw_fetch_find(head, f, &v) != 1 ||
        v.type != IW_TOK_LITERAL || !v.pending || v.n != size)
        return 0;
    if (over && f->piece == NULL)
        return 0;                      /* the reader refuses it: past the limits */
    if (size > 0xffffffffu)
        return ST_ERROR_RESPONSE_TOO_LARGE;    /* a length the API cannot report */
    f->found = 1;
    f->len = size;
    if (f->piece != NULL) {
        f->chunk = malloc(IW_STREAM_CHUNK);
        if (f->chunk == NULL)
            return ST_ERROR_OUT_OF_MEMORY;
        d->mode = IW_LIT_STREAM;
        d->p = f->chunk;
        d->cap = IW_STREAM_CHUNK;
        d->piece = f->piece;
        d->piece_arg = f->piece_arg;
        return 0;
    }
    if (f->dest != NULL) {
        if (size > f->dest_cap) {
            f->too_small = 1;
            d->mode = IW_LIT_DROP;
            return 0;
        }
        d->mode = IW_LIT_TO;
        d->p = f->dest;
        return 0;
    }
    f->body = iw_body_alloc(size + 1); /* +1: the library's buffer ends with a NUL */
    if (f->body == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    f->body[size] = '\0';
    d->mode = IW_LIT_TO;
    d->p = f->body;
    return 0;
}

static int iw_on_fetch(iw_client *c, const iw_response *r, void *arg)
{
    IW_UNUSED(c);
    return iw_fetch_parse(r, arg);
}

/* One FETCH BODY.PEEK[...] of f->id with f's destination set; 0 once found. */
static int iw_fetch_run(iw_client *c, unsigned part, struct iw_fetch *f)
{
    char text[64], section[16] = "";
    iw_cmd cmd;
    int rc;

    if (c->sess.state == IW_NOT_AUTH)
        return ST_ERROR_NOT_AUTHENTICATED;
    if (f->id == 0)
        return ST_ERROR_INVALID_PARAMETER;
    memset(&cmd, 0, sizeof cmd);
    if (part != 0)
        snprintf(section, sizeof section, "%u", part);
    f->section = section;
    snprintf(text, sizeof text, "%sFETCH %u BODY.PEEK[%s]", f->uid ? "UID " : "", f->id,
             section);
    rc = iw_cmd_start(c, &cmd, text, strlen(text), NULL, 0, 0, NULL);
    cmd.on_untagged = iw_on_fetch;
    cmd.arg = f;
    iw_reader_set_hook(&c->io.reader, iw_fetch_hook, f);
    if (rc == 0)
        rc = iw_run_command(c, &cmd);
    /* after an error the reader may still point into dest: it must forget it */
    iw_reader_set_hook(&c->io.reader, NULL, NULL);
    if (rc == 0 && (cmd.status != IW_STATUS_OK || !f->found))
        rc = ST_ERROR_MESSAGE_NOT_FOUND;
    iw_cmd_clear(&cmd);
    free(f->chunk);
    f->chunk = NULL;
    f->section = NULL;                 /* it pointed here */
    iw_client_rest(c);
    return rc;
}

int iw_session_fetch(iw_client *c, unsigned id, int uid, unsigned part, char *dest,
                     size_t cap, char **body, size_t *len)
{
    struct iw_fetch f;
    int rc;

    *body = NULL;
    *len = 0;
    memset(&f, 0, sizeof f);
    f.id = id;
    f.uid = uid;
    f.dest = dest;
    f.dest_cap = dest != NULL ? cap : 0;
    rc = iw_fetch_run(c, part, &f);
    if (rc == 0 && dest != NULL && f.body != NULL) {
        /* a quoted string (or a literal the hook did not take) still needs its copy */
        if (f.len > cap)
            f.too_small = 1;
        else
            memcpy(dest, f.body, f.len);
    }
    if (rc == 0 && f.too_small)
        rc = ST_ERROR_BUFFER_TOO_SMALL;
    if (rc == 0 || rc == ST_ERROR_BUFFER_TOO_SMALL)
        *len = f.len;                  /* too small: the size it would need */
    if (rc == 0 && dest == NULL) {
        *body = f.body;
        f.body = NULL;
    }
    iw_body_release(f.body);
    return rc;
}

int iw_session_fetch_stream(iw_client *c, unsigned id, int uid, unsigned part,
                            void (*piece)(void *arg, const char *p, size_t n), void *arg,
                            size_t *len)
{
    struct iw_fetch f;
    int rc;

    *len = 0;
    memset(&f, 0, sizeof f);
    f.id = id;
    f.uid = uid;
    f.piece = piece;
    f.piece_arg = arg;
    rc = iw_fetch_run(c, part, &f);
    if (rc == 0 && f.body != NULL && f.len > 0)
        piece(arg, f.body, f.len);     /* a quoted string: one piece */
    if (rc == 0)
        *len = f.len;
    free(f.body);
    return rc;
}
