/* fuzz_command.c: arbitrary caller text through ImapCommand's parser (iw_command_wire and
 * the command table); what it would send is re-read as a server reads it: one tag-line. */
/* Two servers read it: one takes any line that ends in "{n}" or "{n+}" as a literal head;
 * one (as Dovecot's parser does) only a head at an argument start outside a quoted string,
 * so that a CRLF inside a string ends the command. For both, the command goes on past each
 * literal's n bytes and ends at any other line end, which must be the wire's last byte;
 * literal bytes only where the parser announced them, and the verb the table judged the
 * one the server runs. Any broken promise aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap/command_table.h"
#include "imap/session.h"

#define TAG "A0001 "

/* A line (wire[from..lf), lf at its LF) ending in a literal head: 1 with n, and *sync. */
static int server_head(const char *w, size_t from, size_t lf, size_t *n, int *sync)
{
    size_t e, d;
    if (lf < from + 2 || w[lf - 1] != '\r' || w[lf - 2] != '}')
        return 0;
    e = lf - 2;                        /* the '}' */
    *sync = !(e > from && w[e - 1] == '+');
    d = *sync ? e : e - 1;
    *n = 0;
    while (d > from && w[d - 1] >= '0' && w[d - 1] <= '9')
        d--;
    if (d == from || w[d - 1] != '{' || d == (*sync ? e : e - 1))
        return 0;
    for (; d < (*sync ? e : e - 1); d++) {
        if (*n > (SIZE_MAX - 9) / 10)
            abort();                   /* the parser let through a size past any limit */
        *n = *n * 10 + (size_t)(w[d] - '0');
    }
    return 1;
}

/* The grammar-reading server: 1 when w[0..len) is one command to its last byte. */
static int grammar_one_command(const char *w, size_t len)
{
    size_t i = 0;
    int quoted = 0;
    while (i < len) {
        char ch = w[i];
        if (quoted) {
            if (ch == '\\' && i + 1 < len && w[i + 1] != '\r' && w[i + 1] != '\n')
                i++;
            else if (ch == '"')
                quoted = 0;
            else if (ch == '\r' || ch == '\n')
                return 0;              /* the string and the command end here: BAD */
            i++;
            continue;
        }
        if (ch == '"') {
            quoted = 1;
        } else if (ch == '{' && i > 0 && (w[i - 1] == ' ' || w[i - 1] == '(')) {
            size_t j = i + 1, n = 0;
            while (j < len && w[j] >= '0' && w[j] <= '9' && j - i <= 10)
                n = n * 10 + (size_t)(w[j++] - '0');
            if (j > i + 1 && j < len && w[j] == '+')
                j++;
            if (j > i + 1 && j + 2 < len && w[j] == '}' && w[j + 1] == '\r' &&
                w[j + 2] == '\n') {
                if (n > len - (j + 3))
                    return 0;          /* the server would wait for bytes never sent */
                i = j + 3 + n;
                continue;
            }
        } else if (ch == '\n') {
            return i + 1 == len;
        }
        i++;
    }
    return 0;                          /* no final line end */
}

static void check(const char *text, int plus, int minus)
{
    size_t len = strlen(text), cuts[IW_MAX_CUTS], first_line, pos;
    iw_sb out = {0};
    char *w;
    int ncuts = 0, next_cut = 0;

    if (iw_command_wire(text, len, plus, minus, &out, cuts, &ncuts, &first_line) != 0) {
        iw_sb_free(&out);
        return;
    }
    /* the wire as iw_cmd_start builds it: tag, text, CRLF */
    w = malloc(strlen(TAG) + out.len + 2);
    if (w == NULL)
        abort();
    memcpy(w, TAG, strlen(TAG));
    memcpy(w + strlen(TAG), out.p, out.len);
    memcpy(w + strlen(TAG) + out.len, "\r\n", 2);
    len = strlen(TAG) + out.len + 2;
    /* a server's reading: the command goes on past each literal, and ends at a plain
     * line end, which must be the last byte */
    pos = 0;
    for (;;) {
        const char *lf = memchr(w + pos, '\n', len - pos);
        size_t at, n;
        int sync;
        if (lf == NULL)
            abort();                   /* no line end at all: the server would wait */
        at = (size_t)(lf - w);
        if (!server_head(w, pos, at, &n, &sync)) {
            if (at + 1 != len || w[at - 1] != '\r')
                abort();               /* a second command, or a bare LF */
            break;
        }
        /* a synchronising head is where the library stops for "+" (cuts are offsets in
         * out, after the tag here) */
        if (sync != (!plus && !(minus && n <= 4096)))
            abort();
        if (sync && (next_cut >= ncuts || cuts[next_cut++] + strlen(TAG) != at + 1))
            abort();
        if (n > len - (at + 1))
            abort();                   /* a literal short of its bytes */
        pos = at + 1 + n;
    }
    if (next_cut != ncuts)
        abort();                       /* a stop for "+" where the server expects none */
    if (!grammar_one_command(w, len))
        abort();
    /* the verb the table judged is the one the server runs (the wire's second word) */
    {
        const char *at[1];
        size_t wl[1], vl = 0;
        const char *verb = w + strlen(TAG);
        if (iw_command_words(text, strlen(text), at, wl, 1) != 1 || at[0] == NULL)
            abort();
        while (verb[vl] == ' ' || verb[vl] == '\t')
            verb++;
        /* an atom as RFC 3501 has it, bytes >= 0x80 allowed */
        while ((unsigned char)verb[vl] > 0x20 && verb[vl] != 0x7f &&
               strchr("(){\"[]", verb[vl]) == NULL)
            vl++;
        if (vl != wl[0] || memcmp(verb, at[0], vl) != 0)
            abort();
    }
    /* a secret row's trace holds its kept words and nothing past them */
    {
        const iw_command_row *row = iw_command_lookup(text, strlen(text));
        if (row != NULL && row->secret) {
            char red[256];
            const char *at[4];
            size_t wl[4], kept = 0;
            int words = iw_command_words(text, strlen(text), at, wl, 4), i;
            iw_command_redact(row, text, strlen(text), red, sizeof red);
            for (i = 0; i < words && i < row->keep; i++)
                kept += wl[i] + 1;
            if (strlen(red) > kept + strlen("<redacted>"))
                abort();
            if (words > row->keep && strstr(red, "<redacted>") == NULL)
                abort();
        }
    }
    free(w);
    iw_sb_free(&out);
}

/* First byte: bit 0 LITERAL+, bit 1 LITERAL-; the rest is the text, up to a NUL. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    if (size < 1)
        return 0;
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    check(text, data[0] & 1, (data[0] & 2) != 0);
    free(text);
    return 0;
}
