/* body_pool.c: the one message buffer ImapFreeMemory keeps for the next ImapGetMessage,
 * so a large body is received into pages already mapped instead of freshly faulted ones. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "runtime.h"

/* glibc serves a block this large with mmap whatever it has seen (its dynamic threshold
 * stops at 32 MB on 64-bit), and unmaps it on free: each such fetch faulted in and zeroed
 * every page again (11,963 faults for 49 MB). Smaller blocks come back from glibc's own
 * heap without faults, and keeping one here would only hold memory. */
#define IW_POOL_MIN ((size_t)32 << 20)

static void *iw_pool_block;            /* atomic: NULL or the kept block */

/* The kept block's pages stay mapped but the kernel may take them back under memory
 * pressure (MADV_FREE): held memory costs the system nothing it needs. Only whole pages
 * inside the block: the page of malloc's header must keep its contents. */
static void iw_pool_lend_pages(void *p, size_t size)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)p + size) & ~(page - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_FREE);
}

void *iw_body_alloc(size_t size)
{
    void *p = NULL;
    if (size >= IW_POOL_MIN / 2)
        p = __atomic_exchange_n(&iw_pool_block, NULL, __ATOMIC_ACQ_REL);
    if (p != NULL) {
        size_t have = malloc_usable_size(p);
        /* not for a message under half its size: the caller would hold the rest */
        if (have >= size && size >= have / 2)
            return p;
        iw_body_release(p);
    }
    return malloc(size);
}

void iw_body_release(void *p)
{
    void *none = NULL;
    if (p == NULL)
        return;
    if (malloc_usable_size(p) >= IW_POOL_MIN) {
        iw_pool_lend_pages(p, malloc_usable_size(p));
        if (__atomic_compare_exchange_n(&iw_pool_block, &none, p, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return;
    }
    free(p);
}

void iw_body_pool_drain(void)
{
    free(__atomic_exchange_n(&iw_pool_block, NULL, __ATOMIC_ACQ_REL));
}
