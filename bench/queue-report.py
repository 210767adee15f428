#!/usr/bin/env python3
"""Figures of one bench/sipp-queue.sh run, from the box's call-center event log.

    queue-report.py BOX_STDERR AGENT_SIPP_LOG EXPECTED_CALLS

BOX_STDERR holds the daemon's `queue event: {json}` lines (HAKODEN_LOG=...,hakoden::daemon=debug:
every event the store gets, where `show events` stops at 500). AGENT_SIPP_LOG holds
tests/sipp/uas_agent.xml's `invite AGENT SEC USEC URI` lines (when each phone got its INVITE).

Prints calls entered/connected/completed/abandoned/routed/lost, the peak number of callers in the
box and waiting at once, the offer latency (p50/p95/max) and the ring -> phone delay. Exits 1 when
a call was lost or never finished, or when fewer calls entered than were placed.
"""
import json
import sys
from datetime import datetime, timezone

EVENT_MARK = "queue event: "
# Outcomes that take a call out of the queue without an agent (the box routed it on).
ROUTED = {"timeout", "overflow"}


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    rank = max(1, -(-len(s) * p // 100))
    return s[int(rank) - 1]


def spread(name, values, unit="ms"):
    if not values:
        return f"{name}: none"
    return (f"{name}: n={len(values)} p50={percentile(values, 50):.1f} {unit} "
            f"p95={percentile(values, 95):.1f} {unit} max={max(values):.1f} {unit}")


def read_events(path):
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            i = line.find(EVENT_MARK)
            if i < 0:
                continue
            try:
                e = json.loads(line[i + len(EVENT_MARK):])
            except json.JSONDecodeError:
                print(f"unreadable event line: {line.strip()[:200]}")
                continue
            # The logger's own UTC stamp (`2026-11-22T05:43:26.528Z LEVEL ...`): read from the
            # system clock when the line is written, unlike at_ms (see the wire figures).
            try:
                stamp = datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
                e["_log_ms"] = stamp.replace(tzinfo=timezone.utc).timestamp() * 1000
            except (ValueError, IndexError):
                pass
            events.append(e)
    return events


def read_phone_log(path, tag):
    """Per agent, the Unix ms of each `tag AGENT SEC USEC` line of the agents' SIPp, in order."""
    times = {}
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return times
    with f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 or parts[0] != tag:
                continue
            try:
                at_ms = float(parts[2]) * 1000 + float(parts[3]) / 1000
            except ValueError:
                continue
            times.setdefault(parts[1], []).append(at_ms)
    return times


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    events = read_events(sys.argv[1])
    invites = read_phone_log(sys.argv[2], "invite")
    byes = read_phone_log(sys.argv[2], "bye_ok")
    expected = int(sys.argv[3])

    entered, connected, completed, abandoned, routed = {}, set(), set(), set(), set()
    first_ring = {}
    rings_per_agent = {}
    no_answers = 0
    clock_skew = []
    free_since = {}  # agent -> at_ms it last became available
    latency_free, latency_queued = [], []
    waiting = in_box = peak_waiting = peak_in_box = 0
    for e in events:
        kind, call, agent, at = e.get("event"), e.get("call"), e.get("agent"), e.get("at_ms", 0)
        if kind == "enter":
            entered[call] = at
            waiting += 1
            in_box += 1
        elif kind == "ring" and agent is not None:
            rings_per_agent.setdefault(agent, []).append(e.get("_log_ms"))
            if "_log_ms" in e:
                clock_skew.append(at - e["_log_ms"])
            if call in first_ring:
                continue
            first_ring[call] = at
            enter_at = entered.get(call)
            free_at = free_since.get(agent)
            if enter_at is None or free_at is None:
                continue
            # An agent free when the call came in: the offer waits for nothing. A queued call:
            # the offer can only follow the agent's becoming free (end of talk or of ACW).
            if enter_at >= free_at:
                latency_free.append(at - enter_at)
            else:
                latency_queued.append(at - free_at)
        elif kind in ("no_answer", "decline"):
            no_answers += 1
        elif kind == "connect":
            connected.add(call)
            waiting -= 1
        elif kind == "complete":
            completed.add(call)
            in_box -= 1
        elif kind == "abandon":
            abandoned.add(call)
            waiting -= 1
            in_box -= 1
        elif kind in ROUTED:
            routed.add(call)
            waiting -= 1
            in_box -= 1
        elif kind == "state_change" and agent is not None and e.get("to") == "available":
            free_since[agent] = at
        peak_waiting = max(peak_waiting, waiting)
        peak_in_box = max(peak_in_box, in_box)

    lost = [c for c in entered if c not in connected and c not in routed]
    unfinished = [c for c in connected if c not in completed]
    print(f"events: {len(events)}")
    print(f"calls: entered {len(entered)} of {expected}, connected {len(connected)}, "
          f"completed {len(completed)}, abandoned {len(abandoned)}, routed (timeout/overflow) "
          f"{len(routed)}, lost {len(lost)}, connected but not completed {len(unfinished)}")
    print(f"peak at once: {peak_in_box} callers in the box, {peak_waiting} waiting for an agent")
    print(f"rings: {sum(len(v) for v in rings_per_agent.values())} to {len(rings_per_agent)} agents "
          f"(no answer/decline {no_answers}); calls per agent "
          f"{min((len(v) for v in rings_per_agent.values()), default=0)}.."
          f"{max((len(v) for v in rings_per_agent.values()), default=0)}")
    print(spread("offer latency, agent free at entry (ring - enter)", latency_free))
    print(spread("offer latency, queued call (ring - agent free)", latency_queued))

    # at_ms runs on the engine's wall anchor, which may sit apart from the system clock; the
    # log line of the same event is stamped from the system clock, as SIPp stamps the INVITE.
    print(spread("event at_ms minus its log line's system-clock stamp (ring events)", clock_skew))
    # The k-th ring of an agent is the k-th INVITE its phone saw (one phone per agent, one call
    # at a time).
    wire = []
    mismatched = 0
    for agent, rings in rings_per_agent.items():
        got = invites.get(agent, [])
        if len(got) != len(rings) or None in rings:
            mismatched += 1
            continue
        wire.extend(inv - ring for ring, inv in zip(rings, got))
    print(spread("ring logged by the box -> agent phone gets INVITE", wire))
    # Seen from the phones alone (one clock): the box answers an agent's BYE, and the agent's
    # next INVITE follows. Every agent's next call was waiting, so this is the whole SIP path of
    # a queued offer: BYE handled, ACD picks the oldest caller, INVITE sent.
    phone_gap = []
    for agent, got in invites.items():
        done = byes.get(agent, [])
        phone_gap.extend(nxt - bye for bye, nxt in zip(done, got[1:]) if nxt > bye)
    print(spread("agent's BYE answered -> its next INVITE (calls that waited)", phone_gap))
    if mismatched:
        print(f"agents whose ring and INVITE counts differ (left out above): {mismatched}")

    if lost:
        print(f"LOST calls (box call ids): {sorted(lost)[:20]}")
    if unfinished:
        print(f"calls connected but never completed: {sorted(unfinished)[:20]}")
    failed = bool(lost or unfinished or len(entered) < expected)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
