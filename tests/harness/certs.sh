#!/usr/bin/env bash
# Test certificates for imapwire's TLS tests, generated at test time.
#
#   tests/harness/certs.sh DIR
#
# Writes a private test CA and certificates signed by it into DIR (created
# if missing).  Idempotent: if every file is present and still passes the
# checks below, nothing is touched; otherwise the whole set is regenerated
# (a partial or stale set is never reused).  Uses only the `openssl` CLI
# (OpenSSL 3.0) and never reads the system openssl.cnf.  Keys are EC P-256.
#
#   ca.pem ca.key                 test CA "imapwire test CA", 10 years
#   server.pem server.key         CN=localhost, SAN DNS:localhost,
#                                 IP:127.0.0.1, IP:::1, serverAuth, from
#                                 now-1day for 2 years
#   wrongname.pem wrongname.key   CN/SAN DNS:wrong.example.test only
#   expired.pem expired.key       SAN localhost+127.0.0.1, valid only
#                                 2020-01-01 .. 2020-01-02
#   selfsigned.pem selfsigned.key self-signed, SAN localhost+127.0.0.1
#   client.pem client.key         CN "imapwire client", clientAuth
#   client-combined.pem           client.pem followed by client.key
#   client-enc.key                client.key as encrypted PKCS#8
#                                 (AES-256-CBC), passphrase "client-pass"
#   capath/                       hashed CA directory holding ca.pem
#
# Certificates are mode 0644, keys 0600 (owned by whoever runs this; when
# run as root, Dovecot's config process reads them as root).  Status goes
# to stderr; nothing is printed on stdout.  Exit status 0 on success.

set -eu

PROG=${0##*/}

# Bump when the generated set changes, so old sets are regenerated.
VERSION="imapwire-certs 1"
CLIENT_PASS=client-pass

CERTS="ca server wrongname expired selfsigned client"

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

[ $# -eq 1 ] || { printf 'usage: %s DIR\n' "$PROG" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || die "openssl not found (install openssl)"

DIR=$1
case $DIR in
    /*) ;;
    *) DIR="$PWD/$DIR" ;;
esac
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)

# ------------------------------------------------------------------ checks
# All quiet; each returns non-zero on the first problem and sets WHY.
WHY=

# Public key of a certificate (PEM) / of a private key [with passphrase
# $2; never prompts], for comparison.
cert_pub() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null </dev/null; }
key_pub() {
    openssl pkey -in "$1" -pubout -passin "pass:${2-}" 2>/dev/null </dev/null
}

check_set() {
    local d=$1 n f out
    if [ "$(cat "$d/.version" 2>/dev/null || true)" != "$VERSION" ]; then
        WHY="no or old version stamp"; return 1
    fi
    for n in $CERTS; do
        for f in "$d/$n.pem" "$d/$n.key"; do
            [ -s "$f" ] || { WHY="$f missing"; return 1; }
        done
        # key belongs to the certificate
        out=$(cert_pub "$d/$n.pem" || true)
        [ -n "$out" ] || { WHY="$n.pem unreadable"; return 1; }
        [ "$out" = "$(key_pub "$d/$n.key")" ] ||
            { WHY="$n.key does not match $n.pem"; return 1; }
    done
    for f in client-combined.pem client-enc.key; do
        [ -s "$d/$f" ] || { WHY="$f missing"; return 1; }
    done
    # still valid for a while (the expired one is checked below)
    openssl x509 -in "$d/ca.pem" -noout -checkend $(( 30 * 86400 )) >/dev/null 2>&1 ||
        { WHY="ca.pem expires within 30 days"; return 1; }
    for n in server wrongname selfsigned client; do
        openssl x509 -in "$d/$n.pem" -noout -checkend $(( 7 * 86400 )) >/dev/null 2>&1 ||
            { WHY="$n.pem expires within 7 days"; return 1; }
    done
    # chains
    openssl verify -CAfile "$d/ca.pem" -purpose sslserver \
        "$d/server.pem" "$d/wrongname.pem" >/dev/null 2>&1 ||
        { WHY="server/wrongname do not verify against ca.pem"; return 1; }
    openssl verify -CAfile "$d/ca.pem" -purpose sslclient "$d/client.pem" >/dev/null 2>&1 ||
        { WHY="client.pem does not verify against ca.pem"; return 1; }
    openssl verify -CAfile "$d/selfsigned.pem" "$d/selfsigned.pem" >/dev/null 2>&1 ||
        { WHY="selfsigned.pem is not self-signed"; return 1; }
    out=$(openssl verify -CAfile "$d/ca.pem" "$d/expired.pem" 2>&1) &&
        { WHY="expired.pem verifies"; return 1; }
    case $out in
        *"certificate has expired"*) ;;
        *) WHY="expired.pem fails for another reason: $out"; return 1 ;;
    esac
    # hostname in server.pem
    openssl x509 -in "$d/server.pem" -noout -checkhost localhost 2>/dev/null |
        grep -q 'does match' || { WHY="server.pem lacks localhost"; return 1; }
    # capath
    [ -d "$d/capath" ] || { WHY="capath/ missing"; return 1; }
    openssl verify -CApath "$d/capath" "$d/server.pem" >/dev/null 2>&1 ||
        { WHY="capath/ not hashed"; return 1; }
    # combined file = cert + key of client
    out=$(key_pub "$d/client.key" || true)
    if [ "$(cert_pub "$d/client-combined.pem")" != "$out" ] ||
        [ "$(key_pub "$d/client-combined.pem")" != "$out" ]; then
        WHY="client-combined.pem does not hold client cert+key"; return 1
    fi
    # encrypted key: needs the passphrase, and is the client key
    key_pub "$d/client-enc.key" wrong-pass >/dev/null &&
        { WHY="client-enc.key opens with a wrong passphrase"; return 1; }
    [ "$(key_pub "$d/client-enc.key" "$CLIENT_PASS")" = \
        "$(key_pub "$d/client.key")" ] ||
        { WHY="client-enc.key is not client.key with passphrase $CLIENT_PASS"; return 1; }
    return 0
}

# --------------------------------------------------------------- generate
# openssl's date format for -startdate/-enddate (UTC, 4-digit year)
stamp() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

write_openssl_cnf() {
    local w=$1
    cat > "$w/openssl.cnf" <<EOF
# minimal config for "openssl req" and "openssl ca", written by certs.sh
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $w/db
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
certificate = $w/ca.pem
private_key = $w/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
commonName = supplied

[ ext_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ ext_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ext_wrongname ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ext_localhost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ext_selfsigned ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash

[ ext_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

# run CMD...: run an openssl command in the work dir; on failure show its
# output and stop.  (openssl ca chatters on stderr even when it succeeds.)
run() {
    if ! "$@" > openssl.log 2>&1; then
        cat openssl.log >&2
        die "failed: $*"
    fi
}

newkey() {
    run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# sign NAME SUBJECT EXTSECTION STARTDATE ENDDATE  (in the work dir)
# "openssl ca" is used (not "x509 -req") because only it can set an
# arbitrary notBefore/notAfter in OpenSSL 3.0.
sign() {
    local n=$1 subj=$2 ext=$3 start=$4 end=$5
    newkey "$n.key"
    run openssl req -new -config openssl.cnf -key "$n.key" -subj "$subj" -out "$n.csr"
    run openssl ca -batch -notext -config openssl.cnf -rand_serial \
        -extensions "$ext" -startdate "$start" -enddate "$end" \
        -in "$n.csr" -out "$n.pem"
}

generate() {
    local w=$1
    (
        cd "$w"
        umask 077
        write_openssl_cnf "$w"
        mkdir -p db/new
        : > db/index.txt

        # CA: self-signed through "openssl ca" as well, so that it too
        # starts one day in the past (tolerates clock skew).
        newkey ca.key
        run openssl req -new -config openssl.cnf -key ca.key \
            -subj "/CN=imapwire test CA" -out ca.csr
        run openssl ca -batch -notext -config openssl.cnf -rand_serial -selfsign \
            -keyfile ca.key -extensions ext_ca \
            -startdate "$(stamp '1 day ago')" -enddate "$(stamp '10 years')" \
            -in ca.csr -out ca.pem

        sign server "/CN=localhost" ext_server \
            "$(stamp '1 day ago')" "$(stamp '2 years')"
        sign wrongname "/CN=wrong.example.test" ext_wrongname \
            "$(stamp '1 day ago')" "$(stamp '2 years')"
        sign expired "/CN=localhost" ext_localhost \
            20200101000000Z 20200102000000Z
        sign client "/CN=imapwire client" ext_client \
            "$(stamp '1 day ago')" "$(stamp '2 years')"

        newkey selfsigned.key
        run openssl req -x509 -new -config openssl.cnf -key selfsigned.key \
            -subj "/CN=localhost" -extensions ext_selfsigned -days 730 \
            -out selfsigned.pem

        cat client.pem client.key > client-combined.pem
        run openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 \
            -in client.key -passout "pass:$CLIENT_PASS" -out client-enc.key

        mkdir capath
        cp ca.pem capath/ca.pem
        run openssl rehash capath

        chmod 0644 ./*.pem capath/ca.pem
        chmod 0600 ./*.key
        chmod 0755 capath
        printf '%s\n' "$VERSION" > .version
        chmod 0644 .version
    )
}

# Replace the set in DIR by the one in work dir W (old files first removed,
# so a crash in between leaves a set that check_set rejects).
install_set() {
    local w=$1 n
    rm -f "$DIR/.version"
    for n in $CERTS; do
        mv -f "$w/$n.key" "$DIR/$n.key"
        mv -f "$w/$n.pem" "$DIR/$n.pem"
    done
    mv -f "$w/client-combined.pem" "$w/client-enc.key" "$DIR/"
    rm -rf "$DIR/capath"
    mv "$w/capath" "$DIR/capath"
    mv -f "$w/.version" "$DIR/.version"
}

# ------------------------------------------------------------------- main
main() {
    local w
    if check_set "$DIR"; then
        note "$DIR: certificates present and valid, nothing to do"
        return 0
    fi
    note "$DIR: generating certificates ($WHY)"
    w=$(mktemp -d "$DIR/.gen.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$w'" EXIT
    generate "$w"
    check_set "$w" || die "freshly generated set fails its own check: $WHY"
    install_set "$w"
    rm -rf "$w"
    trap - EXIT
    chmod 0755 "$DIR"
    check_set "$DIR" || die "installed set fails its check: $WHY"
    note "$DIR: done"
}

# Serialize concurrent runs on the same DIR (bounded wait).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "timed out after 120 s waiting for the lock on $DIR/.lock"
fi
main
