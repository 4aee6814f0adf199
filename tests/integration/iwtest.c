/* iwtest.c: the shared integration-test helpers (harness env, fixture processes,
 * resource counters). Every wait here is bounded in time. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "iwtest.h"

long long iwt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads to the end rather than trusting the size: /proc files report 0. */
char *iwt_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 65536, len = 0, n;
    char *buf;
    if (!f)
        return strdup("");
    buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            ck_assert_msg(cap < (256u << 20), "%s is too large for a test", path);
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static void copy_value(char *dst, size_t size, const char *v)
{
    ck_assert_msg(strlen(v) < size, "env value too long: %s", v);
    strcpy(dst, v);
}

void iwt_dovecot_load(iwt_dovecot *d)
{
    const char *path = getenv("IW_DOVECOT_ENV");
    ck_assert_msg(path != NULL, "IW_DOVECOT_ENV not set (run through ctest)");
    iwt_dovecot_load_file(d, path);
}

void iwt_dovecot_load_file(iwt_dovecot *d, const char *path)
{
    char line[1024];
    FILE *f;

    memset(d, 0, sizeof *d);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s: is the dovecot fixture running?", path);
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '='), *v;
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (!eq)
            continue;
        *eq = '\0';
        v = eq + 1;
        if (!strcmp(line, "DOVECOT_HOST")) copy_value(d->host, sizeof d->host, v);
        else if (!strcmp(line, "DOVECOT_PORT")) d->port = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(line, "DOVECOT_USER")) copy_value(d->user, sizeof d->user, v);
        else if (!strcmp(line, "DOVECOT_PASS")) copy_value(d->pass, sizeof d->pass, v);
        else if (!strcmp(line, "DOVECOT_USER2")) copy_value(d->user2, sizeof d->user2, v);
        else if (!strcmp(line, "DOVECOT_PASS2")) copy_value(d->pass2, sizeof d->pass2, v);
        else if (!strcmp(line, "DOVECOT_LOG")) copy_value(d->log, sizeof d->log, v);
        else if (!strcmp(line, "DOVECOT_MSG1")) copy_value(d->msg1, sizeof d->msg1, v);
        else if (!strcmp(line, "DOVECOT_DIR")) copy_value(d->dir, sizeof d->dir, v);
        else if (!strcmp(line, "DOVECOT_IMAPS_PORT")) d->imaps_port = (unsigned)strtoul(v, NULL, 10);
    }
    fclose(f);
    ck_assert_msg(d->port > 0 && d->host[0] && d->user[0], "incomplete env file %s", path);
}

void iwt_spawn(iwt_fixture *f, const char *const *argv, const char *what)
{
    const char *tmp = getenv("IW_TMPDIR");
    char portfile[512];
    const char *args[24];
    static int seq;
    long long until;
    int n;

    ck_assert_msg(tmp != NULL, "IW_TMPDIR not set (run through ctest)");
    mkdir(tmp, 0755);
    snprintf(portfile, sizeof portfile, "%s/spawn-%d-%d-%s.port", tmp, (int)getpid(), ++seq, what);
    unlink(portfile);
    for (n = 0; argv[n] != NULL && n < 20; n++)
        args[n] = argv[n];
    args[n++] = "--port-file";
    args[n++] = portfile;
    args[n] = NULL;

    f->pid = fork();
    ck_assert_int_ge(f->pid, 0);
    if (f->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    /* The fixture renames the port file into place, so a read sees all or nothing. */
    until = iwt_now_ms() + 10000;
    while (iwt_now_ms() < until) {
        FILE *pf = fopen(portfile, "r");
        if (pf) {
            unsigned port = 0;
            int ok = fscanf(pf, "%u", &port) == 1;
            fclose(pf);
            if (ok && port) {
                f->port = port;
                unlink(portfile);
                return;
            }
        }
        usleep(10000);
    }
    iwt_fixture_stop(f);
    ck_abort_msg("fixture %s did not start within 10 s", what);
}

void iwt_fixture_start(iwt_fixture *f, const char *scenario, int max_conns)
{
    const char *bin = getenv("IW_FIXTURE_BIN");
    const char *tmp = getenv("IW_TMPDIR");
    char maxc[32];
    static int seq;
    const char *argv[12];

    memset(f, 0, sizeof *f);
    ck_assert_msg(bin != NULL && tmp != NULL, "IW_FIXTURE_BIN/IW_TMPDIR not set (run through ctest)");
    mkdir(tmp, 0755);
    snprintf(f->log, sizeof f->log, "%s/fixture-%d-%d-%s.log", tmp, (int)getpid(), ++seq, scenario);
    unlink(f->log);
    snprintf(maxc, sizeof maxc, "%d", max_conns > 0 ? max_conns : 1000);
    argv[0] = bin;
    argv[1] = scenario;
    argv[2] = "--log";
    argv[3] = f->log;
    argv[4] = "--max-conns";
    argv[5] = maxc;
    argv[6] = "--idle-exit";
    argv[7] = "30";
    argv[8] = NULL;
    iwt_spawn(f, argv, scenario);
}

void iwt_fixture_stop(iwt_fixture *f)
{
    long long until;
    int status;

    if (f->in_fd > 0) {
        close(f->in_fd);
        f->in_fd = 0;
    }
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    until = iwt_now_ms() + 5000;
    while (iwt_now_ms() < until) {
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            f->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, &status, 0);
    f->pid = 0;
}

/* A port nobody listens on right now: bind port 0, read it, close. */
unsigned iwt_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port;
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Whether something listens on 127.0.0.1:port, read from the kernel's table rather than
 * by connecting (a probe connection would be one more client for the server). */
int iwt_port_listening(unsigned port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512], want[32];
    int found = 0;
    if (f == NULL)
        return 0;
    snprintf(want, sizeof want, "0100007F:%04X", port);
    while (!found && fgets(line, sizeof line, f)) {
        char local[64], remote[64], st[8];
        if (sscanf(line, " %*s %63s %63s %7s", local, remote, st) == 3 &&
            strcmp(local, want) == 0 && strcmp(st, "0A") == 0)
            found = 1;
    }
    fclose(f);
    return found;
}

void iwt_tls_server_start(iwt_fixture *f, const char *certs_dir, const char *cert,
                          const char *script)
{
    int pfd[2];
    char certfile[600], keyfile[600], accept[64];
    long long until;
    int attempt;

    memset(f, 0, sizeof *f);
    snprintf(certfile, sizeof certfile, "%s/%s.pem", certs_dir, cert);
    snprintf(keyfile, sizeof keyfile, "%s/%s.key", certs_dir, cert);
    for (attempt = 0; attempt < 5; attempt++) {
        f->port = iwt_free_port();
        snprintf(accept, sizeof accept, "127.0.0.1:%u", f->port);
        ck_assert_int_eq(pipe(pfd), 0);
        f->pid = fork();
        ck_assert_int_ge(f->pid, 0);
        if (f->pid == 0) {
            int devnull = open("/dev/null", O_RDWR);
            dup2(pfd[0], 0);
            close(pfd[0]);
            close(pfd[1]);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept,
                   "-cert", certfile, "-key", keyfile, (char *)NULL);
            _exit(127);
        }
        close(pfd[0]);
        f->in_fd = pfd[1];
        /* s_server relays its stdin to the first client it accepts, so a server that
         * gets a script must see exactly one client. */
        if (script != NULL)
            ck_assert_int_eq(write(f->in_fd, script, strlen(script)), (ssize_t)strlen(script));
        until = iwt_now_ms() + 5000;
        while (iwt_now_ms() < until) {
            if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
                f->pid = 0;
                break;
            }
            if (iwt_port_listening(f->port))
                return;
            usleep(20000);
        }
        if (f->pid > 0)
            iwt_fixture_stop(f);
    }
    ck_abort_msg("openssl s_server with %s did not start", cert);
}

int iwt_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

/* Under ASan, malloc is ASan's and mallinfo2 reads 0: ask ASan's allocator instead,
 * so heap checks measure in both builds rather than passing vacuously in one. */
#if defined(__SANITIZE_ADDRESS__)
/* libasan exports it; GCC ships no header for it (clang's allocator_interface.h) */
size_t __sanitizer_get_current_allocated_bytes(void);
size_t iwt_heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
size_t iwt_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

void iwt_assert_error_at(DWORD expected, const char *file, int line)
{
    DWORD got = ImapGetLastError();
    char want_text[128], got_text[128];
    if (got == expected)
        return;
    ImapGetErrorString(expected, want_text, (INT)sizeof want_text);
    ImapGetErrorString(got, got_text, (INT)sizeof got_text);
    ck_abort_msg("%s:%d: expected error %u (%s), got %u (%s)", file, line,
                 (unsigned)expected, want_text, (unsigned)got, got_text);
}

void iwt_env_value(const char *path, const char *key, char *out, size_t size)
{
    char line[1024];
    size_t klen = strlen(key);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    ck_assert_msg(f != NULL, "cannot open %s", path);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            ck_assert(strlen(line + klen + 1) < size);
            strcpy(out, line + klen + 1);
            break;
        }
    }
    fclose(f);
}

void iwt_sshd_load(iwt_sshd *e, const char *path)
{
    char num[32];
    memset(e, 0, sizeof *e);
    iwt_env_value(path, "SSHD_HOST", e->host, sizeof e->host);
    iwt_env_value(path, "SSHD_PORT", num, sizeof num);
    e->port = (unsigned)strtoul(num, NULL, 10);
    iwt_env_value(path, "SSHD_PID", num, sizeof num);
    e->pid = atoi(num);
    iwt_env_value(path, "SSHD_USER", e->user, sizeof e->user);
    iwt_env_value(path, "SSHD_PASS", e->pass, sizeof e->pass);
    iwt_env_value(path, "SSHD_KEY", e->key, sizeof e->key);
    iwt_env_value(path, "SSHD_KEY_PASS_FILE", e->key_pass_file, sizeof e->key_pass_file);
    iwt_env_value(path, "SSHD_KEY_PASSPHRASE", e->passphrase, sizeof e->passphrase);
    iwt_env_value(path, "SSHD_WRONG_KEY", e->wrong_key, sizeof e->wrong_key);
    iwt_env_value(path, "SSHD_KNOWN_HOSTS", e->known, sizeof e->known);
    iwt_env_value(path, "SSHD_KNOWN_HOSTS_HASHED", e->known_hashed, sizeof e->known_hashed);
    iwt_env_value(path, "SSHD_KNOWN_HOSTS_WRONG", e->known_wrong, sizeof e->known_wrong);
    iwt_env_value(path, "SSHD_KNOWN_HOSTS_EMPTY", e->known_empty, sizeof e->known_empty);
    iwt_env_value(path, "SSHD_LOG", e->log, sizeof e->log);
    iwt_env_value(path, "SSHD_DIR", e->dir, sizeof e->dir);
    iwt_env_value(path, "SSHD_HOSTKEY_SHA256", e->fingerprint, sizeof e->fingerprint);
    ck_assert_msg(e->port > 0 && e->user[0] && e->key[0], "incomplete %s", path);
}

int iwt_count_in_file(const char *path, const char *needle)
{
    char *text = iwt_read_file(path), *p = text;
    int n = 0;
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p++;
    }
    free(text);
    return n;
}

void trace_cb(HCLIENT h, UINT dir, LPCTSTR line, INT n, LPVOID param)
{
    trace_log *t = param;
    (void)h;
    if (dir == IMAP_TRACE_SEND)
        t->sends++;
    if (n < 0 || t->len + (size_t)n + 4 >= sizeof t->text)
        return;
    t->text[t->len++] = dir == IMAP_TRACE_SEND ? '>' : dir == IMAP_TRACE_RECV ? '<' : '-';
    memcpy(t->text + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->text[t->len++] = '\n';
    t->text[t->len] = '\0';
}

SECURITYCREDENTIALS iwt_tunnel_creds(const iwt_sshd *e)
{
    SECURITYCREDENTIALS sc;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszTunnelHost = e->host;
    sc.nTunnelPort = e->port;
    sc.lpszTunnelUser = e->user;
    sc.lpszTunnelKey = e->key;
    sc.lpszKnownHosts = e->known;
    return sc;
}

char *iwt_message(size_t n)
{
    char *m = malloc(n + 1);
    size_t i = 0;
    ck_assert_ptr_nonnull(m);
    if (n >= 16) {
        memcpy(m, "Subject: size\r\n\r\n", 16);
        i = 16;
    }
    for (; i < n; i++)
        m[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n'
                                : (char)('!' + (i * 7 + n) % 90);
    m[n] = '\0';
    return m;
}

void iwt_append(HCLIENT h, const char *box, const char *msg, size_t n)
{
    char head[128], *cmd;
    int hl = snprintf(head, sizeof head, "APPEND %s {%zu}\r\n", box, n);
    cmd = malloc((size_t)hl + n + 1);
    ck_assert_ptr_nonnull(cmd);
    memcpy(cmd, head, (size_t)hl);
    memcpy(cmd + hl, msg, n + 1);
    ck_assert_msg(ImapCommand(h, cmd, NULL, 0) == 0, "APPEND %zu: error %u", n,
                  (unsigned)ImapGetLastError());
    free(cmd);
}

long iwt_status_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

int iwt_reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok;
    if (f == NULL)
        return 0;
    ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* The directory name under IW_TMPDIR of a proxy fixture: the suite's own instance when
 * var names one (a suite that counts lines in its log, tests/CMakeLists.txt), else the
 * shared one. */
static const char *iwt_fixture_name(const char *var, const char *shared)
{
    const char *own = getenv(var);
    return own != NULL && own[0] != '\0' ? own : shared;
}

void iwt_dante_load(unsigned *port, char *user, size_t user_size, char *pass, size_t pass_size)
{
    const char *tmp = getenv("IW_TMPDIR");
    char path[600], v[32];
    snprintf(path, sizeof path, "%s/%s/env", tmp ? tmp : "", iwt_fixture_name("IW_OWN_DANTED", "danted"));
    iwt_env_value(path, "DANTED_PORT", v, sizeof v);
    *port = (unsigned)atoi(v);
    iwt_env_value(path, "DANTED_USER", user, user_size);
    iwt_env_value(path, "DANTED_PASS", pass, pass_size);
    ck_assert_msg(*port != 0, "no DANTED_PORT in %s", path);
}

unsigned iwt_env_uint(const char *path, const char *key)
{
    char v[32];
    iwt_env_value(path, key, v, sizeof v);
    ck_assert_msg(v[0] != '\0', "%s missing in %s", key, path);
    return (unsigned)strtoul(v, NULL, 10);
}

void iwt_proxies_load(iwt_dante *d, iwt_tinyproxy *t)
{
    const char *tmp = getenv("IW_TMPDIR");
    char path[600];
    ck_assert_msg(tmp != NULL, "IW_TMPDIR not set (run through ctest)");
    snprintf(path, sizeof path, "%s/%s/env", tmp, iwt_fixture_name("IW_OWN_DANTED", "danted"));
    d->port = iwt_env_uint(path, "DANTED_PORT");
    d->block_port = iwt_env_uint(path, "DANTED_BLOCK_PORT");
    iwt_env_value(path, "DANTED_USER", d->user, sizeof d->user);
    iwt_env_value(path, "DANTED_PASS", d->pass, sizeof d->pass);
    iwt_env_value(path, "DANTED_LOG", d->log, sizeof d->log);
    snprintf(path, sizeof path, "%s/%s/env", tmp, iwt_fixture_name("IW_OWN_TINYPROXY", "tinyproxy"));
    t->port = iwt_env_uint(path, "TINYPROXY_PORT");
    t->auth_port = iwt_env_uint(path, "TINYPROXY_AUTH_PORT");
    t->restricted_port = iwt_env_uint(path, "TINYPROXY_RESTRICTED_PORT");
    iwt_env_value(path, "TINYPROXY_AUTH_USER", t->user, sizeof t->user);
    iwt_env_value(path, "TINYPROXY_AUTH_PASS", t->pass, sizeof t->pass);
    iwt_env_value(path, "TINYPROXY_LOG", t->log, sizeof t->log);
    iwt_env_value(path, "TINYPROXY_AUTH_LOG", t->auth_log, sizeof t->auth_log);
}

void iwt_tunnel_info(IMAPCONNECTINFO *in, const iwt_dovecot *d, SECURITYCREDENTIALS *sc,
                     trace_log *tl)
{
    memset(in, 0, sizeof *in);
    in->dwSize = sizeof *in;
    in->lpszHostName = "127.0.0.1";
    in->nRemotePort = d->port;
    in->nTimeout = 10;
    in->dwOptions = IMAP_OPTION_TUNNEL;
    in->lpCredentials = sc;
    if (tl != NULL) {
        in->lpTraceProc = trace_cb;
        in->lpParam = tl;
    }
}

HCLIENT iwt_fixture_connect(iwt_fixture *f, const char *scenario, int max_conns, UINT timeout,
                            DWORD options)
{
    HCLIENT h;
    iwt_fixture_start(f, scenario, max_conns);
    h = ImapConnect("127.0.0.1", f->port, timeout, options, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "%s: connect error %u", scenario,
                  (unsigned)ImapGetLastError());
    return h;
}

int iwt_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

SECURITYCREDENTIALS iwt_config_creds(const char *alias)
{
    SECURITYCREDENTIALS sc;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.dwOptions = CREDENTIAL_TUNNEL_SSH_CONFIG;
    sc.lpszTunnelHost = alias;
    return sc;
}
