#!/usr/bin/env bash
# N concurrent calls with RTP through the box: SIPp caller 201 plays SIPp's G.711 capture
# (236 packets over 7.05 s) into each call, the box relays it to the callee 202, whose SDP points
# at a counting UDP sink. Reports box CPU and RSS and the packet loss at the callee side.
#   bench/sipp-concurrent-rtp.sh          # N=100 calls set up at 50 calls/s, 8 s hold
#   N=200 RATE=100 bench/sipp-concurrent-rtp.sh
# Needs a release build (made here unless HAKODEN_BIN is set), sipp and python3 (the sink).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sipp-lib.sh"

N="${N:-100}"
RATE="${RATE:-50}"
# RTP packets in SIPp's g711a.pcap; the capture is played once per call.
PCAP_PACKETS=236
PCAP=""
for p in /usr/share/sip-tester/g711a.pcap /usr/share/sipp/pcap/g711a.pcap /usr/local/share/sipp/pcap/g711a.pcap; do
    [ -f "$p" ] && PCAP="$p" && break
done
[ -n "$PCAP" ] || { echo "g711a.pcap not found (dpkg -L sip-tester)"; exit 1; }

build_release
machine_info
start_box
register 202 bench-202 "$CALLEE_PORT"
register 201 bench-201 "$CALLER_PORT"

# The callee-side sink: counts RTP datagrams until 3 s pass without one (or 120 s overall).
python3 - "$SINK_PORT" "$WORK/sink.txt" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.5)
count, sources, first, last = 0, set(), None, None
deadline = time.time() + 120
while time.time() < deadline:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        if last is not None and time.time() - last > 3:
            break
        continue
    if len(data) >= 12 and data[0] >> 6 == 2:
        count += 1
        sources.add(addr[1])
        last = time.time()
        first = first or last
with open(sys.argv[2], "w") as f:
    f.write(f"{count} {len(sources)} {(last or 0) - (first or 0):.1f}\n")
PY
SINK_PID=$!
BENCH_PIDS+=("$SINK_PID")

sipp -sf "$SIPP_DIR/uas_load.xml" -i 127.0.0.1 -p "$CALLEE_PORT" -mi 127.0.0.1 \
    -mp "$CALLEE_MEDIA_PORT" -key rtpport "$SINK_PORT" -nostdin \
    -trace_stat -stf "$WORK/uas.csv" -fd 1 >"$WORK/uas.out" 2>&1 &
BENCH_PIDS+=($!)
sleep 0.5

cpu0=$(box_cpu_ticks)
rcvbuf0=$(udp_rcvbuf_errors)
t0=$(date +%s.%N)
peak_rss=0
sipp "127.0.0.1:$BOX_SIP_PORT" -sf "$SIPP_DIR/uac_load_rtp.xml" -i 127.0.0.1 -p "$CALLER_PORT" \
    -mi 127.0.0.1 -mp "$CALLER_MEDIA_PORT" -s 202 -key caller 201 -au 201 -ap bench-201 \
    -key pcap "$PCAP" -r "$RATE" -m "$N" -l "$N" -timeout 90s -timeout_error -nostdin \
    -trace_stat -stf "$WORK/uac.csv" -fd 1 -trace_err -error_file "$WORK/uac.err" \
    >"$WORK/uac.out" 2>&1 &
UAC_PID=$!
BENCH_PIDS+=("$UAC_PID")
while kill -0 "$UAC_PID" 2>/dev/null; do
    rss=$(box_mem VmRSS)
    [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
    sleep 0.5
done
rc=0
wait "$UAC_PID" || rc=$?
t1=$(date +%s.%N)
cpu1=$(box_cpu_ticks)
wait "$SINK_PID" || true
rcvbuf1=$(udp_rcvbuf_errors)

ok=$(stat_col "$WORK/uac.csv" 'SuccessfulCall(C)')
failed=$(stat_col "$WORK/uac.csv" 'FailedCall(C)')
read -r received sources span <"$WORK/sink.txt"
expected=$((ok * PCAP_PACKETS))
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "calls: $N at $RATE calls/s; ok $ok, failed $failed (sipp exit $rc)"
echo "wall: ${secs} s; box CPU: $(awk -v c="$((cpu1 - cpu0))" -v t="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.1f", 100 * c / t / s }')% of one core on average"
echo "box RSS: peak sampled ${peak_rss} kB, VmHWM $(box_mem VmHWM) kB"
echo "RTP at callee: $received of $expected packets from $sources box ports over ${span} s; loss $(awk -v r="$received" -v e="$expected" 'BEGIN { if (e > 0) printf "%.3f%%", 100 * (1 - r / e); else print "n/a" }')"
echo "UDP datagrams dropped on full socket buffers (whole machine, box + SIPp + sink): $((rcvbuf1 - rcvbuf0))"
echo "work dir: $WORK"
