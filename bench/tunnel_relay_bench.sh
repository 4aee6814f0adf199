#!/usr/bin/env bash
# bench/tunnel_relay_bench.sh: builds imapwire_tunnel_relay_bench and the imapwire command
# (Release, build-bench/) and runs them against a private TLS Dovecot of their own.
#
#   bench/tunnel_relay_bench.sh [--rounds N] [--noops N]
#
# The Dovecot (plain and IMAPS, test CA) lives in a fresh temporary directory, stopped
# and removed on exit, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
HARNESS="$ROOT/tests/harness/dovecot-tls.sh"

sh "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_tunnel_relay_bench imapwire_cli -j 2 >/dev/null
BENCH="$BUILD/bench/imapwire_tunnel_relay_bench"
CLI="$BUILD/src/cli/imapwire"
[ -x "$BENCH" ] && [ -x "$CLI" ] || { echo "tunnel_relay_bench.sh: not built (json-c missing?)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/imapwire-relay-bench.XXXXXX)
cleanup() {
    bash "$HARNESS" stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! bash "$HARNESS" start "$DIR" >/dev/null 2>"$DIR/start.err"; then
    cat "$DIR/start.err" >&2
    echo "tunnel_relay_bench.sh: could not start the TLS Dovecot" >&2
    exit 1
fi
uptime
"$BENCH" --env "$DIR/env" --ca "$DIR/certs/ca.pem" --imapwire "$CLI" "$@"
