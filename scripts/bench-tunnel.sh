#!/usr/bin/env bash
# SSH tunnel costs against a private sshd and Dovecot: shared-session connects beside
# direct ones, and a first tunnelled connect beside `ssh -L` + connect (ratios).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
sh "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_tunnel_bench command -j "$(nproc)" >/dev/null
export IMAPWIRE_PLUGIN_PATH="$BUILD/plugins"
DIR=$(mktemp -d /tmp/imapwire-tunnel.XXXXXX)
chmod 755 "$DIR"
cleanup() {
    bash "$ROOT/tests/harness/sshd.sh" stop "$DIR/sshd" >/dev/null 2>&1 || true
    bash "$ROOT/tests/harness/dovecot.sh" stop "$DIR/dovecot" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
bash "$ROOT/tests/harness/dovecot.sh" start "$DIR/dovecot" >/dev/null
bash "$ROOT/tests/harness/sshd.sh" start "$DIR/sshd" >/dev/null
. "$DIR/dovecot/env.sh"
. "$DIR/sshd/env.sh"
"$BUILD/bench/imapwire_tunnel_bench" "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" \
    "$DOVECOT_PORT" "${ROUNDS:-30}" "$DOVECOT_USER" "$DOVECOT_PASS"
