/* session.c: what a ready session does: log in, run a command, select a mailbox, fetch
 * a message. Each call is one command exchange driven to its tagged end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client.h"
#include "auth.h"
#include "session.h"

static int iw_word_is(const char *p, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n >= wl && strncasecmp(p, w, wl) == 0 && (n == wl || p[wl] == ' ');
}

int iw_session_login(iw_client *c, unsigned type, const char *user, const char *pass)
{
    iw_login lg;
    unsigned gen = c->capa_gen;
    int rc;

    if (c->state != IW_NOT_AUTH)
        return ST_ERROR_ALREADY_AUTHENTICATED;
    rc = iw_login_start(c, &lg, type, user, pass);
    if (rc == 0)
        rc = iw_run_command(c, &lg.cmd);
    /* An OK is not enough for SCRAM: the server must have proved itself too. One that
     * did not is not talked to again (it claims a session it could not have opened). */
    if (rc == 0 && lg.cmd.status == IW_STATUS_OK && (rc = iw_login_finish(c, &lg)) != 0)
        c->broken = 1;
    if (rc == 0) {
        if (lg.cmd.status == IW_STATUS_OK)
            c->state = IW_AUTH;
        else
            rc = ST_ERROR_LOGIN_FAILED;
    }
    iw_login_clear(&lg);
    if (rc == 0)
        rc = iw_capa_refresh(c, gen);
    iw_reader_rest(&c->reader);
    return rc;
}

/* What ImapCommand must know of a command before it goes out: whether its arguments
 * are secret (traced up to `keep` words, the rest redacted; wire bytes wiped), and the
 * session state its OK leads to. */
typedef struct iw_command_row {
    const char *verb;
    int         secret;
    int         keep;              /* words of the command traced before "<redacted>" */
    int         next_state;        /* after OK; -1 = unchanged */
} iw_command_row;

static const iw_command_row iw_commands[] = {
    { "LOGIN",        1, 1, IW_AUTH },
    { "AUTHENTICATE", 1, 2, IW_AUTH },
    { "SELECT",       0, 0, IW_SELECTED },
    { "EXAMINE",      0, 0, IW_SELECTED },
    { "CLOSE",        0, 0, IW_AUTH },
    { "UNSELECT",     0, 0, IW_AUTH },
    { "LOGOUT",       0, 0, IW_LOGOUT },
};

static const iw_command_row *iw_command_find(const char *text, size_t n)
{
    size_t i;
    for (i = 0; i < sizeof iw_commands / sizeof iw_commands[0]; i++)
        if (iw_word_is(text, n, iw_commands[i].verb))
            return &iw_commands[i];
    return NULL;
}

/* The trace form of a secret command: its first `keep` words, then "<redacted>" if
 * anything follows them. */
static void iw_redacted_form(const char *text, size_t n, int keep, char *out, size_t size)
{
    size_t end = 0;
    int words = 0;
    while (end < n && words < keep) {
        while (end < n && text[end] == ' ')
            end++;
        while (end < n && text[end] != ' ')
            end++;
        words++;
    }
    while (end > 0 && text[end - 1] == ' ')
        end--;
    snprintf(out, size, "%.*s%s", (int)(end < 200 ? end : 200), text,
             end < n ? " <redacted>" : "");
}

/* A literal's head "{n}" or "{n+}" followed by CRLF at text[i]: 1 with its size and the
 * offset of its first byte; 0 if there is none there. */
static int iw_literal_head(const char *text, size_t len, size_t i, size_t *size, size_t *data)
{
    size_t j = i + 1, v = 0;
    if (text[i] != '{')
        return 0;
    while (j < len && text[j] >= '0' && text[j] <= '9' && j - i <= 10) {
        v = v * 10 + (size_t)(text[j] - '0');
        j++;
    }
    if (j == i + 1 || j - i > 10)
        return 0;
    if (j < len && text[j] == '+')
        j++;
    if (j + 3 > len || text[j] != '}' || text[j + 1] != '\r' || text[j + 2] != '\n')
        return 0;
    *size = v;
    *data = j + 3;
    return 1;
}

int iw_command_wire(const char *text, size_t len, int plus, int minus, iw_sb *out,
                    size_t *cuts, int *ncuts, size_t *first_line)
{
    size_t i = 0, line = 0;
    *ncuts = 0;
    *first_line = (size_t)-1;
    while (i < len) {
        size_t size, data;
        char head[32];
        if (iw_literal_head(text, len, i, &size, &data)) {
            int wait;
            /* exactly size bytes follow, whatever they are */
            if (size > IW_MAX_LITERAL || size > len - data)
                return ST_ERROR_INVALID_PARAMETER;
            wait = !(plus || (minus && size <= 4096));
            if (wait && *ncuts >= IW_MAX_CUTS)
                return ST_ERROR_INVALID_PARAMETER;
            snprintf(head, sizeof head, wait ? "{%zu}\r\n" : "{%zu+}\r\n", size);
            if (iw_sb_str(out, head) != 0)
                return out->err;
            if (*first_line == (size_t)-1)
                *first_line = out->len - 2;       /* up to the head, without its CRLF */
            if (wait)
                cuts[(*ncuts)++] = out->len;
            iw_sb_add(out, text + data, size);
            i = data + size;
            line = 0;
            continue;
        }
        /* one command per call: a CR or LF outside a literal would start another */
        if (text[i] == '\r' || text[i] == '\n' || ++line > IW_MAX_LINE)
            return ST_ERROR_INVALID_PARAMETER;
        iw_sb_add(out, text + i, 1);
        i++;
    }
    return out->err;
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

int iw_session_command(iw_client *c, const char *text, IMAPRESPONSEPROC proc, void *param,
                       char *result, size_t max)
{
    size_t n = strlen(text), cuts[IW_MAX_CUTS], first_line;
    const iw_command_row *row = iw_command_find(text, n);
    iw_untagged_sink sink = { proc, param };
    unsigned gen = c->capa_gen;
    char redacted[256];
    const char *trace = NULL;
    iw_sb wire = {0};
    iw_cmd cmd;
    int rc, ncuts = 0;

    memset(&cmd, 0, sizeof cmd);
    if (result != NULL && max > 0)
        result[0] = '\0';
    /* RFC 3501 6.2.3, whichever call the LOGIN comes through. */
    if (row != NULL && strcmp(row->verb, "LOGIN") == 0 && iw_capa_has(c, "LOGINDISABLED")) {
        iw_client_note(c, "command: the server advertises LOGINDISABLED; LOGIN not sent");
        return ST_ERROR_LOGIN_FAILED;
    }
    /* RFC 7888: LITERAL+ takes any literal without a wait, LITERAL- up to 4096 bytes */
    rc = iw_command_wire(text, n, iw_capa_has(c, "LITERAL+"), iw_capa_has(c, "LITERAL-"),
                         &wire, cuts, &ncuts, &first_line);
    if (rc != 0) {
        iw_sb_free(&wire);
        return rc;
    }
    if (row != NULL && row->secret) {
        iw_redacted_form(text, n, row->keep, redacted, sizeof redacted);
        trace = redacted;
    } else if (first_line != (size_t)-1) {
        /* a literal's bytes are not traced: the line up to its head says enough */
        snprintf(redacted, sizeof redacted, "%.*s <literal>",
                 (int)(first_line < 200 ? first_line : 200), wire.p);
        trace = redacted;
    }
    rc = iw_cmd_start(c, &cmd, wire.p, wire.len, cuts, ncuts, row != NULL && row->secret,
                      trace);
    iw_sb_free(&wire);
    if (proc != NULL) {            /* after the start, which clears the command */
        cmd.on_untagged = iw_deliver_untagged;
        cmd.arg = &sink;
    }
    if (rc == 0)
        rc = iw_run_command(c, &cmd);
    if (rc == 0) {
        if (result != NULL && max > 0)
            iw_strlcpy(result, cmd.text, max);
        if (cmd.status != IW_STATUS_OK) {
            rc = ST_ERROR_COMMAND_FAILED;
        } else if (row != NULL && row->next_state >= 0) {
            int was = c->state;
            c->state = row->next_state;
            if (c->state == IW_LOGOUT)
                c->broken = 1;
            if (was == IW_NOT_AUTH && c->state == IW_AUTH)
                rc = iw_capa_refresh(c, gen);
        }
    }
    iw_cmd_clear(&cmd);
    iw_reader_rest(&c->reader);
    return rc;
}

/* ---- SELECT ---- */

static DWORD iw_number(const char *p, size_t n)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > 0xffffffffu)
            return 0xffffffffu;
    }
    return (DWORD)v;
}

/* "[NAME n]" code after "OK ": the number, if the code is NAME. */
static int iw_code_number(const char *p, size_t n, const char *name, DWORD *out)
{
    size_t wl = strlen(name);
    if (n < 4 + wl + 2 || strncasecmp(p, "OK [", 4) != 0 || strncasecmp(p + 4, name, wl) != 0 ||
        p[4 + wl] != ' ')
        return 0;
    *out = iw_number(p + 5 + wl, n - 5 - wl);
    return 1;
}

static int iw_on_select(iw_client *c, const iw_response *r, void *arg)
{
    IMAPMAILBOX *mb = arg;
    const char *p = r->rest;
    size_t n = r->rest_len, sp;

    IW_UNUSED(c);
    if (mb == NULL)
        return 0;
    if (n > 0 && p[0] >= '0' && p[0] <= '9') {
        DWORD v = iw_number(p, n);
        for (sp = 0; sp < n && p[sp] != ' '; sp++)
            ;
        if (sp < n && iw_word_is(p + sp + 1, n - sp - 1, "EXISTS"))
            mb->dwMessages = v;
        else if (sp < n && iw_word_is(p + sp + 1, n - sp - 1, "RECENT"))
            mb->dwRecent = v;
    } else if (iw_word_is(p, n, "FLAGS") && n > 7 && p[6] == '(') {
        const char *close = memchr(p + 7, ')', n - 7);
        size_t len = close ? (size_t)(close - (p + 7)) : 0;
        if (len >= sizeof mb->szFlags)
            len = sizeof mb->szFlags - 1;
        memcpy(mb->szFlags, p + 7, len);
        mb->szFlags[len] = '\0';
    } else {
        iw_code_number(p, n, "UNSEEN", &mb->dwFirstUnseen);
        iw_code_number(p, n, "UIDVALIDITY", &mb->dwUidValidity);
        iw_code_number(p, n, "UIDNEXT", &mb->dwUidNext);
    }
    return 0;
}

int iw_session_select(iw_client *c, const char *mailbox, IMAPMAILBOX *mb)
{
    iw_sb sb = {0}, name = {0};
    iw_cmd cmd;
    int rc;

    if (c->state == IW_NOT_AUTH)
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
            c->state = IW_SELECTED;
        } else {
            /* RFC 3501: a failed SELECT leaves no mailbox selected. */
            c->state = IW_AUTH;
            rc = ST_ERROR_COMMAND_FAILED;
        }
    }
    iw_cmd_clear(&cmd);
    iw_sb_free(&sb);
    iw_reader_rest(&c->reader);
    return rc;
}

/* ---- FETCH BODY.PEEK[...] ---- */

/* Finds message id's "BODY[...]" (then an optional <origin>) in r's line pieces: 1 with
 * *at the offset of its value ('{', '"' or NIL), *piece and *piece_n the offset and
 * length (without CRLF) of the line piece it is in; 0 if r has none. Every look stays
 * inside r->data[0..len): the reader's spare byte must not be what makes a short
 * response safe. A response so far (the hook's head) works the same way. */
static int iw_fetch_locate(const iw_response *r, unsigned id, size_t *at, size_t *piece,
                           size_t *piece_n)
{
    const char *d = r->data;
    size_t pos = 0, sp;

    if (r->rest_len == 0 || r->rest[0] < '0' || r->rest[0] > '9')
        return 0;
    for (sp = 0; sp < r->rest_len && r->rest[sp] != ' '; sp++)
        ;
    /* "* 1" alone has no word after the number: nothing to look at past it */
    if (sp >= r->rest_len || iw_number(r->rest, sp) != id ||
        !iw_word_is(r->rest + sp + 1, r->rest_len - sp - 1, "FETCH"))
        return 0;
    while (pos < r->len) {
        const char *lf = memchr(d + pos, '\n', r->len - pos);
        size_t end = lf ? (size_t)(lf - d) : r->len, n = end - pos, lit = 0, i;
        if (n > 0 && d[pos + n - 1] == '\r')
            n--;
        for (i = pos; i + 5 <= pos + n; i++) {
            const char *q;
            if (strncasecmp(d + i, "BODY[", 5) != 0)
                continue;
            q = memchr(d + i, ']', pos + n - i);
            if (q == NULL)
                return ST_ERROR_INVALID_RESPONSE;
            q++;
            if (q < d + pos + n && *q == '<') {
                q = memchr(q, '>', (size_t)(d + pos + n - q));
                if (q == NULL)
                    return ST_ERROR_INVALID_RESPONSE;
                q++;
            }
            if (q >= d + pos + n || *q != ' ')
                return ST_ERROR_INVALID_RESPONSE;
            q++;
            if (q >= d + pos + n)
                return ST_ERROR_INVALID_RESPONSE;
            *at = (size_t)(q - d);
            *piece = pos;
            *piece_n = n;
            return 1;
        }
        if (iw_literal_size(d + pos, n, &lit) <= 0)
            lit = 0;
        lit = iw_literal_span(r, end + 1, lit);
        if (end + 1 > r->len || lit > r->len - (end + 1))
            break;
        pos = end + 1 + lit;
    }
    return 0;
}

int iw_fetch_parse(const iw_response *r, struct iw_fetch *f)
{
    const char *d = r->data;
    size_t at, pos, n, lit = 0;
    int k;

    if (f->found)
        return 0;                      /* taken already (straight to its destination) */
    k = iw_fetch_locate(r, f->id, &at, &pos, &n);
    if (k != 1)
        return k;                      /* nothing for us (0), or the locate's own error */
    if (d[at] == '{') {
        size_t end = pos + n;           /* the CR or LF after the head */
        while (end < r->len && d[end] != '\n')
            end++;
        if (iw_literal_size(d + pos, n, &lit) <= 0 || end >= r->len ||
            iw_literal_span(r, end + 1, lit) != lit || lit > r->len - end - 1)
            return ST_ERROR_INVALID_RESPONSE;
        f->body = malloc(lit + 1);
        if (f->body == NULL)
            return ST_ERROR_OUT_OF_MEMORY;
        memcpy(f->body, d + end + 1, lit);
        f->body[lit] = '\0';
        f->len = lit;
        f->found = 1;
        return 0;
    }
    if (d[at] == '"') {
        size_t o = 0, k2;
        f->body = malloc(n + 1);
        if (f->body == NULL)
            return ST_ERROR_OUT_OF_MEMORY;
        for (k2 = at + 1; k2 < pos + n && d[k2] != '"'; k2++) {
            if (d[k2] == '\\' && k2 + 1 < pos + n)
                k2++;
            f->body[o++] = d[k2];
        }
        f->body[o] = '\0';
        f->len = o;
        f->found = 1;
        return 0;
    }
    return 0;                          /* NIL: the part does not exist */
}

/* The reader asks where a literal goes once its size is known: the body we wait for
 * goes straight into the caller's buffer, or into one allocation of its size made
 * now, or to the caller's piece function through a scratch buffer, or (too big for the
 * caller's buffer) is read and dropped; any other stays. */
static int iw_fetch_hook(void *arg, const iw_response *head, size_t size, int over,
                         iw_lit_dest *d)
{
    struct iw_fetch *f = arg;
    size_t at, pos, n;

    if (f->found || head->kind != IW_RESP_UNTAGGED ||
        iw_fetch_locate(head, f->id, &at, &pos, &n) != 1 || head->data[at] != '{')
        return 0;
    /* ours only when the value is the whole rest of the last line piece so far: the
     * literal announced is then this one */
    if ((pos + n + 1 != head->len && pos + n + 2 != head->len) ||
        memchr(head->data + at, ' ', pos + n - at) != NULL)
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
    f->body = malloc(size + 1);        /* +1: the library's buffer ends with a NUL */
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
    char text[64];
    iw_cmd cmd;
    int rc;

    if (c->state == IW_NOT_AUTH)
        return ST_ERROR_NOT_AUTHENTICATED;
    if (f->id == 0)
        return ST_ERROR_INVALID_PARAMETER;
    memset(&cmd, 0, sizeof cmd);
    if (part == 0)
        snprintf(text, sizeof text, "FETCH %u BODY.PEEK[]", f->id);
    else
        snprintf(text, sizeof text, "FETCH %u BODY.PEEK[%u]", f->id, part);
    rc = iw_cmd_start(c, &cmd, text, strlen(text), NULL, 0, 0, NULL);
    cmd.on_untagged = iw_on_fetch;
    cmd.arg = f;
    iw_reader_set_hook(&c->reader, iw_fetch_hook, f);
    if (rc == 0)
        rc = iw_run_command(c, &cmd);
    /* after an error the reader may still point into dest: it must forget it */
    iw_reader_set_hook(&c->reader, NULL, NULL);
    if (rc == 0 && (cmd.status != IW_STATUS_OK || !f->found))
        rc = ST_ERROR_MESSAGE_NOT_FOUND;
    iw_cmd_clear(&cmd);
    free(f->chunk);
    f->chunk = NULL;
    iw_reader_rest(&c->reader);
    return rc;
}

int iw_session_fetch(iw_client *c, unsigned id, unsigned part, char *dest, size_t cap,
                     char **body, size_t *len)
{
    struct iw_fetch f;
    int rc;

    *body = NULL;
    *len = 0;
    memset(&f, 0, sizeof f);
    f.id = id;
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
    free(f.body);
    return rc;
}

int iw_session_fetch_stream(iw_client *c, unsigned id, unsigned part,
                            void (*piece)(void *arg, const char *p, size_t n), void *arg,
                            size_t *len)
{
    struct iw_fetch f;
    int rc;

    *len = 0;
    memset(&f, 0, sizeof f);
    f.id = id;
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
