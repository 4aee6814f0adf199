/* test_session.c: a session after login against a real Dovecot: ImapCommandEx's untagged
 * responses, literals through ImapCommand (APPEND), and UTF-8 mailbox names. ctest runs
 * it twice: against the usual Dovecot (LITERAL+) and, as test_session_sync, against one
 * that offers neither LITERAL+ nor LITERAL- (IW_EXPECT_SYNC_LITERALS=1). */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "iwtest.h"

static iwt_dovecot dv;
static HCLIENT h;
static char box[64];
static trace_log *tl;

static int sync_expected(void)
{
    const char *e = getenv("IW_EXPECT_SYNC_LITERALS");
    return e != NULL && strcmp(e, "1") == 0;
}

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
    if (ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass) != 0) {
        /* seen once under ctest -j2 (a login that never ended): say what and when */
        unsigned e = (unsigned)ImapGetLastError();
        char when[16];
        time_t now = time(NULL);
        strftime(when, sizeof when, "%H:%M:%S", gmtime(&now));
        ck_abort_msg("login: error %u, given up at %s UTC (see dovecot.log)", e, when);
    }
    snprintf(box, sizeof box, "iwtest-%d", (int)getpid());
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ImapCommand(h, "UNSELECT", NULL, 0);
    ImapCommand(h, cmd, NULL, 0);
    ImapDisconnect(h);
    ImapUninitialize();
    free(tl);
}

typedef struct got {
    int    n;
    char  *item[64];
    size_t len[64];
} got;

static void collect(HCLIENT hc, LPCTSTR data, DWORD n, LPVOID param)
{
    got *g = param;
    (void)hc;
    if (g->n < 64) {
        g->item[g->n] = malloc(n + 1);
        memcpy(g->item[g->n], data, n);
        g->item[g->n][n] = '\0';
        g->len[g->n] = n;
        g->n++;
    }
}

static void got_free(got *g)
{
    int i;
    for (i = 0; i < g->n; i++)
        free(g->item[i]);
    memset(g, 0, sizeof *g);
}

/* LIST, STATUS, SEARCH and a FETCH with two literals: every untagged response once, in
 * order, literals intact, and the tagged reply in the result. */
START_TEST(command_ex_untagged)
{
    got g;
    char result[256], *msg = iwt_read_file(dv.msg1);
    size_t msglen = strlen(msg);

    memset(&g, 0, sizeof g);
    ck_assert_int_eq(ImapCommandEx(h, "LIST \"\" \"*\"", collect, &g, result, sizeof result), 0);
    ck_assert_int_ge(g.n, 1);
    ck_assert_msg(strncmp(g.item[0], "* LIST ", 7) == 0, "%s", g.item[0]);
    ck_assert_msg(strstr(result, "OK") != NULL, "%s", result);
    got_free(&g);

    ck_assert_int_eq(ImapCommandEx(h, "STATUS INBOX (MESSAGES)", collect, &g, NULL, 0), 0);
    ck_assert_int_eq(g.n, 1);
    ck_assert_msg(strstr(g.item[0], "* STATUS INBOX (MESSAGES ") != NULL, "%s", g.item[0]);
    got_free(&g);

    ck_assert_int_eq(ImapCommand(h, "EXAMINE INBOX", NULL, 0), 0);
    ck_assert_int_eq(ImapCommandEx(h, "SEARCH ALL", collect, &g, NULL, 0), 0);
    ck_assert_int_eq(g.n, 1);
    ck_assert_str_eq(g.item[0], "* SEARCH 1 2");
    got_free(&g);

    ck_assert_int_eq(ImapCommandEx(h, "FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[])", collect, &g,
                                   NULL, 0), 0);
    ck_assert_int_eq(g.n, 1);
    ck_assert_msg(strncmp(g.item[0], "* 1 FETCH (", 11) == 0, "%s", g.item[0]);
    /* the whole message is in the response, byte for byte, after its literal head */
    ck_assert_msg(memmem(g.item[0], g.len[0], msg, msglen) != NULL, "message not intact");
    ck_assert_msg(g.item[0][g.len[0] - 1] == ')', "response cut: ...%s",
                  g.item[0] + (g.len[0] > 40 ? g.len[0] - 40 : 0));
    got_free(&g);
    free(msg);
}
END_TEST

/* APPEND of 1 MB through ImapCommand with a literal; SELECT shows it and a fetch returns
 * it byte for byte. The usual Dovecot offers LITERAL+ (the non-synchronising form is
 * sent); the other offers neither, and the library waits for its "+". */
START_TEST(append_literal)
{
    size_t n = 1u << 20, head_len, i;
    char head[128], *cmd, *got_msg = NULL;
    IMAPMAILBOX mb;
    DWORD len = 0;

    snprintf(head, sizeof head, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, head, NULL, 0), 0);
    head_len = (size_t)snprintf(head, sizeof head, "APPEND %s {%zu}\r\n", box, n);
    cmd = malloc(head_len + n + 1);
    ck_assert_ptr_nonnull(cmd);
    memcpy(cmd, head, head_len);
    memcpy(cmd + head_len, "Subject: big\r\n\r\n", 16);
    for (i = 16; i < n; i++)
        cmd[head_len + i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
    cmd[head_len + n] = '\0';
    if (sync_expected()) {
        ck_assert(!ImapHasCapability(h, "LITERAL+") && !ImapHasCapability(h, "LITERAL-"));
        ck_assert_ptr_null(strstr(tl->text, "\n<+ "));
    } else {
        ck_assert(ImapHasCapability(h, "LITERAL+"));
    }
    ck_assert_msg(ImapCommand(h, cmd, NULL, 0) == 0, "error %u", (unsigned)ImapGetLastError());
    /* the continuation came only where the library had to wait for it */
    if (sync_expected())
        ck_assert_msg(strstr(tl->text, "\n<+ ") != NULL, "%s", tl->text);
    else
        ck_assert_ptr_null(strstr(tl->text, "\n<+ "));
    ck_assert_int_eq(ImapSelectMailbox(h, box, &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 1);
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, &got_msg, &len, 0), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(got_msg, cmd + head_len, n) == 0);
    ImapFreeMemory(got_msg);
    free(cmd);
    /* a second command right after works: the literal left nothing behind */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
}
END_TEST

/* Names with spaces, quotes, backslashes, '&' and non-ASCII: created (in the modified
 * UTF-7 that the test spells out), selected by their UTF-8 names, listed back. */
START_TEST(utf8_mailbox_names)
{
    static const struct { const char *utf8, *mutf7; } names[] = {
        { "sp ace", "sp ace" },
        { "q\"uo\\te", "q\\\"uo\\\\te" },
        { "a&b", "a&-b" },
        { "caf\xc3\xa9", "caf&AOk-" },
        { "\xe6\x97\xa5\xe6\x9c\xac", "&ZeVnLA-" },
    };
    const char *utf8 = names[_i].utf8, *m7 = names[_i].mutf7;
    char cmd[256];
    IMAPMAILBOX mb;
    got g;

    memset(&g, 0, sizeof g);
    snprintf(box, sizeof box, "%s", m7);     /* teardown deletes it */
    snprintf(cmd, sizeof cmd, "CREATE \"%s\"", m7);
    ck_assert_msg(ImapCommand(h, cmd, NULL, 0) == 0, "%s: error %u", cmd,
                  (unsigned)ImapGetLastError());
    ck_assert_msg(ImapSelectMailbox(h, utf8, &mb) == 0, "%s: error %u", utf8,
                  (unsigned)ImapGetLastError());
    ck_assert_uint_eq(mb.dwMessages, 0);
    snprintf(cmd, sizeof cmd, "LIST \"\" \"%s\"", m7);
    ck_assert_int_eq(ImapCommandEx(h, cmd, collect, &g, NULL, 0), 0);
    ck_assert_int_eq(g.n, 1);
    got_free(&g);
    ck_assert_int_eq(ImapCommand(h, "UNSELECT", NULL, 0), 0);
    snprintf(cmd, sizeof cmd, "DELETE \"%s\"", m7);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
}
END_TEST

/* Capabilities change at login (RFC 3501 6.2.3): a server whose OK carries no new list
 * is asked for it; one whose OK carries it (Dovecot) is not asked again. */
static void count_capability(HCLIENT hc, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    (void)hc;
    if (dir == IMAP_TRACE_SEND && n > 0 && memmem(line, (size_t)n, " CAPABILITY", 11) != NULL)
        (*(int *)param)++;
}

START_TEST(capabilities_after_login)
{
    iwt_fixture f;
    HCLIENT hf;
    IMAPCONNECTINFO ci;
    int sent = 0, before;
    char *log, *login, *capa;

    /* the scripted server's LOGIN OK has no [CAPABILITY]: asked after the login */
    iwt_fixture_start(&f, "normal", 2);
    hf = ImapConnect("127.0.0.1", f.port, 5, IMAP_OPTION_NONE, NULL);
    ck_assert(hf != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(hf, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(ImapDisconnect(hf), 0);
    iwt_fixture_stop(&f);
    log = iwt_read_file(f.log);
    login = strstr(log, " LOGIN ");
    capa = login ? strstr(login, " CAPABILITY") : NULL;
    ck_assert_msg(capa != NULL, "no CAPABILITY after LOGIN:\n%s", log);
    free(log);

    /* Dovecot's OK carries the list: no second CAPABILITY */
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = dv.host;
    ci.nRemotePort = dv.port;
    ci.nTimeout = 10;
    ci.lpTraceProc = count_capability;
    ci.lpParam = &sent;
    hf = ImapConnectEx(&ci);
    ck_assert(hf != INVALID_CLIENT);
    before = sent;                               /* Dovecot's greeting carries its list */
    ck_assert_int_eq(ImapLogin(hf, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(sent, before);
    ck_assert(ImapHasCapability(hf, "IDLE"));    /* a post-login capability */
    ck_assert_int_eq(ImapDisconnect(hf), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("session");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, command_ex_untagged);
    tcase_add_test(tc, append_literal);
    tcase_add_loop_test(tc, utf8_mailbox_names, 0, 5);
    tcase_add_test(tc, capabilities_after_login);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
