/* drive.c: the blocking driver: runs a non-blocking step function, polling exactly what
 * the layer chain waits for, until the step finishes or its deadline passes. */
#include <errno.h>
#include <poll.h>
#include "client.h"
#include "../runtime/loop.h"

/* With deadline_ms NULL the deadline slides with every byte received (long transfers),
 * under a ceiling: IW_CONNECT_CEILING timeouts plus one millisecond for every
 * IW_MIN_RATE bytes received, so a real transfer earns its time and a server dripping
 * bytes cannot hold the call forever. Otherwise the step keeps *deadline_ms current
 * (connect phases have their own). */
static int iw_drive_loop(iw_client *c, iw_step_fn step, void *arg, const int64_t *deadline_ms);

/* The caller's callbacks (trace, response, piece, message) run inside the step: the
 * thread is marked for the calls that must not run under them. */
int iw_drive(iw_client *c, iw_step_fn step, void *arg, const int64_t *deadline_ms)
{
    int rc;
    iw_callbacks_enter();
    rc = iw_drive_loop(c, step, arg, deadline_ms);
    iw_callbacks_leave();
    return rc;
}

static int iw_drive_loop(iw_client *c, iw_step_fn step, void *arg, const int64_t *deadline_ms)
{
    int sliding = deadline_ms == NULL;
    uint64_t seen = c->io.rx_bytes, first = c->io.rx_bytes;
    int64_t start = iw_now_ms();
    int64_t deadline = sliding ? start + c->cfg.timeout_ms : *deadline_ms;
    /* Bounded however a broken layer behaves: far more rounds than any real exchange. */
    unsigned long rounds;

    for (rounds = 0; rounds < 100000000ul; rounds++) {
        struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
        imapwire_pollset ps = {0};
        unsigned want = IMAPWIRE_WANT_READ;
        int64_t now, until;
        int rc, n;

        rc = step(c, arg, &want);
        if (rc != IMAPWIRE_AGAIN)
            return rc;
        now = iw_now_ms();
        if (sliding && c->io.rx_bytes != seen) {
            int64_t ceiling = start + (int64_t)c->cfg.timeout_ms * IW_CONNECT_CEILING +
                              (int64_t)((c->io.rx_bytes - first) / IW_MIN_RATE);
            seen = c->io.rx_bytes;
            deadline = now + c->cfg.timeout_ms;
            if (deadline > ceiling)
                deadline = ceiling;
        }
        if (!sliding)
            deadline = *deadline_ms;
        if (now >= deadline)
            return ST_ERROR_OPERATION_TIMEOUT;
        iw_layer_pollset(c->io.top, want, &ps);
        until = deadline;
        if (ps.wakeup_ms != 0 && ps.wakeup_ms < until)
            until = ps.wakeup_ms;
        n = poll(pfd, iw_pollset_to_pollfd(&ps, pfd), until > now ? (int)(until - now) : 0);
        if (n < 0 && errno != EINTR)
            return ST_ERROR_NETWORK_ERROR;
        if (n == 0 && iw_now_ms() >= deadline)
            return ST_ERROR_OPERATION_TIMEOUT;
    }
    return ST_ERROR_OPERATION_TIMEOUT;
}

static int iw_cmd_step_fn(iw_client *c, void *arg, unsigned *want)
{
    return iw_cmd_step(c, arg, want);
}

/* A whole command exchange after connect: sliding deadline, one timeout per silence. */
int iw_run_command(iw_client *c, iw_cmd *cmd)
{
    int rc;
    if (c->io.broken)
        return ST_ERROR_CONNECTION_CLOSED;
    rc = iw_drive(c, iw_cmd_step_fn, cmd, NULL);
    return rc != 0 ? iw_client_break(c, rc) : 0;
}
