/* test_script_command.c: the command engine against a scripted in-memory server: ImapCommand(Ex),
 * ImapLogin (LOGIN, PLAIN), ImapSelectMailbox and ImapGetMessage, their errors, closes and stalls. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "script_harness.h"

#define SCRIPT(name, ...) static const char *const name[] = { __VA_ARGS__, NULL }

#define G    "S * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready"
#define GPRE "S * PREAUTH [CAPABILITY IMAP4rev1] ready"
#define NOOP "C $ NOOP", "S $ OK noop done"

enum { CMD, CMD_EX, CMD_STREAM, LOGIN, SELECT, FETCH, FETCH_ALLOC, FETCH_PART2, FETCH_STREAM };

/* ---- ImapCommand and ImapCommandEx ---- */
SCRIPT(noop_ok, G, "C $ NOOP", "S $ OK NOOP completed", NOOP);
SCRIPT(noop_no, G, "C $ NOOP", "S $ NO not now", NOOP);
SCRIPT(noop_bad, G, "C $ NOOP", "S $ BAD what", NOOP);
SCRIPT(interleaved, G, "C $ SEARCH ALL", "S * SEARCH 1 2 3", "S * 4 EXISTS",
       "S * OK [ALERT] note", "S $ OK done", NOOP);
SCRIPT(untagged_literal, G, "C $ FETCH 1 BODY[]", "B * 1 FETCH (BODY[] {12}\r\nhello\r\nworld)\r\n",
       "S $ OK done", NOOP);
SCRIPT(literal_split, G, "C $ FETCH 1 BODY[]", "B * 1 FETCH (BODY[] {12}\r\nhel", "AGAIN 3",
       "B lo\r", "B \nwor", "AGAIN 1", "B ld)\r", "B \n", "S $ OK done", NOOP);
SCRIPT(bye_mid, G, "C $ NOOP", "S * BYE server shutting down", "EOF");
SCRIPT(reset_mid, G, "C $ NOOP", "S * 1 EXISTS", "RESET");
SCRIPT(close_mid_literal, G, "C $ FETCH 1 BODY[]", "B * 1 FETCH (BODY[] {12}\r\nhel", "EOF");
SCRIPT(wrong_tag, G, "C $ NOOP", "S Z0001 OK done");
SCRIPT(not_a_status, G, "C $ NOOP", "S $ MAYBE done");
SCRIPT(stray_continuation, G, "C $ NOOP", "S + go on");
SCRIPT(append_sync, G, "C $ APPEND INBOX {5}", "S + ready", "C hello", "S $ OK [APPENDUID 1 2] done",
       NOOP);
SCRIPT(append_plus, "S * OK [CAPABILITY IMAP4rev1 LITERAL+] ready", "C $ APPEND INBOX {5+}",
       "C hello", "S $ OK done", NOOP);
SCRIPT(append_refused, G, "C $ APPEND INBOX {5}", "S $ NO [TOOBIG] no", NOOP);
SCRIPT(refused_verb, G, NOOP);
SCRIPT(early_next, G, "C $ SEARCH ALL", "S $ OK done", "S * 5 EXISTS", NOOP);
SCRIPT(logout_cmd, G, "C $ LOGOUT", "S * BYE bye", "S $ OK bye");
SCRIPT(raw_authenticate, G, "C $ AUTHENTICATE PLAIN", "S + ", "C *", "S $ BAD cancelled", NOOP);
SCRIPT(raw_login, G, "C $ LOGIN user pass", "S $ OK in", "C $ CAPABILITY",
       "S * CAPABILITY IMAP4rev1 Q", "S $ OK done", NOOP);
SCRIPT(raw_login_disabled, "S * OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready", NOOP);
static const char *big_line[] = { G, "C $ NOOP", NULL, NULL };

/* ---- ImapLogin ---- */
SCRIPT(login_ok, G, "C $ LOGIN \"user\" \"secret\"", "S $ OK [CAPABILITY IMAP4rev1 X] in", NOOP);
SCRIPT(login_refresh, G, "C $ LOGIN \"user\" \"secret\"", "S $ OK in", "C $ CAPABILITY",
       "S * CAPABILITY IMAP4rev1 Z", "S $ OK done", NOOP);
SCRIPT(login_no, G, "C $ LOGIN \"user\" \"secret\"", "S $ NO [AUTHENTICATIONFAILED] bad", NOOP);
SCRIPT(login_bad, G, "C $ LOGIN \"user\" \"secret\"", "S $ BAD syntax", NOOP);
SCRIPT(login_literal, G, "C $ LOGIN \"user\" {9}", "S + go", "C p\xc3\xa4ssword",
       "S $ OK [CAPABILITY IMAP4rev1] in", NOOP);
SCRIPT(login_literal_refused, G, "C $ LOGIN \"user\" {9}", "S $ NO [CANNOT] not that way", NOOP);
SCRIPT(login_untagged_capa, G, "C $ LOGIN \"user\" \"secret\"", "S * CAPABILITY IMAP4rev1 W",
       "S $ OK in", NOOP);
SCRIPT(default_plain, "S * OK [CAPABILITY IMAP4rev1 AUTH=LOGIN AUTH=PLAIN SASL-IR] ready",
       "C $ AUTHENTICATE PLAIN AHVzZXIAc2VjcmV0", "S $ OK [CAPABILITY IMAP4rev1] in", NOOP);
SCRIPT(default_login, "S * OK [CAPABILITY IMAP4rev1] ready", "C $ LOGIN \"user\" \"secret\"",
       "S $ OK [CAPABILITY IMAP4rev1] in", NOOP);
SCRIPT(login_disabled, "S * OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] ready", NOOP);
SCRIPT(login_close, G, "C $ LOGIN \"user\" \"secret\"", "EOF");
SCRIPT(plain_ok, G, "C $ AUTHENTICATE PLAIN", "S + ", "C AHVzZXIAc2VjcmV0",
       "S $ OK [CAPABILITY IMAP4rev1] in", NOOP);
SCRIPT(plain_ir, "S * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready",
       "C $ AUTHENTICATE PLAIN AHVzZXIAc2VjcmV0", "S $ OK [CAPABILITY IMAP4rev1] in", NOOP);
SCRIPT(plain_no, G, "C $ AUTHENTICATE PLAIN", "S + ", "C AHVzZXIAc2VjcmV0",
       "S $ NO [AUTHENTICATIONFAILED] no", NOOP);
SCRIPT(plain_challenge, G, "C $ AUTHENTICATE PLAIN", "S + ", "C AHVzZXIAc2VjcmV0", "S + more?",
       "C *", "S $ BAD cancelled", NOOP);
SCRIPT(plain_not_offered, "S * OK [CAPABILITY IMAP4rev1] ready", NOOP);

/* ---- ImapSelectMailbox ---- */
SCRIPT(select_ok, GPRE, "C $ SELECT \"INBOX\"", "S * 172 EXISTS", "S * 1 RECENT",
       "S * OK [UNSEEN 12] first unseen", "S * OK [UIDVALIDITY 3857529045] uids",
       "S * OK [UIDNEXT 4392] next", "S * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
       "S * OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] ok", "S $ OK [READ-WRITE] done", NOOP);
SCRIPT(select_sparse, GPRE, "C $ SELECT \"INBOX\"", "S * 0 EXISTS", "S * FLAGS ()",
       "S * OK [UIDVALIDITY 1] u", "S $ OK done", NOOP);
SCRIPT(select_no, GPRE, "C $ SELECT \"INBOX\"", "S $ NO [NONEXISTENT] no such mailbox", NOOP);
SCRIPT(select_utf8, GPRE, "C $ SELECT \"Entw&APw-rfe\"", "S * 3 EXISTS", "S $ OK done", NOOP);
SCRIPT(select_unauth, G, NOOP);
SCRIPT(select_close, GPRE, "C $ SELECT \"INBOX\"", "S * 172 EXISTS", "EOF");

/* ---- ImapGetMessage ---- */
SCRIPT(fetch_ok, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {13}\r\nHello, world!)\r\n",
       "S $ OK done", NOOP);
SCRIPT(fetch_split, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {13}\r", "AGAIN 2",
       "B \nHel", "AGAIN 2", "B lo, wor", "B ld!", "B )\r\n", "S $ OK done", NOOP);
SCRIPT(fetch_quoted, GPRE, "C $ FETCH 1 BODY.PEEK[]", "S * 1 FETCH (BODY[] \"hi \\\"there\\\"\")",
       "S $ OK done", NOOP);
SCRIPT(fetch_nil, GPRE, "C $ FETCH 1 BODY.PEEK[]", "S * 1 FETCH (BODY[] NIL)", "S $ OK done",
       NOOP);
SCRIPT(fetch_no, GPRE, "C $ FETCH 1 BODY.PEEK[]", "S $ NO no such message", NOOP);
SCRIPT(fetch_none, GPRE, "C $ FETCH 1 BODY.PEEK[]", "S $ OK nothing", NOOP);
SCRIPT(fetch_interleaved, GPRE, "C $ FETCH 1 BODY.PEEK[]", "S * 2 FETCH (FLAGS (\\Seen))",
       "B * 1 FETCH (FLAGS (\\Seen) UID 7 BODY[] {5}\r\nhello)\r\n", "S * 3 EXPUNGE",
       "S $ OK done", NOOP);
SCRIPT(fetch_other_literal, GPRE, "C $ FETCH 1 BODY.PEEK[]",
       "B * 1 FETCH (BODY[HEADER] {4}\r\nab\r\n BODY[] {3}\r\nxyz)\r\n", "S $ OK done", NOOP);
SCRIPT(fetch_wrong_section, GPRE, "C $ FETCH 1 BODY.PEEK[]",
       "B * 1 FETCH (BODY[HEADER] {4}\r\nab\r\n)\r\n", "S $ OK done", NOOP);
SCRIPT(fetch_part, GPRE, "C $ FETCH 1 BODY.PEEK[2]",
       "B * 1 FETCH (BODY[2.MIME] {4}\r\nab\r\n BODY[2] {3}\r\nxyz)\r\n", "S $ OK done", NOOP);
SCRIPT(fetch_empty, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {0}\r\n)\r\n",
       "S $ OK done", NOOP);
SCRIPT(fetch_huge, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {300000000}\r\nab", "EOF");
SCRIPT(fetch_4g, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {4294967296}\r\nab", "EOF");
SCRIPT(fetch_twice, GPRE, "C $ FETCH 1 BODY.PEEK[]",
       "B * 1 FETCH (BODY[] {3}\r\none)\r\n* 1 FETCH (BODY[] {3}\r\ntwo)\r\n", "S $ OK done", NOOP);
SCRIPT(select_numbers, GPRE, "C $ SELECT \"INBOX\"", "S * 4294967296 EXISTS", "S * 7 RECENT",
       "S * OK [UIDVALIDITY 99999999999] too big", "S * OK [UIDNEXT -1] negative",
       "S * OK [UNSEEN x] not a number", "S $ OK done", NOOP);
SCRIPT(fetch_close_mid, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {13}\r\nHello",
       "EOF");
SCRIPT(fetch_reset_mid, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {13}\r\nHello",
       "RESET");
SCRIPT(fetch_fail_mid, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {13}\r\nHello",
       "FAIL 30");
SCRIPT(fetch_bye, GPRE, "C $ FETCH 1 BODY.PEEK[]", "S * BYE autologout", "EOF");
SCRIPT(fetch_unauth, G, NOOP);

typedef struct kcase {
    const char        *name;
    const char *const *steps;
    int                call;
    const char        *arg;     /* command, "user password", mailbox */
    unsigned           num;     /* auth type, message number; for FETCH: buffer size */
    DWORD              expect;
    const char        *out;     /* what the call returned (see run_call), or NULL */
    DWORD              after;   /* a NOOP after it: 0, or the connection is gone */
    int                cuts;    /* every early close gives CONNECTION_CLOSED */
    int                bulk;    /* a megabyte: not byte by byte */
} kcase;

#define CLOSED ST_ERROR_CONNECTION_CLOSED

static const kcase cases[] = {
    { "noop_ok", noop_ok, CMD, "NOOP", 0, 0, "OK NOOP completed", 0, 1, 0 },
    { "noop_no", noop_no, CMD, "NOOP", 0, ST_ERROR_COMMAND_FAILED, "NO not now", 0, 1, 0 },
    { "noop_bad", noop_bad, CMD, "NOOP", 0, ST_ERROR_COMMAND_FAILED, "BAD what", 0, 1, 0 },
    { "interleaved", interleaved, CMD_EX, "SEARCH ALL", 0, 0,
      "* SEARCH 1 2 3|* 4 EXISTS|* OK [ALERT] note|", 0, 1, 0 },
    { "untagged_literal", untagged_literal, CMD_EX, "FETCH 1 BODY[]", 0, 0,
      "* 1 FETCH (BODY[] {12}\r\nhello\r\nworld)|", 0, 1, 0 },
    { "literal_split", literal_split, CMD_EX, "FETCH 1 BODY[]", 0, 0,
      "* 1 FETCH (BODY[] {12}\r\nhello\r\nworld)|", 0, 1, 0 },
    { "stream", interleaved, CMD_STREAM, "SEARCH ALL", 0, 0,
      "* SEARCH 1 2 3|* 4 EXISTS|* OK [ALERT] note|", 0, 1, 0 },
    { "stream_literal", literal_split, CMD_STREAM, "FETCH 1 BODY[]", 0, 0,
      "* 1 FETCH (BODY[] {12}\r\nhello\r\nworld)|", 0, 1, 0 },
    { "stream_close_mid_literal", close_mid_literal, CMD_STREAM, "FETCH 1 BODY[]", 0, CLOSED,
      NULL, CLOSED, 1, 0 },
    { "bye_mid", bye_mid, CMD, "NOOP", 0, CLOSED, NULL, CLOSED, 1, 0 },
    { "reset_mid", reset_mid, CMD, "NOOP", 0, CLOSED, NULL, CLOSED, 1, 0 },
    { "close_mid_literal", close_mid_literal, CMD_EX, "FETCH 1 BODY[]", 0, CLOSED, NULL, CLOSED,
      1, 0 },
    { "wrong_tag", wrong_tag, CMD, "NOOP", 0, ST_ERROR_INVALID_RESPONSE, NULL, CLOSED, 1, 0 },
    { "not_a_status", not_a_status, CMD, "NOOP", 0, ST_ERROR_INVALID_RESPONSE, NULL, CLOSED, 1,
      0 },
    { "stray_continuation", stray_continuation, CMD, "NOOP", 0, ST_ERROR_INVALID_RESPONSE, NULL,
      CLOSED, 1, 0 },
    { "append_sync", append_sync, CMD, "APPEND INBOX {5}\r\nhello", 0, 0, "OK [APPENDUID 1 2] done",
      0, 1, 0 },
    { "append_plus", append_plus, CMD, "APPEND INBOX {5}\r\nhello", 0, 0, "OK done", 0, 1, 0 },
    { "append_refused", append_refused, CMD, "APPEND INBOX {5}\r\nhello", 0,
      ST_ERROR_COMMAND_FAILED, "NO [TOOBIG] no", 0, 1, 0 },
    { "refused_verb", refused_verb, CMD, "STARTTLS", 0, ST_ERROR_INVALID_PARAMETER, NULL, 0, 1,
      0 },
    /* the NOOP's data comes with the SEARCH's answer: no cut point belongs to one call */
    { "early_next", early_next, CMD_EX, "SEARCH ALL", 0, 0, "", 0, 0, 0 },
    { "logout_cmd", logout_cmd, CMD, "LOGOUT", 0, 0, "OK bye", CLOSED, 1, 0 },
    { "raw_authenticate", raw_authenticate, CMD, "AUTHENTICATE PLAIN", 0,
      ST_ERROR_COMMAND_FAILED, "BAD cancelled", 0, 1, 0 },
    { "raw_login", raw_login, CMD, "LOGIN user pass", 0, 0, "OK in", 0, 1, 0 },
    { "raw_login_disabled", raw_login_disabled, CMD, "LOGIN user pass", 0,
      ST_ERROR_LOGIN_FAILED, NULL, 0, 1, 0 },
    { "oversized_line", big_line, CMD, "NOOP", 0, ST_ERROR_RESPONSE_TOO_LARGE, NULL, CLOSED, 0,
      1 },
    { "login_ok", login_ok, LOGIN, "user secret", IMAP_AUTH_LOGIN, 0, "IMAP4rev1 X", 0, 1, 0 },
    { "login_refresh", login_refresh, LOGIN, "user secret", IMAP_AUTH_LOGIN, 0, "IMAP4rev1 Z", 0, 1, 0 },
    { "login_no", login_no, LOGIN, "user secret", IMAP_AUTH_LOGIN, ST_ERROR_LOGIN_FAILED, NULL, 0, 1, 0 },
    { "login_bad", login_bad, LOGIN, "user secret", IMAP_AUTH_LOGIN, ST_ERROR_LOGIN_FAILED, NULL, 0, 1,
      0 },
    { "login_literal", login_literal, LOGIN, "user p\xc3\xa4ssword", IMAP_AUTH_LOGIN, 0, "IMAP4rev1", 0, 1, 0 },
    { "login_literal_refused", login_literal_refused, LOGIN, "user p\xc3\xa4ssword",
      IMAP_AUTH_LOGIN, ST_ERROR_LOGIN_FAILED, NULL, 0, 1, 0 },
    { "login_untagged_capa", login_untagged_capa, LOGIN, "user secret", IMAP_AUTH_LOGIN, 0,
      "IMAP4rev1 W", 0, 1, 0 },
    { "default_plain", default_plain, LOGIN, "user secret", IMAP_AUTH_DEFAULT, 0, "IMAP4rev1", 0,
      1, 0 },
    { "default_login", default_login, LOGIN, "user secret", IMAP_AUTH_DEFAULT, 0, "IMAP4rev1", 0,
      1, 0 },
    { "login_disabled", login_disabled, LOGIN, "user secret", IMAP_AUTH_LOGIN, ST_ERROR_LOGIN_FAILED,
      NULL, 0, 1, 0 },
    { "login_close", login_close, LOGIN, "user secret", IMAP_AUTH_LOGIN, CLOSED, NULL, CLOSED, 1, 0 },
    { "plain_ok", plain_ok, LOGIN, "user secret", IMAP_AUTH_PLAIN, 0, "IMAP4rev1", 0, 1, 0 },
    { "plain_ir", plain_ir, LOGIN, "user secret", IMAP_AUTH_PLAIN, 0, "IMAP4rev1", 0, 1, 0 },
    { "plain_no", plain_no, LOGIN, "user secret", IMAP_AUTH_PLAIN, ST_ERROR_LOGIN_FAILED, NULL, 0, 1, 0 },
    { "plain_challenge", plain_challenge, LOGIN, "user secret", IMAP_AUTH_PLAIN, ST_ERROR_LOGIN_FAILED,
      NULL, 0, 1, 0 },
    { "plain_not_offered", plain_not_offered, LOGIN, "user secret", IMAP_AUTH_PLAIN,
      ST_ERROR_LOGIN_FAILED, NULL, 0, 1, 0 },
    { "select_ok", select_ok, SELECT, "INBOX", 0, 0,
      "m=172 r=1 u=12 v=3857529045 n=4392 f=\\Answered \\Flagged \\Deleted \\Seen \\Draft", 0, 1,
      0 },
    { "select_sparse", select_sparse, SELECT, "INBOX", 0, 0, "m=0 r=0 u=0 v=1 n=0 f=", 0, 1, 0 },
    { "select_numbers", select_numbers, SELECT, "INBOX", 0, 0, "m=0 r=7 u=0 v=0 n=0 f=", 0, 1,
      0 },
    { "select_no", select_no, SELECT, "INBOX", 0, ST_ERROR_COMMAND_FAILED,
      "m=0 r=0 u=0 v=0 n=0 f=", 0, 1, 0 },
    { "select_utf8", select_utf8, SELECT, "Entw\xc3\xbcrfe", 0, 0, "m=3 r=0 u=0 v=0 n=0 f=", 0, 1,
      0 },
    { "select_unauth", select_unauth, SELECT, "INBOX", 0, ST_ERROR_NOT_AUTHENTICATED, NULL, 0, 1,
      0 },
    { "select_close", select_close, SELECT, "INBOX", 0, CLOSED, NULL, CLOSED, 1, 0 },
    { "fetch_ok", fetch_ok, FETCH, NULL, 64, 0, "Hello, world!", 0, 1, 0 },
    { "fetch_exact", fetch_ok, FETCH, NULL, 13, 0, "Hello, world!", 0, 1, 0 },
    { "fetch_alloc", fetch_ok, FETCH_ALLOC, NULL, 0, 0, "Hello, world!", 0, 1, 0 },
    { "fetch_small", fetch_ok, FETCH, NULL, 12, ST_ERROR_BUFFER_TOO_SMALL, "len=13", 0, 1, 0 },
    { "fetch_split", fetch_split, FETCH, NULL, 64, 0, "Hello, world!", 0, 1, 0 },
    { "fetch_quoted", fetch_quoted, FETCH_ALLOC, NULL, 0, 0, "hi \"there\"", 0, 1, 0 },
    { "fetch_nil", fetch_nil, FETCH, NULL, 64, ST_ERROR_MESSAGE_NOT_FOUND, NULL, 0, 1, 0 },
    { "fetch_no", fetch_no, FETCH, NULL, 64, ST_ERROR_MESSAGE_NOT_FOUND, NULL, 0, 1, 0 },
    { "fetch_none", fetch_none, FETCH_ALLOC, NULL, 0, ST_ERROR_MESSAGE_NOT_FOUND, NULL, 0, 1, 0 },
    { "fetch_interleaved", fetch_interleaved, FETCH, NULL, 64, 0, "hello", 0, 1, 0 },
    { "fetch_other_literal", fetch_other_literal, FETCH_ALLOC, NULL, 0, 0, "xyz", 0, 1, 0 },
    { "fetch_wrong_section", fetch_wrong_section, FETCH, NULL, 64, ST_ERROR_MESSAGE_NOT_FOUND,
      NULL, 0, 1, 0 },
    { "fetch_part", fetch_part, FETCH_PART2, NULL, 0, 0, "xyz", 0, 1, 0 },
    { "fetch_stream", fetch_split, FETCH_STREAM, NULL, 0, 0, "Hello, world!", 0, 1, 0 },
    { "fetch_stream_quoted", fetch_quoted, FETCH_STREAM, NULL, 0, 0, "hi \"there\"", 0, 1, 0 },
    { "fetch_stream_other", fetch_other_literal, FETCH_STREAM, NULL, 0, 0, "xyz", 0, 1, 0 },
    { "fetch_stream_close_mid", fetch_close_mid, FETCH_STREAM, NULL, 0, CLOSED, NULL, CLOSED, 1,
      0 },
    { "fetch_empty", fetch_empty, FETCH, NULL, 64, 0, "", 0, 1, 0 },
    { "fetch_empty_alloc", fetch_empty, FETCH_ALLOC, NULL, 0, 0, "", 0, 1, 0 },
    { "fetch_huge", fetch_huge, FETCH_ALLOC, NULL, 0, ST_ERROR_RESPONSE_TOO_LARGE, NULL, CLOSED,
      0, 0 },
    { "fetch_huge_buffer", fetch_huge, FETCH, NULL, 64, ST_ERROR_RESPONSE_TOO_LARGE, NULL,
      CLOSED, 0, 0 },
    { "fetch_huge_stream", fetch_huge, FETCH_STREAM, NULL, 0, CLOSED, NULL, CLOSED, 0, 0 },
    { "fetch_4g_stream", fetch_4g, FETCH_STREAM, NULL, 0, ST_ERROR_RESPONSE_TOO_LARGE, NULL,
      CLOSED, 0, 0 },
    { "fetch_twice", fetch_twice, FETCH_ALLOC, NULL, 0, 0, "one", 0, 1, 0 },
    { "fetch_close_mid", fetch_close_mid, FETCH, NULL, 64, CLOSED, NULL, CLOSED, 1, 0 },
    { "fetch_close_mid_alloc", fetch_close_mid, FETCH_ALLOC, NULL, 0, CLOSED, NULL, CLOSED, 1, 0 },
    { "fetch_reset_mid", fetch_reset_mid, FETCH_ALLOC, NULL, 0, CLOSED, NULL, CLOSED, 1, 0 },
    { "fetch_fail_mid", fetch_fail_mid, FETCH, NULL, 64, ST_ERROR_NETWORK_ERROR, NULL, CLOSED, 0,
      0 },
    { "fetch_bye", fetch_bye, FETCH, NULL, 64, CLOSED, NULL, CLOSED, 1, 0 },
    { "fetch_unauth", fetch_unauth, FETCH, NULL, 64, ST_ERROR_NOT_AUTHENTICATED, NULL, 0, 1, 0 },
};
#define NCASES (sizeof cases / sizeof cases[0])

static char *big;

static void setup(void)
{
    size_t n = (1u << 20) + 16;
    sh_setup();
    big = malloc(n + 3);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "B * ", 4);
    memset(big + 4, 'x', n - 4);
    memcpy(big + n, "\r\n", 3);
    big_line[2] = big;
}

static void teardown(void)
{
    free(big);
    sh_teardown();
}

typedef struct outcome {
    DWORD  err, after;
    char   out[1024];
    char   wire[4096];
    size_t greeting_bytes, call_bytes, server_bytes;  /* server bytes queued by then */
} outcome;

static VOID on_untagged(HCLIENT h, LPCTSTR p, DWORD n, LPVOID arg)
{
    outcome *o = arg;
    size_t len = strlen(o->out);
    (void)h;
    snprintf(o->out + len, sizeof o->out - len, "%.*s|", (int)n, p);
}

/* Pieces concatenated are what ImapCommandEx gives: "|" after each response's end. */
static VOID on_piece(HCLIENT h, const IMAPRESPONSEPIECE *pc, LPVOID arg)
{
    outcome *o = arg;
    size_t len = strlen(o->out);
    (void)h;
    snprintf(o->out + len, sizeof o->out - len, "%.*s%s", (int)pc->dwLength, pc->lpData,
             (pc->dwFlags & IMAP_PIECE_END) ? "|" : "");
}

static VOID on_body(HCLIENT h, const VOID *p, DWORD n, LPVOID arg)
{
    outcome *o = arg;
    size_t len = strlen(o->out);
    (void)h;
    snprintf(o->out + len, sizeof o->out - len, "%.*s", (int)n, (const char *)p);
}

/* The call of the case, its result text in o->out. */
static DWORD run_call(const kcase *k, HCLIENT h, outcome *o)
{
    char buf[256];
    INT rc;

    switch (k->call) {
    case CMD:
    case CMD_EX:
        rc = k->call == CMD ? ImapCommand(h, k->arg, buf, sizeof buf)
                            : ImapCommandEx(h, k->arg, on_untagged, o, buf, sizeof buf);
        if (rc == 0 || ImapGetLastError() == ST_ERROR_COMMAND_FAILED) {
            if (k->call == CMD)
                snprintf(o->out, sizeof o->out, "%s", buf);
        }
        return rc == 0 ? 0 : ImapGetLastError();
    case CMD_STREAM:
        rc = ImapCommandStream(h, k->arg, on_piece, o, buf, sizeof buf);
        return rc == 0 ? 0 : ImapGetLastError();
    case FETCH_STREAM: {
        DWORD len = 0;
        rc = ImapGetMessageStream(h, 1, 0, on_body, o, &len);
        if (rc == 0)
            ck_assert_uint_eq(len, strlen(o->out));
        return rc == 0 ? 0 : ImapGetLastError();
    }
    case LOGIN:
    {
        char user[64];
        const char *sp = strchr(k->arg, ' ');
        snprintf(user, sizeof user, "%.*s", (int)(sp - k->arg), k->arg);
        rc = ImapLogin(h, k->num, user, sp + 1);
    }
        if (rc == 0)
            ImapGetCapabilities(h, o->out, sizeof o->out);
        return rc == 0 ? 0 : ImapGetLastError();
    case SELECT: {
        IMAPMAILBOX mb;
        memset(&mb, 0xa5, sizeof mb);
        rc = ImapSelectMailbox(h, k->arg, &mb);
        if (rc == 0 || ImapGetLastError() == ST_ERROR_COMMAND_FAILED)
            snprintf(o->out, sizeof o->out, "m=%u r=%u u=%u v=%u n=%u f=%s", mb.dwMessages,
                     mb.dwRecent, mb.dwFirstUnseen, mb.dwUidValidity, mb.dwUidNext, mb.szFlags);
        return rc == 0 ? 0 : ImapGetLastError();
    }
    case FETCH: {
        DWORD len = k->num;
        memset(buf, 0, sizeof buf);
        rc = ImapGetMessage(h, 1, 0, buf, &len, 0);
        if (rc == 0)
            snprintf(o->out, sizeof o->out, "%.*s", (int)len, buf);
        else if (ImapGetLastError() == ST_ERROR_BUFFER_TOO_SMALL)
            snprintf(o->out, sizeof o->out, "len=%u", len);
        return rc == 0 ? 0 : ImapGetLastError();
    }
    default: {
        DWORD len = 0;
        void *body = NULL;
        rc = ImapGetMessage(h, 1, k->call == FETCH_PART2 ? 2 : 0, &body, &len, 0);
        if (rc == 0) {
            snprintf(o->out, sizeof o->out, "%.*s", (int)len, (char *)body);
            ck_assert_int_eq(((char *)body)[len], '\0');
            ImapFreeMemory(body);
        } else {
            ck_assert_ptr_null(body);
        }
        return rc == 0 ? 0 : ImapGetLastError();
    }
    }
}

/* Connect, the call, a NOOP, disconnect. */
static void run_case(const kcase *k, st_run *run, outcome *o, const char *label)
{
    HCLIENT h;
    DWORD err;
    char buf[64];

    memset(o, 0, sizeof *o);
    err = sh_connect(run, 0, 5, SH_BLOCKING, &h);
    ck_assert_msg(err == 0, "%s: connect error %u: %s", label, err, run->error);
    o->greeting_bytes = run->server_bytes;
    o->err = run_call(k, h, o);
    o->call_bytes = run->server_bytes;
    o->after = ImapCommand(h, "NOOP", buf, sizeof buf) == 0 ? 0 : ImapGetLastError();
    o->server_bytes = run->server_bytes;
    ck_assert_int_eq(ImapDisconnect(h), 0);
    snprintf(o->wire, sizeof o->wire, "%.*s", (int)run->wire_len, run->wire);
}

static void check_case(const kcase *k)
{
    outcome first, o;
    size_t v;

    for (v = 0; v < sh_nvariants; v++) {
        st_run run;
        char label[128];
        if (k->bulk && sh_variants[v].chunk != 0)
            continue;
        memset(&run, 0, sizeof run);
        run.steps = k->steps;
        run.chunk = sh_variants[v].chunk;
        run.storm = sh_variants[v].storm;
        snprintf(label, sizeof label, "%s/%s", k->name, sh_variants[v].name);
        run_case(k, &run, &o, label);
        ck_assert_msg(o.err == k->expect, "%s: error %u, expected %u; trace:\n%s", label, o.err,
                      k->expect, sh_trace_text());
        if (k->out != NULL)
            ck_assert_msg(strcmp(o.out, k->out) == 0, "%s: out \"%s\"", label, o.out);
        ck_assert_msg(o.after == k->after, "%s: NOOP after: %u, expected %u", label, o.after,
                      k->after);
        sh_check_server(&run, k->after == 0, label);
        if (v == 0) {
            first = o;
            continue;
        }
        ck_assert_msg(strcmp(o.wire, first.wire) == 0, "%s: client wrote \"%s\", not \"%s\"",
                      label, o.wire, first.wire);
    }
}

/* One process for all cases (a fork and an initialisation each cost more than a case
 * under ASan); a failure's label names the case. */
START_TEST(every_call)
{
    size_t i;
    for (i = 0; i < NCASES; i++)
        check_case(&cases[i]);
    printf("every_call: %zu cases, %u connects\n", NCASES, sh_connects());
}
END_TEST

/* For each point k of the server's bytes after the greeting, the server closes (or
 * resets) there: the call fails with ST_ERROR_CONNECTION_CLOSED, and the handle with it. */
static void early_close_case(const kcase *k)
{
    outcome full;
    st_run run;
    size_t cut, v;
    int how;

    if (!k->cuts)
        return;
    memset(&run, 0, sizeof run);
    run.steps = k->steps;
    run_case(k, &run, &full, k->name);
    for (how = ST_CUT_EOF; how <= ST_CUT_RESET; how++) {
        for (v = 0; v < 2; v++) {
            for (cut = full.greeting_bytes; cut < full.server_bytes; cut++) {
                outcome o;
                char label[128];
                /* a cut past the call's own bytes ends the NOOP after it instead */
                memset(&run, 0, sizeof run);
                run.steps = k->steps;
                run.chunk = sh_variants[v].chunk;
                run.cut = how;
                run.cut_after = cut;
                snprintf(label, sizeof label, "%s/%s/%s after %zu of %zu bytes", k->name,
                         sh_variants[v].name, how == ST_CUT_EOF ? "eof" : "reset", cut,
                         full.server_bytes);
                run_case(k, &run, &o, label);
                if (cut < full.call_bytes)
                    ck_assert_msg(o.err == CLOSED, "%s: error %u; trace:\n%s", label, o.err,
                                  sh_trace_text());
                else
                    ck_assert_msg(o.err == k->expect && o.after == CLOSED, "%s: %u then %u",
                                  label, o.err, o.after);
                sh_check_server(&run, 0, label);
            }
        }
    }
}

START_TEST(early_close_everywhere)
{
    size_t i;
    for (i = 0; i < NCASES; i++)
        early_close_case(&cases[i]);
    printf("early_close_everywhere: %zu cases, %u connects\n", NCASES, sh_connects());
}
END_TEST

SCRIPT(stall_literal, GPRE, "C $ FETCH 1 BODY.PEEK[]", "B * 1 FETCH (BODY[] {13}\r\nHel", "STALL");
SCRIPT(drip, G, "C $ NOOP", "WAIT 700", "S * 1 EXISTS", "WAIT 700", "S * 2 EXISTS", "WAIT 700",
       "S $ OK done");

/* A silent server mid-literal: ST_ERROR_OPERATION_TIMEOUT after nTimeout (1 s). A server
 * that answers every 0.7 s: the deadline slides with each answer, under a ceiling of
 * twice nTimeout (2 s) for so few bytes. The handle is unusable afterwards. */
START_TEST(command_timeouts)
{
    static const struct {
        const char *const *steps;
        int fetch;
        long long min_ms, max_ms;
    } t[] = {
        { stall_literal, 1, 990, 1500 }, { drip, 0, 1990, 2500 },
    };
    size_t i;
    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        st_run run;
        HCLIENT h;
        long long t0, ms;
        DWORD len = 0, err;
        void *body = NULL;
        INT rc;
        memset(&run, 0, sizeof run);
        run.steps = t[i].steps;
        ck_assert_uint_eq(sh_connect(&run, 0, 1, SH_BLOCKING, &h), 0);
        t0 = sh_now_ms();
        rc = t[i].fetch ? ImapGetMessage(h, 1, 0, &body, &len, 0) : ImapCommand(h, "NOOP", NULL, 0);
        err = ImapGetLastError();
        ms = sh_now_ms() - t0;
        ck_assert_int_eq(rc, IMAP_ERROR);
        ck_assert_uint_eq(err, ST_ERROR_OPERATION_TIMEOUT);
        ck_assert_ptr_null(body);
        ck_assert_msg(ms >= t[i].min_ms && ms <= t[i].max_ms, "case %zu: after %lld ms", i, ms);
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
        ck_assert_uint_eq(ImapGetLastError(), CLOSED);
        ImapDisconnect(h);
        sh_check_server(&run, 0, "command_timeouts");
    }
}
END_TEST

SCRIPT(stall_logout, G, "C $ LOGOUT", "STALL");

/* ImapDisconnect waits for LOGOUT's answer at most min(nTimeout, 3 s), then closes. */
START_TEST(disconnect_stall)
{
    st_run run;
    HCLIENT h;
    long long t0, ms;
    memset(&run, 0, sizeof run);
    run.steps = stall_logout;
    ck_assert_uint_eq(sh_connect(&run, 0, 1, SH_BLOCKING, &h), 0);
    t0 = sh_now_ms();
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ms = sh_now_ms() - t0;
    ck_assert_msg(ms >= 990 && ms <= 2500, "after %lld ms", ms);
    sh_check_server(&run, 0, "disconnect_stall");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("script_command");
    TCase *tc = tcase_create("command");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_call);
    tcase_add_test(tc, early_close_everywhere);
    tcase_add_test(tc, command_timeouts);
    tcase_add_test(tc, disconnect_stall);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
