/* errors.c: the one list of ST_ERROR_* codes with their names and texts, and the
 * per-thread last error. A code cannot exist without a text: the table is the list. */
#include "runtime.h"

#define IW_ERROR_LIST(X) \
    X(ST_ERROR_NONE, "no error") \
    X(ST_ERROR_NOT_INITIALIZED, "the library is not initialized; call ImapInitialize first") \
    X(ST_ERROR_INVALID_PARAMETER, "an argument is invalid") \
    X(ST_ERROR_INVALID_HANDLE, "the handle is not a live client handle") \
    X(ST_ERROR_NOT_HANDLE_OWNER, "the handle belongs to another thread") \
    X(ST_ERROR_OUT_OF_MEMORY, "out of memory") \
    X(ST_ERROR_HOST_NOT_FOUND, "the host name does not exist") \
    X(ST_ERROR_CONNECTION_REFUSED, "the server refused the connection") \
    X(ST_ERROR_OPERATION_TIMEOUT, "the server did not answer in time") \
    X(ST_ERROR_CONNECTION_CLOSED, "the connection was closed or reset by the peer") \
    X(ST_ERROR_INVALID_RESPONSE, "the server's response is not valid IMAP") \
    X(ST_ERROR_RESPONSE_TOO_LARGE, "a response line or literal is larger than the limits") \
    X(ST_ERROR_SERVER_REJECTED, "the server rejected the connection (BYE greeting)") \
    X(ST_ERROR_SECURE_NOT_SUPPORTED, "a secure connection was required but the server does not provide it") \
    X(ST_ERROR_TLS_HANDSHAKE, "the TLS handshake failed") \
    X(ST_ERROR_CERTIFICATE_UNTRUSTED, "the server certificate is not trusted") \
    X(ST_ERROR_CERTIFICATE_NAME_MISMATCH, "the server certificate does not match the server name") \
    X(ST_ERROR_CERTIFICATE_EXPIRED, "the server certificate has expired or is not yet valid") \
    X(ST_ERROR_SSH_HOST_KEY_UNKNOWN, "the SSH host key is not in the known hosts file") \
    X(ST_ERROR_SSH_HOST_KEY_MISMATCH, "the SSH host key differs from the known hosts file") \
    X(ST_ERROR_SSH_AUTH_FAILED, "SSH authentication failed") \
    X(ST_ERROR_SSH_CHANNEL_FAILED, "the SSH server refused the tunnel channel") \
    X(ST_ERROR_LOGIN_FAILED, "the server rejected the login") \
    X(ST_ERROR_ALREADY_AUTHENTICATED, "the session is already authenticated") \
    X(ST_ERROR_NOT_AUTHENTICATED, "the session is not authenticated") \
    X(ST_ERROR_TRANSPORT_NOT_FOUND, "no transport of that name is registered or loadable") \
    X(ST_ERROR_TRANSPORT_EXISTS, "a transport of that name is already registered") \
    X(ST_ERROR_PLUGIN_VERSION, "the transport or plugin was built for another ABI version") \
    X(ST_ERROR_FEATURE_NOT_AVAILABLE, "this build of the library does not provide that feature yet") \
    X(ST_ERROR_NETWORK_UNREACHABLE, "the network or host is unreachable") \
    X(ST_ERROR_NETWORK_ERROR, "a network error occurred") \
    X(ST_ERROR_SYSTEM_LIMIT, "a system limit was reached (descriptors or buffers)") \
    X(ST_ERROR_COMMAND_FAILED, "the server answered the command with NO or BAD") \
    X(ST_ERROR_BUFFER_TOO_SMALL, "the buffer is too small for the result") \
    X(ST_ERROR_TRANSPORT_IN_USE, "the transport still has open connections") \
    X(ST_ERROR_PLUGIN_LOAD_FAILED, "the plugin could not be loaded (file or entry point missing)") \
    X(ST_ERROR_CLIENT_CERTIFICATE, "the client certificate or its key cannot be used") \
    X(ST_ERROR_MESSAGE_NOT_FOUND, "no such message or message part") \
    X(ST_ERROR_IN_PROGRESS, "the handle is busy: its connect has not finished, or a call on it is still running") \
    X(ST_ERROR_TLS_LIBRARY, "TLS is unusable in this process since an earlier failure inside the TLS library (memory ran out); restart the process")

struct iw_error_row {
    DWORD       code;
    const char *name;
    const char *text;
};

#define IW_ERROR_ROW(code, text) { code, #code, text },
static const struct iw_error_row iw_errors[] = { IW_ERROR_LIST(IW_ERROR_ROW) };
#undef IW_ERROR_ROW

static _Thread_local DWORD iw_last_error;

static const struct iw_error_row *iw_error_row(DWORD err)
{
    size_t i;
    for (i = 0; i < sizeof iw_errors / sizeof iw_errors[0]; i++)
        if (iw_errors[i].code == err)
            return &iw_errors[i];
    return NULL;
}

void iw_set_error(DWORD err)
{
    iw_last_error = err;
    iw_errinfo_from_code(err);
}

const char *iw_error_text(DWORD err)
{
    const struct iw_error_row *r = iw_error_row(err);
    return r ? r->text : NULL;
}

const char *iw_error_name(DWORD err)
{
    const struct iw_error_row *r = iw_error_row(err);
    return r ? r->name : NULL;
}

DWORD iw_error_max(void)
{
    DWORD max = 0;
    size_t i;
    for (i = 0; i < sizeof iw_errors / sizeof iw_errors[0]; i++)
        if (iw_errors[i].code > max)
            max = iw_errors[i].code;
    return max;
}

DWORD ImapGetLastError(VOID)
{
    return iw_last_error;
}

VOID ImapSetLastError(DWORD dwError)
{
    iw_last_error = dwError;
}

INT ImapGetErrorString(DWORD dwError, LPTSTR lpszBuffer, INT nMaxLength)
{
    const char *text = iw_error_text(dwError);
    size_t len;

    if (lpszBuffer == NULL || nMaxLength <= 0 || text == NULL) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return IMAP_ERROR;
    }
    /* Truncate like the origin API: the caller gets as much as fits, NUL-terminated. */
    len = iw_strlcpy(lpszBuffer, text, (size_t)nMaxLength);
    if (len >= (size_t)nMaxLength)
        len = (size_t)nMaxLength - 1;
    return (INT)len;
}
