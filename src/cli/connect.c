/* connect.c: turns the command line into an imapwire connect (credentials, tunnel,
 * proxy, transport), reads the password without echo or argv, and runs "connect". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include "cli.h"

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Ctrl-C or a kill at the prompt must not leave the terminal without echo. */
static struct termios tty_saved;
static volatile sig_atomic_t tty_fd = -1;

static void restore_tty(int sig)
{
    if (tty_fd >= 0)
        tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A no-echo prompt on the controlling terminal (not stdin, which may carry data). */
static int prompt_password(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    struct sigaction sa, old_int, old_term, old_hup;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), echo_off = 0;
    size_t n = 0;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_tty;
    sigemptyset(&sa.sa_mask);
    if (tcgetattr(fd, &old) == 0) {
        tty_saved = old;
        tty_fd = fd;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    /* the prompt only once echo is off: what is typed after it is never shown or lost */
    if (write(fd, prompt, strlen(prompt)) < 0)
        n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n' || c == '\r')
            break;
        if (n + 1 < size)
            buf[n++] = c;
    }
    buf[n] = '\0';
    if (echo_off)
        tcsetattr(fd, TCSADRAIN, &old);
    if (tty_fd >= 0) {
        tty_fd = -1;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
    }
    if (write(fd, "\n", 1) < 0) {
        /* nothing to do: the newline is cosmetic */
    }
    close(fd);
    return 0;
}

/* The password: --password-file, else IMAPWIRE_PASSWORD, else the prompt. Never argv,
 * so it cannot show in ps. 0, or an exit code. */
int cli_read_password(const struct cli_opts *o, const char *prompt, char *buf, size_t size)
{
    /* getenv: the invoking user's own password for the server named on the same command
     * line; it chooses nothing that a privileged identity would trust. */
    const char *env = getenv("IMAPWIRE_PASSWORD");

    if (o->password_file != NULL) {
        FILE *f = fopen(o->password_file, "re");
        size_t n;
        if (f == NULL) {
            fprintf(stderr, "imapwire: cannot read the password file %s: %s\n  fix: check "
                    "the path and its permissions\n", o->password_file, strerror(errno));
            return EXIT_LOCAL_IO;
        }
        if (fgets(buf, (int)size, f) == NULL)
            buf[0] = '\0';
        fclose(f);
        n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        return 0;
    }
    if (env != NULL) {
        snprintf(buf, size, "%s", env);
        return 0;
    }
    if (prompt_password(prompt, buf, size) != 0) {
        fprintf(stderr, "imapwire: no terminal to ask for the password\n  fix: use "
                "--password-file FILE or the IMAPWIRE_PASSWORD environment variable\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* -u user:password first (the caller chose argv), then --password-file, a netrc entry
 * when asked for (curl's --netrc, --netrc-optional, --netrc-file), then
 * IMAPWIRE_PASSWORD or the prompt. */
int cli_credentials(const struct cli_opts *o, const struct cli_url *u, const char **user,
                    char *login, size_t login_size, char *pass, size_t pass_size)
{
    char prompt[600];

    if (o->user_password != NULL && *user != NULL) {
        snprintf(pass, pass_size, "%s", o->user_password);
        return 0;
    }
    if (o->password_file == NULL && (o->netrc || o->netrc_file)) {
        int r = cli_netrc_lookup(o->netrc_file, u->host, *user, login, login_size, pass,
                                 pass_size);
        if (r < 0)
            return EXIT_LOCAL_IO;
        if (r == 1 && login[0] != '\0' && pass[0] != '\0') {
            *user = login;
            return 0;
        }
        if (o->netrc != CLI_NETRC_OPTIONAL) {
            fprintf(stderr, "imapwire: no netrc entry with a login and password for %s%s%s\n"
                    "  fix: add \"machine %s login USER password PASSWORD\", or use "
                    "--netrc-optional\n", u->host, *user ? " and user " : "",
                    *user ? *user : "", u->host);
            return EXIT_USAGE;
        }
        if (r == 1 && *user == NULL && login[0] != '\0')
            *user = login;         /* a login without a password: asked for below */
    }
    if (*user == NULL)
        return 0;
    snprintf(prompt, sizeof prompt, "Password for %.256s@%.256s: ", *user, u->host);
    return cli_read_password(o, prompt, pass, pass_size);
}

UINT cli_auth_type(const char *name, int *ok)
{
    static const struct {
        const char *name;
        UINT type;
    } types[] = {
        {"default", IMAP_AUTH_DEFAULT}, {"scram", IMAP_AUTH_SCRAM_SHA256},
        {"scram-sha256", IMAP_AUTH_SCRAM_SHA256}, {"scram-sha1", IMAP_AUTH_SCRAM_SHA1},
        {"plain", IMAP_AUTH_PLAIN}, {"login", IMAP_AUTH_LOGIN},
        {"xoauth2", IMAP_AUTH_XOAUTH2}, {"bearer", IMAP_AUTH_BEARER},
    };
    *ok = 1;
    if (name == NULL)
        return IMAP_AUTH_DEFAULT;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(name, types[i].name) == 0)
            return types[i].type;
    *ok = 0;
    return IMAP_AUTH_DEFAULT;
}

/* --proxy socks5://[user@]host:port or http://[user@]host:port as the plugin's string;
 * the proxy password comes from IMAPWIRE_PROXY_PASSWORD, never from argv. */
static int proxy_transport(const struct cli_opts *o, char *out, size_t size, json_object *report)
{
    const char *p = o->proxy, *rest, *at, *name;
    /* getenv: as IMAPWIRE_PASSWORD, the caller's own secret for a proxy named in argv */
    const char *pass = getenv("IMAPWIRE_PROXY_PASSWORD");
    char shown[1024];
    int n;

    cli_hide_password(p, shown, sizeof shown);
    if (strncmp(p, "socks5://", 9) == 0 || strncmp(p, "socks5h://", 10) == 0) {
        name = "socks5";
        rest = strstr(p, "://") + 3;
    } else if (strncmp(p, "http://", 7) == 0) {
        name = "httpconnect";
        rest = p + 7;
    } else {
        return cli_usage_error(o, report, "--proxy %s: use socks5://[user@]host:port or "
                               "http://[user@]host:port", shown);
    }
    if (rest[0] != '\0' && rest[strlen(rest) - 1] == '/')
        return cli_usage_error(o, report, "--proxy %s: no path after host:port", shown);
    at = strrchr(rest, '@');
    if (at != NULL) {
        if (memchr(rest, ':', (size_t)(at - rest)) != NULL)
            return cli_usage_error(o, report, "--proxy: a password does not belong on the "
                                   "command line (ps shows it); set IMAPWIRE_PROXY_PASSWORD");
        if (pass == NULL || *pass == '\0')
            return cli_usage_error(o, report, "--proxy names a user: set its password in "
                                   "IMAPWIRE_PROXY_PASSWORD");
        n = snprintf(out, size, "%s:%.*s:%s@%s", name, (int)(at - rest), rest, pass, at + 1);
    } else {
        n = snprintf(out, size, "%s:%s", name, rest);
    }
    if (n < 0 || (size_t)n >= size)
        return cli_usage_error(o, report, "--proxy: too long");
    return 0;
}

int cli_build(const struct cli_opts *o, const char *host, unsigned port, int imaps,
              int starttls, struct cli_session *s, json_object *report)
{
    DWORD opt = 0;
    /* getenv: as IMAPWIRE_PASSWORD; the key it unlocks is named in argv anyway */
    const char *ssh_pass = getenv("IMAPWIRE_SSH_PASSWORD");
    int rc;

    memset(s, 0, sizeof *s);
    s->creds.dwSize = sizeof s->creds;
    s->creds.lpszCAFile = o->ca;
    s->creds.lpszServerName = o->servername;
    if (imaps) {
        opt |= IMAP_OPTION_SECURE_IMPLICIT;
        s->mode = "imaps";
    } else if (starttls) {
        opt |= IMAP_OPTION_SECURE_EXPLICIT;
        s->mode = "starttls";
    } else {
        s->mode = "plain";
    }
    if (o->insecure)
        opt |= IMAP_OPTION_TRUSTEDSITE;
    if (o->identify)
        opt |= IMAP_OPTION_IDENTIFY;
    if (o->tunnel != NULL) {
        opt |= IMAP_OPTION_TUNNEL;
        s->creds.lpszTunnelHost = o->tunnel;
        s->creds.lpszTunnelKey = o->ssh_key;
        s->creds.lpszKnownHosts = o->known_hosts;
        if (ssh_pass != NULL) {
            snprintf(s->tunnel_pass, sizeof s->tunnel_pass, "%s", ssh_pass);
            s->creds.lpszTunnelPassword = s->tunnel_pass;
        }
        if (o->ssh_config)
            s->creds.dwOptions |= CREDENTIAL_TUNNEL_SSH_CONFIG;
        if (o->accept_new)
            s->creds.dwOptions |= CREDENTIAL_TUNNEL_ACCEPT_NEW;
    }
    if (o->proxy != NULL) {
        if ((rc = proxy_transport(o, s->transport, sizeof s->transport, report)) != 0)
            return rc;
        s->info.lpszTransport = s->transport;
    } else {
        s->info.lpszTransport = o->transport;
    }
    s->port = port ? port : imaps ? IMAP_PORT_SECURE : IMAP_PORT_DEFAULT;
    s->info.dwSize = sizeof s->info;
    s->info.lpszHostName = host;
    s->info.nRemotePort = s->port;
    s->info.nTimeout = o->timeout;
    s->info.dwOptions = opt;
    s->info.lpCredentials = &s->creds;
    s->info.lpszLocalAddress = o->local;
    s->info.lpszDnsServers = o->dns;
    s->info.lpszClientName = "imapwire-cli";
    s->info.lpTraceProc = o->trace ? cli_trace : NULL;
    return 0;
}

void cli_release(struct cli_session *s)
{
    if (s->h != INVALID_CLIENT)
        ImapDisconnect(s->h);
    s->h = INVALID_CLIENT;
    wipe(s->transport, sizeof s->transport);
    wipe(s->tunnel_pass, sizeof s->tunnel_pass);
    wipe(s->password, sizeof s->password);
    wipe(s->login, sizeof s->login);
}

/* A route the caller gave (--proxy, --transport) as the report shows it: no password,
 * nothing that drives a terminal. */
static void shown_route(const char *route, char *out, size_t size)
{
    char hidden[1024];
    cli_hide_password(route, hidden, sizeof hidden);
    cli_visible(hidden, strlen(hidden), out, size);
}

static json_object *route_string(const char *route)
{
    char shown[4096];
    if (route == NULL)
        return NULL;
    shown_route(route, shown, sizeof shown);
    return json_object_new_string(shown);
}

static void describe_target(json_object *report, const struct cli_opts *o,
                            const struct cli_session *s, const char *host)
{
    json_object_object_add(report, "host", json_object_new_string(host));
    json_object_object_add(report, "port", json_object_new_int((int)s->port));
    json_object_object_add(report, "security", json_object_new_string(s->mode));
    json_object_object_add(report, "tunnel", o->tunnel ? json_object_new_string(o->tunnel) : NULL);
    json_object_object_add(report, "proxy", route_string(o->proxy));
    json_object_object_add(report, "transport", route_string(o->transport));
    json_object_object_add(report, "insecure", json_object_new_boolean(o->insecure));
}

/* Connects (and logs in when a user is known and wanted); the facts go into report.
 * 0, or an exit code after the error has been told. */
int cli_open(const struct cli_opts *o, const struct cli_url *u, struct cli_session *s,
             json_object *report)
{
    const char *user = u->user[0] ? u->user : o->user;
    int rc, ok;
    UINT auth = cli_auth_type(o->auth, &ok);
    json_object *facts, *login = NULL;

    if (!ok)
        return cli_usage_error(o, report, "--auth %s: use scram, scram-sha1, plain, login, "
                               "xoauth2, bearer or default", o->auth);
    if (o->starttls && u->imaps)
        return cli_usage_error(o, report, "--starttls is for imap://; imaps:// is TLS from "
                               "the start");
    if ((rc = cli_build(o, u->host, u->port, u->imaps, o->starttls, s, report)) != 0)
        return rc;
    describe_target(report, o, s, u->host);
    if (o->plugin != NULL && ImapLoadPlugin(o->plugin) == IMAP_ERROR)
        return cli_fail(o, report, ImapGetLastError(), "loading the plugin", u->host, s->port);
    if (o->insecure)
        cli_warn(o, "--insecure: the server's certificate is NOT checked; anyone on the "
                 "path can read and change this connection");
    /* asked before connecting, so the server's login timer does not run while a person
     * types; a user from the URL, -u or netrc means log in */
    if ((rc = cli_credentials(o, u, &user, s->login, sizeof s->login, s->password,
                              sizeof s->password)) != 0)
        return rc;
    s->h = ImapConnectEx(&s->info);
    if (s->h == INVALID_CLIENT) {
        json_object_object_add(report, "connected", json_object_new_boolean(0));
        DWORD err = ImapGetLastError();
        /* a name mismatch is about the name checked, which --servername may have set */
        rc = cli_fail(o, report, err, "connect",
                      err == ST_ERROR_CERTIFICATE_NAME_MISMATCH && o->servername
                          ? o->servername : u->host, s->port);
        /* the phase that stalled shows in the timings of the failed attempt (asked after
         * the error info: a connect that never began has none, and asking fails) */
        json_object_object_add(report, "timings_us", cli_failed_timings());
        return rc;
    }
    json_object_object_add(report, "connected", json_object_new_boolean(1));
    facts = cli_facts(s->h);
    json_object_object_foreach(facts, key, val)
        json_object_object_add(report, key, json_object_get(val));
    json_object_put(facts);
    if (!o->json) {
        char proxy[4096], transport[4096];
        shown_route(o->proxy ? o->proxy : "", proxy, sizeof proxy);
        shown_route(o->transport ? o->transport : "", transport, sizeof transport);
        printf("connected to %s://%s:%u (%s%s%s%s%s%s%s)\n", u->imaps ? "imaps" : "imap",
               u->host, s->port, s->mode, o->tunnel ? ", ssh tunnel " : "",
               o->tunnel ? o->tunnel : "", o->proxy ? ", proxy " : "", proxy,
               o->transport ? ", transport " : "", transport);
        cli_print_facts(o, report, "  ");
    }
    if (user != NULL) {
        int r;
        login = json_object_new_object();
        json_object_object_add(login, "user", json_object_new_string(user));
        json_object_object_add(login, "auth", json_object_new_string(o->auth ? o->auth : "default"));
        json_object_object_add(report, "login", login);
        r = ImapLogin(s->h, auth, user, s->password);
        if (r == IMAP_ERROR && ImapGetLastError() != ST_ERROR_ALREADY_AUTHENTICATED) {
            json_object_object_add(login, "ok", json_object_new_boolean(0));
            return cli_fail(o, report, ImapGetLastError(), "login", u->host, s->port);
        }
        json_object_object_add(login, "ok", json_object_new_boolean(1));
        cli_login_facts(o, s, user, login);
    } else if (o->login) {
        return cli_usage_error(o, report, "--login needs a user: write it in the URL "
                               "(imap://user@host)");
    } else {
        json_object_object_add(report, "login", NULL);
    }
    return 0;
}

int cli_open_quiet(const struct cli_opts *o, const struct cli_url *u, struct cli_session *s,
                   json_object *report)
{
    /* the facts cli_open prints: to stderr under -v, else nowhere (stdout carries mail) */
    int saved = o->json ? -1 : dup(STDOUT_FILENO), to = -1, rc;

    if (saved >= 0) {
        to = o->trace ? dup(STDERR_FILENO) : open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (to >= 0)
            dup2(to, STDOUT_FILENO);
    }
    rc = cli_open(o, u, s, report);
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    if (to >= 0)
        close(to);
    return rc;
}

void cli_put_response(const struct cli_opts *o, const char *data, size_t len, json_object *list)
{
    if (o->json) {
        char shown[8192];
        cli_visible(data, len, shown, sizeof shown);
        json_object_array_add(list, json_object_new_string(shown));
        return;
    }
    size_t used = cli_put_visible(stdout, data, len, 1);
    if (used < len)
        cli_put_visible(stdout, data + used, len - used, 0);   /* a cut UTF-8 end */
    putchar('\n');
}

int cmd_connect(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    struct cli_session s;
    char why[256];
    json_object *report = json_object_new_object();
    int rc;

    memset(&s, 0, sizeof s);
    json_object_object_add(report, "command", json_object_new_string("connect"));
    if (argc != 1)
        return cli_finish(o, report, cli_usage_error(o, report, "connect takes one URL, e.g. "
                                                     "imaps://user@imap.example.com"));
    if (cli_url_parse(argv[0], &u, why, sizeof why) != 0)
        return cli_finish(o, report, cli_url_error(o, report, argv[0], why));
    json_object_object_add(report, "url", json_object_new_string(argv[0]));
    if (u.mailbox[0] != '\0' && !u.user[0] && o->user == NULL && !o->netrc && !o->netrc_file)
        return cli_finish(o, report, cli_usage_error(o, report, "the mailbox in the URL needs "
                                                     "a user to log in (imap://user@host/BOX)"));
    rc = cli_open(o, &u, &s, report);
    if (rc == 0 && u.mailbox[0] != '\0')
        rc = cli_select_report(o, &u, &s, report);
    cli_release(&s);
    return cli_finish(o, report, rc);
}
