#!/usr/bin/env bash
# run.sh: the imapwire command's tests. Installs the build into a scratch prefix and runs
# the INSTALLED binary against the harness's Dovecot, sshd, Dante and tinyproxy.
#   run.sh GROUP SOURCE_DIR BUILD_DIR SCRATCH_DIR TMPROOT
# GROUP: connect tunnel proxy errors secrets fetch check terminal hostile secure reports curl. TMPROOT holds the
# fixtures' env files (dovecot/, dovecot-tls/, sshd/, danted/, tinyproxy/).
set -u
group=$1 src=$2 build=$3 scratch=$4 tmproot=$5
fails=0 checks=0

rm -rf "$scratch"
mkdir -p "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null || { echo "install failed"; exit 1; }
BIN=$prefix/bin/imapwire
[ -x "$BIN" ] || { echo "no installed $BIN"; exit 1; }
# the installed plugins, beside the installed library, must be found on their own
unset IMAPWIRE_PLUGIN_PATH IMAPWIRE_TRANSPORT IMAPWIRE_PASSWORD IMAPWIRE_DNS_SERVERS
unset NO_COLOR   # colour must stay off because the output is no terminal

load() {  # load FIXTURE (its DIR/env.sh) or FIXTURE/x.env (x.env.sh), exported
    local name=$1
    # a group that counts sshd's log lines has its own sshd (IW_OWN_SSHD, tests/CMakeLists.txt)
    case $name in sshd|sshd/*) name=${IW_OWN_SSHD:-sshd}${name#sshd} ;; esac
    set -- "$name"
    local f=$tmproot/$1/env.sh
    [ -f "$tmproot/$1.sh" ] && f=$tmproot/$1.sh
    set -a
    # shellcheck disable=SC1090
    . "$f"
    set +a
}

ok()   { checks=$((checks + 1)); }
bad()  { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }
check() {  # check DESCRIPTION COMMAND...: the command must succeed
    local what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}
# run EXPECTED_RC ARGS...: runs the installed binary, output in $out/$err
# fw_wait PID: its exit status, waited for 20 s at most (SIGINT must end it at once); a
# process still there then is shown (its threads' stacks) and killed, and fails the check.
fw_wait() {
    local i
    for i in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then
        echo "pid $1 still running 20 s after SIGINT; its threads:"
        command -v gdb >/dev/null && gdb -p "$1" -batch -ex "thread apply all bt" 2>&1 |
            grep -E '^(Thread|#)' | head -80
        kill -9 "$1"
        wait "$1" 2>/dev/null
        return 124
    fi
    wait "$1"
}

run() {
    local want=$1; shift
    out=$scratch/out.$checks err=$scratch/err.$checks
    timeout 60 "$BIN" "$@" >"$out" 2>"$err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "imapwire $* -> exit $rc, wanted $want"
        sed 's/^/  stderr: /' "$err" | head -20
        return 1
    fi
    ok
    return 0
}
has()     { if grep -Eq -- "$2" "$1"; then ok; else bad "$(basename "$1") lacks /$2/"; sed 's/^/  | /' "$1" | head -30; fi; }
has_fixed() { if grep -Fq -- "$2" "$1"; then ok; else bad "$(basename "$1") lacks '$2'"; fi; }
has_not() { if grep -Fq -- "$2" "$1"; then bad "$(basename "$1") holds '$2'"; else ok; fi; }
# jqok FILE FILTER: the JSON in FILE must make FILTER true
jqok() {
    if jq -e "$2" "$1" >/dev/null 2>&1; then ok; else bad "json: $2"; jq -c . "$1" 2>&1 | head -c 2000; echo; fi
}
no_escapes() { if grep -q $'\033' "$1"; then bad "colour codes in $1 (not a terminal)"; else ok; fi; }
# no_controls FILE: no control byte but newline (no ESC, BEL, CR, C1 CSI) reaches the output
no_controls() {
    if LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f\x9b]' "$1"; then
        bad "control bytes in $(basename "$1")"; LC_ALL=C cat -v "$1" | head -20
    else ok; fi
}
# secret_free SECRET FILE...: the secret is in none of the files
secret_free() { local s=$1 f; shift; for f in "$@"; do has_not "$f" "$s"; done; }

# Every field of a connect report, whatever the route.
json_common() {  # json_common FILE SECURITY PORT LOGIN(0/1)
    local f=$1
    jqok "$f" '.command == "connect" and .connected == true and .error == null and .exit_code == 0'
    jqok "$f" ".security == \"$2\" and .port == $3 and .host == \"127.0.0.1\" and (.insecure|type) == \"boolean\""
    jqok "$f" '.timings_us | (keys | sort) == ["connect","greeting","resolve","secure","total","tunnel"]'
    jqok "$f" '[.timings_us[]] | all(type == "number" and . >= 0)'
    jqok "$f" '.timings_us.total > 0 and .timings_us.total >= .timings_us.connect and .timings_us.greeting > 0'
    jqok "$f" '(.capabilities | index("IMAP4rev1")) != null'
    jqok "$f" '.auth_mechanisms == [.capabilities[] | select(startswith("AUTH=")) | .[5:]]'
    jqok "$f" '(.auth_mechanisms | index("PLAIN")) != null'
    jqok "$f" 'has("tunnel") and has("proxy") and has("transport") and has("tls") and has("ssh")'
    if [ "$4" = 1 ]; then
        jqok "$f" ".login.user == \"$DOVECOT_USER\" and .login.ok == true and .login.auth == \"default\""
    else
        jqok "$f" '.login == null'
    fi
}
json_tls() {  # json_tls FILE CERTFILE
    local f=$1 fp
    fp=$(openssl x509 -in "$2" -noout -fingerprint -sha256 | sed 's/.*=//')
    jqok "$f" '.tls.protocol == "TLSv1.3" or .tls.protocol == "TLSv1.2"'
    jqok "$f" '.tls.cipher | length > 0'
    jqok "$f" '.tls.certificate_status == "valid" and .tls.session_resumed == false'
    jqok "$f" '(.tls.subject | contains("CN=localhost")) and (.tls.issuer | contains("imapwire test CA"))'
    jqok "$f" '[.tls.valid_from, .tls.valid_to] | all(test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))'
    jqok "$f" ".tls.sha256_fingerprint == \"$fp\""
    jqok "$f" '.timings_us.secure > 0 and .ssh == null'
}
human_common() {  # human_common FILE MODE
    has "$1" "^connected to imaps?://127\\.0\\.0\\.1:[0-9]+ \\($2"
    has "$1" '^  phase tcp connect +[0-9]+\.[0-9]{3} ms$'
    has "$1" '^  phase greeting +[0-9]+\.[0-9]{3} ms$'
    has "$1" '^  phase total +[0-9]+\.[0-9]{3} ms$'
    has "$1" '^  capabilities: +IMAP4rev1'
    has "$1" '^  auth mechanisms: .*PLAIN'
    no_escapes "$1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# silent_start NAME: a listener the kernel completes connections to and that never says a
# word (for 30 s); its port in $sport, its process in $spid (silent_stop ends it)
silent_start() {
    rm -f "$scratch/$1.port"
    python3 -c '
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(30)
' "$scratch/$1.port" &
    spid=$!
    for _ in $(seq 100); do [ -s "$scratch/$1.port" ] && break; sleep 0.05; done
    sport=$(cat "$scratch/$1.port")
}
silent_stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
sshd_connections() { grep -c "^Connection from" "$SSHD_LOG" || true; }

if [ "$group" != hostile ]; then   # hostile talks only to the scripted server
    load dovecot
    P=$DOVECOT_PORT
    URL=imap://$DOVECOT_USER@127.0.0.1:$P
fi

case $group in
connect)
    # plain, with login, human then JSON; the password from the environment
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" && {
        human_common "$out" plain
        has "$out" '^  tls: +none'
        has "$out" "^  login: +ok as $DOVECOT_USER \\([A-Z0-9-]+\\)\$"
        has "$out" '^  phase ssh or proxy +-$'
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --json && json_common "$out" plain "$P" 1
    jqok "$out" '.tls == null and .ssh == null and .tunnel == null and .timings_us.tunnel == 0'
    # no user: no login
    run 0 --json connect "imap://127.0.0.1:$P" && json_common "$out" plain "$P" 0
    # STARTTLS and IMAPS with the test CA
    load dovecot-tls
    CA=$tmproot/dovecot-tls/certs/ca.pem CERT=$tmproot/dovecot-tls/certs/server.pem
    run 0 connect "imap://127.0.0.1:$DOVECOT_PORT" --starttls --ca "$CA" && {
        human_common "$out" starttls
        has "$out" '^  tls: +TLSv1\.[23], cipher [A-Z0-9_-]+, certificate valid'
        has "$out" '^  phase tls +[0-9]+\.[0-9]{3} ms$'
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "imap://$DOVECOT_USER@127.0.0.1:$DOVECOT_PORT" \
        --starttls --ca "$CA" --json && { json_common "$out" starttls "$DOVECOT_PORT" 1; json_tls "$out" "$CERT"; }
    run 0 connect "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" && human_common "$out" imaps
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT" \
        --ca "$CA" --json --identify && { json_common "$out" imaps "$DOVECOT_IMAPS_PORT" 1; json_tls "$out" "$CERT"; }
    # --insecure: connects without the CA, says so on stderr, certificate not checked
    run 0 connect "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --insecure --json && {
        has "$err" 'warning: --insecure'
        jqok "$out" '.insecure == true and .tls.certificate_status == "not-checked"'
    }
    # a name through the test resolver, the socket bound to a chosen local address
    load dnsmasq
    run 0 connect "imap://v4.imapwire.test:$P" --dns-server "$DNSMASQ_SERVER" --local-address 127.0.0.1 --json && {
        jqok "$out" '.connected and .host == "v4.imapwire.test" and .timings_us.resolve > 0'
    }
    run 3 connect "imap://nosuch.imapwire.test:$P" --dns-server "$DNSMASQ_SERVER" && {
        has "$err" 'ST_ERROR_HOST_NOT_FOUND'
        has "$err" 'the name nosuch\.imapwire\.test does not resolve'
    }
    # --help names every long option of the program (the list is read from main.c)
    run 0 --help && for opt in $(sed -n 's/^    {"\([a-z-]*\)", .*/\1/p' "$src/src/cli/main.c"); do
        has "$out" "--$opt"
    done
    ;;
tunnel)
    load sshd
    load sshd/agent.env
    before=$(sshd_connections)
    # one hop, the key from the agent
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" \
        --known-hosts "$SSHD_KNOWN_HOSTS" && {
        human_common "$out" "plain, ssh tunnel $SSHD_USER@127.0.0.1:$SSHD_PORT"
        has "$out" '^  phase ssh or proxy +[0-9]+\.[0-9]{3} ms$'
        has_fixed "$out" "  ssh:             SSH-2, host key $SSHD_HOSTKEY_SHA256"
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --json -J "$SSHD_USER@127.0.0.1:$SSHD_PORT" \
        --known-hosts "$SSHD_KNOWN_HOSTS" --ssh-key "$SSHD_KEY" && {
        json_common "$out" plain "$P" 1
        jqok "$out" ".ssh.protocol == \"SSH-2\" and .ssh.host_key_fingerprint == \"$SSHD_HOSTKEY_SHA256\""
        jqok "$out" ".tunnel == \"$SSHD_USER@127.0.0.1:$SSHD_PORT\" and .timings_us.tunnel > 0"
    }
    mid=$(sshd_connections)
    check "two single-hop connects made 2 SSH connections ($before -> $mid)" [ $((mid - before)) -eq 2 ]
    # a jump host: the same sshd twice, the second hop reached through the first
    run 0 connect "imap://127.0.0.1:$P" --json \
        --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT,$SSHD_USER@127.0.0.1:$SSHD_PORT" \
        --known-hosts "$SSHD_KNOWN_HOSTS" --ssh-key "$SSHD_KEY" && {
        json_common "$out" plain "$P" 0
        jqok "$out" ".ssh.host_key_fingerprint == \"$SSHD_HOSTKEY_SHA256\""
    }
    after=$(sshd_connections)
    check "the jump made 2 SSH connections ($mid -> $after)" [ $((after - mid)) -eq 2 ]
    # an ssh config alias
    printf 'Host cli-alias\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n' \
        "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" > "$scratch/ssh_config"
    run 0 connect "imap://127.0.0.1:$P" --json --tunnel cli-alias --ssh-config="$scratch/ssh_config" &&
        jqok "$out" ".ssh.host_key_fingerprint == \"$SSHD_HOSTKEY_SHA256\" and .connected"
    # a forward: a JSON line with the port, a login through it, then SIGINT ends it (exit 0)
    fwo=$scratch/fw.out
    timeout 60 "$BIN" forward 0 "127.0.0.1:$P" --json --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" \
        --known-hosts "$SSHD_KNOWN_HOSTS" >"$fwo" 2>"$scratch/fw.err" &
    fwpid=$!
    for _ in $(seq 100); do [ -s "$fwo" ] && break; sleep 0.1; done
    lp=$(jq -r .local_port "$fwo" 2>/dev/null)
    check "forward printed its port" [ -n "$lp" ] && [ "$lp" != null ] && [ "$lp" -gt 0 ]
    jqok "$fwo" ".command == \"forward\" and .remote_port == $P and .remote_host == \"127.0.0.1\" and .local_address == \"127.0.0.1\""
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "imap://$DOVECOT_USER@127.0.0.1:$lp" --json &&
        json_common "$out" plain "$lp" 1
    kill -INT "$fwpid"
    fw_wait "$fwpid"
    check "forward ends with 0 on SIGINT" [ $? -eq 0 ]
    run 4 connect "imap://127.0.0.1:$lp"
    # --accept-new-host-key: first contact with an empty known_hosts succeeds and appends
    # one line; the next connect without the flag finds it; a fresh empty file without the
    # flag fails with the host-key exit code
    : >"$scratch/kh_new"
    run 0 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" \
        --known-hosts "$scratch/kh_new" --accept-new-host-key &&
        check "accept-new appended one line ($(wc -l <"$scratch/kh_new"))" [ "$(wc -l <"$scratch/kh_new")" -eq 1 ]
    has_fixed "$scratch/kh_new" "[127.0.0.1]:$SSHD_PORT "
    run 0 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$scratch/kh_new"
    : >"$scratch/kh_none"
    run 8 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$scratch/kh_none" &&
        check "without the flag the file stays empty" [ ! -s "$scratch/kh_none" ]
    run 2 connect "imap://127.0.0.1:$P" --accept-new-host-key && has "$err" 'need --tunnel'
    run 2 forward 0 "127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --proxy socks5://127.0.0.1:1
    run 2 forward 0 "127.0.0.1:$P"
    ;;
proxy)
    load danted
    load tinyproxy
    IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS run 0 connect "imap://127.0.0.1:$P" --json \
        --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && {
        jqok "$out" ".proxy == \"socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT\""
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS run 0 connect "$URL" --json \
        --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && json_common "$out" plain "$P" 1
    has "$DANTED_LOG" "pass.*127\\.0\\.0\\.1\\.$P"
    # the proxy password is in neither the trace nor the output
    IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS run 0 connect "imap://127.0.0.1:$P" --trace \
        --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && {
        has "$err" 'socks5: '
        has_not "$err" "$DANTED_PASS"
        has_not "$out" "$DANTED_PASS"
    }
    run 0 connect "imap://127.0.0.1:$P" --proxy "http://127.0.0.1:$TINYPROXY_PORT" &&
        human_common "$out" "plain, proxy http://127\\.0\\.0\\.1:$TINYPROXY_PORT\\)"
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --json --proxy "http://127.0.0.1:$TINYPROXY_PORT" &&
        json_common "$out" plain "$P" 1
    has "$TINYPROXY_LOG" "CONNECT.*127\\.0\\.0\\.1:$P"
    # a proxy that fails is named, with its words; never the IMAP server behind it
    fp=$(free_port)
    run 4 connect "imap://127.0.0.1:$P" --proxy "socks5://127.0.0.1:$fp" && {
        has "$err" "^imapwire: connect failed: socks5 proxy 127\\.0\\.0\\.1:$fp"
        has "$err" "^  fix: .*proxy 127\\.0\\.0\\.1:$fp"
        has_not "$err" "nothing listens on 127.0.0.1 port $P"
    }
    IMAPWIRE_PROXY_PASSWORD=wrong-s3cret run 4 connect "imap://127.0.0.1:$P" --json \
        --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && {
        jqok "$out" ".error.stage == \"proxy\" and .error.hop == 1 and .error.peer == \"127.0.0.1:$DANTED_PORT\""
        jqok "$out" '(.error.detail | contains("refused the credentials")) and (.error.advice | contains("--proxy"))'
        secret_free wrong-s3cret "$out"
    }
    IMAPWIRE_PROXY_PASSWORD=wrong-s3cret run 4 connect "imap://127.0.0.1:$P" \
        --proxy "http://$TINYPROXY_AUTH_USER@127.0.0.1:$TINYPROXY_AUTH_PORT" && {
        has "$err" "^imapwire: connect failed: httpconnect proxy 127\\.0\\.0\\.1:$TINYPROXY_AUTH_PORT refused CONNECT .*HTTP/1\\.[01] 40[17]"
        has "$err" "^  fix: .*proxy 127\\.0\\.0\\.1:$TINYPROXY_AUTH_PORT"
        secret_free wrong-s3cret "$err"
    }
    # a proxy that accepts and says nothing, SOCKS5 and HTTP, alone and under SSH: the
    # proxy is named (stage, hop 1, its address), within --timeout
    load sshd
    load sshd/agent.env
    for scheme in socks5 http; do
        for tun in "" "--tunnel $SSHD_USER@127.0.0.1:$SSHD_PORT --known-hosts $SSHD_KNOWN_HOSTS"; do
            silent_start "px-$scheme"
            word=$scheme; [ "$scheme" = http ] && word=httpconnect
            start=$(date +%s%N)
            run 5 connect "imap://127.0.0.1:$P" --timeout 1 --proxy "$scheme://127.0.0.1:$sport" $tun && {
                has "$err" "^imapwire: connect failed: $word proxy 127\\.0\\.0\\.1:$sport accepted the connection and did not answer in 1 s"
                has "$err" "^  fix: the proxy 127\\.0\\.0\\.1:$sport \\(hop 1\\) accepted the connection"
            }
            ms=$(( ($(date +%s%N) - start) / 1000000 ))
            check "a silent $scheme proxy ${tun:+under SSH }gave up within --timeout ($ms ms)" [ "$ms" -lt 2500 ]
            echo "measured: silent $scheme proxy ${tun:+under SSH }--timeout 1: $ms ms"
            run 5 connect "imap://127.0.0.1:$P" --timeout 1 --proxy "$scheme://127.0.0.1:$sport" $tun --json &&
                jqok "$out" ".error.stage == \"proxy\" and .error.hop == 1 and .error.peer == \"127.0.0.1:$sport\" and (.error.detail | contains(\"accepted the connection and did not answer\"))"
            silent_stop
        done
    done
    # SSH over a proxy nobody runs: the proxy is named, not the SSH server
    fp=$(free_port)
    run 4 connect "imap://127.0.0.1:$P" --proxy "http://127.0.0.1:$fp" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS" && {
        has "$err" "^imapwire: connect failed: httpconnect proxy 127\\.0\\.0\\.1:$fp"
        has "$err" "^  fix: .*proxy 127\\.0\\.0\\.1:$fp \\(hop 1\\)"
        has_not "$err" "SSH host"
    }
    run 4 connect "imap://127.0.0.1:$P" --proxy "socks5://127.0.0.1:$fp" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS" --json &&
        jqok "$out" ".error.stage == \"proxy\" and .error.hop == 1 and .error.peer == \"127.0.0.1:$fp\" and (.error.detail | contains(\"socks5 proxy\"))"
    # HTTP CONNECT to a name the proxy cannot resolve: its status line and the name
    run 4 connect "imap://nosuch.imapwire.invalid:$P" --proxy "http://127.0.0.1:$TINYPROXY_PORT" && {
        has "$err" "^imapwire: connect failed: httpconnect proxy 127\\.0\\.0\\.1:$TINYPROXY_PORT refused CONNECT nosuch\\.imapwire\\.invalid:$P: HTTP/1\\.[01] 500"
        has "$err" "^  fix: the proxy 127\\.0\\.0\\.1:$TINYPROXY_PORT \\(hop 1\\) would not make the tunnel"
    }
    run 4 connect "imap://nosuch.imapwire.invalid:$P" --proxy "http://127.0.0.1:$TINYPROXY_PORT" --json &&
        jqok "$out" ".error.stage == \"proxy\" and .error.hop == 1 and .error.peer == \"127.0.0.1:$TINYPROXY_PORT\" and (.error.detail | contains(\"nosuch.imapwire.invalid\")) and (.error.detail | contains(\" 500 \"))"
    # the proxy password is not an argument: a user without it is refused before any I/O
    run 2 connect "$URL" --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && has "$err" IMAPWIRE_PROXY_PASSWORD
    run 2 connect "$URL" --proxy "socks5://$DANTED_USER:pw@127.0.0.1:$DANTED_PORT"
    # the proxy with a tunnel: SSH goes through SOCKS5
    load sshd
    load sshd/agent.env
    IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS run 0 connect "imap://127.0.0.1:$P" --json \
        --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" \
        --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS" &&
        jqok "$out" ".ssh.host_key_fingerprint == \"$SSHD_HOSTKEY_SHA256\""
    has "$DANTED_LOG" "pass.*127\\.0\\.0\\.1\\.$SSHD_PORT"
    # a password written in a transport string reaches the proxy but no output: the
    # report, the JSON, the trace and the errors show user:***@host
    for fmt in '' --json; do
        run 0 connect "imap://127.0.0.1:$P" $fmt --trace \
            --transport "socks5:$DANTED_USER:$DANTED_PASS@127.0.0.1:$DANTED_PORT" && {
            secret_free "$DANTED_PASS" "$out" "$err"
            has_fixed "$out" "socks5:$DANTED_USER:***@127.0.0.1:$DANTED_PORT"
        }
        run 0 connect "imap://127.0.0.1:$P" $fmt --trace \
            --transport "httpconnect:someone:http-s3cret@127.0.0.1:$TINYPROXY_PORT" && {
            secret_free http-s3cret "$out" "$err"
            has_fixed "$out" "httpconnect:someone:***@127.0.0.1:$TINYPROXY_PORT"
        }
        fp=$(free_port)
        run 4 connect "imap://127.0.0.1:$P" $fmt --trace --transport "socks5:u:refused-s3cret@127.0.0.1:$fp" &&
            secret_free refused-s3cret "$out" "$err"
    done
    # refused before any I/O, the password still not echoed
    run 2 connect "$URL" --json --proxy "socks5://$DANTED_USER:proxy-s3cret@127.0.0.1:$DANTED_PORT" &&
        secret_free proxy-s3cret "$out" "$err"
    run 2 connect "$URL" --json --proxy "ftp://$DANTED_USER:proxy-s3cret@127.0.0.1:$DANTED_PORT" &&
        secret_free proxy-s3cret "$out" "$err"
    run 2 connect --json "imap://user:url-s3cret@127.0.0.1:$P" && secret_free url-s3cret "$out" "$err"
    ;;
errors)
    load dovecot-tls
    CA=$tmproot/dovecot-tls/certs/ca.pem
    # a certificate for another name
    run 7 connect "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" --servername wrong.example.test && {
        has "$err" 'ST_ERROR_CERTIFICATE_NAME_MISMATCH'
        has "$err" 'the certificate is not for wrong\.example\.test: check the host name, or pass --servername'
    }
    run 7 connect "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" --servername wrong.example.test --json && {
        jqok "$out" '.error.code == 16 and .error.name == "ST_ERROR_CERTIFICATE_NAME_MISMATCH" and .exit_code == 7'
        jqok "$out" '.error.during == "connect" and (.error.message | length > 0) and (.error.advice | contains("--servername"))'
        jqok "$out" '.connected == false'
    }
    # no CA: untrusted
    run 7 connect "imap://127.0.0.1:$DOVECOT_PORT" --starttls && { has "$err" 'ST_ERROR_CERTIFICATE_UNTRUSTED'; has "$err" 'pass the issuing CA with --ca FILE'; }
    # a refused port
    fp=$(free_port)
    run 4 connect "imap://127.0.0.1:$fp" && {
        has "$err" 'ST_ERROR_CONNECTION_REFUSED'
        has "$err" "nothing listens on 127\\.0\\.0\\.1 port $fp"
    }
    run 4 connect "imap://127.0.0.1:$fp" --json &&
        jqok "$out" ".error.stage == \"tcp\" and .error.peer == \"127.0.0.1:$fp\" and .error.hop == 0 and .error.file == null"
    # a wrong password: the server's own words, on the first line and in the JSON
    IMAPWIRE_PASSWORD=not-the-password run 10 connect "$URL" && {
        has "$err" '^imapwire: login failed: .*the server said: \[AUTHENTICATIONFAILED\]'
        has "$err" 'ST_ERROR_LOGIN_FAILED'
        has "$err" 'refused the user name or password'
        secret_free not-the-password "$err"
    }
    IMAPWIRE_PASSWORD=not-the-password run 10 connect "$URL" --json && {
        jqok "$out" '.login.ok == false and .error.name == "ST_ERROR_LOGIN_FAILED" and .exit_code == 10'
        jqok "$out" '.error.stage == "login" and (.error.detail | contains("[AUTHENTICATIONFAILED]"))'
        jqok "$out" ".error.peer == \"127.0.0.1:$P\""
        secret_free not-the-password "$out"
    }
    # a CA file that does not exist, and a key given as the CA file: the file is named
    run 2 connect "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca /nonexistent/ei-ca.pem && {
        has "$err" '^imapwire: connect failed: the CA file /nonexistent/ei-ca\.pem cannot be read'
        has "$err" '^  fix: .*/nonexistent/ei-ca\.pem'
    }
    run 2 connect "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$tmproot/dovecot-tls/certs/server.key" --json &&
        jqok "$out" ".error.stage == \"file\" and .error.file == \"$tmproot/dovecot-tls/certs/server.key\" and (.error.detail | contains(\"no certificate\"))"
    # connected, then silence with TLS bytes: the port wants implicit TLS
    python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept(); c.sendall(bytes([0x15, 3, 3, 0, 2, 2, 0x46])); time.sleep(3)
' "$scratch/tlsport" &
    tlspid=$!
    for _ in $(seq 100); do [ -s "$scratch/tlsport" ] && break; sleep 0.05; done
    tp=$(cat "$scratch/tlsport")
    run 11 connect "imap://127.0.0.1:$tp" --timeout 1 --json && {
        jqok "$out" ".error.stage == \"greeting\" and .error.peer == \"127.0.0.1:$tp\""
        jqok "$out" '.error.advice | contains("imaps://")'
        jqok "$out" '.timings_us.total > 0 and .timings_us.connect > 0'
    }
    wait "$tlspid" 2>/dev/null
    # an unknown transport
    run 12 connect "imap://127.0.0.1:$P" --transport nosuchtransport && {
        has "$err" 'ST_ERROR_TRANSPORT_NOT_FOUND'
        has "$err" 'check the name in --transport'
    }
    # unknown and changed SSH host keys
    load sshd
    load sshd/agent.env
    run 8 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS_EMPTY" && {
        has "$err" 'ST_ERROR_SSH_HOST_KEY_UNKNOWN'
        has "$err" 'not in the known_hosts file.*--known-hosts'
    }
    run 8 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS_WRONG" &&
        { has "$err" 'ST_ERROR_SSH_HOST_KEY_MISMATCH'; has "$err" 'host key has CHANGED'; }
    # the presented key, the file, the entry, and the line to run
    run 8 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS_EMPTY" && {
        has_fixed "$err" "$SSHD_HOSTKEY_SHA256"
        has "$err" "^  fix: .*SSH host 127\\.0\\.0\\.1:$SSHD_PORT \\(hop 1\\)"
        has_fixed "$err" "$SSHD_KNOWN_HOSTS_EMPTY"
    }
    run 8 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS_WRONG" --json && {
        jqok "$out" ".error.stage == \"ssh\" and .error.hop == 1 and .error.peer == \"127.0.0.1:$SSHD_PORT\""
        jqok "$out" ".error.fingerprint == \"$SSHD_HOSTKEY_SHA256\" and .error.file == \"$SSHD_KNOWN_HOSTS_WRONG\""
        jqok "$out" ".error.advice | contains(\"ssh-keygen -R '[127.0.0.1]:$SSHD_PORT' -f $SSHD_KNOWN_HOSTS_WRONG\")"
    }
    # the jump host refuses: hop 1 is named, not the IMAP server
    fp=$(free_port)
    run 4 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$fp,$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS" && {
        has "$err" "^  fix: .*SSH host 127\\.0\\.0\\.1:$fp \\(hop 1\\)"
        has_not "$err" "127.0.0.1 port $P"
    }
    # a jump host that accepts and never speaks SSH, at hop 1 and at hop 2: that hop, by
    # number and address, on the first line, in the fix: line and in the JSON
    for at in 1 2; do
        silent_start "hop$at"
        if [ "$at" = 1 ]; then route="$SSHD_USER@127.0.0.1:$sport,$SSHD_USER@127.0.0.1:$SSHD_PORT"
        else route="$SSHD_USER@127.0.0.1:$SSHD_PORT,$SSHD_USER@127.0.0.1:$sport"; fi
        run 5 connect "imap://127.0.0.1:$P" --timeout 1 --tunnel "$route" --known-hosts "$SSHD_KNOWN_HOSTS" && {
            has "$err" "^imapwire: connect failed: SSH host 127\\.0\\.0\\.1:$sport \\(hop $at\\) accepted the connection and did not complete the SSH handshake"
            has "$err" "^  fix: SSH host 127\\.0\\.0\\.1:$sport \\(hop $at\\) accepted the connection"
            has_not "$err" "127.0.0.1 port $P"
        }
        run 5 connect "imap://127.0.0.1:$P" --timeout 1 --tunnel "$route" --known-hosts "$SSHD_KNOWN_HOSTS" --json && {
            jqok "$out" ".error.stage == \"ssh\" and .error.hop == $at and .error.peer == \"127.0.0.1:$sport\""
            jqok "$out" '.error.detail | contains("accepted the connection")'
        }
        silent_stop
    done
    # hop 2 refused: hop 1 could not reach it, in hop 1's (libssh2's) words
    fp=$(free_port)
    run 9 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT,$SSHD_USER@127.0.0.1:$fp" --known-hosts "$SSHD_KNOWN_HOSTS" && {
        has "$err" "^imapwire: connect failed: SSH host 127\\.0\\.0\\.1:$SSHD_PORT \\(hop 1\\) could not reach SSH host 127\\.0\\.0\\.1:$fp \\(hop 2\\)"
        has "$err" "^  fix: SSH host 127\\.0\\.0\\.1:$fp \\(hop 2\\) cannot be reached from the hop before it"
    }
    run 9 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT,$SSHD_USER@127.0.0.1:$fp" --known-hosts "$SSHD_KNOWN_HOSTS" --json && {
        jqok "$out" ".error.stage == \"ssh\" and .error.hop == 2 and .error.peer == \"127.0.0.1:$fp\""
        jqok "$out" '.error.detail | contains("connect failed")'
    }
    # a missing key file is the file's fault
    run 9 connect "imap://127.0.0.1:$P" --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT" --known-hosts "$SSHD_KNOWN_HOSTS" --ssh-key /nonexistent/ei_key --json &&
        jqok "$out" '.error.stage == "file" and .error.file == "/nonexistent/ei_key"'
    # a port that never answers: --timeout 1 gives up with exit 5 (the fixture drops SYNs)
    bh=$build/tests/tcp_blackhole
    if [ -x "$bh" ]; then
        "$bh" --addr 127.0.0.3 --port-file "$scratch/bh.port" --idle-exit 30 >/dev/null 2>&1 &
        bhpid=$!
        for _ in $(seq 100); do [ -s "$scratch/bh.port" ] && break; sleep 0.05; done
        start=$(date +%s%N)
        run 5 connect "imap://127.0.0.3:$(cat "$scratch/bh.port")" --timeout 1 && {
            has "$err" 'ST_ERROR_OPERATION_TIMEOUT'
            has "$err" 'raise --timeout'
        }
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        check "the timeout took about 1 s, not the default 20 ($ms ms)" [ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ]
        # the same black hole as jump host 1: hop 1 is named, not the route
        bhp=$(cat "$scratch/bh.port")
        run 5 connect "imap://127.0.0.1:$P" --timeout 1 --json --known-hosts "$SSHD_KNOWN_HOSTS" \
            --tunnel "$SSHD_USER@127.0.0.3:$bhp,$SSHD_USER@127.0.0.1:$SSHD_PORT" && {
            jqok "$out" ".error.stage == \"ssh\" and .error.hop == 1 and .error.peer == \"127.0.0.3:$bhp\""
            jqok "$out" '.error.detail | contains("no answer")'
        }
        kill "$bhpid" 2>/dev/null
        wait "$bhpid" 2>/dev/null
    else
        bad "no $bh"
    fi
    # usage errors
    run 2 connect "http://127.0.0.1:$P"
    run 2 connect "imap://user:pw@127.0.0.1:$P" && has "$err" 'password does not belong in the URL'
    run 2 connect "$URL" --auth nosuch
    run 2 connect "$URL" --bogus-option
    run 2 frobnicate x
    ;;
secrets)
    # The password never in ps: the program waits on a FIFO as its password file while
    # ps looks at every process's arguments; then the password arrives and it logs in.
    fifo=$scratch/pw.fifo
    mkfifo "$fifo"
    timeout 60 "$BIN" connect "$URL" --password-file "$fifo" --json >"$scratch/ps.out" 2>&1 &
    cpid=$!
    for _ in $(seq 50); do grep -q imapwire "/proc/$cpid/cmdline" 2>/dev/null && break; sleep 0.1; done
    # its own line only: under ctest -j another suite may pass a password in its arguments
    # on purpose (-u user:password), and that is not this program's
    ps -o pid,args ww -p "$cpid" >"$scratch/ps.txt"
    tr '\0' ' ' <"/proc/$cpid/cmdline" >"$scratch/cmdline.txt"
    printf '%s\n' "$DOVECOT_PASS" >"$fifo"
    wait "$cpid"
    check "login with the password from the FIFO" [ $? -eq 0 ]
    has "$scratch/ps.txt" "^ *$cpid .*imapwire connect $URL"
    has_not "$scratch/ps.txt" "$DOVECOT_PASS"
    has_not "$scratch/cmdline.txt" "$DOVECOT_PASS"
    jqok "$scratch/ps.out" '.login.ok == true'
    # nor in the trace, for each mechanism, in clear or base64 (PLAIN's and LOGIN's forms)
    b64plain=$(printf '\0%s\0%s' "$DOVECOT_USER" "$DOVECOT_PASS" | base64 -w0)
    b64pass=$(printf '%s' "$DOVECOT_PASS" | base64 -w0)
    for mech in default plain login scram scram-sha1; do
        IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --trace --auth "$mech" && {
            has "$err" '^C: '
            has "$err" '^S: '
            has_not "$err" "$DOVECOT_PASS"
            has_not "$err" "$b64plain"
            has_not "$err" "$b64pass"
            has_not "$out" "$DOVECOT_PASS"
        }
    done
    # the password file: first line only, missing file is exit 14
    printf '%s\nignored\n' "$DOVECOT_PASS" >"$scratch/pw"
    run 0 connect "$URL" --password-file "$scratch/pw"
    run 14 connect "$URL" --password-file "$scratch/nonexistent"
    # no terminal and no other source: exit 2 with the way out
    setsid -w "$BIN" connect "$URL" </dev/null >"$scratch/nt.out" 2>"$scratch/nt.err"
    check "no terminal, no password: exit 2" [ $? -eq 2 ]
    has "$scratch/nt.err" 'IMAPWIRE_PASSWORD'
    ;;
fetch)
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" && {
        check "fetch to stdout: the exact bytes of message 1" cmp -s "$out" "$DOVECOT_MSG1"
        check "fetch: quiet on stderr" [ ! -s "$err" ]
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" -o "$scratch/m1.eml" --json && {
        check "fetch -o: the exact bytes" cmp -s "$scratch/m1.eml" "$DOVECOT_MSG1"
        jqok "$out" ".command == \"fetch\" and .bytes == $DOVECOT_MSG1_SIZE and .uid == 1 and .sequence == null"
        jqok "$out" '.mailbox == "INBOX" and .error == null and .exit_code == 0 and .login.ok'
    }
    # the second message by UID, whatever its sequence number
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=2" -o "$scratch/m2.eml" --json &&
        jqok "$out" '.uid == 2 and .sequence == null and .bytes > 0'
    if cmp -s "$scratch/m2.eml" "$DOVECOT_MSG1"; then bad "message 2 is message 1"; else ok; fi
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 13 fetch "$URL/INBOX;UID=4000000" -o "$scratch/none" &&
        has "$err" 'ST_ERROR_MESSAGE_NOT_FOUND'
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 13 fetch "$URL/NoSuchBox;UID=1" -o "$scratch/none"
    run 2 fetch "$URL/INBOX"
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 14 fetch "$URL/INBOX;UID=1" -o "$scratch/no/such/dir/m"
    # -o FILE: made 0600 whatever the umask, in place of what was there
    umask 022
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" -o "$scratch/m0.eml" &&
        check "fetch -o: mode 0600 ($(stat -c %a "$scratch/m0.eml"))" [ "$(stat -c %a "$scratch/m0.eml")" = 600 ]
    printf 'older message\n' >"$scratch/m3.eml"
    chmod 644 "$scratch/m3.eml"
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" -o "$scratch/m3.eml" && {
        check "fetch -o over a file: the new bytes" cmp -s "$scratch/m3.eml" "$DOVECOT_MSG1"
        check "fetch -o over a file: mode 0600" [ "$(stat -c %a "$scratch/m3.eml")" = 600 ]
    }
    # a symlink at FILE is replaced, never written through (nor its target created)
    mkdir -p "$scratch/victim"
    printf 'precious\n' >"$scratch/victim/file"
    ln -s "$scratch/victim/file" "$scratch/link.eml"
    ln -s "$scratch/victim/created" "$scratch/dangling.eml"
    for l in link dangling; do
        IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" -o "$scratch/$l.eml" && {
            check "fetch -o $l.eml: a regular file now" [ -f "$scratch/$l.eml" ] && [ ! -L "$scratch/$l.eml" ]
            check "fetch -o $l.eml: the message" cmp -s "$scratch/$l.eml" "$DOVECOT_MSG1"
        }
    done
    check "the symlink's target is untouched" [ "$(cat "$scratch/victim/file")" = precious ]
    # a device or a FIFO is written in place, not replaced by a file
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" -o /dev/null &&
        check "-o /dev/null: still a device" [ -c /dev/null ]
    mkfifo "$scratch/m.fifo"
    cat "$scratch/m.fifo" >"$scratch/fifo.out" &
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 fetch "$URL/INBOX;UID=1" -o "$scratch/m.fifo"
    wait
    check "-o FIFO: the message through it" cmp -s "$scratch/fifo.out" "$DOVECOT_MSG1"
    check "-o FIFO: still a FIFO" [ -p "$scratch/m.fifo" ]
    check "the dangling symlink's target was not created" [ ! -e "$scratch/victim/created" ]
    # a fetch that fails leaves FILE as it was and no temporary file
    mkdir -p "$scratch/keep"
    printf 'older message\n' >"$scratch/keep/m.eml"
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 13 fetch "$URL/INBOX;UID=4000000" -o "$scratch/keep/m.eml"
    check "a failed fetch leaves FILE" [ "$(cat "$scratch/keep/m.eml")" = "older message" ]
    check "a failed fetch leaves no temporary ($(ls -A "$scratch/keep" | tr '\n' ' '))" \
        [ "$(ls -A "$scratch/keep")" = m.eml ]
    ;;
check)
    load dovecot-tls
    CA=$tmproot/dovecot-tls/certs/ca.pem
    run 0 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$DOVECOT_IMAPS_PORT" --ca "$CA" --json && {
        jqok "$out" '.command == "check" and (.modes | map(.mode)) == ["plain","starttls","imaps"]'
        jqok "$out" '.modes | all(.ok == true and .error == null)'
        jqok "$out" '.modes[0].verified == false and .modes[0].tls == null and (.modes[0].capabilities | index("STARTTLS")) != null'
        jqok "$out" '.modes[1:] | all(.verified and .tls.certificate_status == "valid" and .tls_versions["TLSv1.2"] == true and .tls_versions["TLSv1.3"] == true)'
        jqok "$out" ".modes[2].port == $DOVECOT_IMAPS_PORT and .modes[0].port == $DOVECOT_PORT"
        jqok "$out" '.modes | all((.auth_mechanisms | length) > 0 and .timings_us.total > 0)'
    }
    # without the CA: still tells the certificate, marked unverified, with the error
    run 0 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$DOVECOT_IMAPS_PORT" --json && {
        jqok "$out" '.modes[2].ok == false and .modes[2].error.name == "ST_ERROR_CERTIFICATE_UNTRUSTED"'
        jqok "$out" '.modes[2].tls.subject | contains("CN=localhost")'
    }
    run 0 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$DOVECOT_IMAPS_PORT" --ca "$CA" -v && {
        has "$out" '^plain \(imap://127\.0\.0\.1:[0-9]+\):$'
        has "$out" '^starttls \(imap://127\.0\.0\.1:[0-9]+\):$'
        has "$out" '^  tls versions: +TLSv1\.2 yes +TLSv1\.3 yes'
        no_escapes "$out"
    }
    # nothing listens: every mode fails, exit 4
    fp=$(free_port)
    run 4 check "127.0.0.1:$fp" --imaps-port "$fp"
    # a probe: one table (mode, port, result, TLS, certificate, auth in clear), at most 6 lines
    run 0 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$DOVECOT_IMAPS_PORT" --ca "$CA" && {
        check "check: a short table ($(wc -l <"$out") lines)" [ "$(wc -l <"$out")" -le 6 ]
        has "$out" '^mode +port +result +tls +certificate +auth in clear$'
        has "$out" "^plain +$DOVECOT_PORT +ok +- +- +.*PLAIN"
        has "$out" "^starttls +$DOVECOT_PORT +ok +TLSv1\.3 +valid +-$"
        has "$out" "^imaps +$DOVECOT_IMAPS_PORT +ok +TLSv1\.3 +valid +-$"
    }
    run 0 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$DOVECOT_IMAPS_PORT" &&
        has "$out" "^imaps +$DOVECOT_IMAPS_PORT +ST_ERROR_CERTIFICATE_UNTRUSTED +TLSv1\.3 +untrusted"
    # URLs: imaps:// checks implicit TLS on its port, imap:// plain and STARTTLS
    run 0 check "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" --json &&
        jqok "$out" "(.modes | map(.mode)) == [\"imaps\"] and .modes[0].port == $DOVECOT_IMAPS_PORT and .modes[0].ok"
    run 0 check "imap://u@127.0.0.1:$DOVECOT_PORT" --ca "$CA" --json &&
        jqok "$out" '(.modes | map(.mode)) == ["plain","starttls"] and (.modes | all(.ok))'
    # --require-tls: PLAIN offered in clear without LOGINDISABLED is exit 15; TLS only is 0
    run 15 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$DOVECOT_IMAPS_PORT" --ca "$CA" --require-tls --json && {
        jqok "$out" '.require_tls.ok == false and (.require_tls.problems | any(contains("in clear")))'
        jqok "$out" '.modes[0].auth_in_clear | index("PLAIN") != null'
    }
    run 0 check "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" --require-tls
    # a cleartext-only server (the plain Dovecot): exit 15 with --require-tls, 0 without
    load dovecot
    fp=$(free_port)
    run 15 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$fp" --require-tls &&
        has "$err" 'only cleartext'
    run 0 check "127.0.0.1:$DOVECOT_PORT" --imaps-port "$fp"
    ;;
hostile)
    # a scripted server (imap_fixture escapes) puts terminal control sequences in its
    # greeting, a NO and a SELECT answer, and cuts the message short
    fx=$build/tests/imap_fixture
    "$fx" escapes --port-file "$scratch/fx.port" --idle-exit 60 >/dev/null 2>&1 &
    fxpid=$!
    for _ in $(seq 100); do [ -s "$scratch/fx.port" ] && break; sleep 0.05; done
    FP=$(cat "$scratch/fx.port")
    check "the fixture runs" [ -n "$FP" ]
    # what the server said is shown, escaped: text, JSON, trace, whatever the output is
    for fmt in '' --json; do
        IMAPWIRE_PASSWORD=wrong run 10 connect "imap://x@127.0.0.1:$FP" --trace $fmt && {
            no_controls "$out"
            no_controls "$err"
            has_fixed "$err" 'S: * OK [CAPABILITY IMAP4rev1 LITERAL+] \x1b]0;owned\x07\x1b[31mready\x1b[0m'
            has_fixed "$err" 'NO [AUTHENTICATIONFAILED] \x1b[2J\x1b[Hwiped \x1b]0;owned\x07'
        }
    done
    jqok "$out" '.error.name == "ST_ERROR_LOGIN_FAILED"'
    # the message streamed to a file is cut short by a reset: the old FILE stays, no
    # temporary is left, and the SELECT's escapes are shown escaped in the trace
    mkdir -p "$scratch/keep"
    printf 'older message\n' >"$scratch/keep/m.eml"
    IMAPWIRE_PASSWORD=p run 11 fetch "imap://u@127.0.0.1:$FP/INBOX;UID=7" --trace -o "$scratch/keep/m.eml" && {
        no_controls "$err"
        has_fixed "$err" '[UIDVALIDITY 1] \x1b[5mok\x1b[0m'
    }
    check "a fetch cut short leaves FILE" [ "$(cat "$scratch/keep/m.eml")" = "older message" ]
    # -X: the untagged answers of a raw command are shown escaped, in text and JSON
    IMAPWIRE_PASSWORD=p run 0 -X 'SELECT INBOX' "imap://u@127.0.0.1:$FP/" && {
        no_controls "$out"
        has_fixed "$out" '* OK [UIDVALIDITY 1] \x1b[5mok\x1b[0m'
    }
    IMAPWIRE_PASSWORD=p run 0 -X 'SELECT INBOX' "imap://u@127.0.0.1:$FP/" --json && no_controls "$out"
    jqok "$out" '.command == "request" and (.responses | length) == 2 and (.responses[1] | contains("\\x1b[5mok"))'
    check "a fetch cut short leaves no temporary ($(ls -A "$scratch/keep" | tr '\n' ' '))" \
        [ "$(ls -A "$scratch/keep")" = m.eml ]
    # the message itself on a terminal: its escape sequences are shown, not obeyed
    if command -v tmux >/dev/null; then
        sock=$scratch/tmux.sock
        tmux -S "$sock" new-session -d -s cli -x 160 -y 50 \
            "env IMAPWIRE_PASSWORD=p $BIN fetch 'imap://u@127.0.0.1:$FP/INBOX;UID=7'; echo EXIT=\$?; sleep 60"
        for _ in $(seq 200); do
            tmux -S "$sock" capture-pane -p -t cli >"$scratch/pane.txt" 2>/dev/null
            grep -q 'EXIT=' "$scratch/pane.txt" && break
            sleep 0.1
        done
        has_fixed "$scratch/pane.txt" 'Subject: \x1b[31mcut\x1b[0m'
        has_fixed "$scratch/pane.txt" 'EXIT=11'
        tmux -S "$sock" kill-server
    else
        echo "tmux not installed: the terminal case skipped"
    fi
    kill "$fxpid" 2>/dev/null
    wait "$fxpid" 2>/dev/null
    ;;
secure)
    # A program with file capabilities, run by a user it gives more rights, is "secure"
    # (AT_SECURE): the IMAPWIRE_* variables must not steer the library there, nor
    # HOSTALIASES, LOCALDOMAIN or RES_OPTIONS c-ares. The same binary without the
    # capability, run by the same user, obeys them: that proves each case can tell.
    [ "$(id -u)" = 0 ] && command -v setcap >/dev/null && command -v setpriv >/dev/null ||
        { echo "needs root, setcap and setpriv: skipped"; exit 77; }
    chmod 755 "$scratch"
    cp "$build/src/cli/imapwire" "$scratch/plain"      # absolute RUNPATH: no $ORIGIN
    cp "$build/src/cli/imapwire" "$scratch/capped"
    chmod 755 "$scratch/plain" "$scratch/capped"
    setcap cap_net_bind_service+ep "$scratch/capped" ||
        { echo "no file capabilities on this file system: skipped"; exit 77; }
    load dnsmasq
    printf 'imapalias localhost\n' >"$scratch/hostaliases"
    chmod 644 "$scratch/hostaliases"
    fp=$(free_port)
    # secure WANT_PLAIN WANT_CAPPED VAR=VALUE... -- ARGS...: both binaries as nobody
    secure() {
        local want_plain=$1 want_capped=$2 envs=() b r
        shift 2
        while [ "$1" != -- ]; do envs+=("$1"); shift; done
        shift
        for b in plain capped; do
            env "${envs[@]}" timeout 60 setpriv --reuid=nobody --regid=nogroup --clear-groups \
                "$scratch/$b" "$@" >"$scratch/$b.out" 2>"$scratch/$b.err"
            r=$?
            if [ "$b" = plain ]; then want=$want_plain; else want=$want_capped; fi
            check "${envs[*]} imapwire $* as nobody, $b: exit $r, wanted $want" [ "$r" -eq "$want" ]
            [ "$r" -eq "$want" ] || sed 's/^/  | /' "$scratch/$b.err" | head -5
        done
    }
    # the library's own variables (secure_getenv)
    secure 12 0 IMAPWIRE_TRANSPORT=nosuchtransport -- connect "imap://127.0.0.1:$P"
    secure 4 12 IMAPWIRE_PLUGIN_PATH="$build/plugins" -- connect "imap://127.0.0.1:$P" \
        --transport "socks5:127.0.0.1:$fp"
    # the resolver's (glibc drops them from a secure program's environment)
    secure 0 3 HOSTALIASES="$scratch/hostaliases" -- connect "imap://imapalias:$P" \
        --dns-server "$DNSMASQ_SERVER"
    secure 0 3 LOCALDOMAIN=imapwire.test -- connect "imap://v4:$P" --dns-server "$DNSMASQ_SERVER"
    secure 0 3 RES_OPTIONS=ndots:0 LOCALDOMAIN=imapwire.test -- connect "imap://v4:$P" \
        --dns-server "$DNSMASQ_SERVER"
    ;;
terminal)
    command -v tmux >/dev/null || { echo "tmux not installed: skipped"; exit 77; }
    # one tmux server per session, so the end of the first cannot race the second's start
    sock=$scratch/tmux1.sock
    tm() { tmux -S "$sock" "$@"; }
    pane() { tm capture-pane -p -t cli >"$scratch/pane.txt" 2>/dev/null; }
    wait_pane() {  # wait_pane REGEX: bounded, 20 s
        for _ in $(seq 200); do pane; grep -Eq -- "$1" "$scratch/pane.txt" && return 0; sleep 0.1; done
        return 1
    }
    tm new-session -d -s cli -x 160 -y 50 "env -u IMAPWIRE_PASSWORD $BIN connect $URL; echo EXIT=\$?; sleep 60"
    check "the prompt appears" wait_pane "Password for $DOVECOT_USER@127\\.0\\.0\\.1:"
    tm send-keys -t cli "$DOVECOT_PASS" Enter
    check "the login ends" wait_pane 'EXIT=[0-9]+'
    has "$scratch/pane.txt" 'EXIT=0'
    has "$scratch/pane.txt" "login: +ok as $DOVECOT_USER"
    has_not "$scratch/pane.txt" "$DOVECOT_PASS"
    # on a terminal the output has colour (the piped runs of the other groups have none)
    tm capture-pane -e -p -t cli >"$scratch/pane-e.txt"
    if grep -q $'\033\\[3[0-9]m' "$scratch/pane-e.txt"; then ok; else bad "no colour on a terminal"; fi
    tm kill-server
    sock=$scratch/tmux2.sock
    # the progress bar draws on the terminal's stderr and finishes at the full size
    tm new-session -d -s cli -x 160 -y 50 "env IMAPWIRE_PASSWORD=$DOVECOT_PASS $BIN fetch '$URL/INBOX;UID=1' -o $scratch/t.eml; echo EXIT=\$?; sleep 60"
    check "fetch ends" wait_pane 'EXIT=[0-9]+'
    has "$scratch/pane.txt" "\\[#{30}\\] $DOVECOT_MSG1_SIZE/$DOVECOT_MSG1_SIZE bytes done"
    has "$scratch/pane.txt" 'EXIT=0'
    check "fetched bytes" cmp -s "$scratch/t.eml" "$DOVECOT_MSG1"
    tm kill-server
    # Ctrl-C at the prompt ends the program and leaves the terminal echoing again
    sock=$scratch/tmux3.sock
    # the shell traps INT (so it survives to report); the program gets the default action
    tm new-session -d -s cli -x 160 -y 50 "trap : INT; env -u IMAPWIRE_PASSWORD $BIN connect $URL; echo EXIT=\$?; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?echo' | sed 's/^/MODE=/'; sleep 60"
    check "the prompt appears again" wait_pane "Password for $DOVECOT_USER@127\\.0\\.0\\.1:"
    tm send-keys -t cli C-c
    check "the program ends on Ctrl-C" wait_pane 'MODE=-?echo'
    has "$scratch/pane.txt" 'EXIT=130'
    has "$scratch/pane.txt" '^MODE=echo$'
    tm kill-server
    ;;
reports)
    # honest reports: the mechanism used and the capabilities after the login, in text
    # and JSON; a warning when the password itself went out in clear; the mailbox of
    # the URL selected; --ssh-config FILE as well as --ssh-config=FILE
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --json && {
        jqok "$out" '.login.mechanism == "SCRAM-SHA-256" and .login.auth == "default"'
        jqok "$out" '(.login.capabilities | index("SORT")) != null and (.capabilities | index("SORT")) == null'
        jqok "$out" '(.login.capabilities | map(select(startswith("AUTH="))) | length) == 0'
        has_not "$err" 'in clear'
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" && {
        has "$out" "^  login: +ok as $DOVECOT_USER \(SCRAM-SHA-256\)\$"
        has "$out" '^  after login: +IMAP4rev1 .*SORT'
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --auth plain --json && {
        jqok "$out" '.login.mechanism == "PLAIN" and .login.auth == "plain"'
        has "$err" 'warning: .*password .*in clear'
    }
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL" --auth login && has "$err" 'warning: .*password .*in clear'
    load dovecot-tls
    CA=$tmproot/dovecot-tls/certs/ca.pem
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "imap://$DOVECOT_USER@127.0.0.1:$DOVECOT_PORT" \
        --starttls --ca "$CA" --auth plain --json && {
        jqok "$out" '.login.mechanism == "PLAIN"'
        has_not "$err" 'in clear'
    }
    load dovecot
    # the mailbox of the URL is selected and reported; one that does not exist is 13
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL/INBOX" --json &&
        jqok "$out" '.mailbox.name == "INBOX" and .mailbox.messages == 2 and .mailbox.uidvalidity > 0'
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 connect "$URL/INBOX" && has "$out" '^  mailbox: +INBOX, 2 messages'
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 13 connect "$URL/No%20such"
    run 2 connect "imap://127.0.0.1:$P/INBOX" && has "$err" 'mailbox.*needs a user'
    # --ssh-config FILE and --ssh-config=FILE
    load sshd
    printf 'Host cli-alias\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n' \
        "$SSHD_PORT" "$SSHD_USER" "$SSHD_KEY" "$SSHD_KNOWN_HOSTS" > "$scratch/ssh config"
    run 0 connect "imap://127.0.0.1:$P" --json --tunnel cli-alias --ssh-config="$scratch/ssh config" &&
        jqok "$out" ".ssh.host_key_fingerprint == \"$SSHD_HOSTKEY_SHA256\""
    run 0 connect "imap://127.0.0.1:$P" --json --tunnel cli-alias --ssh-config "$scratch/ssh config" &&
        jqok "$out" ".ssh.host_key_fingerprint == \"$SSHD_HOSTKEY_SHA256\""
    run 0 --ssh-config "$scratch/ssh config" --tunnel cli-alias connect "imap://127.0.0.1:$P" --json &&
        jqok "$out" '.connected'
    ;;
curl)
    # curl's IMAP habits: list, search, -X, RFC 5092 URL parts, -u user[:password], netrc,
    # -s/-S; every command logs in when given a user
    H=127.0.0.1:$P
    export IMAPWIRE_PASSWORD=$DOVECOT_PASS
    run 0 list "$URL" && { has "$out" '^\* LIST \(.*\) "?.+"? "?INBOX"?$'; has_not "$out" 'connected to'; }
    run 0 "$URL/" && has "$out" '^\* LIST .*INBOX'                 # curl: no mailbox lists
    unset IMAPWIRE_PASSWORD
    # -u user:password: allowed, with one warning line that others can see it
    run 0 list "imap://$H" -u "$DOVECOT_USER:$DOVECOT_PASS" && {
        has "$out" '^\* LIST .*INBOX'
        has "$err" 'other users .*can see'
        check "one warning line ($(wc -l <"$err"))" [ "$(wc -l <"$err")" -eq 1 ]
    }
    # -u logs in on connect without -l
    run 0 connect "imap://$H" -u "$DOVECOT_USER:$DOVECOT_PASS" --json && jqok "$out" '.login.ok == true'
    export IMAPWIRE_PASSWORD=$DOVECOT_PASS
    # search: the command and curl's ?QUERY form; the numbers are UIDs
    run 0 search "$URL/INBOX" ALL && has "$out" '^\* SEARCH 1 2$'
    run 0 "$URL/INBOX?SUBJECT%20%22test%201%22" && has "$out" '^\* SEARCH 1$'
    run 2 search "$URL/INBOX"
    # -X: one raw command, its untagged responses on stdout
    run 0 -X 'EXAMINE INBOX' "$URL/" && has "$out" '^\* 2 EXISTS$'
    run 0 --request 'STATUS INBOX (MESSAGES)' list "$URL" && has "$out" '^\* STATUS "?INBOX"? \(MESSAGES 2\)$'
    run 11 -X 'NOSUCHCOMMAND' "$URL/" && has "$err" 'ST_ERROR_COMMAND_FAILED|BAD'
    run 0 -X 'UID FETCH 2 (UID FLAGS)' "$URL/INBOX;UID=2" && has "$out" '^\* 2 FETCH \(UID 2 FLAGS'
    # -u user:password: the password is starred in the running process's arguments
    mkfifo "$scratch/tin"
    "$BIN" tunnel "imap://$H" -u "$DOVECOT_USER:$DOVECOT_PASS" <"$scratch/tin" >"$scratch/tout" 2>"$scratch/terr" &
    tpid=$!
    exec 7>"$scratch/tin"
    for _ in $(seq 100); do [ -s "$scratch/tout" ] && break; sleep 0.1; done
    tr '\0' ' ' <"/proc/$tpid/cmdline" >"$scratch/cmdline"
    exec 7>&-
    wait "$tpid"
    has "$scratch/tout" '^\* PREAUTH'
    has_not "$scratch/cmdline" "$DOVECOT_PASS"
    has "$scratch/cmdline" "$DOVECOT_USER:\*+ "
    # RFC 5092: ;UID= (also after a '/'), ;MAILINDEX=, ;SECTION=, ;PARTIAL=
    run 0 fetch "$URL/INBOX/;UID=1" && check "INBOX/;UID=1: message 1" cmp -s "$out" "$DOVECOT_MSG1"
    run 0 fetch "$URL/INBOX;MAILINDEX=1" && check ";MAILINDEX=1: message 1" cmp -s "$out" "$DOVECOT_MSG1"
    run 0 fetch "$URL/INBOX;MAILINDEX=1" -o "$scratch/mi.eml" --json && {
        check ";MAILINDEX=1 -o: message 1" cmp -s "$scratch/mi.eml" "$DOVECOT_MSG1"
        jqok "$out" ".sequence == 1 and .uid == null and .bytes == $DOVECOT_MSG1_SIZE"; }
    run 0 fetch "$URL/INBOX;UID=1;SECTION=1" && has "$out" 'hello from imapwire'
    run 0 "$URL/INBOX;UID=1" && check "curl form: message 1" cmp -s "$out" "$DOVECOT_MSG1"
    run 0 fetch "$URL/INBOX;UID=1;SECTION=HEADER" && {
        has "$out" '^Subject: imapwire test 1'; has_not "$out" 'hello from imapwire'; }
    run 0 fetch "$URL/INBOX;UID=1;SECTION=TEXT" && { has "$out" '^hello from imapwire'; has_not "$out" 'Subject:'; }
    run 0 fetch "$URL/INBOX;UID=1/;PARTIAL=0.4" && check ";PARTIAL=0.4: 'From' ($(cat "$out"))" [ "$(cat "$out")" = From ]
    run 2 fetch "$URL/INBOX;UID=1;PARTIAL=x"
    run 2 fetch "$URL/INBOX;UID=1;MAILINDEX=1"
    # by UID, never through a sequence number: the trace shows UID FETCH with the body,
    # the library's own (IMAP_MESSAGE_UID: no parentheses) for a whole message or a part,
    # the tool's for a text section
    run 0 -v fetch "$URL/INBOX;UID=2" -o "$scratch/u2.eml" && {
        has "$err" 'UID FETCH 2 BODY\.PEEK\[\]'
        if grep -Eq '[0-9]+ FETCH [0-9]+ .*BODY' "$err"; then bad "a FETCH by sequence number"; else ok; fi
    }
    run 0 -v fetch "$URL/INBOX;UID=1;SECTION=HEADER" && has "$err" 'UID FETCH 1 \(BODY\.PEEK\[HEADER\]\)'
    # fetch is quiet on stderr unless -v
    run 0 fetch "$URL/INBOX;UID=1" -o "$scratch/q.eml" &&
        check "fetch without -v: nothing on stderr ($(wc -c <"$err") bytes)" [ ! -s "$err" ]
    unset IMAPWIRE_PASSWORD
    # netrc on every command; --netrc without a machine: exit 2
    printf 'machine 127.0.0.1 login %s password %s\n' "$DOVECOT_USER" "$DOVECOT_PASS" >"$scratch/netrc"
    printf 'machine elsewhere login x password y\n' >"$scratch/netrc_other"
    run 0 --netrc-file "$scratch/netrc" list "imap://$H" && has "$out" 'INBOX'
    run 0 --netrc-file "$scratch/netrc" fetch "imap://$H/INBOX;UID=1" &&
        check "netrc fetch: message 1" cmp -s "$out" "$DOVECOT_MSG1"
    HOME=$scratch run 2 --netrc search "imap://$H/INBOX" ALL
    run 2 --netrc --netrc-file "$scratch/netrc_other" list "imap://$H" && has "$err" 'no netrc entry'
    IMAPWIRE_PASSWORD=$DOVECOT_PASS run 0 --netrc-optional --netrc-file "$scratch/netrc_other" list "$URL" &&
        has "$out" 'INBOX'
    # -s: nothing on stderr, even for an error; -S: the error again
    fp=$(free_port)
    run 4 -s connect "imap://127.0.0.1:$fp" && check "-s: stderr empty" [ ! -s "$err" ]
    run 4 -sS connect "imap://127.0.0.1:$fp" && has "$err" 'connect failed'
    run 0 -s list "imap://$H" -u "$DOVECOT_USER:$DOVECOT_PASS" && check "-s: no warning" [ ! -s "$err" ]
    # bash completion, installed where Debian's bash-completion looks (its data dir)
    comp=$prefix/share/bash-completion/completions/imapwire
    check "completion installed at $comp" [ -f "$comp" ]
    complete_words() {  # complete_words WORD...: what bash offers for the last word
        bash --norc --noprofile -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
            COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _imapwire imapwire "${!#}"; printf "%s\n" "${COMPREPLY[@]}"' \
            _ "$comp" "$@" 2>&1
    }
    complete_words imapwire '' >"$scratch/comp1"
    for c in connect fetch list search forward check tunnel; do has "$scratch/comp1" "^$c\$"; done
    complete_words imapwire --acc >"$scratch/comp2"
    has "$scratch/comp2" '^--accept-new-host-key$'
    complete_words imapwire list -X '' >/dev/null
    for opt in $(sed -n 's/^    {"\([a-z-]*\)", .*/\1/p' "$src/src/cli/main.c"); do
        complete_words imapwire "--${opt:0:3}" | grep -qx -- "--$opt" && ok || bad "completion lacks --$opt"
    done
    ;;
*)
    echo "unknown group $group"; exit 2 ;;
esac

echo "cli $group: $checks checks, $fails failed"
[ "$checks" -gt 0 ] && [ "$fails" -eq 0 ] && rm -rf "$scratch"
[ "$fails" -eq 0 ]
