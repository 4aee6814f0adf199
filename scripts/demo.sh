#!/bin/sh
# The imapwire demo: installs what is missing, builds, starts a private Dovecot on
# 127.0.0.1, connects and logs in every way available, prints results, stops the server.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
run=$(mktemp -d /tmp/imapwire-demo.XXXXXX)
chmod 755 "$run"
trap 'tests/harness/dovecot.sh stop "$run/dovecot"; rm -rf "$run"' EXIT
tests/harness/dovecot.sh start "$run/dovecot" >/dev/null
. "$run/dovecot/env.sh"
echo "Dovecot is listening on 127.0.0.1:$DOVECOT_PORT"
echo
echo "--- plain TCP, LOGIN/PLAIN as the server prefers, with ID and a protocol trace ---"
build/examples/imapwire_connect 127.0.0.1 "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" plain trace
echo
echo "--- by the name localhost ---"
build/examples/imapwire_connect localhost "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" plain
echo
echo "--- a wrong password gives a precise error ---"
build/examples/imapwire_connect 127.0.0.1 "$DOVECOT_PORT" "$DOVECOT_USER" wrong-password plain || true
