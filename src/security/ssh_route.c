/* ssh_route.c: CREDENTIAL_TUNNEL_SSH_CONFIG applied: a host list resolved through the
 * OpenSSH client configuration into the explicit route and the tunnel fields. */
/* Each alias is looked up as ssh would (ssh_config.c), its ProxyJump becomes the hops
 * before it, and ~ and the % tokens ssh allows for a keyword expand, nothing else. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "ssh_config.h"
#include "ssh_hops.h"
#include "../core/runtime/runtime.h"

#define IW_CFG_PATH_MAX 4096

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

/* Splits "[user@]alias[:port]"; user stays as it was and *port 0 when not given. */
static int iw_cfg_elem(const char *elem, size_t len, char *user, size_t user_size, char *alias,
                       size_t alias_size, unsigned *port)
{
    const char *at = memchr(elem, '@', len), *host = at ? at + 1 : elem, *colon;
    size_t hlen = (size_t)(elem + len - host);
    char portbuf[12];

    if (at != NULL) {
        if ((size_t)(at - elem) >= user_size)
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
        if (iw_ssh_config_number(portbuf, 65535, port) != 0 || *port == 0)
            return ST_ERROR_INVALID_PARAMETER;
        hlen = (size_t)(colon - host);
    }
    if (hlen == 0 || hlen >= alias_size)
        return ST_ERROR_INVALID_PARAMETER;
    memcpy(alias, host, hlen);
    alias[hlen] = '\0';
    return 0;
}

/* HostName may use %h for the alias, and nothing else; no HostName: the alias. */
static int iw_cfg_hostname(iw_cfg_target *t, const char *hostname, const char *alias, char *out,
                           size_t size)
{
    const char *p = hostname;
    size_t o = 0;
    if (hostname == NULL) {
        iw_strlcpy(out, alias, size);
        return 0;
    }
    for (; *p != '\0' && o + 1 < size; p++) {
        if (*p != '%') {
            out[o++] = *p;
        } else if (p[1] == '%') {
            out[o++] = '%';
            p++;
        } else if (p[1] == 'h') {
            size_t al = strlen(alias);
            if (o + al + 1 >= size)
                return ST_ERROR_INVALID_PARAMETER;
            memcpy(out + o, alias, al);
            o += al;
            p++;
        } else {
            snprintf(t->why, t->why_size, "ssh config: HostName \"%s\" uses a token "
                     "other than %%h", hostname);
            return ST_ERROR_INVALID_PARAMETER;
        }
    }
    out[o] = '\0';
    return 0;
}

/* Appends "user@host:port" to the route once it is a valid hop by the same rules as any
 * route; *hop gets it parsed. */
static int iw_cfg_append(iw_cfg_target *t, const char *user, const char *host, unsigned port,
                         const char *alias, iw_ssh_hop *hop)
{
    iw_sb one = {0};
    char portbuf[12];
    int rc, n;
    iw_sb_str(&one, user);
    iw_sb_str(&one, "@");
    if (strchr(host, ':') != NULL) {
        iw_sb_str(&one, "[");
        iw_sb_str(&one, host);
        iw_sb_str(&one, "]");
    } else {
        iw_sb_str(&one, host);
    }
    snprintf(portbuf, sizeof portbuf, "%u", port);
    iw_sb_str(&one, ":");
    iw_sb_str(&one, portbuf);
    iw_sb_add(&one, "", 1);
    rc = one.err ? one.err : iw_ssh_hops_parse(one.p, NULL, 0, hop, 1, &n);
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
    return rc;
}

/* One element "[user@]alias[:port]": its own route first (ProxyJump) when asked, then the
 * hop itself, written to the route; the configuration found goes to *cfg. */
static int iw_cfg_hop(iw_cfg_target *t, const char *elem, size_t len, int expand, int depth,
                      const iw_creds *k, int is_target, iw_ssh_config *cfg)
{
    char alias[256], user[128] = "", hostbuf[300];
    iw_ssh_hop hop;
    unsigned port = 0;
    int rc = iw_cfg_elem(elem, len, user, sizeof user, alias, sizeof alias, &port);

    if (rc == 0)
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
    rc = iw_cfg_hostname(t, cfg->hostname, alias, hostbuf, sizeof hostbuf);
    if (rc != 0)
        return rc;
    /* the caller's fields win for the target; jump hosts have only their own and defaults */
    if (user[0] == '\0') {
        const char *u = is_target && k && k->tunnel_user ? k->tunnel_user
                        : cfg->user ? cfg->user : t->def_user;
        iw_strlcpy(user, u ? u : "", sizeof user);
    }
    if (port == 0)
        port = is_target && k && k->tunnel_port ? k->tunnel_port : cfg->port ? cfg->port : 22;
    rc = iw_cfg_append(t, user, hostbuf, port, alias, &hop);
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

/* The key and known-hosts files of the route's target, where the caller named none. */
static int iw_cfg_files(iw_creds *k, const iw_ssh_config *last, const iw_cfg_tokens *tk,
                        char *why, size_t why_size)
{
    char *s;
    int rc = 0;
    if (k->tunnel_key == NULL && last->identity_file != NULL &&
        strcasecmp(last->identity_file, "none") != 0) {
        rc = iw_cfg_expand(last->identity_file, tk, &s, why, why_size);
        if (rc == 0)
            iw_replace(&k->tunnel_key, s);
    }
    if (rc == 0 && k->known_hosts == NULL && last->known_hosts != NULL) {
        const char *kh = strcasecmp(last->known_hosts, "none") == 0 ? "/dev/null"
                                                                     : last->known_hosts;
        rc = iw_cfg_expand(kh, tk, &s, why, why_size);
        if (rc == 0)
            iw_replace(&k->known_hosts, s);
    }
    /* ssh reads the global files whatever the user files are */
    if (rc == 0 && (last->global_known_hosts != NULL || k->known_hosts != NULL)) {
        const char *g = last->global_known_hosts ? last->global_known_hosts
                                                 : "/etc/ssh/ssh_known_hosts";
        if (strcasecmp(g, "none") == 0)
            g = "/dev/null";
        rc = iw_cfg_expand(g, tk, &s, why, why_size);
        if (rc == 0)
            iw_replace(&k->global_known_hosts, s);
    }
    return rc;
}

/* The route is built (t->route, terminated): k's fields from the target's configuration
 * where the caller left them unset, then the route in place of the host list. */
static int iw_cfg_fields(iw_cfg_target *t, iw_creds *k, const iw_ssh_config *last)
{
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    const iw_ssh_hop *target;
    iw_cfg_tokens tk;
    char *s;
    int n, rc = iw_ssh_hops_parse(t->route.p, NULL, 0, hops, IW_SSH_MAX_HOPS, &n);

    if (rc != 0)
        return rc;
    target = &hops[n - 1];
    tk.host = target->host;
    tk.user = target->user;
    tk.alias = k->tunnel_host;
    tk.port = target->port;
    tk.allowed = IW_TOKENS_FILE;
    rc = iw_cfg_files(k, last, &tk, t->why, t->why_size);
    if (rc == 0) {
        if (last->accept_new == 1)
            k->options |= CREDENTIAL_TUNNEL_ACCEPT_NEW;
        k->ssh_hash_known_hosts = last->hash_known_hosts == 1;
    }
    if (rc == 0 && t->proxy_command != NULL) {
        iw_sb cmd = {0};
        iw_sb_str(&cmd, "command:");
        iw_sb_str(&cmd, t->proxy_command);
        rc = iw_sb_add(&cmd, "", 1);
        if (rc == 0) {
            iw_replace(&k->ssh_proxy_transport, cmd.p);
            cmd.p = NULL;
        }
        iw_sb_free(&cmd);
    }
    if (rc == 0) {
        k->ssh_connect_timeout = last->connect_timeout;
        k->ssh_alive_interval = last->alive_interval;
        s = iw_strdup(target->user);
        if (s == NULL)
            rc = ST_ERROR_OUT_OF_MEMORY;
        else
            iw_replace(&k->tunnel_user, s);
    }
    if (rc == 0) {
        /* every hop now names its user and port: the route is final */
        iw_replace(&k->tunnel_host, t->route.p);
        t->route.p = NULL;
        k->tunnel_port = 0;
    }
    return rc;
}

int iw_ssh_config_apply(iw_creds *k, char *why, size_t why_size)
{
    iw_cfg_target t;
    iw_ssh_config last;
    const char *env = secure_getenv("IMAPWIRE_SSH_CONFIG");
    char path[IW_CFG_PATH_MAX];
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
    if (rc == 0)
        rc = iw_cfg_fields(&t, k, &last);
    iw_ssh_config_clear(&last);
    iw_sb_free(&t.route);
    free(t.proxy_command);
    return rc;
}
