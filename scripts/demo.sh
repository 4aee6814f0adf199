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
trap 'tests/harness/dovecot-tls.sh stop "$run/dovecot" >/dev/null 2>&1; rm -rf "$run"' EXIT
tests/harness/dovecot-tls.sh start "$run/dovecot" >/dev/null 2>&1
. "$run/dovecot/env.sh"
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
echo "=== a certificate the system store does not trust gives a precise error ==="
$connect 127.0.0.1 "$DOVECOT_IMAPS_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" imaps || true
echo
echo "=== a wrong password gives a precise error ==="
$connect 127.0.0.1 "$DOVECOT_PORT" "$DOVECOT_USER" wrong-password plain || true
