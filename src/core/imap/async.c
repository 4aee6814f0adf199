/* async.c: asynchronous connects: the same connect step as ImapConnect, run as a task of
 * the library's one loop thread, so thousands of connects share one thread and one poll. */
/* One atomic state per connect decides, once, whether its event fires, and
 * ImapDisconnect either wins (no event, ever) or waits until the event has returned. */
#include <stdlib.h>
#include "client.h"
#include "../runtime/loop.h"

enum { IW_ASYNC_PENDING = 1, IW_ASYNC_FIRING, IW_ASYNC_DONE, IW_ASYNC_CANCELLED };

struct iw_async {
    iw_task       task;            /* first: the loop hands us this pointer */
    iw_client    *c;               /* only while PENDING (the loop's use of the client) */
    int           state;           /* atomic: IW_ASYNC_* */
    int           refs;            /* atomic: the loop's task and the client each hold one */
    unsigned      want;
    IMAPEVENTPROC proc;
    void         *param;
};

static void iw_async_unref(iw_async *a)
{
    if (__atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(a);
}

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
    int rc, expect = IW_ASYNC_PENDING;

    /* A disconnect that won is waiting for this turn to end (or marked this task dead
     * from a callback): the client is the caller's again. */
    if (__atomic_load_n(&a->state, __ATOMIC_ACQUIRE) != IW_ASYNC_PENDING)
        return 1;
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
    if (!__atomic_compare_exchange_n(&a->state, &expect, IW_ASYNC_FIRING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return 1;                  /* cancelled meanwhile: no event */
    /* From here on the caller may use (or free) the client, even inside the callback:
     * only a is touched below, and a lives until both of its references are gone. */
    a->c = NULL;
    a->proc(h, IMAP_EVENT_CONNECT, (DWORD)rc, a->param);
    __atomic_store_n(&a->state, IW_ASYNC_DONE, __ATOMIC_RELEASE);
    return 1;
}

static void iw_async_release(iw_task *t)
{
    iw_async_unref((iw_async *)t);
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
    a->state = IW_ASYNC_PENDING;
    a->refs = 2;
    a->task.pollset = iw_async_pollset;
    a->task.step = iw_async_step;
    a->task.release = iw_async_release;
    a->task.owner = a;
    c->async = a;
    rc = iw_loop_add(&a->task);
    if (rc != 0) {
        c->async = NULL;
        free(a);
    }
    return rc;
}

int iw_async_pending(const iw_client *c)
{
    return c->async != NULL &&
           __atomic_load_n(&c->async->state, __ATOMIC_ACQUIRE) == IW_ASYNC_PENDING;
}

static void iw_async_drop_task(void *arg)
{
    iw_loop_release_owned(arg);
}

static void iw_async_nothing(void *arg)
{
    (void)arg;
}

int iw_async_detach(iw_client *c)
{
    iw_async *a = c->async;
    int expect = IW_ASYNC_PENDING, was_pending;

    if (a == NULL)
        return 0;
    c->async = NULL;
    was_pending = __atomic_compare_exchange_n(&a->state, &expect, IW_ASYNC_CANCELLED, 0,
                                              __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (was_pending) {
        /* Won: no event will fire. The loop may be stepping the task right now (another
         * thread) or walking past it (a callback here): either way it is dropped where
         * the loop is not using it, before the caller frees the client. */
        iw_loop_call(iw_async_drop_task, a);
    } else if (expect == IW_ASYNC_FIRING && !iw_loop_is_current()) {
        /* Lost while the event runs on the loop thread: a call runs after that turn,
         * so once it returns the event has returned too. From inside the event itself
         * there is nothing to wait for. */
        iw_loop_call(iw_async_nothing, NULL);
    }
    iw_async_unref(a);
    return was_pending;
}
