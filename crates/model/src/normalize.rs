//! Normalisation of identifying values, enough for exact-match linking.
//!
//! The resolver will grow fuzzier comparisons; these functions define what
//! "the same e-mail" and "the same phone" mean for deterministic links and for
//! the hashed identifiers on the suppression list.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Lower-cased, trimmed e-mail address, or `None` when it is not one.
pub fn email(raw: &str) -> Option<String> {
    let e = raw
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(char::is_whitespace)
        && !domain.contains('@');
    valid.then_some(e)
}

/// The international calling code of a region (ISO 3166 alpha-2), for the
/// regions kith knows; the default region comes from configuration.
pub fn calling_code(region: &str) -> Option<&'static str> {
    Some(match region.to_ascii_uppercase().as_str() {
        "GB" | "UK" => "44",
        "US" | "CA" => "1",
        "IE" => "353",
        "DE" => "49",
        "FR" => "33",
        "NL" => "31",
        "BE" => "32",
        "ES" => "34",
        "IT" => "39",
        "AU" => "61",
        "NZ" => "64",
        "SE" => "46",
        "DK" => "45",
        "NO" => "47",
        "CH" => "41",
        "AT" => "43",
        "PT" => "351",
        "PL" => "48",
        "IN" => "91",
        _ => return None,
    })
}

/// A phone number in E.164 form (`+441632960001`), or `None` when it has too
/// few or too many digits to be one. National numbers (a leading `0`, or none)
/// are read in `default_code`, the calling code of the default region.
pub fn phone(raw: &str, default_code: &str) -> Option<String> {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let international = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if default_code == "1" && digits.len() == 11 && digits.starts_with('1') {
        digits
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("{default_code}{rest}")
    } else {
        format!("{default_code}{digits}")
    };
    // E.164 allows at most 15 digits; fewer than 8 is not a reachable number.
    (8..=15)
        .contains(&international.len())
        .then(|| format!("+{international}"))
}

/// A name or free-text value folded for comparison: accents removed,
/// lower case, punctuation dropped, whitespace collapsed.
pub fn text(raw: &str) -> String {
    let folded: String = raw
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A postcode folded for comparison: upper case, no spaces.
pub fn postcode(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// A one-way hash of a normalised identifier (`email:…`, `phone:…`), so the
/// suppression list can refuse an erased identifier without keeping it.
pub fn identifier_hash(identifier: &str) -> String {
    hex::encode(Sha256::digest(identifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("  Ann.Lee@Example.COM ").as_deref(),
            Some("ann.lee@example.com")
        );
        assert_eq!(email("<bob@x.org>").as_deref(), Some("bob@x.org"));
        assert_eq!(email("not an email"), None);
        assert_eq!(email("a@b"), None);
        assert_eq!(email("a b@c.com"), None);
        assert_eq!(email(""), None);
        assert_eq!(email("@x.com"), None);
    }

    #[test]
    fn phones_in_several_formats_agree() {
        let want = Some("+447700900123".to_string());
        assert_eq!(phone("07700 900123", "44"), want);
        assert_eq!(phone("+44 7700 900123", "44"), want);
        assert_eq!(phone("0044-7700-900-123", "44"), want);
        assert_eq!(phone("(07700) 900.123", "44"), want);
        assert_eq!(
            phone("+1 (415) 555-0100", "44").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            phone("1-415-555-0100", "1").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(phone("123", "44"), None);
        assert_eq!(phone("n/a", "44"), None);
        assert_eq!(phone("+1234567890123456", "44"), None);
    }

    #[test]
    fn text_folds_accents_case_and_punctuation() {
        assert_eq!(text("  José  O'Brien-Núñez "), "jose o brien nunez");
        assert_eq!(text(""), "");
        assert_eq!(postcode("sw1a 1aa"), "SW1A1AA");
    }

    #[test]
    fn identifier_hash_is_stable_and_hides_the_value() {
        let h = identifier_hash("email:ann@example.com");
        assert_eq!(h.len(), 64);
        assert_eq!(h, identifier_hash("email:ann@example.com"));
        assert!(!h.contains("ann"));
        assert_eq!(calling_code("gb"), Some("44"));
        assert_eq!(calling_code("ZZ"), None);
    }
}
