#!/bin/sh
# doxygen_strict.sh: the API reference's check must catch an undocumented public function.
# Runs the project's Doxyfile on a copy of the headers with ImapGetTimings' doc comment
# removed: doxygen must fail and name the function.
#   doxygen_strict.sh BUILD_DIR SCRATCH_DIR
set -u
build=${1:?BUILD_DIR} scratch=${2:?SCRATCH_DIR}
doxygen=$(command -v doxygen) || { echo "doxygen not found: run scripts/install-deps.sh"; exit 1; }
rm -rf "$scratch"
mkdir -p "$scratch/imapwire" "$scratch/out"
src=$(sed -n 's/^INPUT *= *\(.*\)\/imapwire\.h.*/\1/p' "$build/Doxyfile")
cp "$src/imapwire.h" "$src/transport.h" "$scratch/imapwire/"
# the one-line doc comment just above ImapGetTimings goes
awk '/^\/\*\* Fills lpTimings/ { skip = 1 } skip && /\*\/$/ { skip = 0; next } !skip' \
    "$src/imapwire.h" > "$scratch/imapwire/imapwire.h"
if cmp -s "$src/imapwire.h" "$scratch/imapwire/imapwire.h"; then
    echo "could not remove the comment of ImapGetTimings: the header changed"; exit 1
fi
{ cat "$build/Doxyfile"
  echo "INPUT = $scratch/imapwire/imapwire.h $scratch/imapwire/transport.h"
  echo "OUTPUT_DIRECTORY = $scratch/out"
  echo "WARN_LOGFILE = $scratch/warnings.log"; } | "$doxygen" - >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then echo "doxygen passed a header with an undocumented function"; exit 1; fi
grep -q 'ImapGetTimings.*not documented' "$scratch/warnings.log" ||
    { echo "the log does not name ImapGetTimings:"; cat "$scratch/warnings.log"; exit 1; }
echo "doxygen failed (exit $rc) and named the undocumented function, as it must"
