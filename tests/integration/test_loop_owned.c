/* test_loop_owned.c: objects that own loop tasks are freed by the loop, never under its
 * walk: forwards, their bridges, async connects and private forwards closed from events. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "epoll_watch.h"
#include "iwtest.h"

static iwt_sshd sshd;
static iwt_dovecot dv;

static void setup(void)
{
    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    iwt_dovecot_load(&dv);
    unsetenv("SSH_AUTH_SOCK");
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* What the event callback did, read by the test thread once the event came. */
struct inside {
    pthread_mutex_t lock;
    int             events;
    DWORD           error;
    HFORWARD        close_fw;      /* closed inside the connect event, if set */
    int             disconnect;    /* the handle disconnects itself inside the event */
    BOOL            closed;
    DWORD           close_error;
    INT             disc_rc;
};

static void inside_cb(HCLIENT h, UINT event, DWORD error, LPVOID param)
{
    struct inside *in = param;
    BOOL closed = FALSE;
    DWORD close_error = 0;
    INT disc_rc = 0;
    if (event != IMAP_EVENT_CONNECT)
        return;
    if (in->close_fw != INVALID_FORWARD) {
        closed = ImapClosePortForward(in->close_fw);
        close_error = closed ? 0 : ImapGetLastError();
    }
    if (in->disconnect && ImapDisconnect(h) != 0)
        disc_rc = (INT)ImapGetLastError();
    pthread_mutex_lock(&in->lock);
    in->events++;
    in->error = error;
    in->closed = closed;
    in->close_error = close_error;
    in->disc_rc = disc_rc;
    pthread_mutex_unlock(&in->lock);
}

static int inside_wait(struct inside *in, int timeout_ms)
{
    long long until = iwt_now_ms() + timeout_ms;
    int n;
    for (;;) {
        pthread_mutex_lock(&in->lock);
        n = in->events;
        pthread_mutex_unlock(&in->lock);
        if (n > 0 || iwt_now_ms() >= until)
            return n;
        usleep(2000);
    }
}

/* A forward to Dovecot through sc, which the connect event of in will close. */
static void forward_for_event(struct inside *in, SECURITYCREDENTIALS *sc, UINT *bound)
{
    in->events = 0;
    in->close_fw = ImapCreatePortForward(sc, "127.0.0.1", dv.port, 0, bound);
    ck_assert_msg(in->close_fw != INVALID_FORWARD, "forward: %u", (unsigned)ImapGetLastError());
}

/* h's connect started; its event came (within 10 s), once, without an error. */
static void event_came(HCLIENT h, struct inside *in)
{
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(inside_wait(in, 10000), 1);
    ck_assert_uint_eq(in->error, 0);
}

/* The review's case: a forward closed from an IMAP_EVENT_CONNECT callback. Its listener
 * task lived inside the forward and was still on the loop's ready list when the forward
 * was freed (ASan: heap-use-after-free in iw_loop_run_ready). */
START_TEST(close_forward_from_connect_event)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    struct inside in = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0 };
    UINT bound = 0;
    HCLIENT h;
    int fds0 = 0, round;

    iwt_epoll_reset();
    for (round = 0; round < 5; round++) {
        if (round == 1)
            fds0 = iwt_count_fds();    /* the loop's own descriptors are open by now */
        forward_for_event(&in, &sc, &bound);
        iwt_epoll_slow(2);
        h = ImapAsyncConnect("127.0.0.1", dv.port, 10, 0, NULL, inside_cb, &in);
        event_came(h, &in);
        iwt_epoll_slow(0);
        ck_assert_msg(in.closed, "close inside the event: %u", (unsigned)in.close_error);
        /* the loop goes on: the handle works, and its port refuses */
        ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert(!iwt_port_listening(bound));
        ck_assert(!ImapClosePortForward(in.close_fw));
        iwt_assert_error(ST_ERROR_INVALID_HANDLE);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    ck_assert_int_eq(iwt_count_fds(), fds0);
    /* the listener left epoll before the close inside the event closed its socket */
    ck_assert_int_eq(iwt_epoll_closed(), 0);
    ck_assert_int_eq(iwt_epoll_raced(), 0);
}
END_TEST

/* The same forward carries the connect whose event closes it: its bridge (another task
 * of the forward) is being walked by the loop when the forward goes. */
START_TEST(close_forward_from_its_own_connection)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    struct inside in = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0 };
    UINT bound = 0;
    HCLIENT h;
    int fds0 = 0, round;

    iwt_epoll_reset();
    for (round = 0; round < 3; round++) {
        if (round == 1)
            fds0 = iwt_count_fds();
        forward_for_event(&in, &sc, &bound);
        iwt_epoll_slow(2);
        h = ImapAsyncConnect("127.0.0.1", bound, 10, IMAP_OPTION_TUNNEL, NULL, inside_cb, &in);
        event_came(h, &in);
        iwt_epoll_slow(0);
        ck_assert(in.closed);
        /* its bridge went with the forward: the connection is closed, not wedged */
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), IMAP_ERROR);
        ck_assert_int_eq(ImapDisconnect(h), 0);
    }
    ck_assert_int_eq(iwt_count_fds(), fds0);
    ck_assert_int_eq(iwt_epoll_closed(), 0);
    ck_assert_int_eq(iwt_epoll_raced(), 0);
}
END_TEST

/* A CREDENTIAL_TUNNEL_FORWARD connect disconnected inside its own connect event: its
 * private forward and the bridge task it owns go while the loop runs that very task. */
START_TEST(disconnect_private_forward_from_its_event)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(&sshd);
    struct inside in = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0 };
    HCLIENT h;
    int fds0 = 0, round;

    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    in.disconnect = 1;
    for (round = 0; round < 3; round++) {
        if (round == 1) {
            usleep(100000);
            fds0 = iwt_count_fds();
        }
        in.events = 0;
        /* FREETHREAD: the event runs on the loop thread, which does not own the handle */
        h = ImapAsyncConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD,
                             &sc, inside_cb, &in);
        event_came(h, &in);
        ck_assert_msg(in.disc_rc == 0, "disconnect inside the event: %d", in.disc_rc);
        ck_assert_int_eq(ImapDisconnect(h), IMAP_ERROR);
        iwt_assert_error(ST_ERROR_INVALID_HANDLE);
    }
    /* the bridges' sockets are closed by the loop after the event: give it a turn */
    usleep(100000);
    ck_assert_int_eq(iwt_count_fds(), fds0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop_owned");
    TCase *tc = tcase_create("loop_owned");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, close_forward_from_connect_event);
    tcase_add_test(tc, close_forward_from_its_own_connection);
    tcase_add_test(tc, disconnect_private_forward_from_its_event);
    suite_add_tcase(s, tc);
    return iwt_run_suite(s);
}
