#!/usr/bin/env bash
# Call rate through the box: SIPp caller 201 -> box -> SIPp callee 202, no RTP.
# Ramps the rate and reports the highest one at which every call succeeded.
#   bench/sipp-call-rate.sh            # rates 100 200 400 600 800 1000, 5 s each
#   RATES="50 100" DURATION=3 bench/sipp-call-rate.sh
# Needs a release build (made here unless HAKODEN_BIN is set) and sipp.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sipp-lib.sh"

RATES="${RATES:-100 200 400 600 800 1000}"
DURATION="${DURATION:-5}"
# Seconds to stay idle after the ramp before reading RSS again: finished transactions are
# kept for RFC 3261's Timer J/K (32 s over UDP), so RSS after 40 s shows what is retained.
SETTLE="${SETTLE:-0}"

build_release
machine_info
start_box
register 202 bench-202 "$CALLEE_PORT"
register 201 bench-201 "$CALLER_PORT"

sipp -sf "$SIPP_DIR/uas_load.xml" -i 127.0.0.1 -p "$CALLEE_PORT" -mi 127.0.0.1 \
    -mp "$CALLEE_MEDIA_PORT" -key rtpport "$SINK_PORT" -nostdin \
    -trace_stat -stf "$WORK/uas.csv" -fd 1 >"$WORK/uas.out" 2>&1 &
BENCH_PIDS+=($!)
sleep 0.5

best=0
printf '%-6s %-7s %-7s %-7s %-8s %-9s %-9s\n' rate calls ok failed secs box_cpu% box_rss_kB
for rate in $RATES; do
    calls=$((rate * DURATION))
    cpu0=$(box_cpu_ticks)
    t0=$(date +%s.%N)
    rc=0
    sipp "127.0.0.1:$BOX_SIP_PORT" -sf "$SIPP_DIR/uac_load.xml" -i 127.0.0.1 -p "$CALLER_PORT" \
        -mi 127.0.0.1 -mp "$CALLER_MEDIA_PORT" -s 202 -key caller 201 -au 201 -ap bench-201 \
        -r "$rate" -m "$calls" -l "$((rate * 4))" -timeout "$((DURATION * 4 + 10))s" -timeout_error \
        -nostdin -trace_stat -stf "$WORK/uac-$rate.csv" -fd 1 \
        -trace_err -error_file "$WORK/uac-$rate.err" >"$WORK/uac-$rate.out" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    cpu1=$(box_cpu_ticks)
    ok=$(stat_col "$WORK/uac-$rate.csv" 'SuccessfulCall(C)')
    failed=$(stat_col "$WORK/uac-$rate.csv" 'FailedCall(C)')
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    cpu=$(awk -v c="$((cpu1 - cpu0))" -v t="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.0f", 100 * c / t / s }')
    printf '%-6s %-7s %-7s %-7s %-8s %-9s %-9s\n' "$rate" "$calls" "$ok" "$failed" "$secs" "$cpu" "$(box_mem VmRSS)"
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$ok" -ne "$calls" ]; then
        echo "rate $rate: sipp exit $rc, $failed failed; see $WORK/uac-$rate.err"
        break
    fi
    best=$rate
    sleep 1
done
echo "box peak RSS (VmHWM): $(box_mem VmHWM) kB"
if [ "$SETTLE" -gt 0 ]; then
    sleep "$SETTLE"
    echo "box RSS after ${SETTLE} s idle: $(box_mem VmRSS) kB"
    # What the engine still holds: every table should be back to 0 after Timer J/K.
    "$HAKODEN_BIN" console --data "$WORK/data" show version | sed 's/^/    /' || true
fi
echo "highest rate with 0 failed calls: $best calls/s (${DURATION} s per step)"
echo "work dir: $WORK"
