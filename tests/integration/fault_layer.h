/* fault_layer.h: a fault-injection transport for the tests, built with the SDK only: it
 * splits, refuses (AGAIN), delays, truncates and resets I/O on a seeded schedule. */
#ifndef FAULT_LAYER_H
#define FAULT_LAYER_H

#include <stddef.h>

/* Transport strings (schedule syntax in tests/harness/README.md, "The fault layer"):
 *   "fault:SEED:SCHEDULE"                a filter over TCP (with IMAP_OPTION_TUNNEL it
 *                                        carries the SSH hop, so it sits beneath SSH)
 *   "faultproxy:SEED:SCHEDULE;PLUGIN:ARGS"  a bottom type running the proxy plugin
 *                                        PLUGIN (e.g. socks5) whose hop to the proxy
 *                                        goes through the faults, handshake included
 * SCHEDULE is items joined by '+': split[=K][%P] again[%P] delay[=MS][%P] truncate@N
 * reset@N, and truncate@K.N reset@K.N: N bytes into phase K (see fault_anchor).
 * Registers both types; 0 or an ST_ERROR_* code. plugin_dir is where PLUGIN.so is
 * found for "faultproxy" (NULL: only "fault" is registered). */
int fault_register(const char *plugin_dir);

/* What the layers did, summed over every connection since the last fault_stats_reset:
 * so a test can tell that a schedule was applied, and that AGAIN did not spin. */
typedef struct fault_stats {
    unsigned long      calls;       /* send and recv calls that reached a fault layer */
    unsigned long      splits;      /* calls cut short */
    unsigned long      agains;      /* IMAPWIRE_AGAIN answered without I/O */
    unsigned long      delays;      /* holds started */
    unsigned long      truncations; /* end of stream given in place of data */
    unsigned long      resets;      /* calls failed as a reset */
    unsigned long long bytes_in;    /* bytes received through the layers */
    unsigned long long bytes_out;   /* bytes sent through them */
    int                fired_phase; /* the phase of the first truncation or reset, or -1 */
} fault_stats;
void fault_stats_get(fault_stats *out);
/* Starts the next phase of every fault layer: a test calls it before each API call after
 * the connect (phase 0), so a cut can be placed N bytes into a given call's dialogue
 * whatever the length of the responses before it. */
void fault_anchor(void);
void fault_stats_reset(void);

#endif
