/* ssh_teardown.c: the end of an SSH session (disconnect, libssh2's free, what it left) and
 * the channel closes the loop thread could not finish, retried by the session's next driver. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include "../core/runtime/loop.h"
#include "ssh_internal.h"

void ssh_session_free(ssh_session *s)
{
    /* The loop thread never waits for a peer, nor does anyone for a server that left a
     * close unanswered: one polite try, then the socket goes. */
    int i, tries = iw_loop_is_current() || s->unanswered ? 0 : SSH_CLOSE_TRIES;
    /* The agent handle lives inside the session's memory: it goes first. */
    if (s->agent != NULL) {
        libssh2_agent_disconnect(s->agent);
        libssh2_agent_free(s->agent);
    }
    if (s->s != NULL) {
        if (s->state == S_READY) {
            for (i = 0; libssh2_session_disconnect(s->s, "imapwire: done") == LIBSSH2_ERROR_EAGAIN &&
                        i < tries;
                 i++)
                ssh_wait(s, SSH_CLOSE_WAIT_MS);
        }
        /* Freeing must finish, or the session's memory stays behind: once the socket is
         * dead (closed below) nothing can block any more. */
        for (i = 0; i < tries && libssh2_session_free(s->s) == LIBSSH2_ERROR_EAGAIN; i++)
            ssh_wait(s, SSH_CLOSE_WAIT_MS);
        if (i == tries) {
            iw_layer_free_chain(s->tcp);
            s->tcp = NULL;
            s->state = S_DEAD;
            while (libssh2_session_free(s->s) == LIBSSH2_ERROR_EAGAIN && ++i < 4 * SSH_CLOSE_TRIES)
                ;
        }
    }
    /* the goodbye may still be held: one try, the socket closes right after */
    if (s->tcp != NULL && s->state != S_DEAD)
        (void)ssh_tx_flush(s);
    free(s->tx);
    /* what libssh2 forgot to free (a key exchange cut short) */
    while (s->blocks != NULL)
        ssh_mem_drop(s, s->blocks);
    if (s->tcp != NULL)
        iw_layer_free_chain(s->tcp);
    if (s->dummy_fd >= 0)
        close(s->dummy_fd);
    free(s->host);
    free(s->user);
    iw_free_secret(s->key);
    iw_free_secret(s->password);
    iw_kh_files_clear(&s->kh);
    free(s->methods);
    free(s->local_address);
    free(s->dns_servers);
    free(s->closing);              /* the channels themselves went with the session */
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Retries the closes the loop thread left behind; under s->lock, session ready. */
void ssh_closing_step(ssh_session *s)
{
    size_t i = 0;
    while (i < s->nclosing) {
        if (libssh2_channel_free(s->closing[i]) == LIBSSH2_ERROR_EAGAIN) {
            i++;
            continue;
        }
        s->closing[i] = s->closing[--s->nclosing];
    }
}

/* A channel whose close the server has not answered yet: whoever drives the session next
 * retries it, and the session's end frees what is left (under lock). */
void ssh_close_later(ssh_session *s, LIBSSH2_CHANNEL *ch)
{
    if (s->nclosing == s->capclosing) {
        size_t cap = s->capclosing ? 2 * s->capclosing : 8;
        LIBSSH2_CHANNEL **n = realloc(s->closing, cap * sizeof *n);
        if (n == NULL)
            return;                /* the session's end frees it */
        s->closing = n;
        s->capclosing = cap;
    }
    s->closing[s->nclosing++] = ch;
}
