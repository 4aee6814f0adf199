/* loop.h: the library's one event-loop thread: asynchronous connects and port-forward
 * bridges are its tasks, never a thread per connection. */
#ifndef IW_LOOP_H
#define IW_LOOP_H

#include "runtime.h"

/* The one rule for memory a task lives in or points into: only the task's release frees
 * it, and only the loop calls release. An owner that goes (a forward closed, a handle
 * disconnected, from any thread or from inside a callback) asks the loop to release its
 * tasks and drops its own reference; whatever the tasks point into is reference-counted,
 * so the last of owner and tasks frees it. Nothing reachable from the task list or the
 * ready list is ever freed by the caller. */
typedef struct iw_task iw_task;
struct iw_task {
    /* What to wait for; called on the loop thread with nothing locked. */
    void (*pollset)(iw_task *t, imapwire_pollset *ps);
    /* Make progress without blocking; return nonzero when the task is finished. */
    int  (*step)(iw_task *t);
    /* Free the task; called on the loop thread once it is finished, or from
     * iw_loop_release_owned when its owner goes. */
    void (*release)(iw_task *t);
    void    *owner;                /* whose task it is (a forward), for cancelling */
    int      dead;                 /* loop thread only: closing, released at the next safe
                                      point, never stepped or polled again */
    int      closed;               /* loop thread only: release has been called (checked
                                      by the loop, as libuv's uv__finish_close does) */
    /* The loop's own bookkeeping (loop.c only): the task list, the ready list, the
     * timer heap, and the descriptors registered for it with epoll. */
    iw_task *next, *prev, *ready_next;
    int      ready;
    int      linked;               /* in the task list */
    long     heap_at;              /* index in the timer heap, -1 when not in it */
    int64_t  wake_ms;
    unsigned nreg;
    int      reg_fd[IMAPWIRE_POLLSET_MAX];
    unsigned reg_want[IMAPWIRE_POLLSET_MAX];
};

/* Adds a task (starting the thread on first use): 0 or an ST_ERROR_*. */
int  iw_loop_add(iw_task *t);
/* Runs fn(arg) on the loop thread and waits for it: how other threads change tasks
 * without racing the loop. fn runs with the loop's lock held: it must not add tasks. */
int  iw_loop_call(void (*fn)(void *arg), void *arg);
/* Cancels every task and joins the thread (last ImapUninitialize). */
void iw_loop_shutdown(void);
/* Releases every task of owner (on the loop thread only: inside an iw_loop_call
 * function or a task's step). Between turns they are released at once; from inside a
 * step (an event callback) they are only marked, and the loop releases them where it
 * is not walking its list: nothing is freed under the loop's feet either way, and a
 * marked task is never stepped or polled again. Either way its descriptors leave epoll
 * at once: the caller may close them as soon as this returns. */
void iw_loop_release_owned(void *owner);
/* The same for one task, without walking the list (a handle's own task): 10,000
 * disconnects would otherwise cost 10,000 walks of 10,000 tasks. */
void iw_loop_release_task(iw_task *t);
/* Steps t in the next turn (loop thread only): its readiness was used up elsewhere. */
void iw_loop_ready(iw_task *t);
/* Inside t's step: t watches nothing from now until its next arm. Called before a
 * callback that may close what t watches (here or on another thread once the callback
 * has told it), so epoll never hears of a descriptor after its owner closed it. */
void iw_loop_unwatch(iw_task *t);
/* Nonzero on the library's loop thread. */
int  iw_loop_is_current(void);
/* A step that may call the caller back runs on this thread (the blocking driver, a step
 * of the caller's own loop): counted, so a call that would pull the library out from
 * under it (the last ImapUninitialize) can refuse. Nonzero on the loop thread too. */
void iw_callbacks_enter(void);
void iw_callbacks_leave(void);
int  iw_callbacks_inside(void);
/* Tasks now, turns so far, and the longest single step, release or call in microseconds
 * (since the last reset): how long the loop was ever unavailable to everyone else. */
void iw_loop_stats(unsigned long *tasks, unsigned long *turns, unsigned long *longest_us,
                   int reset);

#endif /* IW_LOOP_H */
