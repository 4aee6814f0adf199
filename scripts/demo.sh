#!/bin/sh
# The imapwire demo: installs what is missing, builds, starts a private Dovecot on
# 127.0.0.1 (plain, STARTTLS and IMAPS), connects and logs in every way available,
# prints capabilities, security and per-phase timings, then stops the server.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
run=$(mktemp -d /tmp/imapwire-demo.XXXXXX)
chmod 755 "$run"
trap 'tests/harness/dovecot-tls.sh stop "$run/dovecot" >/dev/null 2>&1;
      tests/harness/dnsmasq.sh stop "$run/dns" >/dev/null 2>&1;
      tests/harness/sshd.sh stop "$run/sshd" >/dev/null 2>&1;
      tests/harness/danted.sh stop "$run/danted" >/dev/null 2>&1; rm -rf "$run"' EXIT
tests/harness/dovecot-tls.sh start "$run/dovecot" >/dev/null 2>&1
tests/harness/dnsmasq.sh start "$run/dns" >/dev/null 2>&1
. "$run/dovecot/env.sh"
tests/harness/sshd.sh start "$run/sshd" >/dev/null 2>&1
tests/harness/danted.sh start "$run/danted" >/dev/null 2>&1
. "$run/dns/env.sh"
. "$run/sshd/env.sh"
. "$run/danted/env.sh"
# plugins are found in the build tree until the library is installed
export IMAPWIRE_PLUGIN_PATH=$PWD/build/plugins
ca=$run/dovecot/certs/ca.pem
connect=build/examples/imapwire_connect
echo "Dovecot on 127.0.0.1: IMAP (STARTTLS) port $DOVECOT_PORT, IMAPS port $DOVECOT_IMAPS_PORT"
echo "CA generated for this run: $ca"
echo
echo "=== plain TCP, with ID and a protocol trace ==="
$connect 127.0.0.1 "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" plain trace
echo
echo "=== STARTTLS (IMAP_OPTION_SECURE_EXPLICIT), certificate checked against the CA ==="
$connect 127.0.0.1 "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" starttls trace "$ca"
echo
echo "=== implicit TLS (IMAP_OPTION_SECURE_IMPLICIT) to the name localhost ==="
$connect localhost "$DOVECOT_IMAPS_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" imaps quiet "$ca"
echo
echo "=== by a name, resolved by c-ares through the local dnsmasq ($DNSMASQ_SERVER) ==="
IMAPWIRE_DNS_SERVERS=$DNSMASQ_SERVER $connect v4.imapwire.test "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" plain trace |
    grep -v '^  [SC]: '
echo
echo "=== a name whose first address refuses: the next one is tried at once ==="
IMAPWIRE_DNS_SERVERS=$DNSMASQ_SERVER $connect fallback.imapwire.test "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" plain trace |
    grep -v '^  [SC]: '
echo
echo "=== a name that does not exist ==="
IMAPWIRE_DNS_SERVERS=$DNSMASQ_SERVER $connect nosuch.imapwire.test "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" || true
echo
echo "=== through an in-process SSH tunnel (OpenSSH sshd on port $SSHD_PORT, key auth) ==="
build/examples/imapwire_tunnel 127.0.0.1 "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" \
    localhost "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS"
echo
echo "=== through a library-managed port-forward (ImapCreatePortForward) ==="
build/examples/imapwire_tunnel 127.0.0.1 "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" \
    localhost "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" forward
echo
echo "=== an unchanged program sent through a SOCKS5 proxy (Dante, user/password) by IMAPWIRE_TRANSPORT ==="
IMAPWIRE_TRANSPORT="socks5:$DANTED_USER:$DANTED_PASS@127.0.0.1:$DANTED_PORT" \
    $connect localhost "$DOVECOT_IMAPS_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" imaps trace "$ca" |
    grep -v '^  [SC]: '
echo
echo "=== IMAP over a command's stdin/stdout (command plugin): Dovecot's own imap, PREAUTH ==="
IMAPWIRE_TRANSPORT="command:exec doveadm -c $DOVECOT_CONF exec imap -u $DOVECOT_USER" \
    $connect localhost 143 "$DOVECOT_USER" "$DOVECOT_PASS" plain trace | grep -v '^  [SC]: ' || true
echo
echo "=== the same tunnel with a known_hosts file that has another key for the server ==="
build/examples/imapwire_tunnel 127.0.0.1 "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS_WRONG" \
    localhost "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" || true
echo
echo "=== a certificate the system store does not trust gives a precise error ==="
$connect 127.0.0.1 "$DOVECOT_IMAPS_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" imaps || true
echo
echo "=== a wrong password gives a precise error ==="
$connect 127.0.0.1 "$DOVECOT_PORT" "$DOVECOT_USER" wrong-password plain || true
