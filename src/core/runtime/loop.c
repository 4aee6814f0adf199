/* loop.c: the event-loop thread shared by asynchronous connects, forwards and reapers:
 * epoll with a ready list and a timer heap, so a wake-up costs O(ready), not O(tasks). */
/* A task says what it waits for through its poll set after every step; only then are its
 * registrations and its timer brought up to date. Between steps nothing about an idle
 * task is touched: 100,000 idle connections cost the kernel's interest list, not turns. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "loop.h"

/* The task states are checked where they change, as libuv asserts a handle's in
 * uv__finish_close: a task linked twice, released twice or stepped after its release is
 * a bug of the library, stopped at once in debug and sanitizer builds (where the tests
 * run) and compiled out of release builds. */
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IW_TASK_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#else
#define IW_TASK_CHECK(cond) do { } while (0)
#endif

#define IW_LOOP_EVENTS     256     /* epoll events taken per wait */
#define IW_LOOP_ROUNDS     8       /* ready-list rounds per turn before waiting again */
#define IW_LOOP_IDLE_MS    1000    /* a task that waits for nothing is looked at this often */

static pthread_mutex_t iw_loop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t iw_loop_cond = PTHREAD_COND_INITIALIZER;
static pthread_t iw_loop_thread;
static int iw_loop_running;
static int iw_loop_stop;
static int iw_loop_wake_fd = -1;
static iw_task *iw_incoming;        /* added by other threads, under the lock */
static _Thread_local int iw_on_loop;  /* set on the loop thread only */
static _Thread_local int iw_in_steps; /* steps that may call back, running on this thread */

/* Loop thread only from here on. */
static int iw_epfd = -1;
static iw_task *iw_tasks;           /* every task, doubly linked */
static iw_task *iw_local;           /* added on the loop thread itself, no lock: a step,
                                       a release or a call may add (child reaping) */
static iw_task *iw_ready_head, *iw_ready_tail;
static int iw_stepping;             /* inside the ready walk: releases only mark */
static unsigned long iw_ntasks;

/* Tasks waiting on a descriptor. Usually one; channels of one SSH session share its
 * socket, so a few more are possible. */
typedef struct iw_sub {
    iw_task *t;
    unsigned want;
} iw_sub;

typedef struct iw_fdent {
    iw_sub   one;
    iw_sub  *more;
    unsigned nmore, capmore;
    unsigned kernel;               /* EPOLL* events registered for the fd, 0: none */
} iw_fdent;

static iw_fdent *iw_fds;
static size_t iw_fds_cap;

/* The timer heap: tasks by wake_ms, earliest first. */
static iw_task **iw_heap;
static size_t iw_heap_len, iw_heap_cap;

/* What the loop's cost looks like from outside (ImapGetLoopStatistics); written by the
 * loop thread, read by any, so atomics. */
static unsigned long iw_stat_turns, iw_stat_tasks, iw_stat_longest_us;

struct iw_loop_call_req {
    void (*fn)(void *arg);
    void *arg;
    int   done;
    struct iw_loop_call_req *next;
};
static struct iw_loop_call_req *iw_calls;

static void iw_stat_step(int64_t t0_us)
{
    unsigned long d = (unsigned long)(iw_now_us() - t0_us);
    if (d > __atomic_load_n(&iw_stat_longest_us, __ATOMIC_RELAXED))
        __atomic_store_n(&iw_stat_longest_us, d, __ATOMIC_RELAXED);
}

void iw_loop_stats(unsigned long *tasks, unsigned long *turns, unsigned long *longest_us,
                   int reset)
{
    *tasks = __atomic_load_n(&iw_stat_tasks, __ATOMIC_RELAXED);
    *turns = __atomic_load_n(&iw_stat_turns, __ATOMIC_RELAXED);
    *longest_us = reset ? __atomic_exchange_n(&iw_stat_longest_us, 0, __ATOMIC_RELAXED)
                        : __atomic_load_n(&iw_stat_longest_us, __ATOMIC_RELAXED);
}

static void iw_loop_wake(void)
{
    uint64_t one = 1;
    if (write(iw_loop_wake_fd, &one, sizeof one) < 0) {
        /* the counter is already non-zero: the loop will wake anyway */
    }
}

/* ---- the ready list ---- */

static void iw_ready_push(iw_task *t)
{
    if (t->ready)
        return;
    t->ready = 1;
    t->ready_next = NULL;
    if (iw_ready_tail != NULL)
        iw_ready_tail->ready_next = t;
    else
        iw_ready_head = t;
    iw_ready_tail = t;
}

/* Steps t in the loop's next turn (loop thread only: inside an iw_loop_call function or
 * a step): for a task whose readiness another thread used up, such as a call that read
 * the socket a watched handle waits on, so epoll will not report it. */
void iw_loop_ready(iw_task *t)
{
    if (t->linked && !t->closed)
        iw_ready_push(t);
}

/* ---- the timer heap ---- */

static void iw_heap_set(size_t i, iw_task *t)
{
    iw_heap[i] = t;
    t->heap_at = (long)i;
}

static void iw_heap_up(size_t i)
{
    iw_task *t = iw_heap[i];
    while (i > 0 && iw_heap[(i - 1) / 2]->wake_ms > t->wake_ms) {
        iw_heap_set(i, iw_heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    iw_heap_set(i, t);
}

static void iw_heap_down(size_t i)
{
    iw_task *t = iw_heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= iw_heap_len)
            break;
        if (c + 1 < iw_heap_len && iw_heap[c + 1]->wake_ms < iw_heap[c]->wake_ms)
            c++;
        if (iw_heap[c]->wake_ms >= t->wake_ms)
            break;
        iw_heap_set(i, iw_heap[c]);
        i = c;
    }
    iw_heap_set(i, t);
}

static void iw_heap_remove(iw_task *t)
{
    size_t i;
    iw_task *last;
    if (t->heap_at < 0)
        return;
    i = (size_t)t->heap_at;
    t->heap_at = -1;
    last = iw_heap[--iw_heap_len];
    if (i == iw_heap_len)
        return;
    iw_heap_set(i, last);
    iw_heap_up(i);
    iw_heap_down((size_t)last->heap_at);
}

/* 0, or -1 without memory (the task is then looked at again by the idle bound). */
static int iw_heap_put(iw_task *t, int64_t at)
{
    if (t->heap_at >= 0) {
        int64_t old = t->wake_ms;
        t->wake_ms = at;
        if (at < old)
            iw_heap_up((size_t)t->heap_at);
        else
            iw_heap_down((size_t)t->heap_at);
        return 0;
    }
    if (iw_heap_len == iw_heap_cap) {
        size_t cap = iw_heap_cap ? 2 * iw_heap_cap : 256;
        iw_task **n = realloc(iw_heap, cap * sizeof *n);
        if (n == NULL)
            return -1;
        iw_heap = n;
        iw_heap_cap = cap;
    }
    t->wake_ms = at;
    iw_heap_set(iw_heap_len++, t);
    iw_heap_up((size_t)t->heap_at);
    return 0;
}

/* ---- descriptors ---- */

static unsigned iw_epoll_events(unsigned want)
{
    return ((want & IMAPWIRE_WANT_READ) ? (unsigned)EPOLLIN : 0u) |
           ((want & IMAPWIRE_WANT_WRITE) ? (unsigned)EPOLLOUT : 0u);
}

/* Registers what the fd's tasks want now. force: the fd may be a new file behind an old
 * number (closed and reused since it was registered), so the kernel is told again. */
static void iw_fd_sync(int fd, int force)
{
    iw_fdent *e = &iw_fds[fd];
    struct epoll_event ev;
    unsigned want = 0, i;
    if (e->one.t != NULL)
        want |= e->one.want;
    for (i = 0; i < e->nmore; i++)
        want |= e->more[i].want;
    memset(&ev, 0, sizeof ev);
    ev.events = iw_epoll_events(want);
    ev.data.fd = fd;
    if (e->one.t == NULL) {
        if (e->kernel != 0)
            epoll_ctl(iw_epfd, EPOLL_CTL_DEL, fd, &ev);
        e->kernel = 0;
        return;
    }
    if (!force && e->kernel == ev.events && e->kernel != 0)
        return;
    if (epoll_ctl(iw_epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        epoll_ctl(iw_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* a descriptor epoll cannot watch (closed already): its task finds out on the
         * step its wake-up brings */
        e->kernel = 0;
        return;
    }
    e->kernel = ev.events ? ev.events : 1u;
}

static int iw_fd_grow(int fd)
{
    size_t cap;
    iw_fdent *n;
    if ((size_t)fd < iw_fds_cap)
        return 0;
    cap = iw_fds_cap ? iw_fds_cap : 256;
    while (cap <= (size_t)fd)
        cap *= 2;
    n = realloc(iw_fds, cap * sizeof *n);
    if (n == NULL)
        return -1;
    memset(n + iw_fds_cap, 0, (cap - iw_fds_cap) * sizeof *n);
    iw_fds = n;
    iw_fds_cap = cap;
    return 0;
}

static int iw_fd_sub(int fd, iw_task *t, unsigned want)
{
    iw_fdent *e;
    if (fd < 0 || iw_fd_grow(fd) != 0)
        return -1;
    e = &iw_fds[fd];
    if (e->one.t == NULL) {
        e->one.t = t;
        e->one.want = want;
    } else {
        if (e->nmore == e->capmore) {
            unsigned cap = e->capmore ? 2 * e->capmore : 2;
            iw_sub *n = realloc(e->more, cap * sizeof *n);
            if (n == NULL)
                return -1;
            e->more = n;
            e->capmore = cap;
        }
        e->more[e->nmore].t = t;
        e->more[e->nmore].want = want;
        e->nmore++;
    }
    return 0;
}

static void iw_fd_unsub(int fd, iw_task *t)
{
    iw_fdent *e;
    unsigned i;
    if (fd < 0 || (size_t)fd >= iw_fds_cap)
        return;
    e = &iw_fds[fd];
    if (e->one.t == t) {
        if (e->nmore > 0)
            e->one = e->more[--e->nmore];
        else
            e->one.t = NULL;
    } else {
        for (i = 0; i < e->nmore; i++) {
            if (e->more[i].t == t) {
                e->more[i] = e->more[--e->nmore];
                break;
            }
        }
    }
    if (e->one.t == NULL && e->capmore > 0) {
        free(e->more);
        e->more = NULL;
        e->capmore = 0;
    }
}

/* Drops every registration and timer of t. */
static void iw_task_forget(iw_task *t)
{
    unsigned i;
    for (i = 0; i < t->nreg; i++) {
        iw_fd_unsub(t->reg_fd[i], t);
        iw_fd_sync(t->reg_fd[i], 0);
    }
    t->nreg = 0;
    iw_heap_remove(t);
}

/* After a step: what t waits for now, registered; the kernel is told again about every
 * descriptor t names (a step may have closed one and got the same number back). */
static void iw_task_arm(iw_task *t)
{
    imapwire_pollset ps;
    unsigned i;
    int64_t at;

    memset(&ps, 0, sizeof ps);
    t->pollset(t, &ps);
    for (i = 0; i < t->nreg; i++)
        iw_fd_unsub(t->reg_fd[i], t);
    /* old descriptors no longer named are synced below, after the new ones are in */
    {
        int old_fd[IMAPWIRE_POLLSET_MAX];
        unsigned nold = t->nreg, j;
        memcpy(old_fd, t->reg_fd, sizeof old_fd);
        t->nreg = 0;
        for (i = 0; i < ps.count && i < IMAPWIRE_POLLSET_MAX; i++) {
            if (ps.fds[i].fd < 0 || ps.fds[i].want == 0)
                continue;
            if (iw_fd_sub(ps.fds[i].fd, t, ps.fds[i].want) != 0) {
                /* no memory to watch it: look again soon instead */
                imapwire_pollset_wakeup(&ps, iw_now_ms() + 10);
                continue;
            }
            t->reg_fd[t->nreg] = ps.fds[i].fd;
            t->reg_want[t->nreg] = ps.fds[i].want;
            t->nreg++;
            iw_fd_sync(ps.fds[i].fd, 1);
        }
        for (j = 0; j < nold; j++) {
            int still = 0;
            for (i = 0; i < t->nreg; i++)
                still |= t->reg_fd[i] == old_fd[j];
            if (!still)
                iw_fd_sync(old_fd[j], 0);
        }
    }
    at = ps.wakeup_ms;
    /* waiting for nothing at all would be waiting forever: bound it */
    if (at == 0 && t->nreg == 0)
        at = iw_now_ms() + IW_LOOP_IDLE_MS;
    if (at == 0)
        iw_heap_remove(t);
    else if (iw_heap_put(t, at) != 0)
        iw_ready_push(t);          /* no memory for the timer: step it again soon */
}

/* ---- the task list ---- */

static void iw_task_link(iw_task *t)
{
    IW_TASK_CHECK(!t->linked && !t->closed);
    t->prev = NULL;
    t->next = iw_tasks;
    if (iw_tasks != NULL)
        iw_tasks->prev = t;
    iw_tasks = t;
    t->heap_at = -1;
    t->nreg = 0;
    t->ready = 0;
    t->linked = 1;
    iw_ntasks++;
    iw_ready_push(t);              /* its first step at once */
}

static void iw_task_unlink(iw_task *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        iw_tasks = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
    t->linked = 0;
    iw_ntasks--;
}

/* Takes t off the ready list (outside the walk, which detaches its list first). */
static void iw_ready_remove(iw_task *t)
{
    iw_task **pp, *prev = NULL;
    for (pp = &iw_ready_head; *pp != NULL; prev = *pp, pp = &(*pp)->ready_next) {
        if (*pp == t) {
            *pp = t->ready_next;
            if (iw_ready_tail == t)
                iw_ready_tail = prev;
            break;
        }
    }
    t->ready = 0;
    t->ready_next = NULL;
}

static void iw_task_finish(iw_task *t)
{
    int64_t t0 = iw_now_us();
    IW_TASK_CHECK(t->linked && !t->closed);
    if (t->ready)
        iw_ready_remove(t);
    iw_task_forget(t);
    iw_task_unlink(t);
    t->closed = 1;
    t->release(t);                 /* may free t: nothing of it is read afterwards */
    iw_stat_step(t0);
}

/* Moves tasks added on the loop thread into the list. */
static void iw_loop_take_local(void)
{
    while (iw_local != NULL) {
        iw_task *t = iw_local;
        iw_local = t->next;
        iw_task_link(t);
    }
}

void iw_loop_release_owned(void *owner)
{
    iw_task *t, *next;
    for (t = iw_tasks; t != NULL; t = next) {
        next = t->next;
        if (t->owner != owner || t->dead)
            continue;
        if (iw_stepping) {
            /* inside a step: the walk may hold it; it is reaped when the walk reaches it,
             * but it lets go of its descriptors now */
            iw_task_forget(t);
            t->dead = 1;
            iw_ready_push(t);
        } else {
            iw_task_finish(t);
        }
    }
}

void iw_loop_release_task(iw_task *t)
{
    if (!t->linked) {
        /* not in the list (finished already, or still on its way in): nothing of it is
         * stepped any more once it is marked */
        t->dead = 1;
        return;
    }
    if (t->dead)
        return;
    if (iw_stepping) {
        iw_task_forget(t);
        t->dead = 1;
        iw_ready_push(t);
    } else {
        iw_task_finish(t);
    }
}

void iw_loop_unwatch(iw_task *t)
{
    iw_task_forget(t);
}

/* Takes new tasks and runs queued calls; with the lock held. */
static void iw_loop_intake(void)
{
    struct iw_loop_call_req *c;
    while (iw_incoming != NULL) {
        iw_task *t = iw_incoming;
        iw_incoming = t->next;
        iw_task_link(t);
    }
    while ((c = iw_calls) != NULL) {
        int64_t t0 = iw_now_us();
        iw_calls = c->next;
        c->fn(c->arg);
        c->done = 1;
        iw_stat_step(t0);
    }
    pthread_cond_broadcast(&iw_loop_cond);
}

/* Steps what is ready, a few rounds (a step can make others ready). */
static void iw_loop_run_ready(void)
{
    int round;
    for (round = 0; round < IW_LOOP_ROUNDS && iw_ready_head != NULL; round++) {
        iw_task *t = iw_ready_head, *next;
        iw_ready_head = iw_ready_tail = NULL;
        iw_stepping = 1;
        for (; t != NULL; t = next) {
            int64_t t0;
            int finished;
            next = t->ready_next;
            t->ready = 0;
            t->ready_next = NULL;
            IW_TASK_CHECK(t->linked && !t->closed);
            if (t->dead) {
                iw_task_finish(t);
                continue;
            }
            t0 = iw_now_us();
            finished = t->step(t);
            iw_stat_step(t0);
            if (finished || t->dead)
                iw_task_finish(t);
            else
                iw_task_arm(t);
        }
        iw_stepping = 0;
        iw_loop_take_local();
    }
}

static void iw_loop_expire_timers(int64_t now)
{
    while (iw_heap_len > 0 && iw_heap[0]->wake_ms <= now) {
        iw_task *t = iw_heap[0];
        iw_heap_remove(t);
        iw_ready_push(t);
    }
}

static void iw_loop_dispatch(const struct epoll_event *ev, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        unsigned got = ev[i].events, k;
        iw_fdent *e;
        if (fd == iw_loop_wake_fd) {
            uint64_t v;
            if (read(iw_loop_wake_fd, &v, sizeof v) < 0) {
                /* spurious: nothing to drain */
            }
            continue;
        }
        if (fd < 0 || (size_t)fd >= iw_fds_cap)
            continue;
        e = &iw_fds[fd];
        /* errors and hang-ups wake whoever waits, in whichever direction */
        if (e->one.t != NULL &&
            ((got & (EPOLLERR | EPOLLHUP)) || (iw_epoll_events(e->one.want) & got)))
            iw_ready_push(e->one.t);
        for (k = 0; k < e->nmore; k++)
            if ((got & (EPOLLERR | EPOLLHUP)) || (iw_epoll_events(e->more[k].want) & got))
                iw_ready_push(e->more[k].t);
    }
}

static void iw_loop_free_tables(void)
{
    size_t i;
    for (i = 0; i < iw_fds_cap; i++)
        free(iw_fds[i].more);
    free(iw_fds);
    iw_fds = NULL;
    iw_fds_cap = 0;
    free(iw_heap);
    iw_heap = NULL;
    iw_heap_len = iw_heap_cap = 0;
    iw_ready_head = iw_ready_tail = NULL;
}

static void *iw_loop_main(void *arg)
{
    struct epoll_event ev[IW_LOOP_EVENTS];
    (void)arg;
    iw_on_loop = 1;
    for (;;) {
        int64_t now, until;
        int n, timeout;

        pthread_mutex_lock(&iw_loop_lock);
        iw_loop_intake();
        if (iw_loop_stop) {
            pthread_mutex_unlock(&iw_loop_lock);
            break;
        }
        pthread_mutex_unlock(&iw_loop_lock);

        iw_loop_take_local();
        iw_loop_run_ready();
        __atomic_store_n(&iw_stat_tasks, iw_ntasks, __ATOMIC_RELAXED);
        __atomic_add_fetch(&iw_stat_turns, 1, __ATOMIC_RELAXED);

        now = iw_now_ms();
        until = iw_heap_len > 0 ? iw_heap[0]->wake_ms : now + 60000;
        timeout = iw_ready_head != NULL || iw_local != NULL ? 0
                  : until <= now ? 0 : (int)(until - now > 60000 ? 60000 : until - now);
        n = epoll_wait(iw_epfd, ev, IW_LOOP_EVENTS, timeout);
        if (n > 0)
            iw_loop_dispatch(ev, n);
        iw_loop_expire_timers(iw_now_ms());
    }
    /* Cancelled at shutdown: every task is released on this thread (a release may add
     * one, a child to end: it is released in turn). */
    iw_loop_take_local();
    while (iw_tasks != NULL) {
        iw_task_finish(iw_tasks);
        iw_loop_take_local();
    }
    iw_loop_free_tables();
    return NULL;
}

/* With the lock held: starts the thread if it is not running. */
static int iw_loop_start_locked(void)
{
    struct epoll_event ev;
    if (iw_loop_running)
        return 0;
    if (iw_loop_wake_fd < 0) {
        iw_loop_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (iw_loop_wake_fd < 0)
            return ST_ERROR_SYSTEM_LIMIT;
    }
    if (iw_epfd < 0) {
        iw_epfd = epoll_create1(EPOLL_CLOEXEC);
        if (iw_epfd < 0)
            return ST_ERROR_SYSTEM_LIMIT;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.fd = iw_loop_wake_fd;
        if (epoll_ctl(iw_epfd, EPOLL_CTL_ADD, iw_loop_wake_fd, &ev) != 0) {
            close(iw_epfd);
            iw_epfd = -1;
            return ST_ERROR_SYSTEM_LIMIT;
        }
    }
    iw_loop_stop = 0;
    if (pthread_create(&iw_loop_thread, NULL, iw_loop_main, NULL) != 0)
        return ST_ERROR_SYSTEM_LIMIT;
    iw_loop_running = 1;
    return 0;
}

/* A thread-local mark, not the loop's lock: calls and releases run with that lock held
 * and may well ask where they run. */
int iw_loop_is_current(void)
{
    return iw_on_loop;
}

void iw_callbacks_enter(void)
{
    iw_in_steps++;
}

void iw_callbacks_leave(void)
{
    iw_in_steps--;
}

int iw_callbacks_inside(void)
{
    return iw_on_loop || iw_in_steps > 0;
}

int iw_loop_add(iw_task *t)
{
    int rc;
    IW_TASK_CHECK(!t->linked && !t->closed);
    /* The loop thread may hold the lock already (inside a call): its own adds go to a
     * list only it touches, taken in before the next walk. */
    if (iw_on_loop) {
        t->next = iw_local;
        iw_local = t;
        return 0;
    }
    pthread_mutex_lock(&iw_loop_lock);
    rc = iw_loop_start_locked();
    if (rc == 0) {
        t->next = iw_incoming;
        iw_incoming = t;
        iw_loop_wake();
    }
    pthread_mutex_unlock(&iw_loop_lock);
    return rc;
}

int iw_loop_call(void (*fn)(void *arg), void *arg)
{
    struct iw_loop_call_req req;
    int rc;

    req.fn = fn;
    req.arg = arg;
    req.done = 0;
    pthread_mutex_lock(&iw_loop_lock);
    if (iw_loop_running && pthread_equal(pthread_self(), iw_loop_thread)) {
        pthread_mutex_unlock(&iw_loop_lock);
        fn(arg);
        return 0;
    }
    rc = iw_loop_start_locked();
    if (rc == 0) {
        req.next = iw_calls;
        iw_calls = &req;
        iw_loop_wake();
        while (!req.done)
            pthread_cond_wait(&iw_loop_cond, &iw_loop_lock);
    }
    pthread_mutex_unlock(&iw_loop_lock);
    return rc;
}

void iw_loop_shutdown(void)
{
    int running;
    pthread_mutex_lock(&iw_loop_lock);
    running = iw_loop_running;
    if (running) {
        iw_loop_stop = 1;
        iw_loop_wake();
    }
    pthread_mutex_unlock(&iw_loop_lock);
    if (running)
        pthread_join(iw_loop_thread, NULL);
    pthread_mutex_lock(&iw_loop_lock);
    iw_loop_running = 0;
    if (iw_epfd >= 0)
        close(iw_epfd);
    iw_epfd = -1;
    if (iw_loop_wake_fd >= 0)
        close(iw_loop_wake_fd);
    iw_loop_wake_fd = -1;
    pthread_mutex_unlock(&iw_loop_lock);
}
