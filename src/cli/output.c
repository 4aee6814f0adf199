/* output.c: where the command's output goes: colour only on a terminal, trace lines on
 * stderr as they happen, and the JSON report on stdout at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

/* Colour only where a person looks: a terminal that is not "dumb", and no NO_COLOR. */
void cli_colors(struct cli_opts *o)
{
    /* getenv: TERM and NO_COLOR only choose whether to colour our own output; a setuid
     * caller gains nothing by setting them (server text is escaped either way). */
    const char *term = getenv("TERM");
    int ok = getenv("NO_COLOR") == NULL && term != NULL && strcmp(term, "dumb") != 0;
    o->color_out = ok && isatty(STDOUT_FILENO);
    o->color_err = ok && isatty(STDERR_FILENO);
}

int cli_finish(const struct cli_opts *o, json_object *report, int code)
{
    if (json_object_object_get_ex(report, "exit_code", NULL) == 0)
        json_object_object_add(report, "exit_code", json_object_new_int(code));
    if (json_object_object_get_ex(report, "error", NULL) == 0)
        json_object_object_add(report, "error", NULL);
    if (o->json) {
        puts(json_object_to_json_string_ext(report, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
    }
    json_object_put(report);
    return code;
}

/* Trace lines as they happen; the library has already redacted credentials. The
 * server's lines are escaped whether or not stderr is a terminal: a log that is later
 * shown with cat must not drive the terminal either. */
void cli_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    fputs(dir == IMAP_TRACE_SEND ? "C: " : dir == IMAP_TRACE_RECV ? "S: " : "*  ", stderr);
    cli_put_visible(stderr, line, len > 0 ? (size_t)len : 0, 0);
    fputc('\n', stderr);
}
