//! `[[queue]]` and `[acd]` (issue 6): the call-center queues of `apps::callcenter`, validated
//! against the rest of the file.
//!
//! A queue is reached by its `number` (an internal number like an extension's, dialled by
//! phones and used by `{ queue = "name" }` destinations through its `name`). Its members are
//! extensions: an agent id is an extension number. Every setting of
//! [`QueueConfig`] has the spec's default (seed 002 §2.24), see `docs/callcenter.md`.

use super::load::{invalid, Invalid};
use crate::apps::callcenter::{AcdConfig, MemberConfig, PeriodicAnnouncement, QueueConfig, Strategy};
use crate::apps::timerules::{Destination, UtcOffset};
use crate::media::prompts::Lang;
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// Most `[[queue]]` blocks: the ACD's own cap ([`crate::apps::callcenter::queue::MAX_QUEUES`]).
const MAX_QUEUE_BLOCKS: usize = crate::apps::callcenter::queue::MAX_QUEUES;

/// Longest time setting in seconds (ring-before-queue, timeout, ACW, pause, announcements): a
/// day. No call center waits longer for anything; a bigger value is a typo.
const MAX_SECONDS: i64 = 86_400;

/// `[[queue]]` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    name: Spanned<String>,
    number: Option<Spanned<String>>,
    strategy: Option<Spanned<Strategy>>,
    #[serde(default)]
    members: Vec<RawMember>,
    ring_time: Option<Spanned<i64>>,
    ring_before_queue: Option<Spanned<i64>>,
    max_waiting: Option<Spanned<i64>>,
    max_answered: Option<Spanned<i64>>,
    /// Seconds; 0 = never.
    timeout: Option<Spanned<i64>>,
    overflow: Option<Spanned<Destination>>,
    timeout_destination: Option<Spanned<Destination>>,
    join_when_empty: Option<bool>,
    greeting: Option<Spanned<String>>,
    periodic: Option<Spanned<RawPeriodic>>,
    moh: Option<String>,
    whisper: Option<Spanned<String>>,
    auto_pause: Option<Spanned<i64>>,
    after_call_work: Option<Spanned<i64>>,
    /// The PIN of the queue's voicemail box (`*92<number>`), like a ring group's.
    pin: Option<Spanned<String>>,
}

/// A member: `"201"` (level 1) or `{ agent = "201", level = 2 }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMember {
    Plain(String),
    Leveled {
        agent: String,
        #[serde(default = "level_one")]
        level: i64,
    },
}

fn level_one() -> i64 {
    1
}

/// `periodic = { every = 30, prompt = "...", position = true, expected_wait = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriodic {
    every: i64,
    prompt: Option<String>,
    #[serde(default)]
    position: bool,
    #[serde(default)]
    expected_wait: bool,
}

/// `[acd]` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcd {
    other_work: Option<Spanned<Vec<String>>>,
    daily_logout: Option<Spanned<String>>,
    outbound_acw: Option<Spanned<i64>>,
    /// 応答目標時間 (seed 004 §2.24), seconds.
    target_answer: Option<Spanned<i64>>,
}

/// The validated call-center sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallCenterConfig {
    /// Queues with their settings, in file order.
    pub queues: Vec<QueueConfig>,
    /// `(number, queue name)`: what phones dial to enter a queue.
    pub numbers: Vec<(String, String)>,
    /// Custom other-work state names (`[acd] other_work`).
    pub custom_states: Vec<String>,
    /// `[acd] daily_logout`, local `(hour, minute)`.
    pub daily_logout: Option<(u8, u8)>,
    /// `[acd] outbound_acw`: ACW after an agent's outbound call.
    pub outbound_acw: Option<Duration>,
    /// `(number, PIN)` of queue voicemail boxes that can be opened with `*92<number>`.
    pub pins: Vec<(String, String)>,
    /// `[acd] target_answer`: 応答目標時間 of the service level (seed 004 §2.24); `None`: the
    /// reports' default (50 s).
    pub target_answer: Option<Duration>,
}

impl CallCenterConfig {
    /// The ACD's settings: every member of a queue is an agent (in first-seen order).
    pub fn acd_config(&self, utc_offset: UtcOffset) -> AcdConfig {
        let mut agents: Vec<String> = Vec::new();
        for m in self.queues.iter().flat_map(|q| q.members.iter()) {
            if !agents.contains(&m.agent) {
                agents.push(m.agent.clone());
            }
        }
        AcdConfig {
            agents,
            queues: self.queues.clone(),
            custom_states: self.custom_states.clone(),
            daily_logout: self.daily_logout,
            utc_offset,
            outbound_acw: self.outbound_acw,
            ..AcdConfig::default()
        }
    }

    /// The settings of a queue or agent report: `offset` and the target answer time.
    pub fn report_config(&self, offset: UtcOffset) -> crate::apps::callcenter::ReportConfig {
        let mut cfg = crate::apps::callcenter::ReportConfig { offset, ..Default::default() };
        if let Some(t) = self.target_answer {
            cfg.target_answer_ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
        }
        cfg
    }

    /// The queue phones reach by dialling `number`.
    pub fn queue_by_number(&self, number: &str) -> Option<&str> {
        self.numbers.iter().find(|(n, _)| n == number).map(|(_, q)| q.as_str())
    }

    /// The member extensions of the queue phones reach by dialling `number` (its mailbox's
    /// owners: they get its e-mail and its lamp).
    pub fn members_by_number(&self, number: &str) -> Option<Vec<String>> {
        let name = self.queue_by_number(number)?;
        let q = self.queues.iter().find(|q| q.name == name)?;
        Some(q.members.iter().map(|m| m.agent.clone()).collect())
    }

    /// The PIN of the queue box `number`, if it has one.
    pub fn pin_by_number(&self, number: &str) -> Option<&str> {
        self.pins.iter().find(|(n, _)| n == number).map(|(_, p)| p.as_str())
    }
}

/// Names the queue check needs from the rest of the file.
pub(super) struct Known<'a> {
    pub(super) extensions: &'a [String],
    pub(super) groups: &'a [String],
    pub(super) ivrs: &'a [String],
    /// Numbers already taken: rooms, IVR numbers, park slots are checked by the caller.
    pub(super) taken: &'a [(String, &'static str)],
    pub(super) lang: Lang,
}

fn seconds(v: &Spanned<i64>, field: String, lo: i64) -> Result<Duration, Invalid> {
    let n = *v.get_ref();
    if n < lo || n > MAX_SECONDS {
        return Err(invalid(v, field, format!("{n} s is outside {lo}..={MAX_SECONDS}")));
    }
    Ok(Duration::from_secs(u64::try_from(n).unwrap_or(0)))
}

fn prompt_ok(name: &str, lang: Lang) -> bool {
    crate::media::prompts::exists(name, lang)
        || (!name.is_empty()
            && !name.contains('/')
            && !name.contains('\\')
            && !name.starts_with('.')
            && !name.contains('.'))
}

/// Checks a destination's target against the file.
pub(super) fn check_destination(
    d: &Spanned<Destination>,
    field: String,
    known: &Known<'_>,
    queues: &[String],
) -> Result<(), Invalid> {
    let has = |list: &[String], n: &str| list.iter().any(|x| x == n);
    let (ok, what) = match d.get_ref() {
        Destination::Extension(t) => (has(known.extensions, t), "extension"),
        Destination::Group(t) => (has(known.groups, t), "ring group"),
        Destination::Queue(t) => (has(queues, t), "queue"),
        Destination::Ivr(t) => (has(known.ivrs, t), "[[ivr]]"),
        Destination::Voicemail(t) => (has(known.extensions, t) || has(known.groups, t), "voicemail box"),
        Destination::Announcement(t) => (prompt_ok(t, known.lang), "announcement"),
        Destination::External(t) => (
            !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit() || b == b'+'),
            "outside number",
        ),
        Destination::Hangup => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(d, field, format!("no {what} `{}`", d.get_ref().target().unwrap_or(""))))
    }
}

/// Validates `[[queue]]` and `[acd]`.
pub(super) fn validate(
    raw: Vec<Spanned<RawQueue>>,
    acd: Option<Spanned<RawAcd>>,
    known: &Known<'_>,
) -> Result<CallCenterConfig, Invalid> {
    let mut out = CallCenterConfig::default();
    if raw.len() > MAX_QUEUE_BLOCKS {
        let span = raw.get(MAX_QUEUE_BLOCKS).map(Spanned::span).unwrap_or(0..0);
        return Err(Invalid {
            span,
            field: format!("queue[{}]", MAX_QUEUE_BLOCKS + 1),
            message: format!("at most {MAX_QUEUE_BLOCKS} queues"),
        });
    }
    let names: Vec<String> = raw.iter().map(|q| q.get_ref().name.get_ref().trim().to_string()).collect();
    for (i, q) in raw.iter().enumerate() {
        let q = q.get_ref();
        let f = |k: &str| format!("queue[{}].{k}", i + 1);
        let name = q.name.get_ref().trim();
        if name.is_empty() || name.len() > crate::apps::callcenter::queue::MAX_NAME_BYTES {
            return Err(invalid(&q.name, f("name"), "expected a name of 1-64 bytes"));
        }
        if let Some(first) = names.iter().position(|n| n == name).filter(|&p| p < i) {
            return Err(invalid(
                &q.name,
                f("name"),
                format!("queue `{name}` is already queue[{}]", first + 1),
            ));
        }
        let mut cfg = QueueConfig::new(name);
        cfg.lang = known.lang;
        if let Some(n) = &q.number {
            let number = n.get_ref().trim();
            if !(2..=8).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(n, f("number"), format!("`{number}` is not a 2-8 digit number")));
            }
            let clash = known
                .extensions
                .iter()
                .map(|e| (e.as_str(), "an extension"))
                .chain(known.groups.iter().map(|g| (g.as_str(), "a ring group")))
                .chain(known.taken.iter().map(|(t, what)| (t.as_str(), *what)))
                .chain(out.numbers.iter().map(|(n, _)| (n.as_str(), "another queue")))
                .find(|(x, _)| *x == number);
            if let Some((_, what)) = clash {
                return Err(invalid(n, f("number"), format!("{number} is already {what}")));
            }
            out.numbers.push((number.to_string(), name.to_string()));
            if let Some(p) = &q.pin {
                let pin = p.get_ref();
                if pin.len() != super::dialplan::PIN_DIGITS || !pin.bytes().all(|b| b.is_ascii_digit()) {
                    // The PIN itself is never echoed: error messages end up in logs.
                    let digits = super::dialplan::PIN_DIGITS;
                    return Err(invalid(p, f("pin"), format!("must be exactly {digits} digits")));
                }
                out.pins.push((number.to_string(), pin.clone()));
            }
        } else if let Some(p) = &q.pin {
            return Err(invalid(p, f("pin"), "a queue without a `number` has no mailbox to open"));
        }
        if let Some(s) = &q.strategy {
            cfg.strategy = *s.get_ref();
        }
        for (mi, m) in q.members.iter().enumerate() {
            let field = format!("queue[{}].members[{}]", i + 1, mi + 1);
            let (agent, level) = match m {
                RawMember::Plain(a) => (a.trim().to_string(), 1),
                RawMember::Leveled { agent, level } => (agent.trim().to_string(), *level),
            };
            if !known.extensions.contains(&agent) {
                return Err(invalid(&q.name, field, format!("member {agent} is not an extension")));
            }
            let skill = u8::try_from(level)
                .ok()
                .filter(|l| (1..=crate::apps::callcenter::strategy::MAX_SKILL_LEVEL).contains(l))
                .ok_or_else(|| invalid(&q.name, field.clone(), format!("level {level} is outside 1..=99")))?;
            if cfg.members.iter().any(|x| x.agent == agent) {
                return Err(invalid(&q.name, field, format!("member {agent} is listed twice")));
            }
            cfg.members.push(MemberConfig { agent, skill });
        }
        if let Some(v) = &q.ring_time {
            cfg.ring_time = seconds(v, f("ring_time"), 1)?;
            if cfg.ring_time > crate::apps::callcenter::queue::MAX_RING_TIME {
                return Err(invalid(v, f("ring_time"), "longer than 600 s"));
            }
        }
        if let Some(v) = &q.ring_before_queue {
            cfg.ring_before_queue = seconds(v, f("ring_before_queue"), 0)?;
        }
        if let Some(v) = &q.max_waiting {
            let n = *v.get_ref();
            let max = i64::from(crate::apps::callcenter::queue::MAX_WAITING_LIMIT);
            cfg.max_waiting = u32::try_from(n)
                .ok()
                .filter(|&n| i64::from(n) <= max)
                .ok_or_else(|| invalid(v, f("max_waiting"), format!("{n} is outside 0..={max}")))?;
        }
        if let Some(v) = &q.max_answered {
            let n = *v.get_ref();
            cfg.max_answered = u32::try_from(n)
                .ok()
                .filter(|&n| (1..=999).contains(&n))
                .ok_or_else(|| invalid(v, f("max_answered"), format!("{n} is outside 1..=999")))?;
        }
        if let Some(v) = &q.timeout {
            let d = seconds(v, f("timeout"), 0)?;
            cfg.timeout = (!d.is_zero()).then_some(d);
        }
        if let Some(d) = &q.overflow {
            check_destination(d, f("overflow"), known, &names)?;
            cfg.overflow = Some(d.get_ref().clone());
        }
        if let Some(d) = &q.timeout_destination {
            check_destination(d, f("timeout_destination"), known, &names)?;
            cfg.timeout_destination = Some(d.get_ref().clone());
        }
        cfg.join_when_empty = q.join_when_empty.unwrap_or(false);
        for (key, p) in [("greeting", &q.greeting), ("whisper", &q.whisper)] {
            if let Some(p) = p {
                if !prompt_ok(p.get_ref(), known.lang) {
                    return Err(invalid(
                        p,
                        f(key),
                        format!("`{}` is no prompt id or audio name", p.get_ref()),
                    ));
                }
            }
        }
        cfg.greeting = q.greeting.as_ref().map(|p| p.get_ref().clone());
        cfg.whisper = q.whisper.as_ref().map(|p| p.get_ref().clone());
        if let Some(p) = &q.periodic {
            let r = p.get_ref();
            let min =
                i64::try_from(crate::apps::callcenter::queue::MIN_ANNOUNCE_EVERY.as_secs()).unwrap_or(10);
            if r.every < min || r.every > MAX_SECONDS {
                return Err(invalid(
                    p,
                    f("periodic.every"),
                    format!("{} s is outside {min}..={MAX_SECONDS}", r.every),
                ));
            }
            if let Some(id) = &r.prompt {
                if !prompt_ok(id, known.lang) {
                    return Err(invalid(
                        p,
                        f("periodic.prompt"),
                        format!("`{id}` is no prompt id or audio name"),
                    ));
                }
            }
            cfg.periodic = Some(PeriodicAnnouncement {
                every: Duration::from_secs(u64::try_from(r.every).unwrap_or(30)),
                prompt: r.prompt.clone(),
                position: r.position,
                expected_wait: r.expected_wait,
            });
        }
        cfg.moh = q.moh.clone();
        if let Some(v) = &q.auto_pause {
            cfg.auto_pause = Some(seconds(v, f("auto_pause"), 0)?);
        }
        if let Some(v) = &q.after_call_work {
            cfg.after_call_work = Some(seconds(v, f("after_call_work"), 0)?);
        }
        out.queues.push(cfg);
    }
    if let Some(acd) = acd {
        let a = acd.get_ref();
        if let Some(ow) = &a.other_work {
            let states: Vec<&str> = ow.get_ref().iter().map(String::as_str).collect();
            if let Err(e) = crate::apps::callcenter::StatusCatalog::new(&states) {
                return Err(invalid(ow, "acd.other_work", e.to_string()));
            }
            out.custom_states = states.iter().map(|s| s.trim().to_string()).collect();
        }
        if let Some(t) = &a.daily_logout {
            let parsed = t.get_ref().split_once(':').and_then(|(h, m)| {
                let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
                (h < 24 && m < 60).then_some((h, m))
            });
            out.daily_logout =
                Some(parsed.ok_or_else(|| {
                    invalid(t, "acd.daily_logout", format!("`{}` is not HH:MM", t.get_ref()))
                })?);
        }
        if let Some(v) = &a.outbound_acw {
            out.outbound_acw = Some(seconds(v, "acd.outbound_acw".into(), 0)?);
        }
        if let Some(v) = &a.target_answer {
            out.target_answer = Some(seconds(v, "acd.target_answer".into(), 1)?);
        }
    }
    let agents = out.acd_config(UtcOffset::JST).agents.len();
    if agents > crate::apps::callcenter::queue::MAX_AGENTS {
        let span = raw.first().map(Spanned::span).unwrap_or(0..0);
        let message = format!("{agents} agents; at most {}", crate::apps::callcenter::queue::MAX_AGENTS);
        return Err(Invalid { span, field: "queue".into(), message });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::apps::callcenter::Strategy;
    use crate::apps::timerules::Destination;
    use crate::config::parse_str;
    use std::time::Duration;

    const EXTS: &str = "[[extension]]\nnumber = \"201\"\nname = \"A\"\npassword = \"password-201\"\n\
                        [[extension]]\nnumber = \"202\"\nname = \"B\"\npassword = \"password-202\"\n";

    fn refused(extra: &str) -> String {
        parse_str(&format!("{EXTS}{extra}"), "box.toml").expect_err("must be refused").to_string()
    }

    #[test]
    fn the_target_answer_time_feeds_the_report_settings() {
        let c = parse_str(&format!("{EXTS}[acd]\ntarget_answer = 20\n"), "box.toml").unwrap();
        let offset = crate::apps::timerules::UtcOffset::JST;
        assert_eq!(c.callcenter.report_config(offset).target_answer_ms, 20_000);
        let none = parse_str(EXTS, "box.toml").unwrap();
        assert_eq!(none.callcenter.report_config(offset).target_answer_ms, 50_000);
        assert!(refused("[acd]\ntarget_answer = 0\n").contains("acd.target_answer"));
    }

    #[test]
    fn a_queue_takes_leveled_and_plain_members_and_the_spec_defaults() {
        let text = format!(
            "{EXTS}[acd]\nother_work = [\"研修\"]\ndaily_logout = \"23:30\"\n\
             [[queue]]\nname = \"support\"\nnumber = \"6000\"\nstrategy = \"longest_idle\"\n\
             members = [{{ agent = \"201\", level = 2 }}, \"202\"]\ntimeout = 0\n\
             overflow = {{ voicemail = \"201\" }}\nafter_call_work = 10\n\
             periodic = {{ every = 30, position = true }}\n"
        );
        let c = parse_str(&text, "box.toml").unwrap_or_else(|e| panic!("{e}"));
        let q = &c.callcenter.queues[0];
        assert_eq!(q.strategy, Strategy::LongestIdle);
        assert_eq!((q.members[0].skill, q.members[1].skill), (2, 1));
        assert_eq!(q.ring_time, Duration::from_secs(20));
        assert_eq!(q.timeout, None);
        assert_eq!(q.overflow, Some(Destination::Voicemail("201".into())));
        assert_eq!(q.after_call_work, Some(Duration::from_secs(10)));
        assert_eq!(c.callcenter.queue_by_number("6000"), Some("support"));
        assert_eq!(c.callcenter.daily_logout, Some((23, 30)));
        assert_eq!(c.callcenter.custom_states, vec!["研修".to_string()]);
    }

    #[test]
    fn a_queue_box_pin_needs_four_digits_and_a_number_and_is_never_echoed() {
        let ok = format!(
            "{EXTS}[[queue]]\nname = \"q\"\nnumber = \"6000\"\nmembers = [\"201\"]\npin = \"4321\"\n"
        );
        let c = parse_str(&ok, "box.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.callcenter.pin_by_number("6000"), Some("4321"));
        assert_eq!(c.callcenter.members_by_number("6000"), Some(vec!["201".to_string()]));
        let e = refused("[[queue]]\nname = \"q\"\nnumber = \"6000\"\nmembers = [\"201\"]\npin = \"98x\"\n");
        assert!(e.contains("queue[1].pin") && e.contains("4 digits") && !e.contains("98x"), "{e}");
        let e = refused("[[queue]]\nname = \"q\"\nmembers = [\"201\"]\npin = \"1234\"\n");
        assert!(e.contains("queue[1].pin") && e.contains("without a `number`"), "{e}");
    }

    #[test]
    fn an_unknown_member_a_clashing_number_and_a_bad_destination_are_refused() {
        let e = refused("[[queue]]\nname = \"q\"\nmembers = [\"299\"]\n");
        assert!(e.contains("queue[1].members[1]") && e.contains("299 is not an extension"), "{e}");
        let e = refused("[[queue]]\nname = \"q\"\nnumber = \"201\"\nmembers = [\"201\"]\n");
        assert!(e.contains("queue[1].number") && e.contains("an extension"), "{e}");
        let e = refused("[[queue]]\nname = \"q\"\nnumber = \"9201\"\n");
        assert!(e.contains("conference room"), "{e}");
        let e =
            refused("[[queue]]\nname = \"q\"\nnumber = \"600\"\n[[queue]]\nname = \"r\"\nnumber = \"600\"\n");
        assert!(e.contains("queue[2].number") && e.contains("another queue"), "{e}");
        let e = refused("[[queue]]\nname = \"q\"\noverflow = { queue = \"nope\" }\n");
        assert!(e.contains("queue[1].overflow") && e.contains("no queue `nope`"), "{e}");
        let e = refused("[acd]\ndaily_logout = \"25:00\"\n");
        assert!(e.contains("acd.daily_logout"), "{e}");
        let e = refused("[[queue]]\nname = \"q\"\n[[queue]]\nname = \"q\"\n");
        assert!(e.contains("queue[2].name"), "{e}");
    }
}
