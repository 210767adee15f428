//! Message waiting (RFC 3842): the `application/simple-message-summary` body and a sans-IO
//! table of `message-summary` subscriptions (RFC 6665) plus the unsolicited NOTIFYs to a box's
//! phones.
//!
//! Contract: at start the engine calls [`MwiTable::update_counts`] for every box from the store
//! (`VoicemailStore::counts`), and again after every store change of a box; the table only
//! speaks when the counts differ from what it last said (or the box is new to it), so the lamp
//! is never stale and never flickers. SUBSCRIBE goes to [`MwiTable::subscribe`] (the answer maps
//! to 200 / 423 / 503), a dialog that ends to [`MwiTable::unsubscribe`]. After each call drain
//! [`MwiTable::poll_output`] and arm a timer at [`MwiTable::poll_timeout`] for
//! [`MwiTable::handle_timeout`].

use super::mailbox::{BoxNumber, Counts};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The body's media type (RFC 3842 §5).
pub const CONTENT_TYPE: &str = "application/simple-message-summary";

/// The event package (RFC 3842 §3).
pub const EVENT: &str = "message-summary";

/// Most live subscriptions: a 100-phone office subscribing each phone to two boxes is 200;
/// beyond it a SUBSCRIBE gets 503 rather than growing the table.
pub const MAX_SUBSCRIPTIONS: usize = 512;

/// Most boxes whose counts the table remembers (extensions + groups + queues of one box).
pub const MAX_TRACKED_BOXES: usize = 2048;

/// Shortest subscription accepted; shorter asks get 423 Interval Too Brief (RFC 6665 §4.2.1.1)
/// so a phone cannot make us re-NOTIFY every second.
pub const MIN_EXPIRES: Duration = Duration::from_secs(60);

/// Longest subscription granted; longer asks are cut down. An hour bounds how long a phone
/// that vanished keeps its slot.
pub const MAX_EXPIRES: Duration = Duration::from_secs(3600);

/// Granted when the SUBSCRIBE has no Expires header (the package's default, RFC 3842 §4).
pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(3600);

/// Renders the RFC 3842 body for a box: `Messages-Waiting`, `Message-Account` and
/// `Voice-Message: new/old (urgent new/urgent old)`. Old counts both heard folders (old and
/// work); there are no urgent messages yet, so those are 0.
pub fn message_summary(box_no: &BoxNumber, host: &str, counts: Counts) -> String {
    let mut s = String::with_capacity(128);
    let waiting = if counts.new > 0 { "yes" } else { "no" };
    let _ = write!(s, "Messages-Waiting: {waiting}\r\n");
    let _ = write!(s, "Message-Account: sip:{box_no}@{host}\r\n");
    let _ = write!(s, "Voice-Message: {}/{} (0/0)\r\n", counts.new, counts.heard());
    s
}

/// A subscription as the engine knows it (its dialog), chosen by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubId(pub u64);

/// The answer to a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeAnswer {
    /// 200 OK with this Expires (0 for an unsubscribe); a NOTIFY follows in the outputs.
    Accepted {
        /// Granted duration.
        expires: Duration,
    },
    /// 423 Interval Too Brief with Min-Expires.
    TooBrief {
        /// The Min-Expires value.
        min: Duration,
    },
    /// 503 Service Unavailable: the table is full.
    Full,
}

/// `Subscription-State` of a NOTIFY (RFC 6665 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// `active;expires=<secs>`.
    Active {
        /// Seconds left.
        expires_secs: u64,
    },
    /// `terminated;reason=timeout` (the subscription ran out).
    TerminatedTimeout,
    /// `terminated`: the subscriber ended it with `Expires: 0`.
    Terminated,
}

/// What the table asks the engine to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MwiOutput {
    /// A NOTIFY in a subscription's dialog.
    Notify {
        /// The subscription.
        sub: SubId,
        /// Its state header.
        state: SubState,
        /// The [`CONTENT_TYPE`] body.
        body: String,
    },
    /// An out-of-dialog NOTIFY (`Event: message-summary`) to every registered phone of the box
    /// that has no subscription (phones that never SUBSCRIBE still light their lamp).
    Unsolicited {
        /// The box.
        box_no: BoxNumber,
        /// The body.
        body: String,
    },
}

#[derive(Debug, Clone)]
struct Sub {
    box_no: BoxNumber,
    expires_at: Instant,
}

/// Subscriptions and last-said counts. Bounded: [`MAX_SUBSCRIPTIONS`], [`MAX_TRACKED_BOXES`].
#[derive(Debug)]
pub struct MwiTable {
    host: String,
    subs: BTreeMap<SubId, Sub>,
    counts: BTreeMap<BoxNumber, Counts>,
    out: VecDeque<MwiOutput>,
}

impl MwiTable {
    /// A table whose `Message-Account` URIs use `host` (the PBX's domain or address).
    pub fn new(host: &str) -> MwiTable {
        MwiTable {
            host: host.to_string(),
            subs: BTreeMap::new(),
            counts: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// The counts last given for a box (zero when unknown).
    pub fn counts(&self, box_no: &BoxNumber) -> Counts {
        self.counts.get(box_no).copied().unwrap_or_default()
    }

    /// Live subscriptions.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// True with no subscription.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// A SUBSCRIBE (new or refresh) for a box; `requested` is its Expires header. An accepted
    /// one queues the NOTIFY RFC 6665 §4.2.1.2 requires right away.
    pub fn subscribe(
        &mut self,
        sub: SubId,
        box_no: BoxNumber,
        requested: Option<Duration>,
        now: Instant,
    ) -> SubscribeAnswer {
        let requested = requested.unwrap_or(DEFAULT_EXPIRES);
        if requested.is_zero() {
            // Unsubscribe: a final NOTIFY with the current state, then forget it.
            let counts = self.counts(&box_no);
            self.subs.remove(&sub);
            let body = message_summary(&box_no, &self.host, counts);
            self.out.push_back(MwiOutput::Notify { sub, state: SubState::Terminated, body });
            return SubscribeAnswer::Accepted { expires: Duration::ZERO };
        }
        if requested < MIN_EXPIRES {
            return SubscribeAnswer::TooBrief { min: MIN_EXPIRES };
        }
        if !self.subs.contains_key(&sub) && self.subs.len() >= MAX_SUBSCRIPTIONS {
            log::warn!("voicemail: MWI subscription table full ({MAX_SUBSCRIPTIONS}); SUBSCRIBE for box {box_no} refused");
            return SubscribeAnswer::Full;
        }
        let expires = requested.min(MAX_EXPIRES);
        let counts = self.counts(&box_no);
        let body = message_summary(&box_no, &self.host, counts);
        self.subs.insert(sub, Sub { box_no, expires_at: now + expires });
        self.out.push_back(MwiOutput::Notify {
            sub,
            state: SubState::Active { expires_secs: expires.as_secs() },
            body,
        });
        SubscribeAnswer::Accepted { expires }
    }

    /// The subscription's dialog is gone (481 to a NOTIFY, transport failure): forget it quietly.
    pub fn unsubscribe(&mut self, sub: SubId) {
        self.subs.remove(&sub);
    }

    /// The box's counts as recomputed from the store. NOTIFYs go out when they changed or the
    /// box is new to the table (so the first call after start always speaks).
    pub fn update_counts(&mut self, box_no: &BoxNumber, counts: Counts, now: Instant) {
        match self.counts.get(box_no) {
            Some(old) if *old == counts => return,
            Some(_) => {}
            None if self.counts.len() >= MAX_TRACKED_BOXES => {
                log::warn!("voicemail: MWI tracks {MAX_TRACKED_BOXES} boxes; box {box_no} not tracked");
                return;
            }
            None => {}
        }
        self.counts.insert(box_no.clone(), counts);
        let body = message_summary(box_no, &self.host, counts);
        for (id, sub) in &self.subs {
            if &sub.box_no == box_no {
                let left = sub.expires_at.saturating_duration_since(now).as_secs();
                self.out.push_back(MwiOutput::Notify {
                    sub: *id,
                    state: SubState::Active { expires_secs: left },
                    body: body.clone(),
                });
            }
        }
        self.out.push_back(MwiOutput::Unsolicited { box_no: box_no.clone(), body });
    }

    /// True when some subscription of the box is live (the engine then skips unsolicited
    /// NOTIFYs to that subscriber's contact).
    pub fn is_subscribed(&self, box_no: &BoxNumber) -> bool {
        self.subs.values().any(|s| &s.box_no == box_no)
    }

    /// Expires due subscriptions with a final NOTIFY (idempotent).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<SubId> =
            self.subs.iter().filter(|(_, s)| s.expires_at <= now).map(|(id, _)| *id).collect();
        for id in due {
            if let Some(s) = self.subs.remove(&id) {
                let body = message_summary(&s.box_no, &self.host, self.counts(&s.box_no));
                self.out.push_back(MwiOutput::Notify { sub: id, state: SubState::TerminatedTimeout, body });
            }
        }
    }

    /// The next NOTIFY to send.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<MwiOutput> {
        self.out.pop_front()
    }

    /// The next expiry.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.subs.values().map(|s| s.expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> BoxNumber {
        BoxNumber::parse(s).unwrap()
    }

    fn drain(t: &mut MwiTable) -> Vec<MwiOutput> {
        std::iter::from_fn(|| t.poll_output()).collect()
    }

    #[test]
    fn the_body_follows_rfc_3842() {
        let body = message_summary(&b("201"), "pbx.local", Counts { new: 2, old: 5, work: 3 });
        assert_eq!(
            body,
            "Messages-Waiting: yes\r\nMessage-Account: sip:201@pbx.local\r\nVoice-Message: 2/8 (0/0)\r\n"
        );
        let none = message_summary(&b("201"), "pbx.local", Counts { new: 0, old: 1, work: 0 });
        assert!(none.starts_with("Messages-Waiting: no\r\n") && none.contains("Voice-Message: 0/1 (0/0)"));
    }

    #[test]
    fn a_subscribe_is_answered_with_an_immediate_notify_of_the_current_counts() {
        let now = Instant::now();
        let mut t = MwiTable::new("10.0.0.1");
        t.update_counts(&b("201"), Counts { new: 1, ..Counts::default() }, now);
        drain(&mut t);
        let ans = t.subscribe(SubId(7), b("201"), Some(Duration::from_secs(7200)), now);
        assert_eq!(ans, SubscribeAnswer::Accepted { expires: MAX_EXPIRES });
        let out = drain(&mut t);
        assert_eq!(out.len(), 1);
        let MwiOutput::Notify { sub, state, body } = &out[0] else { panic!("{out:?}") };
        assert_eq!((*sub, *state), (SubId(7), SubState::Active { expires_secs: 3600 }));
        assert!(body.contains("Voice-Message: 1/0"));
    }

    #[test]
    fn too_brief_subscriptions_get_423_and_a_full_table_503() {
        let now = Instant::now();
        let mut t = MwiTable::new("h");
        assert_eq!(
            t.subscribe(SubId(1), b("1"), Some(Duration::from_secs(10)), now),
            SubscribeAnswer::TooBrief { min: MIN_EXPIRES }
        );
        for i in 0..MAX_SUBSCRIPTIONS as u64 {
            assert!(matches!(t.subscribe(SubId(i), b("1"), None, now), SubscribeAnswer::Accepted { .. }));
        }
        assert_eq!(t.subscribe(SubId(99_999), b("1"), None, now), SubscribeAnswer::Full);
        // A refresh of an existing one still works at the cap.
        assert!(matches!(t.subscribe(SubId(3), b("1"), None, now), SubscribeAnswer::Accepted { .. }));
        assert_eq!(t.len(), MAX_SUBSCRIPTIONS);
    }

    #[test]
    fn counts_that_change_notify_subscribers_and_phones_and_unchanged_ones_do_not() {
        let now = Instant::now();
        let mut t = MwiTable::new("h");
        t.subscribe(SubId(1), b("201"), None, now);
        t.subscribe(SubId(2), b("202"), None, now);
        drain(&mut t);
        let c = Counts { new: 3, old: 0, work: 0 };
        t.update_counts(&b("201"), c, now);
        let out = drain(&mut t);
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], MwiOutput::Notify { sub: SubId(1), .. }));
        assert!(matches!(&out[1], MwiOutput::Unsolicited { box_no, .. } if box_no == &b("201")));
        t.update_counts(&b("201"), c, now);
        assert!(drain(&mut t).is_empty());
        assert!(t.is_subscribed(&b("201")) && !t.is_subscribed(&b("203")));
    }

    #[test]
    fn a_box_seen_for_the_first_time_always_speaks_even_with_zero_counts() {
        let now = Instant::now();
        let mut t = MwiTable::new("h");
        t.update_counts(&b("201"), Counts::default(), now);
        let out = drain(&mut t);
        assert!(
            matches!(&out[..], [MwiOutput::Unsolicited { body, .. }] if body.contains("Messages-Waiting: no"))
        );
    }

    #[test]
    fn subscriptions_expire_with_a_final_notify_unless_refreshed() {
        let now = Instant::now();
        let mut t = MwiTable::new("h");
        t.subscribe(SubId(1), b("201"), Some(Duration::from_secs(600)), now);
        t.subscribe(SubId(2), b("201"), Some(Duration::from_secs(600)), now);
        drain(&mut t);
        t.subscribe(SubId(2), b("201"), Some(Duration::from_secs(600)), now + Duration::from_secs(500));
        drain(&mut t);
        let due = t.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(600));
        t.handle_timeout(due);
        let out = drain(&mut t);
        assert!(matches!(
            &out[..],
            [MwiOutput::Notify { sub: SubId(1), state: SubState::TerminatedTimeout, .. }]
        ));
        t.handle_timeout(due);
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.poll_timeout(), Some(now + Duration::from_secs(1100)));
    }

    #[test]
    fn expires_zero_unsubscribes_with_a_terminated_notify() {
        let now = Instant::now();
        let mut t = MwiTable::new("h");
        t.subscribe(SubId(1), b("201"), None, now);
        drain(&mut t);
        assert_eq!(
            t.subscribe(SubId(1), b("201"), Some(Duration::ZERO), now),
            SubscribeAnswer::Accepted { expires: Duration::ZERO }
        );
        assert!(matches!(&drain(&mut t)[..], [MwiOutput::Notify { state: SubState::Terminated, .. }]));
        assert!(t.is_empty() && t.poll_timeout().is_none());
    }
}
