#!/usr/bin/env bash
# clients.sh: "imapwire tunnel" under the mail clients that run it (mbsync, neomutt) and
# under a scripted client (imap_pipe.py), with the INSTALLED binary and real servers.
#   clients.sh GROUP SOURCE_DIR BUILD_DIR SCRATCH_DIR TMPROOT
# GROUP: relay (shared fixtures: dovecot, dovecot-tls, sshd, danted), mbsync and neomutt
# (each with its own Dovecot, which they change). Exit 77 when the client is missing.
set -u
group=$1 src=$2 build=$3 scratch=$4 tmproot=$5
fails=0 checks=0
rm -rf "$scratch"
mkdir -p "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null || { echo "install failed"; exit 1; }
BIN=$scratch/prefix/bin/imapwire
PIPE=$src/tests/cli/imap_pipe.py
export PATH=$scratch/prefix/bin:$PATH
unset IMAPWIRE_PASSWORD IMAPWIRE_PROXY_PASSWORD IMAPWIRE_TRANSPORT IMAPWIRE_PLUGIN_PATH
export HOME=$scratch/home      # no user's ~/.netrc, ~/.mbsyncrc or ~/.neomuttrc
mkdir -p "$HOME"

pass() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }
expect() { local what=$1; shift; if "$@"; then pass; else fail "$what"; fi; }
contains() { if grep -Eq -- "$2" "$1"; then pass; else fail "$(basename "$1") lacks /$2/"; head -c 1500 "$1" | sed 's/^/  | /'; fi; }
lacks() { if grep -Eq -- "$2" "$1"; then fail "$(basename "$1") holds /$2/"; else pass; fi; }
fixture() { set -a; . "$tmproot/$1"; set +a; }
# talk WANT_RC NAME [imap_pipe options] -- tunnel arguments: one conversation through the
# tunnel; $scratch/NAME.out is what the client read, NAME.err the tunnel's stderr
talk() {
    local want=$1 name=$2; shift 2
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
    timeout 60 python3 "$PIPE" "$scratch/$name.out" "${opts[@]}" -- "$BIN" tunnel "$@" 2>"$scratch/$name.err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$name: imapwire tunnel $* -> $rc, wanted $want"; sed 's/^/  stderr: /' "$scratch/$name.err" | head -10
        return 1
    fi
    pass
}
# a whole session as a client sees it: greeting, SELECT, message 1 byte for byte, LOGOUT
session_ok() {
    local f=$scratch/$1.out
    contains "$f" '^\* PREAUTH \[CAPABILITY IMAP4rev1 [^]]*\] imapwire tunnel ready'$'\r''$'
    lacks "$f" '^\* PREAUTH .*(AUTH=|STARTTLS|LOGINDISABLED)'
    contains "$f" '^\* 2 EXISTS'
    contains "$f" '^a3 OK'
    contains "$f" '^\* BYE'
    contains "$f" '^a4 OK'
    # message 1 arrived whole: its exact bytes are inside the FETCH literal
    expect "$1: message 1 byte for byte" python3 -c 'import sys; sys.exit(open(sys.argv[2],"rb").read() not in open(sys.argv[1],"rb").read())' "$f" "$DOVECOT_MSG1"
    # nothing but IMAP: every byte the client read is in a response of the server's
    lacks "$f" '^(imapwire|connected|  )'
}
# own_dovecot: a private TLS Dovecot under $scratch (the mail clients change its INBOX)
own_dovecot() {
    "$src/tests/harness/dovecot-tls.sh" start "$scratch/dovecot" tls >/dev/null || { echo "dovecot did not start"; exit 1; }
    trap '"$src/tests/harness/dovecot-tls.sh" stop "$scratch/dovecot" tls >/dev/null 2>&1' EXIT
    set -a; . "$scratch/dovecot/env.sh"; set +a
    CA=$scratch/dovecot/certs/ca.pem
}
# server_view FILE: count, bytes and digests of INBOX as the server holds it (imaplib,
# Python's own client), CR removed as a Maildir stores lines, and the flags
server_view() {
    python3 - "$DOVECOT_PORT" "$DOVECOT_USER" "$DOVECOT_PASS" "$1" <<'PY'
import hashlib, imaplib, sys
port, user, pw, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4('127.0.0.1', port, timeout=20)
m.login(user, pw)
m.select('INBOX', readonly=True)
typ, data = m.fetch('1:*', '(FLAGS BODY.PEEK[])')
msgs = [d[1].replace(b'\r', b'') for d in data if isinstance(d, tuple)]
# mbsync marks what it uploads with an X-TUID header, which the Maildir copy lacks
msgs = [b''.join(l for l in x.splitlines(True) if not l.startswith(b'X-TUID: ')) for x in msgs]
flags = [d[0].decode() for d in data if isinstance(d, tuple)]
with open(out, 'w') as f:
    f.write('count %d\nbytes %d\n' % (len(msgs), sum(len(x) for x in msgs)))
    for x in sorted(hashlib.sha256(x).hexdigest() for x in msgs):
        f.write(x + '\n')
    for fl in flags:
        f.write('flags ' + fl + '\n')
m.logout()
PY
}
# maildir_view DIR FILE: the same for a Maildir (X-TUID, mbsync's own header, left out)
maildir_view() {
    python3 - "$1" "$2" <<'PY'
import hashlib, os, sys
d, out = sys.argv[1], sys.argv[2]
msgs = []
for sub in ('cur', 'new'):
    for n in os.listdir(os.path.join(d, sub)):
        b = open(os.path.join(d, sub, n), 'rb').read().replace(b'\r', b'')
        msgs.append(b''.join(l for l in b.splitlines(True) if not l.startswith(b'X-TUID: ')))
with open(out, 'w') as f:
    f.write('count %d\nbytes %d\n' % (len(msgs), sum(len(x) for x in msgs)))
    for x in sorted(hashlib.sha256(x).hexdigest() for x in msgs):
        f.write(x + '\n')
PY
}

case $group in
relay)
    fixture dovecot/env.sh
    P=$DOVECOT_PORT
    export IMAPWIRE_PASSWORD=$DOVECOT_PASS
    # plain, the password from the environment
    talk 0 plain -- "imap://$DOVECOT_USER@127.0.0.1:$P" && { session_ok plain; lacks "$scratch/plain.err" .; }
    # a password sent in clear is said on stderr (never on stdout)
    talk 0 cleartext -- "imap://$DOVECOT_USER@127.0.0.1:$P" --auth plain && {
        session_ok cleartext
        contains "$scratch/cleartext.err" 'warning: the password went to the server in clear \(PLAIN'
    }
    # -u and --log: diagnostics to the file, none on stderr, stdout still IMAP only
    talk 0 logged -- "imap://127.0.0.1:$P" -u "$DOVECOT_USER" -v --log "$scratch/tunnel.log" && {
        session_ok logged
        contains "$scratch/tunnel.log" '^C: .*LOGIN|^C: .*AUTHENTICATE'
        contains "$scratch/tunnel.log" 'tunnel ended \(the (server closed|client.s input ended)\)'
        expect "--log leaves stderr empty" test ! -s "$scratch/logged.err"
    }
    # no user and no PREAUTH: an OK greeting with the mechanisms, the client logs in itself
    talk 0 ownlogin --login "$DOVECOT_USER" "$DOVECOT_PASS" -- "imap://127.0.0.1:$P" && {
        contains "$scratch/ownlogin.out" '^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=PLAIN.*\] imapwire tunnel ready'
        contains "$scratch/ownlogin.out" '^a0 OK'
        contains "$scratch/ownlogin.out" '^a3 OK'
    }
    # the client closes its end without LOGOUT: the tunnel ends by itself, exit 0
    talk 0 nologout --no-logout -- "imap://$DOVECOT_USER@127.0.0.1:$P" -t 2 &&
        contains "$scratch/nologout.out" '^a3 OK'
    # netrc, curl's rules: the entry for the host; -u picks among logins; none: refused
    printf 'machine other.example login x password y\nmachine 127.0.0.1\n  login nobody password nope\nmachine 127.0.0.1 login %s password "%s"\n' \
        "$DOVECOT_USER" "$DOVECOT_PASS" > "$scratch/netrc"
    printf 'default login %s password %s\n' "$DOVECOT_USER" "$DOVECOT_PASS" > "$scratch/netrc.default"
    printf 'machine elsewhere login %s password %s\n' "$DOVECOT_USER" "$DOVECOT_PASS" > "$scratch/netrc.none"
    cp "$scratch/netrc" "$HOME/.netrc"
    unset IMAPWIRE_PASSWORD
    talk 0 netrc_user -- "imap://$DOVECOT_USER@127.0.0.1:$P" --netrc-file "$scratch/netrc" && session_ok netrc_user
    talk 0 netrc_home -- "imap://127.0.0.1:$P" -u "$DOVECOT_USER" --netrc && session_ok netrc_home
    talk 10 netrc_first -- "imap://127.0.0.1:$P" --netrc   # the first entry: nobody/nope
    talk 0 netrc_default -- "imap://127.0.0.1:$P" --netrc-file "$scratch/netrc.default" && session_ok netrc_default
    talk 2 netrc_none -- "imap://127.0.0.1:$P" --netrc-file "$scratch/netrc.none" &&
        contains "$scratch/netrc_none.err" 'no netrc entry'
    IMAPWIRE_PASSWORD=$DOVECOT_PASS talk 0 netrc_opt -- "imap://$DOVECOT_USER@127.0.0.1:$P" \
        --netrc-optional --netrc-file "$scratch/netrc.none" && session_ok netrc_opt
    talk 14 netrc_missing -- "imap://127.0.0.1:$P" --netrc-file "$scratch/no-such-file"
    rm -f "$HOME/.netrc"
    export IMAPWIRE_PASSWORD=$DOVECOT_PASS
    # failures: exit codes as the other commands, nothing at all on stdout
    talk 10 badpass -- "imap://$DOVECOT_USER@127.0.0.1:$P" --password-file /dev/null &&
        contains "$scratch/badpass.err" 'ST_ERROR_LOGIN_FAILED'
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    talk 4 refused -- "imap://$DOVECOT_USER@127.0.0.1:$port"
    talk 2 json -- "imap://$DOVECOT_USER@127.0.0.1:$P" --json
    talk 2 mailbox -- "imap://$DOVECOT_USER@127.0.0.1:$P/INBOX"
    for f in badpass refused json mailbox; do expect "$f: stdout empty" test ! -s "$scratch/$f.out"; done
    # implicit TLS and STARTTLS, the certificate checked; an unknown CA is exit 7
    fixture dovecot-tls/env.sh
    CA=$tmproot/dovecot-tls/certs/ca.pem
    talk 0 imaps -- "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" && session_ok imaps
    talk 0 starttls -- "imap://$DOVECOT_USER@127.0.0.1:$DOVECOT_PORT" --starttls --ca "$CA" && session_ok starttls
    talk 7 untrusted -- "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT"
    # an SSH jump chain (the same sshd twice) and SOCKS5 to the TLS port
    fixture sshd/env.sh
    talk 0 jump -- "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT" --ca "$CA" \
        --tunnel "$SSHD_USER@127.0.0.1:$SSHD_PORT,$SSHD_USER@127.0.0.1:$SSHD_PORT" \
        --known-hosts "$SSHD_KNOWN_HOSTS" --ssh-key "$SSHD_KEY" && session_ok jump
    fixture danted/env.sh
    IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS talk 0 socks -- "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT" \
        --ca "$CA" --proxy "socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && session_ok socks
    ;;
mbsync)
    command -v mbsync >/dev/null || { echo "mbsync (Debian isync) is not installed"; exit 77; }
    own_dovecot
    fixture sshd/env.sh
    fixture danted/env.sh
    export IMAPWIRE_PASSWORD=$DOVECOT_PASS IMAPWIRE_PROXY_PASSWORD=$DANTED_PASS
    server_view "$scratch/server.0"
    # sync NAME TUNNEL-ARGUMENTS: a full sync of INBOX into $scratch/NAME, compared
    sync() {
        local name=$1 route=$2 dir=$scratch/$1
        mkdir -p "$dir/mail"
        cat > "$dir/mbsyncrc" <<CONF
IMAPStore far
Tunnel "imapwire tunnel $route"
SSLType None

MaildirStore near
Path $dir/mail/
Inbox $dir/mail/INBOX

Channel inbox
Far :far:
Near :near:
Patterns INBOX
Create Near
Sync All
Expunge None
SyncState *
CONF
        if timeout 120 mbsync -c "$dir/mbsyncrc" -a >"$dir/log" 2>&1; then pass; else
            fail "mbsync over $name"; sed 's/^/  mbsync: /' "$dir/log" | head -20; return 1; fi
    }
    compare() {  # compare NAME: the Maildir holds the server's INBOX, count and bytes
        maildir_view "$scratch/$1/mail/INBOX" "$scratch/$1.view"
        server_view "$scratch/server.now"
        if diff <(grep -v '^flags' "$scratch/server.now") "$scratch/$1.view" >/dev/null; then pass; else
            fail "$1: Maildir differs from the server"; diff <(grep -v '^flags' "$scratch/server.now") "$scratch/$1.view" | head; fi
    }
    sync imaps "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT --ca $CA" && compare imaps
    sync jump "imap://$DOVECOT_USER@127.0.0.1:$DOVECOT_PORT --starttls --ca $CA --tunnel $SSHD_USER@127.0.0.1:$SSHD_PORT,$SSHD_USER@127.0.0.1:$SSHD_PORT --known-hosts $SSHD_KNOWN_HOSTS --ssh-key $SSHD_KEY" && compare jump
    sync socks "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT --ca $CA --proxy socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && compare socks
    contains "$scratch/server.now" '^count 2$'
    # changes made in the Maildir go back: a flag on a message, a new message
    d=$scratch/imaps/mail/INBOX
    first=$(cd "$d" && ls cur/* new/* 2>/dev/null | head -1)
    base=$(basename "${first%%:2,*}")
    expect "a message to flag in the Maildir" test -n "$first"
    mv "$d/$first" "$d/cur/$base:2,F"
    printf 'From: near@example.test\nTo: %s@example.test\nSubject: written in the Maildir %s\nMessage-ID: <near-%s@example.test>\n\nA new message, made by hand.\n' \
        "$DOVECOT_USER" "$$" "$$" > "$d/new/$(date +%s).$$.near"
    sync imaps "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT --ca $CA" && compare imaps
    contains "$scratch/server.now" '^count 3$'
    contains "$scratch/server.now" '^flags .*\\Flagged'
    # and the other Maildirs get the new message on their next sync
    sync socks "imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT --ca $CA --proxy socks5://$DANTED_USER@127.0.0.1:$DANTED_PORT" && compare socks
    ;;
neomutt)
    command -v neomutt >/dev/null || { echo "neomutt is not installed"; exit 77; }
    command -v tmux >/dev/null || { echo "tmux is not installed"; exit 77; }
    own_dovecot
    export IMAPWIRE_PASSWORD=$DOVECOT_PASS
    subject=$(sed -n 's/^Subject: \(.*\)\r$/\1/p' "$DOVECOT_MSG1" | head -1)
    expect "message 1 has a subject" test -n "$subject"
    cat > "$scratch/muttrc" <<CONF
set tunnel="imapwire tunnel imaps://$DOVECOT_USER@127.0.0.1:$DOVECOT_IMAPS_PORT --ca $CA --log $scratch/neomutt-tunnel.log"
set folder="imap://tunnel/"
set spoolfile="+INBOX"
set header_cache=""
set message_cachedir=""
set ssl_starttls=no
set imap_check_subscribed=no
set record=""
set postponed=""
set mbox="+INBOX"
set sort=date
set help=no
CONF
    sock=$scratch/tmux.sock
    tmux -S "$sock" new-session -d -x 160 -y 40 "neomutt -n -F $scratch/muttrc; sleep 30"
    found=0
    for _ in $(seq 150); do
        tmux -S "$sock" capture-pane -p > "$scratch/screen" 2>/dev/null
        if grep -Fq -- "$subject" "$scratch/screen"; then found=1; break; fi
        sleep 0.1
    done
    expect "neomutt shows '$subject' from INBOX" test "$found" = 1
    [ "$found" = 1 ] || sed 's/^/  screen: /' "$scratch/screen" | head -40
    contains "$scratch/screen" 'INBOX'
    tmux -S "$sock" send-keys q
    sleep 0.5
    tmux -S "$sock" send-keys y 2>/dev/null
    tmux -S "$sock" kill-server 2>/dev/null
    lacks "$scratch/neomutt-tunnel.log" 'failed'
    ;;
*)
    echo "unknown group $group"; exit 2 ;;
esac
echo "$group: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
