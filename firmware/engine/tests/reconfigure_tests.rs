//! `Engine::reconfigure` with the virtual clock: calls in progress survive, registrations of
//! deleted extensions go, new extensions register at once.

use super::*;

/// The harness's configuration (`Harness::with`).
fn harness_cfg(now: Instant) -> EngineConfig {
    EngineConfig {
        sip_port: BOX_PORT,
        rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
        ..EngineConfig::for_tests(now)
    }
}

fn reconfigure(h: &mut Harness, exts: &[ExtensionConfig]) -> ReconfigureReport {
    let cfg = harness_cfg(h.now);
    let report = h.engine.reconfigure(h.now, cfg, exts);
    h.drain();
    report
}

/// An authenticated REGISTER for `ext` from `port`; the final status.
fn register_status(h: &mut Harness, ext: &str, port: u16) -> u16 {
    let p = phone(port);
    let reg = |auth: &str, cseq: u32| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKx{port}{cseq}\r\n\
             From: <sip:{ext}@127.0.0.1>;tag=x{port}\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: regx-{port}\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@127.0.0.1:{port}>\r\nExpires: 600\r\n{auth}\r\n"
        )
    };
    h.send(p, &reg("", 1));
    let first = h.take_for(p).pop().unwrap();
    if !first.starts_with("SIP/2.0 401") {
        return status(&first);
    }
    let nonce = first.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let auth = authorization("REGISTER", ext, &format!("pw-{ext}-secret"), &nonce, "sip:127.0.0.1");
    h.send(p, &reg(&format!("Authorization: {auth}\r\n"), 2));
    let got = h.take_for(p);
    got.iter().find(|m| m.starts_with("SIP/2.0 ")).map_or(0, |m| status(m))
}

#[test]
fn a_call_in_progress_survives_a_reconfigure_that_changes_the_extensions() {
    let mut h = Harness::new();
    let inv = answered_call(&mut h);
    let ok = h.take_for(phone(7001)).into_iter().find(|m| m.starts_with("SIP/2.0 200")).unwrap();
    ack_caller(&mut h, &ok, "c1");
    h.take_for(phone(7001));
    h.take_for(phone(7002));
    // 203 goes, 250 comes; the call between 201 and 202 must not notice.
    let report = reconfigure(&mut h, &[ext("201", true), ext("202", true), ext("250", true)]);
    assert!(report.restart_required.is_empty(), "{report:?}");
    assert_eq!(h.engine.calls(h.now).len(), 1);
    assert!(h.sent.is_empty(), "nothing sent to the phones: {:?}", h.sent);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.engine.calls(h.now).len(), 1, "the call is still up after its timers ran");
    let Message::Request(r) = parsed(&inv) else { panic!() };
    h.send(
        phone(7002),
        &format!(
            "BYE sip:201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7002;branch=z9hG4bKrb\r\n\
             From: {};tag=callee\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 5 BYE\r\n\r\n",
            r.common.header("To").unwrap(),
            r.common.header("From").unwrap(),
            r.common.call_id
        ),
    );
    assert_eq!(status(&h.take_for(phone(7002))[0]), 200);
    assert!(h.take_for(phone(7001)).iter().any(|m| first_line(m).starts_with("BYE ")));
}

#[test]
fn a_deleted_extension_loses_its_registration_and_cannot_register_again() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("203", 7003);
    let report = reconfigure(&mut h, &[ext("201", true), ext("202", true)]);
    assert_eq!(report.registrations_dropped, 1);
    let regs: Vec<String> = h.engine.registrations(h.now).into_iter().map(|r| r.extension).collect();
    assert_eq!(regs, vec!["201".to_string()], "201 keeps its registration");
    assert_ne!(register_status(&mut h, "203", 7013), 200);
}

#[test]
fn a_new_extension_registers_right_after_the_reconfigure() {
    let mut h = Harness::new();
    assert_ne!(register_status(&mut h, "250", 7050), 200);
    reconfigure(&mut h, &[ext("201", true), ext("250", true)]);
    assert_eq!(register_status(&mut h, "250", 7051), 200);
}

#[test]
fn a_changed_password_drops_the_registration() {
    let mut h = Harness::new();
    h.register("202", 7002);
    let mut changed = ext("202", true);
    changed.password = "another-secret".into();
    let report = reconfigure(&mut h, &[ext("201", true), changed]);
    assert_eq!(report.registrations_dropped, 1);
    assert!(h.engine.registrations(h.now).is_empty());
}

#[test]
fn a_port_change_is_kept_for_the_restart() {
    let mut h = Harness::new();
    let cfg = EngineConfig { sip_port: 5070, ..harness_cfg(h.now) };
    let report = h.engine.reconfigure(h.now, cfg, &[ext("201", true)]);
    assert_eq!(report.restart_required, vec!["sip.port"]);
}
