#!/usr/bin/env bash
# bench/plots.sh: one command for docs/performance.md's plots: N concurrent connects on the
# library's loop beside libcurl's multi interface (idle_bench), drawn with gnuplot.
#
#   bench/plots.sh [N ...]      default N: 1000 2500 5000 10000 15000 19000
#
# Writes docs/performance-connects.dat (the measurements) and docs/performance-connects.png
# (wall time and RSS per connection against N, both libraries). The FETCH and SSH tunnel
# charts have their own commands: bench/plots-fetch.sh, bench/plots-tunnel.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/docs"
COUNTS=${*:-"1000 2500 5000 10000 15000 19000"}

. "$ROOT/bench/bench_env.sh"
DAT="$OUT/performance-connects.dat"
plot_setup "$DAT"
if [ -z "${PLOT_ONLY:-}" ]; then
bench_build imapwire_idle_bench imapwire_greeter
LOAD0=$(bench_load)

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
# shellcheck disable=SC2086
"$BUILD/bench/imapwire_idle_bench" "$BUILD/bench/imapwire_greeter" $COUNTS --idle 1 \
    --no-curl-above 1000000 | tee "$RAW"
LOAD1=$(bench_load)

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
    print "# N concurrent connects (greeting + CAPABILITY), bench/plots.sh'"${*:+ $*}"'"
    print "# '"$MACHINE; load (1, 5, 15 min) before: $LOAD0; after: $LOAD1"'"
    print "# N iw_wall_ms iw_cpu_ms iw_kb_per_conn curl_wall_ms curl_cpu_ms curl_kb_per_conn"
    for (i = 1; i <= k; i++)
        if (order[i] in cu)
            print order[i], iw[order[i]], cu[order[i]]
}' "$RAW" >"$DAT"
fi

gnuplot <<EOF
set terminal pngcairo noenhanced size 1100,460 font ",10"
set output "$OUT/performance-connects.png"
set multiplot layout 1,2 title "N concurrent connects, one loop thread, local greeter ($MACHINE; 1-min load ${LOAD0%%,*} before, ${LOAD1%%,*} after)" \
    margins 0.07,0.98,0.22,0.84 spacing 0.09,0.1
set style line 1 lc rgb "#1b6ac9" lw 2 pt 7 ps 1.1
set style line 2 lc rgb "#8c8c8c" lw 2 dt 2 pt 5 ps 1.1
set xlabel "concurrent connections"
set xtics 5000
set grid ytics
set yrange [0:*]
set title "time to connect all (greeting + CAPABILITY)"
set ylabel "wall time (ms)"
plot "$DAT" using 1:2 with linespoints ls 1 notitle, \
     "" using 1:5 with linespoints ls 2 notitle
set title "memory held per connection"
set ylabel "RSS per connection (KB)"
plot "$DAT" using 1:4 with linespoints ls 1 notitle, \
     "" using 1:7 with linespoints ls 2 notitle
$(legend_strip)
plot NaN with linespoints ls 1 title "imapwire (ImapAsyncConnect, one loop thread)", \
     NaN with linespoints ls 2 title "libcurl multi (CURLOPT_CONNECT_ONLY)"
unset multiplot
EOF
echo "plots.sh: wrote $DAT and $OUT/performance-connects.png"
