#!/usr/bin/env bash
# Builds imapwire_bench (Release, in build-bench/ only) and runs it against a private
# Dovecot on loopback: imapwire vs libcurl connect+login+logout, reported as ratios,
# over plain TCP, implicit TLS (IMAPS) and STARTTLS.
#
#   scripts/bench.sh [imapwire_bench options]    e.g. --rounds 20 --batch 100
#
# Safe to rerun: the build is incremental and each run uses its own Dovecot (with TLS,
# certificates made at start) in a fresh temporary directory, stopped and removed on
# exit whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/bench_env.sh"
bench_build imapwire_bench
BENCH="$BUILD/bench/imapwire_bench"
[ -x "$BENCH" ] || { echo "bench.sh: $BENCH was not built (is libcurl installed?)" >&2; exit 1; }
bench_dovecot bench

logins=0 tls_logins=0
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
    case " $* " in
        *" --tls implicit "* | *" --tls starttls "*) tls_logins=$(( tls_logins + ${n:-0} )) ;;
    esac
}

echo "== plain: verify, the commands both sides send (secrets redacted)"
run --verify
echo
echo "== plain, headline: identical exchange on the wire"
run "$@"
echo
echo "== plain, secondary: each library's default exchange (imapwire skips CAPABILITY)"
run --exchange natural "$@"

for mode in implicit starttls; do
    T=(--tls "$mode" --ca "$CA")
    echo
    echo "== TLS $mode: verify"
    run "${T[@]}" --verify
    echo
    echo "== TLS $mode, full handshake on both sides: imapwire reset before each connect" \
         "(no SSL_CTX cache, no session), curl a fresh easy handle each"
    run "${T[@]}" --iw-tls-cache reset "$@"
    echo
    echo "== TLS $mode, resumption on both sides where the library can: imapwire as is," \
         "curl with a CURLSH sharing SSL sessions"
    run "${T[@]}" --curl-share-ssl "$@"
    echo
    echo "== TLS $mode, each library's default: imapwire as is, curl a fresh easy handle each"
    run "${T[@]}" "$@"
done

# Every connect must have logged in for real, and every TLS one over TLS: Dovecot's own
# counts must match ours ("TLS" in its Login line; loopback in clear says "secured").
seen=0
for _ in $(seq 1 50); do
    seen=$(grep -c 'imap-login: Info: Login: user=<' "$LOG" || true)
    [ "$seen" -ge "$logins" ] && break
    sleep 0.1
done
seen_tls=$(grep 'imap-login: Info: Login: user=<' "$LOG" | grep -c ', TLS, ' || true)
echo
if [ "$seen" -ne "$logins" ]; then
    echo "bench.sh: Dovecot logged $seen logins, the bench made $logins" >&2
    exit 1
fi
if [ "$seen_tls" -ne "$tls_logins" ]; then
    echo "bench.sh: Dovecot logged $seen_tls TLS logins, the TLS benches made $tls_logins" >&2
    exit 1
fi
echo "dovecot log: $seen logins ($seen_tls over TLS), as many as the bench made"
