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
. "$ROOT/bench/bench_env.sh"
bench_build imapwire_fetch_bench
BENCH="$BUILD/bench/imapwire_fetch_bench"
[ -x "$BENCH" ] || { echo "fetch_bench.sh: $BENCH was not built (is libcurl installed?)" >&2; exit 1; }
bench_dovecot fetch-bench
uptime
"$BENCH" --env "$ENV" --ca "$CA" "$@"
