#!/bin/sh
# Instructions per operation, counted by callgrind (which repeats, unlike time on a shared
# machine): imapwire beside libcurl or a minimal client on the same local servers.
#
#   bench/instructions.sh [--build DIR] [--n N] [--only imapwire] [--check FILE | --record FILE]
#                         [--env DOVECOT_ENV SSHD_ENV]
#
# Without --env it starts a private Dovecot (plain, STARTTLS, IMAPS) and sshd from
# tests/harness and stops them at the end. --check FILE fails (exit 1) when an imapwire
# row costs more than its threshold in FILE; --record FILE writes the thresholds as the
# measured counts plus 10% (and 20,000 for a FETCH and the async connects). Prints a table: operation, imapwire, the reference, ratio.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=$src/build
n=10
only=""
mode=""
file=""
dv_env=""
ssh_env=""
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --check) mode=check; file=$2; shift 2 ;;
    --record) mode=record; file=$2; shift 2 ;;
    --env) dv_env=$2; ssh_env=$3; shift 3 ;;
    *) echo "usage: $0 [--build DIR] [--n N] [--only imapwire] [--check FILE|--record FILE] [--env DOVECOT_ENV SSHD_ENV]" >&2
       exit 2 ;;
    esac
done
bin=$build/bench/imapwire_instr_ops
[ -x "$bin" ] || { echo "instructions.sh: $bin not built (IMAPWIRE_BUILD_BENCH, libcurl)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 2; }

work=$(mktemp -d /tmp/imapwire-instr.XXXXXX)
started=""
cleanup() {
    if [ -n "$started" ]; then
        "$src/tests/harness/dovecot-tls.sh" stop "$work/dovecot" tls >/dev/null 2>&1 || true
        "$src/tests/harness/sshd.sh" stop "$work/sshd" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
if [ -z "$dv_env" ]; then
    started=1
    "$src/tests/harness/dovecot-tls.sh" start "$work/dovecot" tls >/dev/null
    "$src/tests/harness/sshd.sh" start "$work/sshd" >/dev/null
    dv_env=$work/dovecot/env
    ssh_env=$work/sshd/env
fi

# count OP SIDE N: instructions of the N operations, the calling thread's and the loop
# thread's (each thread dumps its own count: instr_ops.c says how)
count() {
    out=$work/cg.$1.$2
    rm -f "$out" "$out".*
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
        "$bin" "$1" "$2" "$3" "$dv_env" "$ssh_env" >"$work/log" 2>&1 || {
        echo "instructions.sh: $1 $2 failed:" >&2
        tail -n 5 "$work/log" >&2
        exit 1
    }
    # the dumps the operations asked for are numbered parts (out.PART-THREAD); the
    # program's end writes out-THREAD. A dump's "summary:" is its thread's count since
    # the zeroing; its "totals:" also holds the calls that were open at the zeroing.
    cat "$out".[0-9]*-[0-9]* | awk '/^summary:/ { t += $2 } END { print t + 0 }'
}

# operation, how many, the reference side (or "-"), what one operation is
rows="plain $n curl connect+login+logout
starttls $n curl STARTTLS connect+login+logout
imaps-full $n curl IMAPS,full-handshake
imaps-resumed $n curl IMAPS,resumed
ssh-nth $n plain Nth-SSH-tunnelled-connect+login,vs-direct
async $(( (n + 4) / 5 )) - 10-ImapAsyncConnects-(no-login)-waited+disconnected,loop-thread-included
fetch-plain-library $n floor FETCH-1MB,plain,library-buffer
fetch-plain-caller $n floor FETCH-1MB,plain,caller-buffer
fetch-plain-stream $n floor FETCH-1MB,plain,streamed
fetch-imaps-library $n floor FETCH-1MB,IMAPS,library-buffer
fetch-imaps-caller $n floor FETCH-1MB,IMAPS,caller-buffer
fetch-imaps-stream $n floor FETCH-1MB,IMAPS,streamed
idle-wake $n floor a-watched-idle-connection-reads-one-untagged-line,loop-thread-included"

printf '%-22s %14s %14s %-8s %7s  %s\n' operation imapwire reference side ratio "one operation"
fail=0
: >"$work/record"
echo "$rows" | while read -r op k ref what; do
    iw=$(( $(count "$op" imapwire "$k") / k ))
    refv="-"
    ratio="-"
    if [ -z "$only" ]; then
        case $ref in
        curl|floor) refv=$(( $(count "$op" "$ref" "$k") / k )) ;;
        plain)
            # the direct plain connect+login, ten of them for the async row
            refv=$(( $(count plain imapwire "$k") / k ))
            ;;
        esac
        [ "$refv" != "-" ] && ratio=$(awk -v a="$iw" -v b="$refv" 'BEGIN { printf "%.2f", a / b }')
    fi
    printf '%-22s %14s %14s %-8s %7s  %s\n' "$op" "$iw" "$refv" "$ref" "$ratio" "$what"
    echo "$op $iw" >>"$work/record"
    if [ "$mode" = check ]; then
        limit=$(awk -v o="$op" '$1 == o { print $2 }' "$file")
        if [ -z "$limit" ]; then
            echo "  no threshold for $op in $file" >&2
            echo 1 >"$work/failed"
        elif [ "$iw" -gt "$limit" ]; then
            echo "  FAIL: $op costs $iw instructions, over its threshold $limit ($file)" >&2
            echo 1 >"$work/failed"
        fi
    fi
done
if [ "$mode" = record ]; then
    {
        echo "# bench/instructions.sh --record: imapwire's instructions per operation plus 10%"
        echo "# (and 20,000 for a FETCH and the async connects: how many reads a transfer, or"
        echo "# loop turns ten connects, take varies with timing); callgrind, the calling thread"
        echo "# and the loop thread. The perf test fails a change that goes over."
        awk '{ printf "%s %d\n", $1, $2 * 1.10 + ($1 ~ /^(fetch-|async)/ ? 20000 : 0) }' "$work/record"
    } >"$file"
    echo "thresholds written to $file"
fi
if [ -f "$work/failed" ]; then
    echo "instructions: over a threshold (re-record with --record $file when a change is meant to cost more)"
    exit 1
fi
[ "$mode" = check ] && echo "instructions: every operation within its threshold"
exit 0
