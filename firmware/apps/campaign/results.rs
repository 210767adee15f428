//! Call results of a campaign entry (seed 002 §2.17, §2.18): the system results the box sets by
//! itself and the campaign's own numbered results that agents enter in the web page or by DTMF.

use std::fmt;

/// Most custom results of one campaign: the manual's sample has 13; 99 keeps the DTMF entry to
/// two digits and the web chooser short.
pub const MAX_CUSTOM_RESULTS: usize = 99;

/// Longest result text, in characters (the chooser shows it on one line of a phone screen).
pub const MAX_RESULT_TEXT_CHARS: usize = 40;

/// Highest custom result number: two DTMF digits before `#` (0 is the recall key).
pub const MAX_RESULT_NUMBER: u16 = 99;

/// A result the box sets automatically; none can be entered by command (§2.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemResult {
    /// 発信待機中: waiting; the entry will be dialled.
    Waiting,
    /// ビジー: the customer's line was busy.
    Busy,
    /// 未入力: answered, but no result was entered.
    NotEntered,
    /// キャンセル: the agent declined or hung up while dialling, or the callee rejected the call.
    Cancelled,
    /// 制限時間: ringing reached the time limit.
    TimeLimit,
    /// チャンネル制限: no channel was free on the trunk.
    ChannelLimit,
    /// エラー: a system error.
    Error,
    /// 発信規制: the number is on the outbound-restriction list.
    Restricted,
    /// 停止: stopped by hand.
    Stopped,
}

impl SystemResult {
    /// Every system result, in the manual's order.
    pub const ALL: [SystemResult; 9] = [
        SystemResult::Waiting,
        SystemResult::Busy,
        SystemResult::NotEntered,
        SystemResult::Cancelled,
        SystemResult::TimeLimit,
        SystemResult::ChannelLimit,
        SystemResult::Error,
        SystemResult::Restricted,
        SystemResult::Stopped,
    ];

    /// The stable key used in the store, the API and CSV.
    pub fn key(self) -> &'static str {
        match self {
            SystemResult::Waiting => "waiting",
            SystemResult::Busy => "busy",
            SystemResult::NotEntered => "not_entered",
            SystemResult::Cancelled => "cancelled",
            SystemResult::TimeLimit => "time_limit",
            SystemResult::ChannelLimit => "channel_limit",
            SystemResult::Error => "error",
            SystemResult::Restricted => "restricted",
            SystemResult::Stopped => "stopped",
        }
    }

    /// The manual's Japanese label.
    pub fn label_ja(self) -> &'static str {
        match self {
            SystemResult::Waiting => "発信待機中",
            SystemResult::Busy => "ビジー",
            SystemResult::NotEntered => "未入力",
            SystemResult::Cancelled => "キャンセル",
            SystemResult::TimeLimit => "制限時間",
            SystemResult::ChannelLimit => "チャンネル制限",
            SystemResult::Error => "エラー",
            SystemResult::Restricted => "発信規制",
            SystemResult::Stopped => "停止",
        }
    }

    /// Parses [`SystemResult::key`].
    pub fn from_key(key: &str) -> Option<SystemResult> {
        SystemResult::ALL.into_iter().find(|r| r.key() == key)
    }
}

/// One line of a campaign's `結果` list: `番号,テキスト`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomResult {
    /// 1-99, entered as `N#` on the phone.
    pub number: u16,
    /// What the agent and the reports see.
    pub text: String,
}

/// The result of an entry: a system result or one of the campaign's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Set by the box.
    System(SystemResult),
    /// A campaign result number.
    Custom(u16),
}

impl Outcome {
    /// Whether the entry is still to be dialled (only 発信待機中 is).
    pub fn is_waiting(self) -> bool {
        self == Outcome::System(SystemResult::Waiting)
    }
}

/// A bad line of a result list, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses the campaign's result list, one `番号,テキスト` per line (blank lines skipped; a
/// full-width comma is accepted as Japanese keyboards type it). Every bad line is reported.
pub fn parse_custom_results(text: &str) -> Result<Vec<CustomResult>, Vec<LineError>> {
    let mut results: Vec<CustomResult> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let mut err = |message: String| errors.push(LineError { line, message });
        let Some((num, label)) = l.split_once(',').or_else(|| l.split_once('，')) else {
            err("expected `number,text`".into());
            continue;
        };
        let (num, label) = (num.trim(), label.trim());
        let number = match num.parse::<u16>() {
            Ok(n) if (1..=MAX_RESULT_NUMBER).contains(&n) && num.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                err(format!("result number must be 1-{MAX_RESULT_NUMBER} (0 is the recall key)"));
                continue;
            }
        };
        if label.is_empty() {
            err("result text is empty".into());
            continue;
        }
        if label.chars().count() > MAX_RESULT_TEXT_CHARS {
            err(format!("result text is longer than {MAX_RESULT_TEXT_CHARS} characters"));
            continue;
        }
        if label.chars().any(char::is_control) {
            err("result text has a control character".into());
            continue;
        }
        if results.iter().any(|r| r.number == number) {
            err(format!("result number {number} is used twice"));
            continue;
        }
        if SystemResult::ALL.iter().any(|s| s.label_ja() == label) {
            err(format!("`{label}` is a system result; system results cannot be entered"));
            continue;
        }
        if results.len() >= MAX_CUSTOM_RESULTS {
            err(format!("at most {MAX_CUSTOM_RESULTS} results"));
            continue;
        }
        results.push(CustomResult { number, text: label.to_string() });
    }
    if errors.is_empty() {
        Ok(results)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_list_parses_with_ascii_and_full_width_commas() {
        let r = parse_custom_results("1,受注\n\n2，検討\n 10 , NG(説明後) \n").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], CustomResult { number: 2, text: "検討".into() });
        assert_eq!(r[2].number, 10);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let e = parse_custom_results("0,x\n1,ok\n1,dup\nabc\n2,\n3,ビジー\n100,big").unwrap_err();
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn system_results_round_trip_through_their_keys() {
        for r in SystemResult::ALL {
            assert_eq!(SystemResult::from_key(r.key()), Some(r));
        }
        assert!(Outcome::System(SystemResult::Waiting).is_waiting());
        assert!(!Outcome::Custom(1).is_waiting());
    }
}
