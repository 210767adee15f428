//! Virtual-clock tests of the dial plan (issue 4): ring groups, forwarding and DND, feature
//! codes, pickup and hot desking. A child of `engine/tests.rs` (its harness and phones).

use super::*;
use crate::config::{DialplanConfig, ExtensionFeatures, RingGroupConfig, RingStrategy};
use crate::media::Side;

fn harness(dialplan: DialplanConfig) -> Harness {
    harness_with(&["201", "202", "203", "204", "205"], dialplan)
}

fn harness_with(numbers: &[&str], dialplan: DialplanConfig) -> Harness {
    let exts = numbers.iter().map(|n| ext(n, true)).collect::<Vec<_>>();
    let now = Instant::now();
    let cfg = EngineConfig {
        sip_port: BOX_PORT,
        ring_timeout: Duration::from_secs(60),
        secret: [42; 32],
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        dialplan,
        ..EngineConfig::for_tests(now)
    };
    Harness { engine: Engine::new(cfg, &exts), now, sent: vec![], media: vec![], cdrs: vec![], vm: vec![] }
}

fn group(number: &str, strategy: RingStrategy, members: &[&str], no_answer: Option<&str>) -> RingGroupConfig {
    RingGroupConfig {
        number: number.into(),
        name: format!("Group {number}"),
        strategy,
        members: members.iter().map(|m| m.to_string()).collect(),
        ring_s: 20,
        timeout_s: None,
        no_answer: no_answer.map(str::to_string),
        voicemail: false,
        pin: None,
    }
}

fn with_features(list: &[(&str, ExtensionFeatures)]) -> DialplanConfig {
    DialplanConfig {
        ring_groups: vec![],
        extensions: list.iter().map(|(n, f)| (n.to_string(), f.clone())).collect(),
    }
}

/// Port of extension 20x's phone: 7001 for 201, ...
fn port_of(ext: &str) -> u16 {
    7000 + ext[1..].parse::<u16>().unwrap()
}

fn register_all(h: &mut Harness, exts: &[&str]) {
    for e in exts {
        h.register(e, port_of(e));
    }
}

/// Sends a call from `from` to `to`; returns the caller's responses so far.
fn dial(h: &mut Harness, from: &str, to: &str, call: &str) -> Vec<String> {
    let port = port_of(from);
    h.send(phone(port), &invite(from, to, port, call, &sdp(4000 + port, "0 8 101")));
    h.take_for(phone(port))
}

fn invites_to(h: &mut Harness, ext: &str) -> Vec<String> {
    h.take_for(phone(port_of(ext))).into_iter().filter(|m| first_line(m).starts_with("INVITE ")).collect()
}

fn statuses(msgs: &[String]) -> Vec<u16> {
    msgs.iter().filter(|m| m.starts_with("SIP/2.0")).map(|m| status(m)).collect()
}

fn ack_for(ok: &str, from: &str, call: &str) -> String {
    let to = ok.split("\r\nTo: ").nth(1).unwrap().lines().next().unwrap();
    let port = port_of(from);
    format!(
        "ACK sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKack{call}\r\n\
         From: <sip:{from}@127.0.0.1>;tag=f{call}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\n\r\n"
    )
}

// Tests for ring groups.

#[test]
fn ring_all_rings_every_member_and_the_first_answer_cancels_the_others() {
    let mut h = harness(DialplanConfig {
        ring_groups: vec![group("800", RingStrategy::RingAll, &["202", "203", "204"], None)],
        ..Default::default()
    });
    register_all(&mut h, &["201", "202", "203", "204"]);
    dial(&mut h, "201", "800", "g1");
    let inv: Vec<String> =
        ["202", "203", "204"].iter().map(|e| invites_to(&mut h, e).pop().unwrap()).collect();
    for (i, e) in ["202", "203", "204"].iter().enumerate() {
        h.send(phone(port_of(e)), &answer(&inv[i], 180, &format!("t{e}"), None, port_of(e)));
    }
    h.send(phone(7003), &answer(&inv[1], 200, "t203", Some(&sdp(5000, "0 101")), 7003));
    assert!(statuses(&h.take_for(phone(7001))).contains(&200));
    for e in ["202", "204"] {
        let got = h.take_for(phone(port_of(e)));
        assert!(got.iter().any(|m| first_line(m).starts_with("CANCEL ")), "{e}: {got:?}");
    }
    assert_eq!(h.engine.calls(h.now)[0].state, "answered");
}

#[test]
fn sequential_rings_one_member_at_a_time_and_skips_the_unregistered() {
    let mut g = group("801", RingStrategy::Sequential, &["202", "205", "203"], None);
    g.ring_s = 10;
    let mut h = harness(DialplanConfig { ring_groups: vec![g], ..Default::default() });
    register_all(&mut h, &["201", "202", "203"]);
    dial(&mut h, "201", "801", "g2");
    let first = invites_to(&mut h, "202").pop().expect("202 rings first");
    assert!(invites_to(&mut h, "203").is_empty(), "one member at a time");
    h.send(phone(7002), &answer(&first, 180, "t2", None, 7002));
    h.advance(Duration::from_secs(10));
    let cancel = h.take_for(phone(7002));
    assert!(cancel.iter().any(|m| first_line(m).starts_with("CANCEL ")), "{cancel:?}");
    // 205 is not registered: skipped; 203 rings next.
    let next = invites_to(&mut h, "203").pop().expect("203 rings after 202");
    h.send(phone(7003), &answer(&next, 200, "t3", Some(&sdp(5000, "0 101")), 7003));
    assert!(statuses(&h.take_for(phone(7001))).contains(&200));
}

#[test]
fn sequential_skips_a_busy_member_and_a_decline_moves_on() {
    let g = group("801", RingStrategy::Sequential, &["202", "203", "204"], None);
    let mut h = harness(DialplanConfig { ring_groups: vec![g], ..Default::default() });
    register_all(&mut h, &["201", "202", "203", "204", "205"]);
    // 202 is on the phone with 205.
    dial(&mut h, "205", "202", "busy1");
    invites_to(&mut h, "202");
    dial(&mut h, "201", "801", "g3");
    assert!(invites_to(&mut h, "202").is_empty(), "busy 202 is skipped");
    let inv = invites_to(&mut h, "203").pop().unwrap();
    h.send(phone(7003), &answer(&inv, 486, "t3", None, 7003));
    assert!(invites_to(&mut h, "204").len() == 1, "a busy answer moves on to the next member");
}

#[test]
fn a_group_nobody_answers_goes_to_its_no_answer_destination_then_480() {
    let mut g = group("800", RingStrategy::RingAll, &["202"], Some("203"));
    g.timeout_s = Some(15);
    let mut h = harness(DialplanConfig { ring_groups: vec![g], ..Default::default() });
    register_all(&mut h, &["201", "202", "203"]);
    dial(&mut h, "201", "800", "g4");
    assert_eq!(invites_to(&mut h, "202").len(), 1);
    h.advance(Duration::from_secs(15));
    assert_eq!(invites_to(&mut h, "203").len(), 1, "no-answer destination rings");
    // The destination rings under the box-wide ring timeout (60 s).
    h.advance(Duration::from_secs(61));
    assert_eq!(statuses(&h.take_for(phone(7001))).last(), Some(&408));
    let mut h2 = harness(DialplanConfig {
        ring_groups: vec![group("800", RingStrategy::Sequential, &["202"], None)],
        ..Default::default()
    });
    register_all(&mut h2, &["201"]);
    assert_eq!(statuses(&dial(&mut h2, "201", "800", "g5")).last(), Some(&480), "nobody can answer: 480");
}

#[test]
fn a_long_sequential_hunt_is_not_mistaken_for_a_forward_loop() {
    let numbers: Vec<String> = (201..=213).map(|n| n.to_string()).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let mut g = group("801", RingStrategy::Sequential, &refs[1..12], Some("213"));
    g.ring_s = 5;
    let mut h = harness_with(&refs, DialplanConfig { ring_groups: vec![g], ..Default::default() });
    for n in &refs {
        h.register(n, 7000 + n.parse::<u16>().unwrap() - 200);
    }
    dial(&mut h, "201", "801", "long");
    for n in &refs[1..12] {
        assert_eq!(invites_to(&mut h, n).len(), 1, "{n} rings in turn");
        h.advance(Duration::from_secs(5));
    }
    assert_eq!(invites_to(&mut h, "213").len(), 1, "then the no-answer destination");
}

#[test]
fn a_caller_who_gives_up_during_a_hunt_stops_it() {
    let mut g = group("801", RingStrategy::Sequential, &["202", "203"], None);
    g.ring_s = 5;
    let mut h = harness(DialplanConfig { ring_groups: vec![g], ..Default::default() });
    register_all(&mut h, &["201", "202", "203"]);
    dial(&mut h, "201", "801", "gone");
    let inv = invites_to(&mut h, "202").pop().unwrap();
    h.send(phone(7002), &answer(&inv, 180, "t", None, 7002));
    h.send(
        phone(7001),
        "CANCEL sip:801@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKigone\r\n\
         Max-Forwards: 70\r\nFrom: <sip:201@127.0.0.1>;tag=fgone\r\nTo: <sip:801@127.0.0.1>\r\n\
         Call-ID: gone\r\nCSeq: 1 CANCEL\r\n\r\n",
    );
    assert_eq!(statuses(&h.take_for(phone(7001))), vec![180, 200, 487]);
    h.advance(Duration::from_secs(30));
    assert!(invites_to(&mut h, "203").is_empty(), "the hunt stopped with the call");
    assert!(h.engine.calls(h.now).is_empty());
}

// Tests for forwarding and do-not-disturb.

fn fwd(f: impl FnOnce(&mut ExtensionFeatures)) -> ExtensionFeatures {
    let mut x = ExtensionFeatures::default();
    f(&mut x);
    x
}

#[test]
fn forward_always_rings_the_target_instead() {
    let mut h = harness(with_features(&[("202", fwd(|f| f.forward_always = Some("203".into())))]));
    register_all(&mut h, &["201", "202", "203"]);
    dial(&mut h, "201", "202", "f1");
    assert!(invites_to(&mut h, "202").is_empty());
    assert_eq!(invites_to(&mut h, "203").len(), 1);
}

#[test]
fn forward_busy_takes_a_486_to_the_target_and_dnd_gives_486() {
    let mut h = harness(with_features(&[
        ("202", fwd(|f| f.forward_busy = Some("203".into()))),
        ("204", fwd(|f| f.dnd = true)),
    ]));
    register_all(&mut h, &["201", "202", "203", "204"]);
    dial(&mut h, "201", "202", "f2");
    let inv = invites_to(&mut h, "202").pop().unwrap();
    h.send(phone(7002), &answer(&inv, 486, "t", None, 7002));
    assert_eq!(invites_to(&mut h, "203").len(), 1, "busy forward");
    assert_eq!(statuses(&dial(&mut h, "201", "204", "f3")).last(), Some(&486), "DND");
    assert!(invites_to(&mut h, "204").is_empty());
}

#[test]
fn forward_no_answer_moves_after_its_ring_time_and_unregistered_forwards_at_once() {
    let mut h = harness(with_features(&[
        (
            "202",
            fwd(|f| {
                f.forward_no_answer = Some("203".into());
                f.forward_no_answer_s = 12;
            }),
        ),
        ("205", fwd(|f| f.forward_unregistered = Some("204".into()))),
    ]));
    register_all(&mut h, &["201", "202", "203", "204"]);
    dial(&mut h, "201", "202", "f4");
    assert_eq!(invites_to(&mut h, "202").len(), 1);
    h.advance(Duration::from_secs(11));
    assert!(invites_to(&mut h, "203").is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(invites_to(&mut h, "203").len(), 1, "no-answer forward after 12 s");
    dial(&mut h, "201", "205", "f5");
    assert_eq!(invites_to(&mut h, "204").len(), 1, "unregistered forward");
}

#[test]
fn a_forward_loop_stops_with_a_status_instead_of_ringing_forever() {
    let mut h = harness(with_features(&[
        ("202", fwd(|f| f.forward_always = Some("203".into()))),
        ("203", fwd(|f| f.forward_always = Some("202".into()))),
    ]));
    register_all(&mut h, &["201", "202", "203"]);
    let got = dial(&mut h, "201", "202", "loop");
    assert_eq!(statuses(&got).last(), Some(&480));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn an_outside_forward_target_without_an_outbound_route_fails_with_404() {
    // With a route and a trunk it goes out: see trunkcalls_tests.
    let mut h = harness(with_features(&[("202", fwd(|f| f.forward_always = Some("0312345678".into())))]));
    register_all(&mut h, &["201", "202"]);
    let got = dial(&mut h, "201", "202", "ext1");
    assert_eq!(statuses(&got).last(), Some(&404));
    assert!(h.engine.calls(h.now).is_empty());
}

// Tests for feature codes.

#[test]
fn a_feature_code_toggles_answers_with_a_prompt_hangs_up_and_is_persisted() {
    let mut h = harness(DialplanConfig::default());
    register_all(&mut h, &["201", "202", "203"]);
    let got = dial(&mut h, "202", "*72203", "k1");
    let ok = got.iter().find(|m| status(m) == 200).expect("answered");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::A, .. })));
    h.send(phone(7002), &ack_for(ok, "202", "k1"));
    h.engine.handle_media_event(
        h.now,
        crate::media::MediaEvent::PlayDone {
            relay: crate::media::RelayId(h.cdrs.len() as u64 + 1),
            side: Side::A,
        },
    );
    h.drain();
    assert!(
        h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("BYE ")),
        "hung up after the prompt"
    );
    assert_eq!(h.engine.poll_persist(), Some(("dialplan/fwd/202".into(), r#"{"always":"203"}"#.into())));
    assert_eq!(h.engine.poll_persist(), None);
    dial(&mut h, "201", "202", "k2");
    assert_eq!(invites_to(&mut h, "203").len(), 1, "the toggle took effect");
    // Off again; a bad target is refused with 484 and changes nothing.
    dial(&mut h, "202", "*73", "k3");
    assert_eq!(statuses(&dial(&mut h, "202", "*7212", "k4")).last(), Some(&484));
    let view = h.engine.forwards().into_iter().find(|f| f.extension == "202").unwrap();
    assert_eq!(view.always, None);
}

#[test]
fn dnd_codes_set_clear_and_toggle_and_a_restart_restores_them() {
    let mut h = harness(DialplanConfig::default());
    register_all(&mut h, &["201", "202"]);
    dial(&mut h, "202", "*78", "d1");
    assert!(h.engine.forwards().iter().any(|f| f.extension == "202" && f.dnd));
    dial(&mut h, "202", "*76", "d2");
    assert!(h.engine.forwards().iter().any(|f| f.extension == "202" && !f.dnd));
    dial(&mut h, "202", "*76", "d3");
    let (_, json) = std::iter::from_fn(|| h.engine.poll_persist()).last().unwrap();
    let mut fresh = harness(DialplanConfig::default());
    fresh.engine.restore_forwards("202", &json);
    fresh.register("201", 7001);
    fresh.register("202", 7002);
    assert_eq!(statuses(&dial(&mut fresh, "201", "202", "d4")).last(), Some(&486), "DND survived");
    assert_eq!(statuses(&dial(&mut h, "202", "*99", "d5")).last(), Some(&404), "unknown code");
}

// Tests for pickup.

#[test]
fn directed_pickup_connects_the_picker_and_cancels_the_ringing_phone() {
    let mut h = harness(DialplanConfig::default());
    register_all(&mut h, &["201", "202", "203"]);
    dial(&mut h, "201", "202", "p1");
    let inv = invites_to(&mut h, "202").pop().unwrap();
    h.send(phone(7002), &answer(&inv, 180, "t", None, 7002));
    h.take_for(phone(7001));
    let got = dial(&mut h, "203", "**202", "p2");
    let picker_ok = got.iter().find(|m| status(m) == 200).expect("picker answered");
    assert!(picker_ok.contains("m=audio 20002 RTP/AVP"), "picker gets the relay's B side:\n{picker_ok}");
    assert!(statuses(&h.take_for(phone(7001))).contains(&200), "caller connected");
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    h.send(phone(7003), &ack_for(picker_ok, "203", "p2"));
    let view = &h.engine.calls(h.now)[0];
    assert_eq!((view.from.as_str(), view.to.as_str()), ("201", "203"));
    // The picker hangs up: the caller gets the BYE.
    let to = picker_ok.split("\r\nTo: ").nth(1).unwrap().lines().next().unwrap();
    h.send(
        phone(7003),
        &format!(
            "BYE sip:201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7003;branch=z9hG4bKbp2\r\n\
             From: <sip:203@127.0.0.1>;tag=fp2\r\nTo: {to}\r\nCall-ID: p2\r\nCSeq: 2 BYE\r\n\r\n"
        ),
    );
    assert_eq!(statuses(&h.take_for(phone(7003))), vec![200]);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn group_pickup_takes_a_call_ringing_in_the_same_group_only() {
    let sales = |f: &mut ExtensionFeatures| f.pickup_group = Some("sales".into());
    let mut h = harness(with_features(&[("202", fwd(sales)), ("203", fwd(sales)), ("204", fwd(|_| {}))]));
    register_all(&mut h, &["201", "202", "203", "204"]);
    assert_eq!(statuses(&dial(&mut h, "203", "*8", "q0")).last(), Some(&404), "nothing rings");
    dial(&mut h, "201", "202", "q1");
    invites_to(&mut h, "202");
    assert_eq!(statuses(&dial(&mut h, "204", "*8", "q2")).last(), Some(&404), "204 has no group");
    assert!(statuses(&dial(&mut h, "203", "*8", "q3")).contains(&200));
    assert!(statuses(&h.take_for(phone(7001))).contains(&200));
}

// Tests for hot desking.

#[test]
fn hot_desk_login_rings_the_phone_presents_the_extension_and_logout_ends_it() {
    let mut h = harness(with_features(&[("204", fwd(|f| f.pin = Some("1234".into())))]));
    register_all(&mut h, &["201", "202", "203"]);
    assert_eq!(statuses(&dial(&mut h, "203", "9982049999", "h0")).last(), Some(&403), "wrong PIN");
    assert!(statuses(&dial(&mut h, "203", "9982041234", "h1")).contains(&200));
    assert_eq!(h.engine.calls(h.now)[0].to, "998204****", "the PIN is not shown");
    assert!(h.engine.registrations(h.now).iter().any(|r| r.extension == "204" && r.peer == phone(7003)));
    // Calls to 204 ring 203's phone.
    dial(&mut h, "201", "204", "h2");
    assert_eq!(invites_to(&mut h, "203").len(), 1);
    // Calls from the phone present 204.
    dial(&mut h, "203", "202", "h3");
    let inv = invites_to(&mut h, "202").pop().unwrap();
    assert!(inv.contains("From: <sip:204@"), "{inv}");
    assert!(statuses(&dial(&mut h, "203", "997", "h4")).contains(&200));
    assert!(!h.engine.registrations(h.now).iter().any(|r| r.extension == "204"));
    assert_eq!(statuses(&dial(&mut h, "201", "204", "h5")).last(), Some(&480));
}
