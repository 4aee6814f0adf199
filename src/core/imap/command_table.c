/* command_table.c: one row per command ImapCommand treats specially: state changes,
 * secret arguments, and the commands that would change the stream under the library. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "client.h"
#include "command_table.h"
#include "tokenizer.h"

/* Refused forms, each with the reason traced when it is refused:
 * - STARTTLS and COMPRESS put a layer under the reader that the library did not set up
 *   (TLS is chosen at connect, IMAP_OPTION_SECURE_*); the bytes after the OK would be
 *   read as clear text.
 * - IDLE ends only when the client sends DONE, which ImapCommand cannot: the call would
 *   wait for a tagged reply until nTimeout and leave the stream out of step.
 * - NOTIFY makes the server send untagged data at any time, also between calls, where
 *   the library reads only to notice a close.
 * AUTHENTICATE is allowed (API.md: its arguments are redacted and wiped); a mechanism
 * that needs more than its SASL-IR is cancelled with "*" at the first challenge. */
static const iw_command_row iw_commands[] = {
    { "LOGIN",          1, 1, IW_AUTH,     NULL },
    { "AUTHENTICATE",   1, 2, IW_AUTH,     NULL },
    { "SELECT",         0, 0, IW_SELECTED, NULL },
    { "EXAMINE",        0, 0, IW_SELECTED, NULL },
    { "CLOSE",          0, 0, IW_AUTH,     NULL },
    { "UNSELECT",       0, 0, IW_AUTH,     NULL },
    { "UNAUTHENTICATE", 0, 0, IW_NOT_AUTH, NULL },
    { "LOGOUT",         0, 0, IW_LOGOUT,   NULL },
    { "STARTTLS",       0, 0, -1, "STARTTLS is the library's: use IMAP_OPTION_SECURE_EXPLICIT" },
    { "COMPRESS",       0, 0, -1, "COMPRESS would change the stream under the library" },
    { "IDLE",           0, 0, -1, "IDLE ends only with DONE, which ImapCommand cannot send" },
    { "NOTIFY",         0, 0, -1, "NOTIFY brings untagged data between calls" },
};

/* Atoms are words as they are; anything else stands as NULL (never a verb, never kept). */
int iw_command_words(const char *text, size_t n, const char **at, size_t *len, int max)
{
    iw_tokenizer t;
    iw_tok k;
    int count = 0;

    iw_tok_init_command(&t, text, n);
    /* each token takes at least one byte: at most n turns */
    while (count < max) {
        if (iw_tok_next(&t, &k) != 0)
            return -1;
        if (k.type == IW_TOK_END)
            break;
        at[count] = k.type == IW_TOK_ATOM || k.type == IW_TOK_NIL ? k.p : NULL;
        len[count] = k.n;
        count++;
    }
    return count;
}

const iw_command_row *iw_command_lookup(const char *text, size_t n)
{
    const char *at[1];
    size_t len[1], i;

    if (iw_command_words(text, n, at, len, 1) != 1 || at[0] == NULL)
        return NULL;
    for (i = 0; i < sizeof iw_commands / sizeof iw_commands[0]; i++) {
        const char *v = iw_commands[i].verb;
        if (len[0] == strlen(v) && strncasecmp(at[0], v, len[0]) == 0)
            return &iw_commands[i];
    }
    return NULL;
}

void iw_command_redact(const iw_command_row *row, const char *text, size_t n, char *out,
                       size_t size)
{
    const char *at[4];
    size_t len[4], o = 0;
    int keep = row->keep < 3 ? row->keep : 3, words, i;

    out[0] = '\0';
    words = iw_command_words(text, n, at, len, keep + 1);
    for (i = 0; i < words && i < keep && at[i] != NULL; i++) {
        int w = snprintf(out + o, size - o, "%s%.*s", o ? " " : "",
                         (int)(len[i] < 64 ? len[i] : 64), at[i]);
        if (w < 0 || (size_t)w >= size - o)
            break;
        o += (size_t)w;
    }
    if (words < 0 || i < words)
        snprintf(out + o, size - o, "%s<redacted>", o ? " " : "");
}
