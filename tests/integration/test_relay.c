/* test_relay.c: ImapRelay, ImapGetState and ImapGetAuthType (extensions): bytes the
 * reader held go first, both ways verbatim, each end, the handle spent afterwards;
 * against a server scripted here (exact packet boundaries) and the harness's Dovecot. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "iwtest.h"

/* The login's reply and two untagged responses in one send: the library's reader gets
 * them in one read, and must hand the two on. */
#define PIPELINED "* 7 EXISTS\r\n* OK [ALERT] still here\r\n"

typedef struct script {
    int lfd;
    unsigned port;
    char seen[4096];               /* every line the client sent */
    size_t seen_len;
    int close_after_noop;          /* 1: the server ends after its NOOP reply */
} script;

static int read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0 || read(fd, buf + n, 1) != 1)
            return -1;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return (int)n;
}

static void put(int fd, const char *s)
{
    ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static void *serve(void *arg)
{
    script *s = arg;
    char line[1024], reply[1200];
    int fd = accept(s->lfd, NULL, NULL), i;
    if (fd < 0)
        return NULL;
    put(fd, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted\r\n");
    for (i = 0; i < 8 && read_line(fd, line, sizeof line) > 0; i++) {
        char *sp = strchr(line, ' ');
        size_t n = strlen(line);
        if (s->seen_len + n < sizeof s->seen) {
            memcpy(s->seen + s->seen_len, line, n);
            s->seen_len += n;
        }
        if (sp == NULL)
            break;
        *sp = '\0';
        if (strncmp(sp + 1, "LOGIN", 5) == 0) {
            snprintf(reply, sizeof reply, "%s OK [CAPABILITY IMAP4rev1 IDLE] in\r\n" PIPELINED,
                     line);
            put(fd, reply);
        } else if (strncmp(sp + 1, "NOOP", 4) == 0) {
            snprintf(reply, sizeof reply, "%s OK noop\r\n", line);
            put(fd, reply);
            if (s->close_after_noop)
                break;
        } else {
            snprintf(reply, sizeof reply, "%s BAD what\r\n", line);
            put(fd, reply);
        }
    }
    close(fd);
    return NULL;
}

static pthread_t start_script(script *s, int close_after_noop)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    pthread_t t;
    memset(s, 0, sizeof *s);
    s->close_after_noop = close_after_noop;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s->lfd, 1), 0);
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&t, NULL, serve, s), 0);
    return t;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* Reads fd to its end (bounded): the bytes, NUL-terminated. */
static size_t drain(int fd, char *buf, size_t size)
{
    size_t n = 0;
    for (int i = 0; i < 1000 && n + 1 < size; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 10000) <= 0)
            break;
        r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

START_TEST(buffered_bytes_go_first)
{
    script s;
    pthread_t t = start_script(&s, 1);
    int sp[2];
    char got[4096];
    IMAPRELAYINFO info = { .dwSize = sizeof info };
    HCLIENT h = ImapConnect("127.0.0.1", s.port, 10, IMAP_OPTION_NONE, NULL);

    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapGetState(h), IMAP_STATE_NOT_AUTHENTICATED);
    ck_assert_int_eq(ImapGetAuthType(h), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_NOT_AUTHENTICATED);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(ImapGetState(h), IMAP_STATE_AUTHENTICATED);
    ck_assert_int_eq(ImapGetAuthType(h), IMAP_AUTH_LOGIN);
    ck_assert(ImapHasCapability(h, "IDLE"));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    /* the client's side: one command, then its end */
    ck_assert_int_eq(write(sp[1], "x NOOP\r\n", 8), 8);
    ck_assert_int_eq(ImapRelay(h, sp[0], sp[0], 2, &info), 0);
    /* the descriptor is as the caller had it: blocking */
    ck_assert_int_eq(fcntl(sp[0], F_GETFL) & O_NONBLOCK, 0);
    close(sp[0]);                  /* so the reading below sees the end */
    drain(sp[1], got, sizeof got);
    ck_assert_str_eq(got, PIPELINED "x OK noop\r\n");
    ck_assert_uint_eq(info.dwEnded, IMAP_RELAY_ENDED_SERVER);
    ck_assert_uint_eq(info.qwToServer, 8);
    ck_assert_uint_eq(info.qwFromServer, strlen(PIPELINED "x OK noop\r\n"));
    /* the conversation was the caller's: the handle is spent, no LOGOUT of ours */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(ImapGetState(h), IMAP_STATE_LOGOUT);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    pthread_join(t, NULL);
    ck_assert_ptr_null(strstr(s.seen, "LOGOUT"));
    ck_assert_ptr_nonnull(strstr(s.seen, "x NOOP"));
    close(s.lfd);
    close(sp[1]);
}
END_TEST

/* Two pipes (a mail client's stdin and stdout); the input ends first and the server's
 * answer still reaches the output; then the output's reader going away ends a relay. */
START_TEST(input_end_then_output_gone)
{
    script s;
    pthread_t t = start_script(&s, 0);
    int in[2], out[2];
    char got[4096];
    IMAPRELAYINFO info = { .dwSize = sizeof info };
    HCLIENT h = ImapConnect("127.0.0.1", s.port, 10, IMAP_OPTION_NONE, NULL);

    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(write(in[1], "y NOOP\r\n", 8), 8);
    close(in[1]);
    ck_assert_int_eq(ImapRelay(h, in[0], out[1], 1, &info), 0);
    close(out[1]);
    drain(out[0], got, sizeof got);
    ck_assert_str_eq(got, PIPELINED "y OK noop\r\n");
    ck_assert_uint_eq(info.dwEnded, IMAP_RELAY_ENDED_INPUT);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    pthread_join(t, NULL);
    close(s.lfd);
    close(in[0]);
    close(out[0]);

    /* the output's reader gone: EPIPE ends it (SIGPIPE is ignored by this program) */
    t = start_script(&s, 0);
    h = ImapConnect("127.0.0.1", s.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_LOGIN, "u", "p"), 0);
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    close(out[0]);
    ck_assert_int_eq(ImapRelay(h, in[0], out[1], 1, &info), 0);
    ck_assert_uint_eq(info.dwEnded, IMAP_RELAY_ENDED_OUTPUT);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    pthread_join(t, NULL);
    close(s.lfd);
    close(in[0]);
    close(in[1]);
    close(out[1]);
}
END_TEST

START_TEST(bad_arguments)
{
    script s;
    pthread_t t = start_script(&s, 0);
    IMAPRELAYINFO small = { .dwSize = 4 };
    HCLIENT h = ImapConnect("127.0.0.1", s.port, 10, IMAP_OPTION_NONE, NULL);
    int fds[2];

    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    ck_assert_int_eq(ImapRelay(h, -1, fds[1], 0, NULL), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapRelay(h, fds[0], 1000, 0, NULL), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(ImapRelay(h, fds[0], fds[1], 0, &small), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    /* refused arguments do not spend the handle */
    ck_assert_int_eq(ImapGetState(h), IMAP_STATE_NOT_AUTHENTICATED);
    ck_assert_int_eq(ImapRelay((HCLIENT)12345, fds[0], fds[1], 0, NULL), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert_int_eq(ImapGetState((HCLIENT)12345), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    pthread_join(t, NULL);
    close(s.lfd);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* The harness's Dovecot over implicit TLS: a FETCH of message 1 through the relay gives
 * the message's exact bytes (TLS records that hold more than one read asks for). */
START_TEST(dovecot_tls_fetch)
{
    iwt_dovecot d;
    SECURITYCREDENTIALS cr;
    char ca[600], got[65536], *msg;
    const char *env = getenv("IW_DOVECOT_TLS_ENV");
    int sp[2];
    IMAPRELAYINFO info = { .dwSize = sizeof info };
    HCLIENT h;

    ck_assert_ptr_nonnull(env);
    iwt_dovecot_load_file(&d, env);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", d.dir);
    memset(&cr, 0, sizeof cr);
    cr.dwSize = sizeof cr;
    cr.lpszCAFile = ca;
    h = ImapConnect("127.0.0.1", d.imaps_port, 10, IMAP_OPTION_SECURE_IMPLICIT, &cr);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, d.user, d.pass), 0);
    /* DEFAULT is never the answer: the mechanism the library chose is */
    ck_assert_int_eq(ImapGetAuthType(h), IMAP_AUTH_SCRAM_SHA256);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    {
        const char *cmds = "s SELECT INBOX\r\nf FETCH 1 BODY.PEEK[]\r\nl LOGOUT\r\n";
        ck_assert_int_eq(write(sp[1], cmds, strlen(cmds)), (ssize_t)strlen(cmds));
    }
    ck_assert_int_eq(ImapRelay(h, sp[0], sp[0], 5, &info), 0);
    close(sp[0]);
    drain(sp[1], got, sizeof got);
    msg = iwt_read_file(d.msg1);
    ck_assert_ptr_nonnull(strstr(got, msg));
    ck_assert_ptr_nonnull(strstr(got, "\r\nl OK"));
    ck_assert_uint_eq(info.dwEnded, IMAP_RELAY_ENDED_SERVER);
    free(msg);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    close(sp[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("relay");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, buffered_bytes_go_first);
    tcase_add_test(tc, input_end_then_output_gone);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, dovecot_tls_fetch);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
