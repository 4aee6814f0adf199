/* test_ssh_config.c: the OpenSSH client configuration as ssh reads it: patterns, first
 * value wins, Include, Match, ProxyJump routes, tokens, and every refusal with its reason. */
#define _GNU_SOURCE
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "runtime/runtime.h"
#include "../security/ssh_config.h"

static char dir[256], cfg_path[300], why[256];

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static void setup(void)
{
    char ssh[300];
    snprintf(dir, sizeof dir, "/tmp/iw-sshcfg-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(ssh, sizeof ssh, "%s/.ssh", dir);
    mkdir(ssh, 0700);
    snprintf(cfg_path, sizeof cfg_path, "%s/.ssh/config", dir);
    setenv("HOME", dir, 1);
    unsetenv("IMAPWIRE_SSH_CONFIG");
    why[0] = '\0';
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static iw_ssh_config cfg;

static int lookup(const char *text, const char *alias)
{
    write_file(cfg_path, text, 0600);
    return iw_ssh_config_lookup(cfg_path, 1, alias, &cfg, why, sizeof why);
}

START_TEST(patterns_and_first_value)
{
    const char *text =
        "# comment\n"
        "Host *.corp !bad.corp\n"
        "  HostName=%h.internal\n"
        "  Port 2222\n"
        "Host mail.corp\n"
        "  Port 9999\n"
        "  User \"mail user\"\n"
        "Host *\n"
        "  User fallback\n"
        "  ConnectTimeout 7\n"
        "  ServerAliveInterval 30 # trailing comment\n";
    ck_assert_int_eq(lookup(text, "mail.corp"), 0);
    ck_assert_str_eq(cfg.hostname, "%h.internal");    /* tokens expand when applied */
    ck_assert_uint_eq(cfg.port, 2222);                 /* the first Port wins */
    ck_assert_str_eq(cfg.user, "mail user");
    ck_assert_uint_eq(cfg.connect_timeout, 7);
    ck_assert_uint_eq(cfg.alive_interval, 30);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup(text, "bad.corp"), 0);      /* negated: the block is skipped */
    ck_assert_ptr_null(cfg.hostname);
    ck_assert_uint_eq(cfg.port, 0);
    ck_assert_str_eq(cfg.user, "fallback");
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup(text, "MAIL.CORP"), 0);     /* host names compare without case */
    ck_assert_uint_eq(cfg.port, 2222);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Host m?il\n Port 1\n", "mail"), 0);
    ck_assert_uint_eq(cfg.port, 1);
    iw_ssh_config_clear(&cfg);
}
END_TEST

START_TEST(include_relative_glob_and_scoped)
{
    char inc[300];
    snprintf(inc, sizeof inc, "%s/.ssh/conf.d", dir);
    mkdir(inc, 0700);
    snprintf(inc, sizeof inc, "%s/.ssh/conf.d/10-a.conf", dir);
    write_file(inc, "Host a\n  Port 101\nHost b\n  Port 102\n", 0600);
    snprintf(inc, sizeof inc, "%s/.ssh/conf.d/20-b.conf", dir);
    write_file(inc, "  User from-include\n", 0600);
    /* Include in a block applies under that block; afterwards the block's state returns */
    ck_assert_int_eq(lookup("Include conf.d/*.conf\nHost c\n Include conf.d/20-b.conf\n Port 103\n",
                            "c"), 0);
    ck_assert_uint_eq(cfg.port, 103);
    ck_assert_str_eq(cfg.user, "from-include");
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Include conf.d/*.conf\nHost c\n Port 103\n", "b"), 0);
    ck_assert_uint_eq(cfg.port, 102);
    iw_ssh_config_clear(&cfg);
    /* an Include that matches nothing is fine, as in ssh */
    ck_assert_int_eq(lookup("Include nothing-here-*\nHost a\n Port 5\n", "a"), 0);
    ck_assert_uint_eq(cfg.port, 5);
    iw_ssh_config_clear(&cfg);
}
END_TEST

START_TEST(include_loop_bounded)
{
    ck_assert_int_eq(lookup("Include config\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "nested") != NULL, "%s", why);
}
END_TEST

START_TEST(match_criteria)
{
    ck_assert_int_eq(lookup("Match originalhost x*\n Port 11\nMatch all\n Port 12\n", "xy"), 0);
    ck_assert_uint_eq(cfg.port, 11);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Host a\n HostName real\nMatch host real\n User r\n", "a"), 0);
    ck_assert_str_eq(cfg.user, "r");
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Match exec \"true\"\n Port 11\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "Match exec") != NULL && strstr(why, "line 1") != NULL, "%s", why);
}
END_TEST

START_TEST(refused_and_unknown_keywords)
{
    /* applies to our host: refused, the keyword named */
    ck_assert_int_eq(lookup("Host a\n CertificateFile /x\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "CertificateFile") != NULL && strstr(why, "line 2") != NULL, "%s", why);
    /* another host's: none of our business */
    ck_assert_int_eq(lookup("Host b\n CertificateFile /x\nHost a\n Port 3\n", "a"), 0);
    ck_assert_uint_eq(cfg.port, 3);
    iw_ssh_config_clear(&cfg);
    /* the harmless value of a refused keyword, and interactive-only keywords */
    ck_assert_int_eq(lookup("Host a\n AddressFamily any\n ForwardAgent yes\n "
                            "StrictHostKeyChecking no\n Port 4\n", "a"), 0);
    ck_assert_uint_eq(cfg.port, 4);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Host a\n HostKeyAlias other\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(lookup("Host a\n Ciphers aes128-ctr\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(lookup("Host a\n Frobnicate yes\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "Frobnicate") != NULL, "%s", why);
    ck_assert_int_eq(lookup("IgnoreUnknown Frob*\nHost a\n Frobnicate yes\n Port 6\n", "a"), 0);
    ck_assert_uint_eq(cfg.port, 6);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Host a\n Port 0\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(lookup("Host a\n Port 65536\n", "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(lookup("Host a\n User \"unterminated\n", "a"), ST_ERROR_INVALID_PARAMETER);
}
END_TEST

START_TEST(unsafe_file_refused)
{
    write_file(cfg_path, "Host a\n Port 1\n", 0666);
    ck_assert_int_eq(iw_ssh_config_lookup(cfg_path, 1, "a", &cfg, why, sizeof why),
                     ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "permissions") != NULL, "%s", why);
    /* missing: empty when it is the default file, an error when named explicitly */
    unlink(cfg_path);
    ck_assert_int_eq(iw_ssh_config_lookup(cfg_path, 0, "a", &cfg, why, sizeof why), 0);
    ck_assert_int_eq(iw_ssh_config_lookup(cfg_path, 1, "a", &cfg, why, sizeof why),
                     ST_ERROR_INVALID_PARAMETER);
}
END_TEST

/* Every keyword by class, named one by one: the policy table in ssh_config.c is pinned
 * here, so changing a keyword's class is a deliberate edit in two places. */
static const char *const skipped[] = {
    "AddKeysToAgent", "BatchMode", "ChallengeResponseAuthentication", "CheckHostIP",
    "ClearAllForwardings", "Compression", "ControlMaster", "ControlPath", "ControlPersist",
    "DynamicForward", "EnableEscapeCommandline", "EscapeChar", "ExitOnForwardFailure",
    "FingerprintHash", "ForkAfterAuthentication", "ForwardAgent", "ForwardX11",
    "ForwardX11Timeout", "ForwardX11Trusted", "GatewayPorts", "GSSAPIAuthentication",
    "GSSAPIDelegateCredentials", "IdentityAgent", "KbdInteractiveAuthentication",
    "KbdInteractiveDevices", "LocalCommand", "LocalForward", "LogLevel", "LogVerbose",
    "NumberOfPasswordPrompts", "PasswordAuthentication", "PermitLocalCommand",
    "PermitRemoteOpen", "PreferredAuthentications", "PubkeyAuthentication", "RemoteCommand",
    "RemoteForward", "RequestTTY", "SendEnv", "ServerAliveCountMax", "SessionType", "SetEnv",
    "StdinNull", "StreamLocalBindMask", "StreamLocalBindUnlink", "TCPKeepAlive",
    "UpdateHostKeys", "UseKeychain", "VerifyHostKeyDNS", "VisualHostKey", "XAuthLocation",
    "IPQoS", "RekeyLimit", "HostbasedAuthentication", "NoHostAuthenticationForLocalhost",
    "ObscureKeystrokeTiming", "SyslogFacility", "Protocol", "UseRoaming", NULL
};

/* Refused unless the value is the one given (what the tunnel does anyway). */
static const struct { const char *key, *allowed; } refused[] = {
    { "HostKeyAlias", NULL }, { "CertificateFile", NULL }, { "PKCS11Provider", "none" },
    { "SecurityKeyProvider", NULL }, { "Ciphers", NULL }, { "MACs", NULL },
    { "KexAlgorithms", NULL }, { "HostKeyAlgorithms", NULL },
    { "PubkeyAcceptedAlgorithms", NULL }, { "PubkeyAcceptedKeyTypes", NULL },
    { "CASignatureAlgorithms", NULL }, { "RequiredRSASize", NULL },
    { "RevokedHostKeys", NULL }, { "BindAddress", NULL }, { "BindInterface", NULL },
    { "AddressFamily", "any" }, { "CanonicalizeHostname", "no" }, { "CanonicalDomains", NULL },
    { "CanonicalizeFallbackLocal", NULL }, { "CanonicalizeMaxDots", NULL },
    { "CanonicalizePermittedCNAMEs", NULL }, { "ProxyUseFdpass", "no" }, { "Tunnel", "no" },
    { "TunnelDevice", NULL }, { "KnownHostsCommand", "none" },
    { "HostbasedAcceptedAlgorithms", NULL }, { "HostbasedKeyTypes", NULL },
    { "GSSAPIServerIdentity", NULL }, { "Tag", NULL }, { NULL, NULL }
};

static void expect_why(const char *text, unsigned line, const char *msg)
{
    char want[512];
    snprintf(want, sizeof want, "ssh config %s line %u: %s", cfg_path, line, msg);
    ck_assert_int_eq(lookup(text, "a"), ST_ERROR_INVALID_PARAMETER);
    ck_assert_str_eq(why, want);
}

START_TEST(keyword_class_skip)
{
    char text[256];
    int i;
    for (i = 0; skipped[i] != NULL; i++) {
        /* with a value, without one, in any case: silently skipped */
        snprintf(text, sizeof text, "Host a\n %s yes\n %s\n Port 7\n", skipped[i], skipped[i]);
        ck_assert_msg(lookup(text, "a") == 0, "%s: %s", skipped[i], why);
        ck_assert_uint_eq(cfg.port, 7);
        iw_ssh_config_clear(&cfg);
    }
}
END_TEST

START_TEST(keyword_class_refuse)
{
    char text[256], msg[200];
    int i;
    for (i = 0; refused[i].key != NULL; i++) {
        snprintf(text, sizeof text, "Host a\n Port 7\n %s something\n", refused[i].key);
        snprintf(msg, sizeof msg, "%s is not supported by imapwire's SSH tunnels", refused[i].key);
        expect_why(text, 3, msg);
        snprintf(text, sizeof text, "Host a\n%s\n", refused[i].key);
        expect_why(text, 2, msg);
        if (refused[i].allowed == NULL)
            continue;
        /* the allowed value in any case */
        snprintf(msg, sizeof msg, "%s", refused[i].allowed);
        msg[0] = (char)toupper((unsigned char)msg[0]);
        snprintf(text, sizeof text, "Host a\n %s=%s\n Port 7\n", refused[i].key, msg);
        ck_assert_msg(lookup(text, "a") == 0, "%s: %s", refused[i].key, why);
        ck_assert_uint_eq(cfg.port, 7);
        iw_ssh_config_clear(&cfg);
    }
}
END_TEST

START_TEST(keyword_class_apply)
{
    ck_assert_msg(lookup("Host a\n HOSTNAME=h\n User u\n IdentityFile ~/k\n ProxyJump j1,j2\n"
                         " ProxyCommand nc \"%h\"  %p \n UserKnownHostsFile k1 k2\n"
                         " GlobalKnownHostsFile g\n HashKnownHosts yes\n"
                         " StrictHostKeyChecking accept-new\n IdentitiesOnly yes\n Port 2200\n"
                         " ConnectTimeout 5\n ServerAliveInterval 9\n IgnoreUnknown\n"
                         "Host *\n HostName x\n User x\n Port 1\n ConnectTimeout 1\n"
                         " HashKnownHosts no\n IdentitiesOnly no\n", "a") == 0, "%s", why);
    ck_assert_str_eq(cfg.hostname, "h");
    ck_assert_str_eq(cfg.user, "u");
    ck_assert_str_eq(cfg.identity_file, "~/k");
    ck_assert_str_eq(cfg.proxy_jump, "j1,j2");
    ck_assert_ptr_null(cfg.proxy_command);              /* ProxyJump came first */
    ck_assert_str_eq(cfg.known_hosts, "k1");            /* the first file of the list */
    ck_assert_str_eq(cfg.global_known_hosts, "g");
    ck_assert_int_eq(cfg.hash_known_hosts, 1);
    ck_assert_int_eq(cfg.accept_new, 1);
    ck_assert_int_eq(cfg.identities_only, 1);
    ck_assert_uint_eq(cfg.port, 2200);
    ck_assert_uint_eq(cfg.connect_timeout, 5);
    ck_assert_uint_eq(cfg.alive_interval, 9);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("ProxyCommand nc \"%h\"  %p \nProxyJump j\nConnectTimeout none\n"
                            "StrictHostKeyChecking yes\nHashKnownHosts no\n", "a"), 0);
    ck_assert_str_eq(cfg.proxy_command, "nc \"%h\"  %p");  /* the rest of the line, unsplit */
    ck_assert_ptr_null(cfg.proxy_jump);
    ck_assert_uint_eq(cfg.connect_timeout, 0);
    ck_assert_int_eq(cfg.accept_new, 0);
    ck_assert_int_eq(cfg.hash_known_hosts, 0);
    iw_ssh_config_clear(&cfg);
    expect_why("Host a\n User\n", 2, "User needs a value");
    expect_why("Host a\n\n HashKnownHosts\n", 3, "HashKnownHosts needs a value");
    expect_why("Port x\n", 1, "Port x is not a port");
    expect_why("Port 65536\n", 1, "Port 65536 is not a port");
    expect_why("connecttimeout -1\n", 1, "connecttimeout -1 is not a number of seconds");
    expect_why("ServerAliveInterval 86401\n", 1,
               "ServerAliveInterval 86401 is not a number of seconds");
}
END_TEST

START_TEST(keyword_class_unknown)
{
    expect_why("Host a\n Port 7\n Frobnicate yes\n", 3, "unknown keyword Frobnicate");
    expect_why("Host a\n Frobnicate\n", 2, "Frobnicate needs a value");
    expect_why("IgnoreUnknown Other*\nFrobnicate yes\n", 2, "unknown keyword Frobnicate");
    ck_assert_int_eq(lookup("IgnoreUnknown Other*,frob*\nIgnoreUnknown x\nFrobnicate yes\n"
                            "Port 7\n", "a"), 0);
    ck_assert_uint_eq(cfg.port, 7);
    iw_ssh_config_clear(&cfg);
    /* another host's unknown keyword is not read at all */
    ck_assert_int_eq(lookup("Host b\n Frobnicate yes\n", "a"), 0);
    iw_ssh_config_clear(&cfg);
}
END_TEST

static iw_creds *creds_for(const char *host, const char *user, unsigned port)
{
    iw_creds *k = calloc(1, sizeof *k);
    ck_assert_ptr_nonnull(k);
    k->options = CREDENTIAL_TUNNEL_SSH_CONFIG;
    k->tunnel_host = strdup(host);
    k->tunnel_user = user ? strdup(user) : NULL;
    k->tunnel_port = port;
    return k;
}

START_TEST(apply_route_and_fields)
{
    iw_creds *k;
    char expect[600];
    write_file(cfg_path,
               "Host mail\n"
               "  HostName 10.0.0.5\n"
               "  User alice\n"
               "  Port 2200\n"
               "  ProxyJump gate\n"
               "  IdentityFile ~/.ssh/id_%h_%r\n"
               "  UserKnownHostsFile %d/kh\n"
               "  ConnectTimeout 3\n"
               "Host gate\n"
               "  HostName gate.example\n"
               "  User bob\n"
               "  ProxyJump outer:2022\n"
               "Host outer\n"
               "  HostName ::1\n", 0600);
    k = creds_for("mail", NULL, 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    /* ProxyJump chains resolve through the file; the outer jump's user is the local one */
    ck_assert_msg(strstr(k->tunnel_host, "@[::1]:2022,bob@gate.example:22,alice@10.0.0.5:2200") != NULL,
                  "%s", k->tunnel_host);
    ck_assert_str_eq(k->tunnel_user, "alice");
    ck_assert_uint_eq(k->tunnel_port, 0);
    snprintf(expect, sizeof expect, "%s/.ssh/id_10.0.0.5_alice", dir);
    ck_assert_str_eq(k->tunnel_key, expect);
    snprintf(expect, sizeof expect, "%s/kh", dir);
    ck_assert_str_eq(k->known_hosts, expect);
    ck_assert_uint_eq(k->ssh_connect_timeout, 3);
    iw_creds_free(k);

    /* the caller's fields win for the target */
    k = creds_for("mail", "carol", 2299);
    k->tunnel_key = strdup("/keys/mine");
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert_msg(strstr(k->tunnel_host, ",carol@10.0.0.5:2299") != NULL, "%s", k->tunnel_host);
    ck_assert_msg(strstr(k->tunnel_host, "bob@gate.example:22,") != NULL, "%s", k->tunnel_host);
    ck_assert_str_eq(k->tunnel_key, "/keys/mine");
    iw_creds_free(k);

    /* an explicit list is the route: the target's ProxyJump is not read */
    k = creds_for("gate,mail", "dave", 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert_msg(strstr(k->tunnel_host, "bob@gate.example:22,dave@10.0.0.5:2200") != NULL &&
                  strstr(k->tunnel_host, "::1") != NULL, "%s", k->tunnel_host);
    iw_creds_free(k);

    /* no entry: the alias is the host */
    k = creds_for("plain.example", "erin", 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert_str_eq(k->tunnel_host, "erin@plain.example:22");
    iw_creds_free(k);
}
END_TEST

/* ProxyCommand: the rest of its line as written; the first of it and ProxyJump wins;
 * %h %p %r %n %% expanded for the route's first hop only; "none" is no command. */
START_TEST(proxy_command)
{
    iw_creds *k;
    ck_assert_int_eq(lookup("Host a\n ProxyCommand sh -c \"nc %h %p\"  \n ProxyJump b\n", "a"), 0);
    ck_assert_str_eq(cfg.proxy_command, "sh -c \"nc %h %p\"");
    ck_assert_ptr_null(cfg.proxy_jump);
    iw_ssh_config_clear(&cfg);
    ck_assert_int_eq(lookup("Host a\n ProxyJump b\n ProxyCommand=nc %h %p\n", "a"), 0);
    ck_assert_str_eq(cfg.proxy_jump, "b");
    ck_assert_ptr_null(cfg.proxy_command);
    iw_ssh_config_clear(&cfg);

    write_file(cfg_path,
               "Host mail\n  HostName 10.0.0.5\n  User alice\n  Port 2200\n"
               "  ProxyCommand connect %h %p %r %n 100%%\n"
               "Host inner\n  ProxyJump mail\n"
               "Host direct\n  ProxyCommand none\n  ProxyJump mail\n"
               "Host bad\n  ProxyCommand nc %h %u\n", 0600);
    k = creds_for("mail", NULL, 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert_str_eq(k->ssh_proxy_transport, "command:connect 10.0.0.5 2200 alice mail 100%");
    iw_creds_free(k);
    /* a jump chain whose first hop has the command */
    k = creds_for("inner", "carol", 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert_str_eq(k->ssh_proxy_transport, "command:connect 10.0.0.5 2200 alice mail 100%");
    ck_assert_msg(strstr(k->tunnel_host, "alice@10.0.0.5:2200,carol@inner:22") != NULL, "%s",
                  k->tunnel_host);
    iw_creds_free(k);
    /* none, given first, also keeps the later ProxyJump out */
    k = creds_for("direct", "carol", 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert_ptr_null(k->ssh_proxy_transport);
    ck_assert_str_eq(k->tunnel_host, "carol@direct:22");
    iw_creds_free(k);
    /* a token ssh does not define for ProxyCommand */
    k = creds_for("bad", "carol", 0);
    ck_assert_int_eq(iw_ssh_config_apply(k, why, sizeof why), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "%u") != NULL, "%s", why);
    iw_creds_free(k);
}
END_TEST

/* StrictHostKeyChecking accept-new, HashKnownHosts and GlobalKnownHostsFile. */
START_TEST(host_key_keywords)
{
    iw_creds *k;
    write_file(cfg_path,
               "Host new\n  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n"
               "  GlobalKnownHostsFile /g/kh\n"
               "Host ask\n  StrictHostKeyChecking ask\n", 0600);
    k = creds_for("new", "u", 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert(k->options & CREDENTIAL_TUNNEL_ACCEPT_NEW);
    ck_assert_uint_eq(k->ssh_hash_known_hosts, 1);
    ck_assert_str_eq(k->global_known_hosts, "/g/kh");
    iw_creds_free(k);
    k = creds_for("ask", "u", 0);
    ck_assert_msg(iw_ssh_config_apply(k, why, sizeof why) == 0, "%s", why);
    ck_assert(!(k->options & CREDENTIAL_TUNNEL_ACCEPT_NEW));
    ck_assert_uint_eq(k->ssh_hash_known_hosts, 0);
    iw_creds_free(k);
}
END_TEST

START_TEST(apply_refusals)
{
    iw_creds *k;
    write_file(cfg_path, "Host loop1\n ProxyJump loop2\nHost loop2\n ProxyJump loop1\n"
                         "Host tok\n IdentityFile ~/.ssh/%z\n"
                         "Host hn\n HostName %p.example\n"
                         "Host evil\n HostName evil;rm\n", 0600);
    k = creds_for("loop1", "u", 0);
    ck_assert_int_eq(iw_ssh_config_apply(k, why, sizeof why), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "ProxyJump") != NULL || strstr(why, "hops") != NULL, "%s", why);
    iw_creds_free(k);
    k = creds_for("tok", "u", 0);
    ck_assert_int_eq(iw_ssh_config_apply(k, why, sizeof why), ST_ERROR_INVALID_PARAMETER);
    ck_assert_msg(strstr(why, "%z") != NULL, "%s", why);
    iw_creds_free(k);
    k = creds_for("hn", "u", 0);
    ck_assert_int_eq(iw_ssh_config_apply(k, why, sizeof why), ST_ERROR_INVALID_PARAMETER);
    iw_creds_free(k);
    k = creds_for("evil", "u", 0);
    ck_assert_int_eq(iw_ssh_config_apply(k, why, sizeof why), ST_ERROR_INVALID_PARAMETER);
    iw_creds_free(k);
    /* IMAPWIRE_SSH_CONFIG names the file; missing, it is an error */
    setenv("IMAPWIRE_SSH_CONFIG", "/nonexistent/iw-config", 1);
    k = creds_for("plain", "u", 0);
    ck_assert_int_eq(iw_ssh_config_apply(k, why, sizeof why), ST_ERROR_INVALID_PARAMETER);
    iw_creds_free(k);
    unsetenv("IMAPWIRE_SSH_CONFIG");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ssh_config");
    TCase *tc = tcase_create("config");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, patterns_and_first_value);
    tcase_add_test(tc, include_relative_glob_and_scoped);
    tcase_add_test(tc, include_loop_bounded);
    tcase_add_test(tc, match_criteria);
    tcase_add_test(tc, refused_and_unknown_keywords);
    tcase_add_test(tc, unsafe_file_refused);
    tcase_add_test(tc, apply_route_and_fields);
    tcase_add_test(tc, apply_refusals);
    tcase_add_test(tc, proxy_command);
    tcase_add_test(tc, host_key_keywords);
    tcase_add_test(tc, keyword_class_skip);
    tcase_add_test(tc, keyword_class_refuse);
    tcase_add_test(tc, keyword_class_apply);
    tcase_add_test(tc, keyword_class_unknown);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
