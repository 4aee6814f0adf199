/* async.c: asynchronous connects: the same connect step as ImapConnect, run as a task of
 * the library's one loop thread, so thousands of connects share one thread and one poll. */
#include <stdlib.h>
#include "client.h"
#include "../runtime/loop.h"

typedef struct iw_async {
    iw_task       task;
    iw_client    *c;
    unsigned      want;
    IMAPEVENTPROC proc;
    void         *param;
} iw_async;

static void iw_async_pollset(iw_task *t, imapwire_pollset *ps)
{
    iw_async *a = (iw_async *)t;
    iw_layer_pollset(a->c->top, a->want, ps);
    imapwire_pollset_wakeup(ps, a->c->cm.deadline_ms);
}

static int iw_async_step(iw_task *t)
{
    iw_async *a = (iw_async *)t;
    iw_client *c = a->c;
    HCLIENT h = c->handle;
    int rc;

    a->want = IMAPWIRE_WANT_READ;
    rc = iw_connect_step(c, NULL, &a->want);
    if (rc == IMAPWIRE_AGAIN) {
        if (iw_now_ms() < c->cm.deadline_ms)
            return 0;
        rc = ST_ERROR_OPERATION_TIMEOUT;
    }
    if (rc != 0) {
        /* The handle stays valid until the caller disconnects it; it only fails now. */
        iw_client_close(c, 0);
        c->broken = 1;
    }
    c->async_error = rc;
    /* From here on the caller may use (or free) the client, even inside the callback:
     * nothing below touches it. */
    __atomic_store_n(&c->async_pending, 0, __ATOMIC_RELEASE);
    a->proc(h, IMAP_EVENT_CONNECT, (DWORD)rc, a->param);
    return 1;
}

static void iw_async_release(iw_task *t)
{
    free(t);
}

int iw_async_start(iw_client *c, IMAPEVENTPROC proc, void *param)
{
    iw_async *a = calloc(1, sizeof *a);
    int rc;
    if (a == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    a->c = c;
    a->proc = proc;
    a->param = param;
    a->want = IMAPWIRE_WANT_READ;
    a->task.pollset = iw_async_pollset;
    a->task.step = iw_async_step;
    a->task.release = iw_async_release;
    a->task.owner = c;
    c->async_pending = 1;
    rc = iw_loop_add(&a->task);
    if (rc != 0) {
        c->async_pending = 0;
        free(a);
    }
    return rc;
}

static void iw_async_cancel_on_loop(void *arg)
{
    iw_loop_release_owned(arg);
}

void iw_async_cancel(iw_client *c)
{
    /* On the loop thread, between steps: afterwards no task refers to c, whether it had
     * finished (its event delivered) or not (then no event ever comes). */
    if (__atomic_load_n(&c->async_pending, __ATOMIC_ACQUIRE))
        iw_loop_call(iw_async_cancel_on_loop, c);
}
