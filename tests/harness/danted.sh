#!/usr/bin/env bash
# Private Dante SOCKS5 server (danted) for imapwire's proxy plugin tests, requiring RFC 1929
# username/password, which Dante checks against a system account's password.
#
#   tests/harness/danted.sh start DIR   start (or restart) an instance in DIR
#   tests/harness/danted.sh stop DIR    stop the instance in DIR (if any)
#
# Needs root: it creates the account imapwire-socks (password socks-pass, set with chpasswd
# on every start) and Dante reads /etc/shadow as its privileged user. Listens on
# 127.0.0.1 only, on a random free port in 20000-60000, with a standalone config
# (/etc/danted.conf is not read). Connections to DANTED_BLOCK_PORT (a port number picked
# at start, on any host) are refused by a "socks block" rule: reply 0x02, logged as
# "block(1): tcp/connect ]: username%USER@CLIENT PROXY -> 0.0.0.0.0 DEST".
# After `start`, DIR/env holds KEY=value lines:
#   DANTED_HOST DANTED_PORT DANTED_USER DANTED_PASS DANTED_BLOCK_PORT DANTED_LOG
#   DANTED_PID DANTED_CONF DANTED_DIR
# and DIR/env.sh the same, shell-quoted. The port is printed on stdout.
#
# The log (DANTED_LOG) has one "pass(2): tcp/connect [: username%USER@CLIENT PROXY ->
# BOUND DEST" line per relayed connection (addresses as a.b.c.d.port).
#
# Optional environment: DANTED_BIN (default /usr/sbin/danted), DANTED_START_TIMEOUT
# (seconds, default 15).

set -eu

PROG=${0##*/}
SOCKS_USER=imapwire-socks
SOCKS_PASS=socks-pass
# serializes useradd/chpasswd of concurrent starts in different DIRs
USER_LOCK=/run/imapwire-danted-user.lock

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

usage() {
    printf 'usage: %s start|stop DIR\n' "$PROG" >&2
    exit 2
}

abs_dir() {
    local d=$1
    case $d in
        /*) ;;
        *) d="$PWD/$d" ;;
    esac
    while [ "${#d}" -gt 1 ] && [ "${d%/}" != "$d" ]; do
        d=${d%/}
    done
    case $d in
        / | *[!A-Za-z0-9._/@+,-]*)
            die "DIR '$d' is / or contains characters other than [A-Za-z0-9._/@+,-]" ;;
    esac
    printf '%s\n' "$d"
}

# A zombie still answers kill -0: only a process that is not one counts as alive.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ]
}

running_pid() {
    local dir=$1 pid comm
    [ -r "$dir/danted.pid" ] || return 0
    pid=$(head -n 1 "$dir/danted.pid" 2>/dev/null || true)
    case $pid in
        '' | *[!0-9]*) return 0 ;;
    esac
    alive "$pid" || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case $comm in
        danted*) printf '%s\n' "$pid" ;;
    esac
}

port_is_listening() {
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# Any socket on the port, in any state: a client's ephemeral port (32768-60999 on Linux)
# makes bind() fail as surely as a listener does, and tinyproxy then exits without a word.
port_is_used() {
    [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
}

pick_port() {
    local i port
    for i in $(seq 1 50); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40001 ))
        if ! port_is_used "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        : "$i"
    done
    die "no free TCP port found in 20000-60000 after 50 tries"
}

log_tail() {
    if [ -s "$1" ]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 30 "$1" >&2
        printf -- '--- end of log ---\n' >&2
    fi
}

do_stop() {
    local dir=$1 pid children i c any
    pid=$(running_pid "$dir")
    [ -n "$pid" ] || return 0
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    # wait up to 10 s (100 x 0.1 s) for the mother and her children
    for i in $(seq 1 100); do
        any=
        for c in $pid $children; do
            if alive "$c"; then any=1; fi
        done
        [ -z "$any" ] && break
        sleep 0.1
        : "$i"
    done
    if [ -n "$any" ]; then
        note "danted $pid did not exit within 10 s of SIGTERM; sending SIGKILL"
        for c in $pid $children; do
            kill -KILL "$c" 2>/dev/null || true
        done
    fi
    rm -f "$dir/danted.pid"
}

ensure_user() {
    local field
    (
        if command -v flock >/dev/null 2>&1; then
            flock -w 60 9 || die "timed out after 60 s waiting for the lock on $USER_LOCK"
        fi
        if ! getent passwd "$SOCKS_USER" >/dev/null 2>&1; then
            note "creating system user $SOCKS_USER"
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin --comment "imapwire SOCKS tests" \
                "$SOCKS_USER" >/dev/null 2>&1 ||
                getent passwd "$SOCKS_USER" >/dev/null 2>&1 ||
                die "could not create user $SOCKS_USER"
        fi
        # Dante's "username" method compares with the system password (crypt of the
        # shadow hash); a fresh hash also unlocks an account useradd left locked. Dante
        # runs crypt() for every connection: SHA-512 (5000 rounds, about 2 ms) instead of
        # Debian's default yescrypt (about 20 ms) keeps a 1,000-connect test short.
        printf '%s:%s\n' "$SOCKS_USER" "$SOCKS_PASS" | chpasswd -c SHA512 -s 5000 ||
            die "chpasswd failed for $SOCKS_USER"
        usermod --expiredate '' "$SOCKS_USER" >/dev/null 2>&1 || true
        chage --maxdays -1 --inactive -1 "$SOCKS_USER" >/dev/null 2>&1 || true
    ) 9>"$USER_LOCK"
    field=$(getent shadow "$SOCKS_USER" | cut -d: -f2)
    case $field in
        '' | '!'* | '*'*) die "account $SOCKS_USER is locked or has no password" ;;
    esac
}

write_conf() {
    local dir=$1 port=$2 block=$3
    cat > "$dir/danted.conf" <<EOF
# Generated by tests/harness/danted.sh - standalone; regenerated on every start.
logoutput: $dir/danted.log
internal: 127.0.0.1 port = $port
external: 127.0.0.1
# RFC 1929 username/password, checked against the system's password database.
socksmethod: username
clientmethod: none
user.privileged: root
user.unprivileged: nobody
timeout.negotiate: 15

client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error
}
# The destination refused by policy: reply 0x02 "not allowed by ruleset".
socks block {
    from: 0.0.0.0/0 to: 0.0.0.0/0 port = $block
    log: error connect
}
socks pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
    log: error connect disconnect
}
EOF
}

write_env() {
    local dir=$1 port=$2 block=$3 pid=$4 tmp line key val
    tmp="$dir/env.tmp.$$"
    {
        printf 'DANTED_HOST=127.0.0.1\n'
        printf 'DANTED_PORT=%s\n' "$port"
        printf 'DANTED_USER=%s\n' "$SOCKS_USER"
        printf 'DANTED_PASS=%s\n' "$SOCKS_PASS"
        printf 'DANTED_BLOCK_PORT=%s\n' "$block"
        printf 'DANTED_LOG=%s\n' "$dir/danted.log"
        printf 'DANTED_PID=%s\n' "$pid"
        printf 'DANTED_CONF=%s\n' "$dir/danted.conf"
        printf 'DANTED_DIR=%s\n' "$dir"
    } > "$tmp"
    mv -f "$tmp" "$dir/env"
    while IFS= read -r line; do
        key=${line%%=*}
        val=${line#*=}
        printf "%s='%s'\n" "$key" "$(printf '%s' "$val" | sed "s/'/'\\\\''/g")"
    done < "$dir/env" > "$tmp"
    mv -f "$tmp" "$dir/env.sh"
}

do_start() {
    local dir=$1 bin=${DANTED_BIN:-/usr/sbin/danted} timeout_s=${DANTED_START_TIMEOUT:-15}
    local attempt port block pid i up
    [ "$(id -u)" -eq 0 ] || die "needs root (system account, shadow passwords)"
    [ -x "$bin" ] || die "$bin not found (install dante-server)"
    command -v ss >/dev/null 2>&1 || die "ss not found (install iproute2)"

    mkdir -p "$dir"
    do_stop "$dir"
    chmod 0755 "$dir"
    rm -rf "$dir/tmp"
    # Dante keeps lock and shared-memory files in TMPDIR, used by root and by nobody.
    mkdir -p "$dir/tmp"
    chmod 1777 "$dir/tmp"
    rm -f "$dir/env" "$dir/env.sh"
    [ -e "$dir/danted.log" ] && mv -f "$dir/danted.log" "$dir/danted.log.prev"
    ensure_user

    # A port can be taken between the check and danted's bind(): retry with another.
    port=
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        block=$(pick_port)
        while [ "$block" = "$port" ]; do
            block=$(pick_port)
        done
        write_conf "$dir" "$port" "$block"
        "$bin" -V -f "$dir/danted.conf" >"$dir/check.out" 2>&1 ||
            { cat "$dir/check.out" >&2; die "danted rejected $dir/danted.conf"; }
        rm -f "$dir/danted.pid"
        TMPDIR=$dir/tmp "$bin" -D -f "$dir/danted.conf" -p "$dir/danted.pid" \
            >"$dir/start.out" 2>&1 </dev/null || true
        up=
        # bounded wait for the pid file and the listener (polling every 0.1 s)
        for i in $(seq 1 $(( timeout_s * 10 ))); do
            pid=$(running_pid "$dir")
            if [ -n "$pid" ] && port_is_listening "$port"; then
                up=1
                break
            fi
            if [ -z "$pid" ] && [ "$i" -gt 20 ]; then
                break          # no live mother after 2 s: it failed
            fi
            sleep 0.1
        done
        [ -n "$up" ] && break
        if [ "$attempt" -lt 5 ] &&
            grep -qs "Address already in use" "$dir/danted.log" "$dir/start.out"; then
            note "port $port got taken, retrying ($attempt)"
            do_stop "$dir"
            port=
            continue
        fi
        cat "$dir/start.out" >&2 || true
        log_tail "$dir/danted.log"
        do_stop "$dir"
        die "danted failed to start"
    done
    [ -n "$port" ] || die "could not bind a free port after 5 attempts"
    write_env "$dir" "$port" "$block" "$pid"
    printf '%s\n' "$port"
}

[ $# -eq 2 ] || usage
cmd=$1
DIR=$(abs_dir "$2")
case $cmd in
    start) do_start "$DIR" ;;
    stop) do_stop "$DIR" ;;
    *) usage ;;
esac
