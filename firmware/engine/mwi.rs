//! Message waiting in the engine (RFC 3842 over RFC 6665): `SUBSCRIBE` with
//! `Event: message-summary` is answered 200 and followed by a NOTIFY of the box's counts, and
//! every count change the daemon reports NOTIFYs the box's subscribers again. The table
//! (expiry, limits, when to speak) is `apps::voicemail::mwi::MwiTable`; this file keeps each
//! subscription's dialog and sends the NOTIFYs.
//!
//! A phone may subscribe to its own extension's box only (authenticated like a call: digest, or
//! the registered source when `trust_registered_source`); a ring group's box is not offered to
//! subscribers.
//!
//! Unsolicited NOTIFYs (RFC 3842 §3: no subscription, out of any dialog) go to every registered
//! contact of the box's phones ([`Engine::box_owner`]: the extension, or every member of a
//! group) that has no subscription to the box: on every count change, and to the new contacts
//! of a REGISTER. Only boxes in use get them ([`Engine::box_in_use`]).

use super::{AuthOutcome, Engine, Purpose, TimerKey};
use crate::apps::voicemail::mailbox::BoxNumber;
use crate::apps::voicemail::mwi::{
    message_summary, MwiOutput, MwiTable, SubId, SubState, SubscribeAnswer, CONTENT_TYPE, EVENT,
};
use crate::sip::message::Request;
use crate::sip::transaction::ServerTxnId;
use crate::sip::writer::{self, response_to, Writer};
use crate::sip::Peer;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most unsolicited NOTIFYs per count change: a group of 64 members with a few phones each;
/// beyond it the rest of the lamps wait for their next REGISTER.
const MAX_UNSOLICITED_PER_CHANGE: usize = 256;

/// The dialog of one subscription (the box is the notifier, UAS of the SUBSCRIBE).
#[derive(Debug, Clone)]
struct SubDialog {
    peer: Peer,
    call_id: String,
    /// Our To with our tag.
    local_party: String,
    /// The subscriber's From with its tag.
    remote_party: String,
    remote_tag: String,
    remote_target: String,
    local_cseq: u32,
    ext: String,
}

/// Subscriptions and their dialogs.
#[derive(Debug)]
pub(super) struct Mwi {
    table: MwiTable,
    /// The `Message-Account` host of NOTIFY bodies (the table's).
    host: String,
    dialogs: HashMap<SubId, SubDialog>,
    /// (Call-ID, subscriber's tag) → subscription, for refreshes.
    index: HashMap<(String, String), SubId>,
    next: u64,
}

impl Mwi {
    pub(super) fn new(host: &str) -> Mwi {
        Mwi {
            table: MwiTable::new(host),
            host: host.to_string(),
            dialogs: HashMap::new(),
            index: HashMap::new(),
            next: 1,
        }
    }
}

impl Engine {
    /// A SUBSCRIBE: `message-summary` for the subscriber's own box, else refused.
    pub(super) fn handle_subscribe(&mut self, now: Instant, peer: Peer, txn: ServerTxnId, req: &Request) {
        let event = req.common.header("Event").unwrap_or_default();
        let package = event.split(';').next().unwrap_or_default().trim();
        if !package.eq_ignore_ascii_case(EVENT) {
            return self.reply_status(txn, req, peer, 489, &[("Allow-Events", EVENT.to_string())], now);
        }
        let ext = req.common.from.uri.user_unescaped().unwrap_or_default();
        let trusted = self.cfg.trust_registered_source && self.registrar.is_bound_from(&ext, peer, now);
        if !trusted {
            match self.authenticate(now, peer, req, &ext) {
                AuthOutcome::Ok => {}
                AuthOutcome::Challenge { stale } => return self.challenge(now, peer, txn, req, stale, false),
                AuthOutcome::Forbidden => return self.reply_status(txn, req, peer, 403, &[], now),
            }
        }
        let wanted = req.uri.user_unescaped().unwrap_or_else(|| ext.clone());
        let Some(box_no) =
            BoxNumber::parse(&wanted).filter(|_| wanted == ext && self.extensions.contains_key(&ext))
        else {
            log::info!("MWI: {ext} may not subscribe to box {wanted}; 403");
            return self.reply_status(txn, req, peer, 403, &[], now);
        };
        let remote_tag = req.common.from.tag().unwrap_or_default().to_string();
        let key = (req.common.call_id.clone(), remote_tag.clone());
        let existing = self.mwi.index.get(&key).copied();
        if req.common.to.tag().is_some() && existing.is_none() {
            return self.reply_status(txn, req, peer, 481, &[], now);
        }
        let requested =
            req.common.header("Expires").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let sub = existing.unwrap_or_else(|| {
            let id = SubId(self.mwi.next);
            self.mwi.next += 1;
            id
        });
        let answer = self.mwi.table.subscribe(sub, box_no, requested, now);
        match answer {
            SubscribeAnswer::TooBrief { min } => {
                self.reply_status(txn, req, peer, 423, &[("Min-Expires", min.as_secs().to_string())], now)
            }
            SubscribeAnswer::Full => {
                self.reply_status(txn, req, peer, 503, &[("Retry-After", "60".into())], now)
            }
            SubscribeAnswer::Accepted { expires } => {
                let local_tag = match (existing, req.common.to.tag()) {
                    (Some(_), Some(t)) => t.to_string(),
                    _ => self.token(),
                };
                if existing.is_none() {
                    let remote_target = req
                        .contacts()
                        .ok()
                        .and_then(|c| match c {
                            crate::sip::message::Contacts::List(l) => l.into_iter().next(),
                            crate::sip::message::Contacts::Star => None,
                        })
                        .map(|c| c.uri.raw)
                        .unwrap_or_else(|| req.common.from.uri.raw.clone());
                    let d = SubDialog {
                        peer,
                        call_id: req.common.call_id.clone(),
                        local_party: format!(
                            "{};tag={local_tag}",
                            req.common.header("To").unwrap_or_default()
                        ),
                        remote_party: req.common.header("From").unwrap_or_default().to_string(),
                        remote_tag,
                        remote_target,
                        local_cseq: 0,
                        ext: ext.clone(),
                    };
                    self.mwi.index.insert(key, sub);
                    self.mwi.dialogs.insert(sub, d);
                    log::info!("MWI: {ext} subscribed to box {ext} for {} s", expires.as_secs());
                }
                let ok = response_to(&req.common, peer.addr, 200, Some(&local_tag))
                    .header("Expires", expires.as_secs())
                    .header("Contact", self.contact_for(&ext, &peer))
                    .header("Allow", writer::ALLOW)
                    .finish();
                self.reply(txn, 200, ok, now);
                self.flush_mwi(now);
            }
        }
    }

    /// The daemon's new counts of a box: subscribers hear of a change.
    pub(super) fn mwi_counts(
        &mut self,
        box_no: &BoxNumber,
        counts: crate::apps::voicemail::mailbox::Counts,
        now: Instant,
    ) {
        self.mwi.table.update_counts(box_no, counts, now);
        self.flush_mwi(now);
    }

    /// The MWI timer: expired subscriptions get their final NOTIFY.
    pub(super) fn on_mwi_timer(&mut self, now: Instant) {
        self.mwi.table.handle_timeout(now);
        self.flush_mwi(now);
    }

    /// Sends what the table asks and arms its timer.
    fn flush_mwi(&mut self, now: Instant) {
        while let Some(out) = self.mwi.table.poll_output() {
            match out {
                MwiOutput::Notify { sub, state, body } => self.send_mwi_notify(now, sub, state, &body),
                MwiOutput::Unsolicited { box_no, body } => {
                    self.send_unsolicited_mwi(now, &box_no, &body, None);
                }
            }
        }
        if let Some(at) = self.mwi.table.poll_timeout() {
            self.arm(at, TimerKey::Mwi);
        }
    }

    /// A REGISTER of `ext` succeeded; `before` are the contact URIs bound before it. Each new
    /// contact hears the counts of every box in use whose phones include `ext` (its own, its
    /// groups'), so a phone that boots or re-registers after a restart lights its lamp.
    pub(super) fn mwi_registered(&mut self, now: Instant, ext: &str, before: &[String]) {
        let fresh: Vec<String> = self
            .registrar
            .contacts(ext, now)
            .iter()
            .filter(|b| !before.contains(&b.uri))
            .map(|b| b.uri.clone())
            .collect();
        if fresh.is_empty() {
            return;
        }
        let numbers = std::iter::once(ext.to_string()).chain(self.dialplan.group_numbers());
        let boxes: Vec<BoxNumber> = numbers
            .filter(|n| self.box_owner(n).is_some_and(|o| o.extensions().iter().any(|e| e == ext)))
            .filter_map(|n| BoxNumber::parse(&n))
            .filter(|b| self.box_in_use(b))
            .collect();
        for b in boxes {
            let body = message_summary(&b, &self.mwi.host, self.mwi.table.counts(&b));
            self.send_unsolicited_mwi(now, &b, &body, Some((ext, &fresh)));
        }
    }

    /// Out-of-dialog NOTIFYs of a box's counts to its phones' registered contacts (only `only`'s
    /// contacts of that extension when given), skipping contacts subscribed to the box.
    fn send_unsolicited_mwi(
        &mut self,
        now: Instant,
        box_no: &BoxNumber,
        body: &str,
        only: Option<(&str, &[String])>,
    ) {
        if !self.box_in_use(box_no) {
            return;
        }
        let Some(owner) = self.box_owner(box_no.as_str()) else { return };
        let mut targets: Vec<(String, String, Peer)> = Vec::new();
        for ext in owner.extensions() {
            if only.is_some_and(|(e, _)| e != ext) {
                continue;
            }
            for (uri, peer) in self.contacts_of(&ext, now) {
                if only.is_some_and(|(_, uris)| !uris.contains(&uri)) {
                    continue;
                }
                let subscribed =
                    self.mwi.dialogs.values().any(|d| d.peer == peer && d.ext == box_no.as_str());
                if !subscribed && targets.len() < MAX_UNSOLICITED_PER_CHANGE {
                    targets.push((ext.clone(), uri, peer));
                }
            }
        }
        for (ext, uri, peer) in targets {
            let branch = self.branch();
            // The Call-ID of the phone's REGISTER when there is one: the NOTIFY is still out of
            // any dialog (new From tag, no To tag), and a phone can tie it to its registration.
            let reg_call_id =
                self.registrar.contacts(&ext, now).iter().find(|c| c.uri == uri).map(|c| c.call_id.clone());
            let tag = self.token();
            let call_id = reg_call_id.unwrap_or_else(|| format!("mwi-{}", self.token()));
            let host = self.host_for(&peer);
            let bytes = Writer::request("NOTIFY", &uri)
                .header("Via", self.via_for(&peer, &branch))
                .header("Max-Forwards", 70)
                .header("From", format_args!("<sip:{box_no}@{host}>;tag={tag}"))
                .header("To", format_args!("<sip:{ext}@{host}>"))
                .header("Call-ID", &call_id)
                .header("CSeq", "1 NOTIFY")
                .header("Contact", self.contact_for(box_no.as_str(), &peer))
                .header("Event", EVENT)
                // RFC 6665 §8.2.3 asks every NOTIFY for the header; there is no subscription to
                // keep alive, so it says this one ends here.
                .header("Subscription-State", "terminated;reason=noresource")
                .header("User-Agent", writer::SERVER)
                .finish_with_body(CONTENT_TYPE, body.as_bytes());
            log::info!("MWI: unsolicited NOTIFY of box {box_no} to {ext} at {peer}");
            let txn = self.client.start(&branch, false, bytes.clone(), peer, 0, now);
            self.purposes.insert(txn, Purpose::Fire { call: 0 });
            self.transmit(peer, bytes);
        }
    }

    fn send_mwi_notify(&mut self, now: Instant, sub: SubId, state: SubState, body: &str) {
        let terminated = !matches!(state, SubState::Active { .. });
        let state = match state {
            SubState::Active { expires_secs } => format!("active;expires={expires_secs}"),
            SubState::TerminatedTimeout => "terminated;reason=timeout".to_string(),
            SubState::Terminated => "terminated".to_string(),
        };
        let branch = self.branch();
        let Some(d) = self.mwi.dialogs.get_mut(&sub) else { return };
        d.local_cseq += 1;
        let d = d.clone();
        let bytes = Writer::request("NOTIFY", &d.remote_target)
            .header("Via", self.via_for(&d.peer, &branch))
            .header("Max-Forwards", 70)
            .header("From", &d.local_party)
            .header("To", &d.remote_party)
            .header("Call-ID", &d.call_id)
            .header("CSeq", format_args!("{} NOTIFY", d.local_cseq))
            .header("Contact", self.contact_for(&d.ext, &d.peer))
            .header("Event", EVENT)
            .header("Subscription-State", state)
            .header("User-Agent", writer::SERVER)
            .finish_with_body(CONTENT_TYPE, body.as_bytes());
        let txn = self.client.start(&branch, false, bytes.clone(), d.peer, 0, now);
        self.purposes.insert(txn, Purpose::Fire { call: 0 });
        self.transmit(d.peer, bytes);
        if terminated {
            self.mwi.dialogs.remove(&sub);
            self.mwi.index.remove(&(d.call_id, d.remote_tag));
        }
    }
}
