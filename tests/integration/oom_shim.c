/* oom_shim.c: malloc and friends defined in the test program, so every module of the process
 * calls them; they forward to glibc's (or, in the ASan build, ASan's) and fail on request. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "oom_shim.h"

/* glibc's own entry points: always there, and not themselves interposable. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void  __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
/* In the sanitizer build malloc belongs to ASan (a shared libasan that we preempt): its
 * interceptors are exported under these names, and memory it hands out must go back to it. */
extern void *__interceptor_malloc(size_t) __attribute__((weak));
extern void *__interceptor_calloc(size_t, size_t) __attribute__((weak));
extern void *__interceptor_realloc(void *, size_t) __attribute__((weak));
extern void  __interceptor_free(void *) __attribute__((weak));
extern void *__interceptor_memalign(size_t, size_t) __attribute__((weak));

/* The build hides symbols by default; these must be seen by every other module. */
#define SHIM __attribute__((visibility("default")))

static atomic_long countdown;          /* > 0: armed; the allocation that takes it to 0 fails */
static atomic_long seen;
static atomic_int  injected;
static atomic_long live;
static int show_stack;                 /* print where the failure was injected */
static void *fail_stack[48];           /* where the last injected failure happened */
static int fail_depth;
/* oom_record: which allocations (by number) are made with a return address inside
 * [record_from, record_to), the code of the function named (found once, so each
 * allocation costs a backtrace and no symbol lookup). */
static uintptr_t record_from, record_to;
static long *record_out;
static int record_max, record_count;

void oom_show_stack(int on)
{
    show_stack = on;
}

int oom_stack_has(const char *part)
{
    int i;
    for (i = 0; i < fail_depth; i++) {
        Dl_info info;
        if (dladdr(fail_stack[i], &info) != 0 && info.dli_sname != NULL &&
            strstr(info.dli_sname, part) != NULL)
            return 1;
    }
    return 0;
}

void oom_arm(long n)
{
    void *frames[1];
    backtrace(frames, 1);              /* loads libgcc's unwinder now, not mid-failure */
    fail_depth = 0;
    atomic_store(&injected, 0);
    atomic_store(&seen, 0);
    atomic_store(&countdown, n);
}

int oom_record(const char *name, long *out, int max)
{
    void *addr = dlsym(RTLD_DEFAULT, name);
    const ElfW(Sym) *sym = NULL;
    Dl_info info;
    if (addr == NULL || dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 ||
        sym == NULL || sym->st_size == 0)
        return -1;
    oom_arm(-1);
    record_count = 0;
    record_out = out;
    record_max = max;
    record_from = (uintptr_t)addr;
    record_to = (uintptr_t)addr + sym->st_size;
    return 0;
}

int oom_recorded(void)
{
    record_to = 0;
    oom_disarm();
    return record_count;
}

int oom_disarm(void)
{
    atomic_store(&countdown, 0);
    return atomic_load(&injected);
}

long oom_seen(void) { return atomic_load(&seen); }
long oom_live(void) { return atomic_load(&live); }


/* Whether this allocation is the one to fail. */
static int should_fail(void)
{
    long c;
    atomic_fetch_add(&seen, 1);
    if (record_to != 0 && record_count < record_max) {
        void *frames[48];
        int i, depth = backtrace(frames, 48);
        for (i = 0; i < depth; i++) {
            uintptr_t a = (uintptr_t)frames[i];
            if (a > record_from && a <= record_to) {   /* return addresses: after a call */
                record_out[record_count++] = atomic_load(&seen);
                break;
            }
        }
    }
    c = atomic_load(&countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&countdown, &c, c - 1)) {
            if (c == 1) {
                atomic_store(&injected, 1);
                fail_depth = backtrace(fail_stack, 48);
                if (show_stack)
                    backtrace_symbols_fd(fail_stack, fail_depth, 2);
                errno = ENOMEM;
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

static void *got(void *p)
{
    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

SHIM void *malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return got(__interceptor_malloc ? __interceptor_malloc(n) : __libc_malloc(n));
}

SHIM void *calloc(size_t a, size_t b)
{
    if (should_fail())
        return NULL;
    return got(__interceptor_calloc ? __interceptor_calloc(a, b) : __libc_calloc(a, b));
}

SHIM void free(void *p)
{
    if (p == NULL)
        return;
    atomic_fetch_sub(&live, 1);
    if (__interceptor_free)
        __interceptor_free(p);
    else
        __libc_free(p);
}

SHIM void *realloc(void *p, size_t n)
{
    void *q;
    if (p == NULL)
        return malloc(n);
    if (n == 0) {                      /* glibc frees and returns NULL */
        free(p);
        return NULL;
    }
    if (should_fail())
        return NULL;
    q = __interceptor_realloc ? __interceptor_realloc(p, n) : __libc_realloc(p, n);
    return q;                          /* one block in, one block out: live unchanged */
}

SHIM void *reallocarray(void *p, size_t a, size_t b)
{
    if (b != 0 && a > SIZE_MAX / b) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, a * b);
}

SHIM void *memalign(size_t align, size_t n)
{
    if (should_fail())
        return NULL;
    return got(__interceptor_memalign ? __interceptor_memalign(align, n)
                                      : __libc_memalign(align, n));
}

SHIM void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

SHIM int posix_memalign(void **out, size_t align, size_t n)
{
    void *p;
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    p = memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

SHIM void *valloc(size_t n)
{
    return memalign(4096, n);
}

SHIM void *pvalloc(size_t n)
{
    return memalign(4096, (n + 4095) & ~(size_t)4095);
}

/* ASan has its own strdup that would not come here; these make the count the same in
 * both builds. */
SHIM char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

SHIM char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Read by ASan's leak checker: the dynamic loader's own lists (libgcc_s, loaded for
 * backtrace) now come through this malloc, where its usual exemption for the loader does
 * not see them. */
SHIM const char *__lsan_default_suppressions(void);
SHIM const char *__lsan_default_suppressions(void)
{
    return "leak:_dl_map_object_deps\n";
}
