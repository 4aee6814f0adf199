# common.sh: helpers shared by the harness scripts (sourced, never run on its own):
# messages, directory checks and picking a free port. Scripts set PROG before use.

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

# Make DIR absolute (without requiring it to exist) and check that it only holds
# characters that are safe in generated configs and env files.
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

log_tail() {
    if [ -s "$1" ]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 30 "$1" >&2
        printf -- '--- end of log ---\n' >&2
    fi
}

# Something listens on TCP port $1 (any address).
port_is_listening() {
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# Any TCP or UDP socket uses port $1, in any state: a client's socket on it would make
# a later bind fail just as a listener would.
port_taken() {
    [ -n "$(ss -Htuan "sport = :$1" 2>/dev/null)" ]
}

# A free port in 20000-32767: high, and below Linux's ephemeral range (32768+), so no
# outgoing connection can grab it between this check and the server's bind.
pick_port() {
    local i port
    for i in $(seq 1 50); do
        port=$(( 20000 + RANDOM % 12768 ))
        if ! port_taken "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        : "$i"
    done
    die "no free port found in 20000-32767 after 50 tries"
}
