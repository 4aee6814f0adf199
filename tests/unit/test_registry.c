/* test_registry.c: transport registration (registry.c) and an in-memory bottom transport
 * with a scripted server that drives the real connect machine, login and disconnect. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "transport/chain.h"

/* ---- the scripted server behind the "memtest" transport ---- */

typedef struct script {
    const char *name;
    const char *greeting;
    const char *capa;          /* the answer to CAPABILITY */
    int         drip;          /* one byte per recv, a few per send, AGAIN in between */
    int         connect_rounds;/* connect() reports "not yet" this many times */
    int         eof;           /* end of stream once the script has nothing to say */
} script;

static const script scripts[] = {
    { "capa", "* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] memtest ready\r\n",
      "IMAP4rev1 ID AUTH=PLAIN", 0, 0, 0 },
    { "bye", "* BYE memtest is closed\r\n", "", 0, 0, 0 },
    { "plain", "* OK memtest ready\r\n", "IMAP4rev1 LITERAL+ AUTH=PLAIN", 0, 0, 0 },
    { "noid", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] memtest ready\r\n",
      "IMAP4rev1 AUTH=PLAIN", 0, 0, 0 },
    { "drip", "* OK [CAPABILITY IMAP4rev1 ID] memtest ready\r\n", "IMAP4rev1 ID", 1, 3, 0 },
    { "eof", "", "", 0, 0, 1 },
    { "silent", "", "", 0, 0, 0 },
};

/* Outside the layer's ctx, so a test can read it after the core freed the layer. */
static struct mem {
    const script *sc;
    char     out[4096];        /* server to client */
    size_t   out_len, out_off;
    char     in[4096];         /* every byte the client wrote */
    size_t   in_len, cmd_start, scan;
    size_t   lit_left;         /* literal bytes the client still owes */
    size_t   plus_end;         /* out offset just past our last "+" */
    int      early_literal;    /* literal bytes sent before the client read our "+" */
    int      overflow, created, destroyed, connects, recv_calls, send_calls;
    int      ctx_zeroed;
    char     type_name[32];    /* the layer's view of its type's name */
    char     host[64];
    unsigned port;
} mem;

static void serve(const char *s)
{
    size_t n = strlen(s);
    if (mem.out_len + n > sizeof mem.out) {
        mem.overflow = 1;
        return;
    }
    memcpy(mem.out + mem.out_len, s, n);
    mem.out_len += n;
}

/* {n} or {n+} at the end of a client line piece; written here, not borrowed from the
 * library, so the library is not checked against itself. */
static int client_literal(const char *p, size_t n, size_t *size, int *plus)
{
    size_t i = n, v = 0, digits = 0;
    if (n < 3 || p[n - 1] != '}')
        return 0;
    i = n - 1;
    *plus = p[i - 1] == '+';
    if (*plus)
        i--;
    while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9' && digits < 9) {
        i--;
        digits++;
    }
    if (digits == 0 || i == 0 || p[i - 1] != '{')
        return 0;
    for (; p[i] >= '0' && p[i] <= '9'; i++)
        v = v * 10 + (size_t)(p[i] - '0');
    *size = v;
    return 1;
}

static void answer(const char *cmd, size_t n)
{
    char tag[32], verb[32], reply[256];
    size_t t = 0, v = 0, i = 0;

    while (i < n && cmd[i] != ' ' && t + 1 < sizeof tag)
        tag[t++] = cmd[i++];
    tag[t] = '\0';
    for (i++; i < n && cmd[i] != ' ' && v + 1 < sizeof verb; i++)
        verb[v++] = cmd[i];
    verb[v] = '\0';
    if (strcmp(verb, "CAPABILITY") == 0)
        snprintf(reply, sizeof reply, "* CAPABILITY %s\r\n%s OK done\r\n", mem.sc->capa, tag);
    else if (strcmp(verb, "LOGIN") == 0)
        snprintf(reply, sizeof reply, "%s OK logged in\r\n", tag);
    else if (strcmp(verb, "ID") == 0)
        snprintf(reply, sizeof reply, "* ID (\"name\" \"memtest\")\r\n%s OK id done\r\n", tag);
    else if (strcmp(verb, "NOOP") == 0)
        snprintf(reply, sizeof reply, "%s OK noop done\r\n", tag);
    else if (strcmp(verb, "LOGOUT") == 0)
        snprintf(reply, sizeof reply, "* BYE see you\r\n%s OK bye\r\n", tag);
    else
        snprintf(reply, sizeof reply, "%s BAD unknown command\r\n", tag);
    serve(reply);
}

/* Splits what the client wrote into commands, honouring its literals. */
static void client_bytes(void)
{
    int guard;
    for (guard = 0; guard < 256 && mem.scan < mem.in_len; guard++) {
        const char *crlf;
        size_t end, size = 0;
        int plus = 0;

        if (mem.lit_left > 0) {
            size_t take = mem.in_len - mem.scan < mem.lit_left ? mem.in_len - mem.scan
                                                               : mem.lit_left;
            if (mem.out_off < mem.plus_end)
                mem.early_literal = 1;
            mem.scan += take;
            mem.lit_left -= take;
            continue;
        }
        crlf = memmem(mem.in + mem.scan, mem.in_len - mem.scan, "\r\n", 2);
        if (crlf == NULL)
            return;
        end = (size_t)(crlf - mem.in);
        if (client_literal(mem.in + mem.scan, end - mem.scan, &size, &plus)) {
            mem.scan = end + 2;
            mem.lit_left = size;
            if (!plus) {
                serve("+ go ahead\r\n");
                mem.plus_end = mem.out_len;
            }
            continue;
        }
        mem.scan = end + 2;
        answer(mem.in + mem.cmd_start, end - mem.cmd_start);
        mem.cmd_start = mem.scan;
    }
}

static int mem_create(imapwire_layer *l, const char *args)
{
    size_t i;
    memset(&mem, 0, sizeof mem);
    mem.created = 1;
    mem.ctx_zeroed = l->ctx != NULL;
    for (i = 0; mem.ctx_zeroed && i < l->type->ctx_size; i++)
        if (((unsigned char *)l->ctx)[i] != 0)
            mem.ctx_zeroed = 0;
    snprintf(mem.type_name, sizeof mem.type_name, "%s", l->type->name);
    snprintf(mem.host, sizeof mem.host, "%s", l->endpoint->host);
    mem.port = l->endpoint->port;
    for (i = 0; args != NULL && i < sizeof scripts / sizeof scripts[0]; i++)
        if (strcmp(args, scripts[i].name) == 0)
            mem.sc = &scripts[i];
    if (mem.sc == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    serve(mem.sc->greeting);
    return 0;
}

static void mem_destroy(imapwire_layer *l)
{
    IW_UNUSED(l);
    mem.destroyed++;
}

static int mem_connect(imapwire_layer *l, int *done)
{
    IW_UNUSED(l);
    *done = ++mem.connects > mem.sc->connect_rounds;
    return 0;
}

static int mem_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    IW_UNUSED(l);
    *sent = 0;
    if (mem.sc->drip && (++mem.send_calls % 2) == 1)
        return IMAPWIRE_AGAIN;
    if (mem.sc->drip && len > 3)
        len = 3;
    if (mem.in_len + len > sizeof mem.in) {
        mem.overflow = 1;
        return ST_ERROR_NETWORK_ERROR;
    }
    memcpy(mem.in + mem.in_len, buf, len);
    mem.in_len += len;
    *sent = len;
    client_bytes();
    return 0;
}

static int mem_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    size_t avail = mem.out_len - mem.out_off;
    IW_UNUSED(l);
    *got = 0;
    if (mem.sc->drip && (++mem.recv_calls % 2) == 1)
        return IMAPWIRE_AGAIN;
    if (avail == 0)
        return mem.sc->eof ? 0 : IMAPWIRE_AGAIN;
    if (len > avail)
        len = avail;
    if (mem.sc->drip)
        len = 1;
    memcpy(buf, mem.out + mem.out_off, len);
    mem.out_off += len;
    *got = len;
    return 0;
}

/* No descriptor to wait on: ask to be called again in a millisecond. */
static void mem_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    IW_UNUSED(want);
    imapwire_pollset_wakeup(ps, l->host->now_ms() + 1);
}

static const imapwire_transport_type mem_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "memtest",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = 32,
    .create = mem_create,
    .destroy = mem_destroy,
    .connect = mem_connect,
    .send = mem_send,
    .recv = mem_recv,
    .pollset = mem_pollset,
};

/* ---- helpers ---- */

static char trace_buf[8192];
static size_t trace_len;

static VOID on_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    IW_UNUSED(h);
    IW_UNUSED(param);
    if (n >= 0 && trace_len + (size_t)n + 4 < sizeof trace_buf)
        trace_len += (size_t)snprintf(trace_buf + trace_len, sizeof trace_buf - trace_len,
                                      "%u:%.*s\n", dir, n, line);
}

static HCLIENT open_mem(const char *transport, DWORD options, unsigned timeout,
                        const char *client_name)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "mail.example.test";
    ci.nTimeout = timeout;
    ci.dwOptions = options;
    ci.lpszTransport = transport;
    ci.lpszClientName = client_name;
    ci.lpTraceProc = on_trace;
    ImapSetLastError(0);
    return ImapConnectEx(&ci);
}

/* What the client wrote, as a string, for exact comparisons. */
static const char *written(void)
{
    ck_assert_int_eq(mem.overflow, 0);
    mem.in[mem.in_len < sizeof mem.in ? mem.in_len : sizeof mem.in - 1] = '\0';
    return mem.in;
}

static void expect_error(int rc, DWORD err)
{
    ck_assert_int_eq(rc, IMAP_ERROR);
    ck_assert_uint_eq(ImapGetLastError(), err);
}

static int reg(const imapwire_transport_type *t)
{
    ImapSetLastError(0);
    return ImapRegisterTransport(t);
}

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
    ck_assert_int_eq(reg(&mem_type), 0);
    memset(&mem, 0, sizeof mem);
    trace_len = 0;
    trace_buf[0] = '\0';
}

static void teardown(void)
{
    int i;
    for (i = 0; i < 64 && ImapUninitialize(); i++)
        ;
}

/* ---- registration ---- */

START_TEST(register_argument_errors)
{
    imapwire_transport_type t;
    struct { imapwire_transport_type t; void *future_slots[4]; } newer;
    static const char *const bad_names[] = {
        NULL, "", "Mem", "mem:x", "mem.so", "mem test", "a23456789012345678901234567890123",
    };
    size_t i;

    expect_error(reg(NULL), ST_ERROR_INVALID_PARAMETER);
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        t = mem_type;
        t.name = bad_names[i];
        ck_assert_msg(reg(&t) == IMAP_ERROR, "name \"%s\" accepted", bad_names[i]);
        ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    }
    t = mem_type;
    t.name = "a234567890123456789012345678901";           /* 31 characters: the maximum */
    ck_assert_int_eq(reg(&t), 0);
    ck_assert_int_eq(ImapUnregisterTransport(t.name), 0);

    t = mem_type;
    t.name = "small";
    t.struct_size = 0;
    expect_error(reg(&t), ST_ERROR_INVALID_PARAMETER);
    t.struct_size = offsetof(imapwire_transport_type, create) - 1;
    expect_error(reg(&t), ST_ERROR_INVALID_PARAMETER);
    t.struct_size = offsetof(imapwire_transport_type, pollset);   /* a bottom needs pollset */
    expect_error(reg(&t), ST_ERROR_INVALID_PARAMETER);
    t = mem_type;
    t.name = "norecv";
    t.recv = NULL;
    expect_error(reg(&t), ST_ERROR_INVALID_PARAMETER);

    t = mem_type;
    t.name = "nextmajor";
    t.abi_version = (IMAPWIRE_TRANSPORT_ABI_MAJOR + 1u) << 16;
    expect_error(reg(&t), ST_ERROR_PLUGIN_VERSION);
    t.abi_version = 0;
    expect_error(reg(&t), ST_ERROR_PLUGIN_VERSION);
    /* A failed registration leaves nothing behind. */
    ImapSetLastError(0);
    expect_error(ImapUnregisterTransport("nextmajor"), ST_ERROR_TRANSPORT_NOT_FOUND);

    /* A newer minor appends slots: a bigger struct of the same major is welcome. */
    memset(&newer, 0, sizeof newer);
    newer.t = mem_type;
    newer.t.name = "newerminor";
    newer.t.abi_version = IMAPWIRE_TRANSPORT_ABI + 7;
    newer.t.struct_size = sizeof newer;
    ck_assert_int_eq(reg(&newer.t), 0);
    ck_assert_int_eq(ImapUnregisterTransport("newerminor"), 0);
}
END_TEST

START_TEST(register_before_initialize)
{
    ck_assert(ImapUninitialize());
    expect_error(reg(&mem_type), ST_ERROR_NOT_INITIALIZED);
}
END_TEST

START_TEST(duplicates_and_unknown_names)
{
    imapwire_transport_type t = mem_type;

    expect_error(reg(&mem_type), ST_ERROR_TRANSPORT_EXISTS);
    t.name = "tcp";                                  /* the built-in is there after init */
    expect_error(reg(&t), ST_ERROR_TRANSPORT_EXISTS);
    ImapSetLastError(0);
    expect_error(ImapUnregisterTransport("no-such"), ST_ERROR_TRANSPORT_NOT_FOUND);
    ImapSetLastError(0);
    expect_error(ImapUnregisterTransport(NULL), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapUnregisterTransport("memtest"), 0);
    ImapSetLastError(0);
    expect_error(ImapUnregisterTransport("memtest"), ST_ERROR_TRANSPORT_NOT_FOUND);
    ck_assert_int_eq(reg(&mem_type), 0);
}
END_TEST

START_TEST(registry_copies_the_type)
{
    imapwire_transport_type *t = malloc(sizeof *t);
    char *name = malloc(16);
    SECURITYINFO si;
    HCLIENT h;

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(name);
    /* An older minor: the slots past struct_size are garbage that must not be copied. */
    memset(t, 0xa5, sizeof *t);
    memcpy(t, &mem_type, offsetof(imapwire_transport_type, pending));
    t->struct_size = offsetof(imapwire_transport_type, pending);
    snprintf(name, 16, "memcopy");
    t->name = name;
    ck_assert_int_eq(reg(t), 0);
    memset(t, 0x5a, sizeof *t);
    memset(name, 'X', 15);
    free(t);
    free(name);

    h = open_mem("memcopy:capa", IMAP_OPTION_NONE, 5, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_str_eq(mem.type_name, "memcopy");
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);   /* walks the NULL query slot */
    ck_assert_uint_eq(si.dwProtocol, SECURITY_PROTOCOL_NONE);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    expect_error(reg(&(imapwire_transport_type){ .abi_version = IMAPWIRE_TRANSPORT_ABI,
                     .struct_size = sizeof(imapwire_transport_type), .name = "memcopy" }),
                 ST_ERROR_TRANSPORT_EXISTS);
    ck_assert_int_eq(ImapUnregisterTransport("memcopy"), 0);
}
END_TEST

/* ---- the connect machine over memtest ---- */

START_TEST(greeting_with_capabilities)
{
    char capa[128];
    HCLIENT h = open_mem("memtest:capa", IMAP_OPTION_NONE, 5, NULL);

    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(mem.ctx_zeroed, 1);
    ck_assert_str_eq(mem.type_name, "memtest");
    ck_assert_str_eq(mem.host, "mail.example.test");
    ck_assert_uint_eq(mem.port, IMAP_PORT_DEFAULT);
    ck_assert_str_eq(written(), "");          /* the greeting said it all: no CAPABILITY */
    ck_assert_int_eq(ImapGetCapabilities(h, capa, sizeof capa), 23);
    ck_assert_str_eq(capa, "IMAP4rev1 ID AUTH=PLAIN");
    ck_assert(ImapHasCapability(h, "auth=plain"));
    ck_assert(!ImapHasCapability(h, "AUTH"));
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_str_eq(written(), "A0001 LOGOUT\r\n");
    ck_assert_int_eq(mem.destroyed, 1);
}
END_TEST

START_TEST(login_sends_literal_for_8bit_password)
{
    /* The user name is quotable, so quoted with escapes; the password has an 8-bit byte,
     * so it goes as a synchronising literal (no LITERAL+), sent only after our "+". */
    HCLIENT h = open_mem("memtest:capa", IMAP_OPTION_NONE, 5, NULL);

    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "us\"er\\x", "p\"w\\\xc3\xa9"), 0);
    /* the LOGIN, byte for byte; then, the OK having carried no capabilities, the list
     * is asked for again (they change at login) */
    ck_assert_str_eq(written(), "A0001 LOGIN \"us\\\"er\\\\x\" {6}\r\np\"w\\\xc3\xa9\r\n"
                                "A0002 CAPABILITY\r\n");
    ck_assert_int_eq(mem.early_literal, 0);
    ck_assert_ptr_null(strstr(trace_buf, "p\"w"));
    ck_assert_ptr_nonnull(strstr(trace_buf, "A0001 LOGIN <redacted>"));
    expect_error(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), ST_ERROR_ALREADY_AUTHENTICATED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(greeting_without_capabilities)
{
    /* No code in the greeting: the client asks, and LITERAL+ then spares the "+" wait. */
    HCLIENT h = open_mem("memtest:plain", IMAP_OPTION_NONE, 5, NULL);

    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_str_eq(written(), "A0001 CAPABILITY\r\n");
    ck_assert(ImapHasCapability(h, "LITERAL+"));
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p\"w\\\xc3\xa9"), 0);
    ck_assert_str_eq(written(), "A0001 CAPABILITY\r\n"
                                "A0002 LOGIN \"u\" {6+}\r\np\"w\\\xc3\xa9\r\n"
                                "A0003 CAPABILITY\r\n");
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(bye_greeting_rejected)
{
    HCLIENT h = open_mem("memtest:bye", IMAP_OPTION_NONE, 5, NULL);
    ck_assert_uint_eq(h, INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_SERVER_REJECTED);
    ck_assert_str_eq(written(), "");
    ck_assert_int_eq(mem.destroyed, 1);
}
END_TEST

START_TEST(identify_only_when_advertised)
{
    HCLIENT h = open_mem("memtest:capa", IMAP_OPTION_IDENTIFY, 5, "tester");
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_str_eq(written(),
                     "A0001 ID (\"name\" \"tester\" \"version\" \"" IMAPWIRE_VERSION_STRING "\")\r\n");
    ck_assert_int_eq(ImapDisconnect(h), 0);

    h = open_mem("memtest:capa", IMAP_OPTION_IDENTIFY, 5, NULL);
    ck_assert_uint_ne(h, INVALID_CLIENT);
    ck_assert_str_eq(written(),
                     "A0001 ID (\"name\" \"imapwire\" \"version\" \"" IMAPWIRE_VERSION_STRING "\")\r\n");
    ck_assert_int_eq(ImapDisconnect(h), 0);

    h = open_mem("memtest:noid", IMAP_OPTION_IDENTIFY, 5, "tester");
    ck_assert_uint_ne(h, INVALID_CLIENT);
    ck_assert_str_eq(written(), "");
    ck_assert_int_eq(ImapDisconnect(h), 0);

    h = open_mem("memtest:capa", IMAP_OPTION_NONE, 5, "tester");
    ck_assert_uint_ne(h, INVALID_CLIENT);
    ck_assert_str_eq(written(), "");
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(drip_feed_and_slow_connect)
{
    /* "Not yet" from connect, recv and send, one byte at a time: the driver must keep
     * calling back through the pollset wake-up rather than wait for the timeout. */
    HCLIENT h = open_mem("memtest:drip", IMAP_OPTION_IDENTIFY, 5, "drip");
    char result[64];

    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(mem.connects, 4);
    ck_assert_str_eq(written(),
                     "A0001 ID (\"name\" \"drip\" \"version\" \"" IMAPWIRE_VERSION_STRING "\")\r\n");
    ck_assert_int_eq(ImapCommand(h, "NOOP", result, sizeof result), 0);
    ck_assert_str_eq(result, "OK noop done");
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(in_use_transport_cannot_leave)
{
    char result[64];
    HCLIENT h = open_mem("memtest:capa", IMAP_OPTION_NONE, 5, NULL);

    ck_assert_msg(h != INVALID_CLIENT, "connect failed: %u", (unsigned)ImapGetLastError());
    ImapSetLastError(0);
    expect_error(ImapUnregisterTransport("memtest"), ST_ERROR_TRANSPORT_IN_USE);
    ck_assert_int_eq(ImapCommand(h, "NOOP", result, sizeof result), 0);   /* still usable */
    ck_assert_str_eq(result, "OK noop done");
    expect_error(ImapCommand(h, "XYZZY", result, sizeof result), ST_ERROR_COMMAND_FAILED);
    ck_assert_str_eq(result, "BAD unknown command");
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(ImapUnregisterTransport("memtest"), 0);
}
END_TEST

START_TEST(connect_failures)
{
    HCLIENT h = open_mem("memtest", IMAP_OPTION_NONE, 5, NULL);       /* no script named */
    ck_assert_uint_eq(h, INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    /* transport.h: destroy runs once, also after a failed create. */
    ck_assert_int_eq(mem.created, 1);
    ck_assert_int_eq(mem.destroyed, 1);

    h = open_mem("memtest:nope", IMAP_OPTION_NONE, 5, NULL);
    ck_assert_uint_eq(h, INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(mem.destroyed, 1);

    h = open_mem("memtest:eof", IMAP_OPTION_NONE, 5, NULL);
    ck_assert_uint_eq(h, INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_CONNECTION_CLOSED);

    h = open_mem("memtest:silent", IMAP_OPTION_NONE, 1, NULL);
    ck_assert_uint_eq(h, INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_OPERATION_TIMEOUT);
    ck_assert_int_eq(mem.destroyed, 1);

    h = open_mem("no-such-transport:x", IMAP_OPTION_NONE, 5, NULL);
    ck_assert_uint_eq(h, INVALID_CLIENT);
    ck_assert_uint_eq(ImapGetLastError(), ST_ERROR_TRANSPORT_NOT_FOUND);
}
END_TEST

START_TEST(uninitialize_closes_open_connections)
{
    HCLIENT h = open_mem("memtest:capa", IMAP_OPTION_NONE, 5, NULL);

    ck_assert_uint_ne(h, INVALID_CLIENT);
    ck_assert(ImapUninitialize());
    ck_assert_int_eq(mem.destroyed, 1);
    /* A handle from before the cycle must not reach anything after it. */
    ck_assert(ImapInitialize(NULL, NULL));
    ImapSetLastError(0);
    expect_error(ImapDisconnect(h), ST_ERROR_INVALID_HANDLE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *reg_tc = tcase_create("register"), *conn = tcase_create("memtest");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(reg_tc, setup, teardown);
    tcase_add_test(reg_tc, register_argument_errors);
    tcase_add_test(reg_tc, register_before_initialize);
    tcase_add_test(reg_tc, duplicates_and_unknown_names);
    tcase_add_test(reg_tc, registry_copies_the_type);
    suite_add_tcase(s, reg_tc);

    tcase_add_checked_fixture(conn, setup, teardown);
    tcase_set_timeout(conn, 60);
    tcase_add_test(conn, greeting_with_capabilities);
    tcase_add_test(conn, login_sends_literal_for_8bit_password);
    tcase_add_test(conn, greeting_without_capabilities);
    tcase_add_test(conn, bye_greeting_rejected);
    tcase_add_test(conn, identify_only_when_advertised);
    tcase_add_test(conn, drip_feed_and_slow_connect);
    tcase_add_test(conn, in_use_transport_cannot_leave);
    tcase_add_test(conn, connect_failures);
    tcase_add_test(conn, uninitialize_closes_open_connections);
    suite_add_tcase(s, conn);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
