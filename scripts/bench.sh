#!/usr/bin/env bash
# Builds imapwire_bench (Release, in build-bench/ only) and runs it against a private
# Dovecot on loopback: imapwire vs libcurl connect+login+logout, reported as ratios.
#
#   scripts/bench.sh [imapwire_bench options]    e.g. --rounds 20 --batch 100
#
# Safe to rerun: the build is incremental and each run uses its own Dovecot in a fresh
# temporary directory, stopped and removed on exit whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
HARNESS="$ROOT/tests/harness/dovecot.sh"

sh "$ROOT/scripts/install-deps.sh"

# Tests and examples are off: the bench needs neither, and their build is others' job.
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_bench -j "$(nproc)" >/dev/null
BENCH="$BUILD/bench/imapwire_bench"
[ -x "$BENCH" ] || { echo "bench.sh: $BENCH was not built (is libcurl installed?)" >&2; exit 1; }

# The harness insists on a world-searchable directory; mktemp's 0700 is fixed by it.
DIR=$(mktemp -d /tmp/imapwire-bench.XXXXXX)
cleanup() {
    bash "$HARNESS" stop "$DIR" || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$HARNESS" start "$DIR" >/dev/null
ENV="$DIR/env"
LOG="$DIR/dovecot.log"

logins=0
run() {
    local out n
    if ! out=$("$BENCH" --env "$ENV" "$@"); then
        printf '%s\n' "$out"
        echo "bench.sh: imapwire_bench $* failed" >&2
        exit 1
    fi
    printf '%s\n' "$out"
    n=$(printf '%s\n' "$out" | sed -n 's/^logins: //p')
    logins=$(( logins + ${n:-0} ))
}

echo "== verify: the commands both sides send (secrets redacted)"
run --verify
echo
echo "== headline: identical exchange on the wire"
run "$@"
echo
echo "== secondary: each library's default exchange (imapwire skips CAPABILITY)"
run --exchange natural "$@"

# Every connect must have logged in for real: Dovecot's own count must match ours.
seen=0
for _ in $(seq 1 50); do
    seen=$(grep -c 'imap-login: Info: Login: user=<' "$LOG" || true)
    [ "$seen" -ge "$logins" ] && break
    sleep 0.1
done
echo
if [ "$seen" -ne "$logins" ]; then
    echo "bench.sh: Dovecot logged $seen logins, the bench made $logins" >&2
    exit 1
fi
echo "dovecot log: $seen logins, as many as the bench made"
