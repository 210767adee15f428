//! Typed configuration of the box.
//!
//! The public interface is: [`Config`], [`SipConfig`], [`DigestAlgorithm`], [`MediaConfig`],
//! [`RecordingConfig`], [`ConferenceConfig`], [`RecordPolicy`], [`RtpConfig`], [`ExtensionConfig`],
//! [`PortRange`], [`ConfigError`], [`load_file`], [`parse_str`], and the dial plan's
//! [`DialplanConfig`], [`RingGroupConfig`], [`RingStrategy`], [`ExtensionFeatures`], and the
//! notifications' [`NotifyConfig`] and [`MailTo`], and the call center's [`CallCenterConfig`].
//!
//! The file format (TOML) is documented in `docs/configuration.md`. A config that fails
//! validation is refused whole: the box does not start half-way.

mod callcenter;
mod dialplan;
pub mod document;
mod ivr;
mod load;
mod notify;
mod supervision;
mod trunkcalls;

pub use callcenter::CallCenterConfig;
pub use dialplan::{
    target_ok, DialplanConfig, ExtensionFeatures, RingGroupConfig, RingStrategy, DEFAULT_RING_S,
    HOTDESK_LOGIN, HOTDESK_LOGOUT, MAX_GROUP_MEMBERS, MAX_RING_GROUPS, MIN_EXTERNAL_DIGITS, PIN_DIGITS,
};
pub use load::{load_file, parse_str, ConfigError};
pub use notify::{MailTo, NotifyConfig, MAX_ADDRESS_BYTES, MAX_CHAT_TARGETS};
pub use trunkcalls::{
    popup_url_ok, BlockConfig, BlockTreatment, DidOptions, ExtensionOutbound, ForwardPresent, PopupUrls,
    TrunkCallsConfig, MAX_POPUP_URL,
};

use std::net::IpAddr;

/// Everything `hakoden run` needs to start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// SIP transports.
    pub sip: SipConfig,
    /// RTP relay ports.
    pub rtp: RtpConfig,
    /// Provisioned extensions. Empty means "use the demo set" (201-210).
    pub extensions: Vec<ExtensionConfig>,
    /// `[media]`: prompts language, music on hold, recording announcement.
    pub media: MediaConfig,
    /// `[recording]`: retention of call recordings.
    pub recording: RecordingConfig,
    /// `[voicemail]`: `max_unread` and `max_message_seconds` (issue 5; `docs/voicemail.md`).
    pub voicemail: crate::apps::voicemail::mailbox::Limits,
    /// `[conference]`: dial-in room numbers.
    pub conference: ConferenceConfig,
    /// `[park]`: call park slots.
    pub park: ParkConfig,
    /// `[[trunk]]`: SIP trunks to providers (issue 4; registration only so far).
    pub trunks: Vec<crate::apps::trunk::TrunkConfig>,
    /// `[[ring_group]]` and the dial-plan keys of `[[extension]]` (issue 4).
    pub dialplan: DialplanConfig,
    /// `[[did]]`, `[[outbound_route]]`, `[block]`, `[restrict]`: calls over the trunks.
    pub trunk_calls: TrunkCallsConfig,
    /// `[[did]] popup_url`: the CRM screen pop's pop-up URL per DID (issue 9), for the web.
    pub popup_urls: PopupUrls,
    /// `[smtp]`, `[[chat]]`, `[[chat_rule]]`: voicemail notifications (issue 5).
    pub notify: NotifyConfig,
    /// `[[ivr]]`: the IVR menus (issue 6).
    pub ivrs: std::sync::Arc<crate::apps::ivr::Ivrs>,
    /// `supervisor` / `supervises` of `[[extension]]`: who may listen, whisper and barge (issue 6).
    pub supervisors: crate::apps::supervision::SupervisorRoles,
    /// `[[queue]]` and `[acd]`: the call-center queues (issue 6).
    pub callcenter: CallCenterConfig,
    /// `[[campaign]]`: outbound campaigns (issue 9); their call lists live in the store.
    pub campaigns: Vec<crate::apps::campaign::settings::CampaignSettings>,
    /// `[web]`: the admin's HTTPS and redirect ports (issue 7).
    pub web: WebConfig,
    /// `[system]`: the nightly restart (issue 8).
    pub system: SystemConfig,
}

/// `[system]` (issue 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemConfig {
    /// `restart_window` and `restart_deadline`; `None`: no nightly restart.
    pub restart: Option<crate::system::restart::RestartPlan>,
}

/// `[web]`: listener ports of the web admin; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebConfig {
    /// HTTPS (default 8443: the firmware does not run as root during development; the image
    /// maps 443 to it).
    pub https_port: u16,
    /// Plain HTTP that only redirects to HTTPS (default 8080).
    pub http_port: u16,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { https_port: 8443, http_port: 8080 }
    }
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Language of the box's voice prompts: `"ja"` or `"en"`.
    pub language: crate::media::prompts::Lang,
    /// Hold (a re-INVITE with sendonly/inactive) plays music to the held party instead of
    /// relaying the hold to its phone.
    pub music_on_hold: bool,
    /// Play "this call is recorded" to the other party when a recording starts.
    pub announce_recording: bool,
    /// Largest audio file an admin may import, in MiB (spec seed 002 §2.28: up to 100 MB).
    pub max_audio_mib: u64,
    /// The admin audio file (`audio import`) played as music on hold; `None`: the built-in tune.
    pub music_on_hold_file: Option<String>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            language: crate::media::prompts::Lang::Ja,
            music_on_hold: true,
            announce_recording: true,
            max_audio_mib: 100,
            music_on_hold_file: None,
        }
    }
}

/// `[recording]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingConfig {
    /// Days a recording is kept (spec seed 001: 30).
    pub retention_days: u32,
    /// Size cap of all recordings in MiB; 0 = only the age limit. Oldest go first.
    pub max_mib: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig { retention_days: 30, max_mib: 0 }
    }
}

/// `[conference]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceConfig {
    /// Numbers that dial into a conference room (spec seed 002 §3.6: 9201-9203).
    pub rooms: Vec<String>,
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        ConferenceConfig { rooms: vec!["9201".into(), "9202".into(), "9203".into()] }
    }
}

/// `[park]`: call park slots (issue 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkConfig {
    /// The first slot number (spec: 9001).
    pub first_slot: u32,
    /// How many slots follow it.
    pub slots: u32,
    /// A parked call nobody takes rings its parker back after this many seconds.
    pub ringback_seconds: u32,
}

impl Default for ParkConfig {
    fn default() -> Self {
        ParkConfig { first_slot: 9001, slots: 10, ringback_seconds: 60 }
    }
}

/// When an extension's calls are recorded (issue 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordPolicy {
    /// Never (the default).
    #[default]
    Never,
    /// Every call the extension makes or takes.
    Always,
    /// When the extension's user presses `*1` during a call (again to stop).
    OnDemand,
}

impl RecordPolicy {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordPolicy::Never => "never",
            RecordPolicy::Always => "always",
            RecordPolicy::OnDemand => "on_demand",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<RecordPolicy> {
        match s {
            "never" => Some(RecordPolicy::Never),
            "always" => Some(RecordPolicy::Always),
            "on_demand" => Some(RecordPolicy::OnDemand),
            _ => None,
        }
    }
}

/// `[sip]`: where the box listens for SIP.
#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// Address the SIP (UDP+TCP) and RTP sockets bind to.
    pub bind: IpAddr,
    /// The SIP port, UDP and TCP.
    pub port: u16,
    /// Address written into Contact, Via and SDP. `None`: the bind address, or when that is
    /// unspecified (0.0.0.0) the address of the interface that routes to the LAN.
    pub advertise: Option<IpAddr>,
    /// Seconds an unanswered call rings before the caller gets 408 (RFC 3261 Timer C role).
    pub ring_timeout_s: u32,
    /// Trust an INVITE without credentials when its source IP:port is a live registration of the
    /// calling extension (phones that do not answer a 407). Digest is always accepted.
    pub trust_registered_source: bool,
    /// Digest algorithms offered in challenges, in order (`[sip] auth_algorithms`). Default MD5
    /// only: several SIP stacks (baresip 1.0's libre among them) fail on a challenge list that
    /// includes an algorithm they do not know. Credentials in either algorithm are always checked.
    pub auth_algorithms: Vec<DigestAlgorithm>,
}

/// A digest algorithm the box can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// MD5 (RFC 2617).
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
}

/// `[rtp]`: the port pool of the media relay.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpConfig {
    /// Inclusive port range; RTP uses the even ports, RTCP the odd port above.
    pub ports: PortRange,
}

/// An inclusive UDP port range, `LO-HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port.
    pub lo: u16,
    /// Highest port.
    pub hi: u16,
}

/// `[[extension]]`: one phone number of the office.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtensionConfig {
    /// The number dialled to reach it, e.g. `201`; also the SIP auth user name.
    pub number: String,
    /// Display name.
    pub name: String,
    /// SIP digest password.
    pub password: String,
    /// When false, a second call while the phone is in a call gets 486 Busy Here.
    pub call_waiting: bool,
    /// When its calls are recorded.
    pub record: RecordPolicy,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 5060,
            advertise: None,
            ring_timeout_s: 60,
            trust_registered_source: true,
            auth_algorithms: vec![DigestAlgorithm::Md5],
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig { ports: PortRange { lo: 10000, hi: 20000 } }
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lo, hi) = s.split_once('-').ok_or_else(|| format!("`{s}` is not a port range LO-HI"))?;
        let lo: u16 = lo.trim().parse().map_err(|_| format!("`{lo}` is not a port number"))?;
        let hi: u16 = hi.trim().parse().map_err(|_| format!("`{hi}` is not a port number"))?;
        if lo == 0 || hi < lo.saturating_add(3) {
            return Err(format!("port range {lo}-{hi} must hold at least 4 ports and not start at 0"));
        }
        Ok(PortRange { lo, hi })
    }
}
