//! The dial-plan part of the configuration (issue 4): `[[ring_group]]` blocks and the
//! forwarding, do-not-disturb, pickup-group and hot-desk keys of `[[extension]]`.
//!
//! Validation is done after the rest of the file (it needs every extension and room number);
//! errors carry the span of the offending key like the rest of `load.rs`.

use super::load::{invalid, Invalid};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use toml::Spanned;

/// Seconds a sequential group rings each member, and an extension rings before its
/// no-answer forward, when the file says nothing (spec seed 002 §2.20: 20 s).
pub const DEFAULT_RING_S: u32 = 20;
/// Accepted ring times in seconds: under 5 nobody can answer, over 10 minutes the caller has
/// long given up.
const RING_S: std::ops::RangeInclusive<i64> = 5..=600;
/// Most `[[ring_group]]` blocks: a small office has a handful; the cap bounds the dial plan.
pub const MAX_RING_GROUPS: usize = 100;
/// Most members per group: every member may be one fork per contact of a ring-all call.
pub const MAX_GROUP_MEMBERS: usize = 32;
/// Ring group numbers have the extensions' length rules.
const GROUP_DIGITS: std::ops::RangeInclusive<usize> = 2..=8;
/// A number that is not internal must have at least this many digits to be dialled out:
/// Japanese subscriber numbers with their trunk prefix `0` have 10 or 11; shorter ones are
/// almost always a mistyped extension.
pub const MIN_EXTERNAL_DIGITS: usize = 10;
/// Longest number accepted as a forward target (E.164 is 15 digits; prefixes add a few).
pub const MAX_TARGET_DIGITS: usize = 20;
/// Park slots of the transfer/park feature start here (issue 4: "9001+"); a group there would
/// shadow a slot.
pub const PARK_SLOTS: std::ops::RangeInclusive<u32> = 9001..=9099;
/// Hot-desk log-in prefix (`998` + extension + PIN).
pub const HOTDESK_LOGIN: &str = "998";
/// Hot-desk log-out code.
pub const HOTDESK_LOGOUT: &str = "997";
/// Hot-desk PINs are exactly this many digits (what the phones' users are told).
pub const PIN_DIGITS: usize = 4;
/// Pickup group names: short labels for the console.
const PICKUP_GROUP_CHARS: std::ops::RangeInclusive<usize> = 1..=32;

/// How a ring group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RingStrategy {
    /// Every member's phones at once; the first answer wins.
    #[default]
    RingAll,
    /// One member at a time, in the listed order, skipping unregistered, busy and DND members.
    Sequential,
}

impl RingStrategy {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RingStrategy::RingAll => "ring_all",
            RingStrategy::Sequential => "sequential",
        }
    }
}

/// `[[ring_group]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingGroupConfig {
    /// The number dialled to reach the group, e.g. `800`.
    pub number: String,
    /// Display name.
    pub name: String,
    /// Ring-all or sequential.
    pub strategy: RingStrategy,
    /// Member extensions, in order.
    pub members: Vec<String>,
    /// Seconds each member rings (sequential), or the whole group when no `timeout_seconds`
    /// (ring-all).
    pub ring_s: u32,
    /// Total seconds before the no-answer destination, whatever the strategy.
    pub timeout_s: Option<u32>,
    /// Internal number called when nobody answers; `None`: the caller gets 480 (or the
    /// group's own mailbox with `voicemail`).
    pub no_answer: Option<String>,
    /// Unanswered calls without a `no_answer` target go to the group's own mailbox (keyed by
    /// its number; e-mail to every member with an address; `docs/voicemail.md`).
    pub voicemail: bool,
    /// PIN of the group's mailbox in the `*92<group>` owner menu; `None`: not by phone.
    pub pin: Option<String>,
}

/// Per-extension dial-plan settings from `[[extension]]` (their runtime overrides live in the
/// engine and the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionFeatures {
    /// Every call goes there.
    pub forward_always: Option<String>,
    /// Calls while busy (or DND) go there.
    pub forward_busy: Option<String>,
    /// Calls not answered within `forward_no_answer_s` go there.
    pub forward_no_answer: Option<String>,
    /// Ring time before the no-answer forward.
    pub forward_no_answer_s: u32,
    /// Calls while no phone is registered go there.
    pub forward_unregistered: Option<String>,
    /// Do not disturb: callers get busy (486) or the busy forward.
    pub dnd: bool,
    /// Pickup group name (`*8` picks up calls ringing in the same group).
    pub pickup_group: Option<String>,
    /// Hot-desk PIN (four digits).
    pub pin: Option<String>,
    /// Busy, no-answer and unregistered calls without a forward of that kind go to the
    /// extension's own mailbox (`docs/voicemail.md`).
    pub voicemail: bool,
}

impl Default for ExtensionFeatures {
    fn default() -> Self {
        ExtensionFeatures {
            forward_always: None,
            forward_busy: None,
            forward_no_answer: None,
            forward_no_answer_s: DEFAULT_RING_S,
            forward_unregistered: None,
            dnd: false,
            pickup_group: None,
            pin: None,
            voicemail: false,
        }
    }
}

/// The dial plan of the box.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DialplanConfig {
    /// Ring groups, keyed by their number in the engine.
    pub ring_groups: Vec<RingGroupConfig>,
    /// Extension number → its settings (only extensions that set any key).
    pub extensions: BTreeMap<String, ExtensionFeatures>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRingGroup {
    number: Spanned<String>,
    name: Spanned<String>,
    strategy: Option<Spanned<String>>,
    members: Spanned<Vec<String>>,
    ring_seconds: Option<Spanned<i64>>,
    timeout_seconds: Option<Spanned<i64>>,
    no_answer: Option<Spanned<String>>,
    voicemail: Option<Spanned<bool>>,
    pin: Option<Spanned<String>>,
}

/// The dial-plan keys of one `[[extension]]`, taken out of its raw block.
#[derive(Debug, Default)]
pub(super) struct RawFeatures {
    pub(super) forward_always: Option<Spanned<String>>,
    pub(super) forward_busy: Option<Spanned<String>>,
    pub(super) forward_no_answer: Option<Spanned<String>>,
    pub(super) forward_no_answer_seconds: Option<Spanned<i64>>,
    pub(super) forward_unregistered: Option<Spanned<String>>,
    pub(super) dnd: Option<Spanned<bool>>,
    pub(super) pickup_group: Option<Spanned<String>>,
    pub(super) pin: Option<Spanned<String>>,
    pub(super) voicemail: Option<Spanned<bool>>,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// True when `target` may be a forward target given the internal numbers: an internal number,
/// or an outside number of [`MIN_EXTERNAL_DIGITS`]..=`MAX_TARGET_DIGITS` (20) digits.
pub fn target_ok(target: &str, internal: &dyn Fn(&str) -> bool) -> Result<(), String> {
    if !digits(target) {
        return Err(format!("`{target}` is not a number (digits only)"));
    }
    if internal(target) {
        return Ok(());
    }
    if (MIN_EXTERNAL_DIGITS..=MAX_TARGET_DIGITS).contains(&target.len()) {
        return Ok(());
    }
    Err(format!(
        "`{target}` is neither an extension nor a ring group, and too short for an outside number \
         ({MIN_EXTERNAL_DIGITS}-{MAX_TARGET_DIGITS} digits)"
    ))
}

/// Checks the dial plan against the numbers already validated: `extensions` (number, raw
/// features, block span) and the conference rooms.
pub(super) fn validate(
    groups: Vec<Spanned<RawRingGroup>>,
    extensions: Vec<(String, RawFeatures, std::ops::Range<usize>)>,
    rooms: &[String],
) -> Result<DialplanConfig, Invalid> {
    let mut out = DialplanConfig::default();
    let ext_numbers: HashSet<String> = extensions.iter().map(|(n, _, _)| n.clone()).collect();
    if groups.len() > MAX_RING_GROUPS {
        let span = groups.get(MAX_RING_GROUPS).map(|g| g.span()).unwrap_or(0..0);
        return Err(Invalid {
            span,
            field: format!("ring_group[{}]", MAX_RING_GROUPS + 1),
            message: format!("at most {MAX_RING_GROUPS} ring groups"),
        });
    }
    for (i, ext) in extensions.iter().enumerate() {
        reserved_prefix(&ext.0).map_err(|m| Invalid {
            span: ext.2.clone(),
            field: format!("extension[{}].number", i + 1),
            message: m,
        })?;
    }
    let mut group_numbers: HashSet<String> = HashSet::new();
    let raw_groups: Vec<RawRingGroup> = groups.into_iter().map(Spanned::into_inner).collect();
    for (i, g) in raw_groups.iter().enumerate() {
        let f = |name: &str| format!("ring_group[{}].{name}", i + 1);
        let n = g.number.get_ref();
        if !GROUP_DIGITS.contains(&n.len()) || !digits(n) {
            return Err(invalid(&g.number, f("number"), format!("`{n}` is not a number of 2-8 digits")));
        }
        if ext_numbers.contains(n) {
            return Err(invalid(&g.number, f("number"), format!("{n} is also an extension")));
        }
        if rooms.iter().any(|r| r == n) {
            return Err(invalid(&g.number, f("number"), format!("{n} is also a conference room")));
        }
        if n.parse::<u32>().is_ok_and(|v| PARK_SLOTS.contains(&v)) {
            return Err(invalid(
                &g.number,
                f("number"),
                format!("{n} is a park slot ({}-{})", PARK_SLOTS.start(), PARK_SLOTS.end()),
            ));
        }
        reserved_prefix(n).map_err(|m| invalid(&g.number, f("number"), m))?;
        if !group_numbers.insert(n.clone()) {
            return Err(invalid(&g.number, f("number"), format!("ring group {n} is defined twice")));
        }
    }
    let internal = |t: &str| ext_numbers.contains(t) || group_numbers.contains(t);
    for (i, g) in raw_groups.into_iter().enumerate() {
        let f = |name: &str| format!("ring_group[{}].{name}", i + 1);
        let name = g.name.get_ref();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(invalid(&g.name, f("name"), "must be 1-64 characters without control characters"));
        }
        let strategy = match g.strategy.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("ring_all") => RingStrategy::RingAll,
            Some("sequential") => RingStrategy::Sequential,
            Some(other) => {
                let s = g.strategy.as_ref().map_or(&g.name, |s| s);
                return Err(invalid(
                    s,
                    f("strategy"),
                    format!("`{other}` is not \"ring_all\" or \"sequential\""),
                ));
            }
        };
        let members = g.members.get_ref();
        if members.is_empty() || members.len() > MAX_GROUP_MEMBERS {
            return Err(invalid(&g.members, f("members"), format!("list 1-{MAX_GROUP_MEMBERS} extensions")));
        }
        let mut seen = HashSet::new();
        for m in members {
            if !ext_numbers.contains(m) {
                return Err(invalid(&g.members, f("members"), format!("`{m}` is not an extension")));
            }
            if !seen.insert(m) {
                return Err(invalid(&g.members, f("members"), format!("{m} is listed twice")));
            }
        }
        let secs = |v: &Option<Spanned<i64>>, name: &str| -> Result<Option<u32>, Invalid> {
            match v {
                None => Ok(None),
                Some(s) if RING_S.contains(s.get_ref()) => Ok(u32::try_from(*s.get_ref()).ok()),
                Some(s) => Err(invalid(
                    s,
                    f(name),
                    format!("{} s is outside {}..={} seconds", s.get_ref(), RING_S.start(), RING_S.end()),
                )),
            }
        };
        let ring_s = secs(&g.ring_seconds, "ring_seconds")?.unwrap_or(DEFAULT_RING_S);
        let timeout_s = secs(&g.timeout_seconds, "timeout_seconds")?;
        let no_answer = match &g.no_answer {
            None => None,
            Some(t) if internal(t.get_ref()) && t.get_ref() != g.number.get_ref() => {
                Some(t.get_ref().clone())
            }
            Some(t) => {
                return Err(invalid(
                    t,
                    f("no_answer"),
                    format!("`{}` is not another extension or ring group", t.get_ref()),
                ))
            }
        };
        let pin = match g.pin {
            None => None,
            Some(p) if p.get_ref().len() == PIN_DIGITS && digits(p.get_ref()) => Some(p.into_inner()),
            // The PIN itself is never echoed: error messages end up in logs.
            Some(p) => return Err(invalid(&p, f("pin"), format!("must be exactly {PIN_DIGITS} digits"))),
        };
        out.ring_groups.push(RingGroupConfig {
            number: g.number.into_inner(),
            name: g.name.into_inner(),
            strategy,
            members: g.members.into_inner(),
            ring_s,
            timeout_s,
            no_answer,
            voicemail: g.voicemail.is_some_and(Spanned::into_inner),
            pin,
        });
    }
    for (i, (number, raw, _)) in extensions.into_iter().enumerate() {
        let f = |name: &str| format!("extension[{}].{name}", i + 1);
        let mut feats = ExtensionFeatures::default();
        let mut any = false;
        let target = |v: Option<Spanned<String>>, name: &str| -> Result<Option<String>, Invalid> {
            match v {
                None => Ok(None),
                Some(t) => {
                    target_ok(t.get_ref(), &internal).map_err(|m| invalid(&t, f(name), m))?;
                    if t.get_ref() == &number {
                        return Err(invalid(&t, f(name), "an extension cannot forward to itself"));
                    }
                    Ok(Some(t.into_inner()))
                }
            }
        };
        feats.forward_always = target(raw.forward_always, "forward_always")?;
        feats.forward_busy = target(raw.forward_busy, "forward_busy")?;
        feats.forward_no_answer = target(raw.forward_no_answer, "forward_no_answer")?;
        feats.forward_unregistered = target(raw.forward_unregistered, "forward_unregistered")?;
        any |= feats.forward_always.is_some()
            || feats.forward_busy.is_some()
            || feats.forward_no_answer.is_some()
            || feats.forward_unregistered.is_some();
        if let Some(s) = raw.forward_no_answer_seconds {
            if !RING_S.contains(s.get_ref()) {
                return Err(invalid(
                    &s,
                    f("forward_no_answer_seconds"),
                    format!("{} s is outside {}..={} seconds", s.get_ref(), RING_S.start(), RING_S.end()),
                ));
            }
            feats.forward_no_answer_s = u32::try_from(*s.get_ref()).unwrap_or(DEFAULT_RING_S);
            any = true;
        }
        if let Some(d) = raw.dnd {
            feats.dnd = d.into_inner();
            any = true;
        }
        if let Some(g) = raw.pickup_group {
            let name = g.get_ref();
            let ok = PICKUP_GROUP_CHARS.contains(&name.chars().count())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(invalid(&g, f("pickup_group"), "must be 1-32 letters, digits, `_` or `-`"));
            }
            feats.pickup_group = Some(g.into_inner());
            any = true;
        }
        if let Some(p) = raw.pin {
            if p.get_ref().len() != PIN_DIGITS || !digits(p.get_ref()) {
                // The PIN itself is never echoed: error messages end up in logs.
                return Err(invalid(&p, f("pin"), format!("must be exactly {PIN_DIGITS} digits")));
            }
            feats.pin = Some(p.into_inner());
            any = true;
        }
        if let Some(v) = raw.voicemail {
            feats.voicemail = v.into_inner();
            any = true;
        }
        if any {
            out.extensions.insert(number, feats);
        }
    }
    Ok(out)
}

/// Numbers that would shadow (or be shadowed by) the hot-desk codes.
fn reserved_prefix(n: &str) -> Result<(), String> {
    if n == HOTDESK_LOGOUT || n.starts_with(HOTDESK_LOGIN) {
        return Err(format!("{n} collides with the hot-desk codes {HOTDESK_LOGIN}/{HOTDESK_LOGOUT}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_str, ConfigError, RingStrategy};

    const EXTS: &str = "[[extension]]\nnumber = \"201\"\nname = \"A\"\npassword = \"password-201\"\n\
                        [[extension]]\nnumber = \"202\"\nname = \"B\"\npassword = \"password-202\"\n";

    fn refused(extra: &str) -> ConfigError {
        parse_str(&format!("{EXTS}{extra}"), "box.toml").expect_err("must be refused")
    }

    #[test]
    fn a_ring_group_and_extension_keys_are_read() {
        let text = format!(
            "{EXTS}[[ring_group]]\nnumber = \"800\"\nname = \"Sales\"\nstrategy = \"sequential\"\n\
             members = [\"202\", \"201\"]\nring_seconds = 15\nno_answer = \"201\"\n"
        );
        let text = text.replacen(
            "password = \"password-201\"\n",
            "password = \"password-201\"\nforward_busy = \"0312345678\"\ndnd = true\npin = \"1234\"\n",
            1,
        );
        let c = parse_str(&text, "box.toml").unwrap();
        let g = &c.dialplan.ring_groups[0];
        assert_eq!(
            (g.strategy, g.ring_s, g.no_answer.as_deref()),
            (RingStrategy::Sequential, 15, Some("201"))
        );
        let f = &c.dialplan.extensions["201"];
        assert_eq!(
            (f.forward_busy.as_deref(), f.dnd, f.pin.as_deref()),
            (Some("0312345678"), true, Some("1234"))
        );
        assert_eq!(f.forward_no_answer_s, super::DEFAULT_RING_S);
    }

    #[test]
    fn an_unknown_member_is_refused_with_its_line_and_field() {
        let e = refused("[[ring_group]]\nnumber = \"800\"\nname = \"S\"\nmembers = [\"201\", \"299\"]\n");
        assert_eq!((e.line, e.field.as_deref()), (Some(12), Some("ring_group[1].members")));
        assert!(e.message.contains("299"), "{e}");
    }

    #[test]
    fn a_group_number_taken_by_an_extension_a_room_or_a_park_slot_is_refused() {
        for n in ["202", "9201", "9001"] {
            let e =
                refused(&format!("[[ring_group]]\nnumber = \"{n}\"\nname = \"S\"\nmembers = [\"201\"]\n"));
            assert_eq!(e.field.as_deref(), Some("ring_group[1].number"), "{n}: {e}");
        }
        let e = refused(
            "[[ring_group]]\nnumber = \"800\"\nname = \"S\"\nmembers = [\"201\"]\n\
             [[ring_group]]\nnumber = \"800\"\nname = \"T\"\nmembers = [\"202\"]\n",
        );
        assert_eq!(e.field.as_deref(), Some("ring_group[2].number"));
    }

    #[test]
    fn bad_forward_targets_pins_and_strategies_are_refused() {
        let with = |k: &str| {
            parse_str(
                &EXTS.replacen(
                    "password = \"password-202\"\n",
                    &format!("password = \"password-202\"\n{k}\n"),
                    1,
                ),
                "box.toml",
            )
            .expect_err(k)
        };
        assert_eq!(with("forward_always = \"299\"").field.as_deref(), Some("extension[2].forward_always"));
        assert_eq!(with("forward_busy = \"202\"").field.as_deref(), Some("extension[2].forward_busy"));
        assert_eq!(with("pin = \"12a4\"").field.as_deref(), Some("extension[2].pin"));
        assert_eq!(
            with("forward_no_answer_seconds = 2").field.as_deref(),
            Some("extension[2].forward_no_answer_seconds")
        );
        let e = refused(
            "[[ring_group]]\nnumber = \"800\"\nname = \"S\"\nstrategy = \"random\"\nmembers = [\"201\"]\n",
        );
        assert_eq!(e.field.as_deref(), Some("ring_group[1].strategy"));
    }
}
