/* test_select_parse.c: SELECT's untagged data into IMAPMAILBOX through the tokenizer, on
 * responses in exact-size buffers (ASan sees any look past the end). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "imap/client.h"
#include "imap/session.h"

static void feed(const char *text, size_t n, IMAPMAILBOX *mb)
{
    char *buf = malloc(n ? n : 1);
    const char *lf;
    iw_response r;
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, text, n);
    memset(&r, 0, sizeof r);
    r.kind = IW_RESP_UNTAGGED;
    r.data = buf;
    r.len = n;
    lf = memchr(buf, '\n', n);
    r.line_len = lf ? (size_t)(lf - buf) : n;
    if (lf && r.line_len > 0 && buf[r.line_len - 1] == '\r')
        r.line_len--;
    r.rest = buf + (n >= 2 ? 2 : n);
    r.rest_len = r.line_len >= 2 ? r.line_len - 2 : 0;
    ck_assert_int_eq(iw_select_parse(&r, mb), 0);
    free(buf);
}

static void feed_all(const char *const *lines, size_t count, IMAPMAILBOX *mb)
{
    size_t i;
    memset(mb, 0, sizeof *mb);
    for (i = 0; i < count; i++)
        feed(lines[i], strlen(lines[i]), mb);
}

START_TEST(dovecot)
{
    static const char *const lines[] = {
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n",
        "* 12 EXISTS\r\n", "* 2 RECENT\r\n",
        "* OK [UNSEEN 4] First unseen.\r\n",
        "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n",
        "* OK [UIDNEXT 13] Predicted next UID\r\n",
        "* OK [HIGHESTMODSEQ 5] Highest\r\n",
    };
    IMAPMAILBOX mb;
    feed_all(lines, sizeof lines / sizeof lines[0], &mb);
    ck_assert_uint_eq(mb.dwMessages, 12);
    ck_assert_uint_eq(mb.dwRecent, 2);
    ck_assert_uint_eq(mb.dwFirstUnseen, 4);
    ck_assert_uint_eq(mb.dwUidValidity, 1700000000u);
    ck_assert_uint_eq(mb.dwUidNext, 13);
    ck_assert_str_eq(mb.szFlags, "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded");
}
END_TEST

/* Courier leaves out UIDNEXT and UNSEEN: both stay 0, the rest is read. */
START_TEST(omitted_codes)
{
    static const char *const lines[] = {
        "* FLAGS (\\Seen)\r\n", "* 3 EXISTS\r\n", "* 0 RECENT\r\n",
        "* OK [UIDVALIDITY 7] Ok\r\n",
    };
    IMAPMAILBOX mb;
    feed_all(lines, sizeof lines / sizeof lines[0], &mb);
    ck_assert_uint_eq(mb.dwMessages, 3);
    ck_assert_uint_eq(mb.dwUidValidity, 7);
    ck_assert_uint_eq(mb.dwUidNext, 0);
    ck_assert_uint_eq(mb.dwFirstUnseen, 0);
    ck_assert_str_eq(mb.szFlags, "\\Seen");
}
END_TEST

/* Numbers past 32 bits, a code without its number, a flag list cut short or too long:
 * nothing wrong is stored, nothing past the buffer is read. */
START_TEST(hostile)
{
    static const char *const lines[] = {
        "* 4294967296 EXISTS\r\n", "* OK [UIDNEXT]\r\n", "* OK [UIDNEXT x]\r\n",
        "* FLAGS (\\Seen", "* OK [UNSEEN", "* 5", "* 5 EXISTS", "* FLAGS", "*",
    };
    IMAPMAILBOX mb;
    char big[2048];
    size_t i;
    feed_all(lines, sizeof lines / sizeof lines[0], &mb);
    ck_assert_uint_eq(mb.dwMessages, 5);            /* the last, whole one */
    ck_assert_uint_eq(mb.dwUidNext, 0);
    ck_assert_uint_eq(mb.dwFirstUnseen, 0);
    ck_assert_str_eq(mb.szFlags, "");
    /* 200 flags of 9 bytes: only whole ones that fit the 512 bytes */
    strcpy(big, "* FLAGS (");
    for (i = 0; i < 200; i++)
        strcat(big, "\\Flag0000 ");
    strcat(big, ")\r\n");
    memset(&mb, 0, sizeof mb);
    feed(big, strlen(big), &mb);
    ck_assert_uint_lt(strlen(mb.szFlags), sizeof mb.szFlags);
    ck_assert_uint_eq(strlen(mb.szFlags) % 10, 9);
}
END_TEST

/* Every prefix of a code line in its own exact-size buffer. */
START_TEST(prefixes)
{
    const char *s = "* OK [UIDNEXT 4242] Predicted\r\n";
    size_t n = strlen(s), i;
    IMAPMAILBOX mb;
    for (i = 0; i <= n; i++) {
        memset(&mb, 0, sizeof mb);
        feed(s, i, &mb);
    }
    ck_assert_uint_eq(mb.dwUidNext, 4242);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("select_parse");
    TCase *tc = tcase_create("select_parse");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, dovecot);
    tcase_add_test(tc, omitted_codes);
    tcase_add_test(tc, hostile);
    tcase_add_test(tc, prefixes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
