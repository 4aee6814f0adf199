/* async.c: asynchronous connects: the same connect step as ImapConnect, run as a task of
 * the library's one loop thread, so thousands of connects share one thread and one poll. */
/* One atomic state per connect decides, once, whether each event fires, and
 * ImapDisconnect either wins (no event, ever) or waits until the event has returned.
 * After a successful connect the same task watches the idle connection and reports a
 * server that goes away with IMAP_EVENT_DISCONNECT, once. */
#include <pthread.h>
#include <stdlib.h>
#include "client.h"
#include "../runtime/loop.h"

enum { IW_ASYNC_PENDING = 1, IW_ASYNC_FIRING, IW_ASYNC_WATCHING, IW_ASYNC_DONE,
       IW_ASYNC_CANCELLED };

/* A watched handle whose call is running is looked at again this often, rather than
 * polled: its socket is readable with the call's own answers. */
#define IW_WATCH_BUSY_MS 20

struct iw_async {
    iw_task       task;            /* first: the loop hands us this pointer */
    iw_client    *c;               /* while PENDING or WATCHING (the loop's use of it) */
    int           state;           /* atomic: IW_ASYNC_* */
    int           fd;              /* the watched socket, -1 if the chain has none */
    int           busy;            /* loop thread: a call held the client last time */
    size_t        held_seen;       /* loop thread: bytes already read that the last look
                                      left (a partial line): not looked at again until
                                      the amount changes */
    int           detached;        /* loop thread: disconnected inside its own event */
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
    if (__atomic_load_n(&a->state, __ATOMIC_ACQUIRE) == IW_ASYNC_WATCHING) {
        iw_client *c = a->c;
        size_t held;
        /* The chain is the caller's while a call runs: not watched at all then, since
         * the socket carries the call's answers. */
        if (a->busy || pthread_mutex_trylock(&c->io.lock) != 0) {
            imapwire_pollset_wakeup(ps, iw_now_ms() + IW_WATCH_BUSY_MS);
            return;
        }
        /* A call's last read may have taken more than its answer (a BYE behind the
         * tagged OK, a TLS record, an SSH channel's data read by another thread): what
         * is already read is looked at now, once per new amount, so a partial line
         * waits for the socket instead of spinning. */
        held = c->io.broken ? 0 : iw_reader_buffered(&c->io.reader) + iw_layer_pending(c->io.top);
        if (held > 0 && held != a->held_seen)
            imapwire_pollset_wakeup(ps, iw_now_ms());
        else if (!c->io.broken)
            iw_layer_pollset(c->io.top, IMAPWIRE_WANT_READ, ps);
        pthread_mutex_unlock(&c->io.lock);
        return;
    }
    iw_layer_pollset(a->c->io.top, a->want, ps);
    imapwire_pollset_wakeup(ps, a->c->cm.deadline_ms);
}

/* Reads what an idle server sent, with the caller's calls kept out: 0 while the
 * connection is fine, else the error to report (end of stream, reset, untagged BYE). */
static int iw_async_peek(iw_async *a)
{
    iw_client *c = a->c;
    int rc = 0, i, dry = 0;

    if (pthread_mutex_trylock(&c->io.lock) != 0) {
        a->busy = 1;
        return 0;
    }
    a->busy = 0;
    /* a trace callback of what the idle server sent runs under this lock: a call on the
     * handle from it is refused (ST_ERROR_IN_PROGRESS), as in a blocking call */
    __atomic_store_n(&c->io.busy_thread, iw_thread_id(), __ATOMIC_RELEASE);
    if (c->io.broken) {
        pthread_mutex_unlock(&c->io.lock);
        return 0;                  /* a call already met the end and reported it */
    }
    /* bounded: an idle server that floods is read a little each turn */
    for (i = 0; i < 16 && rc == 0; i++) {
        iw_response r;
        unsigned want = IMAPWIRE_WANT_READ;
        int got = iw_read_response(c, &r, &want);
        if (got == IMAPWIRE_AGAIN) {
            dry = 1;
            break;
        }
        if (got != 0)
            rc = got == ST_ERROR_OPERATION_TIMEOUT ? 0 : ST_ERROR_CONNECTION_CLOSED;
        else if (r.kind == IW_RESP_UNTAGGED && r.rest_len >= 3 &&
                 iw_strcaseeq(r.rest, 3, "BYE") && (r.rest_len == 3 || r.rest[3] == ' '))
            rc = ST_ERROR_CONNECTION_CLOSED;
    }
    if (rc != 0) {
        iw_client_break(c, rc);
        iw_client_dropped(c, rc);
    } else {
        /* a flood cut short at 16 lines is looked at again at once; what a dry read left
         * (part of a line) waits for more bytes */
        a->held_seen = dry ? iw_reader_buffered(&c->io.reader) + iw_layer_pending(c->io.top)
                           : 0;
    }
    __atomic_store_n(&c->io.busy_thread, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->io.lock);
    return rc;
}

static int iw_async_watch(iw_async *a)
{
    HCLIENT h = a->c->handle;
    int rc = iw_async_peek(a), expect = IW_ASYNC_WATCHING;
    if (rc == 0)
        return 0;
    if (!__atomic_compare_exchange_n(&a->state, &expect, IW_ASYNC_FIRING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return 1;                  /* disconnected meanwhile: no event */
    a->c = NULL;
    /* once the event is seen the socket may be closed, here or on another thread */
    iw_loop_unwatch(&a->task);
    a->proc(h, IMAP_EVENT_DISCONNECT, (DWORD)rc, a->param);
    __atomic_store_n(&a->state, IW_ASYNC_DONE, __ATOMIC_RELEASE);
    return 1;
}

static int iw_async_step(iw_task *t)
{
    iw_async *a = (iw_async *)t;
    iw_client *c = a->c;
    HCLIENT h;
    int rc, expect = IW_ASYNC_PENDING, state = __atomic_load_n(&a->state, __ATOMIC_ACQUIRE);

    if (state == IW_ASYNC_WATCHING)
        return iw_async_watch(a);
    /* A disconnect that won is waiting for this turn to end (or marked this task dead
     * from a callback): the client is the caller's again. */
    if (state != IW_ASYNC_PENDING)
        return 1;
    h = c->handle;
    a->want = IMAPWIRE_WANT_READ;
    /* Its trace callback runs inside the step: a disconnect from there would free the
     * client under it, so calls on the handle are refused until the event (which may
     * disconnect it: the loop then keeps only a, never c). */
    __atomic_store_n(&c->io.busy_thread, iw_thread_id(), __ATOMIC_RELEASE);
    rc = iw_connect_step(c, NULL, &a->want);
    __atomic_store_n(&c->io.busy_thread, 0, __ATOMIC_RELEASE);
    if (rc == IMAPWIRE_AGAIN) {
        if (iw_now_ms() < c->cm.deadline_ms)
            return 0;
        rc = ST_ERROR_OPERATION_TIMEOUT;
    }
    /* Done, either way: what the connect watched may be closed from here on (below, by
     * the callback, or by another thread the callback told); the arm after a success
     * watches the connection again. */
    iw_loop_unwatch(t);
    if (rc != 0) {
        /* The handle stays valid until the caller disconnects it; it only fails now. */
        iw_connect_fail(c, rc);
        iw_client_close(c, 0);
        iw_client_break(c, rc);
    }
    if (!__atomic_compare_exchange_n(&a->state, &expect, IW_ASYNC_FIRING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return 1;                  /* cancelled meanwhile: no event */
    /* The socket to watch afterwards, found now: the callback may free the client. */
    a->fd = -1;
    if (rc == 0 && iw_layer_query(c->io.top, IMAPWIRE_QUERY_SOCKET, &a->fd) != IMAPWIRE_OK)
        a->fd = -1;
    /* From here on the caller may use (or free) the client, even inside the callback:
     * only a is touched below, and a lives until both of its references are gone. */
    a->proc(h, IMAP_EVENT_CONNECT, (DWORD)rc, a->param);
    if (rc != 0 || a->fd < 0 || a->detached) {
        a->c = NULL;
        __atomic_store_n(&a->state, IW_ASYNC_DONE, __ATOMIC_RELEASE);
        return 1;
    }
    __atomic_store_n(&a->state, IW_ASYNC_WATCHING, __ATOMIC_RELEASE);
    return 0;
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
    c->io.async = a;
    rc = iw_loop_add(&a->task);
    if (rc != 0) {
        c->io.async = NULL;
        free(a);
    }
    return rc;
}

/* Under io.lock, as a call on a watched handle ends: did its reads leave bytes behind
 * (a BYE after the tagged answer)? The socket will not say so again. */
int iw_async_held(const iw_client *c)
{
    return c->io.async != NULL && !c->io.broken &&
           __atomic_load_n(&c->io.async->state, __ATOMIC_ACQUIRE) == IW_ASYNC_WATCHING &&
           iw_reader_buffered(&c->io.reader) + iw_layer_pending(c->io.top) > 0;
}

static void iw_async_look_now(void *arg)
{
    iw_async *a = arg;
    if (__atomic_load_n(&a->state, __ATOMIC_ACQUIRE) == IW_ASYNC_WATCHING)
        iw_loop_ready(&a->task);
}

/* After io.lock is released: the watcher looks at what the call left, in the loop's next
 * turn. The client's reference keeps the watcher alive across the call. */
void iw_async_look(iw_client *c)
{
    if (c->io.async != NULL)
        iw_loop_call(iw_async_look_now, c->io.async);
}

int iw_async_pending(const iw_client *c)
{
    return c->io.async != NULL &&
           __atomic_load_n(&c->io.async->state, __ATOMIC_ACQUIRE) == IW_ASYNC_PENDING;
}

static void iw_async_drop_task(void *arg)
{
    iw_loop_release_task(&((iw_async *)arg)->task);
}

static void iw_async_nothing(void *arg)
{
    (void)arg;
}

int iw_async_detach(iw_client *c)
{
    iw_async *a = c->io.async;
    int was_pending = 0, round;

    if (a == NULL)
        return 0;
    c->io.async = NULL;
    /* Bounded: each pass either settles or waits out one event, and a handle has two. */
    for (round = 0; round < 4; round++) {
        int expect = __atomic_load_n(&a->state, __ATOMIC_ACQUIRE);
        if (expect == IW_ASYNC_PENDING || expect == IW_ASYNC_WATCHING) {
            if (!__atomic_compare_exchange_n(&a->state, &expect, IW_ASYNC_CANCELLED, 0,
                                             __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                continue;
            /* Won: no event will fire. The loop may be stepping the task right now
             * (another thread) or walking past it (a callback here): either way it is
             * dropped where the loop is not using it, before the client is freed. */
            was_pending = expect == IW_ASYNC_PENDING;
            iw_loop_call(iw_async_drop_task, a);
            break;
        }
        if (expect != IW_ASYNC_FIRING)
            break;                 /* DONE or CANCELLED: the loop is done with c */
        if (iw_loop_is_current()) {
            /* Inside this handle's own event: after it returns, the task neither
             * watches nor touches the client. */
            a->detached = 1;
            break;
        }
        /* The event runs on the loop thread: a call runs after that turn, so once it
         * returns the event has returned too; then look again (it may now watch). */
        iw_loop_call(iw_async_nothing, NULL);
    }
    iw_async_unref(a);
    return was_pending;
}
