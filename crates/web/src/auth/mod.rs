//! Sign-in and access checks.
//!
//! - Customers sign in with a one-time code sent to an identifier a verified
//!   source holds for them ([`codes`]); staff with an e-mail address and a
//!   password ([`password`]); applications with an API key ([`keys`]).
//! - A signed-in browser holds a random session token in an HttpOnly,
//!   SameSite=Strict cookie; the store keeps only its hash. Sessions expire
//!   when idle and at a fixed maximum, and are bound to the browser's
//!   User-Agent ([`session`]).
//! - Every form that changes something carries the session's anti-forgery
//!   token; forms used before sign-in carry a token that must match a cookie
//!   ([`csrf`]).

pub mod codes;
pub mod csrf;
pub mod keys;
pub mod password;
pub mod session;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random secret: `bytes` random bytes as lower-case hex.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Lower-case hex SHA-256, how tokens and keys are stored.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Compares secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token(32);
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token(32));
        assert_eq!(sha256_hex("x"), sha256_hex("x"));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
