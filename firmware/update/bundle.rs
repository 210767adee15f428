//! The signed update bundle: its byte layout, how the build tool makes one and how the box
//! checks one. Sans-IO: bytes in, a verdict out; no file, no clock.
//!
//! ```text
//! offset      size  content
//! 0           8     magic "HAKOBND1"
//! 8           4     manifest length M (big-endian u32, at most MAX_MANIFEST_BYTES)
//! 12          M     manifest: UTF-8 JSON {"format":1,"version","board","size","sha256"}
//! 12+M        64    Ed25519 signature over bytes 0..12+M (magic, length and manifest)
//! 76+M        size  payload: the rootfs squashfs written to the inactive slot
//! ```
//!
//! The signature covers the manifest, and the manifest holds the payload's length and sha256,
//! so one signature check plus one digest prove the whole file. Nothing is trusted before the
//! signature is: the manifest is parsed only after it verified.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first bytes of every bundle; also how the web tells a bundle from another upload.
pub const MAGIC: &[u8; 8] = b"HAKOBND1";

/// The manifest format this firmware understands.
pub const FORMAT: u32 = 1;

/// Largest manifest: five short fields fit in a few hundred bytes; the cap stops a crafted
/// length from making the box hash or parse megabytes before the signature check fails.
pub const MAX_MANIFEST_BYTES: usize = 4096;

/// Longest version or board string: build versions are `0.1.0-<12 hex>`, boards are the
/// `board/` directory names; 64 leaves room and keeps log lines short.
pub const MAX_NAME_BYTES: usize = 64;

/// Ed25519 signatures are 64 bytes, public keys 32.
pub const SIGNATURE_BYTES: usize = 64;
/// See [`SIGNATURE_BYTES`].
pub const PUBLIC_KEY_BYTES: usize = 32;

/// The bytes before the manifest: magic and length.
const HEADER_BYTES: usize = 12;

/// Most bytes a bundle adds to its payload: header, the largest manifest, signature.
pub const OVERHEAD_BYTES: u64 = (HEADER_BYTES + MAX_MANIFEST_BYTES + SIGNATURE_BYTES) as u64;

/// What a squashfs image starts with ("hsqs", little-endian superblock magic).
const SQUASHFS_MAGIC: &[u8; 4] = b"hsqs";

/// What the signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bundle format ([`FORMAT`]).
    pub format: u32,
    /// Firmware version (`/etc/hakoden/version` of the payload).
    pub version: String,
    /// Board profile the payload was built for (`board/NAME`).
    pub board: String,
    /// Payload length in bytes.
    pub size: u64,
    /// Payload sha256, lower-case hex.
    pub sha256: String,
}

/// A bundle that passed every check: its manifest and the payload to write.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The signed manifest.
    pub manifest: Manifest,
    /// The squashfs, exactly `manifest.size` bytes whose sha256 is `manifest.sha256`.
    pub payload: &'a [u8],
}

/// Why a bundle is refused. The text is shown to the technician as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Not a bundle at all (no magic): the web answers 415.
    NotABundle,
    /// The file ends before the part named.
    Truncated(&'static str),
    /// The manifest length field is over [`MAX_MANIFEST_BYTES`].
    ManifestTooLarge(usize),
    /// The signature does not verify with the box's key.
    BadSignature,
    /// Signed, but not a manifest this firmware reads.
    BadManifest(String),
    /// Built for another board.
    WrongBoard {
        /// This box's board.
        want: String,
        /// The bundle's.
        got: String,
    },
    /// The payload is larger than the slot.
    TooLarge {
        /// Payload bytes.
        size: u64,
        /// Slot bytes.
        max: u64,
    },
    /// More bytes after the payload than the manifest announced.
    TrailingData,
    /// The payload does not match the signed digest.
    Corrupt,
    /// The payload is not a squashfs image.
    NotSquashfs,
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::NotABundle => write!(f, "not a Hakoden update bundle (no HAKOBND1 header)"),
            BundleError::Truncated(part) => write!(f, "the bundle is truncated (it ends in its {part})"),
            BundleError::ManifestTooLarge(n) => {
                write!(f, "the bundle's manifest is {n} bytes (at most {MAX_MANIFEST_BYTES})")
            }
            BundleError::BadSignature => {
                write!(f, "bad signature: the bundle was not signed with this box's update key")
            }
            BundleError::BadManifest(why) => write!(f, "unreadable manifest: {why}"),
            BundleError::WrongBoard { want, got } => {
                write!(f, "the bundle is for board {got}, this box is {want}")
            }
            BundleError::TooLarge { size, max } => {
                write!(f, "the firmware is {size} bytes, the slot holds {max}")
            }
            BundleError::TrailingData => write!(f, "the bundle has bytes after its firmware"),
            BundleError::Corrupt => write!(f, "the firmware does not match its signed sha256 (corrupt)"),
            BundleError::NotSquashfs => write!(f, "the firmware is not a squashfs image"),
        }
    }
}

impl std::error::Error for BundleError {}

/// Whether `bytes` start like a bundle (enough for the web to answer 415 otherwise).
pub fn looks_like_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Checks a bundle against the box's public key, board and slot size, in this order: header,
/// signature, manifest, board, size, length, digest. Nothing of the bundle is believed before
/// its signature verified.
pub fn verify<'a>(
    bytes: &'a [u8],
    public_key: &[u8; PUBLIC_KEY_BYTES],
    board: &str,
    max_size: u64,
) -> Result<Verified<'a>, BundleError> {
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
            BundleError::Truncated("header")
        } else {
            BundleError::NotABundle
        });
    }
    if !looks_like_bundle(bytes) {
        return Err(BundleError::NotABundle);
    }
    let len_bytes: [u8; 4] = bytes
        .get(MAGIC.len()..HEADER_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(BundleError::Truncated("header"))?;
    let manifest_len = u32::from_be_bytes(len_bytes) as usize;
    if manifest_len > MAX_MANIFEST_BYTES {
        return Err(BundleError::ManifestTooLarge(manifest_len));
    }
    let signed_end = HEADER_BYTES + manifest_len;
    let signed = bytes.get(..signed_end).ok_or(BundleError::Truncated("manifest"))?;
    let signature =
        bytes.get(signed_end..signed_end + SIGNATURE_BYTES).ok_or(BundleError::Truncated("signature"))?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(signed, signature)
        .map_err(|_| BundleError::BadSignature)?;
    let manifest: Manifest = serde_json::from_slice(signed.get(HEADER_BYTES..).unwrap_or_default())
        .map_err(|e| BundleError::BadManifest(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(BundleError::BadManifest(format!(
            "format {} (this box reads {FORMAT})",
            manifest.format
        )));
    }
    if manifest.board != board {
        return Err(BundleError::WrongBoard { want: board.to_string(), got: manifest.board.clone() });
    }
    if manifest.size > max_size {
        return Err(BundleError::TooLarge { size: manifest.size, max: max_size });
    }
    let payload = bytes.get(signed_end + SIGNATURE_BYTES..).unwrap_or_default();
    let size = usize::try_from(manifest.size)
        .map_err(|_| BundleError::TooLarge { size: manifest.size, max: max_size })?;
    if payload.len() < size {
        return Err(BundleError::Truncated("firmware"));
    }
    if payload.len() > size {
        return Err(BundleError::TrailingData);
    }
    if hex(&Sha256::digest(payload)) != manifest.sha256 {
        return Err(BundleError::Corrupt);
    }
    if !payload.starts_with(SQUASHFS_MAGIC) {
        return Err(BundleError::NotSquashfs);
    }
    Ok(Verified { manifest, payload })
}

/// Makes a bundle (the build side, `hakoden bundle make`). Refuses names the box would refuse.
pub fn build(key: &Ed25519KeyPair, version: &str, board: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    for (what, v) in [("version", version), ("board", board)] {
        if v.is_empty() || v.len() > MAX_NAME_BYTES || v.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!("{what} must be 1-{MAX_NAME_BYTES} printable characters without spaces"));
        }
    }
    if !payload.starts_with(SQUASHFS_MAGIC) {
        return Err("the firmware is not a squashfs image".into());
    }
    let manifest = Manifest {
        format: FORMAT,
        version: version.to_string(),
        board: board.to_string(),
        size: payload.len() as u64,
        sha256: hex(&Sha256::digest(payload)),
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let len = u32::try_from(json.len()).map_err(|_| "manifest too large".to_string())?;
    let mut out = Vec::with_capacity(HEADER_BYTES + json.len() + SIGNATURE_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    let signature = key.sign(&out);
    out.extend_from_slice(signature.as_ref());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Reads a signing key: PKCS#8 PEM ("PRIVATE KEY", as `openssl genpkey -algorithm ed25519`
/// writes it) or DER.
pub fn signing_key(file: &[u8]) -> Result<Ed25519KeyPair, String> {
    let der = match std::str::from_utf8(file) {
        Ok(text) if text.contains("-----BEGIN") => {
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| format!("bad PEM: {e}"))?
        }
        _ => file.to_vec(),
    };
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))
}

/// The public half of a signing key as the box stores it (64 hex digits).
pub fn public_key_hex(key: &Ed25519KeyPair) -> String {
    hex(key.public_key().as_ref())
}

/// Parses a public key file: 64 hex digits (whitespace around them ignored).
pub fn parse_public_key(text: &str) -> Result<[u8; PUBLIC_KEY_BYTES], String> {
    let t = text.trim();
    if t.len() != 2 * PUBLIC_KEY_BYTES || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("a public key is {} hex digits", 2 * PUBLIC_KEY_BYTES));
    }
    let mut key = [0u8; PUBLIC_KEY_BYTES];
    for (i, k) in key.iter_mut().enumerate() {
        let pair = t.get(2 * i..2 * i + 2).ok_or("short key")?;
        *k = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    const BOARD: &str = "qemu-virt-aarch64";
    const MAX: u64 = 64 << 20;

    fn key() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("key")
    }

    fn public(k: &Ed25519KeyPair) -> [u8; PUBLIC_KEY_BYTES] {
        parse_public_key(&public_key_hex(k)).expect("hex round trip")
    }

    fn squashfs(n: usize) -> Vec<u8> {
        let mut p = b"hsqs".to_vec();
        p.extend((0..n).map(|i| (i % 251) as u8));
        p
    }

    #[test]
    fn a_good_bundle_verifies_and_yields_its_payload() {
        let k = key();
        let payload = squashfs(10_000);
        let b = build(&k, "0.2.0-abc", BOARD, &payload).expect("build");
        let v = verify(&b, &public(&k), BOARD, MAX).expect("verifies");
        assert_eq!(v.payload, &payload[..]);
        assert_eq!(v.manifest.version, "0.2.0-abc");
        assert_eq!(v.manifest.size, payload.len() as u64);
    }

    #[test]
    fn another_key_is_a_bad_signature() {
        let b = build(&key(), "1", BOARD, &squashfs(100)).expect("build");
        assert_eq!(verify(&b, &public(&key()), BOARD, MAX), Err(BundleError::BadSignature));
    }

    #[test]
    fn an_edited_manifest_is_a_bad_signature() {
        let k = key();
        let mut b = build(&k, "1.0", BOARD, &squashfs(100)).expect("build");
        let at = b.windows(3).position(|w| w == b"1.0").expect("version in the manifest");
        b[at] = b'9';
        assert_eq!(verify(&b, &public(&k), BOARD, MAX), Err(BundleError::BadSignature));
    }

    #[test]
    fn a_flipped_payload_byte_is_corrupt() {
        let k = key();
        let mut b = build(&k, "1", BOARD, &squashfs(100)).expect("build");
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_eq!(verify(&b, &public(&k), BOARD, MAX), Err(BundleError::Corrupt));
    }

    #[test]
    fn a_bundle_for_another_board_is_refused() {
        let k = key();
        let b = build(&k, "1", "raspberry-pi-4", &squashfs(100)).expect("build");
        assert_eq!(
            verify(&b, &public(&k), BOARD, MAX),
            Err(BundleError::WrongBoard { want: BOARD.into(), got: "raspberry-pi-4".into() })
        );
    }

    #[test]
    fn a_truncated_bundle_is_refused_at_every_cut() {
        let k = key();
        let b = build(&k, "1", BOARD, &squashfs(300)).expect("build");
        let pk = public(&k);
        for cut in 1..b.len() {
            let r = verify(&b[..cut], &pk, BOARD, MAX);
            assert!(matches!(r, Err(BundleError::Truncated(_))), "cut at {cut}: {r:?}");
        }
    }

    #[test]
    fn an_oversized_payload_is_refused_before_hashing() {
        let k = key();
        let b = build(&k, "1", BOARD, &squashfs(2_000)).expect("build");
        assert_eq!(
            verify(&b, &public(&k), BOARD, 1_000),
            Err(BundleError::TooLarge { size: 2_004, max: 1_000 })
        );
    }

    #[test]
    fn bytes_after_the_payload_are_refused() {
        let k = key();
        let mut b = build(&k, "1", BOARD, &squashfs(100)).expect("build");
        b.push(0);
        assert_eq!(verify(&b, &public(&k), BOARD, MAX), Err(BundleError::TrailingData));
    }

    #[test]
    fn other_files_are_not_bundles() {
        let pk = public(&key());
        for junk in [&b""[..], b"PK\x03\x04zipfile", b"hsqs....", b"<html>"] {
            assert_eq!(verify(junk, &pk, BOARD, MAX), Err(BundleError::NotABundle), "{junk:?}");
        }
    }

    #[test]
    fn a_huge_manifest_length_is_refused_without_reading_it() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            verify(&b, &public(&key()), BOARD, MAX),
            Err(BundleError::ManifestTooLarge(u32::MAX as usize))
        );
    }

    #[test]
    fn the_build_refuses_a_payload_that_is_not_squashfs() {
        assert!(build(&key(), "1", BOARD, b"ELF.....").is_err());
        assert!(build(&key(), "with space", BOARD, &squashfs(1)).is_err());
    }

    #[test]
    fn an_openssl_pem_key_signs_bundles_its_public_half_verifies() {
        // `openssl genpkey -algorithm ed25519` output (a throwaway test key).
        let pem = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHbhyYQJ1Pw7mRrmXxN3m+e5IXaFadzEUzUwHhokfFGm\n-----END PRIVATE KEY-----\n";
        let k = signing_key(pem).expect("PEM key");
        let b = build(&k, "1", BOARD, &squashfs(10)).expect("build");
        assert!(verify(&b, &public(&k), BOARD, MAX).is_ok());
    }

    #[test]
    fn public_key_files_must_be_64_hex_digits() {
        assert!(parse_public_key("zz").is_err());
        assert!(parse_public_key(&"g".repeat(64)).is_err());
        assert_eq!(parse_public_key(&format!("{}\n", "0a".repeat(32))), Ok([10u8; 32]));
    }
}
