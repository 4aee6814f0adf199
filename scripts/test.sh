#!/bin/sh
# Runs every imapwire test on this machine: installs what is missing, builds the normal
# and the ASan+UBSan configurations, and runs the whole ctest suite in both.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
status=0
for cfg in build:OFF build-asan:ON; do
    dir=${cfg%%:*}
    san=${cfg##*:}
    echo "=== $dir (sanitizers $san) ==="
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAPWIRE_SANITIZE="$san" >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    # abort_on_error makes any sanitizer report fail the test that caused it
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$dir" --output-on-failure || status=1
done
exit $status
