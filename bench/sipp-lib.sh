#!/usr/bin/env bash
# Shared by bench/sipp-*.sh: builds the release box, starts it on 127.0.0.1 with two
# extensions (201 caller, 202 callee), registers SIPp endpoints and samples the box's
# CPU and memory from /proc. Source it; do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIPP_DIR="$ROOT/tests/sipp"
WORK="${WORK:-$(mktemp -d /tmp/hakoden-bench.XXXXXX)}"
# Fixed ports below the kernel's ephemeral range (32768+), away from the test harness's
# random blocks only by luck: do not run a bench while the test suite runs.
BOX_SIP_PORT="${BOX_SIP_PORT:-15060}"
BOX_RTP_PORTS="${BOX_RTP_PORTS:-16000-31999}"
CALLEE_PORT="${CALLEE_PORT:-15070}"
CALLER_PORT="${CALLER_PORT:-15080}"
CALLEE_MEDIA_PORT="${CALLEE_MEDIA_PORT:-15100}"
CALLER_MEDIA_PORT="${CALLER_MEDIA_PORT:-15200}"
SINK_PORT="${SINK_PORT:-15300}"
CLK_TCK="$(getconf CLK_TCK)"
BOX_PID=""
declare -a BENCH_PIDS=()

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}" $BOX_PID; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap bench_cleanup EXIT

machine_info() {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "box: $("$HAKODEN_BIN" --version 2>/dev/null || echo unknown) ($HAKODEN_BIN)"
    echo "sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
}

build_release() {
    if [ -z "${HAKODEN_BIN:-}" ]; then
        (cd "$ROOT" && cargo build --release --bin hakoden)
        HAKODEN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hakoden"
    fi
    [ -x "$HAKODEN_BIN" ] || { echo "no box binary at $HAKODEN_BIN" >&2; exit 1; }
}

# The box's ready line is awaited for at most this long (the CLI contract).
READY_TIMEOUT_S=20

default_config() {
    cat <<TOML
[sip]
ring_timeout = 60

[[extension]]
number = "201"
name = "Bench caller"
password = "bench-201"
call_waiting = true

[[extension]]
number = "202"
name = "Bench callee"
password = "bench-202"
call_waiting = true
TOML
}

# start_box [CONFIG]: starts the box with CONFIG (a TOML file), or with the two extensions above.
start_box() {
    if [ -n "${1:-}" ]; then
        cp "$1" "$WORK/hakoden.toml"
    else
        default_config >"$WORK/hakoden.toml"
    fi
    mkdir -p "$WORK/data"
    HAKODEN_LOG="${HAKODEN_LOG:-warn}" "$HAKODEN_BIN" run --data "$WORK/data" \
        --config "$WORK/hakoden.toml" --sip-port "$BOX_SIP_PORT" \
        --rtp-ports "$BOX_RTP_PORTS" --bind 127.0.0.1 \
        >"$WORK/box.stdout" 2>"$WORK/box.stderr" </dev/null &
    BOX_PID=$!
    local i
    for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
        if grep -q '^hakoden: ready ' "$WORK/box.stdout" 2>/dev/null; then
            echo "$(grep -m1 '^hakoden: ready ' "$WORK/box.stdout") pid=$BOX_PID"
            return 0
        fi
        kill -0 "$BOX_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "box did not become ready; stderr tail:" >&2
    tail -30 "$WORK/box.stderr" >&2
    exit 1
}

# register EXT PASSWORD PORT: binds EXT to 127.0.0.1:PORT (calls from that port are trusted).
register() {
    sipp "127.0.0.1:$BOX_SIP_PORT" -sf "$SIPP_DIR/register.xml" -i 127.0.0.1 -p "$3" \
        -mi 127.0.0.1 -mp "$((CALLER_MEDIA_PORT + 50))" -s "$1" -au "$1" -ap "$2" \
        -m 1 -timeout 10s -timeout_error -nostdin -trace_err -error_file "$WORK/register-$1.err" \
        >"$WORK/register-$1.out" 2>&1 \
        || { echo "REGISTER $1 failed:"; tail -20 "$WORK/register-$1.out" "$WORK/register-$1.err"; exit 1; }
}

# utime+stime of the box in clock ticks.
box_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$BOX_PID/stat"
}

# box_mem FIELD: a kB figure from /proc/PID/status (VmRSS, VmHWM).
box_mem() {
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$BOX_PID/status"
}

# A stat column from a SIPp -trace_stat file (last row).
stat_col() {
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        NF > 1 && c { v = $c } END { print v + 0 }' "$1"
}

# Kernel-wide count of UDP datagrams dropped because a socket's receive buffer was full.
udp_rcvbuf_errors() {
    awk '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
        $1 == "Udp:" { print $c["RcvbufErrors"] }' /proc/net/snmp
}
