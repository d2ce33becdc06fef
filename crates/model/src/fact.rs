use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The kind of a fact. Kinds are open: configuration may name any kind, and
/// kith knows nothing special about a new one except its name. The well-known
/// kinds below are what the views and scenario rules understand out of the box.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FactKind(String);

impl FactKind {
    pub const PROFILE: &'static str = "profile";
    pub const ACCOUNT: &'static str = "account";
    pub const HOLDING: &'static str = "holding";
    pub const ENTITLEMENT: &'static str = "entitlement";
    pub const TRANSACTION: &'static str = "transaction";
    pub const INTERACTION: &'static str = "interaction";
    pub const CASE: &'static str = "case";
    pub const OFFER: &'static str = "offer";
    pub const PREFERENCE: &'static str = "preference";
    pub const CONSENT: &'static str = "consent";
    pub const FEEDBACK: &'static str = "feedback";

    /// The kinds kith ships with, in the order a view shows them.
    pub const WELL_KNOWN: [&'static str; 11] = [
        Self::PROFILE,
        Self::ACCOUNT,
        Self::HOLDING,
        Self::ENTITLEMENT,
        Self::TRANSACTION,
        Self::INTERACTION,
        Self::CASE,
        Self::OFFER,
        Self::PREFERENCE,
        Self::CONSENT,
        Self::FEEDBACK,
    ];

    /// A kind name is lower-case letters, digits and underscores, starting with a letter.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        ok.then(|| FactKind(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_well_known(&self) -> bool {
        Self::WELL_KNOWN.contains(&self.0.as_str())
    }

    /// Sort position in a view: well-known kinds first in their order, then the rest by name.
    pub fn rank(&self) -> usize {
        Self::WELL_KNOWN
            .iter()
            .position(|k| *k == self.0)
            .unwrap_or(Self::WELL_KNOWN.len())
    }
}

impl fmt::Display for FactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a fact set holds one value per party (a profile attribute, which
/// can conflict across sources) or many (orders, tickets, offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cardinality {
    One,
    #[default]
    Many,
}

/// Where a fact came from and how fresh it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The source's name in the configuration (`contributions` for what customers added).
    pub source: String,
    /// The key of the source record (the person) the fact was found through.
    pub key: String,
    /// The fact set it was read from.
    pub fact_set: String,
    /// When the source says the fact last changed, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// When kith read it.
    pub fetched_at: Timestamp,
}

/// Anything known about a party.
///
/// A single-valued fact has an `attribute` name and a scalar `value`; a
/// many-valued fact has no attribute and an object `value` holding the row's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub kind: FactKind,
    pub cardinality: Cardinality,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    pub value: serde_json::Value,
    /// The fact's own date (an order's date, a ticket's opening) used for ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Timestamp>,
    pub provenance: Provenance,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_open_but_well_formed() {
        assert!(FactKind::parse("warranty_claim").is_some());
        assert!(!FactKind::parse("warranty_claim").unwrap().is_well_known());
        assert!(FactKind::parse("case").unwrap().is_well_known());
        assert!(FactKind::parse("Case").is_none());
        assert!(FactKind::parse("").is_none());
        assert!(FactKind::parse("9lives").is_none());
        assert!(FactKind::parse("with space").is_none());
        assert!(
            FactKind::parse("profile").unwrap().rank() < FactKind::parse("zzz").unwrap().rank()
        );
    }
}
