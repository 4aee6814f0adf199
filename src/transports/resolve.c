/* resolve.c: turns a host text into socket addresses without touching DNS:
 * IPv4/IPv6 literals (with or without brackets) and localhost. */
#include <arpa/inet.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include "resolve.h"

static int iw_add_v4(const struct in_addr *a, unsigned port, iw_addr *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
    memset(out, 0, sizeof *out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr = *a;
    out->len = sizeof *sin;
    return 0;
}

static int iw_add_v6(const struct in6_addr *a, unsigned port, iw_addr *out)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
    memset(out, 0, sizeof *out);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_addr = *a;
    out->len = sizeof *sin6;
    return 0;
}

/* Copies host into buf without surrounding brackets or one trailing dot. */
static int iw_bare_host(const char *host, char *buf, size_t size)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    } else if (n > 1 && host[n - 1] == '.') {
        n--;
    }
    if (n == 0 || n >= size)
        return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return 0;
}

int iw_resolve_literal(const char *host, unsigned port, iw_addr *out, int max, int *count)
{
    char bare[256];
    struct in_addr a4;
    struct in6_addr a6;

    *count = 0;
    if (max < 2 || iw_bare_host(host, bare, sizeof bare) != 0)
        return ST_ERROR_INVALID_PARAMETER;
    if (inet_pton(AF_INET, bare, &a4) == 1) {
        iw_add_v4(&a4, port, &out[0]);
        *count = 1;
        return 0;
    }
    if (inet_pton(AF_INET6, bare, &a6) == 1) {
        iw_add_v6(&a6, port, &out[0]);
        *count = 1;
        return 0;
    }
    if (strcasecmp(bare, "localhost") == 0) {
        /* RFC 6761: localhost is loopback without asking anyone. */
        inet_pton(AF_INET, "127.0.0.1", &a4);
        iw_add_v4(&a4, port, &out[0]);
        iw_add_v6(&in6addr_loopback, port, &out[1]);
        *count = 2;
        return 0;
    }
    return ST_ERROR_HOST_NOT_FOUND;
}

int iw_parse_local_address(const char *text, iw_addr *out)
{
    int count = 0;
    iw_addr tmp[2];
    if (text == NULL || iw_resolve_literal(text, 0, tmp, 2, &count) != 0 || count != 1)
        return ST_ERROR_INVALID_PARAMETER;
    *out = tmp[0];
    return 0;
}

/* Numeric text of an address, for traces. */
void iw_addr_text(const iw_addr *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
        snprintf(buf, size, "%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
        snprintf(buf, size, "[%s]:%u", ip, port);
    }
}
