#!/usr/bin/env bash
# Resolution time through imapwire (c-ares) beside glibc's getaddrinfo for the same name
# on the same dnsmasq. glibc only asks port 53 of the servers in /etc/resolv.conf, so the
# bench runs in a private mount namespace where that file names our dnsmasq on
# 127.0.0.54:53; the machine's own resolv.conf is never touched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
sh "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_resolve_bench -j "$(nproc)" >/dev/null

DIR=$(mktemp -d /tmp/imapwire-resolve.XXXXXX)
chmod 755 "$DIR"
cleanup() {
    [ -f "$DIR/dns53.pid" ] && kill "$(cat "$DIR/dns53.pid")" 2>/dev/null || true
    bash "$ROOT/tests/harness/dnsmasq.sh" stop "$DIR/dns" >/dev/null 2>&1 || true
    bash "$ROOT/tests/harness/dovecot.sh" stop "$DIR/dovecot" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
bash "$ROOT/tests/harness/dovecot.sh" start "$DIR/dovecot" >/dev/null
bash "$ROOT/tests/harness/dnsmasq.sh" start "$DIR/dns" >/dev/null
. "$DIR/dovecot/env.sh"
# A second dnsmasq with the same zone, where glibc can reach it.
sed -e 's/^port=.*/port=53/' -e 's/^listen-address=.*/listen-address=127.0.0.54/' \
    -e "s#^pid-file=.*#pid-file=$DIR/dns53.pid#" -e "s#^log-facility=.*#log-facility=$DIR/dns53.log#" \
    "$DIR/dns/dnsmasq.conf" > "$DIR/dns53.conf"
grep -q '^pid-file=' "$DIR/dns53.conf" || echo "pid-file=$DIR/dns53.pid" >> "$DIR/dns53.conf"
dnsmasq --conf-file="$DIR/dns53.conf" --keep-in-foreground & echo $! > "$DIR/dns53.pid"
sleep 0.3
echo "nameserver 127.0.0.54" > "$DIR/resolv.conf"
export IMAPWIRE_DNS_SERVERS=127.0.0.54:53
unshare -m sh -c "mount --bind '$DIR/resolv.conf' /etc/resolv.conf && \
    '$BUILD/bench/imapwire_resolve_bench' v4.imapwire.test '$DOVECOT_PORT' ${ROUNDS:-10} ${PER:-100}"
