/* ssh_keyfile.h: what kind of key a private key file holds, read from the file's public
 * part, so an authentication failure can be explained (RSA under libssh2 1.10). */
#ifndef IW_SSH_KEYFILE_H
#define IW_SSH_KEYFILE_H

/* Nonzero when path holds an RSA private key (PEM "RSA PRIVATE KEY", or the OpenSSH format
 * whose public key is "ssh-rsa"; encrypted or not). 0 for any other key or an unreadable
 * file. */
int iw_ssh_key_is_rsa(const char *path);

#endif /* IW_SSH_KEYFILE_H */
