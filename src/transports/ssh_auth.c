/* ssh_auth.c: the SSH authentication methods, one state each: the key file, the agent's
 * keys, the password, keyboard-interactive; tried in that order as the server allows. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "../security/ssh_keyfile.h"
#include "ssh_internal.h"

static void ssh_kbd_cb(const char *name, int name_len, const char *instruction,
                       int instruction_len, int num_prompts,
                       const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
                       LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses, void **abstract)
{
    ssh_session *s = *abstract;
    size_t n = s->password ? strlen(s->password) : 0;
    int i;
    (void)name; (void)name_len; (void)instruction; (void)instruction_len; (void)prompts;
    /* Every prompt gets the password: keyboard-interactive is how PAM asks for it.
     * libssh2 frees the answers with the session's free, which wipes them. */
    for (i = 0; i < num_prompts; i++) {
        responses[i].text = s->password ? ssh_mem_alloc(n + 1, abstract) : NULL;
        if (responses[i].text != NULL)
            memcpy(responses[i].text, s->password, n + 1);
        responses[i].length = responses[i].text ? (unsigned)n : 0;
    }
}

/* libssh2 before 1.11 signs with an RSA key only as "ssh-rsa" (SHA-1), which OpenSSH 8.8
 * and later refuse by default: a refused RSA key is most likely that, so say so. */
static void ssh_explain_key_failure(const ssh_session *s, imapwire_layer *l)
{
#if LIBSSH2_VERSION_NUM < 0x010b00
    if (iw_ssh_key_is_rsa(s->key))
        l->host->trace(l, "ssh: %s is an RSA key, which libssh2 %s can sign only with SHA-1 "
                       "(ssh-rsa), refused by OpenSSH 8.8 and later: use an ed25519 or ECDSA "
                       "key, or build imapwire with libssh2 1.11 or later",
                       s->key, LIBSSH2_VERSION);
#else
    (void)s;
    (void)l;
#endif
}

/* S_AUTH_LIST: the methods the server offers (or none needed), and the first to try. */
static int ssh_auth_list_state(ssh_session *s)
{
    unsigned ulen = (unsigned)strlen(s->user);
    s->methods = NULL;
    {
        char *m = libssh2_userauth_list(s->s, s->user, ulen);
        if (m == NULL) {
            if (libssh2_userauth_authenticated(s->s)) {
                s->state = S_READY;
                return SSH_STEP_NEXT;
            }
            if (libssh2_session_last_errno(s->s) == LIBSSH2_ERROR_EAGAIN)
                return 0;
            return ssh_libssh2_error(s, libssh2_session_last_errno(s->s),
                                     ST_ERROR_SSH_AUTH_FAILED);
        }
        s->methods = iw_strdup(m);
        if (s->methods == NULL)
            return ssh_session_die(s, ST_ERROR_OUT_OF_MEMORY);
    }
    /* The key when one is given (the password is then its passphrase), else the
     * agent, then the password itself. */
    if (s->key != NULL)
        s->state = S_AUTH_KEY;
    else if (secure_getenv("SSH_AUTH_SOCK") != NULL)
        s->state = S_AUTH_AGENT_CONNECT;
    else
        s->state = S_AUTH_PASSWORD;
    return SSH_STEP_NEXT;
}

/* S_AUTH_KEY: the key file, the password as its passphrase. */
static int ssh_auth_key_state(ssh_session *s, imapwire_layer *l)
{
    unsigned ulen = (unsigned)strlen(s->user);
    int rc = libssh2_userauth_publickey_fromfile_ex(s->s, s->user, ulen, NULL, s->key,
                                                    s->password ? s->password : "");
    if (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN)
        ssh_explain_key_failure(s, l);
    return ssh_state_result(s, rc, ST_ERROR_SSH_AUTH_FAILED, S_READY);
}

/* S_AUTH_AGENT_CONNECT: the agent and its first key, or on to the password. */
static int ssh_auth_agent_connect_state(ssh_session *s)
{
    int rc;
    s->agent = libssh2_agent_init(s->s);
    /* the socket named by a trusted environment only: libssh2 itself would read
     * SSH_AUTH_SOCK with getenv, which a setuid program's caller controls */
    if (s->agent != NULL && secure_getenv("SSH_AUTH_SOCK") != NULL)
        libssh2_agent_set_identity_path(s->agent, secure_getenv("SSH_AUTH_SOCK"));
    if (s->agent == NULL || secure_getenv("SSH_AUTH_SOCK") == NULL ||
        libssh2_agent_connect(s->agent) != 0 ||
        libssh2_agent_list_identities(s->agent) != 0) {
        s->state = S_AUTH_PASSWORD;
        return SSH_STEP_NEXT;
    }
    s->identity = NULL;
    rc = libssh2_agent_get_identity(s->agent, &s->identity, NULL);
    s->state = rc == 0 ? S_AUTH_AGENT : S_AUTH_PASSWORD;
    return SSH_STEP_NEXT;
}

/* S_AUTH_AGENT: the agent's current key; a refused one makes way for the next. */
static int ssh_auth_agent_state(ssh_session *s, imapwire_layer *l)
{
    int rc = libssh2_agent_userauth(s->agent, s->user, s->identity);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (rc == 0) {
        l->host->trace(l, "ssh: authenticated by the agent");
        s->state = S_READY;
        return SSH_STEP_NEXT;
    }
    if (libssh2_agent_get_identity(s->agent, &s->identity, s->identity) != 0)
        s->state = S_AUTH_PASSWORD;
    return SSH_STEP_NEXT;
}

/* S_AUTH_PASSWORD: the password method, or keyboard-interactive when it is not offered
 * or refuses. */
static int ssh_auth_password_state(ssh_session *s)
{
    unsigned ulen = (unsigned)strlen(s->user);
    int rc;
    if (s->password == NULL)
        return ssh_session_die(s, ST_ERROR_SSH_AUTH_FAILED);
    if (strstr(s->methods, "password") == NULL) {
        s->state = S_AUTH_KBD;
        return SSH_STEP_NEXT;
    }
    rc = libssh2_userauth_password_ex(s->s, s->user, ulen, s->password,
                                      (unsigned)strlen(s->password), NULL);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (rc == 0) {
        s->state = S_READY;
        return SSH_STEP_NEXT;
    }
    if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED && rc != LIBSSH2_ERROR_PASSWORD_EXPIRED)
        return ssh_libssh2_error(s, rc, ST_ERROR_SSH_AUTH_FAILED);
    s->state = S_AUTH_KBD;
    return SSH_STEP_NEXT;
}

/* S_AUTH_KBD: keyboard-interactive, the last method. */
static int ssh_auth_kbd_state(ssh_session *s)
{
    unsigned ulen = (unsigned)strlen(s->user);
    int rc;
    if (strstr(s->methods, "keyboard-interactive") == NULL)
        return ssh_session_die(s, ST_ERROR_SSH_AUTH_FAILED);
    rc = libssh2_userauth_keyboard_interactive_ex(s->s, s->user, ulen, ssh_kbd_cb);
    return ssh_state_result(s, rc, ST_ERROR_SSH_AUTH_FAILED, S_READY);
}

int ssh_auth_step(ssh_session *s, imapwire_layer *l)
{
    switch (s->state) {
    case S_AUTH_LIST:
        return ssh_auth_list_state(s);
    case S_AUTH_KEY:
        return ssh_auth_key_state(s, l);
    case S_AUTH_AGENT_CONNECT:
        return ssh_auth_agent_connect_state(s);
    case S_AUTH_AGENT:
        return ssh_auth_agent_state(s, l);
    case S_AUTH_PASSWORD:
        return ssh_auth_password_state(s);
    default:
        return ssh_auth_kbd_state(s);
    }
}
