//! CSV import for the block list and the restriction list.
//!
//! Format (see `docs/numbers.md`): one entry per line, `number[,note[,caller_id]]`; an optional
//! header line (a first line whose first cell has no digit); `#` comment lines and blank lines
//! are skipped; cells may be quoted (`"…"`, `""` for a quote) or written `="0312…"` (how
//! spreadsheets keep a leading zero); tab works instead of comma. Encodings: UTF-8 with or
//! without BOM, UTF-16 with BOM (Excel "Unicode text"), else Shift_JIS (CP932).
//!
//! A bad line becomes a [`LineError`] and the import goes on; only the overall size limits
//! abort it.

use super::list::{ListEntry, MAX_LIST_ENTRIES};
use std::borrow::Cow;
use std::fmt;

/// Largest file accepted. 100,000 rows of number, note and caller ID average well under 80
/// bytes; 8 MiB holds that with room and bounds the decode buffer.
pub const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;

/// Most data rows (comments, blanks and the header excluded): one list's capacity.
pub const MAX_IMPORT_ROWS: usize = MAX_LIST_ENTRIES;

/// Line errors kept in detail; the rest are only counted, so a file of garbage does not make a
/// report as large as itself.
pub const MAX_REPORTED_LINE_ERRORS: usize = 1_000;

/// Cells per row: number, note, caller ID. Extra cells must be empty (spreadsheets export
/// trailing empty columns).
const MAX_CELLS: usize = 3;

/// The encoding an import was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvEncoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    /// UTF-16 little- or big-endian with a byte-order mark (Excel's "Unicode text").
    Utf16,
    /// Not valid UTF-8: decoded as Shift_JIS (Windows code page 932).
    ShiftJis,
}

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// Line number from 1, as a spreadsheet shows it.
    pub line: usize,
    /// What is wrong, for the operator.
    pub message: String,
}

/// The result of an import that was not aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// How the bytes were decoded.
    pub encoding: CsvEncoding,
    /// Entries from good lines, in file order.
    pub entries: Vec<ListEntry>,
    /// The first [`MAX_REPORTED_LINE_ERRORS`] bad lines.
    pub errors: Vec<LineError>,
    /// Bad lines beyond those reported.
    pub errors_omitted: usize,
}

/// Why a whole import was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// The file is larger than [`MAX_IMPORT_BYTES`].
    TooLarge {
        /// Its size in bytes.
        bytes: usize,
    },
    /// The file has more than [`MAX_IMPORT_ROWS`] data rows.
    TooManyRows,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { bytes } => {
                write!(f, "file too large: {bytes} bytes, limit {MAX_IMPORT_BYTES}")
            }
            Self::TooManyRows => write!(f, "more than {MAX_IMPORT_ROWS} rows; split the file"),
        }
    }
}

impl std::error::Error for ImportError {}

/// Decodes by BOM, else UTF-8 when valid, else Shift_JIS. Undecodable bytes become U+FFFD and
/// surface as line errors in the number cell, or stay in a note.
pub(crate) fn decode(bytes: &[u8]) -> (Cow<'_, str>, CsvEncoding) {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let body = bytes.get(bom..).unwrap_or_default();
        let (text, _) = encoding.decode_without_bom_handling(body);
        let kind = if encoding == encoding_rs::UTF_8 { CsvEncoding::Utf8Bom } else { CsvEncoding::Utf16 };
        return (text, kind);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), CsvEncoding::Utf8),
        Err(_) => {
            let (text, _) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
            (text, CsvEncoding::ShiftJis)
        }
    }
}

/// Splits one line into cells. Quotes open only at a cell start (optionally after `=`), `""`
/// inside quotes is a quote. A quote left open fails the line: multi-line cells are not
/// supported, since no number or short note needs one.
pub(crate) fn split_cells(line: &str) -> Result<Vec<String>, String> {
    let delimiter = if !line.contains(',') && line.contains('\t') { '\t' } else { ',' };
    split_cells_with(line, delimiter)
}

/// [`split_cells`] with the delimiter chosen by the user (the customer upload's 区切り文字).
pub(crate) fn split_cells_with(line: &str, delimiter: char) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut at_start = true;
    loop {
        if at_start {
            at_start = false;
            let mut lookahead = chars.clone();
            if lookahead.next() == Some('=') && lookahead.peek() == Some(&'"') {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quote".into()),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cell.push('"');
                        }
                        Some('"') => break,
                        Some(c) => cell.push(c),
                    }
                }
            }
        }
        match chars.next() {
            None => {
                cells.push(std::mem::take(&mut cell));
                return Ok(cells);
            }
            Some(c) if c == delimiter => {
                cells.push(std::mem::take(&mut cell));
                at_start = true;
            }
            Some(c) => cell.push(c),
        }
    }
}

/// A 9- or 10-digit number without its leading zero is the classic spreadsheet accident.
fn lost_zero_hint(cell: &str) -> &'static str {
    let digits = cell.trim();
    let plausible = (9..=10).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if plausible {
        " (leading 0 lost? format the column as text or write =\"0…\")"
    } else {
        ""
    }
}

fn parse_row(line: &str) -> Result<ListEntry, String> {
    let cells = split_cells(line)?;
    if cells.iter().skip(MAX_CELLS).any(|c| !c.trim().is_empty()) {
        return Err(format!("more than {MAX_CELLS} columns (number, note, caller ID)"));
    }
    let number = cells.first().map(String::as_str).unwrap_or_default();
    let note = cells.get(1).map(String::as_str).unwrap_or_default();
    let caller = cells.get(2).map(String::as_str);
    ListEntry::parse(number, caller, note).map_err(|e| format!("{e}{}", lost_zero_hint(number)))
}

/// Writes a list as CSV in the import format (`number,note,caller_id`, UTF-8, a header row), so
/// a saved or exported list imports back unchanged.
pub fn export_csv<'a>(entries: impl Iterator<Item = &'a ListEntry>) -> String {
    let mut text = String::from("number,note,caller_id\n");
    for e in entries {
        let note = e.note.replace(['\r', '\n'], " ").replace('"', "\"\"");
        text.push_str(&format!("{},\"{note}\",{}\n", e.pattern, e.caller_id.as_deref().unwrap_or_default()));
    }
    text
}

/// Imports list entries from CSV bytes.
pub fn import_csv(bytes: &[u8]) -> Result<Import, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge { bytes: bytes.len() });
    }
    let (text, encoding) = decode(bytes);
    let mut import = Import { encoding, entries: Vec::new(), errors: Vec::new(), errors_omitted: 0 };
    let mut rows = 0usize;
    let mut first_content = true;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let is_header = first_content
            && split_cells(line)
                .ok()
                .and_then(|cells| cells.into_iter().next())
                .is_some_and(|first| !first.chars().any(|c| c.is_numeric()));
        first_content = false;
        if is_header {
            continue;
        }
        rows += 1;
        if rows > MAX_IMPORT_ROWS {
            return Err(ImportError::TooManyRows);
        }
        match parse_row(line) {
            Ok(entry) => import.entries.push(entry),
            Err(message) if import.errors.len() < MAX_REPORTED_LINE_ERRORS => {
                import.errors.push(LineError { line: index + 1, message });
            }
            Err(_) => import.errors_omitted += 1,
        }
    }
    Ok(import)
}

#[cfg(test)]
mod tests {
    use super::super::{Pattern, TestRng};
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/lists/{name}", env!("CARGO_MANIFEST_DIR"));
        match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => panic!("{path}: {e}"),
        }
    }

    fn import(bytes: &[u8]) -> Import {
        match import_csv(bytes) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        }
    }

    fn numbers(i: &Import) -> Vec<String> {
        i.entries.iter().map(|e| e.pattern.to_string()).collect()
    }

    fn error_lines(i: &Import) -> Vec<usize> {
        i.errors.iter().map(|e| e.line).collect()
    }

    // Tests for encodings.

    #[test]
    fn utf8_with_bom_header_and_crlf_imports_every_row() {
        let i = import(&fixture("block-utf8-bom-crlf.csv"));
        assert_eq!(i.encoding, CsvEncoding::Utf8Bom);
        assert_eq!(numbers(&i), ["0312345678", "09012345678", "0120*"]);
        assert_eq!(i.entries.first().map(|e| e.note.as_str()), Some("いたずら電話"));
        assert!(i.errors.is_empty(), "{:?}", i.errors);
    }

    #[test]
    fn shift_jis_fixture_is_detected_and_its_notes_decoded() {
        let i = import(&fixture("restrict-sjis.csv"));
        assert_eq!(i.encoding, CsvEncoding::ShiftJis);
        assert_eq!(numbers(&i), ["0312345678", "0990*"]);
        assert_eq!(i.entries.first().map(|e| e.note.as_str()), Some("業務Bにてクレーム"));
        assert_eq!(i.entries.first().and_then(|e| e.caller_id.as_deref()), Some("05011112222"));
    }

    #[test]
    fn shift_jis_made_by_encoding_rs_round_trips() {
        let text = "発信規制電話番号,備考\r\n０３－１２３４－５６７８,テスト　メモ\r\n";
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err());
        let i = import(&bytes);
        assert_eq!(i.encoding, CsvEncoding::ShiftJis);
        assert_eq!(numbers(&i), ["0312345678"]);
        assert_eq!(i.entries.first().map(|e| e.note.as_str()), Some("テスト　メモ"));
    }

    #[test]
    fn utf16_with_bom_and_tabs_imports() {
        let text = "\u{FEFF}番号\t備考\r\n03-1234-5678\tメモ\r\n";
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let i = import(&bytes);
        assert_eq!(i.encoding, CsvEncoding::Utf16);
        assert_eq!(numbers(&i), ["0312345678"]);
        assert_eq!(i.entries.first().map(|e| e.note.as_str()), Some("メモ"));
    }

    // Tests for rows.

    #[test]
    fn bad_lines_are_reported_by_line_number_and_the_rest_imports() {
        let i = import(&fixture("bad-lines.csv"));
        assert_eq!(i.encoding, CsvEncoding::Utf8);
        assert_eq!(numbers(&i), ["0312345678", "0120123456", "03*"]);
        assert_eq!(error_lines(&i), [4, 5, 6, 7, 8, 9]);
        let hint = i.errors.iter().find(|e| e.line == 6).map(|e| e.message.clone());
        assert!(hint.is_some_and(|m| m.contains("leading 0 lost")));
    }

    #[test]
    fn header_is_optional_and_only_the_first_line_can_be_one() {
        let i = import(b"0312345678\nnumber,note\n");
        assert_eq!(numbers(&i), ["0312345678"]);
        assert_eq!(error_lines(&i), [2]);
        let i = import("電話番号,備考\n0312345678,x\n".as_bytes());
        assert_eq!(numbers(&i), ["0312345678"]);
        assert!(i.errors.is_empty());
    }

    #[test]
    fn quoted_cells_and_spreadsheet_formula_cells_are_unwrapped() {
        let i = import(b"\"03-1234-5678\",\"a, \"\"quoted\"\" note\"\n=\"0312340000\",x\n");
        assert_eq!(numbers(&i), ["0312345678", "0312340000"]);
        assert_eq!(i.entries.first().map(|e| e.note.as_str()), Some("a, \"quoted\" note"));
        let i = import(b"\"0312345678,oops\n");
        assert_eq!(error_lines(&i), [1]);
    }

    #[test]
    fn trailing_empty_columns_are_accepted_but_extra_data_is_not() {
        let i = import(b"0312345678,note,,,\n0312345678,note,0501111222,extra\n");
        assert_eq!(numbers(&i), ["0312345678"]);
        assert_eq!(error_lines(&i), [2]);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_but_counted_in_line_numbers() {
        let i = import(b"# block list\n\n   \nx1\n");
        assert!(i.entries.is_empty());
        assert_eq!(error_lines(&i), [4]);
    }

    #[test]
    fn entries_from_an_import_fill_a_list() {
        let i = import(&fixture("block-utf8-bom-crlf.csv"));
        let mut list = super::super::NumberList::new();
        for e in i.entries {
            assert_eq!(list.insert(e), Ok(()));
        }
        assert!(list.entries().any(|e| e.pattern == Pattern::Prefix("0120".into())));
    }

    // Tests for limits.

    #[test]
    fn files_over_the_byte_limit_are_refused_whole() {
        let big = vec![b'0'; MAX_IMPORT_BYTES + 1];
        assert_eq!(import_csv(&big), Err(ImportError::TooLarge { bytes: MAX_IMPORT_BYTES + 1 }));
    }

    #[test]
    fn files_over_the_row_limit_are_refused_whole() {
        let mut text = String::new();
        for i in 0..=MAX_IMPORT_ROWS {
            text.push_str(&format!("03{i:08}\n"));
        }
        assert_eq!(import_csv(text.as_bytes()), Err(ImportError::TooManyRows));
    }

    #[test]
    fn line_errors_beyond_the_report_limit_are_only_counted() {
        let text = "x1\n".repeat(MAX_REPORTED_LINE_ERRORS + 5);
        let i = import(text.as_bytes());
        assert_eq!(i.errors.len(), MAX_REPORTED_LINE_ERRORS);
        assert_eq!(i.errors_omitted, 5);
    }

    #[test]
    fn import_never_panics_on_random_bytes() {
        const PIECES: [&[u8]; 16] = [
            b"0",
            b"3",
            b"9",
            b",",
            b"\t",
            b"\"",
            b"=",
            b"*",
            b"#",
            b"\r\n",
            b"\n",
            b"+81",
            b"\xEF\xBB\xBF",
            b"\x82\xA0",
            b"\xFF",
            "０－".as_bytes(),
        ];
        let mut rng = TestRng(0x4353_5600_0000_0001);
        for _ in 0..5_000 {
            let mut bytes = Vec::new();
            for _ in 0..rng.below(60) {
                if rng.below(4) == 0 {
                    bytes.push(u8::try_from(rng.below(256)).unwrap_or(0));
                } else if let Some(p) = rng.pick(&PIECES) {
                    bytes.extend_from_slice(p);
                }
            }
            if let Ok(i) = import_csv(&bytes) {
                assert!(i.errors.iter().all(|e| e.line >= 1));
            }
        }
    }
}
