/* tunnel.c: "imapwire tunnel": connects by any route, logs in, greets the client on
 * stdout with PREAUTH and the capabilities, then relays bytes both ways (ImapRelay). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cli.h"

/* A capability word fit to repeat in our greeting: an atom without ']' (RFC 3501). */
static int atom_word(const char *w)
{
    for (; *w; w++)
        if ((unsigned char)*w <= 0x20 || (unsigned char)*w >= 0x7f || strchr("(){%*\"\\]", *w))
            return 0;
    return 1;
}

/* The greeting the client reads first. Logged in: PREAUTH with the capabilities that
 * still mean something (not STARTTLS, AUTH=, LOGINDISABLED: the session is past them).
 * Not logged in: OK with all of them, and the client logs in through the relay. */
static int greeting(HCLIENT h, int preauth, char *out, size_t size)
{
    char capa[16384], *save = NULL, *w;
    size_t n;

    if (ImapGetCapabilities(h, capa, (INT)sizeof capa) == IMAP_ERROR)
        capa[0] = '\0';
    n = (size_t)snprintf(out, size, "* %s [CAPABILITY", preauth ? "PREAUTH" : "OK");
    for (w = strtok_r(capa, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        if (!atom_word(w) || (preauth && (strcasecmp(w, "STARTTLS") == 0 ||
                                           strncasecmp(w, "AUTH=", 5) == 0 ||
                                           strcasecmp(w, "LOGINDISABLED") == 0)))
            continue;
        if (n + strlen(w) + 64 >= size)
            break;
        n += (size_t)snprintf(out + n, size - n, " %s", w);
    }
    n += (size_t)snprintf(out + n, size - n, "] imapwire tunnel ready\r\n");
    return (int)n;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Connects and logs in: 0, or an exit code after the error has been told on stderr. */
static int establish(const struct cli_opts *o, const struct cli_url *u, struct cli_session *s,
                     json_object *report, char *login, size_t login_size)
{
    const char *user = u->user[0] ? u->user : o->user;
    int rc, ok;
    UINT auth = cli_auth_type(o->auth, &ok);

    if (!ok)
        return cli_usage_error(o, report, "--auth %s: use scram, scram-sha1, plain, login, "
                               "xoauth2, bearer or default", o->auth);
    if (o->starttls && u->imaps)
        return cli_usage_error(o, report, "--starttls is for imap://; imaps:// is TLS from "
                               "the start");
    if ((rc = cli_build(o, u->host, u->port, u->imaps, o->starttls, s, report)) != 0)
        return rc;
    if (o->plugin != NULL && ImapLoadPlugin(o->plugin) == IMAP_ERROR)
        return cli_fail(o, report, ImapGetLastError(), "loading the plugin", u->host, s->port);
    if (o->insecure)
        cli_warn(o, "--insecure: the server's certificate is NOT checked; anyone on the "
                 "path can read and change this connection");
    /* asked before connecting, so the server's login timer does not run while a person
     * types */
    if ((rc = cli_credentials(o, u, &user, login, login_size, s->password,
                              sizeof s->password)) != 0)
        return rc;
    s->h = ImapConnectEx(&s->info);
    if (s->h == INVALID_CLIENT) {
        DWORD err = ImapGetLastError();
        return cli_fail(o, report, err, "connect",
                        err == ST_ERROR_CERTIFICATE_NAME_MISMATCH && o->servername
                            ? o->servername : u->host, s->port);
    }
    if (user != NULL && ImapLogin(s->h, auth, user, s->password) == IMAP_ERROR &&
        ImapGetLastError() != ST_ERROR_ALREADY_AUTHENTICATED)
        return cli_fail(o, report, ImapGetLastError(), "login", u->host, s->port);
    explicit_bzero(s->password, sizeof s->password);
    if (user != NULL)
        cli_warn_clear(o, s);
    if (user == NULL && ImapGetState(s->h) != IMAP_STATE_AUTHENTICATED && o->trace)
        fprintf(stderr, "imapwire: no user and no PREAUTH: the client logs in itself\n");
    return 0;
}

static const char *ended_name(DWORD how)
{
    return how == IMAP_RELAY_ENDED_INPUT ? "the client's input ended"
         : how == IMAP_RELAY_ENDED_SERVER ? "the server closed"
         : how == IMAP_RELAY_ENDED_OUTPUT ? "the client stopped reading" : "an error";
}

int cmd_tunnel(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    struct cli_session s;
    IMAPRELAYINFO info;
    char why[256], login[256], hello[17000];
    json_object *report = json_object_new_object();
    int rc, out, len;

    memset(&s, 0, sizeof s);
    login[0] = '\0';
    if (argc != 1)
        rc = cli_usage_error(o, report, "tunnel takes one URL, e.g. imaps://user@imap.example.com");
    else if (o->json)
        rc = cli_usage_error(o, report, "--json is not for tunnel: its stdout carries IMAP only");
    else if (cli_url_parse(argv[0], &u, why, sizeof why) != 0)
        rc = cli_url_error(o, report, argv[0], why);
    else if (u.mailbox[0] != '\0' || u.uid != 0)
        rc = cli_usage_error(o, report, "tunnel: the URL names a server, not a mailbox "
                             "(the client selects its own)");
    else
        rc = 0;
    if (rc != 0) {
        json_object_put(report);
        return rc;
    }
    /* stdout is the client's IMAP stream from here on: the relay writes to a copy, and
     * whatever else would go to stdout (a library or libc message) goes to stderr */
    out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        fprintf(stderr, "imapwire: stdout: %s\n", strerror(errno));
        json_object_put(report);
        return EXIT_LOCAL_IO;
    }
    /* a client that goes away is an end of the relay, not a signal that kills us */
    signal(SIGPIPE, SIG_IGN);
    rc = establish(o, &u, &s, report, login, sizeof login);
    if (rc == 0) {
        len = greeting(s.h, ImapGetState(s.h) == IMAP_STATE_AUTHENTICATED, hello, sizeof hello);
        if (write_all(out, hello, (size_t)len) != 0) {
            rc = EXIT_OK;          /* the client left before the greeting: nothing to do */
        } else {
            memset(&info, 0, sizeof info);
            info.dwSize = sizeof info;
            if (ImapRelay(s.h, STDIN_FILENO, out, 0, &info) == IMAP_ERROR)
                rc = cli_fail(o, report, ImapGetLastError(), "relay", u.host, s.port);
            if (o->trace)
                fprintf(stderr, "imapwire: tunnel ended (%s): %llu bytes to the server, "
                        "%llu to the client\n", ended_name(info.dwEnded),
                        (unsigned long long)info.qwToServer,
                        (unsigned long long)info.qwFromServer);
        }
    }
    explicit_bzero(login, sizeof login);
    cli_release(&s);
    close(out);
    json_object_put(report);
    return rc;
}
