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
echo "man.sh: $n options checked"
exit $fail
