/* client.c: life and death of a connection object: allocation, a bounded polite
 * LOGOUT, orderly layer shutdown, and freeing every byte it owned. */
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "../runtime/loop.h"
#include "../../security/tls_policy.h"
#include "../../transports/forward.h"

iw_client *iw_client_new(void)
{
    iw_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->io.lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (pthread_mutex_init(&c->sess.capa_lock, NULL) != 0) {
        pthread_mutex_destroy(&c->io.lock);
        free(c);
        return NULL;
    }
    iw_reader_init(&c->io.reader);
    return c;
}

int iw_client_break(iw_client *c, int rc)
{
    c->io.broken = 1;
    return rc;
}

static int iw_logout_step(iw_client *c, void *arg, unsigned *want)
{
    return iw_cmd_step(c, arg, want);
}

/* LOGOUT and wait at most IW_LOGOUT_WAIT_MS (or the timeout if shorter); then close.
 * On the loop thread (a disconnect from inside an event) nothing may wait: LOGOUT goes
 * out if the socket takes it at once, and the answer is not waited for. */
void iw_client_close(iw_client *c, int polite)
{
    if (c->io.top != NULL && polite && !c->io.broken && c->sess.state != IW_LOGOUT) {
        iw_cmd cmd;
        int64_t wait = c->cfg.timeout_ms < IW_LOGOUT_WAIT_MS ? c->cfg.timeout_ms
                                                             : IW_LOGOUT_WAIT_MS;
        int64_t deadline = iw_now_ms() + wait;
        unsigned want = 0;
        memset(&cmd, 0, sizeof cmd);
        if (iw_cmd_start(c, &cmd, "LOGOUT", 6, NULL, 0, 0, NULL) == 0) {
            if (iw_loop_is_current())
                iw_flush(c, &want);
            else
                iw_drive(c, iw_logout_step, &cmd, &deadline);
        }
        iw_cmd_clear(&cmd);
        c->sess.state = IW_LOGOUT;
    }
    if (c->io.top != NULL) {
        int done = 0;
        /* One non-blocking attempt: close_notify and friends are courtesy, not duty. */
        iw_layer_shutdown(c->io.top, &done);
        iw_layer_free_chain(c->io.top);
        c->io.top = NULL;
    }
}

IMAPERRORINFO *iw_ei(IMAPERRORINFO **slot)
{
    static _Thread_local IMAPERRORINFO scratch;
    if (*slot == NULL)
        *slot = calloc(1, sizeof **slot);
    if (*slot == NULL) {
        memset(&scratch, 0, sizeof scratch);
        return &scratch;
    }
    return *slot;
}

void iw_ei_drop(IMAPERRORINFO **slot)
{
    free(*slot);
    *slot = NULL;
}

void iw_ei_keep_work(iw_client *c)
{
    iw_ei_drop(&c->rec.ei);
    c->rec.ei = c->rec.ei_work;
    c->rec.ei_work = NULL;
}

void iw_client_rest(iw_client *c)
{
    iw_reader_rest(&c->io.reader);
    if (c->io.top != NULL && iw_reader_buffered(&c->io.reader) == 0)
        iw_layer_query(c->io.top, IMAPWIRE_QUERY_REST, NULL);
}

void iw_client_free(iw_client *c)
{
    if (c != NULL) {
        iw_ei_drop(&c->rec.ei);
        iw_ei_drop(&c->rec.ei_work);
        iw_ei_drop(&c->rec.ei_party);
    }
    if (c == NULL)
        return;
    iw_client_close(c, 0);
    iw_own_free(c);
    iw_connect_cmd_free(c);
    iw_reader_free(&c->io.reader);
    if (c->io.out != NULL) {
        iw_wipe(c->io.out, c->io.out_cap);
        free(c->io.out);
    }
    free(c->sess.capa);
    free(c->cfg.host);
    free(c->cfg.local_address);
    free(c->cfg.dns_servers);
    iw_free_secret(c->cfg.transport);  /* "socks5:user:password@..." */
    free(c->cfg.client_name);
    free(c->cfg.client_version);
    /* after the chain: the forward's bridge must not outlive its client side */
    iw_forward_close(c->io.forward);
    iw_creds_free(c->cfg.creds);
    iw_tls_use_free(c->cfg.tls);                  /* its layer went with the chain */
    pthread_mutex_destroy(&c->io.lock);
    pthread_mutex_destroy(&c->sess.capa_lock);
    free(c);
}
