//! The configuration as an editable document (issue 7: the settings pages).
//!
//! The web admin edits the same TOML document [`super::parse_str`] reads, one top-level key
//! (a *section*: `extension`, `trunk`, `smtp`…) at a time. This file holds the pieces that do
//! not need a server: the document as JSON with its secrets masked ([`to_json_masked`]), a
//! section replaced from JSON with masked secrets keeping their old value ([`replace_section`]),
//! the atomic save under `<data>/config/` ([`save`]) and the start-up choice between the saved
//! document and the `--config` file ([`startup_text`]).
//!
//! Start-up precedence: the saved document (`current.toml`, what the web last applied) wins
//! over the `--config` file unless the file's content changed since it was last imported; the
//! SHA-256 of the imported file is kept in `imported.sha256`. So an installer who edits the
//! file still gets their edit, and a reboot does not undo the admin's web changes.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a secret looks like in JSON answers; sent back unchanged it keeps the stored value.
pub const MASK: &str = "********";

/// Keys whose values never leave the box: SIP and SMTP passwords, voicemail and hot-desk PINs,
/// chat tokens and the LINE WORKS service-account secrets.
const SECRET_KEYS: [&str; 5] = ["password", "pin", "token", "client_secret", "private_key"];

/// Keys that name an element of an array section, tried in order, to find the stored element
/// whose masked secrets a new element keeps (an element deleted before it must not shift them).
const IDENTITY_KEYS: [&str; 3] = ["number", "name", "did"];

/// The top-level keys the web may replace: every key of the file format but `web`, whose ports
/// would cut the admin off its own page (`docs/configuration.md` lists them). Time rules are
/// the `rule` arrays of `did`, holidays the top-level `holidays`.
pub const SECTIONS: [&str; 23] = [
    "sip",
    "rtp",
    "extension",
    "media",
    "recording",
    "voicemail",
    "conference",
    "park",
    "trunk",
    "ring_group",
    "utc_offset",
    "holidays",
    "did",
    "outbound_route",
    "block",
    "restrict",
    "smtp",
    "chat",
    "chat_rule",
    "ivr",
    "queue",
    "acd",
    "campaign",
];

/// Sections that only a restart applies: the sockets are bound once.
pub const RESTART_SECTIONS: [&str; 2] = ["sip", "rtp"];

/// The document file the box runs with.
pub const CURRENT_FILE: &str = "current.toml";
/// The document before the last save.
pub const PREVIOUS_FILE: &str = "previous.toml";
/// SHA-256 (hex) of the `--config` file last imported.
pub const IMPORTED_HASH_FILE: &str = "imported.sha256";

/// Why a section could not be replaced (before validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionError {
    /// Not a key of [`SECTIONS`].
    UnknownSection,
    /// The stored document is not TOML (a hand edit gone wrong).
    Stored(String),
    /// The JSON has no TOML form (mixed arrays, a top-level non-table where a table belongs).
    NotToml(String),
}

impl std::fmt::Display for SectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SectionError::UnknownSection => f.write_str("unknown section"),
            SectionError::Stored(e) => write!(f, "the stored configuration is not TOML: {e}"),
            SectionError::NotToml(e) => write!(f, "not representable in the configuration: {e}"),
        }
    }
}

impl std::error::Error for SectionError {}

/// Parses a document; empty text is the empty document.
pub fn parse_table(text: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>().map_err(|e| e.to_string())
}

/// The document as JSON, every secret replaced by [`MASK`] (an empty secret stays empty, so
/// the page can tell "not set").
pub fn to_json_masked(doc: &toml::Table) -> serde_json::Value {
    let mut v = serde_json::to_value(doc).unwrap_or_else(|_| serde_json::json!({}));
    mask(&mut v, false);
    v
}

fn mask(v: &mut serde_json::Value, in_chat: bool) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let secret = SECRET_KEYS.contains(&k.as_str()) || (in_chat && k == "url");
                match val {
                    serde_json::Value::String(s) if secret && !s.is_empty() => *s = MASK.to_string(),
                    _ => mask(val, in_chat || k == "chat"),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| mask(i, in_chat)),
        _ => {}
    }
}

/// `doc` with `section` replaced by `value` (JSON `null` removes it); a secret sent as
/// [`MASK`] keeps the stored value of the same element. The result is not validated: render it
/// with [`render`] and check it with [`super::parse_str`].
pub fn replace_section(
    doc: &toml::Table,
    section: &str,
    value: serde_json::Value,
) -> Result<toml::Table, SectionError> {
    if !SECTIONS.contains(&section) {
        return Err(SectionError::UnknownSection);
    }
    let mut out = doc.clone();
    if value.is_null() {
        out.remove(section);
        return Ok(out);
    }
    let mut value = value;
    strip_nulls(&mut value);
    let old = doc.get(section).map(|o| serde_json::to_value(o).unwrap_or_default());
    if let Some(old) = &old {
        unmask(&mut value, old, section == "chat");
    }
    let new = toml::Value::try_from(value).map_err(|e| SectionError::NotToml(e.to_string()))?;
    out.insert(section.to_string(), new);
    Ok(out)
}

/// JSON `null` means "not set": TOML has no null, so the key goes.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn unmask(new: &mut serde_json::Value, old: &serde_json::Value, in_chat: bool) {
    match (new, old) {
        (serde_json::Value::Object(n), serde_json::Value::Object(o)) => {
            for (k, val) in n.iter_mut() {
                let secret = SECRET_KEYS.contains(&k.as_str()) || (in_chat && k == "url");
                match (val, o.get(k)) {
                    (serde_json::Value::String(s), Some(serde_json::Value::String(kept)))
                        if secret && s == MASK =>
                    {
                        s.clone_from(kept)
                    }
                    (val, Some(o)) => unmask(val, o, in_chat || k == "chat"),
                    _ => {}
                }
            }
        }
        (serde_json::Value::Array(n), serde_json::Value::Array(o)) => {
            for (i, item) in n.iter_mut().enumerate() {
                if let Some(kept) = same_element(item, o, i) {
                    unmask(item, kept, in_chat);
                }
            }
        }
        _ => {}
    }
}

/// The stored element `item` stands for: the one with the same identity key, else the one at
/// the same index when `item` has no identity key at all.
fn same_element<'a>(
    item: &serde_json::Value,
    old: &'a [serde_json::Value],
    index: usize,
) -> Option<&'a serde_json::Value> {
    for key in IDENTITY_KEYS {
        if let Some(id) = item.get(key) {
            return old.iter().find(|o| o.get(key) == Some(id));
        }
    }
    old.get(index)
}

/// The document as TOML text.
pub fn render(doc: &toml::Table) -> Result<String, String> {
    toml::to_string(doc).map_err(|e| e.to_string())
}

/// SHA-256 of `text`, hex.
pub fn text_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `text` as `dir/current.toml` atomically (temp file, fsync, rename, directory fsync);
/// the file it replaces becomes `previous.toml`.
pub fn save(dir: &Path, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let current = dir.join(CURRENT_FILE);
    if current.is_file() {
        std::fs::copy(&current, dir.join(PREVIOUS_FILE))?;
    }
    write_atomic(&current, text.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Where the start-up document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupSource {
    /// The saved document (web edits), the `--config` file unchanged since its import.
    Saved,
    /// The `--config` file, new or changed: imported (saved as the current document).
    Imported,
    /// No file and no saved document.
    Empty,
}

/// The document text the box starts with (module doc: precedence). `file_text` is the
/// `--config` file's content. A saved document that no longer parses is passed over for the
/// file, then for `previous.toml`.
pub fn startup_text(dir: &Path, file_text: Option<&str>) -> std::io::Result<(String, StartupSource)> {
    let read = |name: &str| -> Option<String> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        super::parse_str(&text, name).is_ok().then_some(text)
    };
    let imported_hash = std::fs::read_to_string(dir.join(IMPORTED_HASH_FILE)).ok();
    match file_text {
        Some(file) => {
            let hash = text_hash(file);
            if imported_hash.as_deref().map(str::trim) == Some(hash.as_str()) {
                if let Some(saved) = read(CURRENT_FILE) {
                    return Ok((saved, StartupSource::Saved));
                }
            }
            save(dir, file)?;
            write_atomic(&dir.join(IMPORTED_HASH_FILE), hash.as_bytes())?;
            Ok((file.to_string(), StartupSource::Imported))
        }
        None => match read(CURRENT_FILE).or_else(|| read(PREVIOUS_FILE)) {
            Some(saved) => Ok((saved, StartupSource::Saved)),
            None => Ok((String::new(), StartupSource::Empty)),
        },
    }
}

/// The document the box runs with, as the daemon answers the web.
#[derive(Debug, Clone)]
pub struct RunningDocument {
    /// TOML text.
    pub text: String,
    /// `<data>/config`: where [`save`] writes it.
    pub dir: PathBuf,
}

/// `text` with `[[extension]]` blocks for `extensions` (the stored or demo set the box serves
/// when the document has none), so the web lists and edits them. `text` unchanged when it is
/// not TOML.
pub fn with_extensions(text: &str, extensions: &[super::ExtensionConfig]) -> String {
    let Ok(mut doc) = parse_table(text) else { return text.to_string() };
    let list: Vec<toml::Value> = extensions
        .iter()
        .map(|e| {
            let mut t = toml::Table::new();
            t.insert("number".into(), e.number.clone().into());
            t.insert("name".into(), e.name.clone().into());
            t.insert("password".into(), e.password.clone().into());
            t.insert("call_waiting".into(), e.call_waiting.into());
            t.insert("record".into(), e.record.as_str().into());
            toml::Value::Table(t)
        })
        .collect();
    doc.insert("extension".into(), toml::Value::Array(list));
    render(&doc).unwrap_or_else(|_| text.to_string())
}

/// `dir/current.toml`.
pub fn current_path(dir: &Path) -> PathBuf {
    dir.join(CURRENT_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = r#"
[[extension]]
number = "201"
name = "Sato"
password = "secret-201"

[[extension]]
number = "202"
name = "Suzuki"
password = "secret-202"
"#;

    #[test]
    fn secrets_never_appear_in_the_json() {
        let doc = parse_table(DOC).unwrap();
        let text = to_json_masked(&doc).to_string();
        assert!(!text.contains("secret-20"), "{text}");
        assert!(text.contains(MASK));
    }

    #[test]
    fn a_masked_password_keeps_the_value_of_the_same_extension_after_a_delete() {
        let doc = parse_table(DOC).unwrap();
        let body = json!([{ "number": "202", "name": "Suzuki", "password": MASK }]);
        let new = replace_section(&doc, "extension", body).unwrap();
        let text = render(&new).unwrap();
        assert!(text.contains("secret-202") && !text.contains("secret-201"), "{text}");
        assert!(crate::config::parse_str(&text, "t").is_ok());
    }

    #[test]
    fn an_unknown_section_is_refused() {
        let doc = parse_table(DOC).unwrap();
        assert_eq!(replace_section(&doc, "web", json!({})), Err(SectionError::UnknownSection));
    }

    #[test]
    fn the_saved_document_wins_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (t, s) = startup_text(dir.path(), Some(DOC)).unwrap();
        assert_eq!((t.as_str(), s), (DOC, StartupSource::Imported));
        let edited = DOC.replace("Sato", "Tanaka");
        save(dir.path(), &edited).unwrap();
        let (t, s) = startup_text(dir.path(), Some(DOC)).unwrap();
        assert_eq!((t, s), (edited.clone(), StartupSource::Saved));
        assert_eq!(std::fs::read_to_string(dir.path().join(PREVIOUS_FILE)).unwrap(), DOC);
        let changed = DOC.replace("Suzuki", "Ito");
        let (t, s) = startup_text(dir.path(), Some(&changed)).unwrap();
        assert_eq!((t, s), (changed, StartupSource::Imported));
    }
}
