//! The client half of digest authentication (RFC 3261 §22.2, RFC 7616, RFC 8760): read a
//! `WWW-Authenticate`/`Proxy-Authenticate` challenge and answer it. The hash rules mirror
//! [`crate::sip::auth::Credentials::verify`], which the tests use as the oracle.

use crate::sip::message::split_unquoted;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Longest challenge header value we read; a provider's is ~200 bytes, this bounds the echo.
pub(crate) const MAX_CHALLENGE_LEN: usize = 2048;

/// A digest algorithm we can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Alg {
    fn parse(s: &str) -> Option<Alg> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Alg::Md5),
            "MD5-SESS" => Some(Alg::Md5Sess),
            "SHA-256" => Some(Alg::Sha256),
            "SHA-256-SESS" => Some(Alg::Sha256Sess),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Md5Sess => "MD5-sess",
            Alg::Sha256 => "SHA-256",
            Alg::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Alg::Md5 | Alg::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Alg::Sha256 | Alg::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) opaque: Option<String>,
    pub(crate) alg: Alg,
    /// True when the server offered `qop=auth` (we then always use it).
    pub(crate) qop_auth: bool,
    pub(crate) stale: bool,
}

impl Challenge {
    /// Parses one `Digest ...` challenge; `None` for other schemes, unknown algorithms, a qop list
    /// without `auth` (we do not do auth-int), or oversized values.
    pub(crate) fn parse(value: &str) -> Option<Challenge> {
        if value.len() > MAX_CHALLENGE_LEN {
            return None;
        }
        let value = value.trim();
        let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let (mut realm, mut nonce, mut opaque, mut alg, mut qop, mut stale) =
            (None, None, None, Alg::Md5, None, false);
        for part in split_unquoted(rest, b',') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let v = unquote(v.trim())?;
            match k.trim().to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => opaque = Some(v),
                "algorithm" => alg = Alg::parse(&v)?,
                "qop" => qop = Some(v),
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        let qop_auth = match qop {
            None => false,
            Some(list) => {
                if !list.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) {
                    return None;
                }
                true
            }
        };
        let nonce = nonce.filter(|n| !n.is_empty())?;
        Some(Challenge { realm: realm?, nonce, opaque, alg, qop_auth, stale })
    }

    /// The `Authorization` value for `method uri`. `nc` counts uses of this nonce (from 1).
    pub(crate) fn answer(
        &self,
        method: &str,
        uri: &str,
        user: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.alg;
        let mut ha1 = alg.hash(&format!("{user}:{}:{password}", self.realm));
        if matches!(alg, Alg::Md5Sess | Alg::Sha256Sess) {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let sess = matches!(alg, Alg::Md5Sess | Alg::Sha256Sess);
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri)
        );
        let response = if self.qop_auth {
            alg.hash(&format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let _ = write!(out, ", response=\"{response}\", algorithm={}", alg.name());
        if self.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\"");
        } else if sess {
            // -sess without qop still needs the cnonce the HA1 was built from.
            let _ = write!(out, ", cnonce=\"{cnonce}\"");
        }
        if let Some(o) = &self.opaque {
            let _ = write!(out, ", opaque=\"{}\"", quote(o));
        }
        out
    }
}

fn unquote(v: &str) -> Option<String> {
    match v.strip_prefix('"') {
        None => Some(v.to_string()),
        Some(q) => {
            let inner = q.strip_suffix('"')?;
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            Some(out)
        }
    }
}

fn quote(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::auth::Credentials;

    #[test]
    fn the_rfc2617_example_gives_the_published_md5_response() {
        // RFC 2617 §3.5 (qop=auth, nc=00000001, cnonce 0a4f113b).
        let c = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            alg: Alg::Md5,
            qop_auth: true,
            stale: false,
        };
        let v = c.answer("GET", "/dir/index.html", "Mufasa", "Circle Of Life", 1, "0a4f113b");
        assert!(v.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{v}");
        assert!(Credentials::parse(&v).unwrap().verify("GET", "Circle Of Life"));
    }

    #[test]
    fn challenges_with_unknown_algorithms_or_only_auth_int_are_refused() {
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256").is_none());
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").is_none());
        assert!(Challenge::parse("Basic realm=\"r\"").is_none());
        assert!(Challenge::parse("Digest realm=\"r\"").is_none());
        let c =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth,auth-int\", stale=TRUE").unwrap();
        assert!(c.qop_auth && c.stale);
    }
}
