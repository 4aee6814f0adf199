/* fetch.c: "imapwire fetch URL/MAILBOX;UID=n": log in, select, find the message by UID
 * and stream it to stdout or -o FILE, with a progress bar when stderr is a terminal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

struct locate {
    unsigned uid, seq;
    unsigned long size;
};

/* "[* ]SEQ FETCH (... UID n ... RFC822.SIZE s ...)": the UID FETCH answer gives the
 * sequence number ImapGetMessage wants, and the size for the progress bar. */
static VOID on_fetch(HCLIENT h, LPCTSTR data, DWORD len, LPVOID param)
{
    struct locate *l = param;
    char line[512], *p, *q;
    unsigned long seq;

    (void)h;
    if (len >= sizeof line)
        len = sizeof line - 1;
    memcpy(line, data, len);
    line[len] = '\0';
    p = line;
    if (p[0] == '*' && p[1] == ' ')
        p += 2;
    seq = strtoul(p, &q, 10);
    if (q == p || strncasecmp(q, " FETCH", 6) != 0)
        return;
    if ((p = strcasestr(q, "UID ")) != NULL && strtoul(p + 4, NULL, 10) != l->uid)
        return;
    l->seq = (unsigned)seq;
    if ((p = strcasestr(q, "RFC822.SIZE ")) != NULL)
        l->size = strtoul(p + 12, NULL, 10);
}

struct sink {
    FILE *f;
    unsigned long done, total;
    int bar, failed;
};

static void draw(const struct sink *s)
{
    int width = 30, fill = s->total ? (int)((double)s->done * width / (double)s->total) : 0;
    if (fill > width)
        fill = width;
    fprintf(stderr, "\r[%.*s%*s] %lu/%lu bytes", fill, "##############################",
            width - fill, "", s->done, s->total);
    fflush(stderr);
}

static VOID on_piece(HCLIENT h, const VOID *data, DWORD len, LPVOID param)
{
    struct sink *s = param;
    (void)h;
    if (!s->failed && fwrite(data, 1, len, s->f) != len)
        s->failed = errno ? errno : EIO;
    s->done += len;
    if (s->bar)
        draw(s);
}

int cmd_fetch(struct cli_opts *o, int argc, char **argv)
{
    struct cli_url u;
    struct cli_session s;
    struct locate l;
    struct sink k;
    IMAPMAILBOX mb;
    char why[256], cmd[64], result[256];
    json_object *report = json_object_new_object();
    DWORD length = 0;
    int rc;

    memset(&s, 0, sizeof s);
    memset(&k, 0, sizeof k);
    json_object_object_add(report, "command", json_object_new_string("fetch"));
    if (argc != 1)
        return cli_finish(o, report, cli_usage_error(o, report, "fetch takes one URL: "
                          "imap://user@host/INBOX;UID=1"));
    if (cli_url_parse(argv[0], &u, why, sizeof why) != 0)
        return cli_finish(o, report, cli_usage_error(o, report, "%s: %s", argv[0], why));
    if (u.uid == 0)
        return cli_finish(o, report, cli_usage_error(o, report, "%s: name the message with "
                          ";UID=n after the mailbox", argv[0]));
    if (u.user[0] == '\0' && o->user == NULL)
        return cli_finish(o, report, cli_usage_error(o, report, "fetch needs a login: put "
                          "the user in the URL (imap://user@host/...)"));
    if (o->json && o->output == NULL)
        return cli_finish(o, report, cli_usage_error(o, report, "fetch --json writes the "
                          "report on stdout: give the message a file with -o FILE"));
    if (u.mailbox[0] == '\0')
        snprintf(u.mailbox, sizeof u.mailbox, "INBOX");
    o->login = 1;
    json_object_object_add(report, "url", json_object_new_string(argv[0]));
    json_object_object_add(report, "mailbox", json_object_new_string(u.mailbox));
    json_object_object_add(report, "uid", json_object_new_int64(u.uid));
    {
        /* connect and login facts go to stderr in human mode: stdout carries the message */
        int saved = dup(STDOUT_FILENO);
        if (!o->json && saved >= 0)
            dup2(STDERR_FILENO, STDOUT_FILENO);
        rc = cli_open(o, &u, &s, report);
        fflush(stdout);
        if (!o->json && saved >= 0)
            dup2(saved, STDOUT_FILENO);
        if (saved >= 0)
            close(saved);
    }
    if (rc != 0)
        goto out;
    memset(&mb, 0, sizeof mb);
    if (ImapSelectMailbox(s.h, u.mailbox, &mb) == IMAP_ERROR) {
        DWORD e = ImapGetLastError();
        rc = cli_fail(o, report, e == ST_ERROR_COMMAND_FAILED ? ST_ERROR_MESSAGE_NOT_FOUND : e,
                      "select", u.host, s.port);
        goto out;
    }
    memset(&l, 0, sizeof l);
    l.uid = u.uid;
    snprintf(cmd, sizeof cmd, "UID FETCH %u (UID RFC822.SIZE)", u.uid);
    if (ImapCommandEx(s.h, cmd, on_fetch, &l, result, (INT)sizeof result) == IMAP_ERROR) {
        rc = cli_fail(o, report, ImapGetLastError(), "UID FETCH", u.host, s.port);
        goto out;
    }
    if (l.seq == 0) {
        rc = cli_fail(o, report, ST_ERROR_MESSAGE_NOT_FOUND, "finding the UID", u.host, s.port);
        goto out;
    }
    k.total = l.size;
    if (o->output != NULL) {
        k.f = fopen(o->output, "wbe");
        if (k.f == NULL) {
            fprintf(stderr, "imapwire: cannot write %s: %s\n  fix: check the directory and "
                    "its permissions\n", o->output, strerror(errno));
            rc = EXIT_LOCAL_IO;
            json_object_object_add(report, "exit_code", json_object_new_int(rc));
            goto out;
        }
    } else {
        k.f = stdout;
    }
    k.bar = !o->json && isatty(STDERR_FILENO) && (o->output != NULL || !isatty(STDOUT_FILENO));
    if (ImapGetMessageStream(s.h, l.seq, 0, on_piece, &k, &length) == IMAP_ERROR) {
        rc = cli_fail(o, report, ImapGetLastError(), "fetch", u.host, s.port);
    } else if (k.failed || fflush(k.f) != 0) {
        fprintf(stderr, "imapwire: writing the message failed: %s\n  fix: check the disk "
                "space and the output file\n", strerror(k.failed ? k.failed : errno));
        rc = EXIT_LOCAL_IO;
        json_object_object_add(report, "exit_code", json_object_new_int(rc));
    }
    if (k.bar) {
        draw(&k);
        fputs(rc == 0 ? " done\n" : " failed\n", stderr);
    }
    if (k.f != stdout && fclose(k.f) != 0 && rc == 0)
        rc = EXIT_LOCAL_IO;
    json_object_object_add(report, "sequence", json_object_new_int64(l.seq));
    json_object_object_add(report, "bytes", json_object_new_int64(length));
    json_object_object_add(report, "output", o->output ? json_object_new_string(o->output)
                                                       : json_object_new_string("-"));
out:
    cli_release(&s);
    return cli_finish(o, report, rc);
}
