/* request.c: curl's IMAP habits: "list", "search", -X COMMAND (one raw command, its
 * untagged responses on stdout, escaped), and a bare URL read as curl reads it. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

struct responses {
    const struct cli_opts *o;
    json_object *list;
};

static VOID on_response(HCLIENT h, LPCTSTR data, DWORD len, LPVOID param)
{
    struct responses *r = param;
    (void)h;
    cli_put_response(r->o, data, len, r->list);
}

/* Logs in, selects the URL's mailbox when select is set, runs command and shows its
 * untagged responses. */
static int run_command(struct cli_opts *o, const char *name, const char *url_text,
                       struct cli_url *u, int select, const char *command)
{
    struct cli_session s;
    struct responses r = { o, json_object_new_array() };
    json_object *report = json_object_new_object();
    char result[512];
    int rc;

    memset(&s, 0, sizeof s);
    json_object_object_add(report, "command", json_object_new_string(name));
    json_object_object_add(report, "url", json_object_new_string(url_text));
    if (strpbrk(command, "\r\n") != NULL) {
        json_object_put(r.list);
        return cli_finish(o, report, cli_usage_error(o, report, "the IMAP command must be "
                                                     "one line"));
    }
    rc = cli_open_quiet(o, u, &s, report);
    if (rc == 0 && select) {
        IMAPMAILBOX mb;
        memset(&mb, 0, sizeof mb);
        if (ImapSelectMailbox(s.h, u->mailbox, &mb) == IMAP_ERROR) {
            DWORD e = ImapGetLastError();
            rc = cli_fail(o, report, e == ST_ERROR_COMMAND_FAILED ? ST_ERROR_MESSAGE_NOT_FOUND
                                                                  : e,
                          "select", u->host, s.port);
        }
    }
    if (rc == 0) {
        json_object_object_add(report, "request", json_object_new_string(command));
        if (ImapCommandEx(s.h, command, on_response, &r, result, (INT)sizeof result) ==
            IMAP_ERROR)
            rc = cli_fail(o, report, ImapGetLastError(), command, u->host, s.port);
        fflush(stdout);
    }
    json_object_object_add(report, "responses", r.list);
    cli_release(&s);
    return cli_finish(o, report, rc);
}

/* LIST "" * for a server; LIST "BOX" * for a mailbox (curl's folder list); -X replaces it. */
static int list_url(struct cli_opts *o, const char *text, struct cli_url *u)
{
    char command[600];
    if (o->request != NULL)
        return run_command(o, "request", text, u, u->mailbox[0] != '\0', o->request);
    snprintf(command, sizeof command, "LIST \"%s\" *", u->mailbox);
    return run_command(o, "list", text, u, 0, command);
}

/* UID SEARCH: the numbers are UIDs, which ;UID= takes. */
static int search_url(struct cli_opts *o, const char *text, struct cli_url *u,
                      const char *query)
{
    char command[1200];
    int n;
    if (u->mailbox[0] == '\0')
        snprintf(u->mailbox, sizeof u->mailbox, "INBOX");
    n = snprintf(command, sizeof command, "UID SEARCH %s", query);
    if (n < 0 || (size_t)n >= sizeof command)
        return cli_usage_error(o, NULL, "the search query is too long");
    return run_command(o, "search", text, u, 1, command);
}

static int parse(struct cli_opts *o, const char *text, struct cli_url *u)
{
    char why[256];
    if (cli_url_parse(text, u, why, sizeof why) != 0)
        return cli_url_error(o, NULL, text, why);
    return 0;
}

int cmd_list(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    int rc;
    if (argc != 1)
        return cli_usage_error(o, NULL, "list takes one URL, e.g. imaps://user@host/");
    if ((rc = parse(o, argv[0], &u)) != 0)
        return rc;
    return list_url(o, argv[0], &u);
}

int cmd_search(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    char query[1024] = "";
    size_t n = 0;
    int rc;

    if (argc < 1)
        return cli_usage_error(o, NULL, "search takes a URL and a query, e.g. "
                               "imaps://user@host/INBOX UNSEEN");
    if ((rc = parse(o, argv[0], &u)) != 0)
        return rc;
    for (int i = 1; i < argc; i++) {
        int w = snprintf(query + n, sizeof query - n, "%s%s", n ? " " : "", argv[i]);
        if (w < 0 || (size_t)w >= sizeof query - n)
            return cli_usage_error(o, NULL, "the search query is too long");
        n += (size_t)w;
    }
    if (n > 0 && u.query[0] != '\0')
        return cli_usage_error(o, NULL, "give the query once: after the URL or as its ?QUERY");
    if (n == 0 && u.query[0] == '\0')
        return cli_usage_error(o, NULL, "search needs a query, e.g. ALL, UNSEEN or "
                               "SUBJECT \"text\"");
    return search_url(o, argv[0], &u, n ? query : u.query);
}

/* As curl: -X runs its command (in the URL's mailbox), else ;UID= or ;MAILINDEX=
 * fetches, ?QUERY searches, anything else lists. */
int cmd_url(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    int rc;
    if (argc != 1)
        return cli_usage_error(o, NULL, "give one URL");
    if ((rc = parse(o, argv[0], &u)) != 0)
        return rc;
    if (o->request == NULL && (u.uid != 0 || u.mailindex != 0))
        return cmd_fetch(o, argc, argv);
    if (u.query[0] != '\0' && o->request == NULL)
        return search_url(o, argv[0], &u, u.query);
    return list_url(o, argv[0], &u);
}
