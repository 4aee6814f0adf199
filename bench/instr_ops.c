/* instr_ops.c: one operation done N times by one side (imapwire, libcurl or a minimal
 * client, the floor), with callgrind counting instructions only around those N. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <valgrind/callgrind.h>
#include <imapwire/imapwire.h>

/*
 * Run under `valgrind --tool=callgrind --separate-threads=yes`: callgrind's client
 * requests zero and dump the calling thread only, so each thread counts itself. The
 * calling thread zeroes its counts after the set-up (library initialisation, the
 * mailbox's test message, two warm-up operations) and dumps them after the N operations.
 * The library's loop thread does the same from inside our callbacks (loop_mark): zeroed
 * at the last callback of the warm-up, dumped at the last callback of the N operations,
 * so its dump holds exactly N operations' turns of the loop, from callback to callback.
 * bench/instructions.sh adds the dumps. Outside valgrind the client requests do nothing,
 * so the program also runs as a plain check that each operation works.
 */

static struct {
    char host[64], user[64], pass[64], ca[512];
    unsigned port, imaps_port;
    char ssh_host[64], ssh_user[64], ssh_key[512], ssh_known[512];
    unsigned ssh_port;
} env;

static void die(const char *what)
{
    fprintf(stderr, "instr_ops: %s\n", what);
    exit(1);
}

/* KEY=VALUE lines of a harness env file. */
static void read_env(const char *path, const char *const *keys, char *const *out,
                     const size_t *sizes, int n)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    int i;
    if (f == NULL)
        die("cannot read an env file");
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        for (i = 0; i < n; i++) {
            size_t k = strlen(keys[i]);
            if (strncmp(line, keys[i], k) == 0 && line[k] == '=')
                snprintf(out[i], sizes[i], "%s", line + k + 1);
        }
    }
    fclose(f);
}

static void load_env(const char *dovecot_env, const char *sshd_env)
{
    char port[16] = "", imaps[16] = "", dir[400] = "", sport[16] = "";
    const char *dk[] = { "DOVECOT_HOST", "DOVECOT_PORT", "DOVECOT_IMAPS_PORT", "DOVECOT_USER",
                         "DOVECOT_PASS", "DOVECOT_DIR" };
    char *dv[] = { env.host, port, imaps, env.user, env.pass, dir };
    size_t ds[] = { sizeof env.host, sizeof port, sizeof imaps, sizeof env.user,
                    sizeof env.pass, sizeof dir };
    read_env(dovecot_env, dk, dv, ds, 6);
    env.port = (unsigned)strtoul(port, NULL, 10);
    env.imaps_port = (unsigned)strtoul(imaps, NULL, 10);
    if (dir[0] == '\0') {              /* the env file sits in the instance's folder */
        snprintf(dir, sizeof dir, "%s", dovecot_env);
        if (strrchr(dir, '/') != NULL)
            *strrchr(dir, '/') = '\0';
    }
    snprintf(env.ca, sizeof env.ca, "%s/certs/ca.pem", dir);
    if (env.host[0] == '\0' || env.port == 0)
        die("the Dovecot env file lacks DOVECOT_HOST or DOVECOT_PORT");
    if (sshd_env != NULL) {
        const char *sk[] = { "SSHD_HOST", "SSHD_PORT", "SSHD_USER", "SSHD_KEY",
                             "SSHD_KNOWN_HOSTS" };
        char *sv[] = { env.ssh_host, sport, env.ssh_user, env.ssh_key, env.ssh_known };
        size_t ss[] = { sizeof env.ssh_host, sizeof sport, sizeof env.ssh_user,
                        sizeof env.ssh_key, sizeof env.ssh_known };
        read_env(sshd_env, sk, sv, ss, 5);
        env.ssh_port = (unsigned)strtoul(sport, NULL, 10);
    }
}

/* The fetches read a mailbox of their own: other suites share the test Dovecot's INBOX. */
#define BOX "imapwire-instr"

/* ---------------------------------------------------------------- imapwire */

enum { M_PLAIN, M_STARTTLS, M_IMAPS, M_SSH };

static HCLIENT iw_connect(int mode)
{
    SECURITYCREDENTIALS sc;
    HCLIENT h;
    memset(&sc, 0, sizeof sc);
    sc.dwSize = sizeof sc;
    sc.lpszCAFile = env.ca;
    if (mode == M_SSH) {
        sc.lpszTunnelHost = env.ssh_host;
        sc.nTunnelPort = env.ssh_port;
        sc.lpszTunnelUser = env.ssh_user;
        sc.lpszTunnelKey = env.ssh_key;
        sc.lpszKnownHosts = env.ssh_known;
    }
    h = ImapConnect(env.host, mode == M_IMAPS ? env.imaps_port : env.port, 10,
                    mode == M_STARTTLS ? IMAP_OPTION_SECURE_EXPLICIT
                    : mode == M_IMAPS  ? IMAP_OPTION_SECURE_IMPLICIT
                    : mode == M_SSH    ? IMAP_OPTION_TUNNEL : IMAP_OPTION_NONE,
                    mode == M_PLAIN ? NULL : &sc);
    if (h == INVALID_CLIENT)
        die("imapwire: connect failed");
    return h;
}

static void iw_session(int mode)
{
    HCLIENT h = iw_connect(mode);
    if (ImapLogin(h, IMAP_AUTH_PLAIN, env.user, env.pass) != 0)
        die("imapwire: login failed");
    if (ImapDisconnect(h) != 0)
        die("imapwire: disconnect failed");
}

/* The events are waited for with a semaphore, not by polling: a count must not grow
 * with how long the machine took. */
static sem_t async_done;

/* Callbacks seen on the loop thread; the one that ends the warm-up zeroes the loop
 * thread's counts, the one that ends the N operations dumps them (0: no marks). */
static int loop_seen, loop_zero_at, loop_dump_at;

static void loop_mark(void)
{
    loop_seen++;
    if (loop_seen == loop_zero_at)
        CALLGRIND_ZERO_STATS;
    else if (loop_seen == loop_dump_at)
        CALLGRIND_DUMP_STATS;
}

static VOID iw_event(HCLIENT h, UINT id, DWORD err, LPVOID param)
{
    (void)h;
    (void)param;
    if (id == IMAP_EVENT_CONNECT) {
        if (err != 0)
            die("imapwire: async connect failed");
        loop_mark();
        sem_post(&async_done);
    }
}

/* n asynchronous connects at once, waited for, then disconnected. */
static void iw_async(int n)
{
    HCLIENT h[64];
    struct timespec until;
    int i;
    if (n > 64)
        n = 64;
    for (i = 0; i < n; i++) {
        h[i] = ImapAsyncConnect(env.host, env.port, 10, IMAP_OPTION_NONE, NULL, iw_event, NULL);
        if (h[i] == INVALID_CLIENT)
            die("imapwire: ImapAsyncConnect failed");
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    for (i = 0; i < n; i++)
        if (sem_timedwait(&async_done, &until) != 0)
            die("imapwire: async connects did not finish in 20 s");
    for (i = 0; i < n; i++)
        ImapDisconnect(h[i]);
}

/* ---------------------------------------------------------------- idle wake-up */

/* bench/greeter.c, started natively beside us (valgrind does not follow the exec), sends
 * "* 1 EXISTS" to its connections on each SIGUSR2: the untagged line that wakes an idle
 * watched connection. Dovecot sends nothing to a client that is not in IDLE. */
static pid_t greeter_pid;
static unsigned greeter_port;
static sem_t woken;

static void greeter_start(const char *self)
{
    char path[600], line[128];
    const char *slash = strrchr(self, '/');
    char *argv[] = { path, NULL };
    int fds[2];
    posix_spawn_file_actions_t fa;
    FILE *out;
    snprintf(path, sizeof path, "%.*s/imapwire_greeter", slash ? (int)(slash - self) : 1,
             slash ? self : ".");
    if (pipe(fds) != 0)
        die("pipe failed");
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&greeter_pid, path, &fa, NULL, argv, NULL) != 0)
        die("cannot start imapwire_greeter (built beside this program)");
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    out = fdopen(fds[0], "r");
    if (out == NULL || fgets(line, sizeof line, out) == NULL ||
        sscanf(line, "ports %u", &greeter_port) != 1)
        die("imapwire_greeter printed no port");
    fclose(out);
}

static void greeter_stop(void)
{
    if (greeter_pid > 0) {
        kill(greeter_pid, SIGTERM);
        waitpid(greeter_pid, NULL, 0);
    }
}

/* The caller's trace sees each line the watcher reads: the sign that a wake-up is done. */
static VOID iw_wake_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    if (dir == IMAP_TRACE_RECV && len >= 10 && strncmp(line, "* 1 EXISTS", 10) == 0) {
        loop_mark();
        sem_post(&woken);
    }
}

static HCLIENT iw_watched(void)
{
    IMAPCONNECTINFO ci;
    HCLIENT h;
    struct timespec until;
    memset(&ci, 0, sizeof ci);
    ci.dwSize = sizeof ci;
    ci.lpszHostName = "127.0.0.1";
    ci.nRemotePort = greeter_port;
    ci.nTimeout = 10;
    ci.lpTraceProc = iw_wake_trace;
    ci.lpEventProc = iw_event;
    h = ImapConnectEx(&ci);
    if (h == INVALID_CLIENT)
        die("imapwire: ImapConnectEx to the greeter failed");
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    if (sem_timedwait(&async_done, &until) != 0)
        die("imapwire: the greeter's connect did not finish in 20 s");
    return h;
}

/* The floor: a blocking socket, poll() and one read per line. */
static int floor_watched(void)
{
    struct sockaddr_in sa;
    char line[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)greeter_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        recv(fd, line, sizeof line, 0) <= 0)
        die("floor: greeter connect failed");
    return fd;
}

/* One wake-up: the greeter is told to send its line; the side has read it when this
 * returns. The pause after lets the loop thread go back to its wait, so each wake-up
 * finds the connection idle (and both sides make the same calls around it). */
static void wake_once(int floor_fd)
{
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    kill(greeter_pid, SIGUSR2);
    if (floor_fd >= 0) {
        struct pollfd p = { floor_fd, POLLIN, 0 };
        char line[256];
        if (poll(&p, 1, 20000) != 1 || recv(floor_fd, line, sizeof line, 0) <= 0)
            die("floor: no line from the greeter in 20 s");
    } else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 20;
        if (sem_timedwait(&woken, &until) != 0)
            die("imapwire: the watched connection did not wake in 20 s");
    }
    nanosleep(&pause, NULL);
}

/* ---------------------------------------------------------------- libcurl */

static size_t curl_sink(char *p, size_t size, size_t n, void *arg)
{
    size_t *got = arg;
    (void)p;
    *got += size * n;
    return size * n;
}

/* One perform: connect, log in (AUTHENTICATE PLAIN, as imapwire's IMAP_AUTH_PLAIN), the
 * request of tail (NULL: NOOP), LOGOUT. */
static size_t curl_once(CURL *e, int mode, CURLSH *share, const char *tail)
{
    char url[256];
    size_t got = 0;
    snprintf(url, sizeof url, "%s://%s:%u/%s", mode == M_IMAPS ? "imaps" : "imap", env.host,
             mode == M_IMAPS ? env.imaps_port : env.port, tail ? tail : "");
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_USERNAME, env.user);
    curl_easy_setopt(e, CURLOPT_PASSWORD, env.pass);
    curl_easy_setopt(e, CURLOPT_LOGIN_OPTIONS, "AUTH=PLAIN");
    curl_easy_setopt(e, CURLOPT_SASL_IR, 1L);
    if (tail == NULL)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "NOOP");
    /* a session per perform, except for FETCH: the connection is kept for the next */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, tail == NULL ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CAINFO, env.ca);
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    if (mode == M_STARTTLS)
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (share != NULL)
        curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
    if (curl_easy_perform(e) != CURLE_OK)
        die("curl: perform failed");
    return got;
}

/* ---------------------------------------------------------------- the floor */

/* A blocking client that does only what FETCH needs: plain or TLS, no checks beyond
 * the CA, one buffer. */
typedef struct floor_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char in[16384];
    size_t have, off;
} floor_conn;

static long fl_read(floor_conn *f, void *p, size_t n)
{
    return f->ssl ? SSL_read(f->ssl, p, (int)n) : recv(f->fd, p, n, 0);
}

static void fl_write(floor_conn *f, const char *s)
{
    size_t n = strlen(s);
    if ((f->ssl ? SSL_write(f->ssl, s, (int)n) : send(f->fd, s, n, 0)) != (long)n)
        die("floor: send failed");
}

/* The next line (without CRLF) into line; from the buffer first. */
static size_t fl_line(floor_conn *f, char *line, size_t size)
{
    size_t n = 0;
    for (;;) {
        while (f->off < f->have) {
            char c = f->in[f->off++];
            if (c == '\n') {
                line[n > 0 && line[n - 1] == '\r' ? n - 1 : n] = '\0';
                return n;
            }
            if (n + 1 < size)
                line[n++] = c;
        }
        long r = fl_read(f, f->in, sizeof f->in);
        if (r <= 0)
            die("floor: closed");
        f->have = (size_t)r;
        f->off = 0;
    }
}

/* Reads until the tagged reply of tag; a literal goes to dest. */
static size_t fl_until(floor_conn *f, const char *tag, char *dest, size_t cap)
{
    char line[1024];
    size_t total = 0;
    for (;;) {
        fl_line(f, line, sizeof line);
        if (strncmp(line, tag, strlen(tag)) == 0)
            return total;
        char *brace = strrchr(line, '{');
        if (brace != NULL && line[strlen(line) - 1] == '}') {
            size_t len = strtoul(brace + 1, NULL, 10), done = 0;
            if (len > cap)
                die("floor: literal larger than the buffer");
            while (done < len) {
                if (f->off < f->have) {
                    size_t k = f->have - f->off < len - done ? f->have - f->off : len - done;
                    memcpy(dest + done, f->in + f->off, k);
                    f->off += k;
                    done += k;
                    continue;
                }
                long r = fl_read(f, dest + done, len - done);
                if (r <= 0)
                    die("floor: closed in a literal");
                done += (size_t)r;
            }
            total = len;
        }
    }
}

static void floor_open(floor_conn *f, int tls)
{
    struct sockaddr_in sa;
    char line[1024], cmd[256];
    memset(f, 0, sizeof *f);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)(tls ? env.imaps_port : env.port));
    inet_pton(AF_INET, env.host, &sa.sin_addr);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("floor: connect failed");
    if (tls) {
        f->ctx = SSL_CTX_new(TLS_client_method());
        if (f->ctx == NULL || SSL_CTX_load_verify_locations(f->ctx, env.ca, NULL) != 1)
            die("floor: SSL_CTX");
        SSL_CTX_set_verify(f->ctx, SSL_VERIFY_PEER, NULL);
        f->ssl = SSL_new(f->ctx);
        SSL_set_fd(f->ssl, f->fd);
        if (SSL_connect(f->ssl) != 1)
            die("floor: TLS handshake failed");
    }
    fl_line(f, line, sizeof line);     /* greeting */
    snprintf(cmd, sizeof cmd, "a LOGIN %s %s\r\nb SELECT " BOX "\r\n", env.user, env.pass);
    fl_write(f, cmd);
    fl_until(f, "a ", NULL, 0);
    fl_until(f, "b ", NULL, 0);
}

static void floor_close(floor_conn *f)
{
    if (f->ssl)
        SSL_free(f->ssl);
    if (f->ctx)
        SSL_CTX_free(f->ctx);
    close(f->fd);
}

/* ---------------------------------------------------------------- FETCH set-up */

static size_t msg_size;


/* Message 1 of BOX made msg_size bytes (APPENDed when it is not), outside the count. */
static void ensure_message(size_t size)
{
    HCLIENT h = iw_connect(M_PLAIN);
    IMAPMAILBOX mb;
    char *body, cmd[64];
    size_t i;
    void *whole = NULL;
    DWORD len = 0;
    if (ImapLogin(h, IMAP_AUTH_PLAIN, env.user, env.pass) != 0)
        die("imapwire: login failed");
    ImapCommand(h, "CREATE " BOX, NULL, 0);      /* it may exist already */
    if (ImapSelectMailbox(h, BOX, &mb) != 0)
        die("imapwire: select failed");
    if (mb.dwMessages >= 1 && ImapGetMessage(h, 1, 0, &whole, &len, 0) == 0 && len == size) {
        ImapFreeMemory(whole);
        ImapDisconnect(h);
        return;
    }
    ImapFreeMemory(whole);
    if (ImapCommand(h, "STORE 1:* +FLAGS (\\Deleted)", NULL, 0) == 0)
        ImapCommand(h, "EXPUNGE", NULL, 0);
    body = malloc(size + 128);
    if (body == NULL)
        die("out of memory");
    snprintf(cmd, sizeof cmd, "APPEND " BOX " {%zu}\r\n", size);
    i = strlen(cmd);
    memcpy(body, cmd, i);
    memcpy(body + i, "Subject: instr\r\n\r\n", 18);
    for (size_t k = 18; k < size; k++)
        body[i + k] = k % 78 == 76 ? '\r' : k % 78 == 77 ? '\n' : (char)('a' + k % 26);
    body[i + size] = '\0';
    if (ImapCommand(h, body, NULL, 0) != 0)
        die("imapwire: APPEND failed");
    free(body);
    ImapDisconnect(h);
}

static VOID iw_stream_piece(HCLIENT h, const VOID *data, DWORD len, LPVOID param)
{
    size_t *got = param;
    (void)h;
    (void)data;
    *got += len;
}

/* ---------------------------------------------------------------- main */

static const char *const ops[] = {
    "plain", "starttls", "imaps-full", "imaps-resumed", "ssh-nth", "async",
    "fetch-plain-library", "fetch-plain-caller", "fetch-plain-stream", "fetch-imaps-library",
    "fetch-imaps-caller", "fetch-imaps-stream", "idle-wake", NULL
};

static void usage(void)
{
    int i;
    fprintf(stderr, "usage: instr_ops OP imapwire|curl|floor N DOVECOT_ENV [SSHD_ENV]\n"
                    "  OP:");
    for (i = 0; ops[i]; i++)
        fprintf(stderr, " %s", ops[i]);
    fprintf(stderr, "\n  fetch ops move N MB (a 1 MB message N times); idle-wake wakes a"
                    " watched idle connection N times\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *op, *side;
    int n, i, warm = 2, fetch, tls, wake, floor_fd = -1;
    CURL *e = NULL;
    CURLSH *share = NULL;
    HCLIENT h = INVALID_CLIENT;
    floor_conn fl;
    char *buf = NULL;

    if (argc < 5)
        usage();
    op = argv[1];
    side = argv[2];
    n = atoi(argv[3]);
    for (i = 0; ops[i] && strcmp(ops[i], op) != 0; i++)
        ;
    if (ops[i] == NULL || n < 1 || (strcmp(side, "imapwire") && strcmp(side, "curl") &&
                                    strcmp(side, "floor")))
        usage();
    load_env(argv[4], argc > 5 ? argv[5] : NULL);
    fetch = strncmp(op, "fetch-", 6) == 0;
    tls = strstr(op, "imaps") != NULL;
    wake = strcmp(op, "idle-wake") == 0;
    if (!ImapInitialize(NULL, NULL))
        die("ImapInitialize failed");
    sem_init(&async_done, 0, 0);
    sem_init(&woken, 0, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    e = curl_easy_init();
    if (strcmp(op, "imaps-resumed") == 0) {
        share = curl_share_init();
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    if (fetch) {
        msg_size = 1u << 20;
        ensure_message(msg_size);
        buf = malloc(msg_size);
        if (buf == NULL)
            die("out of memory");
        /* one connection, logged in and selected, outside the count */
        if (strcmp(side, "imapwire") == 0) {
            IMAPMAILBOX mb;
            h = iw_connect(tls ? M_IMAPS : M_PLAIN);
            if (ImapLogin(h, IMAP_AUTH_PLAIN, env.user, env.pass) != 0 ||
                ImapSelectMailbox(h, BOX, &mb) != 0)
                die("imapwire: login or select failed");
        } else if (strcmp(side, "floor") == 0) {
            floor_open(&fl, tls);
        }
    }
    if (strcmp(side, "imapwire") == 0 && (wake || strcmp(op, "async") == 0)) {
        int per_op = wake ? 1 : 10;    /* callbacks on the loop thread per operation */
        loop_zero_at = warm * per_op + (wake ? 1 : 0);     /* the greeter's connect: one */
        loop_dump_at = (warm + n) * per_op + (wake ? 1 : 0);
    }
    if (wake) {
        /* one connection, greeted and watched (or the floor's), outside the count */
        if (strcmp(side, "curl") == 0)
            die("curl: no such operation on this side");
        greeter_start(argv[0]);
        if (strcmp(side, "imapwire") == 0)
            h = iw_watched();
        else
            floor_fd = floor_watched();
    }
    if (strcmp(op, "ssh-nth") == 0) {
        if (env.ssh_port == 0)
            die("ssh-nth needs the sshd env file");
        /* one tunnelled connection held open keeps the shared SSH session: each counted
         * connect is a new channel on it, as the Nth connect of a program is */
        h = iw_connect(M_SSH);
    }

    for (i = -warm; i < n; i++) {
        if (i == 0)
            CALLGRIND_ZERO_STATS;
        if (wake) {
            wake_once(floor_fd);
        } else if (strcmp(side, "imapwire") == 0) {
            if (strcmp(op, "plain") == 0)
                iw_session(M_PLAIN);
            else if (strcmp(op, "starttls") == 0)
                iw_session(M_STARTTLS);
            else if (strcmp(op, "imaps-full") == 0) {
                /* no session to resume and a new context: a full handshake each time */
                CALLGRIND_TOGGLE_COLLECT;
                if (!ImapUninitialize() || !ImapInitialize(NULL, NULL))
                    die("re-initialise failed");
                CALLGRIND_TOGGLE_COLLECT;
                iw_session(M_IMAPS);
            } else if (strcmp(op, "imaps-resumed") == 0)
                iw_session(M_IMAPS);
            else if (strcmp(op, "ssh-nth") == 0)
                iw_session(M_SSH);
            else if (strcmp(op, "async") == 0)
                iw_async(10);
            else if (strstr(op, "library")) {
                void *whole = NULL;
                DWORD len = 0;
                if (ImapGetMessage(h, 1, 0, &whole, &len, 0) != 0 || len != msg_size)
                    die("imapwire: fetch failed");
                ImapFreeMemory(whole);
            } else if (strstr(op, "caller")) {
                DWORD len = (DWORD)msg_size;
                if (ImapGetMessage(h, 1, 0, buf, &len, 0) != 0 || len != msg_size)
                    die("imapwire: fetch into the caller's buffer failed");
            } else {
                size_t got = 0;
                if (ImapGetMessageStream(h, 1, 0, iw_stream_piece, &got, NULL) != 0 ||
                    got != msg_size)
                    die("imapwire: streamed fetch failed");
            }
        } else if (strcmp(side, "curl") == 0) {
            if (fetch) {
                size_t got = curl_once(e, tls ? M_IMAPS : M_PLAIN, NULL, BOX ";MAILINDEX=1");
                if (got < msg_size)
                    die("curl: short fetch");
            } else if (strcmp(op, "imaps-resumed") == 0) {
                curl_once(e, M_IMAPS, share, NULL);
            } else if (strcmp(op, "imaps-full") == 0 || strcmp(op, "starttls") == 0) {
                /* an easy handle keeps TLS sessions (and its multi the CA store) from one
                 * perform to the next: a new one for each full handshake */
                CURL *fresh = curl_easy_init();
                if (fresh == NULL)
                    die("curl: easy_init failed");
                curl_once(fresh, strcmp(op, "starttls") == 0 ? M_STARTTLS : M_IMAPS, NULL, NULL);
                curl_easy_cleanup(fresh);
            } else if (strcmp(op, "plain") == 0) {
                curl_once(e, M_PLAIN, NULL, NULL);
            } else {
                die("curl: no such operation on this side");
            }
        } else {
            char cmd[64];
            if (!fetch)
                die("floor: only the fetch and idle-wake operations");
            snprintf(cmd, sizeof cmd, "f%d FETCH 1 BODY.PEEK[]\r\n", i + warm);
            fl_write(&fl, cmd);
            snprintf(cmd, sizeof cmd, "f%d ", i + warm);
            if (fl_until(&fl, cmd, buf, msg_size) != msg_size)
                die("floor: wrong size");
        }
    }
    CALLGRIND_DUMP_STATS;
    if (h != INVALID_CLIENT)
        ImapDisconnect(h);
    if (fetch && strcmp(side, "floor") == 0)
        floor_close(&fl);
    if (floor_fd >= 0)
        close(floor_fd);
    greeter_stop();
    free(buf);
    if (share)
        curl_share_cleanup(share);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    ImapUninitialize();
    printf("%s %s %d: done\n", op, side, n);
    return 0;
}
