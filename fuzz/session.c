/* session.c: one IMAP session through the public API only (connect, capabilities, login,
 * select, fetch in both buffer modes, a command, disconnect), checking documented promises. */
#define _GNU_SOURCE               /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"

/* API.md names these extensions; the header may not define them yet. */
#ifndef IMAP_AUTH_SCRAM_SHA256
#define IMAP_AUTH_SCRAM_SHA256 8u
#endif
#ifndef IMAP_AUTH_SCRAM_SHA1
#define IMAP_AUTH_SCRAM_SHA1 9u
#endif

static const UINT fz_auth_types[8] = {
    IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN, IMAP_AUTH_XOAUTH2, IMAP_AUTH_BEARER,
    IMAP_AUTH_ANONYMOUS, IMAP_AUTH_DEFAULT, IMAP_AUTH_SCRAM_SHA256, IMAP_AUTH_SCRAM_SHA1,
};

/* A literal with CRLF inside (allowed in ImapCommand), a secret command whose arguments
 * the trace must redact, and commands whose untagged data the session must skip. */
static const char *const fz_commands[8] = {
    "NOOP",
    "CAPABILITY",
    "LIST \"\" \"*\"",
    "APPEND INBOX {12}\r\nHello world!",
    "STATUS INBOX (MESSAGES UIDNEXT)",
    "UID FETCH 1:* (FLAGS)",
    "LOGIN " FZ_USER " " FZ_PASSWORD,
    "LOGOUT",
};

/* Exactly sized heap buffers, so that ASan sees a write one byte past the size given. */
static const DWORD fz_message_caps[4] = { 1, 16, 300, 65536 };
static const INT fz_result_caps[4] = { 1, 8, 64, 1024 };
static const INT fz_capa_caps[4] = { 0, 1, 32, 4096 };

/* FZ_VERBOSE=1 prints each call's outcome: how a seed is checked to reach the end. */
static int fz_verbose = -1;
static void fz_note(const char *call, int rc)
{
    char text[64] = "";
    if (fz_verbose < 0)
        fz_verbose = getenv("FZ_VERBOSE") != NULL;
    if (!fz_verbose)
        return;
    if (rc != 0)
        ImapGetErrorString(ImapGetLastError(), text, (INT)sizeof text);
    fprintf(stderr, "fuzz session: %-22s %d %s\n", call, rc, text);
}

static void fz_fail(const char *what, DWORD err)
{
    char text[128] = "";
    ImapGetErrorString(err, text, (INT)sizeof text);
    fprintf(stderr, "fuzz session: broken promise: %s (last error %u %s)\n", what,
            (unsigned)err, text);
    abort();
}

/* "Every function that fails sets the calling thread's last error." */
static void fz_expect_error(const char *call)
{
    DWORD err = ImapGetLastError();
    if (err == ST_ERROR_NONE)
        fz_fail(call, err);
}

/* Reads every byte the library handed over, so an overlong length shows under ASan;
 * the sum goes to a volatile so the loop is not dropped. */
static volatile unsigned fz_sink;
static void fz_touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned sum = 0;
    size_t i;
    for (i = 0; i < n; i++)
        sum += b[i];
    fz_sink += sum;
}

/* The trace must carry every line with secrets redacted: no line we send may show the
 * password. Received lines are the server's (fuzzed) words and may contain anything. */
static VOID fz_trace(HCLIENT h, UINT dir, LPCTSTR line, INT len, LPVOID param)
{
    (void)h;
    (void)param;
    if (len < 0 || (len > 0 && line == NULL))
        fz_fail("trace line with a bad length", 0);
    fz_touch(line, (size_t)len);
    if (dir == IMAP_TRACE_SEND && len > 0 &&
        memmem(line, (size_t)len, FZ_PASSWORD, sizeof FZ_PASSWORD - 1) != NULL)
        fz_fail("password in a traced SEND line", 0);
}

size_t fz_session_header(fz_session *s, const uint8_t *data, size_t size)
{
    size_t n = size < FZ_HEADER_LEN ? size : FZ_HEADER_LEN;
    memset(s->h, 0, sizeof s->h);
    memcpy(s->h, data, n);
    return n;
}

static void fz_capabilities(HCLIENT h, INT cap)
{
    char *buf = cap > 0 ? malloc((size_t)cap) : NULL;
    INT rc;

    ImapSetLastError(0);
    rc = ImapGetCapabilities(h, buf, cap);
    fz_note("ImapGetCapabilities", rc < 0 ? rc : 0);
    if (rc == IMAP_ERROR) {
        fz_expect_error("ImapGetCapabilities");
    } else if (rc < 0) {
        fz_fail("ImapGetCapabilities returned a negative length", 0);
    } else if (buf != NULL) {
        if (rc >= cap || strlen(buf) != (size_t)rc)
            fz_fail("ImapGetCapabilities length does not match its buffer", 0);
    }
    free(buf);
    ImapHasCapability(h, "IMAP4rev1");
    ImapHasCapability(h, "id");
}

static void fz_login(const fz_session *s, HCLIENT h)
{
    UINT type = fz_auth_types[s->h[0] & 7];
    const char *pass = type == IMAP_AUTH_ANONYMOUS ? NULL : FZ_PASSWORD;
    INT rc;
    ImapSetLastError(0);
    rc = ImapLogin(h, type, FZ_USER, pass);
    fz_note("ImapLogin", rc);
    if (rc != 0)
        fz_expect_error("ImapLogin");
}

static void fz_select(const fz_session *s, HCLIENT h)
{
    /* non-ASCII and '&' go out in modified UTF-7 */
    const char *box = (s->h[0] & 0x80) ? "Entw\xc3\xbcrfe & Co" : "INBOX";
    IMAPMAILBOX mb;
    INT rc;
    memset(&mb, 0x5a, sizeof mb);
    ImapSetLastError(0);
    rc = ImapSelectMailbox(h, box, &mb);
    fz_note("ImapSelectMailbox", rc);
    if (rc != 0) {
        fz_expect_error("ImapSelectMailbox");
        return;
    }
    if (memchr(mb.szFlags, '\0', sizeof mb.szFlags) == NULL)
        fz_fail("IMAPMAILBOX.szFlags not terminated", 0);
}

static void fz_fetch(const fz_session *s, HCLIENT h)
{
    UINT id = 1u + (s->h[2] >> 6), part = (s->h[2] >> 5) & 1;
    DWORD cap = fz_message_caps[(s->h[2] >> 3) & 3], len = cap;
    char *buf = malloc(cap);
    void *lib = NULL;
    INT rc;

    /* the caller's buffer: *lpdwLength is its size on the way in */
    if (buf != NULL) {
        ImapSetLastError(0);
        rc = ImapGetMessage(h, id, part, buf, &len, 0);
        fz_note("ImapGetMessage(caller)", rc);
        if (rc != 0) {
            fz_expect_error("ImapGetMessage (caller buffer)");
        } else {
            if (len > cap)
                fz_fail("ImapGetMessage length past the caller's buffer", 0);
            fz_touch(buf, len);
        }
        free(buf);
    }
    /* *lpdwLength == 0: the library allocates, ImapFreeMemory frees */
    len = 0;
    ImapSetLastError(0);
    rc = ImapGetMessage(h, id, part, &lib, &len, 0);
    fz_note("ImapGetMessage(library)", rc);
    if (rc != 0) {
        fz_expect_error("ImapGetMessage (library buffer)");
    } else {
        if (lib == NULL)
            fz_fail("ImapGetMessage succeeded without a buffer", 0);
        fz_touch(lib, len);
        ImapFreeMemory(lib);
    }
}

static void fz_command(const fz_session *s, HCLIENT h)
{
    INT cap = fz_result_caps[s->h[3] & 3];
    char *result = malloc((size_t)cap);
    INT rc;
    if (result != NULL)
        memset(result, 'x', (size_t)cap);
    ImapSetLastError(0);
    rc = ImapCommand(h, fz_commands[s->h[2] & 7], result, result ? cap : 0);
    fz_note("ImapCommand", rc);
    if (rc != 0)
        fz_expect_error("ImapCommand");
    /* The tagged reply's text comes back for OK and for NO/BAD; a call that failed
     * before the server answered need not touch the buffer. */
    if (result != NULL && (rc == 0 || ImapGetLastError() == ST_ERROR_COMMAND_FAILED) &&
        memchr(result, '\0', (size_t)cap) == NULL)
        fz_fail("ImapCommand result not terminated within its buffer", 0);
    free(result);
}

void fz_session_run(const fz_session *s)
{
    IMAPCONNECTINFO info;
    HCLIENT h;
    IMAPTIMINGS tm;
    SECURITYINFO si;

    memset(&info, 0, sizeof info);
    info.dwSize = sizeof info;
    info.lpszHostName = s->host;
    info.nRemotePort = s->port;
    info.nTimeout = 1;
    info.dwOptions = ((s->h[0] & 0x08) ? IMAP_OPTION_IDENTIFY : 0) |
                     ((s->h[0] & 0x10) ? IMAP_OPTION_SECURE_EXPLICIT : 0);
    info.lpszTransport = s->transport;
    info.lpszClientName = "imapwire-fuzz";
    info.lpTraceProc = (s->h[0] & 0x20) ? fz_trace : NULL;

    ImapSetLastError(0);
    h = ImapConnectEx(&info);
    fz_note("ImapConnectEx", h == INVALID_CLIENT ? IMAP_ERROR : 0);
    if (h == INVALID_CLIENT) {
        fz_expect_error("ImapConnectEx");
        return;
    }
    fz_capabilities(h, fz_capa_caps[(s->h[3] >> 2) & 3]);
    fz_login(s, h);
    fz_select(s, h);
    fz_fetch(s, h);
    fz_command(s, h);
    fz_capabilities(h, 4096);
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    ImapGetTimings(h, &tm);
    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    ImapGetSecurityInformation(h, &si);
    fz_note("ImapDisconnect", ImapDisconnect(h));
    /* "A handle that was disconnected ... is rejected with ST_ERROR_INVALID_HANDLE." */
    ImapSetLastError(0);
    if (ImapLogin(h, IMAP_AUTH_LOGIN, FZ_USER, FZ_PASSWORD) != IMAP_ERROR ||
        ImapGetLastError() != ST_ERROR_INVALID_HANDLE)
        fz_fail("a disconnected handle was not refused as invalid", ImapGetLastError());
}
