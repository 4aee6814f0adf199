/* command.c: the command engine: queue a tagged command, send it (pausing at
 * synchronising literals), read responses until its tagged end, trace both ways. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "tokenizer.h"

void iw_trace_line(iw_client *c, unsigned dir, const char *p, size_t n)
{
    if (c->cfg.trace == NULL)
        return;
    if (n > 0x7fffffff)
        n = 0x7fffffff;
    c->cfg.trace(c->handle, dir, p, (INT)n, c->cfg.trace_param);
}

/* Each line piece of a response once; literal bytes are summarised, not traced. */
void iw_trace_response(iw_client *c, const iw_response *r)
{
    size_t pos = 0;
    if (c->cfg.trace == NULL)
        return;
    while (pos < r->len) {
        const char *lf = memchr(r->data + pos, '\n', r->len - pos);
        size_t end = lf ? (size_t)(lf - r->data) : r->len, n = end - pos, lit = 0;
        if (n > 0 && r->data[pos + n - 1] == '\r')
            n--;
        iw_trace_line(c, IMAP_TRACE_RECV, r->data + pos, n);
        if (iw_literal_size(r->data + pos, n, &lit) <= 0)
            lit = 0;
        pos = end + 1;
        lit = iw_literal_span(r, pos, lit);      /* none here if it went straight on */
        if (lit > 0) {
            if (pos >= r->len || lit > r->len - pos)
                break;
            pos += lit;
        }
    }
}

#define IW_OUT_FIRST 256u          /* the queue's first size: a command line fits */

int iw_queue(iw_client *c, const char *p, size_t n, int secret)
{
    if (c->io.out_off == c->io.out_len) {
        c->io.out_off = c->io.out_len = 0;
    }
    if (c->io.out_len + n > c->io.out_cap) {
        size_t cap = c->io.out_cap ? c->io.out_cap : IW_OUT_FIRST;
        char *b;
        while (cap < c->io.out_len + n)
            cap *= 2;
        b = malloc(cap);
        if (b == NULL)
            return ST_ERROR_OUT_OF_MEMORY;
        if (c->io.out != NULL) {
            memcpy(b, c->io.out, c->io.out_len);
            iw_wipe(c->io.out, c->io.out_cap);
            free(c->io.out);
        }
        c->io.out = b;
        c->io.out_cap = cap;
    }
    memcpy(c->io.out + c->io.out_len, p, n);
    c->io.out_len += n;
    c->io.out_secret |= secret;
    return 0;
}

int iw_flush(iw_client *c, unsigned *want)
{
    while (c->io.out_off < c->io.out_len) {
        size_t sent = 0;
        int rc = iw_layer_send(c->io.top, c->io.out + c->io.out_off,
                               c->io.out_len - c->io.out_off, &sent);
        if (rc == IMAPWIRE_AGAIN) {
            *want = IMAPWIRE_WANT_WRITE;
            return IMAPWIRE_AGAIN;
        }
        if (rc != 0)
            return iw_client_break(c, rc);
        c->io.out_off += sent;
    }
    if (c->io.out_secret && c->io.out != NULL) {
        iw_wipe(c->io.out, c->io.out_cap);
        c->io.out_secret = 0;
    }
    c->io.out_off = c->io.out_len = 0;
    /* Drained, the queue goes: a buffer grown for a large command (an APPEND's literal,
     * a long line) is not kept at its peak, and an idle connection holds none. */
    free(c->io.out);
    c->io.out = NULL;
    c->io.out_cap = 0;
    return 0;
}

int iw_read_response(iw_client *c, iw_response *r, unsigned *want)
{
    int rc = iw_reader_next(&c->io.reader, c->io.top, r, &c->io.rx_bytes);
    if (rc == IMAPWIRE_AGAIN) {
        *want = IMAPWIRE_WANT_READ;
        return rc;
    }
    if (rc != 0)
        return iw_client_break(c, rc);
    iw_trace_response(c, r);
    return 0;
}

/* What every response may carry, whoever waits for it: capabilities. */
int iw_handle_common(iw_client *c, const iw_response *r)
{
    int rc = iw_capa_from_code(c, r->rest, r->rest_len);
    if (rc != 0)
        return rc;
    if (iw_capa_from_untagged(c, r, &rc))
        return rc;
    return 0;
}

void iw_cmd_clear(iw_cmd *cmd)
{
    if (cmd->wire != NULL) {
        if (cmd->secret)
            iw_wipe(cmd->wire, cmd->wire_len);
        free(cmd->wire);
    }
    memset(cmd, 0, sizeof *cmd);
}

/* text is the command without tag and CRLF; cuts are offsets into text just after each
 * synchronising literal's "{n}\r\n". trace_text replaces it in the trace (redaction). */
int iw_cmd_start(iw_client *c, iw_cmd *cmd, const char *text, size_t len,
                 const size_t *cuts, int ncuts, int secret, const char *trace_text)
{
    size_t tl;
    int i;

    iw_cmd_clear(cmd);
    if (ncuts > IW_MAX_CUTS)
        return ST_ERROR_INVALID_PARAMETER;
    snprintf(cmd->tag, sizeof cmd->tag, "A%04u", ++c->sess.next_tag % 100000u);
    tl = strlen(cmd->tag);
    cmd->wire = malloc(tl + 1 + len + 2);
    if (cmd->wire == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    memcpy(cmd->wire, cmd->tag, tl);
    cmd->wire[tl] = ' ';
    memcpy(cmd->wire + tl + 1, text, len);
    memcpy(cmd->wire + tl + 1 + len, "\r\n", 2);
    cmd->wire_len = tl + 1 + len + 2;
    for (i = 0; i < ncuts; i++)
        cmd->cuts[i] = tl + 1 + cuts[i];
    cmd->ncuts = ncuts;
    cmd->secret = secret;
    if (c->cfg.trace != NULL) {
        char line[600];
        int n = snprintf(line, sizeof line, "%s %.*s", cmd->tag,
                         trace_text ? (int)strlen(trace_text) : (int)len,
                         trace_text ? trace_text : text);
        if (n > 0)
            iw_trace_line(c, IMAP_TRACE_SEND, line,
                          (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
    /* Queue up to the first cut; the rest waits for "+". */
    return iw_queue(c, cmd->wire, ncuts ? cmd->cuts[0] : cmd->wire_len, secret);
}

static int iw_cmd_continue(iw_client *c, iw_cmd *cmd, const iw_response *r)
{
    if (cmd->next_cut < cmd->ncuts) {
        size_t from = cmd->cuts[cmd->next_cut++];
        size_t to = cmd->next_cut < cmd->ncuts ? cmd->cuts[cmd->next_cut] : cmd->wire_len;
        return iw_queue(c, cmd->wire + from, to - from, cmd->secret);
    }
    if (cmd->on_continue != NULL)
        return cmd->on_continue(c, r, cmd->arg);
    /* Nobody asked for it. Any answer would be read as literal bytes or as the next
     * command ("*" is one only inside AUTHENTICATE), so none is sent: the server's idea
     * of the stream is no longer ours, and the connection ends with the command. */
    iw_client_note(c, "command: the server sent a continuation the command did not ask "
                      "for; nothing sent in answer, connection dropped");
    return iw_client_break(c, ST_ERROR_INVALID_RESPONSE);
}

int iw_cmd_step(iw_client *c, iw_cmd *cmd, unsigned *want)
{
    for (;;) {
        iw_response r;
        int rc = iw_flush(c, want);
        if (rc != 0)
            return rc;
        rc = iw_read_response(c, &r, want);
        if (rc != 0)
            return rc;
        rc = iw_handle_common(c, &r);
        if (rc != 0)
            return rc;
        if (r.kind == IW_RESP_CONTINUATION) {
            rc = iw_cmd_continue(c, cmd, &r);
        } else if (r.kind == IW_RESP_UNTAGGED) {
            rc = cmd->on_untagged ? cmd->on_untagged(c, &r, cmd->arg) : 0;
        } else {
            size_t n;
            if (r.tag_len != strlen(cmd->tag) || memcmp(r.tag, cmd->tag, r.tag_len) != 0)
                return iw_client_break(c, ST_ERROR_INVALID_RESPONSE);
            switch (iw_resp_status(&r)) {
            case IW_STATUS_WORD_OK:  cmd->status = IW_STATUS_OK;  break;
            case IW_STATUS_WORD_NO:  cmd->status = IW_STATUS_NO;  break;
            case IW_STATUS_WORD_BAD: cmd->status = IW_STATUS_BAD; break;
            default:
                return iw_client_break(c, ST_ERROR_INVALID_RESPONSE);
            }
            n = r.rest_len < sizeof cmd->text - 1 ? r.rest_len : sizeof cmd->text - 1;
            memcpy(cmd->text, r.rest, n);
            cmd->text[n] = '\0';
            return 0;
        }
        if (rc != 0)
            return rc;
    }
}
