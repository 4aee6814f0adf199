/* netrc.c: curl's .netrc rules for the imapwire command: machine/default entries with
 * login and password (quoted tokens with backslash escapes), macdef skipped. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cli.h"

#define NETRC_MAX  (1u << 20)      /* a larger file is not a netrc */
#define TOKEN_MAX  1024

struct scan {
    const char *p, *end;
};

/* The next token: whitespace-separated, or "quoted" with \" \\ \n \r \t; 0 at the end. */
static int next_token(struct scan *s, char *out, size_t size)
{
    size_t n = 0;
    while (s->p < s->end && strchr(" \t\r\n", *s->p) != NULL)
        s->p++;
    if (s->p >= s->end)
        return 0;
    if (*s->p == '"') {
        for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
            char c = *s->p;
            if (c == '\\' && s->p + 1 < s->end) {
                c = *++s->p;
                c = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
            }
            if (n + 1 < size)
                out[n++] = c;
        }
        if (s->p < s->end)
            s->p++;
    } else {
        for (; s->p < s->end && strchr(" \t\r\n", *s->p) == NULL; s->p++)
            if (n + 1 < size)
                out[n++] = *s->p;
    }
    out[n] = '\0';
    return 1;
}

/* macdef's body runs to the first empty line. */
static void skip_macdef(struct scan *s)
{
    const char *e = NULL;
    for (const char *q = s->p; q + 1 < s->end; q++)
        if (q[0] == '\n' && (q[1] == '\n' || (q[1] == '\r' && q + 2 < s->end && q[2] == '\n'))) {
            e = q + 1;
            break;
        }
    s->p = e ? e : s->end;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf;
    if (f == NULL)
        return NULL;
    buf = malloc(NETRC_MAX + 1);
    if (buf != NULL) {
        *len = fread(buf, 1, NETRC_MAX + 1, f);
        if (*len > NETRC_MAX) {
            free(buf);
            buf = NULL;
            errno = EFBIG;
        }
    }
    fclose(f);
    return buf;
}

static void wipe_free(char *p, size_t n)
{
    if (p != NULL)
        explicit_bzero(p, n);
    free(p);
}

/* Walks the entries; the first that names host (or default) and, with user set, has
 * that login wins. */
static int find_entry(struct scan *s, const char *host, const char *user, char *login,
                      size_t login_size, char *password, size_t password_size)
{
    char tok[TOKEN_MAX], val[TOKEN_MAX];
    int in_entry = 0, found = 0;

    login[0] = password[0] = '\0';
    while (next_token(s, tok, sizeof tok)) {
        int starts = strcmp(tok, "machine") == 0, deflt = strcmp(tok, "default") == 0;
        if (starts || deflt) {
            if (in_entry && (user == NULL || strcmp(login, user) == 0) &&
                (login[0] != '\0' || password[0] != '\0')) {
                found = 1;
                break;
            }
            login[0] = password[0] = '\0';
            in_entry = deflt;
            if (starts)
                in_entry = next_token(s, val, sizeof val) && strcasecmp(val, host) == 0;
        } else if (strcmp(tok, "macdef") == 0) {
            next_token(s, val, sizeof val);
            skip_macdef(s);
        } else if (strcmp(tok, "login") == 0 || strcmp(tok, "password") == 0 ||
                   strcmp(tok, "account") == 0) {
            if (!next_token(s, val, sizeof val))
                break;
            if (in_entry && tok[0] == 'l')
                snprintf(login, login_size, "%s", val);
            else if (in_entry && tok[0] == 'p')
                snprintf(password, password_size, "%s", val);
        }
    }
    if (!found && in_entry && (user == NULL || strcmp(login, user) == 0) &&
        (login[0] != '\0' || password[0] != '\0'))
        found = 1;
    explicit_bzero(tok, sizeof tok);
    explicit_bzero(val, sizeof val);
    if (!found)
        login[0] = password[0] = '\0';
    return found;
}

int cli_netrc_lookup(const char *file, const char *host, const char *user,
                     char *login, size_t login_size, char *password, size_t password_size)
{
    char path[4096];
    size_t len = 0;
    char *buf;
    struct scan s;
    int found;

    if (file == NULL) {
        /* secure_getenv: a privileged run reads the invoking account's file, never one
         * named by the caller's environment */
        const char *home = secure_getenv("HOME");
        struct passwd *pw;
        if ((home == NULL || *home == '\0') && (pw = getpwuid(getuid())) != NULL)
            home = pw->pw_dir;
        if (home == NULL)
            return 0;
        snprintf(path, sizeof path, "%s/.netrc", home);
    } else {
        snprintf(path, sizeof path, "%s", file);
    }
    buf = read_all(path, &len);
    if (buf == NULL) {
        if (file == NULL && errno == ENOENT)
            return 0;
        fprintf(stderr, "imapwire: cannot read the netrc file %s: %s\n  fix: check the path "
                "and its permissions\n", path, strerror(errno));
        return -1;
    }
    s.p = buf;
    s.end = buf + len;
    found = find_entry(&s, host, user, login, login_size, password, password_size);
    wipe_free(buf, len);
    return found;
}
