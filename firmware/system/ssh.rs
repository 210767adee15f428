//! SSH login keys: `ssh key add|list|remove` on the console edit `<data>/ssh/authorized_keys`,
//! which the image's dropbear reads for the user `admin`. Logins are by key only (dropbear
//! runs with `-s`): the first key is added on the serial console.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// Most keys: a handful of technicians; the cap bounds the file dropbear reads per login.
pub const MAX_KEYS: usize = 16;

/// Longest file read back (16 RSA-4096 keys with comments fit easily).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Longest comment kept on a key line.
const MAX_COMMENT: usize = 100;

/// Key types dropbear 2022 accepts.
const KEY_TYPES: &[&str] =
    &["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"];

/// Where the keys live in `data_dir`.
pub fn keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ssh").join("authorized_keys")
}

/// Checks one public key line `TYPE BASE64 [COMMENT]` and returns it normalised (single
/// spaces, comment without control characters).
pub fn check_key(line: &str) -> Result<String, String> {
    const USAGE: &str = "a public key is `TYPE BASE64 [COMMENT]`, e.g. the line of ~/.ssh/id_ed25519.pub";
    let mut words = line.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err(USAGE.into());
    };
    if !KEY_TYPES.contains(&kind) {
        return Err(format!("`{kind}` is not a key type dropbear takes ({}); {USAGE}", KEY_TYPES.join(", ")));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| format!("the key is not base64; {USAGE}"))?;
    // The blob starts with its own type as an SSH string: 4-byte length, then the name.
    let named = raw.get(4..4 + kind.len()) == Some(kind.as_bytes())
        && raw.get(..4) == Some(&u32::try_from(kind.len()).unwrap_or(0).to_be_bytes()[..]);
    if !named {
        return Err(format!("the key data does not belong to a {kind} key"));
    }
    let comment: String =
        words.collect::<Vec<_>>().join(" ").chars().filter(|c| !c.is_control()).take(MAX_COMMENT).collect();
    Ok(if comment.is_empty() { format!("{kind} {blob}") } else { format!("{kind} {blob} {comment}") })
}

fn read_keys(data_dir: &Path) -> Result<Vec<String>, String> {
    use std::io::Read as _;
    let path = keys_path(data_dir);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut text = String::new();
    f.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

fn write_keys(data_dir: &Path, keys: &[String]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = data_dir.join("ssh");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // dropbear refuses keys in a group- or world-writable place.
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let mut text = String::new();
    for k in keys {
        let _ = writeln!(text, "{k}");
    }
    super::write_atomically(&keys_path(data_dir), text.as_bytes())
}

/// `ssh key add KEY`.
pub fn add(data_dir: &Path, line: &str) -> String {
    let key = match check_key(line) {
        Ok(k) => k,
        Err(e) => return format!("error: {e}"),
    };
    let result = read_keys(data_dir).and_then(|mut keys| {
        let blob = key.split_whitespace().nth(1).unwrap_or_default();
        if keys.iter().any(|k| k.split_whitespace().nth(1) == Some(blob)) {
            return Err("that key is already there".to_string());
        }
        if keys.len() >= MAX_KEYS {
            return Err(format!("already {MAX_KEYS} keys; remove one first (ssh key remove N)"));
        }
        keys.push(key.clone());
        write_keys(data_dir, &keys).map(|()| keys.len())
    });
    match result {
        Ok(n) => format!("key {n} added: {}", short(&key)),
        Err(e) => format!("error: {e}"),
    }
}

/// `ssh key list`.
pub fn list(data_dir: &Path) -> String {
    match read_keys(data_dir) {
        Ok(keys) if keys.is_empty() => "no SSH keys: add one with `ssh key add TYPE BASE64 [COMMENT]`".into(),
        Ok(keys) => keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{:>2}  {}", i + 1, short(k)))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("error: {e}"),
    }
}

/// `ssh key remove N` (1-based, as `list` shows).
pub fn remove(data_dir: &Path, n: usize) -> String {
    let result = read_keys(data_dir).and_then(|mut keys| {
        if n == 0 || n > keys.len() {
            return Err(format!("there is no key {n} ({} keys)", keys.len()));
        }
        let gone = keys.remove(n - 1);
        write_keys(data_dir, &keys).map(|()| gone)
    });
    match result {
        Ok(k) => format!("key {n} removed: {}", short(&k)),
        Err(e) => format!("error: {e}"),
    }
}

/// `TYPE AAAA…last12 comment`: enough to tell keys apart on a serial console.
fn short(key: &str) -> String {
    let mut w = key.split_whitespace();
    let kind = w.next().unwrap_or_default();
    let blob = w.next().unwrap_or_default();
    let tail: String = blob.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    let comment = w.collect::<Vec<_>>().join(" ");
    format!("{kind} …{tail} {comment}").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 public key line with made-up key bytes (the shape is what is checked).
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnZ4Ol0m0ZrXuJ9XKtN2M1BL9g0E3d0YcbV8x3ELzqb tech@laptop";

    #[test]
    fn a_well_formed_key_is_kept_with_its_comment() {
        assert_eq!(check_key(KEY).unwrap(), KEY);
    }

    #[test]
    fn keys_of_the_wrong_type_or_shape_are_refused() {
        assert!(check_key("ssh-ed25519").is_err());
        assert!(check_key("ssh-dss AAAAB3NzaC1kc3M= x").is_err());
        assert!(check_key("ssh-ed25519 !!!notbase64").is_err());
        // An RSA blob labelled as ed25519.
        assert!(check_key("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7").is_err());
    }

    #[test]
    fn keys_are_added_listed_and_removed_in_a_0700_directory() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("hakoden-ssh-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(add(&dir, KEY).starts_with("key 1 added"), "{}", add(&dir, KEY));
        assert!(add(&dir, KEY).contains("already there"));
        assert!(list(&dir).contains("tech@laptop"));
        let mode = std::fs::metadata(dir.join("ssh")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(remove(&dir, 2).starts_with("error:"));
        assert!(remove(&dir, 1).starts_with("key 1 removed"));
        assert!(list(&dir).starts_with("no SSH keys"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
