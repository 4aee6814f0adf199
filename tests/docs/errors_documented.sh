#!/bin/sh
# errors_documented.sh: fails when an ST_ERROR_* code of the public header has no section
# in docs/errors.md, or its section gives another number than the header.
#   errors_documented.sh SOURCE_DIR
set -u
src=${1:?SOURCE_DIR}
header=$src/include/imapwire/imapwire.h doc=$src/docs/errors.md
[ -f "$doc" ] || { echo "no $doc"; exit 1; }
missing=0 count=0
# "#define ST_ERROR_NAME   12u" -> "ST_ERROR_NAME 12"
for pair in $(sed -n 's/^#define \(ST_ERROR_[A-Z_]*\) *\([0-9]*\)u.*/\1:\2/p' "$header"); do
    name=${pair%%:*} num=${pair#*:}
    count=$((count + 1))
    if ! grep -q "^### \`$name\` ($num)\$" "$doc"; then
        echo "docs/errors.md lacks the heading: ### \`$name\` ($num)"
        missing=$((missing + 1))
    fi
done
[ "$count" -gt 0 ] || { echo "no ST_ERROR_* found in $header"; exit 1; }
echo "$count codes in the header, $missing without a section"
[ "$missing" -eq 0 ]
