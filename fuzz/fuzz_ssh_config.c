/* fuzz_ssh_config.c: libFuzzer target for CREDENTIAL_TUNNEL_SSH_CONFIG: the OpenSSH config
 * parser, ProxyJump routes and the jump-host list parser, on attacker-shaped files. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "runtime/runtime.h"
#include "../security/ssh_config.h"
#include "../security/ssh_hops.h"

/* Input: the alias (up to the first newline), then the configuration file. */

static char fz_home[] = "/tmp/imapwire-fuzz-sshcfg-XXXXXX";
static char fz_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_cleanup(void)
{
    char p[300];
    unlink(fz_path);
    snprintf(p, sizeof p, "%s/.ssh", fz_home);
    rmdir(p);
    rmdir(fz_home);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char p[300];
    (void)argc;
    (void)argv;
    if (mkdtemp(fz_home) == NULL)
        abort();
    snprintf(p, sizeof p, "%s/.ssh", fz_home);
    mkdir(p, 0700);
    snprintf(fz_path, sizeof fz_path, "%s/.ssh/config", fz_home);
    setenv("HOME", fz_home, 1);
    setenv("IMAPWIRE_SSH_CONFIG", fz_path, 1);
    atexit(fz_cleanup);
    return 0;
}

/* Includes with a path or a wildcard would read the machine's files: not what is tested. */
static int fz_wide_include(const char *text, size_t n)
{
    size_t i;
    for (i = 0; i + 7 <= n; i++)
        if (strncasecmp(text + i, "include", 7) == 0 && (memchr(text, '/', n) || memchr(text, '*', n) ||
                                                        memchr(text, '?', n) || memchr(text, '[', n)))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t alen = nl ? (size_t)(nl - (const char *)data) : size;
    char alias[300], why[256];
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    iw_ssh_config cfg;
    iw_creds *k;
    FILE *f;
    int n;

    if (alen == 0 || alen >= sizeof alias || memchr(data, '\0', alen) != NULL)
        return 0;
    memcpy(alias, data, alen);
    alias[alen] = '\0';
    if (fz_wide_include((const char *)data, size))
        return 0;
    f = fopen(fz_path, "w");
    if (f == NULL)
        return 0;
    if (nl != NULL)
        fwrite(nl + 1, 1, size - alen - 1, f);
    fclose(f);
    chmod(fz_path, 0600);

    iw_ssh_hops_parse(alias, "user", 0, hops, IW_SSH_MAX_HOPS, &n);
    if (iw_ssh_config_lookup(fz_path, 1, alias, &cfg, why, sizeof why) == 0)
        iw_ssh_config_clear(&cfg);
    /* freed by the library's own iw_creds_free, so a field the apply learns to fill
     * (ProxyCommand's transport, the global known_hosts) is freed here too */
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return 0;
    k->options = CREDENTIAL_TUNNEL_SSH_CONFIG;
    k->tunnel_host = strdup(alias);
    if (k->tunnel_host != NULL && iw_ssh_config_apply(k, why, sizeof why) == 0) {
        /* what the apply produced must itself be a valid route */
        if (iw_ssh_hops_parse(k->tunnel_host, k->tunnel_user, k->tunnel_port, hops,
                              IW_SSH_MAX_HOPS, &n) != 0)
            abort();
    }
    iw_creds_free(k);
    return 0;
}
