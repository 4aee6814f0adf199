#!/bin/sh
# The project stands alone for its users: no file of it may point at the design folder
# that sits beside the repository on developers' machines (no user has it).
#   no_shared_refs.sh SOURCE_DIR
set -eu
src=$1
pattern='\.\./'"shared"'/'
# everything tracked, or every file of the tree when it is not a git checkout
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    hits=$(git -C "$src" grep -n -I -E "$pattern" -- . || true)
else
    hits=$(grep -rn -I -E "$pattern" "$src" --exclude-dir=.git --exclude-dir='build*' || true)
fi
if [ -n "$hits" ]; then
    echo "no_shared_refs: these lines point outside the project:" >&2
    echo "$hits" >&2
    exit 1
fi
echo "no_shared_refs: no file points outside the project"
