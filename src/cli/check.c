/* check.c: "imapwire check HOST[:PORT]": tries plain, STARTTLS and implicit TLS, and
 * for each tells what the server offers: capabilities, auth mechanisms, TLS versions,
 * cipher and certificate (shown even when it fails verification). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int cmd_check(struct cli_opts *o, int argc, char **argv)
{
    static const struct {
        const char *name;
        int imaps, starttls;
    } modes[] = {{"plain", 0, 0}, {"starttls", 0, 1}, {"imaps", 1, 0}};
    struct cli_url u;
    char why[256];
    json_object *report = json_object_new_object(), *list = json_object_new_array();
    int any = 0, last = EXIT_FAILURE_OTHER;

    json_object_object_add(report, "command", json_object_new_string("check"));
    if (argc != 1)
        return cli_finish(o, report, cli_usage_error(o, report, "check takes one HOST[:PORT]"));
    if (cli_url_parse(argv[0], &u, why, sizeof why) != 0 || u.imaps || u.user[0])
        return cli_finish(o, report, cli_url_error(o, report, argv[0], "write HOST or "
                          "HOST:PORT (the plain port; --imaps-port for TLS)"));
    if (o->insecure)
        cli_warn(o, "--insecure: certificates are reported but not required to verify");
    json_object_object_add(report, "host", json_object_new_string(u.host));
    if (!o->json)
        printf("checking %s\n", u.host);
    for (size_t i = 0; i < 3; i++) {
        unsigned port = modes[i].imaps ? o->imaps_port : u.port ? u.port : IMAP_PORT_DEFAULT;
        DWORD err;
        json_object *r = attempt(o, u.host, port, modes[i].imaps, modes[i].starttls, 0,
                                 o->insecure, &err), *versions;
        int verified = err == 0;

        json_object_object_add(r, "mode", json_object_new_string(modes[i].name));
        json_object_object_add(r, "port", json_object_new_int((int)port));
        if (is_cert_error(err)) {
            /* show what the server presents even though it does not verify */
            DWORD err2;
            json_object *again = attempt(o, u.host, port, modes[i].imaps, modes[i].starttls,
                                         0, 1, &err2);
            if (err2 == 0) {
                json_object_object_foreach(again, key, val)
                    if (strcmp(key, "error") != 0)
                        json_object_object_add(r, key, json_object_get(val));
            }
            json_object_put(again);
        }
        json_object_object_add(r, "ok", json_object_new_boolean(err == 0));
        json_object_object_add(r, "verified", json_object_new_boolean(
            verified && !o->insecure && (modes[i].imaps || modes[i].starttls)));
        any |= err == 0;
        if (err != 0)
            last = cli_exit_code(err);
        versions = NULL;
        if ((modes[i].imaps || modes[i].starttls) && (err == 0 || is_cert_error(err))) {
            /* each TLS version on its own, certificate not required: what does it accept? */
            static const struct { const char *name; DWORD bit; } v[] = {
                {"TLSv1.2", SECURITY_PROTOCOL_TLS12}, {"TLSv1.3", SECURITY_PROTOCOL_TLS13}};
            versions = json_object_new_object();
            for (size_t k = 0; k < 2; k++) {
                DWORD e2;
                json_object *t = attempt(o, u.host, port, modes[i].imaps, modes[i].starttls,
                                         v[k].bit, 1, &e2);
                json_object_object_add(versions, v[k].name, json_object_new_boolean(e2 == 0));
                json_object_put(t);
            }
        }
        json_object_object_add(r, "tls_versions", versions);
        if (!o->json) {
            json_object *e;
            printf("%s (%s://%s:%u):\n", modes[i].name, modes[i].imaps ? "imaps" : "imap",
                   u.host, port);
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
        json_object_array_add(list, r);
    }
    json_object_object_add(report, "modes", list);
    if (!o->json)
        printf("%s\n", any ? "at least one mode works" : "no mode works");
    return cli_finish(o, report, any ? EXIT_OK : last);
}
