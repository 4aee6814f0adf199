/* ssh_wake.c: each channel's wake-up descriptor: whoever reads a session's packets tells
 * the waiting channels it read news for, so no channel polls the session on a timer. */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "ssh_internal.h"

/* One descriptor per channel, not per session: a counter shared by several waiters is
 * either drained by the first one to wake (and the others, between their look at the
 * queue and their poll, sleep through the news) or left set (and every waiter spins). */
int ssh_wake_open(struct ssh_ctx *c)
{
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return c->wake_fd < 0 ? (int)ST_ERROR_SYSTEM_LIMIT : 0;
}

/* The channel is stepped (under s->lock): it is not waiting, and reads its news itself. */
void ssh_wake_take(struct ssh_ctx *c)
{
    if (c->waiting) {
        *c->wpprev = c->wnext;
        if (c->wnext != NULL)
            c->wnext->wpprev = c->wpprev;
        c->wnext = NULL;
        c->wpprev = NULL;
        c->waiting = 0;
    }
    if (c->signalled) {
        uint64_t v;
        /* EAGAIN cannot happen (it was written and only we read it); either way it is
         * empty afterwards, which is all that matters */
        (void)!read(c->wake_fd, &v, sizeof v);
        c->signalled = 0;
    }
}

/* Under s->lock, at the channel's end. */
void ssh_wake_close(struct ssh_ctx *c)
{
    ssh_wake_take(c);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    c->wake_fd = -1;
}

/* The channel is about to wait (under s->lock, in its poll set): it is listed, so a read
 * by anyone else from now on signals it, and its descriptor joins the poll set. */
void ssh_wake_wait(ssh_session *s, struct ssh_ctx *c, unsigned want, imapwire_pollset *ps)
{
    ssh_wake_take(c);
    c->wants_write = (want & IMAPWIRE_WANT_WRITE) != 0;
    c->wnext = s->waiters;
    if (s->waiters != NULL)
        s->waiters->wpprev = &c->wnext;
    s->waiters = c;
    c->wpprev = &s->waiters;
    c->waiting = 1;
    /* a full poll set (a long route of hops) cannot carry it: look again soon instead */
    if (imapwire_pollset_add(ps, c->wake_fd, IMAPWIRE_WANT_READ) != 0)
        imapwire_pollset_wakeup(ps, iw_now_ms() + SSH_WAKE_FALLBACK_MS);
}

/* What a read by another channel may have brought c: its data or end, a window for its
 * blocked write, the confirmation of its channel or the session it waits for. */
static int ssh_wake_news(struct ssh_ctx *c)
{
    /* waiting for its turn to open a channel: only the end of the open in flight is */
    if (c->state == L_CHANNEL && c->sess->opener != NULL && c->sess->opener != c)
        return 0;
    if (c->state != L_UP || c->wants_write)
        return 1;
    return libssh2_poll_channel_read(c->channel, 0) || libssh2_channel_eof(c->channel);
}

/* Under s->lock: c's channel is open, c joins the session's open channels. */
void ssh_wake_up_add(ssh_session *s, struct ssh_ctx *c)
{
    c->unext = s->ups;
    if (s->ups != NULL)
        s->ups->upprev = &c->unext;
    s->ups = c;
    c->upprev = &s->ups;
}

/* Under s->lock, before c's channel is freed. */
void ssh_wake_up_remove(struct ssh_ctx *c)
{
    if (c->upprev == NULL)
        return;
    *c->upprev = c->unext;
    if (c->unext != NULL)
        c->unext->upprev = c->upprev;
    c->unext = NULL;
    c->upprev = NULL;
}

/* A call that waits for one packet (a channel's open or close, a request) returns once it
 * is in, and what came behind it in the same read stays in libssh2's buffer, undecoded:
 * no channel's queue shows it and the socket will not say so again. A read of no bytes
 * from any open channel decodes it all (libssh2 reads its transport until it would
 * block before it looks at the channel), so the looks below see everything read. */
static void ssh_wake_decode(ssh_session *s)
{
    char none;
    if (!s->rx_fresh || s->ups == NULL || s->state != S_READY)
        return;
    (void)libssh2_channel_read(s->ups->channel, &none, 0);
}

/* Under s->lock, after libssh2 calls: when they read packets off the hop, every waiting
 * channel they may concern (self excepted: it looks itself) is signalled, once. */
void ssh_wake_others(ssh_session *s, struct ssh_ctx *self)
{
    struct ssh_ctx *w;
    uint64_t one = 1;
    if (!s->moved)
        return;
    ssh_wake_decode(s);
    s->moved = 0;
    for (w = s->waiters; w != NULL; w = w->wnext) {
        if (w == self || w->signalled || (s->state == S_READY && !ssh_wake_news(w)))
            continue;
        /* a counter of 2^64-2 is the only failure: it is readable anyway */
        (void)!write(w->wake_fd, &one, sizeof one);
        w->signalled = 1;
    }
}

void ssh_unlock(ssh_session *s, struct ssh_ctx *self)
{
    ssh_wake_others(s, self);
    pthread_mutex_unlock(&s->lock);
}
