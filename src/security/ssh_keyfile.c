/* ssh_keyfile.c: reads the key type of an SSH private key file without its secret: the PEM
 * label, or the clear public key at the head of the OpenSSH format (base64 by OpenSSL). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "ssh_keyfile.h"

#define IW_KEYFILE_HEAD 4096       /* the public part comes first: this is plenty */

static uint32_t iw_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Skips one SSH "string" (length + bytes) at *off within n: 0, or -1 past the end. */
static int iw_skip_string(const unsigned char *b, size_t n, size_t *off, uint32_t *len)
{
    if (*off + 4 > n)
        return -1;
    *len = iw_be32(b + *off);
    if (*len > n - *off - 4)
        return -1;
    *off += 4 + *len;
    return 0;
}

int iw_ssh_key_is_rsa(const char *path)
{
    char text[IW_KEYFILE_HEAD + 1], b64[IW_KEYFILE_HEAD];
    unsigned char bin[IW_KEYFILE_HEAD];
    static const char magic[] = "openssh-key-v1";
    size_t n, m = 0, off, i;
    uint32_t len;
    int got, rsa = 0;
    FILE *f = path ? fopen(path, "re") : NULL;

    if (f == NULL)
        return 0;
    n = fread(text, 1, IW_KEYFILE_HEAD, f);
    fclose(f);
    text[n] = '\0';
    if (strstr(text, "-----BEGIN RSA PRIVATE KEY-----") == text)
        return 1;
    if (strncmp(text, "-----BEGIN OPENSSH PRIVATE KEY-----", 35) != 0)
        return 0;
    /* the base64 body without line breaks, whole 4-character groups only */
    for (i = 35; i < n && text[i] != '-'; i++)
        if (text[i] != '\n' && text[i] != '\r')
            b64[m++] = text[i];
    m -= m % 4;
    got = m > 0 ? EVP_DecodeBlock(bin, (const unsigned char *)b64, (int)m) : -1;
    if (got < (int)sizeof magic)
        return 0;
    if (memcmp(bin, magic, sizeof magic) != 0)
        return 0;
    off = sizeof magic;
    /* cipher name, KDF name, KDF options, the number of keys, then the first public key,
     * whose first string is its type */
    if (iw_skip_string(bin, (size_t)got, &off, &len) || iw_skip_string(bin, (size_t)got, &off, &len) ||
        iw_skip_string(bin, (size_t)got, &off, &len) || off + 4 + 4 + 4 > (size_t)got)
        return 0;
    off += 4 + 4;                  /* key count, then the public key blob's length */
    len = iw_be32(bin + off);
    off += 4;
    if (len == 7 && off + 7 <= (size_t)got && memcmp(bin + off, "ssh-rsa", 7) == 0)
        rsa = 1;
    OPENSSL_cleanse(bin, sizeof bin);
    return rsa;
}
