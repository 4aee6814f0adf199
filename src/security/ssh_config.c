/* ssh_config.c: the OpenSSH client configuration read the way ssh reads it (Host and
 * simple Match blocks, first value wins, Include, ~ and % tokens) for the tunnel fields. */
/* Anything that would change where or how ssh connects and that we cannot honour fails
 * the connect with the keyword named: a tunnel that silently differs from the user's
 * ssh is worse than none. Keywords that only matter to an interactive ssh are skipped. */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include "ssh_config.h"
#include "ssh_hops.h"
#include "../core/runtime/runtime.h"

#define IW_CFG_LINE_MAX   4096
#define IW_CFG_ARGS_MAX   64
#define IW_CFG_LINES_MAX  100000
#define IW_CFG_DEPTH_MAX  16       /* Include nesting, as ssh bounds it */
#define IW_CFG_PATH_MAX   4096

typedef struct iw_cfg_run {
    const char    *alias;          /* the name looked up, as given */
    iw_ssh_config *out;
    char          *why;
    size_t         why_size;
    char          *ignore_unknown; /* IgnoreUnknown patterns, owned */
    const char    *rest;           /* the current line after its keyword, unsplit */
    const char    *home;
} iw_cfg_run;

static int iw_cfg_fail(iw_cfg_run *r, const char *path, unsigned line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->why != NULL && r->why_size > 0)
        snprintf(r->why, r->why_size, "ssh config %s line %u: %s", path, line, msg);
    return ST_ERROR_INVALID_PARAMETER;
}

/* ---- patterns: *, ? and case-insensitive letters, as ssh compares host names ---- */

static int iw_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* Iterative with one backtrack point per '*': linear in practice, never recursive. */
static int iw_cfg_glob(const char *s, const char *p, size_t plen)
{
    const char *pe = p + plen, *star = NULL, *mark = NULL;
    while (*s != '\0') {
        if (p < pe && (*p == '?' || iw_lower((unsigned char)*p) == iw_lower((unsigned char)*s))) {
            p++;
            s++;
        } else if (p < pe && *p == '*') {
            star = ++p;
            mark = s;
        } else if (star != NULL) {
            p = star;
            s = ++mark;
        } else {
            return 0;
        }
    }
    while (p < pe && *p == '*')
        p++;
    return p == pe;
}

int iw_ssh_pattern_list_match(const char *s, const char *list)
{
    int hit = 0;
    while (*list != '\0') {
        const char *end = strchr(list, ',');
        size_t n = end ? (size_t)(end - list) : strlen(list);
        int neg = n > 0 && list[0] == '!';
        if (iw_cfg_glob(s, list + neg, n - (size_t)neg)) {
            if (neg)
                return -1;
            hit = 1;
        }
        list += n + (end ? 1 : 0);
    }
    return hit;
}

/* ---- lines ---- */

/* Splits a line into keyword and arguments: "Key value", "Key=value", double quotes, and
 * a '#' at the start of a word ending the line. 0, or -1 for an unterminated quote. */
static int iw_cfg_split(char *line, char **argv, int *argc)
{
    char *p = line;
    int n = 0, first = 1;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
               (first == 0 && n == 1 && *p == '='))
            p++;
        if (*p == '\0' || *p == '#')
            break;
        if (n == IW_CFG_ARGS_MAX)
            return -1;
        if (*p == '"') {
            char *end = strchr(p + 1, '"');
            if (end == NULL)
                return -1;
            argv[n++] = p + 1;
            *end = '\0';
            p = end + 1;
        } else {
            argv[n++] = p;
            while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
                   !(first && *p == '='))
                p++;
            if (*p != '\0') {
                int eq = *p == '=';
                *p++ = '\0';
                if (eq && first) {
                    first = 0;
                    continue;       /* "Key=value": the '=' was the separator */
                }
            }
        }
        first = 0;
    }
    *argc = n;
    return 0;
}

/* ---- keywords ---- */

/* Only an interactive ssh (or the server, or the agent) cares: skipped. */
static const char *const iw_cfg_skip[] = {
    "addkeystoagent", "batchmode", "challengeresponseauthentication", "checkhostip",
    "clearallforwardings", "compression", "controlmaster", "controlpath", "controlpersist",
    "dynamicforward", "enableescapecommandline", "escapechar", "exitonforwardfailure",
    "fingerprinthash", "forkafterauthentication", "forwardagent", "forwardx11",
    "forwardx11timeout", "forwardx11trusted", "gatewayports",
    "gssapiauthentication", "gssapidelegatecredentials", "identityagent",
    "kbdinteractiveauthentication", "kbdinteractivedevices", "localcommand", "localforward",
    "loglevel", "logverbose", "numberofpasswordprompts", "passwordauthentication",
    "permitlocalcommand", "permitremoteopen", "preferredauthentications",
    "pubkeyauthentication", "remotecommand", "remoteforward", "requesttty", "sendenv",
    "serveralivecountmax", "sessiontype", "setenv", "stdinnull",
    "streamlocalbindmask", "streamlocalbindunlink", "tcpkeepalive", "updatehostkeys",
    "usekeychain", "verifyhostkeydns", "visualhostkey", "xauthlocation", "ipqos",
    "rekeylimit", "hostbasedauthentication", "nohostauthenticationforlocalhost",
    "obscurekeystroketiming", "syslogfacility", "protocol", "useroaming", NULL
};

/* Keywords that change where or how ssh connects or what it trusts, that we cannot
 * honour: the value is allowed only when it asks for what we do anyway. */
static const struct { const char *key, *harmless; } iw_cfg_refuse[] = {
    { "hostkeyalias", NULL }, { "certificatefile", NULL },
    { "pkcs11provider", "none" }, { "securitykeyprovider", NULL }, { "ciphers", NULL },
    { "macs", NULL }, { "kexalgorithms", NULL }, { "hostkeyalgorithms", NULL },
    { "pubkeyacceptedalgorithms", NULL }, { "pubkeyacceptedkeytypes", NULL },
    { "casignaturealgorithms", NULL }, { "requiredrsasize", NULL }, { "revokedhostkeys", NULL },
    { "bindaddress", NULL }, { "bindinterface", NULL }, { "addressfamily", "any" },
    { "canonicalizehostname", "no" }, { "canonicaldomains", NULL },
    { "canonicalizefallbacklocal", NULL }, { "canonicalizemaxdots", NULL },
    { "canonicalizepermittedcnames", NULL }, { "proxyusefdpass", "no" }, { "tunnel", "no" },
    { "tunneldevice", NULL }, { "knownhostscommand", "none" }, { "hostbasedacceptedalgorithms", NULL },
    { "hostbasedkeytypes", NULL }, { "gssapiserveridentity", NULL }, { "tag", NULL },
    { NULL, NULL }
};

static int iw_in_list(const char *const *list, const char *key)
{
    for (; *list != NULL; list++)
        if (strcasecmp(*list, key) == 0)
            return 1;
    return 0;
}

static int iw_cfg_set_str(char **dst, const char *v)
{
    if (*dst != NULL)
        return 0;                   /* first value wins */
    *dst = iw_strdup(v);
    return *dst == NULL ? ST_ERROR_OUT_OF_MEMORY : 0;
}

static int iw_cfg_number(const char *v, unsigned max, unsigned *out)
{
    unsigned long x;
    char *end;
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    x = strtoul(v, &end, 10);
    if (*end != '\0' || errno != 0 || x > max)
        return -1;
    *out = (unsigned)x;
    return 0;
}

static int iw_cfg_file(iw_cfg_run *r, const char *path, int must_exist, int *active, int depth);

/* Include: each argument a path or glob, relative to ~/.ssh, read with the block's state. */
static int iw_cfg_include(iw_cfg_run *r, const char *path, unsigned line, char **argv, int argc,
                          int *active, int depth)
{
    int i, rc = 0;
    if (depth >= IW_CFG_DEPTH_MAX)
        return iw_cfg_fail(r, path, line, "Include nested too deeply");
    for (i = 1; i < argc && rc == 0; i++) {
        char full[IW_CFG_PATH_MAX];
        glob_t g;
        size_t j;
        int n, grc;
        if (argv[i][0] == '~' && argv[i][1] == '/')
            n = snprintf(full, sizeof full, "%s/%s", r->home, argv[i] + 2);
        else if (argv[i][0] == '/')
            n = snprintf(full, sizeof full, "%s", argv[i]);
        else
            n = snprintf(full, sizeof full, "%s/.ssh/%s", r->home, argv[i]);
        if (n < 0 || (size_t)n >= sizeof full)
            return iw_cfg_fail(r, path, line, "Include path too long");
        memset(&g, 0, sizeof g);
        grc = glob(full, 0, NULL, &g);
        if (grc == GLOB_NOMATCH)
            continue;               /* ssh too: an Include that matches nothing is fine */
        if (grc != 0) {
            globfree(&g);
            return grc == GLOB_NOSPACE ? (int)ST_ERROR_OUT_OF_MEMORY
                                       : iw_cfg_fail(r, path, line, "Include %s unreadable", argv[i]);
        }
        for (j = 0; j < g.gl_pathc && rc == 0; j++) {
            int saved = *active;
            rc = iw_cfg_file(r, g.gl_pathv[j], 1, active, depth + 1);
            *active = saved;
        }
        globfree(&g);
    }
    return rc;
}

/* Match: only the criteria that need nothing but the host name. */
static int iw_cfg_match(iw_cfg_run *r, const char *path, unsigned line, char **argv, int argc,
                        int *active)
{
    int i, all = 1;
    if (argc == 2 && strcasecmp(argv[1], "all") == 0) {
        *active = 1;
        return 0;
    }
    if (argc < 3 || (argc - 1) % 2 != 0)
        return iw_cfg_fail(r, path, line, "Match needs criteria with arguments");
    for (i = 1; i + 1 < argc; i += 2) {
        const char *crit = argv[i], *name;
        if (strcasecmp(crit, "host") == 0)
            name = r->out->hostname ? r->out->hostname : r->alias;
        else if (strcasecmp(crit, "originalhost") == 0)
            name = r->alias;
        else
            return iw_cfg_fail(r, path, line, "Match %s is not supported (only host, "
                               "originalhost and all)", crit);
        if (iw_ssh_pattern_list_match(name, argv[i + 1]) != 1)
            all = 0;
    }
    *active = all;
    return 0;
}

/* One keyword line inside an active block. */
static int iw_cfg_keyword(iw_cfg_run *r, const char *path, unsigned line, char **argv, int argc)
{
    const char *k = argv[0], *v = argc > 1 ? argv[1] : NULL;
    iw_ssh_config *o = r->out;
    unsigned num;
    int i;

    if (iw_in_list(iw_cfg_skip, k))
        return 0;
    for (i = 0; iw_cfg_refuse[i].key != NULL; i++) {
        if (strcasecmp(iw_cfg_refuse[i].key, k) != 0)
            continue;
        if (v != NULL && iw_cfg_refuse[i].harmless != NULL &&
            strcasecmp(v, iw_cfg_refuse[i].harmless) == 0)
            return 0;
        return iw_cfg_fail(r, path, line, "%s is not supported by imapwire's SSH tunnels", k);
    }
    if (strcasecmp(k, "ignoreunknown") == 0)
        return v ? iw_cfg_set_str(&r->ignore_unknown, v) : 0;
    if (v == NULL)
        return iw_cfg_fail(r, path, line, "%s needs a value", k);
    if (strcasecmp(k, "hostname") == 0)
        return iw_cfg_set_str(&o->hostname, v);
    if (strcasecmp(k, "user") == 0)
        return iw_cfg_set_str(&o->user, v);
    if (strcasecmp(k, "identityfile") == 0)
        return iw_cfg_set_str(&o->identity_file, v);
    /* ProxyJump and ProxyCommand: the first one given wins, as in ssh */
    if (strcasecmp(k, "proxyjump") == 0)
        return o->proxy_command ? 0 : iw_cfg_set_str(&o->proxy_jump, v);
    if (strcasecmp(k, "proxycommand") == 0)
        return o->proxy_jump ? 0 : iw_cfg_set_str(&o->proxy_command, r->rest);
    if (strcasecmp(k, "userknownhostsfile") == 0)
        return iw_cfg_set_str(&o->known_hosts, v);   /* the first file of the list */
    if (strcasecmp(k, "globalknownhostsfile") == 0)
        return iw_cfg_set_str(&o->global_known_hosts, v);
    if (strcasecmp(k, "hashknownhosts") == 0) {
        if (o->hash_known_hosts < 0)
            o->hash_known_hosts = strcasecmp(v, "yes") == 0;
        return 0;
    }
    if (strcasecmp(k, "stricthostkeychecking") == 0) {
        /* only accept-new changes what we do: "no", "off" and "ask" would take a changed
         * or any unknown key, which a library never does on its own */
        if (o->accept_new < 0)
            o->accept_new = strcasecmp(v, "accept-new") == 0;
        return 0;
    }
    if (strcasecmp(k, "identitiesonly") == 0) {
        if (o->identities_only < 0)
            o->identities_only = strcasecmp(v, "yes") == 0;
        return 0;
    }
    if (strcasecmp(k, "port") == 0) {
        if (iw_cfg_number(v, 65535, &num) != 0 || num == 0)
            return iw_cfg_fail(r, path, line, "Port %s is not a port", v);
        if (o->port == 0)
            o->port = num;
        return 0;
    }
    if (strcasecmp(k, "connecttimeout") == 0 || strcasecmp(k, "serveraliveinterval") == 0) {
        unsigned *dst = strcasecmp(k, "connecttimeout") == 0 ? &o->connect_timeout
                                                             : &o->alive_interval;
        if (strcasecmp(v, "none") == 0)
            num = 0;
        else if (iw_cfg_number(v, 86400, &num) != 0)
            return iw_cfg_fail(r, path, line, "%s %s is not a number of seconds", k, v);
        if (*dst == 0)
            *dst = num;
        return 0;
    }
    if (r->ignore_unknown != NULL && iw_ssh_pattern_list_match(k, r->ignore_unknown) == 1)
        return 0;
    return iw_cfg_fail(r, path, line, "unknown keyword %s", k);
}

/* ssh refuses a configuration others could have written; so do we. */
static int iw_cfg_safe_file(FILE *f)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return (st.st_uid == 0 || st.st_uid == geteuid()) && (st.st_mode & 022) == 0;
}

static int iw_cfg_file(iw_cfg_run *r, const char *path, int must_exist, int *active, int depth)
{
    char buf[IW_CFG_LINE_MAX + 2], rest[IW_CFG_LINE_MAX + 2], *argv[IW_CFG_ARGS_MAX];
    unsigned line = 0;
    int rc = 0, argc;
    FILE *f = fopen(path, "re");

    if (f == NULL) {
        if (errno == ENOENT && !must_exist)
            return 0;
        return iw_cfg_fail(r, path, 0, "cannot be read (%s)", strerror(errno));
    }
    if (!iw_cfg_safe_file(f)) {
        fclose(f);
        return iw_cfg_fail(r, path, 0, "bad owner or permissions (others may write it)");
    }
    while (rc == 0 && fgets(buf, sizeof buf, f) != NULL) {
        if (++line > IW_CFG_LINES_MAX) {
            rc = iw_cfg_fail(r, path, line, "too many lines");
            break;
        }
        if (strlen(buf) > IW_CFG_LINE_MAX) {
            rc = iw_cfg_fail(r, path, line, "line too long");
            break;
        }
        /* ProxyCommand takes the rest of its line as the shell will see it, quotes too */
        {
            size_t k = strspn(buf, " \t"), e;
            k += strcspn(buf + k, " \t=\r\n");
            k += strspn(buf + k, " \t");
            if (buf[k] == '=')
                k += 1 + strspn(buf + k + 1, " \t");
            iw_strlcpy(rest, buf + k, sizeof rest);
            e = strlen(rest);
            while (e > 0 && strchr(" \t\r\n", rest[e - 1]) != NULL)
                rest[--e] = '\0';
            r->rest = rest;
        }
        if (iw_cfg_split(buf, argv, &argc) != 0) {
            rc = iw_cfg_fail(r, path, line, "unterminated quote or too many arguments");
            break;
        }
        if (argc == 0)
            continue;
        if (strcasecmp(argv[0], "host") == 0) {
            int i, m = 0;
            for (i = 1; i < argc && m >= 0; i++) {
                int x = iw_ssh_pattern_list_match(r->alias, argv[i]);
                m = x < 0 ? -1 : (m || x);
            }
            *active = m == 1;
        } else if (strcasecmp(argv[0], "match") == 0) {
            rc = iw_cfg_match(r, path, line, argv, argc, active);
        } else if (strcasecmp(argv[0], "include") == 0) {
            if (*active)
                rc = iw_cfg_include(r, path, line, argv, argc, active, depth);
        } else if (*active) {
            rc = iw_cfg_keyword(r, path, line, argv, argc);
        }
    }
    if (rc == 0 && ferror(f))
        rc = iw_cfg_fail(r, path, line, "read error");
    fclose(f);
    return rc;
}

void iw_ssh_config_clear(iw_ssh_config *cfg)
{
    free(cfg->hostname);
    free(cfg->user);
    free(cfg->identity_file);
    free(cfg->proxy_jump);
    free(cfg->known_hosts);
    free(cfg->global_known_hosts);
    free(cfg->proxy_command);
    memset(cfg, 0, sizeof *cfg);
    iw_ssh_config_unset(cfg);
}

void iw_account_get(iw_account *a)
{
    const char *h = secure_getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) != 0)
        res = NULL;
    iw_strlcpy(a->name, res != NULL && res->pw_name != NULL ? res->pw_name : "", sizeof a->name);
    if (h != NULL && *h == '/')
        iw_strlcpy(a->home, h, sizeof a->home);
    else
        iw_strlcpy(a->home, res != NULL && res->pw_dir != NULL ? res->pw_dir : "/", sizeof a->home);
}

void iw_ssh_config_unset(iw_ssh_config *cfg)
{
    cfg->identities_only = -1;
    cfg->hash_known_hosts = -1;
    cfg->accept_new = -1;
}

int iw_ssh_config_lookup(const char *path, int must_exist, const char *alias,
                         iw_ssh_config *out, char *why, size_t why_size)
{
    iw_cfg_run r;
    iw_account acct;
    int active = 1, rc;          /* lines before the first Host apply to every host */

    memset(out, 0, sizeof *out);
    iw_ssh_config_unset(out);
    memset(&r, 0, sizeof r);
    r.alias = alias;
    r.out = out;
    r.why = why;
    r.why_size = why_size;
    iw_account_get(&acct);
    r.home = acct.home;
    rc = iw_cfg_file(&r, path, must_exist, &active, 0);
    free(r.ignore_unknown);
    if (rc != 0)
        iw_ssh_config_clear(out);
    return rc;
}

/* ---- from an alias to the route and the tunnel fields ---- */

typedef struct iw_cfg_target {
    const char *path;
    int         must_exist;
    const char *def_user;          /* the credentials' user, else the local account */
    char       *why;
    size_t      why_size;
    iw_sb       route;             /* "user@host:port,..." built so far */
    int         hops;
    char       *proxy_command;     /* the first hop's, expanded (owned), or NULL */
} iw_cfg_target;

/* What the % tokens of one hop stand for, and which of them (and '~') a keyword allows. */
typedef struct iw_cfg_tokens {
    const char *host, *user, *alias;
    unsigned    port;
    const char *allowed;           /* e.g. "~dhrupn" */
} iw_cfg_tokens;

#define IW_TOKENS_FILE    "~dhnrup"  /* IdentityFile, UserKnownHostsFile and the like */
#define IW_TOKENS_COMMAND "hnpr"     /* ProxyCommand, as ssh_config(5) lists them */

/* Expands ~ and the % tokens ssh allows for a keyword. */
static int iw_cfg_expand(const char *in, const iw_cfg_tokens *tk, char **out, char *why,
                         size_t why_size)
{
    iw_sb sb = {0};
    iw_account acct;
    const char *home, *p = in;
    char num[16];

    iw_account_get(&acct);
    home = acct.home;

    if (strchr(tk->allowed, '~') != NULL && p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        iw_sb_str(&sb, home);
        p++;
    }
    for (; *p != '\0'; p++) {
        if (*p != '%') {
            iw_sb_add(&sb, p, 1);
            continue;
        }
        switch (*++p != '%' && (*p == '\0' || strchr(tk->allowed, *p) == NULL) ? '\0' : *p) {
        case '%': iw_sb_add(&sb, "%", 1); break;
        case 'd': iw_sb_str(&sb, home); break;
        case 'h': iw_sb_str(&sb, tk->host); break;
        case 'n': iw_sb_str(&sb, tk->alias); break;
        case 'r': iw_sb_str(&sb, tk->user); break;
        case 'u': iw_sb_str(&sb, acct.name); break;
        case 'p':
            snprintf(num, sizeof num, "%u", tk->port);
            iw_sb_str(&sb, num);
            break;
        default:
            iw_sb_free(&sb);
            snprintf(why, why_size, "ssh config: the token %%%c in \"%s\" is not supported",
                     *p ? *p : ' ', in);
            return ST_ERROR_INVALID_PARAMETER;
        }
        if (*p == '\0')
            break;
    }
    iw_sb_add(&sb, "", 1);
    if (sb.err != 0) {
        iw_sb_free(&sb);
        return ST_ERROR_OUT_OF_MEMORY;
    }
    *out = sb.p;
    return 0;
}

static int iw_cfg_route(iw_cfg_target *t, const char *list, int expand_first, int depth,
                        const iw_creds *k, iw_ssh_config *last);

/* One element "[user@]alias[:port]": its own route first (ProxyJump) when asked, then the
 * hop itself, written to the route; the configuration found goes to *cfg. */
static int iw_cfg_hop(iw_cfg_target *t, const char *elem, size_t len, int expand, int depth,
                      const iw_creds *k, int is_target, iw_ssh_config *cfg)
{
    char alias[256], user[128] = "", hostbuf[300], portbuf[12] = "";
    const char *at = memchr(elem, '@', len), *host = at ? at + 1 : elem, *colon;
    size_t hlen = (size_t)(elem + len - host);
    iw_ssh_hop hop;
    unsigned port = 0;
    int rc, n;

    if (at != NULL) {
        if ((size_t)(at - elem) >= sizeof user)
            return ST_ERROR_INVALID_PARAMETER;
        memcpy(user, elem, (size_t)(at - elem));
        user[at - elem] = '\0';
    }
    colon = memchr(host, ':', hlen);
    if (colon != NULL) {
        size_t pl = (size_t)(host + hlen - colon - 1);
        if (pl == 0 || pl >= sizeof portbuf)
            return ST_ERROR_INVALID_PARAMETER;
        memcpy(portbuf, colon + 1, pl);
        portbuf[pl] = '\0';
        if (iw_cfg_number(portbuf, 65535, &port) != 0 || port == 0)
            return ST_ERROR_INVALID_PARAMETER;
        hlen = (size_t)(colon - host);
    }
    if (hlen == 0 || hlen >= sizeof alias)
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(alias, host, hlen);
    alias[hlen] = '\0';
    rc = iw_ssh_config_lookup(t->path, t->must_exist, alias, cfg, t->why, t->why_size);
    if (rc != 0)
        return rc;
    if (expand && cfg->proxy_jump != NULL && strcasecmp(cfg->proxy_jump, "none") != 0) {
        iw_ssh_config ignored;
        memset(&ignored, 0, sizeof ignored);
        rc = iw_cfg_route(t, cfg->proxy_jump, 1, depth + 1, NULL, &ignored);
        iw_ssh_config_clear(&ignored);
        if (rc != 0)
            return rc;
    }
    /* HostName may use %h for the alias, and nothing else */
    if (cfg->hostname != NULL) {
        const char *p = cfg->hostname;
        size_t o = 0;
        for (; *p != '\0' && o + 1 < sizeof hostbuf; p++) {
            if (*p != '%') {
                hostbuf[o++] = *p;
            } else if (p[1] == '%') {
                hostbuf[o++] = '%';
                p++;
            } else if (p[1] == 'h') {
                size_t al = strlen(alias);
                if (o + al + 1 >= sizeof hostbuf)
                    return ST_ERROR_INVALID_PARAMETER;
                memcpy(hostbuf + o, alias, al);
                o += al;
                p++;
            } else {
                snprintf(t->why, t->why_size, "ssh config: HostName \"%s\" uses a token "
                         "other than %%h", cfg->hostname);
                return ST_ERROR_INVALID_PARAMETER;
            }
        }
        hostbuf[o] = '\0';
    } else {
        iw_strlcpy(hostbuf, alias, sizeof hostbuf);
    }
    /* the caller's fields win for the target; jump hosts have only their own and defaults */
    if (user[0] == '\0') {
        const char *u = is_target && k && k->tunnel_user ? k->tunnel_user
                        : cfg->user ? cfg->user : t->def_user;
        iw_strlcpy(user, u ? u : "", sizeof user);
    }
    if (port == 0)
        port = is_target && k && k->tunnel_port ? k->tunnel_port : cfg->port ? cfg->port : 22;
    /* the result must be a valid hop by the same rules as any route */
    {
        iw_sb one = {0};
        iw_sb_str(&one, user);
        iw_sb_str(&one, "@");
        if (strchr(hostbuf, ':') != NULL) {
            iw_sb_str(&one, "[");
            iw_sb_str(&one, hostbuf);
            iw_sb_str(&one, "]");
        } else {
            iw_sb_str(&one, hostbuf);
        }
        snprintf(portbuf, sizeof portbuf, "%u", port);
        iw_sb_str(&one, ":");
        iw_sb_str(&one, portbuf);
        iw_sb_add(&one, "", 1);
        rc = one.err ? one.err : iw_ssh_hops_parse(one.p, NULL, 0, &hop, 1, &n);
        if (rc == 0) {
            if (t->hops++ > 0)
                iw_sb_str(&t->route, ",");
            iw_sb_str(&t->route, one.p);
            rc = t->route.err;
        } else if (rc == ST_ERROR_INVALID_PARAMETER) {
            snprintf(t->why, t->why_size, "ssh config: \"%s\" for %s is not a valid SSH hop",
                     one.p ? one.p : "", alias);
        }
        iw_sb_free(&one);
    }
    /* The first hop of the route may be reached through a command: ssh runs it in
     * place of the TCP connection, and so does the command transport. Hops reached
     * through a jump host never read their own (ssh -J overrides it). */
    if (rc == 0 && expand && t->hops == 1 && cfg->proxy_command != NULL &&
        strcasecmp(cfg->proxy_command, "none") != 0) {
        iw_cfg_tokens tk = { hop.host, hop.user, alias, hop.port, IW_TOKENS_COMMAND };
        free(t->proxy_command);
        t->proxy_command = NULL;
        rc = iw_cfg_expand(cfg->proxy_command, &tk, &t->proxy_command, t->why, t->why_size);
    }
    return rc;
}

/* A list of elements; the first one's ProxyJump expands when expand_first (ssh -J gives
 * the later ones their route, so theirs is not read). */
static int iw_cfg_route(iw_cfg_target *t, const char *list, int expand_first, int depth,
                        const iw_creds *k, iw_ssh_config *last)
{
    const char *p = list;
    int first = 1, rc = 0;
    if (depth > IW_SSH_MAX_HOPS) {
        snprintf(t->why, t->why_size, "ssh config: ProxyJump chain too long or circular");
        return ST_ERROR_INVALID_PARAMETER;
    }
    while (rc == 0) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        iw_ssh_config_clear(last);
        rc = iw_cfg_hop(t, p, len, first && expand_first, depth, k, comma == NULL && k != NULL,
                        last);
        if (rc == 0 && t->hops > IW_SSH_MAX_HOPS) {
            snprintf(t->why, t->why_size, "ssh config: more than %d SSH hops", IW_SSH_MAX_HOPS);
            rc = ST_ERROR_INVALID_PARAMETER;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
        first = 0;
    }
    return rc;
}

static int iw_replace(char **dst, char *value)
{
    free(*dst);
    *dst = value;
    return 0;
}

int iw_ssh_config_apply(iw_creds *k, char *why, size_t why_size)
{
    iw_cfg_target t;
    iw_ssh_config last;
    const char *env = secure_getenv("IMAPWIRE_SSH_CONFIG");
    char path[IW_CFG_PATH_MAX], *s;
    iw_account acct;
    int rc;

    if (k == NULL || k->tunnel_host == NULL || !(k->options & CREDENTIAL_TUNNEL_SSH_CONFIG))
        return 0;
    if (why_size > 0)
        why[0] = '\0';
    memset(&t, 0, sizeof t);
    iw_account_get(&acct);
    if (env != NULL && *env != '\0') {
        iw_strlcpy(path, env, sizeof path);
        t.must_exist = 1;
    } else {
        snprintf(path, sizeof path, "%s/.ssh/config", acct.home);
    }
    t.path = path;
    t.def_user = k->tunnel_user ? k->tunnel_user : acct.name[0] ? acct.name : NULL;
    t.why = why;
    t.why_size = why_size;
    memset(&last, 0, sizeof last);
    iw_ssh_config_unset(&last);
    /* one alias: its ProxyJump is its route; a list is "-J first,... last", where only
     * the first host's own ProxyJump is read, as ssh does */
    rc = iw_cfg_route(&t, k->tunnel_host, 1, 0, k, &last);
    if (rc == 0)
        rc = iw_sb_add(&t.route, "", 1);
    if (rc == 0) {
        iw_ssh_hop hops[IW_SSH_MAX_HOPS];
        int n;
        const iw_ssh_hop *target;
        iw_cfg_tokens tk;
        rc = iw_ssh_hops_parse(t.route.p, NULL, 0, hops, IW_SSH_MAX_HOPS, &n);
        target = &hops[n - 1];
        tk.host = target->host;
        tk.user = target->user;
        tk.alias = k->tunnel_host;
        tk.port = target->port;
        tk.allowed = IW_TOKENS_FILE;
        if (rc == 0 && k->tunnel_key == NULL && last.identity_file != NULL &&
            strcasecmp(last.identity_file, "none") != 0) {
            rc = iw_cfg_expand(last.identity_file, &tk, &s, why, why_size);
            if (rc == 0)
                iw_replace(&k->tunnel_key, s);
        }
        if (rc == 0 && k->known_hosts == NULL && last.known_hosts != NULL) {
            const char *kh = strcasecmp(last.known_hosts, "none") == 0 ? "/dev/null"
                                                                        : last.known_hosts;
            rc = iw_cfg_expand(kh, &tk, &s, why, why_size);
            if (rc == 0)
                iw_replace(&k->known_hosts, s);
        }
        /* ssh reads the global files whatever the user files are */
        if (rc == 0 && (last.global_known_hosts != NULL || k->known_hosts != NULL)) {
            const char *g = last.global_known_hosts ? last.global_known_hosts
                                                    : "/etc/ssh/ssh_known_hosts";
            if (strcasecmp(g, "none") == 0)
                g = "/dev/null";
            rc = iw_cfg_expand(g, &tk, &s, why, why_size);
            if (rc == 0)
                iw_replace(&k->global_known_hosts, s);
        }
        if (rc == 0) {
            if (last.accept_new == 1)
                k->options |= CREDENTIAL_TUNNEL_ACCEPT_NEW;
            k->ssh_hash_known_hosts = last.hash_known_hosts == 1;
        }
        if (rc == 0 && t.proxy_command != NULL) {
            iw_sb cmd = {0};
            iw_sb_str(&cmd, "command:");
            iw_sb_str(&cmd, t.proxy_command);
            rc = iw_sb_add(&cmd, "", 1);
            if (rc == 0) {
                iw_replace(&k->ssh_proxy_transport, cmd.p);
                cmd.p = NULL;
            }
            iw_sb_free(&cmd);
        }
        if (rc == 0) {
            k->ssh_connect_timeout = last.connect_timeout;
            k->ssh_alive_interval = last.alive_interval;
            s = iw_strdup(target->user);
            if (s == NULL)
                rc = ST_ERROR_OUT_OF_MEMORY;
            else
                iw_replace(&k->tunnel_user, s);
        }
        if (rc == 0) {
            /* every hop now names its user and port: the route is final */
            iw_replace(&k->tunnel_host, t.route.p);
            t.route.p = NULL;
            k->tunnel_port = 0;
        }
    }
    iw_ssh_config_clear(&last);
    iw_sb_free(&t.route);
    free(t.proxy_command);
    return rc;
}
