//! The phonebook (電話帳, issue 7): entries, their validation, search, CSV import and export,
//! and the caller-name index the engine reads when a phone rings.
//!
//! Sans-IO: no disk, no clock. `store::phonebook` keeps the entries, `web::phonebook` serves
//! them, and the engine holds one [`CallerIndex`] replaced whole when the book changes.
//!
//! An entry is shared (every web user sees it) or personal (owned by one web user, seen only
//! by that user). It has a name, a kana reading, a company, a note and up to
//! [`MAX_NUMBERS`] numbers, each with a label (`会社`, `携帯`, …).
//!
//! CSV (see `docs/web.md`): a header row naming the columns (Japanese or English, any order):
//! `名前`/`name`, `カナ`/`kana`, `会社`/`company`, `備考`/`note`, and for each number
//! `電話番号N`/`numberN` with `種別N`/`labelN` (N = 1..[`MAX_NUMBERS`]; a lone `電話番号` or
//! `number` is number 1). Cell syntax and encoding detection are the block lists' (see
//! `apps::numbers` CSV import).

use super::numbers;
use super::numbers::{decode_csv as decode, split_csv_cells as split_cells, CsvEncoding};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Most shared entries: the cloud phonebook of seed 004 §2.17 shows up to 20,000.
pub const MAX_SHARED_ENTRIES: usize = 20_000;

/// Most personal entries per user: seed 004 §2.17 (個別電話帳, up to 100 entries).
pub const MAX_PERSONAL_ENTRIES: usize = 100;

/// Numbers per entry: office, mobile, home, fax and one more cover a contact; more would make
/// the CSV header and the caller index grow for no use.
pub const MAX_NUMBERS: usize = 5;

/// Longest name, kana reading and company, in characters: a phone display shows ~16, and a
/// company's full legal name fits in 64.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest note, in characters: the block lists' note bound (`numbers::MAX_NOTE_CHARS`).
pub const MAX_NOTE_CHARS: usize = numbers::MAX_NOTE_CHARS;

/// Longest number label, in characters (`会社携帯`, `Main office`).
pub const MAX_LABEL_CHARS: usize = 16;

/// Longest number as typed, in characters: separators included, an international number is
/// well under 32.
pub const MAX_NUMBER_CHARS: usize = 32;

/// Largest CSV import: 20,000 entries of ~100 bytes fit in 2 MiB.
pub const MAX_IMPORT_BYTES: usize = 2 * 1024 * 1024;

/// Most data rows in one import: a full shared book.
pub const MAX_IMPORT_ROWS: usize = MAX_SHARED_ENTRIES;

/// Row errors kept in detail; the rest are only counted, so a file of garbage does not make a
/// report as large as itself.
pub const MAX_REPORTED_ROW_ERRORS: usize = numbers::MAX_REPORTED_LINE_ERRORS;

/// Longest search text, in characters: a name or a number, not a document.
pub const MAX_QUERY_CHARS: usize = 64;

/// One number of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Number {
    /// What the number is (`会社`, `携帯`); may be empty.
    #[serde(default)]
    pub label: String,
    /// The number as typed (separators kept for display).
    #[serde(default)]
    pub number: String,
}

/// What a user writes for an entry: the fields without id and owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryFields {
    /// Name (名前), required.
    #[serde(default)]
    pub name: String,
    /// Reading in kana (カナ).
    #[serde(default)]
    pub kana: String,
    /// Company (会社).
    #[serde(default)]
    pub company: String,
    /// Note (備考).
    #[serde(default)]
    pub note: String,
    /// Numbers, at least one.
    #[serde(default)]
    pub numbers: Vec<Number>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique id, assigned by the store.
    pub id: u64,
    /// The web user owning a personal entry; `None` for a shared one.
    pub owner: Option<String>,
    /// The entry's fields, valid by [`validate`].
    #[serde(flatten)]
    pub fields: EntryFields,
}

/// A refused field: its name (`name`, `numbers.0.number`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as the JSON body or the CSV header names it.
    pub field: String,
    /// What is wrong, for the user.
    pub message: String,
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

fn check_len(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        errors.push(field_error(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        errors.push(field_error(field, "no control characters"));
    }
}

/// Trims every field, drops empty number rows, and checks lengths and numbers. Returns the
/// cleaned fields or every problem found.
pub fn validate(fields: &EntryFields) -> Result<EntryFields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let clean = EntryFields {
        name: fields.name.trim().to_string(),
        kana: fields.kana.trim().to_string(),
        company: fields.company.trim().to_string(),
        note: fields.note.trim().to_string(),
        numbers: fields
            .numbers
            .iter()
            .map(|n| Number { label: n.label.trim().to_string(), number: n.number.trim().to_string() })
            .filter(|n| !n.label.is_empty() || !n.number.is_empty())
            .collect(),
    };
    if clean.name.is_empty() {
        errors.push(field_error("name", "enter a name"));
    }
    check_len(&mut errors, "name", &clean.name, MAX_NAME_CHARS);
    check_len(&mut errors, "kana", &clean.kana, MAX_NAME_CHARS);
    check_len(&mut errors, "company", &clean.company, MAX_NAME_CHARS);
    check_len(&mut errors, "note", &clean.note, MAX_NOTE_CHARS);
    if clean.numbers.is_empty() {
        errors.push(field_error("numbers", "enter at least one number"));
    }
    if clean.numbers.len() > MAX_NUMBERS {
        errors.push(field_error("numbers", format!("at most {MAX_NUMBERS} numbers")));
    }
    for (i, n) in clean.numbers.iter().enumerate() {
        check_len(&mut errors, &format!("numbers.{i}.label"), &n.label, MAX_LABEL_CHARS);
        let field = format!("numbers.{i}.number");
        if n.number.chars().count() > MAX_NUMBER_CHARS {
            errors.push(field_error(field, format!("at most {MAX_NUMBER_CHARS} characters")));
        } else if normalised(&n.number).is_none() {
            errors.push(field_error(field, "not a phone number"));
        }
    }
    if errors.is_empty() {
        Ok(clean)
    } else {
        Err(errors)
    }
}

/// The national form the engine compares (as `apps::numbers` normalises a dialled number).
fn normalised(number: &str) -> Option<String> {
    numbers::normalise(number).ok().map(|d| d.number)
}

/// Folds text for search: case, full-width ASCII and hiragana to katakana, so `やまだ`
/// finds `ヤマダ` and `ＡＢＣ` finds `abc`. The CRM's searches use it too.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            // Full-width ASCII block to ASCII.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            // Hiragana to katakana: the blocks are 0x60 apart.
            '\u{3041}'..='\u{3096}' => char::from_u32(u32::from(c) + 0x60).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn digits(text: &str) -> String {
    fold(text).chars().filter(char::is_ascii_digit).collect()
}

/// A search over entries: name, kana, company or note contain the text, or a number's digits
/// contain the query's digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    text: String,
    digits: String,
}

impl Search {
    /// A search for `query` (at most [`MAX_QUERY_CHARS`]; longer is cut).
    pub fn new(query: &str) -> Search {
        let query: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
        let text = fold(&query);
        // Only a query that looks like a number searches numbers, so `a1` does not match
        // every number containing 1.
        let numeric = !query.is_empty()
            && fold(&query).chars().all(|c| c.is_ascii_digit() || "-+() ".contains(c) || c == 'ー');
        Search { digits: if numeric { digits(&query) } else { String::new() }, text }
    }

    /// Whether `fields` match. An empty query matches everything.
    pub fn matches(&self, fields: &EntryFields) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let texts = [&fields.name, &fields.kana, &fields.company, &fields.note];
        texts.iter().any(|t| fold(t).contains(&self.text))
            || (!self.digits.is_empty()
                && fields.numbers.iter().any(|n| digits(&n.number).contains(&self.digits)))
    }
}

/// One refused CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Line number from 1, as a spreadsheet shows it (the header is line 1).
    pub row: usize,
    /// The field (`name`, `number2`, …), or empty for the row as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// An import that was not refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// How the bytes were read.
    pub encoding: CsvEncoding,
    /// Valid rows: (line number, fields), in file order.
    pub entries: Vec<(usize, EntryFields)>,
    /// The first [`MAX_REPORTED_ROW_ERRORS`] problems.
    pub errors: Vec<RowError>,
    /// Problems beyond those reported.
    pub errors_omitted: usize,
}

/// Why a whole import was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// Larger than [`MAX_IMPORT_BYTES`].
    TooLarge,
    /// More than [`MAX_IMPORT_ROWS`] data rows.
    TooManyRows,
    /// No header row, or one naming no `name` column or no number column.
    BadHeader(String),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "file larger than {MAX_IMPORT_BYTES} bytes"),
            Self::TooManyRows => write!(f, "more than {MAX_IMPORT_ROWS} rows; split the file"),
            Self::BadHeader(why) => write!(f, "header row: {why}"),
        }
    }
}

impl std::error::Error for ImportError {}

/// The encoding the user chose for an import, or detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenEncoding {
    /// BOM, else valid UTF-8, else Shift_JIS.
    Detect,
    /// UTF-8 (a BOM is skipped).
    Utf8,
    /// Shift_JIS (CP932).
    ShiftJis,
}

/// What one CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Kana,
    Company,
    Note,
    Number(usize),
    Label(usize),
    Ignored,
}

fn column(header: &str) -> Option<Column> {
    let h = fold(header.trim());
    let h = h.as_str();
    let fixed = match h {
        "name" | "名前" | "氏名" => Some(Column::Name),
        "kana" | "カナ" | "フリガナ" | "よみ" | "ヨミ" => Some(Column::Kana),
        "company" | "会社" | "会社名" => Some(Column::Company),
        "note" | "備考" | "メモ" => Some(Column::Note),
        "number" | "電話番号" => Some(Column::Number(0)),
        "label" | "種別" => Some(Column::Label(0)),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    for (prefix, number) in [("number", true), ("電話番号", true), ("label", false), ("種別", false)] {
        if let Some(n) = h.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok()) {
            return (1..=MAX_NUMBERS).contains(&n).then(|| {
                if number {
                    Column::Number(n - 1)
                } else {
                    Column::Label(n - 1)
                }
            });
        }
    }
    None
}

fn decode_as(bytes: &[u8], chosen: ChosenEncoding) -> (Cow<'_, str>, CsvEncoding) {
    match chosen {
        ChosenEncoding::Detect => decode(bytes),
        ChosenEncoding::Utf8 => {
            let (text, _) = encoding_rs::UTF_8.decode_with_bom_removal(bytes);
            (text, CsvEncoding::Utf8)
        }
        ChosenEncoding::ShiftJis => {
            let (text, _) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
            (text, CsvEncoding::ShiftJis)
        }
    }
}

/// The row's fields, with errors named by CSV column.
fn parse_row(columns: &[Column], cells: &[String]) -> Result<EntryFields, Vec<(String, String)>> {
    let mut f = EntryFields {
        numbers: vec![Number { label: String::new(), number: String::new() }; MAX_NUMBERS],
        ..EntryFields::default()
    };
    let mut extra = false;
    for (i, cell) in cells.iter().enumerate() {
        let cell = cell.trim().to_string();
        match columns.get(i).copied() {
            Some(Column::Name) => f.name = cell,
            Some(Column::Kana) => f.kana = cell,
            Some(Column::Company) => f.company = cell,
            Some(Column::Note) => f.note = cell,
            Some(Column::Number(n)) => {
                if let Some(slot) = f.numbers.get_mut(n) {
                    slot.number = cell;
                }
            }
            Some(Column::Label(n)) => {
                if let Some(slot) = f.numbers.get_mut(n) {
                    slot.label = cell;
                }
            }
            Some(Column::Ignored) => {}
            None => extra |= !cell.is_empty(),
        }
    }
    // Keep the slot index so an error names the column (`number2`); `validate` sees the
    // non-empty slots only.
    let slots: Vec<usize> = (0..MAX_NUMBERS)
        .filter(|i| f.numbers.get(*i).is_some_and(|n| !n.number.is_empty() || !n.label.is_empty()))
        .collect();
    let mut errors = Vec::new();
    if extra {
        errors.push((String::new(), "more cells than header columns".to_string()));
    }
    match validate(&f) {
        Ok(clean) if errors.is_empty() => Ok(clean),
        Ok(_) => Err(errors),
        Err(found) => {
            for e in found {
                errors.push((csv_field(&e.field, &slots), e.message));
            }
            Err(errors)
        }
    }
}

/// `numbers.1.number` (index among the filled slots) as the CSV column name `number3`.
fn csv_field(field: &str, slots: &[usize]) -> String {
    let mut parts = field.split('.');
    match (parts.next(), parts.next().and_then(|i| i.parse::<usize>().ok()), parts.next()) {
        (Some("numbers"), Some(i), Some(what)) => {
            let slot = slots.get(i).copied().unwrap_or(i);
            format!("{what}{}", slot + 1)
        }
        (Some("numbers"), None, None) => "number1".to_string(),
        _ => field.to_string(),
    }
}

/// Reads phonebook entries from CSV bytes. Bad rows are reported and skipped; only the size
/// limits and a bad header refuse the whole file.
pub fn import_csv(bytes: &[u8], chosen: ChosenEncoding) -> Result<Import, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let (text, encoding) = decode_as(bytes, chosen);
    let mut import = Import { encoding, entries: Vec::new(), errors: Vec::new(), errors_omitted: 0 };
    let mut columns: Option<Vec<Column>> = None;
    let mut rows = 0usize;
    for (index, raw) in text.lines().enumerate() {
        let row = index + 1;
        let line = raw.trim_matches(|c: char| c == '\r' || c == '\n' || c == '\u{FEFF}');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cells = match split_cells(line) {
            Ok(c) => c,
            Err(message) if columns.is_some() => {
                push_error(&mut import, RowError { row, field: String::new(), message });
                continue;
            }
            Err(message) => return Err(ImportError::BadHeader(message)),
        };
        let Some(cols) = columns.as_ref() else {
            let parsed: Vec<Column> = cells.iter().map(|c| column(c).unwrap_or(Column::Ignored)).collect();
            if !parsed.contains(&Column::Name) {
                return Err(ImportError::BadHeader("no name (名前) column".into()));
            }
            if !parsed.iter().any(|c| matches!(c, Column::Number(_))) {
                return Err(ImportError::BadHeader("no number (電話番号) column".into()));
            }
            columns = Some(parsed);
            continue;
        };
        rows += 1;
        if rows > MAX_IMPORT_ROWS {
            return Err(ImportError::TooManyRows);
        }
        match parse_row(cols, &cells) {
            Ok(fields) => import.entries.push((row, fields)),
            Err(errors) => {
                for (field, message) in errors {
                    push_error(&mut import, RowError { row, field, message });
                }
            }
        }
    }
    if columns.is_none() {
        return Err(ImportError::BadHeader("the file is empty".into()));
    }
    Ok(import)
}

fn push_error(import: &mut Import, e: RowError) {
    if import.errors.len() < MAX_REPORTED_ROW_ERRORS {
        import.errors.push(e);
    } else {
        import.errors_omitted += 1;
    }
}

/// The export encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportEncoding {
    /// UTF-8 with a BOM, so Excel opens it as UTF-8.
    Utf8Bom,
    /// Shift_JIS (CP932), for older spreadsheets; unmappable characters become `?`.
    ShiftJis,
}

fn csv_cell(out: &mut String, cell: &str) {
    if cell.contains([',', '"', '\t', '\n', '\r']) || cell.starts_with('=') {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

/// Writes `entries` as CSV that [`import_csv`] reads back: the header in Japanese, one row per
/// entry, CRLF line ends.
pub fn export_csv<'a>(entries: impl Iterator<Item = &'a EntryFields>, encoding: ExportEncoding) -> Vec<u8> {
    let mut text = String::from("名前,カナ,会社,備考");
    for n in 1..=MAX_NUMBERS {
        text.push_str(&format!(",種別{n},電話番号{n}"));
    }
    text.push_str("\r\n");
    for e in entries {
        for (i, cell) in [&e.name, &e.kana, &e.company, &e.note].into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            csv_cell(&mut text, cell);
        }
        for n in 0..MAX_NUMBERS {
            let slot = e.numbers.get(n);
            text.push(',');
            csv_cell(&mut text, slot.map_or("", |s| s.label.as_str()));
            text.push(',');
            csv_cell(&mut text, slot.map_or("", |s| s.number.as_str()));
        }
        text.push_str("\r\n");
    }
    match encoding {
        ExportEncoding::Utf8Bom => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            out.extend_from_slice(text.as_bytes());
            out
        }
        ExportEncoding::ShiftJis => {
            let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
            bytes.into_owned()
        }
    }
}

/// Caller names by normalised number, for the engine: the shared book, and each extension's
/// owner's personal book. Built from a bounded book, so bounded itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerIndex {
    shared: HashMap<String, String>,
    personal: HashMap<String, HashMap<String, String>>,
}

impl CallerIndex {
    /// Indexes `entries`; `extension_of(owner)` names the extension of a personal entry's
    /// owner (entries of owners without one are left out). When two entries share a number
    /// the first (lowest id) wins, so the answer does not change with map order.
    pub fn build<'a>(
        entries: impl Iterator<Item = &'a Entry>,
        extension_of: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let mut index = CallerIndex::default();
        for e in entries {
            let map = match &e.owner {
                None => &mut index.shared,
                Some(owner) => match extension_of(owner) {
                    Some(ext) => index.personal.entry(ext).or_default(),
                    None => continue,
                },
            };
            for n in &e.fields.numbers {
                if let Some(key) = normalised(&n.number) {
                    map.entry(key).or_insert_with(|| e.fields.name.clone());
                }
            }
        }
        index
    }

    /// The name for a call from `caller` (a number or an extension, as it came) ringing
    /// extension `called`: `called`'s owner's personal entry first, then the shared book.
    pub fn name(&self, caller: &str, called: &str) -> Option<&str> {
        let key = normalised(caller)?;
        self.personal
            .get(called)
            .and_then(|m| m.get(&key))
            .or_else(|| self.shared.get(&key))
            .map(String::as_str)
    }

    /// Numbers indexed (shared plus personal).
    pub fn len(&self) -> usize {
        self.shared.len() + self.personal.values().map(HashMap::len).sum::<usize>()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str, numbers: &[&str]) -> EntryFields {
        EntryFields {
            name: name.into(),
            numbers: numbers.iter().map(|n| Number { label: String::new(), number: (*n).into() }).collect(),
            ..EntryFields::default()
        }
    }

    fn import(bytes: &[u8]) -> Import {
        match import_csv(bytes, ChosenEncoding::Detect) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_valid_entry_is_trimmed_and_empty_number_rows_dropped() {
        let mut f = fields(" 山田 太郎 ", &["03-1234-5678", ""]);
        f.numbers.push(Number { label: " ".into(), number: String::new() });
        let clean = validate(&f).unwrap_or_default();
        assert_eq!(clean.name, "山田 太郎");
        assert_eq!(clean.numbers.len(), 1);
    }

    #[test]
    fn invalid_fields_are_each_named() {
        let mut f = fields("", &["abc"]);
        f.kana = "ア".repeat(MAX_NAME_CHARS + 1);
        let errors = validate(&f).err().unwrap_or_default();
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["name", "kana", "numbers.0.number"]);
        let too_many = fields("x", &["0312345678"; MAX_NUMBERS + 1]);
        assert!(validate(&too_many).is_err());
        assert!(validate(&fields("x", &[])).is_err());
    }

    #[test]
    fn search_folds_kana_and_width_and_matches_number_digits() {
        let mut f = fields("山田 太郎", &["03-1234-5678"]);
        f.kana = "ヤマダ タロウ".into();
        f.company = "ABC商事".into();
        for q in ["山田", "やまだ", "ＡＢＣ", "abc", "1234", "03-1234", "", "５６７８"] {
            assert!(Search::new(q).matches(&f), "{q}");
        }
        for q in ["鈴木", "9999", "a1"] {
            assert!(!Search::new(q).matches(&f), "{q}");
        }
    }

    #[test]
    fn shift_jis_import_reads_names_and_reports_a_bad_row_by_line() {
        let text = "名前,カナ,会社,電話番号1,種別1,電話番号2\r\n山田 太郎,ヤマダ タロウ,山田商店,03-1234-5678,会社,090-1111-2222\r\n,ナシ,,0312345678\r\n鈴木 花子,スズキ ハナコ,,ｘｙｚ\r\n佐藤,,,0120-123-456\r\n";
        let (bytes, _, bad) = encoding_rs::SHIFT_JIS.encode(text);
        assert!(!bad);
        let i = import(&bytes);
        assert_eq!(i.encoding, CsvEncoding::ShiftJis);
        let names: Vec<&str> = i.entries.iter().map(|(_, f)| f.name.as_str()).collect();
        assert_eq!(names, ["山田 太郎", "佐藤"]);
        assert_eq!(i.entries.first().map(|(_, f)| f.numbers.len()), Some(2));
        let errs: Vec<(usize, &str)> = i.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(errs, [(3, "name"), (4, "number1")]);
    }

    #[test]
    fn a_second_number_column_error_names_that_column() {
        let i = import("name,number1,number2\nA,0312345678,zz\n".as_bytes());
        let errs: Vec<(usize, &str)> = i.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(errs, [(2, "number2")]);
    }

    #[test]
    fn a_header_without_name_or_number_refuses_the_file() {
        assert!(matches!(
            import_csv(b"0312345678,x\n", ChosenEncoding::Detect),
            Err(ImportError::BadHeader(_))
        ));
        assert!(matches!(import_csv(b"name,kana\n", ChosenEncoding::Detect), Err(ImportError::BadHeader(_))));
        assert!(matches!(import_csv(b"", ChosenEncoding::Detect), Err(ImportError::BadHeader(_))));
        let big = vec![b'a'; MAX_IMPORT_BYTES + 1];
        assert_eq!(import_csv(&big, ChosenEncoding::Detect), Err(ImportError::TooLarge));
    }

    #[test]
    fn export_then_import_round_trips_in_both_encodings() {
        let mut a = fields("山田, \"太郎\"", &["03-1234-5678", "09011112222"]);
        a.kana = "ヤマダ".into();
        a.note = "=SUM(1)".into();
        if let Some(n) = a.numbers.first_mut() {
            n.label = "会社".into();
        }
        let b = fields("佐藤", &["0120123456"]);
        for enc in [ExportEncoding::Utf8Bom, ExportEncoding::ShiftJis] {
            let bytes = export_csv([&a, &b].into_iter(), enc);
            let i = import(&bytes);
            assert!(i.errors.is_empty(), "{:?}", i.errors);
            let back: Vec<EntryFields> = i.entries.into_iter().map(|(_, f)| f).collect();
            assert_eq!(back, [a.clone(), b.clone()]);
        }
    }

    #[test]
    fn the_chosen_encoding_overrides_detection() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("名前,電話番号\n山田,0312345678\n");
        let i = import_csv(&bytes, ChosenEncoding::ShiftJis).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(i.entries.first().map(|(_, f)| f.name.as_str()), Some("山田"));
        assert!(import_csv(&bytes, ChosenEncoding::Utf8).is_err());
    }

    #[test]
    fn caller_index_prefers_the_called_users_personal_entry() {
        let shared = Entry { id: 1, owner: None, fields: fields("山田 太郎", &["03-1234-5678"]) };
        let mine =
            Entry {
                id: 2, owner: Some("kato".into()), fields: fields("山田さん(私用)", &["0312345678"])
            };
        let ext = |owner: &str| (owner == "kato").then(|| "201".to_string());
        let index = CallerIndex::build([&shared, &mine].into_iter(), ext);
        assert_eq!(index.name("+81312345678", "200"), Some("山田 太郎"));
        assert_eq!(index.name("0312345678", "201"), Some("山田さん(私用)"));
        assert_eq!(index.name("anonymous", "200"), None);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn import_never_panics_on_random_bytes() {
        let pieces: [&[u8]; 10] = [
            b"name,number\n",
            b",",
            b"\"",
            b"=",
            b"0312345678",
            b"\n",
            b"\xFF",
            b"\x82\xA0",
            "名前".as_bytes(),
            b"number9",
        ];
        let mut seed: u64 = 0x5048_4f4e_4542_4f4f;
        for _ in 0..3_000 {
            let mut bytes = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut s = seed;
            for _ in 0..(s % 40) {
                s = s.rotate_left(5).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                if let Some(p) = pieces.get(usize::try_from(s % 10).unwrap_or(0)) {
                    bytes.extend_from_slice(p);
                }
            }
            let _ = import_csv(&bytes, ChosenEncoding::Detect);
        }
    }
}
