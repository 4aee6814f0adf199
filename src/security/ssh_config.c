/* ssh_config.c: the OpenSSH client configuration read the way ssh reads it (Host and
 * simple Match blocks, first value wins, Include); ssh_route.c applies it to a connect. */
/* Anything that would change where or how ssh connects and that we cannot honour fails
 * the connect with the keyword named: a tunnel that silently differs from the user's
 * ssh is worse than none. Keywords that only matter to an interactive ssh are skipped. */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
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

/* Every keyword we know and what we do with it, as OpenSSH's readconf.c keeps them: one
 * table, one switch (iw_cfg_keyword). Classes:
 *  - apply: read into a field of iw_ssh_config (first value wins);
 *  - skip: only an interactive ssh (or the server, or the agent) cares;
 *  - refuse: changes where or how ssh connects or what it trusts, which we cannot honour;
 *    allowed only with the value given, when it asks for what we do anyway.
 * A keyword not here is unknown: refused unless IgnoreUnknown names it. */
typedef enum iw_cfg_op {
    IW_OP_UNKNOWN, IW_OP_SKIP, IW_OP_REFUSE,
    IW_OP_STR,              /* a string field */
    IW_OP_FLAG,             /* a tri-state field: 1 when the value is arg, else 0 */
    IW_OP_SECONDS,          /* seconds up to a day, or "none" (0) */
    IW_OP_PORT,
    IW_OP_PROXY_JUMP,       /* ProxyJump and ProxyCommand: whichever comes first, as ssh */
    IW_OP_PROXY_COMMAND,    /* the rest of the line, unsplit */
    IW_OP_IGNORE_UNKNOWN    /* the run's own pattern list, no value needed */
} iw_cfg_op;

typedef struct iw_cfg_kw {
    const char *key;
    iw_cfg_op   op;
    size_t      field;      /* apply: offsetof(iw_ssh_config, ...) */
    const char *arg;        /* refuse: the value allowed; flag: the value meaning yes */
} iw_cfg_kw;

#define IW_SKIP(k)           { k, IW_OP_SKIP, 0, NULL }
#define IW_REFUSE(k, ok)     { k, IW_OP_REFUSE, 0, ok }
#define IW_APPLY(k, op, f, a) { k, op, offsetof(iw_ssh_config, f), a }

static const iw_cfg_kw iw_cfg_keywords[] = {
    IW_APPLY("hostname", IW_OP_STR, hostname, NULL),
    IW_APPLY("user", IW_OP_STR, user, NULL),
    IW_APPLY("identityfile", IW_OP_STR, identity_file, NULL),
    IW_APPLY("proxyjump", IW_OP_PROXY_JUMP, proxy_jump, NULL),
    IW_APPLY("proxycommand", IW_OP_PROXY_COMMAND, proxy_command, NULL),
    IW_APPLY("userknownhostsfile", IW_OP_STR, known_hosts, NULL), /* the list's first file */
    IW_APPLY("globalknownhostsfile", IW_OP_STR, global_known_hosts, NULL),
    IW_APPLY("hashknownhosts", IW_OP_FLAG, hash_known_hosts, "yes"),
    /* only accept-new changes what we do: "no", "off" and "ask" would take a changed or
     * any unknown key, which a library never does on its own */
    IW_APPLY("stricthostkeychecking", IW_OP_FLAG, accept_new, "accept-new"),
    IW_APPLY("identitiesonly", IW_OP_FLAG, identities_only, "yes"),
    IW_APPLY("port", IW_OP_PORT, port, NULL),
    IW_APPLY("connecttimeout", IW_OP_SECONDS, connect_timeout, NULL),
    IW_APPLY("serveraliveinterval", IW_OP_SECONDS, alive_interval, NULL),
    { "ignoreunknown", IW_OP_IGNORE_UNKNOWN, 0, NULL },

    IW_SKIP("addkeystoagent"), IW_SKIP("batchmode"), IW_SKIP("challengeresponseauthentication"),
    IW_SKIP("checkhostip"), IW_SKIP("clearallforwardings"), IW_SKIP("compression"),
    IW_SKIP("controlmaster"), IW_SKIP("controlpath"), IW_SKIP("controlpersist"),
    IW_SKIP("dynamicforward"), IW_SKIP("enableescapecommandline"), IW_SKIP("escapechar"),
    IW_SKIP("exitonforwardfailure"), IW_SKIP("fingerprinthash"),
    IW_SKIP("forkafterauthentication"), IW_SKIP("forwardagent"), IW_SKIP("forwardx11"),
    IW_SKIP("forwardx11timeout"), IW_SKIP("forwardx11trusted"), IW_SKIP("gatewayports"),
    IW_SKIP("gssapiauthentication"), IW_SKIP("gssapidelegatecredentials"),
    IW_SKIP("identityagent"), IW_SKIP("kbdinteractiveauthentication"),
    IW_SKIP("kbdinteractivedevices"), IW_SKIP("localcommand"), IW_SKIP("localforward"),
    IW_SKIP("loglevel"), IW_SKIP("logverbose"), IW_SKIP("numberofpasswordprompts"),
    IW_SKIP("passwordauthentication"), IW_SKIP("permitlocalcommand"),
    IW_SKIP("permitremoteopen"), IW_SKIP("preferredauthentications"),
    IW_SKIP("pubkeyauthentication"), IW_SKIP("remotecommand"), IW_SKIP("remoteforward"),
    IW_SKIP("requesttty"), IW_SKIP("sendenv"), IW_SKIP("serveralivecountmax"),
    IW_SKIP("sessiontype"), IW_SKIP("setenv"), IW_SKIP("stdinnull"),
    IW_SKIP("streamlocalbindmask"), IW_SKIP("streamlocalbindunlink"), IW_SKIP("tcpkeepalive"),
    IW_SKIP("updatehostkeys"), IW_SKIP("usekeychain"), IW_SKIP("verifyhostkeydns"),
    IW_SKIP("visualhostkey"), IW_SKIP("xauthlocation"), IW_SKIP("ipqos"),
    IW_SKIP("rekeylimit"), IW_SKIP("hostbasedauthentication"),
    IW_SKIP("nohostauthenticationforlocalhost"), IW_SKIP("obscurekeystroketiming"),
    IW_SKIP("syslogfacility"), IW_SKIP("protocol"), IW_SKIP("useroaming"),

    IW_REFUSE("hostkeyalias", NULL), IW_REFUSE("certificatefile", NULL),
    IW_REFUSE("pkcs11provider", "none"), IW_REFUSE("securitykeyprovider", NULL),
    IW_REFUSE("ciphers", NULL), IW_REFUSE("macs", NULL), IW_REFUSE("kexalgorithms", NULL),
    IW_REFUSE("hostkeyalgorithms", NULL), IW_REFUSE("pubkeyacceptedalgorithms", NULL),
    IW_REFUSE("pubkeyacceptedkeytypes", NULL), IW_REFUSE("casignaturealgorithms", NULL),
    IW_REFUSE("requiredrsasize", NULL), IW_REFUSE("revokedhostkeys", NULL),
    IW_REFUSE("bindaddress", NULL), IW_REFUSE("bindinterface", NULL),
    IW_REFUSE("addressfamily", "any"), IW_REFUSE("canonicalizehostname", "no"),
    IW_REFUSE("canonicaldomains", NULL), IW_REFUSE("canonicalizefallbacklocal", NULL),
    IW_REFUSE("canonicalizemaxdots", NULL), IW_REFUSE("canonicalizepermittedcnames", NULL),
    IW_REFUSE("proxyusefdpass", "no"), IW_REFUSE("tunnel", "no"),
    IW_REFUSE("tunneldevice", NULL), IW_REFUSE("knownhostscommand", "none"),
    IW_REFUSE("hostbasedacceptedalgorithms", NULL), IW_REFUSE("hostbasedkeytypes", NULL),
    IW_REFUSE("gssapiserveridentity", NULL), IW_REFUSE("tag", NULL),
};

static const iw_cfg_kw *iw_cfg_kw_find(const char *key)
{
    size_t i;
    for (i = 0; i < sizeof iw_cfg_keywords / sizeof iw_cfg_keywords[0]; i++)
        if (strcasecmp(iw_cfg_keywords[i].key, key) == 0)
            return &iw_cfg_keywords[i];
    return NULL;
}

static int iw_cfg_set_str(char **dst, const char *v)
{
    if (*dst != NULL)
        return 0;                   /* first value wins */
    *dst = iw_strdup(v);
    return *dst == NULL ? ST_ERROR_OUT_OF_MEMORY : 0;
}

int iw_ssh_config_number(const char *v, unsigned max, unsigned *out)
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

/* One keyword line inside an active block: its class in the table says what to do. */
static int iw_cfg_keyword(iw_cfg_run *r, const char *path, unsigned line, char **argv, int argc)
{
    const char *k = argv[0], *v = argc > 1 ? argv[1] : NULL;
    const iw_cfg_kw *kw = iw_cfg_kw_find(k);
    iw_cfg_op op = kw != NULL ? kw->op : IW_OP_UNKNOWN;
    iw_ssh_config *o = r->out;
    void *field = kw != NULL ? (char *)o + kw->field : NULL;
    unsigned num;

    if (v == NULL && op != IW_OP_SKIP && op != IW_OP_REFUSE && op != IW_OP_IGNORE_UNKNOWN)
        return iw_cfg_fail(r, path, line, "%s needs a value", k);
    switch (op) {
    case IW_OP_SKIP:
        return 0;
    case IW_OP_REFUSE:
        if (v != NULL && kw->arg != NULL && strcasecmp(v, kw->arg) == 0)
            return 0;
        return iw_cfg_fail(r, path, line, "%s is not supported by imapwire's SSH tunnels", k);
    case IW_OP_IGNORE_UNKNOWN:
        return v ? iw_cfg_set_str(&r->ignore_unknown, v) : 0;
    case IW_OP_STR:
        return iw_cfg_set_str(field, v);
    case IW_OP_PROXY_JUMP:
        return o->proxy_command ? 0 : iw_cfg_set_str(field, v);
    case IW_OP_PROXY_COMMAND:
        return o->proxy_jump ? 0 : iw_cfg_set_str(field, r->rest);
    case IW_OP_FLAG:
        if (*(int *)field < 0)
            *(int *)field = strcasecmp(v, kw->arg) == 0;
        return 0;
    case IW_OP_PORT:
        if (iw_ssh_config_number(v, 65535, &num) != 0 || num == 0)
            return iw_cfg_fail(r, path, line, "Port %s is not a port", v);
        break;
    case IW_OP_SECONDS:
        if (strcasecmp(v, "none") == 0)
            num = 0;
        else if (iw_ssh_config_number(v, 86400, &num) != 0)
            return iw_cfg_fail(r, path, line, "%s %s is not a number of seconds", k, v);
        break;
    case IW_OP_UNKNOWN:
    default:
        if (r->ignore_unknown != NULL && iw_ssh_pattern_list_match(k, r->ignore_unknown) == 1)
            return 0;
        return iw_cfg_fail(r, path, line, "unknown keyword %s", k);
    }
    if (*(unsigned *)field == 0)        /* a number: first value wins */
        *(unsigned *)field = num;
    return 0;
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
