#!/usr/bin/env bash
# Private Dovecot IMAP server for imapwire's tests and demo.
#
#   tests/harness/dovecot.sh start DIR   start (or restart) an instance in DIR
#   tests/harness/dovecot.sh stop DIR    stop the instance in DIR (if any)
#
# The server listens on 127.0.0.1 only, on a random free port in
# 20000-60000, with a standalone config (nothing from /etc/dovecot is read).
# After `start`, DIR/env holds KEY=value lines (see tests/harness/README.md)
# and the port is printed on stdout.  Everything else goes to stderr.
#
# Optional environment:
#   DOVECOT_EXTRA_CONF  file appended verbatim to the generated dovecot.conf
#                       (e.g. TLS listeners); it may use the placeholder
#                       @DIR@, which is replaced by the instance directory,
#                       and @IMAPS_PORT@: if that occurs, a second free port
#                       is picked, substituted and written to DIR/env as
#                       DOVECOT_IMAPS_PORT (see dovecot-tls.conf.in).
#   DOVECOT_BIN         dovecot binary (default: dovecot from PATH or /usr/sbin)
#   DOVECOT_START_TIMEOUT  seconds to wait for the greeting (default 15)

set -eu

PROG=${0##*/}
# shellcheck source=tests/harness/common.sh
. "$(dirname "$0")/common.sh"

running_pid() {
    local dir=$1
    pid_from_file "$dir/run/master.pid" dovecot
}


# ----------------------------------------------------------------- accounts
# Account 2's password deliberately contains a double quote, a backslash, a
# space and a non-ASCII character (U+00F6, 2 bytes in UTF-8), so it must be
# sent as a quoted string with escapes or as a literal in IMAP LOGIN.
# It contains no ':' (passwd-file field separator) and no newline.
USER1=imapwire
PASS1=secret-pw
USER2=imapwire2
PASS2='p"a\ss wörd'
USER3=imapwire3
PASS3=secret-pw

MAIL_SYSUSER=imapwire-mail

usage() {
    printf 'usage: %s start|stop DIR\n' "$PROG" >&2
    exit 2
}

# Succeeds if an IMAP greeting "* OK" is read from 127.0.0.1:$1.
greeting_ok() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf "a LOGOUT\r\n" >&3 2>/dev/null || true
        exec 3<&- 3>&-
        case $line in
            "* OK"*) exit 0 ;;
        esac
        exit 1
    ' greeting "$1" 2>/dev/null
}

# ------------------------------------------------------------------- stop
do_stop() {
    local dir=$1 pid children i
    pid=$(running_pid "$dir")
    if [ -z "$pid" ]; then
        return 0
    fi
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    # wait up to 10 s (100 x 0.1 s)
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
        : "$i"
    done
    if kill -0 "$pid" 2>/dev/null; then
        note "dovecot master $pid did not exit after SIGTERM within 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        # the master's children would otherwise linger until they notice
        # the master is gone
        for i in $children; do
            kill -KILL "$i" 2>/dev/null || true
        done
        for i in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # give children a moment to go away too (they exit with the master)
    for i in $(seq 1 30); do
        local alive=
        for c in $children; do
            if kill -0 "$c" 2>/dev/null; then alive=1; fi
        done
        [ -z "$alive" ] && break
        sleep 0.1
        : "$i"
    done
    return 0
}

# ---------------------------------------------------------- mail storage
# Writes the two seed messages.  The Maildir files use LF line endings
# (the usual Maildir convention); Dovecot converts to CRLF over IMAP.
# DIR/message1.eml holds message 1 with CRLF line endings, i.e. exactly the
# bytes returned by FETCH BODY[] / RFC822 for UID 1.
message1_lf() {
    printf '%s\n' \
        'From: imapwire test <sender@imapwire.test>' \
        'To: imapwire <imapwire@imapwire.test>' \
        'Subject: imapwire test 1' \
        'Date: Tue, 14 Nov 2023 22:13:21 +0000' \
        'Message-ID: <imapwire-test-1@imapwire.test>' \
        'MIME-Version: 1.0' \
        'Content-Type: text/plain; charset=us-ascii' \
        '' \
        'hello from imapwire' \
        'This is the first test message.'
}

message2_lf() {
    printf '%s\n' \
        'From: imapwire test <sender@imapwire.test>' \
        'To: imapwire <imapwire@imapwire.test>' \
        'Subject: imapwire test 2' \
        'Date: Tue, 14 Nov 2023 22:13:22 +0000' \
        'Message-ID: <imapwire-test-2@imapwire.test>' \
        'MIME-Version: 1.0' \
        'Content-Type: text/plain; charset=us-ascii' \
        '' \
        'second message body' \
        'This is the second test message.'
}

make_maildir() {
    local md=$1
    mkdir -p "$md/cur" "$md/new" "$md/tmp"
}

seed_mail() {
    local dir=$1 uid=$2 gid=$3 u md
    rm -rf "$dir/mail"
    mkdir -p "$dir/mail"
    for u in "$USER1" "$USER2" "$USER3"; do
        make_maildir "$dir/mail/$u/Maildir"
    done
    md="$dir/mail/$USER1/Maildir"
    # Dovecot assigns UIDs to new files in order of the timestamp in the
    # maildir file name, so message 1 gets UID 1 and message 2 gets UID 2.
    message1_lf > "$md/cur/1700000001.M100001P1001.imapwire:2,"
    message2_lf > "$md/cur/1700000002.M100002P1002.imapwire:2,"
    message1_lf | sed 's/$/\r/' > "$dir/message1.eml"
    touch -d '@1700000001' "$md/cur/1700000001.M100001P1001.imapwire:2,"
    touch -d '@1700000002' "$md/cur/1700000002.M100002P1002.imapwire:2,"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$uid:$gid" "$dir/mail"
    fi
    chmod -R u+rwX,go-rwx "$dir/mail"
    chmod 0755 "$dir/mail"
}

ensure_mail_user() {
    if ! getent passwd "$MAIL_SYSUSER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$MAIL_SYSUSER" >/dev/null 2>&1 ||
            getent passwd "$MAIL_SYSUSER" >/dev/null 2>&1 ||
            die "could not create system user $MAIL_SYSUSER"
    fi
}

# --------------------------------------------------------------- config
write_conf() {
    local dir=$1 port=$2 mail_uid=$3 mail_gid=$4 imaps_port=$5 conf=$1/dovecot.conf
    local internal_user internal_group login_user root_mode
    if [ "$(id -u)" -eq 0 ]; then
        root_mode=1
        internal_user=dovecot
        internal_group=dovecot
        login_user=dovenull
    else
        root_mode=
        internal_user=$(id -un)
        internal_group=$(id -gn)
        login_user=$internal_user
    fi

    {
        cat <<EOF
# Generated by tests/harness/dovecot.sh - standalone, does not read
# /etc/dovecot.  Regenerated on every start.
protocols = imap
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
instance_name = imapwire-$port
mail_temp_dir = $dir/tmp
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
debug_log_path = $dir/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "

ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login scram-sha-1 scram-sha-256
auth_failure_delay = 0
# Trusted for what it forwards (ID's x-originating-ip); this does NOT lift anvil's
# auth penalty, which the anvil-auth-penalty listener below turns off.
login_trusted_networks = 127.0.0.0/8
auth_cache_size = 0
auth_verbose = yes

default_internal_user = $internal_user
default_internal_group = $internal_group
default_login_user = $login_user
first_valid_uid = $mail_uid
first_valid_gid = $mail_gid

default_process_limit = 1024
default_client_limit = 4096
default_vsz_limit = 512M
mail_max_userip_connections = 2000
version_ignore = yes

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dir/mail/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  # high-performance mode: a few long-lived processes serve all clients
  service_count = 0
  process_min_avail = 2
  process_limit = 64
  client_limit = 1024
}
service imap {
  process_limit = 1024
  client_limit = 1
}
service auth {
  client_limit = 8192
}
service anvil {
  client_limit = 8192
  # No auth penalty: after failed logins from an address anvil delays every login from
  # it (2, 4, 8, then 15 s), and all suites log in from 127.0.0.1, side by side, some
  # failing on purpose. Without this listener the auth process skips the penalty.
  # tests/harness/auth_penalty_check.py holds it.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
        if [ -z "$root_mode" ]; then
            # chroot() needs root
            cat <<'EOF'
service imap-login {
  chroot =
}
service anvil {
  chroot =
}
EOF
        fi
        if [ -n "${DOVECOT_EXTRA_CONF:-}" ]; then
            [ -r "$DOVECOT_EXTRA_CONF" ] ||
                die "DOVECOT_EXTRA_CONF=$DOVECOT_EXTRA_CONF is not readable"
            printf '\n# ---- appended from %s ----\n' "$DOVECOT_EXTRA_CONF"
            sed -e "s#@DIR@#$dir#g" -e "s#@IMAPS_PORT@#$imaps_port#g" \
                "$DOVECOT_EXTRA_CONF"
        fi
    } > "$conf"
}

write_passwd() {
    local dir=$1 f=$1/passwd
    # passwd-file: user:password:uid:gid:gecos:home:shell:extra
    # uid/gid/home come from the static userdb.
    umask 077
    {
        printf '%s:{PLAIN}%s::::::\n' "$USER1" "$PASS1"
        printf '%s:{PLAIN}%s::::::\n' "$USER2" "$PASS2"
        printf '%s:{PLAIN}%s::::::\n' "$USER3" "$PASS3"
    } > "$f"
    umask 022
    if [ "$(id -u)" -eq 0 ]; then
        # read by the auth process, which runs as default_internal_user
        chown root:dovecot "$f"
        chmod 0640 "$f"
    fi
}

write_env() {
    local dir=$1 port=$2 pid=$3 imaps_port=$4 tmp
    tmp="$dir/env.tmp.$$"
    # KEY=value, no quoting: DOVECOT_PASS2 is the raw password (contains
    # '"', '\', ' ' and UTF-8), so use env.sh from a shell.
    {
        printf 'DOVECOT_HOST=127.0.0.1\n'
        printf 'DOVECOT_PORT=%s\n' "$port"
        printf 'DOVECOT_USER=%s\n' "$USER1"
        printf 'DOVECOT_PASS=%s\n' "$PASS1"
        printf 'DOVECOT_USER2=%s\n' "$USER2"
        printf 'DOVECOT_PASS2=%s\n' "$PASS2"
        printf 'DOVECOT_USER3=%s\n' "$USER3"
        printf 'DOVECOT_PASS3=%s\n' "$PASS3"
        printf 'DOVECOT_LOG=%s\n' "$dir/dovecot.log"
        printf 'DOVECOT_PID=%s\n' "$pid"
        printf 'DOVECOT_CONF=%s\n' "$dir/dovecot.conf"
        printf 'DOVECOT_DIR=%s\n' "$dir"
        printf 'DOVECOT_MSG1=%s\n' "$dir/message1.eml"
        printf 'DOVECOT_MSG1_SIZE=%s\n' "$(wc -c < "$dir/message1.eml" | tr -d ' ')"
        printf 'DOVECOT_INBOX_COUNT=2\n'
        if [ -n "$imaps_port" ]; then
            printf 'DOVECOT_IMAPS_PORT=%s\n' "$imaps_port"
        fi
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
    local dir=$1 dovecot_bin mail_uid mail_gid port pid attempt out timeout_s
    local i waited imaps_port want_imaps
    dovecot_bin=$(find_program dovecot "${DOVECOT_BIN:-}" dovecot-imapd)
    command -v ss >/dev/null 2>&1 || die "ss not found (install iproute2)"
    timeout_s=${DOVECOT_START_TIMEOUT:-15}

    mkdir -p "$dir"
    do_stop "$dir"

    if [ "$(id -u)" -eq 0 ]; then
        ensure_mail_user
        mail_uid=$(id -u "$MAIL_SYSUSER")
        mail_gid=$(id -g "$MAIL_SYSUSER")
        getent passwd dovecot >/dev/null 2>&1 ||
            die "system user 'dovecot' missing (install dovecot-core)"
        getent passwd dovenull >/dev/null 2>&1 ||
            die "system user 'dovenull' missing (install dovecot-core)"
    else
        mail_uid=$(id -u)
        mail_gid=$(id -g)
    fi

    # Unprivileged dovecot processes must be able to reach DIR/run and
    # DIR/mail, so DIR itself must be searchable by everyone (and so must
    # its parents).
    chmod 0755 "$dir"
    if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1; then
        runuser -u "$MAIL_SYSUSER" -- test -x "$dir" ||
            die "$dir is not reachable by user $MAIL_SYSUSER (a parent directory is not world-searchable); use a DIR under /tmp"
    fi

    rm -rf "$dir/run" "$dir/state" "$dir/tmp"
    mkdir -p "$dir/run" "$dir/state" "$dir/tmp"
    chmod 0755 "$dir/run"
    chmod 1777 "$dir/tmp"
    if [ -e "$dir/dovecot.log" ]; then
        mv -f "$dir/dovecot.log" "$dir/dovecot.log.prev"
    fi
    rm -f "$dir/env" "$dir/env.sh"

    seed_mail "$dir" "$mail_uid" "$mail_gid"
    write_passwd "$dir"

    # A second (implicit TLS) port only if the extra config asks for one.
    want_imaps=
    if [ -n "${DOVECOT_EXTRA_CONF:-}" ] && [ -r "$DOVECOT_EXTRA_CONF" ] &&
        grep -q '@IMAPS_PORT@' "$DOVECOT_EXTRA_CONF"; then
        want_imaps=1
    fi

    # A port can be taken between the check and dovecot's bind(): retry
    # with another port in that case.
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        imaps_port=
        if [ -n "$want_imaps" ]; then
            imaps_port=$(pick_port)
            while [ "$imaps_port" = "$port" ]; do
                imaps_port=$(pick_port)
            done
        fi
        write_conf "$dir" "$port" "$mail_uid" "$mail_gid" "$imaps_port"
        if ! out=$("$dovecot_bin" -c "$dir/dovecot.conf" -n 2>&1 >/dev/null); then
            printf '%s\n' "$out" >&2
            die "dovecot rejected $dir/dovecot.conf"
        fi
        # Dovecot daemonizes and its children keep the inherited stdout and
        # stderr open, so capturing them with $(...) would wait forever.
        if "$dovecot_bin" -c "$dir/dovecot.conf" >"$dir/start.out" 2>&1 </dev/null; then
            break
        fi
        out=$(cat "$dir/start.out")
        case $out in
            *"Address already in use"*)
                note "port $port${imaps_port:+ or $imaps_port} got taken," \
                    "retrying ($attempt)"
                port=
                continue ;;
        esac
        printf '%s\n' "$out" >&2
        log_tail "$dir/dovecot.log"
        die "dovecot failed to start"
    done
    [ -n "$port" ] || die "could not bind a free port after 5 attempts"

    # wait for master.pid and the greeting (bounded, polling every 0.1 s)
    pid=
    waited=
    for i in $(seq 1 $(( timeout_s * 10 ))); do
        [ -n "$pid" ] || pid=$(running_pid "$dir")
        # (the master binds all listeners before forking, so the IMAPS port
        # is listening once the plain port greets; checked anyway)
        if [ -n "$pid" ] && greeting_ok "$port" &&
            { [ -z "$imaps_port" ] || port_is_listening "$imaps_port"; }; then
            waited=1
            break
        fi
        sleep 0.1
        : "$i"
    done
    if [ -z "$waited" ]; then
        note "dovecot did not greet on 127.0.0.1:$port within ${timeout_s}s"
        log_tail "$dir/dovecot.log"
        do_stop "$dir"
        die "dovecot failed to start"
    fi

    write_env "$dir" "$port" "$pid" "$imaps_port"
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
