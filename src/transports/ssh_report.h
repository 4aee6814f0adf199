/* ssh_report.h: what the SSH layer says about a hop that failed, in the connect's
 * error info (ImapGetErrorInfo): the hop, its file, the key it presented. */
#ifndef IW_SSH_REPORT_H
#define IW_SSH_REPORT_H

#include "../core/transport/chain.h"

/* The hop that failed with error, as the SSH layer knows it. */
typedef struct iw_ssh_failure {
    int                  error;       /* ST_ERROR_* */
    unsigned             hop;         /* 1-based in the whole route (a proxy below counts) */
    const char          *host;        /* the hop as named in the route */
    unsigned             port;
    const char          *user;
    const char          *fingerprint; /* "SHA256:..." of the key it presented, or "" */
    const char          *known_hosts; /* the file its key was checked against */
    const char          *key;         /* the key file given, or NULL */
    const IMAPERRORINFO *carrier;     /* what the transport under the first hop (a proxy)
                                         reported, when that is what failed; or NULL */
} iw_ssh_failure;

/* Reports f through l's host (host->report): stage SSH, or FILE for a key or known_hosts
 * file that cannot be read or is not a key, or the carrier's own report. */
void iw_ssh_report(imapwire_layer *l, const iw_ssh_failure *f);

#endif /* IW_SSH_REPORT_H */
