/* reaper.c: ends child processes that layers hand over (ABI 1.2 child_end) as tasks of
 * the loop thread: a grace period, SIGTERM, SIGKILL, each with a deadline, nobody waiting. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "loop.h"
#include "reaper.h"

/* Without a pidfd nothing signals the exit: the reaper looks this often. */
#define IW_REAP_LOOK_MS 20
#define IW_REAP_KILL_WAIT_MS 2000

enum { R_GRACE, R_TERM, R_KILL };

typedef struct iw_reap {
    iw_task  task;                 /* first: the loop hands us this pointer */
    pid_t    pid;
    int      pidfd, err_fd, stage, reaped;
    unsigned term_ms;
    int64_t  deadline_ms;
} iw_reap;

static void iw_reap_signal(iw_reap *r, int sig)
{
#ifdef SYS_pidfd_send_signal
    /* the pidfd names this very process even if its pid were reused */
    if (r->pidfd >= 0 && syscall(SYS_pidfd_send_signal, r->pidfd, sig, NULL, 0) == 0)
        return;
    if (r->pidfd >= 0 && errno == ESRCH)
        return;
#endif
    kill(r->pid, sig);
}

/* Nonzero once the child is gone (reaped here, or by the application: ECHILD). */
static int iw_reap_try(iw_reap *r)
{
    pid_t got;
    do
        got = waitpid(r->pid, NULL, WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == r->pid || (got < 0 && errno == ECHILD))
        r->reaped = 1;
    return r->reaped;
}

/* Its goodbye on stderr is read and dropped, so it never blocks on a full pipe. */
static void iw_reap_drain(iw_reap *r)
{
    char buf[4096];
    int i;
    for (i = 0; r->err_fd >= 0 && i < 16; i++) {
        ssize_t n = read(r->err_fd, buf, sizeof buf);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        close(r->err_fd);
        r->err_fd = -1;
    }
}

static void iw_reap_pollset(iw_task *t, imapwire_pollset *ps)
{
    iw_reap *r = (iw_reap *)t;
    int64_t at = r->deadline_ms;
    if (r->pidfd >= 0)
        imapwire_pollset_add(ps, r->pidfd, IMAPWIRE_WANT_READ);
    else if (at > iw_now_ms() + IW_REAP_LOOK_MS)
        at = iw_now_ms() + IW_REAP_LOOK_MS;
    if (r->err_fd >= 0)
        imapwire_pollset_add(ps, r->err_fd, IMAPWIRE_WANT_READ);
    imapwire_pollset_wakeup(ps, at);
}

static int iw_reap_step(iw_task *t)
{
    iw_reap *r = (iw_reap *)t;
    int64_t now;
    iw_reap_drain(r);
    if (iw_reap_try(r))
        return 1;
    now = iw_now_ms();
    if (now < r->deadline_ms)
        return 0;
    switch (r->stage) {
    case R_GRACE:
        iw_reap_signal(r, SIGTERM);
        r->stage = R_TERM;
        r->deadline_ms = now + r->term_ms;
        return 0;
    case R_TERM:
        iw_reap_signal(r, SIGKILL);
        r->stage = R_KILL;
        r->deadline_ms = now + IW_REAP_KILL_WAIT_MS;
        return 0;
    default:
        return 1;                  /* did not die even of SIGKILL: nothing more to do */
    }
}

static void iw_reap_release(iw_task *t)
{
    iw_reap *r = (iw_reap *)t;
    /* cancelled (the last ImapUninitialize): no more grace */
    if (!r->reaped && !iw_reap_try(r)) {
        iw_reap_signal(r, SIGKILL);
        iw_reap_try(r);
    }
    if (r->pidfd >= 0)
        close(r->pidfd);
    if (r->err_fd >= 0)
        close(r->err_fd);
    free(r);
}

int iw_child_end(int pid, int pidfd, int err_fd, unsigned grace_ms, unsigned term_ms)
{
    iw_reap *r;
    int rc;
    /* a caller's own thread may wait: it then sees the child gone when it returns */
    if (!iw_loop_is_current())
        return IMAPWIRE_PASS;
    if (pid <= 0)
        return ST_ERROR_INVALID_PARAMETER;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    r->pid = (pid_t)pid;
    r->pidfd = pidfd;
    r->err_fd = err_fd;
    if (err_fd >= 0)
        fcntl(err_fd, F_SETFL, fcntl(err_fd, F_GETFL) | O_NONBLOCK);
    r->stage = R_GRACE;
    r->term_ms = term_ms;
    r->deadline_ms = iw_now_ms() + grace_ms;
    r->task.pollset = iw_reap_pollset;
    r->task.step = iw_reap_step;
    r->task.release = iw_reap_release;
    rc = iw_loop_add(&r->task);
    if (rc != 0) {
        free(r);                   /* the layer keeps the child and ends it itself */
        return rc;
    }
    return 0;
}
