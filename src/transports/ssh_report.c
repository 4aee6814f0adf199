/* ssh_report.c: turns an SSH hop's failure into the connect's error info: which hop,
 * which file, which key it presented, in words a user can act on. No secret goes in. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "ssh_report.h"

/* Whether path starts like a private key file OpenSSH or OpenSSL writes (PEM). */
static int iw_looks_private_key(const char *path)
{
    char head[128] = "";
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
        return 0;
    n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = '\0';
    return strncmp(head, "-----BEGIN ", 11) == 0 && strstr(head, "PRIVATE KEY-----") != NULL;
}

/* The name known_hosts files use for the hop: "host", or "[host]:port" off port 22. */
static void iw_known_name(char *out, size_t size, const char *host, unsigned port)
{
    if (port == 22)
        snprintf(out, size, "%s", host);
    else
        snprintf(out, size, "[%s]:%u", host, port);
}

/* What a stalled hop has not done yet: whom the connect waits for (the core appends how
 * long it waited when its timeout ends the wait). */
static void iw_ssh_stall_words(char *out, size_t size, const iw_ssh_failure *f,
                               const char *peer)
{
    switch (f->stalled) {
    case IW_SSH_STALL_REACH:
        if (f->before != NULL)
            snprintf(out, size, "SSH host %s (hop %u) opened no channel to SSH host %s "
                     "(hop %u)", f->before, f->hop - 1, peer, f->hop);
        else
            snprintf(out, size, "no answer from SSH host %s (hop %u): nothing came back to "
                     "the connection attempt", peer, f->hop);
        break;
    case IW_SSH_STALL_HANDSHAKE:
        snprintf(out, size, "SSH host %s (hop %u) accepted the connection and did not "
                 "complete the SSH handshake (no banner or no key exchange)", peer, f->hop);
        break;
    case IW_SSH_STALL_AUTH:
        snprintf(out, size, "SSH host %s (hop %u) did not answer the authentication", peer,
                 f->hop);
        break;
    default:
        snprintf(out, size, "SSH host %s (hop %u) opened no channel onwards", peer, f->hop);
        break;
    }
}

/* An unknown or changed host key: the key and the file it was checked against go in the
 * report; a file that cannot be read is the party instead (*file, r->file left unset). */
static void iw_hostkey_detail(const iw_ssh_failure *f, const char *peer,
                              imapwire_error_report *r, const char **file, char *detail,
                              size_t size)
{
    char entry[300];
    int e;

    iw_known_name(entry, sizeof entry, f->host, f->port);
    r->fingerprint = f->fingerprint;
    *file = f->known_hosts;
    if (*file != NULL && access(*file, R_OK) != 0) {
        e = errno;
        snprintf(detail, size, "the known_hosts file %s cannot be read: %s (SSH "
                 "host %s presented %s)", *file, strerror(e), entry, f->fingerprint);
        return;
    }
    if (f->error == ST_ERROR_SSH_HOST_KEY_UNKNOWN)
        snprintf(detail, size, "SSH host %s (hop %u) presented %s, a key that "
                 "%s has no entry %s for", peer, f->hop, f->fingerprint,
                 *file ? *file : "known_hosts", entry);
    else
        snprintf(detail, size, "SSH host %s (hop %u) presented %s, which differs "
                 "from the key for %s in %s: the key changed, or someone is in between",
                 peer, f->hop, f->fingerprint, entry, *file ? *file : "known_hosts");
    r->file = *file;
}

/* A refused authentication: the key file when it is what to fix, else the account. */
static const char *iw_auth_detail(const iw_ssh_failure *f, const char *peer, char *detail,
                                  size_t size)
{
    int e;

    if (f->key != NULL && access(f->key, R_OK) != 0) {
        e = errno;
        snprintf(detail, size, "the SSH key file %s cannot be read: %s", f->key, strerror(e));
        return f->key;
    }
    if (f->key != NULL && !iw_looks_private_key(f->key)) {
        snprintf(detail, size, "the SSH key file %s holds no private key", f->key);
        return f->key;
    }
    snprintf(detail, size, "SSH host %s (hop %u) refused the authentication of user %s",
             peer, f->hop, f->user ? f->user : "?");
    return NULL;
}

/* The proxy under the first SSH hop failed, or is what a timeout waited for: it is the
 * party, in its own words. 1 when it reported. */
static int iw_carrier_report(imapwire_layer *l, const iw_ssh_failure *f,
                             imapwire_error_report *r, char *detail, size_t size)
{
    if (f->carrier == NULL || (f->carrier->dwError == 0 &&
                               (f->stalled != IW_SSH_STALL_REACH ||
                                f->carrier->dwStage == IMAP_STAGE_NONE)))
        return 0;
    r->stage = f->carrier->dwStage;
    r->hop = f->carrier->nHop;
    r->peer = f->carrier->szPeer;
    r->detail = f->carrier->szDetail;
    if (f->carrier->dwError == 0 && f->error != 0) {
        if (f->carrier->szDetail[0] != '\0')
            snprintf(detail, size, "%s in %u s", f->carrier->szDetail, f->timeout_s);
        else
            snprintf(detail, size, "no answer from proxy %s in %u s: nothing came back to the "
                     "connection attempt", f->carrier->szPeer, f->timeout_s);
        r->detail = detail;
    } else if (f->carrier->dwError == 0 && f->carrier->szDetail[0] == '\0') {
        r->detail = NULL;
    }
    l->host->report(l, r);
    return 1;
}

void iw_ssh_report(imapwire_layer *l, const iw_ssh_failure *f)
{
    imapwire_error_report r;
    char peer[300], detail[1400];  /* cut to the record's 512 */
    const char *file = NULL;

    if (!IMAPWIRE_HOST_HAS(l->host, report) || l->host->report == NULL)
        return;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.error = f->error;
    if (iw_carrier_report(l, f, &r, detail, sizeof detail))
        return;
    iw_errinfo_peer(peer, sizeof peer, f->host, f->port);
    r.stage = IMAP_STAGE_SSH;
    r.hop = f->hop;
    r.peer = peer;
    if (f->stalled != IW_SSH_STALL_NONE) {
        /* error 0: whom the connect waits for; a timeout of the SSH layer's own: it ended */
        size_t n;
        iw_ssh_stall_words(detail, sizeof detail, f, peer);
        n = strlen(detail);
        if (f->error != 0)
            snprintf(detail + n, sizeof detail - n, " in %u s", f->timeout_s);
        r.detail = detail;
        l->host->report(l, &r);
        return;
    }
    switch (f->error) {
    case ST_ERROR_SSH_HOST_KEY_UNKNOWN:
    case ST_ERROR_SSH_HOST_KEY_MISMATCH:
        iw_hostkey_detail(f, peer, &r, &file, detail, sizeof detail);
        break;
    case ST_ERROR_SSH_AUTH_FAILED:
        file = iw_auth_detail(f, peer, detail, sizeof detail);
        break;
    case ST_ERROR_CONNECTION_REFUSED:
        snprintf(detail, sizeof detail, "SSH host %s (hop %u) refused the connection: nothing "
                 "listens there", peer, f->hop);
        break;
    case ST_ERROR_HOST_NOT_FOUND:
        snprintf(detail, sizeof detail, "the SSH host name %s (hop %u) does not resolve",
                 f->host, f->hop);
        break;
    case ST_ERROR_SSH_CHANNEL_FAILED:
        if (f->before != NULL)
            snprintf(detail, sizeof detail, "SSH host %s (hop %u) could not reach SSH host %s "
                     "(hop %u): %s", f->before, f->hop - 1, peer, f->hop,
                     f->said != NULL && f->said[0] != '\0' ? f->said : "the channel was refused");
        else
            snprintf(detail, sizeof detail, "%s %s (hop %u) was refused", f->hop > 1
                     ? "the channel from the hop before to SSH host" : "a channel from SSH host",
                     peer, f->hop);
        break;
    default:
        snprintf(detail, sizeof detail, "SSH host %s (hop %u) failed: %s", peer, f->hop,
                 iw_error_text((DWORD)f->error) ? iw_error_text((DWORD)f->error) : "error");
        break;
    }
    if (file != NULL && r.file == NULL) {
        /* the file is what to fix; the hop that needed it stays named */
        r.stage = IMAP_STAGE_FILE;
        r.file = file;
    } else if (file != NULL) {
        r.file = file;
    }
    r.detail = detail;
    l->host->report(l, &r);
}
