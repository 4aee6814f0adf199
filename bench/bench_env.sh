# bench/bench_env.sh: what the bench scripts share, sourced by them (bash): a Release
# build of the bench targets in build-bench/ and a private TLS Dovecot for the run.
#
#   . "$ROOT/bench/bench_env.sh"      with ROOT set to the source tree
#   bench_build TARGET...             installs the dependencies, builds the targets
#   bench_dovecot NAME                starts a TLS Dovecot in DIR (a fresh temporary
#                                     directory), stopped and removed on exit
# After bench_dovecot: DIR, ENV (its env file), CA (the test CA) and LOG (its log).

BUILD="$ROOT/build-bench"

bench_build() {
    sh "$ROOT/scripts/install-deps.sh"
    # tests and examples are off: the benches need neither, and their build is others' job
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
          -DIMAPWIRE_BUILD_TESTS=OFF -DIMAPWIRE_BUILD_EXAMPLES=OFF -DIMAPWIRE_BUILD_BENCH=ON >/dev/null
    cmake --build "$BUILD" --target "$@" -j "$(nproc)" >/dev/null
}

bench_cleanup() {
    bash "$ROOT/tests/harness/dovecot-tls.sh" stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}

# One Dovecot serves plain and STARTTLS on DOVECOT_PORT and IMAPS on DOVECOT_IMAPS_PORT,
# with the test CA in $DIR/certs (the harness makes mktemp's 0700 world-searchable).
bench_dovecot() {
    DIR=$(mktemp -d "/tmp/imapwire-$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    if ! bash "$ROOT/tests/harness/dovecot-tls.sh" start "$DIR" >/dev/null 2>"$DIR/start.err"; then
        cat "$DIR/start.err" >&2
        echo "$1: could not start the TLS Dovecot" >&2
        exit 1
    fi
    ENV="$DIR/env"
    CA="$DIR/certs/ca.pem"
    LOG="$DIR/dovecot.log"
}
