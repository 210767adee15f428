//! Read-out: numbers, counted things, dates, times and sentences as lists of prompt ids.
//!
//! Japanese reads a number in groups of four digits (万, 億), each group from whole per-place
//! pieces (`num.300` さんびゃく, `num.8000` はっせん), so no reading is ever composed wrongly.
//! A counter fuses with the last part of the number (1件 いっけん, 4時 よじ), so [`count`] reads
//! everything before that part as a plain number and the last part from a fused piece
//! (`ja.counter.ken.1`); a part with no fused piece takes the counter's `bare` piece, which is
//! only used where the number ends in ん (千, 万) or the counter never changes (番).
//!
//! English reads a number in groups of three digits (thousand, million, billion) from
//! `num.0`..`num.19`, the tens and `num.hundred`, with no "and".

use super::Lang;

/// Japanese digit place pieces; index 0 of the place tables is unused (no piece for a zero).
const DIGITS: [&str; 10] =
    ["num.0", "num.1", "num.2", "num.3", "num.4", "num.5", "num.6", "num.7", "num.8", "num.9"];
const TENS: [&str; 10] =
    ["", "num.10", "num.20", "num.30", "num.40", "num.50", "num.60", "num.70", "num.80", "num.90"];
const JA_HUNDREDS: [&str; 10] =
    ["", "num.100", "num.200", "num.300", "num.400", "num.500", "num.600", "num.700", "num.800", "num.900"];
const JA_THOUSANDS: [&str; 10] = [
    "", "num.1000", "num.2000", "num.3000", "num.4000", "num.5000", "num.6000", "num.7000", "num.8000",
    "num.9000",
];
const EN_TEENS: [&str; 10] =
    ["num.10", "num.11", "num.12", "num.13", "num.14", "num.15", "num.16", "num.17", "num.18", "num.19"];
const MONTHS: [&str; 12] = [
    "month.1", "month.2", "month.3", "month.4", "month.5", "month.6", "month.7", "month.8", "month.9",
    "month.10", "month.11", "month.12",
];
const DAYS: [&str; 31] = [
    "day.1", "day.2", "day.3", "day.4", "day.5", "day.6", "day.7", "day.8", "day.9", "day.10", "day.11",
    "day.12", "day.13", "day.14", "day.15", "day.16", "day.17", "day.18", "day.19", "day.20", "day.21",
    "day.22", "day.23", "day.24", "day.25", "day.26", "day.27", "day.28", "day.29", "day.30", "day.31",
];
const WEEKDAYS: [&str; 7] =
    ["weekday.0", "weekday.1", "weekday.2", "weekday.3", "weekday.4", "weekday.5", "weekday.6"];

/// The decimal digit of `n` at `place` (0 = ones), as a table index (always below 10).
fn digit(n: u32, place: u32) -> usize {
    ((n / 10u32.pow(place)) % 10) as usize
}

/// Something counted, with its Japanese counter and English wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Counter {
    /// 件 (voicemail messages): 1件 いっけん, 6件 ろっけん, 8件 はっけん; en "one message".
    Messages,
    /// 分 (minutes): 1分 いっぷん, 3分 さんぷん; en "three minutes".
    Minutes,
    /// 時 (hour of the clock): 4時 よじ, 7時 しちじ, 9時 くじ; en "four o'clock".
    Hours,
    /// 年 (years): 4年 よねん, 2026年; en "three years".
    Years,
    /// 人 (people in a conference): 1人 ひとり, 2人 ふたり, 4人 よにん; en "three participants".
    Participants,
    /// 番目 (a position in a queue): 3番目 さんばんめ; en "number three".
    Position,
    /// 番 (a numbered thing, e.g. a parking slot): 3番 さんばん; en "number three".
    Number,
}

/// The Japanese pieces of one counter.
struct JaCounter {
    /// The reading of 0 as one piece, if recorded (else "ゼロ" + `bare`).
    zero: Option<&'static str>,
    /// Fused readings of 1..=10 (index 0 is 1), if the counter fuses.
    ones: Option<[&'static str; 10]>,
    /// After a longer number the plain reading returns for these last digits (十一人
    /// じゅういちにん, not じゅうひとり): `num.d` + `bare`.
    compound_plain: &'static [usize],
    /// Fused readings of 100..=900 (index 0 is 100), if the counter fuses there too.
    hundreds: Option<[&'static str; 9]>,
    /// The counter alone, after a number that ends in ん (千, 万) or where it never fuses.
    bare: &'static str,
    /// The counter alone after 億 (おく does not end in ん: 一億分 いちおくふん).
    bare_after_oku: &'static str,
}

const KEN: JaCounter = JaCounter {
    zero: Some("ja.counter.ken.0"),
    ones: Some([
        "ja.counter.ken.1",
        "ja.counter.ken.2",
        "ja.counter.ken.3",
        "ja.counter.ken.4",
        "ja.counter.ken.5",
        "ja.counter.ken.6",
        "ja.counter.ken.7",
        "ja.counter.ken.8",
        "ja.counter.ken.9",
        "ja.counter.ken.10",
    ]),
    compound_plain: &[],
    hundreds: Some([
        "ja.counter.ken.100",
        "ja.counter.ken.200",
        "ja.counter.ken.300",
        "ja.counter.ken.400",
        "ja.counter.ken.500",
        "ja.counter.ken.600",
        "ja.counter.ken.700",
        "ja.counter.ken.800",
        "ja.counter.ken.900",
    ]),
    bare: "ja.counter.ken.bare",
    bare_after_oku: "ja.counter.ken.bare",
};

const FUN: JaCounter = JaCounter {
    zero: Some("ja.counter.fun.0"),
    ones: Some([
        "ja.counter.fun.1",
        "ja.counter.fun.2",
        "ja.counter.fun.3",
        "ja.counter.fun.4",
        "ja.counter.fun.5",
        "ja.counter.fun.6",
        "ja.counter.fun.7",
        "ja.counter.fun.8",
        "ja.counter.fun.9",
        "ja.counter.fun.10",
    ]),
    compound_plain: &[],
    hundreds: Some([
        "ja.counter.fun.100",
        "ja.counter.fun.200",
        "ja.counter.fun.300",
        "ja.counter.fun.400",
        "ja.counter.fun.500",
        "ja.counter.fun.600",
        "ja.counter.fun.700",
        "ja.counter.fun.800",
        "ja.counter.fun.900",
    ]),
    bare: "ja.counter.fun.bare",
    bare_after_oku: "ja.counter.fun.bare_oku",
};

const JI: JaCounter = JaCounter {
    zero: Some("ja.counter.ji.0"),
    ones: Some([
        "ja.counter.ji.1",
        "ja.counter.ji.2",
        "ja.counter.ji.3",
        "ja.counter.ji.4",
        "ja.counter.ji.5",
        "ja.counter.ji.6",
        "ja.counter.ji.7",
        "ja.counter.ji.8",
        "ja.counter.ji.9",
        "ja.counter.ji.10",
    ]),
    compound_plain: &[],
    hundreds: None,
    bare: "ja.counter.ji.bare",
    bare_after_oku: "ja.counter.ji.bare",
};

const NEN: JaCounter = JaCounter {
    zero: Some("ja.counter.nen.0"),
    ones: Some([
        "ja.counter.nen.1",
        "ja.counter.nen.2",
        "ja.counter.nen.3",
        "ja.counter.nen.4",
        "ja.counter.nen.5",
        "ja.counter.nen.6",
        "ja.counter.nen.7",
        "ja.counter.nen.8",
        "ja.counter.nen.9",
        "ja.counter.nen.10",
    ]),
    compound_plain: &[],
    hundreds: None,
    bare: "ja.counter.nen.bare",
    bare_after_oku: "ja.counter.nen.bare",
};

const NIN: JaCounter = JaCounter {
    zero: Some("ja.counter.nin.0"),
    ones: Some([
        "ja.counter.nin.1",
        "ja.counter.nin.2",
        "ja.counter.nin.3",
        "ja.counter.nin.4",
        "ja.counter.nin.5",
        "ja.counter.nin.6",
        "ja.counter.nin.7",
        "ja.counter.nin.8",
        "ja.counter.nin.9",
        "ja.counter.nin.10",
    ]),
    compound_plain: &[1, 2],
    hundreds: None,
    bare: "ja.counter.nin.bare",
    bare_after_oku: "ja.counter.nin.bare",
};

const BAN: JaCounter = JaCounter {
    zero: None,
    ones: None,
    compound_plain: &[],
    hundreds: None,
    bare: "ja.counter.ban.bare",
    bare_after_oku: "ja.counter.ban.bare",
};

const BANME: JaCounter = JaCounter {
    zero: None,
    ones: None,
    compound_plain: &[],
    hundreds: None,
    bare: "ja.counter.banme.bare",
    bare_after_oku: "ja.counter.banme.bare",
};

impl Counter {
    fn ja(self) -> &'static JaCounter {
        match self {
            Counter::Messages => &KEN,
            Counter::Minutes => &FUN,
            Counter::Hours => &JI,
            Counter::Years => &NEN,
            Counter::Participants => &NIN,
            Counter::Position => &BANME,
            Counter::Number => &BAN,
        }
    }
}

/// The prompt ids that read `n` aloud.
///
/// `number(1234, Lang::Ja)` is `["num.1000", "num.200", "num.30", "num.4"]` (せん にひゃく
/// さんじゅう よん); `number(1234, Lang::En)` is one thousand two hundred thirty four.
pub fn number(n: u32, lang: Lang) -> Vec<&'static str> {
    let mut out = Vec::new();
    match lang {
        Lang::Ja => ja_number(n, &mut out),
        Lang::En => en_number(n, &mut out),
    }
    out
}

fn ja_number(n: u32, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push(DIGITS[0]);
        return;
    }
    ja_number_nonzero(n, out);
}

/// Reads `n`, saying nothing for 0 (used for the part before a counter).
fn ja_number_nonzero(n: u32, out: &mut Vec<&'static str>) {
    let oku = n / 100_000_000;
    let man = (n / 10_000) % 10_000;
    let rest = n % 10_000;
    if oku > 0 {
        ja_group(oku, true, out);
        out.push("num.oku");
    }
    if man > 0 {
        ja_group(man, true, out);
        out.push("num.man");
    }
    if rest > 0 {
        ja_group(rest, false, out);
    }
}

/// One group of up to four digits. Before 万 or 億 a lone thousand is いっせん (一千万).
fn ja_group(g: u32, before_scale: bool, out: &mut Vec<&'static str>) {
    match digit(g, 3) {
        0 => {}
        1 if before_scale => out.push("num.issen"),
        k => out.push(JA_THOUSANDS[k]),
    }
    let h = digit(g, 2);
    if h > 0 {
        out.push(JA_HUNDREDS[h]);
    }
    let t = digit(g, 1);
    if t > 0 {
        out.push(TENS[t]);
    }
    let o = digit(g, 0);
    if o > 0 {
        out.push(DIGITS[o]);
    }
}

fn en_number(n: u32, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push(DIGITS[0]);
        return;
    }
    for (scale, word) in [(1_000_000_000, "num.billion"), (1_000_000, "num.million"), (1_000, "num.thousand")]
    {
        let g = (n / scale) % 1000;
        if g > 0 {
            en_group(g, out);
            out.push(word);
        }
    }
    let g = n % 1000;
    if g > 0 {
        en_group(g, out);
    }
}

/// One group of up to three digits, 1..=999: "two hundred", "twenty", "one".
fn en_group(g: u32, out: &mut Vec<&'static str>) {
    let h = digit(g, 2);
    if h > 0 {
        out.push(DIGITS[h]);
        out.push("num.hundred");
    }
    let r = g % 100;
    if r == 0 {
        return;
    }
    if r < 10 {
        out.push(DIGITS[r as usize]);
    } else if r < 20 {
        out.push(EN_TEENS[digit(r, 0)]);
    } else {
        out.push(TENS[digit(r, 1)]);
        if r % 10 > 0 {
            out.push(DIGITS[digit(r, 0)]);
        }
    }
}

/// The prompt ids that read `n` things: 8件 はっけん, 3分 さんぷん, 4時 よじ; in English the
/// number and the word ("three", "messages"; "four", "o'clock"; "number", "three").
pub fn count(n: u32, counter: Counter, lang: Lang) -> Vec<&'static str> {
    let mut out = Vec::new();
    match lang {
        Lang::Ja => ja_count(n, counter.ja(), &mut out),
        Lang::En => en_count(n, counter, &mut out),
    }
    out
}

fn ja_count(n: u32, c: &JaCounter, out: &mut Vec<&'static str>) {
    if n == 0 {
        match c.zero {
            Some(z) => out.push(z),
            None => {
                out.push(DIGITS[0]);
                out.push(c.bare);
            }
        }
        return;
    }
    // The last non-zero part of `n` fuses with the counter; everything before it is a plain
    // number.
    let o = digit(n, 0);
    if o > 0 {
        ja_number_nonzero(n - o as u32, out);
        let compound = n > 10 && c.compound_plain.contains(&o);
        match c.ones {
            Some(ones) if !compound => out.push(ones[o - 1]),
            _ => {
                out.push(DIGITS[o]);
                out.push(c.bare);
            }
        }
        return;
    }
    let t = digit(n, 1);
    if t > 0 {
        ja_number_nonzero(n - 10 * t as u32, out);
        match c.ones {
            // 二十件 = に + じゅっけん: the tens fuse like 十 does.
            Some(ones) => {
                if t > 1 {
                    out.push(DIGITS[t]);
                }
                out.push(ones[9]);
            }
            None => {
                out.push(TENS[t]);
                out.push(c.bare);
            }
        }
        return;
    }
    let h = digit(n, 2);
    if h > 0 {
        ja_number_nonzero(n - 100 * h as u32, out);
        match c.hundreds {
            Some(hundreds) => out.push(hundreds[h - 1]),
            None => {
                out.push(JA_HUNDREDS[h]);
                out.push(c.bare);
            }
        }
        return;
    }
    // A multiple of 1000: the number ends in せん/ぜん, まん or おく.
    ja_number_nonzero(n, out);
    out.push(if n % 100_000_000 == 0 { c.bare_after_oku } else { c.bare });
}

fn en_count(n: u32, counter: Counter, out: &mut Vec<&'static str>) {
    let one = n == 1;
    let word = match counter {
        Counter::Messages if one => "word.message",
        Counter::Messages => "word.messages",
        Counter::Minutes if one => "word.minute",
        Counter::Minutes => "word.minutes",
        Counter::Years if one => "word.year",
        Counter::Years => "word.years",
        Counter::Participants if one => "word.participant",
        Counter::Participants => "word.participants",
        Counter::Hours => "time.oclock",
        Counter::Position | Counter::Number => {
            out.push("word.number");
            en_number(n, out);
            return;
        }
    };
    en_number(n, out);
    out.push(word);
}

/// Reads a dialled string key by key (extensions, parking slots, PINs): digits, `*` and `#`.
/// Other characters are skipped.
pub fn digits(keys: &str, lang: Lang) -> Vec<&'static str> {
    let _ = lang; // The same ids exist in both languages.
    keys.chars().filter_map(key_prompt).collect()
}

fn key_prompt(key: char) -> Option<&'static str> {
    match key {
        '*' => Some("key.star"),
        '#' => Some("key.pound"),
        _ => key.to_digit(10).map(|d| DIGITS[d as usize]),
    }
}

/// Days in a month of the proleptic Gregorian calendar; 0 for a month outside 1..=12.
fn days_in_month(year: i32, month: u8) -> u8 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

/// The year, month and day as table indexes, if the date exists and the year is positive.
fn checked_date(year: i32, month: u8, day: u8) -> Option<(u32, usize, usize)> {
    let y = u32::try_from(year).ok().filter(|y| *y > 0)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((y, usize::from(month - 1), usize::from(day - 1)))
}

/// Reads a date: ja 二〇二六年十一月二十二日 (にせんにじゅうろくねん じゅういちがつ
/// にじゅうににち); en "November", "twenty-second", "twenty", "twenty", "six". Empty for a date
/// that does not exist or a year before 1.
pub fn date(year: i32, month: u8, day: u8, lang: Lang) -> Vec<&'static str> {
    let Some((y, m, d)) = checked_date(year, month, day) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match lang {
        Lang::Ja => {
            ja_count(y, &NEN, &mut out);
            out.push(MONTHS[m]);
            out.push(DAYS[d]);
        }
        Lang::En => {
            out.push(MONTHS[m]);
            out.push(DAYS[d]);
            en_year(y, &mut out);
        }
    }
    out
}

/// English years as spoken: 2026 "twenty twenty-six", 2005 "two thousand five", 1905
/// "nineteen oh five", 1900 "nineteen hundred".
fn en_year(y: u32, out: &mut Vec<&'static str>) {
    if !(1000..10_000).contains(&y) || y % 1000 < 10 {
        en_number(y, out);
        return;
    }
    let (hi, lo) = (y / 100, y % 100);
    en_number(hi, out);
    if lo == 0 {
        out.push("num.hundred");
    } else {
        if lo < 10 {
            out.push("num.oh");
        }
        en_number(lo, out);
    }
}

/// Reads the day of the week of a date (Sunday .. Saturday; 日曜日 .. 土曜日). Empty for a date
/// that does not exist.
pub fn weekday(year: i32, month: u8, day: u8, lang: Lang) -> Vec<&'static str> {
    let _ = lang; // The same ids exist in both languages.
    if checked_date(year, month, day).is_none() {
        return Vec::new();
    }
    // Sakamoto's method: 0 = Sunday.
    const OFFSETS: [i64; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = i64::from(year) - i64::from(month < 3);
    let offset = OFFSETS[usize::from(month - 1)];
    let w = (y + y / 4 - y / 100 + y / 400 + offset + i64::from(day)).rem_euclid(7);
    vec![WEEKDAYS[w as usize]]
}

/// Reads a time of day (24-hour input). ja: 午後 + 3時 + 15分 (ごご さんじ じゅうごふん; no 分
/// on the hour, 午後0時 for noon); en: "three fifteen p.m.", "three oh five p.m.", "three
/// o'clock p.m.", "twelve o'clock a.m." for midnight. Empty for hour > 23 or minute > 59.
pub fn time(hour: u8, minute: u8, lang: Lang) -> Vec<&'static str> {
    if hour > 23 || minute > 59 {
        return Vec::new();
    }
    let half = if hour < 12 { "time.am" } else { "time.pm" };
    let mut out = Vec::new();
    match lang {
        Lang::Ja => {
            out.push(half);
            ja_count(u32::from(hour % 12), &JI, &mut out);
            if minute > 0 {
                ja_count(u32::from(minute), &FUN, &mut out);
            }
        }
        Lang::En => {
            let h12 = match hour % 12 {
                0 => 12,
                h => h,
            };
            en_number(u32::from(h12), &mut out);
            match minute {
                0 => out.push("time.oclock"),
                1..=9 => {
                    out.push("num.oh");
                    out.push(DIGITS[usize::from(minute)]);
                }
                _ => en_number(u32::from(minute), &mut out),
            }
            out.push(half);
        }
    }
    out
}

/// "You have three new messages." / 新しいメッセージが三件あります。; for 0 "You have no new
/// messages." / 新しいメッセージはありません。
pub fn sentence_you_have_n_messages(n: u32, lang: Lang) -> Vec<&'static str> {
    if n == 0 {
        return vec!["vm.no_new_messages"];
    }
    you_have(n, lang, "vm.new_message", "vm.new_messages")
}

/// The mailbox summary: new messages, then saved ones; "You have no messages." when both are 0.
pub fn sentence_you_have_messages(new: u32, saved: u32, lang: Lang) -> Vec<&'static str> {
    if new == 0 && saved == 0 {
        return vec!["vm.no_messages"];
    }
    let mut out = Vec::new();
    if new > 0 {
        out.extend(you_have(new, lang, "vm.new_message", "vm.new_messages"));
    }
    if saved > 0 {
        out.extend(you_have(saved, lang, "vm.saved_message", "vm.saved_messages"));
    }
    out
}

fn you_have(n: u32, lang: Lang, one: &'static str, many: &'static str) -> Vec<&'static str> {
    match lang {
        // 新しいメッセージが + 三件 + あります (Japanese has no singular: `many` serves both).
        Lang::Ja => {
            let mut out = vec![many];
            ja_count(n, &KEN, &mut out);
            out.push("vm.there_are");
            out
        }
        Lang::En => {
            let mut out = vec!["vm.you_have"];
            en_number(n, &mut out);
            out.push(if n == 1 { one } else { many });
            out
        }
    }
}

/// "You are caller number three in the queue." / お客様の順番は、三番目です。
pub fn sentence_queue_position(position: u32, lang: Lang) -> Vec<&'static str> {
    let mut out = vec!["queue.position"];
    match lang {
        Lang::Ja => ja_count(position, &BANME, &mut out),
        Lang::En => en_number(position, &mut out),
    }
    out.push("queue.in_queue");
    out
}

/// "Your estimated wait time is three minutes." / お待ちいただく時間は、およそ三分です。; under a
/// minute (0) "… less than one minute."
pub fn sentence_wait_time(minutes: u32, lang: Lang) -> Vec<&'static str> {
    let mut out = vec!["queue.wait_time"];
    if minutes == 0 {
        out.push("queue.less_than_a_minute");
        return out;
    }
    out.extend(count(minutes, Counter::Minutes, lang));
    if lang == Lang::Ja {
        out.push("queue.wait_time_end");
    }
    out
}

/// "The conference has three participants." / この会議には、現在三人が参加しています。; with 0 or
/// 1 participants "You are the first participant."
pub fn sentence_conference_participants(n: u32, lang: Lang) -> Vec<&'static str> {
    if n <= 1 {
        return vec!["conf.first_participant"];
    }
    let mut out = vec!["conf.has"];
    out.extend(count(n, Counter::Participants, lang));
    if lang == Lang::Ja {
        out.push("conf.has_end");
    }
    out
}

/// "Call parked at seven zero one." / 通話を、七〇一番に保留しました。 The slot is read key by key.
pub fn sentence_call_parked_at(slot: &str, lang: Lang) -> Vec<&'static str> {
    let mut out = vec!["call.parked_at"];
    out.extend(digits(slot, lang));
    if lang == Lang::Ja {
        out.push("call.parked_at_end");
    }
    out
}

/// "Extension two zero one is busy." / 内線二〇一は、話し中です。
pub fn sentence_extension_busy(extension: &str, lang: Lang) -> Vec<&'static str> {
    let mut out = vec!["call.extension"];
    out.extend(digits(extension, lang));
    out.push("call.is_busy");
    out
}

/// "Extension two zero one is not available." / 内線二〇一は、ただいま電話に出られません。
pub fn sentence_extension_not_available(extension: &str, lang: Lang) -> Vec<&'static str> {
    let mut out = vec!["call.extension"];
    out.extend(digits(extension, lang));
    out.push("call.is_not_available");
    out
}

/// What a menu key does, for [`sentence_menu_option`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MenuAction {
    /// Listen to your messages.
    Listen,
    /// Save this message.
    Save,
    /// Delete this message.
    Delete,
    /// The next message.
    Next,
    /// The previous message.
    Previous,
    /// Repeat this message.
    Repeat,
    /// Return to the main menu.
    MainMenu,
    /// Record your greeting.
    RecordGreeting,
    /// Record again.
    Rerecord,
    /// Change your password.
    ChangePassword,
    /// Exit.
    Exit,
    /// Speak to an operator.
    Operator,
}

impl MenuAction {
    fn prompt(self) -> &'static str {
        match self {
            MenuAction::Listen => "menu.to_listen",
            MenuAction::Save => "menu.to_save",
            MenuAction::Delete => "menu.to_delete",
            MenuAction::Next => "menu.to_next",
            MenuAction::Previous => "menu.to_previous",
            MenuAction::Repeat => "menu.to_repeat",
            MenuAction::MainMenu => "menu.to_main_menu",
            MenuAction::RecordGreeting => "menu.to_record_greeting",
            MenuAction::Rerecord => "menu.to_rerecord",
            MenuAction::ChangePassword => "menu.to_change_password",
            MenuAction::Exit => "menu.to_exit",
            MenuAction::Operator => "menu.to_operator",
        }
    }
}

/// "To delete this message, press seven." / このメッセージを削除するには、七を押してください。
/// Empty for a key that is not 0-9, `*` or `#`.
pub fn sentence_menu_option(key: char, action: MenuAction, lang: Lang) -> Vec<&'static str> {
    let Some(k) = key_prompt(key) else {
        return Vec::new();
    };
    match lang {
        Lang::Ja => vec![action.prompt(), k, "menu.press"],
        Lang::En => vec![action.prompt(), "menu.press", k],
    }
}

#[cfg(test)]
mod tests {
    use super::super::exists;
    use super::*;

    const LANGS: [Lang; 2] = [Lang::Ja, Lang::En];
    const COUNTERS: [Counter; 7] = [
        Counter::Messages,
        Counter::Minutes,
        Counter::Hours,
        Counter::Years,
        Counter::Participants,
        Counter::Position,
        Counter::Number,
    ];

    fn assert_exist(ids: &[&str], lang: Lang, what: &str) {
        assert!(!ids.is_empty(), "{what} ({lang:?}) says nothing");
        for id in ids {
            assert!(exists(id, lang), "{what} ({lang:?}) uses missing prompt {id}");
        }
    }

    /// Numbers to check beyond 0..=10 000: every power of ten and its neighbours, the place
    /// boundaries of 万 and 億, and the extremes.
    fn sample_numbers() -> Vec<u32> {
        let mut v = vec![99_999_999, 10_000_000, 11_111_111, 12_345_678, 80_008_000, u32::MAX];
        let mut p = 1u32;
        while let Some(next) = p.checked_mul(10) {
            p = next;
            v.extend([p - 1, p, p + 1, p.saturating_mul(3), p.saturating_mul(8)]);
        }
        let mut x = 1u32;
        for _ in 0..2000 {
            // A fixed LCG: the same numbers every run.
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            v.push(x % 100_000_000);
            v.push(x);
        }
        v
    }

    // Tests for completeness: every id resolves.

    #[test]
    fn every_number_up_to_ten_thousand_resolves_in_both_languages() {
        for lang in LANGS {
            for n in 0..=10_000 {
                assert_exist(&number(n, lang), lang, &format!("number {n}"));
            }
        }
    }

    #[test]
    fn sampled_numbers_up_to_the_u32_limit_resolve_in_both_languages() {
        for lang in LANGS {
            for n in sample_numbers() {
                assert_exist(&number(n, lang), lang, &format!("number {n}"));
            }
        }
    }

    #[test]
    fn every_counter_resolves_for_every_count_up_to_ten_thousand_and_samples() {
        for lang in LANGS {
            for c in COUNTERS {
                for n in (0..=10_000).chain(sample_numbers()) {
                    assert_exist(&count(n, c, lang), lang, &format!("count {n} {c:?}"));
                }
            }
        }
    }

    #[test]
    fn every_date_of_a_leap_year_resolves() {
        for lang in LANGS {
            for year in [2024, 1900, 2000, 2005, 2026, 1] {
                for month in 1..=12u8 {
                    for day in 1..=days_in_month(year, month) {
                        let what = format!("{year}-{month}-{day}");
                        assert_exist(&date(year, month, day, lang), lang, &what);
                        assert_exist(&weekday(year, month, day, lang), lang, &what);
                    }
                }
            }
        }
    }

    #[test]
    fn every_minute_of_a_day_resolves() {
        for lang in LANGS {
            for h in 0..24 {
                for m in 0..60 {
                    assert_exist(&time(h, m, lang), lang, &format!("{h}:{m}"));
                }
            }
        }
    }

    #[test]
    fn every_sentence_resolves() {
        for lang in LANGS {
            for n in (0..=200).chain([1000, 10_000, 99_999_999]) {
                assert_exist(&sentence_you_have_n_messages(n, lang), lang, "you have");
                assert_exist(&sentence_you_have_messages(n, n / 2, lang), lang, "summary");
                assert_exist(&sentence_queue_position(n, lang), lang, "queue");
                assert_exist(&sentence_wait_time(n, lang), lang, "wait");
                assert_exist(&sentence_conference_participants(n, lang), lang, "conf");
            }
            assert_exist(&sentence_call_parked_at("701", lang), lang, "park");
            assert_exist(&sentence_extension_busy("*20#", lang), lang, "busy");
            assert_exist(&sentence_extension_not_available("209", lang), lang, "na");
            for key in "0123456789*#".chars() {
                for a in [
                    MenuAction::Listen,
                    MenuAction::Save,
                    MenuAction::Delete,
                    MenuAction::Next,
                    MenuAction::Previous,
                    MenuAction::Repeat,
                    MenuAction::MainMenu,
                    MenuAction::RecordGreeting,
                    MenuAction::Rerecord,
                    MenuAction::ChangePassword,
                    MenuAction::Exit,
                    MenuAction::Operator,
                ] {
                    assert_exist(&sentence_menu_option(key, a, lang), lang, "menu");
                }
            }
        }
    }

    // Tests for Japanese readings.

    #[test]
    fn japanese_reads_1234_from_place_pieces() {
        assert_eq!(number(1234, Lang::Ja), ["num.1000", "num.200", "num.30", "num.4"]);
    }

    #[test]
    fn japanese_hundreds_and_thousands_use_their_sound_changed_pieces() {
        assert_eq!(number(300, Lang::Ja), ["num.300"]); // さんびゃく
        assert_eq!(number(600, Lang::Ja), ["num.600"]); // ろっぴゃく
        assert_eq!(number(3000, Lang::Ja), ["num.3000"]); // さんぜん
        assert_eq!(number(8800, Lang::Ja), ["num.8000", "num.800"]); // はっせん はっぴゃく
    }

    #[test]
    fn japanese_groups_by_man_and_says_issen_before_man() {
        assert_eq!(number(10_000, Lang::Ja), ["num.1", "num.man"]); // いちまん
        assert_eq!(number(10_000_000, Lang::Ja), ["num.issen", "num.man"]); // いっせんまん
        assert_eq!(number(1_000, Lang::Ja), ["num.1000"]); // せん
        assert_eq!(
            number(99_999_999, Lang::Ja),
            ["num.9000", "num.900", "num.90", "num.9", "num.man", "num.9000", "num.900", "num.90", "num.9"]
        );
        assert_eq!(number(100_000_001, Lang::Ja), ["num.1", "num.oku", "num.1"]);
        assert_eq!(number(0, Lang::Ja), ["num.0"]);
    }

    #[test]
    fn japanese_messages_counter_fuses_with_the_last_digit() {
        assert_eq!(count(1, Counter::Messages, Lang::Ja), ["ja.counter.ken.1"]); // いっけん
        assert_eq!(count(6, Counter::Messages, Lang::Ja), ["ja.counter.ken.6"]); // ろっけん
        assert_eq!(count(8, Counter::Messages, Lang::Ja), ["ja.counter.ken.8"]); // はっけん
        assert_eq!(count(10, Counter::Messages, Lang::Ja), ["ja.counter.ken.10"]); // じゅっけん
        assert_eq!(count(21, Counter::Messages, Lang::Ja), ["num.20", "ja.counter.ken.1"]);
        assert_eq!(count(30, Counter::Messages, Lang::Ja), ["num.3", "ja.counter.ken.10"]);
        assert_eq!(count(300, Counter::Messages, Lang::Ja), ["ja.counter.ken.300"]);
        assert_eq!(count(1000, Counter::Messages, Lang::Ja), ["num.1000", "ja.counter.ken.bare"]);
        assert_eq!(count(0, Counter::Messages, Lang::Ja), ["ja.counter.ken.0"]);
    }

    #[test]
    fn japanese_minutes_use_pun_after_n_and_fun_after_oku() {
        assert_eq!(count(1, Counter::Minutes, Lang::Ja), ["ja.counter.fun.1"]); // いっぷん
        assert_eq!(count(4, Counter::Minutes, Lang::Ja), ["ja.counter.fun.4"]); // よんぷん
        assert_eq!(count(45, Counter::Minutes, Lang::Ja), ["num.40", "ja.counter.fun.5"]);
        assert_eq!(count(2000, Counter::Minutes, Lang::Ja), ["num.2000", "ja.counter.fun.bare"]);
        assert_eq!(
            count(100_000_000, Counter::Minutes, Lang::Ja),
            ["num.1", "num.oku", "ja.counter.fun.bare_oku"]
        );
    }

    #[test]
    fn japanese_hours_say_yoji_shichiji_kuji() {
        assert_eq!(count(4, Counter::Hours, Lang::Ja), ["ja.counter.ji.4"]);
        assert_eq!(count(7, Counter::Hours, Lang::Ja), ["ja.counter.ji.7"]);
        assert_eq!(count(9, Counter::Hours, Lang::Ja), ["ja.counter.ji.9"]);
        assert_eq!(count(14, Counter::Hours, Lang::Ja), ["num.10", "ja.counter.ji.4"]);
    }

    #[test]
    fn japanese_people_say_hitori_futari_alone_but_juuichinin_after_ten() {
        assert_eq!(count(1, Counter::Participants, Lang::Ja), ["ja.counter.nin.1"]);
        assert_eq!(count(2, Counter::Participants, Lang::Ja), ["ja.counter.nin.2"]);
        assert_eq!(count(11, Counter::Participants, Lang::Ja), ["num.10", "num.1", "ja.counter.nin.bare"]);
        assert_eq!(count(14, Counter::Participants, Lang::Ja), ["num.10", "ja.counter.nin.4"]);
    }

    #[test]
    fn japanese_position_is_number_then_banme() {
        assert_eq!(count(3, Counter::Position, Lang::Ja), ["num.3", "ja.counter.banme.bare"]);
        assert_eq!(count(12, Counter::Number, Lang::Ja), ["num.10", "num.2", "ja.counter.ban.bare"]);
    }

    #[test]
    fn japanese_dates_use_the_irregular_day_pieces() {
        assert_eq!(date(2026, 4, 1, Lang::Ja)[3..], ["month.4", "day.1"]); // しがつ ついたち
        assert_eq!(date(2026, 7, 20, Lang::Ja)[3..], ["month.7", "day.20"]); // しちがつ はつか
        assert_eq!(
            date(2026, 11, 22, Lang::Ja),
            ["num.2000", "num.20", "ja.counter.nen.6", "month.11", "day.22"]
        );
        assert_eq!(date(2024, 9, 14, Lang::Ja)[2..], ["ja.counter.nen.4", "month.9", "day.14"]);
    }

    #[test]
    fn japanese_time_is_gozen_gogo_then_ji_then_fun() {
        assert_eq!(time(4, 0, Lang::Ja), ["time.am", "ja.counter.ji.4"]); // 午前よじ
        assert_eq!(time(15, 15, Lang::Ja), ["time.pm", "ja.counter.ji.3", "num.10", "ja.counter.fun.5"]);
        assert_eq!(time(12, 0, Lang::Ja), ["time.pm", "ja.counter.ji.0"]); // 午後れいじ
        assert_eq!(time(21, 6, Lang::Ja), ["time.pm", "ja.counter.ji.9", "ja.counter.fun.6"]);
    }

    // Tests for English readings.

    #[test]
    fn english_reads_tens_and_ones_and_hundreds() {
        assert_eq!(number(21, Lang::En), ["num.20", "num.1"]);
        assert_eq!(number(100, Lang::En), ["num.1", "num.hundred"]);
        assert_eq!(number(15, Lang::En), ["num.15"]);
        assert_eq!(
            number(1_234_567, Lang::En),
            [
                "num.1",
                "num.million",
                "num.2",
                "num.hundred",
                "num.30",
                "num.4",
                "num.thousand",
                "num.5",
                "num.hundred",
                "num.60",
                "num.7"
            ]
        );
        assert_eq!(number(0, Lang::En), ["num.0"]);
    }

    #[test]
    fn english_dates_are_month_ordinal_year() {
        assert_eq!(date(2026, 11, 22, Lang::En), ["month.11", "day.22", "num.20", "num.20", "num.6"]);
        assert_eq!(date(2000, 1, 1, Lang::En), ["month.1", "day.1", "num.2", "num.thousand"]);
        assert_eq!(date(1905, 3, 31, Lang::En), ["month.3", "day.31", "num.19", "num.oh", "num.5"]);
        assert_eq!(date(1900, 3, 3, Lang::En)[2..], ["num.19", "num.hundred"]);
    }

    #[test]
    fn english_time_is_hour_minute_then_am_pm() {
        assert_eq!(time(15, 15, Lang::En), ["num.3", "num.15", "time.pm"]);
        assert_eq!(time(15, 0, Lang::En), ["num.3", "time.oclock", "time.pm"]);
        assert_eq!(time(9, 5, Lang::En), ["num.9", "num.oh", "num.5", "time.am"]);
        assert_eq!(time(0, 0, Lang::En), ["num.12", "time.oclock", "time.am"]);
    }

    #[test]
    fn english_counts_use_singular_for_one() {
        assert_eq!(count(1, Counter::Messages, Lang::En), ["num.1", "word.message"]);
        assert_eq!(count(3, Counter::Minutes, Lang::En), ["num.3", "word.minutes"]);
        assert_eq!(count(3, Counter::Position, Lang::En), ["word.number", "num.3"]);
    }

    // Tests for edges and sentences.

    #[test]
    fn impossible_dates_and_times_say_nothing() {
        for lang in LANGS {
            assert!(date(2025, 2, 29, lang).is_empty());
            assert!(date(2026, 13, 1, lang).is_empty());
            assert!(date(2026, 0, 1, lang).is_empty());
            assert!(date(2026, 4, 31, lang).is_empty());
            assert!(date(0, 1, 1, lang).is_empty());
            assert!(date(-5, 1, 1, lang).is_empty());
            assert!(weekday(2026, 2, 30, lang).is_empty());
            assert!(time(24, 0, lang).is_empty());
            assert!(time(0, 60, lang).is_empty());
        }
    }

    #[test]
    fn weekday_matches_known_dates() {
        assert_eq!(weekday(2026, 11, 22, Lang::En), ["weekday.0"]); // a Sunday
        assert_eq!(weekday(2000, 1, 1, Lang::Ja), ["weekday.6"]); // a Saturday
        assert_eq!(weekday(2024, 2, 29, Lang::En), ["weekday.4"]); // a Thursday
    }

    #[test]
    fn message_sentences_follow_each_language_order() {
        assert_eq!(
            sentence_you_have_n_messages(3, Lang::Ja),
            ["vm.new_messages", "ja.counter.ken.3", "vm.there_are"]
        );
        assert_eq!(sentence_you_have_n_messages(1, Lang::En), ["vm.you_have", "num.1", "vm.new_message"]);
        assert_eq!(sentence_you_have_n_messages(0, Lang::En), ["vm.no_new_messages"]);
        assert_eq!(sentence_you_have_messages(0, 0, Lang::Ja), ["vm.no_messages"]);
        assert_eq!(sentence_you_have_messages(0, 2, Lang::En), ["vm.you_have", "num.2", "vm.saved_messages"]);
    }

    #[test]
    fn menu_options_put_the_key_where_each_language_says_it() {
        assert_eq!(
            sentence_menu_option('7', MenuAction::Delete, Lang::Ja),
            ["menu.to_delete", "num.7", "menu.press"]
        );
        assert_eq!(
            sentence_menu_option('#', MenuAction::Exit, Lang::En),
            ["menu.to_exit", "menu.press", "key.pound"]
        );
        assert!(sentence_menu_option('x', MenuAction::Exit, Lang::En).is_empty());
    }

    #[test]
    fn digits_skip_what_is_not_a_key() {
        assert_eq!(digits("2-0*#a", Lang::Ja), ["num.2", "num.0", "key.star", "key.pound"]);
    }
}
