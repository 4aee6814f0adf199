/* ssh_auth.c: what the SSH authentication methods need beside libssh2's calls: the
 * keyboard-interactive answers, and the explanation of a refused key. */
#define _GNU_SOURCE
#include <string.h>
#include "../security/ssh_keyfile.h"
#include "ssh_internal.h"

void ssh_kbd_cb(const char *name, int name_len, const char *instruction,
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
void ssh_explain_key_failure(const ssh_session *s, imapwire_layer *l)
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
