#!/bin/sh
# Runs every imapwire test on this machine: installs what is missing, builds the normal
# and the ASan+UBSan configurations, runs the whole ctest suite in both, the threaded
# suites under ThreadSanitizer, then the fuzzers. Ends with one "N passed, N failed" line.
# With --quick, only the fast tier (under 2 minutes).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Suites side by side, two per core: most of a suite's time is spent waiting (for a
# timeout, a server, a peer that is meant to stall), not computing. CTEST_JOBS=1 runs
# them one at a time.
ctest_jobs=${CTEST_JOBS:-$((jobs * 2))}
status=0
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds ctest's "N% tests passed, F tests failed out of T" in $log to the totals (a run
# without that line counts as one failure).
count() {
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [ -n "$line" ]; then
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
        t=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
        failed=$((failed + f))
        passed=$((passed + t - f))
    else
        failed=$((failed + 1))
    fi
}

# name, cmake options, then optional ctest arguments
run_build() {
    dir=$1
    opts=$2
    shift 2
    echo "=== $dir ($opts) ==="
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo $opts >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    # abort_on_error / halt_on_error make any sanitizer report fail the test behind it
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        ctest --test-dir "$dir" --output-on-failure -j "$ctest_jobs" "$@" >"$log" 2>&1 || status=1
    cat "$log"
    count
}

# --quick: the fast tier for a change in progress (normal build only): the unit suites,
# the layering and consumer checks, and the core integration suites against Dovecot.
if [ "${1:-}" = "--quick" ]; then
    t0=$(date +%s)
    run_build build "-DIMAPWIRE_SANITIZE=OFF" -L '^(unit|quick)$'
    echo "quick tier: $(( $(date +%s) - t0 )) s"
    echo "$passed passed, $failed failed"
    exit $status
fi

# the soak (an hour) and the valgrind run have their own commands (README)
run_build build "-DIMAPWIRE_SANITIZE=OFF" -LE '^(soak|valgrind|oom-full)$'
run_build build-asan "-DIMAPWIRE_SANITIZE=ON" -LE '^(soak|valgrind|oom-full)$'

# where threads meet: the loop thread, async connects, forwards, FREETHREAD handles and
# SSH sessions shared between threads
run_build build-tsan "-DIMAPWIRE_TSAN=ON" \
    -R '^(test_loop|test_async|test_handles|test_forward|test_ssh|test_ssh_jump|test_loop_stall|test_loop_owned|test_inside_matrix|test_known_hosts|test_errinfo)$'

# The libFuzzer targets (clang, ASan+UBSan): saved findings replayed, then each target
# fuzzed for FUZZ_SECONDS; any crash, leak or timeout fails the run.
# 20 s a target in this command, each starting from the seeds in fuzz/corpus;
# FUZZ_SECONDS=600 for a longer look.
echo "=== fuzz (${FUZZ_SECONDS:-20} s per target) ==="
if FUZZ_SECONDS=${FUZZ_SECONDS:-20} ./scripts/fuzz.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    status=1
fi
echo "$passed passed, $failed failed"
exit $status
