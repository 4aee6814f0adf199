#!/usr/bin/env bash
# A private GNU Mailutils imap4d on 127.0.0.1 and a free port: an IMAP server that is not
# Dovecot, and one that advertises SCRAM it cannot serve (its accounts have crypt hashes).
#
#   tests/harness/imap4d.sh start DIR   start (or restart) the instance in DIR
#   tests/harness/imap4d.sh stop DIR    stop it (if any)
#
# imap4d advertises every mechanism of GNU SASL (SCRAM-SHA-1 and -256 included) but checks
# passwords against a passwd-style file (here a virtual domain, DIR/virt/test.example,
# SHA-512 crypt): a SCRAM exchange ends in NO, PLAIN and LOGIN work. Standalone config
# (DIR/imap4d.conf, --config-file: nothing from /etc is read); the session transcript
# (every line both ways, "C:"/"S:") goes to DIR/imap4d.log. After `start`, DIR/env holds
# KEY=value lines and DIR/env.sh the same shell-quoted:
#   IMAP4D_HOST IMAP4D_PORT IMAP4D_USER IMAP4D_PASS IMAP4D_LOG IMAP4D_PID IMAP4D_DIR
# Optional environment: IMAP4D_BIN, IMAP4D_START_TIMEOUT (seconds, default 15).

set -eu

PROG=${0##*/}
# shellcheck source=tests/harness/common.sh
. "$(dirname "$0")/common.sh"

USER_NAME=imapwire@test.example
USER_PASS=secret-pw

stop() {
    local dir=$1 pid i
    pid=$(pid_from_file "$dir/imap4d.pid" imap4d)
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        alive "$pid" || return 0
        sleep 0.05
        : "$i"
    done
    kill -KILL "$pid" 2>/dev/null || true
}

start() {
    local dir=$1 bin port timeout pid i
    bin=$(find_program imap4d "${IMAP4D_BIN:-}" mailutils-imap4d)
    stop "$dir"
    rm -rf "$dir/virt" "$dir/home" "$dir/env" "$dir/env.sh" "$dir/imap4d.log"
    # INBOX is a maildir that exists from the start: imap4d's APPEND does not create one
    mkdir -p "$dir/virt" "$dir/home/INBOX/cur" "$dir/home/INBOX/new" "$dir/home/INBOX/tmp"
    # name:crypt:uid:gid:gecos:home:shell; the session runs as this uid (the caller's)
    printf '%s:%s:%s:%s:imapwire test:%s/home:/bin/sh\n' "${USER_NAME%@*}" \
        "$(openssl passwd -6 "$USER_PASS")" "$(id -u)" "$(id -g)" "$dir" \
        >"$dir/virt/${USER_NAME#*@}"
    chmod 0600 "$dir/virt/${USER_NAME#*@}"
    port=$(pick_port)
    cat >"$dir/imap4d.conf" <<CONF
mode daemon;
foreground yes;
pidfile $dir/imap4d.pid;
server 127.0.0.1:$port {
  transcript yes;
};
virtdomain {
  passwd-dir $dir/virt;
};
auth {
  authorization virtdomain;
  authentication generic;
};
mailbox {
  mailbox-type maildir;
  mailbox-pattern "$dir/home/INBOX";
};
logging {
  syslog no;
};
CONF
    "$bin" --config-file="$dir/imap4d.conf" >>"$dir/imap4d.log" 2>&1 </dev/null &
    pid=$!
    timeout=${IMAP4D_START_TIMEOUT:-15}
    for i in $(seq 1 $((timeout * 20))); do
        port_is_listening "$port" && break
        alive "$pid" || { log_tail "$dir/imap4d.log"; die "imap4d exited at start"; }
        sleep 0.05
        : "$i"
    done
    port_is_listening "$port" || { log_tail "$dir/imap4d.log"; kill "$pid"; die "imap4d did not listen within ${timeout} s"; }
    [ -s "$dir/imap4d.pid" ] || echo "$pid" >"$dir/imap4d.pid"
    {
        echo "IMAP4D_HOST=127.0.0.1"
        echo "IMAP4D_PORT=$port"
        echo "IMAP4D_USER=$USER_NAME"
        echo "IMAP4D_PASS=$USER_PASS"
        echo "IMAP4D_LOG=$dir/imap4d.log"
        echo "IMAP4D_PID=$pid"
        echo "IMAP4D_DIR=$dir"
    } >"$dir/env"
    sed "s/=\(.*\)/='\1'/" "$dir/env" >"$dir/env.sh"
    printf '%s\n' "$port"
}

[ $# -eq 2 ] || die "usage: $PROG start|stop DIR"
DIR=$(abs_dir "$2")
case $1 in
    start) mkdir -p "$DIR"; start "$DIR" ;;
    stop) stop "$DIR" ;;
    *) die "usage: $PROG start|stop DIR" ;;
esac
