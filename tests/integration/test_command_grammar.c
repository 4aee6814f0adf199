/* test_command_grammar.c: ImapCommand reads the caller's text with the IMAP grammar: one
 * command leaves, its literals only at argument starts, nothing else; against Dovecot. */
/* ctest runs it against a Dovecot with LITERAL+ that records raw sessions (rawlog), and
 * as test_command_grammar_sync against the one without LITERAL+ (IW_EXPECT_SYNC_LITERALS). */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "iwtest.h"

static iwt_dovecot dv;
static HCLIENT h;
static trace_log *tl;
static char rawlog[600];           /* the instance's rawlog folder, or "" */

static HCLIENT connect_login(trace_log *t, UINT timeout)
{
    IMAPCONNECTINFO ci;
    HCLIENT c;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = dv.host;
    ci.nRemotePort = dv.port;
    ci.nTimeout = timeout;
    ci.lpTraceProc = t ? trace_cb : NULL;
    ci.lpParam = t;
    c = ImapConnectEx(&ci);
    ck_assert_msg(c != INVALID_CLIENT, "connect: %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(c, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    return c;
}

static void setup(void)
{
    const char *e = getenv("IW_DOVECOT_RAWLOG");
    iwt_dovecot_load(&dv);
    rawlog[0] = '\0';
    if (e != NULL && strcmp(e, "1") == 0) {
        /* Dovecot writes one pair of files per session here, as the mail user */
        snprintf(rawlog, sizeof rawlog, "%s/rawlog", dv.dir);
        mkdir(rawlog, 0777);
        chmod(rawlog, 0777);
    }
    ck_assert(ImapInitialize(NULL, NULL));
    tl = calloc(1, sizeof *tl);
    ck_assert_ptr_nonnull(tl);
    h = connect_login(tl, 3);
}

static void teardown(void)
{
    ImapDisconnect(h);
    ImapUninitialize();
    free(tl);
}

/* Whether any session's raw input (the *.in files of the rawlog) holds needle. */
static int rawlog_has(const char *needle)
{
    DIR *d = opendir(rawlog);
    struct dirent *de;
    int found = 0;
    ck_assert_msg(d != NULL, "no rawlog folder %s", rawlog);
    while (!found && (de = readdir(d)) != NULL) {
        char path[1200], *text;
        size_t n = strlen(de->d_name);
        if (n < 3 || strcmp(de->d_name + n - 3, ".in") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", rawlog, de->d_name);
        text = iwt_read_file(path);
        found = strstr(text, needle) != NULL;
        free(text);
    }
    closedir(d);
    return found;
}

/* The refused text left nothing on the wire, and the session is still in step. */
static void assert_refused_in_step(int rc, int sends)
{
    char result[256];
    ck_assert_int_eq(rc, IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(tl->sends, sends);
    ck_assert_int_eq(ImapCommand(h, "NOOP", result, sizeof result), 0);
    ck_assert_int_eq(tl->sends, sends + 1);
}

/* A second command hidden in the text: the first line would end inside a quoted string
 * (or an atom) with what looks like a literal's head, and the "literal" is a command of
 * its own. Nothing may leave; the mailbox it would create does not exist afterwards
 * (asked on a second connection), and the server never saw its tag. */
static const char *const smuggled[] = {
    "NOOP \"{%zu}\r\n%s\"",            /* the case: a quoted string */
    "NOOP \"{%zu+}\r\n%s\"",
    "NOOP x{%zu}\r\n%s",               /* inside an atom */
    "NOOP\t{%zu}\r\n%s",               /* after a tab: not an argument start */
    "{%zu}\r\n%s",                     /* a literal in place of the verb */
    "NOOP \"a\\\"{%zu}\r\n%s\"",       /* an escaped quote does not end the string */
};

START_TEST(smuggled_command_never_sent)
{
    char box[64], inner[160], text[400], result[256];
    long long deadline;
    HCLIENT h2;

    snprintf(box, sizeof box, "smuggled%d_%ld", _i, (long)getpid());
    snprintf(inner, sizeof inner, "X%d CREATE %s\r\nY%d NOOP ", _i, box, _i);
    snprintf(text, sizeof text, smuggled[_i], strlen(inner), inner);
    ck_assert_int_eq(ImapCommandEx(h, text, NULL, NULL, result, sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    /* in step: the next command gets its own answer (NO: that mailbox does not exist) */
    snprintf(text, sizeof text, "STATUS %s-after (MESSAGES)", box);
    ck_assert_int_eq(ImapCommand(h, text, result, sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_COMMAND_FAILED);
    ck_assert_msg(strncmp(result, "NO", 2) == 0, "%s", result);
    h2 = connect_login(NULL, 10);
    snprintf(text, sizeof text, "STATUS %s (MESSAGES)", box);
    ck_assert_int_eq(ImapCommand(h2, text, result, sizeof result), IMAP_ERROR);
    ck_assert_int_eq(ImapDisconnect(h2), 0);
    if (rawlog[0] == '\0')
        return;
    /* what the server received up to the marker command, which came after the refusal */
    snprintf(text, sizeof text, "STATUS %s-after", box);
    deadline = iwt_now_ms() + 5000;
    while (!rawlog_has(text)) {
        ck_assert_msg(iwt_now_ms() < deadline, "the rawlog (%s) never shows \"%s\"",
                      rawlog, text);
        usleep(20000);
    }
    snprintf(text, sizeof text, "CREATE %s\r", box);
    ck_assert_msg(!rawlog_has(text), "the server received \"%s\" (%s)", text, rawlog);
}
END_TEST

/* Text the grammar refuses: CR or LF outside a literal, a literal whose bytes are short
 * or followed by more than the rest of the command, an unterminated quoted string. */
static const char *const refused[] = {
    "SELECT {5}\r\nINBOX\r\nX1 CREATE refused",
    "SELECT {5}\r\nINBOXX",
    "SELECT {5}\r\nINBOX{3}\r\nabc",
    "NOOP {3}\nabc",
    "NOOP\r",
    "NOOP\nNOOP",
    "SELECT \"INBOX",
    "SEARCH (SUBJECT x",
    "SEARCH SUBJECT x)",
    " \t ",                            /* no verb at all */
};

START_TEST(grammar_refusals)
{
    char result[256];
    int sends = tl->sends;
    assert_refused_in_step(ImapCommand(h, refused[_i], result, sizeof result), sends);
}
END_TEST

/* A literal head with no bytes after it (or fewer than it announces) fails at once with
 * nothing sent: the handle does not wait for a "+" and stays usable. */
static const char *const short_literals[] = {
    "APPEND INBOX {40}", "APPEND INBOX {40+}", "APPEND INBOX (\\Seen) {5}\r\nab",
    "APPEND INBOX {0}",
};

START_TEST(append_without_bytes)
{
    char result[256];
    int sends = tl->sends;
    long long t0 = iwt_now_ms();
    int rc = ImapCommand(h, short_literals[_i], result, sizeof result);
    ck_assert_msg(iwt_now_ms() - t0 < 1000, "took %lld ms", iwt_now_ms() - t0);
    assert_refused_in_step(rc, sends);
}
END_TEST

/* What the grammar allows still works, literals at every kind of argument start. */
START_TEST(literals_at_argument_starts)
{
    static const char msg[] = "Subject: grammar\r\n\r\nbody\r\n";
    char box[32], text[256], result[256];
    /* a mailbox of its own: other suites count the messages of the shared INBOX */
    snprintf(box, sizeof box, "grammar%ld", (long)getpid());
    snprintf(text, sizeof text, "CREATE {%zu}\r\n%s", strlen(box), box);
    ck_assert_int_eq(ImapCommand(h, text, result, sizeof result), 0);
    snprintf(text, sizeof text, "APPEND %s {%zu}\r\n%s", box, sizeof msg - 1, msg);
    ck_assert_int_eq(ImapCommand(h, text, result, sizeof result), 0);
    snprintf(text, sizeof text, "STATUS {%zu}\r\n%s (MESSAGES)", strlen(box), box);
    ck_assert_int_eq(ImapCommand(h, text, result, sizeof result), 0);
    ck_assert_int_eq(ImapCommand(h, "LIST \"\" {1}\r\n*", result, sizeof result), 0);
    snprintf(text, sizeof text, "SELECT \"%s\"", box);
    ck_assert_int_eq(ImapCommand(h, text, result, sizeof result), 0);
    ck_assert_int_eq(ImapCommand(h, "SEARCH (SUBJECT {7}\r\ngrammar)", result, sizeof result), 0);
    ck_assert_int_eq(ImapCommand(h, "SEARCH SUBJECT \"a\\\"b{3}\"", result, sizeof result), 0);
    ck_assert_int_eq(ImapCommand(h, "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", result,
                                 sizeof result), 0);
    ck_assert_int_eq(ImapCommand(h, "UNSELECT", result, sizeof result), 0);
    snprintf(text, sizeof text, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, text, result, sizeof result), 0);
}
END_TEST

/* ImapCommandStream takes caller text too: the same grammar, the same refusal. */
static void no_piece(HCLIENT c, const IMAPRESPONSEPIECE *piece, LPVOID param)
{
    (void)c;
    (void)piece;
    (void)param;
}

START_TEST(stream_entry_point)
{
    char inner[64], text[160], result[256];
    int sends = tl->sends;
    snprintf(inner, sizeof inner, "X9 CREATE streamed_%ld\r\nY9 NOOP ", (long)getpid());
    snprintf(text, sizeof text, "NOOP \"{%zu}\r\n%s\"", strlen(inner), inner);
    assert_refused_in_step(ImapCommandStream(h, text, no_piece, NULL, result, sizeof result),
                           sends);
    sends = tl->sends;
    assert_refused_in_step(ImapCommandStream(h, "APPEND INBOX {40}", no_piece, NULL, result,
                                             sizeof result), sends);
}
END_TEST

/* A continuation the command did not ask for fails it, and nothing is sent in answer
 * (a "*" would be read as the next command, or as literal bytes). */
START_TEST(unexpected_continuation)
{
    iwt_fixture f;
    HCLIENT c;
    char *log;

    c = iwt_fixture_connect(&f, "unexpected-continuation", 2, 5, IMAP_OPTION_NONE);
    ck_assert_int_eq(ImapCommand(c, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_RESPONSE);
    ImapDisconnect(c);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    ck_assert_msg(strstr(log, "continuation sent") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "\n1 *\n") == NULL, "a \"*\" was sent: %s", log);
    free(log);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("command_grammar");
    TCase *tc = tcase_create("command_grammar");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, smuggled_command_never_sent, 0,
                        (int)(sizeof smuggled / sizeof smuggled[0]));
    tcase_add_loop_test(tc, grammar_refusals, 0, (int)(sizeof refused / sizeof refused[0]));
    tcase_add_loop_test(tc, append_without_bytes, 0,
                        (int)(sizeof short_literals / sizeof short_literals[0]));
    tcase_add_test(tc, literals_at_argument_starts);
    tcase_add_test(tc, stream_entry_point);
    tcase_add_test(tc, unexpected_continuation);
    suite_add_tcase(s, tc);
    return iwt_run_suite(s);
}
