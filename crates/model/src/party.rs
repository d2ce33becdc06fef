use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{RecordRef, Timestamp};

/// A party's stable id. It survives re-resolution: a merge keeps the oldest id
/// and redirects the other one to it.
///
/// Ids are ULIDs with a `p_` prefix, so they sort by creation time (an id's age
/// is its creation time) and can never be mistaken for an e-mail or a phone number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartyId(String);

impl PartyId {
    /// A new id for a party created at `at`.
    pub fn generate(at: Timestamp) -> Self {
        let ms = at.timestamp_millis().max(0) as u64;
        let ulid = ulid::Ulid::from_parts(ms, rand_bits());
        PartyId(format!("p_{}", ulid.to_string().to_ascii_lowercase()))
    }

    /// Accepts a string that has the shape of a party id.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("p_")?;
        if rest.len() == 26 && rest.chars().all(|c| c.is_ascii_alphanumeric()) {
            Some(PartyId(s.to_ascii_lowercase()))
        } else {
            None
        }
    }

    /// Wraps a stored id without checking its shape (the store only holds ids it made).
    pub fn from_stored(s: impl Into<String>) -> Self {
        PartyId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn rand_bits() -> u128 {
    // ulid's own generator draws from the OS; we only need uniqueness.
    ulid::Ulid::new().random()
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a party is a person or an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    #[default]
    Person,
    Organisation,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::Person => "person",
            PartyKind::Organisation => "organisation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "person" | "individual" | "p" => Some(PartyKind::Person),
            "organisation" | "organization" | "org" | "company" | "business" | "o" => {
                Some(PartyKind::Organisation)
            }
            _ => None,
        }
    }
}

/// A party's relation to the business. Derived from what its source records
/// say, never a pipeline stage it is pushed through: a party that never bought
/// is as much a party as a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Known to the business but has never bought (a newsletter subscriber, a lead).
    Prospect,
    /// Bought or held something once, holds nothing now.
    FormerCustomer,
    /// Holds an account, product or service now.
    Customer,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Prospect => "prospect",
            Relation::FormerCustomer => "former_customer",
            Relation::Customer => "customer",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
            .as_str()
        {
            "prospect" | "lead" | "never_bought" | "subscriber" => Some(Relation::Prospect),
            "former_customer" | "former" | "churned" | "cancelled" | "canceled" | "closed"
            | "inactive" => Some(Relation::FormerCustomer),
            "customer" | "active" | "member" => Some(Relation::Customer),
            _ => None,
        }
    }
}

/// A person or organisation with a stable id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: PartyId,
    pub kind: PartyKind,
    pub created_at: Timestamp,
    /// The record the party was founded on: after a split, the part that holds
    /// it keeps the id.
    pub founding_record: RecordRef,
}

/// How two parties relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// Both live at the same address (symmetric).
    Household,
    /// `from` works for the organisation `to`.
    EmployeeOf,
}

impl RelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::Household => "household",
            RelationKind::EmployeeOf => "employee_of",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "household" => Some(RelationKind::Household),
            "employee_of" => Some(RelationKind::EmployeeOf),
            _ => None,
        }
    }
}

/// A relationship between two parties, with the evidence it was derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub from: PartyId,
    pub to: PartyId,
    pub kind: RelationKind,
    /// Why kith believes it (e.g. "same address: 12 high st, ab1 2cd").
    pub evidence: String,
}

/// The evidence that a source record belongs to a party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub record: RecordRef,
    pub party: PartyId,
    /// The rule or model that decided the link (e.g. `exact:email`).
    pub rule: String,
    /// Match score where a model scored it; 1.0 for deterministic rules.
    pub score: f64,
    /// The comparisons that decided it, readable by people.
    pub evidence: Vec<String>,
    pub linked_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_ids_round_trip_and_sort_by_time() {
        let early = PartyId::generate("2020-01-01T00:00:00Z".parse().unwrap());
        let late = PartyId::generate("2024-01-01T00:00:00Z".parse().unwrap());
        assert!(early < late);
        assert_eq!(PartyId::parse(early.as_str()), Some(early.clone()));
        assert_eq!(PartyId::parse("someone@example.com"), None);
        assert_eq!(PartyId::parse("p_short"), None);
    }

    #[test]
    fn relation_words_from_sources() {
        assert_eq!(Relation::parse("Active"), Some(Relation::Customer));
        assert_eq!(Relation::parse("churned"), Some(Relation::FormerCustomer));
        assert_eq!(Relation::parse("never bought"), Some(Relation::Prospect));
        assert_eq!(Relation::parse("???"), None);
    }
}
