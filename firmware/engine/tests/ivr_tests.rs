//! DID calls into IVR menus with a virtual clock (issue 6): the provider is a string-speaking
//! peer on port 5090, as in `trunkcalls_tests.rs`.

use super::*;
use crate::apps::ivr::{parse_ivrs, NameKind};
use crate::apps::timerules::parse_rules;
use crate::config::TrunkCallsConfig;
use crate::media::dtmf::{DigitEvent, DtmfSource};
use crate::media::{MediaEvent, RelayId, Side};

const PROVIDER: u16 = 5090;
const DID: &str = "0312347000";

fn provider() -> Peer {
    phone(PROVIDER)
}

const MENUS: &str = r#"
[[ivr]]
name = "main"
number = "7000"
prompt = "common.enter_extension"
keys = { "1" = { extension = "201" }, "2" = { voicemail = "202" }, "3" = { announcement = "common.goodbye" } }
timeout_seconds = 5
retries = 1
default = { extension = "202" }
"#;

fn harness() -> Harness {
    let now = Instant::now();
    let time_rules = parse_rules(&format!("[[did]]\nnumber = \"{DID}\"\ndefault = {{ ivr = \"main\" }}\n"))
        .unwrap_or_else(|e| panic!("rules: {e}"));
    let exists = |k: NameKind, n: &str| match k {
        NameKind::Prompt | NameKind::Announcement => {
            crate::media::prompts::exists(n, crate::config::MediaConfig::default().language)
        }
        _ => ["201", "202"].contains(&n),
    };
    let ivrs = parse_ivrs(MENUS, time_rules.offset(), &exists).unwrap_or_else(|e| panic!("menus: {e}"));
    let trunk = crate::apps::trunk::TrunkConfig {
        name: "prov".into(),
        registrar: format!("127.0.0.1:{PROVIDER}").parse().unwrap(),
        domain: "provider.example".into(),
        username: String::new(),
        auth_username: None,
        password: String::new(),
        expires_s: 600,
        transport: Transport::Udp,
        mode: crate::apps::trunk::TrunkMode::IpAuthenticated,
        keepalive_s: 30,
    };
    let cfg = EngineConfig {
        trunks: vec![trunk],
        trunk_calls: TrunkCallsConfig { time_rules, ..Default::default() },
        ivrs: std::sync::Arc::new(ivrs),
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        ..EngineConfig::for_tests(now)
    };
    let exts = vec![ext("201", true), ext("202", true)];
    Harness { engine: Engine::new(cfg, &exts), now, sent: vec![], media: vec![], cdrs: vec![], vm: vec![] }
}

fn provider_invite(call: &str) -> String {
    format!(
        "INVITE sip:{DID}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKp{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:0611112222@provider.example>;tag=p{call}\r\nTo: <sip:{DID}@provider.example>\r\n\
         Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:0611112222@127.0.0.1:{PROVIDER}>\r\n\
         Content-Type: application/sdp\r\n\r\n{}",
        sdp(4000, "0 8 101")
    )
}

/// The caller is answered by the box and hears the menu prompt.
fn call_the_menu(h: &mut Harness, call: &str) {
    h.send(provider(), &provider_invite(call));
    let out = h.take_for(provider());
    assert!(out.iter().any(|m| status(m) == 200), "{out:?}");
    assert!(prompts_played(h).contains(&"common.enter_extension".to_string()), "{:?}", h.media);
    h.media.clear();
}

fn press(h: &mut Harness, d: char) {
    let event = DigitEvent { digit: d, duration_ms: 100, source: DtmfSource::Rfc4733 };
    h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(1), side: Side::A, event });
    h.drain();
}

fn prompt_ends(h: &mut Harness) {
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(1), side: Side::A });
    h.drain();
}

#[test]
fn key_1_in_the_did_menu_rings_the_extension_and_bridges_the_answered_caller() {
    let mut h = harness();
    h.register("201", 7001);
    call_the_menu(&mut h, "iv1");
    press(&mut h, '1');
    let inv = h.take_for(phone(7001)).pop().expect("201 rings");
    assert!(inv.starts_with("INVITE sip:201@127.0.0.1:7001"), "{inv}");
    // The caller waits with music, not a second answer.
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::A, looped: true, .. })));
    h.send(phone(7001), &answer(&inv, 200, "ext", Some(&sdp(5000, "0 101")), 7001));
    let to_caller = h.take_for(provider());
    assert!(to_caller.iter().all(|m| status(m) != 200), "no second 200: {to_caller:?}");
    // The relay is re-opened with the phone on side B.
    assert!(
        h.media.iter().any(|m| matches!(m, MediaCommand::Open { b_remote: Some(_), .. })),
        "{:?}",
        h.media
    );
    let shown = h.engine.calls(h.now);
    assert_eq!(shown.len(), 1, "{shown:?}");
    // The extension hangs up: the caller gets a BYE and the CDR keeps the DID.
    let bye = format!(
        "BYE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKb1\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        header_of(&answer(&inv, 200, "ext", None, 7001), "To"),
        header_of(&inv, "From"),
        header_of(&inv, "Call-ID"),
    );
    h.send(phone(7001), &bye);
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    let cdr = h.cdrs.pop().expect("a CDR");
    assert_eq!(cdr.did.as_deref(), Some(DID));
    assert_eq!(cdr.rewires.first().map(|r| (r.kind.as_str(), r.by.as_str())), Some(("ivr", "201")));
}

fn header_of(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| {
            l.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string())
        })
        .unwrap_or_default()
}

#[test]
fn an_invalid_key_plays_the_invalid_prompt_and_the_menu_again() {
    let mut h = harness();
    h.register("201", 7001);
    call_the_menu(&mut h, "iv2");
    press(&mut h, '9');
    let played = prompts_played(&h);
    assert_eq!(played, vec!["common.invalid_entry".to_string(), "common.enter_extension".to_string()]);
    assert!(h.take_for(phone(7001)).is_empty());
    // The retry works.
    press(&mut h, '1');
    assert!(h.take_for(phone(7001)).pop().expect("201 rings").starts_with("INVITE sip:201@"));
}

#[test]
fn no_key_after_the_last_retry_sends_the_caller_to_the_default() {
    let mut h = harness();
    h.register("202", 7002);
    call_the_menu(&mut h, "iv3");
    prompt_ends(&mut h);
    h.advance(Duration::from_secs(6));
    assert!(prompts_played(&h).contains(&"common.try_again".to_string()), "{:?}", h.media);
    // retries = 1: the second silence goes to the default, extension 202.
    prompt_ends(&mut h);
    h.advance(Duration::from_secs(6));
    assert!(h.take_for(phone(7002)).pop().expect("202 rings").starts_with("INVITE sip:202@"));
}

#[test]
fn an_announcement_key_plays_it_then_hangs_up() {
    let mut h = harness();
    call_the_menu(&mut h, "iv4");
    press(&mut h, '3');
    assert!(prompts_played(&h).contains(&"common.goodbye".to_string()));
    prompt_ends(&mut h);
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
}

#[test]
fn a_voicemail_key_starts_the_mailbox_greeting_on_the_answered_call() {
    let mut h = harness();
    call_the_menu(&mut h, "iv5");
    press(&mut h, '2');
    assert!(prompts_played(&h).contains(&"vm.leave_message".to_string()), "{:?}", h.media);
}

#[test]
fn a_phone_dialling_the_menu_number_is_answered_and_key_1_rings_the_extension() {
    let mut h = harness();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7002), &invite("202", "7000", 7002, "p1", &sdp(4000, "0 101")));
    assert!(h.take_for(phone(7002)).iter().any(|m| status(m) == 200));
    assert!(prompts_played(&h).contains(&"common.enter_extension".to_string()), "{:?}", h.media);
    press(&mut h, '1');
    assert!(h.take_for(phone(7001)).pop().expect("201 rings").starts_with("INVITE sip:201@"));
}

#[test]
fn a_busy_extension_behind_a_key_ends_the_answered_call_with_a_bye() {
    let mut h = harness();
    h.register("201", 7001);
    call_the_menu(&mut h, "iv6");
    press(&mut h, '1');
    let inv = h.take_for(phone(7001)).pop().expect("201 rings");
    h.send(phone(7001), &answer(&inv, 486, "ext", None, 7001));
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn a_menu_key_to_an_unregistered_extension_ends_the_call() {
    let mut h = harness();
    call_the_menu(&mut h, "iv7");
    press(&mut h, '1');
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}
