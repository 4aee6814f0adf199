#!/bin/sh
# fuzz.sh: builds the libFuzzer targets of fuzz/ (clang, ASan+UBSan), replays saved findings,
# then fuzzes each target for FUZZ_SECONDS (default 60); exits non-zero on any new finding.
#
#   scripts/fuzz.sh                 build, replay, fuzz every target
#   FUZZ_SECONDS=10 scripts/fuzz.sh shorter runs
#   FUZZ_TARGETS="fuzz_socks5" scripts/fuzz.sh
#   FUZZ_JOBS=1 scripts/fuzz.sh     one target at a time (default: one per core)
#
# Build directories (ignored by git): build-fuzz-lib (the library, built by the top-level
# CMakeLists.txt with clang, sanitizers and coverage), build-fuzz (the targets).
# A crash, leak or timeout is minimized and saved as fuzz/regressions/<target>/<kind>-<sha1>;
# from then on every run replays it and fails until the library is fixed. A finding that is
# known and still open goes in fuzz/known/<target>/ instead: replayed and reported, not fatal.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-"fuzz_client fuzz_socks5 fuzz_httpconnect fuzz_connect_args fuzz_parsers fuzz_ssh_config fuzz_tokenizer fuzz_cli_url fuzz_command"}
LIB_BUILD=${FUZZ_LIB_BUILD:-$ROOT/build-fuzz-lib}
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { printf 'fuzz.sh: %s\n' "$*" >&2; }

# Largest input per target: enough for a whole session (client), an HTTP head past its
# 8192-byte limit (httpconnect), the longest SOCKS5 exchange; the rest stays small.
max_len() {
    case $1 in
    fuzz_client) echo 4096 ;;
    fuzz_httpconnect) echo 8400 ;;
    fuzz_socks5) echo 600 ;;
    fuzz_ssh_config) echo 1024 ;;
    *) echo 512 ;;
    esac
}

# ---------------------------------------------------------------- tools
# Only what this script needs; scripts/install-deps.sh covers the rest of the project.
install_missing() {
    pkgs="clang libclang-rt-14-dev cmake make pkg-config libssl-dev libssh2-1-dev libc-ares-dev libjson-c-dev"
    missing=""
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || { say "missing:$missing (no apt-get here)"; exit 1; }
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    say "installing:$missing"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
}
if command -v dpkg-query >/dev/null 2>&1; then
    install_missing
fi
command -v clang >/dev/null 2>&1 || { say "clang not found"; exit 1; }

# ---------------------------------------------------------------- build
# The library with the project's own build (so it follows any reorganisation of src/),
# plus coverage for libFuzzer; its plugin directory points nowhere, so no fuzz input can
# load an installed plugin (command:... would run a shell).
start=$(date +%s)
mkdir -p "$LIB_BUILD" "$BUILD"
LIB_LOG="$LIB_BUILD/fuzz-sh.log" FUZZ_LOG="$BUILD/fuzz-sh.log"
say "building the library in $LIB_BUILD"
CC=clang cmake -S "$ROOT" -B "$LIB_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIMAPWIRE_SANITIZE=ON -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF \
    -DIMAPWIRE_BUILD_BENCH=OFF -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
    -DIMAPWIRE_PLUGIN_DIR=/nonexistent/imapwire-fuzz-plugins >"$LIB_LOG" 2>&1 ||
    { tail -30 "$LIB_LOG" >&2; say "configuring the library failed"; exit 1; }
cmake --build "$LIB_BUILD" -j "$JOBS" --target imapwire_static >>"$LIB_LOG" 2>&1 ||
    { tail -30 "$LIB_LOG" >&2; say "building the library failed"; exit 1; }
say "building the fuzz targets in $BUILD"
cmake -S "$ROOT/fuzz" -B "$BUILD" -DCMAKE_C_COMPILER=clang \
    -DIMAPWIRE_FUZZ_LIB="$LIB_BUILD/libimapwire.a" >"$FUZZ_LOG" 2>&1 &&
    cmake --build "$BUILD" -j "$JOBS" >>"$FUZZ_LOG" 2>&1 ||
    { tail -30 "$FUZZ_LOG" >&2; say "building the fuzz targets failed"; exit 1; }
say "built in $(( $(date +%s) - start )) s"

WORK=$(mktemp -d /tmp/imapwire-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
failed=0
summary=""

# Common libFuzzer options: a unit that runs 20 s is a hang (nTimeout is 1 s), and
# more than 2 GB is a finding, not a machine to kill.
LF_OPTS="-rss_limit_mb=2048 -timeout=20"

# ---------------------------------------------------------------- replay
# Files given as arguments are run once each; the exit status says whether any failed.
replay() { # target dir fatal
    t=$1 dir=$2 fatal=$3
    [ -d "$dir" ] || return 0
    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        case $f in *.txt|*.md) continue ;; esac
        if "$BUILD/$t" $LF_OPTS "$f" >"$WORK/replay.log" 2>&1; then
            if [ "$fatal" = 1 ]; then
                say "replay $t: ${f#"$ROOT"/} passes"
            else
                say "replay $t: known finding ${f#"$ROOT"/} no longer reproduces:" \
                    "move it to fuzz/regressions/$t/"
            fi
        elif [ "$fatal" = 1 ]; then
            grep -E "ERROR|SUMMARY|broken promise|fuzz proxy|^    #[0-9]" "$WORK/replay.log" |
                head -20 >&2 || true
            say "replay $t: ${f#"$ROOT"/} FAILS"
            failed=1
        else
            say "replay $t: known open finding ${f#"$ROOT"/} still reproduces (not fatal)"
        fi
    done
}
for t in $FUZZ_TARGETS; do
    replay "$t" "$ROOT/fuzz/regressions/$t" 1
    replay "$t" "$ROOT/fuzz/known/$t" 0
done

# ---------------------------------------------------------------- fuzz
# Keeps the smallest input that still fails; a leak or timeout that does not minimize
# is kept as found.
save_finding() { # target artifact
    t=$1 art=$2
    kind=$(basename "$art" | sed 's/-.*//')
    min="$WORK/minimized-$t"
    rm -f "$min"
    if [ "$kind" = crash ] || [ "$kind" = leak ]; then
        "$BUILD/$t" $LF_OPTS -minimize_crash=1 -max_total_time=30 \
            -exact_artifact_path="$min" "$art" >"$WORK/minimize-$t.log" 2>&1 || true
    fi
    [ -s "$min" ] || cp "$art" "$min"
    mkdir -p "$ROOT/fuzz/regressions/$t"
    dest="$ROOT/fuzz/regressions/$t/$kind-$(sha1sum "$min" | cut -c1-16)"
    cp "$min" "$dest"
    say "$t: $kind saved as ${dest#"$ROOT"/} ($(wc -c <"$dest") bytes)"
}

# One target's run, its exit status in $WORK/$t.rc; runs in the background beside others.
fuzz_one() { # target
    t=$1 corpus="$WORK/corpus-$1" art="$WORK/artifacts-$1"
    mkdir -p "$corpus" "$art"
    # seeds, plus fixed findings: the neighbourhood of old bugs is worth another look
    cp "$ROOT/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
    cp "$ROOT/fuzz/regressions/$t/"* "$corpus/" 2>/dev/null || true
    rc=0
    "$BUILD/$t" $LF_OPTS -max_len="$(max_len "$t")" -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 -artifact_prefix="$art/" "$corpus" >"$WORK/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$WORK/$t.rc"
}

# The targets run $JOBS at a time (each is one process), so the whole costs the time of
# the targets divided by the cores, not their sum.
running=0
for t in $FUZZ_TARGETS; do
    say "$t: fuzzing for $FUZZ_SECONDS s (max_len $(max_len "$t"))"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait
        running=0
    fi
done
wait

for t in $FUZZ_TARGETS; do
    art="$WORK/artifacts-$t"
    rc=$(cat "$WORK/$t.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$WORK/$t.log" | tail -1)
    cov=$(grep -E '^#[0-9]+' "$WORK/$t.log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    line="$t: ${execs:-?} executions (${rate:-?}/s), coverage ${cov:-?}, exit $rc"
    say "$line"
    summary="$summary
  $line"
    if [ "$rc" -ne 0 ]; then
        failed=1
        grep -E "ERROR|SUMMARY|broken promise|fuzz proxy|^    #[0-9]" "$WORK/$t.log" |
            head -40 >&2 || true
        found=0
        for a in "$art"/*; do
            [ -f "$a" ] || continue
            save_finding "$t" "$a"
            found=1
        done
        [ "$found" = 1 ] || { tail -20 "$WORK/$t.log" >&2; say "$t failed without an artifact"; }
    fi
done

say "summary ($(( $(date +%s) - start )) s in all):$summary"
if [ "$failed" -ne 0 ]; then
    say "FAILED: see the findings above (saved under fuzz/regressions/)"
    exit 1
fi
say "passed"
