/* custom_transport.c: a transport written inside the program (no plugin file): a "counter"
 * filter registered with ImapRegisterTransport and stacked over TCP, counting bytes.
 *
 *   usage: IMAPWIRE_PASSWORD=... custom_transport HOST PORT USER
 */
#include <stdio.h>
#include <stdlib.h>
#include <imapwire/transport.h>

/* Per connection: each layer counts its own bytes ... */
struct counter_ctx {
    unsigned long long sent, received;
};

/* ... and adds them here when the connection closes (one connection in this program). */
static unsigned long long total_sent, total_received;

/* "counter" takes no arguments: "counter:x" is a mistake worth reporting. */
static int counter_create(imapwire_layer *l, const char *args)
{
    (void)l;
    return args == NULL || *args == '\0' ? IMAPWIRE_OK : ST_ERROR_INVALID_PARAMETER;
}

/* Only send and recv do real work; every other slot is NULL, so connect, pollset,
 * pending, shutdown and query go straight to the TCP layer below. */
static int counter_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    struct counter_ctx *c = l->ctx;
    int rc = l->host->send_next(l, buf, len, sent);
    if (rc == IMAPWIRE_OK)
        c->sent += *sent;
    return rc;          /* IMAPWIRE_AGAIN and errors pass up unchanged */
}

static int counter_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    struct counter_ctx *c = l->ctx;
    int rc = l->host->recv_next(l, buf, len, got);
    if (rc == IMAPWIRE_OK)
        c->received += *got;
    return rc;
}

static void counter_destroy(imapwire_layer *l)
{
    struct counter_ctx *c = l->ctx;
    l->host->trace(l, "counter: %llu bytes out, %llu in", c->sent, c->received);
    total_sent += c->sent;
    total_received += c->received;
}

static const IMAPTRANSPORTTYPE counter_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(IMAPTRANSPORTTYPE),
    .name = "counter",
    .flags = 0,                          /* a filter: the core puts TCP below it */
    .ctx_size = sizeof(struct counter_ctx),
    .create = counter_create,
    .destroy = counter_destroy,
    .send = counter_send,
    .recv = counter_recv,
};

static void trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    if (dir == IMAP_TRACE_INFO)          /* our layer's note and the core's */
        printf("  -- %.*s\n", len, line);
}

int main(int argc, char **argv)
{
    IMAPCONNECTINFO ci = { 0 };
    IMAPMAILBOX mb;
    char text[128];
    HCLIENT h;
    int rc = 1;

    const char *password = getenv("IMAPWIRE_PASSWORD");   /* never on the command line */

    if (argc != 4 || password == NULL) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s HOST PORT USER\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return 1;
    if (ImapRegisterTransport(&counter_type) != 0)
        goto out;
    ci.dwSize = sizeof ci;
    ci.lpszHostName = argv[1];
    ci.nRemotePort = (UINT)strtoul(argv[2], NULL, 10);
    ci.nTimeout = 10;
    ci.lpszTransport = "counter";        /* by name, as a plugin's type would be */
    ci.lpTraceProc = trace;
    h = ImapConnectEx(&ci);
    if (h == INVALID_CLIENT)
        goto out;
    if (ImapLogin(h, IMAP_AUTH_DEFAULT, argv[3], password) == 0 &&
        ImapSelectMailbox(h, "INBOX", &mb) == 0) {
        printf("INBOX holds %u messages\n", (unsigned)mb.dwMessages);
        rc = 0;
    }
    if (rc != 0)
        ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
    ImapDisconnect(h);                   /* LOGOUT, then the chain is destroyed */
    if (rc == 0)
        printf("counter: sent %llu bytes, received %llu bytes\n", total_sent, total_received);
    else
        fprintf(stderr, "custom_transport failed: %s\n", text);
    /* Unregistering before Uninitialize is optional; shown for completeness. */
    ImapUnregisterTransport("counter");
    ImapUninitialize();
    return rc;
out:
    ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
    fprintf(stderr, "custom_transport failed: %s\n", text);
    ImapUninitialize();
    return 1;
}
