//! Webhook signatures: `X-Kith-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! the request body under the webhook's secret. Pure functions, so a
//! receiver written in Rust can verify with the same code.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-kith-signature";
/// The header naming the batch: `<first seq>-<last seq>`.
pub const DELIVERY_HEADER: &str = "x-kith-delivery";
/// The header carrying when the batch was sent (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-kith-timestamp";

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (a long one is hashed first).
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// The `X-Kith-Signature` value for a body.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` under `secret`, compared in
/// constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(given) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_rfc_4231_vector_and_verify() {
        // RFC 4231 test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
    }

    #[test]
    fn a_changed_body_key_or_header_does_not_verify() {
        let body = br#"{"changes":[{"seq":1}]}"#;
        let sig = sign(b"s3cret-s3cret-s3cret", body);
        assert!(verify(b"s3cret-s3cret-s3cret", body, &sig));
        assert!(!verify(b"s3cret-s3cret-s3creT", body, &sig));
        assert!(!verify(
            b"s3cret-s3cret-s3cret",
            br#"{"changes":[{"seq":2}]}"#,
            &sig
        ));
        assert!(!verify(
            b"s3cret-s3cret-s3cret",
            body,
            sig.trim_start_matches("sha256=")
        ));
        assert!(!verify(b"s3cret-s3cret-s3cret", body, "sha256=zz"));
        assert!(!verify(b"s3cret-s3cret-s3cret", body, &sig[..20]));
    }
}
