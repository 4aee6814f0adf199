#!/bin/sh
# Proves docs/transport-sdk.md's example plugin from the doc's own text: extracts its first
# ```c block and first ```sh block, runs that build command verbatim, then drives the plugin.
#
#   doc_example_check.sh SOURCE_DIR LIBIMAPWIRE_SO WORK_DIR DOVECOT_ENV_SH
#
# The build command finds the headers with `pkg-config --cflags imapwire`; here that is
# answered by a .pc file pointing at the source tree, as an installed one would.
set -eu
src=$1 lib=$2 work=$3 envsh=$4
doc=$src/docs/transport-sdk.md
[ -r "$doc" ] || { echo "doc_example_check: $doc missing" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"

# The first fenced block of each language, without its fences.
block() {
    awk -v lang="$1" '
        !inside && $0 == "```" lang { inside = 1; next }
        inside && $0 == "```" { exit }
        inside { print }
    ' "$doc"
}

block c > "$work/example.c"
block sh > "$work/build.sh"
[ -s "$work/example.c" ] || { echo "doc_example_check: no \`\`\`c block in $doc" >&2; exit 1; }
[ -s "$work/build.sh" ] || { echo "doc_example_check: no \`\`\`sh block in $doc" >&2; exit 1; }

# The command names its source (NAME.c) and output (-o NAME.so): use the doc's names.
cfile=$(grep -o '[A-Za-z0-9_-]*\.c\b' "$work/build.sh" | head -n 1)
sofile=$(sed -n 's/.*-o[ ]*\([A-Za-z0-9_-]*\.so\).*/\1/p' "$work/build.sh" | head -n 1)
[ -n "$cfile" ] && [ -n "$sofile" ] ||
    { echo "doc_example_check: cannot find NAME.c and -o NAME.so in the build command" >&2; exit 1; }
mv "$work/example.c" "$work/$cfile"

mkdir -p "$work/pkgconfig"
cat > "$work/pkgconfig/imapwire.pc" <<EOF
Name: imapwire
Description: imapwire headers from the source tree (doc example check)
Version: 0
Cflags: -I$src/include
Libs: -L$(dirname "$lib") -limapwire
EOF

echo "doc_example_check: building with the doc's command:"
sed 's/^/    /' "$work/build.sh"
(cd "$work" && PKG_CONFIG_PATH="$work/pkgconfig" PKG_CONFIG_LIBDIR="$work/pkgconfig" \
    sh -eu ./build.sh)
[ -f "$work/$sofile" ] || { echo "doc_example_check: the command did not make $sofile" >&2; exit 1; }

# What the doc promises a plugin exports, and nothing that would clash with the library.
nm -D --defined-only "$work/$sofile" | grep -q ' imapwire_plugin_init$' ||
    { echo "doc_example_check: $sofile does not export imapwire_plugin_init" >&2; exit 1; }

# The type's name is the plugin's file name in the doc's example.
name=${sofile%.so}
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror ${IW_DOC_CFLAGS:-} -I"$src/include" -o "$work/doc_driver" \
    "$src/tests/sdk/doc_driver.c" "$lib" -Wl,-rpath,"$(dirname "$lib")"

. "$envsh"
"$work/doc_driver" "$work/$sofile" "$name" "$DOVECOT_HOST" "$DOVECOT_PORT" \
    "$DOVECOT_USER" "$DOVECOT_PASS" "$DOVECOT_MSG1"
rm -rf "$work"
