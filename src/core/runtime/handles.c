/* handles.c: the table that turns opaque HCLIENT/HFORWARD values into objects.
 * A handle is slot index + generation; stale, forged or wrong-kind values never resolve. */
#include <pthread.h>
#include <stdlib.h>
#include "runtime.h"

#define IW_INDEX_BITS 24u
#define IW_INDEX_MASK ((1u << IW_INDEX_BITS) - 1u)
#define IW_GEN_MASK   ((uintptr_t)UINTPTR_MAX >> IW_INDEX_BITS)

struct iw_slot {
    uintptr_t gen;        /* bumped on every free, so old handles stop matching */
    int       kind;       /* 0 = free */
    void     *obj;
    uint32_t  next_free;  /* index + 1 of the next free slot, 0 = none */
};

static pthread_mutex_t iw_handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iw_slot *iw_slots;
static uint32_t iw_slot_count;
static uint32_t iw_free_head;         /* index + 1, 0 = none */

int iw_handles_init(void)
{
    return 0;
}

static int iw_handles_grow(void)
{
    uint32_t old = iw_slot_count, n = old ? old * 2 : 64, i;
    struct iw_slot *s;

    if (n > IW_INDEX_MASK)
        n = IW_INDEX_MASK;
    if (n <= old)
        return ST_ERROR_SYSTEM_LIMIT;
    s = realloc(iw_slots, (size_t)n * sizeof *s);
    if (s == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    for (i = old; i < n; i++) {
        s[i].gen = 1;
        s[i].kind = 0;
        s[i].obj = NULL;
        s[i].next_free = (i + 1 < n) ? i + 2 : iw_free_head;
    }
    iw_slots = s;
    iw_slot_count = n;
    iw_free_head = old + 1;
    return 0;
}

uintptr_t iw_handle_add(int kind, void *obj)
{
    uintptr_t h = 0;
    uint32_t idx;

    pthread_mutex_lock(&iw_handles_lock);
    if (iw_free_head == 0 && iw_handles_grow() != 0)
        goto out;
    idx = iw_free_head - 1;
    iw_free_head = iw_slots[idx].next_free;
    iw_slots[idx].kind = kind;
    iw_slots[idx].obj = obj;
    iw_slots[idx].next_free = 0;
    h = (iw_slots[idx].gen << IW_INDEX_BITS) | (uintptr_t)(idx + 1);
out:
    pthread_mutex_unlock(&iw_handles_lock);
    return h;
}

/* Caller holds the lock. */
static struct iw_slot *iw_slot_of(uintptr_t h, int kind)
{
    uintptr_t idx1 = h & IW_INDEX_MASK;
    struct iw_slot *s;

    if (idx1 == 0 || idx1 > iw_slot_count)
        return NULL;
    s = &iw_slots[idx1 - 1];
    if (s->kind != kind || s->gen != (h >> IW_INDEX_BITS))
        return NULL;
    return s;
}

void *iw_handle_visit(uintptr_t h, int kind, int (*fn)(void *obj, void *arg), void *arg,
                      int *rc)
{
    struct iw_slot *s;
    void *obj = NULL;

    /* Under the table's lock the object cannot be removed and freed by another thread
     * while fn looks at it (ownership checks read fields of a client they may not own). */
    pthread_mutex_lock(&iw_handles_lock);
    s = iw_slot_of(h, kind);
    if (s != NULL) {
        obj = s->obj;
        if (fn != NULL)
            *rc = fn(obj, arg);
    }
    pthread_mutex_unlock(&iw_handles_lock);
    return obj;
}

void *iw_handle_get(uintptr_t h, int kind)
{
    return iw_handle_visit(h, kind, NULL, NULL, NULL);
}

void *iw_handle_remove(uintptr_t h, int kind)
{
    struct iw_slot *s;
    void *obj = NULL;

    pthread_mutex_lock(&iw_handles_lock);
    s = iw_slot_of(h, kind);
    if (s != NULL) {
        obj = s->obj;
        s->obj = NULL;
        s->kind = 0;
        s->gen = (s->gen + 1) & IW_GEN_MASK;
        if (s->gen == 0)
            s->gen = 1;
        s->next_free = iw_free_head;
        iw_free_head = (uint32_t)(s - iw_slots) + 1;
    }
    pthread_mutex_unlock(&iw_handles_lock);
    return obj;
}

/* Frees every live object; the table itself is kept so generations keep growing and
 * a handle from before an Uninitialize/Initialize cycle still cannot resolve. */
void iw_handles_shutdown(void (*free_obj)(int kind, void *obj))
{
    uint32_t i;

    for (i = 0; i < iw_slot_count; i++) {
        void *obj;
        int kind;
        uintptr_t h;

        pthread_mutex_lock(&iw_handles_lock);
        kind = iw_slots[i].kind;
        h = (iw_slots[i].gen << IW_INDEX_BITS) | (uintptr_t)(i + 1);
        pthread_mutex_unlock(&iw_handles_lock);
        if (kind == 0)
            continue;
        obj = iw_handle_remove(h, kind);
        if (obj != NULL && free_obj != NULL)
            free_obj(kind, obj);
    }
}
