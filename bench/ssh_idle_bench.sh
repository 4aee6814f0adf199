#!/usr/bin/env bash
# bench/ssh_idle_bench.sh: builds imapwire_ssh_idle_bench (Release, build-bench/) and runs
# it against a private sshd and Dovecot: memory per idle connection through SSH.
#
#   bench/ssh_idle_bench.sh [N] [--fetch BYTES]      e.g. 500
#
# Both servers start in a fresh temporary directory and are stopped and removed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
sh "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_ssh_idle_bench -j "$(nproc)" >/dev/null
DIR=$(mktemp -d /tmp/imapwire-ssh-idle.XXXXXX)
chmod 755 "$DIR"
cleanup() {
    bash "$ROOT/tests/harness/sshd.sh" stop "$DIR/sshd" >/dev/null 2>&1 || true
    bash "$ROOT/tests/harness/dovecot.sh" stop "$DIR/dovecot" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bash "$ROOT/tests/harness/dovecot.sh" start "$DIR/dovecot" >/dev/null
bash "$ROOT/tests/harness/sshd.sh" start "$DIR/sshd" >/dev/null
uptime
"$BUILD/bench/imapwire_ssh_idle_bench" "$DIR/dovecot/env" "$DIR/sshd/env" "$@"
