/* test_known_hosts.c: SSH host keys read as OpenSSH reads them, against a stock sshd with
 * RSA, ECDSA and Ed25519 keys and known_hosts files written by the real ssh tools. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <libssh2.h>
#include "iwtest.h"

static iwt_sshd stock;             /* three host keys, sshd's own algorithm list */
static iwt_sshd shared;            /* the fixture's (ECDSA and Ed25519) */
static iwt_sshd sha1;              /* stock keys, and ssh-rsa (SHA-1) signatures allowed */
static char sha1_dir[700], fp_sha1_rsa[128];
static iwt_dovecot dv;
static char stock_dir[600], work[600];
static char db_dir[700];           /* Dropbear: a second SSH implementation */
static unsigned db_port;
static pid_t db_pid;
static char fp_ed25519[128], fp_ecdsa[128], fp_rsa[128];

static void run(const char *cmd)
{
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

static void setup(void)
{
    char envp[700];
    snprintf(envp, sizeof envp, "%s/env", stock_dir);
    iwt_sshd_load(&stock, envp);
    iwt_sshd_load(&shared, getenv("IW_SSHD_ENV"));
    iwt_env_value(envp, "SSHD_HOSTKEY_SHA256_ED25519", fp_ed25519, sizeof fp_ed25519);
    iwt_env_value(envp, "SSHD_HOSTKEY_SHA256_ECDSA", fp_ecdsa, sizeof fp_ecdsa);
    iwt_env_value(envp, "SSHD_HOSTKEY_SHA256_RSA", fp_rsa, sizeof fp_rsa);
    iwt_dovecot_load(&dv);
    unsetenv("SSH_AUTH_SOCK");
    unsetenv("IMAPWIRE_SSH_CONFIG");
    snprintf(work, sizeof work, "%s/kh-%d", getenv("IW_TMPDIR"), (int)getpid());
    mkdir(work, 0755);
    ck_assert(ImapInitialize(NULL, NULL));
}

static void teardown(void)
{
    char cmd[700];
    ImapUninitialize();
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    run(cmd);
}

/* The real ssh client, first contact with e: it records the key it negotiates (Ed25519 on
 * OpenSSH 9.2) in file, hashed or not, and logs in with the test key. */
static void ssh_records(const iwt_sshd *e, const char *file, int hashed)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
             "-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o HashKnownHosts=%s "
             "-o IdentitiesOnly=yes -i %s -p %u %s@%s true </dev/null >/dev/null 2>&1",
             file, hashed ? "yes" : "no", e->key, e->port, e->user, e->host);
    run(cmd);
}

/* One key type of e's, from ssh-keyscan, as a plain known_hosts line */
static void keyscan(const iwt_sshd *e, const char *type, const char *file, const char *mode)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ssh-keyscan -t %s -p %u %s 2>/dev/null %s %s", type, e->port,
             e->host, mode, file);
    run(cmd);
}

static SECURITYCREDENTIALS creds(const iwt_sshd *e, const char *known)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(e);
    sc.lpszKnownHosts = known;
    return sc;
}

/* Connects through e with trace, checks the host key fingerprint, logs in. */
static void tunnel_ok(SECURITYCREDENTIALS *sc, const char *fp, trace_log *tl)
{
    IMAPCONNECTINFO in;
    SECURITYINFO si;
    HCLIENT h;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 10;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = sc;
    in.lpTraceProc = trace_cb;
    in.lpParam = tl;
    h = ImapConnectEx(&in);
    ck_assert_msg(h != INVALID_CLIENT, "connect failed: error %u; trace:\n%s",
                  (unsigned)ImapGetLastError(), tl->text);
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ck_assert_int_eq(ImapGetSecurityInformation(h, &si), 0);
    if (fp != NULL)
        ck_assert_str_eq(si.szHostKeyFingerprint, fp);
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    ck_assert_int_eq(ImapDisconnect(h), 0);
}

static void tunnel_fails(SECURITYCREDENTIALS *sc, DWORD error, trace_log *tl)
{
    IMAPCONNECTINFO in;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 10;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = sc;
    in.lpTraceProc = trace_cb;
    in.lpParam = tl;
    ck_assert(ImapConnectEx(&in) == INVALID_CLIENT);
    iwt_assert_error(error);
}

/* The file that ssh itself wrote on first contact, hashed (Debian's default) and plain:
 * the key on file is Ed25519, which libssh2 left alone would not negotiate. */
START_TEST(ssh_written_file)
{
    static trace_log tl;
    char file[700];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts_%d", work, _i);
    ssh_records(&stock, file, _i == 0);
    sc = creds(&stock, file);
    tunnel_ok(&sc, fp_ed25519, &tl);
}
END_TEST

/* Only the ECDSA key: still that one (the types on file come first, whatever they are). */
START_TEST(only_ecdsa)
{
    static trace_log tl;
    char file[700];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    keyscan(&stock, "ecdsa", file, ">");
    sc = creds(&stock, file);
    tunnel_ok(&sc, fp_ecdsa, &tl);
}
END_TEST

/* Only the RSA key, as an older known_hosts has. OpenSSH 9.2 no longer signs with "ssh-rsa"
 * (SHA-1) by default; libssh2 before 1.11 verifies nothing else: the key cannot be
 * checked, and the trace says why. */
START_TEST(only_rsa_stock)
{
    static trace_log tl;
    char file[700];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    keyscan(&stock, "rsa", file, ">");
    sc = creds(&stock, file);
#if LIBSSH2_VERSION_NUM < 0x010b00
    tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_UNKNOWN, &tl);
    ck_assert_msg(strstr(tl.text, "ssh-rsa") != NULL, "no word on the RSA key:\n%s", tl.text);
#else
    tunnel_ok(&sc, fp_rsa, &tl);   /* rsa-sha2-512/256 offered first */
#endif
}
END_TEST

/* Only the RSA key, against a server that still signs with ssh-rsa: RSA is offered first
 * and the key on file is the one checked. */
START_TEST(only_rsa_sha1_server)
{
    static trace_log tl;
    char file[700];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    keyscan(&sha1, "rsa", file, ">");
    sc = creds(&sha1, file);
    tunnel_ok(&sc, fp_sha1_rsa, &tl);
}
END_TEST

/* An Ed25519 entry for a hop of a jump chain, ECDSA for the next: each hop gets the
 * algorithm order of its own entries. */
START_TEST(jump_hops_key_types)
{
    static trace_log tl;
    char file[700], route[300], cmd[1600];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    ssh_records(&stock, file, 1);
    snprintf(cmd, sizeof cmd, "grep -h '^\\[127.0.0.1\\]:%u ecdsa' %s >> %s", shared.port,
             shared.known, file);
    run(cmd);
    snprintf(route, sizeof route, "%s@127.0.0.1:%u,%s@127.0.0.1:%u", stock.user, stock.port,
             shared.user, shared.port);
    sc = creds(&stock, file);
    sc.lpszTunnelHost = route;
    sc.nTunnelPort = 0;
    /* the two servers authorize different keys, but the same password */
    sc.lpszTunnelKey = NULL;
    sc.lpszTunnelPassword = stock.pass;
    /* hop 1 has only its Ed25519 key on file: reaching hop 2 proves it was checked */
    tunnel_ok(&sc, NULL, &tl);
}
END_TEST

/* A library-managed forward checks the same way. */
START_TEST(forward_ssh_written_file)
{
    static trace_log tl;
    char file[700];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    ssh_records(&stock, file, 1);
    sc = creds(&stock, file);
    sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
    tunnel_ok(&sc, NULL, &tl);
}
END_TEST

/* No file named: ~/.ssh/known_hosts, then ~/.ssh/known_hosts2 (HOME from the
 * environment: this program is not setuid). */
START_TEST(default_files)
{
    static trace_log tl;
    char dir[700], file[800];
    SECURITYCREDENTIALS sc;
    snprintf(dir, sizeof dir, "%s/.ssh", work);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(file, sizeof file, "%s/known_hosts%s", dir, _i == 0 ? "" : "2");
    ssh_records(&stock, file, 1);
    setenv("HOME", work, 1);
    sc = creds(&stock, NULL);
    tunnel_ok(&sc, fp_ed25519, &tl);
}
END_TEST

/* The key only in a global file, named by the SSH configuration's GlobalKnownHostsFile. */
START_TEST(global_file)
{
    static trace_log tl;
    char global[700], conf[700], user[700];
    FILE *f;
    SECURITYCREDENTIALS sc;
    snprintf(global, sizeof global, "%s/ssh_known_hosts", work);
    snprintf(user, sizeof user, "%s/empty_known_hosts", work);
    snprintf(conf, sizeof conf, "%s/ssh_config", work);
    ssh_records(&stock, global, 0);
    f = fopen(user, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "Host stock\n HostName 127.0.0.1\n Port %u\n User %s\n IdentityFile %s\n"
            " UserKnownHostsFile %s\n GlobalKnownHostsFile %s\n",
            stock.port, stock.user, stock.key, user, global);
    fclose(f);
    chmod(conf, 0600);
    setenv("IMAPWIRE_SSH_CONFIG", conf, 1);
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.dwOptions = CREDENTIAL_TUNNEL_SSH_CONFIG;
    sc.lpszTunnelHost = "stock";
    tunnel_ok(&sc, fp_ed25519, &tl);
}
END_TEST

/* @revoked on the key the server shows: the mismatch error, even next to a good entry. */
START_TEST(revoked_key)
{
    static trace_log tl;
    char file[700], cmd[3000];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    ssh_records(&stock, file, 0);
    snprintf(cmd, sizeof cmd, "sed -n 's/^/@revoked /p' %s > %s.r && cat %s.r >> %s", file,
             file, file, file);
    run(cmd);
    sc = creds(&stock, file);
    tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_MISMATCH, &tl);
}
END_TEST

/* @cert-authority lines are skipped, with a trace line; the plain entry still serves. */
START_TEST(cert_authority_skipped)
{
    static trace_log tl;
    char file[700], cmd[1600];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    snprintf(cmd, sizeof cmd, "printf '@cert-authority * %%s\\n' \"$(cat %s/user_key.pub)\" > %s",
             stock.dir, file);
    run(cmd);
    ssh_records(&stock, file, 1);
    sc = creds(&stock, file);
    tunnel_ok(&sc, fp_ed25519, &tl);
    ck_assert_msg(strstr(tl.text, "cert-authority") != NULL, "no trace of the skip:\n%s",
                  tl.text);
}
END_TEST

/* Host patterns as ssh reads them: a wildcard matches, a negation vetoes the line. */
START_TEST(patterns_and_negation)
{
    static trace_log tl;
    char file[700], cmd[2400];
    const char *pattern = _i == 0 ? "[127.0.0.?]:%u,other" : "*,![127.0.0.1]:%u";
    char pat[100];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    snprintf(pat, sizeof pat, pattern, stock.port);
    snprintf(cmd, sizeof cmd, "printf '%s %%s\\n' \"$(cut -d' ' -f1,2 %s/ssh_host_ed25519_key.pub)\" > %s",
             pat, stock.dir, file);
    run(cmd);
    sc = creds(&stock, file);
    if (_i == 0)
        tunnel_ok(&sc, fp_ed25519, &tl);
    else
        tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_UNKNOWN, &tl);
}
END_TEST

static int count_lines(const char *file)
{
    char cmd[800];
    FILE *p;
    int n = -1;
    snprintf(cmd, sizeof cmd, "wc -l < %s", file);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (fscanf(p, "%d", &n) != 1)
        n = -1;
    pclose(p);
    return n;
}

/* ssh-keygen -F finds e's name in file (hashed or not); every line of it parses. */
static void keygen_finds(const iwt_sshd *e, const char *file)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "ssh-keygen -F '[%s]:%u' -f %s >/dev/null 2>&1 && "
             "ssh-keygen -l -f %s >/dev/null 2>&1", e->host, e->port, file, file);
    run(cmd);
}

/* accept-new: the first connect records the key (one line, plain or hashed as the SSH
 * configuration says, found by ssh-keygen -F), a later connect without it uses the line. */
START_TEST(accept_new_first_contact)
{
    static trace_log tl, tl2;
    char file[700], conf[700], head[8] = "";
    SECURITYCREDENTIALS sc;
    FILE *f;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    if (_i == 0) {
        sc = creds(&stock, file);  /* the file does not exist yet */
        sc.dwOptions = CREDENTIAL_TUNNEL_ACCEPT_NEW;
    } else {
        snprintf(conf, sizeof conf, "%s/ssh_config", work);
        f = fopen(conf, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "Host stock\n HostName 127.0.0.1\n Port %u\n User %s\n IdentityFile %s\n"
                " UserKnownHostsFile %s\n StrictHostKeyChecking accept-new\n"
                " HashKnownHosts yes\n", stock.port, stock.user, stock.key, file);
        fclose(f);
        chmod(conf, 0600);
        setenv("IMAPWIRE_SSH_CONFIG", conf, 1);
        memset(&sc, 0, sizeof sc);
        sc.dwSize = sizeof sc;
        sc.dwOptions = CREDENTIAL_TUNNEL_SSH_CONFIG;
        sc.lpszTunnelHost = "stock";
    }
    tunnel_ok(&sc, NULL, &tl);
    ck_assert_int_eq(count_lines(file), 1);
    keygen_finds(&stock, file);
    f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(head, sizeof head, f));
    fclose(f);
    ck_assert_int_eq(strncmp(head, "|1|", 3) == 0, _i == 1);
    ck_assert_msg(strstr(tl.text, "added it to") != NULL, "no trace of the new key:\n%s", tl.text);
    /* the line serves a connect that would refuse an unknown key */
    unsetenv("IMAPWIRE_SSH_CONFIG");
    sc = creds(&stock, file);
    tunnel_ok(&sc, NULL, &tl2);
    ck_assert_int_eq(count_lines(file), 1);
}
END_TEST

/* accept-new never takes a changed key, and leaves the file alone. */
START_TEST(accept_new_changed_key_fails)
{
    static trace_log tl;
    char file[700], cmd[2400];
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    snprintf(cmd, sizeof cmd, "printf '[127.0.0.1]:%u %%s\\n' \"$(cut -d' ' -f1,2 "
             "%s/wrong_host_ed25519_key.pub)\" > %s", stock.port, stock.dir, file);
    run(cmd);
    sc = creds(&stock, file);
    sc.dwOptions = CREDENTIAL_TUNNEL_ACCEPT_NEW;
    tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_MISMATCH, &tl);
    ck_assert_int_eq(count_lines(file), 1);
}
END_TEST

typedef struct racer {
    SECURITYCREDENTIALS sc;
    trace_log           tl;
    pthread_barrier_t  *start;
    DWORD               error;
} racer;

static void *race_one(void *arg)
{
    racer *r = arg;
    IMAPCONNECTINFO in;
    HCLIENT h;
    memset(&in, 0, sizeof in);
    in.dwSize = sizeof in;
    in.lpszHostName = "127.0.0.1";
    in.nRemotePort = dv.port;
    in.nTimeout = 10;
    in.dwOptions = IMAP_OPTION_TUNNEL;
    in.lpCredentials = &r->sc;
    in.lpTraceProc = trace_cb;
    in.lpParam = &r->tl;
    pthread_barrier_wait(r->start);
    h = ImapConnectEx(&in);
    r->error = h == INVALID_CLIENT ? ImapGetLastError() : 0;
    if (h != INVALID_CLIENT)
        ImapDisconnect(h);
    return NULL;
}

/* Three first connects at once (different secrets, so three SSH sessions and three
 * checks) while another process (flock(1), as a concurrent ssh would) holds the file's
 * lock: all three find no key, wait for the lock, and each appends its line whole; the
 * file stays valid, every line the server's key. */
START_TEST(accept_new_concurrent)
{
    static racer r[3];
    char file[700], cmd[1600];
    pthread_t t[3];
    pthread_barrier_t b;
    int i, n;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    snprintf(cmd, sizeof cmd, "flock %s sleep 3 >/dev/null 2>&1 & "
             "for i in $(seq 1 50); do flock -n %s true || exit 0; sleep 0.05; done; exit 1",
             file, file);
    run(cmd);
    pthread_barrier_init(&b, NULL, 3);
    for (i = 0; i < 3; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].sc = creds(&stock, file);
        r[i].sc.dwOptions = CREDENTIAL_TUNNEL_ACCEPT_NEW;
        r[i].start = &b;
    }
    r[1].sc.lpszTunnelKey = NULL;
    r[1].sc.lpszTunnelPassword = stock.pass;
    r[2].sc.lpszTunnelKey = stock.key_pass_file;
    r[2].sc.lpszTunnelPassword = stock.passphrase;
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_one, &r[i]), 0);
    for (i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&b);
    for (i = 0; i < 3; i++)
        ck_assert_msg(r[i].error == 0, "racer %d: error %u\n%s", i, (unsigned)r[i].error,
                      r[i].tl.text);
    n = count_lines(file);
    ck_assert_msg(n == 3, "%d lines", n);
    keygen_finds(&stock, file);
    /* whole lines only: three fields each, all the same key */
    snprintf(cmd, sizeof cmd, "test \"$(awk 'NF != 3' %s | wc -l)\" = 0 && "
             "test \"$(cut -d' ' -f2,3 %s | sort -u | wc -l)\" = 1", file, file);
    run(cmd);
}
END_TEST

/* ---- Dropbear (dropbear-bin): RSA, ECDSA and Ed25519 host keys too ---- */

static iwt_sshd dropbear_as_sshd(void)
{
    iwt_sshd e = stock;            /* same account, password and test key */
    e.port = db_port;
    return e;
}

/* Through Dropbear with the Ed25519 key that ssh recorded (libssh2 alone would pick
 * ECDSA here too): by password, by key, through a jump from OpenSSH, and as a forward. */
START_TEST(dropbear_ssh_written_file)
{
    static trace_log tl;
    char file[700], cmd[2000], route[300];
    iwt_sshd db = dropbear_as_sshd();
    SECURITYCREDENTIALS sc;
    snprintf(file, sizeof file, "%s/known_hosts", work);
    /* ssh records the key before it authenticates: how it fails after does not matter */
    snprintf(cmd, sizeof cmd,
             "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
             "-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o HashKnownHosts=yes "
             "-o PreferredAuthentications=none -p %u %s@127.0.0.1 true </dev/null >/dev/null 2>&1; "
             "grep -q . %s", file, db.port, db.user, file);
    run(cmd);
    sc = creds(&db, file);
    switch (_i) {
    case 0:                        /* password */
        sc.lpszTunnelKey = NULL;
        sc.lpszTunnelPassword = db.pass;
        break;
    case 1:                        /* key (~imapwire-ssh/.ssh/authorized_keys) */
        break;
    case 2:                        /* OpenSSH, then Dropbear behind it */
        ssh_records(&stock, file, 1);
        snprintf(route, sizeof route, "%s@127.0.0.1:%u,%s@127.0.0.1:%u", stock.user,
                 stock.port, db.user, db.port);
        sc.lpszTunnelHost = route;
        sc.nTunnelPort = 0;
        break;
    default:                       /* a library-managed forward */
        sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
        break;
    }
    tunnel_ok(&sc, NULL, &tl);
}
END_TEST

static unsigned free_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) != 0)
        return 0;
    close(fd);
    return ntohs(a.sin_port);
}

/* Keys by dropbearkey, the test user's key authorized in its home (Dropbear reads no other
 * file), then dropbear -F on a free loopback port until its banner answers (bounded). */
static int dropbear_start(void)
{
    char cmd[3000], keys[1200] = "", log[800], pidfile[800];
    static const char *const types[] = { "ed25519", "ecdsa", "rsa" };
    int i, tries;
    snprintf(db_dir, sizeof db_dir, "%s-dropbear", stock_dir);
    mkdir(db_dir, 0755);
    for (i = 0; i < 3; i++) {
        size_t o = strlen(keys);
        snprintf(cmd, sizeof cmd, "test -s %s/%s || dropbearkey -t %s -f %s/%s >/dev/null 2>&1",
                 db_dir, types[i], types[i], db_dir, types[i]);
        if (system(cmd) != 0)
            return -1;
        snprintf(keys + o, sizeof keys - o, "-r %s/%s ", db_dir, types[i]);
    }
    snprintf(cmd, sizeof cmd,
             "h=$(getent passwd %s | cut -d: -f6) && mkdir -p $h/.ssh && "
             "(grep -qxF \"$(cat %s/user_key.pub)\" $h/.ssh/authorized_keys 2>/dev/null || "
             "cat %s/user_key.pub >> $h/.ssh/authorized_keys) && chown -R %s $h/.ssh && "
             "chmod 700 $h/.ssh && chmod 600 $h/.ssh/authorized_keys",
             stock.user, stock.dir, stock.dir, stock.user);
    if (system(cmd) != 0)
        return -1;
    snprintf(log, sizeof log, "%s/dropbear.log", db_dir);
    snprintf(pidfile, sizeof pidfile, "%s/dropbear.pid", db_dir);
    for (tries = 0; tries < 5 && db_pid == 0; tries++) {
        char port[32];
        db_port = free_port();
        snprintf(port, sizeof port, "127.0.0.1:%u", db_port);
        db_pid = fork();
        if (db_pid == 0) {
            char *argv[16];
            int n = 0, fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            char *tok = strtok(keys, " ");
            if (fd >= 0) {
                dup2(fd, 2);
                dup2(fd, 1);
            }
            argv[n++] = "dropbear";
            argv[n++] = "-F";
            argv[n++] = "-E";
            argv[n++] = "-p";
            argv[n++] = port;
            /* its own pid file: dropbear removes it on exit (never name a shared file) */
            argv[n++] = "-P";
            argv[n++] = pidfile;
            for (; tok != NULL && n < 14; tok = strtok(NULL, " "))
                argv[n++] = tok;
            argv[n] = NULL;
            execvp("dropbear", argv);
            _exit(127);
        }
        for (i = 0; i < 100 && !iwt_port_listening(db_port); i++) {
            if (waitpid(db_pid, NULL, WNOHANG) == db_pid) {
                db_pid = 0;        /* the port was taken meanwhile: another one */
                break;
            }
            usleep(50000);
        }
        if (db_pid != 0 && !iwt_port_listening(db_port)) {
            kill(db_pid, SIGKILL);
            waitpid(db_pid, NULL, 0);
            return -1;
        }
    }
    return db_pid != 0 ? 0 : -1;
}

static void dropbear_stop(void)
{
    char cmd[800];
    if (db_pid > 0) {
        kill(db_pid, SIGTERM);
        waitpid(db_pid, NULL, 0);
        db_pid = 0;
    }
    if (db_dir[0] != '\0') {
        snprintf(cmd, sizeof cmd, "rm -rf %s", db_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "%s failed\n", cmd);
    }
}

/* A private harness sshd in dir with SSHD_STOCK=yes and extra sshd_config lines (or
 * NULL); stopped and removed when start is 0. 0 or -1. */
static int stock_sshd(const char *dir, const char *extra, int start)
{
    char cmd[2000], conf[800] = "";
    if (start && extra != NULL) {
        FILE *f;
        snprintf(conf, sizeof conf, "%s.conf", dir);
        f = fopen(conf, "w");
        if (f == NULL)
            return -1;
        fputs(extra, f);
        fclose(f);
    }
    if (start)
        snprintf(cmd, sizeof cmd, "SSHD_STOCK=yes %s%s %s/../harness/sshd.sh start %s >/dev/null 2>&1",
                 conf[0] ? "SSHD_EXTRA_CONF=" : "", conf, getenv("IW_TESTS_DIR"), dir);
    else
        snprintf(cmd, sizeof cmd, "%s/../harness/sshd.sh stop %s >/dev/null 2>&1; rm -rf %s %s.conf",
                 getenv("IW_TESTS_DIR"), dir, dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void servers_down(void)
{
    dropbear_stop();
    stock_sshd(sha1_dir, NULL, 0);
    stock_sshd(stock_dir, NULL, 0);
}

/* Once for the suite, in the runner's process (ck_ calls are allowed here); whatever
 * started is stopped again if the rest fails. */
static void servers_up(void)
{
    char envp[800];
    int ok = stock_sshd(stock_dir, NULL, 1) == 0 &&
             stock_sshd(sha1_dir, "HostKeyAlgorithms +ssh-rsa\n", 1) == 0;
    if (ok) {
        snprintf(envp, sizeof envp, "%s/env", sha1_dir);
        iwt_sshd_load(&sha1, envp);
        iwt_env_value(envp, "SSHD_HOSTKEY_SHA256_RSA", fp_sha1_rsa, sizeof fp_sha1_rsa);
        snprintf(envp, sizeof envp, "%s/env", stock_dir);
        iwt_sshd_load(&stock, envp);
        ok = dropbear_start() == 0;  /* it uses stock's account and key */
    }
    if (!ok)
        servers_down();
    ck_assert_msg(ok, "a server did not start (sshd.sh, or dropbear: install dropbear-bin)");
}

int main(void)
{
    Suite *s = suite_create("known_hosts");
    TCase *tc = tcase_create("known_hosts");
    SRunner *sr;
    int failed;

    if (getenv("IW_TMPDIR") == NULL || getenv("IW_SSHD_ENV") == NULL) {
        fprintf(stderr, "run through ctest\n");
        return EXIT_FAILURE;
    }
    snprintf(stock_dir, sizeof stock_dir, "%s/sshd-stock-%d", getenv("IW_TMPDIR"), (int)getpid());
    snprintf(sha1_dir, sizeof sha1_dir, "%s-sha1", stock_dir);
    tcase_add_unchecked_fixture(tc, servers_up, servers_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, ssh_written_file, 0, 2);
    tcase_add_test(tc, only_ecdsa);
    tcase_add_test(tc, only_rsa_stock);
    tcase_add_test(tc, only_rsa_sha1_server);
    tcase_add_test(tc, jump_hops_key_types);
    tcase_add_test(tc, forward_ssh_written_file);
    tcase_add_loop_test(tc, default_files, 0, 2);
    tcase_add_test(tc, global_file);
    tcase_add_test(tc, revoked_key);
    tcase_add_test(tc, cert_authority_skipped);
    tcase_add_loop_test(tc, patterns_and_negation, 0, 2);
    tcase_add_loop_test(tc, accept_new_first_contact, 0, 2);
    tcase_add_test(tc, accept_new_changed_key_fails);
    tcase_add_test(tc, accept_new_concurrent);
    tcase_add_loop_test(tc, dropbear_ssh_written_file, 0, 4);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
