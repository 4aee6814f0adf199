#!/bin/sh
# uv_connects_test.sh: runs uv_connects against the Dovecot that the test harness
# started, reading host, port and user from its env file (not sourced: values vary).
set -eu
env=${1:?usage: uv_connects_test.sh ENV_FILE BINARY [COUNT]}
bin=${2:?usage: uv_connects_test.sh ENV_FILE BINARY [COUNT]}
count=${3:-100}
get() { sed -n "s/^$1=//p" "$env" | head -n 1; }
exec "$bin" "$(get DOVECOT_HOST)" "$(get DOVECOT_PORT)" "$count" "$(get DOVECOT_USER)" "$(get DOVECOT_PASS)"
