/* own_loop.c: connects stepped by the caller's own event loop: the connect machine's
 * step run on demand, and the sockets it waits for handed out as stable duplicates. */
/* Why duplicates: a step may close a socket the caller still watches (a racing attempt
 * that lost, a finished lookup) and the next socket may get the same number. A loop
 * that registers descriptors (epoll, libuv) would then watch a closed or a different
 * socket. The caller watches dup()s instead, closed only once it has seen the new set
 * (at its next step) or at disconnect; a descriptor keeps its duplicate while it stays
 * in the set, known by what it refers to rather than its number. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>
#include "client.h"
#include "../runtime/loop.h"

/* At most a whole set handed out and a whole set retiring. */
#define IW_OWN_SLOTS (2 * IMAPWIRE_POLLSET_MAX)

enum { IW_OWN_PENDING = 1, IW_OWN_READY, IW_OWN_FAILED };
enum { IW_SLOT_FREE = 0, IW_SLOT_ACTIVE, IW_SLOT_RETIRED };

typedef struct iw_own_slot {
    int      use;                  /* IW_SLOT_* */
    int      fd;                   /* the duplicate the caller watches */
    int      lib_fd;               /* the chain's descriptor it duplicates */
    dev_t    dev;                  /* which file it is */
    ino_t    ino;
    int      sock;                 /* S_ISSOCK: dev and ino tell sockets apart */
    unsigned want;                 /* IMAPWIRE_WANT_* */
} iw_own_slot;

struct iw_own {
    int         state;             /* IW_OWN_* */
    int         error;             /* the ST_ERROR_* of a failed connect */
    int         stepped;           /* the first step has run */
    int         stepping;          /* a step is running (its trace callback may call in) */
    int         doomed;            /* ImapDisconnect ran inside that step */
    unsigned    want;
    int64_t     until_ms;          /* when the timeout step is due */
    iw_own_slot slot[IW_OWN_SLOTS];
};

int iw_own_start(iw_client *c)
{
    iw_own *o = calloc(1, sizeof *o);
    int i;
    if (o == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    o->state = IW_OWN_PENDING;
    o->want = IMAPWIRE_WANT_READ;
    for (i = 0; i < IW_OWN_SLOTS; i++)
        o->slot[i].fd = -1;
    c->io.own = o;
    return 0;
}

int iw_own_pending(const iw_client *c)
{
    return c->io.own != NULL && c->io.own->state == IW_OWN_PENDING;
}

static void iw_own_close_slot(iw_own_slot *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->use = IW_SLOT_FREE;
}

static void iw_own_close_retired(iw_own *o)
{
    int i;
    for (i = 0; i < IW_OWN_SLOTS; i++)
        if (o->slot[i].use == IW_SLOT_RETIRED)
            iw_own_close_slot(&o->slot[i]);
}

static void iw_own_retire_all(iw_own *o)
{
    int i;
    for (i = 0; i < IW_OWN_SLOTS; i++)
        if (o->slot[i].use == IW_SLOT_ACTIVE)
            o->slot[i].use = IW_SLOT_RETIRED;
}

/* Whether the slot's duplicate and the chain's fd refer to one open file. A socket's
 * inode names it, and cannot be reused while the duplicate holds it open. Every epoll
 * descriptor shares one anonymous inode: kcmp tells those apart, and where it is refused
 * (seccomp, an old kernel) such a descriptor counts as new, a fresh duplicate each step,
 * never a wrong "same". The chain keeps its own numbers, so another number is another
 * file. */
static int iw_own_same(const iw_own_slot *s, int fd, const struct stat *st)
{
    pid_t me;
    if (s->lib_fd != fd || s->dev != st->st_dev || s->ino != st->st_ino)
        return 0;
    if (s->sock && S_ISSOCK(st->st_mode))
        return 1;
    me = getpid();
    return syscall(SYS_kcmp, me, me, KCMP_FILE, s->fd, fd) == 0;
}

/* The set after a step: sockets still in it keep their duplicate, new ones get one,
 * the rest retire (still open: the caller may be watching them until its next call). */
static int iw_own_refresh(iw_client *c, iw_own *o)
{
    imapwire_pollset ps = {0};
    int keep[IW_OWN_SLOTS] = {0};
    unsigned i;
    int j;

    iw_layer_pollset(c->io.top, o->want, &ps);
    for (i = 0; i < ps.count && i < IMAPWIRE_POLLSET_MAX; i++) {
        struct stat st;
        int found = -1, free_slot = -1;
        if (fstat(ps.fds[i].fd, &st) != 0)
            return ST_ERROR_NETWORK_ERROR;
        for (j = 0; j < IW_OWN_SLOTS; j++) {
            iw_own_slot *s = &o->slot[j];
            if (s->use == IW_SLOT_ACTIVE && found < 0 && iw_own_same(s, ps.fds[i].fd, &st))
                found = j;
            else if (s->use == IW_SLOT_FREE && free_slot < 0)
                free_slot = j;
        }
        if (found < 0) {
            iw_own_slot *s;
            /* cannot happen while retired slots are closed before each step */
            if (free_slot < 0)
                return ST_ERROR_SYSTEM_LIMIT;
            s = &o->slot[free_slot];
            s->fd = fcntl(ps.fds[i].fd, F_DUPFD_CLOEXEC, 0);
            if (s->fd < 0)
                return ST_ERROR_SYSTEM_LIMIT;
            s->use = IW_SLOT_ACTIVE;
            s->lib_fd = ps.fds[i].fd;
            s->dev = st.st_dev;
            s->ino = st.st_ino;
            s->sock = S_ISSOCK(st.st_mode);
            s->want = 0;
            found = free_slot;
        }
        /* one socket listed twice (two layers on it) is watched for both */
        o->slot[found].want = keep[found] ? o->slot[found].want | ps.fds[i].want
                                          : ps.fds[i].want;
        keep[found] = 1;
    }
    for (j = 0; j < IW_OWN_SLOTS; j++)
        if (o->slot[j].use == IW_SLOT_ACTIVE && !keep[j])
            o->slot[j].use = IW_SLOT_RETIRED;
    o->until_ms = c->cm.deadline_ms;
    if (ps.wakeup_ms != 0 && ps.wakeup_ms < o->until_ms)
        o->until_ms = ps.wakeup_ms;
    return 0;
}

int iw_own_sockets(iw_client *c, IMAPSOCKET *out, int max, int *count, int *timeout_ms)
{
    iw_own *o = c->io.own;
    int64_t left;
    int i, n = 0;

    if (o->state != IW_OWN_PENDING) {
        *count = 0;
        *timeout_ms = -1;
        return 0;
    }
    if (!o->stepped) {
        *count = 0;
        *timeout_ms = 0;           /* the first step is due at once */
        return 0;
    }
    for (i = 0; i < IW_OWN_SLOTS; i++) {
        if (o->slot[i].use != IW_SLOT_ACTIVE)
            continue;
        if (n >= max)
            return ST_ERROR_BUFFER_TOO_SMALL;
        out[n].nSocket = o->slot[i].fd;
        out[n].dwEvents = ((o->slot[i].want & IMAPWIRE_WANT_READ) ? IMAP_SOCKET_READ : 0) |
                          ((o->slot[i].want & IMAPWIRE_WANT_WRITE) ? IMAP_SOCKET_WRITE : 0);
        n++;
    }
    left = o->until_ms - iw_now_ms();
    *count = n;
    *timeout_ms = left <= 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
    return 0;
}

static void iw_own_end(iw_client *c, iw_own *o, int rc)
{
    if (rc != 0) {
        /* The chain stays until ImapDisconnect: tearing it down (SSH, a command
         * plugin's child) may wait, and this call must not. */
        iw_client_break(c, rc);
        o->state = IW_OWN_FAILED;
        o->error = rc;
    } else {
        o->state = IW_OWN_READY;
    }
    iw_own_retire_all(o);
}

int iw_own_action(iw_client *c, int fd, unsigned events)
{
    iw_own *o = c->io.own;
    int i, rc;

    if (o->stepping)
        return ST_ERROR_IN_PROGRESS;
    if ((events & ~(IMAP_SOCKET_READ | IMAP_SOCKET_WRITE)) != 0)
        return ST_ERROR_INVALID_PARAMETER;
    if (fd != IMAP_SOCKET_TIMEOUT) {
        for (i = 0; i < IW_OWN_SLOTS; i++)
            if (o->slot[i].use != IW_SLOT_FREE && o->slot[i].fd == fd)
                break;
        if (i == IW_OWN_SLOTS)
            return ST_ERROR_INVALID_PARAMETER;
    }
    if (o->state == IW_OWN_READY)
        return 0;
    if (o->state == IW_OWN_FAILED)
        return o->error;
    /* The caller has seen the set made by the last step, so what left it goes now. */
    iw_own_close_retired(o);
    o->stepped = 1;
    o->stepping = 1;
    o->want = IMAPWIRE_WANT_READ;
    iw_callbacks_enter();
    rc = iw_connect_step(c, NULL, &o->want);
    iw_callbacks_leave();
    o->stepping = 0;
    if (o->doomed) {
        /* disconnected from its trace callback: the handle is gone already */
        iw_client_close(c, 0);
        iw_client_free(c);
        return ST_ERROR_INVALID_HANDLE;
    }
    if (rc == IMAPWIRE_AGAIN) {
        if (iw_now_ms() < c->cm.deadline_ms) {
            rc = iw_own_refresh(c, o);
            if (rc == 0)
                return IMAPWIRE_AGAIN;
        } else {
            rc = ST_ERROR_OPERATION_TIMEOUT;
        }
    }
    if (rc != 0)
        iw_connect_fail(c, rc);
    iw_own_end(c, o, rc);
    return rc;
}

int iw_own_detach(iw_client *c)
{
    iw_own *o = c->io.own;
    if (o == NULL)
        return 0;
    if (o->stepping) {
        o->doomed = 1;
        return 2;
    }
    return o->state != IW_OWN_READY;
}

void iw_own_free(iw_client *c)
{
    iw_own *o = c->io.own;
    int i;
    if (o == NULL)
        return;
    for (i = 0; i < IW_OWN_SLOTS; i++)
        iw_own_close_slot(&o->slot[i]);
    free(o);
    c->io.own = NULL;
}
