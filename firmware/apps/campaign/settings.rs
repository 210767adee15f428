//! A campaign's settings (seed 002 §2.17) with their defaults, limits and field-level checks.

use super::pacing::{DialMode, Pacing};
use super::results::{parse_custom_results, CustomResult};
use std::time::Duration;

/// Longest campaign name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Agents on one campaign: the box's agent bound (seed 004's 50 operators per report).
pub const MAX_AGENTS: usize = 50;
/// Most dials per agent: the manual's field is a small multiplier; beyond 10 a box of this
/// size would only flood the trunk.
pub const MAX_DIAL_RATIO: u16 = 10;
/// Most channels one campaign may hold: a small box's trunks carry a few dozen calls.
pub const MAX_CHANNELS: u16 = 60;
/// Customer ring time bounds (s); the manual's default is 180.
pub const CUSTOMER_RING_S: std::ops::RangeInclusive<u16> = 5..=600;
/// Agent ring time bounds (s); the manual's default is 20.
pub const AGENT_RING_S: std::ops::RangeInclusive<u16> = 5..=120;
/// Longest after-call work (s): an hour.
pub const MAX_ACW_S: u16 = 3600;

/// 区分 and agent participation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMode {
    /// リングング: listed agents are rung while the campaign runs.
    Ringing,
    /// ログイン: only agents who dialled 990 and stay connected take part.
    Login,
}

/// A checked campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSettings {
    /// Assigned by the box; shown as `0001`.
    pub id: u32,
    /// 名称.
    pub name: String,
    /// ステータス: ON runs the campaign.
    pub enabled: bool,
    /// 発信者番号: the number presented to customers (a DID of the box), or the trunk's default.
    pub caller_id: Option<String>,
    /// Dial with the `184` prefix (caller ID withheld).
    pub prefix_184: bool,
    /// Preview or progressive, predictive flag, service level, ratio and channel cap.
    pub pacing: Pacing,
    /// エージェントモード.
    pub agent_mode: AgentMode,
    /// タイムアウト: customer ring time.
    pub customer_ring: Duration,
    /// 待ち呼タイムアウト: agent ring time.
    pub agent_ring: Duration,
    /// 呼中音声(顧客): audio file played to an answered customer waiting for an agent.
    pub customer_wait_audio: Option<String>,
    /// ACWステータス: a status set after each call, cleared after `acw`.
    pub acw_status: Option<String>,
    /// ACW時間.
    pub acw: Duration,
    /// 結果をコマンドで入力: ask the agent for the result by DTMF after the call.
    pub result_by_dtmf: bool,
    /// 予約 From / To: local minutes of the day, inclusive.
    pub window: (u16, u16),
    /// 結果: the campaign's own results.
    pub results: Vec<CustomResult>,
    /// The extensions the campaign rings.
    pub agents: Vec<String>,
}

/// The settings as a form or TOML gives them; every field optional with the manual's default.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignForm {
    pub name: String,
    pub enabled: bool,
    pub caller_id: Option<String>,
    pub prefix_184: bool,
    /// `preview` (default) or `progressive`.
    pub mode: Option<String>,
    pub predictive: bool,
    /// Percent, 1-100 (default 100).
    pub service_level: Option<u8>,
    pub dial_ratio: Option<u16>,
    pub max_channels: Option<u16>,
    pub customer_ring_s: Option<u16>,
    pub agent_ring_s: Option<u16>,
    /// `ringing` (default) or `login`.
    pub agent_mode: Option<String>,
    pub customer_wait_audio: Option<String>,
    pub acw_status: Option<String>,
    pub acw_s: Option<u16>,
    pub result_by_dtmf: bool,
    /// `HH:MM`, default `00:00`.
    pub window_from: Option<String>,
    /// `HH:MM`, default `23:59`.
    pub window_to: Option<String>,
    /// `番号,テキスト` lines.
    pub results: String,
    pub agents: Vec<String>,
}

/// A bad field: its name in the form and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form field, e.g. `dial_ratio` or `results` (with the line in the message).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Parses `HH:MM` to minutes of the day.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl CampaignForm {
    /// Checks every field and returns the settings, or every field that is wrong.
    /// `extensions` are the box's extension numbers (agents must be among them).
    pub fn check(&self, id: u32, extensions: &[&str]) -> Result<CampaignSettings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });
        let name = self.name.trim().to_string();
        if name.is_empty() {
            bad("name", "a name is required".into());
        } else if name.chars().count() > MAX_NAME_CHARS {
            bad("name", format!("at most {MAX_NAME_CHARS} characters"));
        }
        let caller_id =
            self.caller_id.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(c) = &caller_id {
            if !(c.len() <= 20 && c.bytes().all(|b| b.is_ascii_digit() || b == b'+')) {
                bad("caller_id", "digits only (a DID of the box)".into());
            }
        }
        let mode = match self.mode.as_deref().unwrap_or("preview") {
            "preview" => DialMode::Preview,
            "progressive" => DialMode::Progressive,
            other => {
                bad("mode", format!("`{other}`: preview or progressive"));
                DialMode::Preview
            }
        };
        if self.predictive && mode == DialMode::Preview {
            bad("predictive", "predictive pacing needs progressive mode".into());
        }
        let service_level = self.service_level.unwrap_or(100);
        if !(1..=100).contains(&service_level) {
            bad("service_level", "1-100 %".into());
        }
        let dial_ratio = self.dial_ratio.unwrap_or(1);
        if !(1..=MAX_DIAL_RATIO).contains(&dial_ratio) {
            bad("dial_ratio", format!("1-{MAX_DIAL_RATIO}"));
        }
        let max_channels = self.max_channels.unwrap_or(1);
        if !(1..=MAX_CHANNELS).contains(&max_channels) {
            bad("max_channels", format!("1-{MAX_CHANNELS}"));
        }
        let customer_ring = self.customer_ring_s.unwrap_or(180);
        if !CUSTOMER_RING_S.contains(&customer_ring) {
            bad("customer_ring_s", format!("{}-{} s", CUSTOMER_RING_S.start(), CUSTOMER_RING_S.end()));
        }
        let agent_ring = self.agent_ring_s.unwrap_or(20);
        if !AGENT_RING_S.contains(&agent_ring) {
            bad("agent_ring_s", format!("{}-{} s", AGENT_RING_S.start(), AGENT_RING_S.end()));
        }
        let agent_mode = match self.agent_mode.as_deref().unwrap_or("ringing") {
            "ringing" => AgentMode::Ringing,
            "login" => AgentMode::Login,
            other => {
                bad("agent_mode", format!("`{other}`: ringing or login"));
                AgentMode::Ringing
            }
        };
        let acw = self.acw_s.unwrap_or(0);
        if acw > MAX_ACW_S {
            bad("acw_s", format!("0-{MAX_ACW_S} s"));
        }
        let mut window = (0, 23 * 60 + 59);
        for (field, value, slot) in
            [("window_from", &self.window_from, 0usize), ("window_to", &self.window_to, 1)]
        {
            if let Some(v) = value {
                match parse_hhmm(v) {
                    Some(m) if slot == 0 => window.0 = m,
                    Some(m) => window.1 = m,
                    None => bad(field, format!("`{v}`: HH:MM")),
                }
            }
        }
        if window.0 > window.1 {
            bad("window_to", "the window must end after it starts (same day)".into());
        }
        let results = match parse_custom_results(&self.results) {
            Ok(r) => r,
            Err(lines) => {
                for l in lines {
                    bad("results", l.to_string());
                }
                Vec::new()
            }
        };
        let mut agents: Vec<String> = Vec::new();
        for a in &self.agents {
            let a = a.trim();
            if !extensions.contains(&a) {
                bad("agents", format!("{a}: no such extension"));
            } else if !agents.iter().any(|x| x == a) {
                agents.push(a.to_string());
            }
        }
        if agents.len() > MAX_AGENTS {
            bad("agents", format!("at most {MAX_AGENTS} agents"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CampaignSettings {
            id,
            name,
            enabled: self.enabled,
            caller_id,
            prefix_184: self.prefix_184,
            pacing: Pacing {
                mode,
                predictive: self.predictive,
                service_level: f64::from(service_level) / 100.0,
                dial_ratio: usize::from(dial_ratio),
                max_channels: usize::from(max_channels),
            },
            agent_mode,
            customer_ring: Duration::from_secs(u64::from(customer_ring)),
            agent_ring: Duration::from_secs(u64::from(agent_ring)),
            customer_wait_audio: self.customer_wait_audio.clone().filter(|s| !s.trim().is_empty()),
            acw_status: self.acw_status.clone().filter(|s| !s.trim().is_empty()),
            acw: Duration::from_secs(u64::from(acw)),
            result_by_dtmf: self.result_by_dtmf,
            window,
            results,
            agents,
        })
    }
}

impl CampaignSettings {
    /// Whether local minute `minute_of_day` is inside 予約 From/To.
    pub fn in_window(&self, minute_of_day: u16) -> bool {
        (self.window.0..=self.window.1).contains(&minute_of_day)
    }

    /// The digits to dial for `number`: with `184` in front when the campaign withholds its ID.
    pub fn dial_string(&self, number: &str) -> String {
        if self.prefix_184 {
            format!("184{number}")
        } else {
            number.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_form_with_a_name_takes_the_manual_defaults() {
        let f = CampaignForm { name: "プレビュー".into(), ..CampaignForm::default() };
        let s = f.check(1, &[]).unwrap();
        assert_eq!(s.pacing.mode, DialMode::Preview);
        assert_eq!(s.pacing.dial_ratio, 1);
        assert_eq!(s.pacing.max_channels, 1);
        assert_eq!(s.customer_ring, Duration::from_secs(180));
        assert_eq!(s.agent_ring, Duration::from_secs(20));
        assert_eq!(s.agent_mode, AgentMode::Ringing);
        assert_eq!(s.window, (0, 1439));
        assert!((s.pacing.service_level - 1.0).abs() < 1e-12);
        assert!(!s.enabled);
    }

    #[test]
    fn every_bad_field_is_named() {
        let f = CampaignForm {
            name: String::new(),
            mode: Some("turbo".into()),
            dial_ratio: Some(0),
            max_channels: Some(500),
            customer_ring_s: Some(1),
            agent_ring_s: Some(999),
            service_level: Some(0),
            window_from: Some("18:00".into()),
            window_to: Some("09:00".into()),
            results: "x".into(),
            agents: vec!["999".into()],
            caller_id: Some("abc".into()),
            ..CampaignForm::default()
        };
        let e = f.check(1, &["201"]).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        for want in [
            "name",
            "mode",
            "dial_ratio",
            "max_channels",
            "customer_ring_s",
            "agent_ring_s",
            "service_level",
            "window_to",
            "results",
            "agents",
            "caller_id",
        ] {
            assert!(fields.contains(&want), "{want} missing in {fields:?}");
        }
    }

    #[test]
    fn the_window_is_inclusive_and_184_prefixes_the_number() {
        let f = CampaignForm {
            name: "c".into(),
            window_from: Some("09:00".into()),
            window_to: Some("17:30".into()),
            prefix_184: true,
            ..CampaignForm::default()
        };
        let s = f.check(1, &[]).unwrap();
        assert!(!s.in_window(539));
        assert!(s.in_window(540) && s.in_window(1050));
        assert!(!s.in_window(1051));
        assert_eq!(s.dial_string("0312345678"), "1840312345678");
    }

    #[test]
    fn predictive_needs_progressive_mode() {
        let f = CampaignForm { name: "c".into(), predictive: true, ..CampaignForm::default() };
        let e = f.check(1, &[]).unwrap_err();
        assert_eq!(e[0].field, "predictive");
    }
}
