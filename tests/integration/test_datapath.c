/* test_datapath.c: FETCH bodies received straight into their destination: sizes at the
 * buffer boundaries over plain and TLS Dovecot, every ImapGetMessage mode, byte-dripping,
 * oversized and dying servers, and the reader's buffer back to its resting size. */
#define _GNU_SOURCE
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "iwtest.h"
#include "imap/client.h"           /* the internal query: the reader's footprint */

#define REST_MAX 4096u             /* the reader's buffer at rest, at most */

static const size_t sizes[] = { 1, 4095, 4096, 4097, 65535, 65536, 65537, 3u << 20 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static size_t reader_cap(HCLIENT h)
{
    iw_client *c = iw_handle_get((uintptr_t)h, IW_KIND_CLIENT);
    ck_assert_ptr_nonnull(c);
    return iw_reader_capacity(&c->io.reader);
}

/* ImapGetMessageStream's pieces, checked against want as they come (want NULL: the
 * serve() pattern), copied nowhere. */
typedef struct collect {
    const char *want;
    size_t got, pieces, largest;
    int    bad;
} collect;

static VOID on_piece(HCLIENT h, const VOID *data, DWORD n, LPVOID param)
{
    collect *c = param;
    const char *p = data;
    DWORD i;
    (void)h;
    c->pieces++;
    if (n > c->largest)
        c->largest = n;
    for (i = 0; i < n && !c->bad; i++)
        if (p[i] != (c->want ? c->want[c->got + i] : (char)('A' + (c->got + i) % 23)))
            c->bad = 1;
    c->got += n;
}

/* Message id (part) fetched in every mode of ImapGetMessage must be want[0..n). */
static void fetch_all_modes(HCLIENT h, UINT id, UINT part, const char *want, size_t n)
{
    char *lib = NULL, *buf = malloc(n + 16);
    DWORD len;

    ck_assert_ptr_nonnull(buf);
    /* the library allocates: NUL-terminated */
    len = 0;
    ck_assert_msg(ImapGetMessage(h, id, part, &lib, &len, 0) == 0, "size %zu: error %u", n,
                  (unsigned)ImapGetLastError());
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(lib, want, n) == 0);
    ck_assert_int_eq(lib[n], '\0');
    ImapFreeMemory(lib);
    /* exactly the size: no terminator fits, nothing written past it */
    memset(buf, 0x5a, n + 16);
    len = (DWORD)(n ? n : 1);
    ck_assert_int_eq(ImapGetMessage(h, id, part, buf, &len, 0), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(buf, want, n) == 0);
    ck_assert_int_eq((unsigned char)buf[n + (n ? 0 : 1)], 0x5a);
    /* larger: terminated after the body, the rest untouched */
    memset(buf, 0x5a, n + 16);
    len = (DWORD)(n + 8);
    ck_assert_int_eq(ImapGetMessage(h, id, part, buf, &len, 0), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(buf, want, n) == 0);
    ck_assert_int_eq(buf[n], '\0');
    ck_assert_int_eq((unsigned char)buf[n + 1], 0x5a);
    /* streamed: every byte in order, in pieces of at most 64 KB */
    {
        collect c = { want, 0, 0, 0, 0 };
        len = 0;
        ck_assert_int_eq(ImapGetMessageStream(h, id, part, on_piece, &c, &len), 0);
        ck_assert_uint_eq(len, n);
        ck_assert_uint_eq(c.got, n);
        ck_assert(!c.bad);
        ck_assert_uint_le(c.largest, 65536);
    }
    /* one byte short: the size it needs, the buffer's end untouched, the connection
     * still in step */
    if (n > 1) {
        memset(buf, 0x5a, n + 16);
        len = (DWORD)(n - 1);
        ck_assert_int_eq(ImapGetMessage(h, id, part, buf, &len, 0), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_BUFFER_TOO_SMALL);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq((unsigned char)buf[n - 1], 0x5a);
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    }
    free(buf);
}

static void run_sizes(HCLIENT h)
{
    char box[64], cmd[128];
    char *msgs[NSIZES];
    IMAPMAILBOX mb;
    size_t i;

    /* at rest after login: protocol lines only */
    ck_assert_uint_le(reader_cap(h), REST_MAX);
    snprintf(box, sizeof box, "dp-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    for (i = 0; i < NSIZES; i++) {
        msgs[i] = iwt_message(sizes[i]);
        iwt_append(h, box, msgs[i], sizes[i]);
    }
    /* an empty body: part 1 of a message that is all header */
    iwt_append(h, box, "Subject: empty\r\n\r\n", 18);
    ck_assert_int_eq(ImapSelectMailbox(h, box, &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, NSIZES + 1);
    for (i = 0; i < NSIZES; i++) {
        fetch_all_modes(h, (UINT)(i + 1), 0, msgs[i], sizes[i]);
        /* back to its resting size after every fetch, large ones too */
        ck_assert_msg(reader_cap(h) <= REST_MAX, "size %zu: reader holds %zu bytes at rest",
                      sizes[i], reader_cap(h));
    }
    fetch_all_modes(h, NSIZES + 1, 1, "", 0);
    for (i = 0; i < NSIZES; i++)
        free(msgs[i]);
    ImapCommand(h, "UNSELECT", NULL, 0);
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
}

static void setup(void)
{
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* IMAP_MESSAGE_UID (API.md): nMessageId is a UID and the fetch is a UID FETCH, so an
 * expunge in between cannot turn it into another message. Two messages appended, the
 * first expunged: sequence number 1 is now UID 2. */
START_TEST(fetch_by_uid)
{
    iwt_dovecot dv;
    HCLIENT h;
    IMAPMAILBOX mb;
    char box[64], cmd[128], buf[256];
    void *whole = NULL;
    DWORD len, uid1, uid2;

    iwt_dovecot_load(&dv);
    h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    snprintf(box, sizeof box, "uid-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    iwt_append(h, box, "Subject: one\r\n\r\nfirst", 21);
    iwt_append(h, box, "Subject: two\r\n\r\nsecond", 22);
    ck_assert_int_eq(ImapSelectMailbox(h, box, &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 2);
    uid2 = mb.dwUidNext - 1;
    uid1 = uid2 - 1;
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, uid1, 0, buf, &len, IMAP_MESSAGE_UID), 0);
    ck_assert_uint_eq(len, 21);
    ck_assert_int_eq(memcmp(buf, "Subject: one", 12), 0);
    ck_assert_int_eq(ImapCommand(h, "STORE 1 +FLAGS (\\Deleted)", NULL, 0), 0);
    ck_assert_int_eq(ImapCommand(h, "EXPUNGE", NULL, 0), 0);
    /* by UID: the second message, in both buffer modes and streamed */
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, uid2, 0, buf, &len, IMAP_MESSAGE_UID), 0);
    ck_assert_uint_eq(len, 22);
    ck_assert_int_eq(memcmp(buf, "Subject: two", 12), 0);
    len = 0;
    ck_assert_int_eq(ImapGetMessage(h, uid2, 1, &whole, &len, IMAP_MESSAGE_UID), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(memcmp(whole, "second", 6), 0);
    ImapFreeMemory(whole);
    {
        collect c = { "Subject: two\r\n\r\nsecond", 0, 0, 0, 0 };
        len = 0;
        ck_assert_int_eq(ImapGetMessageStreamEx(h, uid2, 0, IMAP_MESSAGE_UID, on_piece, &c,
                                                &len), 0);
        ck_assert_uint_eq(len, 22);
        ck_assert_uint_eq(c.got, 22);
        ck_assert(!c.bad);
        ck_assert_int_eq(ImapGetMessageStreamEx(h, uid1, 0, IMAP_MESSAGE_UID, on_piece, &c,
                                                &len), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_MESSAGE_NOT_FOUND);
        ck_assert_int_eq(ImapGetMessageStreamEx(h, uid2, 0, 0x80, on_piece, &c, &len),
                         IMAP_ERROR);
        iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    }
    /* the expunged UID is gone, whatever sequence number 1 now is */
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, uid1, 0, buf, &len, IMAP_MESSAGE_UID), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_MESSAGE_NOT_FOUND);
    /* by sequence number, 1 is the second message now */
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, buf, &len, 0), 0);
    ck_assert_int_eq(memcmp(buf, "Subject: two", 12), 0);
    /* an option the contract does not name is refused */
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, buf, &len, 0x80), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ImapCommand(h, "UNSELECT", NULL, 0);
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(sizes_plain)
{
    iwt_dovecot dv;
    HCLIENT h;
    iwt_dovecot_load(&dv);
    h = ImapConnect(dv.host, dv.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_uint_le(reader_cap(h), REST_MAX);        /* fresh */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    run_sizes(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

START_TEST(sizes_tls)
{
    const char *env = getenv("IW_DOVECOT_TLS_ENV");
    SECURITYCREDENTIALS sc;
    char ca[700];
    iwt_dovecot dv;
    HCLIENT h;

    ck_assert_msg(env != NULL, "IW_DOVECOT_TLS_ENV not set (run through ctest)");
    iwt_dovecot_load_file(&dv, env);
    ck_assert_uint_gt(dv.imaps_port, 0);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", dv.dir);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = ca;
    h = ImapConnect("127.0.0.1", dv.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_uint_le(reader_cap(h), REST_MAX);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    run_sizes(h);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}
END_TEST

/* A 49 MB message byte for byte into the caller's buffer and into the library's, with
 * the peak RSS of each fetch within the bounds: under 1 MB beyond the caller's
 * buffer, under 1.1x the message when the library allocates. The bounds hold for the
 * normal build; ASan's allocator keeps and pads memory, so there only bytes count. */
/* This process's minor page faults so far: each fresh page a buffer touches is one. */
static long minor_faults(void)
{
    struct rusage u;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &u), 0);
    return u.ru_minflt;
}

START_TEST(big_rss)
{
    const size_t n = 49u * 1000u * 1000u;
    char *msg = iwt_message(n), *buf = malloc(n + 1), *lib = NULL, box[64], cmd[128];
    long before, peak, faults;
    iwt_dovecot dv;
    DWORD len;
    HCLIENT h;
    int sanitized = 0;

#if defined(__SANITIZE_ADDRESS__)
    sanitized = 1;
#endif
    ck_assert_ptr_nonnull(buf);
    iwt_dovecot_load(&dv);
    h = ImapConnect(dv.host, dv.port, 30, IMAP_OPTION_NONE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    snprintf(box, sizeof box, "dpbig-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    iwt_append(h, box, msg, n);
    ck_assert_int_eq(ImapSelectMailbox(h, box, NULL), 0);

    memset(buf, 0, n + 1);                     /* the caller's buffer is resident */
    ck_assert(iwt_reset_peak() || sanitized);
    before = iwt_status_kb("VmRSS");
    len = (DWORD)(n + 1);
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, buf, &len, 0), 0);
    peak = iwt_status_kb("VmHWM");
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(buf, msg, n) == 0);
    if (!sanitized)
        ck_assert_msg(peak - before < 1024, "caller's buffer: peak %ld KB over %ld KB",
                      peak - before, before);
    free(buf);

    ck_assert(iwt_reset_peak() || sanitized);
    before = iwt_status_kb("VmRSS");
    len = 0;
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, &lib, &len, 0), 0);
    peak = iwt_status_kb("VmHWM");
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(lib, msg, n) == 0);
    if (!sanitized)
        ck_assert_msg((double)(peak - before) * 1024 < 1.1 * (double)n,
                      "library's buffer: peak %ld KB over %ld KB", peak - before, before);
    /* The next one is received into the block ImapFreeMemory kept: no fresh pages to
     * fault in and zero (11,963 faults for each 49 MB fetch before). Its bytes are wiped
     * first, so the comparison proves the body was written again. */
    memset(lib, 0, n);
    ImapFreeMemory(lib);
    lib = NULL;
    faults = minor_faults();
    len = 0;
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, &lib, &len, 0), 0);
    faults = minor_faults() - faults;
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(lib, msg, n) == 0);
    ck_assert_msg(faults < (long)(n / 4096 / 10), "second 49 MB fetch: %ld page faults", faults);
    ImapFreeMemory(lib);
    ck_assert_uint_le(reader_cap(h), REST_MAX);

    ImapCommand(h, "UNSELECT", NULL, 0);
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    free(msg);
}
END_TEST

/* ---- a scripted server in a thread: what a FETCH of message 1 gets ---- */

enum serve_mode { SERVE_DRIP, SERVE_HUGE, SERVE_DIE, SERVE_SMALL, SERVE_PAST };
#define PAST_SIZE 300000000u      /* past the 256 MB literal limit */
#define DRIP_SIZE 5000u
#define DIE_SIZE  100000u

typedef struct server {
    int lfd, mode;
    unsigned port;
    pthread_t thread;
} server;

static int send_all(int fd, const char *p, size_t n, int drip)
{
    size_t off = 0;
    int rounds = 0;
    while (off < n && rounds++ < 1000000) {
        ssize_t k = send(fd, p + off, drip ? 1 : n - off, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        off += (size_t)k;
    }
    return off == n ? 0 : -1;
}

/* One line from the client (bounded wait and size); its length, or -1. */
static int read_line(int fd, char *line, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 10000) <= 0 || recv(fd, line + n, 1, 0) != 1)
            return -1;
        if (line[n] == '\n') {
            line[n] = '\0';
            if (n > 0 && line[n - 1] == '\r')
                line[--n] = '\0';
            return (int)n;
        }
        n++;
    }
    return -1;
}

static void *serve(void *arg)
{
    server *s = arg;
    struct pollfd p = { s->lfd, POLLIN, 0 };
    char line[512], tag[32], out[256];
    int fd, one = 1, lines;

    if (poll(&p, 1, 10000) <= 0 || (fd = accept(s->lfd, NULL, NULL)) < 0)
        return NULL;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    send_all(fd, "* OK [CAPABILITY IMAP4rev1] datapath\r\n", 38, 0);
    for (lines = 0; lines < 100 && read_line(fd, line, sizeof line) >= 0; lines++) {
        const char *sp = strchr(line, ' ');
        if (sp == NULL || (size_t)(sp - line) >= sizeof tag)
            break;
        memcpy(tag, line, (size_t)(sp - line));
        tag[sp - line] = '\0';
        if (strncmp(sp + 1, "FETCH 1 ", 8) == 0) {
            char *body = malloc(DIE_SIZE);
            size_t i;
            if (body == NULL)
                break;
            for (i = 0; i < DIE_SIZE; i++)
                body[i] = (char)('A' + i % 23);
            if (s->mode == SERVE_PAST) {
                /* the pattern, from a buffer whose length is a multiple of its period */
                size_t sent = 0, step = DIE_SIZE - DIE_SIZE % 23;
                int n = snprintf(out, sizeof out, "* 1 FETCH (BODY[] {%u}\r\n", PAST_SIZE);
                send_all(fd, out, (size_t)n, 0);
                while (sent < PAST_SIZE) {
                    size_t k = PAST_SIZE - sent < step ? PAST_SIZE - sent : step;
                    if (send_all(fd, body, k, 0) != 0)
                        break;
                    sent += k;
                }
                n = snprintf(out, sizeof out, ")\r\n%s OK done\r\n", tag);
                send_all(fd, out, (size_t)n, 0);
            } else if (s->mode == SERVE_SMALL) {
                /* more after the literal than the literal itself */
                int n = snprintf(out, sizeof out,
                                 "* 1 FETCH (BODY[] {5}\r\nhello FLAGS (\\Seen))\r\n"
                                 "%s OK done\r\n", tag);
                send_all(fd, out, (size_t)n, 0);
            } else if (s->mode == SERVE_DRIP) {
                int n = snprintf(out, sizeof out, "* 1 FETCH (BODY[] {%u}\r\n", DRIP_SIZE);
                send_all(fd, out, (size_t)n, 1);
                send_all(fd, body, DRIP_SIZE, 1);
                n = snprintf(out, sizeof out, ")\r\n%s OK done\r\n", tag);
                send_all(fd, out, (size_t)n, 1);
            } else if (s->mode == SERVE_HUGE) {
                /* past the 256 MB limit: refused on the head, nothing allocated for it */
                send_all(fd, "* 1 FETCH (BODY[] {300000000}\r\n", 32, 0);
                send_all(fd, body, 1000, 0);
            } else {
                int n = snprintf(out, sizeof out, "* 1 FETCH (BODY[] {%u}\r\n", DIE_SIZE);
                send_all(fd, out, (size_t)n, 0);
                send_all(fd, body, DIE_SIZE / 2, 0);
                free(body);
                break;                 /* dies mid-literal */
            }
            free(body);
            continue;
        }
        if (strcmp(sp + 1, "LOGOUT") == 0) {
            snprintf(out, sizeof out, "* BYE bye\r\n%s OK bye\r\n", tag);
            send_all(fd, out, strlen(out), 0);
            break;
        }
        if (strncmp(sp + 1, "CAPABILITY", 10) == 0)
            send_all(fd, "* CAPABILITY IMAP4rev1\r\n", 24, 0);
        if (strncmp(sp + 1, "SELECT", 6) == 0)
            send_all(fd, "* 1 EXISTS\r\n", 12, 0);
        snprintf(out, sizeof out, "%s OK done\r\n", tag);
        send_all(fd, out, strlen(out), 0);
    }
    close(fd);
    return NULL;
}

static void server_start(server *s, int mode)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->mode = mode;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->lfd, 0);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

static HCLIENT connect_to_traced(const server *s, trace_log *log)
{
    IMAPCONNECTINFO ci;
    HCLIENT h;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = s->port;
    ci.nTimeout = 10;
    ci.lpTraceProc = log != NULL ? trace_cb : NULL;
    ci.lpParam = log;
    h = ImapConnectEx(&ci);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", NULL), 0);
    return h;
}

static HCLIENT connect_to(const server *s)
{
    return connect_to_traced(s, NULL);
}

/* The trace of a response whose literal went straight to its destination shows the
 * head as sent and the rest of the response after the literal, not bytes off by it. */
START_TEST(trace_after_literal)
{
    static trace_log log;
    server s;
    HCLIENT h;
    char *got = NULL, buf[16];
    DWORD len = _i ? sizeof buf : 0;

    memset(&log, 0, sizeof log);
    server_start(&s, SERVE_SMALL);
    h = connect_to_traced(&s, &log);
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, _i ? (void *)buf : (void *)&got, &len, 0), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(_i ? buf : got, "hello", 5) == 0);
    ImapFreeMemory(got);
    ck_assert_msg(strstr(log.text, "\n<* 1 FETCH (BODY[] {5}\n< FLAGS (\\Seen))\n") != NULL,
                  "trace: %s", log.text);
    ImapDisconnect(h);
    server_stop(&s);
}
END_TEST

/* A literal arriving one byte per segment, into a library buffer (_i 0), the caller's
 * (_i 1) or streamed (_i 2): every byte where it belongs. */
START_TEST(drip)
{
    server s;
    HCLIENT h;
    char *got = NULL, *buf = malloc(DRIP_SIZE + 1);
    DWORD len = _i ? DRIP_SIZE + 1 : 0;
    size_t i;

    ck_assert_ptr_nonnull(buf);
    server_start(&s, SERVE_DRIP);
    h = connect_to(&s);
    if (_i == 2) {
        collect c = { NULL, 0, 0, 0, 0 };
        ck_assert_int_eq(ImapGetMessageStream(h, 1, 0, on_piece, &c, &len), 0);
        ck_assert_uint_eq(len, DRIP_SIZE);
        ck_assert_uint_eq(c.got, DRIP_SIZE);
        ck_assert(!c.bad);               /* on_piece compared every byte */
    } else {
        ck_assert_msg(ImapGetMessage(h, 1, 0, _i ? (void *)buf : (void *)&got, &len, 0) == 0,
                      "error %u", (unsigned)ImapGetLastError());
    }
    ck_assert_uint_eq(len, DRIP_SIZE);
    if (_i == 0)
        buf = memcpy(buf, got, DRIP_SIZE);
    for (i = 0; _i < 2 && i < DRIP_SIZE; i++)
        ck_assert_int_eq(buf[i], (char)('A' + i % 23));
    ImapFreeMemory(got);
    ck_assert_uint_le(reader_cap(h), REST_MAX);
    ImapDisconnect(h);
    server_stop(&s);
    free(buf);
}
END_TEST

/* Streamed, a body past the 256 MB literal limit is allowed: no buffer holds it. Then
 * the handle is in step for the next command. */
START_TEST(stream_past_limit)
{
    server s;
    HCLIENT h;
    collect c = { NULL, 0, 0, 0, 0 };
    DWORD len = 0;

    server_start(&s, SERVE_PAST);
    h = connect_to(&s);
    ck_assert_msg(ImapGetMessageStream(h, 1, 0, on_piece, &c, &len) == 0, "error %u",
                  (unsigned)ImapGetLastError());
    ck_assert_uint_eq(len, PAST_SIZE);
    ck_assert_uint_eq(c.got, PAST_SIZE);
    ck_assert(!c.bad);
    ck_assert_uint_le(c.largest, 65536);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_uint_le(reader_cap(h), REST_MAX);
    ImapDisconnect(h);
    server_stop(&s);
}
END_TEST

/* A literal past the limit fails on its head; the stream is then out of step, so the
 * handle refuses further commands until it is disconnected. */
START_TEST(too_large)
{
    server s;
    HCLIENT h;
    char *got = NULL, buf[64];
    DWORD len = _i ? sizeof buf : 0;

    server_start(&s, SERVE_HUGE);
    h = connect_to(&s);
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, _i ? (void *)buf : (void *)&got, &len, 0),
                     IMAP_ERROR);
    iwt_assert_error(ST_ERROR_RESPONSE_TOO_LARGE);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ImapDisconnect(h);
    server_stop(&s);
}
END_TEST

/* The server closes halfway through the literal: CONNECTION_CLOSED, the partial body
 * freed (ASan's leak check), and the handle no longer used. */
START_TEST(dies_mid_literal)
{
    server s;
    HCLIENT h;
    char *got = NULL, *buf = malloc(DIE_SIZE);
    DWORD len = _i ? DIE_SIZE : 0;

    ck_assert_ptr_nonnull(buf);
    server_start(&s, SERVE_DIE);
    h = connect_to(&s);
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, _i ? (void *)buf : (void *)&got, &len, 0),
                     IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ImapDisconnect(h);
    server_stop(&s);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datapath");
    TCase *t = tcase_create("dovecot");
    TCase *f = tcase_create("scripted");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 240);
    tcase_add_test(t, sizes_plain);
    tcase_add_test(t, fetch_by_uid);
    tcase_add_test(t, sizes_tls);
    tcase_add_test(t, big_rss);
    suite_add_tcase(s, t);
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_set_timeout(f, 60);
    tcase_add_loop_test(f, drip, 0, 3);
    tcase_add_test(f, stream_past_limit);
    tcase_add_loop_test(f, trace_after_literal, 0, 2);
    tcase_add_loop_test(f, too_large, 0, 2);
    tcase_add_loop_test(f, dies_mid_literal, 0, 2);
    suite_add_tcase(s, f);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
