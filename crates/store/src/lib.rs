//! kith's hub store: what kith must hold, and nothing else.
//!
//! kith leaves customer data in its sources. The hub store keeps only:
//! the identity index (identifying attributes of each source record, and the
//! normalised identifiers derived from them), links and stable party ids
//! (with merge redirects), relationships between parties, the byte-offset
//! indexes of file sources, sync cursors, what customers and staff contributed,
//! the suppression list, quarantined rows (location and reason, never content),
//! the audit log, and the change feed's outbox ([`changes`]).
//!
//! [`HubStore`] is the one seam; [`SqliteStore`] is the embedded default. The
//! trait speaks the model's types and plain values — no SQL dialect leaks
//! through it — so a PostgreSQL implementation can pass the same
//! [`conformance`] suite.

mod access;
pub mod changes;
pub mod conformance;
mod error;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kith_model::{
    Anchor, Contribution, ContributionKind, CursorValue, FileStamp, IdentityRecord, Link, Party,
    PartyId, Quarantined, RecordRef, Relationship, Timestamp,
};
use serde::{Deserialize, Serialize};

pub use access::{
    ApiKey, ApiScope, ErasureReceipt, ErasureRequest, LoginCode, NewApiKey, NewLoginCode,
    NewStaffUser, Session, SessionSubject, StaffRole, StaffUser,
};
pub use changes::{Change, ChangeKind, NewChange};
pub use error::{Error, Result};
pub use sqlite::SqliteStore;

/// One record for the identity index, with the normalised identifiers
/// (`email:ann@example.com`, `phone:+447700900123`) the hub derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub record: IdentityRecord,
    pub identifiers: Vec<String>,
}

/// A record as the index holds it, with its link if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub record: IdentityRecord,
    pub identifiers: Vec<String>,
    pub party: Option<PartyId>,
    /// The rule and evidence of the link, when linked.
    pub rule: Option<String>,
    pub evidence: Vec<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// What a 360 view reads from the hub store about one party, as of one
/// moment: the party (through redirects), its links with their records, the
/// contributions under their [`party_anchors`], and its relationships.
#[derive(Debug, Clone, PartialEq)]
pub struct PartySnapshot {
    pub party: Party,
    /// As [`HubStore::party_records`] gives them, sorted by record.
    pub records: Vec<(Link, StoredRecord)>,
    /// As [`HubStore::contributions`] gives them for the anchors of all `records`.
    pub contributions: Vec<Contribution>,
    /// As [`HubStore::relationships_of`] gives them for `party`.
    pub relationships: Vec<Relationship>,
}

/// The anchors contributions to a party hang on: each of its records, then
/// each of their identifiers once.
pub fn party_anchors<'a>(records: impl IntoIterator<Item = &'a StoredRecord>) -> Vec<Anchor> {
    let records: Vec<&StoredRecord> = records.into_iter().collect();
    let mut anchors: Vec<Anchor> = records
        .iter()
        .map(|s| Anchor::Record(s.record.record.clone()))
        .collect();
    for s in &records {
        for id in &s.identifiers {
            let a = Anchor::Identifier { value: id.clone() };
            if !anchors.contains(&a) {
                anchors.push(a);
            }
        }
    }
    anchors
}

/// [`HubStore::party_snapshot`] made of the three reads it stands for, one
/// after another (the default, for a store with nothing faster).
pub async fn snapshot_by_parts<S: HubStore + ?Sized>(
    store: &S,
    id: &PartyId,
) -> Result<Option<Arc<PartySnapshot>>> {
    let Some((party, records)) = store.party_records(id).await? else {
        return Ok(None);
    };
    let anchors = party_anchors(records.iter().map(|(_, s)| s));
    let contributions = store.contributions(&anchors).await?;
    let relationships = store.relationships_of(&party.id).await?;
    Ok(Some(Arc::new(PartySnapshot {
        party,
        records,
        contributions,
        relationships,
    })))
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// Where a source's sync stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    pub cursor: Option<CursorValue>,
    pub last_sync_at: Option<Timestamp>,
    pub last_reconcile_at: Option<Timestamp>,
}

/// A contribution before the store gives it an id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContribution {
    pub party: PartyId,
    pub anchor: Anchor,
    pub kind: ContributionKind,
    pub attribute: String,
    pub value: serde_json::Value,
    pub by: String,
    pub created_at: Timestamp,
}

/// Something sync and ingest must never bring back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Suppression {
    /// An erased source record.
    Record(RecordRef),
    /// The SHA-256 of an erased normalised identifier (see `kith_model::normalize::identifier_hash`).
    IdentifierHash { hash: String },
}

/// Where a pair stands in the clerical review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// The model was unsure; nobody has decided yet.
    Pending,
    /// A person confirmed the two records are the same party: they always link.
    Accepted,
    /// A person said they are not: they never link.
    Rejected,
    /// The customer said "this isn't me": the pair never links (as if
    /// rejected) until staff accept or reject it.
    Disputed,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Accepted => "accepted",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Disputed => "disputed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ReviewStatus::Pending),
            "accepted" => Some(ReviewStatus::Accepted),
            "rejected" => Some(ReviewStatus::Rejected),
            "disputed" => Some(ReviewStatus::Disputed),
            _ => None,
        }
    }
}

/// A pair of records in the review queue, `a` < `b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPair {
    pub a: RecordRef,
    pub b: RecordRef,
    /// The model's match probability when it was queued, if the model queued it.
    pub probability: Option<f64>,
    pub status: ReviewStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub queued_at: Timestamp,
}

/// One line of the audit log: who did what to whose data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// `staff:<name>`, `customer:<party>`, `cli`, `api-key:<id>`.
    pub actor: String,
    /// `view`, `export`, `erase`, `sync`, …
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<PartyId>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The hub's own storage. Every method is one transaction: a failure leaves
/// what was stored before it untouched.
#[async_trait]
pub trait HubStore: Send + Sync {
    /// A short name for messages (`sqlite:/path/hub.db`), never with secrets.
    fn describe(&self) -> String;

    /// The schema version the store is at after its migrations.
    async fn schema_version(&self) -> Result<i64>;

    // --- sync state -------------------------------------------------------

    async fn sync_state(&self, source: &str) -> Result<SyncState>;
    async fn save_sync_state(&self, source: &str, state: &SyncState) -> Result<()>;

    // --- identity index ---------------------------------------------------

    /// Inserts or updates records by `(source, key)`; re-sending an unchanged
    /// record changes nothing but its `last_seen`. Records on the suppression
    /// list are skipped and counted as neither.
    ///
    /// A record is updated when its kind, relation, attributes, cursor,
    /// `updated_at` or set of identifiers differ from what is stored (the
    /// identifiers are a set: order and repeats do not count); an update
    /// replaces its identifiers and keeps its `first_seen`. A record is
    /// suppressed when its ref is, or when any of its identifiers' hashes is.
    /// A record sent more than once in one call is counted each time against
    /// the state the previous copy left. `last_seen` becomes `seen_at` for
    /// every record not skipped.
    async fn upsert_records(
        &self,
        entries: &[IndexEntry],
        seen_at: Timestamp,
    ) -> Result<UpsertCounts>;
    /// A record with its identifiers (sorted) and its link's party.
    async fn record(&self, record: &RecordRef) -> Result<Option<StoredRecord>>;
    /// Every record of the index, sorted by `(source, key)`.
    async fn records(&self) -> Result<Vec<StoredRecord>>;
    /// The keys a source has in the index, sorted.
    async fn record_keys(&self, source: &str) -> Result<Vec<String>>;
    /// Records (and their links) that are gone from their source. Returns how
    /// many were removed; unknown refs are ignored. This is not erasure: a
    /// removed record comes back if its source sends it again.
    async fn remove_records(&self, records: &[RecordRef]) -> Result<u64>;
    /// Records carrying a normalised identifier, sorted.
    async fn records_with_identifier(&self, identifier: &str) -> Result<Vec<RecordRef>>;

    // --- parties and links ------------------------------------------------

    /// Creates parties, all or none. Creating the same party again is a no-op;
    /// an id that exists with other details, or that was merged away, is
    /// [`Error::Invalid`] and creates nothing.
    async fn create_parties(&self, parties: &[Party]) -> Result<()>;
    /// The party with this id, following merge redirects (chains too) to the surviving one.
    async fn party(&self, id: &PartyId) -> Result<Option<Party>>;
    /// A party (through redirects) with its links and their records (each
    /// with its identifiers), sorted by record, in one read: what a view needs
    /// before it asks the sources.
    async fn party_records(
        &self,
        id: &PartyId,
    ) -> Result<Option<(Party, Vec<(Link, StoredRecord)>)>>;
    /// Everything a view reads from the store about a party (through
    /// redirects), in one call: see [`PartySnapshot`]. `None` for an unknown id.
    /// Shared, because a store may answer many views from one copy.
    async fn party_snapshot(&self, id: &PartyId) -> Result<Option<Arc<PartySnapshot>>> {
        snapshot_by_parts(self, id).await
    }
    /// Every party that has not been merged into another, sorted by id.
    async fn parties(&self) -> Result<Vec<Party>>;
    /// Records that `from` was merged into `to`: `party(from)` answers `to` from now on.
    ///
    /// `to` must be a known party; a redirect to itself or one that would close
    /// a loop is [`Error::Invalid`]. Redirecting `from` again replaces its
    /// redirect. Links are not moved: the caller re-links `from`'s records first.
    async fn redirect_party(&self, from: &PartyId, to: &PartyId, at: Timestamp) -> Result<()>;
    /// Removes a party that no longer has records (after a split moved them all away, say).
    ///
    /// [`Error::Invalid`] while records are still linked to it; an unknown id
    /// is a no-op. Redirects from and to it stay, so merged-away ids keep
    /// answering what they did (nothing, if this was their survivor).
    async fn retire_party(&self, id: &PartyId) -> Result<()>;
    /// Refounds a party on another of its records (when its founding record
    /// leaves it, e.g. disputed by the customer), so the id stays with the
    /// person. [`Error::Invalid`] when the record is not linked to the party.
    async fn set_founding_record(&self, id: &PartyId, record: &RecordRef) -> Result<()>;
    /// Sets each record's link, replacing any previous one.
    ///
    /// A link to an unknown or merged-away party, or with a score that is not
    /// a finite number, is [`Error::Invalid`] and nothing of the batch is written.
    async fn set_links(&self, links: &[Link]) -> Result<()>;
    async fn unlink(&self, record: &RecordRef) -> Result<()>;
    async fn link(&self, record: &RecordRef) -> Result<Option<Link>>;
    /// The links of a party (through redirects), sorted by record: those held
    /// by the id it resolves to.
    async fn links_of(&self, party: &PartyId) -> Result<Vec<Link>>;

    /// Replaces all derived relationships with these.
    async fn replace_relationships(&self, relationships: &[Relationship]) -> Result<()>;
    /// Relationships in which the party (or the id it resolves to) is `from`
    /// or `to`, in the order they were given.
    async fn relationships_of(&self, party: &PartyId) -> Result<Vec<Relationship>>;

    // --- file indexes -----------------------------------------------------

    /// The stamp of the file an index was built from, if one was built.
    async fn file_index_stamp(&self, source: &str, index: &str) -> Result<Option<FileStamp>>;
    /// Byte offsets of the rows holding each key, by key, ascending. Keys
    /// without rows are absent from the map.
    async fn file_index_offsets(
        &self,
        source: &str,
        index: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u64>>>;
    /// Replaces an index wholesale with entries built from a file with `stamp`.
    async fn replace_file_index(
        &self,
        source: &str,
        index: &str,
        stamp: FileStamp,
        entries: &[(String, u64)],
    ) -> Result<()>;

    // --- contributions ----------------------------------------------------

    async fn add_contribution(&self, contribution: &NewContribution) -> Result<i64>;
    /// Contributions anchored to any of these anchors, oldest first (by
    /// `created_at`, then id), each with its party resolved through redirects.
    async fn contributions(&self, anchors: &[Anchor]) -> Result<Vec<Contribution>>;
    /// The newest contributions of every party (resolved through redirects), newest first.
    async fn recent_contributions(&self, limit: usize) -> Result<Vec<Contribution>>;
    /// Deletes contributions anchored to any of these anchors (erasure); returns how many.
    async fn delete_contributions(&self, anchors: &[Anchor]) -> Result<u64>;

    // --- review -----------------------------------------------------------

    /// Queues pairs the model was unsure of (`(a, b, probability)`, in any
    /// order). A pair already queued gets the new probability; a decided pair
    /// is left as it is.
    async fn queue_for_review(
        &self,
        pairs: &[(RecordRef, RecordRef, f64)],
        at: Timestamp,
    ) -> Result<()>;
    /// Records a person's decision about two records, queued or not.
    async fn decide_review(
        &self,
        a: &RecordRef,
        b: &RecordRef,
        status: ReviewStatus,
        by: &str,
        at: Timestamp,
    ) -> Result<()>;
    /// The queue, optionally only pairs in one status; pending pairs by falling
    /// probability, others by decision time (newest first). A disputed pair
    /// counts as decided (`decided_by` is the customer) and stays disputed
    /// until a later decision replaces it.
    async fn review_pairs(&self, status: Option<ReviewStatus>) -> Result<Vec<ReviewPair>>;

    // --- suppression ------------------------------------------------------

    /// Adds to the suppression list; suppressing again keeps the first reason
    /// and time. Only future upserts are refused: erasing what is already
    /// stored is the caller's job.
    async fn suppress(&self, item: &Suppression, reason: &str, at: Timestamp) -> Result<()>;
    async fn is_suppressed(&self, item: &Suppression) -> Result<bool>;
    async fn suppressions(&self) -> Result<Vec<Suppression>>;

    // --- quarantine -------------------------------------------------------

    /// Records rows that could not be read (upsert by source and location).
    async fn quarantine(&self, rows: &[Quarantined]) -> Result<()>;
    /// Forgets a source's quarantined rows seen before `before` (they were fixed or are gone).
    async fn clear_quarantine(&self, source: &str, before: Timestamp) -> Result<u64>;
    /// Quarantined rows of one source or all, sorted by source and location.
    async fn quarantined(&self, source: Option<&str>) -> Result<Vec<Quarantined>>;

    // --- audit ------------------------------------------------------------

    async fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Newest first; only entries about `party` when given, which includes
    /// entries about ids since merged into it.
    async fn audit_log(&self, party: Option<&PartyId>, limit: usize) -> Result<Vec<AuditEntry>>;

    // --- access: API keys -------------------------------------------------

    async fn create_api_key(&self, key: &NewApiKey) -> Result<i64>;
    /// The key with this hash, revoked or not (the caller checks `revoked_at`).
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    async fn api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Marks a key used now (at most one write per call).
    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<()>;
    /// Revokes a key; false when there is no such key or it was already revoked.
    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<bool>;

    // --- access: staff ----------------------------------------------------

    /// Adds a member of staff; [`Error::Conflict`] when the e-mail address is taken.
    async fn create_staff_user(&self, user: &NewStaffUser) -> Result<i64>;
    async fn staff_user(&self, id: i64) -> Result<Option<StaffUser>>;
    /// By e-mail address, compared case-insensitively.
    async fn staff_user_by_email(&self, email: &str) -> Result<Option<StaffUser>>;
    async fn staff_users(&self) -> Result<Vec<StaffUser>>;
    async fn set_staff_password(&self, id: i64, password_hash: &str) -> Result<()>;
    /// Disables (or with `None` re-enables) a member of staff and ends their sessions.
    async fn set_staff_disabled(&self, id: i64, at: Option<Timestamp>) -> Result<()>;

    // --- access: sessions -------------------------------------------------

    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The session with this token hash, expired or not (the caller checks).
    async fn session(&self, token_hash: &str) -> Result<Option<Session>>;
    /// Slides a session's expiry.
    async fn touch_session(
        &self,
        token_hash: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Ends every session of a subject (sign-out everywhere, erasure, a disabled user).
    async fn delete_sessions_of(&self, subject: &SessionSubject) -> Result<u64>;
    /// Forgets sessions that expired before `before`.
    async fn purge_sessions(&self, before: Timestamp) -> Result<u64>;

    // --- access: one-time sign-in codes -----------------------------------

    async fn create_login_code(&self, code: &NewLoginCode) -> Result<i64>;
    /// How many codes were issued for an identifier at or after `since` (rate limit).
    async fn login_codes_issued_since(&self, identifier: &str, since: Timestamp) -> Result<u32>;
    /// The newest code for an identifier that is unused and unexpired at `now`.
    async fn active_login_code(
        &self,
        identifier: &str,
        now: Timestamp,
    ) -> Result<Option<LoginCode>>;
    /// Counts a failed attempt against a code; returns the attempts so far.
    async fn count_login_attempt(&self, id: i64) -> Result<u32>;
    /// Marks a code used; false if it was already used (so a code works once, even under races).
    async fn use_login_code(&self, id: i64, at: Timestamp) -> Result<bool>;

    // --- erasure ----------------------------------------------------------

    async fn add_erasure_request(&self, request: &ErasureRequest) -> Result<i64>;
    /// Requests about one party (through redirects) or all, newest first.
    async fn erasure_requests(&self, party: Option<&PartyId>) -> Result<Vec<ErasureRequest>>;

    // --- change feed ------------------------------------------------------
    //
    // The write methods above append their changes (see [`changes`]) in their
    // own transaction: `upsert_records` (`record.inserted`/`record.updated`,
    // only records that really changed), `remove_records` (`record.removed`),
    // `set_links` (`link.changed`, only links whose party or rule changed),
    // `unlink` (`link.removed`), `create_parties` (`party.created`, only new
    // ones), `redirect_party` (`party.merged`), `retire_party`
    // (`party.retired`, only when there was one), `add_contribution`
    // (`consent.changed`, `preference.changed`, `contribution.added`),
    // `decide_review` (`review.decided`), `add_erasure_request`
    // (`erasure.requested`). A write that fails appends nothing.

    /// Changes with a seq above `after`, oldest first, at most `limit`.
    /// Seqs are strictly increasing in commit order and never reused, and a
    /// change is only visible once every change with a lower seq is: reading
    /// from the last seq seen misses nothing.
    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>>;
    /// The highest seq given out so far (0 before the first change).
    async fn latest_change_seq(&self) -> Result<i64>;
    /// Appends changes made outside the store (ingested events), all or none,
    /// and, when `cursor` is given, sets that consumer's position in the same
    /// transaction, so the producer neither loses nor repeats a change when it
    /// stops between the two. Returns the seq of the last change appended
    /// (or the latest seq when there were none).
    async fn append_changes(
        &self,
        changes: &[NewChange],
        cursor: Option<(&str, i64)>,
    ) -> Result<i64>;
    /// Where a consumer of the feed stands (`webhook:<name>`, `nats`,
    /// `ingest.resolver`), if it has stood anywhere yet.
    async fn feed_cursor(&self, consumer: &str) -> Result<Option<i64>>;
    /// Moves a consumer's position (forwards or, to replay, backwards).
    /// `kith.pruned` is reserved ([`HubStore::pruned_through`]).
    async fn set_feed_cursor(&self, consumer: &str, seq: i64) -> Result<()>;
    /// Deletes changes recorded before `before`, except any that one of
    /// `consumers` (feed cursor names) has not passed yet — a consumer with
    /// no cursor holds nothing back. Records how far it went
    /// ([`HubStore::pruned_through`]); seqs are never given again. Returns
    /// how many changes were deleted.
    async fn prune_changes(&self, before: Timestamp, consumers: &[String]) -> Result<u64>;
    /// The highest seq pruning deleted (0 when none): a reader resuming
    /// below it has missed changes and must read the state afresh.
    async fn pruned_through(&self) -> Result<i64>;
}

#[cfg(test)]
mod tests {
    use kith_model::{IdentityAttrs, PartyKind};

    use super::*;

    fn stored(source: &str, key: &str, identifiers: &[&str]) -> StoredRecord {
        let at = chrono::DateTime::UNIX_EPOCH;
        StoredRecord {
            record: IdentityRecord {
                record: RecordRef::new(source, key),
                kind: PartyKind::Person,
                relation: None,
                attrs: IdentityAttrs::default(),
                cursor: None,
                updated_at: None,
            },
            identifiers: identifiers.iter().map(|i| i.to_string()).collect(),
            party: None,
            rule: None,
            evidence: Vec::new(),
            first_seen: at,
            last_seen: at,
        }
    }

    #[test]
    fn anchors_cover_records_and_identifiers_once() {
        let records = [
            stored("billing", "1", &["email:ann@example.com"]),
            stored(
                "shop",
                "9",
                &["email:ann@example.com", "phone:+447700900123"],
            ),
        ];
        let anchors = party_anchors(&records);
        assert_eq!(anchors.len(), 4);
        assert_eq!(anchors[0], Anchor::Record(RecordRef::new("billing", "1")));
        assert_eq!(
            anchors[3],
            Anchor::Identifier {
                value: "phone:+447700900123".into()
            }
        );
    }
}
