#!/bin/sh
# fnlen.sh: fails when a function in src/ or plugins/ runs over 80 lines (from the line
# with its name to its closing brace) or a .c file in src/ over 800, so neither grows back.
#   fnlen.sh SOURCE_DIR [ALLOW_FILE]
# ALLOW_FILE: one exception a line, "path:function reason" or "path reason" for a file
# (the reason is required); '#'
# starts a comment. Functions are found as this project writes them: the name line at
# column 0, the body's braces alone at column 0.
set -eu
src=${1:?usage: fnlen.sh SOURCE_DIR [ALLOW_FILE]}
allow=${2:-}
max_fn=80
max_file=800
cd "$src"

if [ -n "$allow" ]; then
    # an exception without its reason is refused, so each one says why it stays
    bad=$(grep -v -E '^[[:space:]]*(#|$)' "$allow" | grep -v -E '^[^[:space:]]+[[:space:]]+[^[:space:]]' || true)
    if [ -n "$bad" ]; then
        echo "fnlen: $allow: an exception needs 'path[:function] reason':" >&2
        echo "$bad" >&2
        exit 1
    fi
fi

files=$(find src plugins -name '*.c' | sort)
out=$(
    # shellcheck disable=SC2086  # the file list is paths without spaces
    awk -v max="$max_fn" '
        FNR == 1 { head = ""; start = 0; inside = 0 }
        # a column-0 line with a parenthesis names a function (or declares one)
        !inside && /^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ {
            head = $0; start = FNR
        }
        !inside && /^\{[[:space:]]*$/ && start { inside = 1 }
        inside && /^\}[[:space:]]*$/ {
            inside = 0
            n = FNR - start + 1
            name = head
            sub(/\(.*/, "", name)
            sub(/.*[ *]/, "", name)
            if (n > max)
                printf "%s:%s %d lines\n", FILENAME, name, n
            start = 0
        }
    ' $files
    for f in $(find src -name '*.c' | sort); do
        n=$(wc -l < "$f")
        [ "$n" -le "$max_file" ] || echo "$f $n lines (file)"
    done
)

fail=0
if [ -n "$out" ]; then
    while IFS= read -r line; do
        key=${line%% *}
        if [ -n "$allow" ] && awk -v k="$key" '$1 == k { f = 1 } END { exit !f }' "$allow"; then
            echo "fnlen: allowed: $line"
        else
            echo "fnlen: too long (functions over $max_fn, files over $max_file): $line" >&2
            fail=1
        fi
    done <<EOF
$out
EOF
fi
[ "$fail" -eq 0 ] && echo "fnlen: no function over $max_fn lines, no src file over $max_file"
exit "$fail"
