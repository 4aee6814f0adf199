/* oom_shim.h: the allocation-failure injector linked into test_oom: every malloc of the
 * process (library, OpenSSL, libssh2, c-ares, libc) is counted and the Nth one can fail. */
#ifndef OOM_SHIM_H
#define OOM_SHIM_H

/* From now on, allocation number n (1 = the next one) fails, once; 0 disarms. */
void oom_arm(long n);
/* From now on, counts allocations without failing any and records in out (up to max) the
 * numbers (as oom_arm takes them) of those made while the exported function name is on
 * the stack; -1 if there is no such function. oom_recorded stops and returns how many
 * were recorded. */
int  oom_record(const char *name, long *out, int max);
int  oom_recorded(void);
/* Disarms; returns whether the armed failure was injected. */
int  oom_disarm(void);
/* Allocations made since the last oom_arm (failed ones included). */
long oom_seen(void);
/* Blocks handed out and not yet freed, over the whole process. */
long oom_live(void);

/* Whether a function whose (exported) name contains part was on the stack of the last
 * injected failure. */
int  oom_stack_has(const char *part);
/* Debugging: print the stack of each injected failure to stderr. */
void oom_show_stack(int on);

#endif
