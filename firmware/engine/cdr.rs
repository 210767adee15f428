//! Call detail records: one per call and one per leg, derived from the call model's events.
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (wall clock, as the driver anchored it).
pub type UnixMillis = u64;

/// How a call or leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Disposition {
    /// Answered (200 OK) and later hung up.
    Answered,
    /// Rang until the ring timeout or the caller gave up after ringing.
    NoAnswer,
    /// Callee busy (486/600).
    Busy,
    /// Caller cancelled before answer.
    Cancelled,
    /// Any other failure (404, 480, 488, 408 without ringing, 5xx, ...).
    Failed,
}

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangupSide {
    /// The calling party (BYE or CANCEL from the caller).
    Caller,
    /// The called party (BYE or a final error response from the callee).
    Callee,
    /// The box (timeouts, routing failures, shutdown).
    System,
}

/// One leg of a call: the box's dialog with one phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegRecord {
    /// `a` for the caller's leg, `b1`, `b2`, ... for the forks towards the callee's contacts.
    pub leg: String,
    /// SIP Call-ID of this leg.
    pub sip_call_id: String,
    /// The phone's contact / source, e.g. `udp:127.0.0.1:5070`.
    pub peer: String,
    /// When the leg started (INVITE received or sent).
    pub start_ms: UnixMillis,
    /// First 18x on this leg.
    pub ring_ms: Option<UnixMillis>,
    /// 2xx on this leg.
    pub answer_ms: Option<UnixMillis>,
    /// When the leg ended.
    pub end_ms: UnixMillis,
    /// Final SIP status of the leg's INVITE (0 if none was received/sent).
    pub final_status: u16,
    /// How the leg ended.
    pub disposition: Disposition,
}

/// One call through the box (caller leg + callee forks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdrRecord {
    /// Box-wide call id, monotonically increasing since first start.
    pub call_id: u64,
    /// Calling number (From user).
    pub from: String,
    /// Dialled number (Request-URI user).
    pub to: String,
    /// INVITE received.
    pub start_ms: UnixMillis,
    /// First ringing (18x) relayed to the caller.
    pub ring_ms: Option<UnixMillis>,
    /// Answered.
    pub answer_ms: Option<UnixMillis>,
    /// Ended.
    pub end_ms: UnixMillis,
    /// How it ended.
    pub disposition: Disposition,
    /// Milliseconds from start to answer (or to end, when not answered).
    pub ring_duration_ms: u64,
    /// Milliseconds from answer to end (0 when not answered): the billable talk time.
    pub talk_duration_ms: u64,
    /// Milliseconds from start to end.
    pub total_duration_ms: u64,
    /// Who ended it.
    pub hangup_side: HangupSide,
    /// Why, as text: `BYE`, `CANCEL`, `486 Busy Here`, `ring timeout`, ...
    pub cause: String,
    /// SIP status the caller finally got (200 for answered calls).
    pub final_status: u16,
    /// Every leg.
    pub legs: Vec<LegRecord>,
    /// Recordings of the call, relative to the recordings directory (`YYYYMMDD/call-N.wav`).
    #[serde(default)]
    pub recordings: Vec<String>,
    /// The trunk a call came in on or went out on (issue 4); `None` for internal calls.
    #[serde(default)]
    pub trunk: Option<String>,
    /// The DID an inbound trunk call dialled.
    #[serde(default)]
    pub did: Option<String>,
    /// Transfers and park that replaced a party, in order (the detailed view; legs of replaced
    /// parties are in `legs`). Empty for a plain call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewires: Vec<Rewire>,
}

/// One party of a call replaced by another (transfer, park, retrieval, ringback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewire {
    /// When.
    pub at_ms: UnixMillis,
    /// `blind transfer`, `attended transfer`, `park retrieve`, `park ringback`.
    pub kind: String,
    /// Which side of the call: `a` (the caller's side) or `b`.
    pub side: String,
    /// The extension that left that side.
    pub replaced: String,
    /// The extension that took it.
    pub by: String,
}

impl CdrRecord {
    /// The final view: who ended up talking to whom (caller side, callee side). For a call
    /// without re-wires that is `from` and `to`.
    pub fn final_view(&self) -> (String, String) {
        let mut parties = (self.from.clone(), self.to.clone());
        for r in &self.rewires {
            match r.side.as_str() {
                "a" => parties.0 = r.by.clone(),
                _ => parties.1 = r.by.clone(),
            }
        }
        parties
    }
}
