//! Loading and validating the TOML file.
//!
//! Two stages, like every parser in the firmware: serde reads the text into `Raw*` structs whose
//! fields keep their byte spans (`toml::Spanned`), then [`validate`] checks every value and builds
//! the typed [`Config`]. Any failure becomes one [`ConfigError`] naming the file, the 1-based line
//! and the field path (`sip.port`, `extension[3].password`; extension indices count the
//! `[[extension]]` blocks from 1, as a technician reads the file).
//!
//! The format is documented for installers in `docs/configuration.md`.
use super::{Config, ExtensionConfig, PortRange, RtpConfig, SipConfig};
use super::{DigestAlgorithm, RecordPolicy};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// Largest config file read. A hand-written file for a 500-extension office is ~60 KiB; the cap
/// keeps a wrong path (a log, a disk image) from being read into RAM.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Most `[[extension]]` blocks accepted. The box is sized for a small office and its call center;
/// registrations, dial plan and the web admin lists are dimensioned for this many phones.
pub(crate) const MAX_EXTENSIONS: usize = 500;

/// Shortest and longest extension number, in digits. Single digits are kept for IVR choices;
/// more than 8 collides with outside (trunk) numbers.
const EXTENSION_DIGITS: std::ops::RangeInclusive<usize> = 2..=8;

/// Display-name length in characters: it travels in From/Contact headers and phone screens.
const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=64;

/// SIP digest password length in bytes: below 8 is guessable over the LAN, above 64 some phones
/// truncate the field silently.
const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=64;

/// Seconds a call may ring (`sip.ring_timeout`): under 5 nobody can pick up, over 10 minutes a
/// stuck call holds a port pair and a phone for nothing.
const RING_TIMEOUT_S: std::ops::RangeInclusive<i64> = 5..=600;

/// Why a configuration was refused: names the file, line and field.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, or `<string>`.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field path, e.g. `extension[2].number`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let refuse = |message: String| ConfigError { file: file.clone(), line: None, field: None, message };
    let f = std::fs::File::open(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(|e| refuse(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(refuse(format!("larger than {MAX_CONFIG_BYTES} bytes: is this the config file?")));
    }
    let text = String::from_utf8(bytes).map_err(|e| ConfigError {
        file: file.clone(),
        line: Some(line_of(e.as_bytes(), e.utf8_error().valid_up_to())),
        field: None,
        message: "not valid UTF-8".into(),
    })?;
    parse_str(&text, &file)
}

/// Parses and validates config text; `file` names it in errors.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| from_toml_error(text, file, &e))?;
    validate(raw).map_err(|invalid| ConfigError {
        file: file.to_string(),
        line: Some(line_of(text.as_bytes(), invalid.span.start)),
        field: Some(invalid.field),
        message: invalid.message,
    })
}

/// The whole file as serde sees it. Every leaf keeps its span so validation can point at it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    sip: Option<RawSip>,
    rtp: Option<RawRtp>,
    #[serde(default)]
    extension: Vec<Spanned<RawExtension>>,
    media: Option<RawMedia>,
    recording: Option<RawRecording>,
    voicemail: Option<RawVoicemail>,
    conference: Option<RawConference>,
    park: Option<RawPark>,
    web: Option<RawWeb>,
    #[serde(default)]
    trunk: Vec<Spanned<RawTrunk>>,
    #[serde(default)]
    ring_group: Vec<Spanned<super::dialplan::RawRingGroup>>,
    // Trunk calls (issue 4): see `trunkcalls.rs`.
    utc_offset: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    did: Vec<Spanned<super::trunkcalls::RawDid>>,
    #[serde(default)]
    outbound_route: Vec<Spanned<super::trunkcalls::RawRoute>>,
    block: Option<Spanned<super::trunkcalls::RawBlock>>,
    restrict: Option<Spanned<super::trunkcalls::RawRestrict>>,
    // Notifications (issue 5): see `notify.rs`.
    smtp: Option<super::notify::RawSmtp>,
    #[serde(default)]
    chat: Vec<Spanned<crate::notify::chat::ChatTarget>>,
    #[serde(default)]
    chat_rule: Vec<Spanned<crate::notify::chat::ChatRule>>,
    // IVR menus (issue 6): see `ivr.rs`.
    #[serde(default)]
    ivr: Vec<Spanned<crate::apps::ivr::IvrConfig>>,
    // Call-center queues (issue 6): see `callcenter.rs`.
    #[serde(default)]
    queue: Vec<Spanned<super::callcenter::RawQueue>>,
    acd: Option<Spanned<super::callcenter::RawAcd>>,
    // Outbound campaigns (issue 9): `apps::campaign::settings::CampaignForm`.
    #[serde(default)]
    campaign: Vec<Spanned<crate::apps::campaign::settings::CampaignForm>>,
    // The appliance (issue 8).
    system: Option<RawSystem>,
}

/// `[system]` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    restart_window: Option<Spanned<String>>,
    restart_deadline: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrunk {
    name: Spanned<String>,
    registrar: Spanned<String>,
    domain: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    auth_username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    expires: Option<Spanned<i64>>,
    transport: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    keepalive: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    language: Option<Spanned<String>>,
    music_on_hold: Option<Spanned<bool>>,
    announce_recording: Option<Spanned<bool>>,
    max_audio_mib: Option<Spanned<i64>>,
    music_on_hold_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecording {
    retention_days: Option<Spanned<i64>>,
    max_mib: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVoicemail {
    max_unread: Option<Spanned<i64>>,
    max_message_seconds: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPark {
    first_slot: Option<Spanned<i64>>,
    slots: Option<Spanned<i64>>,
    ringback_seconds: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    https_port: Option<Spanned<i64>>,
    http_port: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConference {
    rooms: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSip {
    bind: Option<Spanned<String>>,
    // Integers are read wide and range-checked here, so an out-of-range value gets our message
    // ("1..=65535") rather than serde's.
    port: Option<Spanned<i64>>,
    advertise: Option<Spanned<String>>,
    ring_timeout: Option<Spanned<i64>>,
    trust_registered_source: Option<Spanned<bool>>,
    auth_algorithms: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRtp {
    ports: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtension {
    number: Spanned<String>,
    name: Spanned<String>,
    password: Spanned<String>,
    call_waiting: Option<Spanned<bool>>,
    record: Option<Spanned<String>>,
    // Dial-plan keys (config/dialplan.rs).
    forward_always: Option<Spanned<String>>,
    forward_busy: Option<Spanned<String>>,
    forward_no_answer: Option<Spanned<String>>,
    forward_no_answer_seconds: Option<Spanned<i64>>,
    forward_unregistered: Option<Spanned<String>>,
    dnd: Option<Spanned<bool>>,
    pickup_group: Option<Spanned<String>>,
    pin: Option<Spanned<String>>,
    voicemail: Option<Spanned<bool>>,
    caller_id: Option<Spanned<String>>,
    external_calls: Option<Spanned<bool>>,
    // Notification keys (config/notify.rs).
    email: Option<Spanned<String>>,
    delete_after_email: Option<Spanned<bool>>,
    // Supervision keys (config/supervision.rs).
    supervisor: Option<Spanned<bool>>,
    supervises: Option<Spanned<Vec<String>>>,
}

/// A validation failure before the file name and line are attached.
pub(super) struct Invalid {
    pub(super) span: Range<usize>,
    pub(super) field: String,
    pub(super) message: String,
}

pub(super) fn invalid<T>(
    value: &Spanned<T>,
    field: impl Into<String>,
    message: impl Into<String>,
) -> Invalid {
    Invalid { span: value.span(), field: field.into(), message: message.into() }
}

fn validate(raw: RawFile) -> Result<Config, Invalid> {
    let mut config = Config::default();
    if let Some(sip) = raw.sip {
        validate_sip(sip, &mut config.sip)?;
    }
    if let Some(smtp) = raw.smtp {
        config.notify.smtp = Some(super::notify::validate_smtp(smtp)?);
    }
    (config.notify.chat, config.notify.chat_rules) = super::notify::validate_chat(raw.chat, raw.chat_rule)?;
    let mut rtp_span = None;
    if let Some(RawRtp { ports: Some(ports) }) = raw.rtp {
        config.rtp = RtpConfig {
            ports: ports.get_ref().parse::<PortRange>().map_err(|e| invalid(&ports, "rtp.ports", e))?,
        };
        rtp_span = Some(ports);
    }
    let PortRange { lo, hi } = config.rtp.ports;
    if (lo..=hi).contains(&config.sip.port) {
        // SIP and RTP bind the same address: the relay would fight the SIP socket for the port.
        let message = format!("the range {lo}-{hi} holds the SIP port {}", config.sip.port);
        return Err(match rtp_span {
            Some(ports) => invalid(&ports, "rtp.ports", message),
            None => Invalid { span: 0..0, field: "rtp.ports".into(), message },
        });
    }
    if raw.extension.len() > MAX_EXTENSIONS {
        let last = raw.extension.get(MAX_EXTENSIONS).map(|e| e.span()).unwrap_or(0..0);
        return Err(Invalid {
            span: last,
            field: format!("extension[{}]", MAX_EXTENSIONS + 1),
            message: format!("at most {MAX_EXTENSIONS} extensions"),
        });
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut features = Vec::new();
    let mut outbound = Vec::new();
    let mut supervisors = Vec::new();
    for (i, ext) in raw.extension.into_iter().enumerate() {
        let index = i + 1;
        if let Some(o) = extension_outbound(ext.get_ref(), index)? {
            outbound.push(o);
        }
        let mut ext = ext.into_inner();
        let raw_features = super::dialplan::RawFeatures {
            forward_always: ext.forward_always.take(),
            forward_busy: ext.forward_busy.take(),
            forward_no_answer: ext.forward_no_answer.take(),
            forward_no_answer_seconds: ext.forward_no_answer_seconds.take(),
            forward_unregistered: ext.forward_unregistered.take(),
            dnd: ext.dnd.take(),
            pickup_group: ext.pickup_group.take(),
            pin: ext.pin.take(),
            voicemail: ext.voicemail.take(),
        };
        let raw_supervisor = super::supervision::RawSupervisor {
            supervisor: ext.supervisor.take(),
            supervises: ext.supervises.take(),
        };
        supervisors.push((ext.number.get_ref().clone(), index, raw_supervisor));
        let ext = validate_extension(ext, index, config.notify.smtp.is_some())?;
        features.push((ext.config.number.clone(), raw_features, ext.number_span.clone()));
        if let Some(first) = seen.insert(ext.config.number.clone(), index) {
            return Err(Invalid {
                span: ext.number_span,
                field: format!("extension[{index}].number"),
                message: format!("number {} is already used by extension[{first}]", ext.config.number),
            });
        }
        if let Some(m) = ext.mail {
            config.notify.mail.insert(ext.config.number.clone(), m);
        }
        config.extensions.push(ext.config);
    }
    if let Some(m) = raw.media {
        if let Some(l) = m.language {
            config.media.language = crate::media::prompts::Lang::from_code(l.get_ref()).ok_or_else(|| {
                invalid(&l, "media.language", format!("`{}` is not \"ja\" or \"en\"", l.get_ref()))
            })?;
        }
        if let Some(b) = m.music_on_hold {
            config.media.music_on_hold = b.into_inner();
        }
        if let Some(b) = m.announce_recording {
            config.media.announce_recording = b.into_inner();
        }
        if let Some(f) = m.music_on_hold_file {
            let name = f.get_ref();
            if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(invalid(
                    &f,
                    "media.music_on_hold_file",
                    format!("`{name}` is not an audio file name (see `audio list`)"),
                ));
            }
            config.media.music_on_hold_file = Some(name.clone());
        }
        if let Some(v) = m.max_audio_mib {
            let n = *v.get_ref();
            config.media.max_audio_mib = u64::try_from(n)
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| invalid(&v, "media.max_audio_mib", format!("{n} is outside 1..=1024 MiB")))?;
        }
    }
    if let Some(sys) = raw.system {
        match (&sys.restart_window, &sys.restart_deadline) {
            (None, None) => {}
            (None, Some(d)) => {
                return Err(invalid(d, "system.restart_deadline", "needs a restart_window"));
            }
            (Some(w), d) => {
                use crate::system::restart::RestartPlan;
                let plan = RestartPlan::parse(w.get_ref(), None)
                    .map_err(|e| invalid(w, "system.restart_window", e))?;
                config.system.restart = Some(match d {
                    None => plan,
                    Some(d) => RestartPlan::parse(w.get_ref(), Some(d.get_ref()))
                        .map_err(|e| invalid(d, "system.restart_deadline", e))?,
                });
            }
        }
    }
    if let Some(r) = raw.recording {
        if let Some(d) = r.retention_days {
            let v = *d.get_ref();
            config.recording.retention_days =
                u32::try_from(v).ok().filter(|v| (1..=3650).contains(v)).ok_or_else(|| {
                    invalid(&d, "recording.retention_days", format!("{v} is outside 1..=3650 days"))
                })?;
        }
        if let Some(m) = r.max_mib {
            let v = *m.get_ref();
            config.recording.max_mib =
                u64::try_from(v).map_err(|_| invalid(&m, "recording.max_mib", format!("{v} is negative")))?;
        }
    }
    if let Some(v) = raw.voicemail {
        use crate::apps::voicemail::mailbox::{MAX_MAX_MESSAGE_SECS, MAX_MAX_UNREAD};
        if let Some(n) = v.max_unread {
            let x = *n.get_ref();
            config.voicemail.max_unread =
                u32::try_from(x).ok().filter(|x| (1..=MAX_MAX_UNREAD).contains(x)).ok_or_else(|| {
                    invalid(
                        &n,
                        "voicemail.max_unread",
                        format!("{x} is outside 1..={MAX_MAX_UNREAD} messages"),
                    )
                })?;
        }
        if let Some(n) = v.max_message_seconds {
            let x = *n.get_ref();
            config.voicemail.max_message_secs = u32::try_from(x)
                .ok()
                .filter(|x| (1..=MAX_MAX_MESSAGE_SECS).contains(x))
                .ok_or_else(|| {
                    invalid(
                        &n,
                        "voicemail.max_message_seconds",
                        format!("{x} is outside 1..={MAX_MAX_MESSAGE_SECS} seconds"),
                    )
                })?;
        }
    }
    for (i, t) in raw.trunk.into_iter().enumerate() {
        let t = t.into_inner();
        let f = |name: &str| format!("trunk[{}].{name}", i + 1);
        let registrar: std::net::SocketAddr = t.registrar.get_ref().trim().parse().map_err(|_| {
            invalid(
                &t.registrar,
                f("registrar"),
                format!("`{}` is not IP:port (host names are not resolved yet)", t.registrar.get_ref()),
            )
        })?;
        let mode = match t.mode.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("register") => crate::apps::trunk::TrunkMode::Register,
            Some("ip") => crate::apps::trunk::TrunkMode::IpAuthenticated,
            Some(other) => {
                let m = t.mode.as_ref().map_or(&t.registrar, |m| m);
                return Err(invalid(m, f("mode"), format!("`{other}` is not \"register\" or \"ip\"")));
            }
        };
        let transport = match t.transport.as_ref().map(|m| m.get_ref().to_ascii_lowercase()) {
            None => crate::sip::Transport::Udp,
            Some(x) if x == "udp" => crate::sip::Transport::Udp,
            Some(x) if x == "tcp" => crate::sip::Transport::Tcp,
            Some(other) => {
                let m = t.transport.as_ref().map_or(&t.registrar, |m| m);
                return Err(invalid(m, f("transport"), format!("`{other}` is not \"udp\" or \"tcp\"")));
            }
        };
        let int = |v: &Option<Spanned<i64>>,
                   name: &str,
                   default: u32,
                   range: std::ops::RangeInclusive<u32>| {
            match v {
                None => Ok(default),
                Some(s) => u32::try_from(*s.get_ref()).ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    invalid(
                        s,
                        f(name),
                        format!("{} is outside {}..={}", s.get_ref(), range.start(), range.end()),
                    )
                }),
            }
        };
        let expires_s = int(&t.expires, "expires", 3600, 60..=86_400)?;
        let keepalive_s = int(&t.keepalive, "keepalive", 30, 5..=3600)?;
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        if mode == crate::apps::trunk::TrunkMode::Register && (t.username.is_none() || t.password.is_none()) {
            return Err(invalid(&t.name, f("password"), "a registering trunk needs username and password"));
        }
        config.trunks.push(crate::apps::trunk::TrunkConfig {
            name: t.name.get_ref().clone(),
            registrar,
            domain: text(&t.domain).unwrap_or_else(|| registrar.ip().to_string()),
            username: text(&t.username).unwrap_or_default(),
            auth_username: text(&t.auth_username),
            password: text(&t.password).unwrap_or_default(),
            expires_s,
            transport,
            mode,
            keepalive_s,
        });
    }
    let trunk_names: Vec<String> = config.trunks.iter().map(|t| t.name.clone()).collect();
    let ext_numbers: Vec<String> = config.extensions.iter().map(|e| e.number.clone()).collect();
    config.supervisors = super::supervision::validate(supervisors, &ext_numbers)?;
    let calls = super::trunkcalls::RawTrunkCalls {
        utc_offset: raw.utc_offset,
        holidays: raw.holidays,
        did: raw.did,
        outbound_route: raw.outbound_route,
        block: raw.block,
        restrict: raw.restrict,
    };
    (config.trunk_calls, config.popup_urls) = super::trunkcalls::validate(calls, &trunk_names, &ext_numbers)
        .map_err(|(span, field, message)| Invalid { span, field, message })?;
    config.trunk_calls.extensions = outbound;
    if let Some(c) = raw.conference {
        if let Some(rooms) = c.rooms {
            for r in rooms.get_ref() {
                if r.is_empty() || r.len() > 8 || !r.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(
                        &rooms,
                        "conference.rooms",
                        format!("`{r}` is not a 1-8 digit number"),
                    ));
                }
                if config.extensions.iter().any(|e| &e.number == r) {
                    return Err(invalid(&rooms, "conference.rooms", format!("{r} is also an extension")));
                }
            }
            config.conference.rooms = rooms.into_inner();
        }
    }
    config.dialplan = super::dialplan::validate(raw.ring_group, features, &config.conference.rooms)?;
    if let Some(w) = raw.web {
        // 0 turns a listener off; any other port is the admin's choice (443/80 on the box).
        let port = |v: &Spanned<i64>, field: &str| -> Result<u16, Invalid> {
            u16::try_from(*v.get_ref()).map_err(|_| invalid(v, field, "must be 0..=65535 (0 = off)"))
        };
        if let Some(v) = &w.https_port {
            config.web.https_port = port(v, "web.https_port")?;
        }
        if let Some(v) = &w.http_port {
            config.web.http_port = port(v, "web.http_port")?;
        }
        if config.web.https_port != 0 && config.web.https_port == config.web.http_port {
            if let Some(v) = &w.http_port {
                return Err(invalid(v, "web.http_port", "must differ from web.https_port"));
            }
        }
    }
    if let Some(p) = raw.park {
        // Slots are dialled numbers: at most 8 digits like every other internal number.
        let range = |v: &Spanned<i64>, field: &str, lo: i64, hi: i64| -> Result<u32, Invalid> {
            let n = *v.get_ref();
            if n < lo || n > hi {
                return Err(invalid(v, field, format!("must be {lo}..={hi}")));
            }
            Ok(n as u32)
        };
        if let Some(v) = &p.first_slot {
            config.park.first_slot = range(v, "park.first_slot", 1, 99_999_999)?;
        }
        // More slots than calls would never fill; 100 is a switchboard's worth.
        if let Some(v) = &p.slots {
            config.park.slots = range(v, "park.slots", 1, 100)?;
        }
        // A ringback sooner than 10 s would ring the parker before anyone could dial the slot.
        if let Some(v) = &p.ringback_seconds {
            config.park.ringback_seconds = range(v, "park.ringback_seconds", 10, 3600)?;
        }
        let park = &config.park;
        let clash = config.extensions.iter().find(|e| {
            e.number.parse::<u32>().is_ok_and(|n| n >= park.first_slot && n - park.first_slot < park.slots)
        });
        if let (Some(e), Some(v)) = (clash, p.first_slot.as_ref().or(p.slots.as_ref())) {
            return Err(invalid(v, "park.first_slot", format!("park slots cover extension {}", e.number)));
        }
    }
    let groups: Vec<String> = config.dialplan.ring_groups.iter().map(|g| g.number.clone()).collect();
    let ivr_names: Vec<String> = raw.ivr.iter().map(|m| m.get_ref().name.clone()).collect();
    let taken: Vec<(String, &'static str)> = config
        .conference
        .rooms
        .iter()
        .map(|r| (r.clone(), "a conference room"))
        .chain(raw.ivr.iter().filter_map(|m| m.get_ref().number.clone()).map(|n| (n, "an IVR number")))
        .collect();
    let cc_known = super::callcenter::Known {
        extensions: &ext_numbers,
        groups: &groups,
        ivrs: &ivr_names,
        taken: &taken,
        lang: config.media.language,
    };
    config.callcenter = super::callcenter::validate(raw.queue, raw.acd, &cc_known)?;
    let queues: Vec<String> = config.callcenter.queues.iter().map(|q| q.name.clone()).collect();
    let known = super::ivr::Known {
        extensions: &ext_numbers,
        groups: &groups,
        queues: &queues,
        lang: config.media.language,
    };
    config.ivrs = super::ivr::validate(raw.ivr, config.trunk_calls.time_rules.offset(), &known)?;
    config.campaigns = validate_campaigns(raw.campaign, &ext_numbers)?;
    Ok(config)
}

/// Most `[[campaign]]` blocks.
pub const MAX_CAMPAIGNS: usize = 32;

/// `[[campaign]]`: each block checked by the campaign form's own rules (the web's), names
/// unique; ids are the block's position from 1 (`0001` on the pages).
fn validate_campaigns(
    raw: Vec<Spanned<crate::apps::campaign::settings::CampaignForm>>,
    extensions: &[String],
) -> Result<Vec<crate::apps::campaign::settings::CampaignSettings>, Invalid> {
    let exts: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let mut out: Vec<crate::apps::campaign::settings::CampaignSettings> = Vec::new();
    for (i, block) in raw.iter().enumerate() {
        if i >= MAX_CAMPAIGNS {
            return Err(invalid(block, "campaign", format!("at most {MAX_CAMPAIGNS} campaigns")));
        }
        let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let settings = block.get_ref().check(id, &exts).map_err(|errors| {
            let e = &errors[0];
            invalid(block, format!("campaign[{i}].{}", e.field), e.message.clone())
        })?;
        if out.iter().any(|c| c.name == settings.name) {
            return Err(invalid(
                block,
                format!("campaign[{i}].name"),
                format!("`{}` is used twice", settings.name),
            ));
        }
        out.push(settings);
    }
    Ok(out)
}

fn validate_sip(sip: RawSip, out: &mut SipConfig) -> Result<(), Invalid> {
    if let Some(bind) = sip.bind {
        out.bind = parse_ip(&bind, "sip.bind")?;
    }
    if let Some(port) = sip.port {
        out.port = u16::try_from(*port.get_ref()).ok().filter(|p| *p != 0).ok_or_else(|| {
            invalid(&port, "sip.port", format!("{} is not a port in 1..=65535", port.get_ref()))
        })?;
    }
    if let Some(advertise) = sip.advertise {
        let ip = parse_ip(&advertise, "sip.advertise")?;
        if ip.is_unspecified() {
            return Err(invalid(
                &advertise,
                "sip.advertise",
                "phones cannot reach an unspecified address; give the box's LAN address",
            ));
        }
        out.advertise = Some(ip);
    }
    if let Some(timeout) = sip.ring_timeout {
        let s = *timeout.get_ref();
        if !RING_TIMEOUT_S.contains(&s) {
            return Err(invalid(
                &timeout,
                "sip.ring_timeout",
                format!("{s} s is outside {}..={} seconds", RING_TIMEOUT_S.start(), RING_TIMEOUT_S.end()),
            ));
        }
        out.ring_timeout_s = u32::try_from(s).unwrap_or(out.ring_timeout_s);
    }
    if let Some(trust) = sip.trust_registered_source {
        out.trust_registered_source = trust.into_inner();
    }
    if let Some(algs) = sip.auth_algorithms {
        let mut parsed = Vec::new();
        for a in algs.get_ref() {
            let alg = match a.to_ascii_uppercase().as_str() {
                "MD5" => DigestAlgorithm::Md5,
                "SHA-256" => DigestAlgorithm::Sha256,
                other => {
                    return Err(invalid(
                        &algs,
                        "sip.auth_algorithms",
                        format!("`{other}` is not a digest algorithm; use \"MD5\" and/or \"SHA-256\""),
                    ))
                }
            };
            if !parsed.contains(&alg) {
                parsed.push(alg);
            }
        }
        if parsed.is_empty() {
            return Err(invalid(&algs, "sip.auth_algorithms", "name at least one algorithm"));
        }
        out.auth_algorithms = parsed;
    }
    Ok(())
}

fn parse_ip(value: &Spanned<String>, field: &str) -> Result<IpAddr, Invalid> {
    value
        .get_ref()
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| invalid(value, field, format!("`{}` is not an IP address", value.get_ref())))
}

/// The trunk-call keys of an extension (`caller_id`, `external_calls`), when it sets one.
fn extension_outbound(
    ext: &RawExtension,
    index: usize,
) -> Result<Option<super::trunkcalls::ExtensionOutbound>, Invalid> {
    if ext.caller_id.is_none() && ext.external_calls.is_none() {
        return Ok(None);
    }
    let caller_id = match &ext.caller_id {
        None => None,
        Some(c) => {
            if !super::trunkcalls::caller_id_ok(c.get_ref()) {
                return Err(invalid(
                    c,
                    format!("extension[{index}].caller_id"),
                    format!("`{}` is not an outside number", c.get_ref()),
                ));
            }
            crate::apps::numbers::normalise(c.get_ref()).ok().map(|d| d.number)
        }
    };
    Ok(Some(super::trunkcalls::ExtensionOutbound {
        number: ext.number.get_ref().clone(),
        caller_id,
        external_calls: ext.external_calls.as_ref().is_none_or(|b| *b.get_ref()),
    }))
}

struct CheckedExtension {
    config: ExtensionConfig,
    mail: Option<super::MailTo>,
    number_span: Range<usize>,
}

fn validate_extension(ext: RawExtension, index: usize, smtp: bool) -> Result<CheckedExtension, Invalid> {
    let field = |name: &str| format!("extension[{index}].{name}");
    let email = match ext.email {
        None => None,
        Some(e) if !smtp => {
            return Err(invalid(&e, field("email"), "needs an [smtp] section to send through"))
        }
        Some(e) if !super::notify::address_ok(e.get_ref()) => {
            return Err(invalid(&e, field("email"), format!("`{}` is not an e-mail address", e.get_ref())))
        }
        Some(e) => Some(e.into_inner()),
    };
    let number = ext.number.get_ref();
    if !EXTENSION_DIGITS.contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            &ext.number,
            field("number"),
            format!(
                "`{number}` is not a number of {}-{} digits",
                EXTENSION_DIGITS.start(),
                EXTENSION_DIGITS.end()
            ),
        ));
    }
    let name = ext.name.get_ref();
    let chars = name.chars().count();
    if !NAME_CHARS.contains(&chars) || name.chars().any(char::is_control) {
        return Err(invalid(
            &ext.name,
            field("name"),
            format!(
                "must be {}-{} characters without control characters",
                NAME_CHARS.start(),
                NAME_CHARS.end()
            ),
        ));
    }
    let password = ext.password.get_ref();
    if !PASSWORD_BYTES.contains(&password.len()) {
        // The password itself is never echoed: error messages end up in logs.
        return Err(invalid(
            &ext.password,
            field("password"),
            format!("must be {}-{} characters long", PASSWORD_BYTES.start(), PASSWORD_BYTES.end()),
        ));
    }
    if !password.bytes().all(password_byte_ok) {
        return Err(invalid(
            &ext.password,
            field("password"),
            "must be printable ASCII without spaces, quotes or backslashes (it goes into SIP digest)",
        ));
    }
    let mail = email.map(|address| super::MailTo {
        address,
        delete_after: ext.delete_after_email.map(Spanned::into_inner).unwrap_or(false),
    });
    Ok(CheckedExtension {
        mail,
        number_span: ext.number.span(),
        config: ExtensionConfig {
            number: ext.number.into_inner(),
            name: ext.name.into_inner(),
            password: ext.password.into_inner(),
            call_waiting: ext.call_waiting.map(Spanned::into_inner).unwrap_or(true),
            record: match ext.record {
                None => RecordPolicy::Never,
                Some(r) => RecordPolicy::parse(r.get_ref()).ok_or_else(|| {
                    invalid(
                        &r,
                        field("record"),
                        format!("`{}` is not one of never, always, on_demand", r.get_ref()),
                    )
                })?,
            },
        },
    })
}

/// Printable ASCII minus the characters that break a digest `quoted-string` or a phone's
/// provisioning file: space, `"`, `'` and `\`.
fn password_byte_ok(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\')
}

/// 1-based line of a byte offset; an offset past the end counts as the last line.
fn line_of(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text.get(..end).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) + 1
}

fn from_toml_error(text: &str, file: &str, e: &toml::de::Error) -> ConfigError {
    let span = e.span();
    ConfigError {
        file: file.to_string(),
        line: span.as_ref().map(|s| line_of(text.as_bytes(), s.start)),
        field: span.and_then(|s| field_at(text, s.start)),
        message: e.message().trim().to_string(),
    }
}

/// The field path whose key or value covers byte `offset`, found by re-reading the text into
/// toml's spanned tree (serde's own error keeps its key path private).
fn field_at(text: &str, offset: usize) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    path_in_table(doc.get_ref(), offset, "")
}

fn path_in_table(table: &toml::de::DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let name =
            if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        if let Some(found) = path_in_value(value, offset, &name) {
            return Some(found);
        }
        if key.span().contains(&offset) {
            return Some(name);
        }
    }
    None
}

fn path_in_value(value: &Spanned<toml::de::DeValue<'_>>, offset: usize, name: &str) -> Option<String> {
    if let Some(table) = value.get_ref().as_table() {
        if let Some(found) = path_in_table(table, offset, name) {
            return Some(found);
        }
    }
    if let Some(array) = value.get_ref().as_array() {
        for (i, item) in array.iter().enumerate() {
            if let Some(found) = path_in_value(item, offset, &format!("{name}[{}]", i + 1)) {
                return Some(found);
            }
        }
    }
    value.span().contains(&offset).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of(b"a\nb\nc", 0), 1);
        assert_eq!(line_of(b"a\nb\nc", 2), 2);
        assert_eq!(line_of(b"a\nb\nc", 99), 3);
    }

    #[test]
    fn password_refuses_space_quote_and_backslash() {
        assert!(password_byte_ok(b'a'));
        assert!(password_byte_ok(b'-'));
        for b in [b' ', b'"', b'\'', b'\\', b'\t', 0x7f] {
            assert!(!password_byte_ok(b), "{b}");
        }
    }

    #[test]
    fn voicemail_limits_are_read_and_out_of_range_values_name_their_key() {
        use crate::apps::voicemail::mailbox::Limits;
        let c = parse_str("[voicemail]\nmax_unread = 1\nmax_message_seconds = 2\n", "x").ok();
        assert_eq!(c.map(|c| c.voicemail), Limits::new(1, 2));
        assert_eq!(parse_str("", "x").ok().map(|c| c.voicemail), Some(Limits::default()));
        for (text, key) in [
            ("[voicemail]\nmax_unread = 0\n", "voicemail.max_unread"),
            ("[voicemail]\nmax_unread = 1001\n", "voicemail.max_unread"),
            ("[voicemail]\nmax_message_seconds = 3601\n", "voicemail.max_message_seconds"),
            ("[voicemail]\nmax_message_seconds = -1\n", "voicemail.max_message_seconds"),
        ] {
            let e = parse_str(text, "x").err().map(|e| e.field);
            assert_eq!(e, Some(Some(key.into())), "{text}");
        }
    }

    #[test]
    fn park_takes_its_keys_and_refuses_slots_over_an_extension() {
        let c = parse_str("[park]\nfirst_slot = 8001\nslots = 5\nringback_seconds = 30\n", "x").ok();
        let park = c.map(|c| c.park);
        assert_eq!(
            park,
            Some(crate::config::ParkConfig { first_slot: 8001, slots: 5, ringback_seconds: 30 })
        );
        let e = parse_str("[park]\nringback_seconds = 5\n", "x").err().map(|e| e.field);
        assert_eq!(e, Some(Some("park.ringback_seconds".into())));
        let clash = "[[extension]]\nnumber = \"9003\"\nname = \"Desk\"\npassword = \"secret-9003\"\n[park]\nslots = 10\n";
        let e = parse_str(clash, "x").err().map(|e| e.message);
        assert!(e.as_ref().is_some_and(|m| m.contains("9003")), "a slot over an extension is refused: {e:?}");
    }

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(parse_str("", "x").ok(), Some(Config::default()));
    }
}
