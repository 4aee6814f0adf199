#!/usr/bin/env bash
# Private OpenSSH server for imapwire's SSH tunnel tests.
#
#   tests/harness/sshd.sh start DIR   start (or restart) an sshd for DIR
#   tests/harness/sshd.sh agent DIR   start (or restart) an ssh-agent holding
#                                     DIR/user_key (run after `start`)
#   tests/harness/sshd.sh stop DIR    stop the sshd, its sessions and the
#                                     agent of DIR (if any)
#
# The server listens on 127.0.0.1 only, on a random free port in
# 20000-60000, with a standalone config (DIR/sshd_config; nothing from
# /etc/ssh/sshd_config is read).  It lets the test user imapwire-ssh log in
# with a key or a password and open direct-tcpip channels (ssh -L) to any
# host and port.  After `start`, DIR/env holds KEY=value lines and DIR/env.sh
# the same keys shell-quoted (see tests/harness/README.md); the port is
# printed on stdout.  Everything else goes to stderr.  Needs root (it
# creates the system user and runs sshd, which must start as root).
#
# Keys (host keys, user keys) are generated into DIR once and reused while
# they are present and valid; the config, authorized_keys, known_hosts files
# and env files are rewritten on every start (the port changes).
#
# Optional environment:
#   SSHD_EXTRA_CONF     file inserted verbatim at the top of the generated
#                       sshd_config (for most keywords sshd uses the first
#                       value it reads, so this overrides the defaults
#                       below); @DIR@ in it is replaced by the instance
#                       directory
#   SSHD_LOGLEVEL       sshd LogLevel (default VERBOSE; DEBUG1 also logs
#                       every direct-tcpip channel open)
#   SSHD_USE_PAM        no (default): the password is checked against
#                       /etc/shadow by sshd itself, failures are answered
#                       at once, keyboard-interactive is not offered;
#                       yes: password and keyboard-interactive through PAM
#                       (each failed attempt then takes 2-3 s: pam_unix)
#   SSHD_BIN            sshd binary (default /usr/sbin/sshd; must be an
#                       absolute path)
#   SSHD_START_TIMEOUT  seconds to wait for the server banner (default 15)
#   SSHD_STOCK          yes: serve RSA, ECDSA and Ed25519 host keys with
#                       sshd's own host key algorithm list, as a stock
#                       OpenSSH server does (default no: ECDSA and Ed25519,
#                       restricted to those two algorithms)

set -eu

PROG=${0##*/}
# shellcheck source=tests/harness/common.sh
. "$(dirname "$0")/common.sh"

SSH_USER=imapwire-ssh
SSH_PASS=ssh-pass
KEY_PASSPHRASE='key-pass'
HOSTKEY_ALGORITHMS=ecdsa-sha2-nistp256,ssh-ed25519
# libssh2 1.10 prefers ecdsa-sha2-nistp256 over ssh-ed25519, so this is the
# host key type it negotiates with the server above.
NEGOTIATED_HOSTKEY=ecdsa
# serializes useradd/chpasswd of concurrent starts in different DIRs
USER_LOCK=/run/imapwire-sshd-user.lock

usage() {
    printf 'usage: %s start|agent|stop DIR\n' "$PROG" >&2
    exit 2
}

find_sshd() {
    local b=${SSHD_BIN:-/usr/sbin/sshd}
    case $b in
        /*) ;;
        *) die "SSHD_BIN must be an absolute path (sshd re-executes itself)" ;;
    esac
    [ -x "$b" ] || die "$b not found (install openssh-server)"
    printf '%s\n' "$b"
}

# pid of a live process from pid file $1 whose command name is $2, or nothing
live_pid() {
    local file=$1 want=$2 pid comm
    [ -r "$file" ] || return 0
    pid=$(head -n 1 "$file" 2>/dev/null || true)
    case $pid in
        '' | *[!0-9]*) return 0 ;;
    esac
    is_alive "$pid" || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [ "$comm" = "$want" ] && printf '%s\n' "$pid"
    return 0
}

# all descendants of pid $1 (children first level first)
descendants() {
    local c
    for c in $(pgrep -P "$1" 2>/dev/null || true); do
        printf '%s\n' "$c"
        descendants "$c"
    done
}

# Succeeds if pid $1 exists and is not a zombie (a daemon that exited stays
# a zombie until init reaps it, which in a container can take a while).
is_alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null || true)
    stat=${stat##*) }
    case $stat in
        '' | Z* | X*) return 1 ;;
    esac
    return 0
}

# Waits up to $1 tenths of a second until none of the pids $2... is alive;
# succeeds if they all went away.
wait_gone() {
    local n=$1 i p alive
    shift
    for i in $(seq 1 "$n"); do
        alive=
        for p in "$@"; do
            if is_alive "$p"; then alive=1; break; fi
        done
        [ -z "$alive" ] && return 0
        sleep 0.1
        : "$i"
    done
    for p in "$@"; do
        is_alive "$p" && return 1
    done
    return 0
}

# Succeeds if an SSH banner "SSH-2.0-" is read from 127.0.0.1:$1.  Sends a
# client banner naming the probe, so the log shows what the connection was
# (it is one "Connection from 127.0.0.1" line in the log).
banner_ok() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf "SSH-2.0-imapwire-harness-probe\r\n" >&3 2>/dev/null || true
        exec 3<&- 3>&-
        case $line in
            SSH-2.0-*) exit 0 ;;
        esac
        exit 1
    ' banner "$1" 2>/dev/null
}

# ------------------------------------------------------------------- stop
stop_sshd() {
    local dir=$1 pid kids
    pid=$(live_pid "$dir/sshd.pid" sshd)
    [ -n "$pid" ] || return 0
    # The listener does not take its per-connection processes (and their
    # sessions) down with it: collect them first and end them too.
    kids=$(descendants "$pid")
    # shellcheck disable=SC2086
    kill -TERM "$pid" $kids 2>/dev/null || true
    # shellcheck disable=SC2086
    if ! wait_gone 100 "$pid" $kids; then
        note "sshd $pid (or one of its sessions) did not exit after SIGTERM within 10 s; sending SIGKILL"
        # shellcheck disable=SC2086
        kill -KILL "$pid" $kids 2>/dev/null || true
        # shellcheck disable=SC2086
        wait_gone 20 "$pid" $kids || true
    fi
    rm -f "$dir/sshd.pid"
}

stop_agent() {
    local dir=$1 pid
    pid=$(live_pid "$dir/agent.pid" ssh-agent)
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone 50 "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone 20 "$pid" || true
        fi
    fi
    rm -f "$dir/agent.pid" "$dir/agent.sock" "$dir/agent.env" "$dir/agent.env.sh"
}

do_stop() {
    stop_agent "$1"
    stop_sshd "$1"
}

# ------------------------------------------------------------------- keys
# Public key ("type base64") of private key $1, opened with passphrase $2.
priv_pub() {
    ssh-keygen -y -P "$2" -f "$1" 2>/dev/null </dev/null | awk '{print $1, $2; exit}'
}

file_pub() {
    awk '{print $1, $2; exit}' "$1" 2>/dev/null
}

# key_ok FILE TYPE PASSPHRASE: FILE and FILE.pub exist and match, the key is
# of TYPE (ssh-ed25519, ecdsa-sha2-nistp256) in the OpenSSH private key
# format ("openssh-key-v1"), and it opens with PASSPHRASE (and, if
# PASSPHRASE is not empty, not without one).
key_ok() {
    local f=$1 type=$2 pass=$3 pub
    [ -s "$f" ] && [ -s "$f.pub" ] || return 1
    [ "$(head -n 1 "$f")" = "-----BEGIN OPENSSH PRIVATE KEY-----" ] || return 1
    pub=$(file_pub "$f.pub")
    case $pub in
        "$type "?*) ;;
        *) return 1 ;;
    esac
    [ "$(priv_pub "$f" "$pass")" = "$pub" ] || return 1
    if [ -n "$pass" ] && [ -n "$(priv_pub "$f" "")" ]; then
        return 1
    fi
    return 0
}

# make_key FILE TYPE PASSPHRASE COMMENT: reuse FILE if key_ok, else
# (re)generate it.  TYPE: ed25519 or ecdsa (P-256).  An encrypted key gets
# ssh-keygen's default protection: aes256-ctr, bcrypt KDF.
make_key() {
    local f=$1 type=$2 pass=$3 comment=$4 sshtype tmp
    local args
    case $type in
        ed25519) sshtype=ssh-ed25519; args="-t ed25519" ;;
        ecdsa) sshtype=ecdsa-sha2-nistp256; args="-t ecdsa -b 256" ;;
        rsa) sshtype=ssh-rsa; args="-t rsa -b 3072" ;;
        *) die "internal: key type $type" ;;
    esac
    if key_ok "$f" "$sshtype" "$pass"; then
        return 0
    fi
    note "generating $type key $f${pass:+ (with passphrase)}"
    tmp="$f.tmp.$$"
    rm -f "$tmp" "$tmp.pub"
    # shellcheck disable=SC2086
    ssh-keygen -q $args -N "$pass" -C "$comment" -f "$tmp" </dev/null >/dev/null ||
        die "ssh-keygen failed for $f"
    chmod 0600 "$tmp"
    chmod 0644 "$tmp.pub"
    mv -f "$tmp.pub" "$f.pub"
    mv -f "$tmp" "$f"
    key_ok "$f" "$sshtype" "$pass" || die "generated key $f does not check out"
}

make_keys() {
    local dir=$1
    # host keys served by sshd
    make_key "$dir/ssh_host_ecdsa_key" ecdsa "" "imapwire test host"
    make_key "$dir/ssh_host_ed25519_key" ed25519 "" "imapwire test host"
    if [ "$(stock)" = yes ]; then
        make_key "$dir/ssh_host_rsa_key" rsa "" "imapwire test host"
    fi
    # never served: known_hosts_wrong lists these for 127.0.0.1, one per
    # type, so it is a mismatch whether or not the client passes the key
    # type to libssh2_knownhost_checkp (with a type, only an entry of that
    # type can mismatch; without, any entry for the host can)
    make_key "$dir/wrong_host_ecdsa_key" ecdsa "" "imapwire wrong host"
    make_key "$dir/wrong_host_ed25519_key" ed25519 "" "imapwire wrong host"
    # user keys, all read by libssh2 1.10 (OpenSSL 3 backend); see README.md
    make_key "$dir/user_key" ed25519 "" "imapwire test user"
    make_key "$dir/user_key_pass" ed25519 "$KEY_PASSPHRASE" "imapwire test user (passphrase)"
    make_key "$dir/wrong_key" ed25519 "" "imapwire unauthorized key"
}

# -------------------------------------------------------------- the user
ensure_user() {
    local field
    (
        if command -v flock >/dev/null 2>&1; then
            flock -w 60 9 || die "timed out after 60 s waiting for the lock on $USER_LOCK"
        fi
        if ! getent passwd "$SSH_USER" >/dev/null 2>&1; then
            note "creating system user $SSH_USER"
            useradd --create-home --shell /bin/sh --comment "imapwire SSH tests" \
                "$SSH_USER" >/dev/null 2>&1 ||
                getent passwd "$SSH_USER" >/dev/null 2>&1 ||
                die "could not create user $SSH_USER"
        fi
        # A fresh hash also unlocks the account: sshd refuses every method,
        # keys included, for an account whose password field starts with '!'
        # (without PAM) or that PAM's account stack rejects.
        printf '%s:%s\n' "$SSH_USER" "$SSH_PASS" | chpasswd ||
            die "chpasswd failed for $SSH_USER"
        usermod --expiredate '' "$SSH_USER" >/dev/null 2>&1 || true
        chage --maxdays -1 --inactive -1 "$SSH_USER" >/dev/null 2>&1 || true
    ) 9>"$USER_LOCK"
    field=$(getent shadow "$SSH_USER" | cut -d: -f2)
    case $field in
        '' | '!'* | '*'*) die "account $SSH_USER is locked or has no password ('${field:0:1}')" ;;
    esac
}

# --------------------------------------------------------------- config
stock() {
    case ${SSHD_STOCK:-no} in
        yes | no) printf '%s\n' "${SSHD_STOCK:-no}" ;;
        *) die "SSHD_STOCK must be yes or no, not '$SSHD_STOCK'" ;;
    esac
}

# The host key lines: a stock server's three keys and its own algorithm list, or
# the two keys restricted to the two algorithms the other suites expect.
hostkey_conf() {
    local dir=$1
    if [ "$(stock)" = yes ]; then
        printf 'HostKey %s\n' "$dir/ssh_host_rsa_key" "$dir/ssh_host_ecdsa_key" \
            "$dir/ssh_host_ed25519_key"
    else
        printf 'HostKey %s\n' "$dir/ssh_host_ecdsa_key" "$dir/ssh_host_ed25519_key"
        printf 'HostKeyAlgorithms %s\n' "$HOSTKEY_ALGORITHMS"
    fi
}

write_conf() {
    local dir=$1 port=$2 conf=$1/sshd_config use_pam=${SSHD_USE_PAM:-no}
    case $use_pam in
        yes | no) ;;
        *) die "SSHD_USE_PAM must be yes or no, not '$use_pam'" ;;
    esac
    {
        printf '# Generated by tests/harness/sshd.sh - standalone, does not read\n'
        printf '# /etc/ssh/sshd_config.  Regenerated on every start.\n'
        if [ -n "${SSHD_EXTRA_CONF:-}" ]; then
            [ -r "$SSHD_EXTRA_CONF" ] ||
                die "SSHD_EXTRA_CONF=$SSHD_EXTRA_CONF is not readable"
            printf '\n# ---- from %s (first value wins) ----\n' "$SSHD_EXTRA_CONF"
            sed -e "s#@DIR@#$dir#g" "$SSHD_EXTRA_CONF"
            printf '# ---- end of %s ----\n\n' "$SSHD_EXTRA_CONF"
        fi
        hostkey_conf "$dir"
        cat <<EOF
ListenAddress 127.0.0.1
Port $port
AddressFamily inet
PidFile $dir/sshd.pid
LogLevel ${SSHD_LOGLEVEL:-VERBOSE}

AllowUsers $SSH_USER
PermitRootLogin no
# authorized_keys lives in DIR, which (like /tmp) is not owned by the user
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication yes
# keyboard-interactive needs PAM (OpenSSH has no other device on Linux)
KbdInteractiveAuthentication $use_pam
PermitEmptyPasswords no
UsePAM $use_pam
MaxAuthTries 10
LoginGraceTime 30

AllowTcpForwarding yes
PermitOpen any
GatewayPorts no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no

MaxStartups 100:30:200
MaxSessions 200
ClientAliveInterval 0
TCPKeepAlive yes
EOF
    } > "$conf"
}

write_authorized_keys() {
    local dir=$1 tmp=$1/authorized_keys.tmp.$$
    cat "$dir/user_key.pub" "$dir/user_key_pass.pub" > "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dir/authorized_keys"
}

write_known_hosts() {
    local dir=$1 port=$2 host k tmp
    host="[127.0.0.1]:$port"
    tmp="$dir/known_hosts.tmp.$$"
    for k in ecdsa ed25519; do
        printf '%s %s\n' "$host" "$(file_pub "$dir/ssh_host_${k}_key.pub")"
    done > "$tmp"
    mv -f "$tmp" "$dir/known_hosts"

    cp -f "$dir/known_hosts" "$tmp"
    ssh-keygen -q -H -f "$tmp" >/dev/null 2>&1 || die "ssh-keygen -H failed"
    rm -f "$tmp.old"
    grep -q '^|1|' "$tmp" || die "ssh-keygen -H did not hash $tmp"
    mv -f "$tmp" "$dir/known_hosts_hashed"

    for k in ecdsa ed25519; do
        printf '%s %s\n' "$host" "$(file_pub "$dir/wrong_host_${k}_key.pub")"
    done > "$tmp"
    mv -f "$tmp" "$dir/known_hosts_wrong"

    # entries without a port, as ssh writes them for port 22
    for k in ecdsa ed25519; do
        printf '127.0.0.1 %s\n' "$(file_pub "$dir/ssh_host_${k}_key.pub")"
    done > "$tmp"
    mv -f "$tmp" "$dir/known_hosts_noport"

    : > "$dir/known_hosts_empty"
    chmod 0644 "$dir"/known_hosts "$dir"/known_hosts_*
}

fingerprint() {
    ssh-keygen -l -E sha256 -f "$1" </dev/null | awk '{print $2; exit}'
}

write_env_sh() {
    local src=$1 dst=$2 tmp line key val
    tmp="$dst.tmp.$$"
    while IFS= read -r line; do
        key=${line%%=*}
        val=${line#*=}
        printf "%s='%s'\n" "$key" "$(printf '%s' "$val" | sed "s/'/'\\\\''/g")"
    done < "$src" > "$tmp"
    mv -f "$tmp" "$dst"
}

write_env() {
    local dir=$1 port=$2 pid=$3 tmp
    tmp="$dir/env.tmp.$$"
    {
        printf 'SSHD_HOST=127.0.0.1\n'
        printf 'SSHD_PORT=%s\n' "$port"
        printf 'SSHD_PID=%s\n' "$pid"
        printf 'SSHD_LOG=%s\n' "$dir/sshd.log"
        printf 'SSHD_CONF=%s\n' "$dir/sshd_config"
        printf 'SSHD_DIR=%s\n' "$dir"
        printf 'SSHD_USER=%s\n' "$SSH_USER"
        printf 'SSHD_PASS=%s\n' "$SSH_PASS"
        printf 'SSHD_KEY=%s\n' "$dir/user_key"
        printf 'SSHD_KEY_PASS_FILE=%s\n' "$dir/user_key_pass"
        printf 'SSHD_KEY_PASSPHRASE=%s\n' "$KEY_PASSPHRASE"
        printf 'SSHD_WRONG_KEY=%s\n' "$dir/wrong_key"
        printf 'SSHD_KNOWN_HOSTS=%s\n' "$dir/known_hosts"
        printf 'SSHD_KNOWN_HOSTS_HASHED=%s\n' "$dir/known_hosts_hashed"
        printf 'SSHD_KNOWN_HOSTS_WRONG=%s\n' "$dir/known_hosts_wrong"
        printf 'SSHD_KNOWN_HOSTS_EMPTY=%s\n' "$dir/known_hosts_empty"
        printf 'SSHD_KNOWN_HOSTS_NOPORT=%s\n' "$dir/known_hosts_noport"
        printf 'SSHD_HOSTKEY_TYPE=%s\n' \
            "$(file_pub "$dir/ssh_host_${NEGOTIATED_HOSTKEY}_key.pub" | cut -d' ' -f1)"
        printf 'SSHD_HOSTKEY_SHA256=%s\n' \
            "$(fingerprint "$dir/ssh_host_${NEGOTIATED_HOSTKEY}_key.pub")"
        printf 'SSHD_HOSTKEY_SHA256_ECDSA=%s\n' "$(fingerprint "$dir/ssh_host_ecdsa_key.pub")"
        printf 'SSHD_HOSTKEY_SHA256_ED25519=%s\n' "$(fingerprint "$dir/ssh_host_ed25519_key.pub")"
        if [ "$(stock)" = yes ]; then
            printf 'SSHD_HOSTKEY_SHA256_RSA=%s\n' "$(fingerprint "$dir/ssh_host_rsa_key.pub")"
        fi
    } > "$tmp"
    mv -f "$tmp" "$dir/env"
    write_env_sh "$dir/env" "$dir/env.sh"
}

# ------------------------------------------------------------------ start
do_start() {
    local dir=$1 sshd_bin port pid attempt timeout_s i waited out
    [ "$(id -u)" -eq 0 ] || die "must run as root (creates $SSH_USER, runs sshd)"
    sshd_bin=$(find_sshd)
    command -v ssh-keygen >/dev/null 2>&1 || die "ssh-keygen not found (install openssh-client)"
    command -v ss >/dev/null 2>&1 || die "ss not found (install iproute2)"
    timeout_s=${SSHD_START_TIMEOUT:-15}

    mkdir -p "$dir"
    do_stop "$dir"
    # privilege separation directory; sshd refuses to start without it
    mkdir -p /run/sshd
    chmod 0755 /run/sshd

    # sshd reads authorized_keys as the user: DIR (and its parents) must be
    # searchable by everyone.
    chmod 0755 "$dir"
    ensure_user
    make_keys "$dir"
    write_authorized_keys "$dir"
    if command -v runuser >/dev/null 2>&1; then
        runuser -u "$SSH_USER" -- test -r "$dir/authorized_keys" ||
            die "$dir/authorized_keys is not readable by $SSH_USER (a parent directory is not world-searchable); use a DIR under /tmp"
    fi

    rm -f "$dir/env" "$dir/env.sh" "$dir/sshd.pid"
    if [ -e "$dir/sshd.log" ]; then
        mv -f "$dir/sshd.log" "$dir/sshd.log.prev"
    fi

    # A port can be taken between the check and sshd's bind(), which
    # happens after sshd has daemonized: the log then says so and the
    # daemon exits.  Retry with another port in that case.
    port=
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        write_conf "$dir" "$port"
        if ! out=$("$sshd_bin" -t -f "$dir/sshd_config" 2>&1); then
            printf '%s\n' "$out" >&2
            die "sshd rejected $dir/sshd_config"
        fi
        : > "$dir/sshd.log"
        if ! "$sshd_bin" -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1; then
            log_tail "$dir/sshd.log"
            die "sshd failed to start"
        fi
        # wait for the pid file and the banner (bounded, polling every 0.1 s)
        pid=
        waited=
        for i in $(seq 1 $(( timeout_s * 10 ))); do
            [ -n "$pid" ] || pid=$(live_pid "$dir/sshd.pid" sshd)
            if [ -n "$pid" ] && port_is_listening "$port" && banner_ok "$port"; then
                waited=1
                break
            fi
            if grep -q -e 'Address already in use' -e 'Cannot bind any address' \
                "$dir/sshd.log" 2>/dev/null; then
                waited=busy
                break
            fi
            sleep 0.1
            : "$i"
        done
        case $waited in
            1) break ;;
            busy)
                note "port $port got taken, retrying ($attempt)"
                stop_sshd "$dir"
                port=
                continue ;;
        esac
        note "sshd did not answer on 127.0.0.1:$port within ${timeout_s}s"
        log_tail "$dir/sshd.log"
        stop_sshd "$dir"
        die "sshd failed to start"
    done
    [ -n "$port" ] || die "could not bind a free port after 5 attempts"

    write_known_hosts "$dir" "$port"
    write_env "$dir" "$port" "$pid"
    printf '%s\n' "$port"
}

# ------------------------------------------------------------------ agent
do_agent() {
    local dir=$1 pid sock out i tmp
    [ -s "$dir/user_key" ] || die "$dir/user_key missing (run: $PROG start $dir)"
    command -v ssh-agent >/dev/null 2>&1 || die "ssh-agent not found (install openssh-client)"
    sock="$dir/agent.sock"
    # sun_path holds 108 bytes including the NUL
    [ "${#sock}" -le 100 ] || die "agent socket path $sock is too long for a unix socket"
    stop_agent "$dir"
    # -t: identities expire after an hour, so a forgotten agent holds nothing
    # for long.  ssh-agent forks; the daemon's stdio goes to /dev/null.
    ssh-agent -s -a "$sock" -t 3600 </dev/null >"$dir/agent.out" 2>&1 ||
        { cat "$dir/agent.out" >&2; die "ssh-agent failed to start"; }
    pid=$(sed -n 's/^SSH_AGENT_PID=\([0-9][0-9]*\);.*/\1/p' "$dir/agent.out")
    [ -n "$pid" ] || { cat "$dir/agent.out" >&2; die "no SSH_AGENT_PID from ssh-agent"; }
    printf '%s\n' "$pid" > "$dir/agent.pid"
    for i in $(seq 1 50); do
        [ -S "$sock" ] && break
        sleep 0.1
        : "$i"
    done
    [ -S "$sock" ] || { stop_agent "$dir"; die "ssh-agent socket $sock did not appear within 5 s"; }
    if ! out=$(SSH_AUTH_SOCK=$sock ssh-add "$dir/user_key" </dev/null 2>&1); then
        printf '%s\n' "$out" >&2
        stop_agent "$dir"
        die "ssh-add $dir/user_key failed"
    fi
    tmp="$dir/agent.env.tmp.$$"
    {
        printf 'SSH_AUTH_SOCK=%s\n' "$sock"
        printf 'SSH_AGENT_PID=%s\n' "$pid"
    } > "$tmp"
    mv -f "$tmp" "$dir/agent.env"
    write_env_sh "$dir/agent.env" "$dir/agent.env.sh"
    rm -f "$dir/agent.out"
    note "ssh-agent $pid on $sock holds $dir/user_key"
}

# ------------------------------------------------------------------- main
[ $# -eq 2 ] || usage
cmd=$1
DIR=$(abs_dir "$2")
case $cmd in
    start) do_start "$DIR" ;;
    agent) do_agent "$DIR" ;;
    stop) do_stop "$DIR" ;;
    *) usage ;;
esac
