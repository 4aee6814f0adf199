/* connect.c: the connect state machine: one non-blocking step function that takes a
 * client from nothing to a ready IMAP session (chain up, greeting, capabilities, ID). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "tokenizer.h"
#include "../../security/tls_policy.h"
#include "../../security/ssh_policy.h"
#include "../../transports/forward.h"

enum { CM_IDLE, CM_CHAIN, CM_TLS_START, CM_TLS, CM_GREETING, CM_CAPA, CM_AFTER_CAPA,
       CM_STARTTLS, CM_ID, CM_READY };

static void iw_phase(iw_client *c, int state)
{
    int64_t now = iw_now_ms();
    c->cm.state = state;
    c->cm.phase_deadline_ms = now + c->cfg.timeout_ms;
    c->cm.deadline_ms = c->cm.phase_deadline_ms < c->cm.total_deadline_ms
                            ? c->cm.phase_deadline_ms : c->cm.total_deadline_ms;
}

void iw_client_note(iw_client *c, const char *text)
{
    iw_trace_line(c, IMAP_TRACE_INFO, text, strlen(text));
}

static void iw_sink_note(void *core, const char *text)
{
    iw_client_note(core, text);
}

static int iw_sink_traces(void *core)
{
    return ((iw_client *)core)->cfg.trace != NULL;
}

static void iw_sink_mark(void *core, int mark)
{
    iw_client *c = core;
    if (mark == IMAPWIRE_MARK_RESOLVED && c->cm.t_resolved_us == 0)
        c->cm.t_resolved_us = iw_now_us();
    if (mark == IMAPWIRE_MARK_CONNECTED && c->cm.t_connected_us == 0)
        c->cm.t_connected_us = iw_now_us();
}

static void iw_sink_report(void *core, const imapwire_error_report *r)
{
    iw_client *c = core;
    if (r->error == 0) {
        iw_ei_drop(&c->rec.ei_party);
        iw_errinfo_add(iw_ei(&c->rec.ei_party), 0, r->stage, r->hop, r->peer, NULL, NULL,
                       r->detail);
        return;
    }
    iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)r->error, r->stage, r->hop, r->peer, r->file,
                   r->fingerprint, r->detail);
}

const iw_layer_sink iw_client_sink = {
    .note = iw_sink_note,
    .mark = iw_sink_mark,
    .traces = iw_sink_traces,
    .report = iw_sink_report,
};

/* An SSH phase began inside the chain: it has a whole nTimeout (the total ceiling
 * still holds). Forward bridges use a core that is not connecting: nothing to move. */
static void iw_core_ssh_phase(void *core)
{
    iw_client *c = core;
    if (c->cm.state == CM_CHAIN)
        iw_phase(c, CM_CHAIN);
}

/* The lowest layer: the caller's transport ("name" or "name:args") or TCP, a filter type
 * stacked over TCP. With an SSH tunnel, the SSH layer is the bottom and that transport
 * carries its hop to the SSH server instead (its parameters hand it on). */
static int iw_build_chain(iw_client *c)
{
    char name[IW_TYPE_NAME_MAX + 1];
    const char *args = NULL;
    imapwire_layer *top = NULL;
    unsigned flags = 0;
    int rc;

    /* A private forward's socket pair is the bottom: nothing else carries that connect. */
    if (c->io.forward != NULL) {
        rc = iw_forward_client_layer(c->io.forward, &c->cfg.ep, &iw_client_sink, c, &top);
        if (rc == 0)
            c->io.top = top;
        return rc;
    }
    if ((c->cfg.options & IMAP_OPTION_TUNNEL) && c->cfg.creds != NULL &&
        c->cfg.creds->tunnel_host != NULL) {
        /* The hop's type is checked (and its plugin loaded) here, before the SSH layer
         * makes a session: a bad name fails this connect alone, with no session made. */
        if (c->cfg.transport != NULL && *c->cfg.transport != '\0' &&
            (rc = iw_transport_lookup(c->cfg.transport, name, &args, &flags)) != 0)
            return rc;
        iw_ssh_params p;
        /* read while the chain is built, before the core drops the transport text */
        rc = iw_ssh_params_from(c->cfg.creds, c->cfg.transport, iw_core_ssh_phase, &p);
        if (rc != 0)
            return rc;
        rc = iw_layer_new_params("ssh", NULL, &p, &c->cfg.ep, &iw_client_sink, c, NULL, &top);
    } else {
        rc = iw_layer_new_spec(c->cfg.transport, &c->cfg.ep, &iw_client_sink, c, &top);
    }
    if (rc == 0)
        c->io.top = top;
    return rc;
}

int iw_connect_begin(iw_client *c)
{
    int rc;
    c->cm.t_start_us = iw_now_us();
    c->cm.total_deadline_ms = c->cm.t_start_us / 1000 +
                              (int64_t)c->cfg.timeout_ms * IW_CONNECT_CEILING;
    iw_phase(c, CM_CHAIN);
    rc = iw_build_chain(c);
    return rc;
}

void iw_connect_cmd_free(iw_client *c)
{
    if (c->cm.cmd != NULL) {
        iw_cmd_clear(c->cm.cmd);
        free(c->cm.cmd);
        c->cm.cmd = NULL;
    }
}

static int iw_connect_cmd(iw_client *c)
{
    if (c->cm.cmd == NULL && (c->cm.cmd = calloc(1, sizeof *c->cm.cmd)) == NULL)
        return ST_ERROR_OUT_OF_MEMORY;
    return 0;
}

static int iw_start_simple(iw_client *c, const char *text)
{
    int rc = iw_connect_cmd(c);
    return rc ? rc : iw_cmd_start(c, c->cm.cmd, text, strlen(text), NULL, 0, 0, NULL);
}

static int iw_start_id(iw_client *c)
{
    iw_sb sb = {0};
    int rc;
    iw_sb_str(&sb, "ID (\"name\" ");
    iw_sb_quoted(&sb, c->cfg.client_name ? c->cfg.client_name : "imapwire");
    iw_sb_str(&sb, " \"version\" ");
    iw_sb_quoted(&sb, c->cfg.client_version ? c->cfg.client_version : IMAPWIRE_VERSION_STRING);
    iw_sb_str(&sb, ")");
    rc = sb.err ? sb.err : iw_connect_cmd(c);
    if (rc == 0)
        rc = iw_cmd_start(c, c->cm.cmd, sb.p, sb.len, NULL, 0, 0, NULL);
    iw_sb_free(&sb);
    return rc;
}

/* "OK", "PREAUTH" or "BYE" and what follows: the only valid greetings (RFC 3501 7.1). */
static int iw_greeting(iw_client *c, const iw_response *r)
{
    int rc;
    if (r->kind != IW_RESP_UNTAGGED)
        return ST_ERROR_INVALID_RESPONSE;
    switch (iw_resp_status(r)) {
    case IW_STATUS_WORD_BYE:
        return ST_ERROR_SERVER_REJECTED;
    case IW_STATUS_WORD_PREAUTH:
        c->sess.state = IW_AUTH;
        break;
    case IW_STATUS_WORD_OK:
        break;
    default:
        return ST_ERROR_INVALID_RESPONSE;
    }
    if (r->literals > 0)
        return ST_ERROR_INVALID_RESPONSE;
    rc = iw_handle_common(c, r);
    return rc;
}

/* The phases up to now: at the end of a connect, or at its failure, where the phase
 * that never finished runs up to now and the ones after it are 0. */
static void iw_connect_timings(iw_client *c, int64_t now)
{
    int64_t t0 = c->cm.t_start_us;
    int64_t tr = c->cm.t_resolved_us ? c->cm.t_resolved_us : t0;
    int64_t tchain = c->cm.t_chain_us ? c->cm.t_chain_us : now;
    int64_t tsec = c->cm.t_secure_us;
    /* With a tunnel or proxy, the hop to it is the connect and the rest of the chain (SSH
     * handshake, auth, channel) is the tunnel. */
    int64_t tc = c->cm.t_connected_us ? c->cm.t_connected_us : tchain;
    if (tsec == 0 && c->cm.t_secure_start_us != 0 && c->cm.state == CM_TLS)
        tsec = now - c->cm.t_secure_start_us;       /* the handshake that stalled */
    if (c->cm.t_resolved_us == 0 && c->cm.t_chain_us == 0 && c->cm.t_connected_us == 0)
        tr = now;                                    /* still resolving, as far as we know */
    memset(&c->rec.timings, 0, sizeof c->rec.timings);
    c->rec.timings.dwSize = sizeof c->rec.timings;
    c->rec.timings.dwResolve = (DWORD)(tr - t0);
    c->rec.timings.dwConnect = (DWORD)(tc > tr ? tc - tr : 0);
    c->rec.timings.dwTunnel = (DWORD)(tchain - tc);
    c->rec.timings.dwSecure = (DWORD)tsec;
    if (c->cm.t_chain_us != 0 && now - c->cm.t_chain_us > tsec)
        c->rec.timings.dwGreeting = (DWORD)(now - c->cm.t_chain_us - tsec);
    c->rec.timings.dwTotal = (DWORD)(now - t0);
}

/* The first bytes of a TLS record (an alert or a handshake, version 3.x): what a port
 * that wants TLS at once may send to a client that speaks in clear. */
static int iw_looks_tls(const iw_client *c)
{
    const unsigned char *b = (const unsigned char *)c->io.reader.buf;
    return c->io.reader.len >= 2 && b != NULL && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03;
}

/* The stage, party and plain words of a connect that failed in the machine's state,
 * for whatever the layers did not say themselves. */
static void iw_connect_describe(iw_client *c, int rc)
{
    char peer[300], detail[512];
    DWORD stage;
    unsigned hop = 0;
    unsigned secs = c->cfg.timeout_ms / 1000u;
    const char *text = iw_error_text((DWORD)rc);

    iw_errinfo_peer(peer, sizeof peer, c->cfg.ep.host, c->cfg.ep.port);
    detail[0] = '\0';
    stage = iw_stage_of((DWORD)rc);
    if (stage == IMAP_STAGE_ARGUMENTS || stage == IMAP_STAGE_FILE) {
        /* refused before any byte left: no party to name */
        iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)rc, stage, 0, NULL, NULL, NULL, NULL);
        return;
    }
    switch (c->cm.state) {
    case CM_CHAIN:
        if (c->cfg.creds != NULL && c->cfg.creds->tunnel_host != NULL &&
            (c->cfg.options & IMAP_OPTION_TUNNEL)) {
            /* the SSH layer names its hop; this is only what is known without it */
            stage = IMAP_STAGE_SSH;
            iw_errinfo_peer(peer, sizeof peer, c->cfg.creds->tunnel_host,
                            c->cfg.creds->tunnel_port ? c->cfg.creds->tunnel_port : 22);
            /* one SSH host is hop 1; in a chain, which hop stalled is not known here */
            if (strchr(c->cfg.creds->tunnel_host, ',') == NULL)
                hop = 1;
        } else {
            stage = rc == ST_ERROR_HOST_NOT_FOUND ? IMAP_STAGE_RESOLVE : IMAP_STAGE_TCP;
        }
        if (c->rec.ei_party != NULL && c->rec.ei_party->dwStage != IMAP_STAGE_NONE) {
            /* a layer said whom it waits for (a proxy, an SSH hop): that party is silent */
            stage = c->rec.ei_party->dwStage;
            hop = c->rec.ei_party->nHop;
            iw_strlcpy(peer, c->rec.ei_party->szPeer, sizeof peer);
        }
        if (rc == ST_ERROR_OPERATION_TIMEOUT && c->rec.ei_party != NULL &&
            c->rec.ei_party->szDetail[0] != '\0')
            /* the party said how far it got (a proxy that accepted and is silent) */
            snprintf(detail, sizeof detail, "%.480s in %u s", c->rec.ei_party->szDetail, secs);
        else if (rc == ST_ERROR_OPERATION_TIMEOUT && stage != IMAP_STAGE_RESOLVE)
            snprintf(detail, sizeof detail, "no answer from %s in %u s: nothing came back "
                     "to the connection attempt (a firewall dropping packets, or no route)",
                     peer, secs);
        else if (stage == IMAP_STAGE_RESOLVE)
            snprintf(detail, sizeof detail, "the name %s does not resolve", c->cfg.ep.host);
        else
            snprintf(detail, sizeof detail, "%s: %s", peer, text ? text : "failed");
        break;
    case CM_TLS_START:
    case CM_TLS:
        stage = IMAP_STAGE_TLS;
        snprintf(detail, sizeof detail, "TLS with %s: %s", peer, text ? text : "failed");
        break;
    default:
        stage = IMAP_STAGE_GREETING;
        if (c->cm.state == CM_GREETING && c->io.rx_bytes == 0 &&
            rc == ST_ERROR_OPERATION_TIMEOUT)
            snprintf(detail, sizeof detail, "connected to %s, but no greeting came in %u s%s",
                     peer, secs, c->cfg.ep.port == IMAP_PORT_SECURE && !c->sess.tls_up
                         ? "; port 993 expects TLS at once: use implicit TLS (imaps://)" : "");
        else if (c->cm.state == CM_GREETING && !c->sess.tls_up && iw_looks_tls(c))
            snprintf(detail, sizeof detail, "%s answered with TLS, not an IMAP greeting: "
                     "the port expects implicit TLS (imaps://)", peer);
        else if (c->cm.state == CM_STARTTLS || rc == ST_ERROR_SECURE_NOT_SUPPORTED)
            snprintf(detail, sizeof detail, "%s: %s", peer,
                     "STARTTLS is not offered or was refused");
        else
            snprintf(detail, sizeof detail, "%s: %s", peer, text ? text : "failed");
        break;
    }
    iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)rc, stage, hop, peer, NULL, NULL, detail);
}

int iw_connect_fail(iw_client *c, int rc)
{
    iw_connect_describe(c, rc);
    iw_ei_keep_work(c);
    iw_ei_drop(&c->rec.ei_party);
    iw_connect_timings(c, iw_now_us());
    return rc;
}

int iw_client_fail(iw_client *c, int rc, DWORD stage)
{
    char peer[300];
    DWORD s = iw_stage_of((DWORD)rc);
    /* a misuse is the arguments' fault whatever the call; the rest belongs to the call */
    if (s != IMAP_STAGE_ARGUMENTS)
        s = stage;
    iw_errinfo_peer(peer, sizeof peer, c->cfg.ep.host, c->cfg.ep.port);
    iw_errinfo_add(iw_ei(&c->rec.ei_work), (DWORD)rc, s, 0,
                   s == IMAP_STAGE_ARGUMENTS ? NULL : peer, NULL, NULL, NULL);
    iw_ei_keep_work(c);
    iw_set_error_info(iw_ei(&c->rec.ei));
    return rc;
}

void iw_client_dropped(iw_client *c, int rc)
{
    char peer[300], detail[400];
    iw_errinfo_peer(peer, sizeof peer, c->cfg.ep.host, c->cfg.ep.port);
    snprintf(detail, sizeof detail, "%s closed the idle connection", peer);
    iw_ei_drop(&c->rec.ei);
    iw_errinfo_add(iw_ei(&c->rec.ei), (DWORD)rc, IMAP_STAGE_COMMAND, 0, peer, NULL, NULL, detail);
}

/* Each state function below returns 0 when the machine moved on (step again at once),
 * else what iw_connect_step returns: IMAPWIRE_AGAIN with *want set, or an error. Only
 * CM_READY ends a connect with 0, and the dispatcher handles it itself. */

/* A layer's connect (the chain, or TLS) that is not done yet: wait to read. */
static int iw_layer_wait(iw_client *c, unsigned *want, int *done)
{
    int rc = iw_layer_connect(c->io.top, done);
    if (rc == 0 && !*done) {
        *want = IMAPWIRE_WANT_READ;
        return IMAPWIRE_AGAIN;
    }
    return rc;
}

static int iw_chain_state(iw_client *c, unsigned *want)
{
    int done, rc = iw_layer_wait(c, want, &done);
    if (rc != 0)
        return rc;
    c->cm.t_chain_us = iw_now_us();
    if (c->cfg.options & IMAP_OPTION_SECURE_IMPLICIT) {
        c->cm.state = CM_TLS_START;
        return 0;
    }
    iw_phase(c, CM_GREETING);
    return 0;
}

/* CM_TLS_START: a TLS layer on top of the chain, for implicit TLS or after STARTTLS. */
static int iw_tls_start_state(iw_client *c)
{
    imapwire_layer *tls = NULL;
    int rc;
    if (c->cfg.tls == NULL)
        return ST_ERROR_INVALID_PARAMETER;
    rc = iw_layer_new_params("tls", NULL, iw_tls_use_params(c->cfg.tls), &c->cfg.ep,
                             &iw_client_sink, c, c->io.top, &tls);
    if (rc != 0)
        return rc;
    c->io.top = tls;
    if (c->cm.t_secure_start_us == 0)
        c->cm.t_secure_start_us = iw_now_us();
    iw_phase(c, CM_TLS);
    return 0;
}

static int iw_tls_state(iw_client *c, unsigned *want)
{
    int done, rc = iw_layer_wait(c, want, &done);
    if (rc != 0)
        return rc;
    c->sess.tls_up = 1;
    c->cm.t_secure_us = iw_now_us() - c->cm.t_secure_start_us;
    if (!(c->cfg.options & IMAP_OPTION_SECURE_EXPLICIT)) {
        iw_phase(c, CM_GREETING);
        return 0;
    }
    /* Checkpoint 4: what the server said in clear is forgotten and asked again. */
    iw_capa_store(c, NULL);
    rc = iw_start_simple(c, "CAPABILITY");
    if (rc != 0)
        return rc;
    iw_phase(c, CM_CAPA);
    return 0;
}

static int iw_greeting_state(iw_client *c, unsigned *want)
{
    iw_response r;
    int rc = iw_read_response(c, &r, want);
    if (rc != 0)
        return rc;
    rc = iw_greeting(c, &r);
    if (rc != 0)
        return rc;
    if (c->sess.capa != NULL) {
        c->cm.state = CM_AFTER_CAPA;
        return 0;
    }
    rc = iw_start_simple(c, "CAPABILITY");
    if (rc != 0)
        return rc;
    iw_phase(c, CM_CAPA);
    return 0;
}

static int iw_capa_state(iw_client *c, unsigned *want)
{
    int rc = iw_cmd_step(c, c->cm.cmd, want);
    if (rc != 0)
        return rc;
    if (c->cm.cmd->status != IW_STATUS_OK)
        return ST_ERROR_INVALID_RESPONSE;
    if (c->sess.capa == NULL && (rc = iw_capa_set(c, "", 0)) != 0)
        return rc;
    c->cm.state = CM_AFTER_CAPA;
    return 0;
}

/* CM_AFTER_CAPA: STARTTLS if security was asked for and is not up, else ID, else ready. */
static int iw_after_capa_state(iw_client *c)
{
    int rc;
    if ((c->cfg.options & IMAP_OPTION_SECURE_EXPLICIT) && !c->sess.tls_up) {
        /* Checkpoint 2: never go on in clear when security was asked for. */
        if (c->sess.state != IW_NOT_AUTH || !iw_capa_has(c, "STARTTLS"))
            return ST_ERROR_SECURE_NOT_SUPPORTED;
        rc = iw_start_simple(c, "STARTTLS");
        if (rc != 0)
            return rc;
        if (c->cm.t_secure_start_us == 0)
            c->cm.t_secure_start_us = iw_now_us();
        iw_phase(c, CM_STARTTLS);
        return 0;
    }
    if ((c->cfg.options & IMAP_OPTION_IDENTIFY) && iw_capa_has(c, "ID")) {
        rc = iw_start_id(c);
        if (rc != 0)
            return rc;
        iw_phase(c, CM_ID);
        return 0;
    }
    c->cm.state = CM_READY;
    return 0;
}

static int iw_starttls_state(iw_client *c, unsigned *want)
{
    int rc = iw_cmd_step(c, c->cm.cmd, want);
    if (rc != 0)
        return rc;
    if (c->cm.cmd->status != IW_STATUS_OK)
        return ST_ERROR_SECURE_NOT_SUPPORTED;
    /* Checkpoint 3: anything already received after the OK was sent before the
     * handshake by someone in the middle (CVE-2021-22947): never parse it. */
    if (iw_reader_buffered(&c->io.reader) > 0 || iw_layer_pending(c->io.top) > 0) {
        iw_client_note(c, "starttls: bytes after the OK before the handshake; refused");
        return ST_ERROR_INVALID_RESPONSE;
    }
    iw_reader_reset(&c->io.reader);
    iw_cmd_clear(c->cm.cmd);
    c->cm.state = CM_TLS_START;
    return 0;
}

static int iw_id_state(iw_client *c, unsigned *want)
{
    int rc = iw_cmd_step(c, c->cm.cmd, want);
    if (rc != 0)
        return rc;
    /* A server that dislikes our ID still serves us; RFC 2971 makes ID advisory. */
    c->cm.state = CM_READY;
    return 0;
}

static int iw_ready_state(iw_client *c)
{
    int64_t now;
    iw_connect_cmd_free(c);
    iw_ei_drop(&c->rec.ei_party);        /* for connects only */
    iw_client_rest(c);
    c->cm.t_ready_us = now = iw_now_us();
    iw_connect_timings(c, now);
    return 0;
}

int iw_connect_step(iw_client *c, void *arg, unsigned *want)
{
    int rc;

    IW_UNUSED(arg);
    for (;;) {
        switch (c->cm.state) {
        case CM_CHAIN:
            rc = iw_chain_state(c, want);
            break;
        case CM_TLS_START:
            rc = iw_tls_start_state(c);
            break;
        case CM_TLS:
            rc = iw_tls_state(c, want);
            break;
        case CM_GREETING:
            rc = iw_greeting_state(c, want);
            break;
        case CM_CAPA:
            rc = iw_capa_state(c, want);
            break;
        case CM_AFTER_CAPA:
            rc = iw_after_capa_state(c);
            break;
        case CM_STARTTLS:
            rc = iw_starttls_state(c, want);
            break;
        case CM_ID:
            rc = iw_id_state(c, want);
            break;
        case CM_READY:
            return iw_ready_state(c);
        default:
            return ST_ERROR_INVALID_PARAMETER;
        }
        if (rc != 0)
            return rc;
    }
}
