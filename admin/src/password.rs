//! Console passwords: argon2id in the PHC string form (salt and cost inside
//! the string), and the one-time passwords `operator add` prints. Shared by
//! `ledgerhook-admin` (which hashes) and the console (which verifies and
//! hashes the replacement).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use ring::rand::{SecureRandom as _, SystemRandom};

/// Shortest password an operator may choose.
pub const MIN_LENGTH: usize = 12;
/// Longest, in bytes: argon2 takes any length, but an unbounded one costs
/// hashing time.
pub const MAX_LENGTH: usize = 256;

/// Letters and digits that cannot be mistaken for each other when read
/// off a terminal (no 0/O, 1/l/I).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Fills `bytes` from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator works");
    bytes
}

/// A fresh one-time password: 20 characters, about 115 bits.
pub fn one_time() -> String {
    random_bytes::<20>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The argon2id hash of `password` (the crate's default cost: 19 MiB, two
/// passes), with a random salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches `stored`; false for a malformed hash too.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Why a chosen password is refused, if it is.
pub fn weakness(password: &str) -> Option<String> {
    if password.chars().count() < MIN_LENGTH {
        return Some(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    // Bytes, as signing in measures it: a long non-ASCII password that
    // passed here must still be accepted there.
    if password.len() > MAX_LENGTH {
        return Some(format!("a password has at most {MAX_LENGTH} bytes"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn one_time_passwords_differ_and_use_the_alphabet() {
        let (a, b) = (one_time(), one_time());
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert!(weakness(&a).is_none());
        assert!(weakness("short").is_some());
    }
}
