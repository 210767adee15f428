//! Virtual-clock tests of voicemail in the engine: which calls reach a mailbox, and the caller's
//! flow driven through media commands and store operations. A child of `engine/tests.rs`.

use super::*;
use crate::apps::voicemail::mailbox::{BoxNumber, Counts};
use crate::config::{DialplanConfig, ExtensionFeatures};
use crate::media::dtmf::{DigitEvent, DtmfSource};
use crate::media::{Clip, MediaEvent, RelayId, Side};
use std::path::PathBuf;

fn harness(features: &[(&str, ExtensionFeatures)]) -> Harness {
    let exts = ["201", "202", "203"].iter().map(|n| ext(n, true)).collect::<Vec<_>>();
    let now = Instant::now();
    let cfg = EngineConfig {
        sip_port: BOX_PORT,
        ring_timeout: Duration::from_secs(60),
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        dialplan: DialplanConfig {
            ring_groups: vec![],
            extensions: features.iter().map(|(n, f)| (n.to_string(), f.clone())).collect(),
        },
        ..EngineConfig::for_tests(now)
    };
    Harness { engine: Engine::new(cfg, &exts), now, sent: vec![], media: vec![], cdrs: vec![], vm: vec![] }
}

fn vm_on() -> ExtensionFeatures {
    ExtensionFeatures { voicemail: true, forward_no_answer_s: 10, ..ExtensionFeatures::default() }
}

fn port_of(ext: &str) -> u16 {
    7000 + ext[1..].parse::<u16>().unwrap()
}

fn dial(h: &mut Harness, from: &str, to: &str, call: &str) -> Vec<String> {
    let port = port_of(from);
    h.send(phone(port), &invite(from, to, port, call, &sdp(4000 + port, "0 8 101")));
    h.take_for(phone(port))
}

fn ok_of(msgs: &[String]) -> Option<&String> {
    msgs.iter().find(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE"))
}

fn in_dialog(h: &mut Harness, method: &str, ok: &str, from: &str, call: &str, cseq: u32) {
    let to = ok.split("\r\nTo: ").nth(1).unwrap().lines().next().unwrap();
    let port = port_of(from);
    let msg = format!(
        "{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{call}\r\n\
         From: <sip:{from}@127.0.0.1>;tag=f{call}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\n\r\n"
    );
    h.send(phone(port), &msg);
}

/// The prompt ids of the last `Play` to the caller.
fn last_play(h: &Harness) -> Vec<String> {
    let clips = h
        .media
        .iter()
        .rev()
        .find_map(|m| match m {
            MediaCommand::Play { side: Side::A, clips, .. } => Some(clips.clone()),
            _ => None,
        })
        .unwrap_or_default();
    clips
        .into_iter()
        .filter_map(|c| match c {
            Clip::Prompt { id, .. } => Some(id),
            Clip::File(p) => Some(format!("file:{}", p.display())),
            _ => None,
        })
        .collect()
}

fn play_done(h: &mut Harness, id: u64) {
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(id), side: Side::A });
    h.drain();
}

fn key(h: &mut Harness, id: u64, digit: char) {
    let event = DigitEvent { digit, duration_ms: 100, source: DtmfSource::Rfc4733 };
    h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(id), side: Side::A, event });
    h.drain();
}

fn recorded(h: &mut Harness, id: u64, ms: u64) {
    let bytes = crate::media::audio::wav::G711_HEADER_BYTES as u64 + ms * 8;
    h.engine.handle_media_event(h.now, MediaEvent::Recorded { relay: RelayId(id), path: "x".into(), bytes });
    h.drain();
}

/// Plays the greeting and the beep; returns the take path the "store" handed out.
fn to_recording(h: &mut Harness, id: u64) -> PathBuf {
    assert_eq!(last_play(h), ["vm.person_unavailable", "vm.leave_message"]);
    play_done(h, id);
    assert_eq!(last_play(h), ["beep"]);
    play_done(h, id);
    let Some(VoicemailOp::BeginMessage { call, box_no, caller, .. }) = h.vm.pop() else {
        panic!("no BeginMessage: {:?}", h.vm)
    };
    assert_eq!((call, box_no.as_str(), caller.as_str()), (id, "202", "201"));
    let path = PathBuf::from(format!("/data/voicemail/202/take-{id}.wav.part"));
    h.engine.voicemail_take_ready(h.now, id, Some(path.clone()));
    h.drain();
    let want = path.to_string_lossy().into_owned();
    assert!(
        h.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Record { relay, path } if relay.0 == id && *path == want)),
        "the recorder writes the take: {:?}",
        h.media
    );
    path
}

fn call_id(h: &Harness) -> u64 {
    h.engine.calls(h.now).first().expect("a call").id
}

#[test]
fn an_unanswered_call_goes_to_the_box_after_the_ring_time_and_leaves_a_message() {
    let mut h = harness(&[("202", vm_on())]);
    h.register("201", 7001);
    h.register("202", 7002);
    dial(&mut h, "201", "202", "v1");
    let inv = h.take_for(phone(7002)).pop().expect("202 rings first");
    h.send(phone(7002), &answer(&inv, 180, "r", None, 7002));
    h.advance(Duration::from_secs(10));
    assert!(
        h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("CANCEL ")),
        "the phone stops ringing"
    );
    let got = h.take_for(phone(7001));
    let ok = ok_of(&got).expect("the box answers").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "v1", 1);
    let id = call_id(&h);
    to_recording(&mut h, id);
    h.advance(Duration::from_secs(3));
    key(&mut h, id, '#');
    assert!(matches!(h.media.last(), Some(MediaCommand::StopRecord { .. })), "{:?}", h.media.last());
    recorded(&mut h, id, 3000);
    assert!(last_play(&h).contains(&"menu.to_save".to_string()), "the review menu: {:?}", last_play(&h));
    key(&mut h, id, '2');
    assert_eq!(last_play(&h), [format!("file:/data/voicemail/202/take-{id}.wav.part")], "listen");
    key(&mut h, id, '0');
    assert_eq!(h.vm.pop(), Some(VoicemailOp::SaveMessage { call: id, duration_ms: 3000 }));
    assert_eq!(last_play(&h), ["vm.message_saved", "common.goodbye"]);
    play_done(&mut h, id);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")), "the box hangs up");
    assert!(h.engine.calls(h.now).is_empty());
    // The daemon reports the new counts; the console shows them.
    let b = BoxNumber::parse("202").unwrap();
    h.engine.set_voicemail_counts(h.now, b.clone(), Counts { new: 1, old: 0, work: 0 });
    let boxes = h.engine.voicemail_boxes();
    assert_eq!(boxes.len(), 3, "one box per extension: {boxes:?}");
    assert!(boxes.contains(&(b, Counts { new: 1, old: 0, work: 0 })));
}

#[test]
fn busy_and_unregistered_extensions_with_voicemail_answer_from_the_box() {
    let mut h = harness(&[("202", vm_on()), ("203", vm_on())]);
    h.register("201", 7001);
    h.register("202", 7002);
    dial(&mut h, "201", "202", "v2");
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 486, "t", None, 7002));
    assert!(ok_of(&h.take_for(phone(7001))).is_some(), "busy: the box answers");
    assert_eq!(last_play(&h), ["vm.person_unavailable", "vm.leave_message"]);
    // 203 has no phone registered: answered at once.
    let got = dial(&mut h, "201", "203", "v3");
    assert!(ok_of(&got).is_some(), "unregistered: the box answers at once");
}

#[test]
fn hanging_up_while_recording_keeps_a_long_enough_message_and_drops_a_short_one() {
    let mut h = harness(&[("202", vm_on())]);
    h.register("201", 7001);
    let ok = ok_of(&dial(&mut h, "201", "202", "v4")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "v4", 1);
    let id = call_id(&h);
    to_recording(&mut h, id);
    h.advance(Duration::from_secs(2));
    in_dialog(&mut h, "BYE", &ok, "201", "v4", 2);
    assert!(matches!(
        h.media.iter().rev().nth(1),
        Some(MediaCommand::StopRecord { .. }) | Some(MediaCommand::Close { .. })
    ));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::StopRecord { .. })));
    recorded(&mut h, id, 2000);
    assert_eq!(h.vm.pop(), Some(VoicemailOp::SaveMessage { call: id, duration_ms: 2000 }));

    let ok = ok_of(&dial(&mut h, "201", "202", "v5")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "v5", 1);
    let id = call_id(&h);
    to_recording(&mut h, id);
    in_dialog(&mut h, "BYE", &ok, "201", "v5", 2);
    recorded(&mut h, id, 400);
    assert_eq!(h.vm.pop(), Some(VoicemailOp::DiscardTake { call: id }));
    // A recorder that never reports: the flow settles on its own after the grace time.
    h.advance(Duration::from_secs(10));
    assert!(h.vm.is_empty());
}

#[test]
fn a_full_mailbox_says_so_and_stores_nothing() {
    let mut h = harness(&[("202", vm_on())]);
    h.register("201", 7001);
    let full = crate::apps::voicemail::mailbox::DEFAULT_MAX_UNREAD;
    h.engine.set_voicemail_counts(
        h.now,
        BoxNumber::parse("202").unwrap(),
        Counts { new: full, old: 0, work: 0 },
    );
    let ok = ok_of(&dial(&mut h, "201", "202", "v6")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "v6", 1);
    let id = call_id(&h);
    assert_eq!(last_play(&h), ["vm.mailbox_full", "common.goodbye"]);
    play_done(&mut h, id);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.vm.is_empty(), "nothing recorded: {:?}", h.vm);
}

#[test]
fn a_store_that_cannot_start_a_message_ends_the_call_politely() {
    let mut h = harness(&[("202", vm_on())]);
    h.register("201", 7001);
    let ok = ok_of(&dial(&mut h, "201", "202", "v7")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "v7", 1);
    let id = call_id(&h);
    play_done(&mut h, id);
    play_done(&mut h, id);
    assert!(matches!(h.vm.pop(), Some(VoicemailOp::BeginMessage { .. })));
    h.engine.voicemail_take_ready(h.now, id, None);
    h.drain();
    assert_eq!(last_play(&h), ["common.sorry_error", "common.goodbye"]);
    play_done(&mut h, id);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
}

#[test]
fn an_extension_without_voicemail_still_gets_480_when_unregistered() {
    let mut h = harness(&[]);
    h.register("201", 7001);
    let got = dial(&mut h, "201", "202", "v8");
    assert!(got.iter().any(|m| status(m) == 480), "{got:?}");
    assert!(h.vm.is_empty());
}

// The owner menu (`*92`).

fn message(id: u64) -> (crate::apps::voicemail::mailbox::MessageMeta, PathBuf) {
    use crate::apps::voicemail::mailbox::{Folder, MessageId, MessageMeta};
    let meta = MessageMeta {
        id: MessageId(id),
        box_no: BoxNumber::parse("202").unwrap(),
        caller: "201".into(),
        caller_name: String::new(),
        received_unix_ms: 1_700_000_000_000,
        duration_ms: 3000,
        folder: Folder::New,
        file: format!("vmail_{id}.wav"),
    };
    (meta, PathBuf::from(format!("/data/voicemail/202/vmail_{id}.wav")))
}

fn keys(h: &mut Harness, id: u64, digits: &str) {
    for d in digits.chars() {
        key(h, id, d);
    }
}

#[test]
fn star_92_asks_for_the_pin_loads_the_box_and_plays_a_message_with_its_header() {
    let pin = ExtensionFeatures { pin: Some("1234".into()), ..ExtensionFeatures::default() };
    let mut h = harness(&[("202", pin)]);
    h.register("202", 7002);
    let ok = ok_of(&dial(&mut h, "202", "*92", "o1")).expect("the box answers").clone();
    in_dialog(&mut h, "ACK", &ok, "202", "o1", 1);
    let id = call_id(&h);
    assert_eq!(last_play(&h), ["vm.enter_password"]);
    // A wrong PIN first.
    keys(&mut h, id, "9999#");
    let Some(VoicemailOp::LoadBox { call, box_no }) = h.vm.pop() else { panic!("{:?}", h.vm) };
    assert_eq!((call, box_no.as_str()), (id, "202"));
    h.engine.voicemail_box_loaded(h.now, id, vec![message(7)]);
    h.drain();
    assert_eq!(last_play(&h), ["vm.login_incorrect"]);
    play_done(&mut h, id);
    keys(&mut h, id, "1234#");
    assert!(matches!(h.vm.pop(), Some(VoicemailOp::LoadBox { .. })));
    h.engine.voicemail_box_loaded(h.now, id, vec![message(7)]);
    h.drain();
    let menu = last_play(&h);
    assert!(menu.iter().any(|p| p.starts_with("vm.new_message")), "you have 1 new message: {menu:?}");
    key(&mut h, id, '1');
    let played = last_play(&h);
    assert_eq!(played.last().map(String::as_str), Some("file:/data/voicemail/202/vmail_7.wav"), "{played:?}");
    assert!(played.len() > 3, "a header (received, date, time, caller) before the audio: {played:?}");
}

#[test]
fn star_92_with_a_box_number_opens_that_box_and_an_extension_without_pin_cannot_log_in() {
    let mut h = harness(&[]);
    h.register("201", 7001);
    let ok = ok_of(&dial(&mut h, "201", "*92202", "o2")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "o2", 1);
    let id = call_id(&h);
    assert_eq!(last_play(&h), ["vm.enter_password"]);
    keys(&mut h, id, "1234#");
    let Some(VoicemailOp::LoadBox { box_no, .. }) = h.vm.pop() else { panic!("{:?}", h.vm) };
    assert_eq!(box_no.as_str(), "202");
    h.engine.voicemail_box_loaded(h.now, id, vec![]);
    h.drain();
    assert_eq!(last_play(&h), ["vm.login_incorrect"], "202 has no PIN: phone access is off");
}

// Message waiting (SUBSCRIBE / NOTIFY).

fn subscribe(from: &str, to: &str, event: &str, expires: u32, call: &str, to_tag: &str) -> String {
    let port = port_of(from);
    format!(
        "SUBSCRIBE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{call}{expires}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@127.0.0.1>;tag=s{call}\r\nTo: <sip:{to}@127.0.0.1>{to_tag}\r\n\
         Call-ID: {call}\r\nCSeq: {} SUBSCRIBE\r\nContact: <sip:{from}@127.0.0.1:{port}>\r\nEvent: {event}\r\n\
         Expires: {expires}\r\nAccept: application/simple-message-summary\r\n\r\n",
        if to_tag.is_empty() { 1 } else { 2 }
    )
}

fn notifies(msgs: &[String]) -> Vec<&String> {
    msgs.iter().filter(|m| first_line(m).starts_with("NOTIFY ")).collect()
}

#[test]
fn a_message_summary_subscription_is_notified_now_and_on_every_count_change() {
    let mut h = harness(&[]);
    h.register("201", 7001);
    h.send(phone(7001), &subscribe("201", "201", "message-summary", 3600, "m1", ""));
    let got = h.take_for(phone(7001));
    let ok = got.iter().find(|m| m.starts_with("SIP/2.0 200")).expect("200 to the SUBSCRIBE");
    assert!(ok.contains("Expires: 3600"), "{ok}");
    let n = notifies(&got);
    assert_eq!(n.len(), 1, "the immediate NOTIFY: {got:?}");
    assert!(
        n[0].contains("Event: message-summary") && n[0].contains("Subscription-State: active"),
        "{}",
        n[0]
    );
    assert!(n[0].contains("Messages-Waiting: no") && n[0].contains("Voice-Message: 0/0 (0/0)"), "{}", n[0]);
    assert!(n[0].contains("Content-Type: application/simple-message-summary"), "{}", n[0]);
    // A message arrives.
    let b = BoxNumber::parse("201").unwrap();
    h.engine.set_voicemail_counts(h.now, b.clone(), Counts { new: 1, old: 2, work: 0 });
    h.drain();
    let got = h.take_for(phone(7001));
    let n = notifies(&got);
    assert_eq!(n.len(), 1, "{got:?}");
    assert!(n[0].contains("Messages-Waiting: yes") && n[0].contains("Voice-Message: 1/2 (0/0)"), "{}", n[0]);
    assert!(n[0].contains("CSeq: 2 NOTIFY"), "{}", n[0]);
    // The same counts again: nothing.
    h.engine.set_voicemail_counts(h.now, b, Counts { new: 1, old: 2, work: 0 });
    h.drain();
    assert!(notifies(&h.take_for(phone(7001))).is_empty());
    // The subscription runs out: a final NOTIFY.
    h.advance(Duration::from_secs(3601));
    let got = h.take_for(phone(7001));
    assert!(
        notifies(&got).iter().any(|m| m.contains("Subscription-State: terminated;reason=timeout")),
        "{got:?}"
    );
}

#[test]
fn subscriptions_to_other_boxes_other_packages_or_too_briefly_are_refused() {
    let mut h = harness(&[]);
    h.register("201", 7001);
    h.send(phone(7001), &subscribe("201", "202", "message-summary", 3600, "m2", ""));
    assert_eq!(statuses_of(&h.take_for(phone(7001))), [403]);
    h.send(phone(7001), &subscribe("201", "201", "presence", 3600, "m3", ""));
    assert_eq!(statuses_of(&h.take_for(phone(7001))), [489]);
    h.send(phone(7001), &subscribe("201", "201", "message-summary", 10, "m4", ""));
    let got = h.take_for(phone(7001));
    assert_eq!(statuses_of(&got), [423]);
    assert!(got[0].contains("Min-Expires: 60"), "{}", got[0]);
}

fn statuses_of(msgs: &[String]) -> Vec<u16> {
    msgs.iter().filter(|m| m.starts_with("SIP/2.0")).map(|m| status(m)).collect()
}

#[test]
fn the_owner_records_a_greeting_and_the_next_caller_hears_it() {
    use crate::apps::voicemail::mailbox::GreetingKind;
    let pin = ExtensionFeatures { pin: Some("1234".into()), voicemail: true, ..ExtensionFeatures::default() };
    let mut h = harness(&[("202", pin)]);
    h.register("202", 7002);
    h.register("201", 7001);
    let ok = ok_of(&dial(&mut h, "202", "*92", "g1")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "202", "g1", 1);
    let id = call_id(&h);
    keys(&mut h, id, "1234#");
    assert!(matches!(h.vm.pop(), Some(VoicemailOp::LoadBox { .. })));
    h.engine.voicemail_box_loaded(h.now, id, vec![]);
    h.drain();
    keys(&mut h, id, "00");
    assert_eq!(last_play(&h), ["vm.greeting_after_tone", "beep"]);
    play_done(&mut h, id);
    let Some(VoicemailOp::BeginGreeting { call, box_no, kind }) = h.vm.pop() else { panic!("{:?}", h.vm) };
    assert_eq!((call, box_no.as_str(), kind), (id, "202", GreetingKind::Default));
    let part = PathBuf::from("/data/voicemail/202/greeting_default.wav.part");
    h.engine.voicemail_take_ready(h.now, id, Some(part));
    h.drain();
    assert!(matches!(h.media.last(), Some(MediaCommand::Record { .. })));
    h.advance(Duration::from_secs(3));
    key(&mut h, id, '#');
    assert!(matches!(h.media.last(), Some(MediaCommand::StopRecord { .. })));
    recorded(&mut h, id, 3000);
    assert_eq!(h.vm.pop(), Some(VoicemailOp::SaveGreeting { call: id }));
    assert_eq!(last_play(&h).first().map(String::as_str), Some("vm.greeting_saved"));
    in_dialog(&mut h, "BYE", &ok, "202", "g1", 2);
    // The daemon stored it and reports the box's greetings; a caller hears the recording.
    let file = PathBuf::from("/data/voicemail/202/greeting_default.wav");
    h.engine.set_voicemail_greetings(BoxNumber::parse("202").unwrap(), vec![(GreetingKind::Default, file)]);
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(id), side: Side::A });
    h.drain();
    // 202 is in no call now but its phone does not answer: after the ring time, the box.
    dial(&mut h, "201", "202", "g2");
    let inv = h.take_for(phone(7002)).pop().expect("202 rings");
    h.send(phone(7002), &answer(&inv, 486, "b", None, 7002));
    assert_eq!(last_play(&h), ["file:/data/voicemail/202/greeting_default.wav"]);
}

// Greetings by status, configured limits, unsolicited MWI, group boxes, whitelists.

fn all_greetings(h: &mut Harness, box_no: &str) {
    use crate::apps::voicemail::mailbox::GreetingKind;
    let files = GreetingKind::ALL
        .into_iter()
        .map(|k| (k, PathBuf::from(format!("/data/voicemail/{box_no}/{}", k.file_name()))))
        .collect();
    h.engine.set_voicemail_greetings(BoxNumber::parse(box_no).unwrap(), files);
}

#[test]
fn the_greeting_follows_why_the_call_came_busy_dnd_or_no_answer() {
    let dnd = ExtensionFeatures { dnd: true, ..vm_on() };
    let mut h = harness(&[("202", vm_on()), ("203", dnd)]);
    all_greetings(&mut h, "202");
    all_greetings(&mut h, "203");
    h.register("201", 7001);
    h.register("202", 7002);
    // 202's phone is busy: the busy greeting.
    dial(&mut h, "201", "202", "s1");
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 486, "t", None, 7002));
    assert_eq!(last_play(&h), ["file:/data/voicemail/202/greeting_busy.wav"]);
    // 203 is in do-not-disturb: the DND greeting.
    dial(&mut h, "201", "203", "s2");
    assert_eq!(last_play(&h), ["file:/data/voicemail/203/greeting_dnd.wav"]);
    // 202 does not answer in time: available.
    dial(&mut h, "201", "202", "s3");
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 180, "r3", None, 7002));
    h.advance(Duration::from_secs(10));
    assert_eq!(last_play(&h), ["file:/data/voicemail/202/greeting_available.wav"]);
}

#[test]
fn configured_limits_fill_a_one_message_box_and_cut_a_long_message() {
    use crate::apps::voicemail::mailbox::Limits;
    let mut h = harness(&[("202", vm_on())]);
    h.engine.set_voicemail_policy(Limits::new(1, 2).unwrap(), vec![]);
    h.register("201", 7001);
    let ok = ok_of(&dial(&mut h, "201", "202", "l1")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "l1", 1);
    let id = call_id(&h);
    to_recording(&mut h, id);
    h.advance(Duration::from_secs(2));
    assert!(
        matches!(h.media.last(), Some(MediaCommand::StopRecord { .. })),
        "2 s is the limit: {:?}",
        h.media.last()
    );
    recorded(&mut h, id, 2000);
    assert_eq!(h.vm.pop(), Some(VoicemailOp::SaveMessage { call: id, duration_ms: 2000 }));
    assert_eq!(last_play(&h), ["vm.message_saved", "common.goodbye"]);
    h.engine.set_voicemail_counts(
        h.now,
        BoxNumber::parse("202").unwrap(),
        Counts { new: 1, old: 0, work: 0 },
    );
    // One unread message fills it.
    let ok = ok_of(&dial(&mut h, "201", "202", "l2")).expect("answered").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "l2", 1);
    assert_eq!(last_play(&h), ["vm.mailbox_full", "common.goodbye"]);
}

#[test]
fn phones_of_a_box_in_use_get_unsolicited_notifies_on_register_and_on_change() {
    let mut h = harness(&[("202", vm_on())]);
    h.register("202", 7002);
    let got = h.take_for(phone(7002));
    let n = notifies(&got);
    assert_eq!(n.len(), 1, "a NOTIFY after the REGISTER: {got:?}");
    assert!(n[0].starts_with("NOTIFY sip:202@127.0.0.1:7002 SIP/2.0"), "{}", n[0]);
    assert!(n[0].contains("Event: message-summary") && n[0].contains("Voice-Message: 0/0 (0/0)"), "{}", n[0]);
    assert!(!n[0].contains("\r\nTo: <sip:202@127.0.0.1>;tag="), "out of dialog: {}", n[0]);
    // A refresh from the same contact is not a new phone.
    h.register("202", 7002);
    assert!(notifies(&h.take_for(phone(7002))).is_empty());
    // A count change.
    h.engine.set_voicemail_counts(
        h.now,
        BoxNumber::parse("202").unwrap(),
        Counts { new: 2, old: 1, work: 1 },
    );
    h.drain();
    let got = h.take_for(phone(7002));
    let n = notifies(&got);
    assert_eq!(n.len(), 1, "{got:?}");
    assert!(n[0].contains("Messages-Waiting: yes") && n[0].contains("Voice-Message: 2/2 (0/0)"), "{}", n[0]);
    // 201 has no voicemail and no messages: left alone.
    h.register("201", 7001);
    assert!(notifies(&h.take_for(phone(7001))).is_empty());
}

fn group_harness(
    features: &[(&str, ExtensionFeatures)],
    rules: Vec<crate::notify::chat::ChatRule>,
) -> Harness {
    let mut h = harness(features);
    let g = crate::config::RingGroupConfig {
        number: "800".into(),
        name: "Sales".into(),
        strategy: crate::config::RingStrategy::RingAll,
        members: vec!["202".into(), "203".into()],
        ring_s: 5,
        timeout_s: None,
        no_answer: None,
        voicemail: true,
        pin: Some("8000".into()),
    };
    let exts = ["201", "202", "203"].iter().map(|n| ext(n, true)).collect::<Vec<_>>();
    let cfg = EngineConfig {
        sip_port: BOX_PORT,
        ring_timeout: Duration::from_secs(60),
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        dialplan: DialplanConfig {
            ring_groups: vec![g],
            extensions: features.iter().map(|(n, f)| (n.to_string(), f.clone())).collect(),
        },
        ..EngineConfig::for_tests(h.now)
    };
    h.engine = Engine::new(cfg, &exts);
    h.engine.set_voicemail_policy(Default::default(), rules);
    h
}

#[test]
fn an_unanswered_group_with_voicemail_reaches_its_own_box_and_lights_every_member() {
    let mut h = group_harness(&[], vec![]);
    h.register("201", 7001);
    h.register("202", 7002);
    h.register("203", 7003);
    for p in [7002, 7003] {
        assert_eq!(notifies(&h.take_for(phone(p))).len(), 1, "members hear of the group box at REGISTER");
    }
    assert!(notifies(&h.take_for(phone(7001))).is_empty());
    assert_eq!(
        h.engine.box_owner("800"),
        Some(MailboxOwner::Group { members: vec!["202".into(), "203".into()] })
    );
    dial(&mut h, "201", "800", "gv1");
    h.advance(Duration::from_secs(5));
    let ok = ok_of(&h.take_for(phone(7001))).expect("the box answers for the group").clone();
    in_dialog(&mut h, "ACK", &ok, "201", "gv1", 1);
    let id = call_id(&h);
    play_done(&mut h, id);
    play_done(&mut h, id);
    let Some(VoicemailOp::BeginMessage { box_no, .. }) = h.vm.pop() else { panic!("{:?}", h.vm) };
    assert_eq!(box_no.as_str(), "800");
    h.engine.set_voicemail_counts(h.now, box_no, Counts { new: 1, old: 0, work: 0 });
    h.drain();
    for p in [7002, 7003] {
        let got = h.take_for(phone(p));
        let n = notifies(&got);
        assert!(
            n.iter().any(|m| m.contains("Message-Account: sip:800@") && m.contains("Voice-Message: 1/0")),
            "{got:?}"
        );
    }
}

#[test]
fn a_whitelisted_caller_rings_through_a_dnd_extension_then_reaches_the_box() {
    let rule = crate::notify::chat::ChatRule {
        box_no: "202".into(),
        targets: vec![],
        whitelist: vec!["201".into()],
    };
    let dnd = ExtensionFeatures { dnd: true, ..vm_on() };
    let mut h = group_harness(&[("202", dnd)], vec![rule]);
    h.register("201", 7001);
    h.register("202", 7002);
    h.register("203", 7003);
    h.take_for(phone(7002));
    // 203 is not on the list: the box answers at once.
    assert!(ok_of(&dial(&mut h, "203", "202", "w1")).is_some());
    assert!(h.take_for(phone(7002)).iter().all(|m| !first_line(m).starts_with("INVITE ")));
    // 201 is: 202's phone rings despite DND, for its no-answer time, then the box answers.
    let got = dial(&mut h, "201", "202", "w2");
    assert!(ok_of(&got).is_none(), "not answered by the box yet: {got:?}");
    let inv = h.take_for(phone(7002)).pop().expect("202 rings");
    assert!(first_line(&inv).starts_with("INVITE "), "{inv}");
    h.send(phone(7002), &answer(&inv, 180, "wr", None, 7002));
    h.advance(Duration::from_secs(10));
    assert!(ok_of(&h.take_for(phone(7001))).is_some(), "after the ring time: the box");
}
