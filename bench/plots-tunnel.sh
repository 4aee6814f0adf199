#!/usr/bin/env bash
# bench/plots-tunnel.sh: one command for docs/performance.md's SSH tunnel chart: the Nth
# connect + login over a shared session beside a direct one, and FETCH beside `ssh -L`.
#
#   bench/plots-tunnel.sh [ROUNDS]        default 15 (the bench's FETCH takes at most 15)
#
# Runs scripts/bench-tunnel.sh (its own sshd and Dovecot, stopped on exit) and writes
# docs/performance-tunnel.dat (two blocks: the connects, the fetches) and
# docs/performance-tunnel.png.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/docs"
ROUNDS=${1:-15}
. "$ROOT/bench/bench_env.sh"
DAT="$OUT/performance-tunnel.dat"
plot_setup "$DAT"
if [ -n "${PLOT_ONLY:-}" ]; then
    ROUNDS=$(sed -n 1p "$DAT" | sed 's/.*plots-tunnel.sh \([0-9]*\).*/\1/')
else
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
ROUNDS=$ROUNDS bash "$ROOT/scripts/bench-tunnel.sh" | tee "$RAW"
LOAD1=$(bench_load)

# The bench's lines: "connect+login: shared-session tunnelled connect: median T us (CPU C
# ms); direct connect: median D us (CPU E ms); ..." and "FETCH S MB (R rounds): in-process
# tunnel median T us (M MB/s, CPU C ms), direct ... through ssh -L ...".
num_after() {   # the number after the Nth match of $2 in $1
    printf '%s\n' "$1" | grep -o "$2 [0-9.]*" | sed -n "${3}p" | awk '{ print $NF }'
}
{
    echo "# SSH tunnel, bench/plots-tunnel.sh $ROUNDS (scripts/bench-tunnel.sh, ROUNDS=$ROUNDS)"
    echo "# $MACHINE; load (1, 5, 15 min) before: $LOAD0; after: $LOAD1"
    echo "# libssh2 $(dpkg-query -W -f='${Version}' libssh2-1 2>/dev/null), aes128-ctr + hmac-sha2-256"
    echo "# block 0, Nth connect over a shared session: route, wall_ms (connect + login, median),"
    echo "# cpu_ms (connect + login + logout, client process, mean)"
    L=$(grep '^connect+login: shared-session' "$RAW")
    echo "\"in-process tunnel\" $(awk -v v="$(num_after "$L" median 1)" 'BEGIN { print v / 1000 }') $(num_after "$L" CPU 1)"
    echo "\"direct TCP\" $(awk -v v="$(num_after "$L" median 2)" 'BEGIN { print v / 1000 }') $(num_after "$L" CPU 2)"
    printf '\n\n'
    echo "# block 1, FETCH one message (medians of min(ROUNDS, 15) rounds, 5 at 49 MiB; CPU is the client process's, mean per fetch):"
    echo "# MiB tunnel_MB/s ssh-L_MB/s direct_MB/s tunnel_cpu_ms ssh-L_client_cpu_ms direct_cpu_ms"
    grep '^FETCH ' "$RAW" | while read -r L; do
        echo "$(num_after "$L" FETCH 1) $(printf '%s\n' "$L" | grep -o '(\?[0-9]* MB/s' | tr -d '(' |
              awk '{ v[NR] = $1 } END { print v[1], v[3], v[2] }') $(num_after "$L" CPU 1) \
$(num_after "$L" CPU 3) $(num_after "$L" CPU 2)"
    done
} >"$DAT"
fi

gnuplot <<EOF
set terminal pngcairo noenhanced size 1100,460 font ",10"
set output "$OUT/performance-tunnel.png"
set multiplot layout 1,3 title "SSH tunnel, medians of $ROUNDS rounds, 5 for the 49 MiB FETCH ($MACHINE; 1-min load ${LOAD0%%,*} before, ${LOAD1%%,*} after)" \
    margins 0.06,0.98,0.2,0.84 spacing 0.07,0.1
set style fill solid 0.85 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set offsets 0.4, 0.4, graph 0.1, 0
set xrange [-0.6:1.6]
set title "Nth connect + login, wall time"
set ylabel "time (ms)"
plot "$DAT" index 0 using 0:2:(\$0 == 0 ? 0x1b6ac9 : 0x8c8c8c):xtic(1) with boxes lc rgb variable notitle, \
     "" index 0 using 0:2:(sprintf("%.2f", \$2)) with labels offset 0,0.8 notitle
set title "client CPU, connect + login + logout"
set ylabel "CPU (ms)"
plot "$DAT" index 0 using 0:3:(\$0 == 0 ? 0x1b6ac9 : 0x8c8c8c):xtic(1) with boxes lc rgb variable notitle, \
     "" index 0 using 0:3:(sprintf("%.2f", \$3)) with labels offset 0,0.8 notitle
set title "FETCH one message"
set ylabel "throughput (MB/s)"
set xrange [*:*]
set offsets 0, 0, graph 0.1, 0
set style data histograms
set style histogram clustered gap 1
set xlabel "message size (MiB; 4.77 MiB = 5 MB)"
plot "$DAT" index 1 using 2:xtic(sprintf("%g", \$1)) lc rgb "#1b6ac9" notitle, \
     "" index 1 using 3 lc rgb "#d4570f" notitle, \
     "" index 1 using 4 lc rgb "#8c8c8c" notitle, \
     "" index 1 using (\$0 - 0.27):2:2 with labels offset 0,0.7 notitle, \
     "" index 1 using (\$0):3:3 with labels offset 0,0.7 notitle, \
     "" index 1 using (\$0 + 0.27):4:4 with labels offset 0,0.7 notitle
$(legend_strip)
set style fill solid 0.85 border -1
plot NaN with boxes lc rgb "#1b6ac9" title "in-process tunnel", \
     NaN with boxes lc rgb "#d4570f" title "ssh -L, long-lived, same cipher + MAC", \
     NaN with boxes lc rgb "#8c8c8c" title "direct TCP"
unset multiplot
EOF
echo "plots-tunnel.sh: wrote $DAT and $OUT/performance-tunnel.png"
