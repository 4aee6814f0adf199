/* test_command_table.c: ImapCommand's command table against a real Dovecot: the forms
 * that would change the stream under the library are refused with nothing sent, secret
 * arguments are redacted, and state changes follow the tagged OK. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "iwtest.h"

static iwt_dovecot dv;
static HCLIENT h;
static trace_log *tl;

static void setup(void)
{
    IMAPCONNECTINFO ci;
    iwt_dovecot_load(&dv);
    ck_assert(ImapInitialize(NULL, NULL));
    tl = calloc(1, sizeof *tl);
    ck_assert_ptr_nonnull(tl);
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = dv.host;
    ci.nRemotePort = dv.port;
    ci.nTimeout = 10;
    ci.lpTraceProc = trace_cb;
    ci.lpParam = tl;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
}

static void teardown(void)
{
    ImapDisconnect(h);
    ImapUninitialize();
    free(tl);
}

/* Dovecot would answer each of these (STARTTLS even with OK before login): the library
 * must refuse them itself, send nothing, and leave the session in step. */
START_TEST(refused_forms)
{
    static const char *const forms[] = {
        "STARTTLS", "starttls", "  STARTTLS", "COMPRESS DEFLATE", "IDLE", "idle",
        "NOTIFY SET (selected MessageNew)", "\tIDLE",
    };
    char result[256];
    int sends;

    if (_i >= 3)       /* COMPRESS, IDLE and NOTIFY after login, where they would work */
        ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    sends = tl->sends;
    ck_assert_int_eq(ImapCommand(h, forms[_i], result, sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(tl->sends, sends);
    ck_assert_msg(strstr(tl->text, "not sent") != NULL, "%s", tl->text);
    /* the stream is in step: the next command gets its own reply */
    ck_assert_int_eq(ImapCommand(h, "NOOP", result, sizeof result), 0);
    ck_assert_int_eq(tl->sends, sends + 1);
    ck_assert_msg(strncmp(result, "OK", 2) == 0, "%s", result);
}
END_TEST

/* LOGIN through ImapCommand: sent, arguments redacted in the trace, and the session is
 * authenticated after its OK (SELECT works). AUTHENTICATE is allowed too: sent, its
 * initial response redacted. */
START_TEST(secret_and_state)
{
    char cmd[256], result[256];
    IMAPMAILBOX mb;
    snprintf(cmd, sizeof cmd, "LOGIN %s %s", dv.user, dv.pass);
    ck_assert_int_eq(ImapCommand(h, cmd, result, sizeof result), 0);
    ck_assert_msg(strstr(tl->text, dv.pass) == NULL, "%s", tl->text);
    ck_assert_ptr_nonnull(strstr(tl->text, "LOGIN <redacted>"));
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), 0);
    /* already authenticated: Dovecot refuses it, but it went out, redacted */
    ck_assert_int_eq(ImapCommand(h, "AUTHENTICATE PLAIN AHVzZXIAc2VjcmV0", result,
                                 sizeof result), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_COMMAND_FAILED);
    ck_assert_ptr_nonnull(strstr(tl->text, "AUTHENTICATE PLAIN <redacted>"));
    ck_assert_ptr_null(strstr(tl->text, "AHVzZXIAc2VjcmV0"));
    /* CLOSE leaves the selected state: FETCH then has no mailbox */
    ck_assert_int_eq(ImapCommand(h, "CLOSE", result, sizeof result), 0);
    ck_assert_int_eq(ImapCommand(h, "FETCH 1 FLAGS", result, sizeof result), IMAP_ERROR);
}
END_TEST

/* The secret commands' words, whatever whitespace separates them (the table's lookup and
 * the redaction split words the same way), through ImapCommand and ImapCommandEx: the
 * trace shows the verb, and for AUTHENTICATE the mechanism, and nothing else. */
static void secret_form(int i, char *out, size_t size)
{
    size_t ul = strlen(dv.user), pl = strlen(dv.pass);
    switch (i) {
    case 0: snprintf(out, size, "LOGIN\t%s\t%s", dv.user, dv.pass); break;
    case 1: snprintf(out, size, "LOGIN %s\t%s", dv.user, dv.pass); break;
    case 2: snprintf(out, size, "LOGIN \t %s \t %s", dv.user, dv.pass); break;
    case 3: snprintf(out, size, "\tlogin %s %s", dv.user, dv.pass); break;
    case 4: snprintf(out, size, "LOGIN {%zu}\r\n%s {%zu}\r\n%s", ul, dv.user, pl, dv.pass); break;
    case 5: snprintf(out, size, "LOGIN\t{%zu}\r\n%s", ul, dv.user); break;
    case 6: snprintf(out, size, "AUTHENTICATE\tPLAIN\tAHVzZXIAc2VjcmV0"); break;
    case 7: snprintf(out, size, "AUTHENTICATE PLAIN\tAHVzZXIAc2VjcmV0"); break;
    case 8: snprintf(out, size, "authenticate\t \tPLAIN \t AHVzZXIAc2VjcmV0"); break;
    default: snprintf(out, size, "AUTHENTICATE PLAIN {16}\r\nAHVzZXIAc2VjcmV0"); break;
    }
}
#define SECRET_FORMS 10

START_TEST(redaction_any_whitespace)
{
    char cmd[256], result[256];
    const char *want = _i / 2 >= 6 ? "AUTHENTICATE PLAIN <redacted>\n" : "LOGIN <redacted>\n";
    const char *verb = _i / 2 >= 6 ? "AUTHENTICATE" : "LOGIN";
    const char *line;
    int lines = 0;

    secret_form(_i / 2, cmd, sizeof cmd);
    if (_i % 2)
        ImapCommandEx(h, cmd, NULL, NULL, result, sizeof result);
    else
        ImapCommand(h, cmd, result, sizeof result);
    ck_assert_msg(strstr(tl->text, dv.pass) == NULL, "traced: %s", tl->text);
    ck_assert_msg(strstr(tl->text, "AHVzZXIAc2VjcmV0") == NULL, "traced: %s", tl->text);
    /* the command's line is "<tag> " and the one form; a refusal has no line at all */
    for (line = tl->text; *line; line = strchr(line, '\n') + 1) {
        const char *sp = strchr(line, ' ');
        if (*line != '>' || strcasestr(line, verb) == NULL || sp == NULL)
            continue;
        ck_assert_msg(strncasecmp(sp + 1, want, strlen(want)) == 0, "%s", tl->text);
        lines++;
    }
    ck_assert_msg(lines == 1 || (lines == 0 && _i / 2 == 5), "%d lines: %s", lines, tl->text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("command_table");
    TCase *tc = tcase_create("command_table");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, refused_forms, 0, 8);
    tcase_add_test(tc, secret_and_state);
    tcase_add_loop_test(tc, redaction_any_whitespace, 0, 2 * SECRET_FORMS);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
