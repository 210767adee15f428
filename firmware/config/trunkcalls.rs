//! The configuration of calls that cross a trunk (issue 4): `[[did]]` with its time rules,
//! `[[outbound_route]]`, `[block]` (着信拒否), `[restrict]` (発信規制), the top-level
//! `utc_offset` / `holidays`, and the per-extension `caller_id` / `external_calls`.
//!
//! Two stages like the rest of `config`: the `Raw*` serde shapes below, then [`validate`]
//! builds [`TrunkCallsConfig`] with errors naming the field. Documented in
//! `docs/trunk-calls.md` and `docs/configuration.md`.

use crate::apps::numbers::{ListEntry, Route, Routes};
use crate::apps::timerules::{Destination, DidConfig, RuleConfig, TimeRules, TimeRulesConfig};
use serde::Deserialize;
use toml::Spanned;

/// Longest audio name of a block-list announcement; names are file stems, not prose.
const MAX_AUDIO_NAME: usize = 64;

/// What an inbound call to a DID forwarded outside presents as its caller ID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ForwardPresent {
    /// The DID that was called (`present = "did"`, the default).
    #[default]
    Did,
    /// This number (`present = "0312345678"`).
    Number(String),
}

/// The options of one `[[did]]` beyond its time rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidOptions {
    /// The DID, as in the time rules.
    pub number: String,
    /// Caller ID of a forward to an outside number.
    pub present: ForwardPresent,
    /// Most calls to this DID at once; 0 = unlimited.
    pub max_channels: u32,
    /// Extensions whose outbound calls present this DID (unless they have their own `caller_id`).
    pub caller_id_for: Vec<String>,
}

/// How a blocked (or rejected anonymous) inbound call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockTreatment {
    /// 486 Busy Here: the caller hears busy.
    #[default]
    Busy,
    /// 603 Decline.
    Reject,
    /// The box answers, plays `[block] announcement`, then hangs up.
    Announcement,
}

/// `[block]`: the inbound block list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockConfig {
    /// Entries from `numbers`.
    pub entries: Vec<ListEntry>,
    /// A CSV file (in the data directory, or an absolute path) read at start.
    pub file: Option<String>,
    /// The treatment.
    pub treatment: BlockTreatment,
    /// Audio (a prompt id or an imported audio file) of the announcement treatment.
    pub announcement: String,
    /// Callers without a caller ID are treated as blocked.
    pub reject_anonymous: bool,
}

/// The outbound options of one extension (`[[extension]]` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOutbound {
    /// The extension.
    pub number: String,
    /// Its own caller ID outside (national form), overriding a DID's `caller_id_for`.
    pub caller_id: Option<String>,
    /// False: only emergency numbers go out (外線発信禁止).
    pub external_calls: bool,
}

/// Everything about trunk calls, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrunkCallsConfig {
    /// Time rules of every DID (the `[[did]]` blocks, `utc_offset`, `holidays`).
    pub time_rules: TimeRules,
    /// The other options of each `[[did]]`, in file order.
    pub dids: Vec<DidOptions>,
    /// `[[outbound_route]]` in file order.
    pub routes: Vec<Route>,
    /// `[block]`.
    pub block: BlockConfig,
    /// `[restrict]` entries (numbers, optionally scoped to a caller ID).
    pub restrict: Vec<ListEntry>,
    /// `[restrict] file`.
    pub restrict_file: Option<String>,
    /// Per-extension outbound options (only extensions that set one).
    pub extensions: Vec<ExtensionOutbound>,
}

impl TrunkCallsConfig {
    /// The options of `did`.
    pub fn did(&self, did: &str) -> Option<&DidOptions> {
        self.dids.iter().find(|d| d.number == did)
    }
}

/// One `[[did]]` block: the time-rule shape plus the trunk-call options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDid {
    number: String,
    default: Destination,
    #[serde(default)]
    rule: Vec<RuleConfig>,
    present: Option<String>,
    max_channels: Option<i64>,
    #[serde(default)]
    caller_id_for: Vec<String>,
    popup_url: Option<String>,
}

/// DID → its pop-up URL (`[[did]] popup_url`).
pub type PopupUrls = std::collections::BTreeMap<String, String>;

/// Longest DID pop-up URL: far above any CRM search link, well below what browsers take.
pub const MAX_POPUP_URL: usize = 1024;

/// Checks a DID's pop-up URL: `http://` or `https://`, at most [`MAX_POPUP_URL`] bytes, no
/// spaces or control characters (the page opens it as a link; `javascript:` and the like are
/// refused so a config cannot run script in the admin's origin).
pub fn popup_url_ok(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err("must start with http:// or https://".into());
    }
    if url.len() > MAX_POPUP_URL {
        return Err(format!("at most {MAX_POPUP_URL} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("no spaces or control characters".into());
    }
    Ok(())
}

/// One `[[outbound_route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    strip: i64,
    #[serde(default)]
    prepend: String,
    trunk: String,
}

/// `[block]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlock {
    #[serde(default)]
    numbers: Vec<String>,
    file: Option<String>,
    treatment: Option<String>,
    announcement: Option<String>,
    #[serde(default)]
    reject_anonymous: bool,
}

/// `[[restrict.scoped]]`: numbers barred only for calls out under one caller ID.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScoped {
    caller_id: String,
    numbers: Vec<String>,
}

/// `[restrict]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRestrict {
    #[serde(default)]
    numbers: Vec<String>,
    file: Option<String>,
    #[serde(default)]
    scoped: Vec<RawScoped>,
}

/// The raw sections, as `load.rs` read them.
pub(super) struct RawTrunkCalls {
    pub(super) utc_offset: Option<String>,
    pub(super) holidays: Vec<String>,
    pub(super) did: Vec<Spanned<RawDid>>,
    pub(super) outbound_route: Vec<Spanned<RawRoute>>,
    pub(super) block: Option<Spanned<RawBlock>>,
    pub(super) restrict: Option<Spanned<RawRestrict>>,
}

/// A failure: the byte span to point at, the field and the message.
pub(super) type Invalid = (std::ops::Range<usize>, String, String);

fn file_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.contains("..") && name.len() <= 4096
}

fn entries(list: &[String], field: &str, span: &std::ops::Range<usize>) -> Result<Vec<ListEntry>, Invalid> {
    list.iter()
        .enumerate()
        .map(|(i, n)| {
            ListEntry::parse(n, None, "config")
                .map_err(|e| (span.clone(), format!("{field}[{}]", i + 1), format!("`{n}`: {e}")))
        })
        .collect()
}

/// Validates the trunk-call sections. `trunks` are the configured trunk names (routes must name
/// one), `extensions` the configured extension numbers.
/// Also returns each DID's pop-up URL (kept apart from [`DidOptions`]: the engine does not
/// use it, only the web's screen pop).
pub(super) fn validate(
    raw: RawTrunkCalls,
    trunks: &[String],
    extensions: &[String],
) -> Result<(TrunkCallsConfig, PopupUrls), Invalid> {
    let mut out = TrunkCallsConfig::default();
    let mut popups = PopupUrls::new();
    let first_did_span = raw.did.first().map(|d| d.span()).unwrap_or(0..0);
    let mut rules = TimeRulesConfig { utc_offset: raw.utc_offset, holidays: raw.holidays, did: Vec::new() };
    for (i, d) in raw.did.into_iter().enumerate() {
        let span = d.span();
        let d = d.into_inner();
        let field = |k: &str| format!("did[{}].{k}", i + 1);
        let present = match d.present.as_deref().map(str::trim) {
            None | Some("did") => ForwardPresent::Did,
            Some(n) if !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()) => {
                ForwardPresent::Number(n.to_string())
            }
            Some(other) => {
                return Err((span, field("present"), format!("`{other}` is not \"did\" or a number")));
            }
        };
        let max_channels = match d.max_channels {
            None => 0,
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| *n <= 10_000)
                .ok_or_else(|| (span.clone(), field("max_channels"), format!("{n} is outside 0..=10000")))?,
        };
        for e in &d.caller_id_for {
            if !extensions.iter().any(|x| x == e) {
                return Err((span.clone(), field("caller_id_for"), format!("{e} is not an extension")));
            }
        }
        let popup_url = match d.popup_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => {
                popup_url_ok(u).map_err(|m| (span.clone(), field("popup_url"), format!("`{u}`: {m}")))?;
                Some(u.to_string())
            }
        };
        out.dids.push(DidOptions {
            number: d.number.trim().to_string(),
            present,
            max_channels,
            caller_id_for: d.caller_id_for,
        });
        if let Some(u) = popup_url {
            popups.insert(d.number.trim().to_string(), u);
        }
        rules.did.push(DidConfig { number: d.number, default: d.default, rule: d.rule });
    }
    out.time_rules =
        TimeRules::from_config(&rules).map_err(|e| (first_did_span, "did".to_string(), e.to_string()))?;
    for (i, r) in raw.outbound_route.iter().enumerate() {
        let span = r.span();
        let r = r.get_ref();
        let field = |k: &str| format!("outbound_route[{}].{k}", i + 1);
        if !trunks.contains(&r.trunk) {
            return Err((span, field("trunk"), format!("no [[trunk]] is named `{}`", r.trunk)));
        }
        let strip = usize::try_from(r.strip)
            .map_err(|_| (span.clone(), field("strip"), format!("{} is negative", r.strip)))?;
        out.routes.push(Route {
            prefix: r.prefix.clone(),
            strip,
            prepend: r.prepend.clone(),
            trunk: r.trunk.clone(),
        });
    }
    if let Err(e) = Routes::new(out.routes.clone()) {
        let span = raw.outbound_route.first().map(|r| r.span()).unwrap_or(0..0);
        return Err((span, "outbound_route".into(), e.to_string()));
    }
    if let Some(b) = raw.block {
        let span = b.span();
        let b = b.into_inner();
        out.block.entries = entries(&b.numbers, "block.numbers", &span)?;
        out.block.treatment = match b.treatment.as_deref() {
            None | Some("busy") => BlockTreatment::Busy,
            Some("reject") => BlockTreatment::Reject,
            Some("announcement") => BlockTreatment::Announcement,
            Some(other) => {
                return Err((
                    span,
                    "block.treatment".into(),
                    format!("`{other}` is not \"busy\", \"reject\" or \"announcement\""),
                ))
            }
        };
        out.block.announcement = b.announcement.unwrap_or_else(|| "common.not_in_service".into());
        if out.block.announcement.is_empty() || out.block.announcement.len() > MAX_AUDIO_NAME {
            return Err((span, "block.announcement".into(), "expected an audio name of 1-64 bytes".into()));
        }
        if let Some(f) = &b.file {
            if !file_name_ok(f) {
                return Err((span, "block.file".into(), format!("`{f}` is not a usable file name")));
            }
        }
        out.block.file = b.file;
        out.block.reject_anonymous = b.reject_anonymous;
    }
    if let Some(r) = raw.restrict {
        let span = r.span();
        let r = r.into_inner();
        out.restrict = entries(&r.numbers, "restrict.numbers", &span)?;
        for (i, s) in r.scoped.iter().enumerate() {
            for n in &s.numbers {
                let e = ListEntry::parse(n, Some(&s.caller_id), "config").map_err(|e| {
                    (span.clone(), format!("restrict.scoped[{}]", i + 1), format!("`{n}`: {e}"))
                })?;
                out.restrict.push(e);
            }
        }
        if let Some(f) = &r.file {
            if !file_name_ok(f) {
                return Err((span, "restrict.file".into(), format!("`{f}` is not a usable file name")));
            }
        }
        out.restrict_file = r.file;
    }
    Ok((out, popups))
}

/// Checks an extension's `caller_id`: a national number.
pub(super) fn caller_id_ok(id: &str) -> bool {
    crate::apps::numbers::normalise(id).is_ok_and(|d| d.kind != crate::apps::numbers::NumberKind::Extension)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const BASE: &str = r#"
[[trunk]]
name = "ntt"
registrar = "192.0.2.10:5060"
username = "0312345678"
password = "trunk-password"

[[extension]]
number = "201"
name = "Reception"
password = "s3cret-Pass"
caller_id = "03-1234-5679"

[[extension]]
number = "203"
name = "Lobby"
password = "s3cret-Pass"
external_calls = false
"#;

    fn parse(extra: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        // Top-level keys must come before the first table.
        let (top, tables) = extra.split_once("#tables\n").unwrap_or(("", extra));
        parse_str(&format!("{top}\n{BASE}\n{tables}"), "t.toml")
    }

    fn refused_field(extra: &str) -> String {
        match parse(extra) {
            Ok(_) => panic!("accepted:\n{extra}"),
            Err(e) => e.field.unwrap_or_default(),
        }
    }

    #[test]
    fn the_documented_example_parses_into_rules_routes_lists_and_extension_options() {
        let c = parse(
            r#"holidays = ["2026-12-31"]
#tables
[[did]]
number = "0312345678"
default = { voicemail = "201" }
max_channels = 4
caller_id_for = ["201"]
popup_url = "https://crm.example/search?tel=@@@@"
[[did.rule]]
name = "office hours"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
times = ["09:00-18:00"]
destination = { group = "800" }

[[did]]
number = "0312349999"
default = { external = "09011112222" }
present = "0312340000"

[[outbound_route]]
prefix = "0"
trunk = "ntt"

[block]
numbers = ["09099998888", "0120*"]
treatment = "announcement"
announcement = "common.goodbye"
reject_anonymous = true

[restrict]
numbers = ["0990*"]
[[restrict.scoped]]
caller_id = "0312345678"
numbers = ["0570*"]
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let t = &c.trunk_calls;
        assert_eq!(t.time_rules.rule_sets().len(), 2);
        assert_eq!(t.time_rules.holidays().len(), 1);
        assert_eq!(t.did("0312345678").map(|d| d.max_channels), Some(4));
        assert_eq!(
            c.popup_urls.get("0312345678").map(String::as_str),
            Some("https://crm.example/search?tel=@@@@")
        );
        assert_eq!(c.popup_urls.len(), 1, "a DID without popup_url has none");
        assert_eq!(
            t.did("0312349999").map(|d| d.present.clone()),
            Some(ForwardPresent::Number("0312340000".into()))
        );
        assert_eq!(t.routes.len(), 1);
        assert_eq!(
            (t.block.entries.len(), t.block.treatment, t.block.reject_anonymous),
            (2, BlockTreatment::Announcement, true)
        );
        assert_eq!(t.restrict.len(), 2);
        assert_eq!(t.restrict.iter().filter(|e| e.caller_id.is_some()).count(), 1);
        assert_eq!(
            t.extensions,
            vec![
                ExtensionOutbound {
                    number: "201".into(),
                    caller_id: Some("0312345679".into()),
                    external_calls: true
                },
                ExtensionOutbound { number: "203".into(), caller_id: None, external_calls: false },
            ]
        );
    }

    #[test]
    fn a_file_without_trunk_call_sections_has_none() {
        let c = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.trunk_calls.time_rules.rule_sets().is_empty() && c.trunk_calls.routes.is_empty());
        assert_eq!(c.trunk_calls.block.treatment, BlockTreatment::Busy);
    }

    #[test]
    fn bad_values_are_refused_with_their_field() {
        let route = |k: &str| format!("[[outbound_route]]\nprefix = \"0\"\ntrunk = \"ntt\"\n{k}\n");
        assert_eq!(refused_field("[[outbound_route]]\ntrunk = \"kddi\"\n"), "outbound_route[1].trunk");
        assert_eq!(refused_field(&route("strip = -1")), "outbound_route[1].strip");
        assert_eq!(refused_field(&route("strip = 3")), "outbound_route");
        assert_eq!(refused_field("[block]\ntreatment = \"drop\"\n"), "block.treatment");
        assert_eq!(refused_field("[block]\nnumbers = [\"abc\"]\n"), "block.numbers[1]");
        assert_eq!(refused_field("[restrict]\nnumbers = [\"*\"]\n"), "restrict.numbers[1]");
        let did = |k: &str| format!("[[did]]\nnumber = \"0312345678\"\ndefault = \"hangup\"\n{k}\n");
        assert_eq!(refused_field(&did("present = \"main\"")), "did[1].present");
        assert_eq!(refused_field(&did("max_channels = -2")), "did[1].max_channels");
        assert_eq!(refused_field(&did("caller_id_for = [\"299\"]")), "did[1].caller_id_for");
        assert_eq!(refused_field(&did("popup_url = \"javascript:alert(1)\"")), "did[1].popup_url");
        assert_eq!(refused_field(&did("popup_url = \"https://x/ a\"")), "did[1].popup_url");
        assert_eq!(refused_field("[[did]]\nnumber = \"03-1234\"\ndefault = \"hangup\"\n"), "did");
    }

    #[test]
    fn an_extension_caller_id_must_be_an_outside_number() {
        let text = BASE.replace("caller_id = \"03-1234-5679\"", "caller_id = \"202\"");
        match parse_str(&text, "t.toml") {
            Ok(_) => panic!("accepted an extension as caller ID"),
            Err(e) => assert_eq!(e.field.as_deref(), Some("extension[1].caller_id")),
        }
    }
}
