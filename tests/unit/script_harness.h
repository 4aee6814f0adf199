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

#endif /* SCRIPT_HARNESS_H */
