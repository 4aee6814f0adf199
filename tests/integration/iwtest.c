/* iwtest.c: the shared integration-test helpers (harness env, fixture processes,
 * resource counters). Every wait here is bounded in time. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "iwtest.h"

long long iwt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *iwt_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)(n < 0 ? 0 : n) + 1);
    ck_assert_ptr_nonnull(buf);
    n = (long)fread(buf, 1, (size_t)(n < 0 ? 0 : n), f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void copy_value(char *dst, size_t size, const char *v)
{
    ck_assert_msg(strlen(v) < size, "env value too long: %s", v);
    strcpy(dst, v);
}

void iwt_dovecot_load(iwt_dovecot *d)
{
    const char *path = getenv("IW_DOVECOT_ENV");
    char line[1024];
    FILE *f;

    memset(d, 0, sizeof *d);
    ck_assert_msg(path != NULL, "IW_DOVECOT_ENV not set (run through ctest)");
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s: is the dovecot fixture running?", path);
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '='), *v;
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (!eq)
            continue;
        *eq = '\0';
        v = eq + 1;
        if (!strcmp(line, "DOVECOT_HOST")) copy_value(d->host, sizeof d->host, v);
        else if (!strcmp(line, "DOVECOT_PORT")) d->port = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(line, "DOVECOT_USER")) copy_value(d->user, sizeof d->user, v);
        else if (!strcmp(line, "DOVECOT_PASS")) copy_value(d->pass, sizeof d->pass, v);
        else if (!strcmp(line, "DOVECOT_USER2")) copy_value(d->user2, sizeof d->user2, v);
        else if (!strcmp(line, "DOVECOT_PASS2")) copy_value(d->pass2, sizeof d->pass2, v);
        else if (!strcmp(line, "DOVECOT_LOG")) copy_value(d->log, sizeof d->log, v);
        else if (!strcmp(line, "DOVECOT_MSG1")) copy_value(d->msg1, sizeof d->msg1, v);
    }
    fclose(f);
    ck_assert_msg(d->port > 0 && d->host[0] && d->user[0], "incomplete env file %s", path);
}

void iwt_fixture_start(iwt_fixture *f, const char *scenario, int max_conns)
{
    const char *bin = getenv("IW_FIXTURE_BIN");
    const char *tmp = getenv("IW_TMPDIR");
    char portfile[512], maxc[32];
    static int seq;
    long long until;

    memset(f, 0, sizeof *f);
    ck_assert_msg(bin != NULL && tmp != NULL, "IW_FIXTURE_BIN/IW_TMPDIR not set (run through ctest)");
    mkdir(tmp, 0755);
    snprintf(portfile, sizeof portfile, "%s/fixture-%d-%d-%s.port", tmp, (int)getpid(), ++seq, scenario);
    snprintf(f->log, sizeof f->log, "%s/fixture-%d-%d-%s.log", tmp, (int)getpid(), seq, scenario);
    unlink(portfile);
    unlink(f->log);
    snprintf(maxc, sizeof maxc, "%d", max_conns > 0 ? max_conns : 1000);

    f->pid = fork();
    ck_assert_int_ge(f->pid, 0);
    if (f->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execl(bin, bin, scenario, "--port-file", portfile, "--log", f->log,
              "--max-conns", maxc, "--idle-exit", "30", (char *)NULL);
        _exit(127);
    }
    /* The fixture renames the port file into place, so a read sees all or nothing. */
    until = iwt_now_ms() + 10000;
    while (iwt_now_ms() < until) {
        FILE *pf = fopen(portfile, "r");
        if (pf) {
            unsigned port = 0;
            int ok = fscanf(pf, "%u", &port) == 1;
            fclose(pf);
            if (ok && port) {
                f->port = port;
                unlink(portfile);
                return;
            }
        }
        usleep(10000);
    }
    iwt_fixture_stop(f);
    ck_abort_msg("fixture %s did not start within 10 s", scenario);
}

void iwt_fixture_stop(iwt_fixture *f)
{
    long long until;
    int status;

    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    until = iwt_now_ms() + 5000;
    while (iwt_now_ms() < until) {
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            f->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, &status, 0);
    f->pid = 0;
}

int iwt_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

size_t iwt_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

void iwt_assert_error_at(DWORD expected, const char *file, int line)
{
    DWORD got = ImapGetLastError();
    char want_text[128], got_text[128];
    if (got == expected)
        return;
    ImapGetErrorString(expected, want_text, (INT)sizeof want_text);
    ImapGetErrorString(got, got_text, (INT)sizeof got_text);
    ck_abort_msg("%s:%d: expected error %u (%s), got %u (%s)", file, line,
                 (unsigned)expected, want_text, (unsigned)got, got_text);
}
