/* check.c: "imapwire check HOST[:PORT]|URL": tries plain, STARTTLS and implicit TLS (a URL
 * names its own), tells what each offers in one table (-v: every fact), and with
 * --require-tls fails when a password could go in clear. */
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include "cli.h"

/* One connect without login; the facts or the error go into a new object. */
static json_object *attempt(struct cli_opts *o, const char *host, unsigned port, int imaps,
                            int starttls, DWORD protocol, int trusted, DWORD *err)
{
    struct cli_session s;
    struct cli_opts copy = *o;
    json_object *r = json_object_new_object(), *facts;

    copy.insecure = trusted;
    *err = 0;
    if (cli_build(&copy, host, port, imaps, starttls, &s, r) != 0) {
        *err = ST_ERROR_INVALID_PARAMETER;
        return r;
    }
    s.creds.dwProtocol = protocol;
    s.h = ImapConnectEx(&s.info);
    if (s.h == INVALID_CLIENT) {
        *err = ImapGetLastError();
        json_object_object_add(r, "error", cli_error_object(*err, host, s.port));
    } else {
        facts = cli_facts(s.h);
        json_object_object_foreach(facts, key, val)
            json_object_object_add(r, key, json_object_get(val));
        json_object_put(facts);
    }
    cli_release(&s);
    return r;
}

static int is_cert_error(DWORD e)
{
    return e == ST_ERROR_CERTIFICATE_UNTRUSTED || e == ST_ERROR_CERTIFICATE_NAME_MISMATCH ||
           e == ST_ERROR_CERTIFICATE_EXPIRED;
}

static void print_error(const struct cli_opts *o, json_object *e)
{
    printf("  %sfailed:%s %s (%s)\n  fix: %s\n", o->color_out ? "\033[31m" : "",
           o->color_out ? "\033[0m" : "",
           json_object_get_string(json_object_object_get(e, "message")),
           json_object_get_string(json_object_object_get(e, "name")),
           json_object_get_string(json_object_object_get(e, "advice")));
}

static const char *field(json_object *o, const char *a, const char *b)
{
    json_object *v = json_object_object_get(o, a);
    if (v != NULL && b != NULL)
        v = json_object_object_get(v, b);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                 : NULL;
}

static int has_word(json_object *arr, const char *w)
{
    for (size_t i = 0; arr != NULL && i < json_object_array_length(arr); i++)
        if (strcasecmp(json_object_get_string(json_object_array_get_idx(arr, i)), w) == 0)
            return 1;
    return 0;
}

/* A connected plain mode: the mechanisms that put the password itself on the wire in
 * clear (AUTH=PLAIN, AUTH=LOGIN, the LOGIN command unless LOGINDISABLED), and for the
 * table every mechanism offered there. */
static void clear_auth(json_object *r, char *shown, size_t size)
{
    json_object *mech = json_object_object_get(r, "auth_mechanisms");
    json_object *caps = json_object_object_get(r, "capabilities");
    json_object *danger = json_object_new_array();
    int disabled = has_word(caps, "LOGINDISABLED");
    size_t n = 0;

    shown[0] = '\0';
    for (size_t i = 0; mech != NULL && i < json_object_array_length(mech); i++) {
        const char *m = json_object_get_string(json_object_array_get_idx(mech, i));
        n += (size_t)snprintf(shown + n, n < size ? size - n : 0, "%s%s", n ? "," : "", m);
        if (!disabled && (strcasecmp(m, "PLAIN") == 0 || strcasecmp(m, "LOGIN") == 0))
            json_object_array_add(danger, json_object_new_string(m));
    }
    if (!disabled && !has_word(danger, "LOGIN"))
        json_object_array_add(danger, json_object_new_string("LOGIN"));   /* the command */
    if (disabled && n < size)
        snprintf(shown + n, size - n, "%sLOGINDISABLED", n ? "," : "");
    else if (n == 0)
        snprintf(shown, size, "LOGIN");
    json_object_object_add(r, "auth_in_clear", danger);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = *s == '_' ? '-' : (char)tolower((unsigned char)*s);
}

static void print_row(json_object *r)
{
    json_object *e = json_object_object_get(r, "error");
    const char *mode = field(r, "mode", NULL), *tls = field(r, "tls", "protocol");
    const char *cert = field(r, "tls", "certificate_status");
    const char *auth = field(r, "mechanisms_in_clear", NULL);
    char refused[64];

    if (e != NULL && strncmp(field(r, "error", "name"), "ST_ERROR_CERTIFICATE_", 21) == 0) {
        /* what refused it, not the "not-checked" of the second look */
        snprintf(refused, sizeof refused, "%s", field(r, "error", "name") + 21);
        lower(refused);
        cert = refused;
    }
    printf("%-9s %-6d %-31s %-8s %-16s %s\n", mode,
           json_object_get_int(json_object_object_get(r, "port")),
           e != NULL ? field(r, "error", "name") : "ok", tls ? tls : "-", cert ? cert : "-",
           auth ? auth : "-");
}

static const struct check_mode {
    const char *name;
    int imaps, starttls;
} modes[] = {{"plain", 0, 0}, {"starttls", 0, 1}, {"imaps", 1, 0}};

/* What the modes tried so far add up to, for the exit code and --require-tls. */
struct check_sum {
    int any, last, clear_ok, tls_ok, clear_pass;
};

/* The one HOST[:PORT] or URL, and the modes it asks for ([*first, *end) of modes): 0, or
 * the usage error's exit code. */
static int check_args(const struct cli_opts *o, int argc, char **argv, struct cli_url *u,
                      size_t *first, size_t *end, json_object *report)
{
    char why[256];

    if (argc != 1)
        return cli_usage_error(o, report, "check takes one HOST[:PORT] or URL");
    if (cli_url_parse(argv[0], u, why, sizeof why) != 0)
        return cli_url_error(o, report, argv[0], why);
    if (strstr(argv[0], "://") != NULL) {
        /* a URL names its mode: imaps:// implicit TLS on its port, imap:// plain and
         * STARTTLS (the user, if any, is not logged in) */
        *first = u->imaps ? 2 : 0;
        *end = u->imaps ? 3 : 2;
    }
    return 0;
}

/* A certificate that did not verify: what the server presents, from a second look that
 * does not require it, into r (not its error). */
static void look_again(struct cli_opts *o, const char *host, unsigned port,
                       const struct check_mode *m, json_object *r)
{
    DWORD err2;
    json_object *again = attempt(o, host, port, m->imaps, m->starttls, 0, 1, &err2);
    if (err2 == 0) {
        json_object_object_foreach(again, key, val)
            if (strcmp(key, "error") != 0)
                json_object_object_add(r, key, json_object_get(val));
    }
    json_object_put(again);
}

/* Each TLS version on its own, certificate not required: what does the server accept? */
static json_object *tls_versions(struct cli_opts *o, const char *host, unsigned port,
                                 const struct check_mode *m)
{
    static const struct { const char *name; DWORD bit; } v[] = {
        {"TLSv1.2", SECURITY_PROTOCOL_TLS12}, {"TLSv1.3", SECURITY_PROTOCOL_TLS13}};
    json_object *versions = json_object_new_object();
    for (size_t k = 0; k < 2; k++) {
        DWORD e2;
        json_object *t = attempt(o, host, port, m->imaps, m->starttls, v[k].bit, 1, &e2);
        json_object_object_add(versions, v[k].name, json_object_new_boolean(e2 == 0));
        json_object_put(t);
    }
    return versions;
}

/* -v: one mode's facts, or its error, as lines. */
static void print_mode(const struct cli_opts *o, const struct check_mode *m, const char *host,
                       unsigned port, json_object *r, json_object *versions)
{
    json_object *e;
    printf("%s (%s://%s:%u):\n", m->name, m->imaps ? "imaps" : "imap", host, port);
    if (json_object_object_get_ex(r, "error", &e) && e != NULL)
        print_error(o, e);
    if (json_object_object_get_ex(r, "timings_us", NULL))
        cli_print_facts(o, r, "  ");
    if (versions != NULL) {
        printf("  tls versions:    ");
        json_object_object_foreach(versions, key, val)
            printf("%s %s  ", key, json_object_get_boolean(val) ? "yes" : "no");
        printf("\n");
    }
}

/* One mode tried on its port: its row of the report, and its part of the sum. */
static json_object *check_mode(struct cli_opts *o, const struct cli_url *u,
                               const struct check_mode *m, struct check_sum *sum)
{
    unsigned port = m->imaps ? (u->imaps && u->port ? u->port : o->imaps_port)
                             : u->port ? u->port : IMAP_PORT_DEFAULT;
    DWORD err;
    json_object *r = attempt(o, u->host, port, m->imaps, m->starttls, 0, o->insecure, &err);
    json_object *versions = NULL;

    json_object_object_add(r, "mode", json_object_new_string(m->name));
    json_object_object_add(r, "port", json_object_new_int((int)port));
    if (is_cert_error(err))
        look_again(o, u->host, port, m, r);
    json_object_object_add(r, "ok", json_object_new_boolean(err == 0));
    json_object_object_add(r, "verified", json_object_new_boolean(
        err == 0 && !o->insecure && (m->imaps || m->starttls)));
    sum->any |= err == 0;
    if (err == 0 && !m->imaps && !m->starttls) {
        char shown[1024];
        sum->clear_ok = 1;
        clear_auth(r, shown, sizeof shown);
        json_object_object_add(r, "mechanisms_in_clear", json_object_new_string(shown));
        sum->clear_pass = json_object_array_length(json_object_object_get(r, "auth_in_clear")) > 0;
    } else {
        json_object_object_add(r, "auth_in_clear", NULL);
        sum->tls_ok |= err == 0;
    }
    if (err != 0)
        sum->last = cli_exit_code(err);
    if ((m->imaps || m->starttls) && (err == 0 || is_cert_error(err)))
        versions = tls_versions(o, u->host, port, m);
    json_object_object_add(r, "tls_versions", versions);
    if (!o->json && o->trace)
        print_mode(o, m, u->host, port, r, versions);
    return r;
}

/* --require-tls: the problems found, in the report and on stderr; 1 when there are any. */
static int require_tls(json_object *report, const struct check_sum *sum)
{
    json_object *rt = json_object_new_object(), *problems = json_object_new_array();
    if (sum->clear_ok && !sum->tls_ok)
        json_object_array_add(problems, json_object_new_string(
            "only cleartext works: no STARTTLS or implicit TLS connects"));
    if (sum->clear_pass)
        json_object_array_add(problems, json_object_new_string(
            "a password (PLAIN or LOGIN) can be sent in clear: LOGINDISABLED is absent"));
    json_object_object_add(rt, "ok", json_object_new_boolean(
        json_object_array_length(problems) == 0));
    for (size_t i = 0; i < json_object_array_length(problems); i++)
        fprintf(stderr, "imapwire: --require-tls: %s\n", json_object_get_string(
            json_object_array_get_idx(problems, i)));
    json_object_object_add(rt, "problems", problems);
    json_object_object_add(report, "require_tls", rt);
    return !json_object_get_boolean(json_object_object_get(rt, "ok"));
}

int cmd_check(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    json_object *report = json_object_new_object(), *list;
    struct check_sum sum = { .any = 0, .last = EXIT_FAILURE_OTHER };
    size_t first = 0, end = 3;
    int rc;

    json_object_object_add(report, "command", json_object_new_string("check"));
    if ((rc = check_args(o, argc, argv, &u, &first, &end, report)) != 0)
        return cli_finish(o, report, rc);
    if (o->insecure)
        cli_warn(o, "--insecure: certificates are reported but not required to verify");
    json_object_object_add(report, "host", json_object_new_string(u.host));
    if (!o->json)
        printf("checking %s\n", u.host);
    list = json_object_new_array();
    for (size_t i = first; i < end; i++)
        json_object_array_add(list, check_mode(o, &u, &modes[i], &sum));
    json_object_object_add(report, "modes", list);
    if (!o->json) {
        printf("%-9s %-6s %-31s %-8s %-16s %s\n", "mode", "port", "result", "tls",
               "certificate", "auth in clear");
        for (size_t i = 0; i < json_object_array_length(list); i++)
            print_row(json_object_array_get_idx(list, i));
    }
    if (sum.any && o->require_tls && require_tls(report, &sum))
        return cli_finish(o, report, EXIT_INSECURE);
    return cli_finish(o, report, sum.any ? EXIT_OK : sum.last);
}
