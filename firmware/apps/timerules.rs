//! Time rules: where a call to a DID goes at a given moment (issue 4; spec seed 002 §2.25, §3.4;
//! seed 000 after-hours voicemail).
//!
//! Sans-IO: the engine passes the wall clock as Unix milliseconds; this module converts it to
//! local civil time in a fixed UTC offset (Japan has no DST, so a fixed `+09:00` is exact) and
//! walks the DID's ordered rules. The first matching rule wins; if none matches, the DID's
//! default destination applies.
//!
//! Parsing is two-stage, like every parser in the firmware: serde reads the text into the
//! `*Config` structs (plain strings), then [`TimeRules::from_config`] checks every value and
//! builds the typed [`TimeRules`]. Every failure names the field (`did[1].rule[2].times[1]`,
//! 1-based, as a technician counts the `[[did]]` and `[[did.rule]]` blocks in the file).
//!
//! The format and its semantics are documented for installers in `docs/time-rules.md`.
//!
//! The public interface is: [`parse_rules`], [`TimeRules`], [`RuleSet`], [`HolidayList`],
//! [`Destination`], [`RuleError`], [`UtcOffset`], [`LocalTime`], [`Date`], [`Weekday`], and the
//! serde shapes [`TimeRulesConfig`], [`DidConfig`], [`RuleConfig`] for embedding in a larger file.
use serde::Deserialize;
use std::fmt;

/// Most `[[did]]` blocks. A small office has a handful of DIDs; a call center a few hundred.
pub const MAX_DIDS: usize = 1000;

/// Most rules per DID. The spec's IVR schedule has 3; 32 covers any realistic week (shifts,
/// lunch, holidays, campaigns) while bounding the work done per incoming call.
pub const MAX_RULES_PER_DID: usize = 32;

/// Most entries in each list of a rule (`weekdays` aside): `times`, `dates`, `yearly`. Bounds
/// the per-call evaluation; a rule needing more should be split.
pub const MAX_RANGES_PER_RULE: usize = 16;

/// Most entries (dates or date ranges) in the holiday list. Japan has about 16-20 public
/// holidays a year plus company days; 512 entries hold a decade and the lookup stays a short
/// linear scan.
pub const MAX_HOLIDAYS: usize = 512;

/// Longest rule name in bytes. The name goes into CDRs and logs, so it is kept short.
pub const MAX_NAME_BYTES: usize = 64;

/// Longest destination target (extension, group name, number, audio name) in bytes.
pub const MAX_TARGET_BYTES: usize = 64;

/// Longest DID number. E.164 allows 15 digits; 32 leaves room for a `+` and national forms.
pub const MAX_DID_BYTES: usize = 32;

/// Longest offending value quoted in an error, in characters; keeps log lines bounded.
const MAX_QUOTED_CHARS: usize = 64;

/// Earliest and latest year accepted in dates. Keeps the day arithmetic far from overflow and
/// catches typos such as `226-01-01`.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// Minutes in a day; `24:00` is accepted as the end of a time range.
const MINUTES_PER_DAY: u16 = 24 * 60;

const SECONDS_PER_DAY: i64 = 86_400;

/// Largest UTC offset accepted, in minutes (real zones span -12:00 to +14:00).
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

// ---------------------------------------------------------------------------------------------
// Destinations and errors.

/// Where a call goes. Opaque to this module; the engine interprets the targets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// Ring one extension (`{ extension = "201" }`).
    Extension(String),
    /// Ring a ring group (`{ group = "sales" }`).
    Group(String),
    /// Enter a call-center queue (`{ queue = "support" }`).
    Queue(String),
    /// Enter an IVR menu (`{ ivr = "main" }`).
    Ivr(String),
    /// Play an audio file and hang up (`{ announcement = "年末年始" }`).
    Announcement(String),
    /// Record into a voicemail box (`{ voicemail = "201" }`; seed 000 after hours).
    Voicemail(String),
    /// Forward to an outside number (`{ external = "09012345678" }`).
    External(String),
    /// Reject the call (`"hangup"`).
    Hangup,
}

impl Destination {
    /// The target name, if the destination has one.
    pub fn target(&self) -> Option<&str> {
        match self {
            Destination::Extension(t)
            | Destination::Group(t)
            | Destination::Queue(t)
            | Destination::Ivr(t)
            | Destination::Announcement(t)
            | Destination::Voicemail(t)
            | Destination::External(t) => Some(t),
            Destination::Hangup => None,
        }
    }
}

/// Why a time-rule configuration was rejected. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    /// The TOML text is malformed or has the wrong shape (unknown key, wrong type).
    Toml {
        /// 1-based line of the problem, when toml reports one.
        line: Option<usize>,
        /// toml's message, which names the key.
        message: String,
    },
    /// A field's value is not valid.
    Invalid {
        /// Path of the field, e.g. `did[1].rule[2].times[1]`.
        field: String,
        /// The offending value, shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A list holds more entries than its limit.
    TooMany {
        /// Path of the list, e.g. `did[1].rule`.
        field: String,
        /// The limit.
        max: usize,
    },
    /// The same DID number appears in two `[[did]]` blocks.
    DuplicateDid {
        /// Path of the second block, e.g. `did[3].number`.
        field: String,
        /// The repeated number.
        number: String,
    },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Toml { line: Some(line), message } => write!(f, "line {line}: {message}"),
            RuleError::Toml { line: None, message } => write!(f, "{message}"),
            RuleError::Invalid { field, value, reason } => write!(f, "{field} = {value:?}: {reason}"),
            RuleError::TooMany { field, max } => write!(f, "{field}: more than {max} entries"),
            RuleError::DuplicateDid { field, number } => {
                write!(f, "{field} = {number:?}: this DID already has a [[did]] block")
            }
        }
    }
}

impl std::error::Error for RuleError {}

fn invalid(field: impl Into<String>, value: &str, reason: &'static str) -> RuleError {
    RuleError::Invalid { field: field.into(), value: value.chars().take(MAX_QUOTED_CHARS).collect(), reason }
}

// ---------------------------------------------------------------------------------------------
// Civil time.

/// A fixed offset from UTC, in minutes east.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset {
    minutes: i32,
}

impl UtcOffset {
    /// Japan Standard Time, `+09:00` (no daylight saving).
    pub const JST: UtcOffset = UtcOffset { minutes: 9 * 60 };

    /// UTC itself (file names that must not depend on the configured zone).
    pub const UTC: UtcOffset = UtcOffset { minutes: 0 };

    /// An offset of `minutes` east of UTC; `None` beyond ±14:00.
    pub fn from_minutes(minutes: i32) -> Option<UtcOffset> {
        (minutes.abs() <= MAX_OFFSET_MINUTES).then_some(UtcOffset { minutes })
    }

    /// Minutes east of UTC.
    pub fn minutes(self) -> i32 {
        self.minutes
    }

    /// Parses `+HH:MM` / `-HH:MM` (the sign is required).
    fn parse(s: &str) -> Option<UtcOffset> {
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, s.get(1..)?),
            b'-' => (-1, s.get(1..)?),
            _ => return None,
        };
        let (h, m) = rest.split_once(':')?;
        let (h, m) = (fixed_digits(h, 2)?, fixed_digits(m, 2)?);
        if m >= 60 {
            return None;
        }
        let minutes = i32::try_from(h * 60 + m).ok()?;
        UtcOffset::from_minutes(sign * minutes)
    }
}

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset::JST
    }
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weekday {
    /// 月
    Mon,
    /// 火
    Tue,
    /// 水
    Wed,
    /// 木
    Thu,
    /// 金
    Fri,
    /// 土
    Sat,
    /// 日
    Sun,
}

impl Weekday {
    const ALL: [Weekday; 7] =
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Accepts the English three-letter name (any case) or the Japanese one-character name.
    fn parse(s: &str) -> Option<Weekday> {
        let day = match s.to_ascii_lowercase().as_str() {
            "mon" | "月" => Weekday::Mon,
            "tue" | "火" => Weekday::Tue,
            "wed" | "水" => Weekday::Wed,
            "thu" | "木" => Weekday::Thu,
            "fri" | "金" => Weekday::Fri,
            "sat" | "土" => Weekday::Sat,
            "sun" | "日" => Weekday::Sun,
            _ => return None,
        };
        Some(day)
    }
}

/// A calendar date (proleptic Gregorian). Orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
}

impl Date {
    /// A valid date, or `None` (month 13, February 30, year outside 1970-9999).
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        (YEARS.contains(&year) && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then_some(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let mut parts = s.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let year = i32::try_from(fixed_digits(y, 4)?).ok()?;
        Date::new(year, u8::try_from(fixed_digits(m, 2)?).ok()?, u8::try_from(fixed_digits(d, 2)?).ok()?)
    }

    /// Unix milliseconds of this date's local midnight at `offset` (0 before 1970).
    pub fn unix_ms_at_midnight(self, offset: UtcOffset) -> u64 {
        let secs = self.days_since_epoch() * SECONDS_PER_DAY - i64::from(offset.minutes()) * 60;
        u64::try_from(secs).unwrap_or(0).saturating_mul(1000)
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    fn days_since_epoch(self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // In range by construction: month 1-12, day 1-31, and the year fits i32 for any u64 ms.
        Date {
            year: i32::try_from(year).unwrap_or(i32::MAX),
            month: u8::try_from(month).unwrap_or(1),
            day: u8::try_from(day).unwrap_or(1),
        }
    }

    /// Unix milliseconds of this date's local midnight at `offset` (0 before the epoch), so
    /// reports can turn a local day range into a scan of the event log.
    pub fn midnight_unix_ms(self, offset: UtcOffset) -> u64 {
        let secs = self.days_since_epoch() * SECONDS_PER_DAY - i64::from(offset.minutes) * 60;
        u64::try_from(secs).map_or(0, |s| s.saturating_mul(1000))
    }

    /// The day of the week; 1970-01-01 was a Thursday.
    pub fn weekday(self) -> Weekday {
        let index = (self.days_since_epoch() + 3).rem_euclid(7);
        Weekday::ALL.get(usize::try_from(index).unwrap_or(0)).copied().unwrap_or(Weekday::Mon)
    }

    fn previous(self) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() - 1)
    }

    fn month_day(self) -> MonthDay {
        MonthDay { month: self.month, day: self.day }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The local civil time of a Unix instant, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// The local date.
    pub date: Date,
    /// Minutes since local midnight, 0-1439.
    pub minute_of_day: u16,
}

impl LocalTime {
    /// Converts Unix milliseconds (the engine's wall clock) to local time at `offset`.
    pub fn from_unix_ms(unix_ms: u64, offset: UtcOffset) -> LocalTime {
        // u64 ms / 1000 always fits i64 seconds.
        let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX / 2) + i64::from(offset.minutes) * 60;
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let minute_of_day = u16::try_from(secs.rem_euclid(SECONDS_PER_DAY) / 60).unwrap_or(0);
        LocalTime { date: Date::from_days_since_epoch(days), minute_of_day }
    }
}

/// Exactly `width` ASCII digits, as a number.
fn fixed_digits(s: &str, width: usize) -> Option<u32> {
    if s.len() != width || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Rule conditions.

/// A time-of-day range `[start, end)` in minutes; `start > end` crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeRange {
    start: u16,
    end: u16,
}

impl TimeRange {
    fn parse(s: &str) -> Result<TimeRange, &'static str> {
        const FORMAT: &str = "expected HH:MM-HH:MM with hours 00-24 and minutes 00-59";
        let (a, b) = s.split_once('-').ok_or(FORMAT)?;
        let start = parse_clock(a.trim()).ok_or(FORMAT)?;
        let end = parse_clock(b.trim()).ok_or(FORMAT)?;
        if start == MINUTES_PER_DAY {
            return Err("a range cannot start at 24:00; use 00:00");
        }
        if start == end {
            return Err("the range is empty (start equals end); use 00:00-24:00 for the whole day");
        }
        // `22:00-00:00` ends at midnight, not at the start of the day.
        Ok(TimeRange { start, end: if end == 0 { MINUTES_PER_DAY } else { end } })
    }

    fn crosses_midnight(self) -> bool {
        self.start > self.end
    }
}

/// `HH:MM` as minutes since midnight; `24:00` allowed.
fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m) = (fixed_digits(h, 2)?, fixed_digits(m, 2)?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    u16::try_from(h * 60 + m).ok()
}

/// An inclusive range of dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateRange {
    first: Date,
    last: Date,
}

impl DateRange {
    /// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (inclusive).
    fn parse(s: &str) -> Result<DateRange, &'static str> {
        const FORMAT: &str = "expected a valid date YYYY-MM-DD or range YYYY-MM-DD..YYYY-MM-DD";
        let (a, b) = s.split_once("..").unwrap_or((s, s));
        let first = Date::parse(a.trim()).ok_or(FORMAT)?;
        let last = Date::parse(b.trim()).ok_or(FORMAT)?;
        if last < first {
            return Err("the range ends before it starts");
        }
        Ok(DateRange { first, last })
    }

    fn contains(self, date: Date) -> bool {
        self.first <= date && date <= self.last
    }
}

/// A day of the year, ignoring the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct MonthDay {
    month: u8,
    day: u8,
}

impl MonthDay {
    fn parse(s: &str) -> Option<MonthDay> {
        let (m, d) = s.split_once('-')?;
        let (month, day) = (u8::try_from(fixed_digits(m, 2)?).ok()?, u8::try_from(fixed_digits(d, 2)?).ok()?);
        // A leap year, so 02-29 is accepted; it matches only in leap years.
        Date::new(2000, month, day).map(|_| MonthDay { month, day })
    }
}

/// An inclusive range of days of the year; `first > last` crosses the new year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct YearlyRange {
    first: MonthDay,
    last: MonthDay,
}

impl YearlyRange {
    /// `MM-DD` or `MM-DD..MM-DD` (inclusive; `12-29..01-03` crosses the new year).
    fn parse(s: &str) -> Result<YearlyRange, &'static str> {
        const FORMAT: &str = "expected a valid day MM-DD or range MM-DD..MM-DD";
        let (a, b) = s.split_once("..").unwrap_or((s, s));
        let first = MonthDay::parse(a.trim()).ok_or(FORMAT)?;
        let last = MonthDay::parse(b.trim()).ok_or(FORMAT)?;
        Ok(YearlyRange { first, last })
    }

    fn contains(self, date: Date) -> bool {
        let md = date.month_day();
        if self.first <= self.last {
            self.first <= md && md <= self.last
        } else {
            md >= self.first || md <= self.last
        }
    }
}

/// The admin's list of holidays (public holidays and company days off). Not built in: Japan's
/// calendar changes by law (e.g. the 2019-2021 moves), so the admin lists the dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolidayList {
    ranges: Vec<DateRange>,
}

impl HolidayList {
    /// An empty list: no day is a holiday.
    pub fn new() -> HolidayList {
        HolidayList::default()
    }

    /// Parses entries `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`; errors name `holidays[i]`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<HolidayList, RuleError> {
        if entries.len() > MAX_HOLIDAYS {
            return Err(RuleError::TooMany { field: "holidays".into(), max: MAX_HOLIDAYS });
        }
        let mut ranges = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref();
            ranges.push(
                DateRange::parse(entry).map_err(|r| invalid(format!("holidays[{}]", i + 1), entry, r))?,
            );
        }
        Ok(HolidayList { ranges })
    }

    /// Whether `date` is listed.
    pub fn contains(&self, date: Date) -> bool {
        self.ranges.iter().any(|r| r.contains(date))
    }

    /// Number of entries (a range counts once).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// One rule: conditions on the day and the time of day, and where the call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    name: String,
    /// Bit per [`Weekday`]; 0 means "not given".
    weekdays: u8,
    holidays: bool,
    dates: Vec<DateRange>,
    yearly: Vec<YearlyRange>,
    times: Vec<TimeRange>,
    destination: Destination,
}

impl Rule {
    /// Whether the day selectors accept `date`. The selectors are alternatives (any one
    /// matches); a rule with none matches every day. On a listed holiday the weekdays do not
    /// match: a holiday is its own kind of day (the spec's ★), so business-hours rules step aside
    /// unless the rule says `holidays = true` or lists the date.
    fn day_matches(&self, date: Date, holidays: &HolidayList) -> bool {
        if self.weekdays == 0 && !self.holidays && self.dates.is_empty() && self.yearly.is_empty() {
            return true;
        }
        if self.dates.iter().any(|r| r.contains(date)) || self.yearly.iter().any(|r| r.contains(date)) {
            return true;
        }
        let is_holiday = holidays.contains(date);
        if is_holiday {
            self.holidays
        } else {
            self.weekdays & date.weekday().bit() != 0
        }
    }

    /// Whether the rule matches at `now`. The part of a midnight-crossing time range after
    /// midnight belongs to the day it started on (`fri 22:00-02:00` covers Saturday 01:00).
    fn matches(&self, now: LocalTime, holidays: &HolidayList) -> bool {
        if self.times.is_empty() {
            return self.day_matches(now.date, holidays);
        }
        let t = now.minute_of_day;
        let mut today = None;
        let mut yesterday = None;
        self.times.iter().any(|r| {
            if r.crosses_midnight() {
                (t >= r.start && *today.get_or_insert_with(|| self.day_matches(now.date, holidays)))
                    || (t < r.end
                        && *yesterday.get_or_insert_with(|| self.day_matches(now.date.previous(), holidays)))
            } else {
                r.start <= t
                    && t < r.end
                    && *today.get_or_insert_with(|| self.day_matches(now.date, holidays))
            }
        })
    }
}

/// The ordered rules and default of one DID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    number: String,
    offset: UtcOffset,
    rules: Vec<Rule>,
    default: Destination,
}

impl RuleSet {
    /// The DID number this set routes.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The default destination (no rule matched).
    pub fn default_destination(&self) -> &Destination {
        &self.default
    }

    /// The names of the rules, in evaluation order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Where a call arriving at `unix_ms` goes, and the name of the rule that decided it
    /// (`None` for the default). The first matching rule wins.
    pub fn destination_at(&self, unix_ms: u64, holidays: &HolidayList) -> (&Destination, Option<&str>) {
        let now = LocalTime::from_unix_ms(unix_ms, self.offset);
        match self.rules.iter().find(|r| r.matches(now, holidays)) {
            Some(rule) => (&rule.destination, Some(&rule.name)),
            None => (&self.default, None),
        }
    }
}

/// Every DID's rules, the holiday list and the offset, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeRules {
    offset: UtcOffset,
    holidays: HolidayList,
    dids: Vec<RuleSet>,
}

impl TimeRules {
    /// The offset local time is evaluated in.
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// The admin's holiday list.
    pub fn holidays(&self) -> &HolidayList {
        &self.holidays
    }

    /// The rule set of `did`, if it has one.
    pub fn rule_set(&self, did: &str) -> Option<&RuleSet> {
        self.dids.iter().find(|s| s.number == did)
    }

    /// All rule sets, in file order.
    pub fn rule_sets(&self) -> &[RuleSet] {
        &self.dids
    }

    /// Where a call to `did` at `unix_ms` goes, with the deciding rule's name; `None` if the
    /// DID has no rules.
    pub fn destination_at(&self, did: &str, unix_ms: u64) -> Option<(&Destination, Option<&str>)> {
        self.rule_set(did).map(|s| s.destination_at(unix_ms, &self.holidays))
    }

    /// Validates the serde shape into rules; errors name the field.
    pub fn from_config(config: &TimeRulesConfig) -> Result<TimeRules, RuleError> {
        let offset = match &config.utc_offset {
            Some(s) => UtcOffset::parse(s).ok_or_else(|| {
                invalid("utc_offset", s, "expected +HH:MM or -HH:MM within ±14:00, e.g. \"+09:00\"")
            })?,
            None => UtcOffset::JST,
        };
        let holidays = HolidayList::parse(&config.holidays)?;
        if config.did.len() > MAX_DIDS {
            return Err(RuleError::TooMany { field: "did".into(), max: MAX_DIDS });
        }
        let mut dids: Vec<RuleSet> = Vec::with_capacity(config.did.len());
        for (i, did) in config.did.iter().enumerate() {
            let path = format!("did[{}]", i + 1);
            let set = build_rule_set(&path, did, offset)?;
            if dids.iter().any(|s| s.number == set.number) {
                return Err(RuleError::DuplicateDid { field: format!("{path}.number"), number: set.number });
            }
            dids.push(set);
        }
        Ok(TimeRules { offset, holidays, dids })
    }
}

fn check_target(field: String, destination: &Destination) -> Result<(), RuleError> {
    match destination.target() {
        Some("") => Err(invalid(field, "", "the destination's target is empty")),
        Some(t) if t.len() > MAX_TARGET_BYTES => {
            Err(invalid(field, t, "the destination's target is too long (64 bytes at most)"))
        }
        _ => Ok(()),
    }
}

fn check_len<T>(field: impl FnOnce() -> String, list: &[T], max: usize) -> Result<(), RuleError> {
    if list.len() > max {
        return Err(RuleError::TooMany { field: field(), max });
    }
    Ok(())
}

fn build_rule_set(path: &str, did: &DidConfig, offset: UtcOffset) -> Result<RuleSet, RuleError> {
    let number = did.number.trim();
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || number.len() > MAX_DID_BYTES || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("{path}.number"), &did.number, "expected digits, optionally after +"));
    }
    check_target(format!("{path}.default"), &did.default)?;
    check_len(|| format!("{path}.rule"), &did.rule, MAX_RULES_PER_DID)?;
    let mut rules = Vec::with_capacity(did.rule.len());
    for (i, raw) in did.rule.iter().enumerate() {
        rules.push(build_rule(&format!("{path}.rule[{}]", i + 1), raw)?);
    }
    Ok(RuleSet { number: number.to_string(), offset, rules, default: did.default.clone() })
}

/// Validates ordered rules and a default that belong to no DID (an IVR menu's schedule, issue 6):
/// the returned set's [`RuleSet::number`] is empty. Errors name fields under `path`, e.g.
/// `ivr[2].rule[1].times[1]`; the caller bounds the number of rules.
pub fn schedule_from_config(
    path: &str,
    rules: &[RuleConfig],
    default: &Destination,
    offset: UtcOffset,
) -> Result<RuleSet, RuleError> {
    check_len(|| format!("{path}.rule"), rules, MAX_RULES_PER_DID)?;
    let mut built = Vec::with_capacity(rules.len());
    for (i, raw) in rules.iter().enumerate() {
        built.push(build_rule(&format!("{path}.rule[{}]", i + 1), raw)?);
    }
    Ok(RuleSet { number: String::new(), offset, rules: built, default: default.clone() })
}

/// Parses each entry of `list`; an error names `field[i]` (1-based).
fn parse_list<T>(
    field: &str,
    list: &[String],
    each: fn(&str) -> Result<T, &'static str>,
) -> Result<Vec<T>, RuleError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| each(s.trim()).map_err(|r| invalid(format!("{field}[{}]", i + 1), s, r)))
        .collect()
}

fn build_rule(path: &str, raw: &RuleConfig) -> Result<Rule, RuleError> {
    let name = raw.name.trim();
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!("{path}.name"), &raw.name, "expected a name of 1 to 64 bytes"));
    }
    check_target(format!("{path}.destination"), &raw.destination)?;
    check_len(|| format!("{path}.weekdays"), &raw.weekdays, Weekday::ALL.len())?;
    check_len(|| format!("{path}.times"), &raw.times, MAX_RANGES_PER_RULE)?;
    check_len(|| format!("{path}.dates"), &raw.dates, MAX_RANGES_PER_RULE)?;
    check_len(|| format!("{path}.yearly"), &raw.yearly, MAX_RANGES_PER_RULE)?;
    let mut weekdays = 0;
    for (i, s) in raw.weekdays.iter().enumerate() {
        let day = Weekday::parse(s.trim()).ok_or_else(|| {
            invalid(format!("{path}.weekdays[{}]", i + 1), s, "expected mon, tue, wed, thu, fri, sat or sun")
        })?;
        weekdays |= day.bit();
    }
    let times = parse_list(&format!("{path}.times"), &raw.times, TimeRange::parse)?;
    let dates = parse_list(&format!("{path}.dates"), &raw.dates, DateRange::parse)?;
    let yearly = parse_list(&format!("{path}.yearly"), &raw.yearly, YearlyRange::parse)?;
    Ok(Rule {
        name: name.to_string(),
        weekdays,
        holidays: raw.holidays,
        dates,
        yearly,
        times,
        destination: raw.destination.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// The serde shape (stage one).

/// The file shape: `utc_offset`, `holidays` and `[[did]]` blocks. Embed it in a larger config
/// struct and call [`TimeRules::from_config`], or use [`parse_rules`] on a whole text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRulesConfig {
    /// `+HH:MM`; default `+09:00` (JST).
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` entries.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// One block per DID.
    #[serde(default)]
    pub did: Vec<DidConfig>,
}

/// One `[[did]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidConfig {
    /// The DID number as the trunk delivers it.
    pub number: String,
    /// Where calls go when no rule matches.
    pub default: Destination,
    /// The ordered `[[did.rule]]` blocks.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

/// One `[[did.rule]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in CDRs and logs.
    pub name: String,
    /// `mon`..`sun` (or `月`..`日`).
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// `HH:MM-HH:MM`, end exclusive; may cross midnight.
    #[serde(default)]
    pub times: Vec<String>,
    /// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`.
    #[serde(default)]
    pub dates: Vec<String>,
    /// `MM-DD` or `MM-DD..MM-DD`, every year.
    #[serde(default)]
    pub yearly: Vec<String>,
    /// Matches the days in the holiday list.
    #[serde(default)]
    pub holidays: bool,
    /// Where the call goes when the rule matches.
    pub destination: Destination,
}

/// Parses and validates a whole time-rules TOML text.
pub fn parse_rules(text: &str) -> Result<TimeRules, RuleError> {
    let config: TimeRulesConfig = toml::from_str(text).map_err(|e| RuleError::Toml {
        line: e.span().map(|s| {
            text.as_bytes().get(..s.start).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) + 1
        }),
        message: e.message().trim().to_string(),
    })?;
    TimeRules::from_config(&config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC civil time, computed independently of the code under test by summing
    /// days (slow but obviously right).
    fn utc_ms(year: i32, month: u8, day: u8, hour: u64, minute: u64) -> u64 {
        let mut days: u64 = 0;
        for y in 1970..year {
            days += if is_leap_year(y) { 366 } else { 365 };
        }
        for m in 1..month {
            days += u64::from(days_in_month(year, m));
        }
        days += u64::from(day) - 1;
        ((days * 24 + hour) * 60 + minute) * 60_000
    }

    /// Unix ms of a JST civil time.
    fn jst_ms(year: i32, month: u8, day: u8, hour: u64, minute: u64) -> u64 {
        utc_ms(year, month, day, hour, minute) - 9 * 3_600_000
    }

    fn date(year: i32, month: u8, day: u8) -> Date {
        Date::new(year, month, day).unwrap()
    }

    const OFFICE: &str = r#"
        holidays = ["2026-11-23", "2027-01-11"]

        [[did]]
        number = "0312345678"
        default = { voicemail = "201" }

        [[did.rule]]
        name = "new year"
        dates = ["2026-12-29..2027-01-03"]
        destination = { announcement = "年末年始" }

        [[did.rule]]
        name = "business hours"
        weekdays = ["mon","tue","wed","thu","fri"]
        times = ["09:00-12:00", "13:00-18:00"]
        destination = { extension = "201" }

        [[did.rule]]
        name = "lunch"
        weekdays = ["mon","tue","wed","thu","fri"]
        times = ["12:00-13:00"]
        destination = { announcement = "昼休み" }

        [[did.rule]]
        name = "holiday"
        holidays = true
        destination = { announcement = "休日" }
    "#;

    fn office() -> TimeRules {
        parse_rules(OFFICE).unwrap()
    }

    fn rule_at(rules: &TimeRules, unix_ms: u64) -> Option<String> {
        rules.destination_at("0312345678", unix_ms).unwrap().1.map(str::to_string)
    }

    fn one_rule(conditions: &str) -> TimeRules {
        let text = format!(
            "[[did]]\nnumber = \"100\"\ndefault = \"hangup\"\n[[did.rule]]\nname = \"r\"\n{conditions}\n\
             destination = {{ extension = \"201\" }}\n"
        );
        parse_rules(&text).unwrap()
    }

    fn matches(rules: &TimeRules, unix_ms: u64) -> bool {
        rules.destination_at("100", unix_ms).unwrap().1 == Some("r")
    }

    fn error_of(text: &str) -> RuleError {
        parse_rules(text).unwrap_err()
    }

    fn field_of(text: &str) -> String {
        match error_of(text) {
            RuleError::Invalid { field, .. } | RuleError::TooMany { field, .. } => field,
            RuleError::DuplicateDid { field, .. } => field,
            other => panic!("expected a field error, got {other}"),
        }
    }

    // Tests for civil time.

    #[test]
    fn midnight_unix_ms_is_the_local_start_of_the_day() {
        let d = Date::new(2026, 11, 22).unwrap();
        // 2026-11-22 00:00 JST = 2026-11-21 15:00 UTC.
        assert_eq!(d.midnight_unix_ms(UtcOffset::JST), 1_795_273_200_000);
        assert_eq!(d.midnight_unix_ms(UtcOffset::UTC), 1_795_305_600_000);
        let local = LocalTime::from_unix_ms(d.midnight_unix_ms(UtcOffset::JST), UtcOffset::JST);
        assert_eq!((local.date, local.minute_of_day), (d, 0));
        assert_eq!(Date::new(1970, 1, 1).unwrap().midnight_unix_ms(UtcOffset::JST), 0);
    }

    #[test]
    fn epoch_is_thursday_first_of_january_1970() {
        let t = LocalTime::from_unix_ms(0, UtcOffset::from_minutes(0).unwrap());
        assert_eq!((t.date, t.minute_of_day), (date(1970, 1, 1), 0));
        assert_eq!(t.date.weekday(), Weekday::Thu);
    }

    #[test]
    fn jst_is_already_monday_at_utc_sunday_1530() {
        // 2026-11-22T15:30Z is Monday 2026-11-23 00:30 JST.
        assert_eq!(utc_ms(2026, 11, 22, 15, 30), 1_795_361_400_000);
        let t = LocalTime::from_unix_ms(1_795_361_400_000, UtcOffset::JST);
        assert_eq!((t.date, t.minute_of_day), (date(2026, 11, 23), 30));
        assert_eq!(t.date.weekday(), Weekday::Mon);
    }

    #[test]
    fn jst_is_still_sunday_at_utc_1459() {
        let t = LocalTime::from_unix_ms(utc_ms(2026, 11, 22, 14, 59), UtcOffset::JST);
        assert_eq!(
            (t.date, t.minute_of_day, t.date.weekday()),
            (date(2026, 11, 22), 23 * 60 + 59, Weekday::Sun)
        );
    }

    #[test]
    fn jst_new_year_starts_at_utc_1500_on_new_years_eve() {
        let t = LocalTime::from_unix_ms(utc_ms(2026, 12, 31, 15, 0), UtcOffset::JST);
        assert_eq!((t.date, t.minute_of_day), (date(2027, 1, 1), 0));
        assert_eq!(t.date.weekday(), Weekday::Fri);
    }

    #[test]
    fn civil_conversion_round_trips_every_day_for_centuries() {
        let mut expected = date(1970, 1, 1);
        for days in 0..(400 * 366) {
            let got = Date::from_days_since_epoch(days);
            assert_eq!(got, expected);
            assert_eq!(got.days_since_epoch(), days);
            expected = Date::new(expected.year, expected.month, expected.day + 1)
                .or_else(|| Date::new(expected.year, expected.month + 1, 1))
                .unwrap_or_else(|| date(expected.year + 1, 1, 1));
        }
    }

    #[test]
    fn leap_day_is_a_thursday_in_2024() {
        let t = LocalTime::from_unix_ms(utc_ms(2024, 2, 29, 3, 0), UtcOffset::JST);
        assert_eq!((t.date, t.date.weekday(), t.minute_of_day), (date(2024, 2, 29), Weekday::Thu, 12 * 60));
    }

    #[test]
    fn huge_timestamps_do_not_panic() {
        let t = LocalTime::from_unix_ms(u64::MAX, UtcOffset::JST);
        assert!(t.minute_of_day < MINUTES_PER_DAY);
        let rules = office();
        let _ = rules.destination_at("0312345678", u64::MAX);
    }

    #[test]
    fn negative_offsets_move_the_day_back() {
        let offset = UtcOffset::parse("-05:00").unwrap();
        let t = LocalTime::from_unix_ms(utc_ms(2026, 1, 1, 3, 0), offset);
        assert_eq!((t.date, t.minute_of_day), (date(2025, 12, 31), 22 * 60));
    }

    // Tests for rule evaluation.

    #[test]
    fn business_hours_route_to_the_extension_on_a_weekday_morning() {
        let rules = office();
        let (dest, name) = rules.destination_at("0312345678", jst_ms(2026, 11, 24, 10, 0)).unwrap();
        assert_eq!((dest, name), (&Destination::Extension("201".into()), Some("business hours")));
    }

    #[test]
    fn weekday_boundaries_are_start_inclusive_and_end_exclusive() {
        let rules = office();
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 8, 59)), None);
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 9, 0)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 11, 59)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 12, 0)).as_deref(), Some("lunch"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 13, 0)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 17, 59)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 24, 18, 0)), None);
    }

    #[test]
    fn friday_counts_as_a_weekday_and_saturday_does_not() {
        let rules = office();
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 27, 10, 0)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 28, 10, 0)), None);
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 29, 10, 0)), None);
    }

    #[test]
    fn after_hours_fall_to_the_default_voicemail() {
        let rules = office();
        let (dest, name) = rules.destination_at("0312345678", jst_ms(2026, 11, 24, 20, 0)).unwrap();
        assert_eq!((dest, name), (&Destination::Voicemail("201".into()), None));
    }

    #[test]
    fn business_hours_step_aside_on_a_listed_holiday() {
        // 2026-11-23 (Mon) is 勤労感謝の日, in the holiday list.
        let rules = office();
        assert_eq!(rule_at(&rules, jst_ms(2026, 11, 23, 10, 0)).as_deref(), Some("holiday"));
    }

    #[test]
    fn the_utc_sunday_evening_call_is_a_jst_holiday_monday() {
        let rules = office();
        assert_eq!(rule_at(&rules, utc_ms(2026, 11, 22, 15, 30)).as_deref(), Some("holiday"));
        assert_eq!(rule_at(&rules, utc_ms(2026, 11, 23, 0, 0)).as_deref(), Some("holiday"));
    }

    #[test]
    fn without_a_holiday_rule_a_holiday_takes_the_default() {
        let rules = one_rule("weekdays = [\"mon\"]");
        let holidays = HolidayList::parse(&["2026-11-23"]).unwrap();
        let set = rules.rule_set("100").unwrap();
        assert_eq!(set.destination_at(jst_ms(2026, 11, 23, 10, 0), &holidays), (&Destination::Hangup, None));
        let (_, name) = set.destination_at(jst_ms(2026, 11, 23, 10, 0), &HolidayList::new());
        assert_eq!(name, Some("r"));
    }

    #[test]
    fn holiday_ranges_cover_every_day_inside() {
        let holidays = HolidayList::parse(&["2026-08-13..2026-08-16"]).unwrap();
        assert!(!holidays.contains(date(2026, 8, 12)));
        assert!(holidays.contains(date(2026, 8, 13)));
        assert!(holidays.contains(date(2026, 8, 16)));
        assert!(!holidays.contains(date(2026, 8, 17)));
    }

    #[test]
    fn date_range_across_year_end_wins_over_business_hours() {
        let rules = office();
        // 2026-12-29 is a Tuesday, 2027-01-04 a Monday.
        assert_eq!(rule_at(&rules, jst_ms(2026, 12, 28, 10, 0)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 12, 29, 0, 0)).as_deref(), Some("new year"));
        assert_eq!(rule_at(&rules, jst_ms(2026, 12, 31, 23, 59)).as_deref(), Some("new year"));
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 1, 10, 0)).as_deref(), Some("new year"));
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 3, 23, 59)).as_deref(), Some("new year"));
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 4, 10, 0)).as_deref(), Some("business hours"));
    }

    #[test]
    fn date_range_boundary_follows_jst_not_utc() {
        let rules = office();
        // 2026-12-28T15:00Z is 2026-12-29 00:00 JST.
        assert_eq!(rule_at(&rules, utc_ms(2026, 12, 28, 14, 59)), None);
        assert_eq!(rule_at(&rules, utc_ms(2026, 12, 28, 15, 0)).as_deref(), Some("new year"));
    }

    #[test]
    fn yearly_range_across_year_end_matches_every_year() {
        let rules = one_rule("yearly = [\"12-29..01-03\"]");
        for year in [2026, 2030, 2099] {
            assert!(!matches(&rules, jst_ms(year, 12, 28, 12, 0)));
            assert!(matches(&rules, jst_ms(year, 12, 29, 0, 0)));
            assert!(matches(&rules, jst_ms(year + 1, 1, 1, 12, 0)));
            assert!(matches(&rules, jst_ms(year + 1, 1, 3, 23, 59)));
            assert!(!matches(&rules, jst_ms(year + 1, 1, 4, 0, 0)));
        }
    }

    #[test]
    fn yearly_single_day_matches_only_that_day() {
        let rules = one_rule("yearly = [\"05-01\"]");
        assert!(matches(&rules, jst_ms(2027, 5, 1, 8, 0)));
        assert!(!matches(&rules, jst_ms(2027, 5, 2, 8, 0)));
        assert!(!matches(&rules, jst_ms(2027, 4, 30, 8, 0)));
    }

    #[test]
    fn midnight_crossing_range_covers_both_sides_of_midnight() {
        let rules = one_rule("times = [\"22:00-06:00\"]");
        assert!(!matches(&rules, jst_ms(2026, 11, 24, 21, 59)));
        assert!(matches(&rules, jst_ms(2026, 11, 24, 22, 0)));
        assert!(matches(&rules, jst_ms(2026, 11, 24, 23, 59)));
        assert!(matches(&rules, jst_ms(2026, 11, 25, 0, 0)));
        assert!(matches(&rules, jst_ms(2026, 11, 25, 5, 59)));
        assert!(!matches(&rules, jst_ms(2026, 11, 25, 6, 0)));
        assert!(!matches(&rules, jst_ms(2026, 11, 25, 12, 0)));
    }

    #[test]
    fn after_midnight_part_belongs_to_the_day_the_range_started() {
        let rules = one_rule("weekdays = [\"fri\"]\ntimes = [\"22:00-02:00\"]");
        // Friday 2026-11-27 22:30, Saturday 01:00 (still Friday night), Friday 01:00 (Thursday night).
        assert!(matches(&rules, jst_ms(2026, 11, 27, 22, 30)));
        assert!(matches(&rules, jst_ms(2026, 11, 28, 1, 0)));
        assert!(!matches(&rules, jst_ms(2026, 11, 27, 1, 0)));
        assert!(!matches(&rules, jst_ms(2026, 11, 28, 22, 30)));
    }

    #[test]
    fn midnight_crossing_range_on_new_years_eve_runs_into_new_years_day() {
        let rules = one_rule("dates = [\"2026-12-31\"]\ntimes = [\"22:00-02:00\"]");
        assert!(matches(&rules, jst_ms(2026, 12, 31, 23, 0)));
        assert!(matches(&rules, jst_ms(2027, 1, 1, 1, 59)));
        assert!(!matches(&rules, jst_ms(2027, 1, 1, 2, 0)));
        assert!(!matches(&rules, jst_ms(2026, 12, 31, 1, 0)));
    }

    #[test]
    fn range_ending_at_midnight_or_24_covers_the_last_minute() {
        for times in ["times = [\"18:00-00:00\"]", "times = [\"18:00-24:00\"]"] {
            let rules = one_rule(times);
            assert!(matches(&rules, jst_ms(2026, 11, 24, 23, 59)));
            assert!(!matches(&rules, jst_ms(2026, 11, 25, 0, 0)));
            assert!(!matches(&rules, jst_ms(2026, 11, 24, 17, 59)));
        }
        let all_day = one_rule("times = [\"00:00-24:00\"]");
        assert!(matches(&all_day, jst_ms(2026, 11, 24, 0, 0)));
        assert!(matches(&all_day, jst_ms(2026, 11, 24, 23, 59)));
    }

    #[test]
    fn first_matching_rule_wins_over_later_ones() {
        let text = r#"
            [[did]]
            number = "100"
            default = "hangup"
            [[did.rule]]
            name = "first"
            times = ["09:00-18:00"]
            destination = { queue = "support" }
            [[did.rule]]
            name = "second"
            times = ["00:00-24:00"]
            destination = { group = "all" }
        "#;
        let rules = parse_rules(text).unwrap();
        let at = |h| rules.destination_at("100", jst_ms(2026, 11, 24, h, 0)).unwrap();
        assert_eq!(at(10), (&Destination::Queue("support".into()), Some("first")));
        assert_eq!(at(20), (&Destination::Group("all".into()), Some("second")));
    }

    #[test]
    fn rule_without_conditions_matches_every_moment() {
        let rules = one_rule("");
        assert!(matches(&rules, jst_ms(2026, 11, 23, 3, 0)));
        assert!(matches(&rules, 0));
    }

    #[test]
    fn did_without_rules_always_takes_the_default() {
        let rules =
            parse_rules("[[did]]\nnumber = \"+81312345678\"\ndefault = { ivr = \"main\" }\n").unwrap();
        let got = rules.destination_at("+81312345678", jst_ms(2026, 11, 24, 10, 0));
        assert_eq!(got, Some((&Destination::Ivr("main".into()), None)));
        assert_eq!(rules.destination_at("0000", 0), None);
    }

    #[test]
    fn japanese_weekday_names_are_accepted() {
        let rules = one_rule("weekdays = [\"土\", \"日\"]");
        assert!(matches(&rules, jst_ms(2026, 11, 28, 10, 0)));
        assert!(matches(&rules, jst_ms(2026, 11, 29, 10, 0)));
        assert!(!matches(&rules, jst_ms(2026, 11, 30, 10, 0)));
    }

    #[test]
    fn configured_offset_shifts_the_evaluation() {
        let text = "utc_offset = \"+00:00\"\n[[did]]\nnumber = \"100\"\ndefault = \"hangup\"\n\
                    [[did.rule]]\nname = \"r\"\ntimes = [\"09:00-10:00\"]\ndestination = { external = \"0120\" }\n";
        let rules = parse_rules(text).unwrap();
        assert_eq!(rules.offset().minutes(), 0);
        assert!(matches(&rules, utc_ms(2026, 11, 24, 9, 30)));
        assert!(!matches(&rules, jst_ms(2026, 11, 24, 9, 30)));
        assert_eq!(office().offset(), UtcOffset::JST);
    }

    #[test]
    fn every_destination_kind_parses() {
        let text = r#"
            [[did]]
            number = "1"
            default = { extension = "201" }
            [[did]]
            number = "2"
            default = { group = "g" }
            [[did]]
            number = "3"
            default = { queue = "q" }
            [[did]]
            number = "4"
            default = { ivr = "i" }
            [[did]]
            number = "5"
            default = { announcement = "a" }
            [[did]]
            number = "6"
            default = { voicemail = "201" }
            [[did]]
            number = "7"
            default = { external = "0312345678" }
            [[did]]
            number = "8"
            default = "hangup"
        "#;
        let rules = parse_rules(text).unwrap();
        let defaults: Vec<_> = rules.rule_sets().iter().map(|s| s.default_destination().clone()).collect();
        assert_eq!(
            defaults,
            [
                Destination::Extension("201".into()),
                Destination::Group("g".into()),
                Destination::Queue("q".into()),
                Destination::Ivr("i".into()),
                Destination::Announcement("a".into()),
                Destination::Voicemail("201".into()),
                Destination::External("0312345678".into()),
                Destination::Hangup,
            ]
        );
    }

    #[test]
    fn the_brief_example_parses() {
        let text = r#"
            [[did]]
            number = "0312345678"
            default = { voicemail = "201" }
            [[did.rule]]
            name = "business hours"
            weekdays = ["mon","tue","wed","thu","fri"]
            times = ["09:00-12:00", "13:00-18:00"]
            destination = { extension = "201" }
            [[did.rule]]
            name = "new year"
            dates = ["2026-12-29..2027-01-03"]
            destination = { announcement = "年末年始" }
        "#;
        let rules = parse_rules(text).unwrap();
        let set = rules.rule_set("0312345678").unwrap();
        assert_eq!(set.rule_names().collect::<Vec<_>>(), ["business hours", "new year"]);
        assert_eq!(set.number(), "0312345678");
    }

    #[test]
    fn the_lunch_break_example_of_the_docs_behaves_as_documented() {
        let text = r#"
            holidays = ["2027-01-01", "2027-01-11", "2027-02-11"]
            [[did]]
            number = "0312345678"
            default = { voicemail = "201" }
            [[did.rule]]
            name = "holiday"
            holidays = true
            destination = { announcement = "本日は休業日です" }
            [[did.rule]]
            name = "lunch"
            weekdays = ["mon", "tue", "wed", "thu", "fri"]
            times = ["12:00-13:00"]
            destination = { announcement = "昼休み" }
            [[did.rule]]
            name = "business hours"
            weekdays = ["mon", "tue", "wed", "thu", "fri"]
            times = ["09:00-12:00", "13:00-18:00"]
            destination = { queue = "support" }
        "#;
        let rules = parse_rules(text).unwrap();
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 12, 12, 30)).as_deref(), Some("lunch"));
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 12, 15, 0)).as_deref(), Some("business hours"));
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 12, 18, 0)), None);
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 11, 12, 30)).as_deref(), Some("holiday"));
        assert_eq!(rule_at(&rules, jst_ms(2027, 1, 11, 15, 0)).as_deref(), Some("holiday"));
    }

    // Tests for rejected input.

    fn with_rule(conditions: &str) -> String {
        format!(
            "[[did]]\nnumber = \"100\"\ndefault = \"hangup\"\n[[did.rule]]\nname = \"r\"\n{conditions}\n\
             destination = {{ extension = \"201\" }}\n"
        )
    }

    #[test]
    fn bad_time_ranges_are_rejected_naming_the_field() {
        for bad in ["25:00-26:00", "09:00", "9:00-18:00", "09:60-10:00", "24:00-01:00", "10:00-10:00", "a-b"]
        {
            let text = with_rule(&format!("times = [\"09:00-10:00\", \"{bad}\"]"));
            assert_eq!(field_of(&text), "did[1].rule[1].times[2]", "{bad}");
        }
    }

    #[test]
    fn bad_dates_are_rejected_naming_the_field() {
        for bad in ["2026-02-29", "2026-13-01", "2026-1-01", "2027-01-03..2026-12-29", "1969-12-31", "x"] {
            let text = with_rule(&format!("dates = [\"{bad}\"]"));
            assert_eq!(field_of(&text), "did[1].rule[1].dates[1]", "{bad}");
        }
    }

    #[test]
    fn bad_yearly_days_are_rejected_naming_the_field() {
        for bad in ["02-30", "13-01", "2026-01-01", "1-1"] {
            let text = with_rule(&format!("yearly = [\"{bad}\"]"));
            assert_eq!(field_of(&text), "did[1].rule[1].yearly[1]", "{bad}");
        }
        assert!(parse_rules(&with_rule("yearly = [\"02-29\"]")).is_ok());
    }

    #[test]
    fn unknown_weekday_is_rejected_naming_the_field() {
        assert_eq!(field_of(&with_rule("weekdays = [\"mon\", \"funday\"]")), "did[1].rule[1].weekdays[2]");
    }

    #[test]
    fn bad_holiday_is_rejected_naming_the_field() {
        let text = "holidays = [\"2026-01-01\", \"2026-02-30\"]\n";
        assert_eq!(field_of(text), "holidays[2]");
    }

    #[test]
    fn bad_offset_is_rejected_naming_the_field() {
        for bad in ["09:00", "+9", "+15:00", "+09:60", ""] {
            assert_eq!(field_of(&format!("utc_offset = \"{bad}\"\n")), "utc_offset", "{bad}");
        }
    }

    #[test]
    fn bad_did_numbers_and_names_are_rejected_naming_the_field() {
        assert_eq!(field_of("[[did]]\nnumber = \"03-1234\"\ndefault = \"hangup\"\n"), "did[1].number");
        assert_eq!(field_of("[[did]]\nnumber = \"\"\ndefault = \"hangup\"\n"), "did[1].number");
        let text = "[[did]]\nnumber = \"1\"\ndefault = \"hangup\"\n[[did.rule]]\nname = \" \"\n\
                    destination = \"hangup\"\n";
        assert_eq!(field_of(text), "did[1].rule[1].name");
    }

    #[test]
    fn empty_destination_target_is_rejected_naming_the_field() {
        assert_eq!(field_of("[[did]]\nnumber = \"1\"\ndefault = { extension = \"\" }\n"), "did[1].default");
        let text = "[[did]]\nnumber = \"1\"\ndefault = \"hangup\"\n[[did.rule]]\nname = \"r\"\n\
                    destination = { queue = \"\" }\n";
        assert_eq!(field_of(text), "did[1].rule[1].destination");
    }

    #[test]
    fn duplicate_did_is_rejected_naming_the_second_block() {
        let text =
            "[[did]]\nnumber = \"1\"\ndefault = \"hangup\"\n[[did]]\nnumber = \"2\"\ndefault = \"hangup\"\n\
                    [[did]]\nnumber = \"1\"\ndefault = \"hangup\"\n";
        assert_eq!(field_of(text), "did[3].number");
    }

    #[test]
    fn too_many_rules_are_rejected() {
        let mut text = String::from("[[did]]\nnumber = \"1\"\ndefault = \"hangup\"\n");
        for i in 0..=MAX_RULES_PER_DID {
            text.push_str(&format!("[[did.rule]]\nname = \"r{i}\"\ndestination = \"hangup\"\n"));
        }
        assert_eq!(
            error_of(&text),
            RuleError::TooMany { field: "did[1].rule".into(), max: MAX_RULES_PER_DID }
        );
    }

    #[test]
    fn too_many_ranges_in_a_rule_are_rejected() {
        let times = vec!["\"09:00-10:00\""; MAX_RANGES_PER_RULE + 1].join(",");
        let text = with_rule(&format!("times = [{times}]"));
        assert_eq!(
            error_of(&text),
            RuleError::TooMany { field: "did[1].rule[1].times".into(), max: MAX_RANGES_PER_RULE }
        );
        let ok = vec!["\"09:00-10:00\""; MAX_RANGES_PER_RULE].join(",");
        assert!(parse_rules(&with_rule(&format!("times = [{ok}]"))).is_ok());
    }

    #[test]
    fn too_many_holidays_are_rejected() {
        let list = vec!["2026-01-01"; MAX_HOLIDAYS + 1];
        assert_eq!(
            HolidayList::parse(&list).unwrap_err(),
            RuleError::TooMany { field: "holidays".into(), max: MAX_HOLIDAYS }
        );
    }

    #[test]
    fn unknown_keys_and_destinations_are_rejected_with_the_line() {
        let err = error_of(&with_rule("weekday = [\"mon\"]"));
        match &err {
            RuleError::Toml { line: Some(6), message } => {
                assert!(message.contains("weekday"), "{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = error_of("[[did]]\nnumber = \"1\"\ndefault = { fax = \"1\" }\n");
        match &err {
            RuleError::Toml { line: Some(3), message } => assert!(message.contains("fax"), "{err}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(error_of("[[did]]\nnumber = \"1\"\n"), RuleError::Toml { .. }));
    }

    #[test]
    fn error_messages_name_the_field_and_quote_the_value() {
        let err = error_of(&with_rule("times = [\"25:00-26:00\"]"));
        let text = err.to_string();
        assert!(text.starts_with("did[1].rule[1].times[1] = \"25:00-26:00\": "), "{text}");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "did = 3",
            "[[did]]",
            "holidays = [1]",
            "\u{0}",
            "[[did]]\nnumber = \"１２３\"\ndefault=\"hangup\"",
        ] {
            let _ = parse_rules(text);
        }
        for s in [
            "",
            "-",
            "..",
            "0000-00-00",
            "99999-01-01",
            "２０２６-01-01",
            "09:00-",
            "-09:00",
            "::",
            "+",
            "+:",
        ] {
            let _ = Date::parse(s);
            let _ = DateRange::parse(s);
            let _ = YearlyRange::parse(s);
            let _ = TimeRange::parse(s);
            let _ = UtcOffset::parse(s);
        }
    }
}
