//! Calls the box places itself (`originate.rs`), with a virtual clock: 201 (7001) is the
//! user's phone rung first, 202 (7002) the party dialled next.

use super::*;
use crate::engine::{OriginPurpose, OriginateError, OriginateRequest, OriginateStep, Party};
use crate::media::{Clip, Side};

fn request(first: &str, second: &str) -> OriginateRequest {
    OriginateRequest {
        first: Party::Extension(first.into()),
        first_ring: Duration::from_secs(30),
        second: Party::Extension(second.into()),
        second_ring: Duration::from_secs(20),
        purpose: OriginPurpose::Web,
    }
}

fn invite_to(h: &mut Harness, port: u16) -> String {
    h.take_for(phone(port)).into_iter().find(|m| first_line(m).starts_with("INVITE")).expect("an INVITE")
}

fn steps(h: &mut Harness) -> Vec<OriginateStep> {
    h.engine.take_originate_events().into_iter().map(|e| e.step).collect()
}

#[test]
fn the_first_phone_rings_then_the_second_and_both_are_bridged() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.sent.clear();
    let id = h.engine.originate(h.now, request("201", "202")).unwrap();
    h.drain();
    let first = invite_to(&mut h, 7001);
    assert!(first.contains("From: <sip:202@"), "the user's phone shows whom it will call: {first}");
    assert!(h.take_for(phone(7002)).is_empty(), "the second party waits for the first");
    assert_eq!(h.engine.take_ringing().iter().map(|r| r.ext.as_str()).collect::<Vec<_>>(), vec!["201"]);
    h.send(phone(7001), &answer(&first, 200, "u1", Some(&sdp(6000, "8 101")), 7001));
    assert!(first_line(&h.take_for(phone(7001))[0]).starts_with("ACK "));
    assert!(
        h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::A, clips, looped: true, .. } if clips == &vec![Clip::Ringback])),
        "the user hears ringback"
    );
    let second = invite_to(&mut h, 7002);
    assert!(second.contains("From: <sip:201@"), "{second}");
    assert!(second.contains("RTP/AVP 8 101"), "offered what the first phone chose: {second}");
    h.send(phone(7002), &answer(&second, 200, "u2", Some(&sdp(6002, "8 101")), 7002));
    assert_eq!(steps(&mut h), vec![OriginateStep::FirstAnswered, OriginateStep::Connected]);
    let calls = h.engine.calls(h.now);
    assert_eq!((calls[0].id, calls[0].from.as_str(), calls[0].to.as_str()), (id, "201", "202"));
    assert_eq!(calls[0].state, "talking");
    // The second party hangs up: the first gets the BYE, the CDR names both.
    let Message::Request(r) = parsed(&second) else { panic!() };
    let bye = format!(
        "BYE sip:201@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7002;branch=z9hG4bKbye\r\n\
         From: {};tag=u2\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        r.common.header("To").unwrap(),
        r.common.header("From").unwrap(),
        r.common.call_id
    );
    h.advance(Duration::from_secs(5));
    h.send(phone(7002), &bye);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert_eq!(steps(&mut h), vec![OriginateStep::Ended { talk_s: 5 }]);
    let cdr = h.cdrs.pop().unwrap();
    assert_eq!((cdr.from.as_str(), cdr.to.as_str()), ("201", "202"));
    assert_eq!(cdr.final_view(), ("201".to_string(), "202".to_string()));
    assert!(cdr.talk_duration_ms >= 5000, "{cdr:?}");
    h.advance(Duration::from_secs(60));
    assert_eq!(h.engine.rtp_ports_in_use().0, 0, "ports go back to the pool");
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn a_busy_second_party_is_announced_to_the_first_then_the_box_hangs_up() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.sent.clear();
    h.engine.originate(h.now, request("201", "202")).unwrap();
    h.drain();
    let first = invite_to(&mut h, 7001);
    h.send(phone(7001), &answer(&first, 200, "u1", Some(&sdp(6000, "0 101")), 7001));
    let second = invite_to(&mut h, 7002);
    h.send(phone(7002), &answer(&second, 486, "u2", None, 7002));
    assert_eq!(steps(&mut h), vec![OriginateStep::FirstAnswered, OriginateStep::SecondFailed(486)]);
    let played = prompts_played(&h);
    assert!(played.iter().any(|p| p.contains("busy")), "{played:?}");
    h.take_for(phone(7001));
    h.engine
        .handle_media_event(h.now, crate::media::MediaEvent::PlayDone { relay: RelayId(1), side: Side::A });
    h.drain();
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
    assert_eq!(h.cdrs.pop().map(|c| (c.from, c.to)), Some(("201".into(), "202".into())));
}

#[test]
fn an_unanswered_first_phone_is_cancelled_after_its_ring_time_and_nothing_else_rings() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.sent.clear();
    h.engine.originate(h.now, request("201", "202")).unwrap();
    h.drain();
    let first = invite_to(&mut h, 7001);
    h.send(phone(7001), &answer(&first, 180, "u1", None, 7001));
    h.advance(Duration::from_secs(31));
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert!(h.take_for(phone(7002)).is_empty());
    assert_eq!(steps(&mut h), vec![OriginateStep::FirstFailed(480), OriginateStep::Ended { talk_s: 0 }]);
    assert!(h.engine.calls(h.now).is_empty());
    let cdr = h.cdrs.pop().unwrap();
    assert_eq!((cdr.from.as_str(), cdr.to.as_str()), ("201", "202"));
    h.advance(Duration::from_secs(60));
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
}

#[test]
fn the_first_party_hanging_up_while_the_second_rings_cancels_it() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.sent.clear();
    h.engine.originate(h.now, request("201", "202")).unwrap();
    h.drain();
    let first = invite_to(&mut h, 7001);
    h.send(phone(7001), &answer(&first, 200, "u1", Some(&sdp(6000, "0 101")), 7001));
    h.take_for(phone(7001));
    invite_to(&mut h, 7002);
    let Message::Request(r) = parsed(&first) else { panic!() };
    let bye = format!(
        "BYE sip:202@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKbye1\r\n\
         From: {};tag=u1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        r.common.header("To").unwrap(),
        r.common.header("From").unwrap(),
        r.common.call_id
    );
    h.send(phone(7001), &bye);
    assert_eq!(status(&h.take_for(phone(7001))[0]), 200);
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn bad_requests_are_refused_and_leave_nothing_behind() {
    let mut h = Harness::new();
    h.register("201", 7001);
    assert_eq!(h.engine.originate(h.now, request("201", "299")), Err(OriginateError::NotFound));
    assert_eq!(h.engine.originate(h.now, request("202", "201")), Err(OriginateError::Unavailable));
    assert_eq!(h.engine.originate(h.now, request("201", "201")), Err(OriginateError::Invalid));
    let mut long = request("201", "202");
    long.second_ring = Duration::ZERO;
    assert_eq!(h.engine.originate(h.now, long), Err(OriginateError::Invalid));
    h.drain();
    assert!(h.engine.calls(h.now).is_empty());
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
    assert!(h.engine.take_originate_events().is_empty());
}
