/* report.c: what a connect learns after the login, told honestly: the mechanism that
 * was used, the capabilities after it, a password sent in clear, the URL's mailbox. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *mechanism_name(INT type)
{
    switch (type) {
    case IMAP_AUTH_SCRAM_SHA256: return "SCRAM-SHA-256";
    case IMAP_AUTH_SCRAM_SHA1:   return "SCRAM-SHA-1";
    case IMAP_AUTH_PLAIN:        return "PLAIN";
    case IMAP_AUTH_LOGIN:        return "LOGIN";
    case IMAP_AUTH_XOAUTH2:      return "XOAUTH2";
    case IMAP_AUTH_BEARER:       return "OAUTHBEARER";
    case IMAP_AUTH_ANONYMOUS:    return "ANONYMOUS";
    default:                     return NULL;     /* PREAUTH: no login ran */
    }
}

void cli_login_facts(const struct cli_opts *o, const struct cli_session *s, const char *user,
                     json_object *login)
{
    INT type = ImapGetAuthType(s->h);
    const char *mech = type == IMAP_ERROR ? NULL : mechanism_name(type);
    char capa[8192], shown[8192], *save = NULL, *w;
    json_object *list = json_object_new_array();

    json_object_object_add(login, "mechanism", mech ? json_object_new_string(mech) : NULL);
    if (ImapGetCapabilities(s->h, capa, (INT)sizeof capa) == IMAP_ERROR)
        capa[0] = '\0';
    /* the server's words, escaped before a terminal sees them */
    cli_visible(capa, strlen(capa), shown, sizeof shown);
    for (w = strtok_r(capa, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
        json_object_array_add(list, json_object_new_string(w));
    json_object_object_add(login, "capabilities", list);
    if (!o->json) {
        printf("  login:           ok as %s%s%s%s\n", user, mech ? " (" : "", mech ? mech : "",
               mech ? ")" : "");
        printf("  after login:     %s\n", shown);
    }
    cli_warn_clear(o, s);
}

void cli_warn_clear(const struct cli_opts *o, const struct cli_session *s)
{
    INT type = ImapGetAuthType(s->h);
    /* SCRAM proves the password without sending it; these send it (or the token) as is */
    if (strcmp(s->mode, "plain") == 0 &&
        (type == IMAP_AUTH_PLAIN || type == IMAP_AUTH_LOGIN || type == IMAP_AUTH_XOAUTH2 ||
         type == IMAP_AUTH_BEARER))
        cli_warn(o, "the password went to the server in clear (%s without TLS%s): anyone on "
                 "the path can read it; use --starttls or imaps://", mechanism_name(type),
                 o->tunnel ? ", in clear past the SSH tunnel's last hop" : "");
}

int cli_select_report(const struct cli_opts *o, const struct cli_url *u,
                      const struct cli_session *s, json_object *report)
{
    IMAPMAILBOX mb;
    json_object *m;
    char shown[1100];

    if (ImapSelectMailbox(s->h, u->mailbox, &mb) == IMAP_ERROR) {
        DWORD e = ImapGetLastError();
        return cli_fail(o, report, e == ST_ERROR_COMMAND_FAILED ? ST_ERROR_MESSAGE_NOT_FOUND : e,
                        "select", u->host, s->port);
    }
    m = json_object_new_object();
    json_object_object_add(m, "name", json_object_new_string(u->mailbox));
    json_object_object_add(m, "messages", json_object_new_int64(mb.dwMessages));
    json_object_object_add(m, "recent", json_object_new_int64(mb.dwRecent));
    json_object_object_add(m, "first_unseen", json_object_new_int64(mb.dwFirstUnseen));
    json_object_object_add(m, "uidvalidity", json_object_new_int64(mb.dwUidValidity));
    json_object_object_add(m, "uidnext", json_object_new_int64(mb.dwUidNext));
    json_object_object_add(report, "mailbox", m);
    if (!o->json) {
        cli_visible(u->mailbox, strlen(u->mailbox), shown, sizeof shown);
        printf("  mailbox:         %s, %u messages, %u recent, UIDVALIDITY %u, UIDNEXT %u\n",
               shown, (unsigned)mb.dwMessages, (unsigned)mb.dwRecent,
               (unsigned)mb.dwUidValidity, (unsigned)mb.dwUidNext);
    }
    return 0;
}
