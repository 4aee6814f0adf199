#!/bin/sh
# A Dovecot with STARTTLS and IMAPS for the TLS tests: generates the test certificates
# into DIR/certs, then starts tests/harness/dovecot.sh with a TLS config appended.
#   dovecot-tls.sh start|stop DIR [tls|clientcert]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2 variant=${3:-tls}
case $variant in
    tls) conf=$here/dovecot-tls.conf.in ;;
    clientcert) conf=$here/dovecot-tls-clientcert.conf.in ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
case $cmd in
    start)
        mkdir -p "$dir"
        "$here/certs.sh" "$dir/certs"
        DOVECOT_EXTRA_CONF=$conf exec "$here/dovecot.sh" start "$dir" ;;
    stop)
        exec "$here/dovecot.sh" stop "$dir" ;;
    *) echo "usage: $0 start|stop DIR [tls|clientcert]" >&2; exit 2 ;;
esac
