/* script_harness.h: runs connects and calls over the "script" transport with either
 * driver and under each I/O variant, and checks what the scripted server saw. */
#ifndef SCRIPT_HARNESS_H
#define SCRIPT_HARNESS_H

#include <imapwire/imapwire.h>
#include "script_transport.h"

/* How the bytes move: plain, 1-byte I/O, would-block storms, both. */
typedef struct sh_variant {
    const char *name;
    size_t      chunk;
    unsigned    storm;
} sh_variant;
extern const sh_variant sh_variants[];
extern const size_t sh_nvariants;

enum { SH_BLOCKING, SH_OWN_LOOP };

/* ImapInitialize and the type's registration; ck-asserted. */
void  sh_setup(void);
void  sh_teardown(void);
/* Connects through run (timeout in seconds): 0 with *h set, or the connect's ST_ERROR_*.
 * A failed own-loop connect is disconnected here. */
DWORD sh_connect(st_run *run, DWORD options, UINT timeout, int driver, HCLIENT *h);
/* A run of steps under variant v (NULL: plain I/O), nothing else set. */
void  sh_run_init(st_run *run, const char *const *steps, const sh_variant *v);
/* One early-close run, set up (steps, I/O, where the server ends); label names it. */
typedef void (*sh_cut_fn)(st_run *run, size_t cut, const char *label, void *arg);
/* For each way the server ends (EOF, reset), under plain and 1-byte I/O, and each cut
 * from first to before end of its total bytes: fn on a run of steps that ends there.
 * Labels start with name. */
void  sh_each_cut(const char *const *steps, const char *name, size_t first, size_t end,
                  size_t total, sh_cut_fn fn, void *arg);
/* A server line longer than any the library takes: prefix, 'x' up to 1 MiB + 16 bytes,
 * then CRLF. The harness keeps it until the next call (one per process). */
const char *sh_big_line(const char *prefix);
/* The steps in a script. */
size_t sh_nsteps(const char *const *steps);
/* After the handle is gone: one layer made and destroyed, no script fault, and (when
 * all is set) every step taken. label names the case in the failure message. */
void  sh_check_server(const st_run *run, int all, const char *label);
/* Every protocol line the library traced since the last sh_setup (IMAP_TRACE_RECV
 * lines prefixed "S: ", IMAP_TRACE_SEND "C: ", notes "I: "), one per line. */
const char *sh_trace_text(void);
/* Connects sh_connect ran in this process (the test's own: Check forks each test). */
unsigned sh_connects(void);
/* Milliseconds on the monotonic clock. */
long long sh_now_ms(void);

/* A test that runs check on every case of the array cases in one process (a fork and an
 * initialisation each would cost more than the cases under ASan; a failure's label names
 * its case), then prints how many cases and connects it ran. */
#define SH_CASES_TEST(name, check, cases)                                                  \
    START_TEST(name)                                                                       \
    {                                                                                      \
        size_t i_;                                                                         \
        for (i_ = 0; i_ < sizeof cases / sizeof cases[0]; i_++)                            \
            check(&cases[i_]);                                                             \
        printf(#name ": %zu cases, %u connects\n", sizeof cases / sizeof cases[0],         \
               sh_connects());                                                             \
    }                                                                                      \
    END_TEST

#endif /* SCRIPT_HARNESS_H */
