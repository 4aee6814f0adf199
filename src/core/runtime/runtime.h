/* runtime.h: services every other part of the library stands on: errors, clocks, the
 * handle table, threads, strings and wiping, poll sets. It includes nothing internal. */
#ifndef IW_RUNTIME_H
#define IW_RUNTIME_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <imapwire/imapwire.h>
#include <imapwire/transport.h>

#define IW_UNUSED(x) ((void)(x))

/* ---- errors.c: the one list of codes, names and texts; the per-thread last error ---- */
void        iw_set_error(DWORD err);
const char *iw_error_text(DWORD err);        /* NULL if unknown */
const char *iw_error_name(DWORD err);        /* "ST_ERROR_..." or NULL */
DWORD       iw_error_max(void);

/* ---- errinfo.c: the error-info record (IMAPERRORINFO) and the thread's copy ---- */
DWORD iw_stage_of(DWORD err);                /* the stage a bare code most likely means */
/* Fills the fields of ei still empty: what a lower layer recorded stays. */
void  iw_errinfo_add(IMAPERRORINFO *ei, DWORD err, DWORD stage, unsigned hop, const char *peer,
                     const char *file, const char *fingerprint, const char *detail);
void  iw_errinfo_peer(char *out, size_t size, const char *host, unsigned port);
void  iw_errinfo_clear(IMAPERRORINFO *ei);
void  iw_set_error_info(const IMAPERRORINFO *ei);   /* the thread's last failure, described */
void  iw_errinfo_from_code(DWORD err);               /* iw_set_error's half */
/* For code with no handle at hand: what it knows of the failure it returns (the first
 * note stands); the next iw_set_error, or iw_errinfo_take_pending, takes it. */
void  iw_errinfo_note(DWORD err, DWORD stage, const char *file, const char *detail);
/* Adds the note to dst (NULL: just forgets it) unless err, the code returned in the
 * end, is ST_ERROR_OUT_OF_MEMORY; the note is gone afterwards either way. */
void  iw_errinfo_take_pending(IMAPERRORINFO *dst, DWORD err);
void  iw_set_last_timings(const IMAPTIMINGS *t);     /* a failed blocking connect's */
void  iw_forget_last_timings(void);                  /* a new connect: none yet */
int   iw_errinfo_copy_out(const IMAPERRORINFO *src, LPIMAPERRORINFO dst);  /* dwSize-wise */
int   iw_errinfo_thread_out(LPIMAPERRORINFO dst);

/* ---- body_pool.c: message buffers handed to the caller (ImapGetMessage) ---- */
void *iw_body_alloc(size_t size);            /* malloc, or the block ImapFreeMemory kept */
void  iw_body_release(void *p);              /* ImapFreeMemory: keeps one large block */
void  iw_body_pool_drain(void);              /* the last ImapUninitialize */

/* ---- clock.c ---- */
int64_t iw_now_us(void);
int64_t iw_now_ms(void);

/* ---- life.c: whether the library is between ImapInitialize and the last Uninitialize ---- */
int  iw_initialized(void);
void iw_set_initialized(int count);          /* api/init.c only, under its lock */

/* ---- handles.c: index + generation table; lookups never dereference bad values ---- */
enum iw_kind { IW_KIND_CLIENT = 1, IW_KIND_FORWARD = 2 };
int       iw_handles_init(void);
void      iw_handles_shutdown(void (*free_obj)(int kind, void *obj));
uintptr_t iw_handle_add(int kind, void *obj);             /* 0 when out of memory */
void     *iw_handle_get(uintptr_t h, int kind);           /* NULL if stale or forged */
void     *iw_handle_remove(uintptr_t h, int kind);        /* NULL if stale or forged */
/* Runs fn(obj, arg) with the table locked, *rc = its result (fn may be NULL: a lookup
 * only); returns the object, or NULL if stale or forged. */
void     *iw_handle_visit(uintptr_t h, int kind, int (*fn)(void *obj, void *arg), void *arg,
                          int *rc);

/* ---- thread.c ---- */
DWORD iw_thread_id(void);

/* ---- pollset.c: an SDK poll set as poll(2) wants it (out has IMAPWIRE_POLLSET_MAX) ---- */
nfds_t iw_pollset_to_pollfd(const imapwire_pollset *ps, struct pollfd *out);

/* ---- strutil.c: strings, builders and wiping ---- */
char  *iw_strdup(const char *s);              /* NULL in, NULL out */
int    iw_strcaseeq(const char *a, size_t alen, const char *b);
size_t iw_strlcpy(char *dst, const char *src, size_t size);
void   iw_wipe(void *p, size_t n);            /* OPENSSL_cleanse: not optimised away */
void   iw_free_secret(char *s);               /* wipe, then free; NULL is fine */

typedef struct iw_sb {
    char  *p;
    size_t len, cap;
    int    err;                   /* first failure; later adds do nothing */
} iw_sb;
int  iw_sb_add(iw_sb *sb, const void *p, size_t n);
int  iw_sb_str(iw_sb *sb, const char *s);
int  iw_sb_quoted(iw_sb *sb, const char *s);   /* caller checked iw_quotable */
int  iw_quotable(const char *s);
void iw_sb_free(iw_sb *sb);                    /* wipes: builders may hold secrets */

#endif /* IW_RUNTIME_H */
