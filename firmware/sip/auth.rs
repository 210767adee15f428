//! Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) and the failed-auth guard.
//!
//! Nonces are stateless: `<seconds-hex>.<mac>` where mac = SHA-256(secret, seconds, realm)
//! truncated. A nonce older than [`NONCE_LIFETIME_S`] is *stale*: a phone that knows the password
//! gets a fresh challenge with `stale=true` and is not counted as a failure. Replay within the
//! lifetime (nonce-count tracking) is not checked; see `docs/security.md`.

use crate::config::DigestAlgorithm;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a nonce is accepted. Phones re-register every few minutes and re-use the nonce.
pub const NONCE_LIFETIME_S: u64 = 300;
/// Failed authentications from one address within [`GUARD_WINDOW`] before it is blocked.
pub const GUARD_MAX_FAILURES: u32 = 10;
/// The window the failures are counted in.
pub const GUARD_WINDOW: Duration = Duration::from_secs(60);
/// How long a blocked address is refused.
pub const GUARD_BLOCK: Duration = Duration::from_secs(300);
/// Most source addresses tracked; the oldest entry is evicted beyond this (bounded memory
/// under a spoofed-source flood).
pub const GUARD_MAX_TRACKED: usize = 4096;

/// The digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617), what most desk phones do.
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The parsed `Authorization` / `Proxy-Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// username
    pub username: String,
    /// realm
    pub realm: String,
    /// nonce
    pub nonce: String,
    /// digest-uri
    pub uri: String,
    /// response (hex)
    pub response: String,
    /// algorithm (MD5 when absent)
    pub algorithm: Algorithm,
    /// cnonce
    pub cnonce: Option<String>,
    /// qop (`auth`)
    pub qop: Option<String>,
    /// nonce-count
    pub nc: Option<String>,
}

impl Credentials {
    /// Parses a `Digest ...` credentials value; `None` when it is not one we can check.
    pub fn parse(value: &str) -> Option<Credentials> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut fields: HashMap<String, String> = HashMap::new();
        for part in super::message::split_unquoted(rest, b',') {
            let (k, v) = part.split_once('=')?;
            let v = v.trim();
            let v = match v.strip_prefix('"') {
                Some(q) => q.strip_suffix('"')?.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_string(),
            };
            fields.insert(k.trim().to_ascii_lowercase(), v);
        }
        let algorithm = match fields.get("algorithm") {
            Some(a) => Algorithm::parse(a)?,
            None => Algorithm::Md5,
        };
        Some(Credentials {
            username: fields.remove("username")?,
            realm: fields.remove("realm")?,
            nonce: fields.remove("nonce")?,
            uri: fields.remove("uri")?,
            response: fields.remove("response")?.to_ascii_lowercase(),
            algorithm,
            cnonce: fields.remove("cnonce"),
            qop: fields.remove("qop"),
            nc: fields.remove("nc"),
        })
    }

    /// True when `response` is right for this password and method.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!("{}:{}:{}", self.username, self.realm, password));
        if matches!(alg, Algorithm::Md5Sess | Algorithm::Sha256Sess) {
            let Some(cnonce) = &self.cnonce else {
                return false;
            };
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{}", self.uri));
        let expected = match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) if qop.eq_ignore_ascii_case("auth") => {
                alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce))
            }
            (Some(_), _, _) => return false,
            (None, _, _) => alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        constant_time_eq(expected.as_bytes(), self.response.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Issued by us and still within its lifetime.
    Fresh,
    /// Issued by us (or by a previous boot) but expired: re-challenge with `stale=true`.
    Stale,
    /// Not one of ours.
    Invalid,
}

/// Issues and checks stateless nonces.
#[derive(Debug, Clone)]
pub struct NonceSource {
    secret: [u8; 32],
    epoch: Instant,
}

impl NonceSource {
    /// A nonce source keyed by `secret`; `epoch` is the instant nonce timestamps count from.
    pub fn new(secret: [u8; 32], epoch: Instant) -> NonceSource {
        NonceSource { secret, epoch }
    }

    fn mac(&self, secs: u64, realm: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(secs.to_be_bytes());
        h.update(realm.as_bytes());
        hex(&h.finalize()[..12])
    }

    /// A fresh nonce.
    pub fn issue(&self, now: Instant, realm: &str) -> String {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        format!("{secs:x}.{}", self.mac(secs, realm))
    }

    /// Checks a nonce from credentials.
    pub fn check(&self, nonce: &str, now: Instant, realm: &str) -> NonceState {
        let Some((secs, mac)) = nonce.split_once('.') else {
            return NonceState::Invalid;
        };
        let Ok(secs) = u64::from_str_radix(secs, 16) else {
            return NonceState::Invalid;
        };
        if !constant_time_eq(mac.as_bytes(), self.mac(secs, realm).as_bytes()) {
            return NonceState::Invalid;
        }
        let age = now.saturating_duration_since(self.epoch).as_secs().saturating_sub(secs);
        if age > NONCE_LIFETIME_S {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }
}

/// The `WWW-Authenticate` / `Proxy-Authenticate` values, one per offered algorithm, in the
/// configured order (RFC 8760 §2.4: a client takes the first one it supports).
///
/// The default offers MD5 only: several stacks (baresip 1.0's libre, SIPp) fail on a list with an
/// algorithm they do not know instead of skipping it. See `docs/security.md`.
pub fn challenges(realm: &str, nonce: &str, stale: bool, algorithms: &[DigestAlgorithm]) -> Vec<String> {
    let stale = if stale { ", stale=true" } else { "" };
    algorithms
        .iter()
        .map(|a| {
            let name = match a {
                DigestAlgorithm::Md5 => "MD5",
                DigestAlgorithm::Sha256 => "SHA-256",
            };
            format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={name}, qop=\"auth\"{stale}")
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct GuardEntry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
    last_seen: Instant,
}

/// Counts failed authentications per source address and blocks brute-forcers.
///
/// Only wrong credentials count: the 401/407 challenge round every phone goes through first, and
/// stale nonces, do not.
#[derive(Debug, Default)]
pub struct AuthGuard {
    entries: HashMap<IpAddr, GuardEntry>,
}

impl AuthGuard {
    /// True when `ip` is currently blocked.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.entries.get(&ip).and_then(|e| e.blocked_until).is_some_and(|until| now < until)
    }

    /// Records a failure; returns true when this failure blocked the address.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.entries.contains_key(&ip) && self.entries.len() >= GUARD_MAX_TRACKED {
            if let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| *k) {
                self.entries.remove(&oldest);
            }
        }
        let e = self.entries.entry(ip).or_insert(GuardEntry {
            window_start: now,
            failures: 0,
            blocked_until: None,
            last_seen: now,
        });
        e.last_seen = now;
        if now.saturating_duration_since(e.window_start) > GUARD_WINDOW {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if e.failures >= GUARD_MAX_FAILURES && e.blocked_until.is_none_or(|u| u <= now) {
            e.blocked_until = Some(now + GUARD_BLOCK);
            e.failures = 0;
            return true;
        }
        false
    }

    /// A success clears the address's failure count.
    pub fn record_success(&mut self, ip: IpAddr) {
        self.entries.remove(&ip);
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_style_md5_response_verifies() {
        // Values computed independently with Python's hashlib.
        let c = Credentials::parse(
            "Digest username=\"201\", realm=\"hakoden\", nonce=\"abc\", uri=\"sip:127.0.0.1\", \
             response=\"4f2b2b5a5e3c7c2a76f3a0b1e4e0f2f9\", algorithm=MD5",
        )
        .unwrap();
        let ha1 = Algorithm::Md5.hash("201:hakoden:secret");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:127.0.0.1");
        let good = Algorithm::Md5.hash(&format!("{ha1}:abc:{ha2}"));
        let c = Credentials { response: good, ..c };
        assert!(c.verify("REGISTER", "secret"));
        assert!(!c.verify("REGISTER", "wrong"));
    }

    #[test]
    fn md5_of_empty_string_is_the_known_value() {
        assert_eq!(Algorithm::Md5.hash(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            Algorithm::Sha256.hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn nonces_go_stale_and_foreign_ones_are_invalid() {
        let t0 = Instant::now();
        let src = NonceSource::new([7; 32], t0);
        let n = src.issue(t0, "r");
        assert_eq!(src.check(&n, t0 + Duration::from_secs(10), "r"), NonceState::Fresh);
        assert_eq!(src.check(&n, t0 + Duration::from_secs(NONCE_LIFETIME_S + 1), "r"), NonceState::Stale);
        assert_eq!(src.check(&n, t0, "other"), NonceState::Invalid);
        assert_eq!(NonceSource::new([8; 32], t0).check(&n, t0, "r"), NonceState::Invalid);
        assert_eq!(src.check("zz.zz", t0, "r"), NonceState::Invalid);
    }

    #[test]
    fn the_guard_blocks_after_repeated_failures_only() {
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let mut g = AuthGuard::default();
        for _ in 0..GUARD_MAX_FAILURES - 1 {
            assert!(!g.record_failure(ip, t0));
        }
        assert!(!g.is_blocked(ip, t0));
        assert!(g.record_failure(ip, t0));
        assert!(g.is_blocked(ip, t0 + Duration::from_secs(1)));
        assert!(!g.is_blocked(ip, t0 + GUARD_BLOCK + Duration::from_secs(1)));
    }
}
