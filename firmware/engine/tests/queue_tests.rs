//! Call-center queues driven by the engine with a virtual clock (issue 6): DID and phone calls
//! into a queue, agents' phones rung through the several-pending-legs primitive, overflow and
//! timeout destinations. The provider is a string-speaking peer on port 5090, as in
//! `ivr_tests.rs`.

use super::*;
use crate::apps::callcenter::{AgentState, Cause, MemberConfig, QueueConfig, Strategy};
use crate::apps::ivr::{parse_ivrs, NameKind};
use crate::apps::timerules::{parse_rules, Destination};
use crate::config::{CallCenterConfig, TrunkCallsConfig};
use crate::media::dtmf::{DigitEvent, DtmfSource};
use crate::media::{Clip, MediaEvent, RelayId, Side};

const PROVIDER: u16 = 5090;
const DID: &str = "0312346000";
const IVR_DID: &str = "0312347000";

fn provider() -> Peer {
    phone(PROVIDER)
}

const MENUS: &str = r#"
[[ivr]]
name = "main"
prompt = "common.enter_extension"
keys = { "1" = { queue = "support" }, "2" = { group = "800" } }
"#;

/// Queue `support` (6000): 201 and 202, ring-all; queue `solo` (6100): 203 alone, 30 s
/// timeout to extension 204, overflow to extension 204 when nobody works it.
fn harness_with(strategy: Strategy) -> Harness {
    harness_tweaked(strategy, |_| {})
}

/// [`harness_with`] with the call-center section changed before the engine starts.
fn harness_tweaked(strategy: Strategy, tweak: impl FnOnce(&mut CallCenterConfig)) -> Harness {
    let now = Instant::now();
    let time_rules = parse_rules(&format!(
        "[[did]]\nnumber = \"{DID}\"\ndefault = {{ queue = \"support\" }}\n\
         [[did]]\nnumber = \"{IVR_DID}\"\ndefault = {{ ivr = \"main\" }}\n"
    ))
    .unwrap_or_else(|e| panic!("rules: {e}"));
    let exists = |k: NameKind, n: &str| match k {
        NameKind::Prompt | NameKind::Announcement => {
            crate::media::prompts::exists(n, crate::config::MediaConfig::default().language)
        }
        NameKind::Queue => n == "support",
        NameKind::Group => n == "800",
        _ => false,
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
    let member = |a: &str| MemberConfig { agent: a.into(), skill: 1 };
    let mut support = QueueConfig::new("support");
    support.strategy = strategy;
    support.members = vec![member("201"), member("202")];
    let mut solo = QueueConfig::new("solo");
    solo.members = vec![member("203")];
    solo.timeout = Some(Duration::from_secs(30));
    solo.timeout_destination = Some(Destination::Extension("204".into()));
    solo.overflow = Some(Destination::Extension("204".into()));
    let mut callcenter = CallCenterConfig {
        queues: vec![support, solo],
        numbers: vec![("6000".into(), "support".into()), ("6100".into(), "solo".into())],
        ..Default::default()
    };
    tweak(&mut callcenter);
    let mut dialplan = crate::config::DialplanConfig::default();
    dialplan.ring_groups.push(crate::config::RingGroupConfig {
        number: "800".into(),
        name: "Sales".into(),
        strategy: crate::config::RingStrategy::RingAll,
        members: vec!["201".into(), "202".into()],
        ring_s: 20,
        timeout_s: None,
        no_answer: None,
        voicemail: false,
        pin: None,
    });
    let cfg = EngineConfig {
        trunks: vec![trunk],
        trunk_calls: TrunkCallsConfig {
            time_rules,
            routes: vec![crate::apps::numbers::Route {
                prefix: "0".into(),
                strip: 0,
                prepend: String::new(),
                trunk: "prov".into(),
            }],
            ..Default::default()
        },
        ivrs: std::sync::Arc::new(ivrs),
        callcenter,
        dialplan,
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20199 },
        ..EngineConfig::for_tests(now)
    };
    let exts = vec![ext("201", true), ext("202", true), ext("203", true), ext("204", true), ext("205", true)];
    Harness { engine: Engine::new(cfg, &exts), now, sent: vec![], media: vec![], cdrs: vec![], vm: vec![] }
}

fn harness() -> Harness {
    harness_with(Strategy::RingAll)
}

fn provider_invite(did: &str, call: &str) -> String {
    format!(
        "INVITE sip:{did}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKp{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:0611112222@provider.example>;tag=p{call}\r\nTo: <sip:{did}@provider.example>\r\n\
         Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:0611112222@127.0.0.1:{PROVIDER}>\r\n\
         Content-Type: application/sdp\r\n\r\n{}",
        sdp(4000, "0 8 101")
    )
}

/// The provider's ACK for the box's 200 to DID call `call`.
fn provider_ack(h: &mut Harness, ok: &str, call: &str) {
    let to = header_of(ok, "To");
    h.send(
        provider(),
        &format!(
            "ACK sip:{DID}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKa{call}\r\n\
             From: <sip:0611112222@provider.example>;tag=p{call}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\n\r\n"
        ),
    );
}

fn available(h: &mut Harness, agent: &str) {
    let now = h.now;
    h.engine.agent_command(now, agent, AgentCommand::Login, Cause::Supervisor).expect("login");
    h.engine
        .agent_command(now, agent, AgentCommand::Select(AgentState::Available), Cause::Supervisor)
        .expect("available");
    h.drain();
}

fn state(h: &Harness, agent: &str) -> AgentState {
    h.engine.agents(h.now).into_iter().find(|a| a.agent == agent).map(|a| a.state).expect("an agent")
}

fn music_to_caller(h: &Harness) -> bool {
    h.media.iter().any(|m| {
        matches!(m, MediaCommand::Play { side: Side::A, clips, looped: true, .. } if clips == &vec![Clip::MusicOnHold])
    })
}

fn bye_from(msg_to_phone: &str, port: u16) -> String {
    let ok = answer(msg_to_phone, 200, "ext", None, port);
    format!(
        "BYE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbye{port}\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        header_of(&ok, "To"),
        header_of(msg_to_phone, "From"),
        header_of(msg_to_phone, "Call-ID"),
    )
}

fn header_of(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| {
            l.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string())
        })
        .unwrap_or_default()
}

fn invites_to(h: &mut Harness, port: u16) -> Vec<String> {
    h.take_for(phone(port)).into_iter().filter(|m| m.starts_with("INVITE ")).collect()
}

// Tests for a DID call into a queue.

#[test]
fn a_did_call_is_answered_queued_with_music_and_bridged_to_the_agent_who_answers() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    available(&mut h, "201");
    h.send(provider(), &provider_invite(DID, "q1"));
    assert!(h.take_for(provider()).iter().any(|m| status(m) == 200), "the box answers the caller");
    assert!(music_to_caller(&h), "{:?}", h.media);
    let inv = invites_to(&mut h, 7001).pop().expect("201 rings");
    assert_eq!(state(&h, "201"), AgentState::Ringing);
    h.send(phone(7001), &answer(&inv, 200, "ext", Some(&sdp(5000, "0 101")), 7001));
    assert!(h.take_for(provider()).iter().all(|m| status(m) != 200), "no second 200");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Open { b_remote: Some(_), .. })));
    assert_eq!(state(&h, "201"), AgentState::Talking);
    let q = h.engine.queues(h.now).into_iter().find(|q| q.name == "support").expect("support");
    assert_eq!((q.waiting, q.staffed), (0, 1));
    // The agent hangs up: the caller gets a BYE, the agent is free again, the CDR names both.
    h.send(phone(7001), &bye_from(&inv, 7001));
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    assert_eq!(state(&h, "201"), AgentState::Available);
    let cdr = h.cdrs.pop().expect("a CDR");
    assert_eq!(cdr.rewires.first().map(|r| (r.kind.as_str(), r.by.as_str())), Some(("queue", "201")));
}

#[test]
fn ring_all_rings_both_agents_and_cancels_the_second_when_the_first_answers() {
    let mut h = harness();
    h.register("201", 7001);
    h.register("202", 7002);
    available(&mut h, "201");
    available(&mut h, "202");
    h.send(provider(), &provider_invite(DID, "q2"));
    let inv1 = invites_to(&mut h, 7001).pop().expect("201 rings");
    let inv2 = invites_to(&mut h, 7002).pop().expect("202 rings");
    h.send(phone(7002), &answer(&inv2, 180, "r2", None, 7002));
    h.send(phone(7001), &answer(&inv1, 200, "ext", Some(&sdp(5000, "0 101")), 7001));
    let to_202 = h.take_for(phone(7002));
    assert!(to_202.iter().any(|m| m.starts_with("CANCEL ")), "{to_202:?}");
    assert_eq!(state(&h, "201"), AgentState::Talking);
    assert_eq!(state(&h, "202"), AgentState::Available);
}

#[test]
fn the_caller_hanging_up_while_agents_ring_cancels_them_and_frees_the_agents() {
    let mut h = harness();
    h.register("201", 7001);
    h.register("205", 7005);
    available(&mut h, "201");
    h.send(phone(7005), &invite("205", "6000", 7005, "p5", &sdp(4000, "0 101")));
    let ok = h.take_for(phone(7005)).into_iter().find(|m| status(m) == 200).expect("answered by the box");
    assert!(invites_to(&mut h, 7001).pop().is_some(), "201 rings");
    let bye = format!(
        "BYE sip:6000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7005;branch=z9hG4bKcb\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: p5\r\nCSeq: 2 BYE\r\n\r\n",
        header_of(&ok, "From"),
        header_of(&ok, "To"),
    );
    h.send(phone(7005), &bye);
    assert!(h.take_for(phone(7001)).iter().any(|m| m.starts_with("CANCEL ")));
    assert_eq!(state(&h, "201"), AgentState::Available);
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn a_declining_agent_is_reported_and_the_queue_tries_the_other_one() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    h.register("202", 7002);
    available(&mut h, "201");
    available(&mut h, "202");
    h.send(provider(), &provider_invite(DID, "q4"));
    let inv1 = invites_to(&mut h, 7001).pop().expect("201 rings first");
    h.send(phone(7001), &answer(&inv1, 486, "busy", None, 7001));
    assert!(invites_to(&mut h, 7002).pop().is_some(), "then 202");
}

#[test]
fn a_lone_agent_in_dnd_is_offered_the_call_once_per_ring_time_not_at_network_speed() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    available(&mut h, "201");
    h.send(provider(), &provider_invite(DID, "q4d"));
    let inv = invites_to(&mut h, 7001).pop().expect("201 rings");
    h.send(phone(7001), &answer(&inv, 486, "dnd", None, 7001));
    assert!(invites_to(&mut h, 7001).is_empty(), "no INVITE straight after the 486");
    assert_eq!(state(&h, "201"), AgentState::Available);
    h.advance(Duration::from_secs(19));
    assert!(invites_to(&mut h, 7001).is_empty());
    h.advance(Duration::from_secs(1));
    let inv = invites_to(&mut h, 7001).pop().expect("offered again after one ring time");
    h.send(phone(7001), &answer(&inv, 603, "decline", None, 7001));
    assert!(invites_to(&mut h, 7001).is_empty());
}

#[test]
fn an_agent_who_does_not_answer_within_the_ring_time_is_cancelled_and_the_next_rings() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    h.register("202", 7002);
    available(&mut h, "201");
    available(&mut h, "202");
    h.send(provider(), &provider_invite(DID, "q5"));
    assert!(invites_to(&mut h, 7001).pop().is_some());
    h.advance(Duration::from_secs(21));
    assert!(h.take_for(phone(7001)).iter().any(|m| m.starts_with("CANCEL ")));
    assert!(invites_to(&mut h, 7002).pop().is_some(), "202 rings after 201's ring time");
}

// Tests for overflow and timeout.

#[test]
fn with_no_agent_logged_in_a_phone_call_gets_the_overflow_destination_or_busy() {
    let mut h = harness();
    h.register("204", 7004);
    h.register("205", 7005);
    // `solo` overflows to 204.
    h.send(phone(7005), &invite("205", "6100", 7005, "p6", &sdp(4000, "0 101")));
    assert!(invites_to(&mut h, 7004).pop().is_some(), "overflow rings 204");
    // `support` has no overflow: busy before any answer.
    h.send(phone(7005), &invite("205", "6000", 7005, "p7", &sdp(4000, "0 101")));
    assert!(h.take_for(phone(7005)).iter().any(|m| status(m) == 486));
}

#[test]
fn a_caller_still_waiting_at_the_queue_timeout_goes_to_the_timeout_destination() {
    let mut h = harness();
    // 203 works the queue but its phone is not registered: every attempt rings out.
    h.register("204", 7004);
    h.register("205", 7005);
    available(&mut h, "203");
    h.send(phone(7005), &invite("205", "6100", 7005, "p8", &sdp(4000, "0 101")));
    assert!(h.take_for(phone(7005)).iter().any(|m| status(m) == 200), "queued");
    h.advance(Duration::from_secs(29));
    assert!(invites_to(&mut h, 7004).is_empty(), "not before the timeout");
    h.advance(Duration::from_secs(2));
    assert!(invites_to(&mut h, 7004).pop().is_some(), "the timeout destination rings");
}

// Tests for the other ways in.

#[test]
fn an_ivr_key_sends_the_answered_caller_into_the_queue() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    available(&mut h, "201");
    h.send(provider(), &provider_invite(IVR_DID, "q9"));
    assert!(h.take_for(provider()).iter().any(|m| status(m) == 200));
    let event = DigitEvent { digit: '1', duration_ms: 100, source: DtmfSource::Rfc4733 };
    h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(1), side: Side::A, event });
    h.drain();
    assert!(invites_to(&mut h, 7001).pop().is_some(), "the agent rings");
    assert!(h.take_for(provider()).iter().all(|m| status(m) != 200), "answered once only");
}

#[test]
fn an_ivr_key_to_a_ring_group_rings_every_member_and_the_first_answer_wins() {
    let mut h = harness();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(provider(), &provider_invite(IVR_DID, "q10"));
    let event = DigitEvent { digit: '2', duration_ms: 100, source: DtmfSource::Rfc4733 };
    h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(1), side: Side::A, event });
    h.drain();
    let inv1 = invites_to(&mut h, 7001).pop().expect("201 rings");
    let inv2 = invites_to(&mut h, 7002).pop().expect("202 rings");
    // One member is busy: the other still rings.
    h.send(phone(7001), &answer(&inv1, 486, "b", None, 7001));
    assert!(h.take_for(provider()).iter().all(|m| !m.starts_with("BYE ")));
    h.send(phone(7002), &answer(&inv2, 200, "ext", Some(&sdp(5000, "0 101")), 7002));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Open { b_remote: Some(_), .. })));
    assert_eq!(h.engine.calls(h.now).len(), 1);
}

// Tests for agent commands.

#[test]
fn agent_commands_follow_the_state_machine_and_refusals_say_why() {
    let mut h = harness();
    let now = h.now;
    let e = h.engine.agent_command(now, "201", AgentCommand::Select(AgentState::Available), Cause::Agent);
    assert!(matches!(e, Err(crate::apps::callcenter::AgentError::IllegalTransition { .. })), "{e:?}");
    assert!(e.unwrap_err().to_string().contains("logged_out"));
    assert_eq!(
        h.engine.agent_command(now, "201", AgentCommand::ToggleLogin, Cause::Agent),
        Ok(AgentState::Preparing)
    );
    assert!(h.engine.agent_command(now, "205", AgentCommand::Login, Cause::Agent).is_err(), "not an agent");
    h.engine
        .agent_command(now, "201", AgentCommand::QueueAvailability("support".into(), false), Cause::Agent)
        .expect("pause in support");
    let a = h.engine.agents(now).into_iter().find(|a| a.agent == "201").expect("201");
    assert_eq!(a.queues, vec![("support".to_string(), false)]);
    assert!(h.engine.agent_command(now, "201", AgentCommand::EndAcw, Cause::Agent).is_err());
}

// Tests for the agent feature codes.

fn dial_code(h: &mut Harness, code: &str, call: &str) -> String {
    h.media.clear();
    h.send(phone(7001), &invite("201", code, 7001, call, &sdp(4000, "0 101")));
    assert!(h.take_for(phone(7001)).iter().any(|m| status(m) == 200), "{code} is answered");
    prompts_played(h).pop().unwrap_or_default()
}

#[test]
fn star_40_to_47_log_in_select_states_and_pause_a_queue_with_a_confirmation() {
    let mut h = harness();
    h.register("201", 7001);
    assert_eq!(dial_code(&mut h, "*41", "f1"), "agent.not_allowed", "logged out");
    assert_eq!(dial_code(&mut h, "*40", "f2"), "agent.logged_in");
    assert_eq!(state(&h, "201"), AgentState::Preparing);
    assert_eq!(dial_code(&mut h, "*41", "f3"), "agent.available");
    assert_eq!(dial_code(&mut h, "*42", "f4"), "agent.short_break");
    assert_eq!(dial_code(&mut h, "*43", "f5"), "agent.lunch_break");
    assert_eq!(dial_code(&mut h, "*44", "f6"), "agent.not_allowed", "not in ACW");
    assert_eq!(dial_code(&mut h, "*451", "f7"), "agent.not_allowed", "no other-work state configured");
    assert_eq!(dial_code(&mut h, "*46", "f8"), "agent.preparing");
    assert_eq!(dial_code(&mut h, "*476000", "f9"), "agent.queue_paused");
    assert_eq!(dial_code(&mut h, "*479999", "f10"), "agent.not_allowed", "no such queue");
    assert_eq!(dial_code(&mut h, "*476000", "f11"), "agent.queue_resumed");
    assert_eq!(dial_code(&mut h, "*40", "f12"), "agent.logged_out");
    assert_eq!(state(&h, "201"), AgentState::LoggedOut);
}

#[test]
fn an_available_agent_on_an_ordinary_call_is_not_offered_queue_calls_until_it_ends() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    h.register("205", 7005);
    available(&mut h, "201");
    h.send(phone(7005), &invite("205", "201", 7005, "pc1", &sdp(4000, "0 101")));
    let inv = invites_to(&mut h, 7001).pop().expect("201 rings");
    h.send(phone(7001), &answer(&inv, 200, "pc", Some(&sdp(5000, "0 101")), 7001));
    assert_eq!(state(&h, "201"), AgentState::InternalCall);
    h.send(provider(), &provider_invite(DID, "pc2"));
    assert!(invites_to(&mut h, 7001).is_empty(), "not offered during the internal call");
    h.send(phone(7001), &bye_from(&inv, 7001));
    assert!(invites_to(&mut h, 7001).pop().is_some(), "offered the waiting caller once free");
}

#[test]
fn an_answered_caller_timing_out_without_a_destination_hears_busy_and_gets_a_bye() {
    let mut h = harness();
    // 201 works the queue but has no phone: the caller waits until the 300 s timeout.
    available(&mut h, "201");
    h.send(provider(), &provider_invite(DID, "tb1"));
    let ok = h.take_for(provider()).into_iter().find(|m| status(m) == 200).expect("answered");
    provider_ack(&mut h, &ok, "tb1");
    h.media.clear();
    h.advance(Duration::from_secs(301));
    assert!(prompts_played(&h).contains(&"queue.all_agents_busy".to_string()), "{:?}", h.media);
    assert!(h.take_for(provider()).iter().all(|m| !m.starts_with("BYE ")), "the prompt plays first");
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(1), side: Side::A });
    h.drain();
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn the_busy_prompt_is_hung_up_by_its_guard_when_the_player_never_reports() {
    let mut h = harness();
    available(&mut h, "201");
    h.send(provider(), &provider_invite(DID, "tb2"));
    let ok = h.take_for(provider()).into_iter().find(|m| status(m) == 200).expect("answered");
    provider_ack(&mut h, &ok, "tb2");
    h.advance(Duration::from_secs(301));
    assert!(h.take_for(provider()).iter().all(|m| !m.starts_with("BYE ")), "the prompt plays first");
    h.advance(Duration::from_secs(16));
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn an_agents_outbound_call_is_dialling_then_talking_and_frees_the_agent_when_it_ends() {
    let mut h = harness();
    // The IP trunk is up once the provider answers its OPTIONS.
    h.engine.handle_timeout(h.now);
    h.drain();
    let options = h.take_for(provider()).pop().expect("an OPTIONS to the provider");
    h.send(provider(), &answer(&options, 200, "prov", None, PROVIDER));
    h.register("201", 7001);
    available(&mut h, "201");
    h.send(phone(7001), &invite("201", "0398765432", 7001, "ob1", &sdp(4000, "0 101")));
    let inv =
        h.take_for(provider()).into_iter().find(|m| m.starts_with("INVITE ")).expect("out by the trunk");
    assert_eq!(state(&h, "201"), AgentState::Dialling);
    h.send(provider(), &answer(&inv, 200, "prov", Some(&sdp(6000, "0 101")), PROVIDER));
    assert_eq!(state(&h, "201"), AgentState::Talking);
    let ok = answer(&inv, 200, "prov", None, PROVIDER);
    let bye = format!(
        "BYE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{PROVIDER};branch=z9hG4bKob\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\n\r\n",
        header_of(&ok, "To"),
        header_of(&inv, "From"),
        header_of(&inv, "Call-ID"),
    );
    h.send(provider(), &bye);
    assert_eq!(state(&h, "201"), AgentState::Available);
}

#[test]
fn an_agent_who_transfers_the_caller_is_free_once_the_target_answers() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    h.register("205", 7005);
    available(&mut h, "201");
    h.send(provider(), &provider_invite(DID, "tr1"));
    let ok = h.take_for(provider()).into_iter().find(|m| status(m) == 200).expect("answered");
    provider_ack(&mut h, &ok, "tr1");
    let inv = invites_to(&mut h, 7001).pop().expect("201 rings");
    h.send(phone(7001), &answer(&inv, 200, "ext", Some(&sdp(5000, "0 101")), 7001));
    // The agent presses #8 205 # (RFC 4733 on side B).
    for d in "#8205#".chars() {
        let event = DigitEvent { digit: d, duration_ms: 100, source: DtmfSource::Rfc4733 };
        h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(1), side: Side::B, event });
        h.drain();
    }
    let inv2 = invites_to(&mut h, 7005).pop().expect("the transfer target rings");
    assert_eq!(state(&h, "201"), AgentState::Talking);
    h.send(phone(7005), &answer(&inv2, 200, "t", Some(&sdp(5200, "0 101")), 7005));
    assert_eq!(state(&h, "201"), AgentState::Available);
}

#[test]
fn a_queue_timing_out_to_its_own_box_takes_a_message_in_the_queue_box() {
    let mut h = harness_tweaked(Strategy::RingAll, |cc| {
        let solo = cc.queues.iter_mut().find(|q| q.name == "solo").expect("solo");
        solo.timeout_destination = Some(Destination::Voicemail("6100".into()));
        cc.pins.push(("6100".into(), "6100".into()));
    });
    assert_eq!(
        h.engine.box_owner("6100"),
        Some(crate::engine::MailboxOwner::Queue { members: vec!["203".into()] }),
        "a queue's number is a mailbox shared by its members"
    );
    h.register("205", 7005);
    available(&mut h, "203");
    h.send(phone(7005), &invite("205", "6100", 7005, "qv1", &sdp(4000, "0 101")));
    assert!(h.take_for(phone(7005)).iter().any(|m| status(m) == 200), "queued");
    h.advance(Duration::from_secs(31));
    let id = h.engine.calls(h.now).first().map(|c| c.id).expect("the caller's call goes on");
    // The greeting (the built-in prompts) plays, then the beep; recording starts after them.
    for _ in 0..2 {
        h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay: RelayId(id), side: Side::A });
        h.drain();
    }
    let begun = h.vm.iter().find_map(|op| match op {
        VoicemailOp::BeginMessage { box_no, .. } => Some(box_no.as_str().to_string()),
        _ => None,
    });
    assert_eq!(begun.as_deref(), Some("6100"), "{:?}", h.vm);
}

// Tests for outside numbers as queue destinations.

/// The harness with `support`'s overflow set to the outside number 0398765432, and the IP
/// trunk up (the provider answered its OPTIONS).
fn harness_overflowing_out() -> Harness {
    let mut h = harness_tweaked(Strategy::RingAll, |cc| {
        if let Some(q) = cc.queues.first_mut() {
            q.overflow = Some(Destination::External("0398765432".into()));
        }
    });
    h.engine.handle_timeout(h.now);
    h.drain();
    let options = h.take_for(provider()).pop().expect("an OPTIONS to the provider");
    h.send(provider(), &answer(&options, 200, "prov", None, PROVIDER));
    h
}

#[test]
fn a_queue_overflowing_to_an_outside_number_rings_it_over_the_trunk_and_bridges_the_answer() {
    let mut h = harness_overflowing_out();
    // Nobody works `support`: the DID caller overflows at once.
    h.send(provider(), &provider_invite(DID, "x1"));
    let sent = h.take_for(provider());
    assert!(sent.iter().any(|m| status(m) == 200), "the box answers the caller first: {sent:?}");
    let out = sent.iter().find(|m| m.starts_with("INVITE sip:0398765432@provider.example")).expect("out");
    assert_eq!(header_of(out, "P-Asserted-Identity"), format!("<sip:{DID}@provider.example>"), "the DID");
    assert!(music_to_caller(&h), "music while the outside number rings");
    h.media.clear();
    h.send(provider(), &answer(out, 200, "far", Some(&sdp(5000, "0 101")), PROVIDER));
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("ACK ")));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Open { b_remote: Some(_), .. })), "bridged");
    let view = h.engine.calls(h.now);
    assert_eq!(view.len(), 1);
}

#[test]
fn an_outside_destination_that_fails_plays_a_prompt_and_then_ends_the_call() {
    let mut h = harness_overflowing_out();
    h.send(provider(), &provider_invite(DID, "x2"));
    let sent = h.take_for(provider());
    let ok = sent.iter().find(|m| status(m) == 200).expect("answered").clone();
    provider_ack(&mut h, &ok, "x2");
    let out = sent.iter().find(|m| m.starts_with("INVITE sip:0398765432")).expect("out");
    h.media.clear();
    h.send(provider(), &answer(out, 404, "far", None, PROVIDER));
    assert!(prompts_played(&h).contains(&"common.not_in_service".to_string()), "{:?}", h.media);
    assert!(h.take_for(provider()).iter().all(|m| !m.starts_with("BYE ")), "the prompt plays first");
    let relay = RelayId(h.engine.calls(h.now).first().map(|c| c.id).expect("a call"));
    h.engine.handle_media_event(h.now, MediaEvent::PlayDone { relay, side: Side::A });
    h.drain();
    assert!(h.take_for(provider()).iter().any(|m| m.starts_with("BYE ")));
    assert!(h.engine.calls(h.now).is_empty());
}

#[test]
fn a_phone_barred_from_outside_calls_cannot_reach_one_through_a_queue() {
    let mut h = harness_overflowing_out();
    h.register("205", 7005);
    h.engine.cfg.trunk_calls.extensions.push(crate::config::ExtensionOutbound {
        number: "205".into(),
        caller_id: None,
        external_calls: false,
    });
    h.send(phone(7005), &invite("205", "6000", 7005, "x3", &sdp(4000, "0 101")));
    assert!(h.take_for(provider()).iter().all(|m| !m.starts_with("INVITE ")), "not dialled");
    assert!(prompts_played(&h).contains(&"common.sorry_error".to_string()), "{:?}", h.media);
}

#[test]
fn a_queue_with_its_own_music_plays_that_file_to_waiting_callers() {
    let mut h = harness_tweaked(Strategy::RingAll, |cc| {
        let solo = cc.queues.iter_mut().find(|q| q.name == "solo").expect("solo");
        solo.moh = Some("support-music".into());
    });
    h.register("205", 7005);
    available(&mut h, "203");
    h.send(phone(7005), &invite("205", "6100", 7005, "qm1", &sdp(4000, "0 101")));
    assert!(h.take_for(phone(7005)).iter().any(|m| status(m) == 200), "queued");
    let own = h.media.iter().any(|m| {
        matches!(m, MediaCommand::Play { clips, looped: true, .. }
            if clips == &vec![Clip::AudioFile("support-music".into())])
    });
    assert!(own, "{:?}", h.media);
}

#[test]
fn a_ring_group_member_who_answers_is_on_an_internal_call_until_it_ends() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    h.register("202", 7002);
    h.register("205", 7005);
    available(&mut h, "201");
    available(&mut h, "202");
    h.send(phone(7005), &invite("205", "800", 7005, "rg1", &sdp(4000, "0 101")));
    let inv = invites_to(&mut h, 7001).pop().expect("201 rings for the group");
    assert!(invites_to(&mut h, 7002).pop().is_some(), "202 rings for the group");
    h.send(phone(7001), &answer(&inv, 200, "rg", Some(&sdp(5000, "0 101")), 7001));
    assert_eq!(state(&h, "201"), AgentState::InternalCall, "the member who answered");
    assert_eq!(state(&h, "202"), AgentState::Available, "the member who did not");
    h.send(phone(7001), &bye_from(&inv, 7001));
    assert_eq!(state(&h, "201"), AgentState::Available);
}

#[test]
fn an_agent_who_picks_up_a_ringing_call_is_on_an_internal_call_until_it_ends() {
    let mut h = harness_with(Strategy::Linear);
    h.register("201", 7001);
    h.register("202", 7002);
    h.register("205", 7005);
    available(&mut h, "201");
    h.send(phone(7005), &invite("205", "202", 7005, "pk1", &sdp(4000, "0 101")));
    assert!(invites_to(&mut h, 7002).pop().is_some(), "202 rings");
    h.send(phone(7001), &invite("201", "**202", 7001, "pk2", &sdp(5000, "0 101")));
    let ok = h.take_for(phone(7001)).into_iter().find(|m| status(m) == 200).expect("201 picked the call up");
    assert_eq!(state(&h, "201"), AgentState::InternalCall);
    // The picker hangs up in the dialog the box's 200 made.
    let bye = format!(
        "BYE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKpkbye\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: pk2\r\nCSeq: 2 BYE\r\n\r\n",
        header_of(&ok, "From"),
        header_of(&ok, "To"),
    );
    h.send(phone(7001), &bye);
    assert_eq!(state(&h, "201"), AgentState::Available);
}
