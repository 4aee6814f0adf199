#!/bin/sh
# layering.sh: fails when a source file includes a header from a part of the library
# above its own, so the dependency order (docs/architecture.md) stays true.
# Order, lowest first: core/runtime, core/transport, security, transports, core/imap,
# core/api. A file may include headers of its own part or of parts below it.
# src/cli (the imapwire command) is a program over the public API: rank -1, so any
# include of a library part is refused and only its own headers are allowed.
set -eu
src=${1:?usage: layering.sh SRC_DIR}
cd "$src"

rank() {
    case $1 in
        src/core/runtime/*)   echo 0 ;;
        src/core/transport/*) echo 1 ;;
        src/security/*)       echo 2 ;;
        src/transports/*)     echo 3 ;;
        src/core/imap/*)      echo 4 ;;
        src/core/api/*)       echo 5 ;;
        src/cli/*)            echo -1 ;;
        *)                    echo 9 ;;
    esac
}

# Known exceptions, each with the reason it is still there; the list only shrinks.
allowed() {
    case "$1 -> $2" in
        # none today; an entry here names the file, the header and why
        "") return 0 ;;
    esac
    return 1
}

bad=0
checked=0
for f in $(find src -name '*.[ch]' | sort); do
    dir=$(dirname "$f")
    from=$(rank "$f")
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        target=$(realpath -m --relative-to=. "$dir/$inc")
        if [ ! -e "$target" ]; then
            echo "layering: $f includes \"$inc\", which is not a path relative to it"
            bad=1
            continue
        fi
        to=$(rank "$target")
        checked=$((checked + 1))
        if [ "$to" -gt "$from" ] && ! allowed "$f" "$target"; then
            echo "layering: $f (rank $from) includes $target (rank $to), a part above it"
            bad=1
        fi
    done
done
[ "$checked" -gt 50 ] || { echo "layering: only $checked includes seen"; exit 1; }
echo "layering: $checked includes checked"
exit $bad
