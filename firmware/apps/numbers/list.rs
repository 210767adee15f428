//! Number lists: the inbound block list (着信拒否) and the outbound restriction list (発信規制).
//!
//! One type serves both. Entries are exact numbers or prefixes (`03*`) in national form, and an
//! entry may be scoped to one caller ID (a restriction that applies only when calling out as a
//! given business number). A lookup probes the ordered map for the exact number and for each
//! prefix of it, for everyone and for the caller: at most 2 × ([`MAX_NUMBER_DIGITS`] + 1)
//! probes of O(log n) each, whatever the list's size.

use super::{clean, from_international, normalise, Dialled, NumberError, MAX_NUMBER_DIGITS};
use std::collections::BTreeMap;
use std::fmt;

/// Most entries one list holds. The spec's lists are maintained by hand or by CSV upload; a
/// large call centre's do-not-call list runs to tens of thousands. Measured: about 220 bytes
/// of RAM per entry with a short note, so a full list costs about 21 MiB.
pub const MAX_LIST_ENTRIES: usize = 100_000;

/// Longest note (備考) kept per entry, in characters; the spec's examples are a few words.
pub const MAX_NOTE_CHARS: usize = 200;

/// What an entry matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// This number exactly (national form).
    Exact(String),
    /// Every number starting with these digits (national form); written `03*`.
    Prefix(String),
}

impl Pattern {
    /// Parses `0312345678`, `03-1234-5678`, `+81 3 1234 5678` (exact) or `03*`, `+81 3*`,
    /// `010*` (prefix). Full-width forms are accepted.
    pub fn parse(text: &str) -> Result<Self, EntryError> {
        let text = text.trim();
        let stem = text.strip_suffix('*').or_else(|| text.strip_suffix('\u{FF0A}'));
        match stem {
            Some(stem) => {
                let cleaned = clean(stem).map_err(|e| match e {
                    NumberError::Empty => EntryError::EmptyPrefix,
                    e => EntryError::Number(e),
                })?;
                let digits =
                    if cleaned.plus { prefix_from_international(&cleaned.digits) } else { cleaned.digits };
                Ok(Self::Prefix(digits))
            }
            None => normalise(text).map(|d| Self::Exact(d.number)).map_err(EntryError::Number),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(s) => write!(f, "{s}"),
            Self::Prefix(s) => write!(f, "{s}*"),
        }
    }
}

/// `+81 3*` is the prefix `03`; `+44*` is `01044`. A prefix may be shorter than a whole
/// number, so the length checks of [`from_international`] do not apply.
fn prefix_from_international(digits: &str) -> String {
    match digits.strip_prefix("81") {
        Some(nsn) => format!("0{}", nsn.strip_prefix('0').unwrap_or(nsn)),
        None => format!("010{digits}"),
    }
}

/// A caller ID in the form lists compare: the national form when it normalises, else its bare
/// digits (a trunk may send forms we do not classify, and the list must still match them).
/// `None` when there are no digits at all: an anonymous caller.
fn canonical_caller(caller: &str) -> Option<String> {
    if let Ok(d) = normalise(caller) {
        return Some(d.number);
    }
    let digits: String = caller
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '\u{FF10}'..='\u{FF19}' => char::from_u32(u32::from(c) - 0xFF10 + u32::from('0')),
            _ => None,
        })
        .take(MAX_NUMBER_DIGITS * 2)
        .collect();
    if digits.is_empty() {
        return None;
    }
    // `+81…` forms whose length we could not classify still compare in national form.
    if caller.trim_start().starts_with('+') {
        if let Ok(national) = from_international(&digits) {
            return Some(national);
        }
    }
    Some(digits)
}

/// One list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// What it matches.
    pub pattern: Pattern,
    /// Only for calls out under this caller ID (national form); `None` for every caller.
    pub caller_id: Option<String>,
    /// 備考: why the number is listed.
    pub note: String,
}

impl ListEntry {
    /// Builds an entry from text as typed in a form or a CSV cell.
    pub fn parse(number: &str, caller_id: Option<&str>, note: &str) -> Result<Self, EntryError> {
        let pattern = Pattern::parse(number)?;
        let caller_id = match caller_id.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(normalise(c).map(|d| d.number).map_err(EntryError::CallerId)?),
        };
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(EntryError::NoteTooLong);
        }
        Ok(Self { pattern, caller_id, note: note.trim().to_owned() })
    }
}

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// The number (or prefix digits) did not normalise.
    Number(NumberError),
    /// The caller-ID scope did not normalise.
    CallerId(NumberError),
    /// `*` alone would match every number; use the "no external calls" flag for that.
    EmptyPrefix,
    /// The note is longer than [`MAX_NOTE_CHARS`].
    NoteTooLong,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(e) => write!(f, "number: {e}"),
            Self::CallerId(e) => write!(f, "caller ID: {e}"),
            Self::EmptyPrefix => write!(f, "a bare `*` would match every number"),
            Self::NoteTooLong => write!(f, "note longer than {MAX_NOTE_CHARS} characters"),
        }
    }
}

impl std::error::Error for EntryError {}

/// The list already holds [`MAX_LIST_ENTRIES`] entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFull;

impl fmt::Display for ListFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "list full ({MAX_LIST_ENTRIES} entries)")
    }
}

impl std::error::Error for ListFull {}

/// What to do with an inbound call, per [`NumberList::check_inbound`]. The treatment (busy,
/// announcement, silent drop) is configuration the engine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundDecision {
    /// Not listed: let it in.
    Accept,
    /// The caller matches the block list.
    Blocked,
    /// No caller ID and anonymous callers are rejected.
    AnonymousRejected,
}

/// A block list or a restriction list.
#[derive(Debug, Clone, Default)]
pub struct NumberList {
    /// Entries by (pattern, scope). One ordered map serves listing, de-duplication and lookup,
    /// so each entry is stored once.
    entries: BTreeMap<(Pattern, Option<String>), String>,
    reject_anonymous: bool,
}

impl NumberList {
    /// An empty list that accepts anonymous callers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether [`Self::check_inbound`] rejects callers without a caller ID.
    pub fn set_reject_anonymous(&mut self, reject: bool) {
        self.reject_anonymous = reject;
    }

    /// Whether anonymous callers are rejected.
    pub fn rejects_anonymous(&self) -> bool {
        self.reject_anonymous
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in pattern order.
    pub fn entries(&self) -> impl Iterator<Item = ListEntry> + '_ {
        self.entries.iter().map(|((pattern, caller_id), note)| ListEntry {
            pattern: pattern.clone(),
            caller_id: caller_id.clone(),
            note: note.clone(),
        })
    }

    /// Adds an entry; the same pattern and scope again replaces the note.
    pub fn insert(&mut self, entry: ListEntry) -> Result<(), ListFull> {
        let key = (entry.pattern, entry.caller_id);
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_LIST_ENTRIES {
            return Err(ListFull);
        }
        self.entries.insert(key, entry.note);
        Ok(())
    }

    /// Removes an entry; returns whether it was there.
    pub fn remove(&mut self, pattern: &Pattern, caller_id: Option<&str>) -> bool {
        self.entries.remove(&(pattern.clone(), caller_id.map(str::to_owned))).is_some()
    }

    /// True when `pattern` is listed for everyone or for `caller`.
    fn covers(&self, pattern: Pattern, caller: Option<&str>) -> bool {
        let mut key = (pattern, None);
        if self.entries.contains_key(&key) {
            return true;
        }
        match caller {
            Some(c) => {
                key.1 = Some(c.to_owned());
                self.entries.contains_key(&key)
            }
            None => false,
        }
    }

    /// True when `number` (national form) is listed for `caller` (`None`: unscoped entries only).
    fn matches(&self, number: &str, caller: Option<&str>) -> bool {
        if self.covers(Pattern::Exact(number.to_owned()), caller) {
            return true;
        }
        (1..=number.len())
            .any(|i| number.get(..i).is_some_and(|p| self.covers(Pattern::Prefix(p.to_owned()), caller)))
    }

    /// Decides an inbound call from `caller` (the caller ID as the trunk sent it; `None` or a
    /// string without digits, such as `anonymous` or `非通知`, is anonymous). As a block list
    /// only unscoped entries apply: the scope is a caller ID of ours, which inbound calls lack.
    pub fn check_inbound(&self, caller: Option<&str>) -> InboundDecision {
        match caller.and_then(canonical_caller) {
            None if self.reject_anonymous => InboundDecision::AnonymousRejected,
            None => InboundDecision::Accept,
            Some(number) if self.matches(&number, None) => InboundDecision::Blocked,
            Some(_) => InboundDecision::Accept,
        }
    }

    /// As a restriction list: true when `dialled` may be called under `caller_id`, false when
    /// an unscoped entry or one scoped to `caller_id` matches. Emergency numbers are always
    /// allowed, whatever the list says.
    #[must_use]
    pub fn check_outbound(&self, dialled: &Dialled, caller_id: &str) -> bool {
        if dialled.is_emergency() {
            return true;
        }
        let caller = canonical_caller(caller_id);
        !self.matches(&dialled.number, caller.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: &str, caller: Option<&str>) -> ListEntry {
        match ListEntry::parse(number, caller, "test") {
            Ok(e) => e,
            Err(e) => panic!("{number:?}: {e}"),
        }
    }

    fn list(entries: &[(&str, Option<&str>)]) -> NumberList {
        let mut l = NumberList::new();
        for (n, c) in entries {
            assert_eq!(l.insert(entry(n, *c)), Ok(()));
        }
        l
    }

    fn dialled(s: &str) -> Dialled {
        match normalise(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    // Tests for patterns.

    #[test]
    fn patterns_parse_exact_and_prefix_forms() {
        assert_eq!(Pattern::parse("03-1234-5678"), Ok(Pattern::Exact("0312345678".into())));
        assert_eq!(Pattern::parse("03*"), Ok(Pattern::Prefix("03".into())));
        assert_eq!(Pattern::parse("０９０＊"), Ok(Pattern::Prefix("090".into())));
        assert_eq!(Pattern::parse("+81 3*"), Ok(Pattern::Prefix("03".into())));
        assert_eq!(Pattern::parse("+44*"), Ok(Pattern::Prefix("01044".into())));
        assert_eq!(Pattern::parse("*"), Err(EntryError::EmptyPrefix));
        assert!(matches!(Pattern::parse("03*4"), Err(EntryError::Number(_))));
        assert_eq!(Pattern::Prefix("03".into()).to_string(), "03*");
    }

    #[test]
    fn overlong_notes_are_refused() {
        let note = "あ".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(ListEntry::parse("0312345678", None, &note), Err(EntryError::NoteTooLong));
    }

    // Tests for the block list.

    #[test]
    fn block_list_blocks_exact_numbers_in_any_written_form() {
        let l = list(&[("03-1234-5678", None)]);
        assert_eq!(l.check_inbound(Some("0312345678")), InboundDecision::Blocked);
        assert_eq!(l.check_inbound(Some("+81312345678")), InboundDecision::Blocked);
        assert_eq!(l.check_inbound(Some("0312345679")), InboundDecision::Accept);
    }

    #[test]
    fn block_list_prefixes_block_a_whole_range() {
        let l = list(&[("0120*", None)]);
        assert_eq!(l.check_inbound(Some("0120123456")), InboundDecision::Blocked);
        assert_eq!(l.check_inbound(Some("0312345678")), InboundDecision::Accept);
    }

    #[test]
    fn anonymous_callers_are_rejected_only_when_configured() {
        let mut l = NumberList::new();
        for caller in [None, Some(""), Some("anonymous"), Some("非通知")] {
            assert_eq!(l.check_inbound(caller), InboundDecision::Accept);
        }
        l.set_reject_anonymous(true);
        for caller in [None, Some(""), Some("Anonymous"), Some("公衆電話")] {
            assert_eq!(l.check_inbound(caller), InboundDecision::AnonymousRejected);
        }
        assert_eq!(l.check_inbound(Some("0312345678")), InboundDecision::Accept);
    }

    #[test]
    fn unclassifiable_caller_ids_still_match_by_digits() {
        let l = list(&[("0123*", None)]);
        assert_eq!(l.check_inbound(Some("0123-45")), InboundDecision::Blocked);
    }

    #[test]
    fn scoped_entries_do_not_block_inbound_calls() {
        let l = list(&[("0312345678", Some("05011112222"))]);
        assert_eq!(l.check_inbound(Some("0312345678")), InboundDecision::Accept);
    }

    // Tests for the restriction list.

    #[test]
    fn restriction_list_refuses_listed_numbers_for_every_caller() {
        let l = list(&[("090-1234-5678", None), ("0990*", None)]);
        assert!(!l.check_outbound(&dialled("09012345678"), "0501111222"));
        assert!(!l.check_outbound(&dialled("184 0990 123 456"), "0501111222"));
        assert!(l.check_outbound(&dialled("0312345678"), "0501111222"));
    }

    #[test]
    fn restriction_scoped_to_a_caller_id_applies_only_to_that_caller_id() {
        let l = list(&[("0312345678", Some("050-1111-2222"))]);
        assert!(!l.check_outbound(&dialled("0312345678"), "05011112222"));
        assert!(!l.check_outbound(&dialled("0312345678"), "+81 50 1111 2222"));
        assert!(l.check_outbound(&dialled("0312345678"), "05033334444"));
    }

    #[test]
    fn emergency_numbers_pass_even_a_list_that_names_them() {
        let l = list(&[("110", None), ("11*", None), ("1*", None)]);
        for n in ["110", "118", "119"] {
            assert!(l.check_outbound(&dialled(n), "201"));
        }
    }

    // Tests for maintenance.

    #[test]
    fn inserting_the_same_entry_twice_keeps_one_and_updates_the_note() {
        let mut l = list(&[("0312345678", None)]);
        let mut e = entry("03-1234-5678", None);
        e.note = "いたずら電話".into();
        assert_eq!(l.insert(e), Ok(()));
        assert_eq!(l.len(), 1);
        assert_eq!(l.entries().next().map(|e| e.note), Some("いたずら電話".into()));
    }

    #[test]
    fn removing_an_entry_unblocks_its_number_but_keeps_other_scopes() {
        let mut l = list(&[("0312345678", None), ("0312345678", Some("05011112222"))]);
        let p = Pattern::Exact("0312345678".into());
        assert!(l.remove(&p, None));
        assert!(!l.remove(&p, None));
        assert!(l.check_outbound(&dialled("0312345678"), "05099998888"));
        assert!(!l.check_outbound(&dialled("0312345678"), "05011112222"));
        assert!(l.remove(&p, Some("05011112222")));
        assert!(l.is_empty());
    }

    #[test]
    fn the_list_refuses_entries_beyond_its_bound() {
        let mut l = NumberList::new();
        for i in 0..MAX_LIST_ENTRIES {
            let e = ListEntry {
                pattern: Pattern::Exact(format!("03{i:08}")),
                caller_id: None,
                note: String::new(),
            };
            assert_eq!(l.insert(e), Ok(()));
        }
        let extra = entry("09012345678", None);
        assert_eq!(l.insert(extra), Err(ListFull));
        // Re-inserting an existing entry is an update, not growth.
        assert_eq!(l.insert(entry("0300000000", None)), Ok(()));
        assert_eq!(l.check_inbound(Some("0300099999")), InboundDecision::Blocked);
    }
}
