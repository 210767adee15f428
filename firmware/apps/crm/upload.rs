//! Customer CSV upload (seed 002 §2.22): a preview for the column-mapping screen, then the
//! import, where each row that does not fit its fields is skipped and reported and the rest
//! are stored. Whole-file refusals: over 5 MB, not text, or machine-dependent characters
//! (機種依存文字: the vendor extensions of Windows-31J that other systems show wrongly).

use super::model::{Customer, Stamp};
use super::{Crm, FieldError};
use crate::apps::numbers::{decode_csv, split_csv_cells_with, CsvEncoding};

/// Largest file: the manual's 5 MB.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Rows shown on the mapping screen.
pub const PREVIEW_ROWS: usize = 5;
/// Columns a file may have (the mapping screen shows a selector per column).
pub const MAX_COLUMNS: usize = 100;
/// Skipped rows reported in detail; the rest are counted.
pub const MAX_REPORTED_ROWS: usize = 1_000;

/// What a column is mapped to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "field")]
pub enum ColumnTarget {
    /// `--`: ignored.
    Ignore,
    /// 名称.
    Name,
    /// 顧客コード.
    Code,
    /// 電話番号 (a second phone column adds a second number).
    Phone,
    /// メール.
    Email,
    /// 備考.
    Note,
    /// A business-format or customer custom field, by name.
    Field(String),
}

/// The upload's options (§2.22 inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// 最初の行を含む: the first row is data (`false`: it is a header and skipped).
    pub first_row_is_data: bool,
    /// 区切り文字.
    pub delimiter: char,
    /// 電話番号の重複を許可する.
    pub allow_duplicate_phones: bool,
    /// タグ追加: tags put on every uploaded customer.
    pub tags: Vec<String>,
    /// 業務: the business format.
    pub format: Option<String>,
    /// Column i → target.
    pub mapping: Vec<ColumnTarget>,
}

/// Why a whole file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    /// Larger than [`MAX_UPLOAD_BYTES`].
    TooLarge,
    /// Binary content (NUL bytes) or no row at all.
    NotCsv,
    /// A machine-dependent character, with its 1-based line and the character.
    MachineDependent {
        /// Line.
        line: usize,
        /// The character.
        ch: char,
    },
    /// More than [`MAX_COLUMNS`] columns.
    TooManyColumns,
    /// The mapping names no name column, or has more targets than the file has columns.
    BadMapping(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::TooLarge => write!(f, "the file is larger than 5 MB"),
            UploadError::NotCsv => write!(f, "the file is not CSV text"),
            UploadError::MachineDependent { line, ch } => {
                write!(
                    f,
                    "line {line}: machine-dependent character `{ch}` (U+{:04X}); replace it",
                    u32::from(*ch)
                )
            }
            UploadError::TooManyColumns => write!(f, "more than {MAX_COLUMNS} columns"),
            UploadError::BadMapping(m) => write!(f, "column mapping: {m}"),
        }
    }
}

/// The mapping screen's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// How the file was read.
    pub encoding: CsvEncoding,
    /// Columns (the widest of the previewed rows).
    pub columns: usize,
    /// The first rows (after the header when it is skipped).
    pub rows: Vec<Vec<String>>,
}

/// A skipped row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the file.
    pub line: usize,
    /// The fields at fault.
    pub errors: Vec<FieldError>,
}

/// The import's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadReport {
    /// Ids of the customers created.
    pub imported: Vec<u64>,
    /// The first [`MAX_REPORTED_ROWS`] skipped rows.
    pub skipped: Vec<RowError>,
    /// Skipped rows beyond those.
    pub skipped_omitted: usize,
}

/// Whether `c` is one of Windows-31J's vendor extensions: NEC row 13 (lead byte 0x87), the
/// NEC-selected IBM extensions (0xED-0xEE) and the IBM extensions (0xFA-0xFC).
pub fn is_machine_dependent(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    let mut buf = [0u8; 4];
    let s: &str = c.encode_utf8(&mut buf);
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
    !unmappable && matches!(bytes.first(), Some(0x87 | 0xED | 0xEE | 0xFA..=0xFC))
}

fn lines(bytes: &[u8]) -> Result<(Vec<(usize, String)>, CsvEncoding), UploadError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(UploadError::TooLarge);
    }
    if bytes.contains(&0) {
        return Err(UploadError::NotCsv);
    }
    let (text, encoding) = decode_csv(bytes);
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(ch) = l.chars().find(|c| is_machine_dependent(*c)) {
            return Err(UploadError::MachineDependent { line: i + 1, ch });
        }
        if !l.trim().is_empty() {
            out.push((i + 1, l.to_string()));
        }
    }
    if out.is_empty() {
        return Err(UploadError::NotCsv);
    }
    Ok((out, encoding))
}

/// Reads the file for the mapping screen.
pub fn preview(bytes: &[u8], first_row_is_data: bool, delimiter: char) -> Result<Preview, UploadError> {
    let (lines, encoding) = lines(bytes)?;
    let skip = usize::from(!first_row_is_data);
    let mut rows = Vec::new();
    let mut columns = 0;
    for (_, l) in lines.iter().skip(skip).take(PREVIEW_ROWS) {
        let cells = split_csv_cells_with(l, delimiter).unwrap_or_else(|_| vec![l.clone()]);
        if cells.len() > MAX_COLUMNS {
            return Err(UploadError::TooManyColumns);
        }
        columns = columns.max(cells.len());
        rows.push(cells);
    }
    Ok(Preview { encoding, columns, rows })
}

/// Imports the file into `crm` with `opts`; each stored customer is also handed to `stored`
/// (the caller persists it). Rows that do not fit are skipped and reported.
pub fn import(
    crm: &mut Crm,
    bytes: &[u8],
    opts: &UploadOptions,
    stamp: &Stamp,
    stored: &mut dyn FnMut(&Customer),
) -> Result<UploadReport, UploadError> {
    if !opts.mapping.contains(&ColumnTarget::Name) {
        return Err(UploadError::BadMapping("map one column to 名称 (name)".into()));
    }
    if opts.mapping.len() > MAX_COLUMNS {
        return Err(UploadError::TooManyColumns);
    }
    let (lines, _) = lines(bytes)?;
    let skip = usize::from(!opts.first_row_is_data);
    let mut report = UploadReport::default();
    for (line, text) in lines.into_iter().skip(skip) {
        let row = match split_csv_cells_with(&text, opts.delimiter) {
            Ok(cells) => to_customer(&cells, opts),
            Err(m) => Err(vec![FieldError { field: "row".into(), message: m }]),
        };
        let result = row.and_then(|c| crm.put_customer(c, stamp.clone(), opts.allow_duplicate_phones));
        match result {
            Ok(id) => {
                report.imported.push(id);
                if let Some(c) = crm.customer(id) {
                    stored(c);
                }
            }
            Err(errors) if report.skipped.len() < MAX_REPORTED_ROWS => {
                report.skipped.push(RowError { line, errors });
            }
            Err(_) => report.skipped_omitted += 1,
        }
    }
    Ok(report)
}

fn to_customer(cells: &[String], opts: &UploadOptions) -> Result<Customer, Vec<FieldError>> {
    if cells.len() > opts.mapping.len() && cells.iter().skip(opts.mapping.len()).any(|c| !c.trim().is_empty())
    {
        return Err(vec![FieldError {
            field: "row".into(),
            message: format!("{} columns, the mapping has {}", cells.len(), opts.mapping.len()),
        }]);
    }
    let mut c = Customer { format: opts.format.clone(), tags: opts.tags.clone(), ..Customer::default() };
    for (target, cell) in opts.mapping.iter().zip(cells) {
        let v = cell.trim().to_string();
        match target {
            ColumnTarget::Ignore => {}
            ColumnTarget::Name => c.name = v,
            ColumnTarget::Code => c.code = v,
            ColumnTarget::Phone => c.phones.push(v),
            ColumnTarget::Email => c.email = v,
            ColumnTarget::Note => c.note = v,
            ColumnTarget::Field(name) => {
                c.fields.insert(name.clone(), v);
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::crm::fields::FieldKind;
    use crate::apps::crm::model::{BusinessFormat, FormatField, Tag};

    fn crm() -> Crm {
        let mut crm = Crm::new();
        crm.put_tag(Tag { name: "展示会".into(), ..Tag::default() }).unwrap();
        crm.put_format(
            BusinessFormat {
                name: "デモ".into(),
                fields: vec![FormatField {
                    name: "住所1".into(),
                    kind: FieldKind::Text,
                    required: false,
                    column: Default::default(),
                    choices: vec![],
                }],
                agents: vec![],
            },
            &[],
        )
        .unwrap();
        crm
    }

    fn opts() -> UploadOptions {
        UploadOptions {
            first_row_is_data: false,
            delimiter: ',',
            allow_duplicate_phones: false,
            tags: vec!["展示会".into()],
            format: Some("デモ".into()),
            mapping: vec![
                ColumnTarget::Name,
                ColumnTarget::Phone,
                ColumnTarget::Field("住所1".into()),
                ColumnTarget::Ignore,
            ],
        }
    }

    #[test]
    fn a_shift_jis_file_previews_and_imports_skipping_the_bad_row() {
        let text = "名称,電話番号,住所1,メモ\r\nテスト001,03-0000-0001,東京,商品A\r\nテスト002,abc,大阪,商品B\r\nテスト003,03-0000-0003,名古屋,\r\n";
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(text);
        let p = preview(&sjis, false, ',').unwrap();
        assert_eq!(p.encoding, CsvEncoding::ShiftJis);
        assert_eq!(p.columns, 4);
        assert_eq!(p.rows[0][0], "テスト001");
        let mut crm = crm();
        let mut saved = Vec::new();
        let r = import(&mut crm, &sjis, &opts(), &Stamp::default(), &mut |c| saved.push(c.id)).unwrap();
        assert_eq!(r.imported.len(), 2);
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].line, 3);
        assert_eq!(r.skipped[0].errors[0].field, "phones[0]");
        assert_eq!(saved, r.imported);
        let c = crm.find_by_phone("0300000003")[0];
        assert_eq!(c.fields["住所1"], "名古屋");
        assert_eq!(c.tags, vec!["展示会".to_string()]);
    }

    #[test]
    fn duplicates_follow_the_option_and_a_tab_delimiter_works() {
        let mut crm = crm();
        let text = "A\t0311112222\nB\t03-1111-2222\n";
        let mut o = opts();
        o.first_row_is_data = true;
        o.delimiter = '\t';
        let r = import(&mut crm, text.as_bytes(), &o, &Stamp::default(), &mut |_| {}).unwrap();
        assert_eq!((r.imported.len(), r.skipped.len()), (1, 1));
        o.allow_duplicate_phones = true;
        let r = import(&mut crm, text.as_bytes(), &o, &Stamp::default(), &mut |_| {}).unwrap();
        assert_eq!(r.imported.len(), 2);
    }

    #[test]
    fn whole_file_refusals_have_reasons() {
        let big = vec![b'a'; MAX_UPLOAD_BYTES + 1];
        assert_eq!(preview(&big, true, ','), Err(UploadError::TooLarge));
        assert_eq!(preview(b"a\0b", true, ','), Err(UploadError::NotCsv));
        let e = preview("名称\n株式会社①\n".as_bytes(), true, ',').unwrap_err();
        assert_eq!(e, UploadError::MachineDependent { line: 2, ch: '①' });
        assert!(is_machine_dependent('㈱') && is_machine_dependent('Ⅲ') && is_machine_dependent('髙'));
        assert!(!is_machine_dependent('高') && !is_machine_dependent('東') && !is_machine_dependent('ア'));
        let mut o = opts();
        o.mapping = vec![ColumnTarget::Phone];
        let mut crm = crm();
        assert!(matches!(
            import(&mut crm, b"x", &o, &Stamp::default(), &mut |_| {}),
            Err(UploadError::BadMapping(_))
        ));
    }
}
