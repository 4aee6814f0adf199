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

/* The row of the command text starts with (its first word, any case), or NULL for a
 * command the library treats as plain. Words are split by iw_command_words. */
const iw_command_row *iw_command_lookup(const char *text, size_t n);
/* The one word splitter of a caller's command (the tokenizer in its client-side mode):
 * the first max words into at[] and len[] (a literal: its bytes); how many there are, up
 * to max, or -1 for text the IMAP grammar refuses. */
int iw_command_words(const char *text, size_t n, const char **at, size_t *len, int max);
/* The trace form of a command of a secret row: its first row->keep words, then
 * " <redacted>" if anything follows them (a kept word that is not an atom is redacted). */
void iw_command_redact(const iw_command_row *row, const char *text, size_t n, char *out,
                       size_t size);

#endif /* IW_COMMAND_TABLE_H */
