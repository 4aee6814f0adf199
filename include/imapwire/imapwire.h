/* imapwire.h: the standard connect API that applications compile against.
 * Every name, signature and meaning here is the contract of API.md; extras are marked. */
/** @file
 *  The connect API: initialize the library, connect (plain, STARTTLS, implicit TLS,
 *  through SSH tunnels, port-forwards, proxies or plugin transports), log in, run
 *  commands, read the per-thread error. Start with ImapInitialize() and ImapConnect();
 *  the guide per use case is docs/guide.md, the error codes are explained in
 *  docs/errors.md. Names marked "extension" or "extra" go beyond the contract API. */
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
typedef int BOOL;  /**< nonzero is true */
#endif
#ifndef IMAPWIRE_HAVE_INT
typedef int INT;  /**< a signed count or status */
#endif
#ifndef IMAPWIRE_HAVE_UINT
typedef unsigned int UINT;  /**< a port, timeout or id */
#endif
#ifndef IMAPWIRE_HAVE_DWORD
typedef uint32_t DWORD;  /**< 32 bits: options, error codes, sizes */
#endif
#ifndef IMAPWIRE_HAVE_LPDWORD
typedef DWORD *LPDWORD;  /**< points to a DWORD */
#endif
#ifndef IMAPWIRE_HAVE_VOID
typedef void VOID;  /**< no value */
#endif
#ifndef IMAPWIRE_HAVE_LPVOID
typedef void *LPVOID;  /**< any pointer */
#endif
#ifndef IMAPWIRE_HAVE_LPCTSTR
typedef const char *LPCTSTR;  /**< a NUL-terminated string the library reads (UTF-8) */
#endif
#ifndef IMAPWIRE_HAVE_LPTSTR
typedef char *LPTSTR;  /**< a buffer the library writes a NUL-terminated string into */
#endif
#endif /* _WINDEF_ */

#ifndef TRUE
#define TRUE 1   /**< BOOL true */
#endif
#ifndef FALSE
#define FALSE 0  /**< BOOL false */
#endif

#define IMAPWIRE_VERSION_MAJOR  0        /**< the header's version: major (incompatible changes) */
#define IMAPWIRE_VERSION_MINOR  1        /**< minor: additions */
#define IMAPWIRE_VERSION_PATCH  0        /**< patch: fixes */
#define IMAPWIRE_VERSION_STRING "0.1.0"  /**< the three as text */

/* ---- Handles and sentinels ------------------------------------------------------ */
typedef uintptr_t HCLIENT;           /**< a handle, never a pointer the caller may use */
typedef uintptr_t HFORWARD;          /**< a port-forward's handle */
#define INVALID_CLIENT  ((HCLIENT)0)   /**< what a failed connect returns; never a live handle */
#define INVALID_FORWARD ((HFORWARD)0)  /**< what a failed ImapCreatePortForward returns */
#define IMAP_ERROR      (-1)           /**< the failure result of INT functions; see ImapGetLastError() */

/* ---- Connect options (bits of dwOptions) ---------------------------------------- */
#define IMAP_OPTION_NONE            0x00000000u  /**< plain TCP, no TLS, no ID */
#define IMAP_OPTION_IDENTIFY        0x00000100u  /**< send ID (RFC 2971) with lpszClientName after connecting, when the server offers it */
#define IMAP_OPTION_TUNNEL          0x00000400u  /**< through an SSH tunnel (lpszTunnelHost), or a forward the caller made (lpszTunnelHost NULL) */
#define IMAP_OPTION_TRUSTEDSITE     0x00000800u  /**< do not check the server certificate (tests only; see docs/security.md) */
#define IMAP_OPTION_SECURE_EXPLICIT 0x00001000u  /**< STARTTLS before anything else; fails rather than going on in clear text */
#define IMAP_OPTION_SECURE          IMAP_OPTION_SECURE_EXPLICIT  /**< the same as IMAP_OPTION_SECURE_EXPLICIT */
#define IMAP_OPTION_SECURE_IMPLICIT 0x00002000u  /**< TLS from the first byte (IMAPS, port 993) */
#define IMAP_OPTION_FREETHREAD      0x00080000u  /**< any thread may use the handle; the caller serialises the calls */

#define IMAP_PORT_DEFAULT 143  /**< plain and STARTTLS; used when the port is 0 */
#define IMAP_PORT_SECURE  993  /**< implicit TLS; used when the port is 0 with IMAP_OPTION_SECURE_IMPLICIT */

#define IMAP_TIMEOUT_DEFAULT 20      /**< seconds, used when nTimeout is 0 (extra) */

/* ---- Security protocols (bits) and certificate status --------------------------- */
#define SECURITY_PROTOCOL_NONE  0x0000u  /**< no TLS */
#define SECURITY_PROTOCOL_TLS12 0x0004u  /**< TLS 1.2 */
#define SECURITY_PROTOCOL_TLS13 0x0008u  /**< TLS 1.3 */
#define SECURITY_PROTOCOL_SSH2  0x0100u  /**< an SSH-2 tunnel (SECURITYINFO.dwTunnelProtocol) */

#define CERTIFICATE_STATUS_NONE          0u  /**< no TLS, no certificate */
#define CERTIFICATE_STATUS_VALID         1u  /**< trusted chain, right name, in its validity period */
#define CERTIFICATE_STATUS_UNTRUSTED     2u  /**< no trusted CA signed it */
#define CERTIFICATE_STATUS_NAME_MISMATCH 3u  /**< issued for another name */
#define CERTIFICATE_STATUS_EXPIRED       4u  /**< expired or not yet valid */
#define CERTIFICATE_STATUS_NOT_CHECKED   5u  /**< IMAP_OPTION_TRUSTEDSITE: not checked */

/* CREDENTIAL_* bits of SECURITYCREDENTIALS.dwOptions */
#define CREDENTIAL_TUNNEL_FORWARD    0x0001u  /**< the tunnel goes through a private library-managed port-forward instead of an in-process channel */
/** lpszTunnelHost is a Host of the OpenSSH client configuration (IMAPWIRE_SSH_CONFIG, else
 * ~/.ssh/config): HostName, Port, User, IdentityFile, IdentitiesOnly, ProxyJump,
 * UserKnownHostsFile, ConnectTimeout, ServerAliveInterval; fields set here win. */
#define CREDENTIAL_TUNNEL_SSH_CONFIG 0x0002u
/** An SSH host key that no known_hosts file has is accepted and appended to the first
 * writable one (as ssh -o StrictHostKeyChecking=accept-new); a changed key still fails. */
#define CREDENTIAL_TUNNEL_ACCEPT_NEW 0x0004u

/* ---- Events, trace directions, auth types ---------------------------------------- */
#define IMAP_EVENT_CONNECT    1u  /**< an asynchronous connect ended; dwError is 0 or why it failed */
#define IMAP_EVENT_DISCONNECT 2u  /**< the server closed an idle connection */

#define IMAP_TRACE_SEND 1u  /**< a line the client sent (secrets redacted) */
#define IMAP_TRACE_RECV 2u  /**< a line the server sent */
#define IMAP_TRACE_INFO 3u           /**< extra: a library note, e.g. which address won */

#define IMAP_AUTH_LOGIN     0u  /**< the LOGIN command */
#define IMAP_AUTH_PLAIN     1u  /**< SASL PLAIN (RFC 4616) */
#define IMAP_AUTH_XOAUTH2   4u  /**< XOAUTH2: the password is an OAuth 2 access token */
#define IMAP_AUTH_BEARER    5u       /**< OAUTHBEARER (RFC 7628) */
#define IMAP_AUTH_ANONYMOUS 6u  /**< SASL ANONYMOUS (RFC 4505) */
#define IMAP_AUTH_DEFAULT   7u       /**< strongest both sides have: SCRAM-SHA-256, SCRAM-SHA-1,
                                        PLAIN, LOGIN */
#define IMAP_AUTH_SCRAM_SHA256 8u    /**< extension: RFC 7677, server signature verified */
#define IMAP_AUTH_SCRAM_SHA1   9u    /**< extension: RFC 5802, server signature verified */

/* ---- Error codes: nonzero and distinct; 0 means no error ------------------------- */
#define ST_ERROR_NONE                      0u  /**< no error (docs/errors.md) */
#define ST_ERROR_NOT_INITIALIZED           1u  /**< ImapInitialize was not called (docs/errors.md) */
#define ST_ERROR_INVALID_PARAMETER         2u  /**< an argument is invalid (docs/errors.md) */
#define ST_ERROR_INVALID_HANDLE            3u  /**< not a live handle (docs/errors.md) */
#define ST_ERROR_NOT_HANDLE_OWNER          4u  /**< the handle belongs to another thread (docs/errors.md) */
#define ST_ERROR_OUT_OF_MEMORY             5u  /**< out of memory (docs/errors.md) */
#define ST_ERROR_HOST_NOT_FOUND            6u  /**< the host name does not resolve (docs/errors.md) */
#define ST_ERROR_CONNECTION_REFUSED        7u  /**< nothing listens there, or a proxy refused (docs/errors.md) */
#define ST_ERROR_OPERATION_TIMEOUT         8u  /**< a phase took longer than nTimeout (docs/errors.md) */
#define ST_ERROR_CONNECTION_CLOSED         9u  /**< the peer closed or reset the connection (docs/errors.md) */
#define ST_ERROR_INVALID_RESPONSE          10u  /**< the peer does not speak IMAP (docs/errors.md) */
#define ST_ERROR_RESPONSE_TOO_LARGE        11u  /**< a line or literal beyond the reader's limits (docs/errors.md) */
#define ST_ERROR_SERVER_REJECTED           12u  /**< BYE greeting (docs/errors.md) */
#define ST_ERROR_SECURE_NOT_SUPPORTED      13u  /**< STARTTLS required but not available (docs/errors.md) */
#define ST_ERROR_TLS_HANDSHAKE             14u  /**< the TLS handshake failed (docs/errors.md) */
#define ST_ERROR_CERTIFICATE_UNTRUSTED     15u  /**< no trusted CA signed the certificate (docs/errors.md) */
#define ST_ERROR_CERTIFICATE_NAME_MISMATCH 16u  /**< the certificate is for another name (docs/errors.md) */
#define ST_ERROR_CERTIFICATE_EXPIRED       17u  /**< the certificate expired or is not yet valid (docs/errors.md) */
#define ST_ERROR_SSH_HOST_KEY_UNKNOWN      18u  /**< the host key is not in known_hosts (docs/errors.md) */
#define ST_ERROR_SSH_HOST_KEY_MISMATCH     19u  /**< the host key differs from known_hosts (docs/errors.md) */
#define ST_ERROR_SSH_AUTH_FAILED           20u  /**< SSH authentication failed (docs/errors.md) */
#define ST_ERROR_SSH_CHANNEL_FAILED        21u  /**< the SSH server could not open the tunnel channel (docs/errors.md) */
#define ST_ERROR_LOGIN_FAILED              22u  /**< the IMAP server refused the login (docs/errors.md) */
#define ST_ERROR_ALREADY_AUTHENTICATED     23u  /**< already logged in (or PREAUTH) (docs/errors.md) */
#define ST_ERROR_NOT_AUTHENTICATED         24u  /**< log in first (docs/errors.md) */
#define ST_ERROR_TRANSPORT_NOT_FOUND       25u  /**< no transport of that name (docs/errors.md) */
#define ST_ERROR_TRANSPORT_EXISTS          26u  /**< the transport name is taken (docs/errors.md) */
#define ST_ERROR_PLUGIN_VERSION            27u  /**< built for another transport ABI major (docs/errors.md) */
/* extras beyond the contract's minimum */
#define ST_ERROR_FEATURE_NOT_AVAILABLE     28u  /**< this build does not provide it (yet) */
#define ST_ERROR_NETWORK_UNREACHABLE       29u  /**< no route to the host or network */
#define ST_ERROR_NETWORK_ERROR             30u  /**< any other socket-level failure */
#define ST_ERROR_SYSTEM_LIMIT              31u  /**< out of descriptors or kernel buffers */
#define ST_ERROR_COMMAND_FAILED            32u  /**< the server answered NO or BAD */
#define ST_ERROR_BUFFER_TOO_SMALL          33u  /**< the caller's buffer cannot hold the result */
#define ST_ERROR_TRANSPORT_IN_USE          34u  /**< a type still has live layers */
#define ST_ERROR_PLUGIN_LOAD_FAILED        35u  /**< no such file, or no entry point */
#define ST_ERROR_CLIENT_CERTIFICATE        36u  /**< client certificate or key unusable */
#define ST_ERROR_MESSAGE_NOT_FOUND         37u  /**< no such message or part */
#define ST_ERROR_IN_PROGRESS               38u  /**< an asynchronous connect is not done yet */
#define ST_ERROR_TLS_LIBRARY               39u  /**< TLS is unusable in this process since an earlier failure inside OpenSSL (docs/errors.md) */

/* ---- Structures (append-only; dwSize tells the library which fields exist) ------- */
/** What a connect needs for TLS and SSH: trust anchors, a client certificate, the
 *  tunnel's host, user, key and known hosts. Zero it, set dwSize, fill what you need;
 *  the library copies what it uses, so it may go once the call returns. */
typedef struct _SECURITYCREDENTIALS {
    DWORD   dwSize;              /**< sizeof(SECURITYCREDENTIALS): lets the struct grow */
    DWORD   dwProtocol;          /**< SECURITY_PROTOCOL_TLS12 | SECURITY_PROTOCOL_TLS13; 0 = both */
    DWORD   dwOptions;           /**< CREDENTIAL_* bits, e.g. CREDENTIAL_TUNNEL_FORWARD */
    LPCTSTR lpszCertificate;     /**< client certificate, PEM file; may hold the key too */
    LPCTSTR lpszPrivateKey;      /**< its key, PEM file */
    LPCTSTR lpszPassword;        /**< key passphrase */
    LPCTSTR lpszCAFile;          /**< trust anchors, PEM bundle; NULL = the system store */
    LPCTSTR lpszCAPath;          /**< hashed CA directory */
    LPCTSTR lpszServerName;      /**< name the certificate must match, and SNI; NULL = host connected to */
    LPCTSTR lpszTunnelHost;      /**< SSH server for IMAP_OPTION_TUNNEL; NULL = caller-made forward */
    UINT    nTunnelPort;         /**< 0 = 22 */
    LPCTSTR lpszTunnelUser;      /**< SSH user; NULL = the login name (or the ssh config's User) */
    LPCTSTR lpszTunnelKey;       /**< private key file; NULL = the SSH agent, then the password */
    LPCTSTR lpszTunnelPassword;  /**< password, or the key's passphrase */
    LPCTSTR lpszKnownHosts;      /**< NULL = ~/.ssh/known_hosts; unknown or changed host key fails */
} SECURITYCREDENTIALS, /**< see struct _SECURITYCREDENTIALS */
  *LPSECURITYCREDENTIALS; /**< a pointer to SECURITYCREDENTIALS */

/** What ImapGetSecurityInformation() reports: the TLS protocol, cipher and certificate,
 *  and the SSH host key of a tunnel. */
typedef struct _SECURITYINFO {
    DWORD dwSize;                    /**< set by the caller: sizeof(SECURITYINFO) */
    DWORD dwProtocol;                /**< SECURITY_PROTOCOL_NONE, _TLS12 or _TLS13 (the IMAP stream) */
    DWORD dwCertificateStatus;       /**< CERTIFICATE_STATUS_* */
    BOOL  bSessionResumed;           /**< the TLS session was resumed */
    char  szCipher[64];              /**< e.g. "TLS_AES_256_GCM_SHA384" */
    char  szSubject[256];            /**< one-line RFC 2253 form */
    char  szIssuer[256];             /**< the issuer, same form */
    char  szValidFrom[32];           /**< "2026-11-25T10:00:00Z" */
    char  szValidTo[32];             /**< end of validity, same form */
    char  szFingerprint[100];        /**< SHA-256 of the DER certificate, hex pairs joined by ':' */
    DWORD dwTunnelProtocol;          /**< SECURITY_PROTOCOL_SSH2 for an in-process SSH tunnel, else NONE */
    char  szHostKeyFingerprint[64];  /**< the SSH host key as "SHA256:<base64>"; "" if none */
} SECURITYINFO, /**< see struct _SECURITYINFO */
  *LPSECURITYINFO; /**< a pointer to SECURITYINFO */

/** How long each phase of the connect took (ImapGetTimings()): microseconds; 0 for a
 *  phase that did not happen. */
typedef struct _IMAPTIMINGS {
    DWORD dwSize;                    /**< set by the caller: sizeof(IMAPTIMINGS) */
    DWORD dwResolve;                 /**< name resolution */
    DWORD dwConnect;                 /**< TCP (or the bottom transport) */
    DWORD dwTunnel;                  /**< SSH handshake, host key, auth, channel */
    DWORD dwSecure;                  /**< TLS handshake(s), STARTTLS exchange included */
    DWORD dwGreeting;                /**< greeting, CAPABILITY and ID exchanges */
    DWORD dwTotal;                   /**< the whole connect, from the call to ready */
} IMAPTIMINGS, /**< see struct _IMAPTIMINGS */
  *LPIMAPTIMINGS; /**< a pointer to IMAPTIMINGS */

/** Extension: the steps of a connect or call that can fail (IMAPERRORINFO::dwStage). */
#define IMAP_STAGE_NONE      0u   /**< nothing known about the step */
#define IMAP_STAGE_ARGUMENTS 1u   /**< the arguments of the call */
#define IMAP_STAGE_FILE      2u   /**< reading a file the caller named */
#define IMAP_STAGE_RESOLVE   3u   /**< resolving a host name */
#define IMAP_STAGE_TCP       4u   /**< the TCP connection */
#define IMAP_STAGE_PROXY     5u   /**< a proxy (connection to it, its handshake) */
#define IMAP_STAGE_SSH       6u   /**< an SSH host (connection, host key, auth, channel) */
#define IMAP_STAGE_TLS       7u   /**< the TLS handshake and certificate checks */
#define IMAP_STAGE_GREETING  8u   /**< greeting, CAPABILITY, STARTTLS exchange, ID */
#define IMAP_STAGE_LOGIN     9u   /**< ImapLogin */
#define IMAP_STAGE_COMMAND   10u  /**< a command after the connect */

/** Extension: what failed (ImapGetErrorInfo()). The struct only grows at its end: the
 *  library fills what the caller's dwSize covers. No field ever holds a secret. */
typedef struct _IMAPERRORINFO {
    DWORD dwSize;                    /**< set by the caller: sizeof(IMAPERRORINFO) */
    DWORD dwError;                   /**< the ST_ERROR_* code */
    DWORD dwStage;                   /**< IMAP_STAGE_*: the step that failed */
    UINT  nHop;                      /**< 1-based position of the SSH host or proxy in the
                                          route; 0 = none */
    char  szPeer[256];               /**< "host:port" of the party that failed: proxy, SSH
                                          server or IMAP server */
    char  szFile[260];               /**< the file involved: CA file or path, certificate,
                                          key, known_hosts, SSH configuration (with
                                          ":line"); "" if none */
    char  szFingerprint[128];        /**< the SSH host key presented, "SHA256:<base64>",
                                          when a host key check failed */
    char  szDetail[512];             /**< one line in plain words, with the peer's own words
                                          where it gave some */
} IMAPERRORINFO, /**< see struct _IMAPERRORINFO */
  *LPIMAPERRORINFO; /**< a pointer to IMAPERRORINFO */

/** A selected mailbox's state, filled by ImapSelectMailbox(); no dwSize. */
typedef struct _IMAPMAILBOX {
    DWORD dwMessages;                /**< EXISTS: message count */
    DWORD dwRecent;                  /**< RECENT */
    DWORD dwFirstUnseen;             /**< 0 if the server did not say */
    DWORD dwUidValidity;             /**< UIDVALIDITY: UIDs are valid while it stays the same */
    DWORD dwUidNext;                 /**< UIDNEXT: the UID the next message will get */
    char  szFlags[512];              /**< the FLAGS list, space-separated */
} IMAPMAILBOX, /**< see struct _IMAPMAILBOX */
  *LPIMAPMAILBOX; /**< a pointer to IMAPMAILBOX */

/** Called on the library's loop thread when an asynchronous connect ends
 *  (IMAP_EVENT_CONNECT, dwError 0 or the reason) or a server closes an idle connection
 *  (IMAP_EVENT_DISCONNECT). Keep it short; never block in it: calls that wait for the
 *  server (connect, login, commands, fetches) fail with ST_ERROR_IN_PROGRESS from it. */
typedef VOID (*IMAPEVENTPROC)(HCLIENT hClient, UINT nEventId, DWORD dwError, LPVOID lpParam);
/** Called with each protocol line (IMAP_TRACE_SEND, IMAP_TRACE_RECV, secrets redacted) and
 *  each library note (IMAP_TRACE_INFO); the line is not NUL-terminated: use nLength. */
typedef VOID (*IMAPTRACEPROC)(HCLIENT hClient, UINT nDirection,
                              LPCTSTR lpszLine, INT nLength, LPVOID lpParam);
/** ImapGetMessageStream: the next piece of a message body, in order. */
typedef VOID (*IMAPMESSAGEPROC)(HCLIENT hClient, const VOID *lpvData, DWORD dwLength,
                                LPVOID lpParam);
/** ImapCommandEx: one untagged response, literals inline (not NUL-terminated). */
typedef VOID (*IMAPRESPONSEPROC)(HCLIENT hClient, LPCTSTR lpszData, DWORD dwLength,
                                 LPVOID lpParam);

/** IMAPRESPONSEPIECE.dwFlags: the piece is literal data (dwLiteralSize and
 *  dwLiteralOffset place it); without it, protocol text. */
#define IMAP_PIECE_LITERAL 0x1u
/** IMAPRESPONSEPIECE.dwFlags: the last piece of its response (the text after its last
 *  literal, without the final CRLF; it may be empty). */
#define IMAP_PIECE_END     0x2u

/** One piece of an untagged response, as ImapCommandStream() hands it over. The pieces
 *  of one response, concatenated in order, are what ImapCommandEx() would deliver for it
 *  (literals inline, no final CRLF). */
typedef struct _IMAPRESPONSEPIECE {
    DWORD       dwSize;              /**< sizeof(IMAPRESPONSEPIECE) of the library that calls */
    DWORD       dwResponse;          /**< which untagged response of the command: 1, 2, ... */
    DWORD       dwFlags;             /**< IMAP_PIECE_LITERAL, IMAP_PIECE_END */
    const char *lpData;              /**< the bytes (not NUL-terminated; valid during the call) */
    DWORD       dwLength;            /**< how many: at most 64 KB for literal data */
    DWORD       dwLiteralSize;       /**< literal data: the literal's whole size; a text piece
                                          without IMAP_PIECE_END (it ends with a literal's head
                                          "{n}" CRLF): n, the size of the literal that follows */
    DWORD       dwLiteralOffset;     /**< literal data: where lpData starts in the literal */
} IMAPRESPONSEPIECE, /**< see struct _IMAPRESPONSEPIECE */
  *LPIMAPRESPONSEPIECE; /**< a pointer to IMAPRESPONSEPIECE */
/** ImapCommandStream: the next piece of an untagged response, in order. */
typedef VOID (*IMAPRESPONSEPIECEPROC)(HCLIENT hClient, const IMAPRESPONSEPIECE *lpPiece,
                                      LPVOID lpParam);

/** Everything ImapConnectEx() and ImapConnectStart() take: the five ImapConnect()
 *  arguments and the extras. A zeroed struct with dwSize and those five set behaves
 *  exactly as ImapConnect(). */
typedef struct _IMAPCONNECTINFO {
    DWORD   dwSize;                  /**< sizeof(IMAPCONNECTINFO) */
    LPCTSTR lpszHostName;            /**< the five ImapConnect arguments: host name or address */
    UINT    nRemotePort;             /**< port; 0 = 143, or 993 with IMAP_OPTION_SECURE_IMPLICIT */
    UINT    nTimeout;                /**< seconds per phase; 0 = IMAP_TIMEOUT_DEFAULT */
    DWORD   dwOptions;               /**< IMAP_OPTION_* bits */
    LPSECURITYCREDENTIALS lpCredentials; /**< TLS and SSH settings; may be NULL */
    LPCTSTR lpszTransport;           /**< "name" or "name:arguments" as the lowest layer instead of TCP;
                                        NULL = the IMAPWIRE_TRANSPORT environment variable, else TCP */
    LPCTSTR lpszLocalAddress;        /**< bind the outgoing socket; NULL = any */
    LPCTSTR lpszDnsServers;          /**< c-ares form "127.0.0.1:5353,[::1]:53"; NULL = the
                                        IMAPWIRE_DNS_SERVERS environment variable, else the system's */
    LPCTSTR lpszClientName;          /**< for ID; NULL = "imapwire" */
    LPCTSTR lpszClientVersion;       /**< for ID; NULL = the library version */
    IMAPTRACEPROC lpTraceProc;       /**< every protocol line, secrets redacted; NULL = none */
    IMAPEVENTPROC lpEventProc;       /**< non-NULL: connect asynchronously, as ImapAsyncConnect */
    LPVOID  lpParam;                 /**< passed to both callbacks */
} IMAPCONNECTINFO, /**< see struct _IMAPCONNECTINFO */
  *LPIMAPCONNECTINFO; /**< a pointer to IMAPCONNECTINFO */

/** A transport type (struct imapwire_transport_type), defined in <imapwire/transport.h>,
 *  the SDK for implementers. */
typedef struct imapwire_transport_type IMAPTRANSPORTTYPE;

/* ---- Functions ------------------------------------------------------------------- */
/* The library is built with hidden visibility; only these entry points are exported. */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif
/** Starts the library; call it before anything else. Counted and thread-safe: each call
 *  needs its ImapUninitialize(). Both arguments may be NULL. TRUE on success. */
BOOL    ImapInitialize(LPCTSTR lpszLicenseKey, LPVOID lpReserved);
/** Ends one ImapInitialize(); the last one frees every open handle and
 *  unloads the plugins. TRUE on success. */
BOOL    ImapUninitialize(VOID);

/** Connects and waits until the server is ready: resolve, TCP (addresses raced), SSH
 *  tunnel, TLS or STARTTLS, greeting, CAPABILITY, ID as dwOptions say. nTimeout (seconds,
 *  0 = IMAP_TIMEOUT_DEFAULT) bounds each phase. Returns the handle, owned by the calling
 *  thread, or INVALID_CLIENT with the reason in ImapGetLastError(). */
HCLIENT ImapConnect(LPCTSTR lpszHostName, UINT nRemotePort, UINT nTimeout,
                    DWORD dwOptions, LPSECURITYCREDENTIALS lpCredentials);
/** As ImapConnect(), with the extras of IMAPCONNECTINFO (transport, local address, DNS
 *  servers, trace and event callbacks). With lpEventProc set it connects asynchronously. */
HCLIENT ImapConnectEx(const IMAPCONNECTINFO *lpInfo);
/** Starts a connect on the library's loop thread and returns its handle at once;
 *  lpEventProc gets IMAP_EVENT_CONNECT when it is ready or has failed. Until then other
 *  calls on the handle fail with ST_ERROR_IN_PROGRESS. INVALID_CLIENT only for bad arguments. */
HCLIENT ImapAsyncConnect(LPCTSTR lpszHostName, UINT nRemotePort, UINT nTimeout,
                         DWORD dwOptions, LPSECURITYCREDENTIALS lpCredentials,
                         IMAPEVENTPROC lpEventProc, LPVOID lpParam);
/** Sends LOGOUT when it can, closes the connection and frees the handle, whatever its
 *  state (also during an asynchronous connect). 0 or IMAP_ERROR. */
INT     ImapDisconnect(HCLIENT hClient);

/** Makes thread dwThreadId (0 = the calling thread) the owner of the handle. Returns the
 *  previous owner, or (DWORD)IMAP_ERROR. */
DWORD   ImapAttachThread(HCLIENT hClient, DWORD dwThreadId);
/** The calling thread's id, as ImapAttachThread() takes it. */
DWORD   ImapGetCurrentThreadId(VOID);
/** The calling thread's last error: an ST_ERROR_* code (docs/errors.md). Read it right
 *  after a call that failed; success may leave an older code in place. */
DWORD   ImapGetLastError(VOID);
/** Sets the calling thread's last error. */
VOID    ImapSetLastError(DWORD dwError);
/** Copies the text of an ST_ERROR_* code into the buffer (cut to fit, NUL-terminated).
 *  Returns the length, or IMAP_ERROR for an unknown code or no buffer. */
INT     ImapGetErrorString(DWORD dwError, LPTSTR lpszBuffer, INT nMaxLength);

/** Authenticates with nAuthType (IMAP_AUTH_*; IMAP_AUTH_DEFAULT picks the strongest both
 *  sides have). 0, or IMAP_ERROR (ST_ERROR_LOGIN_FAILED, ST_ERROR_ALREADY_AUTHENTICATED...). */
INT     ImapLogin(HCLIENT hClient, UINT nAuthType, LPCTSTR lpszUserName, LPCTSTR lpszPassword);
/** The server's current capabilities, space-separated. Returns the length or IMAP_ERROR;
 *  with lpszBuffer NULL and nMaxLength 0, the length a buffer needs (without the NUL). */
INT     ImapGetCapabilities(HCLIENT hClient, LPTSTR lpszBuffer, INT nMaxLength);
/** TRUE when the server announced the capability (compared without regard to case). */
BOOL    ImapHasCapability(HCLIENT hClient, LPCTSTR lpszCapability);
/** Sends one command (without the tag) and waits for its tagged reply: 0 for OK,
 *  IMAP_ERROR for NO, BAD or a failure. lpszResult (may be NULL) receives the reply text. */
INT     ImapCommand(HCLIENT hClient, LPCTSTR lpszCommand, LPTSTR lpszResult, INT nMaxLength);
/** Extension: as ImapCommand(), and lpResponseProc (may be NULL) is called once for each
 * untagged response, in order, with its bytes (literals inline, no final CRLF), before
 * the call returns, on the calling thread. */
INT     ImapCommandEx(HCLIENT hClient, LPCTSTR lpszCommand, IMAPRESPONSEPROC lpResponseProc,
                      LPVOID lpParam, LPTSTR lpszResult, INT nMaxLength);
/** Extension: as ImapCommandEx(), and each untagged response goes to lpPieceProc in
 * pieces as it arrives, on the calling thread, before the call returns: the text up to
 * and with a literal's head ("{n}" CRLF), then that literal's bytes in pieces of at most
 * 64 KB received straight from the connection, and so on for each literal, then the rest
 * (IMAP_PIECE_END). No buffer holds a literal, so a response of any size (literals below
 * 4 GB each) needs no more memory than its protocol text. lpPieceProc must not call the
 * library on this handle: such a call (ImapDisconnect() included) fails with
 * ST_ERROR_IN_PROGRESS. 0 for OK, IMAP_ERROR for NO, BAD or a failure. */
INT     ImapCommandStream(HCLIENT hClient, LPCTSTR lpszCommand, IMAPRESPONSEPIECEPROC lpPieceProc,
                          LPVOID lpParam, LPTSTR lpszResult, INT nMaxLength);
/** Selects a mailbox (SELECT) and fills lpMailboxInfo. 0 or IMAP_ERROR. */
INT     ImapSelectMailbox(HCLIENT hClient, LPCTSTR lpszMailbox, LPIMAPMAILBOX lpMailboxInfo);
/** dwOptions of ImapGetMessage(): nMessageId is a UID, and the fetch is a UID FETCH (an
 *  expunge in between cannot make it another message). 0: a sequence number. */
#define IMAP_MESSAGE_UID 0x1u
/** Fetches message nMessageId (a sequence number from 1, or a UID with IMAP_MESSAGE_UID
 *  in dwOptions; any other bit is ST_ERROR_INVALID_PARAMETER); part 0 is the whole message
 *  (BODY.PEEK[]), part n is BODY.PEEK[n]. With *lpdwLength > 0, lpvMessage is a buffer of
 *  that size and *lpdwLength gets the length; with *lpdwLength == 0, lpvMessage is a
 *  (LPVOID *) that receives a buffer to free with ImapFreeMemory(). 0 or IMAP_ERROR. */
INT     ImapGetMessage(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                       LPVOID lpvMessage, LPDWORD lpdwLength, DWORD dwOptions);
/** Extension: as ImapGetMessage(), and the body goes to lpMessageProc in pieces (at most
 * 64 KB each) as it arrives, on the calling thread, before the call returns; no buffer
 * holds the whole message, so a body past the 256 MB literal limit (below 4 GB) is
 * allowed. *lpdwLength (may be NULL) gets the body's length. */
INT     ImapGetMessageStream(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                             IMAPMESSAGEPROC lpMessageProc, LPVOID lpParam,
                             LPDWORD lpdwLength);
/** Extension: as ImapGetMessageStream(), with ImapGetMessage()'s dwOptions:
 * IMAP_MESSAGE_UID fetches nMessageId as a UID (UID FETCH, the answer matched by its UID
 * item), so an expunge in between cannot make it another message; any other bit is
 * ST_ERROR_INVALID_PARAMETER. */
INT     ImapGetMessageStreamEx(HCLIENT hClient, UINT nMessageId, UINT nMessagePart,
                               DWORD dwOptions, IMAPMESSAGEPROC lpMessageProc,
                               LPVOID lpParam, LPDWORD lpdwLength);
/** Frees a buffer the library allocated for the caller (ImapGetMessage()). */
VOID    ImapFreeMemory(LPVOID lpvMemory);
/** Fills lpInfo (dwSize set by the caller) with the connection's TLS and SSH facts.
 *  0 or IMAP_ERROR. */
INT     ImapGetSecurityInformation(HCLIENT hClient, LPSECURITYINFO lpInfo);
/** Fills lpTimings (dwSize set by the caller) with the phases of the connect. 0 or
 *  IMAP_ERROR. */
INT     ImapGetTimings(HCLIENT hClient, LPIMAPTIMINGS lpTimings);
/** Extension: what failed. With INVALID_CLIENT, the calling thread's last failed call
 *  (the one ImapGetLastError() names, a failed ImapConnect() included); with a handle,
 *  that handle's last failure (also the one an IMAP_EVENT_CONNECT or
 *  IMAP_EVENT_DISCONNECT reported). lpInfo->dwSize set by the caller. 0 or IMAP_ERROR. */
INT     ImapGetErrorInfo(HCLIENT hClient, LPIMAPERRORINFO lpInfo);
/** Extension: the phases of the calling thread's last blocking connect that failed
 *  (ImapConnect(), ImapConnectEx()), as ImapGetTimings() gives them for a handle; a
 *  phase that never finished counts up to the failure. 0, or IMAP_ERROR with
 *  ST_ERROR_INVALID_PARAMETER when no connect failed on this thread yet. */
INT     ImapGetLastTimings(LPIMAPTIMINGS lpTimings);

/** Allocates and fills a SECURITYCREDENTIALS (TLS part); free it with
 *  ImapDeleteSecurityCredentials(). NULL on failure. */
LPSECURITYCREDENTIALS ImapCreateSecurityCredentials(DWORD dwProtocol, DWORD dwOptions,
        LPCTSTR lpszCertificate, LPCTSTR lpszPrivateKey, LPCTSTR lpszPassword, LPCTSTR lpszCAFile);
/** Sets the SSH tunnel fields (host, port, user, key, password, known hosts) of
 *  lpCredentials. TRUE on success. */
BOOL    ImapSetTunnelCredentials(LPSECURITYCREDENTIALS lpCredentials, LPCTSTR lpszTunnelHost,
        UINT nTunnelPort, LPCTSTR lpszUserName, LPCTSTR lpszPrivateKey, LPCTSTR lpszPassword,
        LPCTSTR lpszKnownHosts);
/** Frees credentials made by ImapCreateSecurityCredentials(), wiping the secrets. */
VOID    ImapDeleteSecurityCredentials(LPSECURITYCREDENTIALS lpCredentials);

/** Adds a transport type written in the program (see <imapwire/transport.h> and
 *  examples/custom_transport.c); connects name it in lpszTransport. 0 or IMAP_ERROR. */
INT     ImapRegisterTransport(const IMAPTRANSPORTTYPE *lpType);
/** Removes a transport type; ST_ERROR_TRANSPORT_IN_USE while a connection uses it. */
INT     ImapUnregisterTransport(LPCTSTR lpszName);
/** Loads a plugin: a path with '/' as given, a bare name as NAME.so from
 *  IMAPWIRE_PLUGIN_PATH, then the installed plugin directory. Its init registers its
 *  transports. 0 or IMAP_ERROR (ST_ERROR_PLUGIN_LOAD_FAILED, ST_ERROR_PLUGIN_VERSION). */
INT     ImapLoadPlugin(LPCTSTR lpszPath);

/** Extension: what the library's event-loop thread (asynchronous connects, forwards,
 * disconnect watching) costs. dwLongestStepUs is the longest time the loop spent in one
 * step of one task (or one release, or one cross-thread call) since the last reset:
 * while it runs, every other asynchronous connection waits. bReset zeroes it. */
typedef struct _IMAPLOOPSTATS {
    DWORD   dwSize;                  /**< sizeof(IMAPLOOPSTATS) */
    DWORD   dwTasks;                 /**< tasks on the loop after its last turn */
    DWORD   dwTurns;                 /**< wake-ups since the loop started */
    DWORD   dwLongestStepUs;         /**< the longest step in microseconds, see above */
} IMAPLOOPSTATS, /**< see struct _IMAPLOOPSTATS */
  *LPIMAPLOOPSTATS; /**< a pointer to IMAPLOOPSTATS */
/** Fills lpStats with the loop thread's figures; bReset zeroes dwLongestStepUs. */
BOOL    ImapGetLoopStatistics(LPIMAPLOOPSTATS lpStats, BOOL bReset);

/** Like ssh -L on 127.0.0.1: listens on nLocalPort (0 = any free port, returned in
 *  *lpnBoundPort) and carries each connection of the caller's own user through one SSH
 *  session (lpCredentials' tunnel fields) to lpszRemoteHost:nRemotePort. INVALID_FORWARD
 *  on failure. */
HFORWARD ImapCreatePortForward(LPSECURITYCREDENTIALS lpCredentials, LPCTSTR lpszRemoteHost,
        UINT nRemotePort, UINT nLocalPort, UINT *lpnBoundPort);
/** Stops the forward: no more listening, and its SSH session ends. TRUE on success. */
BOOL    ImapClosePortForward(HFORWARD hForward);

/** Extension: what ImapRelay() did: which side ended the relay and the bytes each way. */
typedef struct _IMAPRELAYINFO {
    DWORD    dwSize;                 /**< set by the caller: sizeof(IMAPRELAYINFO) */
    DWORD    dwEnded;                /**< IMAP_RELAY_ENDED_*: the side that ended it */
    uint64_t qwToServer;             /**< bytes read from nInput and sent to the server */
    uint64_t qwFromServer;           /**< bytes written to nOutput, those the library had
                                          already received included */
} IMAPRELAYINFO, /**< see struct _IMAPRELAYINFO */
  *LPIMAPRELAYINFO; /**< a pointer to IMAPRELAYINFO */
#define IMAP_RELAY_ENDED_ERROR  0u   /**< neither: a failure (ImapRelay returned IMAP_ERROR) */
#define IMAP_RELAY_ENDED_INPUT  1u   /**< nInput reached its end (the server's remaining
                                          output was passed on first, see ImapRelay()) */
#define IMAP_RELAY_ENDED_SERVER 2u   /**< the server closed the connection */
#define IMAP_RELAY_ENDED_OUTPUT 3u   /**< nOutput's reader went away (EPIPE, ECONNRESET) */
/** Extension: hands the session's byte stream to the caller: bytes read from nInput go
 * to the server as they are, bytes from the server go to nOutput as they are, both ways
 * at once, on the calling thread, until one side ends. This is what a mail client's
 * tunnel command needs (mbsync's Tunnel, neomutt's tunnel): imapwire connects by any
 * route (TLS, STARTTLS, SSH tunnel, proxy, plugin) and logs in, and the client speaks
 * IMAP through the two descriptors. The library's reader may already hold bytes that
 * arrived after the last reply it returned (pipelined or unsolicited responses); they
 * go to nOutput first, so nothing is lost or reordered. Nothing is buffered by line:
 * each read is passed on at once (no latency per command), in pieces of up to 128 KB; a
 * plain TCP session to a pipe goes socket to pipe in the kernel (splice), and such a
 * pipe is widened to 128 KB (F_SETPIPE_SZ) so bulk data needs fewer wake-ups.
 *
 * nInput and nOutput may be the same descriptor (a socket) or two (pipes, a terminal);
 * they are made non-blocking for the call and their flags restored before it returns.
 * A write to a pipe whose reader has gone raises SIGPIPE unless the caller ignores it
 * (sockets are written with MSG_NOSIGNAL). There is no timeout while both sides are
 * open (an IDLE may be silent for 29 minutes); once nInput has ended, the server's
 * remaining output (a LOGOUT's answer) is passed on until the server closes or for at
 * most nTimeout seconds (0: the handle's connect timeout) of silence.
 *
 * Returns 0 when one side ended (lpInfo, which may be NULL, says which and counts the
 * bytes), or IMAP_ERROR: ST_ERROR_INVALID_PARAMETER (a descriptor that is not open),
 * ST_ERROR_CONNECTION_CLOSED (the handle was already unusable), ST_ERROR_NETWORK_ERROR
 * (reading nInput or writing nOutput failed otherwise), or the transport's error (TLS,
 * SSH, proxy). Either way the IMAP conversation now belongs to the caller, so the
 * handle is spent: later calls fail with ST_ERROR_CONNECTION_CLOSED, and
 * ImapDisconnect() closes it without LOGOUT. */
INT     ImapRelay(HCLIENT hClient, INT nInput, INT nOutput, UINT nTimeout,
                  LPIMAPRELAYINFO lpInfo);
/** Extension: the IMAP state of a connected handle: IMAP_STATE_NOT_AUTHENTICATED,
 * IMAP_STATE_AUTHENTICATED (after ImapLogin() or a PREAUTH greeting), IMAP_STATE_SELECTED
 * or IMAP_STATE_LOGOUT (after ImapRelay(), or once the server said BYE); IMAP_ERROR for a
 * handle that is not usable. A caller handing the session on (ImapRelay()) tells its
 * client from this whether to greet with PREAUTH or OK. No I/O. */
INT     ImapGetState(HCLIENT hClient);
#define IMAP_STATE_NOT_AUTHENTICATED 0  /**< log in first */
#define IMAP_STATE_AUTHENTICATED     1  /**< logged in, or greeted with PREAUTH */
#define IMAP_STATE_SELECTED          2  /**< a mailbox is selected */
#define IMAP_STATE_LOGOUT            3  /**< the session is over (or handed on) */
/** Extension: the mechanism the successful ImapLogin() used (IMAP_AUTH_SCRAM_SHA256,
 * IMAP_AUTH_PLAIN...), never IMAP_AUTH_DEFAULT: with DEFAULT it is the one the library
 * chose (or fell back to). IMAP_ERROR with ST_ERROR_NOT_AUTHENTICATED when no ImapLogin()
 * succeeded on the handle (not yet, or the server greeted with PREAUTH). No I/O. */
INT     ImapGetAuthType(HCLIENT hClient);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

/* ---- Extension: connects driven by the caller's own event loop ------------------ */
/** @page own_loop Connects driven by the caller's own event loop
 *
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
/** One descriptor for the caller's loop to watch (ImapConnectSockets()). */
typedef struct _IMAPSOCKET {
    INT   nSocket;                   /**< a descriptor to watch */
    DWORD dwEvents;                  /**< IMAP_SOCKET_READ and/or IMAP_SOCKET_WRITE */
} IMAPSOCKET, /**< see struct _IMAPSOCKET */
  *LPIMAPSOCKET; /**< a pointer to IMAPSOCKET */

#define IMAP_SOCKET_READ         0x1u  /**< watch for (or it is ready for) reading */
#define IMAP_SOCKET_WRITE        0x2u  /**< watch for (or it is ready for) writing */
#define IMAP_SOCKET_TIMEOUT      (-1)  /**< ImapConnectAction: no socket, the time ran out */
#define IMAP_CONNECT_PENDING     1     /**< ImapConnectAction: not done; watch again */
#define IMAP_CONNECT_SOCKETS_MAX 8     /**< a set never holds more */

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif
/** Extension: starts a connect that the caller's own loop drives (see @ref own_loop);
 *  no I/O yet. Returns the handle or INVALID_CLIENT. */
HCLIENT ImapConnectStart(const IMAPCONNECTINFO *lpInfo);
/** The sockets to watch now (the count, or IMAP_ERROR; ST_ERROR_BUFFER_TOO_SMALL when
 * nMaxSockets is too small), and in *lpnTimeoutMs the milliseconds until
 * ImapConnectAction(h, IMAP_SOCKET_TIMEOUT, 0) is due (-1: never, the connect ended). */
INT     ImapConnectSockets(HCLIENT hClient, LPIMAPSOCKET lpSockets, INT nMaxSockets,
                           INT *lpnTimeoutMs);
/** One step after nSocket was ready for dwEvents (IMAP_SOCKET_* bits): 0 connected,
 * IMAP_CONNECT_PENDING, or IMAP_ERROR with the connect's ST_ERROR_*. */
INT     ImapConnectAction(HCLIENT hClient, INT nSocket, DWORD dwEvents);
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* IMAPWIRE_IMAPWIRE_H */
