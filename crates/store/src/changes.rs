//! The change feed's vocabulary: what kith observed, as rows of the outbox.
//!
//! Every write method of a [`crate::HubStore`] that changes something another
//! system may care about appends its [`NewChange`]s in its own transaction,
//! so a change and its feed entry are committed together or not at all. The
//! builders here are the one place the rows' `data` is shaped, so every store
//! implementation emits the same feed.
//!
//! The feed leaves kith (server-sent events, webhooks, NATS), so `data` holds
//! ids, record refs, kinds and counts — never identity values (names, e-mail
//! addresses, phone numbers) nor fact values. A consumer fetches details
//! through the API with a key. The exception is contributions: the attribute
//! and, for consents and preferences, the new value (`newsletter = false`)
//! are what a consumer must act on.

use kith_model::{ContributionKind, Link, Party, PartyId, RecordRef, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{ErasureRequest, NewContribution, ReviewStatus};

/// What kind of thing changed.
///
/// A split shows as `party.created` for the new party and `link.changed` for
/// each record that moved to it; a merge as `party.merged` and the
/// `link.changed` of the records that moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChangeKind {
    /// A record entered the identity index (a sync found it, or ingest identified a user).
    #[serde(rename = "record.inserted")]
    RecordInserted,
    /// A record's identifying attributes, cursor or identifiers changed.
    #[serde(rename = "record.updated")]
    RecordUpdated,
    /// A record left the identity index (gone from its source, or erased).
    #[serde(rename = "record.removed")]
    RecordRemoved,
    /// A record was linked to a party, or moved to another, or its rule changed.
    #[serde(rename = "link.changed")]
    LinkChanged,
    /// A record's link was removed without the record.
    #[serde(rename = "link.removed")]
    LinkRemoved,
    #[serde(rename = "party.created")]
    PartyCreated,
    /// One party was merged into another; its id now answers for the survivor.
    #[serde(rename = "party.merged")]
    PartyMerged,
    /// A party that no longer has records was removed.
    #[serde(rename = "party.retired")]
    PartyRetired,
    /// A correction or feedback was added.
    #[serde(rename = "contribution.added")]
    ContributionAdded,
    /// A consent was given or withdrawn.
    #[serde(rename = "consent.changed")]
    ConsentChanged,
    /// A preference was set.
    #[serde(rename = "preference.changed")]
    PreferenceChanged,
    /// A person accepted, rejected or disputed a pair of records.
    #[serde(rename = "review.decided")]
    ReviewDecided,
    /// A party's data was erased at their request.
    #[serde(rename = "erasure.requested")]
    ErasureRequested,
    /// Applications sent events through the ingest API.
    #[serde(rename = "events.ingested")]
    EventsIngested,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 14] = [
        ChangeKind::RecordInserted,
        ChangeKind::RecordUpdated,
        ChangeKind::RecordRemoved,
        ChangeKind::LinkChanged,
        ChangeKind::LinkRemoved,
        ChangeKind::PartyCreated,
        ChangeKind::PartyMerged,
        ChangeKind::PartyRetired,
        ChangeKind::ContributionAdded,
        ChangeKind::ConsentChanged,
        ChangeKind::PreferenceChanged,
        ChangeKind::ReviewDecided,
        ChangeKind::ErasureRequested,
        ChangeKind::EventsIngested,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::RecordInserted => "record.inserted",
            ChangeKind::RecordUpdated => "record.updated",
            ChangeKind::RecordRemoved => "record.removed",
            ChangeKind::LinkChanged => "link.changed",
            ChangeKind::LinkRemoved => "link.removed",
            ChangeKind::PartyCreated => "party.created",
            ChangeKind::PartyMerged => "party.merged",
            ChangeKind::PartyRetired => "party.retired",
            ChangeKind::ContributionAdded => "contribution.added",
            ChangeKind::ConsentChanged => "consent.changed",
            ChangeKind::PreferenceChanged => "preference.changed",
            ChangeKind::ReviewDecided => "review.decided",
            ChangeKind::ErasureRequested => "erasure.requested",
            ChangeKind::EventsIngested => "events.ingested",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the feed, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Its position: strictly increasing in commit order, never reused.
    pub seq: i64,
    /// When kith recorded it.
    pub at: Timestamp,
    pub kind: ChangeKind,
    /// The party it concerns, when there is one.
    pub party: Option<PartyId>,
    /// What changed: `source:key` for records and links, a party id,
    /// `contribution:<id>`, `erasure:<id>`, `review:<a>|<b>`, `events:<first>-<last>`.
    pub subject: String,
    pub data: Value,
}

/// A change before the store gives it a seq and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    pub kind: ChangeKind,
    pub party: Option<PartyId>,
    pub subject: String,
    pub data: Value,
}

fn record_json(r: &RecordRef) -> Value {
    json!({ "source": r.source, "key": r.key })
}

/// Who did something, as far as the feed may say: API keys and customers by
/// their ids (not personal), staff and people named on the command line only
/// as `staff`, since their name or e-mail address is personal data.
pub fn public_actor(by: &str) -> String {
    if by.starts_with("api-key:") || by.starts_with("customer:") {
        by.to_string()
    } else {
        "staff".to_string()
    }
}

impl NewChange {
    /// `record.inserted`, `record.updated` or `record.removed`.
    pub fn record(kind: ChangeKind, record: &RecordRef, party: Option<PartyId>) -> Self {
        NewChange {
            kind,
            party,
            subject: record.to_string(),
            data: json!({ "record": record_json(record) }),
        }
    }

    /// `link.changed`: the record's new party, the one it left (if any), and the rule.
    pub fn link_changed(link: &Link, previous: Option<&PartyId>) -> Self {
        NewChange {
            kind: ChangeKind::LinkChanged,
            party: Some(link.party.clone()),
            subject: link.record.to_string(),
            data: json!({
                "record": record_json(&link.record),
                "party": link.party,
                "previous_party": previous,
                "rule": link.rule,
            }),
        }
    }

    pub fn link_removed(record: &RecordRef, party: PartyId) -> Self {
        NewChange {
            kind: ChangeKind::LinkRemoved,
            subject: record.to_string(),
            data: json!({ "record": record_json(record), "party": party }),
            party: Some(party),
        }
    }

    pub fn party_created(party: &Party) -> Self {
        NewChange {
            kind: ChangeKind::PartyCreated,
            party: Some(party.id.clone()),
            subject: party.id.to_string(),
            data: json!({
                "party": party.id,
                "kind": party.kind.as_str(),
                "founding_record": record_json(&party.founding_record),
            }),
        }
    }

    /// `from` was merged `into` another party: about the survivor, subject the merged id.
    pub fn party_merged(from: &PartyId, into: &PartyId) -> Self {
        NewChange {
            kind: ChangeKind::PartyMerged,
            party: Some(into.clone()),
            subject: from.to_string(),
            data: json!({ "from": from, "into": into }),
        }
    }

    pub fn party_retired(id: &PartyId) -> Self {
        NewChange {
            kind: ChangeKind::PartyRetired,
            party: Some(id.clone()),
            subject: id.to_string(),
            data: json!({ "party": id }),
        }
    }

    /// `consent.changed`, `preference.changed` (with the new value), or
    /// `contribution.added` (corrections and feedback, without their value:
    /// a correction is an identity value, feedback is free text).
    pub fn contribution(id: i64, c: &NewContribution) -> Self {
        let kind = match c.kind {
            ContributionKind::Consent => ChangeKind::ConsentChanged,
            ContributionKind::Preference => ChangeKind::PreferenceChanged,
            ContributionKind::Correction | ContributionKind::Feedback => {
                ChangeKind::ContributionAdded
            }
        };
        let mut data = json!({
            "contribution": id,
            "party": c.party,
            "kind": c.kind.as_str(),
            "attribute": c.attribute,
            "by": public_actor(&c.by),
        });
        if kind != ChangeKind::ContributionAdded {
            data["value"] = c.value.clone();
        }
        // An identifier anchor is an e-mail address or phone number: only
        // record anchors are named.
        if let kith_model::Anchor::Record(r) = &c.anchor {
            data["record"] = record_json(r);
        }
        NewChange {
            kind,
            party: Some(c.party.clone()),
            subject: format!("contribution:{id}"),
            data,
        }
    }

    /// A decision about the pair `a` < `b`.
    pub fn review_decided(a: &RecordRef, b: &RecordRef, status: ReviewStatus, by: &str) -> Self {
        NewChange {
            kind: ChangeKind::ReviewDecided,
            party: None,
            subject: format!("review:{a}|{b}"),
            data: json!({
                "a": record_json(a),
                "b": record_json(b),
                "status": status.as_str(),
                "by": public_actor(by),
            }),
        }
    }

    /// An erasure request, with the records each source holds (so a source's
    /// owner can erase them there) but not the receipts' prose.
    pub fn erasure_requested(id: i64, r: &ErasureRequest) -> Self {
        let receipts: Vec<Value> = r
            .receipts
            .iter()
            .map(|x| {
                json!({
                    "source": x.source,
                    "action": x.action,
                    "records": x.records.iter().map(record_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        NewChange {
            kind: ChangeKind::ErasureRequested,
            party: Some(r.party.clone()),
            subject: format!("erasure:{id}"),
            data: json!({
                "erasure": id,
                "party": r.party,
                "requested_by": public_actor(&r.requested_by),
                "receipts": receipts,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_model::{Anchor, PartyKind};

    fn t() -> Timestamp {
        "2024-05-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn kinds_round_trip_as_text_and_json() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                Value::String(k.as_str().into())
            );
        }
        assert_eq!(ChangeKind::parse("record.deleted"), None);
    }

    #[test]
    fn identity_values_stay_out_of_the_data() {
        let party = Party {
            id: PartyId::generate(t()),
            kind: PartyKind::Person,
            created_at: t(),
            founding_record: RecordRef::new("crm", "1"),
        };
        let mut c = NewContribution {
            party: party.id.clone(),
            anchor: Anchor::Identifier {
                value: "email:ann@example.com".into(),
            },
            kind: ContributionKind::Correction,
            attribute: "email".into(),
            value: json!("ann.lee@example.com"),
            by: "staff:jo@example.com".into(),
            created_at: t(),
        };
        let correction = NewChange::contribution(7, &c);
        assert_eq!(correction.kind, ChangeKind::ContributionAdded);
        let text = correction.data.to_string();
        for secret in ["ann", "jo@example.com"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(correction.data["by"], "staff");
        // A consent's value is the point of the change.
        c.kind = ContributionKind::Consent;
        c.attribute = "newsletter".into();
        c.value = json!(false);
        c.anchor = Anchor::Record(RecordRef::new("crm", "1"));
        c.by = "customer:p_1".into();
        let consent = NewChange::contribution(8, &c);
        assert_eq!(consent.kind, ChangeKind::ConsentChanged);
        assert_eq!(consent.data["value"], json!(false));
        assert_eq!(consent.data["attribute"], "newsletter");
        assert_eq!(consent.data["record"]["key"], "1");
        assert_eq!(consent.data["by"], "customer:p_1");
        assert_eq!(consent.subject, "contribution:8");
    }

    #[test]
    fn merges_are_about_the_survivor() {
        let a = PartyId::generate(t());
        let b = PartyId::generate(t() + chrono::Duration::seconds(1));
        let m = NewChange::party_merged(&a, &b);
        assert_eq!(m.party.as_ref(), Some(&b));
        assert_eq!(m.subject, a.to_string());
        assert_eq!(m.data["from"], a.as_str());
        assert_eq!(m.data["into"], b.as_str());
    }
}
