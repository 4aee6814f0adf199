/* imapwire.h: the standard connect API that applications compile against.
 * Every name, signature and meaning here is the contract of API.md; extras are marked. */
#ifndef IMAPWIRE_IMAPWIRE_H
#define IMAPWIRE_IMAPWIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows-style base types --------------------------------------------------
 * A program that already has these (ported Windows code, or a compatibility header)
 * defines the matching IMAPWIRE_HAVE_<TYPE> macro, or _WINDEF_ for all of them,
 * before including this file. */
#ifndef _WINDEF_
#ifndef IMAPWIRE_HAVE_BOOL
typedef int BOOL;
#endif
#ifndef IMAPWIRE_HAVE_INT
typedef int INT;
#endif
#ifndef IMAPWIRE_HAVE_UINT
typedef unsigned int UINT;
#endif
#ifndef IMAPWIRE_HAVE_DWORD
typedef uint32_t DWORD;
#endif
#ifndef IMAPWIRE_HAVE_LPDWORD
typedef DWORD *LPDWORD;
#endif
#ifndef IMAPWIRE_HAVE_VOID
typedef void VOID;
#endif
#ifndef IMAPWIRE_HAVE_LPVOID
typedef void *LPVOID;
#endif
#ifndef IMAPWIRE_HAVE_LPCTSTR
typedef const char *LPCTSTR;
#endif
#ifndef IMAPWIRE_HAVE_LPTSTR
typedef char *LPTSTR;
#endif
#endif /* _WINDEF_ */

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define IMAPWIRE_VERSION_MAJOR  0
#define IMAPWIRE_VERSION_MINOR  1
#define IMAPWIRE_VERSION_PATCH  0
#define IMAPWIRE_VERSION_STRING "0.1.0"

/* ---- Handles and sentinels ------------------------------------------------------ */
typedef uintptr_t HCLIENT;           /* a handle, never a pointer the caller may use */
typedef uintptr_t HFORWARD;          /* a port-forward's handle */
#define INVALID_CLIENT  ((HCLIENT)0)
#define INVALID_FORWARD ((HFORWARD)0)
#define IMAP_ERROR      (-1)

/* ---- Connect options (bits of dwOptions) ---------------------------------------- */
#define IMAP_OPTION_NONE            0x00000000u
#define IMAP_OPTION_IDENTIFY        0x00000100u
#define IMAP_OPTION_TUNNEL          0x00000400u
#define IMAP_OPTION_TRUSTEDSITE     0x00000800u
#define IMAP_OPTION_SECURE_EXPLICIT 0x00001000u
#define IMAP_OPTION_SECURE          IMAP_OPTION_SECURE_EXPLICIT
#define IMAP_OPTION_SECURE_IMPLICIT 0x00002000u
#define IMAP_OPTION_FREETHREAD      0x00080000u

#define IMAP_PORT_DEFAULT 143
#define IMAP_PORT_SECURE  993

#define IMAP_TIMEOUT_DEFAULT 20      /* seconds, used when nTimeout is 0 (extra) */

/* ---- Security protocols (bits) and certificate status --------------------------- */
#define SECURITY_PROTOCOL_NONE  0x0000u
#define SECURITY_PROTOCOL_TLS12 0x0004u
#define SECURITY_PROTOCOL_TLS13 0x0008u
#define SECURITY_PROTOCOL_SSH2  0x0100u

#define CERTIFICATE_STATUS_NONE          0u
#define CERTIFICATE_STATUS_VALID         1u
#define CERTIFICATE_STATUS_UNTRUSTED     2u
#define CERTIFICATE_STATUS_NAME_MISMATCH 3u
#define CERTIFICATE_STATUS_EXPIRED       4u
#define CERTIFICATE_STATUS_NOT_CHECKED   5u

/* CREDENTIAL_* bits of SECURITYCREDENTIALS.dwOptions */
#define CREDENTIAL_TUNNEL_FORWARD    0x0001u
/* lpszTunnelHost is a Host of the OpenSSH client configuration (IMAPWIRE_SSH_CONFIG, else
 * ~/.ssh/config): HostName, Port, User, IdentityFile, IdentitiesOnly, ProxyJump,
 * UserKnownHostsFile, ConnectTimeout, ServerAliveInterval; fields set here win. */
#define CREDENTIAL_TUNNEL_SSH_CONFIG 0x0002u

/* ---- Events, trace directions, auth types ---------------------------------------- */
#define IMAP_EVENT_CONNECT    1u
#define IMAP_EVENT_DISCONNECT 2u

#define IMAP_TRACE_SEND 1u
#define IMAP_TRACE_RECV 2u
#define IMAP_TRACE_INFO 3u           /* extra: a library note, e.g. which address won */

#define IMAP_AUTH_LOGIN     0u
#define IMAP_AUTH_PLAIN     1u
#define IMAP_AUTH_XOAUTH2   4u
#define IMAP_AUTH_BEARER    5u       /* OAUTHBEARER (RFC 7628) */
#define IMAP_AUTH_ANONYMOUS 6u
#define IMAP_AUTH_DEFAULT   7u       /* strongest both sides have: SCRAM-SHA-256, SCRAM-SHA-1,
                                        PLAIN, LOGIN */
#define IMAP_AUTH_SCRAM_SHA256 8u    /* extension: RFC 7677, server signature verified */
#define IMAP_AUTH_SCRAM_SHA1   9u    /* extension: RFC 5802, server signature verified */

/* ---- Error codes: nonzero and distinct; 0 means no error ------------------------- */
#define ST_ERROR_NONE                      0u
#define ST_ERROR_NOT_INITIALIZED           1u
#define ST_ERROR_INVALID_PARAMETER         2u
#define ST_ERROR_INVALID_HANDLE            3u
#define ST_ERROR_NOT_HANDLE_OWNER          4u
#define ST_ERROR_OUT_OF_MEMORY             5u
#define ST_ERROR_HOST_NOT_FOUND            6u
#define ST_ERROR_CONNECTION_REFUSED        7u
#define ST_ERROR_OPERATION_TIMEOUT         8u
#define ST_ERROR_CONNECTION_CLOSED         9u
#define ST_ERROR_INVALID_RESPONSE          10u
#define ST_ERROR_RESPONSE_TOO_LARGE        11u
#define ST_ERROR_SERVER_REJECTED           12u
#define ST_ERROR_SECURE_NOT_SUPPORTED      13u
#define ST_ERROR_TLS_HANDSHAKE             14u
#define ST_ERROR_CERTIFICATE_UNTRUSTED     15u
#define ST_ERROR_CERTIFICATE_NAME_MISMATCH 16u
#define ST_ERROR_CERTIFICATE_EXPIRED       17u
#define ST_ERROR_SSH_HOST_KEY_UNKNOWN      18u
#define ST_ERROR_SSH_HOST_KEY_MISMATCH     19u
#define ST_ERROR_SSH_AUTH_FAILED           20u
#define ST_ERROR_SSH_CHANNEL_FAILED        21u
#define ST_ERROR_LOGIN_FAILED              22u
#define ST_ERROR_ALREADY_AUTHENTICATED     23u
#define ST_ERROR_NOT_AUTHENTICATED         24u
#define ST_ERROR_TRANSPORT_NOT_FOUND       25u
#define ST_ERROR_TRANSPORT_EXISTS          26u
#define ST_ERROR_PLUGIN_VERSION            27u
/* extras beyond the contract's minimum */
#define ST_ERROR_FEATURE_NOT_AVAILABLE     28u  /* this build does not provide it (yet) */
#define ST_ERROR_NETWORK_UNREACHABLE       29u  /* no route to the host or network */
#define ST_ERROR_NETWORK_ERROR             30u  /* any other socket-level failure */
#define ST_ERROR_SYSTEM_LIMIT              31u  /* out of descriptors or kernel buffers */
#define ST_ERROR_COMMAND_FAILED            32u  /* the server answered NO or BAD */
#define ST_ERROR_BUFFER_TOO_SMALL          33u  /* the caller's buffer cannot hold the result */
#define ST_ERROR_TRANSPORT_IN_USE          34u  /* a type still has live layers */
#define ST_ERROR_PLUGIN_LOAD_FAILED        35u  /* no such file, or no entry point */
#define ST_ERROR_CLIENT_CERTIFICATE        36u  /* client certificate or key unusable */
#define ST_ERROR_MESSAGE_NOT_FOUND         37u  /* no such message or part */
#define ST_ERROR_IN_PROGRESS               38u  /* an asynchronous connect is not done yet */

/* ---- Structures (append-only; dwSize tells the library which fields exist) ------- */
typedef struct _SECURITYCREDENTIALS {
    DWORD   dwSize;              /* sizeof(SECURITYCREDENTIALS): lets the struct grow */
    DWORD   dwProtocol;          /* SECURITY_PROTOCOL_TLS12 | SECURITY_PROTOCOL_TLS13; 0 = both */
    DWORD   dwOptions;           /* CREDENTIAL_* bits, e.g. CREDENTIAL_TUNNEL_FORWARD */
    LPCTSTR lpszCertificate;     /* client certificate, PEM file; may hold the key too */
    LPCTSTR lpszPrivateKey;      /* its key, PEM file */
    LPCTSTR lpszPassword;        /* key passphrase */
    LPCTSTR lpszCAFile;          /* trust anchors, PEM bundle; NULL = the system store */
    LPCTSTR lpszCAPath;          /* hashed CA directory */
    LPCTSTR lpszServerName;      /* name the certificate must match, and SNI; NULL = host connected to */
    LPCTSTR lpszTunnelHost;      /* SSH server for IMAP_OPTION_TUNNEL; NULL = caller-made forward */
    UINT    nTunnelPort;         /* 0 = 22 */
    LPCTSTR lpszTunnelUser;
    LPCTSTR lpszTunnelKey;       /* private key file; NULL = the SSH agent, then the password */
    LPCTSTR lpszTunnelPassword;  /* password, or the key's passphrase */
    LPCTSTR lpszKnownHosts;      /* NULL = ~/.ssh/known_hosts; unknown or changed host key fails */
} SECURITYCREDENTIALS, *LPSECURITYCREDENTIALS;

typedef struct _SECURITYINFO {
    DWORD dwSize;                    /* set by the caller: sizeof(SECURITYINFO) */
    DWORD dwProtocol;                /* SECURITY_PROTOCOL_NONE, _TLS12 or _TLS13 (the IMAP stream) */
    DWORD dwCertificateStatus;       /* CERTIFICATE_STATUS_* */
    BOOL  bSessionResumed;           /* the TLS session was resumed */
    char  szCipher[64];              /* e.g. "TLS_AES_256_GCM_SHA384" */
    char  szSubject[256];            /* one-line RFC 2253 form */
    char  szIssuer[256];
    char  szValidFrom[32];           /* "2026-11-25T10:00:00Z" */
    char  szValidTo[32];
    char  szFingerprint[100];        /* SHA-256 of the DER certificate, hex pairs joined by ':' */
    DWORD dwTunnelProtocol;          /* SECURITY_PROTOCOL_SSH2 for an in-process SSH tunnel, else NONE */
    char  szHostKeyFingerprint[64];  /* the SSH host key as "SHA256:<base64>"; "" if none */
} SECURITYINFO, *LPSECURITYINFO;

typedef struct _IMAPTIMINGS {        /* microseconds; 0 for a phase that did not happen */
    DWORD dwSize;
    DWORD dwResolve;                 /* name resolution */
    DWORD dwConnect;                 /* TCP (or the bottom transport) */
    DWORD dwTunnel;                  /* SSH handshake, host key, auth, channel */
    DWORD dwSecure;                  /* TLS handshake(s), STARTTLS exchange included */
    DWORD dwGreeting;                /* greeting, CAPABILITY and ID exchanges */
    DWORD dwTotal;                   /* the whole connect, from the call to ready */
} IMAPTIMINGS, *LPIMAPTIMINGS;

typedef struct _IMAPMAILBOX {        /* filled by ImapSelectMailbox; no dwSize */
    DWORD dwMessages;
    DWORD dwRecent;
    DWORD dwFirstUnseen;             /* 0 if the server did not say */
    DWORD dwUidValidity;
    DWORD dwUidNext;
    char  szFlags[512];              /* the FLAGS list, space-separated */
} IMAPMAILBOX, *LPIMAPMAILBOX;

typedef VOID (*IMAPEVENTPROC)(HCLIENT hClient, UINT nEventId, DWORD dwError, LPVOID lpParam);
typedef VOID (*IMAPTRACEPROC)(HCLIENT hClient, UINT nDirection,
                              LPCTSTR lpszLine, INT nLength, LPVOID lpParam);
/* ImapGetMessageStream: the next piece of a message body, in order. */
typedef VOID (*IMAPMESSAGEPROC)(HCLIENT hClient, const VOID *lpvData, DWORD dwLength,
                                LPVOID lpParam);
/* ImapCommandEx: one untagged response, literals inline (not NUL-terminated). */
typedef VOID (*IMAPRESPONSEPROC)(HCLIENT hClient, LPCTSTR lpszData, DWORD dwLength,
                                 LPVOID lpParam);

typedef struct _IMAPCONNECTINFO {
    DWORD   dwSize;
    LPCTSTR lpszHostName;            /* the five ImapConnect arguments */
    UINT    nRemotePort;
    UINT    nTimeout;
    DWORD   dwOptions;
    LPSECURITYCREDENTIALS lpCredentials;
    LPCTSTR lpszTransport;           /* "name" or "name:arguments" as the lowest layer instead of TCP;
                                        NULL = the IMAPWIRE_TRANSPORT environment variable, else TCP */
    LPCTSTR lpszLocalAddress;        /* bind the outgoing socket; NULL = any */
    LPCTSTR lpszDnsServers;          /* c-ares form "127.0.0.1:5353,[::1]:53"; NULL = the
                                        IMAPWIRE_DNS_SERVERS environment variable, else the system's */
    LPCTSTR lpszClientName;          /* for ID; NULL = "imapwire" */
    LPCTSTR lpszClientVersion;       /* for ID; NULL = the library version */
    IMAPTRACEPROC lpTraceProc;       /* every protocol line, secrets redacted; NULL = none */
    IMAPEVENTPROC lpEventProc;       /* non-NULL: connect asynchronously, as ImapAsyncConnect */
    LPVOID  lpParam;                 /* passed to both callbacks */
} IMAPCONNECTINFO, *LPIMAPCONNECTINFO;

/* The transport type is defined in <imapwire/transport.h>, the SDK for implementers. */
typedef struct imapwire_transport_type IMAPTRANSPORTTYPE;

/* ---- Functions ------------------------------------------------------------------- */
/* The library is built with hidden visibility; only these entry points are exported. */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif
BOOL    ImapInitialize(LPCTSTR lpszLicenseKey, LPVOID lpReserved);
BOOL    ImapUninitialize(VOID);

HCLIENT ImapConnect(LPCTSTR lpszHostName, UINT nRemotePort, UINT nTimeout,
                    DWORD dwOptions, LPSECURITYCREDENTIALS lpCredentials);
HCLIENT ImapConnectEx(const IMAPCONNECTINFO *lpInfo);
HCLIENT ImapAsyncConnect(LPCTSTR lpszHostName, UINT nRemotePort, UINT nTimeout,
                         DWORD dwOptions, LPSECURITYCREDENTIALS lpCredentials,
                         IMAPEVENTPROC lpEventProc, LPVOID lpParam);
INT     ImapDisconnect(HCLIENT hClient);

DWORD   ImapAttachThread(HCLIENT hClient, DWORD dwThreadId);
DWORD   ImapGetCurrentThreadId(VOID);
DWORD   ImapGetLastError(VOID);
VOID    ImapSetLastError(DWORD dwError);
INT     ImapGetErrorString(DWORD dwError, LPTSTR lpszBuffer, INT nMaxLength);

INT     ImapLogin(HCLIENT hClient, UINT nAuthType, LPCTSTR lpszUserName, LPCTSTR lpszPassword);
INT     ImapGetCapabilities(HCLIENT hClient, LPTSTR lpszBuffer, INT nMaxLength);
BOOL    ImapHasCapability(HCLIENT hClient, LPCTSTR lpszCapability);
INT     ImapCommand(HCLIENT hClient, LPCTSTR lpszCommand, LPTSTR lpszResult, INT nMaxLength);
/* Extension: as ImapCommand, and lpResponseProc (may be NULL) is called once for each
 * untagged response, in order, with its bytes (literals inline, no final CRLF), before
 * the call returns, on the calling thread. */
INT     ImapCommandEx(HCLIENT hClient, LPCTSTR lpszCommand, IMAPRESPONSEPROC lpResponseProc,
                      LPVOID lpParam, LPTSTR lpszResult, INT nMaxLength);
INT     ImapSelectMailbox(HCLIENT hClient, LPCTSTR lpszMailbox, LPIMAPMAILBOX lpMailboxInfo);
INT     ImapGetMessage(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                       LPVOID lpvMessage, LPDWORD lpdwLength, DWORD dwOptions);
/* Extension: as ImapGetMessage, and the body goes to lpMessageProc in pieces (at most
 * 64 KB each) as it arrives, on the calling thread, before the call returns; no buffer
 * holds the whole message, so a body past the 256 MB literal limit (below 4 GB) is
 * allowed. *lpdwLength (may be NULL) gets the body's length. */
INT     ImapGetMessageStream(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                             IMAPMESSAGEPROC lpMessageProc, LPVOID lpParam,
                             LPDWORD lpdwLength);
VOID    ImapFreeMemory(LPVOID lpvMemory);
INT     ImapGetSecurityInformation(HCLIENT hClient, LPSECURITYINFO lpInfo);
INT     ImapGetTimings(HCLIENT hClient, LPIMAPTIMINGS lpTimings);

LPSECURITYCREDENTIALS ImapCreateSecurityCredentials(DWORD dwProtocol, DWORD dwOptions,
        LPCTSTR lpszCertificate, LPCTSTR lpszPrivateKey, LPCTSTR lpszPassword, LPCTSTR lpszCAFile);
BOOL    ImapSetTunnelCredentials(LPSECURITYCREDENTIALS lpCredentials, LPCTSTR lpszTunnelHost,
        UINT nTunnelPort, LPCTSTR lpszUserName, LPCTSTR lpszPrivateKey, LPCTSTR lpszPassword,
        LPCTSTR lpszKnownHosts);
VOID    ImapDeleteSecurityCredentials(LPSECURITYCREDENTIALS lpCredentials);

INT     ImapRegisterTransport(const IMAPTRANSPORTTYPE *lpType);
INT     ImapUnregisterTransport(LPCTSTR lpszName);
INT     ImapLoadPlugin(LPCTSTR lpszPath);

/* Extension: what the library's event-loop thread (asynchronous connects, forwards,
 * disconnect watching) costs. dwLongestStepUs is the longest time the loop spent in one
 * step of one task (or one release, or one cross-thread call) since the last reset:
 * while it runs, every other asynchronous connection waits. bReset zeroes it. */
typedef struct _IMAPLOOPSTATS {
    DWORD   dwSize;                  /* sizeof(IMAPLOOPSTATS) */
    DWORD   dwTasks;                 /* tasks on the loop after its last turn */
    DWORD   dwTurns;                 /* wake-ups since the loop started */
    DWORD   dwLongestStepUs;
} IMAPLOOPSTATS, *LPIMAPLOOPSTATS;
BOOL    ImapGetLoopStatistics(LPIMAPLOOPSTATS lpStats, BOOL bReset);

HFORWARD ImapCreatePortForward(LPSECURITYCREDENTIALS lpCredentials, LPCTSTR lpszRemoteHost,
        UINT nRemotePort, UINT nLocalPort, UINT *lpnBoundPort);
BOOL    ImapClosePortForward(HFORWARD hForward);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

/* ---- Extension: connects driven by the caller's own event loop ------------------
 * For a program that runs its own loop (libuv, libevent, GLib, a GUI) instead of the
 * library's loop thread; curl's multi-socket interface is the model. The connect is
 * the same machine ImapConnect runs (resolve, address racing, TLS, STARTTLS, SSH
 * tunnel, greeting, CAPABILITY, ID); only who waits differs.
 *
 *   h = ImapConnectStart(&info);         no I/O yet: the first step is yours to run
 *   loop:
 *     n = ImapConnectSockets(h, socks, IMAP_CONNECT_SOCKETS_MAX, &timeout_ms);
 *     watch socks[0..n-1] for their dwEvents, and time out after timeout_ms;
 *     rc = ImapConnectAction(h, fd, events)    a watched fd was ready, or
 *     rc = ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0)   the timeout ran out;
 *     rc == IMAP_CONNECT_PENDING: fetch the sockets again and go on;
 *     rc == 0: connected; rc == IMAP_ERROR: ImapGetLastError() says why.
 *
 * ImapConnectStart takes what ImapConnectEx takes, with lpEventProc NULL
 * (ST_ERROR_INVALID_PARAMETER otherwise); CREDENTIAL_TUNNEL_FORWARD is refused with
 * ST_ERROR_FEATURE_NOT_AVAILABLE (its forward runs on the library's loop thread). It
 * fails at once only for what ImapConnectEx rejects before any I/O; everything else,
 * a refused port included, comes from ImapConnectAction. The first
 * ImapConnectSockets reports no socket and a timeout of 0: run the first step then.
 *
 * The set changes from step to step: a lookup's sockets give way to racing connect
 * attempts, the losers go, TLS and SSH ask for writing as well as reading. After
 * every ImapConnectAction fetch the set again; stop watching what is no longer in it.
 * The descriptors handed out are the library's own duplicates (dup): one that leaves
 * the set stays open until the next ImapConnectAction or ImapDisconnect on the handle,
 * so a loop that registers descriptors (epoll, libuv's uv_poll_t) never watches a
 * closed or reused number, provided it stops watching before that next call. A
 * number that stays in the set is the same socket. Once the connect has ended,
 * ImapConnectSockets reports no socket and a timeout of -1; the descriptors last
 * handed out stay open until ImapDisconnect (stop watching them first).
 *
 * ImapConnectAction never blocks: each call does what can be done at once. Its
 * nSocket must be one handed out (or IMAP_SOCKET_TIMEOUT), else
 * ST_ERROR_INVALID_PARAMETER; which socket it names does not restrict the step. The
 * connect fails with ST_ERROR_OPERATION_TIMEOUT once its deadline has passed
 * (nTimeout per phase, twice that in all, as ImapConnect) at a call after it. After
 * the end, further calls return the same result again.
 *
 * While the connect runs, other calls on the handle fail with ST_ERROR_IN_PROGRESS;
 * after success it is an ordinary handle of the thread that started it. ImapDisconnect
 * works at any point, also from inside the trace callback during ImapConnectAction
 * (the handle is freed when that step returns, which then fails with
 * ST_ERROR_INVALID_HANDLE). The extension's calls on a handle that ImapConnectStart
 * did not make fail with ST_ERROR_INVALID_PARAMETER; on a dead one with
 * ST_ERROR_INVALID_HANDLE; from another thread (without FREETHREAD) with
 * ST_ERROR_NOT_HANDLE_OWNER; ImapConnectAction from the trace callback of its own step
 * with ST_ERROR_IN_PROGRESS. Calls on one handle must not overlap, FREETHREAD or not. */
typedef struct _IMAPSOCKET {
    INT   nSocket;                   /* a descriptor to watch */
    DWORD dwEvents;                  /* IMAP_SOCKET_READ and/or IMAP_SOCKET_WRITE */
} IMAPSOCKET, *LPIMAPSOCKET;

#define IMAP_SOCKET_READ         0x1u
#define IMAP_SOCKET_WRITE        0x2u
#define IMAP_SOCKET_TIMEOUT      (-1)  /* ImapConnectAction: no socket, the time ran out */
#define IMAP_CONNECT_PENDING     1     /* ImapConnectAction: not done; watch again */
#define IMAP_CONNECT_SOCKETS_MAX 8     /* a set never holds more */

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif
HCLIENT ImapConnectStart(const IMAPCONNECTINFO *lpInfo);
/* The sockets to watch now (the count, or IMAP_ERROR; ST_ERROR_BUFFER_TOO_SMALL when
 * nMaxSockets is too small), and in *lpnTimeoutMs the milliseconds until
 * ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0) is due (-1: never, the connect ended). */
INT     ImapConnectSockets(HCLIENT hClient, LPIMAPSOCKET lpSockets, INT nMaxSockets,
                           INT *lpnTimeoutMs);
/* One step after nSocket was ready for dwEvents (IMAP_SOCKET_* bits): 0 connected,
 * IMAP_CONNECT_PENDING, or IMAP_ERROR with the connect's ST_ERROR_*. */
INT     ImapConnectAction(HCLIENT hClient, INT nSocket, DWORD dwEvents);
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* IMAPWIRE_IMAPWIRE_H */
