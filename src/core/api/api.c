/* api.c: the public entry points on a connected handle: lookup and ownership, the one
 * call wrapper, argument checks, then one call into the session code. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "../imap/client.h"
#include "../runtime/loop.h"
#include "../imap/session.h"
#include "../imap/auth.h"
#include "api.h"

static int iw_fail(DWORD err)
{
    iw_set_error(err);
    return IMAP_ERROR;
}

/* What the owner check finds: whether the calling thread may use the client now. */
enum iw_owner {
    IW_OWNER_YOU,          /* it may */
    IW_OWNER_OTHER,        /* another thread owns it (no IMAP_OPTION_FREETHREAD) */
    IW_OWNER_CONNECTING,   /* its connect still runs: the loop thread or the caller's own
                              loop is stepping it */
    IW_OWNER_IN_CALL,      /* the thread is inside a call on it: a callback (response,
                              piece, trace) calling back into its own call */
};

/* Run by the handle table under its lock; returns an enum iw_owner. */
static int iw_owner_check(void *obj, void *arg)
{
    const iw_client *c = obj;
    (void)arg;
    if (!(c->cfg.options & IMAP_OPTION_FREETHREAD) &&
        __atomic_load_n(&c->owner, __ATOMIC_ACQUIRE) != iw_thread_id())
        return IW_OWNER_OTHER;
    /* the stream is mid-response and io.lock is held, so nothing could run (or free)
     * safely */
    if (__atomic_load_n(&c->io.busy_thread, __ATOMIC_ACQUIRE) == iw_thread_id())
        return IW_OWNER_IN_CALL;
    return iw_async_pending(c) || iw_own_pending(c) ? IW_OWNER_CONNECTING : IW_OWNER_YOU;
}

static int iw_owner_swap(void *obj, void *arg)
{
    iw_client *c = obj;
    DWORD *id = arg;
    *id = __atomic_exchange_n(&c->owner, *id, __ATOMIC_ACQ_REL);
    return 0;
}

/* The live client behind h for the calling thread, or NULL with the error set. Once the
 * caller owns it, only the caller can free it, so the pointer stays good. */
static iw_client *iw_client_lookup(HCLIENT h, int allow_pending)
{
    iw_client *c;
    int rc = IW_OWNER_YOU;
    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return NULL;
    }
    c = iw_handle_visit(h, IW_KIND_CLIENT, iw_owner_check, NULL, &rc);
    if (c == NULL) {
        iw_set_error(ST_ERROR_INVALID_HANDLE);
        return NULL;
    }
    if (rc == IW_OWNER_OTHER) {
        iw_set_error(ST_ERROR_NOT_HANDLE_OWNER);
        return NULL;
    }
    if (rc == IW_OWNER_IN_CALL || (rc == IW_OWNER_CONNECTING && !allow_pending)) {
        iw_set_error(ST_ERROR_IN_PROGRESS);
        return NULL;
    }
    return c;
}

iw_client *iw_api_client(HCLIENT h)
{
    return iw_client_lookup(h, 1);
}

static iw_client *iw_client_for(HCLIENT h)
{
    return iw_client_lookup(h, 0);
}

/* A call that waits for the server. Never on the loop thread (an event procedure): the
 * loop would stop for everyone, and a connection carried by one of the library's own
 * forwards would wait for a bridge that only that thread runs (until its timeout). */
static iw_client *iw_client_wait(HCLIENT h)
{
    if (iw_initialized() && iw_loop_is_current()) {
        iw_set_error(ST_ERROR_IN_PROGRESS);
        return NULL;
    }
    return iw_client_lookup(h, 0);
}

/* io.lock taken and released by a call whose callbacks run on the calling thread. */
static void iw_call_enter(iw_client *c)
{
    pthread_mutex_lock(&c->io.lock);
    __atomic_store_n(&c->io.busy_thread, iw_thread_id(), __ATOMIC_RELEASE);
    iw_callbacks_enter();
    iw_ei_drop(&c->rec.ei_work);
}

/* A call on c that failed: the handle's error info and the thread's. */
static int iw_fail_on(iw_client *c, int rc, DWORD stage)
{
    /* under io.lock: the idle watcher of an event handle writes the record too */
    pthread_mutex_lock(&c->io.lock);
    iw_client_fail(c, rc, stage);
    pthread_mutex_unlock(&c->io.lock);
    return IMAP_ERROR;
}

static void iw_call_leave(iw_client *c)
{
    int look = iw_async_held(c);
    iw_callbacks_leave();
    __atomic_store_n(&c->io.busy_thread, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->io.lock);
    if (look)
        iw_async_look(c);
}

typedef int (*iw_call_fn)(iw_client *c, void *args);

/* A call that talks to the server, the same for every such entry point: the handle
 * looked up for a call that waits; then refused, the arguments' refusal (found by the
 * entry point, reported only once the handle passed, so a bad handle is named first);
 * then run in the call bracket unless the stream is unusable; a failure becomes the
 * handle's error info at stage. 0 or IMAP_ERROR. */
static int iw_call(HCLIENT h, int refused, DWORD stage, iw_call_fn run, void *args)
{
    iw_client *c = iw_client_wait(h);
    int rc;
    if (c == NULL)
        return IMAP_ERROR;
    if (refused != 0)
        return iw_fail((DWORD)refused);
    iw_call_enter(c);
    rc = c->io.broken ? (int)ST_ERROR_CONNECTION_CLOSED : run(c, args);
    iw_call_leave(c);
    return rc ? iw_fail_on(c, rc, stage) : 0;
}

INT ImapDisconnect(HCLIENT hClient)
{
    /* A connect still running is abandoned: no event fires after this returns. */
    iw_client *c = iw_client_lookup(hClient, 1);
    int pending;
    if (c == NULL)
        return IMAP_ERROR;
    if (iw_handle_remove(hClient, IW_KIND_CLIENT) != c)
        return iw_fail(ST_ERROR_INVALID_HANDLE);
    /* A disconnect from inside a step of the caller's loop: that step frees c. */
    pending = iw_own_detach(c);
    if (pending == 2)
        return 0;
    pending |= iw_async_detach(c);
    /* an abandoned connect gets no LOGOUT: the server may not even have greeted */
    iw_client_close(c, !pending);
    iw_client_free(c);
    return 0;
}

DWORD ImapAttachThread(HCLIENT hClient, DWORD dwThreadId)
{
    char path[64];
    int rc = 0;
    struct stat st;

    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return (DWORD)IMAP_ERROR;
    }
    if (dwThreadId == 0)
        dwThreadId = iw_thread_id();
    /* Only a thread of this process can own a handle. */
    snprintf(path, sizeof path, "/proc/self/task/%u", (unsigned)dwThreadId);
    if (stat(path, &st) != 0) {
        iw_set_error(iw_handle_get(hClient, IW_KIND_CLIENT) ? ST_ERROR_INVALID_PARAMETER
                                                            : ST_ERROR_INVALID_HANDLE);
        return (DWORD)IMAP_ERROR;
    }
    /* The swap happens under the handle table's lock: the client cannot vanish mid-way. */
    if (iw_handle_visit(hClient, IW_KIND_CLIENT, iw_owner_swap, &dwThreadId, &rc) == NULL) {
        iw_set_error(ST_ERROR_INVALID_HANDLE);
        return (DWORD)IMAP_ERROR;
    }
    return dwThreadId;
}

typedef struct iw_login_call {
    UINT    type;
    LPCTSTR user, pass;
} iw_login_call;

static int iw_login_run(iw_client *c, void *args)
{
    const iw_login_call *a = args;
    return iw_session_login(c, a->type, a->user, a->pass ? a->pass : "");
}

INT ImapLogin(HCLIENT hClient, UINT nAuthType, LPCTSTR lpszUserName, LPCTSTR lpszPassword)
{
    iw_login_call a = { nAuthType, lpszUserName, lpszPassword };
    int bad = lpszUserName == NULL ||
              (lpszPassword == NULL && nAuthType != IMAP_AUTH_ANONYMOUS) ||
              strlen(lpszUserName) > 65536 || (lpszPassword && strlen(lpszPassword) > 65536) ||
              !iw_auth_type_known(nAuthType);
    return iw_call(hClient, bad ? ST_ERROR_INVALID_PARAMETER : 0, IMAP_STAGE_LOGIN,
                   iw_login_run, &a);
}

INT ImapGetCapabilities(HCLIENT hClient, LPTSTR lpszBuffer, INT nMaxLength)
{
    iw_client *c = iw_client_for(hClient);
    size_t n;
    int rc = 0;
    if (c == NULL)
        return IMAP_ERROR;
    /* another thread's call on a FREETHREAD handle may replace the list meanwhile */
    pthread_mutex_lock(&c->sess.capa_lock);
    n = c->sess.capa ? strlen(c->sess.capa) : 0;
    if (lpszBuffer == NULL && nMaxLength == 0)
        ;                                  /* the length a caller needs to allocate */
    else if (lpszBuffer == NULL || nMaxLength <= 0)
        rc = ST_ERROR_INVALID_PARAMETER;
    else if (n >= (size_t)nMaxLength)
        rc = ST_ERROR_BUFFER_TOO_SMALL;
    else
        memcpy(lpszBuffer, c->sess.capa ? c->sess.capa : "", n + 1);
    pthread_mutex_unlock(&c->sess.capa_lock);
    return rc != 0 ? iw_fail(rc) : (INT)n;
}

BOOL ImapHasCapability(HCLIENT hClient, LPCTSTR lpszCapability)
{
    iw_client *c = iw_client_for(hClient);
    int has;
    if (c == NULL)
        return FALSE;
    if (lpszCapability == NULL) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    pthread_mutex_lock(&c->sess.capa_lock);
    has = iw_capa_has(c, lpszCapability);
    pthread_mutex_unlock(&c->sess.capa_lock);
    return has ? TRUE : FALSE;
}

/* ImapCommandEx's and ImapCommandStream's arguments; the piece relay reads it too. */
typedef struct iw_command_call {
    HCLIENT               handle;
    LPCTSTR               text;
    IMAPRESPONSEPROC      response;
    IMAPRESPONSEPIECEPROC piece;
    LPVOID                param;
    LPTSTR                result;
    INT                   max;
} iw_command_call;

/* One command per call (CR and LF only inside literals, checked with the wire form);
 * the forms that would change the stream (STARTTLS ...) are refused by the command
 * table (src/core/imap/command_table.c). */
static int iw_command_refused(const iw_command_call *a)
{
    size_t n;
    if (a->text == NULL || (a->result != NULL && a->max <= 0))
        return ST_ERROR_INVALID_PARAMETER;
    n = strlen(a->text);
    return n == 0 || n > IW_MAX_RESPONSE ? ST_ERROR_INVALID_PARAMETER : 0;
}

static int iw_command_run(iw_client *c, void *args)
{
    const iw_command_call *a = args;
    return iw_session_command(c, a->text, a->response, a->param, a->result,
                              a->result ? (size_t)a->max : 0);
}

INT ImapCommandEx(HCLIENT hClient, LPCTSTR lpszCommand, IMAPRESPONSEPROC lpResponseProc,
                  LPVOID lpParam, LPTSTR lpszResult, INT nMaxLength)
{
    iw_command_call a = { hClient, lpszCommand, lpResponseProc, NULL, lpParam, lpszResult,
                          nMaxLength };
    return iw_call(hClient, iw_command_refused(&a), IMAP_STAGE_COMMAND, iw_command_run, &a);
}

static void iw_relay_piece(void *arg, const IMAPRESPONSEPIECE *piece)
{
    const iw_command_call *a = arg;
    a->piece(a->handle, piece, a->param);
}

static int iw_command_stream_run(iw_client *c, void *args)
{
    iw_command_call *a = args;
    return iw_session_command_stream(c, a->text, iw_relay_piece, a, a->result,
                                     a->result ? (size_t)a->max : 0);
}

INT ImapCommandStream(HCLIENT hClient, LPCTSTR lpszCommand, IMAPRESPONSEPIECEPROC lpPieceProc,
                      LPVOID lpParam, LPTSTR lpszResult, INT nMaxLength)
{
    iw_command_call a = { hClient, lpszCommand, NULL, lpPieceProc, lpParam, lpszResult,
                          nMaxLength };
    int refused = lpPieceProc == NULL ? (int)ST_ERROR_INVALID_PARAMETER : iw_command_refused(&a);
    return iw_call(hClient, refused, IMAP_STAGE_COMMAND, iw_command_stream_run, &a);
}

INT ImapCommand(HCLIENT hClient, LPCTSTR lpszCommand, LPTSTR lpszResult, INT nMaxLength)
{
    return ImapCommandEx(hClient, lpszCommand, NULL, NULL, lpszResult, nMaxLength);
}

typedef struct iw_select_call {
    LPCTSTR       mailbox;
    LPIMAPMAILBOX info;
} iw_select_call;

static int iw_select_run(iw_client *c, void *args)
{
    const iw_select_call *a = args;
    return iw_session_select(c, a->mailbox, a->info);
}

INT ImapSelectMailbox(HCLIENT hClient, LPCTSTR lpszMailbox, LPIMAPMAILBOX lpMailboxInfo)
{
    iw_select_call a = { lpszMailbox, lpMailboxInfo };
    int bad = lpszMailbox == NULL || *lpszMailbox == '\0' || strlen(lpszMailbox) > 1024;
    return iw_call(hClient, bad ? ST_ERROR_INVALID_PARAMETER : 0, IMAP_STAGE_COMMAND,
                   iw_select_run, &a);
}

/* ImapGetMessage's and ImapGetMessageStreamEx's arguments and results; the stream's
 * sink reads it too. */
typedef struct iw_fetch_call {
    HCLIENT         handle;
    UINT            id, part;
    DWORD           options;
    LPVOID          message;       /* ImapGetMessage: the caller's buffer or pointer */
    LPDWORD         length;
    IMAPMESSAGEPROC proc;          /* ImapGetMessageStreamEx */
    LPVOID          param;
    char           *body;          /* the library's buffer when the caller gave none */
    size_t          len;
} iw_fetch_call;

static int iw_fetch_refused(const iw_fetch_call *a)
{
    return a->id == 0 || (a->options & ~(DWORD)IMAP_MESSAGE_UID) != 0
               ? ST_ERROR_INVALID_PARAMETER : 0;
}

static int iw_fetch_run(iw_client *c, void *args)
{
    iw_fetch_call *a = args;
    /* a caller's buffer receives the body directly: no copy of it in between */
    int rc = iw_session_fetch(c, a->id, (a->options & IMAP_MESSAGE_UID) != 0, a->part,
                              *a->length > 0 ? (char *)a->message : NULL, *a->length,
                              &a->body, &a->len);
    if (rc == ST_ERROR_BUFFER_TOO_SMALL)
        *a->length = (DWORD)a->len;
    return rc;
}

INT ImapGetMessage(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                   LPVOID lpvMessage, LPDWORD lpdwLength, DWORD dwOptions)
{
    iw_fetch_call a = { hClient, nMessageId, nMessagePart, dwOptions, lpvMessage, lpdwLength,
                        NULL, NULL, NULL, 0 };
    int refused = lpvMessage == NULL || lpdwLength == NULL ? (int)ST_ERROR_INVALID_PARAMETER
                                                          : iw_fetch_refused(&a);
    if (iw_call(hClient, refused, IMAP_STAGE_COMMAND, iw_fetch_run, &a) != 0)
        return IMAP_ERROR;
    if (a.len > 0xffffffffu) {
        iw_body_release(a.body);
        return iw_fail(ST_ERROR_RESPONSE_TOO_LARGE);
    }
    if (*lpdwLength == 0) {
        *(LPVOID *)lpvMessage = a.body;    /* NUL-terminated; ImapFreeMemory frees it */
        *lpdwLength = (DWORD)a.len;
        return 0;
    }
    if (a.len < *lpdwLength)
        ((char *)lpvMessage)[a.len] = '\0';
    *lpdwLength = (DWORD)a.len;
    return 0;
}

static void iw_stream_piece(void *arg, const char *p, size_t n)
{
    const iw_fetch_call *a = arg;
    a->proc(a->handle, p, (DWORD)n, a->param);     /* n <= IW_STREAM_CHUNK */
}

static int iw_fetch_stream_run(iw_client *c, void *args)
{
    iw_fetch_call *a = args;
    return iw_session_fetch_stream(c, a->id, (a->options & IMAP_MESSAGE_UID) != 0, a->part,
                                   iw_stream_piece, a, &a->len);
}

INT ImapGetMessageStream(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                         IMAPMESSAGEPROC lpMessageProc, LPVOID lpParam, LPDWORD lpdwLength)
{
    return ImapGetMessageStreamEx(hClient, nMessageId, nMessagePart, 0, lpMessageProc,
                                  lpParam, lpdwLength);
}

INT ImapGetMessageStreamEx(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                           DWORD dwOptions, IMAPMESSAGEPROC lpMessageProc, LPVOID lpParam,
                           LPDWORD lpdwLength)
{
    iw_fetch_call a = { hClient, nMessageId, nMessagePart, dwOptions, NULL, NULL,
                        lpMessageProc, lpParam, NULL, 0 };
    int refused = lpMessageProc == NULL ? (int)ST_ERROR_INVALID_PARAMETER
                                        : iw_fetch_refused(&a);
    if (iw_call(hClient, refused, IMAP_STAGE_COMMAND, iw_fetch_stream_run, &a) != 0)
        return IMAP_ERROR;
    if (lpdwLength != NULL)
        *lpdwLength = (DWORD)a.len;                /* below 4 GB: the hook checked */
    return 0;
}

VOID ImapFreeMemory(LPVOID lpvMemory)
{
    iw_body_release(lpvMemory);
}

INT ImapGetSecurityInformation(HCLIENT hClient, LPSECURITYINFO lpInfo)
{
    iw_client *c = iw_client_for(hClient);
    SECURITYINFO info;
    size_t n;
    if (c == NULL)
        return IMAP_ERROR;
    if (lpInfo == NULL || lpInfo->dwSize < offsetof(SECURITYINFO, szCipher))
        return iw_fail(ST_ERROR_INVALID_PARAMETER);
    memset(&info, 0, sizeof info);
    info.dwSize = lpInfo->dwSize;
    info.dwProtocol = SECURITY_PROTOCOL_NONE;
    info.dwCertificateStatus = CERTIFICATE_STATUS_NONE;
    info.dwTunnelProtocol = SECURITY_PROTOCOL_NONE;
    pthread_mutex_lock(&c->io.lock);
    iw_layer_query(c->io.top, IMAPWIRE_QUERY_SECURITY, &info);
    pthread_mutex_unlock(&c->io.lock);
    /* Only the fields the caller's struct has. */
    n = lpInfo->dwSize < sizeof info ? lpInfo->dwSize : sizeof info;
    memcpy(lpInfo, &info, n);
    lpInfo->dwSize = info.dwSize;
    return 0;
}

INT ImapGetErrorInfo(HCLIENT hClient, LPIMAPERRORINFO lpInfo)
{
    iw_client *c;
    IMAPERRORINFO ei;
    if (hClient == INVALID_CLIENT)
        return iw_errinfo_thread_out(lpInfo);
    c = iw_client_for(hClient);
    if (c == NULL)
        return IMAP_ERROR;
    /* the idle watcher writes a dropped connection's record under io.lock */
    pthread_mutex_lock(&c->io.lock);
    if (c->rec.ei != NULL)
        ei = *c->rec.ei;
    else
        memset(&ei, 0, sizeof ei);
    pthread_mutex_unlock(&c->io.lock);
    return iw_errinfo_copy_out(&ei, lpInfo);
}

INT ImapGetTimings(HCLIENT hClient, LPIMAPTIMINGS lpTimings)
{
    iw_client *c = iw_client_for(hClient);
    size_t n;
    if (c == NULL)
        return IMAP_ERROR;
    if (lpTimings == NULL || lpTimings->dwSize < offsetof(IMAPTIMINGS, dwResolve))
        return iw_fail(ST_ERROR_INVALID_PARAMETER);
    n = lpTimings->dwSize < sizeof c->rec.timings ? lpTimings->dwSize : sizeof c->rec.timings;
    memcpy((char *)lpTimings + sizeof(DWORD), (char *)&c->rec.timings + sizeof(DWORD),
           n - sizeof(DWORD));
    return 0;
}


/* For the facade's other files (relay_api.c): the same lookup and call bracket. */
iw_client *iw_api_client_ready(HCLIENT h)
{
    return iw_client_for(h);
}

void iw_api_call_enter(iw_client *c)
{
    iw_call_enter(c);
}

void iw_api_call_leave(iw_client *c)
{
    iw_call_leave(c);
}
