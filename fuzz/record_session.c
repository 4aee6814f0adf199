/* record_session.c: runs the fuzz session against a real IMAP server over TCP and writes the
 * header plus every byte the server sent, i.e. a fuzz_client seed recorded from life. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/transport.h>
#include "session.h"

/* Usage: record_session HOST PORT HEADER_HEX OUT, e.g. against tests/harness/dovecot.sh
 * (whose first account is the session's FZ_USER/FZ_PASSWORD):
 *   record_session 127.0.0.1 $DOVECOT_PORT 00c0100b fuzz/corpus/fuzz_client/dovecot-real
 * The header must not ask for short reads or EAGAIN: those are the fuzzer's own. */

static unsigned char *fz_rx;
static size_t fz_rx_len, fz_rx_cap;

/* A filter over TCP: what comes up from the server is also kept. */
static int fz_rec_recv(imapwire_layer *l, void *buf, size_t len, size_t *got)
{
    int rc = l->host->recv_next(l, buf, len, got);
    if (rc == IMAPWIRE_OK && *got > 0) {
        if (fz_rx_len + *got > fz_rx_cap) {
            size_t cap = (fz_rx_len + *got) * 2;
            unsigned char *p = realloc(fz_rx, cap);
            if (p == NULL)
                return ST_ERROR_OUT_OF_MEMORY;
            fz_rx = p;
            fz_rx_cap = cap;
        }
        memcpy(fz_rx + fz_rx_len, buf, *got);
        fz_rx_len += *got;
    }
    return rc;
}

static const imapwire_transport_type fz_rec_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "fzrec",
    .recv = fz_rec_recv,
};

int main(int argc, char **argv)
{
    fz_session s;
    uint8_t h[FZ_HEADER_LEN];
    unsigned i, v;
    FILE *f;

    if (argc != 5 || strlen(argv[3]) != 2 * FZ_HEADER_LEN) {
        fprintf(stderr, "usage: %s HOST PORT HEADER_HEX(8 digits) OUT\n", argv[0]);
        return 2;
    }
    for (i = 0; i < FZ_HEADER_LEN; i++) {
        if (sscanf(argv[3] + 2 * i, "%2x", &v) != 1)
            return 2;
        h[i] = (uint8_t)v;
    }
    if (!ImapInitialize(NULL, NULL) || ImapRegisterTransport(&fz_rec_type) != 0)
        return 1;
    fz_session_header(&s, h, sizeof h);
    s.transport = "fzrec";
    s.host = argv[1];
    s.port = (unsigned)atoi(argv[2]);
    fz_session_run(&s);
    ImapUninitialize();
    f = fopen(argv[4], "wb");
    if (f == NULL || fwrite(h, 1, sizeof h, f) != sizeof h ||
        fwrite(fz_rx, 1, fz_rx_len, f) != fz_rx_len || fclose(f) != 0) {
        perror(argv[4]);
        return 1;
    }
    fprintf(stderr, "recorded %zu bytes from the server into %s\n", fz_rx_len, argv[4]);
    free(fz_rx);
    return 0;
}
