/* facts.c: what a connection is (timings, TLS, SSH, capabilities) as a JSON object, and
 * the same facts as lines for a person. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cli.h"

/* A json-c string of server words. json-c escapes C0 controls as \u00XX but passes DEL,
 * C1 controls and bytes that are not UTF-8 as they are, so the JSON report carries the
 * same visible form as the text one (and stays valid UTF-8). */
static json_object *visible_string(const char *s)
{
    char buf[4 * 1024];
    cli_visible(s, strlen(s), buf, sizeof buf);
    return json_object_new_string(buf);
}

static const char *cert_status(DWORD s)
{
    switch (s) {
    case CERTIFICATE_STATUS_VALID:         return "valid";
    case CERTIFICATE_STATUS_UNTRUSTED:     return "untrusted";
    case CERTIFICATE_STATUS_NAME_MISMATCH: return "name-mismatch";
    case CERTIFICATE_STATUS_EXPIRED:       return "expired";
    case CERTIFICATE_STATUS_NOT_CHECKED:   return "not-checked";
    default:                               return "none";
    }
}

/* Splits the capability list; AUTH=x entries also go to the mechanism list. */
static void add_capabilities(HCLIENT h, json_object *facts)
{
    char capa[8192], *save = NULL, *w;
    json_object *all = json_object_new_array(), *mech = json_object_new_array();

    if (ImapGetCapabilities(h, capa, (INT)sizeof capa) != IMAP_ERROR) {
        for (w = strtok_r(capa, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
            json_object_array_add(all, visible_string(w));
            if (strncasecmp(w, "AUTH=", 5) == 0)
                json_object_array_add(mech, visible_string(w + 5));
        }
    }
    json_object_object_add(facts, "capabilities", all);
    json_object_object_add(facts, "auth_mechanisms", mech);
}

static json_object *timings_object(const IMAPTIMINGS *tm)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "resolve", json_object_new_int64(tm->dwResolve));
    json_object_object_add(t, "connect", json_object_new_int64(tm->dwConnect));
    json_object_object_add(t, "tunnel", json_object_new_int64(tm->dwTunnel));
    json_object_object_add(t, "secure", json_object_new_int64(tm->dwSecure));
    json_object_object_add(t, "greeting", json_object_new_int64(tm->dwGreeting));
    json_object_object_add(t, "total", json_object_new_int64(tm->dwTotal));
    return t;
}

json_object *cli_failed_timings(void)
{
    IMAPTIMINGS tm;
    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    return ImapGetLastTimings(&tm) == 0 ? timings_object(&tm) : NULL;
}

json_object *cli_facts(HCLIENT h)
{
    json_object *facts = json_object_new_object(), *t, *tls = NULL, *ssh = NULL;
    IMAPTIMINGS tm;
    SECURITYINFO si;

    memset(&tm, 0, sizeof tm);
    tm.dwSize = sizeof tm;
    t = ImapGetTimings(h, &tm) == 0 ? timings_object(&tm) : json_object_new_object();
    json_object_object_add(facts, "timings_us", t);

    memset(&si, 0, sizeof si);
    si.dwSize = sizeof si;
    if (ImapGetSecurityInformation(h, &si) == 0) {
        if (si.dwProtocol != SECURITY_PROTOCOL_NONE) {
            tls = json_object_new_object();
            json_object_object_add(tls, "protocol", json_object_new_string(
                si.dwProtocol == SECURITY_PROTOCOL_TLS13 ? "TLSv1.3" : "TLSv1.2"));
            json_object_object_add(tls, "cipher", visible_string(si.szCipher));
            json_object_object_add(tls, "certificate_status",
                                   json_object_new_string(cert_status(si.dwCertificateStatus)));
            json_object_object_add(tls, "subject", visible_string(si.szSubject));
            json_object_object_add(tls, "issuer", visible_string(si.szIssuer));
            json_object_object_add(tls, "valid_from", json_object_new_string(si.szValidFrom));
            json_object_object_add(tls, "valid_to", json_object_new_string(si.szValidTo));
            json_object_object_add(tls, "sha256_fingerprint",
                                   json_object_new_string(si.szFingerprint));
            json_object_object_add(tls, "session_resumed",
                                   json_object_new_boolean(si.bSessionResumed));
        }
        if (si.dwTunnelProtocol == SECURITY_PROTOCOL_SSH2) {
            ssh = json_object_new_object();
            json_object_object_add(ssh, "protocol", json_object_new_string("SSH-2"));
            json_object_object_add(ssh, "host_key_fingerprint",
                                   json_object_new_string(si.szHostKeyFingerprint));
        }
    }
    json_object_object_add(facts, "tls", tls);
    json_object_object_add(facts, "ssh", ssh);
    add_capabilities(h, facts);
    return facts;
}

static const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static void print_list(const char *indent, const char *label, json_object *arr)
{
    size_t n = arr ? json_object_array_length(arr) : 0;
    printf("%s%-17s", indent, label);
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(arr, i)));
    printf("%s\n", n ? "" : "(none)");
}

void cli_print_facts(const struct cli_opts *o, json_object *facts, const char *indent)
{
    static const char *phases[][2] = {
        {"resolve", "resolve"}, {"connect", "tcp connect"}, {"tunnel", "ssh or proxy"},
        {"secure", "tls"}, {"greeting", "greeting"}, {"total", "total"}};
    json_object *t, *tls, *ssh, *v, *caps, *mech;
    const char *on = o->color_out ? C_GREEN : "", *off = o->color_out ? C_OFF : "";

    if (json_object_object_get_ex(facts, "timings_us", &t)) {
        for (size_t i = 0; i < 6; i++) {
            if (!json_object_object_get_ex(t, phases[i][0], &v))
                continue;
            int64_t us = json_object_get_int64(v);
            if (us == 0 && i != 5)
                printf("%sphase %-12s         -\n", indent, phases[i][1]);
            else
                printf("%sphase %-12s %9.3f ms\n", indent, phases[i][1], (double)us / 1000.0);
        }
    }
    if (json_object_object_get_ex(facts, "ssh", &ssh) && ssh != NULL)
        printf("%sssh:             %s, host key %s\n", indent, str(ssh, "protocol"),
               str(ssh, "host_key_fingerprint"));
    if (json_object_object_get_ex(facts, "tls", &tls) && tls != NULL) {
        const char *st = str(tls, "certificate_status");
        int good = strcmp(st, "valid") == 0;
        printf("%stls:             %s, cipher %s, certificate %s%s%s%s\n", indent,
               str(tls, "protocol"), str(tls, "cipher"), good ? on : (o->color_out ? C_YEL : ""),
               st, o->color_out ? C_OFF : "",
               json_object_get_boolean(json_object_object_get(tls, "session_resumed"))
                   ? ", session resumed" : "");
        printf("%scertificate:     subject %s\n", indent, str(tls, "subject"));
        printf("%s                 issuer %s\n", indent, str(tls, "issuer"));
        printf("%s                 valid %s .. %s\n", indent, str(tls, "valid_from"),
               str(tls, "valid_to"));
        printf("%s                 sha256 %s\n", indent, str(tls, "sha256_fingerprint"));
    } else if (json_object_object_get_ex(facts, "tls", &tls)) {
        printf("%stls:             none (%sno encryption%s)\n", indent,
               o->color_out ? C_YEL : "", off);
    }
    if (json_object_object_get_ex(facts, "capabilities", &caps))
        print_list(indent, "capabilities:", caps);
    if (json_object_object_get_ex(facts, "auth_mechanisms", &mech))
        print_list(indent, "auth mechanisms:", mech);
}
