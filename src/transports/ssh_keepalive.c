/* ssh_keepalive.c: ServerAliveInterval: one loop task per session that asked for it, so
 * an idle session is kept alive too; it holds a reference and goes when nobody else does. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include "../core/runtime/loop.h"
#include "ssh_internal.h"

/* ---- keepalives: a loop task per session, so an idle session is kept alive too ---- */

typedef struct ssh_alive {
    iw_task      task;             /* first: the loop hands us this pointer */
    ssh_session *s;                /* a reference of the task's own */
    int64_t      next_ms;
} ssh_alive;

static void ssh_alive_pollset(iw_task *t, imapwire_pollset *ps)
{
    imapwire_pollset_wakeup(ps, ((ssh_alive *)t)->next_ms);
}

static int ssh_alive_step(iw_task *t)
{
    ssh_alive *a = (ssh_alive *)t;
    ssh_session *s = a->s;
    int64_t now = iw_now_ms();
    int alone, next = 0;

    pthread_mutex_lock(&ssh_list_lock);
    alone = s->refs == 1;
    pthread_mutex_unlock(&ssh_list_lock);
    if (alone || __atomic_load_n(&s->dead, __ATOMIC_ACQUIRE))
        return 1;                  /* nobody uses the session any more: it goes */
    if (now < a->next_ms)
        return 0;
    /* never wait for the lock: a connection busy on the session is traffic enough */
    if (pthread_mutex_trylock(&s->lock) == 0) {
        if (s->state == S_READY && libssh2_keepalive_send(s->s, &next) != 0)
            next = 1;
        ssh_unlock(s, NULL);
    }
    /* libssh2 counts in whole seconds of time(): a second's boundary may come just after
     * we ask, so the last second before a send is looked at twice */
    a->next_ms = now + (next > 1 ? (int64_t)(next - 1) * 1000 : 0) + 500;
    return 0;
}

static void ssh_alive_release(iw_task *t)
{
    ssh_alive *a = (ssh_alive *)t;
    ssh_session_release(a->s);
    free(a);
}

/* Starts the keepalive task of a session that asked for one; under s->lock. */
void ssh_alive_start(ssh_session *s)
{
    ssh_alive *a;
    if (s->alive_s == 0 || s->alive_task)
        return;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return;                    /* no keepalives: the session works without them */
    pthread_mutex_lock(&ssh_list_lock);
    s->refs++;
    pthread_mutex_unlock(&ssh_list_lock);
    a->s = s;
    a->next_ms = iw_now_ms() + (int64_t)s->alive_s * 1000;
    a->task.pollset = ssh_alive_pollset;
    a->task.step = ssh_alive_step;
    a->task.release = ssh_alive_release;
    if (iw_loop_add(&a->task) != 0) {
        pthread_mutex_lock(&ssh_list_lock);
        s->refs--;
        pthread_mutex_unlock(&ssh_list_lock);
        free(a);
        return;
    }
    s->alive_task = 1;
}
