#!/bin/sh
# uv_connects_test.sh: runs uv_connects against the Dovecot that the test harness
# started, reading host, port and user from its env file (not sourced: values vary).
set -eu
usage="usage: uv_connects_test.sh ENV_FILE BINARY [COUNT [CUT_EVERY]]"
env=${1:?$usage}
bin=${2:?$usage}
count=${3:-100}
cut=${4:-0}
get() { sed -n "s/^$1=//p" "$env" | head -n 1; }
exec "$bin" --cut "$cut" "$(get DOVECOT_HOST)" "$(get DOVECOT_PORT)" "$count" "$(get DOVECOT_USER)" "$(get DOVECOT_PASS)"
