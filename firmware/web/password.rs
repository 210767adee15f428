//! Password hashing (argon2id, PHC strings) and generated initial passwords.
//!
//! Hashing is deliberately slow (~50 ms on a laptop, a few hundred on the box) and takes
//! [`argon2::Params::DEFAULT_M_COST`] KiB of RAM, so callers run it off the async workers and
//! bound how many run at once (`api::HASH_SLOTS`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Characters of a generated password: inside the policy's 10-20.
const GENERATED_CHARS: usize = 16;

/// Bytes of salt: argon2's recommended length.
const SALT_BYTES: usize = 16;

/// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): the RAM cost is what makes GPU
/// guessing expensive; one lane because the box has few cores and serves other work.
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| format!("no OS randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches a stored PHC string. A string that does not parse matches
/// nothing (a corrupt entry must not become "any password").
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A PHC string of a random password: verifying an unknown user id against it costs the same
/// time as a real user, so timing does not tell which ids exist.
pub fn dummy_hash() -> String {
    hash(&generate()).unwrap_or_default()
}

/// A random password meeting the policy: no look-alikes (0/O, 1/l/I), and at least one
/// upper-case letter, lower-case letter and digit.
pub fn generate() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    let mut bytes = [0u8; GENERATED_CHARS];
    if getrandom::fill(&mut bytes).is_err() {
        log::error!("no OS randomness for a password");
    }
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            // The first three positions guarantee the mix; the rest draw from all three sets.
            let set: &[u8] = match i {
                0 => UPPER,
                1 => LOWER,
                2 => DIGIT,
                _ => match b % 3 {
                    0 => UPPER,
                    1 => LOWER,
                    _ => DIGIT,
                },
            };
            char::from(set.get(usize::from(*b / 3) % set.len()).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// A random token as lower-case hex ([`super::auth::TOKEN_BYTES`] bytes).
pub fn token() -> Result<String, String> {
    let mut b = [0u8; super::auth::TOKEN_BYTES];
    getrandom::fill(&mut b).map_err(|e| format!("no OS randomness: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash("Abcdefgh12").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Abcdefgh12", &h));
        assert!(!verify("Abcdefgh13", &h));
        assert!(!verify("Abcdefgh12", "not a phc string"));
    }

    #[test]
    fn generated_passwords_meet_the_policy() {
        for _ in 0..50 {
            let p = generate();
            assert_eq!(super::super::auth::check_password(&p), Ok(()), "{p}");
        }
    }

    #[test]
    fn tokens_are_distinct_hex() {
        let a = token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, token().unwrap());
    }
}
