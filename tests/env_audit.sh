#!/bin/sh
# env_audit.sh: every getenv( in the library, its plugins and the imapwire command is
# secure_getenv, or has a "getenv: why" comment on its line or the four lines above it.
#   env_audit.sh SOURCE_DIR
# A setuid or file-capability program's caller chooses its environment; secure_getenv
# ignores it there (docs/security.md, "The environment").
set -u
src=$1

# audit FILE NAME: prints each unjustified getenv( of FILE; fails when there is one
audit() {
    awk -v name="$2" '
        { seen[NR % 5] = $0 }
        /^[ \t]*(\*|\/\*|\/\/)/ { next }            # a comment line speaks of getenv
        /(^|[^_A-Za-z0-9])getenv[ \t]*\(/ {
            why = 0
            for (i = 0; i < 5 && i < NR; i++)
                if (seen[(NR - i) % 5] ~ /getenv:/)
                    why = 1
            if (!why) {
                printf "%s:%d: getenv without secure_ or a \"getenv: why\" comment:%s\n", name, NR, $0
                bad = 1
            }
        }
        END { exit bad }' "$1"
}

# the audit itself must catch a plain getenv, and pass a justified one
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
printf 'int f(void)\n{\n    return getenv("HOME") != 0;\n}\n' >"$tmp/bare.c"
printf '/* getenv: only our own colours */\nint f(void) { return getenv("TERM") != 0; }\n' >"$tmp/why.c"
printf 'int f(void) { return secure_getenv("HOME") != 0; }\n' >"$tmp/secure.c"
fail=0
audit "$tmp/bare.c" bare.c >/dev/null && { echo "the audit missed a bare getenv"; fail=1; }
audit "$tmp/why.c" why.c || fail=1
audit "$tmp/secure.c" secure.c || fail=1

files=$(cd "$src" && find src plugins -name '*.[ch]' | sort)
n=0
for f in $files; do
    n=$((n + 1))
    audit "$src/$f" "$f" || fail=1
done
[ "$n" -ge 50 ] || { echo "only $n source files found under $src"; fail=1; }
justified=$(cd "$src" && grep -rn 'getenv:' src plugins | wc -l)
echo "env_audit: $n files, $justified justified plain getenv comments"
exit $fail
