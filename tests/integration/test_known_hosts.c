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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libssh2.h>
#include "iwtest.h"

static iwt_sshd stock;             /* three host keys, sshd's own algorithm list */
static iwt_sshd shared;            /* the fixture's (ECDSA and Ed25519) */
static iwt_sshd sha1;              /* stock keys, and ssh-rsa (SHA-1) signatures allowed */
static char sha1_dir[700], fp_sha1_rsa[128];
static iwt_dovecot dv;
static char stock_dir[600], work[600];
static char known[700];            /* work/known_hosts: the file most cases write */
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
    snprintf(known, sizeof known, "%s/known_hosts", work);
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
 * OpenSSH 9.2) in file, hashed or not, authenticating with the options auth; then the
 * shell command after. */
static void ssh_first_contact(const iwt_sshd *e, const char *file, int hashed, const char *auth,
                              const char *after)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
             "-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o HashKnownHosts=%s "
             "%s -p %u %s@%s true </dev/null >/dev/null 2>&1%s",
             file, hashed ? "yes" : "no", auth, e->port, e->user, e->host, after);
    run(cmd);
}

/* ssh_first_contact logging in with the test key. */
static void ssh_records(const iwt_sshd *e, const char *file, int hashed)
{
    char auth[700];
    snprintf(auth, sizeof auth, "-o IdentitiesOnly=yes -i %s", e->key);
    ssh_first_contact(e, file, hashed, auth, "");
}

/* One key type of e's, from ssh-keyscan, as a plain known_hosts line */
static void keyscan(const iwt_sshd *e, const char *type, const char *file, const char *mode)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ssh-keyscan -t %s -p %u %s 2>/dev/null %s %s", type, e->port,
             e->host, mode, file);
    run(cmd);
}

static SECURITYCREDENTIALS creds(const iwt_sshd *e, const char *file)
{
    SECURITYCREDENTIALS sc = iwt_tunnel_creds(e);
    sc.lpszKnownHosts = file;
    return sc;
}

/* Credentials for the SSH configuration work/ssh_config (IMAPWIRE_SSH_CONFIG names it):
 * Host stock, reached with the test key, and the lines extra. */
static SECURITYCREDENTIALS config_creds(const char *extra)
{
    char conf[700];
    FILE *f;
    snprintf(conf, sizeof conf, "%s/ssh_config", work);
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "Host stock\n HostName 127.0.0.1\n Port %u\n User %s\n IdentityFile %s\n%s",
            stock.port, stock.user, stock.key, extra);
    fclose(f);
    chmod(conf, 0600);
    setenv("IMAPWIRE_SSH_CONFIG", conf, 1);
    return iwt_config_creds("stock");
}

/* A jump route: a, then b behind it (each hop names its port; none in nTunnelPort). */
static void route_via(SECURITYCREDENTIALS *sc, char *route, size_t size, const iwt_sshd *a,
                      const iwt_sshd *b)
{
    snprintf(route, size, "%s@127.0.0.1:%u,%s@127.0.0.1:%u", a->user, a->port, b->user,
             b->port);
    sc->lpszTunnelHost = route;
    sc->nTunnelPort = 0;
}

/* Connects through e with trace, checks the host key fingerprint, logs in. */
static void tunnel_ok(SECURITYCREDENTIALS *sc, const char *fp, trace_log *tl)
{
    IMAPCONNECTINFO in;
    SECURITYINFO si;
    HCLIENT h;
    iwt_tunnel_info(&in, &dv, sc, tl);
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
    iwt_tunnel_info(&in, &dv, sc, tl);
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

/* Only e's key of type on file (from ssh-keyscan): the connect checks that key, whose
 * fingerprint is fp. */
static void only_key_ok(const iwt_sshd *e, const char *type, const char *fp)
{
    static trace_log tl;
    SECURITYCREDENTIALS sc;
    keyscan(e, type, known, ">");
    sc = creds(e, known);
    tunnel_ok(&sc, fp, &tl);
}

/* Only the ECDSA key: still that one (the types on file come first, whatever they are). */
START_TEST(only_ecdsa)
{
    only_key_ok(&stock, "ecdsa", fp_ecdsa);
}
END_TEST

/* Only the RSA key, as an older known_hosts has. OpenSSH 9.2 no longer signs with "ssh-rsa"
 * (SHA-1) by default; libssh2 before 1.11 verifies nothing else: the key cannot be
 * checked, and the trace says why. */
START_TEST(only_rsa_stock)
{
#if LIBSSH2_VERSION_NUM < 0x010b00
    static trace_log tl;
    SECURITYCREDENTIALS sc;
    keyscan(&stock, "rsa", known, ">");
    sc = creds(&stock, known);
    tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_UNKNOWN, &tl);
    ck_assert_msg(strstr(tl.text, "ssh-rsa") != NULL, "no word on the RSA key:\n%s", tl.text);
#else
    only_key_ok(&stock, "rsa", fp_rsa);   /* rsa-sha2-512/256 offered first */
#endif
}
END_TEST

/* Only the RSA key, against a server that still signs with ssh-rsa: RSA is offered first
 * and the key on file is the one checked. */
START_TEST(only_rsa_sha1_server)
{
    only_key_ok(&sha1, "rsa", fp_sha1_rsa);
}
END_TEST

/* An Ed25519 entry for a hop of a jump chain, ECDSA for the next: each hop gets the
 * algorithm order of its own entries. */
START_TEST(jump_hops_key_types)
{
    static trace_log tl;
    char route[300], cmd[1600];
    SECURITYCREDENTIALS sc;
    ssh_records(&stock, known, 1);
    snprintf(cmd, sizeof cmd, "grep -h '^\\[127.0.0.1\\]:%u ecdsa' %s >> %s", shared.port,
             shared.known, known);
    run(cmd);
    sc = creds(&stock, known);
    route_via(&sc, route, sizeof route, &stock, &shared);
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
    SECURITYCREDENTIALS sc;
    ssh_records(&stock, known, 1);
    sc = creds(&stock, known);
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
    char global[700], user[700], extra[1500];
    FILE *f;
    SECURITYCREDENTIALS sc;
    snprintf(global, sizeof global, "%s/ssh_known_hosts", work);
    snprintf(user, sizeof user, "%s/empty_known_hosts", work);
    ssh_records(&stock, global, 0);
    f = fopen(user, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(extra, sizeof extra, " UserKnownHostsFile %s\n GlobalKnownHostsFile %s\n", user,
             global);
    sc = config_creds(extra);
    tunnel_ok(&sc, fp_ed25519, &tl);
}
END_TEST

/* @revoked on the key the server shows: the mismatch error, even next to a good entry. */
START_TEST(revoked_key)
{
    static trace_log tl;
    char cmd[3000];
    SECURITYCREDENTIALS sc;
    ssh_records(&stock, known, 0);
    snprintf(cmd, sizeof cmd, "sed -n 's/^/@revoked /p' %s > %s.r && cat %s.r >> %s", known,
             known, known, known);
    run(cmd);
    sc = creds(&stock, known);
    tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_MISMATCH, &tl);
}
END_TEST

/* @cert-authority lines are skipped, with a trace line; the plain entry still serves. */
START_TEST(cert_authority_skipped)
{
    static trace_log tl;
    char cmd[1600];
    SECURITYCREDENTIALS sc;
    snprintf(cmd, sizeof cmd, "printf '@cert-authority * %%s\\n' \"$(cat %s/user_key.pub)\" > %s",
             stock.dir, known);
    run(cmd);
    ssh_records(&stock, known, 1);
    sc = creds(&stock, known);
    tunnel_ok(&sc, fp_ed25519, &tl);
    ck_assert_msg(strstr(tl.text, "cert-authority") != NULL, "no trace of the skip:\n%s",
                  tl.text);
}
END_TEST

/* Host patterns as ssh reads them: a wildcard matches, a negation vetoes the line. */
START_TEST(patterns_and_negation)
{
    static trace_log tl;
    char cmd[2400];
    const char *pattern = _i == 0 ? "[127.0.0.?]:%u,other" : "*,![127.0.0.1]:%u";
    char pat[100];
    SECURITYCREDENTIALS sc;
    snprintf(pat, sizeof pat, pattern, stock.port);
    snprintf(cmd, sizeof cmd, "printf '%s %%s\\n' \"$(cut -d' ' -f1,2 %s/ssh_host_ed25519_key.pub)\" > %s",
             pat, stock.dir, known);
    run(cmd);
    sc = creds(&stock, known);
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
    char extra[1000], head[8] = "";
    SECURITYCREDENTIALS sc;
    FILE *f;
    if (_i == 0) {
        sc = creds(&stock, known);  /* the file does not exist yet */
        sc.dwOptions = CREDENTIAL_TUNNEL_ACCEPT_NEW;
    } else {
        snprintf(extra, sizeof extra, " UserKnownHostsFile %s\n StrictHostKeyChecking "
                 "accept-new\n HashKnownHosts yes\n", known);
        sc = config_creds(extra);
    }
    tunnel_ok(&sc, NULL, &tl);
    ck_assert_int_eq(count_lines(known), 1);
    keygen_finds(&stock, known);
    f = fopen(known, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(head, sizeof head, f));
    fclose(f);
    ck_assert_int_eq(strncmp(head, "|1|", 3) == 0, _i == 1);
    ck_assert_msg(strstr(tl.text, "added it to") != NULL, "no trace of the new key:\n%s", tl.text);
    /* the line serves a connect that would refuse an unknown key */
    unsetenv("IMAPWIRE_SSH_CONFIG");
    sc = creds(&stock, known);
    tunnel_ok(&sc, NULL, &tl2);
    ck_assert_int_eq(count_lines(known), 1);
}
END_TEST

/* accept-new never takes a changed key, and leaves the file alone. */
START_TEST(accept_new_changed_key_fails)
{
    static trace_log tl;
    char cmd[2400];
    SECURITYCREDENTIALS sc;
    snprintf(cmd, sizeof cmd, "printf '[127.0.0.1]:%u %%s\\n' \"$(cut -d' ' -f1,2 "
             "%s/wrong_host_ed25519_key.pub)\" > %s", stock.port, stock.dir, known);
    run(cmd);
    sc = creds(&stock, known);
    sc.dwOptions = CREDENTIAL_TUNNEL_ACCEPT_NEW;
    tunnel_fails(&sc, ST_ERROR_SSH_HOST_KEY_MISMATCH, &tl);
    ck_assert_int_eq(count_lines(known), 1);
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
    iwt_tunnel_info(&in, &dv, &r->sc, &r->tl);
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
    char cmd[1600];
    pthread_t t[3];
    pthread_barrier_t b;
    int i, n;
    snprintf(cmd, sizeof cmd, "flock %s sleep 3 >/dev/null 2>&1 & "
             "for i in $(seq 1 50); do flock -n %s true || exit 0; sleep 0.05; done; exit 1",
             known, known);
    run(cmd);
    pthread_barrier_init(&b, NULL, 3);
    for (i = 0; i < 3; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].sc = creds(&stock, known);
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
    n = count_lines(known);
    ck_assert_msg(n == 3, "%d lines", n);
    keygen_finds(&stock, known);
    /* whole lines only: three fields each, all the same key */
    snprintf(cmd, sizeof cmd, "test \"$(awk 'NF != 3' %s | wc -l)\" = 0 && "
             "test \"$(cut -d' ' -f2,3 %s | sort -u | wc -l)\" = 1", known, known);
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
    char check[800], route[300];
    iwt_sshd db = dropbear_as_sshd();
    SECURITYCREDENTIALS sc;
    /* ssh records the key before it authenticates: how it fails after does not matter */
    snprintf(check, sizeof check, "; grep -q . %s", known);
    ssh_first_contact(&db, known, 1, "-o PreferredAuthentications=none", check);
    sc = creds(&db, known);
    switch (_i) {
    case 0:                        /* password */
        sc.lpszTunnelKey = NULL;
        sc.lpszTunnelPassword = db.pass;
        break;
    case 1:                        /* key (~imapwire-ssh/.ssh/authorized_keys) */
        break;
    case 2:                        /* OpenSSH, then Dropbear behind it */
        ssh_records(&stock, known, 1);
        route_via(&sc, route, sizeof route, &stock, &db);
        break;
    default:                       /* a library-managed forward */
        sc.dwOptions = CREDENTIAL_TUNNEL_FORWARD;
        break;
    }
    tunnel_ok(&sc, NULL, &tl);
}
END_TEST

/* One Dropbear session shared as with sshd (test_ssh's share and wake cases): 20 connects
 * at once, half to Dovecot and half to a fixture, each reaching its own port; then a 1 MB
 * APPEND beside three NOOP loops on the session (Dropbear's channel windows are small, so
 * the upload waits for many window adjustments other channels' reads take in). */
#define DB_THREADS 20
#define DB_WRITERS 3
static SECURITYCREDENTIALS db_sc;
static unsigned db_targets[2];
static int db_wrong, db_failed;    /* atomic */
static pthread_barrier_t db_barrier;

static void *db_connect_one(void *arg)
{
    long i = (long)arg;
    HCLIENT h;
    pthread_barrier_wait(&db_barrier);
    h = ImapConnect("127.0.0.1", db_targets[i % 2], 10, IMAP_OPTION_TUNNEL, &db_sc);
    if (h == INVALID_CLIENT) {
        fprintf(stderr, "dropbear_shared_session: connect %ld: error %u\n", i,
                (unsigned)ImapGetLastError());
        __atomic_add_fetch(&db_failed, 1, __ATOMIC_ACQ_REL);
        return NULL;
    }
    /* Dovecot says IDLE before login; the fixture does not */
    if (ImapHasCapability(h, "IDLE") != (i % 2 == 0))
        __atomic_add_fetch(&db_wrong, 1, __ATOMIC_ACQ_REL);
    ImapDisconnect(h);
    return NULL;
}

typedef struct db_writer {
    HCLIENT h;
    int     stop, noops, failed;   /* stop: atomic */
} db_writer;

static void *db_noops(void *arg)
{
    db_writer *w = arg;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) && w->noops < 100000) {
        if (ImapCommand(w->h, "NOOP", NULL, 0) != 0) {
            w->failed = (int)ImapGetLastError();
            break;
        }
        w->noops++;
    }
    return NULL;
}

START_TEST(dropbear_shared_session)
{
    char check[800], box[64], cmd[96], *msg;
    iwt_sshd db = dropbear_as_sshd();
    pthread_t t[DB_THREADS];
    db_writer w[DB_WRITERS];
    iwt_fixture f;
    HCLIENT h;
    int i;

    snprintf(check, sizeof check, "; grep -q . %s", known);
    ssh_first_contact(&db, known, 1, "-o PreferredAuthentications=none", check);
    db_sc = creds(&db, known);
    iwt_fixture_start(&f, "normal", 1000);
    db_targets[0] = dv.port;
    db_targets[1] = f.port;
    pthread_barrier_init(&db_barrier, NULL, DB_THREADS);
    for (i = 0; i < DB_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, db_connect_one, (void *)(long)i), 0);
    for (i = 0; i < DB_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&db_barrier);
    iwt_fixture_stop(&f);
    ck_assert_int_eq(__atomic_load_n(&db_failed, __ATOMIC_ACQUIRE), 0);
    ck_assert_msg(__atomic_load_n(&db_wrong, __ATOMIC_ACQUIRE) == 0,
                  "%d of %d connects reached the other port",
                  __atomic_load_n(&db_wrong, __ATOMIC_ACQUIRE), DB_THREADS);

    h = ImapConnect("127.0.0.1", dv.port, 10, IMAP_OPTION_TUNNEL, &db_sc);
    ck_assert_msg(h != INVALID_CLIENT, "error %u", (unsigned)ImapGetLastError());
    ck_assert_int_eq(ImapLogin(h, IMAP_AUTH_PLAIN, dv.user, dv.pass), 0);
    memset(w, 0, sizeof w);
    for (i = 0; i < DB_WRITERS; i++) {
        w[i].h = ImapConnect("127.0.0.1", dv.port, 10,
                             IMAP_OPTION_TUNNEL | IMAP_OPTION_FREETHREAD, &db_sc);
        ck_assert_msg(w[i].h != INVALID_CLIENT, "writer %d: %u", i, (unsigned)ImapGetLastError());
        ck_assert_int_eq(pthread_create(&t[i], NULL, db_noops, &w[i]), 0);
    }
    snprintf(box, sizeof box, "dropbear-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "CREATE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    msg = iwt_message(1u << 20);
    iwt_append(h, box, msg, 1u << 20);
    free(msg);
    for (i = 0; i < DB_WRITERS; i++) {
        __atomic_store_n(&w[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].failed == 0, "writer %d failed after %d NOOPs: error %d", i,
                      w[i].noops, w[i].failed);
        ImapDisconnect(w[i].h);
    }
    snprintf(cmd, sizeof cmd, "DELETE %s", box);
    ck_assert_int_eq(ImapCommand(h, cmd, NULL, 0), 0);
    ImapDisconnect(h);
}
END_TEST

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
        db_port = iwt_free_port();
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
    tcase_add_test(tc, dropbear_shared_session);
    suite_add_tcase(s, tc);
    return iwt_run_suite(s);
}
