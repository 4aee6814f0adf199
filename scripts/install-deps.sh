#!/bin/sh
# Installs every Debian package imapwire's build, demo, tests and benches need.
# Idempotent: skips apt entirely when everything is already present.
set -eu
PKGS="build-essential cmake pkg-config libssl-dev libssh2-1-dev libc-ares-dev check \
 dovecot-imapd openssh-server openssh-client dnsmasq-base libcurl4-openssl-dev curl \
 valgrind openssl procps iproute2 python3 dante-server tinyproxy netcat-openbsd dropbear-bin libuv1-dev libjson-c-dev tmux jq groff-base doxygen \
 mailutils-imap4d isync neomutt"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Dovecot's and sshd's package scripts try to start services; on a CI box without
# systemd that fails harmlessly, but policy-rc.d keeps them from running at all.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
