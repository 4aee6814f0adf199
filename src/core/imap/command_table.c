/* command_table.c: one row per command ImapCommand treats specially: state changes,
 * secret arguments, and the commands that would change the stream under the library. */
#include <strings.h>
#include "client.h"
#include "command_table.h"

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

const iw_command_row *iw_command_lookup(const char *text, size_t n)
{
    size_t i, s = 0, e;
    while (s < n && (text[s] == ' ' || text[s] == '\t'))
        s++;
    for (e = s; e < n && text[e] != ' ' && text[e] != '\t' && text[e] != '\r' &&
                text[e] != '\n'; e++)
        ;
    for (i = 0; i < sizeof iw_commands / sizeof iw_commands[0]; i++) {
        const char *v = iw_commands[i].verb;
        size_t vl = 0;
        while (v[vl] != '\0')
            vl++;
        if (e - s == vl && strncasecmp(text + s, v, vl) == 0)
            return &iw_commands[i];
    }
    return NULL;
}
