/* fetch.c: "imapwire fetch URL/MAILBOX;UID=n" (or ;MAILINDEX=, ;SECTION=, ;PARTIAL=): log
 * in, select, stream the message by UID to stdout or -o FILE, with a progress bar. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

struct sink {
    FILE *f;
    unsigned long done, total;
    int bar, failed, tty;     /* tty: stdout is a terminal: the message shown escaped */
    int in_place;             /* -o names a device or FIFO: written, never replaced */
    unsigned char carry[4];   /* tty: a UTF-8 sequence cut between two pieces */
    size_t ncarry;
    char dir[PATH_MAX];       /* -o FILE: the folder of FILE, where the new file is made */
    char tmp[PATH_MAX];       /* its name while it has one; "" for an O_TMPFILE */
    unsigned want;            /* the UID (or sequence number) asked for */
    int by_uid;
    unsigned long seq;        /* from the answer's "* SEQ FETCH" */
    DWORD body_response;      /* the response whose next literal is the body; 0 none yet */
    int got;                  /* the body's literal began */
    int body_done;         /* the body's literal ended */
};

/* -o FILE: the message goes to a new file of mode 0600 in FILE's folder, which replaces
 * FILE (by rename, so a symlink there is replaced, never followed) only once the whole
 * message is written. An O_TMPFILE has no name until then, so a kill leaves nothing;
 * where the file system has none, a named mkstemp file is removed on failure. */
static int out_open(const char *path, struct sink *k)
{
    const char *slash = strrchr(path, '/');
    struct stat st;
    int fd, n;

    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
        /* -o /dev/null or a FIFO: a rename would put a file in place of the device */
        fd = S_ISDIR(st.st_mode) ? (errno = EISDIR, -1)
                                 : open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0 && (fstat(fd, &st) != 0 || S_ISREG(st.st_mode))) {
            close(fd);         /* swapped for a file since the lstat */
            errno = EEXIST;
            return -1;
        }
        if (fd < 0 || (k->f = fdopen(fd, "wb")) == NULL) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
        k->in_place = 1;
        return 0;
    }
    n = slash == NULL ? snprintf(k->dir, sizeof k->dir, ".")
                      : snprintf(k->dir, sizeof k->dir, "%.*s",
                                 slash == path ? 1 : (int)(slash - path), path);
    if (n < 0 || (size_t)n >= sizeof k->dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    k->tmp[0] = '\0';
    fd = open(k->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        n = snprintf(k->tmp, sizeof k->tmp, "%s/.imapwire-XXXXXX", k->dir);
        fd = n > 0 && (size_t)n < sizeof k->tmp ? mkostemp(k->tmp, O_CLOEXEC) : -1;
        if (fd < 0)
            k->tmp[0] = '\0';
    }
    if (fd < 0)
        return -1;
    /* 0600 whatever the umask: the message is private mail */
    if (fchmod(fd, 0600) != 0 || (k->f = fdopen(fd, "wb")) == NULL) {
        int e = errno;
        close(fd);
        if (k->tmp[0] != '\0')
            unlink(k->tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* Gives the finished O_TMPFILE a name beside FILE; linkat never replaces, so a name taken
 * (even by a symlink) is skipped. */
static int out_name(struct sink *k)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(k->f));
    for (unsigned i = 0; i < 100; i++) {
        int n = snprintf(k->tmp, sizeof k->tmp, "%s/.imapwire-%ld-%u", k->dir,
                         (long)getpid(), i);
        if (n < 0 || (size_t)n >= sizeof k->tmp)
            break;
        if (linkat(AT_FDCWD, proc, AT_FDCWD, k->tmp, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    k->tmp[0] = '\0';
    return -1;
}

/* ok: the message is complete. Then it replaces FILE; else FILE is left as it was. 0, or
 * -1 with errno when the file could not be finished. */
static int out_close(const char *path, struct sink *k, int ok)
{
    int rc = 0, e = 0;

    if (k->in_place) {
        rc = fclose(k->f);
        k->f = NULL;
        return rc == 0 ? 0 : -1;
    }
    if (ok && (fflush(k->f) != 0 || fsync(fileno(k->f)) != 0 ||
               (k->tmp[0] == '\0' && out_name(k) != 0) || rename(k->tmp, path) != 0)) {
        e = errno;
        rc = -1;
    }
    if ((!ok || rc != 0) && k->tmp[0] != '\0')
        unlink(k->tmp);
    if (fclose(k->f) != 0 && rc == 0 && ok) {
        e = errno;
        rc = -1;
    }
    k->f = NULL;
    errno = e;
    return rc;
}

static void draw(const struct sink *s)
{
    int width = 30, fill = s->total ? (int)((double)s->done * width / (double)s->total) : 0;
    if (s->total == 0) {           /* through the library's fetch: the size comes last */
        fprintf(stderr, "\r%lu bytes", s->done);
        fflush(stderr);
        return;
    }
    if (fill > width)
        fill = width;
    fprintf(stderr, "\r[%.*s%*s] %lu/%lu bytes", fill, "##############################",
            width - fill, "", s->done, s->total);
    fflush(stderr);
}

/* A piece of the message on a terminal: a mail's sender chooses its bytes, so escape
 * sequences in it are shown, not obeyed (as for the server's words). */
static void show_piece(struct sink *s, const unsigned char *p, size_t len)
{
    size_t used;

    if (s->ncarry > 0) {
        /* finish the cut sequence with the first bytes of this piece */
        unsigned char join[8];
        size_t add = len < 4 ? len : 4;
        memcpy(join, s->carry, s->ncarry);
        memcpy(join + s->ncarry, p, add);
        used = cli_put_visible(s->f, (const char *)join, s->ncarry + add, 1);
        if (used < s->ncarry) {
            s->ncarry += add;          /* still cut: a piece of 1-2 bytes */
            memcpy(s->carry, join, s->ncarry);
            return;
        }
        p += used - s->ncarry;
        len -= used - s->ncarry;
        s->ncarry = 0;
    }
    used = cli_put_visible(s->f, (const char *)p, len, 1);
    s->ncarry = len - used;
    memcpy(s->carry, p + used, s->ncarry);
}

static void write_piece(struct sink *s, const void *data, DWORD len)
{
    if (s->tty)
        show_piece(s, data, len);
    else if (!s->failed && fwrite(data, 1, len, s->f) != len)
        s->failed = errno ? errno : EIO;
    s->done += len;
    if (s->bar)
        draw(s);
}

/* "* SEQ FETCH (UID n BODY[...] {size}": the text before the body's literal. The message
 * asked for, by UID when asked by UID, so an unsolicited FETCH of another is not taken. */
static int body_head(struct sink *k, const char *data, size_t len)
{
    char text[512], *p, *q;
    unsigned long seq;

    if (len >= sizeof text)
        len = sizeof text - 1;
    memcpy(text, data, len);
    text[len] = '\0';
    p = text[0] == '*' && text[1] == ' ' ? text + 2 : text;
    seq = strtoul(p, &q, 10);
    if (q == p || strncasecmp(q, " FETCH", 6) != 0 || strcasestr(q, "BODY[") == NULL)
        return 0;
    /* a UID after the literal is not seen here: only a UID before it that differs refuses */
    if (k->by_uid ? ((p = strcasestr(q, "UID ")) != NULL && strtoul(p + 4, NULL, 10) != k->want)
                  : seq != k->want)
        return 0;
    k->seq = seq;
    return 1;
}

static VOID on_piece(HCLIENT h, const IMAPRESPONSEPIECE *piece, LPVOID param)
{
    struct sink *k = param;
    (void)h;
    if (piece->dwFlags & IMAP_PIECE_LITERAL) {
        if (k->body_response == piece->dwResponse && !k->body_done) {
            if (piece->dwLiteralOffset == 0) {
                k->total = piece->dwLiteralSize;
                k->got = 1;
            }
            write_piece(k, piece->lpData, piece->dwLength);
            if (piece->dwLiteralOffset + piece->dwLength >= piece->dwLiteralSize)
                k->body_done = 1;     /* the body is complete: later literals are not it */
        }
        return;
    }
    if (!k->got && !(piece->dwFlags & IMAP_PIECE_END) && piece->dwLiteralSize > 0 &&
        body_head(k, piece->lpData, piece->dwLength))
        k->body_response = piece->dwResponse;
}

/* ImapGetMessageStreamEx's pieces: the body only. */
static VOID on_body(HCLIENT h, const VOID *data, DWORD len, LPVOID param)
{
    struct sink *k = param;
    (void)h;
    k->got = 1;
    write_piece(k, data, len);
}

/* The library's fetch names a whole message or a numbered part (by UID with
 * IMAP_MESSAGE_UID); a text section or a ;PARTIAL= needs a command of our own. 0: none. */
static unsigned library_part(const struct cli_url *u)
{
    char *e;
    unsigned long n;
    if (u->partial)
        return (unsigned)-1;
    if (u->section[0] == '\0')
        return 0;
    n = strtoul(u->section, &e, 10);
    return u->section[0] >= '1' && u->section[0] <= '9' && *e == '\0' && n <= 0xffff
               ? (unsigned)n : (unsigned)-1;
}

/* UID FETCH n (BODY.PEEK[SECTION]<off.len>), or FETCH for ;MAILINDEX=: one command, so
 * no expunge in between can make it another message. */
static int fetch_command(const struct cli_url *u, char *cmd, size_t size)
{
    char partial[48] = "";
    int n;

    if (u->partial)
        snprintf(partial, sizeof partial, "<%lu.%lu>", u->partial_off,
                 u->partial_len ? u->partial_len : 0xffffffffUL);
    n = snprintf(cmd, size, "%sFETCH %u (BODY.PEEK[%s]%s)", u->uid ? "UID " : "",
                 u->uid ? u->uid : u->mailindex, u->section, partial);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* The message asked for, into the sink; a failure's error code, or 0. */
static DWORD fetch_into(HCLIENT h, const struct cli_url *u, struct sink *k)
{
    char cmd[256], result[256];
    unsigned part = library_part(u);

    if (part != (unsigned)-1) {
        DWORD len = 0;
        if (ImapGetMessageStreamEx(h, k->want, part, k->by_uid ? IMAP_MESSAGE_UID : 0,
                                   on_body, k, &len) == IMAP_ERROR)
            return ImapGetLastError();
        k->seq = k->by_uid ? 0 : k->want;
        k->total = len;
        k->got = 1;                           /* an empty body is a body */
        return 0;
    }
    if (fetch_command(u, cmd, sizeof cmd) != 0)
        return ST_ERROR_INVALID_PARAMETER;    /* parsed sections are far shorter */
    return ImapCommandStream(h, cmd, on_piece, k, result, (INT)sizeof result) == IMAP_ERROR
               ? ImapGetLastError() : 0;
}

static char out_buf[1 << 16];       /* -o FILE's stdio buffer */

/* The one URL checked (it names a message, a login, somewhere for the message under
 * --json) and put in the report; 0, or the usage error's exit code. */
static int fetch_args(const struct cli_opts *o, int argc, char **argv, struct cli_url *u,
                      json_object *report)
{
    char why[256];

    if (argc != 1)
        return cli_usage_error(o, report, "fetch takes one URL: imap://user@host/INBOX;UID=1");
    if (cli_url_parse(argv[0], u, why, sizeof why) != 0)
        return cli_url_error(o, report, argv[0], why);
    if (u->uid == 0 && u->mailindex == 0)
        return cli_usage_error(o, report, "%s: name the message with ;UID=n (or "
                               ";MAILINDEX=n) after the mailbox", argv[0]);
    if (u->user[0] == '\0' && o->user == NULL && !o->netrc && !o->netrc_file)
        return cli_usage_error(o, report, "fetch needs a login: put the user in the URL "
                               "(imap://user@host/...), -u or --netrc");
    if (o->json && o->output == NULL)
        return cli_usage_error(o, report, "fetch --json writes the report on stdout: give "
                               "the message a file with -o FILE");
    if (u->mailbox[0] == '\0')
        snprintf(u->mailbox, sizeof u->mailbox, "INBOX");
    json_object_object_add(report, "url", json_object_new_string(argv[0]));
    json_object_object_add(report, "mailbox", json_object_new_string(u->mailbox));
    json_object_object_add(report, "uid", u->uid ? json_object_new_int64(u->uid) : NULL);
    json_object_object_add(report, "mailindex",
                           u->mailindex ? json_object_new_int64(u->mailindex) : NULL);
    return 0;
}

/* A local failure told (stderr and the report's exit code): EXIT_LOCAL_IO. */
static int local_io_error(json_object *report)
{
    json_object_object_add(report, "exit_code", json_object_new_int(EXIT_LOCAL_IO));
    return EXIT_LOCAL_IO;
}

/* Where the message goes: -o FILE, else stdout; and whether a progress bar is drawn. 0,
 * or EXIT_LOCAL_IO after telling why. */
static int sink_open(const struct cli_opts *o, struct sink *k, json_object *report)
{
    if (o->output != NULL) {
        if (out_open(o->output, k) != 0) {
            fprintf(stderr, "imapwire: cannot write %s: %s\n  fix: check the directory and "
                    "its permissions\n", o->output, strerror(errno));
            return local_io_error(report);
        }
        /* a TLS server's records come in pieces of about 4 KB: stdio's 4 KB buffer made
         * one write per piece (5,121 for 20 MB), 64 KB makes one per 16 (glibc takes a
         * size only with a buffer; one fetch per process, so a static one) */
        setvbuf(k->f, out_buf, _IOFBF, sizeof out_buf);
    } else {
        k->f = stdout;
        k->tty = isatty(STDOUT_FILENO);
    }
    k->bar = !o->json && isatty(STDERR_FILENO) && (o->output != NULL || !isatty(STDOUT_FILENO));
    return 0;
}

/* The message fetched into the sink, and what came of it: 0 or an exit code. */
static int fetch_outcome(const struct cli_opts *o, const struct cli_url *u,
                         const struct cli_session *s, struct sink *k, json_object *report)
{
    DWORD e;

    if ((e = fetch_into(s->h, u, k)) != 0)
        return cli_fail(o, report, e, k->by_uid ? "UID FETCH" : "FETCH", u->host, s->port);
    if (!k->got)
        return cli_fail(o, report, ST_ERROR_MESSAGE_NOT_FOUND, "finding the message", u->host,
                        s->port);
    if (k->tty) {
        cli_put_visible(stdout, (const char *)k->carry, k->ncarry, 0);   /* a cut end */
        fflush(stdout);
    } else if (k->failed || (k->f == stdout && fflush(k->f) != 0)) {
        fprintf(stderr, "imapwire: writing the message failed: %s\n  fix: check the disk "
                "space and the output file\n", strerror(k->failed ? k->failed : errno));
        return local_io_error(report);
    }
    return 0;
}

/* The bar ended, -o FILE put in place (or dropped after a failure), the report's last
 * facts; the exit code, rc unless the file could not be completed. */
static int sink_close(const struct cli_opts *o, struct sink *k, int rc, json_object *report)
{
    if (k->bar) {
        draw(k);
        fputs(rc == 0 ? " done\n" : " failed\n", stderr);
    }
    if (k->f != stdout && out_close(o->output, k, rc == 0) != 0 && rc == 0) {
        fprintf(stderr, "imapwire: writing %s failed: %s\n  fix: check the disk space and "
                "the directory\n", o->output, strerror(errno));
        rc = local_io_error(report);
    }
    json_object_object_add(report, "sequence",
                           k->seq ? json_object_new_int64((int64_t)k->seq) : NULL);
    json_object_object_add(report, "bytes", json_object_new_int64((int64_t)k->done));
    json_object_object_add(report, "output", o->output ? json_object_new_string(o->output)
                                                       : json_object_new_string("-"));
    return rc;
}

int cmd_fetch(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    struct cli_session s;
    struct sink k;
    IMAPMAILBOX mb;
    json_object *report = json_object_new_object();
    DWORD e;
    int rc;

    memset(&s, 0, sizeof s);
    memset(&k, 0, sizeof k);
    json_object_object_add(report, "command", json_object_new_string("fetch"));
    if ((rc = fetch_args(o, argc, argv, &u, report)) != 0)
        return cli_finish(o, report, rc);
    rc = cli_open_quiet(o, &u, &s, report);
    if (rc != 0)
        goto out;
    memset(&mb, 0, sizeof mb);
    if (ImapSelectMailbox(s.h, u.mailbox, &mb) == IMAP_ERROR) {
        e = ImapGetLastError();
        rc = cli_fail(o, report, e == ST_ERROR_COMMAND_FAILED ? ST_ERROR_MESSAGE_NOT_FOUND : e,
                      "select", u.host, s.port);
        goto out;
    }
    k.want = u.uid ? u.uid : u.mailindex;
    k.by_uid = u.uid != 0;
    if ((rc = sink_open(o, &k, report)) != 0)
        goto out;
    rc = fetch_outcome(o, &u, &s, &k, report);
    rc = sink_close(o, &k, rc, report);
out:
    cli_release(&s);
    return cli_finish(o, report, rc);
}
