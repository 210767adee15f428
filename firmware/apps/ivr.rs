//! IVR menus (issue 6; spec seed 002 §2.25): a schedule, then a prompt and keys `0-9 * #`.
//!
//! Two parts, both sans-IO:
//! - configuration: serde reads `[[ivr]]` blocks into [`IvrConfig`] (plain strings), then
//!   [`Ivrs::from_config`] checks every value, every reference (through a [`NameKind`] closure the
//!   engine supplies) and the menu graph, and builds the typed [`Ivrs`]. Errors name the field
//!   (`ivr[2].keys["5"]`, 1-based like the time rules). A cycle of menus is refused with its
//!   path: the spec warns "take care not to create loops" and issue 6 asks for them to be refused
//!   when the configuration is saved.
//! - [`IvrSession`]: one caller walking the menus. Feed [`IvrSession::start`],
//!   [`IvrSession::handle_digit`], [`IvrSession::handle_prompt_finished`] and
//!   [`IvrSession::handle_timeout`], each with `now`; after each call drain
//!   [`IvrSession::poll_output`] until `None` and arm one timer at [`IvrSession::poll_timeout`].
//!   The session ends with exactly one [`IvrOutput::Route`] or [`IvrOutput::HangUp`].
//!
//! Entering a menu: its schedule rules (at most [`MAX_SCHEDULE_RULES`], first match wins) are
//! checked at the wall time given to [`IvrSession::start`]; a match routes to the rule's
//! destination (which may be another menu). Without a match the menu's prompt plays and keys are
//! read; a menu with no prompt routes straight to its `default`. `default` is also where a caller
//! goes after `retries` failed attempts (the spec's 標準ルーティング).
//!
//! The public interface is: [`parse_ivrs`], [`Ivrs`], [`Menu`], [`IvrError`], [`NameKind`],
//! [`IvrSession`], [`IvrOutput`], the serde shapes [`IvrsConfig`], [`IvrConfig`], and the limits.
//! Installer documentation: `docs/ivr.md`.
use super::timerules::{
    schedule_from_config, Destination, HolidayList, RuleConfig, RuleError, RuleSet, UtcOffset,
};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most `[[ivr]]` blocks. A call center has a few dozen menus; the bound keeps the loop check
/// and the menu lookup (a linear scan by name at save time only) trivially cheap.
pub const MAX_IVRS: usize = 256;

/// Most schedule rules per menu: the spec's screen has exactly three (1番, 2番, 3番).
pub const MAX_SCHEDULE_RULES: usize = 3;

/// Longest chain of menus a caller can walk (entry menu counted as 1). Menus form no cycle, so
/// every walk is finite; this bounds how long a caller can be kept pressing keys and is checked
/// again by the session as defence in depth.
pub const MAX_MENU_DEPTH: usize = 8;

/// Longest menu name in bytes; it goes into call logs and CDRs.
pub const MAX_NAME_BYTES: usize = 64;

/// Longest prompt id or audio name, and destination target, in bytes.
pub const MAX_TARGET_BYTES: usize = 64;

/// Longest external number in a destination: E.164's 15 digits plus prefixes (`0`, `+`, `184`).
pub const MAX_EXTERNAL_DIGITS: usize = 24;

/// Most retries per menu: past a handful a caller is lost, and each retry costs a line for
/// `timeout_seconds` plus a prompt.
pub const MAX_RETRIES: u32 = 9;

/// Longest wait for a key after the prompt, in seconds (a minute is already very patient).
pub const MAX_TIMEOUT_SECONDS: u32 = 60;

/// Longest inter-digit wait while dialling an extension directly, in seconds.
pub const MAX_INTERDIGIT_SECONDS: u32 = 10;

/// Most digits collected when dialling an extension directly. Extensions on the appliance are
/// short (3-6 digits); collection stops here and the number is looked up.
pub const MAX_DIRECT_DIGITS: usize = 8;

/// Default wait for a key after the prompt ends (issue 6 brief).
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 5;

/// Default number of retries after an invalid key or a timeout.
pub const DEFAULT_RETRIES: u32 = 3;

/// Default inter-digit wait for direct dialling: long enough for a caller reading a number off
/// a card, short enough that a one-digit menu choice in a direct-dial menu does not feel stuck.
pub const DEFAULT_INTERDIGIT_SECONDS: u32 = 3;

/// Prompt played after an unknown key when the menu names none.
pub const DEFAULT_INVALID_PROMPT: &str = "common.invalid_entry";

/// Prompt played after no key when the menu names none.
pub const DEFAULT_TIMEOUT_PROMPT: &str = "common.try_again";

/// Prompt played before hanging up when the final destination is `hangup`.
pub const GOODBYE_PROMPT: &str = "common.goodbye";

/// Longest offending value quoted in an error, in characters; keeps log lines bounded.
const MAX_QUOTED_CHARS: usize = 64;

/// The keys of a telephone keypad, in the order of [`Menu`]'s key table.
const KEYS: [char; 12] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'];

fn key_index(key: char) -> Option<usize> {
    KEYS.iter().position(|&k| k == key)
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// The kind of a name a configuration refers to; the engine's closure says which exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// An extension number.
    Extension,
    /// A ring group.
    Group,
    /// A call-center queue.
    Queue,
    /// A voicemail box.
    Voicemail,
    /// An admin audio file played as an announcement.
    Announcement,
    /// A prompt: a built-in prompt id (`sounds/manifest.toml`) or an admin audio name.
    Prompt,
}

impl NameKind {
    fn label(self) -> &'static str {
        match self {
            NameKind::Extension => "extension",
            NameKind::Group => "group",
            NameKind::Queue => "queue",
            NameKind::Voicemail => "voicemail box",
            NameKind::Announcement => "announcement",
            NameKind::Prompt => "prompt",
        }
    }
}

/// Why an IVR configuration was rejected. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IvrError {
    /// The TOML text is malformed or has the wrong shape (unknown key, wrong type).
    Toml {
        /// 1-based line of the problem, when toml reports one.
        line: Option<usize>,
        /// toml's message, which names the key.
        message: String,
    },
    /// A field's value is not valid.
    Invalid {
        /// Path of the field, e.g. `ivr[2].keys["x"]`.
        field: String,
        /// The offending value, shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A list holds more entries than its limit.
    TooMany {
        /// Path of the list, e.g. `ivr[1].rule`.
        field: String,
        /// The limit.
        max: usize,
    },
    /// Two `[[ivr]]` blocks have the same name.
    Duplicate {
        /// Path of the second block's name, e.g. `ivr[3].name`.
        field: String,
        /// The repeated name.
        name: String,
    },
    /// A destination or prompt names something that does not exist.
    Unknown {
        /// Path of the reference, e.g. `ivr[2].keys["1"]`.
        field: String,
        /// What kind of thing was looked for (`queue`, `ivr`, ...).
        kind: &'static str,
        /// The missing name.
        name: String,
    },
    /// Menus reach themselves: a caller could be kept in them forever.
    Loop {
        /// The reference that closes the cycle, e.g. `ivr[2].keys["0"]`.
        field: String,
        /// The menus on the cycle, first repeated at the end (`main → sub → main`).
        path: Vec<String>,
    },
    /// A chain of nested menus is longer than [`MAX_MENU_DEPTH`].
    TooDeep {
        /// The reference that goes one level too deep.
        field: String,
        /// The chain of menus from the first.
        path: Vec<String>,
    },
    /// A schedule rule is invalid (the time rules' own error, with its field path).
    Schedule(RuleError),
}

impl fmt::Display for IvrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IvrError::Toml { line: Some(line), message } => write!(f, "line {line}: {message}"),
            IvrError::Toml { line: None, message } => write!(f, "{message}"),
            IvrError::Invalid { field, value, reason } => write!(f, "{field} = {value:?}: {reason}"),
            IvrError::TooMany { field, max } => write!(f, "{field}: more than {max} entries"),
            IvrError::Duplicate { field, name } => {
                write!(f, "{field} = {name:?}: another menu has this name")
            }
            IvrError::Unknown { field, kind, name } => write!(f, "{field}: no {kind} named {name:?}"),
            IvrError::Loop { field, path } => {
                write!(f, "{field}: menus loop ({}); a caller could never leave", path.join(" → "))
            }
            IvrError::TooDeep { field, path } => {
                write!(f, "{field}: menus nest deeper than {MAX_MENU_DEPTH} levels ({})", path.join(" → "))
            }
            IvrError::Schedule(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IvrError {}

impl From<RuleError> for IvrError {
    fn from(e: RuleError) -> IvrError {
        IvrError::Schedule(e)
    }
}

fn invalid(field: impl Into<String>, value: &str, reason: &'static str) -> IvrError {
    IvrError::Invalid { field: field.into(), value: value.chars().take(MAX_QUOTED_CHARS).collect(), reason }
}

// ---------------------------------------------------------------------------------------------
// The serde shape (stage one).

/// The file shape: `[[ivr]]` blocks. Embed it in a larger config struct and call
/// [`Ivrs::from_config`], or use [`parse_ivrs`] on a whole text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrsConfig {
    /// One block per menu.
    #[serde(default)]
    pub ivr: Vec<IvrConfig>,
}

/// One `[[ivr]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// The menu's name, used by `{ ivr = "name" }` destinations.
    pub name: String,
    /// An internal number phones dial to reach the menu (testing it without a DID).
    #[serde(default)]
    pub number: Option<String>,
    /// The menu prompt (prompt id or admin audio name). Without it the menu only applies its
    /// schedule and then `default`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Key (`"0"`-`"9"`, `"*"`, `"#"`) to destination.
    #[serde(default)]
    pub keys: BTreeMap<String, Destination>,
    /// Seconds to wait for a key after the prompt ends.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// Times the menu is offered again after an invalid key or a timeout.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Played after an unknown key, before the menu prompt again.
    #[serde(default)]
    pub invalid_prompt: Option<String>,
    /// Played after no key, before the menu prompt again.
    #[serde(default)]
    pub timeout_prompt: Option<String>,
    /// Where the call goes when no schedule rule matches and there is no prompt, and after the
    /// last retry. Default `hangup` (after a goodbye prompt).
    #[serde(default)]
    pub default: Option<Destination>,
    /// The caller may dial an extension number instead of a key.
    #[serde(default)]
    pub direct_dial: bool,
    /// Seconds between digits before a directly dialled number is taken as complete.
    #[serde(default)]
    pub interdigit_seconds: Option<u32>,
    /// The ordered schedule rules (`[[ivr.rule]]`, the time rules' shape).
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

/// Parses and validates a whole IVR TOML text. `offset` is the time rules' offset; `exists`
/// says whether a name of a kind exists (extensions, queues, prompts, ...).
pub fn parse_ivrs(
    text: &str,
    offset: UtcOffset,
    exists: &dyn Fn(NameKind, &str) -> bool,
) -> Result<Ivrs, IvrError> {
    let config: IvrsConfig = toml::from_str(text).map_err(|e| IvrError::Toml {
        line: e.span().map(|s| {
            text.as_bytes().get(..s.start).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) + 1
        }),
        message: e.message().trim().to_string(),
    })?;
    Ivrs::from_config(&config, offset, exists)
}

// ---------------------------------------------------------------------------------------------
// The typed configuration (stage two).

/// One validated menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    name: String,
    number: Option<String>,
    prompt: Option<String>,
    keys: [Option<Destination>; KEYS.len()],
    timeout: Duration,
    retries: u32,
    invalid_prompt: String,
    timeout_prompt: String,
    direct_dial: bool,
    interdigit: Duration,
    schedule: RuleSet,
}

impl Menu {
    /// The menu's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The internal number phones dial to reach it, if any.
    pub fn number(&self) -> Option<&str> {
        self.number.as_deref()
    }

    /// Where `key` goes, if it is mapped.
    pub fn key(&self, key: char) -> Option<&Destination> {
        key_index(key).and_then(|i| self.keys.get(i)).and_then(Option::as_ref)
    }

    /// The final destination (no prompt, or retries used up).
    pub fn default_destination(&self) -> &Destination {
        self.schedule.default_destination()
    }

    /// The keys' and the default's destinations, with their field suffix (`.keys["1"]`).
    fn edges(&self) -> impl Iterator<Item = (String, &Destination)> {
        let keys = KEYS
            .iter()
            .zip(self.keys.iter())
            .filter_map(|(k, d)| d.as_ref().map(|d| (format!(".keys[\"{k}\"]"), d)));
        keys.chain(std::iter::once((".default".to_string(), self.default_destination())))
    }
}

/// Every menu, validated: names unique, references resolved, no cycle, depth bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ivrs {
    menus: Vec<Menu>,
    /// Per menu, the field suffixes and destinations of its schedule rules (kept apart because
    /// [`RuleSet`] does not expose its rules' destinations by index).
    rule_edges: Vec<Vec<(String, Destination)>>,
}

impl Ivrs {
    /// The menu called `name`.
    pub fn menu(&self, name: &str) -> Option<&Menu> {
        self.menus.iter().find(|m| m.name == name)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.menus.iter().position(|m| m.name == name)
    }

    /// All menus, in file order.
    pub fn menus(&self) -> &[Menu] {
        &self.menus
    }

    /// The menu phones reach by dialling `number`.
    pub fn by_number(&self, number: &str) -> Option<&Menu> {
        self.menus.iter().find(|m| m.number.as_deref() == Some(number))
    }

    /// Validates the serde shape. `exists` answers for names outside this file.
    pub fn from_config(
        config: &IvrsConfig,
        offset: UtcOffset,
        exists: &dyn Fn(NameKind, &str) -> bool,
    ) -> Result<Ivrs, IvrError> {
        if config.ivr.len() > MAX_IVRS {
            return Err(IvrError::TooMany { field: "ivr".into(), max: MAX_IVRS });
        }
        let mut ivrs = Ivrs::default();
        for (i, raw) in config.ivr.iter().enumerate() {
            let path = format!("ivr[{}]", i + 1);
            let (menu, rule_edges) = build_menu(&path, raw, offset, exists)?;
            if ivrs.menu(&menu.name).is_some() {
                return Err(IvrError::Duplicate { field: format!("{path}.name"), name: menu.name });
            }
            if let Some(n) = menu.number.as_deref().filter(|n| ivrs.by_number(n).is_some()) {
                return Err(IvrError::Duplicate { field: format!("{path}.number"), name: n.to_string() });
            }
            ivrs.menus.push(menu);
            ivrs.rule_edges.push(rule_edges);
        }
        // Menu references are checked once every name is known.
        for (i, _) in ivrs.menus.iter().enumerate() {
            for (suffix, dest) in ivrs.edges_of(i) {
                if let Destination::Ivr(name) = dest {
                    if ivrs.index_of(name).is_none() {
                        return Err(IvrError::Unknown {
                            field: format!("ivr[{}]{suffix}", i + 1),
                            kind: "ivr",
                            name: name.clone(),
                        });
                    }
                }
            }
        }
        ivrs.check_graph()?;
        Ok(ivrs)
    }

    /// The destinations of menu `i`: keys, schedule rules, default.
    fn edges_of(&self, i: usize) -> Vec<(String, &Destination)> {
        let mut edges: Vec<(String, &Destination)> = Vec::new();
        if let Some(menu) = self.menus.get(i) {
            edges.extend(menu.edges());
        }
        if let Some(rules) = self.rule_edges.get(i) {
            edges.extend(rules.iter().map(|(s, d)| (s.clone(), d)));
        }
        edges
    }

    /// The menus `i` leads to directly, with the field that says so.
    fn children(&self, i: usize) -> Vec<(String, usize)> {
        self.edges_of(i)
            .into_iter()
            .filter_map(|(suffix, d)| match d {
                Destination::Ivr(name) => self.index_of(name).map(|j| (format!("ivr[{}]{suffix}", i + 1), j)),
                _ => None,
            })
            .collect()
    }

    /// Refuses any cycle in the menu → menu graph and any chain longer than [`MAX_MENU_DEPTH`].
    /// Depth-first from every menu with an explicit stack (no recursion on config data); the
    /// stack never exceeds [`MAX_MENU_DEPTH`] + 1 frames because deeper chains are refused.
    fn check_graph(&self) -> Result<(), IvrError> {
        /// A menu on the walk, its children (field, menu), and the next child to visit.
        type Frame = (usize, Vec<(String, usize)>, usize);
        // Longest chain (in menus) starting at each menu, once known.
        let mut depth: Vec<Option<usize>> = vec![None; self.menus.len()];
        for root in 0..self.menus.len() {
            if depth.get(root).copied().flatten().is_some() {
                continue;
            }
            let mut stack: Vec<Frame> = vec![(root, self.children(root), 0)];
            while let Some((node, children, next)) = stack.last_mut() {
                let node = *node;
                let Some((field, child)) = children.get(*next).cloned() else {
                    let longest = children
                        .iter()
                        .map(|(_, c)| depth.get(*c).copied().flatten().unwrap_or(0))
                        .max()
                        .unwrap_or(0);
                    if let Some(d) = depth.get_mut(node) {
                        *d = Some(longest + 1);
                    }
                    stack.pop();
                    continue;
                };
                *next += 1;
                let names = |frames: &[Frame]| -> Vec<String> {
                    frames.iter().filter_map(|(m, _, _)| self.menus.get(*m)).map(|m| m.name.clone()).collect()
                };
                if let Some(pos) = stack.iter().position(|(m, _, _)| *m == child) {
                    let mut path = names(stack.get(pos..).unwrap_or_default());
                    path.extend(self.menus.get(child).map(|m| m.name.clone()));
                    return Err(IvrError::Loop { field, path });
                }
                let below = depth.get(child).copied().flatten();
                if stack.len() + below.unwrap_or(1) > MAX_MENU_DEPTH {
                    let mut path = names(&stack);
                    path.extend(self.menus.get(child).map(|m| m.name.clone()));
                    return Err(IvrError::TooDeep { field, path });
                }
                if below.is_none() {
                    stack.push((child, self.children(child), 0));
                }
            }
        }
        Ok(())
    }
}

fn seconds(
    field: String,
    value: Option<u32>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, IvrError> {
    let v = value.unwrap_or(default);
    if !range.contains(&v) {
        return Err(invalid(field, &v.to_string(), "out of range (see docs/ivr.md for the limits)"));
    }
    Ok(v)
}

fn check_name(
    field: String,
    kind: NameKind,
    name: &str,
    exists: &dyn Fn(NameKind, &str) -> bool,
) -> Result<(), IvrError> {
    if name.is_empty() || name.len() > MAX_TARGET_BYTES {
        return Err(invalid(field, name, "expected a name of 1 to 64 bytes"));
    }
    if !exists(kind, name) {
        return Err(IvrError::Unknown { field, kind: kind.label(), name: name.to_string() });
    }
    Ok(())
}

/// Checks one destination; menu names are checked later, once every menu is known.
fn check_destination(
    field: String,
    dest: &Destination,
    exists: &dyn Fn(NameKind, &str) -> bool,
) -> Result<(), IvrError> {
    match dest {
        Destination::Extension(t) => check_name(field, NameKind::Extension, t, exists),
        Destination::Group(t) => check_name(field, NameKind::Group, t, exists),
        Destination::Queue(t) => check_name(field, NameKind::Queue, t, exists),
        Destination::Voicemail(t) => check_name(field, NameKind::Voicemail, t, exists),
        Destination::Announcement(t) => check_name(field, NameKind::Announcement, t, exists),
        Destination::Ivr(t) if t.is_empty() || t.len() > MAX_NAME_BYTES => {
            Err(invalid(field, t, "expected a menu name of 1 to 64 bytes"))
        }
        Destination::Ivr(_) | Destination::Hangup => Ok(()),
        Destination::External(t) => {
            let digits = t.strip_prefix('+').unwrap_or(t);
            if digits.is_empty()
                || digits.len() > MAX_EXTERNAL_DIGITS
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(field, t, "expected an outside number: digits, optionally after +"));
            }
            Ok(())
        }
    }
}

type RuleEdges = Vec<(String, Destination)>;

fn build_menu(
    path: &str,
    raw: &IvrConfig,
    offset: UtcOffset,
    exists: &dyn Fn(NameKind, &str) -> bool,
) -> Result<(Menu, RuleEdges), IvrError> {
    let name = raw.name.trim();
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!("{path}.name"), &raw.name, "expected a name of 1 to 64 bytes"));
    }
    let number = raw.number.as_deref().map(str::trim);
    if let Some(n) = number {
        let digits = !n.is_empty() && n.len() <= MAX_DIRECT_DIGITS && n.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Err(invalid(format!("{path}.number"), n, "expected 1 to 8 digits"));
        }
        if exists(NameKind::Extension, n) || exists(NameKind::Group, n) {
            return Err(invalid(format!("{path}.number"), n, "an extension or ring group has this number"));
        }
    }
    if let Some(p) = &raw.prompt {
        check_name(format!("{path}.prompt"), NameKind::Prompt, p, exists)?;
    } else if !raw.keys.is_empty() || raw.direct_dial {
        return Err(invalid(
            format!("{path}.prompt"),
            "",
            "a menu with keys or direct dialling needs a prompt that tells the caller what to press",
        ));
    }
    let mut keys: [Option<Destination>; KEYS.len()] = Default::default();
    for (key, dest) in &raw.keys {
        let field = format!("{path}.keys[\"{}\"]", key.chars().take(MAX_QUOTED_CHARS).collect::<String>());
        let mut chars = key.chars();
        let slot = match (chars.next(), chars.next()) {
            (Some(c), None) => key_index(c).and_then(|i| keys.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| invalid(field.clone(), key, "expected one key: 0-9, * or #"))?;
        check_destination(field, dest, exists)?;
        *slot = Some(dest.clone());
    }
    let invalid_prompt = raw.invalid_prompt.clone().unwrap_or_else(|| DEFAULT_INVALID_PROMPT.to_string());
    check_name(format!("{path}.invalid_prompt"), NameKind::Prompt, &invalid_prompt, exists)?;
    let timeout_prompt = raw.timeout_prompt.clone().unwrap_or_else(|| DEFAULT_TIMEOUT_PROMPT.to_string());
    check_name(format!("{path}.timeout_prompt"), NameKind::Prompt, &timeout_prompt, exists)?;
    let timeout = seconds(
        format!("{path}.timeout_seconds"),
        raw.timeout_seconds,
        DEFAULT_TIMEOUT_SECONDS,
        1..=MAX_TIMEOUT_SECONDS,
    )?;
    let retries = seconds(format!("{path}.retries"), raw.retries, DEFAULT_RETRIES, 0..=MAX_RETRIES)?;
    let interdigit = seconds(
        format!("{path}.interdigit_seconds"),
        raw.interdigit_seconds,
        DEFAULT_INTERDIGIT_SECONDS,
        1..=MAX_INTERDIGIT_SECONDS,
    )?;
    let default = raw.default.clone().unwrap_or(Destination::Hangup);
    check_destination(format!("{path}.default"), &default, exists)?;
    if raw.rule.len() > MAX_SCHEDULE_RULES {
        return Err(IvrError::TooMany { field: format!("{path}.rule"), max: MAX_SCHEDULE_RULES });
    }
    let mut rule_edges = Vec::with_capacity(raw.rule.len());
    for (i, rule) in raw.rule.iter().enumerate() {
        let suffix = format!(".rule[{}].destination", i + 1);
        check_destination(format!("{path}{suffix}"), &rule.destination, exists)?;
        rule_edges.push((suffix, rule.destination.clone()));
    }
    let schedule = schedule_from_config(path, &raw.rule, &default, offset)?;
    let menu = Menu {
        name: name.to_string(),
        number: number.map(str::to_string),
        prompt: raw.prompt.clone(),
        keys,
        timeout: Duration::from_secs(u64::from(timeout)),
        retries,
        invalid_prompt,
        timeout_prompt,
        direct_dial: raw.direct_dial,
        interdigit: Duration::from_secs(u64::from(interdigit)),
        schedule,
    };
    Ok((menu, rule_edges))
}

// ---------------------------------------------------------------------------------------------
// The menu session.

/// What the session asks the engine to do. The last output of a session is always one
/// [`IvrOutput::Route`] or [`IvrOutput::HangUp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrOutput {
    /// The caller entered a menu (for the call log); `depth` counts from 1.
    Entered {
        /// The menu's name.
        menu: String,
        /// 1 for the entry menu, 2 for a menu reached from it, ...
        depth: usize,
    },
    /// Play these prompts in order, replacing whatever plays; report the end with
    /// [`IvrSession::handle_prompt_finished`].
    Play(Vec<String>),
    /// Stop the prompt: the caller started dialling an extension.
    StopPlayback,
    /// Send the call to this destination (never [`Destination::Ivr`] or
    /// [`Destination::Hangup`]: the session handles those itself). The session is done.
    Route(Destination),
    /// End the call (after the goodbye prompt). The session is done.
    HangUp,
}

/// Why the caller failed an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// A key the menu does not map, or a dialled number that is no extension.
    Invalid,
    /// No key within the timeout.
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    /// The menu prompt (possibly after an invalid/timeout prompt) is playing; keys barge in.
    Prompting,
    /// The prompt ended; waiting up to the menu's timeout for a key.
    Waiting,
    /// Direct dialling: collecting an extension number, inter-digit timer armed.
    Collecting,
    /// The goodbye prompt before hanging up.
    Closing,
    Done,
}

/// Longest a prompt may play before the session goes on without its end report. Admin audio
/// is capped well below this (a menu prompt is seconds long); the guard only catches a lost
/// media event.
pub const PROMPT_GUARD: Duration = Duration::from_secs(300);

/// One caller walking the menus, from an entry menu to a final destination.
#[derive(Debug)]
pub struct IvrSession {
    ivrs: Arc<Ivrs>,
    holidays: Arc<HolidayList>,
    entry: usize,
    menu: usize,
    depth: usize,
    failures: u32,
    digits: String,
    state: State,
    /// The wall clock at [`IvrSession::start`], and the monotonic instant it was read at: a
    /// sub-menu's schedule is evaluated at the start time plus the elapsed monotonic time.
    started: Option<(Instant, u64)>,
    timer: Option<Instant>,
    out: VecDeque<IvrOutput>,
}

impl IvrSession {
    /// A session entering menu `entry`; `None` if there is no such menu. `holidays` is the
    /// time rules' list (schedule rules with `holidays = true` use it).
    pub fn new(ivrs: Arc<Ivrs>, holidays: Arc<HolidayList>, entry: &str) -> Option<IvrSession> {
        let entry = ivrs.index_of(entry)?;
        Some(IvrSession {
            ivrs,
            holidays,
            entry,
            menu: entry,
            depth: 0,
            failures: 0,
            digits: String::new(),
            state: State::Created,
            started: None,
            timer: None,
            out: VecDeque::new(),
        })
    }

    /// The menu the caller is in.
    pub fn menu_name(&self) -> &str {
        self.ivrs.menus.get(self.menu).map_or("", |m| m.name.as_str())
    }

    /// True once the session has routed or hung up.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<IvrOutput> {
        self.out.pop_front()
    }

    /// When to call [`IvrSession::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// The call reached the IVR (answered, media ready) at `now`, wall clock `unix_ms`.
    pub fn start(&mut self, now: Instant, unix_ms: u64) {
        if self.state != State::Created {
            return;
        }
        self.started = Some((now, unix_ms));
        self.enter(now, self.entry);
    }

    /// The caller pressed `key` (RFC 4733 or SIP INFO, already decoded). `exists` answers
    /// whether a directly dialled extension exists.
    pub fn handle_digit(&mut self, now: Instant, key: char, exists: &dyn Fn(NameKind, &str) -> bool) {
        let Some(menu) = self.ivrs.menus.get(self.menu) else { return self.finish(now, Destination::Hangup) };
        match self.state {
            State::Prompting | State::Waiting => {
                if menu.direct_dial && key.is_ascii_digit() {
                    if self.state == State::Prompting {
                        self.out.push_back(IvrOutput::StopPlayback);
                    }
                    self.digits.clear();
                    self.digits.push(key);
                    self.state = State::Collecting;
                    self.timer = Some(now + menu.interdigit);
                    return;
                }
                match menu.key(key).cloned() {
                    Some(dest) => self.route(now, dest),
                    None => self.fail(now, Failure::Invalid),
                }
            }
            State::Collecting => match key {
                '#' => self.resolve(now, exists),
                k if k.is_ascii_digit() => {
                    self.digits.push(k);
                    if self.digits.len() >= MAX_DIRECT_DIGITS {
                        self.resolve(now, exists);
                    } else {
                        self.timer = Some(now + menu.interdigit);
                    }
                }
                _ => self.fail(now, Failure::Invalid),
            },
            State::Created | State::Closing | State::Done => {}
        }
    }

    /// The last [`IvrOutput::Play`] finished.
    pub fn handle_prompt_finished(&mut self, now: Instant) {
        match self.state {
            State::Prompting => {
                let timeout = self.ivrs.menus.get(self.menu).map_or(Duration::ZERO, |m| m.timeout);
                self.state = State::Waiting;
                self.timer = Some(now + timeout);
            }
            State::Closing => {
                self.state = State::Done;
                self.out.push_back(IvrOutput::HangUp);
            }
            _ => {}
        }
    }

    /// The timer from [`IvrSession::poll_timeout`] fired. Idempotent: early or repeated calls
    /// do nothing.
    pub fn handle_timeout(&mut self, now: Instant, exists: &dyn Fn(NameKind, &str) -> bool) {
        match self.timer {
            Some(at) if at <= now => self.timer = None,
            _ => return,
        }
        match self.state {
            State::Waiting => self.fail(now, Failure::Timeout),
            State::Collecting => self.resolve(now, exists),
            // The player never said the prompt ended: go on as if it had.
            State::Prompting | State::Closing => self.handle_prompt_finished(now),
            State::Created | State::Done => {}
        }
    }

    /// The wall clock now, from the one read at start.
    fn unix_ms(&self, now: Instant) -> u64 {
        self.started.map_or(0, |(at, ms)| {
            let elapsed = u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX);
            ms.saturating_add(elapsed)
        })
    }

    /// Enters menu `index`: its schedule, then its prompt or its default. Menus form no cycle
    /// (checked at save time), and the depth bound stops the walk even if they did.
    fn enter(&mut self, now: Instant, index: usize) {
        let ivrs = Arc::clone(&self.ivrs);
        let Some(menu) = ivrs.menus.get(index) else { return self.finish(now, Destination::Hangup) };
        self.depth += 1;
        if self.depth > MAX_MENU_DEPTH {
            return self.finish(now, Destination::Hangup);
        }
        self.menu = index;
        self.failures = 0;
        self.digits.clear();
        self.timer = None;
        self.out.push_back(IvrOutput::Entered { menu: menu.name.clone(), depth: self.depth });
        let (dest, rule) = menu.schedule.destination_at(self.unix_ms(now), &self.holidays);
        match (rule, &menu.prompt) {
            (None, Some(prompt)) => {
                self.play(now, State::Prompting, vec![prompt.clone()]);
            }
            _ => self.route(now, dest.clone()),
        }
    }

    /// Sends the caller to `dest`: another menu, a goodbye, or out of the IVR.
    fn route(&mut self, now: Instant, dest: Destination) {
        match dest {
            Destination::Ivr(name) => match self.ivrs.index_of(&name) {
                Some(index) => self.enter(now, index),
                None => self.finish(now, Destination::Hangup),
            },
            other => self.finish(now, other),
        }
    }

    /// Plays `clips` in `state`, with a guard timer: a player that never reports the end
    /// (a lost media event) must not keep the caller in the menu forever.
    fn play(&mut self, now: Instant, state: State, clips: Vec<String>) {
        self.state = state;
        self.timer = Some(now + PROMPT_GUARD);
        self.out.push_back(IvrOutput::Play(clips));
    }

    fn finish(&mut self, now: Instant, dest: Destination) {
        self.timer = None;
        if dest == Destination::Hangup {
            self.play(now, State::Closing, vec![GOODBYE_PROMPT.to_string()]);
        } else {
            self.state = State::Done;
            self.out.push_back(IvrOutput::Route(dest));
        }
    }

    /// Direct dialling ended: a single mapped key wins, then an existing extension.
    fn resolve(&mut self, now: Instant, exists: &dyn Fn(NameKind, &str) -> bool) {
        let digits = std::mem::take(&mut self.digits);
        let key = {
            let mut chars = digits.chars();
            match (chars.next(), chars.next()) {
                (Some(k), None) => self.ivrs.menus.get(self.menu).and_then(|m| m.key(k)).cloned(),
                _ => None,
            }
        };
        match key {
            Some(dest) => self.route(now, dest),
            None if exists(NameKind::Extension, &digits) => self.finish(now, Destination::Extension(digits)),
            None => self.fail(now, Failure::Invalid),
        }
    }

    /// One failed attempt: say why and offer the menu again, or give up to the default.
    fn fail(&mut self, now: Instant, why: Failure) {
        let ivrs = Arc::clone(&self.ivrs);
        let Some(menu) = ivrs.menus.get(self.menu) else { return self.finish(now, Destination::Hangup) };
        self.failures += 1;
        self.digits.clear();
        self.timer = None;
        if self.failures > menu.retries {
            return self.route(now, menu.default_destination().clone());
        }
        let notice = match why {
            Failure::Invalid => &menu.invalid_prompt,
            Failure::Timeout => &menu.timeout_prompt,
        };
        let mut clips = vec![notice.clone()];
        clips.extend(menu.prompt.clone());
        self.play(now, State::Prompting, clips);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that exist on the test box: extensions 201 and 2001, queue support, group sales,
    /// voicemail 201, announcement closed, and prompts whose id starts with `p.` or `common.`.
    fn exists(kind: NameKind, name: &str) -> bool {
        match kind {
            NameKind::Extension => name == "201" || name == "2001",
            NameKind::Queue => name == "support",
            NameKind::Group => name == "sales",
            NameKind::Voicemail => name == "201",
            NameKind::Announcement => name == "closed",
            NameKind::Prompt => name.starts_with("p.") || name.starts_with("common."),
        }
    }

    fn parse(text: &str) -> Result<Ivrs, IvrError> {
        parse_ivrs(text, UtcOffset::JST, &exists)
    }

    const MENUS: &str = r##"
        [[ivr]]
        name = "main"
        prompt = "p.main"
        keys = { "1" = { queue = "support" }, "2" = { extension = "201" }, "0" = { ivr = "sub" }, "#" = "hangup" }
        default = { voicemail = "201" }

        [[ivr.rule]]
        name = "weekend"
        weekdays = ["sat", "sun"]
        destination = { announcement = "closed" }

        [[ivr]]
        name = "sub"
        prompt = "p.sub"
        keys = { "1" = { group = "sales" } }
        retries = 1
        timeout_seconds = 4

        [[ivr]]
        name = "direct"
        prompt = "p.direct"
        direct_dial = true
        keys = { "2" = { queue = "support" }, "*" = { ivr = "sub" } }
        default = { queue = "support" }
    "##;

    fn menus() -> Arc<Ivrs> {
        Arc::new(parse(MENUS).unwrap())
    }

    fn field_of(text: &str) -> String {
        match parse(text).unwrap_err() {
            IvrError::Invalid { field, .. }
            | IvrError::TooMany { field, .. }
            | IvrError::Duplicate { field, .. }
            | IvrError::Unknown { field, .. }
            | IvrError::Loop { field, .. }
            | IvrError::TooDeep { field, .. } => field,
            IvrError::Schedule(RuleError::Invalid { field, .. } | RuleError::TooMany { field, .. }) => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn menu(name: &str, extra: &str) -> String {
        format!("[[ivr]]\nname = \"{name}\"\nprompt = \"p.x\"\n{extra}\n")
    }

    // 2026-11-23 (a Monday) 10:00 JST and 2026-11-22 (a Sunday) 10:00 JST, in Unix ms.
    const MONDAY_10_JST: u64 = 1_795_395_600_000;
    const SUNDAY_10_JST: u64 = MONDAY_10_JST - 86_400_000;

    fn session(entry: &str) -> IvrSession {
        IvrSession::new(menus(), Arc::new(HolidayList::new()), entry).unwrap()
    }

    fn drain(s: &mut IvrSession) -> Vec<IvrOutput> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn play(ids: &[&str]) -> IvrOutput {
        IvrOutput::Play(ids.iter().map(|s| s.to_string()).collect())
    }

    fn entered(menu: &str, depth: usize) -> IvrOutput {
        IvrOutput::Entered { menu: menu.to_string(), depth }
    }

    /// Starts `entry` on a Monday morning and lets its prompt finish.
    fn waiting(entry: &str, t: Instant) -> IvrSession {
        let mut s = session(entry);
        s.start(t, MONDAY_10_JST);
        s.handle_prompt_finished(t);
        drain(&mut s);
        s
    }

    // Tests for configuration.

    #[test]
    fn the_example_menus_parse_with_their_defaults() {
        let ivrs = menus();
        let main = ivrs.menu("main").unwrap();
        assert_eq!(main.key('1'), Some(&Destination::Queue("support".into())));
        assert_eq!(main.key('5'), None);
        assert_eq!(main.timeout, Duration::from_secs(u64::from(DEFAULT_TIMEOUT_SECONDS)));
        assert_eq!(main.retries, DEFAULT_RETRIES);
        assert_eq!(main.invalid_prompt, DEFAULT_INVALID_PROMPT);
        assert_eq!(ivrs.menu("sub").unwrap().default_destination(), &Destination::Hangup);
    }

    #[test]
    fn a_key_outside_the_keypad_is_refused_with_its_path() {
        let text =
            format!("{}{}", menu("a", ""), menu("b", "keys = { \"5\" = \"hangup\", \"x\" = \"hangup\" }"));
        assert_eq!(field_of(&text), "ivr[2].keys[\"x\"]");
        assert_eq!(field_of(&menu("a", "keys = { \"12\" = \"hangup\" }")), "ivr[1].keys[\"12\"]");
    }

    #[test]
    fn an_unknown_queue_is_refused_with_its_key_path() {
        let text = format!("{}{}", menu("a", ""), menu("b", "keys = { \"5\" = { queue = \"nope\" } }"));
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err,
            IvrError::Unknown { field: "ivr[2].keys[\"5\"]".into(), kind: "queue", name: "nope".into() }
        );
        assert_eq!(err.to_string(), "ivr[2].keys[\"5\"]: no queue named \"nope\"");
    }

    #[test]
    fn every_kind_of_unknown_reference_is_refused() {
        for (dest, kind) in [
            ("{ extension = \"999\" }", "extension"),
            ("{ group = \"x\" }", "group"),
            ("{ voicemail = \"999\" }", "voicemail box"),
            ("{ announcement = \"x\" }", "announcement"),
            ("{ ivr = \"x\" }", "ivr"),
        ] {
            match parse(&menu("a", &format!("default = {dest}"))).unwrap_err() {
                IvrError::Unknown { field, kind: k, .. } => {
                    assert_eq!((field.as_str(), k), ("ivr[1].default", kind))
                }
                other => panic!("{dest}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_unknown_prompt_is_refused() {
        assert_eq!(field_of("[[ivr]]\nname = \"a\"\nprompt = \"nope\"\n"), "ivr[1].prompt");
        assert_eq!(field_of(&menu("a", "invalid_prompt = \"nope\"")), "ivr[1].invalid_prompt");
        assert_eq!(field_of(&menu("a", "timeout_prompt = \"\"")), "ivr[1].timeout_prompt");
    }

    #[test]
    fn keys_without_a_prompt_are_refused() {
        assert_eq!(field_of("[[ivr]]\nname = \"a\"\nkeys = { \"1\" = \"hangup\" }\n"), "ivr[1].prompt");
        assert_eq!(field_of("[[ivr]]\nname = \"a\"\ndirect_dial = true\n"), "ivr[1].prompt");
    }

    #[test]
    fn an_external_destination_must_be_a_number() {
        assert_eq!(
            field_of(&menu("a", "keys = { \"9\" = { external = \"03-1234\" } }")),
            "ivr[1].keys[\"9\"]"
        );
        assert!(parse(&menu("a", "keys = { \"9\" = { external = \"+81312345678\" } }")).is_ok());
    }

    #[test]
    fn numbers_out_of_range_are_refused_with_their_path() {
        assert_eq!(field_of(&menu("a", "timeout_seconds = 0")), "ivr[1].timeout_seconds");
        assert_eq!(field_of(&menu("a", "timeout_seconds = 61")), "ivr[1].timeout_seconds");
        assert_eq!(field_of(&menu("a", "retries = 10")), "ivr[1].retries");
        assert_eq!(field_of(&menu("a", "interdigit_seconds = 11")), "ivr[1].interdigit_seconds");
    }

    #[test]
    fn names_must_be_present_and_unique() {
        assert_eq!(field_of("[[ivr]]\nname = \" \"\n"), "ivr[1].name");
        assert_eq!(field_of(&format!("{}{}", menu("a", ""), menu("a", ""))), "ivr[2].name");
    }

    #[test]
    fn a_fourth_schedule_rule_is_refused() {
        let rule = "[[ivr.rule]]\nname = \"r\"\ndestination = \"hangup\"\n";
        let text = format!("{}{rule}{rule}{rule}{rule}", menu("a", ""));
        assert_eq!(parse(&text).unwrap_err(), IvrError::TooMany { field: "ivr[1].rule".into(), max: 3 });
    }

    #[test]
    fn a_bad_schedule_rule_reports_the_time_rules_field_path() {
        let text = format!(
            "{}[[ivr.rule]]\nname = \"r\"\ntimes = [\"25:00-26:00\"]\ndestination = \"hangup\"\n",
            menu("a", "")
        );
        assert_eq!(field_of(&text), "ivr[1].rule[1].times[1]");
    }

    #[test]
    fn an_unknown_field_is_a_toml_error_with_its_line() {
        match parse("[[ivr]]\nname = \"a\"\nprompts = \"p.x\"\n").unwrap_err() {
            IvrError::Toml { line, message } => {
                assert_eq!(line, Some(3));
                assert!(message.contains("prompts"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_menu_that_calls_itself_is_refused_as_a_loop() {
        let err = parse(&menu("a", "keys = { \"9\" = { ivr = \"a\" } }")).unwrap_err();
        assert_eq!(
            err,
            IvrError::Loop { field: "ivr[1].keys[\"9\"]".into(), path: vec!["a".into(), "a".into()] }
        );
    }

    #[test]
    fn a_cycle_through_three_menus_is_refused_with_its_path() {
        let text = format!(
            "{}{}{}",
            menu("main", "keys = { \"1\" = { ivr = \"b\" } }"),
            menu("b", "keys = { \"1\" = { ivr = \"c\" } }"),
            menu("c", "keys = { \"0\" = { ivr = \"main\" } }"),
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err,
            IvrError::Loop {
                field: "ivr[3].keys[\"0\"]".into(),
                path: vec!["main".into(), "b".into(), "c".into(), "main".into()]
            }
        );
        assert_eq!(
            err.to_string(),
            "ivr[3].keys[\"0\"]: menus loop (main → b → c → main); a caller could never leave"
        );
    }

    #[test]
    fn a_cycle_through_a_schedule_rule_or_a_default_is_refused() {
        let text = format!(
            "{}[[ivr.rule]]\nname = \"r\"\ndestination = {{ ivr = \"b\" }}\n{}",
            menu("a", ""),
            menu("b", "default = { ivr = \"a\" }")
        );
        assert_eq!(field_of(&text), "ivr[2].default");
    }

    #[test]
    fn a_menu_reached_twice_without_a_cycle_is_accepted() {
        let text = format!(
            "{}{}{}",
            menu("a", "keys = { \"1\" = { ivr = \"b\" }, \"2\" = { ivr = \"c\" } }"),
            menu("b", "keys = { \"1\" = { ivr = \"c\" } }"),
            menu("c", ""),
        );
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn a_chain_deeper_than_the_limit_is_refused() {
        let chain = |n: usize| -> String {
            (1..=n)
                .map(|i| {
                    let next =
                        if i < n { format!("default = {{ ivr = \"m{}\" }}", i + 1) } else { String::new() };
                    menu(&format!("m{i}"), &next)
                })
                .collect()
        };
        assert!(parse(&chain(MAX_MENU_DEPTH)).is_ok());
        match parse(&chain(MAX_MENU_DEPTH + 1)).unwrap_err() {
            IvrError::TooDeep { field, path } => {
                assert_eq!(field, format!("ivr[{MAX_MENU_DEPTH}].default"));
                assert_eq!(path.len(), MAX_MENU_DEPTH + 1);
            }
            other => panic!("{other:?}"),
        }
    }

    // Tests for the menu session.

    #[test]
    fn a_mapped_key_routes_to_its_queue() {
        let t = Instant::now();
        let mut s = session("main");
        s.start(t, MONDAY_10_JST);
        assert_eq!(drain(&mut s), vec![entered("main", 1), play(&["p.main"])]);
        assert_eq!(s.poll_timeout(), Some(t + PROMPT_GUARD), "only the guard while the prompt plays");
        s.handle_prompt_finished(t + Duration::from_secs(4));
        assert_eq!(s.poll_timeout(), Some(t + Duration::from_secs(9)));
        s.handle_digit(t + Duration::from_secs(5), '1', &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Queue("support".into()))]);
        assert!(s.is_done() && s.poll_timeout().is_none());
    }

    #[test]
    fn a_key_during_the_prompt_barges_in() {
        let t = Instant::now();
        let mut s = session("main");
        s.start(t, MONDAY_10_JST);
        drain(&mut s);
        s.handle_digit(t + Duration::from_secs(1), '2', &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Extension("201".into()))]);
    }

    #[test]
    fn a_prompt_whose_end_is_never_reported_stops_holding_the_caller_after_the_guard() {
        let t = Instant::now();
        let mut s = session("main");
        s.start(t, MONDAY_10_JST);
        drain(&mut s);
        assert_eq!(s.poll_timeout(), Some(t + PROMPT_GUARD));
        s.handle_timeout(t + PROMPT_GUARD, &exists);
        // As if the prompt had ended: the menu's key timeout runs now.
        let at = s.poll_timeout().expect("the key timeout is armed");
        assert!(at > t + PROMPT_GUARD, "{at:?}");
        assert!(!s.is_done());
    }

    #[test]
    fn a_key_to_a_sub_menu_enters_it_one_level_deeper() {
        let t = Instant::now();
        let mut s = waiting("main", t);
        s.handle_digit(t, '0', &exists);
        assert_eq!(drain(&mut s), vec![entered("sub", 2), play(&["p.sub"])]);
        assert_eq!(s.menu_name(), "sub");
        s.handle_prompt_finished(t);
        s.handle_digit(t, '1', &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Group("sales".into()))]);
    }

    #[test]
    fn invalid_keys_replay_the_menu_then_go_to_the_default_after_the_last_retry() {
        let t = Instant::now();
        let mut s = waiting("main", t);
        for _ in 0..DEFAULT_RETRIES {
            s.handle_digit(t, '7', &exists);
            assert_eq!(drain(&mut s), vec![play(&[DEFAULT_INVALID_PROMPT, "p.main"])]);
            s.handle_prompt_finished(t);
        }
        s.handle_digit(t, '7', &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Voicemail("201".into()))]);
        assert!(s.is_done());
    }

    #[test]
    fn silence_replays_the_menu_with_the_timeout_prompt_then_says_goodbye() {
        let t = Instant::now();
        let mut s = waiting("sub", t);
        let first = s.poll_timeout().unwrap();
        assert_eq!(first, t + Duration::from_secs(4));
        s.handle_timeout(first - Duration::from_millis(1), &exists);
        assert!(drain(&mut s).is_empty(), "an early timer does nothing");
        s.handle_timeout(first, &exists);
        assert_eq!(drain(&mut s), vec![play(&[DEFAULT_TIMEOUT_PROMPT, "p.sub"])]);
        s.handle_timeout(first, &exists);
        assert!(drain(&mut s).is_empty(), "a repeated timer does nothing");
        s.handle_prompt_finished(first);
        s.handle_timeout(s.poll_timeout().unwrap(), &exists);
        // sub has one retry and no default: goodbye, then hang up.
        assert_eq!(drain(&mut s), vec![play(&[GOODBYE_PROMPT])]);
        s.handle_prompt_finished(first);
        assert_eq!(drain(&mut s), vec![IvrOutput::HangUp]);
        assert!(s.is_done());
    }

    #[test]
    fn hangup_key_says_goodbye_before_hanging_up() {
        let t = Instant::now();
        let mut s = waiting("main", t);
        s.handle_digit(t, '#', &exists);
        assert_eq!(drain(&mut s), vec![play(&[GOODBYE_PROMPT])]);
        s.handle_digit(t, '1', &exists);
        assert!(drain(&mut s).is_empty(), "keys are ignored while closing");
        s.handle_prompt_finished(t);
        assert_eq!(drain(&mut s), vec![IvrOutput::HangUp]);
    }

    #[test]
    fn direct_dial_routes_an_extension_after_the_inter_digit_timeout() {
        let t = Instant::now();
        let mut s = session("direct");
        s.start(t, MONDAY_10_JST);
        drain(&mut s);
        s.handle_digit(t + Duration::from_secs(1), '2', &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::StopPlayback]);
        s.handle_digit(t + Duration::from_secs(2), '0', &exists);
        s.handle_digit(t + Duration::from_secs(3), '1', &exists);
        let due = t + Duration::from_secs(3 + u64::from(DEFAULT_INTERDIGIT_SECONDS));
        assert_eq!(s.poll_timeout(), Some(due));
        assert!(drain(&mut s).is_empty());
        s.handle_timeout(due, &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Extension("201".into()))]);
    }

    #[test]
    fn direct_dial_ends_early_on_pound() {
        let t = Instant::now();
        let mut s = waiting("direct", t);
        for k in ['2', '0', '0', '1', '#'] {
            s.handle_digit(t, k, &exists);
        }
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Extension("2001".into()))]);
    }

    #[test]
    fn direct_dial_takes_a_lone_digit_as_its_key() {
        let t = Instant::now();
        let mut s = waiting("direct", t);
        s.handle_digit(t, '2', &exists);
        s.handle_timeout(s.poll_timeout().unwrap(), &exists);
        assert_eq!(drain(&mut s), vec![IvrOutput::Route(Destination::Queue("support".into()))]);
    }

    #[test]
    fn direct_dial_of_an_unknown_number_counts_as_invalid() {
        let t = Instant::now();
        let mut s = waiting("direct", t);
        for k in ['9', '9', '9', '#'] {
            s.handle_digit(t, k, &exists);
        }
        assert_eq!(drain(&mut s), vec![play(&[DEFAULT_INVALID_PROMPT, "p.direct"])]);
    }

    #[test]
    fn direct_dial_stops_collecting_at_the_digit_limit() {
        let t = Instant::now();
        let mut s = waiting("direct", t);
        for _ in 0..MAX_DIRECT_DIGITS {
            s.handle_digit(t, '1', &exists);
        }
        assert_eq!(drain(&mut s), vec![play(&[DEFAULT_INVALID_PROMPT, "p.direct"])]);
    }

    #[test]
    fn star_in_a_direct_dial_menu_is_still_a_key() {
        let t = Instant::now();
        let mut s = waiting("direct", t);
        s.handle_digit(t, '*', &exists);
        assert_eq!(drain(&mut s), vec![entered("sub", 2), play(&["p.sub"])]);
    }

    #[test]
    fn a_schedule_rule_routes_before_the_menu_plays() {
        let t = Instant::now();
        let mut s = session("main");
        s.start(t, SUNDAY_10_JST);
        assert_eq!(
            drain(&mut s),
            vec![entered("main", 1), IvrOutput::Route(Destination::Announcement("closed".into()))]
        );
    }

    #[test]
    fn a_cycle_through_a_schedule_rule_is_refused() {
        let text = format!(
            "{}[[ivr.rule]]\nname = \"night\"\ntimes = [\"18:00-09:00\"]\ndestination = {{ ivr = \"night\" }}\n{}",
            menu("day", ""),
            menu("night", "keys = { \"1\" = { ivr = \"day\" } }"),
        );
        assert_eq!(field_of(&text), "ivr[2].keys[\"1\"]");
    }

    #[test]
    fn a_sub_menu_schedule_is_evaluated_at_the_wall_time_the_caller_enters_it() {
        let text = format!(
            "{}{}[[ivr.rule]]\nname = \"night\"\ntimes = [\"18:00-09:00\"]\ndestination = {{ extension = \"201\" }}\n",
            menu("day", "keys = { \"1\" = { ivr = \"sales\" } }"),
            menu("sales", "keys = { \"1\" = { group = \"sales\" } }"),
        );
        let ivrs = Arc::new(parse(&text).unwrap());
        let mut s = IvrSession::new(ivrs, Arc::new(HolidayList::new()), "day").unwrap();
        let t = Instant::now();
        // 17:59:30 JST on a Monday: the day menu plays.
        s.start(t, MONDAY_10_JST + 8 * 3_600_000 - 30_000);
        assert_eq!(drain(&mut s), vec![entered("day", 1), play(&["p.x"])]);
        // 40 s later it is 18:00:10: the sub-menu's night rule applies.
        s.handle_digit(t + Duration::from_secs(40), '1', &exists);
        assert_eq!(
            drain(&mut s),
            vec![entered("sales", 2), IvrOutput::Route(Destination::Extension("201".into()))]
        );
    }

    #[test]
    fn a_menu_without_a_prompt_goes_straight_to_its_default() {
        let text = "[[ivr]]\nname = \"a\"\ndefault = { queue = \"support\" }\n";
        let mut s =
            IvrSession::new(Arc::new(parse(text).unwrap()), Arc::new(HolidayList::new()), "a").unwrap();
        s.start(Instant::now(), MONDAY_10_JST);
        assert_eq!(
            drain(&mut s),
            vec![entered("a", 1), IvrOutput::Route(Destination::Queue("support".into()))]
        );
    }

    #[test]
    fn an_unknown_entry_menu_gives_no_session() {
        assert!(IvrSession::new(menus(), Arc::new(HolidayList::new()), "nope").is_none());
    }

    #[test]
    fn inputs_before_start_do_nothing() {
        let t = Instant::now();
        let mut s = session("main");
        s.handle_digit(t, '1', &exists);
        s.handle_prompt_finished(t);
        s.handle_timeout(t, &exists);
        assert!(drain(&mut s).is_empty() && !s.is_done());
    }
}
