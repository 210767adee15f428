//! Supervision with a virtual clock (issue 6): 201 (port 7001) calls agent 202 (7002); the
//! supervisor 900 (7009) listens, whispers and barges; 901 (7008) may only supervise 203; 203
//! (7003) is no supervisor; 905 (7005) is a second supervisor of everyone.

use super::*;
use crate::apps::supervision::{Mode, Permission, Scope, SupervisorRoles};
use crate::media::audio::mixer::MonitorMode;
use crate::media::dtmf::{DigitEvent, DtmfSource};
use crate::media::{Clip, MediaEvent, RelayId, Side};

const SUPERVISOR: u16 = 7009;
/// The agent's call is call 1; its room.
const ROOM: u32 = 3_000_001;
/// The agent (callee) is side B of call 1.
const AGENT: RelayId = RelayId(1 | super::call::PARTICIPANT_B);
/// Relay id of the first API-dialled supervisor (session 0).
const API_SUPERVISOR: RelayId = RelayId(1 << 59);

fn harness() -> Harness {
    harness_recording(crate::config::RecordPolicy::Never)
}

/// [`harness`] with the agent 202 recorded by `policy`.
fn harness_recording(policy: crate::config::RecordPolicy) -> Harness {
    let now = Instant::now();
    let all = [Mode::Listen, Mode::Whisper, Mode::Barge];
    let mut roles = SupervisorRoles::new();
    assert!(roles.grant("900", Permission::new(&all, Scope::All).unwrap()));
    assert!(roles.grant("905", Permission::new(&all, Scope::All).unwrap()));
    let only_203 = Scope::Agents(["203".to_string()].into_iter().collect());
    assert!(roles.grant("901", Permission::new(&all, only_203).unwrap()));
    let cfg = EngineConfig {
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        supervisors: roles,
        ..EngineConfig::for_tests(now)
    };
    let mut exts = ["201", "202", "203", "900", "901", "905"].map(|n| ext(n, true)).to_vec();
    exts[1].record = policy;
    Harness { engine: Engine::new(cfg, &exts), now, sent: vec![], media: vec![], cdrs: vec![], vm: vec![] }
}

/// 201 → 202 answered and ACKed; the phones' messages so far are taken. Returns the caller's
/// To (with the box's tag) for in-dialog requests.
fn agent_in_call(h: &mut Harness) -> String {
    answered_call(h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(h, &ok, "c1");
    h.media.clear();
    to_tag
}

/// `ext` on `port` dials `code`; returns the box's final answer to it.
fn dial(h: &mut Harness, ext: &str, port: u16, code: &str) -> String {
    h.register(ext, port);
    h.send(phone(port), &invite(ext, code, port, "s1", &sdp(6000, "0 101")));
    h.take_for(phone(port)).into_iter().rfind(|m| !m.starts_with("SIP/2.0 100")).unwrap()
}

fn key(h: &mut Harness, relay: RelayId, digit: char) {
    let event = DigitEvent { digit, duration_ms: 100, source: DtmfSource::Rfc4733 };
    h.engine.handle_media_event(h.now, MediaEvent::Digit { relay, side: Side::A, event });
    h.drain();
}

fn monitors(h: &Harness) -> Vec<(u64, MonitorMode)> {
    h.media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::JoinRoomMonitoring { relay, mode, .. } => Some((relay.0, *mode)),
            MediaCommand::SetMonitor { relay, mode, .. } => Some((relay.0, *mode)),
            _ => None,
        })
        .collect()
}

/// A BYE from the supervisor's phone on its dial-code call.
fn supervisor_bye(h: &mut Harness, ok: &str) {
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(SUPERVISOR),
        &format!(
            "BYE sip:995202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7009;branch=z9hG4bKsbye\r\n\
             From: <sip:900@127.0.0.1>;tag=fs1\r\nTo: {to_tag}\r\nCall-ID: s1\r\nCSeq: 2 BYE\r\n\r\n"
        ),
    );
}

// Tests for dial codes.

#[test]
fn a_listen_code_joins_the_agents_call_without_a_message_to_either_phone() {
    let mut h = harness();
    agent_in_call(&mut h);
    let ok = dial(&mut h, "900", SUPERVISOR, "995202");
    assert_eq!(status(&ok), 200, "the box answers the supervisor");
    assert!(ok.contains("m=audio 20004 RTP/AVP 0 101"), "{ok}");
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
    // The bridge becomes a room on the same ports; the supervisor's relay becomes its seat.
    let moves: Vec<_> = h
        .media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::MoveToRoom { relay, b_participant, room: ROOM, ports, .. } => {
                Some((relay.0, b_participant.0, *ports))
            }
            _ => None,
        })
        .collect();
    assert_eq!(moves, vec![(1, AGENT.0, [20000, 20002])]);
    assert!(!h.media.contains(&MediaCommand::Close { relay: RelayId(1) }), "moved, not closed");
    assert!(h.media.contains(&MediaCommand::Close { relay: RelayId(2) }));
    let join = h.media.iter().find(|m| matches!(m, MediaCommand::JoinRoomMonitoring { .. })).unwrap();
    assert!(
        matches!(
            join,
            MediaCommand::JoinRoomMonitoring {
                relay: RelayId(2),
                room: ROOM,
                port: 20004,
                agent: AGENT,
                mode: MonitorMode::Listen,
                ..
            }
        ),
        "{join:?}"
    );
    let view = h.engine.supervisions(h.now);
    assert_eq!(
        (view[0].supervisor.as_str(), view[0].agent.as_str(), view[0].state),
        ("900", "202", "joined")
    );
}

#[test]
fn whisper_and_barge_codes_join_in_their_mode() {
    for (code, mode) in [("994202", MonitorMode::Whisper), ("996202", MonitorMode::Barge)] {
        let mut h = harness();
        agent_in_call(&mut h);
        dial(&mut h, "900", SUPERVISOR, code);
        assert_eq!(monitors(&h), vec![(2, mode)]);
    }
}

#[test]
fn keys_4_5_6_switch_the_mode_and_reach_nobody_else() {
    let mut h = harness();
    agent_in_call(&mut h);
    dial(&mut h, "900", SUPERVISOR, "995202");
    for d in ['5', '6', '1', '4', '4'] {
        key(&mut h, RelayId(2), d);
    }
    assert_eq!(
        monitors(&h),
        vec![
            (2, MonitorMode::Listen),
            (2, MonitorMode::Whisper),
            (2, MonitorMode::Barge),
            (2, MonitorMode::Listen)
        ]
    );
    assert_eq!(h.engine.supervisions(h.now)[0].mode, Mode::Listen);
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
    let agent_call = h.engine.calls(h.now).into_iter().find(|c| c.id == 1).unwrap();
    assert_eq!(agent_call.digits, "", "the supervisor's keys are not the call's");
}

#[test]
fn the_supervisor_hanging_up_leaves_the_agents_call_untouched() {
    let mut h = harness();
    agent_in_call(&mut h);
    let ok = dial(&mut h, "900", SUPERVISOR, "995202");
    h.media.clear();
    supervisor_bye(&mut h, &ok);
    assert_eq!(status(&h.take_for(phone(SUPERVISOR))[0]), 200);
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
    // The supervisor's seat closes and the call goes back to a relay: nothing else.
    assert!(h.media.contains(&MediaCommand::Close { relay: RelayId(2) }), "{:?}", h.media);
    assert!(h.media.iter().all(|m| matches!(
        m,
        MediaCommand::MoveToRelay { relay: RelayId(1), b_participant: AGENT, .. }
            | MediaCommand::Codec { relay: RelayId(1), .. }
            | MediaCommand::Close { relay: RelayId(2) }
    )));
    assert!(h.engine.calls(h.now).iter().any(|c| c.id == 1), "the agent's call goes on");
    assert!(h.engine.supervisions(h.now).is_empty());
}

#[test]
fn the_agents_call_ending_hangs_up_the_supervisor_and_empties_the_room() {
    let mut h = harness();
    let to_tag = agent_in_call(&mut h);
    dial(&mut h, "900", SUPERVISOR, "995202");
    h.media.clear();
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.take_for(phone(SUPERVISOR)).iter().any(|m| first_line(m).starts_with("BYE ")));
    for relay in [1, AGENT.0, 2] {
        assert!(h.media.contains(&MediaCommand::Close { relay: RelayId(relay) }), "{relay} leaves");
    }
    assert!(h.engine.calls(h.now).is_empty());
    assert!(h.engine.supervisions(h.now).is_empty());
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
    assert!(!h.media.iter().any(|m| matches!(m, MediaCommand::MoveToRelay { .. })), "an ending call stays");
}

#[test]
fn a_second_session_joins_the_room_the_first_one_made() {
    let mut h = harness();
    agent_in_call(&mut h);
    let ok = dial(&mut h, "900", SUPERVISOR, "995202");
    h.media.clear();
    h.register("905", 7005);
    h.send(phone(7005), &invite("905", "996202", 7005, "s2", &sdp(6100, "0 101")));
    assert!(!h.media.iter().any(|m| matches!(m, MediaCommand::MoveToRoom { .. })), "already in the room");
    assert!(h.media.iter().any(|m| matches!(
        m,
        MediaCommand::JoinRoomMonitoring { room: ROOM, agent: AGENT, mode: MonitorMode::Barge, .. }
    )));
    // The first one leaving keeps the call in the room for the second.
    h.media.clear();
    supervisor_bye(&mut h, &ok);
    assert_eq!(h.media, vec![MediaCommand::Close { relay: RelayId(2) }], "only the seat");
    assert_eq!(h.engine.calls(h.now).iter().find(|c| c.id == 1).unwrap().state, "conference");
}

// Tests for the way back: recording, transfers and hold after a session (issue 6 follow-up).

/// Keys from the agent's phone (side B of call 1, on its relay), 200 ms apart.
fn agent_keys(h: &mut Harness, keys: &str) {
    for k in keys.chars() {
        let event = DigitEvent { digit: k, duration_ms: 100, source: DtmfSource::Rfc4733 };
        h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(1), side: Side::B, event });
        h.drain();
        h.advance(Duration::from_millis(200));
    }
}

#[test]
fn a_recorded_call_keeps_its_one_recording_through_a_barge_and_then_transfers_with_hash_8() {
    let mut h = harness_recording(crate::config::RecordPolicy::Always);
    answered_call(&mut h);
    let path = h
        .media
        .iter()
        .find_map(|m| match m {
            MediaCommand::Record { relay: RelayId(1), path } => Some(path.clone()),
            _ => None,
        })
        .expect("202 is recorded by policy");
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(&mut h, &ok, "c1");
    h.advance(Duration::from_secs(10));
    h.media.clear();
    let sup = dial(&mut h, "900", SUPERVISOR, "996202");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::MoveToRoom { relay: RelayId(1), .. })));
    let recording_cmds = |h: &Harness| {
        h.media
            .iter()
            .filter(|m| matches!(m, MediaCommand::Record { .. } | MediaCommand::StopRecord { .. }))
            .count()
    };
    assert_eq!(recording_cmds(&h), 0, "the recording moves with the call; it is not restarted");
    assert_eq!(h.engine.calls(h.now).iter().find(|c| c.id == 1).unwrap().state, "conference");
    h.advance(Duration::from_secs(30));
    h.media.clear();
    supervisor_bye(&mut h, &sup);
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty(), "no SIP to the phones");
    let back = h.media.iter().position(|m| {
        *m == MediaCommand::MoveToRelay {
            relay: RelayId(1),
            b_participant: AGENT,
            ports: [20000, 20002],
            remotes: [Some("127.0.0.1:4000".parse().unwrap()), Some("127.0.0.1:5000".parse().unwrap())],
        }
    });
    let back = back.unwrap_or_else(|| panic!("moved back: {:?}", h.media));
    let codecs =
        h.media[back..].iter().filter(|m| matches!(m, MediaCommand::Codec { relay: RelayId(1), .. })).count();
    assert_eq!(codecs, 2, "the reopened relay detects DTMF again");
    assert_eq!(recording_cmds(&h), 0);
    let view = h.engine.calls(h.now).into_iter().find(|c| c.id == 1).unwrap();
    assert_eq!(view.state, "talking");
    assert!(view.recording, "still recording, in the same file");
    // `#8` works again on the call: the caller goes to 203.
    h.register("203", 7003);
    agent_keys(&mut h, "#8203#");
    let target = h
        .take_for(phone(7003))
        .into_iter()
        .find(|m| first_line(m).starts_with("INVITE"))
        .expect("203 is rung");
    h.send(phone(7003), &answer(&target, 200, "target", Some(&sdp(6000, "0 101")), 7003));
    assert!(
        h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("BYE ")),
        "the agent is released"
    );
    let c = h.engine.calls(h.now);
    assert_eq!((c.len(), c[0].to.as_str()), (1, "203"), "{c:?}");
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert_eq!(h.cdrs.last().map(|c| c.recordings.clone()), Some(vec![path]), "one file in the CDR");
}

#[test]
fn after_a_session_hold_plays_music_again() {
    let mut h = harness();
    let to_tag = agent_in_call(&mut h);
    let ok = dial(&mut h, "900", SUPERVISOR, "995202");
    supervisor_bye(&mut h, &ok);
    h.take_for(phone(SUPERVISOR));
    h.media.clear();
    let hold = sdp(4000, "0") + "a=sendonly\r\n";
    h.send(
        phone(7001),
        &in_dialog_from_caller("INVITE", 2, &to_tag, "Content-Type: application/sdp\r\n", &hold),
    );
    assert_eq!(status(&h.take_for(phone(7001)).pop().unwrap()), 200);
    assert!(
        h.media.iter().any(
            |m| matches!(m, MediaCommand::Play { relay: RelayId(1), side: Side::B, looped: true, clips }
            if clips == &vec![Clip::MusicOnHold])
        ),
        "{:?}",
        h.media
    );
}

#[test]
fn an_api_supervisor_stopping_moves_the_call_back_too() {
    let mut h = harness();
    agent_in_call(&mut h);
    let inv = api_ring(&mut h, Mode::Listen);
    h.send(phone(SUPERVISOR), &answer(&inv, 200, "sup", Some(&sdp(6100, "0 101")), SUPERVISOR));
    h.media.clear();
    h.advance(Duration::from_secs(5));
    assert!(h.engine.stop_supervision(h.now, "900"));
    h.drain();
    assert_eq!(h.media[0], MediaCommand::Close { relay: API_SUPERVISOR });
    assert!(matches!(h.media[1], MediaCommand::MoveToRelay { relay: RelayId(1), .. }), "{:?}", h.media);
    // A new session moves it into a room again.
    h.media.clear();
    dial(&mut h, "905", 7005, "995202");
    assert!(h
        .media
        .iter()
        .any(|m| matches!(m, MediaCommand::MoveToRoom { relay: RelayId(1), room: ROOM, .. })));
}

#[test]
fn an_agent_with_a_held_call_and_a_live_one_is_supervised_in_the_live_one() {
    let mut h = harness();
    let to_tag = agent_in_call(&mut h);
    // The caller of call 1 holds (music on hold: the box answers it).
    let hold = sdp(4000, "0") + "a=sendonly\r\n";
    h.send(
        phone(7001),
        &in_dialog_from_caller("INVITE", 2, &to_tag, "Content-Type: application/sdp\r\n", &hold),
    );
    h.take_for(phone(7001));
    // 203 calls the agent, who takes the second call (call waiting).
    h.register("203", 7003);
    h.send(phone(7003), &invite("203", "202", 7003, "c2", &sdp(4100, "0 101")));
    let inv = h.take_for(phone(7002)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    h.send(phone(7002), &answer(&inv, 200, "callee2", Some(&sdp(5100, "0 101")), 7002));
    let ok = h.take_for(phone(7003)).into_iter().rfind(|m| status(m) == 200).unwrap();
    let to2 = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(7003),
        &format!(
            "ACK sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7003;branch=z9hG4bKackc2\r\n\
             From: <sip:203@127.0.0.1>;tag=fc2\r\nTo: {to2}\r\nCall-ID: c2\r\nCSeq: 1 ACK\r\n\r\n"
        ),
    );
    let live = h.engine.calls(h.now).into_iter().find(|c| c.from == "203").unwrap().id;
    assert_ne!(live, 1);
    h.media.clear();
    dial(&mut h, "900", SUPERVISOR, "995202");
    let moved: Vec<u64> = h
        .media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::MoveToRoom { relay, .. } => Some(relay.0),
            _ => None,
        })
        .collect();
    assert_eq!(moved, vec![live], "the call on hold is left alone");
    assert_eq!(h.engine.supervisions(h.now)[0].call, live);
}

// Tests for refusals: the agent's call never sees a thing.

fn refused_with(code: &str, ext: &str, port: u16, prompt: &str) {
    let mut h = harness();
    agent_in_call(&mut h);
    let ok = dial(&mut h, ext, port, code);
    assert_eq!(status(&ok), 200, "answered to hear why");
    let relay = h.media.iter().find_map(|m| match m {
        MediaCommand::Play { relay, clips, .. }
            if clips.contains(&Clip::Prompt { id: prompt.into(), lang: crate::media::prompts::Lang::Ja }) =>
        {
            Some(*relay)
        }
        _ => None,
    });
    let relay = relay.unwrap_or_else(|| panic!("{prompt} is played: {:?}", h.media));
    assert!(h.media.iter().all(|m| m.relay() == relay), "nothing touches the agent's call: {:?}", h.media);
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay, side: Side::A });
    h.drain();
    assert!(h.take_for(phone(port)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
    assert_eq!(h.engine.calls(h.now).len(), 1, "only the agent's call is left");
    assert!(h.engine.supervisions(h.now).is_empty());
}

#[test]
fn a_non_supervisor_hears_the_refusal_and_only_their_call_ends() {
    refused_with("995202", "203", 7003, "common.sorry_error");
}

#[test]
fn a_supervisor_out_of_scope_is_refused() {
    refused_with("996202", "901", 7008, "common.sorry_error");
}

#[test]
fn supervising_an_agent_in_no_call_says_not_available() {
    refused_with("995203", "900", SUPERVISOR, "call.is_not_available");
}

#[test]
fn a_supervision_code_from_an_unknown_extension_number_is_refused() {
    refused_with("995777", "900", SUPERVISOR, "common.sorry_error");
}

// Tests for API sessions.

/// Starts an API session in `mode` and returns the INVITE sent to the supervisor's phone.
fn api_ring(h: &mut Harness, mode: Mode) -> String {
    h.register("900", SUPERVISOR);
    h.engine.supervise(h.now, mode, "900", "202").unwrap();
    h.drain();
    let inv = h.take_for(phone(SUPERVISOR)).pop().expect("the supervisor's phone is rung");
    assert!(inv.starts_with("INVITE sip:900@127.0.0.1:7009"), "{inv}");
    assert!(inv.contains("From: <sip:202@"), "it shows whom it will hear: {inv}");
    inv
}

#[test]
fn an_api_session_rings_the_supervisor_and_joins_when_it_answers() {
    let mut h = harness();
    agent_in_call(&mut h);
    let inv = api_ring(&mut h, Mode::Whisper);
    assert_eq!(h.engine.supervisions(h.now)[0].state, "ringing");
    assert!(h.media.is_empty(), "nothing moves before the supervisor answers");
    h.send(phone(SUPERVISOR), &answer(&inv, 200, "sup", Some(&sdp(6100, "0 101")), SUPERVISOR));
    assert!(h.take_for(phone(SUPERVISOR)).iter().any(|m| first_line(m).starts_with("ACK ")));
    let join = h.media.iter().find(|m| matches!(m, MediaCommand::JoinRoomMonitoring { .. })).unwrap();
    assert!(
        matches!(
            join,
            MediaCommand::JoinRoomMonitoring {
                relay: API_SUPERVISOR,
                room: ROOM,
                agent: AGENT,
                mode: MonitorMode::Whisper,
                remote: Some(_),
                ..
            }
        ),
        "{join:?}"
    );
    key(&mut h, API_SUPERVISOR, '6');
    assert_eq!(monitors(&h).last(), Some(&(API_SUPERVISOR.0, MonitorMode::Barge)));
    // Stopped through the API: BYE to the supervisor only, the seat closes, the call goes on.
    h.media.clear();
    assert!(h.engine.stop_supervision(h.now, "900"));
    h.drain();
    assert!(h.take_for(phone(SUPERVISOR)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
    assert_eq!(h.media[0], MediaCommand::Close { relay: API_SUPERVISOR });
    assert!(matches!(h.media[1], MediaCommand::MoveToRelay { relay: RelayId(1), .. }), "{:?}", h.media);
    assert!(h.engine.supervisions(h.now).is_empty());
    assert_eq!(h.engine.calls(h.now).len(), 1);
}

#[test]
fn an_unanswered_api_ring_is_cancelled_after_the_ring_timeout() {
    let mut h = harness();
    agent_in_call(&mut h);
    let ports = h.engine.rtp_ports_in_use().0;
    let inv = api_ring(&mut h, Mode::Listen);
    assert_eq!(h.engine.rtp_ports_in_use().0, ports + 1, "the ring holds a port");
    h.send(phone(SUPERVISOR), &answer(&inv, 180, "sup", None, SUPERVISOR));
    h.advance(crate::apps::supervision::SUPERVISOR_RING_TIMEOUT + Duration::from_secs(1));
    assert!(h.take_for(phone(SUPERVISOR)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert!(h.engine.supervisions(h.now).is_empty());
    assert!(h.media.is_empty(), "the agent's call was never moved");
    assert_eq!(h.engine.rtp_ports_in_use().0, ports, "the ring's port is free again");
}

#[test]
fn a_busy_supervisor_phone_ends_the_session_and_nothing_else() {
    let mut h = harness();
    agent_in_call(&mut h);
    let inv = api_ring(&mut h, Mode::Listen);
    h.send(phone(SUPERVISOR), &answer(&inv, 486, "sup", None, SUPERVISOR));
    assert!(h.engine.supervisions(h.now).is_empty());
    assert!(h.media.is_empty());
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
}

#[test]
fn api_requests_are_refused_with_their_status_and_nothing_is_sent() {
    use crate::engine::SuperviseError;
    let mut h = harness();
    agent_in_call(&mut h);
    h.register("203", 7003);
    let refused = h.engine.supervise(h.now, Mode::Listen, "203", "202").unwrap_err();
    assert_eq!(refused.http_status(), 403);
    let idle = h.engine.supervise(h.now, Mode::Listen, "900", "203").unwrap_err();
    assert_eq!(idle.http_status(), 409);
    assert_eq!(
        h.engine.supervise(h.now, Mode::Listen, "900", "202"),
        Err(SuperviseError::SupervisorUnreachable),
        "900 is not registered"
    );
    h.drain();
    assert!(h.sent.is_empty() && h.media.is_empty());
}

#[test]
fn the_agents_call_ending_while_the_supervisor_rings_cancels_the_ring() {
    let mut h = harness();
    let to_tag = agent_in_call(&mut h);
    let inv = api_ring(&mut h, Mode::Listen);
    h.send(phone(SUPERVISOR), &answer(&inv, 180, "sup", None, SUPERVISOR));
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert!(h.take_for(phone(SUPERVISOR)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert!(h.engine.supervisions(h.now).is_empty());
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
}

#[test]
fn a_room_refusing_a_dialled_supervisor_hangs_up_only_the_supervisor() {
    let mut h = harness();
    agent_in_call(&mut h);
    let inv = api_ring(&mut h, Mode::Barge);
    h.send(phone(SUPERVISOR), &answer(&inv, 200, "sup", Some(&sdp(6100, "0 101")), SUPERVISOR));
    h.take_for(phone(SUPERVISOR));
    h.media.clear();
    h.engine.media_failed(API_SUPERVISOR, h.now);
    h.drain();
    assert!(h.take_for(phone(SUPERVISOR)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
    // No seat to close; the call, moved for this supervisor, goes back to its relay.
    assert!(
        matches!(h.media.first(), Some(MediaCommand::MoveToRelay { relay: RelayId(1), .. })),
        "{:?}",
        h.media
    );
    assert!(h.media.iter().all(|m| m.relay() == RelayId(1)), "{:?}", h.media);
    assert!(h.engine.supervisions(h.now).is_empty());
    assert_eq!(h.engine.calls(h.now).len(), 1);
}

#[test]
fn a_mode_key_by_sip_info_switches_too() {
    let mut h = harness();
    agent_in_call(&mut h);
    let ok = dial(&mut h, "900", SUPERVISOR, "995202");
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(SUPERVISOR),
        &format!(
            "INFO sip:995202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7009;branch=z9hG4bKsinfo\r\n\
             From: <sip:900@127.0.0.1>;tag=fs1\r\nTo: {to_tag}\r\nCall-ID: s1\r\nCSeq: 2 INFO\r\n\
             Content-Type: application/dtmf\r\n\r\n6"
        ),
    );
    assert_eq!(status(&h.take_for(phone(SUPERVISOR))[0]), 200);
    assert_eq!(monitors(&h).last(), Some(&(2, MonitorMode::Barge)));
    assert!(h.take_for(phone(7001)).is_empty() && h.take_for(phone(7002)).is_empty());
}

#[test]
fn an_extension_numbered_like_a_code_is_dialled_as_the_extension() {
    let now = Instant::now();
    let cfg = EngineConfig {
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        ..EngineConfig::for_tests(now)
    };
    let exts = vec![ext("201", true), ext("9951", true)];
    let mut h = Harness {
        engine: Engine::new(cfg, &exts),
        now,
        sent: vec![],
        media: vec![],
        cdrs: vec![],
        vm: vec![],
    };
    h.register("201", 7001);
    h.register("9951", 7002);
    h.send(phone(7001), &invite("201", "9951", 7001, "c9", &sdp(4000, "0 101")));
    let rung = h.take_for(phone(7002));
    assert!(rung.iter().any(|m| m.starts_with("INVITE sip:9951@")), "{rung:?}");
    assert!(h.engine.supervisions(h.now).is_empty());
}
