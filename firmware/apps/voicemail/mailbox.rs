//! The mailbox model: box numbers, folders, message metadata, limits and greetings. Pure data:
//! the durable side (fjall keyspace, audio files, crash recovery) is
//! [`crate::store::voicemail`], the only code that touches disk.

use crate::apps::timerules::UtcOffset;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Default most unread (new) messages per box (issue 5, seed 004 §3 item 15: 100). At the limit
/// a caller hears "mailbox full" and nothing is stored.
pub const DEFAULT_MAX_UNREAD: u32 = 100;

/// Default longest message, in seconds (issue 5, seed 004 §3 item 15: 300 s, per customer).
/// At the limit the caller hears the closing prompt and the message is kept.
pub const DEFAULT_MAX_MESSAGE_SECS: u32 = 300;

/// Most unread messages a configuration may allow: the owner menu walks a box's list in RAM and
/// an 8 kHz G.711 message of 300 s is 2.4 MB, so 1000 of them already fill 2.4 GB of flash.
pub const MAX_MAX_UNREAD: u32 = 1000;

/// Longest message a configuration may allow (1 hour): beyond that a voicemail is a recording.
pub const MAX_MAX_MESSAGE_SECS: u32 = 3600;

/// Most messages (all folders) per box. Old and work messages have no count limit of their own
/// in the issue; this bounds the RAM index and the owner menu's list. A box at this total is
/// "full" for callers exactly like one at the unread limit.
pub const MAX_MESSAGES_PER_BOX: usize = 2000;

/// Shortest message kept when the caller hangs up while recording (issue 5: 1 s); shorter takes
/// are a hang-up with no message, not a message.
pub const MIN_MESSAGE_MS: u64 = 1000;

/// Longest box number in digits. Boxes are extension, ring-group and queue numbers, which the
/// config keeps short; the bound also keeps store keys and directory names small.
pub const MAX_BOX_DIGITS: usize = 16;

/// Longest caller id kept in a file name, in characters: a SIP user part is attacker-chosen and
/// file names have a 255-byte limit.
pub const MAX_CALLER_IN_FILE_NAME: usize = 32;

/// Longest caller (number or display name) kept in metadata, in characters.
pub const MAX_CALLER_CHARS: usize = 64;

/// A mailbox number: 1..=[`MAX_BOX_DIGITS`] ASCII digits (extension, ring group or queue). The
/// check makes it safe as a directory name and a store key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BoxNumber(String);

impl BoxNumber {
    /// A box number, if `s` is 1..=[`MAX_BOX_DIGITS`] ASCII digits.
    pub fn parse(s: &str) -> Option<BoxNumber> {
        let ok = !s.is_empty() && s.len() <= MAX_BOX_DIGITS && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| BoxNumber(s.to_string()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BoxNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BoxNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BoxNumber::parse(&s)
            .ok_or_else(|| format!("`{}` is not a mailbox number", s.chars().take(20).collect::<String>()))
    }
}

impl From<BoxNumber> for String {
    fn from(b: BoxNumber) -> String {
        b.0
    }
}

/// What owns a box (seed 000: the voicemail target can be an extension, a ring group or a queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxOwner {
    /// An extension's box: its phones get MWI, `*92` from it opens it.
    Extension,
    /// A ring group's box.
    RingGroup,
    /// A call queue's box.
    Queue,
}

/// A message folder (seed 004 §2.18: 0 new, 1 old, 2 work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Folder {
    /// Not yet heard. Counts against the unread limit and lights the lamp.
    New,
    /// Heard.
    Old,
    /// Kept on purpose by the owner (`9` in the owner menu).
    Work,
}

impl Folder {
    /// All folders, in menu order.
    pub const ALL: [Folder; 3] = [Folder::New, Folder::Old, Folder::Work];

    /// The folder chosen by a menu key (`0` new, `1` old, `2` work).
    pub fn from_key(key: char) -> Option<Folder> {
        match key {
            '0' => Some(Folder::New),
            '1' => Some(Folder::Old),
            '2' => Some(Folder::Work),
            _ => None,
        }
    }
}

/// A message id, unique in the store for its lifetime (allocated by the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub u64);

/// One stored message's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// Its id.
    pub id: MessageId,
    /// The box it is in.
    pub box_no: BoxNumber,
    /// The caller's number (user part), empty when withheld.
    pub caller: String,
    /// The caller's display name, empty when none.
    pub caller_name: String,
    /// When recording started, Unix ms.
    pub received_unix_ms: u64,
    /// Its length.
    pub duration_ms: u64,
    /// Its folder.
    pub folder: Folder,
    /// The audio file's name in the box directory (`vmail_<caller>_<box>_<yyyymmddHHMMSS>.wav`).
    pub file: String,
}

/// Message counts of one box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// In the new folder.
    pub new: u32,
    /// In the old folder.
    pub old: u32,
    /// In the work folder.
    pub work: u32,
}

impl Counts {
    /// Counts of a list of messages.
    pub fn of<'a>(messages: impl IntoIterator<Item = &'a MessageMeta>) -> Counts {
        let mut c = Counts::default();
        for m in messages {
            c.add(m.folder, 1);
        }
        c
    }

    /// Adds `n` (may be negative) to a folder's count, saturating.
    pub fn add(&mut self, folder: Folder, n: i32) {
        let slot = match folder {
            Folder::New => &mut self.new,
            Folder::Old => &mut self.old,
            Folder::Work => &mut self.work,
        };
        *slot = slot.saturating_add_signed(n);
    }

    /// A folder's count.
    pub fn get(self, folder: Folder) -> u32 {
        match folder {
            Folder::New => self.new,
            Folder::Old => self.old,
            Folder::Work => self.work,
        }
    }

    /// All messages.
    pub fn total(self) -> u32 {
        self.new.saturating_add(self.old).saturating_add(self.work)
    }

    /// Heard messages in RFC 3842's sense (old + work).
    pub fn heard(self) -> u32 {
        self.old.saturating_add(self.work)
    }
}

/// The configurable limits of voicemail (issue 5: both configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most unread messages per box.
    pub max_unread: u32,
    /// Longest message, in seconds.
    pub max_message_secs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_unread: DEFAULT_MAX_UNREAD, max_message_secs: DEFAULT_MAX_MESSAGE_SECS }
    }
}

impl Limits {
    /// Limits from configured values; `None` when one is 0 or above its ceiling
    /// ([`MAX_MAX_UNREAD`], [`MAX_MAX_MESSAGE_SECS`]).
    pub fn new(max_unread: u32, max_message_secs: u32) -> Option<Limits> {
        let ok = (1..=MAX_MAX_UNREAD).contains(&max_unread)
            && (1..=MAX_MAX_MESSAGE_SECS).contains(&max_message_secs);
        ok.then_some(Limits { max_unread, max_message_secs })
    }

    /// True when a caller may not leave a message: the unread limit or the box total is reached.
    pub fn is_full(self, counts: Counts) -> bool {
        counts.new >= self.max_unread || counts.total() as usize >= MAX_MESSAGES_PER_BOX
    }
}

/// The owner's status, which picks the greeting (seed 000: one per status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Available (no answer).
    Available,
    /// Busy on another call.
    Busy,
    /// Do not disturb.
    DoNotDisturb,
    /// Outside business hours (time rules).
    AfterHours,
}

/// A greeting slot of a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GreetingKind {
    /// Used for every status that has no greeting of its own.
    Default,
    /// Status available.
    Available,
    /// Status busy.
    Busy,
    /// Status do-not-disturb.
    Dnd,
    /// Outside business hours.
    AfterHours,
}

impl GreetingKind {
    /// Every slot.
    pub const ALL: [GreetingKind; 5] = [
        GreetingKind::Default,
        GreetingKind::Available,
        GreetingKind::Busy,
        GreetingKind::Dnd,
        GreetingKind::AfterHours,
    ];

    /// The slot's name in file names and the API (`default`, `after_hours`, ...).
    pub fn name(self) -> &'static str {
        match self {
            GreetingKind::Default => "default",
            GreetingKind::Available => "available",
            GreetingKind::Busy => "busy",
            GreetingKind::Dnd => "dnd",
            GreetingKind::AfterHours => "after_hours",
        }
    }

    /// The slot named `s`.
    pub fn from_name(s: &str) -> Option<GreetingKind> {
        GreetingKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The slot chosen in the owner's greeting menu by a key (`0` default, `1` available,
    /// `2` busy, `3` do-not-disturb, `4` after hours).
    pub fn from_key(key: char) -> Option<GreetingKind> {
        let i = key.to_digit(10)? as usize;
        GreetingKind::ALL.get(i).copied()
    }

    /// The slot of a status.
    pub fn of_status(status: Status) -> GreetingKind {
        match status {
            Status::Available => GreetingKind::Available,
            Status::Busy => GreetingKind::Busy,
            Status::DoNotDisturb => GreetingKind::Dnd,
            Status::AfterHours => GreetingKind::AfterHours,
        }
    }

    /// The audio file name of the slot in the box directory.
    pub fn file_name(self) -> String {
        format!("greeting_{}.wav", self.name())
    }
}

/// Which greeting slots of a box hold a recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreetingSet(u8);

impl GreetingSet {
    /// Marks a slot as recorded.
    pub fn insert(&mut self, kind: GreetingKind) {
        self.0 |= 1 << kind as u8;
    }

    /// True when the slot holds a recording.
    pub fn contains(self, kind: GreetingKind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }
}

/// What a caller hears before the beep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// The box's recording in that slot.
    Recorded(GreetingKind),
    /// The built-in prompts ("not available", "leave a message after the tone").
    System,
}

/// The greeting for a status: the status's own recording, else the default recording, else the
/// built-in prompts.
pub fn choose_greeting(status: Status, recorded: GreetingSet) -> Greeting {
    let own = GreetingKind::of_status(status);
    [own, GreetingKind::Default]
        .into_iter()
        .find(|k| recorded.contains(*k))
        .map_or(Greeting::System, Greeting::Recorded)
}

/// A civil date and time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: u8,
    /// Day, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
}

impl DateTime {
    /// The local time of a Unix instant at a fixed offset.
    pub fn from_unix_ms(unix_ms: u64, offset: UtcOffset) -> DateTime {
        // The calendar is the time rules' (one civil-date routine in the firmware). Offsets are
        // whole minutes, so the second comes straight from the Unix time.
        let local = crate::apps::timerules::LocalTime::from_unix_ms(unix_ms, offset);
        DateTime {
            year: local.date.year,
            month: local.date.month,
            day: local.date.day,
            hour: u8::try_from(local.minute_of_day / 60).unwrap_or(0),
            minute: u8::try_from(local.minute_of_day % 60).unwrap_or(0),
            second: u8::try_from(unix_ms / 1000 % 60).unwrap_or(0),
        }
    }

    /// `yyyymmddHHMMSS`.
    pub fn compact(self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The caller as it may appear in a file name: ASCII letters, digits and `+` kept, anything else
/// becomes `-`, cut to [`MAX_CALLER_IN_FILE_NAME`]; `anonymous` when empty.
pub fn caller_for_file_name(caller: &str) -> String {
    let s: String = caller
        .chars()
        .take(MAX_CALLER_IN_FILE_NAME)
        .map(|c| if c.is_ascii_alphanumeric() || c == '+' { c } else { '-' })
        .collect();
    if s.is_empty() {
        "anonymous".to_string()
    } else {
        s
    }
}

/// The audio file name of a message (seed 000: `vmail_<caller>_<box>_<yyyymmddHHMMSS>.wav`,
/// local time). `n` > 1 adds `_<n>` for a second message in the same second.
pub fn message_file_name(
    caller: &str,
    box_no: &BoxNumber,
    received_unix_ms: u64,
    offset: UtcOffset,
    n: u32,
) -> String {
    let at = DateTime::from_unix_ms(received_unix_ms, offset).compact();
    let caller = caller_for_file_name(caller);
    if n > 1 {
        format!("vmail_{caller}_{box_no}_{at}_{n}.wav")
    } else {
        format!("vmail_{caller}_{box_no}_{at}.wav")
    }
}

/// True for names this module gives message files (the recovery pass deletes such files when
/// no metadata references them, and leaves every other file alone).
pub fn is_message_file_name(name: &str) -> bool {
    name.starts_with("vmail_") && name.ends_with(".wav")
}

/// Cuts a caller number or name from the network to [`MAX_CALLER_CHARS`] and drops control
/// characters (they would corrupt logs and e-mail headers).
pub fn clean_caller(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(MAX_CALLER_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> BoxNumber {
        BoxNumber::parse(s).unwrap()
    }

    #[test]
    fn box_numbers_are_digits_only() {
        assert!(BoxNumber::parse("201").is_some());
        assert!(BoxNumber::parse("").is_none());
        assert!(BoxNumber::parse("../etc").is_none());
        assert!(BoxNumber::parse("20a").is_none());
        assert!(BoxNumber::parse(&"1".repeat(MAX_BOX_DIGITS + 1)).is_none());
    }

    #[test]
    fn file_names_follow_the_seed_pattern_in_local_time() {
        // 2026-11-22 05:04:35 UTC = 14:04:35 JST.
        let ms = 1_795_305_600_000 + (5 * 3600 + 4 * 60 + 35) * 1000;
        assert_eq!(
            message_file_name("0312345678", &b("804"), ms, UtcOffset::JST, 1),
            "vmail_0312345678_804_20261122140435.wav"
        );
        assert_eq!(
            message_file_name("", &b("804"), ms, UtcOffset::JST, 2),
            "vmail_anonymous_804_20261122140435_2.wav"
        );
    }

    #[test]
    fn hostile_callers_cannot_escape_the_box_directory() {
        let name = message_file_name("../../x/y\0z", &b("1"), 0, UtcOffset::JST, 1);
        assert!(!name.contains('/') && !name.contains("..") && !name.contains('\0'), "{name}");
        let long = message_file_name(&"9".repeat(500), &b("1"), 0, UtcOffset::JST, 1);
        assert!(long.len() < 100);
    }

    #[test]
    fn the_greeting_falls_back_from_status_to_default_to_system() {
        let mut set = GreetingSet::default();
        assert_eq!(choose_greeting(Status::Busy, set), Greeting::System);
        set.insert(GreetingKind::Default);
        assert_eq!(choose_greeting(Status::Busy, set), Greeting::Recorded(GreetingKind::Default));
        set.insert(GreetingKind::Busy);
        assert_eq!(choose_greeting(Status::Busy, set), Greeting::Recorded(GreetingKind::Busy));
        assert_eq!(choose_greeting(Status::AfterHours, set), Greeting::Recorded(GreetingKind::Default));
    }

    #[test]
    fn a_box_is_full_at_the_unread_limit_or_the_total_cap() {
        let l = Limits::default();
        assert!(!l.is_full(Counts { new: 99, old: 500, work: 0 }));
        assert!(l.is_full(Counts { new: 100, old: 0, work: 0 }));
        assert!(l.is_full(Counts { new: 0, old: MAX_MESSAGES_PER_BOX as u32, work: 0 }));
        assert_eq!(Limits::new(0, 300), None);
        assert_eq!(Limits::new(100, MAX_MAX_MESSAGE_SECS + 1), None);
        assert_eq!(Limits::new(5, 60), Some(Limits { max_unread: 5, max_message_secs: 60 }));
    }

    #[test]
    fn greeting_keys_and_names_round_trip() {
        for k in GreetingKind::ALL {
            assert_eq!(GreetingKind::from_name(k.name()), Some(k));
        }
        assert_eq!(GreetingKind::from_key('4'), Some(GreetingKind::AfterHours));
        assert_eq!(GreetingKind::from_key('5'), None);
        assert_eq!(GreetingKind::from_key('#'), None);
    }

    #[test]
    fn counts_saturate_and_split_heard_from_new() {
        let mut c = Counts::default();
        c.add(Folder::New, -1);
        assert_eq!(c.new, 0);
        c.add(Folder::Old, 2);
        c.add(Folder::Work, 1);
        assert_eq!((c.heard(), c.total()), (3, 3));
    }
}
