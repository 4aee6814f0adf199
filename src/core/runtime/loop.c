/* loop.c: the event-loop thread shared by every library-managed forward: it polls what
 * all tasks wait for in one poll() and steps them; other threads talk to it by calls. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "loop.h"

/* The poll array grows with the tasks; it starts small and never shrinks. */
#define IW_LOOP_FIRST_FDS 64

static pthread_mutex_t iw_loop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t iw_loop_cond = PTHREAD_COND_INITIALIZER;
static pthread_t iw_loop_thread;
static int iw_loop_running;
static int iw_loop_stop;
static int iw_loop_wake_fd = -1;
static iw_task *iw_tasks;           /* loop thread only */
static iw_task *iw_incoming;        /* added by other threads, under the lock */
static iw_task *iw_local;           /* added on the loop thread itself, no lock: a step,
                                       a release or a call may add (child reaping) */
static _Thread_local int iw_on_loop;  /* set on the loop thread only */
static int iw_walking;              /* loop thread only: stepping the task list */

/* What the loop's cost looks like from outside (ImapGetLoopStatistics); written by the
 * loop thread, read by any, so atomics. */
static unsigned long iw_stat_turns, iw_stat_tasks, iw_stat_longest_us;

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

/* Moves tasks added on the loop thread into the list; loop thread, not walking. */
static void iw_loop_take_local(void)
{
    while (iw_local != NULL) {
        iw_task *t = iw_local;
        iw_local = t->next;
        t->next = iw_tasks;
        iw_tasks = t;
    }
}

struct iw_loop_call_req {
    void (*fn)(void *arg);
    void *arg;
    int   done;
    struct iw_loop_call_req *next;
};
static struct iw_loop_call_req *iw_calls;

static void iw_loop_wake(void)
{
    uint64_t one = 1;
    if (write(iw_loop_wake_fd, &one, sizeof one) < 0) {
        /* the counter is already non-zero: the loop will wake anyway */
    }
}

void iw_loop_release_owned(void *owner)
{
    iw_task **pp, *t;
    for (pp = &iw_tasks; (t = *pp) != NULL;) {
        if (t->owner == owner && iw_walking) {
            t->dead = 1;
            pp = &t->next;
        } else if (t->owner == owner) {
            *pp = t->next;
            t->release(t);
        } else {
            pp = &t->next;
        }
    }
}

/* Takes new tasks and runs queued calls; with the lock held. */
static void iw_loop_intake(void)
{
    struct iw_loop_call_req *c;
    while (iw_incoming != NULL) {
        iw_task *t = iw_incoming;
        iw_incoming = t->next;
        t->next = iw_tasks;
        iw_tasks = t;
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

static void *iw_loop_main(void *arg)
{
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    (void)arg;
    iw_on_loop = 1;
    for (;;) {
        imapwire_pollset ps;
        iw_task **pp, *t;
        int64_t now, until = 0;
        nfds_t n = 1;

        pthread_mutex_lock(&iw_loop_lock);
        iw_loop_intake();
        if (iw_loop_stop) {
            pthread_mutex_unlock(&iw_loop_lock);
            break;
        }
        pthread_mutex_unlock(&iw_loop_lock);

        /* Step everything, drop the finished and the dead, then gather what the rest
         * wait for. A step may mark other tasks dead (an event callback that disconnects
         * another handle): they stay linked until the walk reaches them or, if it has
         * passed them, until the next turn's walk. */
        iw_loop_take_local();
        iw_walking = 1;
        for (pp = &iw_tasks; (t = *pp) != NULL;) {
            int64_t t0 = iw_now_us();
            if (t->dead || t->step(t)) {
                *pp = t->next;
                t->release(t);
            } else {
                pp = &t->next;
            }
            iw_stat_step(t0);
        }
        iw_walking = 0;
        iw_loop_take_local();
        {
            unsigned long count = 0;
            for (t = iw_tasks; t != NULL; t = t->next)
                count++;
            __atomic_store_n(&iw_stat_tasks, count, __ATOMIC_RELAXED);
            __atomic_add_fetch(&iw_stat_turns, 1, __ATOMIC_RELAXED);
        }
        if (cap == 0) {
            pfd = malloc(IW_LOOP_FIRST_FDS * sizeof *pfd);
            if (pfd == NULL) {
                poll(NULL, 0, 10);     /* no memory for even the wake-up: try again soon */
                continue;
            }
            cap = IW_LOOP_FIRST_FDS;
        }
        pfd[0].fd = iw_loop_wake_fd;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        for (t = iw_tasks; t != NULL; t = t->next) {
            if (t->dead) {
                until = iw_now_ms();       /* reap it on the next turn, at once */
                continue;
            }
            memset(&ps, 0, sizeof ps);
            t->pollset(t, &ps);
            if (n + IMAPWIRE_POLLSET_MAX > cap) {
                size_t ncap = cap ? cap * 2 : IW_LOOP_FIRST_FDS;
                struct pollfd *np = realloc(pfd, ncap * sizeof *np);
                if (np == NULL) {
                    /* out of memory: this task is looked at again shortly instead */
                    imapwire_pollset_wakeup(&ps, iw_now_ms() + 10);
                    ps.count = 0;
                } else {
                    pfd = np;
                    cap = ncap;
                }
            }
            if (ps.count > 0)
                n += iw_pollset_to_pollfd(&ps, pfd + n);
            if (ps.wakeup_ms != 0 && (until == 0 || ps.wakeup_ms < until))
                until = ps.wakeup_ms;
        }
        now = iw_now_ms();
        /* a pollset may have added a task: it gets its first step at once */
        if (iw_local != NULL)
            until = now;
        /* An idle loop still looks around once a second: cheap, and bounds any miss. */
        if (until == 0 || until > now + 1000)
            until = now + 1000;
        if (poll(pfd, n, until > now ? (int)(until - now) : 0) > 0 && pfd[0].revents) {
            uint64_t v;
            if (read(iw_loop_wake_fd, &v, sizeof v) < 0) {
                /* spurious: nothing to drain */
            }
        }
    }
    /* Cancelled at shutdown: every task is released on this thread (a release may add
     * one, a child to end: it is released in turn). */
    iw_loop_take_local();
    while (iw_tasks != NULL) {
        iw_task *t = iw_tasks;
        iw_tasks = t->next;
        t->release(t);
        iw_loop_take_local();
    }
    free(pfd);
    return NULL;
}

/* With the lock held: starts the thread if it is not running. */
static int iw_loop_start_locked(void)
{
    if (iw_loop_running)
        return 0;
    if (iw_loop_wake_fd < 0) {
        iw_loop_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (iw_loop_wake_fd < 0)
            return ST_ERROR_SYSTEM_LIMIT;
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

int iw_loop_add(iw_task *t)
{
    int rc;
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
    if (iw_loop_wake_fd >= 0)
        close(iw_loop_wake_fd);
    iw_loop_wake_fd = -1;
    pthread_mutex_unlock(&iw_loop_lock);
}
