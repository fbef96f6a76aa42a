//! Making and checking secrets: random credentials, invitation codes, passwords.
//!
//! Two kinds of secret, two kinds of hash (docs/SECURITY.md):
//! - random credentials (session tokens, device credentials) carry 256 bits
//!   and invitation codes 50 bits of entropy that nobody chose; guessing them is
//!   hopeless whatever the hash, so they are stored as a plain SHA-256 — fast,
//!   and deterministic, so each request finds its credential through a unique
//!   index instead of trying every stored hash;
//! - passwords are chosen by people and guessable, so they are stored as
//!   argon2id PHC strings, whose cost makes guessing from a stolen dump slow.

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::AuthError;

/// Session tokens start with this, device credentials with [`DEVICE_PREFIX`]:
/// readable in a support conversation, and a leak scanner can match them.
pub const SESSION_PREFIX: &str = "fns_";
pub const DEVICE_PREFIX: &str = "fnd_";

/// Letters and digits nobody confuses when reading a code aloud or off a
/// screen: no 0/O, no 1/I. 32 symbols, so each carries exactly 5 bits.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// 10 symbols = 50 bits: at a thousand guesses a second, an online attacker
/// needs tens of thousands of years to find a code that expires in days.
const CODE_SYMBOLS: usize = 10;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Refuses megabyte "passwords" before they reach the (costly) hash.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A new credential: `prefix` + 256 random bits in base64url.
pub fn new_credential(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database stores of a random secret: its SHA-256, in hex.
pub fn fingerprint(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

/// A new invitation code, shown as `ABCDE-FGHJK` so it is easy to type.
pub fn new_invitation_code() -> String {
    let mut bytes = [0u8; CODE_SYMBOLS];
    rand::rng().fill_bytes(&mut bytes);
    let symbols: String = bytes
        .iter()
        // 256 is a multiple of 32: the low five bits are uniform.
        .map(|byte| CODE_ALPHABET[usize::from(byte & 31)] as char)
        .collect();
    format!("{}-{}", &symbols[..5], &symbols[5..])
}

/// The canonical form of a typed code (case, spaces and dashes do not
/// matter), or why it cannot be one.
pub fn normalise_invitation_code(typed: &str) -> Result<String, String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.chars().count() != CODE_SYMBOLS {
        return Err(format!(
            "an invitation code has {CODE_SYMBOLS} letters and digits (got {})",
            code.chars().count()
        ));
    }
    if let Some(bad) = code.chars().find(|c| !CODE_ALPHABET.contains(&(*c as u8))) {
        return Err(format!(
            "{bad:?} never appears in an invitation code (codes use {})",
            std::str::from_utf8(CODE_ALPHABET).expect("ASCII")
        ));
    }
    Ok(format!("{}-{}", &code[..5], &code[5..]))
}

/// Hashes a password with argon2id (the crate's default parameters, OWASP's
/// recommendation); off the async threads, since it is deliberately slow.
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(hashing)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(hashing)
    })
    .await
    .map_err(hashing)?
}

/// Whether `password` matches the PHC string `stored`. With no stored hash
/// (unknown email, account without password) a dummy hash is checked anyway,
/// so the response time does not tell which emails have accounts.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, AuthError> {
    let known = stored.is_some();
    let stored = match stored {
        Some(stored) => stored,
        None => dummy_hash().await?,
    };
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(hashing)?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(hashing)?
}

async fn dummy_hash() -> Result<String, AuthError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| hash_password(new_credential("")))
        .await
        .cloned()
}

fn hashing(error: impl std::fmt::Display) -> AuthError {
    AuthError::Hashing(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_carry_256_bits_behind_their_prefix() {
        let credential = new_credential(DEVICE_PREFIX);
        let encoded = credential.strip_prefix(DEVICE_PREFIX).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 32);
        assert_ne!(credential, new_credential(DEVICE_PREFIX));
    }

    #[test]
    fn a_code_is_read_back_whatever_its_case_spacing_and_dashes() {
        let code = new_invitation_code();
        assert_eq!(code.len(), 11);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(normalise_invitation_code(&typed).unwrap(), code);
        assert_eq!(
            fingerprint(&normalise_invitation_code(&typed).unwrap()),
            fingerprint(&code)
        );
    }

    #[test]
    fn a_mistyped_code_says_what_is_wrong() {
        assert!(normalise_invitation_code("ABCDE-FGH")
            .unwrap_err()
            .contains("10 letters"));
        assert!(normalise_invitation_code("ABCDE-FGHJO")
            .unwrap_err()
            .contains("'O'"));
    }

    #[tokio::test]
    async fn a_password_matches_its_hash_and_nothing_else() {
        let stored = hash_password("correct horse battery".to_string())
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse battery".to_string(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct horse battery!".to_string(), Some(stored))
                .await
                .unwrap()
        );
        assert!(!verify_password("anything".to_string(), None).await.unwrap());
    }
}
