/* test_script_connect.c: the connect machine (connect.c) through every state against a
 * scripted in-memory server: each greeting, CAPABILITY, ID, STARTTLS checkpoint, close and stall. */
#define _GNU_SOURCE
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "script_harness.h"

#define SCRIPT(name, ...) static const char *const name[] = { __VA_ARGS__, NULL }

#define SE IMAP_OPTION_SECURE_EXPLICIT
#define ID IMAP_OPTION_IDENTIFY

/* ---- scripts ---- */

SCRIPT(greet_capa, "S * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready");
SCRIPT(greet_ask, "S * OK ready", "C $ CAPABILITY", "S * CAPABILITY IMAP4rev1 LITERAL+",
       "S $ OK done");
SCRIPT(chain_slow, "CONNECT 5", "S * OK ready", "C $ CAPABILITY",
       "S * CAPABILITY IMAP4rev1", "S $ OK done");
SCRIPT(greet_split, "B * OK [CAPA", "AGAIN 4", "B BILITY IMAP4rev1 X] re", "AGAIN 1",
       "B ady\r", "B \n");
SCRIPT(capa_in_ok, "S * OK ready", "C $ CAPABILITY", "S $ OK [CAPABILITY IMAP4rev1 X] done");
SCRIPT(capa_empty, "S * OK ready", "C $ CAPABILITY", "S $ OK nothing");
SCRIPT(capa_interleaved, "S * OK ready", "C $ CAPABILITY", "S * 3 EXISTS",
       "S * CAPABILITY IMAP4rev1 Y", "S * OK [ALERT] note", "S $ OK done");
SCRIPT(preauth, "S * PREAUTH [CAPABILITY IMAP4rev1] welcome");
SCRIPT(preauth_ask, "S * PREAUTH welcome", "C $ CAPABILITY", "S * CAPABILITY IMAP4rev1",
       "S $ OK done");
SCRIPT(bye, "S * BYE too many connections");
SCRIPT(garbage, "S HTTP/1.1 400 Bad Request");
SCRIPT(tagged_greeting, "S A0001 OK hello");
SCRIPT(continuation_greeting, "S + hello");
SCRIPT(no_greeting, "S * NO not now");
SCRIPT(literal_greeting, "B * OK {3}\r\nabc\r\n");
SCRIPT(empty_greeting, "S ");
SCRIPT(capa_literal, "S * OK ready", "C $ CAPABILITY", "B * CAPABILITY {9}\r\nIMAP4rev1\r\n",
       "S $ OK done");
SCRIPT(capa_no, "S * OK ready", "C $ CAPABILITY", "S $ NO not telling");
SCRIPT(capa_bad, "S * OK ready", "C $ CAPABILITY", "S $ BAD what");
SCRIPT(capa_wrong_tag, "S * OK ready", "C $ CAPABILITY", "S * CAPABILITY IMAP4rev1",
       "S Z9999 OK done");
SCRIPT(capa_continuation, "S * OK ready", "C $ CAPABILITY", "S + more please");
SCRIPT(capa_bye, "S * OK ready", "C $ CAPABILITY", "S * BYE shutting down", "EOF");
SCRIPT(capa_reset, "S * OK ready", "C $ CAPABILITY", "RESET");
SCRIPT(greet_eof, "EOF");
SCRIPT(greet_reset, "RESET");
SCRIPT(greet_fail, "B * OK re", "FAIL 30");
SCRIPT(capa_fail, "S * OK ready", "FAIL 29");
SCRIPT(refused, "REFUSE");

SCRIPT(id_sent, "S * OK [CAPABILITY IMAP4rev1 ID] ready",
       "C $ ID (\"name\" \"imapwire\" \"version\" \"*", "S * ID (\"name\" \"scripted\")",
       "S $ OK id done");
SCRIPT(id_no, "S * OK [CAPABILITY IMAP4rev1 ID] ready", "C $ ID (*", "S $ NO not you");
SCRIPT(id_bad, "S * OK [CAPABILITY IMAP4rev1 ID] ready", "C $ ID (*", "S $ BAD huh");
SCRIPT(id_after_ask, "S * OK ready", "C $ CAPABILITY", "S * CAPABILITY IMAP4rev1 ID",
       "S $ OK done", "C $ ID (*", "S * ID NIL", "S $ OK id done");
SCRIPT(id_not_offered, "S * OK [CAPABILITY IMAP4rev1] ready");
SCRIPT(id_offered, "S * OK [CAPABILITY IMAP4rev1 ID] ready");
SCRIPT(id_eof, "S * OK [CAPABILITY IMAP4rev1 ID] ready", "C $ ID (*", "EOF");

/* STARTTLS, up to where the handshake starts: nothing but CAPABILITY and STARTTLS
 * leaves in clear (ID is offered and asked for in each). */
SCRIPT(tls_bye, "S * BYE [CAPABILITY IMAP4rev1 STARTTLS] closed");
SCRIPT(tls_missing, "S * OK [CAPABILITY IMAP4rev1 ID] ready");
SCRIPT(tls_missing_asked, "S * OK ready", "C $ CAPABILITY", "S * CAPABILITY IMAP4rev1 ID",
       "S $ OK done");
SCRIPT(tls_refused, "S * OK [CAPABILITY IMAP4rev1 STARTTLS ID] ready", "C $ STARTTLS",
       "S $ NO not today");
SCRIPT(tls_refused_bad, "S * OK [CAPABILITY IMAP4rev1 STARTTLS ID] ready", "C $ STARTTLS",
       "S $ BAD unknown command");
SCRIPT(tls_preauth, "S * PREAUTH [CAPABILITY IMAP4rev1 STARTTLS ID] hello");
SCRIPT(tls_preauth_asked, "S * PREAUTH hello", "C $ CAPABILITY",
       "S * CAPABILITY IMAP4rev1 STARTTLS", "S $ OK done");
SCRIPT(tls_inject, "S * OK [CAPABILITY IMAP4rev1 STARTTLS ID] ready", "C $ STARTTLS",
       "S $ OK begin TLS", "S * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected");
SCRIPT(tls_inject_byte, "S * OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "C $ STARTTLS",
       "S $ OK begin TLS", "B *");
SCRIPT(tls_continuation, "S * OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "C $ STARTTLS",
       "S + go on");
SCRIPT(tls_hello_eof, "S * OK [CAPABILITY IMAP4rev1 STARTTLS ID] ready", "C $ STARTTLS",
       "S $ OK begin TLS", "TLS", "EOF");
SCRIPT(tls_hello_reset, "S * OK ready", "C $ CAPABILITY", "S * CAPABILITY IMAP4rev1 STARTTLS",
       "S $ OK done", "C $ STARTTLS", "S $ OK begin TLS", "TLS", "RESET");
SCRIPT(tls_hello_clear, "S * OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "C $ STARTTLS",
       "S $ OK begin TLS", "TLS", "S * OK this is not TLS");
SCRIPT(implicit_eof, "TLS", "EOF");
SCRIPT(implicit_clear, "TLS", "S * OK [CAPABILITY IMAP4rev1] plain text on a TLS port");

/* A greeting line past the reader's 1 MiB bound, filled in by the test. */
static const char *big_greeting[] = { NULL, NULL };

typedef struct ccase {
    const char        *name;
    DWORD              options;
    const char *const *steps;
    DWORD              expect;
    const char        *capa;   /* on success: the capability list after connect */
    int                preauth;
    int                cuts;   /* every early close gives CONNECTION_CLOSED */
    int                bulk;   /* a megabyte: not byte by byte */
} ccase;

static const ccase cases[] = {
    { "greet_capa", 0, greet_capa, 0, "IMAP4rev1 AUTH=PLAIN", 0, 1, 0 },
    { "greet_ask", 0, greet_ask, 0, "IMAP4rev1 LITERAL+", 0, 1, 0 },
    { "chain_slow", 0, chain_slow, 0, "IMAP4rev1", 0, 1, 0 },
    { "greet_split", 0, greet_split, 0, "IMAP4rev1 X", 0, 1, 0 },
    { "capa_in_ok", 0, capa_in_ok, 0, "IMAP4rev1 X", 0, 1, 0 },
    { "capa_empty", 0, capa_empty, 0, "", 0, 1, 0 },
    { "capa_interleaved", 0, capa_interleaved, 0, "IMAP4rev1 Y", 0, 1, 0 },
    { "preauth", 0, preauth, 0, "IMAP4rev1", 1, 1, 0 },
    { "preauth_ask", 0, preauth_ask, 0, "IMAP4rev1", 1, 1, 0 },
    { "bye", 0, bye, ST_ERROR_SERVER_REJECTED, NULL, 0, 1, 0 },
    { "garbage", 0, garbage, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "tagged_greeting", 0, tagged_greeting, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "continuation_greeting", 0, continuation_greeting, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "no_greeting", 0, no_greeting, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "literal_greeting", 0, literal_greeting, ST_ERROR_INVALID_RESPONSE, NULL, 0, 0, 0 },
    /* its first byte (CR) cannot start a response: refused before the close is seen */
    { "empty_greeting", 0, empty_greeting, ST_ERROR_INVALID_RESPONSE, NULL, 0, 0, 0 },
    { "capa_literal", 0, capa_literal, ST_ERROR_INVALID_RESPONSE, NULL, 0, 0, 0 },
    { "capa_no", 0, capa_no, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "capa_bad", 0, capa_bad, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "capa_wrong_tag", 0, capa_wrong_tag, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "capa_continuation", 0, capa_continuation, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "capa_bye", 0, capa_bye, ST_ERROR_CONNECTION_CLOSED, NULL, 0, 1, 0 },
    { "capa_reset", 0, capa_reset, ST_ERROR_CONNECTION_CLOSED, NULL, 0, 1, 0 },
    { "greet_eof", 0, greet_eof, ST_ERROR_CONNECTION_CLOSED, NULL, 0, 1, 0 },
    { "greet_reset", 0, greet_reset, ST_ERROR_CONNECTION_CLOSED, NULL, 0, 1, 0 },
    /* a layer's own error passes up unchanged, whether it comes on a read or a write */
    { "greet_fail", 0, greet_fail, ST_ERROR_NETWORK_ERROR, NULL, 0, 0, 0 },
    { "capa_fail", 0, capa_fail, ST_ERROR_NETWORK_UNREACHABLE, NULL, 0, 0, 0 },
    { "refused", 0, refused, ST_ERROR_CONNECTION_REFUSED, NULL, 0, 0, 0 },
    { "id_sent", ID, id_sent, 0, "IMAP4rev1 ID", 0, 1, 0 },
    { "id_no", ID, id_no, 0, "IMAP4rev1 ID", 0, 1, 0 },
    { "id_bad", ID, id_bad, 0, "IMAP4rev1 ID", 0, 1, 0 },
    { "id_after_ask", ID, id_after_ask, 0, "IMAP4rev1 ID", 0, 1, 0 },
    { "id_not_offered", ID, id_not_offered, 0, "IMAP4rev1", 0, 1, 0 },
    { "id_not_asked", 0, id_offered, 0, "IMAP4rev1 ID", 0, 1, 0 },
    { "id_eof", ID, id_eof, ST_ERROR_CONNECTION_CLOSED, NULL, 0, 1, 0 },
    { "tls_bye", SE | ID, tls_bye, ST_ERROR_SERVER_REJECTED, NULL, 0, 1, 0 },
    { "tls_missing", SE | ID, tls_missing, ST_ERROR_SECURE_NOT_SUPPORTED, NULL, 0, 1, 0 },
    { "tls_missing_asked", SE | ID, tls_missing_asked, ST_ERROR_SECURE_NOT_SUPPORTED, NULL, 0, 1, 0 },
    { "tls_refused", SE | ID, tls_refused, ST_ERROR_SECURE_NOT_SUPPORTED, NULL, 0, 1, 0 },
    { "tls_refused_bad", SE | ID, tls_refused_bad, ST_ERROR_SECURE_NOT_SUPPORTED, NULL, 0, 1, 0 },
    { "tls_preauth", SE | ID, tls_preauth, ST_ERROR_SECURE_NOT_SUPPORTED, NULL, 0, 1, 0 },
    { "tls_preauth_asked", SE | ID, tls_preauth_asked, ST_ERROR_SECURE_NOT_SUPPORTED, NULL, 0, 1, 0 },
    { "tls_inject", SE | ID, tls_inject, ST_ERROR_INVALID_RESPONSE, NULL, 0, 0, 0 },
    { "tls_inject_byte", SE, tls_inject_byte, ST_ERROR_INVALID_RESPONSE, NULL, 0, 0, 0 },
    { "tls_continuation", SE, tls_continuation, ST_ERROR_INVALID_RESPONSE, NULL, 0, 1, 0 },
    { "tls_hello_eof", SE | ID, tls_hello_eof, ST_ERROR_TLS_HANDSHAKE, NULL, 0, 1, 0 },
    { "tls_hello_reset", SE, tls_hello_reset, ST_ERROR_TLS_HANDSHAKE, NULL, 0, 1, 0 },
    { "tls_hello_clear", SE, tls_hello_clear, ST_ERROR_TLS_HANDSHAKE, NULL, 0, 0, 0 },
    { "implicit_eof", IMAP_OPTION_SECURE_IMPLICIT, implicit_eof, ST_ERROR_TLS_HANDSHAKE, NULL, 0, 1, 0 },
    { "implicit_clear", IMAP_OPTION_SECURE_IMPLICIT, implicit_clear, ST_ERROR_TLS_HANDSHAKE, NULL, 0, 0, 0 },
    { "oversized_greeting", 0, big_greeting, ST_ERROR_RESPONSE_TOO_LARGE, NULL, 0, 0, 1 },
};
#define NCASES (sizeof cases / sizeof cases[0])

static char *big;

static void setup(void)
{
    size_t n = (1u << 20) + 16;
    sh_setup();
    big = malloc(n + 3);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "B * OK ", 7);
    memset(big + 7, 'x', n - 7);
    memcpy(big + n, "\r\n", 3);
    big_greeting[0] = big;
}

static void teardown(void)
{
    free(big);
    sh_teardown();
}

/* What one run of a case left behind, to compare across variants and drivers. */
typedef struct outcome {
    DWORD err;
    char  capa[256];
    char  wire[4096];
    int   tls_seen;
    size_t server_bytes;
} outcome;

/* One run; on success checks the session (capabilities, PREAUTH) and disconnects. */
static void run_case(const ccase *k, st_run *run, int driver, outcome *o, const char *label)
{
    HCLIENT h;

    memset(o, 0, sizeof *o);
    o->err = sh_connect(run, k->options, 5, driver, &h);
    o->server_bytes = run->server_bytes;
    if (o->err == 0) {
        INT n = ImapGetCapabilities(h, o->capa, sizeof o->capa);
        ck_assert_msg(n >= 0, "%s: ImapGetCapabilities %u", label, ImapGetLastError());
        if (k->preauth) {
            ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), IMAP_ERROR);
            ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_ALREADY_AUTHENTICATED);
        }
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    snprintf(o->wire, sizeof o->wire, "%.*s", (int)run->wire_len, run->wire);
    o->tls_seen = run->tls_seen;
}

static void check_case(const ccase *k)
{
    outcome first, o;
    size_t v;
    int d;

    for (d = SH_BLOCKING; d <= SH_OWN_LOOP; d++) {
        for (v = 0; v < sh_nvariants; v++) {
            st_run run;
            char label[128];
            if (k->bulk && sh_variants[v].chunk != 0)
                continue;
            memset(&run, 0, sizeof run);
            run.steps = k->steps;
            run.chunk = sh_variants[v].chunk;
            run.storm = sh_variants[v].storm;
            snprintf(label, sizeof label, "%s/%s/%s", k->name, sh_variants[v].name,
                     d == SH_BLOCKING ? "blocking" : "own-loop");
            run_case(k, &run, d, &o, label);
            ck_assert_msg(o.err == k->expect, "%s: error %u, expected %u; trace:\n%s", label,
                          o.err, k->expect, sh_trace_text());
            sh_check_server(&run, 1, label);
            if (o.err == 0) {
                ck_assert_msg(strcmp(o.capa, k->capa) == 0, "%s: capabilities \"%s\"", label,
                              o.capa);
                ck_assert_msg(run.logout_seen, "%s: no LOGOUT at disconnect", label);
            }
            if (d == SH_BLOCKING && v == 0) {
                first = o;
                continue;
            }
            /* the same dialogue whatever the I/O pattern and driver */
            ck_assert_msg(strcmp(o.wire, first.wire) == 0, "%s: client wrote \"%s\", not \"%s\"",
                          label, o.wire, first.wire);
            ck_assert_int_eq(o.tls_seen, first.tls_seen);
        }
    }
}

/* One process for all cases: a fork and an initialisation each would cost more than
 * the cases (ASan). The label of a failure names the case. */
START_TEST(every_state)
{
    size_t i;
    for (i = 0; i < NCASES; i++)
        check_case(&cases[i]);
    printf("every_state: %zu cases, %u connects\n", NCASES, sh_connects());
}
END_TEST

/* The client's own words in each case: what must and must not leave in clear. */
START_TEST(what_the_client_says)
{
    static const struct { const char *const *steps; DWORD options; const char *wire; } w[] = {
        { greet_capa, 0, "" },
        { preauth, 0, "" },
        { id_not_offered, ID, "" },
        { id_offered, 0, "" },
        { tls_missing, SE | ID, "" },
        { tls_preauth, SE | ID, "" },
        { tls_preauth_asked, SE | ID, "A0001 CAPABILITY\r\n" },
        { tls_refused, SE | ID, "A0001 STARTTLS\r\n" },
        { tls_inject, SE | ID, "A0001 STARTTLS\r\n" },
        { tls_hello_eof, SE | ID, "A0001 STARTTLS\r\n" },
        { id_sent, ID, "A0001 ID (\"name\" \"imapwire\" \"version\" \"" IMAPWIRE_VERSION_STRING
                       "\")\r\n" },
    };
    size_t i;
    for (i = 0; i < sizeof w / sizeof w[0]; i++) {
        st_run run;
        HCLIENT h;
        DWORD err;
        memset(&run, 0, sizeof run);
        run.steps = w[i].steps;
        err = sh_connect(&run, w[i].options, 5, SH_BLOCKING, &h);
        if (err == 0)
            ImapDisconnect(h);
        ck_assert_msg(strncmp(run.wire, w[i].wire, strlen(w[i].wire)) == 0 &&
                      (err != 0 || run.wire_len == strlen(w[i].wire) + 14),
                      "case %zu: client wrote \"%.*s\"", i, (int)run.wire_len, run.wire);
        if (err != 0)
            ck_assert_msg(run.wire_len == strlen(w[i].wire), "case %zu: client wrote \"%.*s\"",
                          i, (int)run.wire_len, run.wire);
    }
}
END_TEST

/* Checkpoint 3: bytes after STARTTLS's OK are never parsed (not even traced). */
START_TEST(injection_never_parsed)
{
    size_t v;
    for (v = 0; v < sh_nvariants; v++) {
        st_run run;
        HCLIENT h;
        memset(&run, 0, sizeof run);
        run.steps = tls_inject;
        run.chunk = sh_variants[v].chunk;
        run.storm = sh_variants[v].storm;
        sh_setup();
        ck_assert_uint_eq(sh_connect(&run, SE, 5, SH_BLOCKING, &h), ST_ERROR_INVALID_RESPONSE);
        ck_assert_msg(strstr(sh_trace_text(), "injected") == NULL, "%s: %s",
                      sh_variants[v].name, sh_trace_text());
        ck_assert_msg(strstr(sh_trace_text(), "I: starttls: bytes after the OK") != NULL,
                      "%s: %s", sh_variants[v].name, sh_trace_text());
        sh_teardown();
    }
}
END_TEST

/* For each point k of the server's bytes, the server closes (or resets) there: every cut
 * before the end is ST_ERROR_CONNECTION_CLOSED; a cut at the end changes nothing. */
static void early_close_case(const ccase *k)
{
    outcome full;
    st_run run;
    size_t cut, v;
    int how;

    if (!k->cuts)
        return;
    memset(&run, 0, sizeof run);
    run.steps = k->steps;
    run_case(k, &run, SH_BLOCKING, &full, k->name);
    ck_assert_uint_eq(full.err, k->expect);
    for (how = ST_CUT_EOF; how <= ST_CUT_RESET; how++) {
        for (v = 0; v < 2; v++) {
            for (cut = 0; cut <= full.server_bytes; cut++) {
                outcome o;
                char label[128];
                DWORD want = cut < full.server_bytes ? ST_ERROR_CONNECTION_CLOSED : k->expect;
                memset(&run, 0, sizeof run);
                run.steps = k->steps;
                run.chunk = sh_variants[v].chunk;
                run.cut = how;
                run.cut_after = cut;
                snprintf(label, sizeof label, "%s/%s/%s after %zu of %zu bytes", k->name,
                         sh_variants[v].name, how == ST_CUT_EOF ? "eof" : "reset", cut,
                         full.server_bytes);
                run_case(k, &run, SH_BLOCKING, &o, label);
                /* a reset at the very end reaches a success's LOGOUT, nothing else */
                ck_assert_msg(o.err == want, "%s: error %u, expected %u; trace:\n%s", label,
                              o.err, want, sh_trace_text());
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

SCRIPT(stall_greeting, "STALL");
SCRIPT(stall_mid_greeting, "B * OK hal", "STALL");
SCRIPT(stall_chain, "CONNECT never", "S * OK never seen");
SCRIPT(stall_capa, "S * OK ready", "C $ CAPABILITY", "STALL");
SCRIPT(stall_capa_mid, "S * OK ready", "C $ CAPABILITY", "B * CAPABILITY IMAP4", "STALL");
SCRIPT(stall_id, "S * OK [CAPABILITY IMAP4rev1 ID] ready", "C $ ID (*", "STALL");
SCRIPT(stall_starttls, "S * OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "C $ STARTTLS",
       "STALL");
SCRIPT(stall_hello, "S * OK [CAPABILITY IMAP4rev1 STARTTLS] ready", "C $ STARTTLS",
       "S $ OK go", "TLS", "STALL");

/* Each phase has nTimeout, the whole connect twice that: 0.7 s of silence in three
 * phases fails at 2 s, not at 1 s; 0.6 s once is in time. */
SCRIPT(slow_phases, "WAIT 700", "S * OK ready", "C $ CAPABILITY", "WAIT 700",
       "S * CAPABILITY IMAP4rev1 ID", "S $ OK done", "C $ ID (*", "WAIT 700", "S $ OK id");
SCRIPT(slow_greeting, "WAIT 600", "S * OK [CAPABILITY IMAP4rev1] ready");

/* Every connect state that waits, silent server, nTimeout 1 s: all run at once through
 * the own-loop driver (so the suite pays the longest wait once), each must end with its
 * error in its time window. */
START_TEST(timeouts_every_state)
{
    static const struct {
        const char *const *steps;
        DWORD options, expect;
        long long min_ms, max_ms;
    } t[] = {
        { stall_greeting, 0, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_mid_greeting, 0, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_chain, 0, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_capa, 0, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_capa_mid, 0, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_id, ID, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_starttls, SE, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_hello, SE, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { stall_greeting, IMAP_OPTION_SECURE_IMPLICIT, ST_ERROR_OPERATION_TIMEOUT, 990, 1500 },
        { slow_phases, ID, ST_ERROR_OPERATION_TIMEOUT, 1990, 2500 },
        { slow_greeting, 0, 0, 590, 990 },
    };
    enum { N = sizeof t / sizeof t[0] };
    st_run run[N];
    HCLIENT h[N];
    DWORD err[N];
    long long end_ms[N], start = sh_now_ms();
    int left = N, round;
    size_t i;

    for (i = 0; i < N; i++) {
        IMAPCONNECTINFO info;
        char spec[64];
        memset(&run[i], 0, sizeof run[i]);
        run[i].steps = t[i].steps;
        memset(&info, 0, sizeof info);
        info.dwSize = sizeof info;
        info.lpszHostName = "script.invalid";
        info.nTimeout = 1;
        info.dwOptions = t[i].options;
        info.lpszTransport = st_spec(&run[i], spec, sizeof spec);
        h[i] = ImapConnectStart(&info);
        ck_assert(h[i] != INVALID_CLIENT);
        err[i] = (DWORD)-1;
    }
    for (round = 0; left > 0 && round < 100000 && sh_now_ms() - start < 5000; round++) {
        INT wait = 1000;
        for (i = 0; i < N; i++) {
            IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
            INT w = 0;
            if (err[i] != (DWORD)-1)
                continue;
            ck_assert_int_eq(ImapConnectSockets(h[i], s, IMAP_CONNECT_SOCKETS_MAX, &w), 0);
            if (w < wait)
                wait = w;
        }
        if (wait > 0)
            poll(NULL, 0, wait);
        for (i = 0; i < N; i++) {
            INT rc;
            if (err[i] != (DWORD)-1)
                continue;
            rc = ImapConnectAction(h[i], IMAP_SOCKET_TIMEOUT, 0);
            if (rc == IMAP_CONNECT_PENDING)
                continue;
            err[i] = rc == 0 ? 0 : ImapGetLastError();
            end_ms[i] = sh_now_ms() - start;
            left--;
        }
    }
    for (i = 0; i < N; i++) {
        char label[32];
        snprintf(label, sizeof label, "slow case %zu", i);
        ck_assert_msg(err[i] == t[i].expect, "%s: error %u", label, err[i]);
        ck_assert_msg(end_ms[i] >= t[i].min_ms && end_ms[i] <= t[i].max_ms, "%s: after %lld ms",
                      label, end_ms[i]);
        ImapDisconnect(h[i]);
        sh_check_server(&run[i], 0, label);
    }
}
END_TEST

/* The blocking driver's own deadline, once. */
START_TEST(timeout_blocking)
{
    st_run run;
    HCLIENT h;
    long long t0 = sh_now_ms(), ms;
    memset(&run, 0, sizeof run);
    run.steps = stall_capa_mid;
    ck_assert_uint_eq(sh_connect(&run, 0, 1, SH_BLOCKING, &h), ST_ERROR_OPERATION_TIMEOUT);
    ms = sh_now_ms() - t0;
    ck_assert_msg(ms >= 990 && ms <= 2500, "after %lld ms", ms);
    sh_check_server(&run, 0, "timeout_blocking");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("script_connect");
    TCase *tc = tcase_create("connect");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_state);
    tcase_add_test(tc, what_the_client_says);
    tcase_add_test(tc, injection_never_parsed);
    tcase_add_test(tc, early_close_everywhere);
    tcase_add_test(tc, timeouts_every_state);
    tcase_add_test(tc, timeout_blocking);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
