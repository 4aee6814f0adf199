/* sasl_text.h: the text encodings the SASL mechanisms (auth.c, scram.c) share; each
 * appends to an iw_sb or returns a malloc'd buffer, and wipes what it copied. */
#ifndef IW_SASL_TEXT_H
#define IW_SASL_TEXT_H

#include <stddef.h>
#include "../runtime/runtime.h"

/* base64 of n bytes (at most 64 KB) appended to out: 0, or the error out carries */
int  iw_base64(const unsigned char *in, size_t n, iw_sb *out);
/* strict base64 of server bytes into a malloc'd *out (at most max bytes decoded) */
int  iw_unbase64(const char *in, size_t n, size_t max, unsigned char **out, size_t *outlen);
/* s as a GS2 saslname: ',' and '=' escaped */
void iw_add_saslname(iw_sb *sb, const char *s);

#endif /* IW_SASL_TEXT_H */
