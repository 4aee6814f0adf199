#!/bin/sh
# Installs the build into a scratch prefix, then builds consumer.c as an outside program
# would (pkg-config, and CMake find_package) and runs it against the test Dovecot.
#   run.sh SOURCE_DIR BUILD_DIR SCRATCH_DIR DOVECOT_ENV
set -eu
src=$1 build=$2 scratch=$3 envfile=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch"
mkdir -p "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
. "$(dirname "$envfile")/env.sh"

libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -n 1)
# the shipped plugins land under the prefix too, beside the library that finds them
for p in socks5 httpconnect command; do
    [ -f "$(dirname "$libdir")/imapwire/plugins/$p.so" ] || {
        echo "run.sh: plugin $p.so not installed under $prefix" >&2
        exit 1
    }
done
export PKG_CONFIG_PATH="$libdir"
cc_flags="${IMAPWIRE_CONSUMER_CFLAGS:-}"
# shellcheck disable=SC2046,SC2086
cc -Wall -Wextra -Werror $cc_flags -o "$scratch/consumer_pc" "$here/consumer.c" \
    $(pkg-config --cflags --libs imapwire)
LD_LIBRARY_PATH="$(dirname "$libdir")" "$scratch/consumer_pc" \
    "$DOVECOT_HOST" "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS"

cmake -S "$here" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$cc_flags" >/dev/null
cmake --build "$scratch/cmake-build" >/dev/null
"$scratch/cmake-build/consumer_cmake" "$DOVECOT_HOST" "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS"
"$scratch/cmake-build/consumer_cmake_static" "$DOVECOT_HOST" "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS"
rm -rf "$scratch"
