/* ssh_report.h: what the SSH layer says about a hop that failed, in the connect's
 * error info (ImapGetErrorInfo): the hop, its file, the key it presented. */
#ifndef IW_SSH_REPORT_H
#define IW_SSH_REPORT_H

#include "../core/transport/chain.h"

/* Where the set-up of the route waits (f->stalled): what the hop has not done yet. */
enum { IW_SSH_STALL_NONE, IW_SSH_STALL_REACH, IW_SSH_STALL_HANDSHAKE, IW_SSH_STALL_AUTH,
       IW_SSH_STALL_CHANNEL };

/* The hop that failed with error, as the SSH layer knows it. */
typedef struct iw_ssh_failure {
    int                  error;       /* ST_ERROR_*, or 0: the hop the connect waits for */
    unsigned             hop;         /* 1-based in the whole route (a proxy below counts) */
    const char          *host;        /* the hop as named in the route */
    unsigned             port;
    const char          *user;
    const char          *fingerprint; /* "SHA256:..." of the key it presented, or "" */
    const char          *known_hosts; /* the file its key was checked against */
    const char          *key;         /* the key file given, or NULL */
    const IMAPERRORINFO *carrier;     /* what the transport under the first hop (a proxy)
                                         reported, when that is what failed or what a
                                         timeout waited for; or NULL */
    int                  stalled;     /* IW_SSH_STALL_*: the step waited for (error 0 or a
                                         timeout) */
    unsigned             timeout_s;   /* the wait that ran out */
    const char          *before;      /* "host:port" of the hop before (behind a jump) */
    const char          *said;        /* the hop before's words when its channel to this
                                         hop failed (libssh2's text of the reason), or NULL */
} iw_ssh_failure;

/* Reports f through l's host (host->report): stage SSH, or FILE for a key or known_hosts
 * file that cannot be read or is not a key, or the carrier's own report. With error 0,
 * the party the connect waits for (host->report's "no failure" form). */
void iw_ssh_report(imapwire_layer *l, const iw_ssh_failure *f);

#endif /* IW_SSH_REPORT_H */
