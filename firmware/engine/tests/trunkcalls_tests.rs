//! Calls over a trunk with a virtual clock: the provider is a string-speaking peer on port 5090.

use super::*;
use crate::apps::numbers::{ListEntry, Route};
use crate::apps::timerules::{parse_rules, TimeRules};
use crate::apps::trunk::{TrunkConfig, TrunkMode};
use crate::config::{BlockTreatment, DidOptions, ExtensionOutbound, ForwardPresent, TrunkCallsConfig};
use crate::media::{MediaEvent, RelayId, Side};

const PROVIDER: u16 = 5090;

fn provider() -> Peer {
    phone(PROVIDER)
}

fn rules(text: &str) -> TimeRules {
    parse_rules(text).unwrap_or_else(|e| panic!("rules: {e}"))
}

fn did(number: &str, max_channels: u32) -> DidOptions {
    DidOptions { number: number.into(), present: ForwardPresent::Did, max_channels, caller_id_for: vec![] }
}

/// The default configuration of these tests. The harness clock reads 2023-11-15 07:13 JST.
fn calls_config() -> TrunkCallsConfig {
    TrunkCallsConfig {
        time_rules: rules(
            r#"
[[did]]
number = "0312345678"
default = { extension = "201" }

[[did]]
number = "0312340000"
default = { extension = "202" }
[[did.rule]]
name = "office hours"
times = ["09:00-18:00"]
destination = { extension = "201" }

[[did]]
number = "0312341111"
default = { extension = "202" }
[[did.rule]]
name = "always"
times = ["00:00-24:00"]
destination = { extension = "201" }

[[did]]
number = "0312342222"
default = "hangup"

[[did]]
number = "0312343333"
default = { queue = "support" }

[[did]]
number = "0312344444"
default = { announcement = "common.not_in_service" }

[[did]]
number = "0312345555"
default = { external = "09011112222" }
"#,
        ),
        dids: vec![did("0312345678", 1)],
        routes: vec![Route { prefix: "0".into(), strip: 0, prepend: String::new(), trunk: "prov".into() }],
        block: crate::config::BlockConfig {
            entries: vec![ListEntry::parse("09099998888", None, "claims").unwrap()],
            treatment: BlockTreatment::Busy,
            announcement: "common.not_in_service".into(),
            reject_anonymous: true,
            file: None,
        },
        restrict: vec![ListEntry::parse("0990*", None, "premium").unwrap()],
        restrict_file: None,
        extensions: vec![
            ExtensionOutbound {
                number: "201".into(),
                caller_id: Some("0312345678".into()),
                external_calls: true,
            },
            ExtensionOutbound { number: "203".into(), caller_id: None, external_calls: false },
        ],
    }
}

fn trunk_config() -> TrunkConfig {
    TrunkConfig {
        name: "prov".into(),
        registrar: format!("127.0.0.1:{PROVIDER}").parse().unwrap(),
        domain: "provider.example".into(),
        username: "0312345678".into(),
        auth_username: Some("acct".into()),
        password: "trunk-pass".into(),
        expires_s: 600,
        transport: Transport::Udp,
        mode: TrunkMode::Register,
        keepalive_s: 30,
    }
}

fn harness_with(calls: TrunkCallsConfig) -> Harness {
    let now = Instant::now();
    let cfg = EngineConfig {
        trunks: vec![trunk_config()],
        trunk_calls: calls,
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        ..EngineConfig::for_tests(now)
    };
    let exts = vec![ext("201", true), ext("202", true), ext("203", true)];
    Harness { engine: Engine::new(cfg, &exts), now, sent: vec![], media: vec![], cdrs: vec![], vm: vec![] }
}

/// The box's trunk registers: its REGISTER is answered 200 by the provider.
fn register_trunk(h: &mut Harness) {
    // The first REGISTER is queued at start and goes out with the first wakeup.
    h.engine.handle_timeout(h.now);
    h.drain();
    let reg = h.take_for(provider()).pop().expect("a REGISTER to the provider");
    assert!(reg.starts_with("REGISTER "), "{reg}");
    let ok = answer(&reg, 200, "prov", None, PROVIDER).replace("\r\n\r\n", "\r\nExpires: 600\r\n\r\n");
    h.send(provider(), &ok);
    let shown = h.engine.trunk_states();
    assert!(matches!(shown[0].1, crate::apps::trunk::TrunkState::Registered { .. }), "{shown:?}");
}

/// An INVITE from the provider to `did`, from `caller` (extra headers allowed).
fn provider_invite(did: &str, caller: &str, call: &str, extra: &str) -> String {
    format!(
        "INVITE sip:{did}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKp{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{caller}@provider.example>;tag=p{call}\r\nTo: <sip:{did}@provider.example>\r\n\
         Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:{caller}@127.0.0.1:{PROVIDER}>\r\n{extra}\
         Content-Type: application/sdp\r\n\r\n{}",
        sdp(4000, "0 8 101")
    )
}

fn final_status(msgs: &[String]) -> u16 {
    msgs.iter().map(|m| status(m)).find(|c| *c >= 200).unwrap_or(0)
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| l.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

// Tests for inbound DID calls.

#[test]
fn a_did_call_rings_its_extension_without_digest_and_the_cdr_names_trunk_and_did() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    h.register("201", 7001);
    h.send(provider(), &provider_invite("0312345678", "0611112222", "in1", ""));
    assert_eq!(status(&h.take_for(provider())[0]), 100);
    let inv = h.take_for(phone(7001)).pop().expect("the extension rings");
    assert!(inv.starts_with("INVITE sip:201@127.0.0.1:7001"), "{inv}");
    assert!(header(&inv, "From").unwrap().contains("0611112222"), "{inv}");
    h.send(phone(7001), &answer(&inv, 200, "ext", Some(&sdp(5000, "0 101")), 7001));
    assert_eq!(final_status(&h.take_for(provider())), 200);
    // The provider hangs up.
    h.send(
        provider(),
        &format!(
            "BYE sip:0312345678@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKbye1\r\n\
             From: <sip:0611112222@provider.example>;tag=pin1\r\nTo: <sip:0312345678@provider.example>;tag=x\r\n\
             Call-ID: in1\r\nCSeq: 2 BYE\r\n\r\n"
        ),
    );
    let cdr = h.cdrs.pop().expect("a CDR");
    assert_eq!(cdr.trunk.as_deref(), Some("prov"));
    assert_eq!(cdr.did.as_deref(), Some("0312345678"));
    assert_eq!(cdr.to, "201");
}

#[test]
fn an_office_hours_rule_outside_its_window_sends_the_call_to_the_default() {
    let mut h = harness_with(calls_config());
    h.register("201", 7001);
    h.register("202", 7002);
    // 07:13 JST: "09:00-18:00" does not match, the default (202) rings.
    h.send(provider(), &provider_invite("0312340000", "0611112222", "in2", ""));
    assert!(h.take_for(phone(7001)).is_empty());
    assert!(h.take_for(phone(7002)).pop().expect("202 rings").starts_with("INVITE sip:202@"));
    // "00:00-24:00" always matches: 201 rings.
    h.send(provider(), &provider_invite("0312341111", "0611112222", "in3", ""));
    assert!(h.take_for(phone(7001)).pop().expect("201 rings").starts_with("INVITE sip:201@"));
    let dids = h.engine.dids(h.now);
    let office = dids.iter().find(|d| d.number == "0312340000").unwrap();
    assert_eq!((office.destination_now.as_str(), office.rule_now.as_deref()), ("extension 202", None));
}

#[test]
fn an_unknown_did_gets_404_and_a_hangup_destination_603() {
    let mut h = harness_with(calls_config());
    h.send(provider(), &provider_invite("0399999999", "0611112222", "in4", ""));
    assert_eq!(final_status(&h.take_for(provider())), 404);
    h.send(provider(), &provider_invite("0312342222", "0611112222", "in5", ""));
    assert_eq!(final_status(&h.take_for(provider())), 603);
}

#[test]
fn a_did_to_a_voicemail_box_is_answered_by_the_box_with_the_greeting() {
    let mut c = calls_config();
    c.time_rules = rules("[[did]]\nnumber = \"0312346666\"\ndefault = { voicemail = \"202\" }\n");
    let mut h = harness_with(c);
    register_trunk(&mut h);
    h.send(provider(), &provider_invite("0312346666", "0611112222", "vm1", ""));
    assert_eq!(final_status(&h.take_for(provider())), 200);
    let greeting = h.media.iter().any(|m| {
        matches!(m, MediaCommand::Play { side: Side::A, clips, .. }
            if clips.iter().any(|c| matches!(c, crate::media::Clip::Prompt { id, .. } if id == "vm.leave_message")))
    });
    assert!(greeting, "{:?}", h.media);
}

#[test]
fn a_did_to_a_queue_without_a_queue_block_gets_404() {
    // The DID names queue `support`, but this box has no `[[queue]]` (queue_tests.rs has them).
    let mut h = harness_with(calls_config());
    h.send(provider(), &provider_invite("0312343333", "0611112222", "in6", ""));
    let out = h.take_for(provider());
    assert_eq!(final_status(&out), 404);
}

#[test]
fn blocked_and_anonymous_callers_get_busy() {
    let mut h = harness_with(calls_config());
    h.register("201", 7001);
    h.send(provider(), &provider_invite("0312345678", "090-9999-8888", "in7", ""));
    assert_eq!(final_status(&h.take_for(provider())), 486);
    h.send(provider(), &provider_invite("0312345678", "anonymous", "in8", ""));
    assert_eq!(final_status(&h.take_for(provider())), 486);
    h.send(provider(), &provider_invite("0312345678", "0611112222", "in9", "Privacy: id\r\n"));
    assert_eq!(final_status(&h.take_for(provider())), 486);
    assert!(h.take_for(phone(7001)).is_empty(), "nothing rang");
}

#[test]
fn the_reject_treatment_answers_603() {
    let mut cfg = calls_config();
    cfg.block.treatment = BlockTreatment::Reject;
    let mut h = harness_with(cfg);
    h.send(provider(), &provider_invite("0312345678", "09099998888", "in10", ""));
    assert_eq!(final_status(&h.take_for(provider())), 603);
}

#[test]
fn a_did_beyond_its_channel_limit_gets_busy_until_a_call_ends() {
    let mut h = harness_with(calls_config());
    h.register("201", 7001);
    h.send(provider(), &provider_invite("0312345678", "0611112222", "in11", ""));
    h.take_for(provider());
    h.send(provider(), &provider_invite("0312345678", "0611113333", "in12", ""));
    assert_eq!(final_status(&h.take_for(provider())), 486);
    // The first caller gives up (CANCEL): the channel is free again.
    h.send(
        provider(),
        &format!(
            "CANCEL sip:0312345678@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKpin11\r\n\
             From: <sip:0611112222@provider.example>;tag=pin11\r\nTo: <sip:0312345678@provider.example>\r\n\
             Call-ID: in11\r\nCSeq: 1 CANCEL\r\n\r\n"
        ),
    );
    h.take_for(provider());
    h.send(provider(), &provider_invite("0312345678", "0611113333", "in13", ""));
    assert_eq!(status(&h.take_for(provider())[0]), 100);
}

#[test]
fn an_announcement_did_is_answered_played_then_hung_up() {
    let mut h = harness_with(calls_config());
    h.send(provider(), &provider_invite("0312344444", "0611112222", "in14", ""));
    let out = h.take_for(provider());
    assert_eq!(final_status(&out), 200);
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: Side::A, looped: false, .. })));
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(1), side: Side::A });
    h.drain();
    let bye = h.take_for(provider());
    assert!(bye.iter().any(|m| m.starts_with("BYE ")), "{bye:?}");
    assert_eq!(h.cdrs.pop().expect("a CDR").did.as_deref(), Some("0312344444"));
}

#[test]
fn a_did_forwarded_outside_presents_the_did() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    h.send(provider(), &provider_invite("0312345555", "0611112222", "in15", ""));
    let out = h.take_for(provider());
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).expect("an INVITE out");
    assert!(inv.starts_with("INVITE sip:09011112222@provider.example SIP/2.0"), "{inv}");
    assert!(header(inv, "From").unwrap().starts_with("<sip:0312345555@provider.example>"), "{inv}");
}

// Tests for outbound calls.

/// Phone `ext` on `port` dials `number`; returns what the provider and the phone got.
fn dial(h: &mut Harness, ext: &str, port: u16, number: &str, call: &str) -> (Vec<String>, Vec<String>) {
    h.register(ext, port);
    h.send(phone(port), &invite(ext, number, port, call, &sdp(4000, "0 8 101")));
    (h.take_for(provider()), h.take_for(phone(port)))
}

#[test]
fn an_outbound_call_answers_the_providers_407_and_connects() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    let (out, _) = dial(&mut h, "201", 7001, "03-9876-5432", "o1");
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).expect("an INVITE to the provider").clone();
    assert!(inv.starts_with("INVITE sip:0398765432@provider.example SIP/2.0"), "{inv}");
    assert!(header(&inv, "From").unwrap().starts_with("<sip:0312345678@provider.example>;tag="), "{inv}");
    assert_eq!(header(&inv, "P-Asserted-Identity"), Some("<sip:0312345678@provider.example>"));
    assert_eq!(header(&inv, "Privacy"), None);
    let challenge = answer(&inv, 407, "prov", None, PROVIDER).replace(
        "\r\n\r\n",
        "\r\nProxy-Authenticate: Digest realm=\"provider.example\", nonce=\"abc\", qop=\"auth\"\r\n\r\n",
    );
    h.send(provider(), &challenge);
    let out = h.take_for(provider());
    assert!(out.iter().any(|m| m.starts_with("ACK sip:0398765432@provider.example")), "{out:?}");
    let inv2 = out.iter().find(|m| m.starts_with("INVITE ")).expect("the INVITE again").clone();
    assert_eq!(header(&inv2, "CSeq"), Some("2 INVITE"));
    assert_eq!(header(&inv2, "Call-ID"), header(&inv, "Call-ID"));
    let auth = header(&inv2, "Proxy-Authorization").expect("credentials");
    let creds = crate::sip::auth::Credentials::parse(auth).expect("parsable");
    assert_eq!(creds.username, "acct");
    assert!(creds.verify("INVITE", "trunk-pass"));
    h.send(provider(), &answer(&inv2, 200, "prov", Some(&sdp(6000, "0 101")), PROVIDER));
    assert_eq!(final_status(&h.take_for(phone(7001))), 200);
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("ACK ")));
}

#[test]
fn a_second_challenge_with_the_same_nonce_fails_the_call() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    let (out, _) = dial(&mut h, "201", 7001, "0398765432", "o2");
    let mut inv = out.iter().find(|m| m.starts_with("INVITE ")).unwrap().clone();
    for round in 0..2 {
        let c = answer(&inv, 407, "prov", None, PROVIDER)
            .replace("\r\n\r\n", "\r\nProxy-Authenticate: Digest realm=\"p\", nonce=\"same\"\r\n\r\n");
        h.send(provider(), &c);
        let out = h.take_for(provider());
        if round == 0 {
            inv = out.iter().find(|m| m.starts_with("INVITE ")).unwrap().clone();
        } else {
            assert!(!out.iter().any(|m| m.starts_with("INVITE ")), "no third INVITE");
        }
    }
    assert_eq!(final_status(&h.take_for(phone(7001))), 407);
}

#[test]
fn prefix_184_withholds_and_186_presents() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    let (out, _) = dial(&mut h, "201", 7001, "1840398765432", "o3");
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert!(inv.starts_with("INVITE sip:0398765432@provider.example"), "{inv}");
    assert!(header(inv, "From").unwrap().contains("sip:anonymous@anonymous.invalid"), "{inv}");
    assert_eq!(header(inv, "Privacy"), Some("id"));
    assert_eq!(header(inv, "P-Asserted-Identity"), Some("<sip:0312345678@provider.example>"));
    assert!(!header(inv, "Contact").unwrap().contains("201"), "the extension does not leak: {inv}");
    let (out, _) = dial(&mut h, "202", 7002, "1860398765432", "o4");
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert_eq!(header(inv, "Privacy"), None);
    // 202 has no caller ID of its own: the trunk's account number.
    assert!(header(inv, "From").unwrap().starts_with("<sip:0312345678@provider.example>"), "{inv}");
}

#[test]
fn barred_and_restricted_numbers_get_403_but_emergency_numbers_go_out() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    let (out, ph) = dial(&mut h, "203", 7003, "0398765432", "o5");
    assert!(out.is_empty());
    assert_eq!(final_status(&ph), 403);
    let (out, ph) = dial(&mut h, "201", 7001, "0990123456", "o6");
    assert!(out.is_empty());
    assert_eq!(final_status(&ph), 403);
    assert!(ph.iter().any(|m| header(m, "Warning").is_some_and(|w| w.contains("restricted"))), "{ph:?}");
    let (out, _) = dial(&mut h, "203", 7003, "119", "o7");
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).expect("119 goes out");
    assert!(inv.starts_with("INVITE sip:119@provider.example"), "{inv}");
}

#[test]
fn a_trunk_that_is_not_registered_gives_503_at_once() {
    let mut h = harness_with(calls_config());
    let (out, ph) = dial(&mut h, "201", 7001, "0398765432", "o8");
    assert!(!out.iter().any(|m| m.starts_with("INVITE ")));
    assert_eq!(final_status(&ph), 503);
}

#[test]
fn an_imported_restriction_applies_to_the_next_call() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    let n = h
        .engine
        .import_list(crate::engine::ListKind::Restrict, vec![ListEntry::parse("0398*", None, "").unwrap()])
        .unwrap();
    assert_eq!(n, 2);
    let (_, ph) = dial(&mut h, "201", 7001, "0398765432", "o9");
    assert_eq!(final_status(&ph), 403);
}

#[test]
fn the_announcement_treatment_answers_a_blocked_caller_and_plays_the_prompt() {
    let mut cfg = calls_config();
    cfg.block.treatment = BlockTreatment::Announcement;
    let mut h = harness_with(cfg);
    h.register("201", 7001);
    h.send(provider(), &provider_invite("0312345678", "09099998888", "in16", ""));
    assert_eq!(final_status(&h.take_for(provider())), 200);
    assert!(h.take_for(phone(7001)).is_empty(), "the extension does not ring");
    let played = h.media.iter().any(|m| match m {
        MediaCommand::Play { clips, .. } => clips
            .iter()
            .any(|c| matches!(c, crate::media::Clip::Prompt { id, .. } if id == "common.not_in_service")),
        _ => false,
    });
    assert!(played, "{:?}", h.media);
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(1), side: Side::A });
    h.drain();
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    // Not counted on the DID: the call never reached it.
    assert!(h.engine.dids(h.now).iter().all(|d| d.active == 0));
}

#[test]
fn the_providers_bye_ends_an_outbound_call_and_the_cdr_names_the_trunk() {
    let mut h = harness_with(calls_config());
    register_trunk(&mut h);
    let (out, _) = dial(&mut h, "201", 7001, "0398765432", "o10");
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).unwrap().clone();
    h.send(provider(), &answer(&inv, 200, "prov", Some(&sdp(6000, "0")), PROVIDER));
    h.take_for(provider());
    h.send(
        phone(7001),
        "ACK sip:0398765432@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKack10\r\n\
         From: <sip:201@127.0.0.1>;tag=fo10\r\nTo: <sip:0398765432@127.0.0.1>;tag=x\r\nCall-ID: o10\r\nCSeq: 1 ACK\r\n\r\n",
    );
    let call_id = header(&inv, "Call-ID").unwrap().to_string();
    let from = header(&inv, "From").unwrap().to_string();
    let to = format!("{};tag=prov", header(&inv, "To").unwrap());
    h.send(
        provider(),
        &format!(
            "BYE sip:0312345678@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKpbye\r\n\
             From: {to}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: 1 BYE\r\n\r\n"
        ),
    );
    assert_eq!(status(&h.take_for(provider())[0]), 200);
    assert!(h.take_for(phone(7001)).iter().any(|m| m.starts_with("BYE ")), "the phone is hung up");
    let cdr = h.cdrs.pop().expect("a CDR");
    assert_eq!(
        (cdr.trunk.as_deref(), cdr.did.as_deref(), cdr.to.as_str()),
        (Some("prov"), None, "0398765432")
    );
}

// Tests for forwards of the dial plan to outside numbers.

fn harness_forwarding(number: &str, target: &str) -> Harness {
    let mut h = harness_with(calls_config());
    let features =
        crate::config::ExtensionFeatures { forward_always: Some(target.into()), ..Default::default() };
    let dialplan = crate::config::DialplanConfig {
        ring_groups: vec![],
        extensions: [(number.to_string(), features)].into_iter().collect(),
    };
    let cfg = EngineConfig {
        trunks: vec![trunk_config()],
        trunk_calls: calls_config(),
        dialplan,
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        ..EngineConfig::for_tests(h.now)
    };
    let exts = vec![ext("201", true), ext("202", true), ext("203", true)];
    h.engine = Engine::new(cfg, &exts);
    h
}

#[test]
fn an_extension_forwarded_outside_goes_out_by_the_trunk_with_its_caller_id() {
    let mut h = harness_forwarding("201", "09011112222");
    register_trunk(&mut h);
    h.register("202", 7002);
    h.send(phone(7002), &invite("202", "201", 7002, "fw1", &sdp(4000, "0 8 101")));
    let out = h.take_for(provider());
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).expect("an INVITE to the provider");
    assert!(inv.starts_with("INVITE sip:09011112222@provider.example SIP/2.0"), "{inv}");
    // 201's caller ID (calls_config), not the caller's extension number.
    assert!(header(inv, "From").unwrap().starts_with("<sip:0312345678@provider.example>"), "{inv}");
    h.send(provider(), &answer(inv, 200, "prov", Some(&sdp(6000, "0 101")), PROVIDER));
    assert_eq!(final_status(&h.take_for(phone(7002))), 200);
}

#[test]
fn a_did_call_to_an_extension_forwarded_outside_presents_the_did() {
    let mut h = harness_forwarding("202", "09011112222");
    register_trunk(&mut h);
    // 0312340000 rings 202 outside office hours (the harness clock reads 07:13).
    h.send(provider(), &provider_invite("0312340000", "0611112222", "fw2", ""));
    let out = h.take_for(provider());
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).expect("the forward goes out");
    assert!(inv.starts_with("INVITE sip:09011112222@provider.example SIP/2.0"), "{inv}");
    assert!(header(inv, "From").unwrap().starts_with("<sip:0312340000@provider.example>"), "{inv}");
}

#[test]
fn a_forward_outside_from_an_extension_barred_from_external_calls_ends_with_403() {
    let mut h = harness_forwarding("203", "09011112222");
    register_trunk(&mut h);
    h.register("202", 7002);
    h.send(phone(7002), &invite("202", "203", 7002, "fw3", &sdp(4000, "0 8 101")));
    assert!(!h.take_for(provider()).iter().any(|m| m.starts_with("INVITE ")));
    assert_eq!(final_status(&h.take_for(phone(7002))), 403);
}

#[test]
fn an_ip_trunk_without_an_account_never_sends_an_empty_user_part() {
    let now = Instant::now();
    let ip_trunk = TrunkConfig {
        username: String::new(),
        auth_username: None,
        password: String::new(),
        mode: TrunkMode::IpAuthenticated,
        ..trunk_config()
    };
    let cfg = EngineConfig {
        trunks: vec![ip_trunk],
        trunk_calls: calls_config(),
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        ..EngineConfig::for_tests(now)
    };
    let exts = vec![ext("201", true), ext("202", true)];
    let mut h = Harness {
        engine: Engine::new(cfg, &exts),
        now,
        sent: vec![],
        media: vec![],
        cdrs: vec![],
        vm: vec![],
    };
    h.engine.handle_timeout(h.now);
    h.drain();
    let options = h.take_for(provider()).pop().expect("an OPTIONS keepalive");
    assert!(options.starts_with("OPTIONS "), "{options}");
    h.send(provider(), &answer(&options, 200, "prov", None, PROVIDER));
    // 202 has no caller ID of its own and no DID lists it: the trunk has no username either.
    let (out, _) = dial(&mut h, "202", 7002, "0398765432", "o-ip");
    let inv = out.iter().find(|m| m.starts_with("INVITE ")).expect("an INVITE to the provider");
    let contact = header(inv, "Contact").expect("a Contact");
    assert!(contact.starts_with("<sip:hakoden@"), "{inv}");
    assert!(header(inv, "From").unwrap().starts_with("<sip:hakoden@provider.example>;tag="), "{inv}");
    assert!(!inv.contains("sip:@"), "{inv}");
}
