#!/usr/bin/env bash
# run_example.sh: runs one example program against the test servers that the ctest
# fixtures started, reading hosts, ports and credentials from their env files.
#   run_example.sh CASE BUILD_DIR TMPROOT
# CASE: an example's name (plain, starttls, ..., connect, tunnel). TMPROOT holds the
# fixtures' directories (dovecot/, dovecot-tls/, sshd/, danted/, tinyproxy/).
set -eu
case_=${1:?CASE} build=${2:?BUILD_DIR} tmproot=${3:?TMPROOT}
bin=$build/examples/imapwire_example_$case_
load() {  # load FIXTURE: its env file's KEY=value lines into this shell, not sourced
    local line
    while IFS= read -r line; do
        case $line in [A-Z]*=*) export "${line%%=*}=${line#*=}" ;; esac
    done < "$tmproot/$1/env"
}
run() { echo "+ ${*##*/}" >&2; timeout 120 "$@"; }

load dovecot
H=$DOVECOT_HOST P=$DOVECOT_PORT U=$DOVECOT_USER
export IMAPWIRE_PASSWORD=$DOVECOT_PASS
# the examples must find the plugins of this build, not installed ones
export IMAPWIRE_PLUGIN_PATH=$build/plugins
unset IMAPWIRE_TRANSPORT IMAPWIRE_SSH_CONFIG IMAPWIRE_DNS_SERVERS

case $case_ in
plain|custom_transport) run "$bin" "$H" "$P" "$U" ;;
async_many) run "$bin" "$H" "$P" "$U" 100 ;;
starttls|imaps)
    load dovecot-tls
    port=$DOVECOT_PORT; [ "$case_" = imaps ] && port=$DOVECOT_IMAPS_PORT
    run "$bin" "$DOVECOT_HOST" "$port" "$DOVECOT_USER" "$tmproot/dovecot-tls/certs/ca.pem" ;;
ssh_tunnel|port_forward)
    load sshd
    run "$bin" 127.0.0.1 "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" "$H" "$P" "$U" ;;
jump_host)
    load sshd   # one sshd, twice: the second hop is reached through the first
    run "$bin" "127.0.0.1:$SSHD_PORT,127.0.0.1:$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" \
        "$SSHD_KNOWN_HOSTS" "$H" "$P" "$U" ;;
ssh_config)
    load sshd
    scratch=$(mktemp -d "$tmproot/example-ssh-config.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    printf 'Host example-alias\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n' \
        "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" > "$scratch/config"
    chmod 600 "$scratch/config"
    IMAPWIRE_SSH_CONFIG=$scratch/config run "$bin" example-alias "$H" "$P" "$U" ;;
caller_forward)
    load sshd
    load dovecot-tls
    # a free local port, then OpenSSH's own ssh -L to the IMAPS port, as a user would
    lport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    ssh -N -L "127.0.0.1:$lport:127.0.0.1:$DOVECOT_IMAPS_PORT" -p "$SSHD_PORT" -i "$SSHD_KEY" \
        -o "UserKnownHostsFile=$SSHD_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o BatchMode=yes \
        -o ExitOnForwardFailure=yes -o IdentitiesOnly=yes -F /dev/null -l "$SSHD_USER" 127.0.0.1 &
    sshpid=$!
    trap 'kill "$sshpid" 2>/dev/null; wait "$sshpid" 2>/dev/null || true' EXIT
    hex=$(printf '%04X' "$lport")
    for _ in $(seq 100); do   # up to 10 s for ssh to listen
        grep -q ":$hex 00000000:0000 0A" /proc/net/tcp && break
        kill -0 "$sshpid" 2>/dev/null || { echo "ssh -L exited" >&2; exit 1; }
        sleep 0.1
    done
    run "$bin" "$lport" localhost "$tmproot/dovecot-tls/certs/ca.pem" "$DOVECOT_USER" ;;
socks5)
    load danted
    IMAPWIRE_PROXY_USER=$DANTED_USER IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS \
        run "$bin" 127.0.0.1 "$DANTED_PORT" "$H" "$P" "$U"
    # the proxy carried it: Dante logged a pass to the IMAP port
    grep -q "pass.*127\\.0\\.0\\.1\\.$P" "$DANTED_LOG" ;;
plugin)
    load tinyproxy
    run "$bin" "$build/plugins/httpconnect.so" "127.0.0.1:$TINYPROXY_PORT" "$H" "$P" "$U"
    grep -q "CONNECT.*127\\.0\\.0\\.1:$P" "$TINYPROXY_LOG" ;;
connect)   # the tour program: plain, then STARTTLS with the CA and a trace
    bin=$build/examples/imapwire_connect
    run "$bin" "$H" "$P" "$U" "$DOVECOT_PASS" plain quiet
    load dovecot-tls
    run "$bin" "$DOVECOT_HOST" "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" starttls trace \
        "$tmproot/dovecot-tls/certs/ca.pem" ;;
tunnel)    # the tour program: in-process tunnel, then through a library forward
    bin=$build/examples/imapwire_tunnel
    load sshd
    run "$bin" 127.0.0.1 "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" "$H" "$P" "$U" "$DOVECOT_PASS"
    run "$bin" 127.0.0.1 "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" "$H" "$P" "$U" "$DOVECOT_PASS" forward ;;
*) echo "run_example.sh: unknown case $case_" >&2; exit 2 ;;
esac
