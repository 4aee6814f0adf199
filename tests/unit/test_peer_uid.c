/* test_peer_uid.c: the owner of a local connection's other end, found by sock_diag and by
 * /proc/net/tcp alike, for our own uid and for another user's (nobody), v4, v6 and mapped. */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime/runtime.h"
#include "../security/peer_uid.h"

#define NOBODY 65534

/* How a test connects: the listener's family and address, the client's family. MAPPED_V4
 * is a plain 127.0.0.1 listener (as a forward's) reached from an IPv6 socket as
 * ::ffff:127.0.0.1; DUAL_* is a dual-stack IPv6 listener reached by a v4 or v6 client. */
enum way { PLAIN, MAPPED_V4, DUAL_V4, DUAL_V6 };

static int client_family(int fam, enum way w)
{
    return w == MAPPED_V4 || w == DUAL_V6 ? AF_INET6 : w == DUAL_V4 ? AF_INET : fam;
}

/* The listener's address as the client must write it. */
static void client_addr(const struct sockaddr_storage *l, enum way w,
                        struct sockaddr_storage *a, socklen_t *len)
{
    uint16_t port = l->ss_family == AF_INET ? ((const struct sockaddr_in *)l)->sin_port
                                            : ((const struct sockaddr_in6 *)l)->sin6_port;
    memcpy(a, l, sizeof *a);
    *len = l->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (w == MAPPED_V4 || w == DUAL_V6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)a;
        memset(a, 0, sizeof *a);
        s->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:127.0.0.1", &s->sin6_addr), 1);
        s->sin6_port = port;
        *len = sizeof *s;
    } else if (w == DUAL_V4) {
        struct sockaddr_in *s = (struct sockaddr_in *)a;
        memset(a, 0, sizeof *a);
        s->sin_family = AF_INET;
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s->sin_port = port;
        *len = sizeof *s;
    }
}

/* A listener on the loopback address of family fam (dual-stack ::ffff:127.0.0.1 for the
 * DUAL ways); its address in *a. */
static int listener(int fam, enum way w, struct sockaddr_storage *a, socklen_t *len)
{
    int fd, zero = 0;
    if (w == DUAL_V4 || w == DUAL_V6)
        fam = AF_INET6;
    else if (w == MAPPED_V4)
        fam = AF_INET;
    fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(a, 0, sizeof *a);
    if (fam == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)a;
        s->sin_family = AF_INET;
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)a;
        s->sin6_family = AF_INET6;
        s->sin6_addr = in6addr_loopback;
        if (w == DUAL_V4 || w == DUAL_V6) {
            ck_assert_int_eq(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), 0);
            ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:127.0.0.1", &s->sin6_addr), 1);
        }
        *len = sizeof *s;
    }
    ck_assert_int_ge(fd, 0);
    if (bind(fd, (struct sockaddr *)a, *len) != 0) {
        close(fd);
        return -1;                 /* no IPv6 loopback here */
    }
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)a, len), 0);
    return fd;
}

/* Connects to the listener as uid (forking to drop privileges when it is not ours) the
 * way w says, accepts, and checks both lookups name that uid while the peer is connected. */
static void check_peer_way(int fam, enum way w, uid_t as)
{
    struct sockaddr_storage l, a;
    socklen_t len;
    int lfd = listener(fam, w, &l, &len), cfd = -1, afd, go[2], cfam = client_family(fam, w);
    uid_t u1 = 12345, u2 = 12345;
    pid_t pid = 0;
    char c = 0;

    if (lfd < 0)
        return;
    client_addr(&l, w, &a, &len);
    ck_assert_int_eq(pipe(go), 0);
    if (as != geteuid()) {
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(as) != 0)
                _exit(2);
            cfd = socket(cfam, SOCK_STREAM, 0);
            if (connect(cfd, (struct sockaddr *)&a, len) != 0)
                _exit(3);
            /* stay connected until the parent has looked */
            if (read(go[0], &c, 1) < 0)
                _exit(4);
            _exit(0);
        }
    } else {
        cfd = socket(cfam, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(cfd, (struct sockaddr *)&a, len), 0);
    }
    afd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(afd, 0);
    ck_assert_msg(iw_peer_uid_diag(afd, &u1) == 0, "sock_diag: no owner (way %d)", (int)w);
    ck_assert_msg(iw_peer_uid_proc(afd, &u2) == 0, "/proc: no owner (way %d)", (int)w);
    ck_assert_uint_eq(u1, as);
    ck_assert_uint_eq(u2, as);
    u1 = 12345;
    ck_assert_int_eq(iw_peer_uid(afd, &u1), 0);
    ck_assert_uint_eq(u1, as);
    ck_assert_int_eq(write(go[1], "x", 1), 1);
    if (pid > 0) {
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    }
    if (cfd >= 0)
        close(cfd);
    close(afd);
    close(lfd);
    close(go[0]);
    close(go[1]);
}

static void check_peer(int fam, uid_t as)
{
    check_peer_way(fam, PLAIN, as);
}

START_TEST(own_uid_v4)
{
    check_peer(AF_INET, geteuid());
}
END_TEST

START_TEST(own_uid_v6)
{
    check_peer(AF_INET6, geteuid());
}
END_TEST

START_TEST(other_uid_v4)
{
    ck_assert_msg(geteuid() == 0, "needs root to act as nobody");
    check_peer(AF_INET, NOBODY);
}
END_TEST

START_TEST(other_uid_v6)
{
    ck_assert_msg(geteuid() == 0, "needs root to act as nobody");
    check_peer(AF_INET6, NOBODY);
}
END_TEST

/* IPv4-mapped IPv6 on either side: a v6 client reaching a v4 listener (a forward's) as
 * ::ffff:127.0.0.1, and v4 and v6 clients of a dual-stack listener; our uid and nobody's. */
START_TEST(mapped_own_uid)
{
    check_peer_way(AF_INET, MAPPED_V4, geteuid());
    check_peer_way(AF_INET6, DUAL_V4, geteuid());
    check_peer_way(AF_INET6, DUAL_V6, geteuid());
}
END_TEST

START_TEST(mapped_other_uid)
{
    ck_assert_msg(geteuid() == 0, "needs root to act as nobody");
    check_peer_way(AF_INET, MAPPED_V4, NOBODY);
    check_peer_way(AF_INET6, DUAL_V4, NOBODY);
    check_peer_way(AF_INET6, DUAL_V6, NOBODY);
}
END_TEST

/* A Unix socket pair is answered by SO_PEERCRED; a socket that is not connected has no
 * peer to name. */
START_TEST(unix_and_unconnected)
{
    int sv[2], fd;
    uid_t u = 12345;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(iw_peer_uid(sv[0], &u), 0);
    ck_assert_uint_eq(u, geteuid());
    close(sv[0]);
    close(sv[1]);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(iw_peer_uid(fd, &u), ST_ERROR_NETWORK_ERROR);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("peer_uid");
    TCase *tc = tcase_create("peer_uid");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, own_uid_v4);
    tcase_add_test(tc, own_uid_v6);
    tcase_add_test(tc, other_uid_v4);
    tcase_add_test(tc, other_uid_v6);
    tcase_add_test(tc, mapped_own_uid);
    tcase_add_test(tc, mapped_other_uid);
    tcase_add_test(tc, unix_and_unconnected);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
