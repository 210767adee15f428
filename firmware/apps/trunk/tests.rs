//! Virtual-clock tests: time only moves when a test says so.

use super::*;
use crate::sip::auth::Credentials;
use crate::sip::message::{parse, Message, Request};
use crate::sip::writer::response_to;

const PASSWORD: &str = "s3cret";
const REGISTRAR: &str = "192.0.2.50:5060";
const LOCAL: &str = "192.0.2.10:5060";

fn cfg(mode: TrunkMode, transport: Transport) -> TrunkConfig {
    TrunkConfig {
        name: "provider".into(),
        registrar: REGISTRAR.parse().unwrap(),
        domain: "sip.example.net".into(),
        username: "0312345678".into(),
        auth_username: Some("auth-0312345678".into()),
        password: PASSWORD.into(),
        expires_s: 600,
        transport,
        mode,
        keepalive_s: 30,
    }
}

fn trunk(mode: TrunkMode) -> Trunk {
    Trunk::new(cfg(mode, Transport::Udp), LOCAL, [9; 32]).unwrap()
}

/// The one request the trunk sent; panics if it sent none or several.
fn sent(t: &mut Trunk) -> Request {
    let (to, bytes) = t.poll_transmit().expect("a request");
    assert_eq!(to, REGISTRAR.parse::<SocketAddr>().unwrap());
    assert!(t.poll_transmit().is_none(), "only one request");
    match parse(&bytes) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn answer(req: &Request, code: u16, extra: &[(&str, &str)]) -> Response {
    let mut w = response_to(&req.common, REGISTRAR.parse().unwrap(), code, Some("srv"));
    for (n, v) in extra {
        w = w.header(n, v);
    }
    match parse(&w.finish()) {
        Ok(Message::Response(r)) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn challenge(alg: &str, nonce: &str, qop: bool, stale: bool) -> String {
    let qop = if qop { ", qop=\"auth\"" } else { "" };
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"sip.example.net\", nonce=\"{nonce}\", algorithm={alg}, opaque=\"op1\"{qop}{stale}"
    )
}

fn creds(req: &Request, header: &str) -> Credentials {
    Credentials::parse(req.common.header(header).expect("credentials")).expect("parsable credentials")
}

/// Starts a register trunk and brings it to Registered through one MD5 challenge.
fn registered(t0: Instant, expires: &str) -> Trunk {
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 401, &[("WWW-Authenticate", &challenge("MD5", "n1", true, false))]), t0);
    let r2 = sent(&mut t);
    t.handle_response(&answer(&r2, 200, &[("Expires", expires)]), t0);
    t
}

// Tests for the REGISTERING state.

#[test]
fn a_full_md5_challenge_round_trip_registers_with_verifiable_credentials() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    assert_eq!(t.state(), TrunkState::Unregistered);
    assert_eq!(t.poll_timeout(), None);
    t.start(t0);
    assert_eq!(t.state(), TrunkState::Registering);
    let r1 = sent(&mut t);
    assert_eq!(r1.method, Method::Register);
    assert_eq!(r1.uri.raw, "sip:sip.example.net");
    assert_eq!(r1.common.header("Expires"), Some("600"));
    assert_eq!(r1.common.header("Contact"), Some("<sip:0312345678@192.0.2.10:5060>"));
    assert_eq!(r1.common.to.uri.raw, "sip:0312345678@sip.example.net");
    assert!(r1.common.header("Authorization").is_none());
    assert!(r1.common.top_via().branch().unwrap().starts_with("z9hG4bK"));

    t.handle_response(&answer(&r1, 401, &[("WWW-Authenticate", &challenge("MD5", "n1", true, false))]), t0);
    let r2 = sent(&mut t);
    assert_eq!(r2.common.call_id, r1.common.call_id);
    assert_eq!(r2.common.from.tag(), r1.common.from.tag());
    assert_eq!(r2.common.cseq.seq, r1.common.cseq.seq + 1);
    assert_ne!(r2.common.top_via().branch(), r1.common.top_via().branch());
    let c = creds(&r2, "Authorization");
    assert_eq!(c.username, "auth-0312345678");
    assert_eq!(c.nonce, "n1");
    assert_eq!(c.uri, "sip:sip.example.net");
    assert_eq!(c.nc.as_deref(), Some("00000001"));
    assert_eq!(c.qop.as_deref(), Some("auth"));
    assert!(c.verify("REGISTER", PASSWORD));
    assert!(!c.verify("REGISTER", "wrong"));
    assert!(r2.common.header("Authorization").unwrap().contains("opaque=\"op1\""));

    let contact = "<sip:0312345678@192.0.2.10:5060>;expires=120, <sip:other@198.51.100.1>;expires=9";
    t.handle_response(&answer(&r2, 200, &[("Contact", contact), ("Expires", "3600")]), t0);
    assert_eq!(t.state(), TrunkState::Registered { expires_at: t0 + Duration::from_secs(120) });
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    assert!(t.poll_transmit().is_none());
}

#[test]
fn an_md5_challenge_without_qop_is_answered_in_the_rfc2069_form() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 401, &[("WWW-Authenticate", &challenge("MD5", "n1", false, false))]), t0);
    let c = creds(&sent(&mut t), "Authorization");
    assert_eq!((&c.qop, &c.nc, &c.cnonce), (&None, &None, &None));
    assert!(c.verify("REGISTER", PASSWORD));
}

#[test]
fn a_sha256_challenge_is_answered_with_sha256() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(
        &answer(&r1, 401, &[("WWW-Authenticate", &challenge("SHA-256", "n1", true, false))]),
        t0,
    );
    let c = creds(&sent(&mut t), "Authorization");
    assert_eq!(c.algorithm, crate::sip::auth::Algorithm::Sha256);
    assert_eq!(c.response.len(), 64);
    assert!(c.verify("REGISTER", PASSWORD));
}

#[test]
fn the_first_supported_challenge_of_several_is_taken() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    let unknown = "Digest realm=\"x\", nonce=\"n0\", algorithm=SHA-512-256".to_string();
    let md5 = challenge("MD5-sess", "n1", true, false);
    t.handle_response(&answer(&r1, 401, &[("WWW-Authenticate", &unknown), ("WWW-Authenticate", &md5)]), t0);
    let c = creds(&sent(&mut t), "Authorization");
    assert_eq!(c.algorithm, crate::sip::auth::Algorithm::Md5Sess);
    assert!(c.verify("REGISTER", PASSWORD));
}

#[test]
fn a_407_is_answered_with_proxy_authorization() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 407, &[("Proxy-Authenticate", &challenge("MD5", "p1", true, false))]), t0);
    let r2 = sent(&mut t);
    assert!(r2.common.header("Authorization").is_none());
    assert!(creds(&r2, "Proxy-Authorization").verify("REGISTER", PASSWORD));
}

#[test]
fn a_challenge_we_cannot_answer_fails_the_attempt() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 401, &[("WWW-Authenticate", "Basic realm=\"x\"")]), t0);
    assert_eq!(
        t.state(),
        TrunkState::Failed { reason: FailReason::UnusableChallenge, retry_at: t0 + BACKOFF_MIN }
    );
    assert!(t.poll_transmit().is_none());
}

#[test]
fn a_server_that_changes_the_nonce_forever_is_given_up_on() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    for i in 0..=MAX_AUTH_ROUNDS {
        let r = sent(&mut t);
        t.handle_response(
            &answer(&r, 401, &[("WWW-Authenticate", &challenge("MD5", &format!("n{i}"), true, false))]),
            t0,
        );
    }
    assert!(matches!(t.state(), TrunkState::Failed { reason: FailReason::UnusableChallenge, .. }));
    assert!(t.poll_transmit().is_none());
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 423, &[("Min-Expires", "1800")]), t0);
    let r2 = sent(&mut t);
    assert_eq!(r2.common.header("Expires"), Some("1800"));
    assert_eq!(r2.common.cseq.seq, r1.common.cseq.seq + 1);
    t.handle_response(&answer(&r2, 200, &[]), t0);
    assert_eq!(t.state(), TrunkState::Registered { expires_at: t0 + Duration::from_secs(1800) });
}

#[test]
fn interval_too_brief_without_a_larger_min_expires_fails() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 423, &[("Min-Expires", "60")]), t0);
    assert!(matches!(t.state(), TrunkState::Failed { reason: FailReason::IntervalTooBrief, .. }));
}

#[test]
fn a_wrong_password_fails_and_the_backoff_grows_to_its_cap() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..8 {
        let r1 = sent(&mut t);
        t.handle_response(
            &answer(&r1, 401, &[("WWW-Authenticate", &challenge("MD5", "same", true, false))]),
            now,
        );
        let r2 = sent(&mut t);
        t.handle_response(
            &answer(&r2, 401, &[("WWW-Authenticate", &challenge("MD5", "same", true, false))]),
            now,
        );
        let TrunkState::Failed { reason, retry_at } = t.state() else {
            panic!("not failed: {:?}", t.state())
        };
        assert_eq!(reason, FailReason::WrongCredentials);
        assert!(t.poll_transmit().is_none(), "no third try with the same nonce");
        assert_eq!(t.poll_timeout(), Some(retry_at));
        delays.push(retry_at - now);
        now = retry_at;
        t.handle_timeout(now);
        assert_eq!(t.state(), TrunkState::Registering);
    }
    let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900, 900]);
}

#[test]
fn a_stale_challenge_for_the_same_nonce_is_answered_again() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r1 = sent(&mut t);
    t.handle_response(&answer(&r1, 401, &[("WWW-Authenticate", &challenge("MD5", "n1", true, false))]), t0);
    let r2 = sent(&mut t);
    t.handle_response(&answer(&r2, 401, &[("WWW-Authenticate", &challenge("MD5", "n1", true, true))]), t0);
    let r3 = sent(&mut t);
    assert!(creds(&r3, "Authorization").verify("REGISTER", PASSWORD));
}

#[test]
fn no_response_retransmits_with_doubling_intervals_then_fails_after_32_s() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let first = sent(&mut t);
    let mut at = Vec::new();
    let mut now = t0;
    while let Some(next) = t.poll_timeout() {
        if next > t0 + REQUEST_TIMEOUT {
            break;
        }
        now = next;
        t.handle_timeout(now);
        while let Some((_, bytes)) = t.poll_transmit() {
            let Ok(Message::Request(r)) = parse(&bytes) else { panic!("bad retransmission") };
            assert_eq!(r.common.top_via().branch(), first.common.top_via().branch());
            at.push((now - t0).as_millis());
        }
    }
    assert_eq!(at, [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert_eq!(now, t0 + REQUEST_TIMEOUT);
    assert_eq!(t.state(), TrunkState::Failed { reason: FailReason::Timeout, retry_at: now + BACKOFF_MIN });
}

#[test]
fn tcp_requests_are_not_retransmitted() {
    let t0 = Instant::now();
    let mut t = Trunk::new(cfg(TrunkMode::Register, Transport::Tcp), LOCAL, [9; 32]).unwrap();
    t.start(t0);
    let r = sent(&mut t);
    assert!(r.common.top_via().raw.starts_with("SIP/2.0/TCP "));
    assert_eq!(r.common.header("Contact"), Some("<sip:0312345678@192.0.2.10:5060;transport=tcp>"));
    assert_eq!(t.poll_timeout(), Some(t0 + REQUEST_TIMEOUT));
}

#[test]
fn a_provisional_answer_slows_retransmission_to_t2() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r = sent(&mut t);
    t.handle_response(&answer(&r, 100, &[]), t0);
    assert_eq!(t.state(), TrunkState::Registering);
    t.handle_timeout(t0 + T1);
    let _ = sent(&mut t);
    assert_eq!(t.poll_timeout(), Some(t0 + T1 + T2));
}

#[test]
fn a_503_with_retry_after_waits_as_asked_within_the_backoff_bounds() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r = sent(&mut t);
    t.handle_response(&answer(&r, 503, &[("Retry-After", "120;duration=5")]), t0);
    let retry_at = t0 + Duration::from_secs(120);
    assert_eq!(t.state(), TrunkState::Failed { reason: FailReason::Rejected(503), retry_at });
}

// Tests for the REGISTERED state.

#[test]
fn refresh_comes_at_half_the_granted_expiry_with_the_next_nonce_count() {
    let t0 = Instant::now();
    let mut t = registered(t0, "3600");
    assert_eq!(t.state(), TrunkState::Registered { expires_at: t0 + Duration::from_secs(3600) });
    let half = t0 + Duration::from_secs(1800);
    assert_eq!(t.poll_timeout(), Some(half));
    t.handle_timeout(half - Duration::from_millis(1));
    assert!(t.poll_transmit().is_none());
    t.handle_timeout(half);
    let r = sent(&mut t);
    // The binding is still valid while the refresh is in flight.
    assert!(matches!(t.state(), TrunkState::Registered { .. }));
    let c = creds(&r, "Authorization");
    assert_eq!(c.nc.as_deref(), Some("00000002"));
    assert!(c.verify("REGISTER", PASSWORD));
    t.handle_response(&answer(&r, 200, &[]), half);
    // No Contact expires and no Expires header: what we asked for.
    assert_eq!(t.state(), TrunkState::Registered { expires_at: half + Duration::from_secs(600) });
    assert_eq!(t.poll_timeout(), Some(half + Duration::from_secs(300)));
}

#[test]
fn a_tiny_grant_is_refreshed_no_faster_than_min_refresh() {
    let t0 = Instant::now();
    let t = registered(t0, "2");
    assert_eq!(t.poll_timeout(), Some(t0 + MIN_REFRESH));
}

#[test]
fn a_200_granting_nothing_is_a_failure() {
    let t0 = Instant::now();
    let t = registered(t0, "0");
    assert!(matches!(t.state(), TrunkState::Failed { reason: FailReason::NothingGranted, .. }));
}

#[test]
fn a_failed_refresh_goes_to_failed_and_retries_later() {
    let t0 = Instant::now();
    let mut t = registered(t0, "600");
    let at = t0 + Duration::from_secs(300);
    t.handle_timeout(at);
    let r = sent(&mut t);
    t.handle_response(&answer(&r, 403, &[]), at);
    assert_eq!(
        t.state(),
        TrunkState::Failed { reason: FailReason::Rejected(403), retry_at: at + BACKOFF_MIN }
    );
}

// Tests for unregistering.

#[test]
fn unregister_sends_expires_zero_and_schedules_nothing_more() {
    let t0 = Instant::now();
    let mut t = registered(t0, "600");
    t.unregister(t0);
    assert_eq!(t.state(), TrunkState::Unregistered);
    let r = sent(&mut t);
    assert_eq!(r.common.header("Expires"), Some("0"));
    assert!(creds(&r, "Authorization").verify("REGISTER", PASSWORD));
    // A fresh challenge on the unregister is answered once.
    t.handle_response(&answer(&r, 401, &[("WWW-Authenticate", &challenge("MD5", "n2", true, false))]), t0);
    let r2 = sent(&mut t);
    assert_eq!(r2.common.header("Expires"), Some("0"));
    t.handle_response(&answer(&r2, 200, &[]), t0);
    assert_eq!(t.state(), TrunkState::Unregistered);
    assert_eq!(t.poll_timeout(), None);
    t.start(t0);
    assert!(t.poll_transmit().is_none(), "a shut-down trunk stays down");
}

#[test]
fn unregister_of_a_never_registered_trunk_sends_nothing() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.unregister(t0);
    assert!(t.poll_transmit().is_none());
    assert_eq!(t.poll_timeout(), None);
}

// Tests for IP-authenticated trunks.

#[test]
fn an_ip_trunk_is_up_on_any_answer_and_down_after_three_missed_keepalives() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::IpAuthenticated);
    t.start(t0);
    assert_eq!(t.state(), TrunkState::Down);
    let o = sent(&mut t);
    assert_eq!(o.method, Method::Options);
    assert!(o.common.header("Authorization").is_none());
    t.handle_response(&answer(&o, 405, &[]), t0);
    assert_eq!(t.state(), TrunkState::Up);
    let every = Duration::from_secs(30);
    assert_eq!(t.poll_timeout(), Some(t0 + every));
    // The next OPTIONS goes out; from here on nothing answers.
    let mut now = t0 + every;
    t.handle_timeout(now);
    let _ = sent(&mut t);
    for missed in 1..=MISSED_KEEPALIVES_DOWN {
        // Run every timer up to the next keepalive: retransmissions happen, no answer comes.
        let next = now + every;
        while let Some(at) = t.poll_timeout().filter(|at| *at < next) {
            t.handle_timeout(at);
            while t.poll_transmit().is_some() {}
        }
        now = next;
        t.handle_timeout(now);
        let expected = if missed < MISSED_KEEPALIVES_DOWN { TrunkState::Up } else { TrunkState::Down };
        assert_eq!(t.state(), expected, "after {missed} missed");
        let latest = sent(&mut t);
        if missed == MISSED_KEEPALIVES_DOWN {
            t.handle_response(&answer(&latest, 200, &[]), now);
            assert_eq!(t.state(), TrunkState::Up);
        }
    }
}

#[test]
fn an_ip_trunk_counts_an_options_timeout_as_missed_once() {
    let t0 = Instant::now();
    let mut c = cfg(TrunkMode::IpAuthenticated, Transport::Tcp);
    c.keepalive_s = 60;
    let mut t = Trunk::new(c, LOCAL, [1; 32]).unwrap();
    t.start(t0);
    let _ = sent(&mut t);
    t.handle_timeout(t0 + REQUEST_TIMEOUT);
    assert_eq!(t.missed, 1);
    t.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(t.missed, 1, "the timed-out OPTIONS is not counted again");
    let _ = sent(&mut t);
}

#[test]
fn unregister_on_an_ip_trunk_only_stops_keepalives() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::IpAuthenticated);
    t.start(t0);
    let _ = sent(&mut t);
    t.unregister(t0);
    assert!(t.poll_transmit().is_none());
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.state(), TrunkState::Unregistered);
}

// Tests for bad input.

#[test]
fn garbage_and_foreign_responses_are_ignored_without_panic() {
    let t0 = Instant::now();
    let mut t = trunk(TrunkMode::Register);
    t.start(t0);
    let r = sent(&mut t);
    // Wrong CSeq, wrong Call-ID, wrong branch, wrong method.
    let mut wrong = answer(&r, 200, &[]);
    wrong.common.cseq.seq += 1;
    t.handle_response(&wrong, t0);
    let mut wrong = answer(&r, 200, &[]);
    wrong.common.call_id = "other@x".into();
    t.handle_response(&wrong, t0);
    let mut wrong = answer(&r, 200, &[]);
    wrong.common.via[0].params = vec![("branch".into(), Some("z9hG4bKforeign".into()))];
    t.handle_response(&wrong, t0);
    let mut wrong = answer(&r, 200, &[]);
    wrong.common.cseq.method = Method::Invite;
    t.handle_response(&wrong, t0);
    assert_eq!(t.state(), TrunkState::Registering);
    // Malformed header values in a matching response.
    let bad = [
        ("WWW-Authenticate", "Digest realm=\"unterminated, nonce=\"x\""),
        ("WWW-Authenticate", "Digest ,,,=,=\"\"\\"),
        ("WWW-Authenticate", "Digest"),
    ];
    t.handle_response(&answer(&r, 401, &bad), t0);
    assert!(matches!(t.state(), TrunkState::Failed { reason: FailReason::UnusableChallenge, .. }));
    t.handle_timeout(t0 + BACKOFF_MIN);
    let r = sent(&mut t);
    let long = format!("Digest realm=\"r\", nonce=\"{}\"", "n".repeat(digest::MAX_CHALLENGE_LEN));
    t.handle_response(&answer(&r, 401, &[("WWW-Authenticate", &long)]), t0);
    assert!(t.poll_transmit().is_none());
    t.handle_timeout(t0 + BACKOFF_MIN * 4);
    let r = sent(&mut t);
    let huge_expiry =
        [("Expires", "4294967295"), ("Contact", "<sip:0312345678@192.0.2.10:5060>;expires=junk")];
    t.handle_response(&answer(&r, 200, &huge_expiry), t0);
    assert_eq!(
        t.state(),
        TrunkState::Registered { expires_at: t0 + Duration::from_secs(u64::from(MAX_EXPIRES_S)) }
    );
    // A response when nothing is pending.
    t.handle_response(&answer(&r, 200, &[]), t0);
    t.handle_timeout(t0);
    t.handle_timeout(t0);
}

#[test]
fn a_config_that_would_inject_headers_is_refused() {
    let mut c = cfg(TrunkMode::Register, Transport::Udp);
    c.username = "bob\r\nX-Evil: 1".into();
    assert_eq!(Trunk::new(c, LOCAL, [0; 32]).unwrap_err(), ConfigError::BadField("username"));
    let c = cfg(TrunkMode::Register, Transport::Udp);
    assert_eq!(Trunk::new(c, "", [0; 32]).unwrap_err(), ConfigError::BadField("local_contact"));
    let mut c = cfg(TrunkMode::Register, Transport::Udp);
    c.expires_s = 0;
    assert_eq!(Trunk::new(c, LOCAL, [0; 32]).unwrap_err(), ConfigError::BadField("expires_s"));
}

#[test]
fn the_password_never_appears_in_debug_output() {
    let t = trunk(TrunkMode::Register);
    assert!(!format!("{t:?}").contains(PASSWORD));
}

#[test]
fn two_trunks_with_different_names_use_different_call_ids() {
    let a = trunk(TrunkMode::Register);
    let mut c = cfg(TrunkMode::Register, Transport::Udp);
    c.name = "backup".into();
    let b = Trunk::new(c, LOCAL, [9; 32]).unwrap();
    assert_ne!(a.call_id(), b.call_id());
}
