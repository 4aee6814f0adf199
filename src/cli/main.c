/* main.c: the imapwire command's entry: options (getopt_long), --help, and the choice of
 * subcommand (connect, fetch, list, search, forward, check, tunnel, or a URL as curl
 * reads it); the work is in the other files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

static const char usage_text[] =
"usage: imapwire [OPTIONS] connect URL\n"
"       imapwire [OPTIONS] fetch URL/MAILBOX;UID=n [-o FILE]\n"
"       imapwire [OPTIONS] list URL[/MAILBOX]\n"
"       imapwire [OPTIONS] search URL/MAILBOX QUERY...\n"
"       imapwire [OPTIONS] [-X COMMAND] URL   (as curl: ;UID= fetches, ?QUERY searches,\n"
"                                              else LIST, or COMMAND)\n"
"       imapwire [OPTIONS] forward LOCALPORT HOST:PORT --tunnel HOPS\n"
"       imapwire [OPTIONS] check HOST[:PORT] | imap://HOST[:PORT] | imaps://HOST[:PORT]\n"
"       imapwire [OPTIONS] tunnel URL     (for a mail client's tunnel command)\n"
"\n"
"URL is imap://[user@]host[:port] or imaps://[user@]host[:port] (993), then\n"
"/MAILBOX[;UID=n|;MAILINDEX=n][;SECTION=s][;PARTIAL=off.len] or /MAILBOX?QUERY\n"
"(RFC 5092). A user (URL, -u, netrc) means log in; the password comes from -u, \n"
"--password-file, netrc, IMAPWIRE_PASSWORD or a prompt that does not echo.\n"
"\n"
"tunnel connects and logs in by any route below, writes \"* PREAUTH [CAPABILITY ...]\"\n"
"to stdout and then relays IMAP between stdin/stdout and the server until either side\n"
"ends (mbsync: Tunnel \"imapwire tunnel ...\", neomutt: set tunnel=\"...\").\n"
"\n"
"Security:\n"
"      --starttls           upgrade an imap:// connection with STARTTLS (required)\n"
"      --ca FILE            trust the CAs in this PEM file instead of the system store\n"
"      --servername NAME    the name the certificate must carry (and SNI)\n"
"  -k, --insecure           do not check the certificate (TRUSTEDSITE); warns on stderr\n"
"\n"
"SSH tunnel:\n"
"  -J, --tunnel HOPS        reach the server through SSH: [user@]host[:port][,more hops]\n"
"                           (the last hop connects to the IMAP host)\n"
"      --ssh-config [FILE]  HOPS is a Host of the OpenSSH client config (default\n"
"                           ~/.ssh/config, or IMAPWIRE_SSH_CONFIG)\n"
"  -i, --ssh-key FILE       SSH private key (default: the agent, then\n"
"                           IMAPWIRE_SSH_PASSWORD); IMAPWIRE_SSH_PASSWORD also unlocks the key\n"
"      --known-hosts FILE   host keys to accept (default ~/.ssh/known_hosts,\n"
"                           ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts)\n"
"      --accept-new-host-key  a host key no file has is accepted and appended to the\n"
"                           first writable file (ssh's StrictHostKeyChecking\n"
"                           accept-new); a changed key still fails\n"
"\n"
"Other routes:\n"
"  -x, --proxy URL          socks5://[user@]host:port or http://[user@]host:port; the\n"
"                           proxy password comes from IMAPWIRE_PROXY_PASSWORD\n"
"      --transport T        a transport string \"name\" or \"name:arguments\"\n"
"      --plugin FILE        load a transport plugin from this file first\n"
"      --dns-server LIST    resolvers, e.g. 127.0.0.1:5353,[::1]:53\n"
"      --local-address A    bind the outgoing socket to this address\n"
"\n"
"Login:\n"
"  -l, --login              log in (the user from the URL or --user)\n"
"  -u, --user USER[:PASS]   log in as USER, when the URL has none (a password here is\n"
"                           seen by other users in ps: a warning says so)\n"
"      --password-file F    read the password from the first line of F\n"
"      --netrc              the login and password from ~/.netrc (curl's rules); no\n"
"                           entry for the host: exit 2\n"
"      --netrc-optional     the same, falling back to the other sources without an entry\n"
"      --netrc-file FILE    as --netrc, from FILE\n"
"      --auth MECH          scram, scram-sha1, plain, login, xoauth2, bearer or default\n"
"                           (default: the strongest both sides have)\n"
"      --identify           send ID (RFC 2971) with the client's name and version\n"
"\n"
"General:\n"
"  -t, --timeout SECONDS    per connect phase (default 20)\n"
"  -X, --request COMMAND    one raw IMAP command; its untagged responses on stdout\n"
"  -v, --trace              protocol trace on stderr (passwords are redacted)\n"
"  -s, --silent             nothing on stderr (no warning, progress or error)\n"
"  -S, --show-error         with -s: errors still on stderr\n"
"      --log FILE           diagnostics (errors, warnings, trace) to FILE, not stderr\n"
"  -j, --json               the results as one JSON object on stdout\n"
"  -o, --output FILE        fetch: write the message here instead of stdout\n"
"      --imaps-port PORT    check: the implicit-TLS port (default 993)\n"
"      --require-tls        check: exit 15 when only cleartext works, or when PLAIN or\n"
"                           LOGIN is offered in clear without LOGINDISABLED\n"
"  -h, --help               this text\n"
"  -V, --version            the version\n"
"\n"
"Exit codes: 0 ok, 1 other, 2 usage, 3 name not found, 4 connect failed (refused,\n"
"unreachable), 5 timeout, 6 TLS, 7 certificate, 8 SSH host key, 9 SSH login or channel,\n"
"10 IMAP login, 11 server/protocol, 12 transport or plugin, 13 no such message,\n"
"14 local file, 15 check --require-tls found cleartext. See imapwire(1).\n";

enum { OPT_STARTTLS = 256, OPT_CA, OPT_SERVERNAME, OPT_SSH_CONFIG, OPT_KNOWN_HOSTS,
       OPT_TRANSPORT, OPT_PLUGIN, OPT_DNS, OPT_LOCAL, OPT_PASSWORD_FILE, OPT_AUTH,
       OPT_IDENTIFY, OPT_IMAPS_PORT, OPT_LOG, OPT_NETRC, OPT_NETRC_OPTIONAL, OPT_NETRC_FILE,
       OPT_ACCEPT_NEW, OPT_REQUIRE_TLS };

static char user_buf[256];   /* -u user:password: the user part */

static const struct option longopts[] = {
    {"starttls", no_argument, NULL, OPT_STARTTLS},
    {"ca", required_argument, NULL, OPT_CA},
    {"servername", required_argument, NULL, OPT_SERVERNAME},
    {"insecure", no_argument, NULL, 'k'},
    {"tunnel", required_argument, NULL, 'J'},
    {"ssh-config", optional_argument, NULL, OPT_SSH_CONFIG},
    {"ssh-key", required_argument, NULL, 'i'},
    {"known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS},
    {"accept-new-host-key", no_argument, NULL, OPT_ACCEPT_NEW},
    {"proxy", required_argument, NULL, 'x'},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"plugin", required_argument, NULL, OPT_PLUGIN},
    {"dns-server", required_argument, NULL, OPT_DNS},
    {"local-address", required_argument, NULL, OPT_LOCAL},
    {"login", no_argument, NULL, 'l'},
    {"user", required_argument, NULL, 'u'},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"netrc", no_argument, NULL, OPT_NETRC},
    {"netrc-optional", no_argument, NULL, OPT_NETRC_OPTIONAL},
    {"netrc-file", required_argument, NULL, OPT_NETRC_FILE},
    {"log", required_argument, NULL, OPT_LOG},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"identify", no_argument, NULL, OPT_IDENTIFY},
    {"timeout", required_argument, NULL, 't'},
    {"trace", no_argument, NULL, 'v'},
    {"request", required_argument, NULL, 'X'},
    {"silent", no_argument, NULL, 's'},
    {"show-error", no_argument, NULL, 'S'},
    {"json", no_argument, NULL, 'j'},
    {"output", required_argument, NULL, 'o'},
    {"imaps-port", required_argument, NULL, OPT_IMAPS_PORT},
    {"require-tls", no_argument, NULL, OPT_REQUIRE_TLS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int number(const char *s, unsigned long max, unsigned *out)
{
    char *e;
    unsigned long v = strtoul(s, &e, 10);
    if (*s == '\0' || *e != '\0' || v == 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* "--ssh-config FILE" as well as "--ssh-config=FILE": getopt gives an optional argument
 * only in the second form, so the next word is taken when it names a file and is
 * neither an option nor a command. */
static const char *ssh_config_operand(int argc, char **argv)
{
    static const char *const commands[] = { "connect", "fetch", "forward", "check", "tunnel",
                                            "list", "search" };
    const char *next = optind < argc ? argv[optind] : NULL;
    struct stat st;
    if (next == NULL || next[0] == '-' || strstr(next, "://") != NULL ||
        stat(next, &st) != 0 || S_ISDIR(st.st_mode))
        return NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(next, commands[i]) == 0)
            return NULL;
    optind++;
    return next;
}

/* -u user[:password]: curl allows the password here; it is taken, blanked in argv (so a
 * later ps shows stars) and warned about once, after the options (-s may follow). */
static int user_option(struct cli_opts *o, char *arg)
{
    char *colon = strchr(arg, ':');
    size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
    static char pass[1024];

    if (n == 0 || n >= sizeof user_buf)
        return -1;
    memcpy(user_buf, arg, n);
    user_buf[n] = '\0';
    o->user = user_buf;
    if (colon != NULL) {
        snprintf(pass, sizeof pass, "%s", colon + 1);
        for (char *p = colon + 1; *p; p++)
            *p = '*';
        o->user_password = pass;
    }
    return 0;
}

/* What option() and the checks after it return to say "go on": any other value is the
 * exit code to leave with (0 after --help or --version). */
enum { GO_ON = -1 };

/* One option from getopt_long into *o. */
static int option(struct cli_opts *o, int c, int argc, char **argv)
{
    switch (c) {
    case OPT_STARTTLS:      o->starttls = 1; break;
    case OPT_CA:            o->ca = optarg; break;
    case OPT_SERVERNAME:    o->servername = optarg; break;
    case 'k':               o->insecure = 1; break;
    case 'J':               o->tunnel = optarg; break;
    case OPT_SSH_CONFIG:
        o->ssh_config = 1;
        o->ssh_config_file = optarg ? optarg : ssh_config_operand(argc, argv);
        break;
    case 'i':               o->ssh_key = optarg; break;
    case OPT_KNOWN_HOSTS:   o->known_hosts = optarg; break;
    case OPT_ACCEPT_NEW:    o->accept_new = 1; break;
    case 'x':               o->proxy = optarg; break;
    case OPT_TRANSPORT:     o->transport = optarg; break;
    case OPT_PLUGIN:        o->plugin = optarg; break;
    case OPT_DNS:           o->dns = optarg; break;
    case OPT_LOCAL:         o->local = optarg; break;
    case 'l':               o->login = 1; break;
    case 'u':
        if (user_option(o, optarg) != 0)
            return cli_usage_error(o, NULL, "-u: the user name is empty or too long");
        break;
    case 'X':               o->request = optarg; break;
    case 's':               o->silent = 1; break;
    case 'S':               o->show_error = 1; break;
    case OPT_PASSWORD_FILE: o->password_file = optarg; break;
    case OPT_NETRC:         o->netrc = CLI_NETRC_REQUIRED; break;
    case OPT_NETRC_OPTIONAL: o->netrc = CLI_NETRC_OPTIONAL; break;
    case OPT_NETRC_FILE:    o->netrc_file = optarg; break;
    case OPT_LOG:           o->log = optarg; break;
    case OPT_AUTH:          o->auth = optarg; break;
    case OPT_IDENTIFY:      o->identify = 1; break;
    case 'v':               o->trace = 1; break;
    case 'j':               o->json = 1; break;
    case 'o':               o->output = optarg; break;
    case 't':
        if (number(optarg, 3600, &o->timeout) != 0)
            return cli_usage_error(o, NULL, "--timeout %s: seconds from 1 to 3600", optarg);
        break;
    case OPT_REQUIRE_TLS:   o->require_tls = 1; break;
    case OPT_IMAPS_PORT:
        if (number(optarg, 65535, &o->imaps_port) != 0)
            return cli_usage_error(o, NULL, "--imaps-port %s: 1 to 65535", optarg);
        break;
    case 'h':
        fputs(usage_text, stdout);
        return EXIT_OK;
    case 'V':
        printf("imapwire %s\n", IMAPWIRE_VERSION_STRING);
        return EXIT_OK;
    default:
        fputs("imapwire --help lists every option\n", stderr);
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int parse_options(struct cli_opts *o, int argc, char **argv)
{
    int c, rc;

    memset(o, 0, sizeof *o);
    o->imaps_port = IMAP_PORT_SECURE;
    cli_colors(o);
    while ((c = getopt_long(argc, argv, "kJ:i:x:lu:t:vjo:hVX:sS", longopts, NULL)) != -1)
        if ((rc = option(o, c, argc, argv)) != GO_ON)
            return rc;
    return GO_ON;
}

/* -s: nothing on stderr at all, as curl; the prompt uses the terminal */
static void silence_stderr(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
}

/* The options that need a command, or one another, or exclude one another. */
static int check_options(const struct cli_opts *o, int argc)
{
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (o->user_password != NULL && !o->silent)
        cli_warn(o, "-u with a password: other users of this machine can see it (ps, "
                 "shell history); use --password-file, --netrc or IMAPWIRE_PASSWORD");
    if (o->ssh_config && o->tunnel == NULL)
        return cli_usage_error(o, NULL, "--ssh-config needs --tunnel ALIAS");
    if ((o->ssh_key || o->known_hosts || o->accept_new) && o->tunnel == NULL)
        return cli_usage_error(o, NULL, "--ssh-key, --known-hosts and --accept-new-host-key "
                               "need --tunnel");
    if (o->proxy && o->transport)
        return cli_usage_error(o, NULL, "--proxy and --transport both name the bottom "
                               "layer: give one");
    /* the library reads the config path from its environment; setenv before init */
    if (o->ssh_config_file != NULL && setenv("IMAPWIRE_SSH_CONFIG", o->ssh_config_file, 1) != 0)
        return EXIT_FAILURE_OTHER;
    return GO_ON;
}

typedef int (*cli_command)(struct cli_opts *, int, char **);

static cli_command command_named(const char *cmd)
{
    static const struct {
        const char *name;
        cli_command run;
    } commands[] = {
        {"connect", cmd_connect}, {"fetch", cmd_fetch}, {"forward", cmd_forward},
        {"check", cmd_check}, {"tunnel", cmd_tunnel}, {"list", cmd_list},
        {"search", cmd_search}, {"url", cmd_url},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run;
    return NULL;
}

/* The options that only some commands take, and --log's file opened for diagnostics. */
static int check_command(struct cli_opts *o, cli_command run)
{
    if (o->request && run != cmd_list && run != cmd_url)
        return cli_usage_error(o, NULL, "-X is for list or a bare URL (imapwire -X CMD URL)");
    if (o->log != NULL) {
        /* diagnostics only: a command's results stay on stdout */
        int fd = open(o->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
            fprintf(stderr, "imapwire: --log %s: %s\n", o->log, strerror(errno));
            return EXIT_LOCAL_IO;
        }
        close(fd);
        o->color_err = 0;
    }
    if (o->require_tls && run != cmd_check)
        return cli_usage_error(o, NULL, "--require-tls is for check");
    if (o->output && run != cmd_fetch && run != cmd_url)
        return cli_usage_error(o, NULL, "--output is for fetch");
    return GO_ON;
}

/* The forward waits for these in sigwait: blocked before the library's threads start, so
 * they inherit the mask and never take the signal. */
static void block_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int main(int argc, char **argv)
{
    struct cli_opts o;
    int rc;

    if ((rc = parse_options(&o, argc, argv)) != GO_ON)
        return rc;
    if (o.silent && !o.show_error)
        silence_stderr();
    if ((rc = check_options(&o, argc)) != GO_ON)
        return rc;

    const char *cmd = argv[optind];
    int n = argc - optind - 1;
    char **rest = argv + optind + 1;
    if (strstr(cmd, "://") != NULL) {
        /* curl's form: the URL says what to do */
        cmd = "url";
        n++;
        rest--;
    }
    cli_command run = command_named(cmd);
    if (run == NULL)
        return cli_usage_error(&o, NULL, "unknown command '%s': use connect, fetch, list, "
                               "search, forward, check, tunnel or a URL", cmd);
    if ((rc = check_command(&o, run)) != GO_ON)
        return rc;
    if (run == cmd_forward)
        block_stop_signals();
    if (!ImapInitialize(NULL, NULL)) {
        fprintf(stderr, "imapwire: the library did not start (error %u)\n",
                (unsigned)ImapGetLastError());
        return EXIT_FAILURE_OTHER;
    }
    rc = run(&o, n, rest);
    ImapUninitialize();
    return rc;
}
