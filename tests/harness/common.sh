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

# A live (not zombie) process.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ]
}

# The pid in FILE if that process is alive and its name starts with PREFIX, else nothing:
# a stale pid file never makes a stop signal an unrelated process.
pid_from_file() {
    local file=$1 prefix=$2 pid comm
    [ -r "$file" ] || return 0
    pid=$(head -n 1 "$file" 2>/dev/null || true)
    case $pid in
        '' | *[!0-9]*) return 0 ;;
    esac
    alive "$pid" || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case $comm in
        "$prefix"*) printf '%s\n' "$pid" ;;
    esac
    return 0
}

# NAME's path: $ENVVAR if set, else PATH, else /usr/sbin; dies naming PACKAGE.
find_program() {
    local name=$1 override=$2 package=$3
    if [ -n "$override" ]; then
        printf '%s\n' "$override"
    elif command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
    elif [ -x "/usr/sbin/$name" ]; then
        printf '%s\n' "/usr/sbin/$name"
    else
        die "$name not found (install $package, see scripts/install-deps.sh)"
    fi
}
