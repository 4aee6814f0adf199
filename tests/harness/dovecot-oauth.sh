#!/bin/sh
# dovecot-oauth.sh: a Dovecot whose XOAUTH2 and OAUTHBEARER logins go through its oauth2
# passdb to tests/fixtures/oauth_introspect, started first on a free loopback port.
#   dovecot-oauth.sh start|stop DIR INTROSPECT_BIN [post|get]
# After start, DIR/env also has DOVECOT_OAUTH_TOKEN (the one active token, random per
# start), DOVECOT_OAUTH_LOG (the introspection server's log) and DOVECOT_OAUTH_MODE.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-} dir=${2:-} bin=${3:-} mode=${4:-post}

stop_introspect() {
    if [ -r "$dir/introspect.pid" ]; then
        pid=$(cat "$dir/introspect.pid")
        # only our own process: the pid file's, if it still runs that program
        if [ -n "$pid" ] && grep -q oauth_introspect "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/introspect.pid"
    fi
}

case $cmd in
    start)
        [ -n "$dir" ] && [ -x "$bin" ] || { echo "usage: $0 start DIR BIN [post|get]" >&2; exit 2; }
        case $mode in post|get) ;; *) echo "mode: post or get" >&2; exit 2 ;; esac
        mkdir -p "$dir"
        stop_introspect
        rm -f "$dir/introspect.port" "$dir/introspect.log"
        token=iw-oauth-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
        "$bin" --token "$token" --user imapwire --port-file "$dir/introspect.port" \
            --log "$dir/introspect.log" --idle-exit 900 \
            </dev/null >"$dir/introspect.out" 2>&1 &
        echo $! > "$dir/introspect.pid"
        i=0
        while [ ! -s "$dir/introspect.port" ] && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        [ -s "$dir/introspect.port" ] || { echo "oauth_introspect did not start" >&2; exit 1; }
        port=$(cat "$dir/introspect.port")
        if [ "$mode" = post ]; then
            url=http://127.0.0.1:$port/introspect
        else
            url="http://127.0.0.1:$port/introspect?token="
        fi
        umask 077
        printf '%s\n' "introspection_mode = $mode" "introspection_url = $url" \
            'username_attribute = email' 'active_attribute = active' 'active_value = true' \
            'timeout_msecs = 5000' > "$dir/oauth2.conf.ext"
        DOVECOT_EXTRA_CONF=$here/dovecot-oauth.conf.in "$here/dovecot.sh" start "$dir"
        printf 'DOVECOT_OAUTH_TOKEN=%s\nDOVECOT_OAUTH_LOG=%s\nDOVECOT_OAUTH_MODE=%s\n' \
            "$token" "$dir/introspect.log" "$mode" >> "$dir/env" ;;
    stop)
        [ -n "$dir" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
        stop_introspect
        exec "$here/dovecot.sh" stop "$dir" ;;
    *) echo "usage: $0 start|stop DIR INTROSPECT_BIN [post|get]" >&2; exit 2 ;;
esac
