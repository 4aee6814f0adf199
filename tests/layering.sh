#!/bin/sh
# layering.sh: fails when a source file includes a header from a part of the library
# above its own, so the dependency order (docs/architecture.md) stays true.
# Order, lowest first: core/runtime, core/transport, security, transports, core/imap,
# core/api. A file may include headers of its own part or of parts below it.
# src/cli (the imapwire command) is a program over the public API: rank -1, so any
# include of a library part is refused and only its own headers are allowed.
# Given the build directory too, it also reads the library's object files with nm: an
# undefined symbol of one part that an object of a part above defines is a call up the
# layers, which includes cannot show (a declaration may sit in the wrong header).
set -eu
src=${1:?usage: layering.sh SRC_DIR [BUILD_DIR]}
build=${2:-}
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

# Symbols: each object's external definitions and references as "symbol rank source",
# joined on the symbol; a reference to a definition of a higher rank fails.
if [ -n "$build" ]; then
    objs=$build/CMakeFiles/imapwire_objects.dir
    [ -d "$objs/src" ] || { echo "layering: no object files under $objs"; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    for o in $(cd "$objs" && find src -name '*.c.o' | sort); do
        f=${o%.o}
        r=$(rank "$f")
        nm -P -g "$objs/$o" | awk -v r="$r" -v f="$f" -v d="$tmp/defs" -v u="$tmp/refs" '
            $2 == "U" { print $1, r, f >> u; next }
            { print $1, r, f >> d }'
    done
    export LC_ALL=C
    sort -k1,1 "$tmp/defs" > "$tmp/defs.s"
    sort -k1,1 "$tmp/refs" > "$tmp/refs.s"
    join "$tmp/refs.s" "$tmp/defs.s" > "$tmp/calls"
    calls=$(wc -l < "$tmp/calls")
    [ "$calls" -gt 100 ] || { echo "layering: only $calls symbol references seen"; exit 1; }
    # symbol, caller's rank and file, definer's rank and file
    while read -r sym ufrom ufile dto dfile; do
        if [ "$dto" -gt "$ufrom" ] && ! allowed "$ufile" "$dfile"; then
            echo "layering: $ufile (rank $ufrom) calls $sym, defined by $dfile (rank $dto), a part above it"
            bad=1
        fi
    done < "$tmp/calls"
    echo "layering: $calls symbol references between objects checked"
fi
exit $bad
