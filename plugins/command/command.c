/* command.c: the "command:<command line>" transport plugin: runs the command through
 * /bin/sh -c and speaks IMAP over its stdin/stdout; its stderr lines go to the trace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <imapwire/transport.h>

extern char **environ;

/* How long a child may take to exit on its own once its stdin is closed (a server that
 * got LOGOUT or EOF exits in a few ms); then SIGTERM, and as long again for SIGKILL. */
#define CMD_GRACE_MS      200
#define CMD_TERM_WAIT_MS  500
#define CMD_KILL_WAIT_MS  2000
/* One stderr line as traced; longer lines are cut into pieces of this size. */
#define CMD_ERR_LINE      240
/* Reads of stderr per call, so a chatty child cannot keep us from the IMAP stream. */
#define CMD_ERR_READS     16

enum { CMD_START, CMD_UP, CMD_FAILED };

struct cmd_ctx {
    int    state;
    int    fds_open;       /* the descriptors below were set up (ctx starts zeroed) */
    int    in_fd;          /* write end of the child's stdin; -1 after shutdown */
    int    out_fd;         /* read end of the child's stdout */
    int    err_fd;         /* read end of the child's stderr pipe; -1 once at EOF */
    int    pidfd;          /* pins the child even if someone else reaps it; -1 if none */
    pid_t  pid;            /* 0 when there is no child to reap */
    char  *cmdline;
    size_t err_len;
    char   err_line[CMD_ERR_LINE + 1];
};

static int cmd_map_errno(int e)
{
    switch (e) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN:
    case ENOBUFS:
        return ST_ERROR_SYSTEM_LIMIT;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
        return ST_ERROR_CONNECTION_CLOSED;
    default:
        return ST_ERROR_CONNECTION_REFUSED;
    }
}

static int cmd_create(imapwire_layer *l, const char *args)
{
    struct cmd_ctx *c = l->ctx;
    /* destroy() runs even after a failed create: make every field safe to release first */
    c->in_fd = c->out_fd = c->err_fd = c->pidfd = -1;
    c->state = CMD_START;
    if (args == NULL || args[strspn(args, " \t")] == '\0') {
        l->host->trace(l, "command: no command line (use command:<command line>)");
        return ST_ERROR_INVALID_PARAMETER;
    }
    c->cmdline = strdup(args);
    return c->cmdline ? 0 : ST_ERROR_OUT_OF_MEMORY;
}

/* One stderr line to the trace, with control bytes shown as '?' so it stays one line. */
static void cmd_err_flush(imapwire_layer *l)
{
    struct cmd_ctx *c = l->ctx;
    size_t i;
    if (c->err_len == 0)
        return;
    for (i = 0; i < c->err_len; i++)
        if ((unsigned char)c->err_line[i] < 0x20 || c->err_line[i] == 0x7f)
            c->err_line[i] = '?';
    c->err_line[c->err_len] = '\0';
    l->host->trace(l, "command: stderr: %s", c->err_line);
    c->err_len = 0;
}

/* Reads what the child wrote to stderr, without waiting, and traces it line by line.
 * Draining matters beyond the trace: a child blocked on a full stderr pipe stalls. */
static void cmd_err_drain(imapwire_layer *l)
{
    struct cmd_ctx *c = l->ctx;
    char buf[512];
    int round;

    for (round = 0; c->err_fd >= 0 && round < CMD_ERR_READS; round++) {
        ssize_t n = read(c->err_fd, buf, sizeof buf), i;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            /* EOF (or a broken pipe): stop polling it, or poll() would spin on it */
            cmd_err_flush(l);
            close(c->err_fd);
            c->err_fd = -1;
            return;
        }
        for (i = 0; i < n; i++) {
            char ch = buf[i];
            if (ch == '\n') {
                if (c->err_len > 0 && c->err_line[c->err_len - 1] == '\r')
                    c->err_len--;
                cmd_err_flush(l);
                continue;
            }
            c->err_line[c->err_len++] = ch;
            if (c->err_len == CMD_ERR_LINE)
                cmd_err_flush(l);
        }
    }
}

/* Non-zero if the child is gone (reaped by us, or by someone else); logs its status. */
static int cmd_try_reap(imapwire_layer *l)
{
    struct cmd_ctx *c = l->ctx;
    int status = 0;
    pid_t r;

    if (c->pid <= 0)
        return 1;
    do
        r = waitpid(c->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (r == c->pid) {
        if (WIFEXITED(status))
            l->host->trace(l, "command: pid %d exited with status %d", (int)c->pid,
                           WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            l->host->trace(l, "command: pid %d killed by signal %d", (int)c->pid,
                           WTERMSIG(status));
    }
    /* ECHILD: the application reaps children itself (SIGCHLD handler or SIG_IGN) */
    c->pid = 0;
    return 1;
}

/* Waits up to ms for the child to exit, on its pidfd when there is one, else by short
 * naps; its stderr stays open and drained meanwhile, so a goodbye it writes on the way
 * out reaches the trace instead of failing with EPIPE (Dovecot then exits with 81).
 * Bounded by the clock and by a count of rounds. */
static int cmd_wait_exit(imapwire_layer *l, int ms)
{
    struct cmd_ctx *c = l->ctx;
    int64_t until = l->host->now_ms() + ms;
    int round;

    for (round = 0; round < 10000; round++) {
        struct pollfd p[2];
        nfds_t n = 0;
        int64_t left;

        cmd_err_drain(l);
        if (cmd_try_reap(l))
            return 1;
        left = until - l->host->now_ms();
        if (left <= 0)
            return 0;
        if (c->pidfd >= 0) {
            p[n].fd = c->pidfd;
            p[n].events = POLLIN;
            p[n++].revents = 0;
        }
        if (c->err_fd >= 0) {
            p[n].fd = c->err_fd;
            p[n].events = POLLIN;
            p[n++].revents = 0;
        }
        /* without a pidfd nothing signals the exit: nap briefly and look again */
        if (c->pidfd < 0 && left > 5)
            left = 5;
        if (poll(p, n, (int)left) < 0 && errno != EINTR)
            return cmd_try_reap(l);
    }
    return cmd_try_reap(l);
}

static void cmd_signal(struct cmd_ctx *c, int sig)
{
#ifdef SYS_pidfd_send_signal
    /* The pidfd names this very process, even if its pid were reaped and reused. */
    if (c->pidfd >= 0 && syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) == 0)
        return;
    if (c->pidfd >= 0 && errno == ESRCH)
        return;
#endif
    kill(c->pid, sig);
}

/* Overwrites n bytes in a way the compiler may not drop as a dead store. */
static void cmd_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

static void cmd_forget_cmdline(struct cmd_ctx *c)
{
    if (c->cmdline != NULL) {
        cmd_wipe(c->cmdline, strlen(c->cmdline));
        free(c->cmdline);
        c->cmdline = NULL;
    }
}

static void cmd_destroy(imapwire_layer *l)
{
    struct cmd_ctx *c = l->ctx;

    if (c->fds_open) {
        /* Closing its stdin is the polite way to end it: a server exits on EOF. */
        if (c->in_fd >= 0)
            close(c->in_fd);
        if (c->out_fd >= 0)
            close(c->out_fd);
        c->in_fd = c->out_fd = -1;
        /* On the library's loop thread nobody may wait: the library ends the child the
         * same way (grace, SIGTERM, SIGKILL) as a task of its own. */
        if (c->pid > 0 && !cmd_try_reap(l) && IMAPWIRE_HOST_HAS(l->host, child_end)) {
            int pid = (int)c->pid;
            cmd_err_drain(l);
            cmd_err_flush(l);
            if (l->host->child_end(l, pid, c->pidfd, c->err_fd, CMD_GRACE_MS,
                                   CMD_TERM_WAIT_MS) == 0) {
                l->host->trace(l, "command: pid %d left to the library to end", pid);
                c->pid = 0;
                c->pidfd = c->err_fd = -1;
            }
        }
        if (c->pid > 0 && !cmd_wait_exit(l, CMD_GRACE_MS)) {
            l->host->trace(l, "command: pid %d still running; SIGTERM", (int)c->pid);
            cmd_signal(c, SIGTERM);
            if (!cmd_wait_exit(l, CMD_TERM_WAIT_MS)) {
                l->host->trace(l, "command: pid %d ignores SIGTERM; SIGKILL", (int)c->pid);
                cmd_signal(c, SIGKILL);
                if (!cmd_wait_exit(l, CMD_KILL_WAIT_MS))
                    l->host->trace(l, "command: pid %d did not die; left behind", (int)c->pid);
            }
        }
        cmd_err_drain(l);
        cmd_err_flush(l);
        if (c->err_fd >= 0)
            close(c->err_fd);
        if (c->pidfd >= 0)
            close(c->pidfd);
        c->err_fd = c->pidfd = -1;
        c->fds_open = 0;
    }
    cmd_forget_cmdline(c);
}

/* The child's ends must not be 0, 1 or 2 in the parent: dup2(x, x) would keep them
 * close-on-exec, and a later dup2 could overwrite one the child still needs. */
static int cmd_fd_above_stdio(int *fd)
{
    int moved;
    if (*fd > 2)
        return 0;
    moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
        return -1;
    close(*fd);
    *fd = moved;
    return 0;
}

static void cmd_close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    p[0] = p[1] = -1;
}

/* The trace names the program and nothing else of the command line, which may carry a
 * secret anywhere: "sshpass -p pw ssh ...", "PASS=pw prog", "prog --password=pw". Only a
 * first word made of path characters is shown (after an "exec"); an assignment, quoting,
 * an expansion or anything else in it is not shown at all. */
static void cmd_trace_program(imapwire_layer *l, const char *cmdline)
{
    static const char path_chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-";
    const char *p = cmdline + strspn(cmdline, " \t");
    size_t n = strcspn(p, " \t");
    struct cmd_ctx *c = l->ctx;

    if (n == 4 && memcmp(p, "exec", 4) == 0) {
        p += n;
        p += strspn(p, " \t");
        n = strcspn(p, " \t");
    }
    if (n > 0 && n <= 64 && strspn(p, path_chars) >= n)
        l->host->trace(l, "command: pid %d runs %.*s", (int)c->pid, (int)n, p);
    else
        l->host->trace(l, "command: pid %d runs the command line (not traced: its first word "
                          "is not a plain program name)", (int)c->pid);
}

/* The child's stdin, stdout and stderr as pipes; an errno value, or 0. Pipes, not a
 * socketpair: some servers refuse a socket on stdin (Dovecot's imap takes it for inetd and
 * answers BAD). Every end is close-on-exec, so children of other threads never inherit
 * ours (an inherited end would hide the child's EOF); only our ends are non-blocking, a
 * program expects blocking stdio. */
static int cmd_pipes(int in[2], int out[2], int ep[2])
{
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0 ||
        cmd_fd_above_stdio(&in[0]) != 0 || cmd_fd_above_stdio(&out[1]) != 0 ||
        cmd_fd_above_stdio(&ep[1]) != 0 ||
        fcntl(in[1], F_SETFL, O_NONBLOCK) != 0 || fcntl(out[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(ep[0], F_SETFL, O_NONBLOCK) != 0)
        return errno;
    return 0;
}

/* What posix_spawn is given, and which parts of it exist to be destroyed. */
struct cmd_spawn_args {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int have_fa, have_attr;
};

/* The child's ends of the pipes as its 0, 1 and 2, and default signals; an errno value,
 * or 0. The application may block or ignore signals (SIGPIPE often); the command must start
 * from the defaults, as it would from a shell. */
static int cmd_spawn_args_init(struct cmd_spawn_args *a, const int in[2], const int out[2],
                               const int ep[2])
{
    sigset_t none, all;
    int err;

    if ((err = posix_spawn_file_actions_init(&a->fa)) != 0)
        return err;
    a->have_fa = 1;
    if ((err = posix_spawnattr_init(&a->attr)) != 0)
        return err;
    a->have_attr = 1;
    sigemptyset(&none);
    sigfillset(&all);
    if ((err = posix_spawn_file_actions_adddup2(&a->fa, in[0], 0)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(&a->fa, out[1], 1)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(&a->fa, ep[1], 2)) != 0 ||
        (err = posix_spawnattr_setsigmask(&a->attr, &none)) != 0 ||
        (err = posix_spawnattr_setsigdefault(&a->attr, &all)) != 0 ||
        (err = posix_spawnattr_setflags(&a->attr, POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) != 0)
        return err;
    return 0;
}

static void cmd_spawn_args_free(struct cmd_spawn_args *a)
{
    if (a->have_fa)
        posix_spawn_file_actions_destroy(&a->fa);
    if (a->have_attr)
        posix_spawnattr_destroy(&a->attr);
}

static int cmd_spawn(imapwire_layer *l)
{
    struct cmd_ctx *c = l->ctx;
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, ep[2] = { -1, -1 };
    struct cmd_spawn_args a = { .have_fa = 0, .have_attr = 0 };
    char *argv[4];
    int rc = 0, err;

    if ((err = cmd_pipes(in, out, ep)) != 0) {
        rc = cmd_map_errno(err);
        l->host->trace(l, "command: cannot make pipes: %s", strerror(err));
        goto out;
    }
    if ((err = cmd_spawn_args_init(&a, in, out, ep)) != 0) {
        rc = cmd_map_errno(err);
        goto out;
    }
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = c->cmdline;
    argv[3] = NULL;
    /* posix_spawn, not fork: nothing runs in the child between fork and exec that could
     * take a lock another thread of ours held (malloc, stdio). */
    err = posix_spawn(&c->pid, "/bin/sh", &a.fa, &a.attr, argv, environ);
    if (err != 0) {
        c->pid = 0;
        rc = cmd_map_errno(err);
        l->host->trace(l, "command: cannot start /bin/sh: %s", strerror(err));
        goto out;
    }
#ifdef SYS_pidfd_open
    /* close-on-exec by definition; -1 on kernels before 5.3, where naps replace it */
    c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
#endif
    c->in_fd = in[1];
    c->out_fd = out[0];
    c->err_fd = ep[0];
    in[1] = out[0] = ep[0] = -1;
    c->fds_open = 1;
    cmd_trace_program(l, c->cmdline);
out:
    /* The child got its own copy at exec (posix_spawn returns after it), and a failed
     * start is not retried: the line, which may hold a secret, is not kept. */
    cmd_forget_cmdline(c);
    cmd_spawn_args_free(&a);
    /* Our copies of the child's ends go at once: the child's exit must read as EOF. */
    cmd_close_pair(in);
    cmd_close_pair(out);
    cmd_close_pair(ep);
    return rc;
}

static int cmd_connect(imapwire_layer *l, int *done)
{
    struct cmd_ctx *c = l->ctx;
    int rc;

    *done = 0;
    switch (c->state) {
    case CMD_START:
        rc = cmd_spawn(l);
        if (rc != 0) {
            c->state = CMD_FAILED;
            return rc;
        }
        /* A started child is a connected peer: what it says is the greeting. */
        l->host->mark(l, IMAPWIRE_MARK_CONNECTED);
        c->state = CMD_UP;
        *done = 1;
        return 0;
    case CMD_UP:
        *done = 1;
        return 0;
    default:
        return ST_ERROR_CONNECTION_REFUSED;
    }
}

/* The child's stdin gets EOF, so a server that reads to the end exits by itself. */
static int cmd_shutdown(imapwire_layer *l, int *done)
{
    struct cmd_ctx *c = l->ctx;
    *done = 1;
    if (c->state == CMD_UP && c->in_fd >= 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
    return 0;
}

/* write() to a pipe whose reader is gone raises SIGPIPE, which kills a program that
 * did not ask for it; pipes have no MSG_NOSIGNAL. So SIGPIPE is blocked in this thread
 * for the write, and one it caused is taken off the thread's pending set before the
 * mask is restored (a SIGPIPE that was pending already is left alone). */
static ssize_t cmd_write(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    int was_pending, err, round;
    ssize_t n;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) != 0)
        return -1;
    was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    do
        n = write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        for (round = 0; round < 8; round++)
            if (sigtimedwait(&pipe_set, NULL, &zero) >= 0 || errno != EINTR)
                break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
}

static int cmd_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct cmd_ctx *c = l->ctx;
    ssize_t n;

    *sent = 0;
    if (c->state != CMD_UP || c->in_fd < 0)
        return ST_ERROR_CONNECTION_CLOSED;
    cmd_err_drain(l);
    n = cmd_write(c->in_fd, buf, len);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? IMAPWIRE_AGAIN
                                                         : cmd_map_errno(errno);
    *sent = (size_t)n;
    return 0;
}

static int cmd_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct cmd_ctx *c = l->ctx;
    ssize_t n;

    *got = 0;
    if (c->state != CMD_UP)
        return ST_ERROR_CONNECTION_CLOSED;
    do
        n = read(c->out_fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        cmd_err_drain(l);
        return IMAPWIRE_AGAIN;
    }
    if (n <= 0) {
        int err = n < 0 ? errno : 0;
        /* End of stream: why the child went away is on its stderr and in its status,
         * so both reach the trace before the core reports the closed connection. */
        cmd_err_drain(l);
        cmd_err_flush(l);
        cmd_try_reap(l);
        return err ? cmd_map_errno(err) : 0;
    }
    *got = (size_t)n;
    return 0;
}

static void cmd_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    struct cmd_ctx *c = l->ctx;
    if (c->state != CMD_UP)
        return;
    /* Called before every wait: drain here too, or a wake-up for stderr alone would
     * return to a step that never touches this layer, and poll again at once. */
    cmd_err_drain(l);
    if (want & IMAPWIRE_WANT_READ)
        imapwire_pollset_add(ps, c->out_fd, IMAPWIRE_WANT_READ);
    if ((want & IMAPWIRE_WANT_WRITE) && c->in_fd >= 0)
        imapwire_pollset_add(ps, c->in_fd, IMAPWIRE_WANT_WRITE);
    if (c->err_fd >= 0)
        imapwire_pollset_add(ps, c->err_fd, IMAPWIRE_WANT_READ);
}

static int cmd_query(imapwire_layer *l, int what, void *out)
{
    (void)l;
    (void)what;
    (void)out;
    /* No network socket or peer address here (pipes to a child process):
     * IMAPWIRE_QUERY_SOCKET and _PEER have nothing true to say. */
    return IMAPWIRE_PASS;
}

static const imapwire_transport_type cmd_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "command",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct cmd_ctx),
    .create = cmd_create,
    .destroy = cmd_destroy,
    .connect = cmd_connect,
    .shutdown = cmd_shutdown,
    .send = cmd_send,
    .recv = cmd_recv,
    .pollset = cmd_pollset,
    .query = cmd_query,
};

IMAPWIRE_PLUGIN_DEFINE(&cmd_type);
