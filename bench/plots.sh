#!/usr/bin/env bash
# bench/plots.sh: one command for docs/performance.md's plots: N concurrent connects on the
# library's loop beside libcurl's multi interface (idle_bench), drawn with gnuplot.
#
#   bench/plots.sh [N ...]      default N: 1000 2500 5000 10000 15000 19000
#
# Writes docs/performance-connects.dat (the measurements) and docs/performance-connects.png
# (wall time and RSS per connection against N, both libraries).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-bench"
OUT="$ROOT/docs"
COUNTS=${*:-"1000 2500 5000 10000 15000 19000"}

sh "$ROOT/scripts/install-deps.sh"
if ! command -v gnuplot >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target imapwire_idle_bench imapwire_greeter -j "$(nproc)" >/dev/null

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
# shellcheck disable=SC2086
"$BUILD/bench/imapwire_idle_bench" "$BUILD/bench/imapwire_greeter" $COUNTS --idle 1 \
    --no-curl-above 1000000 | tee "$RAW"

# one row per N: N, imapwire wall ms, CPU ms, KB/conn, libcurl wall ms, CPU ms, KB/conn
awk '
/^imapwire +N=[0-9]+ +connected/ {
    n = $2; sub("N=", "", n)
    match($0, /wall [0-9.]+ ms/); w = substr($0, RSTART + 5, RLENGTH - 8)
    match($0, /CPU [0-9.]+ ms/); c = substr($0, RSTART + 4, RLENGTH - 7)
    match($0, /RSS [0-9.]+ KB/); r = substr($0, RSTART + 4, RLENGTH - 7)
    iw[n] = w " " c " " r; order[++k] = n
}
/^libcurl +N=[0-9]+ +connected/ {
    n = $2; sub("N=", "", n)
    match($0, /wall [0-9.]+ ms/); w = substr($0, RSTART + 5, RLENGTH - 8)
    match($0, /CPU [0-9.]+ ms/); c = substr($0, RSTART + 4, RLENGTH - 7)
    match($0, /RSS [0-9.]+ KB/); r = substr($0, RSTART + 4, RLENGTH - 7)
    cu[n] = w " " c " " r
}
END {
    print "# N iw_wall_ms iw_cpu_ms iw_kb_per_conn curl_wall_ms curl_cpu_ms curl_kb_per_conn"
    for (i = 1; i <= k; i++)
        if (order[i] in cu)
            print order[i], iw[order[i]], cu[order[i]]
}' "$RAW" >"$OUT/performance-connects.dat"

gnuplot <<EOF
set terminal png size 1100,420
set output "$OUT/performance-connects.png"
set multiplot layout 1,2 title "N concurrent connects, one loop thread, local greeter ($(nproc) cores)"
set xlabel "connections"
set xtics 5000
set ylabel "wall ms"
set key left top
plot "$OUT/performance-connects.dat" using 1:2 with linespoints title "imapwire", \
     "" using 1:5 with linespoints title "libcurl multi"
set ylabel "RSS KB per connection"
set yrange [0:*]
set key right center
plot "$OUT/performance-connects.dat" using 1:4 with linespoints title "imapwire", \
     "" using 1:7 with linespoints title "libcurl multi"
unset multiplot
EOF
echo "plots.sh: wrote $OUT/performance-connects.dat and $OUT/performance-connects.png"
