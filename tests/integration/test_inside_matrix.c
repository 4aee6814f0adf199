/* test_inside_matrix.c: every public call on a handle or forward, made from inside every
 * callback kind of every object kind, generated from tables; one forked cell each. */
/* Each cell either works or fails with the error its row documents (docs/architecture.md,
 * "Calls from inside callbacks"); Check's fork and per-test timeout bound it in time, the
 * descriptor count and ASan's leak check (in the sanitizer build) bound what it leaves. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "iwtest.h"

static iwt_sshd sshd;
static iwt_dovecot dv;

/* ---- the tables ---- */

enum mode { M_BLOCKING, M_ASYNC, M_OWN, M_NMODES };
enum carrier { C_DIRECT, C_FORWARD, C_PRIVATE, C_NCARRIERS };
enum cb { CB_EVENT, CB_TRACE_CONNECT, CB_TRACE_COMMAND, CB_RESPONSE, CB_PIECE, CB_MESSAGE,
          CB_NKINDS };
enum call { K_CONNECT, K_DISCONNECT, K_CLOSE_FORWARD, K_COMMAND, K_LOGIN, K_GET_MESSAGE,
            K_SECURITY_INFO, K_UNINITIALIZE, K_NCALLS };

static const char *const mode_name[M_NMODES] = { "blocking", "async", "own-loop" };
static const char *const carrier_name[C_NCARRIERS] = { "direct", "forward", "private-forward" };
static const char *const cb_name[CB_NKINDS] = { "event", "trace(connect)", "trace(command)",
                                                "response", "piece", "message" };
static const char *const call_name[K_NCALLS] = {
    "ImapConnect", "ImapDisconnect", "ImapClosePortForward", "ImapCommand", "ImapLogin",
    "ImapGetMessage", "ImapGetSecurityInformation", "ImapUninitialize" };

/* Which object kinds exist: the caller's own loop cannot take a private forward (its
 * bridge runs on the library's loop; ST_ERROR_FEATURE_NOT_AVAILABLE). */
static int object_exists(int m, int c)
{
    return !(m == M_OWN && c == C_PRIVATE);
}

/* Which callbacks an object has: events only with an event procedure. */
static int cb_exists(int m, int cb)
{
    return cb != CB_EVENT || m == M_ASYNC;
}

/* The documented answer of a cell: 0 (works) or the ST_ERROR_* it fails with. The rules,
 * in the order they apply:
 * - ImapUninitialize (the last one) inside any callback: ST_ERROR_IN_PROGRESS;
 * - a forward has no owner and no running call: ImapClosePortForward always works;
 * - on the loop thread (an event; an async connect's trace), a call that waits for the
 *   server (connect, command, login, fetch) is refused: ST_ERROR_IN_PROGRESS;
 * - from the event, ImapDisconnect and ImapGetSecurityInformation work: the handle is the
 *   caller's once its event fires;
 * - ImapConnect elsewhere works (a new handle);
 * - a call on the handle from inside its own running call or connect step (trace,
 *   response, piece, message): ST_ERROR_IN_PROGRESS, except ImapDisconnect from the trace
 *   of a step of the caller's own loop, which works (the step frees the handle when it
 *   returns). */
static DWORD expected(int m, int cb, int k)
{
    int on_loop = cb == CB_EVENT || (m == M_ASYNC && cb == CB_TRACE_CONNECT);
    int waits = k == K_CONNECT || k == K_COMMAND || k == K_LOGIN || k == K_GET_MESSAGE;
    if (k == K_UNINITIALIZE)
        return ST_ERROR_IN_PROGRESS;
    if (k == K_CLOSE_FORWARD)
        return 0;
    if (on_loop && waits)
        return ST_ERROR_IN_PROGRESS;
    if (cb == CB_EVENT || k == K_CONNECT)
        return 0;
    if (m == M_OWN && cb == CB_TRACE_CONNECT && k == K_DISCONNECT)
        return 0;
    return ST_ERROR_IN_PROGRESS;
}

typedef struct cell { int m, c, cb, k; } cell;
static cell cells[M_NMODES * C_NCARRIERS * CB_NKINDS * K_NCALLS];
static int ncells;

static void cells_generate(void)
{
    int m, c, cb, k;
    for (m = 0; m < M_NMODES; m++)
        for (c = 0; c < C_NCARRIERS; c++)
            for (cb = 0; cb < CB_NKINDS; cb++)
                for (k = 0; k < K_NCALLS; k++)
                    if (object_exists(m, c) && cb_exists(m, cb))
                        cells[ncells++] = (cell){ m, c, cb, k };
}

/* ---- one cell's run ---- */

struct run {
    pthread_mutex_t lock;
    const cell *cl;
    int             armed;         /* the callback kind that acts, once; -1: none */
    int             acted;
    HCLIENT         self;
    HFORWARD        fw;            /* the target of ImapClosePortForward */
    HCLIENT         made;          /* ImapConnect's new handle, closed by the test */
    int             ok;
    DWORD           error;
    int             events;
    int             self_gone;     /* disconnected or uninitialised from inside */
};

static struct run R;

/* The call of the cell, from inside a callback of kind cb on handle h. */
static void act(int cb, HCLIENT h)
{
    int ok = 0;
    char buf[4096];
    DWORD len = sizeof buf;
    SECURITYINFO si;

    pthread_mutex_lock(&R.lock);
    if (R.armed != cb || R.acted) {
        pthread_mutex_unlock(&R.lock);
        return;
    }
    R.acted = 1;                   /* before the call: a trace inside it must not act */
    pthread_mutex_unlock(&R.lock);
    switch (R.cl->k) {
    case K_CONNECT:
        R.made = ImapConnect(dv.host, dv.port, 5, IMAP_OPTION_NONE, NULL);
        ok = R.made != INVALID_CLIENT;
        break;
    case K_DISCONNECT:
        ok = ImapDisconnect(h) == 0;
        R.self_gone = ok;
        break;
    case K_CLOSE_FORWARD:
        ok = ImapClosePortForward(R.fw) != FALSE;
        if (ok)
            R.fw = INVALID_FORWARD;
        break;
    case K_COMMAND:
        ok = ImapCommand(h, "NOOP", NULL, 0) == 0;
        break;
    case K_LOGIN:
        ok = ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass) == 0;
        break;
    case K_GET_MESSAGE:
        ok = ImapGetMessage(h, 1, 0, buf, &len, 0) == 0;
        break;
    case K_SECURITY_INFO:
        memset(&si, 0, sizeof si);
        si.dwSize = sizeof si;
        ok = ImapGetSecurityInformation(h, &si) == 0;
        break;
    case K_UNINITIALIZE:
        ok = ImapUninitialize() != FALSE;
        R.self_gone = ok;
        break;
    }
    R.ok = ok;
    R.error = ok ? 0 : ImapGetLastError();
}

static void on_trace(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID p)
{
    (void)dir;
    (void)line;
    (void)n;
    (void)p;
    act(R.armed == CB_TRACE_CONNECT ? CB_TRACE_CONNECT : CB_TRACE_COMMAND, h);
}

static void on_event(HCLIENT h, UINT id, DWORD err, LPVOID p)
{
    (void)p;
    if (id != IMAP_EVENT_CONNECT)
        return;
    if (err == 0)
        act(CB_EVENT, h);
    pthread_mutex_lock(&R.lock);
    R.events++;
    R.error = R.acted ? R.error : err;
    pthread_mutex_unlock(&R.lock);
}

static void on_response(HCLIENT h, LPCTSTR data, DWORD n, LPVOID p)
{
    (void)data;
    (void)n;
    (void)p;
    act(CB_RESPONSE, h);
}

static void on_piece(HCLIENT h, const IMAPRESPONSEPIECE *piece, LPVOID p)
{
    (void)piece;
    (void)p;
    act(CB_PIECE, h);
}

static void on_message(HCLIENT h, const VOID *data, DWORD n, LPVOID p)
{
    (void)data;
    (void)n;
    (void)p;
    act(CB_MESSAGE, h);
}

/* Runs a connect of the caller's own loop to its end (bounded). */
static int own_drive(HCLIENT h)
{
    long long until = iwt_now_ms() + 15000;
    int rc = IMAP_CONNECT_PENDING;
    while (rc == IMAP_CONNECT_PENDING && iwt_now_ms() < until) {
        IMAPSOCKET s[IMAP_CONNECT_SOCKETS_MAX];
        struct pollfd pfd[IMAP_CONNECT_SOCKETS_MAX];
        int n, tmo = 0, i, r;
        n = ImapConnectSockets(h, s, IMAP_CONNECT_SOCKETS_MAX, &tmo);
        if (n < 0)
            return IMAP_ERROR;
        for (i = 0; i < n; i++) {
            pfd[i].fd = s[i].nSocket;
            pfd[i].events = (short)(((s[i].dwEvents & IMAP_SOCKET_READ) ? POLLIN : 0) |
                                    ((s[i].dwEvents & IMAP_SOCKET_WRITE) ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        r = poll(pfd, (nfds_t)n, tmo > 1000 ? 1000 : tmo);
        if (r < 0 && errno != EINTR)
            return IMAP_ERROR;
        for (i = 0; r > 0 && i < n && pfd[i].revents == 0; i++)
            ;
        rc = r > 0 && i < n ? ImapConnectAction(h, pfd[i].fd, IMAP_SOCKET_READ | IMAP_SOCKET_WRITE)
                            : ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0);
    }
    return rc;
}

static int events_seen(void)
{
    int n;
    pthread_mutex_lock(&R.lock);
    n = R.events;
    pthread_mutex_unlock(&R.lock);
    return n;
}

/* Connects the cell's object: 0, or the connect failed (the cell's call may have ended it). */
static HCLIENT cell_connect(const cell *cl, SECURITYCREDENTIALS *sc, UINT port)
{
    IMAPCONNECTINFO in;
    HCLIENT h;
    long long until;

    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = dv.host;
    in.nRemotePort = cl->c == C_FORWARD ? port : dv.port;
    in.nTimeout = 5;
    in.dwOptions = cl->c == C_DIRECT ? 0 : IMAP_OPTION_TUNNEL;
    in.lpCredentials = cl->c == C_PRIVATE ? sc : NULL;
    in.lpTraceProc = on_trace;
    if (cl->m == M_ASYNC) {
        /* the event runs on the loop thread: without FREETHREAD every call on the handle
         * from it is ST_ERROR_NOT_HANDLE_OWNER, before any of the rules */
        in.dwOptions |= IMAP_OPTION_FREETHREAD;
        in.lpEventProc = on_event;
    }
    if (cl->m == M_OWN) {
        h = ImapConnectStart(&in);
        ck_assert_msg(h != INVALID_CLIENT, "start: %u", (unsigned)ImapGetLastError());
        R.self = h;
        own_drive(h);
        return h;
    }
    h = ImapConnectEx(&in);
    R.self = h;
    if (cl->m == M_ASYNC) {
        ck_assert_msg(h != INVALID_CLIENT, "async: %u", (unsigned)ImapGetLastError());
        for (until = iwt_now_ms() + 15000; events_seen() == 0 && iwt_now_ms() < until;)
            usleep(2000);
        ck_assert_msg(events_seen() == 1, "no connect event");
    }
    return h;
}

START_TEST(inside_cell)
{
    const cell *cl = &cells[_i];
    SECURITYCREDENTIALS sc;
    UINT port = 0;
    HCLIENT h;
    HFORWARD carrier = INVALID_FORWARD;
    DWORD want = expected(cl->m, cl->cb, cl->k);
    int fds0, rc;
    char name[160];

    iwt_sshd_load(&sshd, getenv("IW_SSHD_ENV"));
    iwt_dovecot_load(&dv);
    unsetenv("SSH_AUTH_SOCK");
    sc = iwt_tunnel_creds(&sshd);
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    snprintf(name, sizeof name, "%s/%s, %s, %s", mode_name[cl->m], carrier_name[cl->c],
             cb_name[cl->cb], call_name[cl->k]);
    fds0 = iwt_count_fds();
    ck_assert(ImapInitialize(NULL, NULL));
    memset(&R, 0, sizeof R);
    pthread_mutex_init(&R.lock, NULL);
    R.cl = cl;
    R.armed = -1;
    if (cl->c == C_FORWARD) {
        SECURITYCREDENTIALS fsc = iwt_tunnel_creds(&sshd);
        carrier = ImapCreatePortForward(&fsc, dv.host, dv.port, 0, &port);
        ck_assert_msg(carrier != INVALID_FORWARD, "forward: %u", (unsigned)ImapGetLastError());
        R.fw = carrier;
    } else if (cl->k == K_CLOSE_FORWARD) {
        SECURITYCREDENTIALS fsc = iwt_tunnel_creds(&sshd);
        R.fw = ImapCreatePortForward(&fsc, dv.host, dv.port, 0, &port);
        ck_assert(R.fw != INVALID_FORWARD);
    }

    if (cl->cb == CB_EVENT || cl->cb == CB_TRACE_CONNECT)
        R.armed = cl->cb;
    h = cell_connect(cl, &sc, port);
    if (cl->cb != CB_EVENT && cl->cb != CB_TRACE_CONNECT) {
        char res[256];
        DWORD len = 0;
        ck_assert_msg(h != INVALID_CLIENT, "%s: connect %u", name, (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
        ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", NULL), 0);
        R.armed = cl->cb;
        switch (cl->cb) {
        case CB_TRACE_COMMAND:
            rc = ImapCommand(h, "NOOP", res, sizeof res);
            break;
        case CB_RESPONSE:
            rc = ImapCommandEx(h, "CAPABILITY", on_response, NULL, res, sizeof res);
            break;
        case CB_PIECE:
            rc = ImapCommandStream(h, "CAPABILITY", on_piece, NULL, res, sizeof res);
            break;
        default:
            rc = ImapGetMessageStream(h, 1, 0, on_message, NULL, &len);
            break;
        }
        /* the outer call ends normally (a forward closed under it may end the stream) */
        ck_assert_msg(rc == 0 || (cl->k == K_CLOSE_FORWARD && cl->c == C_FORWARD),
                      "%s: outer call %u", name, (unsigned)ImapGetLastError());
    }
    ck_assert_msg(R.acted, "%s: the callback never came", name);
    printf("cell %-62s %s\n", name, R.ok ? "works" : "refused");
    if (!R.ok) {
        char text[128];
        ImapGetErrorString(R.error, text, sizeof text);
        printf("     -> %u (%s)\n", (unsigned)R.error, text);
    }
    ck_assert_msg(R.ok ? want == 0 : want == R.error, "%s: answered %s %u, documented %u", name,
                  R.ok ? "works" : "error", (unsigned)R.error, (unsigned)want);

    /* the object still behaves: the handle is usable or gone, never half-freed */
    if (!R.self_gone && h != INVALID_CLIENT && cl->k != K_CLOSE_FORWARD)
        ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0) == 0 || ImapGetLastError() != 0, 1);
    if (R.made != INVALID_CLIENT)
        ck_assert_int_eq(ImapDisconnect(R.made), 0);
    if (!R.self_gone && h != INVALID_CLIENT)
        ImapDisconnect(h);
    if (R.fw != INVALID_FORWARD)
        ck_assert(ImapClosePortForward(R.fw));
    ck_assert(ImapUninitialize());
    ck_assert_msg(iwt_count_fds() == fds0, "%s: %d descriptors left", name, iwt_count_fds() - fds0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inside_matrix");
    TCase *tc = tcase_create("inside_matrix");
    SRunner *sr;
    int failed;

    cells_generate();
    printf("%d cells\n", ncells);
    /* per cell: a connect (SSH for the forwards), a login, one call; a deadlock fails it */
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, inside_cell, 0, ncells);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
