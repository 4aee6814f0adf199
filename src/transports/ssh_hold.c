/* ssh_hold.c: an authenticated SSH session held without a channel (library-managed
 * forwards), driven to ready before anyone uses the forward. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include "ssh.h"
#include "ssh_internal.h"

/* ---- holding a session without a channel (library-managed forwards) ---- */

/* The set-up steps of a held session use a layer only for its traces and marks: one of
 * this type, which nothing else ever drives. */
static const imapwire_transport_type ssh_probe_type = {
    .abi_version = IMAPWIRE_TRANSPORT_ABI,
    .struct_size = sizeof(imapwire_transport_type),
    .name = "ssh-probe",
    .flags = IMAPWIRE_TRANSPORT_BOTTOM,
};

/* Gets or makes the session for core's tunnel credentials and drives it until it is
 * authenticated or deadline_ms passes: errors surface before anyone uses the forward. */
int iw_ssh_hold(const iw_ssh_params *p, const iw_layer_sink *sink, void *core,
                const imapwire_endpoint *ep, void **hold)
{
    ssh_session *s;
    imapwire_layer *probe = NULL;
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    int64_t deadline_ms = 0;
    int rc, n, phase = -1;

    *hold = NULL;
    rc = iw_ssh_hops_parse(p->host, p->user, p->port, hops, IW_SSH_MAX_HOPS, &n);
    if (rc != 0)
        return rc;
    rc = iw_layer_new_internal(&ssh_probe_type, ep, sink, core, NULL, &probe);
    if (rc != 0)
        return rc;
    rc = ssh_session_get(p, &hops[n - 1], ep, &s);
    if (rc != 0) {
        iw_layer_free_chain(probe);
        return rc;
    }
    /* Each phase has ep->timeout_ms; 20 ms waits bound the rounds well beyond that. */
    for (;;) {
        pthread_mutex_lock(&s->lock);
        rc = ssh_session_step(s, probe);
        if (rc != 0 && rc != 1) {
            ssh_trace_failed_hop(s, probe, rc);
            ssh_explain_command(s, probe, rc);
        }
        if (rc == 0 && ssh_session_phase(s) != phase) {
            phase = ssh_session_phase(s);
            deadline_ms = iw_now_ms() + ep->timeout_ms;
        }
        ssh_unlock(s, NULL);      /* its reads may be news for channels */
        if (rc != 0)
            break;
        if (iw_now_ms() >= deadline_ms) {
            rc = ST_ERROR_OPERATION_TIMEOUT;
            pthread_mutex_lock(&s->lock);
            ssh_trace_failed_hop(s, probe, rc);
            pthread_mutex_unlock(&s->lock);
            break;
        }
        pthread_mutex_lock(&s->lock);
        if (s->state == S_LOWER) {
            imapwire_pollset ps = {0};
            struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
            nfds_t n;
            iw_layer_pollset(s->tcp, IMAPWIRE_WANT_WRITE, &ps);
            n = iw_pollset_to_pollfd(&ps, pfd);
            pthread_mutex_unlock(&s->lock);
            poll(pfd, n, 20);
        } else {
            /* never sleep holding the lock: other connects share this session */
            struct pollfd pfd[IMAPWIRE_POLLSET_MAX];
            nfds_t n = ssh_wait_fds(s, pfd);
            pthread_mutex_unlock(&s->lock);
            poll(pfd, n, 20);
        }
    }
    iw_layer_free_chain(probe);
    if (rc != 1) {
        ssh_session_release(s);
        return rc;
    }
    *hold = s;
    return 0;
}

void iw_ssh_unhold(void *hold)
{
    if (hold != NULL)
        ssh_session_release(hold);
}
