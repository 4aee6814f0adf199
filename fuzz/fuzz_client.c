/* fuzz_client.c: libFuzzer target for the whole client: an SDK bottom transport plays a
 * server whose bytes and read sizes come from the input, and session.c drives the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/transport.h>
#include "session.h"

/* The server side of the one connection that exists at a time (libFuzzer runs inputs
 * one after another on one thread, and the session makes one connect). */
static struct fz_server {
    const uint8_t *data;
    size_t         len, pos;
    uint32_t       rng;
    size_t         max_piece;
    unsigned       again_mask;  /* AGAIN when (rng & mask) == 0; 0 = never */
    unsigned       agains_left; /* a bound, so no schedule can spin for long */
    int            short_sends;
    int            reset_at_end;
} fz_srv;

/* xorshift32: cheap, and a fixed function of the header byte, so inputs replay exactly. */
static uint32_t fz_rand(void)
{
    uint32_t x = fz_srv.rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    fz_srv.rng = x;
    return x;
}

static int fz_again(void)
{
    if (fz_srv.again_mask == 0 || fz_srv.agains_left == 0)
        return 0;
    if ((fz_rand() & fz_srv.again_mask) != 0)
        return 0;
    fz_srv.agains_left--;
    return 1;
}

/* The chain's layer keeps no state of its own: everything is in fz_srv. */
struct fz_layer_ctx {
    int connect_calls;
};

static int fz_connect(imapwire_layer *l, int *done)
{
    struct fz_layer_ctx *c = l->ctx;
    *done = 0;
    c->connect_calls++;
    if (fz_again())
        return IMAPWIRE_AGAIN;
    l->host->mark(l, IMAPWIRE_MARK_CONNECTED);
    *done = 1;
    return IMAPWIRE_OK;
}

/* The server swallows what the client sends; short writes and AGAIN test the
 * library's resumption of a half-sent command. */
static int fz_send(imapwire_layer *l, const void *buf, size_t len, size_t *sent)
{
    (void)l;
    (void)buf;
    *sent = 0;
    if (fz_again())
        return IMAPWIRE_AGAIN;
    *sent = len;
    if (fz_srv.short_sends && len > 1)
        *sent = 1 + fz_rand() % len;
    return IMAPWIRE_OK;
}

static int fz_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    size_t n, left = fz_srv.len - fz_srv.pos;
    (void)l;
    *got = 0;
    if (left == 0)
        return fz_srv.reset_at_end ? (int)ST_ERROR_CONNECTION_CLOSED : IMAPWIRE_OK;
    if (fz_again())
        return IMAPWIRE_AGAIN;
    n = 1 + fz_rand() % fz_srv.max_piece;
    if (n > len)
        n = len;
    if (n > left)
        n = left;
    memcpy(buf, fz_srv.data + fz_srv.pos, n);
    fz_srv.pos += n;
    *got = n;
    return IMAPWIRE_OK;
}

/* No descriptor exists: ask to be called again at once, or the core's poll would sleep
 * until the deadline after every IMAPWIRE_AGAIN. */
static void fz_pollset(imapwire_layer *l, unsigned want, imapwire_pollset *ps)
{
    (void)want;
    imapwire_pollset_wakeup(ps, l->host->now_ms());
}

static int fz_query(imapwire_layer *l, int what, void *out)
{
    (void)l;
    (void)what;
    (void)out;
    return IMAPWIRE_PASS;
}

static const imapwire_transport_type fz_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "fuzzsrv",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
    .ctx_size = sizeof(struct fz_layer_ctx),
    .connect = fz_connect,
    .send = fz_send,
    .recv = fz_recv,
    .pollset = fz_pollset,
    .query = fz_query,
};

/* ---- ImapCommandStream over the same server bytes ---- */

/* What the pieces promise (imapwire.h): responses numbered in order and each ended
 * once, literal pieces of 1..64 KB that fill their literal from offset 0 without a gap,
 * text only between literals. A broken promise is a finding. */
typedef struct fz_pieces {
    DWORD  response;
    int    ended;
    size_t lit_size, lit_next;
    int    in_literal;
} fz_pieces;

static volatile unsigned fz_piece_sum;     /* the sum is kept, so the loop is too */

static void fz_piece_fail(const char *why)
{
    fprintf(stderr, "fuzz_client: ImapCommandStream: %s\n", why);
    abort();
}

static VOID fz_on_piece(HCLIENT h, const IMAPRESPONSEPIECE *pc, LPVOID param)
{
    fz_pieces *p = param;
    unsigned sum = 0;
    DWORD i;
    (void)h;
    if (pc == NULL || pc->dwSize != sizeof *pc || (pc->dwLength > 0 && pc->lpData == NULL))
        fz_piece_fail("a malformed piece");
    for (i = 0; i < pc->dwLength; i++)         /* an overlong length shows under ASan */
        sum += (unsigned char)pc->lpData[i];
    fz_piece_sum += sum;
    if (pc->dwResponse == p->response + 1 && (p->response == 0 || p->ended)) {
        p->response = pc->dwResponse;
        p->ended = 0;
        p->in_literal = 0;
    } else if (pc->dwResponse != p->response || p->ended) {
        fz_piece_fail("a piece out of its response's order");
    }
    if (pc->dwFlags & IMAP_PIECE_LITERAL) {
        if (!p->in_literal || pc->dwLength == 0 || pc->dwLength > 65536 ||
            pc->dwLiteralSize != p->lit_size || pc->dwLiteralOffset != p->lit_next ||
            (pc->dwFlags & IMAP_PIECE_END))
            fz_piece_fail("a literal piece out of place");
        p->lit_next += pc->dwLength;
        if (p->lit_next > p->lit_size)
            fz_piece_fail("a literal longer than announced");
        return;
    }
    if (p->in_literal && p->lit_next != p->lit_size)
        fz_piece_fail("text before the literal was complete");
    if ((pc->dwFlags & IMAP_PIECE_END) && pc->dwLiteralSize != 0)
        fz_piece_fail("an end piece announcing a literal");
    p->in_literal = pc->dwLiteralSize > 0;
    p->lit_size = pc->dwLiteralSize;
    p->lit_next = 0;
    if (pc->dwFlags & IMAP_PIECE_END)
        p->ended = 1;
}

/* A fresh connection over the same bytes, its first command streamed (the fuzzer shapes
 * the answer as it did the session's); a callback that calls back in is refused. */
static void fz_stream_run(const fz_session *s)
{
    static const char *const cmds[4] = { "FETCH 1 BODY.PEEK[]", "UID FETCH 1:* (BODY[] FLAGS)",
                                         "LIST \"\" *", "NOOP" };
    IMAPCONNECTINFO info;
    fz_pieces p;
    char result[64];
    HCLIENT h;
    INT rc;

    memset(&info, 0, sizeof info);
    info.dwSize = sizeof info;
    info.lpszHostName = s->host;
    info.nRemotePort = s->port;
    info.nTimeout = 1;
    info.lpszTransport = s->transport;
    h = ImapConnectEx(&info);
    if (h == INVALID_CLIENT)
        return;
    memset(&p, 0, sizeof p);
    ImapSetLastError(0);
    rc = ImapCommandStream(h, cmds[(s->h[2] >> 1) & 3], fz_on_piece, &p, result,
                           (s->h[3] & 1) ? (INT)sizeof result : 0);
    if (rc != 0 && ImapGetLastError() == ST_ERROR_NONE)
        fz_piece_fail("failed without an error");
    if (rc == 0 && p.response > 0 && !p.ended)
        fz_piece_fail("succeeded with a response left open");
    if (rc == 0 && (s->h[3] & 1) && memchr(result, '\0', sizeof result) == NULL)
        fz_piece_fail("result not terminated");
    ImapDisconnect(h);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Nothing from the environment may change the chain or load a plugin. */
    unsetenv("IMAPWIRE_TRANSPORT");
    unsetenv("IMAPWIRE_DNS_SERVERS");
    if (!ImapInitialize(NULL, NULL) || ImapRegisterTransport(&fz_type) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[4] = { 1, 7, 64, 16384 };
    fz_session s;
    size_t used = fz_session_header(&s, data, size);

    memset(&fz_srv, 0, sizeof fz_srv);
    fz_srv.data = data + used;
    fz_srv.len = size - used;
    fz_srv.rng = 0x9e3779b9u ^ (uint32_t)(s.h[1] & 0x3f) * 2654435761u;
    if (fz_srv.rng == 0)
        fz_srv.rng = 1;
    fz_srv.max_piece = pieces[s.h[1] >> 6];
    fz_srv.again_mask = (unsigned[]){ 0, 1, 3, 15 }[(s.h[3] >> 4) & 3];
    fz_srv.agains_left = 256;
    fz_srv.short_sends = (s.h[3] >> 6) & 1;
    fz_srv.reset_at_end = (s.h[0] >> 6) & 1;

    s.transport = "fuzzsrv";
    s.host = "imap.example.test";
    s.port = 143;
    fz_session_run(&s);
    /* the same server bytes again, for a streamed command on a fresh connection */
    fz_srv.pos = 0;
    fz_srv.agains_left = 256;
    fz_stream_run(&s);
    return 0;
}
