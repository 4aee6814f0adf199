/* forward.c: "imapwire forward LOCALPORT HOST:PORT --tunnel HOPS": an ssh -L style port
 * forward on 127.0.0.1 (ImapCreatePortForward) that runs until SIGINT or SIGTERM. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cli.h"

/* Nonzero when something on this machine already listens on 127.0.0.1:port. */
static int cli_port_in_use(unsigned port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), busy;
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    busy = bind(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno == EADDRINUSE;
    close(fd);
    return busy;
}

/* Waits for SIGINT or SIGTERM (main() blocked both before the library started its
 * threads) and returns which came. Both stay blocked: GNU timeout delivers a signal it
 * relays twice (to the child, then to its process group), and a second one must not end
 * the close the hard way. */
static int cli_wait_for_end(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    return sig;
}

int cmd_forward(struct cli_opts *o, int argc, char **argv)
{
    struct cli_session s;
    json_object *report = json_object_new_object();
    char host[256], *colon, *e;
    unsigned long local, remote;
    UINT bound = 0;
    HFORWARD f;
    int sig, rc;

    memset(&s, 0, sizeof s);
    json_object_object_add(report, "command", json_object_new_string("forward"));
    if (argc != 2)
        return cli_finish(o, report, cli_usage_error(o, report, "forward takes LOCALPORT "
                          "HOST:PORT, e.g. forward 1143 imap.example.com:993 --tunnel bastion"));
    local = strtoul(argv[0], &e, 10);
    if (*argv[0] == '\0' || *e != '\0' || local > 65535)
        return cli_finish(o, report, cli_usage_error(o, report, "LOCALPORT %s: 0 (any free "
                          "port) to 65535", argv[0]));
    colon = strrchr(argv[1], ':');
    if (colon == NULL || colon == argv[1] || (size_t)(colon - argv[1]) >= sizeof host)
        return cli_finish(o, report, cli_usage_error(o, report, "%s: write HOST:PORT", argv[1]));
    remote = strtoul(colon + 1, &e, 10);
    if (colon[1] == '\0' || *e != '\0' || remote == 0 || remote > 65535)
        return cli_finish(o, report, cli_usage_error(o, report, "%s: the port must be 1 to "
                          "65535", argv[1]));
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (o->tunnel == NULL)
        return cli_finish(o, report, cli_usage_error(o, report, "forward needs --tunnel "
                          "[user@]host[:port]: the SSH server that reaches %s", host));
    if (o->proxy != NULL || o->transport != NULL)
        return cli_finish(o, report, cli_usage_error(o, report, "forward cannot go through "
                          "--proxy or --transport: ImapCreatePortForward takes no transport"));
    if ((rc = cli_build(o, host, (unsigned)remote, 0, 0, &s, report)) != 0)
        return cli_finish(o, report, rc);
    f = ImapCreatePortForward(&s.creds, host, (UINT)remote, (UINT)local, &bound);
    if (f == INVALID_FORWARD) {
        DWORD err = ImapGetLastError();
        /* the library reports a local port in use as an invalid argument: say which */
        if (err == ST_ERROR_INVALID_PARAMETER && local != 0 && cli_port_in_use((unsigned)local)) {
            cli_release(&s);
            return cli_finish(o, report, cli_usage_error(o, report, "127.0.0.1:%ld is already "
                              "in use: pick another LOCALPORT, or 0 for any free one", (long)local));
        }
        rc = cli_fail(o, report, err, "port forward", host, (unsigned)remote);
        cli_release(&s);
        return cli_finish(o, report, rc);
    }
    json_object_object_add(report, "local_address", json_object_new_string("127.0.0.1"));
    json_object_object_add(report, "local_port", json_object_new_int((int)bound));
    json_object_object_add(report, "remote_host", json_object_new_string(host));
    json_object_object_add(report, "remote_port", json_object_new_int((int)remote));
    json_object_object_add(report, "tunnel", json_object_new_string(o->tunnel));
    if (o->json) {
        /* one line now, so a script can read the port before the forward ends */
        printf("%s\n", json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN));
    } else {
        printf("forwarding 127.0.0.1:%u -> %s:%lu through ssh %s (Ctrl-C ends it)\n",
               (unsigned)bound, host, remote, o->tunnel);
    }
    fflush(stdout);
    sig = cli_wait_for_end();
    ImapClosePortForward(f);
    cli_release(&s);
    if (!o->json)
        printf("forward closed (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    json_object_put(report);
    return EXIT_OK;
}
