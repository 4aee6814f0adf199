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
. "$ROOT/bench/bench_env.sh"
bench_build imapwire_tunnel_relay_bench imapwire_cli
BENCH="$BUILD/bench/imapwire_tunnel_relay_bench"
CLI="$BUILD/src/cli/imapwire"
[ -x "$BENCH" ] && [ -x "$CLI" ] || { echo "tunnel_relay_bench.sh: not built (json-c missing?)" >&2; exit 1; }
bench_dovecot relay-bench
uptime
"$BENCH" --env "$ENV" --ca "$CA" --imapwire "$CLI" "$@"
