/* greeter.c: a minimal epoll IMAP greeter for the scale benches: it greets, answers any
 * command with OK (CAPABILITY with a list), on SIGUSR1 closes its oldest connection. */
/* Usage: imapwire_greeter PORTS. It listens on PORTS consecutive free ports of
 * 127.0.0.1 (one address pair has ~28,000 ephemeral ports: 100,000 connections need
 * several), prints "ports P1 P2 ..." on stdout, and for each SIGUSR1 prints
 * "closed <CLOCK_MONOTONIC ns>" just before it closes the oldest open connection. For
 * each SIGUSR2 it sends "* 1 EXISTS" to every open connection: an idle client's wake-up
 * (bench/instr_ops.c idle-wake). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 16

static volatile sig_atomic_t close_one, push_one;

static void on_usr1(int sig)
{
    (void)sig;
    close_one++;
}

static void on_usr2(int sig)
{
    (void)sig;
    push_one++;
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Answers each complete line: "TAG CAPABILITY" gets a list, anything else an OK. */
static void answer(int fd, char *buf, size_t *len)
{
    char *nl;
    while ((nl = memchr(buf, '\n', *len)) != NULL) {
        char out[256], tag[64] = "*";
        size_t line = (size_t)(nl - buf) + 1;
        int n;
        sscanf(buf, "%63s", tag);
        if (strstr(buf, "CAPABILITY") != NULL && strstr(buf, "CAPABILITY") < nl)
            n = snprintf(out, sizeof out, "* CAPABILITY IMAP4rev1\r\n%s OK done\r\n", tag);
        else
            n = snprintf(out, sizeof out, "%s OK done\r\n", tag);
        if (send(fd, out, (size_t)n, MSG_NOSIGNAL) < 0) {
            /* the client went: its close comes as an event */
        }
        memmove(buf, buf + line, *len - line);
        *len -= line;
    }
}

/* The accept order, each entry with the sequence number its fd had then: an fd closed by
 * its client and reused is recognised, without a search. */
typedef struct { int fd; long seq; } entry;
#define FD_SLOTS (1 << 20)
static long fd_seq[FD_SLOTS];      /* the sequence of the connection on each fd, 0: none */

int main(int argc, char **argv)
{
    int nports = argc > 1 ? atoi(argv[1]) : 1, ep, i;
    entry *order = NULL;
    long seq = 0;
    size_t cap = 0, head = 0, tail = 0;
    struct rlimit rl = { 1 << 20, 1 << 20 };
    struct epoll_event ev, evs[512];
    int lfd[MAX_PORTS];

    if (nports < 1 || nports > MAX_PORTS)
        return 2;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        rl.rlim_cur = rl.rlim_max = 200000;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    signal(SIGPIPE, SIG_IGN);
    ep = epoll_create1(EPOLL_CLOEXEC);
    printf("ports");
    for (i = 0; i < nports; i++) {
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        int one = 1;
        lfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(lfd[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lfd[i], (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd[i], 4096) != 0)
            return 1;
        getsockname(lfd[i], (struct sockaddr *)&a, &al);
        printf(" %u", ntohs(a.sin_port));
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t)(unsigned)lfd[i] | (1ULL << 32);
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd[i], &ev);
    }
    printf("\n");
    fflush(stdout);
    for (;;) {
        int n = epoll_wait(ep, evs, 512, 100);
        if (close_one > 0) {
            close_one--;
            while (head < tail && fd_seq[order[head].fd] != order[head].seq)
                head++;
            if (head < tail) {
                printf("closed %lld\n", mono_ns());
                fflush(stdout);
                fd_seq[order[head].fd] = 0;
                close(order[head++].fd);
            }
        }
        while (push_one > 0) {
            static const char exists[] = "* 1 EXISTS\r\n";
            size_t k;
            push_one--;
            for (k = head; k < tail; k++)
                if (fd_seq[order[k].fd] == order[k].seq &&
                    send(order[k].fd, exists, sizeof exists - 1, MSG_NOSIGNAL) < 0) {
                    /* gone: its close comes as an event */
                }
        }
        for (i = 0; i < n; i++) {
            int fd = (int)(evs[i].data.u64 & 0xffffffffu);
            if (evs[i].data.u64 >> 32) {
                int c, k;
                for (k = 0; k < 256 && (c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0; k++) {
                    static const char hello[] = "* OK greeter ready\r\n";
                    if (c >= FD_SLOTS) {
                        close(c);
                        continue;
                    }
                    if (tail == cap) {
                        size_t nc = cap ? 2 * cap : 4096;
                        entry *no = realloc(order, nc * sizeof *no);
                        if (no == NULL) {
                            close(c);
                            continue;
                        }
                        order = no;
                        cap = nc;
                    }
                    order[tail].fd = c;
                    order[tail++].seq = fd_seq[c] = ++seq;
                    if (send(c, hello, sizeof hello - 1, MSG_NOSIGNAL) < 0) {
                        /* gone already: its close comes as an event */
                    }
                    ev.events = EPOLLIN;
                    ev.data.u64 = (uint64_t)(unsigned)c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
            } else {
                char buf[1024];
                size_t len = 0;
                ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
                if (r > 0) {
                    len = (size_t)r;
                    buf[len] = '\0';
                    answer(fd, buf, &len);
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    fd_seq[fd] = 0;
                    close(fd);
                }
            }
        }
    }
}
