#!/usr/bin/env bash
# bench/plots-fetch.sh: one command for docs/performance.md's FETCH chart: throughput and
# CPU per MB against message size, imapwire beside the floor, plain and IMAPS.
#
#   bench/plots-fetch.sh [--rounds N] [--sizes MB,MB,...]   default: 15, 0.1,1,4.76,20,49
#
# Runs bench/fetch_bench.sh --fetch-only (its own Dovecot, stopped on exit) and writes
# docs/performance-fetch.dat (medians per size, one block per mode) and
# docs/performance-fetch.png.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/docs"
ROUNDS=15
SIZES=0.1,1,4.76,20,49
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--sizes MB,MB,...]" >&2; exit 2 ;;
    esac
done
. "$ROOT/bench/bench_env.sh"
DAT="$OUT/performance-fetch.dat"
plot_setup "$DAT"
if [ -n "${PLOT_ONLY:-}" ]; then
    ROUNDS=$(sed -n 1p "$DAT" | sed 's/.*--rounds \([0-9]*\).*/\1/')
    SIZES=$(sed -n 1p "$DAT" | sed 's/.*--sizes //')
else
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
bash "$ROOT/bench/fetch_bench.sh" --fetch-only --rounds "$ROUNDS" --sizes "$SIZES" | tee "$RAW"
LOAD1=$(bench_load)

# The bench prints a table per (size, mode); its last seven fields are MB/s, min, max,
# CPU ms, x floor, peak RSS and minflt. One gnuplot block per mode, a row per size.
{
    echo "# FETCH throughput, bench/plots-fetch.sh --rounds $ROUNDS --sizes $SIZES"
    echo "# $MACHINE; load (1, 5, 15 min) before: $LOAD0; after: $LOAD1"
    echo "# medians of $ROUNDS rounds; CPU is the client process's user + sys (getrusage), per MB;"
    echo "# floor = one blocking socket (SSL_read_ex for IMAPS), the body read straight into place"
    awk '
    /^FETCH [0-9.]+ MB, (plain|IMAPS),/ { size = $2; mode = $4; sub(",", "", mode)
                                          if (!(mode in seen)) { seen[mode] = 1; modes[++nm] = mode }
                                          if (!((mode, size) in row)) sizes[mode, ++ns[mode]] = size
                                          row[mode, size] = 1; next }
    /^  imapwire \(library buffer\)/ { lib[mode, size] = $(NF-6) }
    /^  imapwire \(caller buffer\)/  { buf[mode, size] = $(NF-6) }
    /^  floor \(malloc per fetch\)/  { flib[mode, size] = $(NF-6) }
    /^  floor \(caller buffer\)/     { fbuf[mode, size] = $(NF-6) }
    /^  libcurl/                     { cu[mode, size] = $(NF-6) }
    /^  CPU us \(median\):/           { libc[mode, size] = $4 / 1000; bufc[mode, size] = $5 / 1000
                                       flibc[mode, size] = $6 / 1000; fbufc[mode, size] = $7 / 1000
                                       cuc[mode, size] = $8 / 1000 }
    END {
        for (m = 1; m <= nm; m++) {
            md = modes[m]
            if (m > 1) printf "\n\n"
            printf "# %s: size_MB MB/s: iw_library_buf iw_caller_buf floor_malloc floor_caller_buf libcurl;", md
            print " CPU ms per MB: the same five"
            for (i = 1; i <= ns[md]; i++) {
                s = sizes[md, i]; k = md SUBSEP s
                printf "%s %s %s %s %s %s %.3f %.3f %.3f %.3f %.3f\n", s, lib[k], buf[k], flib[k],
                       fbuf[k], cu[k], libc[k] / s, bufc[k] / s, flibc[k] / s, fbufc[k] / s, cuc[k] / s
            }
        }
    }' "$RAW"
} >"$DAT"
fi

XT=$(echo "$SIZES" | tr ',' ' ')
gnuplot <<EOF
set terminal pngcairo noenhanced size 1100,760 font ",10"
set output "$OUT/performance-fetch.png"
set multiplot layout 2,2 title "FETCH one message, medians of $ROUNDS rounds ($MACHINE; 1-min load ${LOAD0%%,*} before, ${LOAD1%%,*} after)" \
    margins 0.07,0.98,0.15,0.91 spacing 0.08,0.14
set logscale x
set xrange [${SIZES%%,*}*0.7:${SIZES##*,}*1.4]
set xtics ($(for s in $XT; do printf '"%s" %s,' "$s" "$s"; done | sed 's/,$//'))
set xlabel "message size (MB)"
set grid ytics
set yrange [0:*]
set style line 1 lc rgb "#1b6ac9" lw 2 pt 7 ps 1.1
set style line 2 lc rgb "#d4570f" lw 2 pt 5 ps 1.1
set style line 3 lc rgb "#1b6ac9" lw 1.5 dt 2 pt 6 ps 1.1
set style line 4 lc rgb "#d4570f" lw 1.5 dt 2 pt 4 ps 1.1
# panels 0, 1: throughput (columns 2-5), plain and IMAPS; 2, 3: CPU per MB (columns 7-10)
array T[4] = ["plain TCP", "IMAPS (TLS 1.3)", "plain TCP: client CPU", "IMAPS: client CPU"]
do for [p=0:3] {
    m = p % 2
    c = p < 2 ? 1 : 6
    set title T[p + 1]
    set ylabel (p < 2 ? "throughput (MB/s)" : "CPU per MB (ms/MB)")
    plot for [s=1:4] "$DAT" index m using 1:(column(c + s)) with linespoints ls s notitle
}
$(legend_strip)
plot NaN with linespoints ls 1 title "imapwire, library buffer", \\
     NaN with linespoints ls 2 title "imapwire, caller buffer", \\
     NaN with linespoints ls 3 title "floor, malloc per fetch", \\
     NaN with linespoints ls 4 title "floor, caller buffer"
unset multiplot
EOF
echo "plots-fetch.sh: wrote $DAT and $OUT/performance-fetch.png"
