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

# The shared library's users need none of its dependencies' development files: with
# pkg-config finding nothing and OpenSSL's headers out of reach, find_package still works.
PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH= \
    cmake -S "$here/shared_only" -B "$scratch/shared-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DOPENSSL_ROOT_DIR=/nonexistent -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON \
    -DCMAKE_C_FLAGS="$cc_flags" >/dev/null
cmake --build "$scratch/shared-build" >/dev/null
"$scratch/shared-build/consumer_shared" "$DOVECOT_HOST" "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS"

# Every example as a user copies it: standalone, strict C11, against the installed tree.
src_examples=$src/examples
for ex in "$src_examples"/*.c; do
    name=$(basename "$ex" .c)
    extra=""
    if [ "$name" = uv_connects ]; then
        # shellcheck disable=SC2086
        extra=$(PKG_CONFIG_PATH= pkg-config --cflags --libs libuv 2>/dev/null) || {
            echo "run.sh: libuv not found, $name not built"
            continue
        }
    fi
    # shellcheck disable=SC2046,SC2086
    cc -std=c11 -Wall -Wextra -pedantic -Werror $cc_flags -o "$scratch/ex_$name" "$ex" \
        $(pkg-config --cflags --libs imapwire) $extra
done
echo "run.sh: every example builds with -std=c11 -Wall -Wextra -pedantic -Werror"

# The README's first program compiles as shown (strict C11, warnings as errors).
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$src/README.md" >"$scratch/first.c"
[ -s "$scratch/first.c" ] || { echo "run.sh: no C program in README.md" >&2; exit 1; }
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -pedantic -Werror $cc_flags -o "$scratch/first" "$scratch/first.c" \
    $(pkg-config --cflags --libs imapwire)
echo "run.sh: README's first program builds"
rm -rf "$scratch"
