/* test_plugins.c: the "command" transport plugin against Dovecot (directly and through
 * OpenSSH), and the plugin loader and registry rules seen from a program's side. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <imapwire/imapwire.h>
#include "iwtest.h"

/* ---- helpers ---- */

/* IMAP_TRACE_INFO notes of the current test (each test runs in its own process). */
static char g_info[1 << 16];
static size_t g_info_len;

static void collect_info(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    if (dir != IMAP_TRACE_INFO || len < 0)
        return;
    if (g_info_len + (size_t)len + 2 < sizeof g_info) {
        memcpy(g_info + g_info_len, line, (size_t)len);
        g_info_len += (size_t)len;
        g_info[g_info_len++] = '\n';
        g_info[g_info_len] = '\0';
    }
}

static HCLIENT connect_via(const char *transport, UINT timeout)
{
    IMAPCONNECTINFO ci;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    /* A command transport goes nowhere by name; the host only has to be valid. */
    ci.lpszHostName = "localhost";
    ci.nTimeout = timeout;
    ci.lpszTransport = transport;
    ci.lpTraceProc = collect_info;
    return ImapConnectEx(&ci);
}

static void dovecot_conf(char *out, size_t size)
{
    const char *env = getenv("IW_DOVECOT_ENV");
    ck_assert_msg(env != NULL, "IW_DOVECOT_ENV not set (run through ctest)");
    iwt_env_value(env, "DOVECOT_CONF", out, size);
    ck_assert_msg(out[0] != '\0', "no DOVECOT_CONF in %s", env);
}

/* Dovecot's imap run for the harness account: as root, doveadm looks the user up and
 * the imap process drops to the mail user; the greeting is PREAUTH. */
static void doveadm_transport(char *out, size_t size)
{
    char conf[512];
    dovecot_conf(conf, sizeof conf);
    ck_assert_int_lt(snprintf(out, size, "command:doveadm -c %s exec imap -u imapwire", conf),
                     (int)size);
}

/* Children of pid (from /proc), and how many of them are zombies. */
static int children_of(pid_t parent, pid_t *out, int max, int *zombies)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    if (zombies)
        *zombies = 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], *rp, state;
        int ppid;
        FILE *f;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        buf[0] = '\0';
        if (fgets(buf, sizeof buf, f) == NULL)
            buf[0] = '\0';
        fclose(f);
        /* "pid (comm) S ppid": comm may hold spaces and parentheses, so from the last ')' */
        rp = strrchr(buf, ')');
        if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || ppid != parent)
            continue;
        if (state == 'Z' && zombies)
            (*zombies)++;
        if (n < max)
            out[n] = (pid_t)atoi(e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void assert_no_children(void)
{
    pid_t kids[16];
    int zombies, n = children_of(getpid(), kids, 16, &zombies);
    ck_assert_msg(n == 0, "%d child process(es) left (%d zombie), first pid %d", n, zombies,
                  n > 0 ? (int)kids[0] : 0);
}

static void proc_comm(pid_t pid, char *out, size_t size)
{
    char path[64];
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    out[0] = '\0';
    if ((f = fopen(path, "r")) != NULL) {
        if (fgets(out, (int)size, f) == NULL)
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
}

static long proc_uid(pid_t pid)
{
    char path[64], line[256];
    long uid = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %ld", &uid) == 1)
            break;
    fclose(f);
    return uid;
}

/* Finds a process named comm among the descendants of pid (three levels at most). */
static pid_t find_descendant(pid_t pid, const char *comm, int depth)
{
    pid_t kids[16];
    int i, n = children_of(pid, kids, 16, NULL);
    for (i = 0; i < n && i < 16; i++) {
        char name[64];
        pid_t found;
        proc_comm(kids[i], name, sizeof name);
        if (strcmp(name, comm) == 0)
            return kids[i];
        if (depth > 1 && (found = find_descendant(kids[i], comm, depth - 1)) > 0)
            return found;
    }
    return 0;
}

static void sdk_plugin_path(const char *name, char *out, size_t size)
{
    const char *b = getenv("IW_BUILD_DIR");
    ck_assert_msg(b != NULL, "IW_BUILD_DIR not set (run through ctest)");
    ck_assert_int_lt(snprintf(out, size, "%s/sdk-plugins/%s.so", b, name), (int)size);
    ck_assert_msg(access(out, R_OK) == 0, "%s was not built", out);
}

static void setup(void)
{
    /* The library must not need SIGPIPE ignored: the default kills, as in a plain program. */
    signal(SIGPIPE, SIG_DFL);
    g_info_len = 0;
    g_info[0] = '\0';
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    ImapUninitialize();
}

/* ---- the command transport ---- */

START_TEST(test_command_preauth_dovecot)
{
    char transport[700], buf[4096];
    iwt_dovecot d;
    IMAPMAILBOX mb;
    struct passwd *pw;
    pid_t imap;
    DWORD len;
    char *want;
    HCLIENT h;

    iwt_dovecot_load(&d);
    doveadm_transport(transport, sizeof transport);
    h = connect_via(transport, 10);
    ck_assert_msg(h != INVALID_CLIENT, "connect through %s failed: %u\n%s", transport,
                  (unsigned)ImapGetLastError(), g_info);
    /* PREAUTH: the session starts authenticated, so a LOGIN is refused before it is sent. */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, d.user, d.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_ALREADY_AUTHENTICATED);
    memset(&mb, 0, sizeof mb);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 2);
    len = sizeof buf;
    ck_assert_int_eq(ImapGetMessage(h, 1, 0, buf, &len, 0), 0);
    want = iwt_read_file(d.msg1);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(buf, want, len), 0);
    free(want);

    /* Root started doveadm; the imap process must run as the mail user, not as root. */
    imap = find_descendant(getpid(), "imap", 3);
    ck_assert_msg(imap > 0, "no imap process below us");
    pw = getpwnam("imapwire-mail");
    if (pw != NULL && getuid() == 0)
        ck_assert_int_eq(proc_uid(imap), (long)pw->pw_uid);
    ck_assert_ptr_nonnull(strstr(g_info, "command: pid "));
    /* only the program's name is traced, never the rest of the command line */
    ck_assert_msg(strstr(g_info, "exec imap") == NULL, "%s", g_info);

    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* Dovecot's goodbye on its stderr is in the trace, and the child is reaped. */
    ck_assert_msg(strstr(g_info, "command: stderr: imap(imapwire)") != NULL, "%s", g_info);
    ck_assert_msg(strstr(g_info, "exited with status 0") != NULL, "%s", g_info);
    assert_no_children();
}
END_TEST

START_TEST(test_command_exits_at_once)
{
    long long t0 = iwt_now_ms(), ms;
    ck_assert(connect_via("command:true", 10) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ms = iwt_now_ms() - t0;
    printf("command: 'true' fails the connect in %lld ms\n", ms);
    ck_assert_int_lt(ms, 2000);
    assert_no_children();
}
END_TEST

START_TEST(test_command_garbage)
{
    ck_assert(connect_via("command:echo 'HTTP/1.0 400 this is no IMAP server'", 10) ==
              INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_RESPONSE);
    assert_no_children();
}
END_TEST

START_TEST(test_command_stderr_trace)
{
    /* 300 digits: cut into pieces, never overflowing the plugin's line buffer. */
    ck_assert(connect_via("command:echo first-stderr-line >&2; printf 'tab\\there\\n' >&2; "
                          "printf '%0300d\\n' 7 >&2; exit 3", 10) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_msg(strstr(g_info, "command: stderr: first-stderr-line\n") != NULL, "%s", g_info);
    ck_assert_msg(strstr(g_info, "command: stderr: tab?here\n") != NULL, "%s", g_info);
    ck_assert_msg(strstr(g_info, "00007\n") != NULL, "%s", g_info);
    ck_assert_msg(strstr(g_info, "exited with status 3") != NULL, "%s", g_info);
    assert_no_children();
}
END_TEST

START_TEST(test_command_not_found)
{
    ck_assert(connect_via("command:/nonexistent/imapd --serve", 10) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_msg(strstr(g_info, "not found") != NULL, "%s", g_info);
    ck_assert_msg(strstr(g_info, "exited with status 127") != NULL, "%s", g_info);
}
END_TEST

START_TEST(test_command_empty_is_invalid)
{
    ck_assert(connect_via("command:", 10) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
    ck_assert(connect_via("command", 10) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

/* A child that neither exits on EOF nor on SIGTERM is killed, within bounds. */
START_TEST(test_command_stubborn_child)
{
    long long t0;
    HCLIENT h = connect_via("command:trap '' TERM; printf '* PREAUTH [CAPABILITY IMAP4rev1] "
                            "stubborn\\r\\n'; exec sleep 60", 1);
    ck_assert_msg(h != INVALID_CLIENT, "%u\n%s", (unsigned)ImapGetLastError(), g_info);
    t0 = iwt_now_ms();
    ImapDisconnect(h);     /* LOGOUT gets no answer: bounded by the 1 s timeout */
    printf("command: disconnect from a child that ignores EOF and SIGTERM: %lld ms\n",
           iwt_now_ms() - t0);
    ck_assert_int_lt(iwt_now_ms() - t0, 4000);
    ck_assert_msg(strstr(g_info, "SIGTERM") != NULL && strstr(g_info, "SIGKILL") != NULL,
                  "%s", g_info);
    ck_assert_msg(strstr(g_info, "killed by signal 9") != NULL, "%s", g_info);
    assert_no_children();
}
END_TEST

/* Writing to a child that closed its stdin must fail cleanly, not raise SIGPIPE. */
START_TEST(test_command_no_sigpipe)
{
    sigset_t pending;
    char res[256];
    HCLIENT h = connect_via("command:printf '* PREAUTH [CAPABILITY IMAP4rev1] bye soon\\r\\n'; "
                            "exec 0</dev/null; sleep 0.3", 5);
    ck_assert_msg(h != INVALID_CLIENT, "%u\n%s", (unsigned)ImapGetLastError(), g_info);
    usleep(100 * 1000);    /* stdin closed, stdout still open */
    ck_assert_int_eq(ImapCommand(h, "NOOP", res, (INT)sizeof res), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_CONNECTION_CLOSED);
    ck_assert_int_eq(sigpending(&pending), 0);
    ck_assert(!sigismember(&pending, SIGPIPE));
    ImapDisconnect(h);
    assert_no_children();
}
END_TEST

/* The sshd fixture's account may not run doveadm for another user, so through SSH the
 * account runs Dovecot's imap for itself, on a Maildir seeded with the harness's two
 * messages (and written with a config of our own). */
static void ssh_base(const iwt_sshd *s, char *out, size_t size)
{
    ck_assert_int_lt(snprintf(out, size,
                              "ssh -F /dev/null -p %u -i %s -o UserKnownHostsFile=%s "
                              "-o StrictHostKeyChecking=yes -o BatchMode=yes "
                              "-o IdentitiesOnly=yes -o LogLevel=ERROR",
                              s->port, s->key, s->known), (int)size);
}

static void ssh_maildir(const iwt_dovecot *d, const iwt_sshd *s, char *conf, size_t size)
{
    const char *tmp = getenv("IW_TMPDIR");
    char dir[512], cmd[2048];
    FILE *f;

    ck_assert_msg(tmp != NULL, "IW_TMPDIR not set (run through ctest)");
    mkdir(tmp, 0755);
    ck_assert_int_lt(snprintf(dir, sizeof dir, "%s/plugins-sshmail-%d", tmp, (int)getpid()),
                     (int)sizeof dir);
    ck_assert_int_lt(snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && mkdir -p '%s/Maildir/cur' '%s/Maildir/new' '%s/Maildir/tmp' "
             "'%s/run' && cp -p '%s/mail/imapwire/Maildir/cur/'* '%s/Maildir/cur/' && "
             "chown -R '%s' '%s' && chmod 0755 '%s' '%s'",
             dir, dir, dir, dir, dir, d->dir, dir, s->user, dir, tmp, dir), (int)sizeof cmd);
    ck_assert_msg(system(cmd) == 0, "cannot prepare %s", dir);
    ck_assert_int_lt(snprintf(conf, size, "%s/dovecot.conf", dir), (int)size);
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# written by test_plugins: Dovecot's imap run by the SSH account itself\n"
               "mail_location = maildir:%s/Maildir\n"
               "base_dir = %s/run\n"
               "stats_writer_socket_path =\n"
               "log_path = /dev/stderr\n", dir, dir);
    fclose(f);
    chmod(conf, 0644);
}

START_TEST(test_command_ssh_imap)
{
    char base[1200], conf[600], transport[2048];
    iwt_dovecot d;
    iwt_sshd s;
    IMAPMAILBOX mb;
    long long t0;
    HCLIENT h;

    iwt_dovecot_load(&d);
    iwt_sshd_load(&s, getenv("IW_SSHD_ENV"));
    ssh_maildir(&d, &s, conf, sizeof conf);
    ssh_base(&s, base, sizeof base);
    ck_assert_int_lt(snprintf(transport, sizeof transport,
                              "command:%s %s@127.0.0.1 /usr/lib/dovecot/imap -c %s",
                              base, s.user, conf), (int)sizeof transport);
    t0 = iwt_now_ms();
    h = connect_via(transport, 10);
    ck_assert_msg(h != INVALID_CLIENT, "connect through %s failed: %u\n%s", transport,
                  (unsigned)ImapGetLastError(), g_info);
    printf("command: ssh + imap PREAUTH connect in %lld ms\n", iwt_now_ms() - t0);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, d.user, d.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_ALREADY_AUTHENTICATED);
    memset(&mb, 0, sizeof mb);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 2);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    assert_no_children();
    /* the scratch Maildir goes with the test; its config file sits at its top */
    {
        char cmd[700];
        *strrchr(conf, '/') = '\0';
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", conf);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* ssh -W: OpenSSH's stdio forwarding to the harness's listener, so the session is the
 * usual one (OK greeting, LOGIN) carried by the command. */
START_TEST(test_command_ssh_stdio_forward)
{
    char base[1200], transport[2048];
    iwt_dovecot d;
    iwt_sshd s;
    IMAPMAILBOX mb;
    HCLIENT h;

    iwt_dovecot_load(&d);
    iwt_sshd_load(&s, getenv("IW_SSHD_ENV"));
    ssh_base(&s, base, sizeof base);
    ck_assert_int_lt(snprintf(transport, sizeof transport, "command:exec %s -W %s:%u %s@127.0.0.1",
                              base, d.host, d.port, s.user), (int)sizeof transport);
    h = connect_via(transport, 10);
    ck_assert_msg(h != INVALID_CLIENT, "connect through %s failed: %u\n%s", transport,
                  (unsigned)ImapGetLastError(), g_info);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, d.user, d.pass), 0);
    memset(&mb, 0, sizeof mb);
    ck_assert_int_eq(ImapSelectMailbox(h, "INBOX", &mb), 0);
    ck_assert_uint_eq(mb.dwMessages, 2);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    assert_no_children();
}
END_TEST

#define MANY_CONNECTS 1000

START_TEST(test_command_many)
{
    char transport[700], res[256];
    int fds0, i;
    long long t0, ms;

    doveadm_transport(transport, sizeof transport);
    /* one round first, so lazily opened library descriptors are not counted as leaks */
    {
        HCLIENT h = connect_via(transport, 10);
        ck_assert(h != INVALID_CLIENT);
        ImapDisconnect(h);
    }
    fds0 = iwt_count_fds();
    t0 = iwt_now_ms();
    for (i = 0; i < MANY_CONNECTS; i++) {
        HCLIENT h = connect_via(transport, 10);
        ck_assert_msg(h != INVALID_CLIENT, "connect %d failed: %u", i,
                      (unsigned)ImapGetLastError());
        ck_assert_int_eq(ImapCommand(h, "NOOP", res, (INT)sizeof res), 0);
        ck_assert_int_eq(ImapDisconnect(h), 0);
        g_info_len = 0;
    }
    ms = iwt_now_ms() - t0;
    printf("command: %d connect+NOOP+disconnect through doveadm exec imap in %lld ms "
           "(%.1f ms each)\n", MANY_CONNECTS, ms, (double)ms / MANY_CONNECTS);
    ck_assert_int_eq(iwt_count_fds(), fds0);
    assert_no_children();
}
END_TEST

/* ---- loader and registry ---- */

START_TEST(test_load_other_major)
{
    char path[600];
    sdk_plugin_path("badabi", path, sizeof path);
    ck_assert_int_eq(ImapLoadPlugin(path), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_PLUGIN_VERSION);
    /* its init never ran */
    ck_assert_int_eq(ImapUnregisterTransport("badabi"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
}
END_TEST

START_TEST(test_load_type_other_major)
{
    char path[600];
    sdk_plugin_path("typeabi", path, sizeof path);
    ck_assert_int_eq(ImapLoadPlugin(path), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_PLUGIN_VERSION);
    ck_assert_int_eq(ImapUnregisterTransport("typeabi"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
}
END_TEST

START_TEST(test_load_no_entry)
{
    char path[600];
    sdk_plugin_path("noentry", path, sizeof path);
    ck_assert_int_eq(ImapLoadPlugin(path), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_PLUGIN_LOAD_FAILED);
}
END_TEST

START_TEST(test_load_missing)
{
    ck_assert_int_eq(ImapLoadPlugin("/nonexistent/dir/command.so"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_PLUGIN_LOAD_FAILED);
    ck_assert_int_eq(ImapLoadPlugin("no-such-plugin"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_PLUGIN_LOAD_FAILED);
    ck_assert_int_eq(ImapLoadPlugin(NULL), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_INVALID_PARAMETER);
}
END_TEST

START_TEST(test_load_twice)
{
    char path[600];
    const char *b = getenv("IW_BUILD_DIR");
    ck_assert_ptr_nonnull(b);
    snprintf(path, sizeof path, "%s/plugins/command.so", b);
    ck_assert_int_eq(ImapLoadPlugin("command"), 0);
    ck_assert_int_eq(ImapLoadPlugin("command"), 0);
    /* the same file by its path is the same plugin */
    ck_assert_int_eq(ImapLoadPlugin(path), 0);
    /* still registered exactly once: one unregister works, the second finds nothing */
    ck_assert_int_eq(ImapUnregisterTransport("command"), 0);
    ck_assert_int_eq(ImapUnregisterTransport("command"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
}
END_TEST

START_TEST(test_load_name_clash)
{
    char path[600];
    sdk_plugin_path("dupname", path, sizeof path);
    ck_assert_int_eq(ImapLoadPlugin(path), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_EXISTS);
    /* what its init registered before the clash went with it */
    ck_assert_int_eq(ImapUnregisterTransport("dupname-fresh"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
    /* the built-in it clashed with is untouched, and a retry fails the same way */
    ck_assert_int_eq(ImapLoadPlugin(path), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_EXISTS);
    ck_assert(connect_via("dupname-fresh", 5) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
}
END_TEST

START_TEST(test_unregister_in_use)
{
    char transport[700];
    HCLIENT h;
    doveadm_transport(transport, sizeof transport);
    h = connect_via(transport, 10);
    ck_assert(h != INVALID_CLIENT);
    ck_assert_int_eq(ImapUnregisterTransport("command"), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_TRANSPORT_IN_USE);
    /* the connection is unharmed by the refused attempt */
    ck_assert_int_eq(ImapCommand(h, "NOOP", NULL, 0), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    ck_assert_int_eq(ImapUnregisterTransport("command"), 0);
    assert_no_children();
}
END_TEST

/* No ImapLoadPlugin: the first connect that names "command" loads command.so from
 * IMAPWIRE_PLUGIN_PATH. */
START_TEST(test_autoload_first_use)
{
    char transport[700];
    HCLIENT h;
    ck_assert_ptr_nonnull(getenv("IMAPWIRE_PLUGIN_PATH"));
    doveadm_transport(transport, sizeof transport);
    h = connect_via(transport, 10);
    ck_assert_msg(h != INVALID_CLIENT, "%u\n%s", (unsigned)ImapGetLastError(), g_info);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    /* it is registered now, like a plugin loaded by hand */
    ck_assert_int_eq(ImapUnregisterTransport("command"), 0);
}
END_TEST

/* IMAPWIRE_TRANSPORT sends an unchanged ImapConnect through the command. */
START_TEST(test_env_transport)
{
    char transport[700];
    iwt_dovecot d;
    HCLIENT h;

    iwt_dovecot_load(&d);
    doveadm_transport(transport, sizeof transport);
    ck_assert_int_eq(setenv("IMAPWIRE_TRANSPORT", transport, 1), 0);
    h = ImapConnect(d.host, d.port, 10, IMAP_OPTION_NONE, NULL);
    ck_assert_msg(h != INVALID_CLIENT, "%u", (unsigned)ImapGetLastError());
    /* over TCP this LOGIN would work; through the command the session is PREAUTH */
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_DEFAULT, d.user, d.pass), IMAP_ERROR);
    iwt_assert_error(ST_ERROR_ALREADY_AUTHENTICATED);
    ck_assert_int_eq(ImapDisconnect(h), 0);
    unsetenv("IMAPWIRE_TRANSPORT");
    assert_no_children();
}
END_TEST

START_TEST(test_unknown_transport)
{
    ck_assert(connect_via("nosuchtransport:x", 5) == INVALID_CLIENT);
    iwt_assert_error(ST_ERROR_TRANSPORT_NOT_FOUND);
}
END_TEST

static Suite *plugins_suite(void)
{
    Suite *s = suite_create("plugins");
    TCase *cmd = tcase_create("command");
    TCase *ssh = tcase_create("ssh");
    TCase *reg = tcase_create("registry");

    tcase_add_checked_fixture(cmd, setup, teardown);
    tcase_set_timeout(cmd, 120);
    tcase_add_test(cmd, test_command_preauth_dovecot);
    tcase_add_test(cmd, test_command_exits_at_once);
    tcase_add_test(cmd, test_command_garbage);
    tcase_add_test(cmd, test_command_stderr_trace);
    tcase_add_test(cmd, test_command_not_found);
    tcase_add_test(cmd, test_command_empty_is_invalid);
    tcase_add_test(cmd, test_command_stubborn_child);
    tcase_add_test(cmd, test_command_no_sigpipe);
    tcase_add_test(cmd, test_command_many);
    suite_add_tcase(s, cmd);

    tcase_add_checked_fixture(ssh, setup, teardown);
    tcase_set_timeout(ssh, 60);
    tcase_add_test(ssh, test_command_ssh_imap);
    tcase_add_test(ssh, test_command_ssh_stdio_forward);
    suite_add_tcase(s, ssh);

    tcase_add_checked_fixture(reg, setup, teardown);
    tcase_set_timeout(reg, 60);
    tcase_add_test(reg, test_load_other_major);
    tcase_add_test(reg, test_load_type_other_major);
    tcase_add_test(reg, test_load_no_entry);
    tcase_add_test(reg, test_load_missing);
    tcase_add_test(reg, test_load_twice);
    tcase_add_test(reg, test_load_name_clash);
    tcase_add_test(reg, test_unregister_in_use);
    tcase_add_test(reg, test_autoload_first_use);
    tcase_add_test(reg, test_env_transport);
    tcase_add_test(reg, test_unknown_transport);
    suite_add_tcase(s, reg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(plugins_suite());
    int failed;
    /* progress lines (timings) reach ctest's log as they happen */
    setvbuf(stdout, NULL, _IOLBF, 0);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
