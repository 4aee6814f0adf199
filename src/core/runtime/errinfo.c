/* errinfo.c: the error-info record (IMAPERRORINFO): filled by each layer that knows a
 * cause, never overwritten by the ones above, and the calling thread's copy of it. */
#include <stdio.h>
#include <string.h>
#include "runtime.h"

static _Thread_local IMAPERRORINFO iw_thread_info;
static _Thread_local IMAPTIMINGS iw_thread_timings;
/* What a part without a handle (the security module, the plugin loader) knows of the
 * failure it is about to return, until the public call that returns it takes it. */
static _Thread_local IMAPERRORINFO iw_thread_pending;

DWORD iw_stage_of(DWORD err)
{
    switch (err) {
    case ST_ERROR_NOT_INITIALIZED: case ST_ERROR_INVALID_PARAMETER:
    case ST_ERROR_INVALID_HANDLE: case ST_ERROR_NOT_HANDLE_OWNER:
    case ST_ERROR_BUFFER_TOO_SMALL: case ST_ERROR_IN_PROGRESS:
    case ST_ERROR_TRANSPORT_EXISTS: case ST_ERROR_TRANSPORT_IN_USE:
    case ST_ERROR_ALREADY_AUTHENTICATED: case ST_ERROR_NOT_AUTHENTICATED:
    case ST_ERROR_FEATURE_NOT_AVAILABLE: case ST_ERROR_TRANSPORT_NOT_FOUND:
        return IMAP_STAGE_ARGUMENTS;
    case ST_ERROR_PLUGIN_LOAD_FAILED: case ST_ERROR_PLUGIN_VERSION:
    case ST_ERROR_CLIENT_CERTIFICATE:
        return IMAP_STAGE_FILE;
    case ST_ERROR_HOST_NOT_FOUND:
        return IMAP_STAGE_RESOLVE;
    case ST_ERROR_CONNECTION_REFUSED: case ST_ERROR_NETWORK_UNREACHABLE:
        return IMAP_STAGE_TCP;
    case ST_ERROR_TLS_HANDSHAKE: case ST_ERROR_CERTIFICATE_UNTRUSTED:
    case ST_ERROR_CERTIFICATE_NAME_MISMATCH: case ST_ERROR_CERTIFICATE_EXPIRED:
    case ST_ERROR_TLS_LIBRARY:
        return IMAP_STAGE_TLS;
    case ST_ERROR_SSH_HOST_KEY_UNKNOWN: case ST_ERROR_SSH_HOST_KEY_MISMATCH:
    case ST_ERROR_SSH_AUTH_FAILED: case ST_ERROR_SSH_CHANNEL_FAILED:
        return IMAP_STAGE_SSH;
    case ST_ERROR_SERVER_REJECTED: case ST_ERROR_SECURE_NOT_SUPPORTED:
        return IMAP_STAGE_GREETING;
    case ST_ERROR_LOGIN_FAILED:
        return IMAP_STAGE_LOGIN;
    case ST_ERROR_COMMAND_FAILED: case ST_ERROR_MESSAGE_NOT_FOUND:
        return IMAP_STAGE_COMMAND;
    default:
        return IMAP_STAGE_NONE;
    }
}

/* One line of printable text: what a peer sent may hold anything, and the record is
 * read by programs that print it. */
static void iw_ei_text(char *dst, size_t size, const char *src)
{
    size_t i, n;
    if (src == NULL || dst[0] != '\0')
        return;
    n = iw_strlcpy(dst, src, size);
    if (n >= size)
        n = size - 1;
    for (i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = ' ';
    while (n > 0 && dst[n - 1] == ' ')
        dst[--n] = '\0';
}

void iw_errinfo_add(IMAPERRORINFO *ei, DWORD err, DWORD stage, unsigned hop, const char *peer,
                    const char *file, const char *fingerprint, const char *detail)
{
    ei->dwSize = sizeof *ei;
    if (ei->dwError == 0)
        ei->dwError = err;
    if (ei->dwStage == IMAP_STAGE_NONE)
        ei->dwStage = stage != IMAP_STAGE_NONE ? stage : iw_stage_of(err);
    if (ei->nHop == 0)
        ei->nHop = hop;
    iw_ei_text(ei->szPeer, sizeof ei->szPeer, peer);
    iw_ei_text(ei->szFile, sizeof ei->szFile, file);
    iw_ei_text(ei->szFingerprint, sizeof ei->szFingerprint, fingerprint);
    iw_ei_text(ei->szDetail, sizeof ei->szDetail, detail);
}

void iw_errinfo_peer(char *out, size_t size, const char *host, unsigned port)
{
    /* an IPv6 literal gets brackets, so the port stays readable */
    if (strchr(host, ':') != NULL && host[0] != '[')
        snprintf(out, size, "[%s]:%u", host, port);
    else
        snprintf(out, size, "%s:%u", host, port);
}

void iw_errinfo_clear(IMAPERRORINFO *ei)
{
    memset(ei, 0, sizeof *ei);
}

void iw_set_error_info(const IMAPERRORINFO *ei)
{
    iw_thread_info = *ei;
    iw_thread_info.dwSize = sizeof iw_thread_info;
    if (iw_thread_info.dwStage == IMAP_STAGE_NONE)
        iw_thread_info.dwStage = iw_stage_of(ei->dwError);
    ImapSetLastError(ei->dwError);
}

void iw_errinfo_note(DWORD err, DWORD stage, const char *file, const char *detail)
{
    if (iw_thread_pending.dwError != 0)
        return;                       /* the first, lowest cause stays */
    iw_errinfo_add(&iw_thread_pending, err, stage, 0, NULL, file, NULL, detail);
}

void iw_errinfo_take_pending(IMAPERRORINFO *dst, DWORD err)
{
    /* memory that ran out after the note: the file is not what failed */
    if (iw_thread_pending.dwError != 0 && dst != NULL && err != ST_ERROR_OUT_OF_MEMORY)
        iw_errinfo_add(dst, iw_thread_pending.dwError, iw_thread_pending.dwStage, 0, NULL,
                       iw_thread_pending.szFile, NULL, iw_thread_pending.szDetail);
    memset(&iw_thread_pending, 0, sizeof iw_thread_pending);
}

/* iw_set_error's half: a failure gets what was noted of it, else its code and the stage
 * the code most likely means. */
void iw_errinfo_from_code(DWORD err)
{
    memset(&iw_thread_info, 0, sizeof iw_thread_info);
    iw_errinfo_take_pending(&iw_thread_info, err);
    iw_thread_info.dwSize = sizeof iw_thread_info;
    iw_thread_info.dwError = err;
    if (iw_thread_info.dwStage == IMAP_STAGE_NONE)
        iw_thread_info.dwStage = iw_stage_of(err);
}

void iw_forget_last_timings(void)
{
    memset(&iw_thread_timings, 0, sizeof iw_thread_timings);
}

void iw_set_last_timings(const IMAPTIMINGS *t)
{
    iw_thread_timings = *t;
    iw_thread_timings.dwSize = sizeof iw_thread_timings;
}

/* Copies as much of src as the caller's dwSize says its struct has (append-only). */
static int iw_copy_sized(void *dst, const void *src, size_t have)
{
    DWORD size;
    memcpy(&size, dst, sizeof size);
    if (size < 2 * sizeof(DWORD)) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    memcpy((char *)dst + sizeof(DWORD), (const char *)src + sizeof(DWORD),
           (size < have ? size : have) - sizeof(DWORD));
    return 0;
}

int iw_errinfo_copy_out(const IMAPERRORINFO *src, LPIMAPERRORINFO dst)
{
    if (dst == NULL) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    return iw_copy_sized(dst, src, sizeof *src);
}

int iw_errinfo_thread_out(LPIMAPERRORINFO dst)
{
    /* the copy first: an invalid dst must not leave its own failure in what it reads */
    IMAPERRORINFO now = iw_thread_info;
    now.dwError = ImapGetLastError();
    if (now.dwError != iw_thread_info.dwError) {
        /* ImapSetLastError from the caller: a code with nothing known about it */
        memset(&now, 0, sizeof now);
        now.dwError = ImapGetLastError();
        now.dwStage = iw_stage_of(now.dwError);
    }
    return iw_errinfo_copy_out(&now, dst);
}

INT ImapGetLastTimings(LPIMAPTIMINGS lpTimings)
{
    if (lpTimings == NULL || iw_thread_timings.dwSize == 0) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    return iw_copy_sized(lpTimings, &iw_thread_timings, sizeof iw_thread_timings);
}
