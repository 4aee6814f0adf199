#!/usr/bin/env bash
# bench/fetch_bench.sh: builds imapwire_fetch_bench (Release, build-bench/) and runs it
# against a private TLS Dovecot of its own: FETCH throughput and idle memory.
#
#   bench/fetch_bench.sh [imapwire_fetch_bench options]   e.g. --rounds 9 --conns 200
#
# Each run starts its own Dovecot (plain and IMAPS, test CA) in a fresh temporary
# directory and stops and removes it on exit, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
HARNESS="$ROOT/tests/harness/dovecot-tls.sh"

sh "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_fetch_bench -j "$(nproc)" >/dev/null
BENCH="$BUILD/bench/imapwire_fetch_bench"
[ -x "$BENCH" ] || { echo "fetch_bench.sh: $BENCH was not built (is libcurl installed?)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/imapwire-fetch-bench.XXXXXX)
cleanup() {
    bash "$HARNESS" stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! bash "$HARNESS" start "$DIR" >/dev/null 2>"$DIR/start.err"; then
    cat "$DIR/start.err" >&2
    echo "fetch_bench.sh: could not start the TLS Dovecot" >&2
    exit 1
fi
uptime
"$BENCH" --env "$DIR/env" --ca "$DIR/certs/ca.pem" "$@"
