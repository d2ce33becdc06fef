//! Staff passwords, hashed with Argon2id (the PHC string holds salt and parameters).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// The shortest password kith accepts for staff.
pub const MIN_LENGTH: usize = 12;

pub fn hash(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!(
            "a staff password needs at least {MIN_LENGTH} characters"
        ));
    }
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt =
        SaltString::encode_b64(&bytes).map_err(|e| format!("cannot salt the password: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches a stored PHC string; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A password for a new account: 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A hash that no password matches, verified against when the e-mail address
/// is unknown so that a wrong address and a wrong password take the same time.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&generate()).expect("a generated password hashes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_short_ones_are_refused() {
        let p = generate();
        let h = hash(&p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&p, &h));
        assert!(!verify("wrong password!", &h));
        assert!(!verify(&p, "not a hash"));
        assert!(hash("short").is_err());
    }
}
