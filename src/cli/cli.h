/* cli.h: what the imapwire command's files share: parsed options, the URL, the report
 * that every subcommand fills, and the exit codes (documented in imapwire.1). */
#ifndef IMAPWIRE_CLI_H
#define IMAPWIRE_CLI_H

#include <stdio.h>
#include <json-c/json.h>
#include <imapwire/imapwire.h>

/* Exit codes, one per class of failure, so a script can branch without parsing text. */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1,   /* anything not below (out of memory, library not usable) */
    EXIT_USAGE = 2,           /* bad command line or URL */
    EXIT_RESOLVE = 3,         /* the host name does not resolve */
    EXIT_CONNECT = 4,         /* refused, unreachable, network error */
    EXIT_TIMEOUT = 5,         /* a phase ran past --timeout */
    EXIT_TLS = 6,             /* TLS handshake failed, STARTTLS missing */
    EXIT_CERTIFICATE = 7,     /* the server's certificate was refused (or ours unusable) */
    EXIT_SSH_HOST_KEY = 8,    /* an SSH host key is unknown or has changed */
    EXIT_SSH = 9,             /* SSH authentication or channel failed */
    EXIT_LOGIN = 10,          /* the IMAP server refused the login */
    EXIT_PROTOCOL = 11,       /* the server closed, rejected, or did not speak IMAP */
    EXIT_TRANSPORT = 12,      /* unknown transport, plugin not loadable */
    EXIT_NOT_FOUND = 13,      /* fetch: no such mailbox or message */
    EXIT_LOCAL_IO = 14,       /* a local file (output, password file) failed */
    EXIT_INSECURE = 15        /* check --require-tls: only cleartext works, or a password
                                 mechanism is offered in clear without LOGINDISABLED */
};

struct cli_url {
    int  imaps;               /* imaps:// */
    char user[256];
    char host[256];
    unsigned port;            /* 0: the scheme's default */
    char mailbox[512];        /* "" when the URL has no path */
    unsigned uid;             /* ;UID=n, 0 when absent */
    unsigned mailindex;       /* ;MAILINDEX=n (curl's sequence number), 0 when absent */
    char section[128];        /* ;SECTION=, "" for the whole message */
    int partial;              /* ;PARTIAL=offset[.length] was given */
    unsigned long partial_off, partial_len;   /* length 0: to the end */
    char query[1024];         /* ?QUERY (curl's search), decoded; "" when absent */
};

struct cli_opts {
    int json, trace, insecure, starttls, login, identify, ssh_config, color_out, color_err;
    int accept_new;           /* --accept-new-host-key */
    int silent, show_error;   /* -s, -S */
    int require_tls;          /* check --require-tls */
    const char *request;      /* -X COMMAND */
    const char *user_password;  /* -u user:password (warned about) */
    unsigned timeout;
    unsigned imaps_port;      /* check: the implicit-TLS port */
    const char *ca, *servername, *tunnel, *ssh_key, *known_hosts, *proxy, *transport;
    const char *dns, *local, *password_file, *auth, *output, *ssh_config_file, *plugin;
    const char *user;
    const char *log, *netrc_file;   /* --log FILE; --netrc-file FILE */
    int netrc;                      /* 0, CLI_NETRC_REQUIRED or CLI_NETRC_OPTIONAL */
};
enum { CLI_NETRC_REQUIRED = 1, CLI_NETRC_OPTIONAL = 2 };

/* url.c */
int cli_url_parse(const char *text, struct cli_url *u, char *why, size_t why_size);

/* Colours of our own words, used only where cli_colors found a terminal. */
#define C_RED   "\033[31m"
#define C_GREEN "\033[32m"
#define C_YEL   "\033[33m"
#define C_BOLD  "\033[1m"
#define C_OFF   "\033[0m"

/* escape.c */
void cli_visible(const char *s, size_t n, char *out, size_t size);
size_t cli_put_visible(FILE *f, const char *s, size_t n, int text);
void cli_hide_password(const char *in, char *out, size_t size);

/* advice.c */
const char *cli_error_name(DWORD err);
int cli_exit_code(DWORD err);
/* The name of an IMAP_STAGE_* for the JSON report ("none" past the known ones). */
const char *cli_stage_name(DWORD stage);
/* The message and the advice for err, and the library's record of it in *ei (zeroed when
 * the thread's last failure was not err). */
void cli_describe(DWORD err, const char *host, unsigned port, IMAPERRORINFO *ei,
                  char *text, size_t text_size, char *fix, size_t fix_size);

/* errors.c */
json_object *cli_error_object(DWORD err, const char *host, unsigned port);
int cli_fail(const struct cli_opts *o, json_object *report, DWORD err, const char *what,
             const char *host, unsigned port);
int cli_usage_error(const struct cli_opts *o, json_object *report, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cli_url_error(const struct cli_opts *o, json_object *report, const char *url,
                  const char *why);
void cli_warn(const struct cli_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* facts.c */
json_object *cli_facts(HCLIENT h);
/* The phases of this thread's failed blocking connect (ImapGetLastTimings), or NULL. */
json_object *cli_failed_timings(void);
void cli_print_facts(const struct cli_opts *o, json_object *facts, const char *indent);

/* output.c */
void cli_colors(struct cli_opts *o);
void cli_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param);
int cli_finish(const struct cli_opts *o, json_object *report, int code);

/* connect.c */
struct cli_session {
    HCLIENT h;
    SECURITYCREDENTIALS creds;
    IMAPCONNECTINFO info;
    char transport[1024];     /* the --proxy string made into a plugin transport string */
    char tunnel_pass[512];
    char password[1024];      /* the IMAP password, wiped by cli_release */
    char login[256];          /* the user a netrc entry named */
    unsigned port;
    const char *mode;         /* "plain", "starttls" or "imaps" */
};
int cli_build(const struct cli_opts *o, const char *host, unsigned port, int imaps,
              int starttls, struct cli_session *s, json_object *report);
void cli_release(struct cli_session *s);
int cli_read_password(const struct cli_opts *o, const char *prompt, char *buf, size_t size);
UINT cli_auth_type(const char *name, int *ok);
int cli_open(const struct cli_opts *o, const struct cli_url *u, struct cli_session *s,
             json_object *report);
/* As cli_open, with the connect facts on stderr under -v and nowhere otherwise: for the
 * commands whose stdout carries mail. */
int cli_open_quiet(const struct cli_opts *o, const struct cli_url *u, struct cli_session *s,
                   json_object *report);
/* The user and password: -u user:password, --password-file, a netrc entry (--netrc,
 * --netrc-optional, --netrc-file), IMAPWIRE_PASSWORD, the prompt. *user NULL afterwards:
 * no login. 0, or an exit code after telling why. */
int cli_credentials(const struct cli_opts *o, const struct cli_url *u, const char **user,
                    char *login, size_t login_size, char *pass, size_t pass_size);
/* One untagged response on stdout (escaped) or into the JSON array. */
void cli_put_response(const struct cli_opts *o, const char *data, size_t len,
                      json_object *list);
int cmd_connect(struct cli_opts *o, int argc, char **argv);

/* report.c: after a login, the mechanism used and the capabilities (text and JSON) and a
 * warning when the password went out in clear; the URL's mailbox selected and told. */
void cli_login_facts(const struct cli_opts *o, const struct cli_session *s, const char *user,
                     json_object *login);
void cli_warn_clear(const struct cli_opts *o, const struct cli_session *s);
int cli_select_report(const struct cli_opts *o, const struct cli_url *u,
                      const struct cli_session *s, json_object *report);

/* netrc.c: the login and password of the first entry for host (and user, when not
 * NULL) in file (NULL: ~/.netrc), by curl's rules. 1 found, 0 no entry or no default
 * file, -1 an unreadable --netrc-file (told on stderr). */
int cli_netrc_lookup(const char *file, const char *host, const char *user,
                     char *login, size_t login_size, char *password, size_t password_size);

/* fetch.c, forward.c, check.c, tunnel.c */
int cmd_tunnel(struct cli_opts *o, int argc, char **argv);
int cmd_fetch(struct cli_opts *o, int argc, char **argv);
int cmd_forward(struct cli_opts *o, int argc, char **argv);
int cmd_check(struct cli_opts *o, int argc, char **argv);

/* request.c: list, search, -X COMMAND, and a bare URL as curl reads it */
int cmd_list(struct cli_opts *o, int argc, char **argv);
int cmd_search(struct cli_opts *o, int argc, char **argv);
int cmd_url(struct cli_opts *o, int argc, char **argv);

#endif
