#!/usr/bin/env bash
# Call-center load (issue 6): N_AGENTS agent phones in one queue, N_CALLERS callers placed into
# it at CALL_RATE, all of them in the box at once when the rate outruns the agents. Every agent
# answers after ANSWER_MS and hangs up after TALK_S; the caller waits in the queue (music) until an
# agent is free and stays until the box's BYE. Reports lost calls, the offer latency (caller
# enters -> agent rung, from the box's event log), box CPU and RSS, SIPp counts. Exit 1 on a
# lost call or a failed SIPp call.
#   bench/sipp-queue.sh                                  # 50 agents, 200 callers at 20/s, 20 s talk
#   N_AGENTS=10 N_CALLERS=40 TALK_S=5 bench/sipp-queue.sh
# Needs a release build (made here unless HAKODEN_BIN is set), sipp and python3.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sipp-lib.sh"

N_AGENTS="${N_AGENTS:-50}"
N_CALLERS="${N_CALLERS:-200}"
CALL_RATE="${CALL_RATE:-20}"
TALK_S="${TALK_S:-20}"
ANSWER_MS="${ANSWER_MS:-500}"
# 後処理 after each call in seconds (0 = none): the agent is offered the next caller after it.
ACW_S="${ACW_S:-0}"
QUEUE_NUMBER=6000
# Agents are 301, 302, ...: three digits leave room for 699 of them.
FIRST_AGENT=301
AGENT_PORT="$CALLEE_PORT"
AGENT_MEDIA_PORT="$CALLEE_MEDIA_PORT"
# Each caller waits for about ceil(N_CALLERS / N_AGENTS) talks; twice that plus a minute is the
# most a healthy run takes before SIPp gives up on a caller.
ROUNDS=$(((N_CALLERS + N_AGENTS - 1) / N_AGENTS))
CALLER_TIMEOUT_S=$((2 * ROUNDS * (TALK_S + ACW_S + 1) + N_CALLERS / CALL_RATE + 60))
# After the last caller's BYE the box's final events reach its log within moments.
EVENTS_SETTLE_S=10

build_release
machine_info

agents=()
for ((i = 0; i < N_AGENTS; i++)); do agents+=("$((FIRST_AGENT + i))"); done
{
    echo '[sip]'
    echo 'ring_timeout = 60'
    echo
    echo '[[extension]]'
    echo 'number = "201"'
    echo 'name = "Bench caller"'
    echo 'password = "bench-201"'
    echo 'call_waiting = true'
    for a in "${agents[@]}"; do
        echo
        echo '[[extension]]'
        echo "number = \"$a\""
        echo "name = \"Agent $a\""
        echo "password = \"agent-$a\""
    done
    echo
    echo '[[queue]]'
    echo 'name = "bench"'
    echo "number = \"$QUEUE_NUMBER\""
    # longest_idle: one INVITE per offer, to the agent idle longest, so the load spreads evenly
    # and every offer is one measurable ring; ring_all would send each queued call to every free
    # agent and CANCEL all but one (50 INVITEs + 49 CANCELs per call at the start of the run).
    echo 'strategy = "longest_idle"'
    printf 'members = [%s]\n' "$(printf '"%s", ' "${agents[@]}" | sed 's/, $//')"
    # Every caller must be admitted and wait as long as it takes: no queue_full, no timeout.
    echo 'max_waiting = 999'
    echo 'max_answered = 999'
    echo 'timeout = 0'
    if [ "$ACW_S" -gt 0 ]; then echo "after_call_work = $ACW_S"; fi
} >"$WORK/queue.toml"

# Every queue event on stderr: `show events` stops at its newest 500, a run makes ~10 per call.
HAKODEN_LOG="${HAKODEN_LOG:-warn,hakoden::daemon=debug}"
start_box "$WORK/queue.toml"
register 201 bench-201 "$CALLER_PORT"

# All agents from one SIPp on the port their phones will answer on.
{
    echo SEQUENTIAL
    for a in "${agents[@]}"; do echo "$a;[authentication username=$a password=agent-$a]"; done
} >"$WORK/agents.csv"
sipp "127.0.0.1:$BOX_SIP_PORT" -sf "$SIPP_DIR/register_inf.xml" -inf "$WORK/agents.csv" \
    -i 127.0.0.1 -p "$AGENT_PORT" -mi 127.0.0.1 -mp "$AGENT_MEDIA_PORT" \
    -r "$N_AGENTS" -m "$N_AGENTS" -timeout 20s -timeout_error -nostdin \
    -trace_stat -stf "$WORK/register.csv" -fd 1 -trace_err -error_file "$WORK/register.err" \
    >"$WORK/register.out" 2>&1 ||
    { echo "registering the agents failed:"; tail -n 20 "$WORK/register.out" "$WORK/register.err"; exit 1; }
echo "registered: $(stat_col "$WORK/register.csv" 'SuccessfulCall(C)') of $N_AGENTS agents"

# Log in and make available through one console session, as a supervisor would.
for a in "${agents[@]}"; do
    echo "agent login $a"
    echo "agent available $a"
done | "$HAKODEN_BIN" console --data "$WORK/data" >"$WORK/console-agents.out" 2>&1
available=$("$HAKODEN_BIN" console --data "$WORK/data" show agents | tee "$WORK/agents-before.txt" |
    grep -c '(available)' || true)
echo "agents available: $available of $N_AGENTS"
if [ "$available" -ne "$N_AGENTS" ]; then
    echo "not every agent is available:"
    cat "$WORK/agents-before.txt" "$WORK/console-agents.out" | head -40
    exit 1
fi

sipp -sf "$SIPP_DIR/uas_agent.xml" -i 127.0.0.1 -p "$AGENT_PORT" -mi 127.0.0.1 \
    -mp "$AGENT_MEDIA_PORT" -key rtpport "$AGENT_MEDIA_PORT" -key answer_ms "$ANSWER_MS" \
    -d "$((TALK_S * 1000))" -m "$N_CALLERS" -nostdin -trace_logs -log_file "$WORK/agents.log" \
    -trace_stat -stf "$WORK/uas.csv" -fd 1 -trace_err -error_file "$WORK/uas.err" \
    >"$WORK/uas.out" 2>&1 &
UAS_PID=$!
BENCH_PIDS+=("$UAS_PID")
for ((i = 0; i < 50; i++)); do
    ss -Hlun "sport = :$AGENT_PORT" | grep -q . && break
    sleep 0.1
done

echo "callers: $N_CALLERS at $CALL_RATE/s into queue $QUEUE_NUMBER; agents answer after" \
    "${ANSWER_MS} ms, talk ${TALK_S} s, ACW ${ACW_S} s"
cpu0=$(box_cpu_ticks)
rcvbuf0=$(udp_rcvbuf_errors)
t0=$(date +%s.%N)
sipp "127.0.0.1:$BOX_SIP_PORT" -sf "$SIPP_DIR/uac_queue_caller.xml" -i 127.0.0.1 \
    -p "$CALLER_PORT" -mi 127.0.0.1 -mp "$CALLER_MEDIA_PORT" -s "$QUEUE_NUMBER" -key caller 201 \
    -au 201 -ap bench-201 -r "$CALL_RATE" -m "$N_CALLERS" -l "$N_CALLERS" \
    -timeout "${CALLER_TIMEOUT_S}s" -timeout_error -nostdin \
    -trace_stat -stf "$WORK/uac.csv" -fd 1 -trace_err -error_file "$WORK/uac.err" \
    >"$WORK/uac.out" 2>&1 &
UAC_PID=$!
BENCH_PIDS+=("$UAC_PID")
peak_rss=0
peak_waiting=0
while kill -0 "$UAC_PID" 2>/dev/null; do
    rss=$(box_mem VmRSS)
    [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
    # The live ACD's view, as a supervisor sees it (a cross-check of the event log's peak).
    waiting=$("$HAKODEN_BIN" console --data "$WORK/data" show queues 2>/dev/null |
        awk '$1 == "bench" { print $3 }')
    [ "${waiting:-0}" -gt "$peak_waiting" ] && peak_waiting=$waiting
    sleep 1
done
uac_rc=0
wait "$UAC_PID" || uac_rc=$?
t1=$(date +%s.%N)
cpu1=$(box_cpu_ticks)
rcvbuf1=$(udp_rcvbuf_errors)

# The agents' SIPp ends after its N_CALLERS-th BYE is answered; the box's last events follow.
for ((i = 0; i < EVENTS_SETTLE_S * 10; i++)); do
    kill -0 "$UAS_PID" 2>/dev/null || break
    sleep 0.1
done
uas_rc=0
if kill -0 "$UAS_PID" 2>/dev/null; then
    kill "$UAS_PID" 2>/dev/null || true
    wait "$UAS_PID" 2>/dev/null || true
    uas_rc="killed, still had calls"
else
    wait "$UAS_PID" 2>/dev/null || uas_rc=$?
fi
for ((i = 0; i < EVENTS_SETTLE_S * 10; i++)); do
    ended=$(grep -c 'queue event: .*"event":"\(complete\|abandon\|timeout\|overflow\)"' "$WORK/box.stderr" || true)
    [ "$ended" -ge "$N_CALLERS" ] && break
    sleep 0.1
done
"$HAKODEN_BIN" console --data "$WORK/data" show queues >"$WORK/queues-after.txt" 2>&1 || true
"$HAKODEN_BIN" console --data "$WORK/data" show agents >"$WORK/agents-after.txt" 2>&1 || true

secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
uac_ok=$(stat_col "$WORK/uac.csv" 'SuccessfulCall(C)')
uac_failed=$(stat_col "$WORK/uac.csv" 'FailedCall(C)')
uas_ok=$(stat_col "$WORK/uas.csv" 'SuccessfulCall(C)')
uas_failed=$(stat_col "$WORK/uas.csv" 'FailedCall(C)')
echo "callers (SIPp): ok $uac_ok, failed $uac_failed (exit $uac_rc); agents (SIPp): ok $uas_ok," \
    "failed $uas_failed (exit $uas_rc)"
echo "wall: ${secs} s; box CPU: $(awk -v c="$((cpu1 - cpu0))" -v t="$CLK_TCK" \
    'BEGIN { printf "%.2f", c / t }') s ($(awk -v c="$((cpu1 - cpu0))" -v t="$CLK_TCK" -v s="$secs" \
    'BEGIN { printf "%.1f", 100 * c / t / s }')% of one core); since boot $(awk -v c="$cpu1" \
    -v t="$CLK_TCK" 'BEGIN { printf "%.2f", c / t }') s"
echo "box RSS: peak sampled ${peak_rss} kB, VmHWM $(box_mem VmHWM) kB"
echo "show queues, highest waiting count sampled (1/s): $peak_waiting"
echo "UDP datagrams dropped on full socket buffers (whole machine): $((rcvbuf1 - rcvbuf0))"
report_rc=0
python3 "$ROOT/bench/queue-report.py" "$WORK/box.stderr" "$WORK/agents.log" "$N_CALLERS" ||
    report_rc=$?
echo "work dir: $WORK"
if [ "$report_rc" -ne 0 ] || [ "$uac_failed" -ne 0 ] || [ "$uac_ok" -ne "$N_CALLERS" ] ||
    [ "$uac_rc" -ne 0 ]; then
    echo "FAILED: lost or failed calls (see above, $WORK/uac.err, $WORK/box.stderr)"
    exit 1
fi
