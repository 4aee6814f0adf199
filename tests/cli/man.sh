#!/bin/sh
# man.sh: the man page renders with no groff warning, and it and --help name every long
# option that main.c defines (the list is read from the source, so a new flag needs both).
#   man.sh SOURCE_DIR IMAPWIRE_BINARY
set -u
src=$1 bin=$2
page=$src/docs/imapwire.1
fail=0
warn=$(groff -man -Tutf8 -ww "$page" 2>&1 >/dev/null)
if [ -n "$warn" ]; then
    echo "groff warnings:"; echo "$warn"; fail=1
fi
text=$(groff -man -Tutf8 -P-cbou "$page" 2>/dev/null)
help=$("$bin" --help)
opts=$(sed -n 's/^    {"\([a-z-]*\)", .*/\1/p' "$src/src/cli/main.c")
n=0
for o in $opts; do
    n=$((n + 1))
    printf '%s\n' "$text" | grep -q -- "--$o" || { echo "man page lacks --$o"; fail=1; }
    printf '%s\n' "$help" | grep -q -- "--$o" || { echo "--help lacks --$o"; fail=1; }
done
[ "$n" -ge 20 ] || { echo "only $n options read from main.c"; fail=1; }
for c in connect fetch forward check tunnel; do
    printf '%s\n' "$text" | grep -q "^ *$c " || { echo "man page lacks the $c command"; fail=1; }
done
# every environment variable the tool or the library reads has its entry under
# ENVIRONMENT (the names are read from the source), and FILES names the files it reads
envsec=$(printf '%s\n' "$text" | sed -n '/^ENVIRONMENT$/,/^[A-Z][A-Z ]*$/p')
vars=$(grep -rhoE '(secure_)?getenv\("[A-Z_]+"\)|iw_copy_setting\([^;]*"[A-Z_]+"' "$src/src" "$src/plugins" |
       grep -oE '"[A-Z_]+"' | tr -d '"' | sort -u)
nv=0
for v in $vars; do
    nv=$((nv + 1))
    printf '%s\n' "$envsec" | grep -Eq "^ *$v( |\$)" || { echo "ENVIRONMENT lacks $v"; fail=1; }
done
[ "$nv" -ge 8 ] || { echo "only $nv variables read from the source"; fail=1; }
filesec=$(printf '%s\n' "$text" | sed -n '/^FILES$/,/^[A-Z][A-Z ]*$/p')
for f in "~/.netrc" "~/.ssh/config" "~/.ssh/known_hosts" "/dev/tty"; do
    printf '%s\n' "$filesec" | grep -qF -- "$f" || { echo "FILES lacks $f"; fail=1; }
done
echo "man.sh: $n options, $nv variables checked"
exit $fail
