//! What customers do with their own data: prove who they are, see their
//! picture, say "this isn't me", take their data away, and ask to be erased.
//!
//! Every operation here is about one party and never reaches another: the
//! caller (the portal) has proven the party by a one-time code sent to an
//! identifier that a verified source holds for it.

use std::collections::BTreeMap;

use chrono::Utc;
use kith_model::{Anchor, Link, Party, PartyId, RecordRef, normalize};
use kith_store::{
    AuditEntry, ErasureReceipt, ErasureRequest, ReviewStatus, SessionSubject, Suppression,
};
use serde::Serialize;

use crate::{Error, Hub, Result};

/// Who a view is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Staff see every link, with the uncertain ones marked by their score.
    Staff,
    /// The customer sees only records linked with confidence.
    Customer,
}

/// The party a sign-in identifier proves, and how to show the identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignInTarget {
    pub party: PartyId,
    /// Normalised: `email:ann@example.com` or `phone:+447700900123`.
    pub identifier: String,
    /// For messages: `a***@example.com`, `+44*******123`.
    pub masked: String,
}

/// Why a sign-in identifier opens no account (kept from the person signing
/// in, who is told the same thing either way, but logged for staff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInRefusal {
    /// Neither an e-mail address nor a phone number.
    NotAnIdentifier,
    /// No verified source holds it.
    Unknown,
    /// Only unverified sources hold it.
    Unverified,
    /// Verified records with it belong to more than one party.
    Ambiguous,
    /// The only verified records with it are linked in the uncertain band.
    Uncertain,
}

impl Hub {
    /// Normalises what a person typed into a sign-in form.
    pub fn sign_in_identifier(&self, input: &str) -> Option<String> {
        let q = input.trim();
        if let Some(email) = normalize::email(q) {
            return Some(format!("email:{email}"));
        }
        let phoneish = !q.is_empty()
            && q.chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if phoneish && let Some(phone) = normalize::phone(q, self.calling_code) {
            return Some(format!("phone:{phone}"));
        }
        None
    }

    /// The party an identifier proves: it must be held by a record of a
    /// verified source, linked with confidence, and all such records must
    /// agree on one party. An identifier from an unverified source never opens
    /// an account: anyone can type anything into a newsletter form.
    pub async fn sign_in_target(
        &self,
        input: &str,
    ) -> Result<std::result::Result<SignInTarget, SignInRefusal>> {
        let Some(identifier) = self.sign_in_identifier(input) else {
            return Ok(Err(SignInRefusal::NotAnIdentifier));
        };
        self.identifier_target(identifier).await
    }

    /// [`Hub::sign_in_target`] for an identifier already normalised
    /// (`email:…`, `phone:…`), e.g. one a session was opened with: asked again
    /// on every request, so a session follows merges and ends when the
    /// identifier no longer proves anyone.
    pub async fn identifier_target(
        &self,
        identifier: String,
    ) -> Result<std::result::Result<SignInTarget, SignInRefusal>> {
        let records = self.store.records_with_identifier(&identifier).await?;
        let mut parties: BTreeMap<PartyId, ()> = BTreeMap::new();
        let (mut verified, mut uncertain) = (0, 0);
        for r in &records {
            let Some(c) = self.connector(&r.source) else {
                continue;
            };
            if !c.source().verified {
                continue;
            }
            verified += 1;
            let Some(link) = self.store.link(r).await? else {
                continue;
            };
            if self.is_uncertain(&link) {
                uncertain += 1;
                continue;
            }
            if let Some(p) = self.store.party(&link.party).await? {
                parties.insert(p.id, ());
            }
        }
        if verified == 0 {
            return Ok(Err(if records.is_empty() {
                SignInRefusal::Unknown
            } else {
                SignInRefusal::Unverified
            }));
        }
        let mut parties = parties.into_keys();
        match (parties.next(), parties.next()) {
            (Some(party), None) => Ok(Ok(SignInTarget {
                party,
                masked: mask_identifier(&identifier),
                identifier,
            })),
            (Some(_), Some(_)) => Ok(Err(SignInRefusal::Ambiguous)),
            (None, _) if uncertain > 0 => Ok(Err(SignInRefusal::Uncertain)),
            (None, _) => Ok(Err(SignInRefusal::Unknown)),
        }
    }

    /// Whether a link rests only on a model score in the uncertain band.
    pub fn is_uncertain(&self, link: &Link) -> bool {
        link.rule == "model"
            && self
                .model
                .as_ref()
                .is_some_and(|m| link.score < m.uncertain.1.max(m.threshold))
    }

    /// "This isn't me": takes `record` out of `party` at once, into a party of
    /// its own, and puts the pair in the staff review queue as disputed, so no
    /// later linking run joins them again until staff decide. Returns the
    /// record's new party id.
    pub async fn dispute(&self, party: &PartyId, record: &RecordRef, by: &str) -> Result<PartyId> {
        let (party, records) = self
            .store
            .party_records(party)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no party has id {party}")))?;
        if !records.iter().any(|(l, _)| &l.record == record) {
            return Err(Error::NotFound(format!(
                "{record} is not linked to party {}",
                party.id
            )));
        }
        if records.len() == 1 {
            return Err(Error::Invalid(format!(
                "{record} is the only record of party {}; there is nothing to separate it from",
                party.id
            )));
        }
        let now = Utc::now();
        for (link, _) in &records {
            if &link.record != record {
                self.store
                    .decide_review(record, &link.record, ReviewStatus::Disputed, by, now)
                    .await?;
            }
        }
        // The disputed record leaves; if it founded the party, the party is
        // refounded on its oldest other record so the id stays with the person
        // who disputed it, not with the record they said is not them.
        if party.founding_record == *record {
            let next = records
                .iter()
                .filter(|(l, _)| &l.record != record)
                .min_by(|a, b| {
                    a.1.first_seen
                        .cmp(&b.1.first_seen)
                        .then(a.0.record.cmp(&b.0.record))
                })
                .map(|(l, _)| l.record.clone())
                .expect("more than one record");
            self.store.set_founding_record(&party.id, &next).await?;
        }
        let kind = records
            .iter()
            .find(|(l, _)| &l.record == record)
            .map(|(_, s)| s.record.kind)
            .unwrap_or(party.kind);
        let split = Party {
            id: PartyId::generate(now),
            kind,
            created_at: now,
            founding_record: record.clone(),
        };
        self.store
            .create_parties(std::slice::from_ref(&split))
            .await?;
        self.store
            .set_links(&[Link {
                record: record.clone(),
                party: split.id.clone(),
                rule: "disputed".into(),
                score: 1.0,
                evidence: vec![format!(
                    "{by} said this record is not them (party {})",
                    party.id
                )],
                linked_at: now,
            }])
            .await?;
        self.store
            .audit(&AuditEntry {
                at: now,
                actor: by.to_string(),
                action: "dispute".into(),
                party: Some(party.id.clone()),
                detail: format!("{record} moved to {}", split.id),
            })
            .await?;
        Ok(split.id)
    }

    /// Records a person's decision about two records. When the pair was
    /// disputed by a customer ("this isn't me" puts the record against every
    /// other record of their party), the decision settles the whole dispute:
    /// every pair that customer disputed for the same record gets it, so one
    /// accepted pair is not held apart by its still-disputed siblings.
    pub async fn decide_review(
        &self,
        a: &RecordRef,
        b: &RecordRef,
        status: ReviewStatus,
        by: &str,
    ) -> Result<usize> {
        let now = Utc::now();
        let disputed = self
            .store
            .review_pairs(Some(ReviewStatus::Disputed))
            .await?;
        let this = disputed
            .iter()
            .find(|p| (&p.a == a && &p.b == b) || (&p.a == b && &p.b == a));
        let mut pairs = vec![(a.clone(), b.clone())];
        if let Some(this) = this {
            // The disputed record is the one of the two that the customer's other disputes share.
            let shares = |r: &RecordRef| {
                disputed
                    .iter()
                    .filter(|p| p.decided_by == this.decided_by && (&p.a == r || &p.b == r))
                    .count()
            };
            let record = if shares(&this.a) >= shares(&this.b) {
                &this.a
            } else {
                &this.b
            };
            for p in &disputed {
                let same = (&p.a == a && &p.b == b) || (&p.a == b && &p.b == a);
                if !same && p.decided_by == this.decided_by && (&p.a == record || &p.b == record) {
                    pairs.push((p.a.clone(), p.b.clone()));
                }
            }
        }
        for (x, y) in &pairs {
            self.store.decide_review(x, y, status, by, now).await?;
        }
        Ok(pairs.len())
    }

    /// Erasure: removes everything kith itself holds about the party (its
    /// records in the identity index, links, contributions and sessions), puts
    /// its records and identifiers on the suppression list so no later sync
    /// brings them back, and lists per source what the source's owner must
    /// erase. Returns the stored request with one receipt per source.
    pub async fn erase(&self, party: &PartyId, by: &str) -> Result<ErasureRequest> {
        let (party, mut records) = self
            .store
            .party_records(party)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no party has id {party}")))?;
        // Only what is theirs with confidence: a record linked in the uncertain
        // band may be someone else's, and erasing it would erase that person.
        records.retain(|(link, _)| !self.is_uncertain(link));
        let now = Utc::now();
        let refs: Vec<RecordRef> = records.iter().map(|(l, _)| l.record.clone()).collect();
        let mut anchors: Vec<Anchor> = refs.iter().cloned().map(Anchor::Record).collect();
        let mut identifiers: Vec<&String> = Vec::new();
        for (_, s) in &records {
            for id in &s.identifiers {
                if !identifiers.contains(&id) {
                    identifiers.push(id);
                }
            }
        }
        anchors.extend(identifiers.iter().map(|v| Anchor::Identifier {
            value: (*v).clone(),
        }));
        let reason = format!("erasure requested by {by}");
        for r in &refs {
            self.store
                .suppress(&Suppression::Record(r.clone()), &reason, now)
                .await?;
        }
        for id in &identifiers {
            self.store
                .suppress(
                    &Suppression::IdentifierHash {
                        hash: normalize::identifier_hash(id),
                    },
                    &reason,
                    now,
                )
                .await?;
        }
        let contributions = self.store.delete_contributions(&anchors).await?;
        let removed = self.store.remove_records(&refs).await?;
        self.store.retire_party(&party.id).await?;
        for id in &identifiers {
            self.store
                .delete_sessions_of(&SessionSubject::Customer {
                    party: party.id.clone(),
                    identifier: (*id).clone(),
                })
                .await?;
        }

        let mut receipts = vec![ErasureReceipt {
            source: "kith".into(),
            records: refs.clone(),
            action: "erased".into(),
            detail: format!(
                "removed {removed} record(s) from the identity index with their links, \
                 {contributions} contribution(s) and the party's sessions; suppressed {} record(s) \
                 and {} identifier(s) so no sync brings them back",
                refs.len(),
                identifiers.len()
            ),
            at: now,
        }];
        let mut by_source: BTreeMap<&str, Vec<RecordRef>> = BTreeMap::new();
        for r in &refs {
            by_source
                .entry(r.source.as_str())
                .or_default()
                .push(r.clone());
        }
        for (source, records) in by_source {
            receipts.push(ErasureReceipt {
                source: source.to_string(),
                detail: format!(
                    "kith does not write into {source}; its owner must erase {} record(s) there",
                    records.len()
                ),
                records,
                action: "requested".into(),
                at: now,
            });
        }
        let mut request = ErasureRequest {
            id: 0,
            party: party.id.clone(),
            requested_by: by.to_string(),
            requested_at: now,
            receipts,
        };
        request.id = self.store.add_erasure_request(&request).await?;
        self.store
            .audit(&AuditEntry {
                at: now,
                actor: by.to_string(),
                action: "erase".into(),
                party: Some(party.id.clone()),
                detail: format!("erasure request {}", request.id),
            })
            .await?;
        Ok(request)
    }

    /// Everything kith holds or can fetch about a party, with provenance: the
    /// view as the audience may see it, the links and why, contributions,
    /// erasure requests and who looked at the record.
    pub async fn export(&self, party: &PartyId, audience: Audience) -> Result<serde_json::Value> {
        let mut view = self.view_as(party, audience).await?;
        let (_, records) = self
            .store
            .party_records(&view.party)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no party has id {party}")))?;
        // Contributions anchored to the records the audience sees and to their identifiers.
        let anchors = kith_store::party_anchors(
            records
                .iter()
                .filter(|(link, _)| audience != Audience::Customer || !self.is_uncertain(link))
                .map(|(_, stored)| stored),
        );
        let contributions = self.store.contributions(&anchors).await?;
        if audience == Audience::Customer {
            // Relationships name other people (household members, colleagues):
            // theirs to see, not this customer's to download.
            view.relationships.clear();
        }
        let erasure = self.store.erasure_requests(Some(&view.party)).await?;
        let audit = self.store.audit_log(Some(&view.party), 1000).await?;
        Ok(serde_json::json!({
            "exported_at": Utc::now(),
            "party": view.party,
            "view": view,
            "contributions": contributions,
            "erasure_requests": erasure,
            "access_log": audit,
        }))
    }
}

/// `email:ann@example.com` → `a***@example.com`; `phone:+447700900123` → `+44*******123`.
pub fn mask_identifier(identifier: &str) -> String {
    let (kind, value) = identifier.split_once(':').unwrap_or(("", identifier));
    match kind {
        "email" => match value.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        _ => {
            let chars: Vec<char> = value.chars().collect();
            let n = chars.len();
            chars
                .iter()
                .enumerate()
                .map(|(i, c)| if i < 3 || i + 3 >= n { *c } else { '*' })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked_for_messages() {
        assert_eq!(
            mask_identifier("email:ann.lee@example.com"),
            "a***@example.com"
        );
        assert_eq!(mask_identifier("phone:+447700900123"), "+44*******123");
    }
}
