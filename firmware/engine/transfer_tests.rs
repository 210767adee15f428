//! Transfers and park with a virtual clock: 201 (7001) calls 202 (7002); 203 (7003) is the
//! third phone.

use super::*;
use crate::media::{Clip, Side};

/// A request from the callee phone (7002) inside the dialog the box's INVITE `inv` opened.
fn from_callee(inv: &str, method: &str, cseq: u32, extra: &str, body: &str) -> String {
    let Message::Request(r) = parsed(inv) else { panic!("not a request") };
    let from = r.common.header("From").unwrap();
    format!(
        "{method} sip:201@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7002;branch=z9hG4bK{method}{cseq}\r\n\
         From: <sip:202@127.0.0.1>;tag=callee\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:202@127.0.0.1:7002>\r\n{extra}\r\n{body}",
        r.common.call_id
    )
}

/// 201 calls 202, both answered and ACKed; 203 registered. Returns (the callee's INVITE, the
/// caller's To with the box's tag).
fn talking(h: &mut Harness) -> (String, String) {
    h.register("203", 7003);
    let inv = answered_call(h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(h, &ok, "c1");
    h.media.clear();
    (inv, to_tag)
}

fn sipfrag_codes(msgs: &[String]) -> Vec<String> {
    msgs.iter()
        .filter(|m| first_line(m).starts_with("NOTIFY"))
        .map(|m| m.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string())
        .collect()
}

fn digits(h: &mut Harness, side: Side, keys: &str) {
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

// Tests for blind transfer.

#[test]
fn a_refer_from_the_callee_bridges_the_caller_to_the_target_and_hangs_up_the_transferor() {
    let mut h = Harness::new();
    let (inv, to_tag) = talking(&mut h);
    h.send(phone(7002), &from_callee(&inv, "REFER", 2, "Refer-To: <sip:203@127.0.0.1>\r\n", ""));
    let to_transferor = h.take_for(phone(7002));
    assert_eq!(status(&to_transferor[0]), 202, "{to_transferor:?}");
    assert_eq!(sipfrag_codes(&to_transferor), vec!["SIP/2.0 100 Trying"]);
    assert!(
        to_transferor[1].contains("Event: refer") && to_transferor[1].contains("Subscription-State: active")
    );
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::A, clips, .. } if clips == &vec![Clip::MusicOnHold])), "the transferee hears music");
    let to_target = h.take_for(phone(7003));
    let target_inv = to_target.into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    assert!(target_inv.contains("From: <sip:201@"), "the target sees the transferee: {target_inv}");
    h.send(phone(7003), &answer(&target_inv, 180, "target", None, 7003));
    h.send(phone(7003), &answer(&target_inv, 200, "target", Some(&sdp(6000, "0 101")), 7003));
    assert!(first_line(&h.take_for(phone(7003))[0]).starts_with("ACK "));
    let to_transferor = h.take_for(phone(7002));
    assert_eq!(sipfrag_codes(&to_transferor), vec!["SIP/2.0 200 OK"]);
    assert!(to_transferor[0].contains("Subscription-State: terminated"));
    assert!(first_line(&to_transferor[1]).starts_with("BYE "), "then the transferor is hung up");
    assert!(h.take_for(phone(7001)).is_empty(), "the transferee's phone sees nothing");
    let reopened = h.media.iter().find_map(|m| match m {
        MediaCommand::Open { a_port, b_port, b_remote, .. } => Some((*a_port, *b_port, *b_remote)),
        _ => None,
    });
    let (a_port, b_port, b_remote) = reopened.expect("the relay is re-opened");
    assert_eq!(a_port, 20000);
    assert!(target_inv.contains(&format!("m=audio {b_port} ")), "the target's SDP names the new B port");
    assert_eq!(b_remote, Some("127.0.0.1:6000".parse().unwrap()));
    assert_eq!(h.engine.calls(h.now)[0].to, "203");
    // The transferee hangs up: the target gets the BYE, the CDR shows both views.
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert!(first_line(&h.take_for(phone(7003))[0]).starts_with("BYE "));
    let cdr = h.cdrs.pop().unwrap();
    assert_eq!(cdr.final_view(), ("201".to_string(), "203".to_string()));
    assert_eq!(
        (cdr.from.as_str(), cdr.to.as_str()),
        ("201", "202"),
        "the detailed view keeps the dialled number"
    );
    assert_eq!(cdr.rewires.len(), 1);
    assert_eq!((cdr.rewires[0].kind.as_str(), cdr.rewires[0].replaced.as_str()), ("blind transfer", "202"));
    assert_eq!(cdr.legs.iter().map(|l| l.leg.as_str()).collect::<Vec<_>>(), vec!["a", "b1", "b2"]);
    h.advance(Duration::from_secs(60));
    assert_eq!(h.engine.rtp_ports_in_use().0, 0, "ports go back to the pool");
}

#[test]
fn a_refer_from_the_caller_moves_the_target_onto_side_a() {
    let mut h = Harness::new();
    let (inv, to_tag) = talking(&mut h);
    h.send(phone(7001), &in_dialog_from_caller("REFER", 2, &to_tag, "Refer-To: <sip:203@127.0.0.1>\r\n", ""));
    assert_eq!(status(&h.take_for(phone(7001))[0]), 202);
    let target_inv =
        h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    assert!(target_inv.contains("From: <sip:202@"), "{target_inv}");
    h.send(phone(7003), &answer(&target_inv, 200, "target", Some(&sdp(6000, "0 101")), 7003));
    let to_transferor = h.take_for(phone(7001));
    assert!(to_transferor.iter().any(|m| first_line(m).starts_with("BYE ")));
    // The callee (still side B) hangs up: the box BYEs the target in the target's UAC dialog.
    h.send(phone(7002), &from_callee(&inv, "BYE", 3, "", ""));
    let bye = h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("BYE ")).unwrap();
    assert!(bye.contains("tag=target"), "{bye}");
    assert_eq!(h.cdrs.pop().unwrap().final_view(), ("203".to_string(), "202".to_string()));
}

#[test]
fn a_busy_target_leaves_the_call_as_it_was_and_the_transferor_hears_why() {
    let mut h = Harness::new();
    let (inv, _) = talking(&mut h);
    h.send(phone(7002), &from_callee(&inv, "REFER", 2, "Refer-To: <sip:203@127.0.0.1>\r\n", ""));
    h.take_for(phone(7002));
    let target_inv =
        h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    h.send(phone(7003), &answer(&target_inv, 486, "target", None, 7003));
    assert_eq!(sipfrag_codes(&h.take_for(phone(7002))), vec!["SIP/2.0 486 Busy Here"]);
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::StopPlay { side: Side::A, .. })));
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
    assert_eq!(h.engine.calls(h.now)[0].to, "202");
}

#[test]
fn a_transferor_that_hangs_up_first_leaves_the_transferee_waiting_and_a_failure_ends_the_call() {
    let mut h = Harness::new();
    let (inv, _) = talking(&mut h);
    h.send(phone(7002), &from_callee(&inv, "REFER", 2, "Refer-To: <sip:203@127.0.0.1>\r\n", ""));
    h.send(phone(7002), &from_callee(&inv, "BYE", 3, "", ""));
    assert_eq!(h.engine.calls(h.now).len(), 1, "the transferee still waits");
    assert!(h.take_for(phone(7001)).is_empty());
    // 203 never answers: after the transfer ring time the transferee is hung up cleanly.
    h.advance(call::transfer::TRANSFER_RING + Duration::from_secs(1));
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert!(h.engine.calls(h.now).is_empty());
    assert!(h.cdrs.last().unwrap().cause.starts_with("transfer failed"));
}

#[test]
fn hash_8_number_hash_transfers_blind_from_dtmf() {
    let mut h = Harness::new();
    talking(&mut h);
    digits(&mut h, Side::A, "#8203#");
    let target_inv =
        h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    assert!(target_inv.contains("From: <sip:202@"), "{target_inv}");
    h.send(phone(7003), &answer(&target_inv, 200, "target", Some(&sdp(6000, "0 101")), 7003));
    assert!(
        h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")),
        "the transferor is released"
    );
    assert!(
        h.take_for(phone(7002)).iter().all(|m| !first_line(m).starts_with("NOTIFY")),
        "no REFER, no NOTIFY"
    );
    assert_eq!(h.engine.calls(h.now)[0].from, "203");
}

#[test]
fn an_unknown_transfer_target_is_refused_and_the_call_goes_on() {
    let mut h = Harness::new();
    let (inv, _) = talking(&mut h);
    h.send(phone(7002), &from_callee(&inv, "REFER", 2, "Refer-To: <sip:299@127.0.0.1>\r\n", ""));
    assert_eq!(sipfrag_codes(&h.take_for(phone(7002))), vec!["SIP/2.0 100 Trying", "SIP/2.0 404 Not Found"]);
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
}

// Tests for park.

fn play_done(h: &mut Harness, side: Side) {
    h.engine.handle_media_event(h.now, crate::media::MediaEvent::PlayDone { relay: RelayId(1), side });
    h.drain();
}

#[test]
fn hash_72_parks_the_other_party_announces_the_slot_and_any_phone_takes_the_call() {
    let mut h = Harness::new();
    let (inv, _) = talking(&mut h);
    digits(&mut h, Side::A, "#72");
    let announce = h.media.iter().find_map(|m| match m {
        MediaCommand::Play { side: Side::A, clips, .. } => Some(clips.clone()),
        _ => None,
    });
    let announce = announce.expect("the parker hears the slot");
    assert!(announce.iter().any(|c| matches!(c, Clip::Prompt { id, .. } if id == "num.9" || id.contains("9000") || id.contains("parked"))), "{announce:?}");
    assert!(h.media.iter().any(
        |m| matches!(m, MediaCommand::Play { side: Side::B, clips, .. } if clips == &vec![Clip::MusicOnHold])
    ));
    let parked = h.engine.parked(h.now);
    assert_eq!((parked[0].slot, parked[0].parked.as_str(), parked[0].parker.as_str()), (9001, "202", "201"));
    play_done(&mut h, Side::A);
    assert!(
        h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")),
        "the parker is released"
    );
    // 203 dials the slot and takes the call.
    h.send(phone(7003), &invite("203", "9001", 7003, "r1", &sdp(6000, "0 101")));
    let ok = h.take_for(phone(7003)).pop().unwrap();
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(h.engine.parked(h.now).is_empty());
    assert_eq!(h.engine.calls(h.now)[0].from, "203");
    h.send(phone(7002), &from_callee(&inv, "BYE", 3, "", ""));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("BYE ")));
    let cdr = h.cdrs.pop().unwrap();
    assert_eq!(cdr.final_view(), ("203".to_string(), "202".to_string()));
    assert_eq!(cdr.rewires[0].kind, "park retrieve");
    assert_eq!(cdr.legs.iter().map(|l| l.leg.as_str()).collect::<Vec<_>>(), vec!["a", "a2", "b1"]);
}

#[test]
fn an_empty_park_slot_gets_404() {
    let mut h = Harness::new();
    h.register("203", 7003);
    h.send(phone(7003), &invite("203", "9002", 7003, "r1", &sdp(6000, "0 101")));
    let r = h.take_for(phone(7003)).pop().unwrap();
    assert_eq!(status(&r), 404, "{r}");
    assert!(r.contains("park slot 9002 is empty"));
}

#[test]
fn hash_7_alone_parks_after_the_inter_digit_wait() {
    let mut h = Harness::new();
    talking(&mut h);
    digits(&mut h, Side::B, "#7");
    assert!(h.engine.parked(h.now).is_empty(), "waits for a possible 2");
    h.advance(call::park::PARK_SECOND_DIGIT_WAIT);
    let parked = h.engine.parked(h.now);
    assert_eq!((parked[0].parked.as_str(), parked[0].parker.as_str()), ("201", "202"));
}

#[test]
fn an_unretrieved_call_rings_the_parker_back_and_ends_when_unanswered() {
    let mut h = Harness::new();
    talking(&mut h);
    digits(&mut h, Side::A, "#72");
    play_done(&mut h, Side::A);
    h.take_for(phone(7001));
    h.advance(Duration::from_secs(61));
    let ring =
        h.take_for(phone(7001)).into_iter().find(|m| first_line(m).starts_with("INVITE")).expect("ringback");
    assert!(ring.contains("From: <sip:202@"), "the parker sees who waits: {ring}");
    h.send(phone(7001), &answer(&ring, 180, "parker", None, 7001));
    h.advance(call::transfer::TRANSFER_RING);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert!(
        h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("BYE ")),
        "the parked call ends cleanly"
    );
    assert!(h.engine.calls(h.now).is_empty());
    assert_eq!(h.cdrs.last().unwrap().cause, "parked call not retrieved");
}

#[test]
fn an_answered_ringback_reconnects_the_parker() {
    let mut h = Harness::new();
    talking(&mut h);
    digits(&mut h, Side::A, "#72");
    play_done(&mut h, Side::A);
    h.advance(Duration::from_secs(61));
    let ring = h.take_for(phone(7001)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    h.send(phone(7001), &answer(&ring, 200, "parker", Some(&sdp(4100, "0 101")), 7001));
    assert!(h.engine.parked(h.now).is_empty());
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
    assert_eq!(h.engine.calls(h.now)[0].from, "201");
}

// Tests for attended transfer.

#[test]
fn a_refer_with_replaces_joins_the_two_other_parties() {
    let mut h = Harness::new();
    // Call 1: 201 -> 202. Call 2: 201 -> 203 (the consultation, placed by the phone itself).
    let (_, to_tag) = talking(&mut h);
    h.send(phone(7001), &invite("201", "203", 7001, "c2", &sdp(4010, "0 8 101")));
    let inv2 = h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    h.send(phone(7003), &answer(&inv2, 200, "t3", Some(&sdp(6000, "0 101")), 7003));
    let ok2 = h.take_for(phone(7001)).into_iter().find(|m| m.starts_with("SIP/2.0 200")).unwrap();
    ack_caller(&mut h, &ok2, "c2");
    h.take_for(phone(7003));
    let refer_to = "Refer-To: <sip:203@127.0.0.1?Replaces=c2%3Bto-tag%3Dx%3Bfrom-tag%3Dfc2>\r\n";
    h.send(phone(7001), &in_dialog_from_caller("REFER", 2, &to_tag, refer_to, ""));
    let to_x = h.take_for(phone(7001));
    assert_eq!(status(&to_x[0]), 202);
    assert_eq!(sipfrag_codes(&to_x), vec!["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    assert_eq!(
        to_x.iter().filter(|m| first_line(m).starts_with("BYE ")).count(),
        2,
        "X is hung up on both calls"
    );
    assert!(h.take_for(phone(7003)).is_empty(), "the target keeps its dialog untouched");
    let calls = h.engine.calls(h.now);
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].from.as_str(), calls[0].to.as_str()), ("203", "202"));
    assert_eq!(h.cdrs.pop().unwrap().cause, "attended transfer");
}

// Tests for the consultation transfer (#9).

/// 201 presses `#9203#`; 203 answers. Returns (202's INVITE, 201's To, 203's INVITE).
fn consulting(h: &mut Harness) -> (String, String, String) {
    let (inv_b, to_tag) = talking(h);
    digits(h, Side::A, "#9203#");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::B, clips, .. } if clips == &vec![Clip::MusicOnHold])), "202 is held with music");
    let inv = h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    assert!(inv.contains("From: <sip:201@"), "the target sees the presser: {inv}");
    h.media.clear();
    h.send(phone(7003), &answer(&inv, 200, "t3", Some(&sdp(6000, "0 101")), 7003));
    assert!(first_line(&h.take_for(phone(7003))[0]).starts_with("ACK "));
    assert!(
        h.media.iter().any(|m| matches!(m, MediaCommand::JoinRoom { port: 20002, .. })),
        "202's port plays music alone: {:?}",
        h.media
    );
    let open = h.media.iter().find_map(|m| match m {
        MediaCommand::Open { a_port, b_remote, .. } => Some((*a_port, *b_remote)),
        _ => None,
    });
    assert_eq!(open, Some((20000, Some("127.0.0.1:6000".parse().unwrap()))), "201 talks to 203");
    assert!(h.take_for(phone(7002)).is_empty(), "the held phone sees no SIP at all");
    h.media.clear();
    (inv_b, to_tag, inv)
}

fn reopened(h: &Harness) -> Option<(u16, u16)> {
    h.media.iter().rev().find_map(|m| match m {
        MediaCommand::Open { a_port, b_port, .. } => Some((*a_port, *b_port)),
        _ => None,
    })
}

#[test]
fn hash_9_consults_and_hanging_up_completes_the_transfer() {
    let mut h = Harness::new();
    let (inv_b, to_tag, target_inv) = consulting(&mut h);
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert_eq!(status(&h.take_for(phone(7001))[0]), 200);
    assert!(h.take_for(phone(7002)).is_empty() && h.take_for(phone(7003)).is_empty(), "no SIP to either");
    let (a_port, b_port) = reopened(&h).unwrap();
    assert!(target_inv.contains(&format!("m=audio {a_port} ")), "203 takes side A on its own port");
    assert_eq!(b_port, 20002);
    assert_eq!(h.engine.calls(h.now)[0].from, "203");
    h.send(phone(7002), &from_callee(&inv_b, "BYE", 3, "", ""));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("BYE ")));
    let cdr = h.cdrs.pop().unwrap();
    assert_eq!(cdr.rewires[0].kind, "attended transfer");
    assert_eq!(cdr.final_view(), ("203".to_string(), "202".to_string()));
    h.advance(Duration::from_secs(60));
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
}

#[test]
fn hash_0_cancels_the_consultation_back_to_the_held_party() {
    let mut h = Harness::new();
    consulting(&mut h);
    digits(&mut h, Side::A, "#0");
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert_eq!(reopened(&h), Some((20000, 20002)), "the relay is as before");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Close { relay } if relay.0 == 1 | (1 << 60))));
    assert_eq!(h.engine.calls(h.now)[0].to, "202");
    assert_eq!(h.engine.rtp_ports_in_use().0, 2);
}

#[test]
fn the_target_hanging_up_returns_the_presser_to_the_held_party() {
    let mut h = Harness::new();
    let (_, _, target_inv) = consulting(&mut h);
    let Message::Request(r) = parsed(&target_inv) else { panic!() };
    let bye = format!(
        "BYE sip:201@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7003;branch=z9hG4bKtb\r\n\
         From: {};tag=t3\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        r.common.header("To").unwrap(),
        r.common.header("From").unwrap(),
        r.common.call_id
    );
    h.send(phone(7003), &bye);
    assert_eq!(status(&h.take_for(phone(7003))[0]), 200);
    assert_eq!(reopened(&h), Some((20000, 20002)));
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
}

#[test]
fn a_declining_target_returns_the_presser_with_a_prompt() {
    let mut h = Harness::new();
    talking(&mut h);
    digits(&mut h, Side::A, "#9203#");
    let inv = h.take_for(phone(7003)).into_iter().find(|m| first_line(m).starts_with("INVITE")).unwrap();
    h.send(phone(7003), &answer(&inv, 486, "t3", None, 7003));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::StopPlay { side: Side::B, .. })));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::A, looped: false, .. })));
    // A second consultation may follow.
    digits(&mut h, Side::A, "#9203#");
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("INVITE")));
}

#[test]
fn an_invite_with_replaces_takes_the_named_side_and_hangs_up_its_party() {
    let mut h = Harness::new();
    talking(&mut h);
    let inv = invite("203", "202", 7003, "r1", &sdp(6000, "0 101"))
        .replace("Content-Type:", "Replaces: c1;to-tag=x;from-tag=fc1\r\nContent-Type:");
    h.send(phone(7003), &inv);
    let ok = h.take_for(phone(7003)).pop().unwrap();
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")), "201 is replaced");
    let call = &h.engine.calls(h.now)[0];
    assert_eq!((call.from.as_str(), call.to.as_str()), ("203", "202"));
    h.send(
        phone(7003),
        &invite("203", "202", 7003, "r2", &sdp(6000, "0"))
            .replace("Content-Type:", "Replaces: nosuch\r\nContent-Type:"),
    );
    assert_eq!(status(&h.take_for(phone(7003)).pop().unwrap()), 481);
}

// Tests for transfers through the dial plan.

/// 201 talks to 202; 203 (7003) and 204 (7004) are registered and members of group 800.
fn talking_with_group(strategy: crate::config::RingStrategy) -> Harness {
    let mut h =
        Harness::with(vec![ext("201", true), ext("202", true), ext("203", true), ext("204", true)], 60);
    h.engine.cfg.dialplan.ring_groups.push(crate::config::RingGroupConfig {
        number: "800".into(),
        name: "Sales".into(),
        strategy,
        members: vec!["203".into(), "204".into()],
        ring_s: 15,
        timeout_s: None,
        no_answer: None,
        voicemail: false,
        pin: None,
    });
    h.register("204", 7004);
    talking(&mut h);
    h
}

fn invite_to(h: &mut Harness, port: u16) -> Option<String> {
    h.take_for(phone(port)).into_iter().find(|m| first_line(m).starts_with("INVITE"))
}

#[test]
fn hash_8_to_a_ring_all_group_rings_every_member_and_the_first_answer_wins() {
    let mut h = talking_with_group(crate::config::RingStrategy::RingAll);
    digits(&mut h, Side::A, "#8800#");
    let inv3 = invite_to(&mut h, 7003).expect("203 rings");
    let _inv4 = invite_to(&mut h, 7004).expect("204 rings at the same time");
    h.send(phone(7004), &answer(&_inv4, 200, "t4", Some(&sdp(6000, "0 101")), 7004));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("CANCEL")), "203 stops");
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")), "transferor released");
    assert_eq!(h.engine.calls(h.now)[0].from, "204");
    drop(inv3);
}

#[test]
fn a_member_of_a_ring_all_group_that_declines_leaves_the_others_ringing() {
    let mut h = talking_with_group(crate::config::RingStrategy::RingAll);
    digits(&mut h, Side::A, "#8800#");
    let inv3 = invite_to(&mut h, 7003).expect("203 rings");
    let inv4 = invite_to(&mut h, 7004).expect("204 rings");
    h.send(phone(7003), &answer(&inv3, 486, "t3", None, 7003));
    assert!(h.media.iter().all(|m| !matches!(m, MediaCommand::Play { side: Side::A, clips, .. } if clips.iter().any(|c| matches!(c, Clip::Prompt { .. })))), "no failure prompt yet");
    h.send(phone(7004), &answer(&inv4, 200, "t4", Some(&sdp(6000, "0 101")), 7004));
    assert_eq!(h.engine.calls(h.now)[0].from, "204");
}

#[test]
fn hash_8_to_a_sequential_group_rings_the_members_in_order() {
    let mut h = talking_with_group(crate::config::RingStrategy::Sequential);
    digits(&mut h, Side::A, "#8800#");
    assert!(invite_to(&mut h, 7003).is_some(), "203 first");
    assert!(invite_to(&mut h, 7004).is_none(), "204 waits its turn");
    h.advance(Duration::from_secs(16));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("CANCEL")));
    let inv4 = invite_to(&mut h, 7004).expect("then 204");
    h.send(phone(7004), &answer(&inv4, 200, "t4", Some(&sdp(6000, "0 101")), 7004));
    assert_eq!(h.engine.calls(h.now)[0].from, "204");
}

#[test]
fn a_transfer_to_an_extension_rings_every_registered_phone_of_it() {
    let mut h = Harness::new();
    talking(&mut h);
    // 203's second phone.
    h.register("203", 7013);
    digits(&mut h, Side::A, "#8203#");
    assert!(invite_to(&mut h, 7003).is_some());
    let inv = invite_to(&mut h, 7013).expect("the second phone rings too");
    h.send(phone(7013), &answer(&inv, 200, "t13", Some(&sdp(6000, "0 101")), 7013));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("CANCEL")));
    assert_eq!(h.engine.calls(h.now)[0].from, "203");
}
