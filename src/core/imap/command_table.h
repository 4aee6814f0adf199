/* command_table.h: what ImapCommand must know of each command before it goes out: its
 * state change, whether its arguments are secret, and the forms it refuses. */
#ifndef IW_COMMAND_TABLE_H
#define IW_COMMAND_TABLE_H

#include <stddef.h>

typedef struct iw_command_row {
    const char *verb;
    int         secret;        /* arguments redacted in the trace, wire bytes wiped */
    int         keep;          /* words traced before "<redacted>" */
    int         next_state;    /* IW_* state after its OK; -1 = unchanged */
    const char *refused;       /* NULL, or why ImapCommand never sends it */
} iw_command_row;

/* The row of the command text starts with (its first word, any case, after any leading
 * blanks), or NULL for a command the library treats as plain. */
const iw_command_row *iw_command_lookup(const char *text, size_t n);

#endif /* IW_COMMAND_TABLE_H */
