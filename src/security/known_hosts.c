/* known_hosts.c: OpenSSH's known_hosts files read (and, for accept-new, appended to) the way
 * ssh does: hashed and plain names, [host]:port, patterns, !negation, @revoked. */
/* The SSH layer asks here before its handshake which host key algorithms to offer (the
 * types already on file first, as ssh's order_hostkeyalgs does, so a server with several
 * keys shows the one the user has) and after it whether the key it was shown is good. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <libssh2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "known_hosts.h"
#include "ssh_config.h"
#include "../core/runtime/runtime.h"

#define IW_KH_LINE_MAX  16384      /* an RSA-16384 key is about 2.8 KB of base64 */
#define IW_KH_LINES_MAX 1000000
#define IW_KH_TYPE_MAX  64
#define IW_KH_SHA1_LEN  20

static int iw_kh_add(iw_kh_files *f, const char *dir, const char *name, int user)
{
    size_t n;
    char *p;
    if (f->n == IW_KH_FILES_MAX)
        return 0;
    n = strlen(dir) + strlen(name) + 1;
    p = malloc(n);
    if (p == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    snprintf(p, n, "%s%s", dir, name);
    f->path[f->n++] = p;
    if (user)
        f->nuser = f->n;
    return 0;
}

int iw_kh_files_resolve(const char *user, const char *global, iw_kh_files *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    if (user != NULL) {
        rc = iw_kh_add(out, user, "", 1);
    } else {
        iw_account a;
        iw_account_get(&a);
        rc = iw_kh_add(out, a.home, "/.ssh/known_hosts", 1);
        if (rc == 0)
            rc = iw_kh_add(out, a.home, "/.ssh/known_hosts2", 1);
    }
    if (rc == 0 && (global != NULL || user == NULL))
        rc = iw_kh_add(out, global ? global : "/etc/ssh/ssh_known_hosts", "", 0);
    if (rc != 0)
        iw_kh_files_clear(out);
    return rc;
}

void iw_kh_files_clear(iw_kh_files *f)
{
    int i;
    for (i = 0; i < f->n; i++)
        free(f->path[i]);
    memset(f, 0, sizeof *f);
}

static void iw_kh_say(iw_kh_note note, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void iw_kh_say(iw_kh_note note, void *arg, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    if (note == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    note(arg, text);
}

/* ---- one line ---- */

enum { KH_PLAIN, KH_REVOKED, KH_CA, KH_OTHER_MARKER };

typedef struct iw_kh_line {
    int         marker;
    const char *names, *type, *key;  /* NUL-terminated fields inside the line buffer */
} iw_kh_line;

static char *iw_kh_field(char **p)
{
    char *s = *p, *e;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '\n' || *s == '\r')
        return NULL;
    for (e = s; *e != '\0' && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r'; e++)
        ;
    if (*e != '\0')
        *e++ = '\0';
    *p = e;
    return s;
}

/* 0 when buf is an entry (fields split in place), -1 for a comment, blank or bad line. */
static int iw_kh_parse(char *buf, iw_kh_line *out)
{
    char *p = buf, *first = iw_kh_field(&p);
    if (first == NULL || first[0] == '#')
        return -1;
    out->marker = KH_PLAIN;
    if (first[0] == '@') {
        out->marker = strcmp(first, "@revoked") == 0        ? KH_REVOKED
                      : strcmp(first, "@cert-authority") == 0 ? KH_CA
                                                              : KH_OTHER_MARKER;
        first = iw_kh_field(&p);
    }
    out->names = first;
    out->type = iw_kh_field(&p);
    out->key = out->type ? iw_kh_field(&p) : NULL;
    return out->names && out->key ? 0 : -1;
}

/* Base64 (padded, as known_hosts has it) into a new buffer; NULL if malformed. */
static unsigned char *iw_kh_unbase64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out;
    int got;
    if (n == 0 || n % 4 != 0 || n > IW_KH_LINE_MAX)
        return NULL;
    out = malloc(n / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (got < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)got - (s[n - 1] == '=') - (s[n - 2] == '=');
    return out;
}

static void iw_kh_name(const char *host, unsigned port, char *out, size_t size)
{
    if (port == 22)
        snprintf(out, size, "%s", host);
    else
        snprintf(out, size, "[%s]:%u", host, port);
}

/* "|1|salt|hash": HMAC-SHA1 of name under salt, as ssh-keygen -H writes it. */
static int iw_kh_hashed_match(const char *names, const char *name)
{
    char copy[200];
    const char *bar;
    unsigned char *salt, *hash, mac[EVP_MAX_MD_SIZE];
    size_t slen = 0, hlen = 0;
    unsigned mlen = 0;
    int ok = 0;
    bar = strchr(names + 3, '|');
    if (bar == NULL || (size_t)(bar - names - 3) >= sizeof copy)
        return 0;
    memcpy(copy, names + 3, (size_t)(bar - names - 3));
    copy[bar - names - 3] = '\0';
    salt = iw_kh_unbase64(copy, &slen);
    hash = iw_kh_unbase64(bar + 1, &hlen);
    if (salt != NULL && hash != NULL && slen == IW_KH_SHA1_LEN && hlen == IW_KH_SHA1_LEN &&
        HMAC(EVP_sha1(), salt, (int)slen, (const unsigned char *)name, strlen(name), mac,
             &mlen) != NULL &&
        mlen == IW_KH_SHA1_LEN)
        ok = CRYPTO_memcmp(mac, hash, IW_KH_SHA1_LEN) == 0;
    free(salt);
    free(hash);
    return ok;
}

static int iw_kh_names_match(const char *names, const char *name)
{
    if (strncmp(names, "|1|", 3) == 0)
        return iw_kh_hashed_match(names, name);
    return iw_ssh_pattern_list_match(name, names) == 1;
}

/* Calls fn for every entry of every file that names host:port; fn returns nonzero to stop
 * (that value is returned). A missing or unreadable file simply knows no host. */
typedef int (*iw_kh_visit)(void *ctx, const iw_kh_line *e, const char *file, unsigned line);

static int iw_kh_walk(const iw_kh_files *f, const char *host, unsigned port, iw_kh_visit fn,
                      void *ctx, iw_kh_note note, void *arg)
{
    char name[300], *buf = malloc(IW_KH_LINE_MAX + 2);
    int i, rc = 0;
    if (buf == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    iw_kh_name(host, port, name, sizeof name);
    for (i = 0; i < f->n && rc == 0; i++) {
        FILE *fp = fopen(f->path[i], "re");
        unsigned line = 0;
        int cut = 0;
        if (fp == NULL)
            continue;
        while (rc == 0 && line < IW_KH_LINES_MAX && fgets(buf, IW_KH_LINE_MAX + 2, fp) != NULL) {
            iw_kh_line e;
            size_t n = strlen(buf);
            int was_cut = cut;
            /* a line too long for us is the rest of one we already skipped, or skipped */
            cut = n > 0 && buf[n - 1] != '\n' && !feof(fp);
            if (!was_cut)
                line++;
            if (was_cut || cut || iw_kh_parse(buf, &e) != 0 || !iw_kh_names_match(e.names, name))
                continue;
            if (e.marker == KH_CA) {
                iw_kh_say(note, arg, "%s line %u: @cert-authority for %s skipped (host "
                          "certificates are not supported)", f->path[i], line, name);
                continue;
            }
            if (e.marker == KH_OTHER_MARKER)
                continue;
            rc = fn(ctx, &e, f->path[i], line);
        }
        fclose(fp);
    }
    free(buf);
    return rc;
}

/* ---- the algorithms to offer ---- */

typedef struct iw_kh_algs {
    const char *supported;
    iw_sb       list;
} iw_kh_algs;

/* Whether alg is one of the comma-separated names in list. */
static int iw_kh_listed(const char *list, const char *alg, size_t n)
{
    while (list != NULL && *list != '\0') {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        if (len == n && memcmp(list, alg, n) == 0)
            return 1;
        list = end ? end + 1 : NULL;
    }
    return 0;
}

static void iw_kh_offer(iw_kh_algs *a, const char *alg)
{
    size_t n = strlen(alg);
    if (!iw_kh_listed(a->supported, alg, n) ||
        (a->list.p != NULL && iw_kh_listed(a->list.p, alg, n)))
        return;
    if (a->list.len > 0)
        iw_sb_add(&a->list, ",", 1);
    iw_sb_add(&a->list, alg, n);   /* iw_sb keeps it terminated for iw_kh_listed */
}

static int iw_kh_algs_visit(void *ctx, const iw_kh_line *e, const char *file, unsigned line)
{
    iw_kh_algs *a = ctx;
    (void)file;
    (void)line;
    if (e->marker != KH_PLAIN)
        return 0;
    /* an RSA key signs with SHA-2 where both ends can, as ssh prefers */
    if (strcmp(e->type, "ssh-rsa") == 0) {
        iw_kh_offer(a, "rsa-sha2-512");
        iw_kh_offer(a, "rsa-sha2-256");
    }
    iw_kh_offer(a, e->type);
    return 0;
}

int iw_kh_algorithms(const iw_kh_files *f, const char *host, unsigned port,
                     const char *supported, char *out, size_t size, iw_kh_note note, void *arg)
{
    iw_kh_algs a;
    const char *p;
    int rc, known;
    memset(&a, 0, sizeof a);
    a.supported = supported;
    rc = iw_kh_walk(f, host, port, iw_kh_algs_visit, &a, note, arg);
    known = a.list.len > 0;
    /* then everything else libssh2 can do, in its own order */
    for (p = supported; rc == 0 && known && p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        char alg[IW_KH_TYPE_MAX];
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len < sizeof alg) {
            memcpy(alg, p, len);
            alg[len] = '\0';
            iw_kh_offer(&a, alg);
        }
        p = end ? end + 1 : NULL;
    }
    if (rc == 0 && a.list.err != 0)
        rc = a.list.err;
    if (rc == 0 && known) {
        if (a.list.len >= size)
            rc = ST_ERROR_OUT_OF_MEMORY;
        else
            iw_strlcpy(out, a.list.p, size);
    }
    iw_sb_free(&a.list);
    return rc != 0 ? rc : known;
}

/* ---- the check ---- */

typedef struct iw_kh_verdict {
    const unsigned char *blob;
    size_t               len;
    char                 type[IW_KH_TYPE_MAX];    /* the server key's type */
    int                  revoked, match, changed, oom;
    char                 where[300];              /* file:line of what decided */
    char                 other[IW_KH_TYPE_MAX];   /* a type on file that is not the server's */
} iw_kh_verdict;

static int iw_kh_check_visit(void *ctx, const iw_kh_line *e, const char *file, unsigned line)
{
    iw_kh_verdict *v = ctx;
    size_t n = 0;
    unsigned char *key;
    int same;
    if (strcmp(e->type, v->type) != 0) {
        if (e->marker == KH_PLAIN && v->other[0] == '\0')
            iw_strlcpy(v->other, e->type, sizeof v->other);
        return 0;
    }
    key = iw_kh_unbase64(e->key, &n);
    if (key == NULL)
        return 0;                  /* a damaged line says nothing, as in ssh */
    same = n == v->len && memcmp(key, v->blob, n) == 0;
    free(key);
    if (same && e->marker == KH_REVOKED) {
        v->revoked = 1;
        snprintf(v->where, sizeof v->where, "%s line %u", file, line);
        return 1;                  /* nothing else matters */
    }
    if (same)
        v->match = 1;
    else if (!v->changed) {
        v->changed = 1;
        if (!v->match)
            snprintf(v->where, sizeof v->where, "%s line %u", file, line);
    }
    return 0;
}

/* The key type named inside an SSH public key blob (uint32 length, then the name). */
static int iw_kh_blob_type(const unsigned char *blob, size_t len, char *out, size_t size)
{
    size_t n;
    if (len < 4)
        return -1;
    n = ((size_t)blob[0] << 24) | ((size_t)blob[1] << 16) | ((size_t)blob[2] << 8) | blob[3];
    if (n == 0 || n >= size || n > len - 4)
        return -1;
    memcpy(out, blob + 4, n);
    out[n] = '\0';
    return 0;
}

static int iw_kh_append(const iw_kh_files *f, const char *host, unsigned port,
                        const char *type, const unsigned char *blob, size_t len,
                        iw_kh_note note, void *arg);

int iw_kh_check(const iw_kh_files *f, const char *host, unsigned port,
                const unsigned char *blob, size_t len, iw_kh_note note, void *arg)
{
    iw_kh_verdict v;
    int rc;
    memset(&v, 0, sizeof v);
    v.blob = blob;
    v.len = len;
    if (iw_kh_blob_type(blob, len, v.type, sizeof v.type) != 0)
        return ST_ERROR_SSH_HOST_KEY_UNKNOWN;
    rc = iw_kh_walk(f, host, port, iw_kh_check_visit, &v, note, arg);
    if (rc < 0 || rc > 1)
        return rc;
    if (v.revoked) {
        iw_kh_say(note, arg, "the %s host key of %s is revoked (%s)", v.type, host, v.where);
        return ST_ERROR_SSH_HOST_KEY_MISMATCH;
    }
    if (v.match)
        return 0;
    if (v.changed) {
        iw_kh_say(note, arg, "the %s host key of %s differs from %s", v.type, host, v.where);
        return ST_ERROR_SSH_HOST_KEY_MISMATCH;
    }
    if (v.other[0] != '\0') {
        iw_kh_say(note, arg, "a %s host key of %s is on file, but the server showed its %s key",
                  v.other, host, v.type);
#if LIBSSH2_VERSION_NUM < 0x010b00
        if (strcmp(v.other, "ssh-rsa") == 0)
            iw_kh_say(note, arg, "libssh2 %s checks ssh-rsa host keys only with SHA-1 "
                      "signatures, which OpenSSH 8.8 and later servers no longer make",
                      LIBSSH2_VERSION);
#endif
    }
    if (f->accept_new)
        return iw_kh_append(f, host, port, v.type, blob, len, note, arg);
    return ST_ERROR_SSH_HOST_KEY_UNKNOWN;
}

/* ---- accept-new: one line appended, as ssh writes it ---- */

static int iw_kh_b64(iw_sb *sb, const unsigned char *p, size_t n)
{
    size_t room = 4 * ((n + 2) / 3) + 1;
    unsigned char *out = malloc(room);
    int m;
    if (out == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    m = EVP_EncodeBlock(out, p, (int)n);
    iw_sb_add(sb, out, (size_t)m);
    free(out);
    return sb->err;
}

static int iw_kh_format(iw_sb *sb, const char *name, int hashed, const char *type,
                        const unsigned char *blob, size_t len)
{
    if (hashed) {
        unsigned char salt[IW_KH_SHA1_LEN], mac[EVP_MAX_MD_SIZE];
        unsigned mlen = 0;
        if (RAND_bytes(salt, sizeof salt) != 1 ||
            HMAC(EVP_sha1(), salt, (int)sizeof salt, (const unsigned char *)name, strlen(name),
                 mac, &mlen) == NULL)
            return ST_ERROR_SYSTEM_LIMIT;
        iw_sb_str(sb, "|1|");
        iw_kh_b64(sb, salt, sizeof salt);
        iw_sb_str(sb, "|");
        iw_kh_b64(sb, mac, mlen);
    } else {
        iw_sb_str(sb, name);
    }
    iw_sb_str(sb, " ");
    iw_sb_str(sb, type);
    iw_sb_str(sb, " ");
    iw_kh_b64(sb, blob, len);
    iw_sb_str(sb, "\n");
    return sb->err;
}

/* Appends text to path under an exclusive lock, in one write: concurrent connects (and ssh
 * itself, which also appends) each leave whole lines. 0 or -1. */
static int iw_kh_append_file(const char *path, const iw_sb *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st;
    ssize_t n = -1;
    char last = '\n';
    if (fd < 0 && errno == ENOENT) {
        /* ssh makes ~/.ssh when it is missing: so do we, for that folder only */
        char dir[4096];
        char *slash;
        iw_strlcpy(dir, path, sizeof dir);
        slash = strrchr(dir, '/');
        if (slash != NULL && slash - dir >= 5 && strncmp(slash - 5, "/.ssh", 5) == 0) {
            *slash = '\0';
            if (mkdir(dir, 0700) == 0)
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        }
    }
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX) == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        int rfd = st.st_size > 0 ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
        /* a file that does not end its last line gets its newline first */
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) != 1)
                last = '\n';
            close(rfd);
        }
        if (last != '\n' && write(fd, "\n", 1) != 1)
            n = -1;
        else
            n = write(fd, text->p, text->len);
    }
    close(fd);                     /* releases the lock */
    return n == (ssize_t)text->len ? 0 : -1;
}

static int iw_kh_append(const iw_kh_files *f, const char *host, unsigned port,
                        const char *type, const unsigned char *blob, size_t len,
                        iw_kh_note note, void *arg)
{
    char name[300];
    iw_sb line = {0};
    int i, rc;
    iw_kh_name(host, port, name, sizeof name);
    rc = iw_kh_format(&line, name, f->hash_new, type, blob, len);
    for (i = 0; rc == 0 && i < f->nuser; i++) {
        if (iw_kh_append_file(f->path[i], &line) == 0) {
            iw_kh_say(note, arg, "accepted the new %s host key of %s and added it to %s",
                      type, name, f->path[i]);
            iw_sb_free(&line);
            return 0;
        }
    }
    iw_sb_free(&line);
    if (rc != 0)
        return rc;
    /* ssh goes on when it cannot record the key; the key was accepted all the same */
    iw_kh_say(note, arg, "accepted the new %s host key of %s but could not add it to %s", type,
              name, f->nuser > 0 ? f->path[0] : "any known_hosts file");
    return 0;
}
