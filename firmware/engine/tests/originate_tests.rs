//! Calls the box places itself (`originate.rs`), with a virtual clock: 201 (7001) is the
//! user's phone rung first, 202 (7002) the party dialled next.

use super::*;
use crate::apps::campaign::dtmf::Entered;
use crate::engine::{
    OriginPurpose, OriginateError, OriginateRequest, OriginateStep, Party, ResultEntryConfig, Waiting,
};
use crate::media::{Clip, Side};

fn request(first: &str, second: &str) -> OriginateRequest {
    OriginateRequest::new(
        Party::Extension(first.into()),
        Duration::from_secs(30),
        Party::Extension(second.into()),
        Duration::from_secs(20),
    )
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

fn key(h: &mut Harness, side: Side, keys: &str) {
    for k in keys.chars() {
        let event = crate::media::dtmf::DigitEvent {
            digit: k,
            source: crate::media::dtmf::DtmfSource::Rfc4733,
            duration_ms: 100,
        };
        h.engine
            .handle_media_event(h.now, crate::media::MediaEvent::Digit { relay: RelayId(1), side, event });
        h.drain();
        h.advance(Duration::from_millis(200));
    }
}

/// A BYE from the phone on `port` inside the dialog the box's INVITE `inv` opened.
fn bye_from(inv: &str, port: u16, tag: &str) -> String {
    let Message::Request(r) = parsed(inv) else { panic!() };
    format!(
        "BYE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbye{port}{tag}\r\n\
         From: {};tag={tag}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        r.common.header("To").unwrap(),
        r.common.header("From").unwrap(),
        r.common.call_id
    )
}

/// Progressive dialling's shape: the customer (202) first, the agent named once it answered
/// (the first agent fails, the second answers); the customer hangs up and the agent keys the
/// result, then the box hangs up.
#[test]
fn a_deferred_second_party_is_named_later_and_the_agent_enters_the_result_after_the_customer_leaves() {
    let mut h = Harness::with(vec![ext("201", true), ext("202", true), ext("203", true)], 60);
    for (e, p) in [("201", 7001), ("202", 7002), ("203", 7003)] {
        h.register(e, p);
    }
    h.sent.clear();
    let req = OriginateRequest {
        second: None,
        purpose: OriginPurpose::Campaign { campaign: "c1".into(), entry: 7 },
        waiting: Waiting::Music(None),
        result_entry: Some(ResultEntryConfig { agent_side: Side::B, valid: vec![1, 2, 3] }),
        ..request("202", "201")
    };
    let id = h.engine.originate(h.now, req).unwrap();
    h.drain();
    let customer = invite_to(&mut h, 7002);
    h.send(phone(7002), &answer(&customer, 200, "cu", Some(&sdp(6000, "0 101")), 7002));
    assert!(h.media.iter().any(
        |m| matches!(m, MediaCommand::Play { side: Side::A, clips, .. } if clips == &vec![Clip::MusicOnHold])
    ));
    assert!(h.take_for(phone(7001)).iter().all(|m| !first_line(m).starts_with("INVITE")), "nobody rings yet");
    assert_eq!(steps(&mut h), vec![OriginateStep::FirstAnswered]);
    // The first agent declines: the customer waits again.
    h.engine.originate_second(h.now, id, Party::Extension("203".into()), Duration::from_secs(20)).unwrap();
    h.drain();
    let first_agent = invite_to(&mut h, 7003);
    h.send(phone(7003), &answer(&first_agent, 486, "a3", None, 7003));
    assert_eq!(steps(&mut h), vec![OriginateStep::SecondFailed(486)]);
    assert_eq!(h.engine.calls(h.now)[0].state, "waiting");
    h.engine.originate_second(h.now, id, Party::Extension("201".into()), Duration::from_secs(20)).unwrap();
    h.drain();
    let agent = invite_to(&mut h, 7001);
    h.send(phone(7001), &answer(&agent, 200, "ag", Some(&sdp(6002, "0 101")), 7001));
    assert_eq!(steps(&mut h), vec![OriginateStep::Connected]);
    h.advance(Duration::from_secs(4));
    // The customer hangs up: the agent stays and is asked.
    h.send(phone(7002), &bye_from(&customer, 7002, "cu"));
    assert!(h.take_for(phone(7001)).iter().all(|m| !first_line(m).starts_with("BYE")), "the agent stays");
    assert_eq!(steps(&mut h), vec![OriginateStep::AwaitingResult { talk_s: 4 }]);
    assert!(prompts_played_to(&h, Side::B).contains(&"campaign.enter_result".to_string()));
    assert_eq!(h.engine.calls(h.now)[0].state, "result entry");
    key(&mut h, Side::B, "9#");
    assert!(prompts_played_to(&h, Side::B).contains(&"campaign.invalid".to_string()), "9 is no result");
    key(&mut h, Side::B, "3#");
    assert_eq!(steps(&mut h), vec![OriginateStep::Result(Entered::Result(3))]);
    h.engine
        .handle_media_event(h.now, crate::media::MediaEvent::PlayDone { relay: RelayId(id), side: Side::B });
    h.drain();
    assert!(
        h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")),
        "then the box hangs up"
    );
    assert_eq!(steps(&mut h), vec![OriginateStep::Ended { talk_s: 4 }]);
    let cdr = h.cdrs.pop().unwrap();
    assert_eq!((cdr.from.as_str(), cdr.to.as_str()), ("202", "201"));
}

#[test]
fn a_recall_delay_is_entered_after_zero_and_an_agent_who_hangs_up_leaves_no_result() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.sent.clear();
    let (id, _) = customer_leaves_agent_first(&mut h, "ag", "cu");
    steps(&mut h);
    key(&mut h, Side::A, "0");
    assert!(prompts_played_to(&h, Side::A).contains(&"campaign.enter_recall".to_string()));
    key(&mut h, Side::A, "30#");
    assert_eq!(steps(&mut h), vec![OriginateStep::Result(Entered::Recall(Duration::from_secs(30 * 60)))]);
    // Another call: the agent hangs up during the entry.
    h.engine
        .handle_media_event(h.now, crate::media::MediaEvent::PlayDone { relay: RelayId(id), side: Side::A });
    h.drain();
    h.sent.clear();
    let (id2, agent) = customer_leaves_agent_first(&mut h, "ag2", "cu2");
    assert_eq!(
        steps(&mut h),
        vec![
            OriginateStep::Ended { talk_s: 0 },
            OriginateStep::FirstAnswered,
            OriginateStep::Connected,
            OriginateStep::AwaitingResult { talk_s: 0 }
        ]
    );
    let Message::Request(r) = parsed(&agent) else { panic!() };
    let bye = format!(
        "BYE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKbyeag\r\n\
         From: {};tag=ag2\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        r.common.header("To").unwrap(),
        r.common.header("From").unwrap(),
        r.common.call_id
    );
    h.send(phone(7001), &bye);
    assert_eq!(steps(&mut h), vec![OriginateStep::ResultMissing, OriginateStep::Ended { talk_s: 0 }]);
    assert!(h.engine.calls(h.now).iter().all(|c| c.id != id2));
}

#[test]
fn a_preview_offer_reports_the_agents_keys_and_the_box_can_hang_up() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.sent.clear();
    let req = OriginateRequest {
        second: None,
        presented: Some("0312345678".into()),
        waiting: Waiting::Choice,
        ..request("201", "202")
    };
    let id = h.engine.originate(h.now, req).unwrap();
    h.drain();
    let agent = invite_to(&mut h, 7001);
    assert!(agent.contains("From: <sip:0312345678@"), "the agent sees the customer's number: {agent}");
    h.send(phone(7001), &answer(&agent, 200, "ag", Some(&sdp(6000, "0 101")), 7001));
    assert!(prompts_played_to(&h, Side::A).contains(&"campaign.preview".to_string()));
    key(&mut h, Side::A, "3");
    assert_eq!(steps(&mut h), vec![OriginateStep::FirstAnswered, OriginateStep::Key('3')]);
    assert!(h.engine.originate_hangup(h.now, id));
    h.drain();
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}

/// 201 (the agent) is rung first and answers with tag `ag`, 202 (the customer) answers with
/// tag `cu` and hangs up: the agent is asked for the result (valid result: 1). Returns the
/// call id and the INVITE the agent's phone got.
fn customer_leaves_agent_first(h: &mut Harness, ag: &str, cu: &str) -> (u64, String) {
    let req = OriginateRequest {
        result_entry: Some(ResultEntryConfig { agent_side: Side::A, valid: vec![1] }),
        ..request("201", "202")
    };
    let id = h.engine.originate(h.now, req).unwrap();
    h.drain();
    let agent = invite_to(h, 7001);
    h.send(phone(7001), &answer(&agent, 200, ag, Some(&sdp(6000, "0 101")), 7001));
    let customer = invite_to(h, 7002);
    h.send(phone(7002), &answer(&customer, 200, cu, Some(&sdp(6002, "0 101")), 7002));
    h.send(phone(7002), &bye_from(&customer, 7002, cu));
    (id, agent)
}

fn prompts_played_to(h: &Harness, side: Side) -> Vec<String> {
    h.media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Play { side: s, clips, .. } if *s == side => Some(clips.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            Clip::Prompt { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

/// Login mode: 201 dials 990 and stays on the line; an answered customer (202 here) is put
/// through without ringing; when it hangs up 201 keys the result and waits for the next one.
#[test]
fn a_990_line_takes_customers_one_after_the_other_and_asks_for_each_result() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.sent.clear();
    h.send(phone(7001), &invite("201", "990", 7001, "login", &sdp(6000, "8 0 101")));
    let ok = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(ok.contains("RTP/AVP 0 101"), "µ-law preferred: {ok}");
    ack_caller(&mut h, &ok, "login");
    let logins = h.engine.campaign_logins();
    assert_eq!((logins[0].0.as_str(), logins[0].2), ("201", false));
    let line = logins[0].1;
    // A second 990 from the same agent is refused.
    h.send(phone(7001), &invite("201", "990", 7001, "login2", &sdp(6000, "0 101")));
    assert_eq!(status(&h.take_for(phone(7001)).pop().unwrap()), 486);
    // The customer's call: answered, then put through.
    let req = OriginateRequest {
        second: None,
        purpose: OriginPurpose::Campaign { campaign: "c".into(), entry: 1 },
        pcmu_only: true,
        ..request("202", "201")
    };
    let customer_call = h.engine.originate(h.now, req).unwrap();
    h.drain();
    let customer = invite_to(&mut h, 7002);
    assert!(customer.contains("RTP/AVP 0 101"), "µ-law only: {customer}");
    h.send(phone(7002), &answer(&customer, 200, "cu", Some(&sdp(6100, "0 101")), 7002));
    h.take_for(phone(7002));
    h.engine.take_originate_events();
    assert_eq!(h.engine.originate_join(h.now, customer_call, "201", Some(vec![1, 2])), Ok(line));
    h.drain();
    assert!(
        h.take_for(phone(7002)).iter().all(|m| !first_line(m).starts_with("BYE")),
        "the customer is moved, not hung up"
    );
    assert!(h.take_for(phone(7001)).is_empty(), "the agent's phone does not ring");
    assert!(h.engine.campaign_logins()[0].2, "the line is busy");
    let calls = h.engine.calls(h.now);
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].from.as_str(), calls[0].to.as_str(), calls[0].state), ("201", "202", "talking"));
    let reopened = h.media.iter().rev().find_map(|m| match m {
        MediaCommand::Open { relay, b_remote, .. } if relay.0 == line => Some(*b_remote),
        _ => None,
    });
    assert_eq!(reopened, Some(Some("127.0.0.1:6100".parse().unwrap())), "the customer's media follows it");
    h.advance(Duration::from_secs(3));
    h.send(phone(7002), &bye_from(&customer, 7002, "cu"));
    let steps_now = steps(&mut h);
    assert!(steps_now.contains(&OriginateStep::AwaitingResult { talk_s: 3 }), "{steps_now:?}");
    let relay_digits = |h: &mut Harness, keys: &str| {
        for k in keys.chars() {
            let event = crate::media::dtmf::DigitEvent {
                digit: k,
                source: crate::media::dtmf::DtmfSource::Rfc4733,
                duration_ms: 100,
            };
            h.engine.handle_media_event(
                h.now,
                crate::media::MediaEvent::Digit { relay: RelayId(line), side: Side::A, event },
            );
            h.drain();
            h.advance(Duration::from_millis(200));
        }
    };
    relay_digits(&mut h, "2#");
    assert_eq!(steps(&mut h), vec![OriginateStep::Result(Entered::Result(2))]);
    h.engine.handle_media_event(
        h.now,
        crate::media::MediaEvent::PlayDone { relay: RelayId(line), side: Side::A },
    );
    h.drain();
    assert_eq!(steps(&mut h), vec![OriginateStep::Released { talk_s: 3 }]);
    assert!(
        h.take_for(phone(7001)).iter().all(|m| !first_line(m).starts_with("BYE")),
        "the agent stays on the line"
    );
    assert!(!h.engine.campaign_logins()[0].2, "free for the next customer");
    assert_eq!(h.engine.calls(h.now).len(), 1);
}
