/* errors.c: a failure told twice, on stderr for a person and as the report's "error"
 * object; usage errors and warnings the same way. */
#include <stdarg.h>
#include <stdio.h>
#include "cli.h"

/* error.stage, hop, peer, file, fingerprint, detail (null when the library had none). */
static void add_info(json_object *e, const IMAPERRORINFO *ei)
{
    const char *const f[] = { ei->szPeer, ei->szFile, ei->szFingerprint, ei->szDetail };
    const char *const k[] = { "peer", "file", "fingerprint", "detail" };
    json_object_object_add(e, "stage", json_object_new_string(cli_stage_name(ei->dwStage)));
    json_object_object_add(e, "hop", json_object_new_int((int)ei->nHop));
    for (size_t i = 0; i < 4; i++)
        json_object_object_add(e, k[i], f[i][0] ? json_object_new_string(f[i]) : NULL);
}

void cli_warn(const struct cli_opts *o, const char *fmt, ...)
{
    va_list ap;
    if (o->silent)
        return;                /* -s: no warnings, even with -S (errors only) */
    fprintf(stderr, "%simapwire: warning:%s ", o->color_err ? C_YEL C_BOLD : "",
            o->color_err ? C_OFF : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void set_error(json_object *report, DWORD err, const char *name, const char *what,
                      const char *text, const char *fix, int code)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_int((int)err));
    json_object_object_add(e, "name", json_object_new_string(name));
    json_object_object_add(e, "during", json_object_new_string(what));
    json_object_object_add(e, "message", json_object_new_string(text));
    json_object_object_add(e, "advice", json_object_new_string(fix));
    json_object_object_add(report, "error", e);
    json_object_object_add(report, "exit_code", json_object_new_int(code));
}

json_object *cli_error_object(DWORD err, const char *host, unsigned port)
{
    char text[1200], fix[4096];
    json_object *e = json_object_new_object();
    IMAPERRORINFO ei;

    cli_describe(err, host, port, &ei, text, sizeof text, fix, sizeof fix);
    json_object_object_add(e, "code", json_object_new_int((int)err));
    json_object_object_add(e, "name", json_object_new_string(cli_error_name(err)));
    json_object_object_add(e, "message", json_object_new_string(text));
    json_object_object_add(e, "advice", json_object_new_string(fix));
    json_object_object_add(e, "exit_code", json_object_new_int(cli_exit_code(err)));
    add_info(e, &ei);
    return e;
}

int cli_fail(const struct cli_opts *o, json_object *report, DWORD err, const char *what,
             const char *host, unsigned port)
{
    char text[1200], fix[4096];
    int code = cli_exit_code(err);
    IMAPERRORINFO ei;
    json_object *e;

    cli_describe(err, host, port, &ei, text, sizeof text, fix, sizeof fix);
    set_error(report, err, cli_error_name(err), what, text, fix, code);
    if (json_object_object_get_ex(report, "error", &e))
        add_info(e, &ei);
    fprintf(stderr, "%simapwire: %s failed:%s %s (%s)\n  fix: %s\n",
            o->color_err ? C_RED C_BOLD : "", what, o->color_err ? C_OFF : "", text,
            cli_error_name(err), fix);
    return code;
}

int cli_usage_error(const struct cli_opts *o, json_object *report, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (report != NULL)
        set_error(report, ST_ERROR_INVALID_PARAMETER, "USAGE", "arguments", text,
                  "see imapwire --help", EXIT_USAGE);
    fprintf(stderr, "%simapwire:%s %s\n  (imapwire --help lists every option)\n",
            o->color_err ? C_RED C_BOLD : "", o->color_err ? C_OFF : "", text);
    return EXIT_USAGE;
}

/* A URL the parser refused, told without the password it may hold. */
int cli_url_error(const struct cli_opts *o, json_object *report, const char *url,
                  const char *why)
{
    char shown[1024];
    cli_hide_password(url, shown, sizeof shown);
    return cli_usage_error(o, report, "%s: %s", shown, why);
}
