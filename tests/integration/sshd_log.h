/* sshd_log.h: log checks for the SSH and forward suites that cannot pass by accident:
 * wait for a line until a deadline, and a marker connection proving sshd's log caught up. */
#ifndef SSHD_LOG_H
#define SSHD_LOG_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include "iwtest.h"

/* Polls path until needle occurs at least min times or timeout_ms passes; the count seen. */
static inline int iwt_log_wait(const char *path, const char *needle, int min, int timeout_ms)
{
    long long until = iwt_now_ms() + timeout_ms;
    int n;
    for (;;) {
        n = iwt_count_in_file(path, needle);
        if (n >= min || iwt_now_ms() >= until)
            return n;
        usleep(20000);
    }
}

/* Opens and closes one TCP connection to sshd from 127.0.0.3 (so it never matches a
 * "Connection from 127.0.0.1" count) and waits for sshd to log it. Connections accepted
 * before it have been logged by then: a later negative check reads a log that caught up. */
static inline void iwt_sshd_marker(const iwt_sshd *s)
{
    struct sockaddr_in a, me;
    socklen_t len = sizeof me;
    char needle[80];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), seen;

    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.3", &a.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    a.sin_port = htons((uint16_t)s->port);
    inet_pton(AF_INET, s->host, &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
    snprintf(needle, sizeof needle, "Connection from 127.0.0.3 port %u ", ntohs(me.sin_port));
    seen = iwt_log_wait(s->log, needle, 1, 10000);
    close(fd);
    ck_assert_msg(seen == 1, "sshd never logged the marker connection (%s)", needle);
}

#endif /* SSHD_LOG_H */
