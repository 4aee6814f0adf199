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

# For the plots*.sh scripts, given the chart's .dat: gnuplot-nox installed if missing,
# MACHINE (what every chart's title says of where it ran) and LOAD0 (uptime's load
# averages before the run; bench_load gives them again after it). With PLOT_ONLY set
# (a redraw without measuring) all three come back from the .dat's second line instead,
# so the title keeps the run's date.
bench_load() {
    uptime | sed 's/.*load average: //'
}

plot_setup() {
    if ! command -v gnuplot >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox
    fi
    MACHINE="$(date -u +%F), $(nproc) cores, Debian $(cut -d. -f1 /etc/debian_version), loopback"
    LOAD0=$(bench_load)
    [ -n "${PLOT_ONLY:-}" ] || return 0
    local h
    h=$(sed -n 2p "$1")
    MACHINE=$(printf '%s\n' "$h" | sed 's/^# //; s/; load .*//')
    LOAD0=$(printf '%s\n' "$h" | sed 's/.*before: //; s/; after.*//')
    LOAD1=$(printf '%s\n' "$h" | sed 's/.*after: //')
}

# gnuplot lines that turn the next plot of a multiplot into a legend strip across the
# bottom of the image (the caller then plots NaN once per entry): a key placed in a
# panel wraps to the panel's width or sits over its curves.
legend_strip() {
    cat <<'GP'
set lmargin at screen 0.02; set rmargin at screen 0.98; set tmargin at screen 0.075; set bmargin at screen 0.01
unset border; unset tics; unset xlabel; unset ylabel; unset title; unset grid; unset logscale
set xrange [0:1]; set yrange [0:1]
set key center center horizontal samplen 2
GP
}
