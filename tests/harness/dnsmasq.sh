#!/usr/bin/env bash
# Private dnsmasq DNS server for imapwire's resolver tests.
#
#   tests/harness/dnsmasq.sh start DIR   start (or restart) an instance in DIR
#   tests/harness/dnsmasq.sh stop DIR    stop the instance in DIR (if any)
#
# The server listens on 127.0.0.1 only (UDP and TCP, same port), on a random
# free port in 20000-60000, with a standalone config (DIR/dnsmasq.conf; no
# /etc/dnsmasq.conf, /etc/hosts or /etc/resolv.conf is read) and no upstream
# servers: every name it does not know gets NXDOMAIN at once.  After `start`,
# DIR/env holds KEY=value lines (see tests/harness/README.md) and the port is
# printed on stdout.  Everything else goes to stderr.
#
# Records (domain imapwire.test, TTL 0):
#   v4.imapwire.test         A 127.0.0.1
#   v6.imapwire.test         AAAA ::1
#   both.imapwire.test       A 127.0.0.1, AAAA ::1
#   fallback.imapwire.test   A 127.0.0.2, A 127.0.0.1   (in this order)
#   blackhole.imapwire.test  A 127.0.0.3, A 127.0.0.1   (in this order)
#   empty.imapwire.test      TXT only: A/AAAA queries get NODATA
#   anything else            NXDOMAIN
#
# Optional environment:
#   DNSMASQ_EXTRA_HOSTS  file in hosts format ("ADDR NAME...") appended to
#                        DIR/hosts
#   DNSMASQ_EXTRA_CONF   file appended verbatim to the generated
#                        dnsmasq.conf; @DIR@ is replaced by the instance
#                        directory (e.g. cname=, txt-record=, srv-host=)
#   DNSMASQ_BIN          dnsmasq binary (default: dnsmasq from PATH or
#                        /usr/sbin)
#   DNSMASQ_START_TIMEOUT  seconds to wait for the server (default 10)

set -eu

PROG=${0##*/}
DOMAIN=imapwire.test

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

# Make DIR absolute (without requiring it to exist) and check that it only
# holds characters that are safe in dnsmasq.conf and in the env file.
abs_dir() {
    local d=$1
    case $d in
        /*) ;;
        *) d="$PWD/$d" ;;
    esac
    # strip trailing slashes (but keep "/")
    while [ "${#d}" -gt 1 ] && [ "${d%/}" != "$d" ]; do
        d=${d%/}
    done
    case $d in
        / | *[!A-Za-z0-9._/@+,-]*)
            die "DIR '$d' is / or contains characters other than [A-Za-z0-9._/@+,-]" ;;
    esac
    printf '%s\n' "$d"
}

find_dnsmasq() {
    if [ -n "${DNSMASQ_BIN:-}" ]; then
        printf '%s\n' "$DNSMASQ_BIN"
    elif command -v dnsmasq >/dev/null 2>&1; then
        command -v dnsmasq
    elif [ -x /usr/sbin/dnsmasq ]; then
        printf '%s\n' /usr/sbin/dnsmasq
    else
        die "dnsmasq not found (install dnsmasq-base)"
    fi
}

# pid of a live dnsmasq for DIR, or nothing
running_pid() {
    local dir=$1 pid comm
    [ -r "$dir/dnsmasq.pid" ] || return 0
    pid=$(head -n 1 "$dir/dnsmasq.pid" 2>/dev/null || true)
    case $pid in
        '' | *[!0-9]*) return 0 ;;
    esac
    kill -0 "$pid" 2>/dev/null || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case $comm in
        dnsmasq*) printf '%s\n' "$pid" ;;
    esac
}

# true if anything listens on UDP or TCP port $1 (any address)
port_in_use() {
    [ -n "$(ss -Htuan "sport = :$1" 2>/dev/null)" ]
}

# true if 127.0.0.1:$1 is bound for both UDP and TCP
port_ready() {
    [ -n "$(ss -Huln "src 127.0.0.1:$1" 2>/dev/null)" ] &&
        [ -n "$(ss -Htln "src 127.0.0.1:$1" 2>/dev/null)" ]
}

pick_port() {
    local i port
    for i in $(seq 1 50); do
        port=$(( 20000 + RANDOM % 12768 ))   # below the ephemeral range (32768+)
        if ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        : "$i"
    done
    die "no port free for UDP and TCP found in 20000-60000 after 50 tries"
}

# Sends "empty.imapwire.test IN TXT" over UDP to 127.0.0.1:$1 and succeeds
# if the answer has our id, QR set, RCODE 0 and exactly one answer record.
# (A TXT query, so that it does not show up when tests count A/AAAA
# queries in the log.)  Needs only bash (/dev/udp), timeout and od.
dns_probe() {
    local hex
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash
    hex=$(timeout 3 bash -c '
        exec 3<>"/dev/udp/127.0.0.1/$1" || exit 1
        printf "\x69\x77\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05empty\x08imapwire\x04test\x00\x00\x10\x00\x01" >&3
        timeout 2 head -c 12 <&3 | od -An -tx1
    ' probe "$1" 2>/dev/null) || return 1
    # id 6977, flags 8x/9x (QR=1, opcode 0) .0 (RCODE 0), QDCOUNT 1, ANCOUNT 1
    # shellcheck disable=SC2086  # split the hex bytes into $1..$12
    set -- $hex
    [ $# -eq 12 ] || return 1
    [ "$1$2" = 6977 ] || return 1
    case $3 in 8? | 9?) ;; *) return 1 ;; esac
    case $4 in ?0) ;; *) return 1 ;; esac
    [ "$5$6$7$8" = 00010001 ]
}

log_tail() {
    local log=$1
    if [ -s "$log" ]; then
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 30 "$log" >&2
        printf -- '--- end of log ---\n' >&2
    fi
}

# ------------------------------------------------------------------- stop
do_stop() {
    local dir=$1 pid i
    pid=$(running_pid "$dir")
    if [ -z "$pid" ]; then
        return 0
    fi
    # dnsmasq's TCP children get SIGALRM from the main process on SIGTERM
    kill -TERM "$pid" 2>/dev/null || true
    # wait up to 5 s (50 x 0.1 s)
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
        : "$i"
    done
    if kill -0 "$pid" 2>/dev/null; then
        note "dnsmasq $pid did not exit after SIGTERM within 5 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$dir/dnsmasq.pid"
    return 0
}

# ---------------------------------------------------------------- records
write_hosts() {
    local dir=$1 f=$1/hosts
    {
        printf '# Generated by tests/harness/dnsmasq.sh - regenerated on every start.\n'
        printf '# With --no-round-robin, dnsmasq answers multiple addresses of one\n'
        printf '# name in the order of this file.\n'
        printf '127.0.0.1 v4.%s\n' "$DOMAIN"
        printf '::1       v6.%s\n' "$DOMAIN"
        printf '127.0.0.1 both.%s\n' "$DOMAIN"
        printf '::1       both.%s\n' "$DOMAIN"
        printf '127.0.0.2 fallback.%s\n' "$DOMAIN"
        printf '127.0.0.1 fallback.%s\n' "$DOMAIN"
        printf '127.0.0.3 blackhole.%s\n' "$DOMAIN"
        printf '127.0.0.1 blackhole.%s\n' "$DOMAIN"
        if [ -n "${DNSMASQ_EXTRA_HOSTS:-}" ]; then
            [ -r "$DNSMASQ_EXTRA_HOSTS" ] ||
                die "DNSMASQ_EXTRA_HOSTS=$DNSMASQ_EXTRA_HOSTS is not readable"
            printf '# ---- appended from %s ----\n' "$DNSMASQ_EXTRA_HOSTS"
            cat "$DNSMASQ_EXTRA_HOSTS"
            printf '\n'
        fi
    } > "$f"
}

# true if this dnsmasq knows --no-round-robin (added in 2.88)
has_no_round_robin() {
    "$1" --help 2>/dev/null | grep -q -- '--no-round-robin'
}

# --------------------------------------------------------------- config
write_conf() {
    local dir=$1 port=$2 norr=$3 conf=$1/dnsmasq.conf
    {
        cat <<EOF
# Generated by tests/harness/dnsmasq.sh - standalone: no /etc/dnsmasq.conf,
# /etc/hosts or /etc/resolv.conf.  Regenerated on every start.
port=$port
listen-address=127.0.0.1
bind-interfaces
# no upstream servers at all
no-resolv
no-poll
no-hosts
addn-hosts=$dir/hosts
# local records: TTL 0, so nothing is cached by clients
local-ttl=0
# names under $DOMAIN that are not in DIR/hosts: NXDOMAIN
local=/$DOMAIN/
# every other name: NXDOMAIN (without this: REFUSED, "no servers")
address=/#/
# a name that exists but has no A/AAAA records: A and AAAA get NODATA
txt-record=empty.$DOMAIN,"imapwire test: no address records"
log-queries
log-facility=$dir/dnsmasq.log
pid-file=$dir/dnsmasq.pid
EOF
        if [ -n "$norr" ]; then
            cat <<'EOF'
# answer multiple addresses in hosts-file order, always
no-round-robin
EOF
        fi
        if [ "$(id -u)" -eq 0 ]; then
            cat <<'EOF'
# stay root: no need for DIR to be readable by the dnsmasq user
user=root
group=root
EOF
        fi
        if [ -n "${DNSMASQ_EXTRA_CONF:-}" ]; then
            [ -r "$DNSMASQ_EXTRA_CONF" ] ||
                die "DNSMASQ_EXTRA_CONF=$DNSMASQ_EXTRA_CONF is not readable"
            printf '\n# ---- appended from %s ----\n' "$DNSMASQ_EXTRA_CONF"
            sed "s#@DIR@#$dir#g" "$DNSMASQ_EXTRA_CONF"
        fi
    } > "$conf"
}

write_env() {
    local dir=$1 port=$2 pid=$3 order=$4 tmp
    tmp="$dir/env.tmp.$$"
    {
        printf 'DNSMASQ_HOST=127.0.0.1\n'
        printf 'DNSMASQ_PORT=%s\n' "$port"
        printf 'DNSMASQ_SERVER=127.0.0.1:%s\n' "$port"
        printf 'DNSMASQ_PID=%s\n' "$pid"
        printf 'DNSMASQ_LOG=%s\n' "$dir/dnsmasq.log"
        printf 'DNSMASQ_CONF=%s\n' "$dir/dnsmasq.conf"
        printf 'DNSMASQ_HOSTS=%s\n' "$dir/hosts"
        printf 'DNSMASQ_DIR=%s\n' "$dir"
        printf 'DNSMASQ_DOMAIN=%s\n' "$DOMAIN"
        printf 'DNSMASQ_ORDER=%s\n' "$order"
    } > "$tmp"
    mv -f "$tmp" "$dir/env"
    # Same keys, shell-quoted, for `. DIR/env.sh`.
    local line key val
    while IFS= read -r line; do
        key=${line%%=*}
        val=${line#*=}
        printf "%s='%s'\n" "$key" "$(printf '%s' "$val" | sed "s/'/'\\\\''/g")"
    done < "$dir/env" > "$tmp"
    mv -f "$tmp" "$dir/env.sh"
}

# ------------------------------------------------------------------ start
do_start() {
    local dir=$1 bin port pid attempt out timeout_s i ok norr order
    bin=$(find_dnsmasq)
    command -v ss >/dev/null 2>&1 || die "ss not found (install iproute2)"
    timeout_s=${DNSMASQ_START_TIMEOUT:-10}

    mkdir -p "$dir"
    do_stop "$dir"

    if has_no_round_robin "$bin"; then
        norr=1
        order=stable
    else
        norr=
        order=rotating
        note "warning: $bin has no --no-round-robin (dnsmasq < 2.88): the order of multiple addresses rotates between answers"
    fi

    if [ -e "$dir/dnsmasq.log" ]; then
        mv -f "$dir/dnsmasq.log" "$dir/dnsmasq.log.prev"
    fi
    rm -f "$dir/env" "$dir/env.sh" "$dir/dnsmasq.pid"
    write_hosts "$dir"

    # A port can be taken between the check and dnsmasq's bind(): retry
    # with another port in that case.
    port=
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        write_conf "$dir" "$port" "$norr"
        if ! out=$("$bin" --test --conf-file="$dir/dnsmasq.conf" 2>&1); then
            printf '%s\n' "$out" >&2
            die "dnsmasq rejected $dir/dnsmasq.conf"
        fi
        # dnsmasq forks into the background; the foreground process exits
        # only after the sockets are bound and reports startup errors.
        if timeout "$timeout_s" "$bin" --conf-file="$dir/dnsmasq.conf" \
                >"$dir/start.out" 2>&1 </dev/null; then
            break
        fi
        out=$(cat "$dir/start.out")
        case $out in
            *"Address already in use"*)
                note "port $port got taken, retrying ($attempt)"
                port=
                continue ;;
        esac
        printf '%s\n' "$out" >&2
        log_tail "$dir/dnsmasq.log"
        die "dnsmasq failed to start"
    done
    [ -n "$port" ] || die "could not bind a free port after 5 attempts"

    # wait for the pid file, both sockets and one real answer (bounded,
    # polling every 0.1 s)
    pid=
    ok=
    for i in $(seq 1 $(( timeout_s * 10 ))); do
        [ -n "$pid" ] || pid=$(running_pid "$dir")
        if [ -n "$pid" ] && port_ready "$port" && dns_probe "$port"; then
            ok=1
            break
        fi
        sleep 0.1
        : "$i"
    done
    if [ -z "$ok" ]; then
        note "dnsmasq did not answer on 127.0.0.1:$port within ${timeout_s}s"
        log_tail "$dir/dnsmasq.log"
        do_stop "$dir"
        die "dnsmasq failed to start"
    fi

    write_env "$dir" "$port" "$pid" "$order"
    printf '%s\n' "$port"
}

# ------------------------------------------------------------------- main
[ $# -eq 2 ] || usage
cmd=$1
DIR=$(abs_dir "$2")
case $cmd in
    start) do_start "$DIR" ;;
    stop) do_stop "$DIR" ;;
    *) usage ;;
esac
