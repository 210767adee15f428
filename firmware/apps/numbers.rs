//! Phone numbers for a Japanese office: normalisation, outbound routing, block and restriction
//! lists, and their CSV import. Sans-IO: nothing here reads a socket, a file or the clock.
//!
//! Layers, bottom up (formats and decisions in `docs/numbers.md`):
//! - this file: [`normalise`] turns what a person dialled or typed into a [`Dialled`] in national
//!   form (`0…`), with the per-call `184`/`186` prefix split off and the number classified.
//! - `route`: [`route_outbound`] picks a trunk by longest prefix, after the "no external calls"
//!   bar and the restriction list; emergency numbers bypass both.
//! - `list`: [`NumberList`], the block list (着信拒否) and the restriction list (発信規制).
//! - `csv`: [`import_csv`], UTF-8 / UTF-16 / Shift_JIS CSV into list entries, bad lines reported.
//!
//! The public interface is: [`normalise`], [`normalise_with`], [`Dialled`], [`NumberKind`],
//! [`Presentation`], [`NumberPlan`], [`NumberError`], the route types, the list types and the
//! CSV import types re-exported below.

mod csv;
mod list;
mod route;

/// The CSV cell and encoding rules, shared with the phonebook import (`apps::phonebook`).
pub(crate) use csv::{
    decode as decode_csv, split_cells as split_csv_cells, split_cells_with as split_csv_cells_with,
};
pub use csv::{
    export_csv, import_csv, CsvEncoding, Import, ImportError, LineError, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS,
    MAX_REPORTED_LINE_ERRORS,
};
pub use list::{
    EntryError, InboundDecision, ListEntry, ListFull, NumberList, Pattern, MAX_LIST_ENTRIES, MAX_NOTE_CHARS,
};
pub use route::{
    route_outbound, CallerPolicy, Refusal, RefusalReason, Route, RouteDecision, RouteError, Routes,
    MAX_ROUTES, MAX_TRUNK_NAME,
};

use std::fmt;

/// Longest input accepted, in characters. A human-typed form such as `+81 (0)3-1234-5678` is
/// about 20; 64 leaves room for generous spacing and bounds the work on hostile input (a SIP
/// user part or a CSV cell).
pub const MAX_DIALLED_CHARS: usize = 64;

/// Most digits in a number after separators are removed: `010` + the 15 digits E.164 allows
/// is 18; two more for a `184`/`186` prefix in front.
pub const MAX_NUMBER_DIGITS: usize = 20;

/// Longest extension a [`NumberPlan`] may configure. Kept below the 9 digits of the shortest
/// national significant number so an extension can never be mistaken for `81…` international.
pub const MAX_EXTENSION_DIGITS: u8 = 8;

/// Emergency numbers in Japan: police, coast guard, fire and ambulance. They always go out.
pub const EMERGENCY_NUMBERS: [&str; 3] = ["110", "118", "119"];

/// Per-call caller-ID choice dialled as a prefix: `184` withholds, `186` presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presentation {
    /// `184`: withhold the caller ID for this call (非通知).
    Withhold,
    /// `186`: present the caller ID for this call (通知).
    Present,
}

/// What kind of number a [`Dialled`] is; decided from the national form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NumberKind {
    /// `110`, `118`, `119`.
    Emergency,
    /// `070`, `080`, `090` + 8 digits.
    Mobile,
    /// `050` + 8 digits.
    Ip,
    /// `0120` (10 digits) or `0800` (11 digits).
    FreeDial,
    /// Other non-geographic national numbers: `0570` Navi Dial, `0180`, `0990` premium (10
    /// digits), `020` and `060` (11 digits). Listed apart so routes and lists can bar them.
    NonGeographic,
    /// A 10-digit geographic number `0[1-9]…`.
    Landline,
    /// `010` + country code + number.
    International,
    /// An internal extension, per [`NumberPlan`].
    Extension,
}

/// The local dial plan [`normalise_with`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPlan {
    /// Fewest digits of an extension.
    pub extension_min_digits: u8,
    /// Most digits of an extension; capped at [`MAX_EXTENSION_DIGITS`].
    pub extension_max_digits: u8,
    /// An outside-line access code (外線発信番号, often `0`) dialled before an external number;
    /// `None` when phones dial external numbers directly.
    pub outside_line_prefix: Option<String>,
}

impl Default for NumberPlan {
    fn default() -> Self {
        Self { extension_min_digits: 3, extension_max_digits: 4, outside_line_prefix: None }
    }
}

impl NumberPlan {
    fn is_extension_length(&self, digits: usize) -> bool {
        let max = self.extension_max_digits.min(MAX_EXTENSION_DIGITS);
        (usize::from(self.extension_min_digits)..=usize::from(max)).contains(&digits)
    }
}

/// A dialled number, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dialled {
    /// National form: ASCII digits, `0…` for national numbers, `010…` for international ones,
    /// the bare digits for extensions and emergency numbers. Never the `184`/`186` prefix.
    pub number: String,
    /// The per-call prefix, if one was dialled.
    pub presentation: Option<Presentation>,
    /// What the number is.
    pub kind: NumberKind,
}

impl Dialled {
    /// True for `110`, `118`, `119`.
    pub fn is_emergency(&self) -> bool {
        self.kind == NumberKind::Emergency
    }

    /// The E.164 form (`+81…`, `+44…`) for a trunk that wants it; `None` for emergency numbers
    /// and extensions, which have none.
    pub fn to_e164(&self) -> Option<String> {
        match self.kind {
            NumberKind::Emergency | NumberKind::Extension => None,
            NumberKind::International => self.number.get(3..).map(|rest| format!("+{rest}")),
            _ => self.number.get(1..).map(|rest| format!("+81{rest}")),
        }
    }
}

/// Why [`normalise`] refused an input. Each variant names the culprit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumberError {
    /// Nothing left once separators are removed.
    Empty,
    /// More than [`MAX_DIALLED_CHARS`] characters or [`MAX_NUMBER_DIGITS`] digits.
    TooLong,
    /// A character that is not a digit, a separator or a leading `+` (position in characters).
    InvalidCharacter {
        /// The offending character.
        ch: char,
        /// Its index in characters, from 0.
        position: usize,
    },
    /// A national number with the wrong digit count for its prefix.
    WrongLength {
        /// Digits the prefix calls for.
        expected: usize,
        /// Digits given.
        got: usize,
    },
    /// `00XY` carrier selection, or `010` / `+` with too few or too many digits.
    UnsupportedPrefix,
    /// Neither an extension, an emergency number, nor a national or international number; a
    /// national number that lost its leading `0` ends here.
    Unrecognised,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no digits"),
            Self::TooLong => {
                write!(f, "too long (max {MAX_DIALLED_CHARS} characters, {MAX_NUMBER_DIGITS} digits)")
            }
            Self::InvalidCharacter { ch, position } => {
                write!(f, "invalid character {ch:?} at position {}", position + 1)
            }
            Self::WrongLength { expected, got } => {
                write!(f, "wrong length: {got} digits, this prefix needs {expected}")
            }
            Self::UnsupportedPrefix => write!(f, "unsupported prefix (carrier code or bad 010/+)"),
            Self::Unrecognised => write!(f, "not an extension, emergency, national or international number"),
        }
    }
}

impl std::error::Error for NumberError {}

/// Normalises with the default [`NumberPlan`] (3- and 4-digit extensions, no access code).
pub fn normalise(dialled: &str) -> Result<Dialled, NumberError> {
    normalise_with(dialled, &NumberPlan::default())
}

/// Normalises `dialled` under `plan`: removes separators (ASCII and full-width spaces, hyphens,
/// dashes, `ー`, parentheses), folds full-width digits and `＋`, strips an outside-line access
/// code and a `184`/`186` prefix, converts `+81…`, `81…` and `01081…` to the national `0…`
/// form and `+CC…` to `010CC…`, then classifies.
pub fn normalise_with(dialled: &str, plan: &NumberPlan) -> Result<Dialled, NumberError> {
    let cleaned = clean(dialled)?;
    if let Some(access) = plan.outside_line_prefix.as_deref().filter(|a| !a.is_empty()) {
        if let Some(rest) = cleaned.digits.strip_prefix(access) {
            // The access code only counts when what follows is an external number; otherwise
            // `0312345678` dialled without it would lose its leading zero.
            let stripped = Cleaned { plus: false, plus_after_prefix: false, digits: rest.to_owned() };
            if !cleaned.plus && !cleaned.plus_after_prefix {
                if let Ok(d) = parse(&stripped, plan) {
                    if d.kind != NumberKind::Extension {
                        return Ok(d);
                    }
                }
            }
        }
    }
    parse(&cleaned, plan)
}

/// Input reduced to ASCII digits and whether it started with `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cleaned {
    pub(crate) plus: bool,
    /// `184+81…`: the `+` came right after a presentation prefix.
    pub(crate) plus_after_prefix: bool,
    pub(crate) digits: String,
}

/// Separators people and spreadsheets put in numbers: ASCII and full-width space, no-break
/// space, tab, the hyphen family (ASCII, Unicode hyphens and dashes, minus, full-width hyphen,
/// katakana long vowel mark `ー` and its half-width form, often typed for a dash), parentheses,
/// and dots (`03.1234.5678`).
fn is_separator(ch: char) -> bool {
    matches!(
        ch,
        ' ' | '\u{3000}' | '\u{00A0}' | '\t' | '-' | '\u{2010}'
            ..='\u{2015}'
                | '\u{2212}'
                | '\u{FF0D}'
                | '\u{30FC}'
                | '\u{FF70}'
                | '('
                | ')'
                | '\u{FF08}'
                | '\u{FF09}'
                | '.'
                | '\u{FF0E}'
    )
}

/// Folds an ASCII or full-width digit to its ASCII byte.
fn ascii_digit(ch: char) -> Option<char> {
    match ch {
        '0'..='9' => Some(ch),
        '\u{FF10}'..='\u{FF19}' => char::from_u32(u32::from(ch) - 0xFF10 + u32::from('0')),
        _ => None,
    }
}

pub(crate) fn clean(input: &str) -> Result<Cleaned, NumberError> {
    if input.chars().nth(MAX_DIALLED_CHARS).is_some() {
        return Err(NumberError::TooLong);
    }
    let mut out = Cleaned { plus: false, plus_after_prefix: false, digits: String::new() };
    let trimmed = input.trim_start();
    let lead_chars = input.chars().count() - trimmed.chars().count();
    for (index, ch) in trimmed.trim_end().chars().enumerate() {
        let position = lead_chars + index;
        if let Some(d) = ascii_digit(ch) {
            if out.digits.len() >= MAX_NUMBER_DIGITS {
                return Err(NumberError::TooLong);
            }
            out.digits.push(d);
        } else if (ch == '+' || ch == '\u{FF0B}') && !out.plus && !out.plus_after_prefix {
            match out.digits.as_str() {
                "" => out.plus = true,
                "184" | "186" => out.plus_after_prefix = true,
                _ => return Err(NumberError::InvalidCharacter { ch, position }),
            }
        } else if !is_separator(ch) {
            return Err(NumberError::InvalidCharacter { ch, position });
        }
    }
    if out.digits.is_empty() {
        return Err(NumberError::Empty);
    }
    Ok(out)
}

/// Japan's country code.
const JAPAN: &str = "81";
/// International call prefix dialled from Japan.
const INTERNATIONAL_PREFIX: &str = "010";
/// National significant numbers in Japan have 9 or 10 digits (10 or 11 with the leading `0`).
const NSN_DIGITS: std::ops::RangeInclusive<usize> = 9..=10;
/// Country code plus subscriber number after `010`/`+`: the shortest real ones have 7 digits
/// (small island states), E.164 allows at most 15.
const INTERNATIONAL_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// National prefixes, their kind and the total digit count (with the leading `0`). Longer
/// prefixes come first so `0120` is not taken for a landline.
const NATIONAL_PREFIXES: [(&str, NumberKind, usize); 11] = [
    ("0120", NumberKind::FreeDial, 10),
    ("0800", NumberKind::FreeDial, 11),
    ("0570", NumberKind::NonGeographic, 10),
    ("0180", NumberKind::NonGeographic, 10),
    ("0990", NumberKind::NonGeographic, 10),
    ("050", NumberKind::Ip, 11),
    ("070", NumberKind::Mobile, 11),
    ("080", NumberKind::Mobile, 11),
    ("090", NumberKind::Mobile, 11),
    ("020", NumberKind::NonGeographic, 11),
    ("060", NumberKind::NonGeographic, 11),
];
/// Digits of a geographic number with its leading `0`.
const LANDLINE_DIGITS: usize = 10;

/// Converts international digits (after `+` or `010`) to national form.
fn from_international(digits: &str) -> Result<String, NumberError> {
    if let Some(national) = digits.strip_prefix(JAPAN) {
        // `+81 (0)3…` writes the trunk zero too; keep one.
        let nsn = national.strip_prefix('0').unwrap_or(national);
        if !NSN_DIGITS.contains(&nsn.len()) {
            return Err(NumberError::UnsupportedPrefix);
        }
        return Ok(format!("0{nsn}"));
    }
    if !INTERNATIONAL_DIGITS.contains(&digits.len()) {
        return Err(NumberError::UnsupportedPrefix);
    }
    Ok(format!("{INTERNATIONAL_PREFIX}{digits}"))
}

/// True when `rest` can follow a `184`/`186` prefix: an external number, not more extension
/// digits (`1845` stays an extension).
fn is_external_start(rest: &Cleaned) -> bool {
    rest.plus || rest.digits.starts_with('0') || EMERGENCY_NUMBERS.contains(&rest.digits.as_str())
}

fn parse(cleaned: &Cleaned, plan: &NumberPlan) -> Result<Dialled, NumberError> {
    let mut presentation = None;
    let mut rest = cleaned.clone();
    if !cleaned.plus {
        // A `+` after 184/186 already proved the prefix; otherwise the digits after it decide.
        for (prefix, p) in [("184", Presentation::Withhold), ("186", Presentation::Present)] {
            if let Some(after) = cleaned.digits.strip_prefix(prefix) {
                let candidate = Cleaned {
                    plus: cleaned.plus_after_prefix,
                    plus_after_prefix: false,
                    digits: after.to_owned(),
                };
                if cleaned.plus_after_prefix || is_external_start(&candidate) {
                    presentation = Some(p);
                    rest = candidate;
                }
            }
        }
    }
    let (number, kind) = classify(&rest, plan)?;
    Ok(Dialled { number, presentation, kind })
}

fn classify(c: &Cleaned, plan: &NumberPlan) -> Result<(String, NumberKind), NumberError> {
    let digits = c.digits.as_str();
    let national = if c.plus {
        from_international(digits)?
    } else if let Some(intl) = digits.strip_prefix(INTERNATIONAL_PREFIX) {
        from_international(intl)?
    } else if EMERGENCY_NUMBERS.contains(&digits) {
        return Ok((digits.to_owned(), NumberKind::Emergency));
    } else if digits.starts_with('0') {
        digits.to_owned()
    } else if plan.is_extension_length(digits.len()) {
        return Ok((digits.to_owned(), NumberKind::Extension));
    } else if let Some(nsn) =
        digits.strip_prefix(JAPAN).filter(|nsn| NSN_DIGITS.contains(&nsn.len()) && !nsn.starts_with('0'))
    {
        // `81312345678`: international form written without the `+`.
        format!("0{nsn}")
    } else {
        return Err(NumberError::Unrecognised);
    };
    if national.starts_with(INTERNATIONAL_PREFIX) {
        return Ok((national, NumberKind::International));
    }
    if national.starts_with("00") {
        return Err(NumberError::UnsupportedPrefix);
    }
    let (kind, expected) = NATIONAL_PREFIXES
        .iter()
        .find(|(prefix, _, _)| national.starts_with(prefix))
        .map_or((NumberKind::Landline, LANDLINE_DIGITS), |&(_, k, n)| (k, n));
    if national.len() != expected {
        return Err(NumberError::WrongLength { expected, got: national.len() });
    }
    Ok((national, kind))
}

/// A seeded SplitMix64 for the randomized no-panic tests; no crate needed for that.
#[cfg(test)]
pub(crate) struct TestRng(pub(crate) u64);

#[cfg(test)]
impl TestRng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        // n is small in tests; the modulo bias does not matter for fuzzing.
        usize::try_from(self.next_u64() % n.max(1) as u64).unwrap_or(0)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Dialled {
        match normalise(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should normalise: {e}"),
        }
    }

    fn national(s: &str) -> (String, NumberKind) {
        let d = ok(s);
        (d.number, d.kind)
    }

    // Tests for separators and character folding.

    #[test]
    fn hyphens_spaces_and_parentheses_are_removed() {
        assert_eq!(national("03-1234-5678").0, "0312345678");
        assert_eq!(national("(03) 1234 5678").0, "0312345678");
        assert_eq!(national(" 03.1234.5678 ").0, "0312345678");
    }

    #[test]
    fn full_width_digits_and_hyphens_are_folded() {
        assert_eq!(national("０３－１２３４－５６７８"), ("0312345678".into(), NumberKind::Landline));
        assert_eq!(national("０９０ー１２３４ー５６７８").0, "09012345678");
        assert_eq!(national("（０３）１２３４\u{3000}５６７８").0, "0312345678");
        assert_eq!(national("＋８１　３　１２３４　５６７８").0, "0312345678");
    }

    #[test]
    fn letters_and_stray_plus_signs_are_rejected_with_their_position() {
        assert_eq!(normalise("03-12a4-5678"), Err(NumberError::InvalidCharacter { ch: 'a', position: 5 }));
        assert!(matches!(normalise("03+12345678"), Err(NumberError::InvalidCharacter { ch: '+', .. })));
        assert!(matches!(normalise("*31#"), Err(NumberError::InvalidCharacter { ch: '*', .. })));
    }

    #[test]
    fn errors_name_the_culprit_for_the_operator() {
        let e = normalise("03-12a4-5678").map(|_| ()).unwrap_err().to_string();
        assert_eq!(e, "invalid character 'a' at position 6");
        let e = NumberError::WrongLength { expected: 11, got: 10 }.to_string();
        assert!(e.contains("10 digits") && e.contains("11"));
    }

    #[test]
    fn empty_and_separator_only_inputs_are_empty() {
        assert_eq!(normalise(""), Err(NumberError::Empty));
        assert_eq!(normalise(" - ( ) "), Err(NumberError::Empty));
        assert_eq!(normalise("+"), Err(NumberError::Empty));
    }

    #[test]
    fn overlong_inputs_are_refused_before_any_work() {
        assert_eq!(normalise(&"0".repeat(21)), Err(NumberError::TooLong));
        assert_eq!(normalise(&" ".repeat(65)), Err(NumberError::TooLong));
    }

    // Tests for international and national forms.

    #[test]
    fn plus_81_becomes_the_national_zero_form() {
        assert_eq!(national("+81-3-1234-5678").0, "0312345678");
        assert_eq!(national("+81 90 1234 5678"), ("09012345678".into(), NumberKind::Mobile));
    }

    #[test]
    fn plus_81_with_the_trunk_zero_in_parentheses_keeps_one_zero() {
        assert_eq!(national("+81 (0)3-1234-5678").0, "0312345678");
    }

    #[test]
    fn bare_81_with_a_national_significant_number_is_international_form() {
        assert_eq!(national("81312345678").0, "0312345678");
        assert_eq!(national("819012345678").0, "09012345678");
    }

    #[test]
    fn dialling_010_81_is_a_national_call() {
        assert_eq!(national("010-81-3-1234-5678").0, "0312345678");
    }

    #[test]
    fn foreign_numbers_get_the_010_prefix() {
        assert_eq!(national("+44 20 7946 0958"), ("010442079460958".into(), NumberKind::International));
        assert_eq!(national("010 1 212 555 0100"), ("01012125550100".into(), NumberKind::International));
        assert_eq!(normalise("+1"), Err(NumberError::UnsupportedPrefix));
    }

    #[test]
    fn e164_form_round_trips_national_and_international_numbers() {
        assert_eq!(ok("03-1234-5678").to_e164().as_deref(), Some("+81312345678"));
        assert_eq!(ok("+44 20 7946 0958").to_e164().as_deref(), Some("+442079460958"));
        assert_eq!(ok("119").to_e164(), None);
        assert_eq!(ok("201").to_e164(), None);
        let back = ok(&ok("090-1234-5678").to_e164().unwrap_or_default());
        assert_eq!(back.number, "09012345678");
    }

    // Tests for classification.

    #[test]
    fn emergency_numbers_are_emergency_even_when_extensions_have_three_digits() {
        for n in EMERGENCY_NUMBERS {
            assert_eq!(national(n), (n.to_owned(), NumberKind::Emergency));
        }
        assert!(ok("１１９").is_emergency());
    }

    #[test]
    fn mobile_ip_free_dial_and_landline_prefixes_are_classified() {
        assert_eq!(national("070-1234-5678").1, NumberKind::Mobile);
        assert_eq!(national("080-1234-5678").1, NumberKind::Mobile);
        assert_eq!(national("090-1234-5678").1, NumberKind::Mobile);
        assert_eq!(national("050-1234-5678").1, NumberKind::Ip);
        assert_eq!(national("0120-123-456").1, NumberKind::FreeDial);
        assert_eq!(national("0800-123-4567").1, NumberKind::FreeDial);
        assert_eq!(national("0570-123-456").1, NumberKind::NonGeographic);
        assert_eq!(national("06-1234-5678").1, NumberKind::Landline);
        assert_eq!(national("0466-12-3456").1, NumberKind::Landline);
    }

    #[test]
    fn national_numbers_with_the_wrong_length_are_refused() {
        assert_eq!(normalise("090-1234-567"), Err(NumberError::WrongLength { expected: 11, got: 10 }));
        assert_eq!(normalise("03-1234-56789"), Err(NumberError::WrongLength { expected: 10, got: 11 }));
        assert_eq!(normalise("0120-1234-567"), Err(NumberError::WrongLength { expected: 10, got: 11 }));
    }

    #[test]
    fn carrier_selection_codes_are_unsupported() {
        assert_eq!(normalise("0033-03-1234-5678"), Err(NumberError::UnsupportedPrefix));
    }

    #[test]
    fn extensions_follow_the_plan_lengths() {
        assert_eq!(national("201"), ("201".into(), NumberKind::Extension));
        assert_eq!(national("2001").1, NumberKind::Extension);
        assert_eq!(normalise("20001"), Err(NumberError::Unrecognised));
        let plan = NumberPlan { extension_min_digits: 5, extension_max_digits: 6, outside_line_prefix: None };
        assert_eq!(normalise_with("20001", &plan).map(|d| d.kind), Ok(NumberKind::Extension));
        assert_eq!(normalise_with("201", &plan), Err(NumberError::Unrecognised));
    }

    #[test]
    fn a_national_number_that_lost_its_zero_is_unrecognised() {
        assert_eq!(normalise("312345678"), Err(NumberError::Unrecognised));
    }

    // Tests for 184 / 186.

    #[test]
    fn prefix_184_withholds_and_is_returned_separately() {
        let d = ok("184-03-1234-5678");
        assert_eq!(d.number, "0312345678");
        assert_eq!(d.presentation, Some(Presentation::Withhold));
        assert_eq!(d.kind, NumberKind::Landline);
    }

    #[test]
    fn prefix_186_presents_and_works_with_plus_numbers() {
        let d = ok("186 +81 90 1234 5678");
        assert_eq!(d.number, "09012345678");
        assert_eq!(d.presentation, Some(Presentation::Present));
    }

    #[test]
    fn prefix_184_before_an_emergency_number_is_kept() {
        let d = ok("184110");
        assert_eq!((d.number.as_str(), d.kind), ("110", NumberKind::Emergency));
        assert_eq!(d.presentation, Some(Presentation::Withhold));
    }

    #[test]
    fn extension_digits_starting_with_184_stay_an_extension() {
        let d = ok("1845");
        assert_eq!((d.number.as_str(), d.kind), ("1845", NumberKind::Extension));
        assert_eq!(d.presentation, None);
        assert_eq!(ok("184").kind, NumberKind::Extension);
    }

    // Tests for the outside-line access code.

    #[test]
    fn outside_line_prefix_is_stripped_only_before_an_external_number() {
        let plan = NumberPlan { outside_line_prefix: Some("0".into()), ..NumberPlan::default() };
        let n = |s| normalise_with(s, &plan).map(|d| (d.number, d.presentation));
        assert_eq!(n("0-03-1234-5678"), Ok(("0312345678".into(), None)));
        assert_eq!(n("03-1234-5678"), Ok(("0312345678".into(), None)));
        assert_eq!(n("0110"), Ok(("110".into(), None)));
        assert_eq!(n("0184-090-1234-5678"), Ok(("09012345678".into(), Some(Presentation::Withhold))));
        assert_eq!(n("0120-123-456"), Ok(("0120123456".into(), None)));
        assert_eq!(n("201"), Ok(("201".into(), None)));
    }

    // Randomized robustness.

    #[test]
    fn normalise_never_panics_on_random_input() {
        const ALPHABET: [&str; 24] = [
            "0",
            "1",
            "8",
            "4",
            "6",
            "9",
            "+",
            "-",
            " ",
            "(",
            ")",
            "０",
            "９",
            "－",
            "ー",
            "＋",
            "　",
            "*",
            "#",
            "a",
            "あ",
            "\u{10FFFF}",
            "010",
            "81",
        ];
        let mut rng = TestRng(0x4841_4b4f_4445_4e00);
        let plans = [
            NumberPlan::default(),
            NumberPlan {
                extension_min_digits: 0,
                extension_max_digits: 255,
                outside_line_prefix: Some("0".into()),
            },
        ];
        for _ in 0..20_000 {
            let len = rng.below(30);
            let s: String = (0..len).filter_map(|_| rng.pick(&ALPHABET).copied()).collect();
            for plan in &plans {
                if let Ok(d) = normalise_with(&s, plan) {
                    assert!(d.number.bytes().all(|b| b.is_ascii_digit()), "{s:?} -> {d:?}");
                    assert!(d.number.len() <= MAX_NUMBER_DIGITS);
                    // Normalising the national form again is a fixed point.
                    if d.kind != NumberKind::Extension {
                        let again = normalise_with(&d.number, &NumberPlan::default());
                        assert_eq!(again.map(|a| a.number), Ok(d.number.clone()), "{s:?}");
                    }
                }
            }
        }
    }
}
