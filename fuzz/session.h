/* session.h: the fixed IMAP session the whole-client fuzz target and the seed recorder
 * both run through the public API, steered by a 4-byte header that opens every input. */
#ifndef IMAPWIRE_FUZZ_SESSION_H
#define IMAPWIRE_FUZZ_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <imapwire/imapwire.h>

/* The header is part of the input so that one corpus file replays exactly: the same
 * options, auth type, buffer sizes and read schedule every time. Layout (bits):
 *   h[0] 0-2 auth type (index into fz_auth_types), 3 IDENTIFY, 4 SECURE_EXPLICIT,
 *        5 trace callback on, 6 end of stream is a reset (error) instead of EOF,
 *        7 mailbox name needs modified UTF-7
 *   h[1] read schedule: 0-5 seed of the piece-size generator, 6-7 largest piece class
 *   h[2] 0-2 ImapCommand text, 3-4 caller buffer class of ImapGetMessage,
 *        5 message part (0 or 1), 6-7 message id - 1
 *   h[3] 0-1 ImapCommand result buffer class, 2-3 ImapGetCapabilities buffer class,
 *        4-5 how often recv/send/connect say IMAPWIRE_AGAIN, 6 also short sends */
#define FZ_HEADER_LEN 4

typedef struct fz_session {
    uint8_t h[FZ_HEADER_LEN];
    const char *transport;        /* IMAPCONNECTINFO.lpszTransport */
    const char *host;
    unsigned    port;
} fz_session;

/* The password the session logs in with: the trace check looks for it. */
#define FZ_USER     "imapwire"
#define FZ_PASSWORD "secret-pw"

/* Runs connect, capabilities, login, select, both fetch modes, a command and
 * disconnect. Aborts (a finding) when the library breaks a documented promise. */
void fz_session_run(const fz_session *s);

/* Reads the header from data into s->h (zero-padded); returns how many bytes it used. */
size_t fz_session_header(fz_session *s, const uint8_t *data, size_t size);

#endif
