/* iwtest.h: helpers shared by the integration tests: the Dovecot harness's env file,
 * starting and stopping the scripted misbehaving server, fd counting, log reading. */
#ifndef IWTEST_H
#define IWTEST_H

#include <stddef.h>
#include <sys/types.h>
#include <check.h>
#include <imapwire/imapwire.h>

/* The Dovecot instance started by the ctest fixture (tests/harness/dovecot.sh). */
typedef struct iwt_dovecot {
    char host[64];
    unsigned port;
    char user[64], pass[64];
    char user2[64], pass2[64];
    char log[512];
    char msg1[512];
    char dir[512];
    unsigned imaps_port;           /* 0 when the instance has no IMAPS listener */
} iwt_dovecot;

/* The OpenSSH sshd started by tests/harness/sshd.sh. */
typedef struct iwt_sshd {
    char host[64], user[64], pass[64], key[512], key_pass_file[512], passphrase[64];
    char wrong_key[512], known[512], known_hashed[512], known_wrong[512], known_empty[512];
    char log[512], dir[512], fingerprint[128];
    unsigned port;
    int pid;
} iwt_sshd;
void iwt_sshd_load(iwt_sshd *e, const char *env_path);
/* Tunnel credentials for e: key authentication, the usual known_hosts. */
SECURITYCREDENTIALS iwt_tunnel_creds(const iwt_sshd *e);
/* Credentials that take everything for alias from the SSH configuration. */
SECURITYCREDENTIALS iwt_config_creds(const char *alias);
/* One KEY=value from an env file ("" when absent). */
void iwt_env_value(const char *path, const char *key, char *out, size_t size);
/* Counts lines containing needle in a file. */
int  iwt_count_in_file(const char *path, const char *needle);

/* Loads the env file at path (for suites that start their own instance). */
void iwt_dovecot_load_file(iwt_dovecot *d, const char *path);

/* Loads $IW_DOVECOT_ENV; aborts the test (ck_abort) when it is missing. */
void iwt_dovecot_load(iwt_dovecot *d);

/* A running tests/fixtures/imap_fixture process. */
typedef struct iwt_fixture {
    pid_t pid;
    unsigned port;
    char log[512];
    int in_fd;                     /* s_server's stdin (what it sends), or 0 */
} iwt_fixture;

/* Starts a fixture program (argv[0] = path, NULL-terminated) with --port-file added,
 * and waits (bounded) for the port it publishes. */
void iwt_spawn(iwt_fixture *f, const char *const *argv, const char *what);

/* Starts SCENARIO with --idle-exit and extra args; waits (bounded) for its port. */
void iwt_fixture_start(iwt_fixture *f, const char *scenario, int max_conns);
void iwt_fixture_stop(iwt_fixture *f);
/* Starts SCENARIO (as iwt_fixture_start) and connects to it in clear with timeout (s) and
 * options; fails the test when the connect fails. */
HCLIENT iwt_fixture_connect(iwt_fixture *f, const char *scenario, int max_conns, UINT timeout,
                            DWORD options);
/* The fixture's whole log (malloc'd, NUL-terminated); "" if none. */
char *iwt_read_file(const char *path);

/* Runs `openssl s_server` with a certificate from certs_dir (e.g. "expired") on a free
 * loopback port; it answers TLS handshakes until stopped, and sends the first client to
 * complete one the bytes of script (an IMAP greeting and replies), if not NULL. */
void iwt_tls_server_start(iwt_fixture *f, const char *certs_dir, const char *cert,
                          const char *script);

/* A loopback port nobody listens on right now (bind port 0, read it, close). */
unsigned iwt_free_port(void);
/* Whether something listens on 127.0.0.1:port, from the kernel's table (no probe). */
int  iwt_port_listening(unsigned port);
/* The Dante fixture's port, user and password ($IW_TMPDIR/danted/env); fails the test
 * when it is missing. */
void iwt_dante_load(unsigned *port, char *user, size_t user_size, char *pass, size_t pass_size);

/* The proxies of the harness: Dante (tests/harness/danted.sh) and tinyproxy
 * (tests/harness/tinyproxy.sh), as their env files under $IW_TMPDIR say. */
typedef struct iwt_dante {
    unsigned port, block_port;
    char     user[64], pass[64], log[600];
} iwt_dante;
typedef struct iwt_tinyproxy {
    unsigned port, auth_port, restricted_port;
    char     user[64], pass[64], log[600], auth_log[600];   /* user, pass: the auth one's */
} iwt_tinyproxy;
/* Fills both; fails the test when a port is missing. */
void iwt_proxies_load(iwt_dante *d, iwt_tinyproxy *t);
/* KEY's number in the env file at path; fails the test when it is missing. */
unsigned iwt_env_uint(const char *path, const char *key);

/* Open file descriptors of this process. */
int iwt_count_fds(void);
/* Heap bytes in use: mallinfo2, or ASan's allocator in the sanitizer build. */
size_t iwt_heap_in_use(void);
/* Milliseconds on the monotonic clock. */
long long iwt_now_ms(void);

/* A message of exactly n bytes (malloc'd, NUL after): a header when it fits, then
 * CRLF-ended lines whose bytes depend on n and the position, so a shifted or mixed-up
 * body cannot compare equal. */
char *iwt_message(size_t n);
/* APPENDs msg (n bytes) to box as one literal; fails the test on an error. */
void iwt_append(HCLIENT h, const char *box, const char *msg, size_t n);
/* A KB figure of this process from /proc/self/status ("VmRSS", "VmHWM"); -1 if absent. */
long iwt_status_kb(const char *key);
/* Resets the peak RSS to the current RSS (Linux clear_refs 5); 0 if not allowed. */
int  iwt_reset_peak(void);

/* Every traced line of a connection, one per line, prefixed '>' (sent), '<' (received)
 * or '-' (a library note); sends counts the sent lines, including any cut off. */
typedef struct trace_log {
    char   text[65536];
    size_t len;
    int    sends;
} trace_log;
/* An IMAPTRACEPROC for IMAPCONNECTINFO.lpTraceProc with lpParam a trace_log. */
void trace_cb(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param);

/* A connect to d's IMAP port on 127.0.0.1 through the SSH tunnel of sc (nTimeout 10),
 * traced into tl unless it is NULL; the caller adds anything else. */
void iwt_tunnel_info(IMAPCONNECTINFO *in, const iwt_dovecot *d, SECURITYCREDENTIALS *sc,
                     trace_log *tl);

/* Runs every test of s (CK_NORMAL): EXIT_SUCCESS when none failed, else EXIT_FAILURE. */
int iwt_run_suite(Suite *s);

/* Fails the test with the library's error name and text. */
#define iwt_assert_error(expected) \
    iwt_assert_error_at((expected), __FILE__, __LINE__)
void iwt_assert_error_at(DWORD expected, const char *file, int line);

#endif
