use serde::{Deserialize, Serialize};

use crate::{PartyId, RecordRef, Timestamp};

/// What a customer (or a member of staff on their behalf) contributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributionKind {
    /// "This value is wrong; the right one is …" — shown beside the source's value,
    /// never written back into the source.
    Correction,
    /// A preference (channel, topic, frequency).
    Preference,
    /// A consent given or withdrawn.
    Consent,
    /// Free-text feedback.
    Feedback,
}

impl ContributionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContributionKind::Correction => "correction",
            ContributionKind::Preference => "preference",
            ContributionKind::Consent => "consent",
            ContributionKind::Feedback => "feedback",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "correction" => Some(ContributionKind::Correction),
            "preference" => Some(ContributionKind::Preference),
            "consent" => Some(ContributionKind::Consent),
            "feedback" => Some(ContributionKind::Feedback),
            _ => None,
        }
    }
}

/// What a contribution is about, so it follows the right person when parties
/// are merged or split: a source record, or a verified identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Anchor {
    Record(RecordRef),
    /// A normalised identifier such as `email:ann@example.com` or `phone:+441632960001`.
    Identifier {
        value: String,
    },
}

/// A correction, preference, consent or feedback, with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub id: i64,
    /// The party it was made for at the time (resolved through redirects when read).
    pub party: PartyId,
    pub anchor: Anchor,
    pub kind: ContributionKind,
    /// The attribute or topic (`email`, `newsletter`, `channel:sms`).
    pub attribute: String,
    pub value: serde_json::Value,
    /// Who made it: `customer` or `staff:<name>`.
    pub by: String,
    pub created_at: Timestamp,
}
