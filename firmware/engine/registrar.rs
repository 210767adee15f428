//! The registrar (RFC 3261 §10.3): bindings of extension → contacts, with expiry.
//!
//! Requests to a phone are sent to the address its REGISTER came from (not the host in its
//! Contact), so phones behind NAT and phones with wrong Contact hosts are reachable.

use crate::sip::message::{Contacts, Request};
use crate::sip::Peer;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Shortest registration accepted (answered 423 with Min-Expires below it, RFC 3261 §10.3 step 7).
pub const MIN_EXPIRES_S: u32 = 60;
/// Longest registration granted; longer requests are shortened.
pub const MAX_EXPIRES_S: u32 = 3600;
/// Granted when the phone asks for nothing.
pub const DEFAULT_EXPIRES_S: u32 = 3600;
/// Most contacts per extension; a REGISTER beyond it is refused (403) so one extension cannot fill
/// memory.
pub const MAX_BINDINGS_PER_EXTENSION: usize = 10;

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI as the phone sent it (the Request-URI of calls to it).
    pub uri: String,
    /// Where the REGISTER came from: calls go there.
    pub peer: Peer,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// Call-ID of the REGISTER that made it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// The phone's User-Agent, for the console.
    pub user_agent: Option<String>,
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// An expiry under [`MIN_EXPIRES_S`] (answer 423).
    IntervalTooBrief,
    /// A malformed Contact, or `*` without Expires: 0 (answer 400).
    BadContact,
    /// More than [`MAX_BINDINGS_PER_EXTENSION`] contacts (answer 403).
    TooManyContacts,
}

/// All bindings.
#[derive(Debug, Default)]
pub struct Registrar {
    bindings: HashMap<String, Vec<Binding>>,
}

impl Registrar {
    /// Applies a REGISTER for `ext` (already authenticated) and returns the bindings now current.
    pub fn apply(
        &mut self,
        ext: &str,
        req: &Request,
        peer: Peer,
        now: Instant,
    ) -> Result<Vec<Binding>, RegisterError> {
        let header_expires = req.expires().map_err(|_| RegisterError::BadContact)?;
        let contacts = req.contacts().map_err(|_| RegisterError::BadContact)?;
        let list = self.bindings.entry(ext.to_string()).or_default();
        list.retain(|b| b.expires_at > now);
        match contacts {
            Contacts::Star => {
                // §10.3 step 6: `*` only with Expires: 0 — remove every binding.
                if header_expires != Some(0) {
                    return Err(RegisterError::BadContact);
                }
                list.clear();
            }
            Contacts::List(contacts) => {
                // Validate everything first so a refused REGISTER changes nothing.
                let mut updates = Vec::with_capacity(contacts.len());
                for c in &contacts {
                    let expires = match c.param("expires") {
                        Some(v) => {
                            crate::sip::message::parse_delta_seconds(v).ok_or(RegisterError::BadContact)?
                        }
                        None => header_expires.unwrap_or(DEFAULT_EXPIRES_S),
                    };
                    if expires != 0 && expires < MIN_EXPIRES_S {
                        return Err(RegisterError::IntervalTooBrief);
                    }
                    updates.push((c.uri.raw.clone(), expires.min(MAX_EXPIRES_S)));
                }
                for (uri, expires) in updates {
                    list.retain(|b| b.uri != uri);
                    if expires > 0 {
                        if list.len() >= MAX_BINDINGS_PER_EXTENSION {
                            return Err(RegisterError::TooManyContacts);
                        }
                        list.push(Binding {
                            uri,
                            peer,
                            expires_at: now + Duration::from_secs(u64::from(expires)),
                            call_id: req.common.call_id.clone(),
                            cseq: req.common.cseq.seq,
                            user_agent: req.common.header("User-Agent").map(str::to_string),
                        });
                    }
                }
            }
        }
        let current = list.clone();
        if list.is_empty() {
            self.bindings.remove(ext);
        }
        Ok(current)
    }

    /// Live contacts of an extension.
    pub fn contacts(&self, ext: &str, now: Instant) -> Vec<&Binding> {
        self.bindings.get(ext).map(|l| l.iter().filter(|b| b.expires_at > now).collect()).unwrap_or_default()
    }

    /// The extension a contact URI is bound to (which phone an INVITE to `uri` rings).
    pub fn owner_of(&self, uri: &str) -> Option<&str> {
        self.bindings.iter().find(|(_, l)| l.iter().any(|b| b.uri == uri)).map(|(e, _)| e.as_str())
    }

    /// True when `peer` holds a live binding of `ext` (trusted INVITE source).
    pub fn is_bound_from(&self, ext: &str, peer: Peer, now: Instant) -> bool {
        self.contacts(ext, now).iter().any(|b| b.peer == peer)
    }

    /// Drops every binding of `ext` (its extension was deleted or its password changed);
    /// returns how many.
    pub fn remove(&mut self, ext: &str) -> usize {
        self.bindings.remove(ext).map_or(0, |l| l.len())
    }

    /// Drops lapsed bindings; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        self.bindings.retain(|_, l| {
            let before = l.len();
            l.retain(|b| b.expires_at > now);
            removed += before - l.len();
            !l.is_empty()
        });
        removed
    }

    /// Every live binding, by extension.
    pub fn all(&self, now: Instant) -> Vec<(String, Binding)> {
        let mut v: Vec<(String, Binding)> = self
            .bindings
            .iter()
            .flat_map(|(e, l)| l.iter().filter(|b| b.expires_at > now).map(move |b| (e.clone(), b.clone())))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.uri.cmp(&b.1.uri)));
        v
    }
}
