/* test_ssh_keyfile.c: the key type read from SSH private key files made by ssh-keygen:
 * RSA in both formats, encrypted or not, is RSA; ed25519, ECDSA and junk are not. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../security/ssh_keyfile.h"

static char dir[128];

static const char *make_key(const char *name, const char *args)
{
    static char path[256];
    char cmd[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(cmd, sizeof cmd, "ssh-keygen -q %s -f %s >/dev/null", args, path);
    ck_assert_int_eq(system(cmd), 0);
    return path;
}

START_TEST(key_types)
{
    FILE *f;
    snprintf(dir, sizeof dir, "/tmp/iw-keyfile-%d", (int)getpid());
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(iw_ssh_key_is_rsa(make_key("rsa", "-t rsa -b 2048 -N ''")), 1);
    ck_assert_int_eq(iw_ssh_key_is_rsa(make_key("rsa-enc", "-t rsa -b 2048 -N secret")), 1);
    ck_assert_int_eq(iw_ssh_key_is_rsa(make_key("rsa-pem", "-t rsa -b 2048 -m PEM -N ''")), 1);
    ck_assert_int_eq(iw_ssh_key_is_rsa(make_key("ed", "-t ed25519 -N ''")), 0);
    ck_assert_int_eq(iw_ssh_key_is_rsa(make_key("ec", "-t ecdsa -N ''")), 0);
    ck_assert_int_eq(iw_ssh_key_is_rsa(make_key("ec-enc", "-t ecdsa -N secret")), 0);
    f = fopen("/tmp/iw-keyfile-junk", "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA!!!!\n-----END", f);
    fclose(f);
    ck_assert_int_eq(iw_ssh_key_is_rsa("/tmp/iw-keyfile-junk"), 0);
    ck_assert_int_eq(iw_ssh_key_is_rsa("/nonexistent/key"), 0);
    ck_assert_int_eq(iw_ssh_key_is_rsa(NULL), 0);
    unlink("/tmp/iw-keyfile-junk");
    {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh_keyfile");
    TCase *tc = tcase_create("keyfile");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, key_types);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
