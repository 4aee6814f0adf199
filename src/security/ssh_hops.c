/* ssh_hops.c: parsing of SSH jump-host lists: strict about every byte, since a hop's
 * name travels to an SSH server as the target of a channel and into known_hosts lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ssh_hops.h"
#include "../core/runtime/runtime.h"
#include "ssh_policy.h"

static int iw_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

/* Account names on the far side vary more than host names, but a space, a control byte,
 * a comma, a colon or a second '@' would change how the list or a trace reads. */
static int iw_user_char(char ch)
{
    return (unsigned char)ch > 0x20 && (unsigned char)ch < 0x7f && ch != ',' && ch != '@' &&
           ch != ':' && ch != '[' && ch != ']' && ch != '/' && ch != '\\';
}

static int iw_copy_checked(char *dst, size_t size, const char *s, size_t n, int (*ok)(char))
{
    size_t i;
    /* a leading '-' reads as an option to any ssh tool a name is handed on to */
    if (n == 0 || n >= size || s[0] == '-')
        return ST_ERROR_INVALID_PARAMETER;
    for (i = 0; i < n; i++)
        if (!ok(s[i]))
            return ST_ERROR_INVALID_PARAMETER;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int iw_v6_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           ch == ':' || ch == '.';
}

static int iw_port_parse(const char *s, size_t n, unsigned *port)
{
    unsigned v = 0;
    size_t i;
    if (n == 0 || n > 5)
        return ST_ERROR_INVALID_PARAMETER;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ST_ERROR_INVALID_PARAMETER;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    *port = v;
    return 0;
}

/* One hop, s[0..n): [ssh://][user@]host[:port] with host a name, an IPv4 address, a
 * bracketed IPv6 address, or a bare IPv6 address (no port then, as ssh reads it). */
static int iw_hop_parse(const char *s, size_t n, const char *def_user, unsigned def_port,
                        iw_ssh_hop *h)
{
    const char *at, *host, *end = s + n, *colon;
    int rc;

    if (n > 6 && strncmp(s, "ssh://", 6) == 0) {
        s += 6;
        n -= 6;
    }
    at = memchr(s, '@', n);
    if (at != NULL) {
        rc = iw_copy_checked(h->user, sizeof h->user, s, (size_t)(at - s), iw_user_char);
        if (rc != 0)
            return rc;
        host = at + 1;
    } else {
        if (def_user == NULL || *def_user == '\0' ||
            iw_copy_checked(h->user, sizeof h->user, def_user, strlen(def_user), iw_user_char) != 0)
            return ST_ERROR_INVALID_PARAMETER;
        host = s;
    }
    h->port = def_port ? def_port : 22;
    if (host < end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (close == NULL)
            return ST_ERROR_INVALID_PARAMETER;
        rc = iw_copy_checked(h->host, sizeof h->host, host + 1, (size_t)(close - host - 1), iw_v6_char);
        if (rc != 0)
            return rc;
        if (close + 1 == end)
            return 0;
        if (close[1] != ':')
            return ST_ERROR_INVALID_PARAMETER;
        return iw_port_parse(close + 2, (size_t)(end - close - 2), &h->port);
    }
    colon = memchr(host, ':', (size_t)(end - host));
    if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
        return iw_copy_checked(h->host, sizeof h->host, host, (size_t)(end - host), iw_v6_char);
    if (colon == NULL)
        return iw_copy_checked(h->host, sizeof h->host, host, (size_t)(end - host), iw_host_char);
    rc = iw_copy_checked(h->host, sizeof h->host, host, (size_t)(colon - host), iw_host_char);
    if (rc != 0)
        return rc;
    return iw_port_parse(colon + 1, (size_t)(end - colon - 1), &h->port);
}

int iw_ssh_hops_parse(const char *list, const char *def_user, unsigned def_port,
                      iw_ssh_hop *hops, int max, int *n)
{
    const char *p = list;
    int count = 0, rc;

    *n = 0;
    if (list == NULL || *list == '\0' || def_port > 65535)
        return ST_ERROR_INVALID_PARAMETER;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (count == max)
            return ST_ERROR_INVALID_PARAMETER;
        rc = iw_hop_parse(p, len, def_user, def_port, &hops[count]);
        if (rc != 0)
            return rc;
        count++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *n = count;
    return 0;
}

size_t iw_ssh_hops_via_len(const char *list)
{
    const char *last = strrchr(list, ',');
    return last ? (size_t)(last - list) : 0;
}

void iw_ssh_hop_format(const iw_ssh_hop *h, char *out, size_t size)
{
    int v6 = strchr(h->host, ':') != NULL;
    snprintf(out, size, "%s@%s%s%s:%u", h->user, v6 ? "[" : "", h->host, v6 ? "]" : "", h->port);
}

int iw_ssh_route_valid(const iw_creds *k)
{
    iw_ssh_hop hops[IW_SSH_MAX_HOPS];
    int n;
    return iw_ssh_hops_parse(k->tunnel_host, k->tunnel_user, k->tunnel_port, hops,
                             IW_SSH_MAX_HOPS, &n) == 0;
}
