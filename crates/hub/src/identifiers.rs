use kith_model::{IdentityAttrs, normalize};

/// The normalised identifiers of a record, as the identity index keeps them
/// and exact-match linking compares them: `email:<address>`, `phone:<E.164>`,
/// `id:<name>:<value>` for external ids.
pub fn identifiers_of(attrs: &IdentityAttrs, calling_code: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in &attrs.emails {
        if let Some(n) = normalize::email(e) {
            out.push(format!("email:{n}"));
        }
    }
    for p in &attrs.phones {
        if let Some(n) = normalize::phone(p, calling_code) {
            out.push(format!("phone:{n}"));
        }
    }
    for (name, v) in &attrs.external_ids {
        let v = v.trim();
        if !v.is_empty() {
            out.push(format!("id:{name}:{v}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_normalised_and_deduplicated() {
        let a = IdentityAttrs {
            emails: vec!["Ann@X.com".into(), "ann@x.com".into(), "junk".into()],
            phones: vec!["07700 900123".into(), "".into()],
            external_ids: [("card".to_string(), " FL-1 ".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            identifiers_of(&a, "44"),
            vec!["email:ann@x.com", "id:card:FL-1", "phone:+447700900123"]
        );
    }
}
