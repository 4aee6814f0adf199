/* test_ssh_hops.c: the jump-host list of lpszTunnelHost: each hop's user, host and port,
 * the defaults, IPv6 forms, the route prefix, and every malformed list refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/runtime.h"
#include "../security/ssh_hops.h"

static iw_ssh_hop hops[IW_SSH_MAX_HOPS];

START_TEST(one_hop_defaults)
{
    int n = -1;
    ck_assert_int_eq(iw_ssh_hops_parse("bastion.example", "alice", 0, hops, IW_SSH_MAX_HOPS, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(hops[0].host, "bastion.example");
    ck_assert_str_eq(hops[0].user, "alice");
    ck_assert_uint_eq(hops[0].port, 22);
    ck_assert_int_eq(iw_ssh_hops_parse("bastion.example", "alice", 2222, hops, IW_SSH_MAX_HOPS, &n), 0);
    ck_assert_uint_eq(hops[0].port, 2222);
    ck_assert_uint_eq(iw_ssh_hops_via_len("bastion.example"), 0);
}
END_TEST

START_TEST(three_hops_mixed)
{
    const char *list = "bob@jump1:2201,ssh://jump2,carol@[::1]:22022";
    int n = -1;
    char text[400];
    ck_assert_int_eq(iw_ssh_hops_parse(list, "alice", 23, hops, IW_SSH_MAX_HOPS, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(hops[0].user, "bob");
    ck_assert_str_eq(hops[0].host, "jump1");
    ck_assert_uint_eq(hops[0].port, 2201);
    ck_assert_str_eq(hops[1].user, "alice");
    ck_assert_str_eq(hops[1].host, "jump2");
    ck_assert_uint_eq(hops[1].port, 23);
    ck_assert_str_eq(hops[2].user, "carol");
    ck_assert_str_eq(hops[2].host, "::1");
    ck_assert_uint_eq(hops[2].port, 22022);
    /* the route to the last hop is the list before it, itself a valid list */
    ck_assert_uint_eq(iw_ssh_hops_via_len(list), strlen("bob@jump1:2201,ssh://jump2"));
    iw_ssh_hop_format(&hops[2], text, sizeof text);
    ck_assert_str_eq(text, "carol@[::1]:22022");
    /* a bare IPv6 address has no port */
    ck_assert_int_eq(iw_ssh_hops_parse("fe80::1", "alice", 0, hops, IW_SSH_MAX_HOPS, &n), 0);
    ck_assert_str_eq(hops[0].host, "fe80::1");
    ck_assert_uint_eq(hops[0].port, 22);
}
END_TEST

START_TEST(user_needed_somewhere)
{
    int n;
    ck_assert_int_eq(iw_ssh_hops_parse("a@h1,b@h2", NULL, 0, hops, IW_SSH_MAX_HOPS, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(iw_ssh_hops_parse("a@h1,h2", NULL, 0, hops, IW_SSH_MAX_HOPS, &n),
                     ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(iw_ssh_hops_parse("h1", "", 0, hops, IW_SSH_MAX_HOPS, &n),
                     ST_ERROR_INVALID_PARAMETER);
}
END_TEST

static const char *const bad_lists[] = {
    "", ",", "h1,", ",h1", "h1,,h2", "h1 ,h2", "h 1", "@h1", "u@", "u@:22", "h1:", "h1:0",
    "h1:65536", "h1:22x", "h1:-1", "h1:123456", "[::1", "[::1]x", "[::1]:", "[zz::1]:22",
    "u@v@h1", "h1/evil", "h1\r\nh2", "h1;rm", "u s@h1", "h\x01", "ssh://", "-oProxyCommand=x:h", "-oFoo", "-u@h1",
    "a,b,c,d,e,f,g,h,i",
};

START_TEST(malformed_refused)
{
    int n = 99;
    const char *l = bad_lists[_i];
    int rc = iw_ssh_hops_parse(l, "alice", 0, hops, IW_SSH_MAX_HOPS, &n);
    ck_assert_msg(rc == ST_ERROR_INVALID_PARAMETER, "list \"%s\" gave %d", l, rc);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(bounds)
{
    char host[300];
    int n;
    /* eight hops is the most */
    ck_assert_int_eq(iw_ssh_hops_parse("a,b,c,d,e,f,g,h", "u", 0, hops, IW_SSH_MAX_HOPS, &n), 0);
    ck_assert_int_eq(n, 8);
    ck_assert_int_eq(iw_ssh_hops_parse("a,b,c", "u", 0, hops, 2, &n), ST_ERROR_INVALID_PARAMETER);
    memset(host, 'h', 255);
    host[255] = '\0';
    ck_assert_int_eq(iw_ssh_hops_parse(host, "u", 0, hops, IW_SSH_MAX_HOPS, &n), 0);
    memset(host, 'h', 256);
    host[256] = '\0';
    ck_assert_int_eq(iw_ssh_hops_parse(host, "u", 0, hops, IW_SSH_MAX_HOPS, &n),
                     ST_ERROR_INVALID_PARAMETER);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh_hops");
    TCase *tc = tcase_create("parse");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, one_hop_defaults);
    tcase_add_test(tc, three_hops_mixed);
    tcase_add_test(tc, user_needed_somewhere);
    tcase_add_loop_test(tc, malformed_refused, 0, (int)(sizeof bad_lists / sizeof bad_lists[0]));
    tcase_add_test(tc, bounds);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
