use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CursorValue, PartyKind, Relation, Timestamp};

/// One source record, by the name of its source and its key there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordRef {
    pub source: String,
    pub key: String,
}

impl RecordRef {
    pub fn new(source: impl Into<String>, key: impl Into<String>) -> Self {
        RecordRef {
            source: source.into(),
            key: key.into(),
        }
    }

    /// Parses `source:key` (the key may itself contain colons).
    pub fn parse(s: &str) -> Option<Self> {
        let (source, key) = s.split_once(':')?;
        (!source.is_empty() && !key.is_empty()).then(|| RecordRef::new(source, key))
    }
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.key)
    }
}

/// The identifying attributes of one source record, as the source holds them
/// (not normalised: normalisation is the resolver's job and may improve).
///
/// These, and nothing else from a source, are kept in the hub's identity index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAttrs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// For a person: the organisation they work for. For an organisation: its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// Ids the record carries from other systems (`loyalty_no`, `vat_number`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
}

impl IdentityAttrs {
    /// A display name for people reading a report.
    pub fn display_name(&self) -> Option<String> {
        if let Some(n) = self.full_name.as_deref().filter(|s| !s.trim().is_empty()) {
            return Some(n.trim().to_string());
        }
        let parts: Vec<&str> = [self.given_name.as_deref(), self.family_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            self.org_name.clone()
        } else {
            Some(parts.join(" "))
        }
    }

    /// Every value in the attributes, for checks such as "is this value an identifier".
    pub fn values(&self) -> impl Iterator<Item = &str> {
        [
            &self.full_name,
            &self.given_name,
            &self.family_name,
            &self.street,
            &self.city,
            &self.postcode,
            &self.country,
            &self.date_of_birth,
            &self.org_name,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .chain(self.emails.iter().map(String::as_str))
        .chain(self.phones.iter().map(String::as_str))
        .chain(self.external_ids.values().map(String::as_str))
    }
}

/// A source record as the identity index holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub record: RecordRef,
    pub kind: PartyKind,
    /// What the source says of the relation (a status column or the source's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    pub attrs: IdentityAttrs,
    /// The value of the source's incremental cursor for this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorValue>,
    /// When the source says the record last changed, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_refs_parse_with_colons_in_key() {
        let r = RecordRef::parse("shop:order:42").unwrap();
        assert_eq!(r.source, "shop");
        assert_eq!(r.key, "order:42");
        assert_eq!(r.to_string(), "shop:order:42");
        assert!(RecordRef::parse("nocolon").is_none());
        assert!(RecordRef::parse(":key").is_none());
    }

    #[test]
    fn display_name_prefers_full_name_then_parts_then_org() {
        let mut a = IdentityAttrs {
            given_name: Some(" Ann ".into()),
            family_name: Some("Lee".into()),
            ..Default::default()
        };
        assert_eq!(a.display_name().as_deref(), Some("Ann Lee"));
        a.full_name = Some("Dr Ann Lee".into());
        assert_eq!(a.display_name().as_deref(), Some("Dr Ann Lee"));
        let org = IdentityAttrs {
            org_name: Some("Acme Ltd".into()),
            ..Default::default()
        };
        assert_eq!(org.display_name().as_deref(), Some("Acme Ltd"));
    }
}
