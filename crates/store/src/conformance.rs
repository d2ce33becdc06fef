//! The behaviour every [`HubStore`] must show, as runnable checks.
//!
//! An implementation's tests call [`run_all`] with a function that makes a
//! fresh, empty store; each check gets its own store. Failures are collected
//! and reported together, each under its check's name:
//!
//! ```no_run
//! # async fn example() {
//! use kith_store::{conformance, SqliteStore};
//! conformance::run_all(|| async { SqliteStore::open_in_memory().await.unwrap() }).await;
//! # }
//! ```
//!
//! The checks use only the trait, fixed timestamps and small data, so they
//! run in well under a second on an embedded store.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::TimeZone;
use kith_model::normalize::identifier_hash;
use kith_model::{
    Anchor, ContributionKind, CursorValue, FileStamp, IdentityAttrs, IdentityRecord, Link, Party,
    PartyId, PartyKind, Quarantined, RecordRef, Relation, RelationKind, Relationship, Timestamp,
};

use crate::{
    ApiScope, AuditEntry, Change, ChangeKind, ErasureReceipt, ErasureRequest, Error, HubStore,
    IndexEntry, NewApiKey, NewChange, NewContribution, NewLoginCode, NewStaffUser, PartySnapshot,
    ReviewStatus, Session, SessionSubject, StaffRole, Suppression, SyncState, UpsertCounts,
    party_anchors,
};

/// Why a check failed.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(format!("store error: {e}"))
    }
}

pub type Outcome = Result<(), Failure>;
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One behaviour, checked against an empty store.
pub struct Check {
    pub name: &'static str,
    pub run: for<'a> fn(&'a dyn HubStore) -> CheckFuture<'a>,
}

/// Runs every check in [`CHECKS`], each on a store from `make`, and panics
/// naming every check that failed.
pub async fn run_all<S, F, Fut>(mut make: F)
where
    S: HubStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let mut failures = Vec::new();
    for check in CHECKS {
        let store = make().await;
        if let Err(Failure(why)) = run_one(check, &store).await {
            failures.push(format!("  {}: {why}", check.name));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} hub store conformance checks failed:\n{}",
            failures.len(),
            CHECKS.len(),
            failures.join("\n")
        );
    }
}

/// Runs one check; a panic inside it (in the store, say) becomes its failure.
pub async fn run_one(check: &Check, store: &dyn HubStore) -> Outcome {
    CatchUnwind((check.run)(store)).await
}

/// Turns a panic while polling into a [`Failure`], so one broken check does
/// not hide the others' results.
struct CatchUnwind<'a>(CheckFuture<'a>);

impl Future for CatchUnwind<'_> {
    type Output = Outcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                Poll::Ready(Err(Failure(format!("panicked: {msg}"))))
            }
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure(format!("line {}: {}", line!(), format!($($fmt)+))));
        }
    };
}

macro_rules! ensure_eq {
    ($got:expr, $want:expr, $($fmt:tt)+) => {
        same(&$got, &$want, line!(), || format!($($fmt)+))?
    };
}

fn same<T: PartialEq + Debug>(
    got: &T,
    want: &T,
    line: u32,
    what: impl FnOnce() -> String,
) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(Failure(format!(
            "line {line}: {}\n    got:  {got:?}\n    want: {want:?}",
            what()
        )))
    }
}

fn expect_invalid<T: Debug>(r: crate::Result<T>, what: &str) -> Outcome {
    match r {
        Err(Error::Invalid(_)) => Ok(()),
        other => Err(Failure(format!(
            "{what}: want Error::Invalid, got {other:?}"
        ))),
    }
}

fn expect_conflict<T: Debug>(r: crate::Result<T>, what: &str) -> Outcome {
    match r {
        Err(Error::Conflict(_)) => Ok(()),
        other => Err(Failure(format!(
            "{what}: want Error::Conflict, got {other:?}"
        ))),
    }
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, in the order [`run_all`] runs them.
        pub const CHECKS: &[Check] = &[$(Check {
            name: stringify!($name),
            run: {
                fn run(s: &dyn HubStore) -> CheckFuture<'_> {
                    Box::pin($name(s))
                }
                run
            },
        }),*];
    };
}

checks![
    schema_version_is_positive,
    sync_state_round_trips,
    upsert_is_idempotent,
    upsert_detects_updates,
    upsert_counts_repeats_within_one_call,
    identifiers_find_records,
    suppressed_record_is_not_upserted,
    suppressed_identifier_is_not_upserted,
    suppression_is_idempotent,
    remove_records_removes_links,
    party_create_is_idempotent,
    party_redirects_follow_chains,
    redirects_refuse_cycles,
    links_set_replace_and_resolve,
    set_links_is_atomic,
    party_records_read_all_at_once,
    party_snapshot_is_the_three_reads,
    review_queue_keeps_decisions,
    review_disputes_hold_until_decided,
    retire_party_requires_no_links,
    refound_party_on_a_linked_record,
    relationships_replace_all,
    file_index_replace_and_offsets,
    contributions_by_anchor,
    contributions_recent_and_deleted,
    quarantine_upserts_and_clears,
    audit_order_and_filter,
    api_key_lifecycle,
    staff_users_unique_by_email,
    staff_disable_ends_sessions,
    sessions_lifecycle,
    login_codes_work_once,
    erasure_requests_follow_merges,
    changes_follow_each_write,
    failed_writes_emit_no_changes,
    changes_resume_from_any_seq,
    pruning_keeps_what_consumers_still_need,
];

// --- fixtures -------------------------------------------------------------------

fn t(secs: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

fn rec(source: &str, key: &str) -> RecordRef {
    RecordRef::new(source, key)
}

fn entry(source: &str, key: &str, email: &str) -> IndexEntry {
    IndexEntry {
        record: IdentityRecord {
            record: rec(source, key),
            kind: PartyKind::Person,
            relation: Some(Relation::Customer),
            attrs: IdentityAttrs {
                full_name: Some(format!("Person {key}")),
                emails: vec![email.to_string()],
                ..Default::default()
            },
            cursor: Some(CursorValue::Int(1)),
            updated_at: Some(t(1)),
        },
        identifiers: vec![format!("email:{email}")],
    }
}

fn party_at(secs: i64, founding: RecordRef) -> Party {
    Party {
        id: PartyId::generate(t(secs)),
        kind: PartyKind::Person,
        created_at: t(secs),
        founding_record: founding,
    }
}

async fn new_party(s: &dyn HubStore, secs: i64) -> Result<Party, Failure> {
    let p = party_at(secs, rec("crm", &format!("founder-{secs}")));
    s.create_parties(std::slice::from_ref(&p)).await?;
    Ok(p)
}

fn link(r: &RecordRef, p: &PartyId, secs: i64) -> Link {
    Link {
        record: r.clone(),
        party: p.clone(),
        rule: "exact:email".into(),
        score: 0.97,
        evidence: vec!["email equal".into(), "name similar (0.93)".into()],
        linked_at: t(secs),
    }
}

fn counts(inserted: u64, updated: u64, unchanged: u64) -> UpsertCounts {
    UpsertCounts {
        inserted,
        updated,
        unchanged,
    }
}

// --- checks ---------------------------------------------------------------------

async fn schema_version_is_positive(s: &dyn HubStore) -> Outcome {
    let v = s.schema_version().await?;
    ensure!(v > 0, "schema_version is {v}, want > 0");
    ensure!(!s.describe().is_empty(), "describe() is empty");
    Ok(())
}

async fn sync_state_round_trips(s: &dyn HubStore) -> Outcome {
    ensure_eq!(
        s.sync_state("crm").await?,
        SyncState::default(),
        "an unknown source has the default state"
    );
    let state = SyncState {
        cursor: Some(CursorValue::Time(
            t(42) + chrono::Duration::nanoseconds(123_456_789),
        )),
        last_sync_at: Some(t(50)),
        last_reconcile_at: None,
    };
    s.save_sync_state("crm", &state).await?;
    ensure_eq!(s.sync_state("crm").await?, state, "saved state reads back");
    let state2 = SyncState {
        cursor: Some(CursorValue::Int(981)),
        last_sync_at: Some(t(60)),
        last_reconcile_at: Some(t(61)),
    };
    s.save_sync_state("crm", &state2).await?;
    ensure_eq!(
        s.sync_state("crm").await?,
        state2,
        "a save replaces the state"
    );
    ensure_eq!(
        s.sync_state("shop").await?,
        SyncState::default(),
        "other sources are untouched"
    );
    Ok(())
}

async fn upsert_is_idempotent(s: &dyn HubStore) -> Outcome {
    let entries = vec![
        entry("shop", "2", "bo@example.com"),
        entry("crm", "1", "ann@example.com"),
        entry("shop", "10", "cy@example.com"),
    ];
    ensure_eq!(
        s.upsert_records(&entries, t(100)).await?,
        counts(3, 0, 0),
        "first upsert inserts"
    );
    ensure_eq!(
        s.upsert_records(&entries, t(200)).await?,
        counts(0, 0, 3),
        "re-sending changes nothing"
    );
    let got = s
        .record(&rec("crm", "1"))
        .await?
        .ok_or_else(|| Failure("crm:1 missing after upsert".into()))?;
    ensure_eq!(got.record, entries[1].record, "record reads back");
    ensure_eq!(
        got.identifiers,
        entries[1].identifiers,
        "identifiers read back"
    );
    ensure_eq!(got.party, None, "an unlinked record has no party");
    ensure_eq!(
        got.first_seen,
        t(100),
        "first_seen stays at the first upsert"
    );
    ensure_eq!(got.last_seen, t(200), "last_seen moves on a re-send");

    let all = s.records().await?;
    let refs: Vec<RecordRef> = all.iter().map(|r| r.record.record.clone()).collect();
    ensure_eq!(
        refs,
        vec![rec("crm", "1"), rec("shop", "10"), rec("shop", "2")],
        "records() sorted by (source, key)"
    );
    ensure_eq!(
        s.record_keys("shop").await?,
        vec!["10".to_string(), "2".to_string()],
        "record_keys sorted"
    );
    ensure_eq!(
        s.record_keys("none").await?,
        Vec::<String>::new(),
        "no keys of an unknown source"
    );
    ensure_eq!(s.record(&rec("crm", "9")).await?, None, "unknown record");
    ensure_eq!(
        s.upsert_records(&[], t(300)).await?,
        counts(0, 0, 0),
        "an empty upsert does nothing"
    );
    Ok(())
}

async fn upsert_detects_updates(s: &dyn HubStore) -> Outcome {
    let base = entry("crm", "1", "ann@example.com");
    s.upsert_records(std::slice::from_ref(&base), t(100))
        .await?;

    let mut variants: Vec<(&str, IndexEntry)> = Vec::new();
    let mut e = base.clone();
    e.record.attrs.phones = vec!["07700 900123".into()];
    variants.push(("attrs", e));
    let mut e = variants[0].1.clone();
    e.record.kind = PartyKind::Organisation;
    variants.push(("kind", e));
    let mut e = variants[1].1.clone();
    e.record.relation = None;
    variants.push(("relation", e));
    let mut e = variants[2].1.clone();
    e.record.cursor = Some(CursorValue::Int(2));
    variants.push(("cursor", e));
    let mut e = variants[3].1.clone();
    e.record.updated_at = Some(t(5));
    variants.push(("updated_at", e));
    let mut e = variants[4].1.clone();
    e.identifiers = vec!["email:ann@example.com".into(), "phone:+447700900123".into()];
    variants.push(("identifiers added", e));
    let mut e = variants[5].1.clone();
    e.identifiers = vec!["phone:+447700900123".into()];
    variants.push(("identifiers removed", e));

    let mut seen = 100;
    for (what, e) in &variants {
        seen += 10;
        ensure_eq!(
            s.upsert_records(std::slice::from_ref(e), t(seen)).await?,
            counts(0, 1, 0),
            "a change of {what} is an update"
        );
        let got = s
            .record(&rec("crm", "1"))
            .await?
            .ok_or_else(|| Failure("crm:1 missing".into()))?;
        ensure_eq!(got.record, e.record, "{what}: updated record reads back");
        let mut want_ids = e.identifiers.clone();
        want_ids.sort();
        ensure_eq!(got.identifiers, want_ids, "{what}: identifiers replaced");
        ensure_eq!(got.first_seen, t(100), "{what}: first_seen kept");
        ensure_eq!(got.last_seen, t(seen), "{what}: last_seen moved");
    }
    ensure_eq!(
        s.records_with_identifier("email:ann@example.com").await?,
        Vec::<RecordRef>::new(),
        "a removed identifier no longer finds the record"
    );
    ensure_eq!(
        s.records_with_identifier("phone:+447700900123").await?,
        vec![rec("crm", "1")],
        "the new identifier finds the record"
    );

    let last = variants.last().unwrap().1.clone();
    let mut changed = last.clone();
    changed.record.attrs.city = Some("Leeds".into());
    ensure_eq!(
        s.upsert_records(&[changed, entry("crm", "2", "bo@example.com")], t(500))
            .await?,
        counts(1, 1, 0),
        "a mixed batch counts each kind"
    );
    let mut reordered = entry("crm", "3", "cy@example.com");
    reordered.identifiers = vec!["phone:+1".into(), "email:cy@example.com".into()];
    s.upsert_records(std::slice::from_ref(&reordered), t(600))
        .await?;
    reordered.identifiers.reverse();
    ensure_eq!(
        s.upsert_records(&[reordered], t(700)).await?,
        counts(0, 0, 1),
        "identifiers are a set: their order is not a change"
    );
    Ok(())
}

async fn upsert_counts_repeats_within_one_call(s: &dyn HubStore) -> Outcome {
    let a = entry("crm", "1", "ann@example.com");
    let mut a2 = a.clone();
    a2.record.attrs.city = Some("York".into());
    ensure_eq!(
        s.upsert_records(&[a.clone(), a.clone(), a2.clone()], t(100))
            .await?,
        counts(1, 1, 1),
        "a record sent three times in one call: inserted, unchanged, updated"
    );
    let got = s
        .record(&rec("crm", "1"))
        .await?
        .ok_or_else(|| Failure("crm:1 missing".into()))?;
    ensure_eq!(got.record, a2.record, "the last version wins");
    ensure_eq!(s.records().await?.len(), 1, "one record stored");

    // Enough records to cross any batching an implementation does.
    let many: Vec<IndexEntry> = (0..1200)
        .map(|i| entry("bulk", &format!("{i:05}"), &format!("u{i}@example.com")))
        .collect();
    ensure_eq!(
        s.upsert_records(&many, t(200)).await?,
        counts(1200, 0, 0),
        "bulk insert"
    );
    let mut again = many.clone();
    again[700].record.attrs.city = Some("Hull".into());
    ensure_eq!(
        s.upsert_records(&again, t(300)).await?,
        counts(0, 1, 1199),
        "bulk re-send with one change"
    );
    ensure_eq!(s.record_keys("bulk").await?.len(), 1200, "bulk keys");
    let r = s
        .record(&rec("bulk", "01199"))
        .await?
        .ok_or_else(|| Failure("bulk:01199 missing".into()))?;
    ensure_eq!(
        r.last_seen,
        t(300),
        "last_seen moved for the last of the bulk"
    );
    Ok(())
}

async fn identifiers_find_records(s: &dyn HubStore) -> Outcome {
    let mut shared = entry("shop", "7", "ann@example.com");
    shared.identifiers.push("phone:+447700900123".into());
    s.upsert_records(
        &[
            entry("shop", "9", "ann@example.com"),
            entry("crm", "1", "ann@example.com"),
            shared,
            entry("crm", "2", "bo@example.com"),
        ],
        t(100),
    )
    .await?;
    ensure_eq!(
        s.records_with_identifier("email:ann@example.com").await?,
        vec![rec("crm", "1"), rec("shop", "7"), rec("shop", "9")],
        "every record with the identifier, sorted"
    );
    ensure_eq!(
        s.records_with_identifier("phone:+447700900123").await?,
        vec![rec("shop", "7")],
        "second identifier of a record"
    );
    ensure_eq!(
        s.records_with_identifier("email:nobody@example.com")
            .await?,
        Vec::<RecordRef>::new(),
        "unknown identifier"
    );
    Ok(())
}

async fn suppressed_record_is_not_upserted(s: &dyn HubStore) -> Outcome {
    let gone = Suppression::Record(rec("crm", "1"));
    s.suppress(&gone, "erased at customer request", t(10))
        .await?;
    ensure!(
        s.is_suppressed(&gone).await?,
        "suppressed record reported as not suppressed"
    );
    ensure_eq!(
        s.upsert_records(
            &[
                entry("crm", "1", "ann@example.com"),
                entry("crm", "2", "bo@example.com")
            ],
            t(100)
        )
        .await?,
        counts(1, 0, 0),
        "the suppressed record counts as neither"
    );
    ensure_eq!(
        s.record(&rec("crm", "1")).await?,
        None,
        "suppressed record not stored"
    );
    ensure_eq!(
        s.record_keys("crm").await?,
        vec!["2".to_string()],
        "the rest of the batch is stored"
    );
    ensure_eq!(
        s.records_with_identifier("email:ann@example.com").await?,
        Vec::<RecordRef>::new(),
        "no identifiers of the suppressed record"
    );
    ensure!(
        !s.is_suppressed(&Suppression::Record(rec("crm", "2")))
            .await?,
        "another record reported as suppressed"
    );
    Ok(())
}

async fn suppressed_identifier_is_not_upserted(s: &dyn HubStore) -> Outcome {
    let hash = identifier_hash("email:ann@example.com");
    let gone = Suppression::IdentifierHash { hash };
    s.suppress(&gone, "erased", t(10)).await?;
    ensure!(
        s.is_suppressed(&gone).await?,
        "suppressed hash reported as not suppressed"
    );
    let mut carrier = entry("shop", "5", "other@example.com");
    carrier.identifiers.push("email:ann@example.com".into());
    ensure_eq!(
        s.upsert_records(
            &[
                entry("crm", "1", "ann@example.com"),
                carrier,
                entry("crm", "2", "bo@example.com")
            ],
            t(100)
        )
        .await?,
        counts(1, 0, 0),
        "records carrying a suppressed identifier count as neither"
    );
    ensure_eq!(
        s.records().await?.len(),
        1,
        "only the record without the identifier is stored"
    );
    ensure!(
        !s.is_suppressed(&Suppression::IdentifierHash {
            hash: identifier_hash("email:bo@example.com")
        })
        .await?,
        "another hash reported as suppressed"
    );
    Ok(())
}

async fn suppression_is_idempotent(s: &dyn HubStore) -> Outcome {
    ensure_eq!(
        s.suppressions().await?,
        Vec::<Suppression>::new(),
        "empty at first"
    );
    let a = Suppression::Record(rec("crm", "a:b"));
    let b = Suppression::IdentifierHash {
        hash: identifier_hash("phone:+447700900123"),
    };
    s.suppress(&a, "erased", t(10)).await?;
    s.suppress(&b, "erased", t(20)).await?;
    s.suppress(&a, "erased again", t(30)).await?;
    let mut got = s.suppressions().await?;
    got.sort_by_key(|x| format!("{x:?}"));
    let mut want = vec![a.clone(), b.clone()];
    want.sort_by_key(|x| format!("{x:?}"));
    ensure_eq!(got, want, "each suppression listed once");
    ensure!(
        !s.is_suppressed(&Suppression::Record(rec("crm:a", "b")))
            .await?,
        "a record ref that only looks alike is not suppressed"
    );
    Ok(())
}

async fn remove_records_removes_links(s: &dyn HubStore) -> Outcome {
    s.upsert_records(
        &[
            entry("crm", "1", "ann@example.com"),
            entry("crm", "2", "ann@example.com"),
        ],
        t(100),
    )
    .await?;
    let p = new_party(s, 1).await?;
    s.set_links(&[
        link(&rec("crm", "1"), &p.id, 5),
        link(&rec("crm", "2"), &p.id, 5),
    ])
    .await?;
    ensure_eq!(
        s.remove_records(&[rec("crm", "1"), rec("crm", "1"), rec("crm", "404")])
            .await?,
        1,
        "one record removed (duplicates and unknown ones are not counted)"
    );
    ensure_eq!(
        s.record(&rec("crm", "1")).await?,
        None,
        "removed record is gone"
    );
    ensure_eq!(s.link(&rec("crm", "1")).await?, None, "its link is gone");
    ensure_eq!(
        s.records_with_identifier("email:ann@example.com").await?,
        vec![rec("crm", "2")],
        "its identifiers are gone"
    );
    let links: Vec<RecordRef> = s
        .links_of(&p.id)
        .await?
        .into_iter()
        .map(|l| l.record)
        .collect();
    ensure_eq!(links, vec![rec("crm", "2")], "the other link stays");
    ensure_eq!(
        s.remove_records(&[]).await?,
        0,
        "removing nothing removes nothing"
    );
    // The record can come back (it was gone from its source, not erased).
    ensure_eq!(
        s.upsert_records(&[entry("crm", "1", "ann@example.com")], t(200))
            .await?,
        counts(1, 0, 0),
        "a removed record is inserted again"
    );
    Ok(())
}

async fn party_create_is_idempotent(s: &dyn HubStore) -> Outcome {
    let p = party_at(1, rec("crm", "1"));
    s.create_parties(std::slice::from_ref(&p)).await?;
    s.create_parties(std::slice::from_ref(&p)).await?;
    ensure_eq!(s.parties().await?, vec![p.clone()], "created once");
    ensure_eq!(s.party(&p.id).await?, Some(p.clone()), "reads back");
    let mut other = p.clone();
    other.founding_record = rec("crm", "2");
    let fresh = party_at(2, rec("crm", "3"));
    expect_invalid(
        s.create_parties(&[fresh.clone(), other]).await,
        "same id, other details",
    )?;
    ensure_eq!(
        s.party(&fresh.id).await?,
        None,
        "a refused batch creates nothing"
    );
    ensure_eq!(
        s.party(&PartyId::generate(t(2))).await?,
        None,
        "unknown party"
    );
    Ok(())
}

async fn party_redirects_follow_chains(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let c = new_party(s, 3).await?;
    let d = new_party(s, 4).await?;
    s.redirect_party(&b.id, &a.id, t(10)).await?;
    ensure_eq!(s.party(&b.id).await?, Some(a.clone()), "b answers a");
    s.redirect_party(&a.id, &c.id, t(20)).await?;
    ensure_eq!(s.party(&b.id).await?, Some(c.clone()), "b → a → c");
    ensure_eq!(s.party(&a.id).await?, Some(c.clone()), "a → c");
    ensure_eq!(s.party(&c.id).await?, Some(c.clone()), "c is itself");
    let mut want = vec![c.clone(), d.clone()];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    ensure_eq!(
        s.parties().await?,
        want,
        "parties() lists only parties not merged away"
    );
    expect_invalid(
        s.create_parties(&[Party {
            founding_record: rec("x", "y"),
            ..a.clone()
        }])
        .await,
        "re-creating a merged-away id",
    )?;
    // A merged-away id can be pointed elsewhere (re-resolution).
    s.redirect_party(&b.id, &d.id, t(30)).await?;
    ensure_eq!(
        s.party(&b.id).await?,
        Some(d.clone()),
        "b redirected again, to d"
    );
    Ok(())
}

async fn redirects_refuse_cycles(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let c = new_party(s, 3).await?;
    expect_invalid(s.redirect_party(&a.id, &a.id, t(10)).await, "a → a")?;
    s.redirect_party(&a.id, &b.id, t(10)).await?;
    expect_invalid(
        s.redirect_party(&b.id, &a.id, t(11)).await,
        "b → a after a → b",
    )?;
    s.redirect_party(&b.id, &c.id, t(12)).await?;
    expect_invalid(
        s.redirect_party(&c.id, &a.id, t(13)).await,
        "c → a after a → b → c",
    )?;
    expect_invalid(
        s.redirect_party(&c.id, &PartyId::generate(t(4)), t(14))
            .await,
        "redirect to an unknown party",
    )?;
    ensure_eq!(
        s.party(&a.id).await?,
        Some(c.clone()),
        "refusals changed nothing"
    );
    ensure_eq!(
        s.party(&c.id).await?,
        Some(c.clone()),
        "c still answers itself"
    );
    Ok(())
}

async fn links_set_replace_and_resolve(s: &dyn HubStore) -> Outcome {
    let (r1, r2, r3) = (rec("crm", "1"), rec("shop", "1"), rec("crm", "2"));
    s.upsert_records(
        &[
            entry("crm", "1", "ann@example.com"),
            entry("shop", "1", "ann@example.com"),
            entry("crm", "2", "ann@example.com"),
        ],
        t(100),
    )
    .await?;
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    s.set_links(&[
        link(&r2, &a.id, 10),
        link(&r1, &a.id, 10),
        link(&r3, &b.id, 10),
    ])
    .await?;
    ensure_eq!(
        s.link(&r1).await?,
        Some(link(&r1, &a.id, 10)),
        "link reads back"
    );
    let got = s.links_of(&a.id).await?;
    ensure_eq!(
        got,
        vec![link(&r1, &a.id, 10), link(&r2, &a.id, 10)],
        "links_of sorted by record"
    );
    let stored = s
        .record(&r1)
        .await?
        .ok_or_else(|| Failure("crm:1 missing".into()))?;
    ensure_eq!(stored.party, Some(a.id.clone()), "record() shows its party");
    let all: Vec<Option<PartyId>> = s.records().await?.into_iter().map(|r| r.party).collect();
    ensure_eq!(
        all,
        vec![Some(a.id.clone()), Some(b.id.clone()), Some(a.id.clone())],
        "records() shows each record's party"
    );

    // Merge b into a: the caller moves the links, then redirects.
    s.set_links(&[link(&r3, &a.id, 20)]).await?;
    s.redirect_party(&b.id, &a.id, t(20)).await?;
    ensure_eq!(
        s.link(&r3).await?,
        Some(link(&r3, &a.id, 20)),
        "a link is replaced"
    );
    let via_b: Vec<RecordRef> = s
        .links_of(&b.id)
        .await?
        .into_iter()
        .map(|l| l.record)
        .collect();
    ensure_eq!(
        via_b,
        vec![r1.clone(), r3.clone(), r2.clone()],
        "links_of follows redirects"
    );
    expect_invalid(
        s.set_links(&[link(&r1, &b.id, 30)]).await,
        "a link to a merged-away party",
    )?;

    s.unlink(&r2).await?;
    ensure_eq!(s.link(&r2).await?, None, "unlinked");
    s.unlink(&r2).await?;
    ensure_eq!(
        s.links_of(&a.id).await?.len(),
        2,
        "unlinking twice is harmless"
    );
    ensure_eq!(
        s.links_of(&PartyId::generate(t(9))).await?,
        Vec::<Link>::new(),
        "an unknown party has no links"
    );
    Ok(())
}

async fn set_links_is_atomic(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let stranger = PartyId::generate(t(2));
    expect_invalid(
        s.set_links(&[
            link(&rec("crm", "1"), &a.id, 10),
            link(&rec("crm", "2"), &stranger, 10),
        ])
        .await,
        "a link to an unknown party",
    )?;
    ensure_eq!(
        s.link(&rec("crm", "1")).await?,
        None,
        "a refused batch leaves nothing behind"
    );
    Ok(())
}

/// Two parties: Ann with crm:1, Bob with crm:2, and shop:9 (Ann's e-mail)
/// linked to Ann or to Bob.
async fn ann_and_bob(s: &dyn HubStore, shop_with_ann: bool) -> Result<(Party, Party), Failure> {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    s.upsert_records(
        &[
            entry("crm", "1", "ann@example.com"),
            entry("shop", "9", "ann@example.com"),
            entry("crm", "2", "bob@example.com"),
        ],
        t(100),
    )
    .await?;
    let shop_party = if shop_with_ann { &a } else { &b };
    s.set_links(&[
        link(&rec("crm", "1"), &a.id, 10),
        link(&rec("shop", "9"), &shop_party.id, 11),
        link(&rec("crm", "2"), &b.id, 12),
    ])
    .await?;
    Ok((a, b))
}

async fn party_records_read_all_at_once(s: &dyn HubStore) -> Outcome {
    let (a, b) = ann_and_bob(s, false).await?;
    ensure_eq!(
        s.party_records(&PartyId::generate(t(3))).await?,
        None,
        "an unknown party"
    );
    let (party, pairs) = s.party_records(&b.id).await?.expect("b exists");
    ensure_eq!(party, b.clone(), "the party");
    let want_links = s.links_of(&b.id).await?;
    let got_links: Vec<Link> = pairs.iter().map(|(l, _)| l.clone()).collect();
    ensure_eq!(got_links, want_links, "the same links as links_of");
    for (l, r) in &pairs {
        ensure_eq!(
            Some(r.clone()),
            s.record(&l.record).await?,
            "each record as record() reads it"
        );
    }
    // Through a redirect, after the links moved to the survivor.
    s.set_links(&[
        link(&rec("shop", "9"), &a.id, 20),
        link(&rec("crm", "2"), &a.id, 21),
    ])
    .await?;
    s.redirect_party(&b.id, &a.id, t(30)).await?;
    let (party, pairs) = s.party_records(&b.id).await?.expect("b answers a");
    ensure_eq!(party.id, a.id.clone(), "redirected");
    ensure_eq!(pairs.len(), 3, "all three records");
    Ok(())
}

/// What the three reads a snapshot stands for give, read one by one.
async fn snapshot_by_hand(
    s: &dyn HubStore,
    id: &PartyId,
) -> Result<Option<PartySnapshot>, Failure> {
    let Some((party, records)) = s.party_records(id).await? else {
        return Ok(None);
    };
    let contributions = s
        .contributions(&party_anchors(records.iter().map(|(_, r)| r)))
        .await?;
    let relationships = s.relationships_of(&party.id).await?;
    Ok(Some(PartySnapshot {
        party,
        records,
        contributions,
        relationships,
    }))
}

async fn party_snapshot_is_the_three_reads(s: &dyn HubStore) -> Outcome {
    let (a, b) = ann_and_bob(s, true).await?;
    let contribution = |anchor: Anchor, attribute: &str, secs: i64| NewContribution {
        party: a.id.clone(),
        anchor,
        kind: ContributionKind::Correction,
        attribute: attribute.into(),
        value: serde_json::json!(attribute),
        by: "customer".into(),
        created_at: t(secs),
    };
    s.add_contribution(&contribution(Anchor::Record(rec("shop", "9")), "city", 200))
        .await?;
    s.add_contribution(&contribution(
        Anchor::Identifier {
            value: "email:ann@example.com".into(),
        },
        "newsletter",
        150,
    ))
    .await?;
    s.add_contribution(&contribution(Anchor::Record(rec("crm", "2")), "phone", 120))
        .await?;
    let household = Relationship {
        from: a.id.clone(),
        to: b.id.clone(),
        kind: RelationKind::Household,
        evidence: "same address: 12 high st".into(),
    };
    s.replace_relationships(std::slice::from_ref(&household))
        .await?;

    ensure!(
        s.party_snapshot(&PartyId::generate(t(3))).await?.is_none(),
        "an unknown party has no snapshot"
    );
    let got = s.party_snapshot(&a.id).await?.expect("a exists");
    ensure_eq!(
        *got,
        snapshot_by_hand(s, &a.id).await?.expect("a exists"),
        "a's snapshot"
    );
    let attributes: Vec<&str> = got
        .contributions
        .iter()
        .map(|c| c.attribute.as_str())
        .collect();
    ensure_eq!(
        attributes,
        vec!["newsletter", "city"],
        "a's own contributions (on a record and on an identifier), oldest first"
    );
    ensure_eq!(
        got.relationships,
        vec![household.clone()],
        "a's relationships"
    );
    // Asked again, and after writes: each answer is as of the last write.
    let again = s.party_snapshot(&a.id).await?.expect("a exists");
    ensure_eq!(again, got, "the same answer while nothing changed");
    s.set_links(&[link(&rec("shop", "9"), &b.id, 20)]).await?;
    let moved = s.party_snapshot(&a.id).await?.expect("a exists");
    ensure_eq!(moved.records.len(), 1, "the moved record is gone from a");
    ensure_eq!(
        moved.contributions.len(),
        1,
        "and so is the contribution on it (the one on the identifier stays)"
    );
    s.redirect_party(&b.id, &a.id, t(30)).await?;
    s.set_links(&[
        link(&rec("shop", "9"), &a.id, 31),
        link(&rec("crm", "2"), &a.id, 32),
    ])
    .await?;
    let merged = s.party_snapshot(&b.id).await?.expect("b answers a");
    ensure_eq!(merged.party.id, a.id.clone(), "through the redirect");
    ensure_eq!(
        *merged,
        snapshot_by_hand(s, &b.id).await?.expect("b answers a"),
        "the merged snapshot"
    );
    ensure_eq!(merged.contributions.len(), 3, "every contribution now");
    Ok(())
}

async fn review_queue_keeps_decisions(s: &dyn HubStore) -> Outcome {
    use crate::ReviewStatus as R;
    let (a, b, c) = (rec("crm", "1"), rec("shop", "9"), rec("crm", "2"));
    s.queue_for_review(
        &[(b.clone(), a.clone(), 0.6), (a.clone(), c.clone(), 0.9)],
        t(10),
    )
    .await?;
    let pending = s.review_pairs(Some(R::Pending)).await?;
    ensure_eq!(pending.len(), 2, "two pending pairs");
    ensure_eq!(pending[0].probability, Some(0.9), "most likely first");
    ensure_eq!(
        (&pending[1].a, &pending[1].b),
        (&a, &b),
        "pairs kept in order"
    );
    s.decide_review(&b, &a, R::Rejected, "staff:ann", t(20))
        .await?;
    // Queuing again does not undo a decision.
    s.queue_for_review(&[(a.clone(), b.clone(), 0.7)], t(30))
        .await?;
    let rejected = s.review_pairs(Some(R::Rejected)).await?;
    ensure_eq!(rejected.len(), 1, "one rejected pair");
    ensure_eq!(
        rejected[0].decided_by.as_deref(),
        Some("staff:ann"),
        "who decided"
    );
    ensure_eq!(
        rejected[0].probability,
        Some(0.6),
        "the decided pair was left alone"
    );
    // A pair nobody queued can be decided too.
    s.decide_review(&b, &c, R::Accepted, "staff:bob", t(40))
        .await?;
    ensure_eq!(s.review_pairs(None).await?.len(), 3, "all pairs");
    expect_invalid(
        s.decide_review(&a, &a, R::Accepted, "staff:bob", t(50))
            .await,
        "a record against itself",
    )?;
    Ok(())
}

async fn review_disputes_hold_until_decided(s: &dyn HubStore) -> Outcome {
    use crate::ReviewStatus as R;
    let (a, b, c, d) = (
        rec("crm", "1"),
        rec("shop", "9"),
        rec("crm", "2"),
        rec("web", "4"),
    );
    s.queue_for_review(
        &[
            (a.clone(), b.clone(), 0.6),
            (a.clone(), c.clone(), 0.9),
            (b.clone(), c.clone(), 0.5),
        ],
        t(10),
    )
    .await?;
    s.decide_review(&b, &a, R::Disputed, "customer:p1", t(20))
        .await?;
    // Queuing a disputed pair again leaves it as the customer left it.
    s.queue_for_review(&[(a.clone(), b.clone(), 0.8)], t(30))
        .await?;
    let disputed = s.review_pairs(Some(R::Disputed)).await?;
    ensure_eq!(disputed.len(), 1, "one disputed pair");
    let p = &disputed[0];
    ensure_eq!((&p.a, &p.b), (&a, &b), "the disputed pair, in order");
    ensure_eq!(p.status, R::Disputed, "status reads back");
    ensure_eq!(p.probability, Some(0.6), "queue_for_review left it alone");
    ensure_eq!(
        p.decided_by.as_deref(),
        Some("customer:p1"),
        "the customer disputed it"
    );
    ensure_eq!(p.decided_at, Some(t(20)), "when it was disputed");
    ensure_eq!(p.queued_at, t(10), "when it was queued");
    ensure_eq!(
        s.review_pairs(Some(R::Pending)).await?.len(),
        2,
        "a disputed pair is not pending"
    );

    s.decide_review(&a, &c, R::Accepted, "staff:ann", t(40))
        .await?;
    let all: Vec<(RecordRef, RecordRef, R)> = s
        .review_pairs(None)
        .await?
        .into_iter()
        .map(|p| (p.a, p.b, p.status))
        .collect();
    ensure_eq!(
        all,
        vec![
            (c.clone(), b.clone(), R::Pending),
            (a.clone(), c.clone(), R::Accepted),
            (a.clone(), b.clone(), R::Disputed),
        ],
        "pending first, then decided and disputed pairs, newest decision first"
    );

    // Staff settle the dispute.
    s.decide_review(&a, &b, R::Rejected, "staff:bob", t(50))
        .await?;
    ensure_eq!(
        s.review_pairs(Some(R::Disputed)).await?.len(),
        0,
        "a decision replaces the dispute"
    );
    let rejected = s.review_pairs(Some(R::Rejected)).await?;
    ensure_eq!(rejected.len(), 1, "one rejected pair");
    ensure_eq!(
        (rejected[0].decided_by.as_deref(), rejected[0].decided_at),
        (Some("staff:bob"), Some(t(50))),
        "who settled it, and when"
    );

    // A customer may dispute a pair the model never queued.
    s.decide_review(&d, &c, R::Disputed, "customer:p2", t(60))
        .await?;
    let disputed = s.review_pairs(Some(R::Disputed)).await?;
    ensure_eq!(disputed.len(), 1, "the unqueued pair is disputed");
    ensure_eq!(
        (&disputed[0].a, &disputed[0].b, disputed[0].probability),
        (&c, &d, None),
        "kept in order, without a probability"
    );
    expect_invalid(
        s.decide_review(&a, &b, R::Pending, "staff:bob", t(70))
            .await,
        "pending is not a decision",
    )?;
    Ok(())
}

async fn retire_party_requires_no_links(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let r = rec("crm", "1");
    s.upsert_records(&[entry("crm", "1", "ann@example.com")], t(100))
        .await?;
    s.set_links(&[link(&r, &a.id, 10)]).await?;
    expect_invalid(s.retire_party(&a.id).await, "retiring a party with links")?;
    ensure_eq!(
        s.party(&a.id).await?,
        Some(a.clone()),
        "refused retirement kept the party"
    );
    s.set_links(&[link(&r, &b.id, 20)]).await?;
    s.retire_party(&a.id).await?;
    ensure_eq!(s.party(&a.id).await?, None, "retired party is gone");
    ensure_eq!(s.parties().await?, vec![b.clone()], "parties() without it");
    Ok(())
}

async fn refound_party_on_a_linked_record(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let (r1, r2) = (rec("crm", "1"), rec("shop", "9"));
    s.upsert_records(
        &[
            entry("crm", "1", "ann@example.com"),
            entry("shop", "9", "bo@example.com"),
        ],
        t(100),
    )
    .await?;
    s.set_links(&[link(&r1, &a.id, 10), link(&r2, &b.id, 11)])
        .await?;
    s.set_founding_record(&a.id, &r1).await?;
    let mut want = a.clone();
    want.founding_record = r1.clone();
    ensure_eq!(
        s.party(&a.id).await?,
        Some(want.clone()),
        "refounded on its linked record; id, kind and created_at kept"
    );
    expect_invalid(
        s.set_founding_record(&a.id, &r2).await,
        "a record linked to another party",
    )?;
    expect_invalid(
        s.set_founding_record(&a.id, &rec("crm", "404")).await,
        "a record linked to nothing",
    )?;
    expect_invalid(
        s.set_founding_record(&PartyId::generate(t(3)), &r1).await,
        "an unknown party",
    )?;
    ensure_eq!(
        s.party(&a.id).await?,
        Some(want),
        "refused refoundings change nothing"
    );
    ensure_eq!(
        s.party(&b.id).await?,
        Some(b.clone()),
        "another party is untouched"
    );
    Ok(())
}

async fn relationships_replace_all(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let c = new_party(s, 3).await?;
    let org = new_party(s, 4).await?;
    let household = Relationship {
        from: a.id.clone(),
        to: b.id.clone(),
        kind: RelationKind::Household,
        evidence: "same address: 12 high st".into(),
    };
    let employer = Relationship {
        from: c.id.clone(),
        to: org.id.clone(),
        kind: RelationKind::EmployeeOf,
        evidence: "org name: acme".into(),
    };
    s.replace_relationships(&[household.clone(), employer.clone()])
        .await?;
    ensure_eq!(
        s.relationships_of(&a.id).await?,
        vec![household.clone()],
        "from side"
    );
    ensure_eq!(
        s.relationships_of(&b.id).await?,
        vec![household.clone()],
        "to side"
    );
    ensure_eq!(
        s.relationships_of(&org.id).await?,
        vec![employer.clone()],
        "org side"
    );

    let works_too = Relationship {
        from: a.id.clone(),
        to: org.id.clone(),
        kind: RelationKind::EmployeeOf,
        evidence: "org name: acme".into(),
    };
    s.replace_relationships(std::slice::from_ref(&works_too))
        .await?;
    ensure_eq!(
        s.relationships_of(&b.id).await?,
        Vec::<Relationship>::new(),
        "replacement drops the old rows"
    );
    ensure_eq!(
        s.relationships_of(&a.id).await?,
        vec![works_too.clone()],
        "new row"
    );
    s.replace_relationships(&[]).await?;
    ensure_eq!(
        s.relationships_of(&org.id).await?,
        Vec::<Relationship>::new(),
        "replacing with nothing clears"
    );
    Ok(())
}

async fn file_index_replace_and_offsets(s: &dyn HubStore) -> Outcome {
    ensure_eq!(
        s.file_index_stamp("files", "by_id").await?,
        None,
        "no stamp before a build"
    );
    let stamp = FileStamp {
        size: 5_000_000_000,
        modified_ns: 1_700_000_000_123_456_789,
    };
    // 3000 rows of one key (an order file indexed by customer), written out of
    // order, among 20 000 rows of other keys.
    let mut entries: Vec<(String, u64)> = Vec::new();
    for i in 0..20_000u64 {
        entries.push((format!("k{:05}", i % 5000), i * 100));
    }
    for i in (0..3000u64).rev() {
        entries.push(("hot".into(), 4_000_000_000 + i));
    }
    s.replace_file_index("files", "by_id", stamp, &entries)
        .await?;
    s.replace_file_index(
        "files",
        "by_email",
        FileStamp {
            size: 1,
            modified_ns: 2,
        },
        &[("k00001".into(), 7)],
    )
    .await?;
    ensure_eq!(
        s.file_index_stamp("files", "by_id").await?,
        Some(stamp),
        "stamp reads back"
    );

    let got = s
        .file_index_offsets(
            "files",
            "by_id",
            &["hot".into(), "k00001".into(), "missing".into()],
        )
        .await?;
    let hot: Vec<u64> = (0..3000u64).map(|i| 4_000_000_000 + i).collect();
    ensure_eq!(
        got.get("hot"),
        Some(&hot),
        "every offset of a hot key, ascending"
    );
    ensure_eq!(
        got.get("k00001"),
        Some(&vec![100, 500_100, 1_000_100, 1_500_100]),
        "offsets of a key, ascending"
    );
    ensure!(
        !got.contains_key("missing"),
        "a key without rows is absent, got {:?}",
        got.get("missing")
    );

    // More keys than any one statement should carry.
    let keys: Vec<String> = (0..1500).map(|i| format!("k{i:05}")).collect();
    let got = s.file_index_offsets("files", "by_id", &keys).await?;
    ensure_eq!(got.len(), 1500, "every requested key found");
    ensure!(got.values().all(|v| v.len() == 4), "four offsets per key");
    ensure_eq!(
        s.file_index_offsets("files", "by_id", &[]).await?,
        BTreeMap::new(),
        "no keys, no offsets"
    );

    let stamp2 = FileStamp {
        size: 10,
        modified_ns: 3,
    };
    s.replace_file_index(
        "files",
        "by_id",
        stamp2,
        &[("k00001".into(), 42), ("new".into(), 0)],
    )
    .await?;
    ensure_eq!(
        s.file_index_stamp("files", "by_id").await?,
        Some(stamp2),
        "stamp replaced"
    );
    let got = s
        .file_index_offsets(
            "files",
            "by_id",
            &["hot".into(), "k00001".into(), "new".into()],
        )
        .await?;
    let want: BTreeMap<String, Vec<u64>> = [
        ("k00001".to_string(), vec![42]),
        ("new".to_string(), vec![0]),
    ]
    .into();
    ensure_eq!(got, want, "replacement drops the old entries");
    ensure_eq!(
        s.file_index_offsets("files", "by_email", &["k00001".into()])
            .await?,
        [("k00001".to_string(), vec![7])].into(),
        "another index of the source is untouched"
    );
    ensure_eq!(
        s.file_index_offsets("other", "by_id", &["k00001".into()])
            .await?,
        BTreeMap::new(),
        "another source has nothing"
    );
    Ok(())
}

async fn contributions_by_anchor(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let on_record = Anchor::Record(rec("crm", "1"));
    let on_email = Anchor::Identifier {
        value: "email:ann@example.com".into(),
    };
    let elsewhere = Anchor::Record(rec("crm", "2"));
    let new = |anchor: &Anchor, attribute: &str, secs: i64| NewContribution {
        party: a.id.clone(),
        anchor: anchor.clone(),
        kind: ContributionKind::Correction,
        attribute: attribute.into(),
        value: serde_json::json!({"value": attribute, "n": secs}),
        by: "customer".into(),
        created_at: t(secs),
    };
    let late = s.add_contribution(&new(&on_record, "email", 300)).await?;
    let early = s
        .add_contribution(&new(&on_email, "newsletter", 100))
        .await?;
    let same_time = s.add_contribution(&new(&on_record, "city", 300)).await?;
    s.add_contribution(&new(&elsewhere, "phone", 50)).await?;
    ensure!(
        late < early && early < same_time,
        "ids grow: {late}, {early}, {same_time}"
    );

    let got = s
        .contributions(&[on_record.clone(), on_email.clone(), on_record.clone()])
        .await?;
    let ids: Vec<i64> = got.iter().map(|c| c.id).collect();
    ensure_eq!(
        ids,
        vec![early, late, same_time],
        "oldest first, then by id"
    );
    let first = &got[0];
    ensure_eq!(first.anchor, on_email, "anchor reads back");
    ensure_eq!(first.kind, ContributionKind::Correction, "kind reads back");
    ensure_eq!(
        first.attribute,
        "newsletter".to_string(),
        "attribute reads back"
    );
    ensure_eq!(
        first.value,
        serde_json::json!({"value": "newsletter", "n": 100}),
        "value reads back"
    );
    ensure_eq!(first.by, "customer".to_string(), "by reads back");
    ensure_eq!(first.created_at, t(100), "created_at reads back");
    ensure_eq!(first.party, a.id, "party reads back");
    ensure_eq!(
        s.contributions(&[Anchor::Identifier {
            value: "email:bo@example.com".into()
        }])
        .await?
        .len(),
        0,
        "an anchor without contributions"
    );
    ensure_eq!(
        s.contributions(&[]).await?.len(),
        0,
        "no anchors, no contributions"
    );

    s.redirect_party(&a.id, &b.id, t(400)).await?;
    let got = s.contributions(std::slice::from_ref(&on_email)).await?;
    ensure_eq!(
        got[0].party,
        b.id,
        "the party is resolved through redirects when read"
    );
    Ok(())
}

async fn contributions_recent_and_deleted(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let on_1 = Anchor::Record(rec("crm", "1"));
    let on_2 = Anchor::Record(rec("crm", "2"));
    let on_email = Anchor::Identifier {
        value: "email:ann@example.com".into(),
    };
    let new = |party: &Party, anchor: &Anchor, attribute: &str, secs: i64| NewContribution {
        party: party.id.clone(),
        anchor: anchor.clone(),
        kind: ContributionKind::Preference,
        attribute: attribute.into(),
        value: serde_json::json!(secs),
        by: format!("customer:{}", party.id),
        created_at: t(secs),
    };
    ensure_eq!(
        s.recent_contributions(10).await?.len(),
        0,
        "no contributions at first"
    );
    let oldest = s.add_contribution(&new(&a, &on_1, "email", 100)).await?;
    let tied_first = s
        .add_contribution(&new(&a, &on_email, "newsletter", 300))
        .await?;
    let middle = s.add_contribution(&new(&b, &on_2, "phone", 200)).await?;
    let tied_second = s.add_contribution(&new(&b, &on_1, "city", 300)).await?;

    let recent = s.recent_contributions(10).await?;
    let ids: Vec<i64> = recent.iter().map(|c| c.id).collect();
    ensure_eq!(
        ids,
        vec![tied_second, tied_first, middle, oldest],
        "newest first, the later of two at the same time first"
    );
    let all = s
        .contributions(&[on_1.clone(), on_2.clone(), on_email.clone()])
        .await?;
    ensure_eq!(
        recent.iter().rev().cloned().collect::<Vec<_>>(),
        all,
        "the same contributions as contributions() reads, reversed"
    );
    ensure_eq!(
        s.recent_contributions(2)
            .await?
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![tied_second, tied_first],
        "limited"
    );
    ensure_eq!(s.recent_contributions(0).await?.len(), 0, "limit 0");

    s.redirect_party(&a.id, &b.id, t(400)).await?;
    ensure!(
        s.recent_contributions(10)
            .await?
            .iter()
            .all(|c| c.party == b.id),
        "parties are resolved through redirects when read"
    );

    ensure_eq!(
        s.delete_contributions(&[on_1.clone(), on_1.clone()])
            .await?,
        2,
        "every contribution on the anchor is deleted, once"
    );
    ensure_eq!(
        s.contributions(std::slice::from_ref(&on_1)).await?.len(),
        0,
        "deleted contributions are gone"
    );
    ensure_eq!(
        s.recent_contributions(10)
            .await?
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![tied_first, middle],
        "other anchors keep theirs"
    );
    ensure_eq!(
        s.delete_contributions(&[Anchor::Identifier {
            value: "email:bo@example.com".into()
        }])
        .await?,
        0,
        "an anchor without contributions"
    );
    ensure_eq!(
        s.delete_contributions(&[]).await?,
        0,
        "no anchors, nothing deleted"
    );
    ensure_eq!(
        s.delete_contributions(&[on_email, on_2]).await?,
        2,
        "several anchors at once"
    );
    ensure_eq!(s.recent_contributions(10).await?.len(), 0, "all gone");
    Ok(())
}

async fn quarantine_upserts_and_clears(s: &dyn HubStore) -> Outcome {
    let q = |source: &str, location: &str, reason: &str, secs: i64| Quarantined {
        source: source.into(),
        location: location.into(),
        key: Some("42".into()),
        reason: reason.into(),
        seen_at: t(secs),
    };
    s.quarantine(&[
        q("files", "customers.csv line 17", "bad date", 10),
        q("files", "customers.csv line 30", "no key", 20),
        q("crm", "table customers key 9", "bad email", 10),
    ])
    .await?;
    let mut again = q("files", "customers.csv line 17", "bad date again", 40);
    again.key = None;
    s.quarantine(std::slice::from_ref(&again)).await?;
    let files = s.quarantined(Some("files")).await?;
    ensure_eq!(
        files.len(),
        2,
        "an upsert by (source, location) adds no row"
    );
    ensure!(files.contains(&again), "the row was updated: {files:?}");
    ensure_eq!(s.quarantined(None).await?.len(), 3, "all sources");

    ensure_eq!(
        s.clear_quarantine("files", t(40)).await?,
        1,
        "only rows seen before the time are cleared"
    );
    ensure_eq!(
        s.quarantined(Some("files")).await?,
        vec![again],
        "the newer row stays"
    );
    ensure_eq!(
        s.quarantined(Some("crm")).await?.len(),
        1,
        "other sources are untouched"
    );
    ensure_eq!(
        s.clear_quarantine("none", t(99)).await?,
        0,
        "nothing to clear"
    );
    Ok(())
}

async fn audit_order_and_filter(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let c = new_party(s, 3).await?;
    let e = |secs: i64, action: &str, party: Option<&Party>| AuditEntry {
        at: t(secs),
        actor: "staff:jo".into(),
        action: action.into(),
        party: party.map(|p| p.id.clone()),
        detail: String::new(),
    };
    // Written out of time order: the log is ordered by time, not by arrival.
    let entries = [
        e(20, "view", Some(&a)),
        e(10, "export", Some(&a)),
        e(30, "sync", None),
        e(40, "view", Some(&b)),
        e(50, "erase", Some(&c)),
    ];
    for x in &entries {
        s.audit(x).await?;
    }
    let all = s.audit_log(None, 100).await?;
    let times: Vec<Timestamp> = all.iter().map(|x| x.at).collect();
    ensure_eq!(
        times,
        vec![t(50), t(40), t(30), t(20), t(10)],
        "newest first"
    );
    ensure_eq!(all[2], entries[2], "an entry reads back");
    ensure_eq!(s.audit_log(None, 2).await?.len(), 2, "limited");
    ensure_eq!(s.audit_log(None, 0).await?.len(), 0, "limit 0");
    ensure_eq!(
        s.audit_log(Some(&a.id), 100).await?,
        vec![entries[0].clone(), entries[1].clone()],
        "filtered by party, newest first"
    );
    ensure_eq!(
        s.audit_log(Some(&a.id), 1).await?,
        vec![entries[0].clone()],
        "filtered and limited"
    );
    s.redirect_party(&a.id, &b.id, t(60)).await?;
    let about_b: Vec<Timestamp> = s
        .audit_log(Some(&b.id), 100)
        .await?
        .iter()
        .map(|x| x.at)
        .collect();
    ensure_eq!(
        about_b,
        vec![t(40), t(20), t(10)],
        "entries about a party merged into this one belong to its log"
    );
    Ok(())
}

fn staff(email: &str, role: StaffRole, secs: i64) -> NewStaffUser {
    NewStaffUser {
        email: email.into(),
        name: format!("Staff {email}"),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: t(secs),
    }
}

fn session(token: &str, subject: SessionSubject, secs: i64, expires: i64) -> Session {
    Session {
        token_hash: format!("hash-of-{token}"),
        subject,
        csrf: format!("csrf-{token}"),
        created_at: t(secs),
        expires_at: t(expires),
        last_seen_at: t(secs),
        user_agent: "Mozilla/5.0 (test)".into(),
    }
}

fn customer(party: &Party, identifier: &str) -> SessionSubject {
    SessionSubject::Customer {
        party: party.id.clone(),
        identifier: identifier.into(),
    }
}

async fn api_key_lifecycle(s: &dyn HubStore) -> Outcome {
    let key = |label: &str, scope: ApiScope, secs: i64| NewApiKey {
        label: label.into(),
        scope,
        prefix: format!("kith_{label}"),
        hash: format!("{label:0>64}"),
        created_at: t(secs),
    };
    ensure_eq!(s.api_keys().await?.len(), 0, "no keys at first");
    let (k1, k2) = (
        key("crm", ApiScope::Read, 10),
        key("ingest", ApiScope::Ingest, 20),
    );
    let id1 = s.create_api_key(&k1).await?;
    let id2 = s.create_api_key(&k2).await?;
    ensure!(id1 != id2, "two keys, one id: {id1}");

    let want1 = crate::ApiKey {
        id: id1,
        label: "crm".into(),
        scope: ApiScope::Read,
        prefix: "kith_crm".into(),
        created_at: t(10),
        revoked_at: None,
        last_used_at: None,
    };
    ensure_eq!(
        s.api_key_by_hash(&k1.hash).await?,
        Some(want1.clone()),
        "a key found by its hash"
    );
    ensure_eq!(
        s.api_key_by_hash(&"f".repeat(64)).await?,
        None,
        "an unknown hash"
    );
    let mut all = s.api_keys().await?;
    all.sort_by_key(|k| k.id);
    ensure_eq!(
        all.iter().map(|k| (k.id, k.scope)).collect::<Vec<_>>(),
        vec![(id1, ApiScope::Read), (id2, ApiScope::Ingest)],
        "every key"
    );

    s.touch_api_key(id1, t(50)).await?;
    let mut want1 = want1;
    want1.last_used_at = Some(t(50));
    ensure_eq!(
        s.api_key_by_hash(&k1.hash).await?,
        Some(want1.clone()),
        "touching sets last_used_at"
    );
    s.touch_api_key(id1, t(55)).await?;
    want1.last_used_at = Some(t(55));

    ensure!(s.revoke_api_key(id1, t(60)).await?, "revoking a live key");
    ensure!(
        !s.revoke_api_key(id1, t(70)).await?,
        "revoking a revoked key again is false"
    );
    ensure!(
        !s.revoke_api_key(id1 + id2 + 100, t(70)).await?,
        "revoking an unknown key is false"
    );
    want1.revoked_at = Some(t(60));
    ensure_eq!(
        s.api_key_by_hash(&k1.hash).await?,
        Some(want1),
        "a revoked key is still found, revoked at the first revocation"
    );
    let other = s.api_key_by_hash(&k2.hash).await?;
    ensure_eq!(
        other.map(|k| (k.revoked_at, k.last_used_at)),
        Some((None, None)),
        "another key is untouched"
    );
    Ok(())
}

async fn staff_users_unique_by_email(s: &dyn HubStore) -> Outcome {
    ensure_eq!(s.staff_users().await?.len(), 0, "no staff at first");
    let ann = s
        .create_staff_user(&staff("Ann@Example.com", StaffRole::Admin, 10))
        .await?;
    let want = crate::StaffUser {
        id: ann,
        email: "ann@example.com".into(),
        name: "Staff Ann@Example.com".into(),
        role: StaffRole::Admin,
        password_hash: staff("", StaffRole::Admin, 0).password_hash,
        created_at: t(10),
        disabled_at: None,
    };
    ensure_eq!(
        s.staff_user(ann).await?,
        Some(want.clone()),
        "a user reads back, e-mail lower-case"
    );
    expect_conflict(
        s.create_staff_user(&staff("ANN@example.COM", StaffRole::Agent, 20))
            .await,
        "the same address in other case",
    )?;
    ensure_eq!(
        s.staff_users().await?,
        vec![want.clone()],
        "the refused user was not added"
    );
    ensure_eq!(
        s.staff_user_by_email("aNN@EXAMPLE.com").await?,
        Some(want.clone()),
        "found by e-mail in any case"
    );
    ensure_eq!(
        s.staff_user_by_email("bo@example.com").await?,
        None,
        "an unknown address"
    );
    let bo = s
        .create_staff_user(&staff("bo@example.com", StaffRole::Agent, 30))
        .await?;
    ensure!(bo != ann, "two users, one id: {bo}");
    ensure_eq!(s.staff_users().await?.len(), 2, "both users");
    ensure_eq!(
        s.staff_user_by_email("BO@example.com")
            .await?
            .map(|u| (u.id, u.role)),
        Some((bo, StaffRole::Agent)),
        "the second user by e-mail"
    );

    s.set_staff_password(bo, "$argon2id$new").await?;
    ensure_eq!(
        s.staff_user(bo).await?.map(|u| u.password_hash),
        Some("$argon2id$new".to_string()),
        "the new password hash"
    );
    ensure_eq!(
        s.staff_user(ann).await?,
        Some(want),
        "another user is untouched"
    );
    ensure_eq!(s.staff_user(ann + bo + 100).await?, None, "an unknown id");
    Ok(())
}

async fn staff_disable_ends_sessions(s: &dyn HubStore) -> Outcome {
    let ann = s
        .create_staff_user(&staff("ann@example.com", StaffRole::Admin, 10))
        .await?;
    let bo = s
        .create_staff_user(&staff("bo@example.com", StaffRole::Agent, 10))
        .await?;
    let p = new_party(s, 1).await?;
    let sessions = [
        session("ann-1", SessionSubject::Staff { user: ann }, 20, 1000),
        session("ann-2", SessionSubject::Staff { user: ann }, 30, 1000),
        session("bo", SessionSubject::Staff { user: bo }, 40, 1000),
        session("customer", customer(&p, "email:cy@example.com"), 50, 1000),
    ];
    for x in &sessions {
        s.create_session(x).await?;
    }
    s.set_staff_disabled(ann, Some(t(100))).await?;
    ensure_eq!(
        s.staff_user(ann).await?.and_then(|u| u.disabled_at),
        Some(t(100)),
        "disabled_at is set"
    );
    for x in &sessions[..2] {
        ensure_eq!(
            s.session(&x.token_hash).await?,
            None,
            "a disabled user's session {} is ended",
            x.token_hash
        );
    }
    for x in &sessions[2..] {
        ensure_eq!(
            s.session(&x.token_hash).await?,
            Some(x.clone()),
            "another subject's session {} stays",
            x.token_hash
        );
    }
    ensure_eq!(
        s.staff_user(bo).await?.and_then(|u| u.disabled_at),
        None,
        "another user stays enabled"
    );
    s.set_staff_disabled(ann, None).await?;
    ensure_eq!(
        s.staff_user(ann).await?.and_then(|u| u.disabled_at),
        None,
        "re-enabled"
    );
    Ok(())
}

async fn sessions_lifecycle(s: &dyn HubStore) -> Outcome {
    let p = new_party(s, 1).await?;
    let q = new_party(s, 2).await?;
    let ann = s
        .create_staff_user(&staff("ann@example.com", StaffRole::Agent, 10))
        .await?;
    let by_email = session("p-email", customer(&p, "email:cy@example.com"), 20, 3000);
    let by_phone = session("p-phone", customer(&p, "phone:+447700900123"), 21, 3000);
    let staff_s = session("staff", SessionSubject::Staff { user: ann }, 22, 1000);
    let other = session("q", customer(&q, "email:di@example.com"), 23, 4000);
    for x in [&by_email, &by_phone, &staff_s, &other] {
        s.create_session(x).await?;
    }
    ensure_eq!(
        s.session(&by_email.token_hash).await?,
        Some(by_email.clone()),
        "a customer session reads back"
    );
    ensure_eq!(
        s.session(&staff_s.token_hash).await?,
        Some(staff_s.clone()),
        "a staff session reads back"
    );
    ensure_eq!(
        s.session("hash-of-nothing").await?,
        None,
        "an unknown token"
    );

    s.touch_session(&by_email.token_hash, t(500), t(3500))
        .await?;
    let mut touched = by_email.clone();
    touched.last_seen_at = t(500);
    touched.expires_at = t(3500);
    ensure_eq!(
        s.session(&by_email.token_hash).await?,
        Some(touched),
        "touching slides the expiry and nothing else"
    );
    ensure_eq!(
        s.session(&by_phone.token_hash).await?,
        Some(by_phone.clone()),
        "another session is untouched"
    );

    // Every session of the party, whichever identifier it signed in with.
    ensure_eq!(
        s.delete_sessions_of(&customer(&p, "email:someone@example.com"))
            .await?,
        2,
        "both of the customer's sessions end"
    );
    ensure_eq!(
        s.session(&by_phone.token_hash).await?,
        None,
        "ended session is gone"
    );
    ensure_eq!(
        s.session(&other.token_hash).await?,
        Some(other.clone()),
        "another party's session stays"
    );
    ensure_eq!(
        s.session(&staff_s.token_hash).await?,
        Some(staff_s.clone()),
        "a staff session stays"
    );

    // Expiry: only sessions that expired strictly before the time go.
    ensure_eq!(
        s.purge_sessions(t(1000)).await?,
        0,
        "a session expiring at the time stays"
    );
    ensure_eq!(s.purge_sessions(t(2000)).await?, 1, "the expired one goes");
    ensure_eq!(
        s.session(&staff_s.token_hash).await?,
        None,
        "purged session is gone"
    );
    ensure_eq!(
        s.session(&other.token_hash).await?,
        Some(other.clone()),
        "an unexpired session stays"
    );

    s.delete_session(&other.token_hash).await?;
    ensure_eq!(
        s.session(&other.token_hash).await?,
        None,
        "a signed-out session is gone"
    );
    s.delete_session(&other.token_hash).await?;

    // A session begun under an id since merged away belongs to the survivor.
    let before_merge = session(
        "before-merge",
        customer(&p, "email:cy@example.com"),
        30,
        5000,
    );
    s.create_session(&before_merge).await?;
    s.redirect_party(&p.id, &q.id, t(40)).await?;
    ensure_eq!(
        s.delete_sessions_of(&customer(&q, "email:di@example.com"))
            .await?,
        1,
        "sessions under merged-away ids end with the survivor's"
    );
    let staff_again = session("staff-2", SessionSubject::Staff { user: ann }, 50, 5000);
    s.create_session(&staff_again).await?;
    ensure_eq!(
        s.delete_sessions_of(&SessionSubject::Staff { user: ann })
            .await?,
        1,
        "a staff user's sessions"
    );
    ensure_eq!(
        s.delete_sessions_of(&SessionSubject::Staff { user: ann })
            .await?,
        0,
        "nothing left to end"
    );
    Ok(())
}

async fn login_codes_work_once(s: &dyn HubStore) -> Outcome {
    let p = new_party(s, 1).await?;
    let ident = "email:ann@example.com";
    let code = |identifier: &str, n: i64, secs: i64| NewLoginCode {
        identifier: identifier.into(),
        party: p.id.clone(),
        code_hash: format!("{n:0>64}"),
        salt: format!("salt-{n}"),
        created_at: t(secs),
        expires_at: t(secs + 600),
    };
    ensure_eq!(
        s.active_login_code(ident, t(0)).await?,
        None,
        "no code at first"
    );
    let c1 = s.create_login_code(&code(ident, 1, 10)).await?;
    let c2 = s.create_login_code(&code(ident, 2, 20)).await?;
    let c3 = s
        .create_login_code(&code("phone:+447700900123", 3, 30))
        .await?;
    ensure!(c1 != c2 && c2 != c3, "ids differ: {c1}, {c2}, {c3}");

    ensure_eq!(
        s.login_codes_issued_since(ident, t(10)).await?,
        2,
        "codes issued at or after the time"
    );
    ensure_eq!(s.login_codes_issued_since(ident, t(11)).await?, 1, "later");
    ensure_eq!(s.login_codes_issued_since(ident, t(21)).await?, 0, "none");
    ensure_eq!(
        s.login_codes_issued_since("phone:+447700900123", t(0))
            .await?,
        1,
        "another identifier's codes are counted apart"
    );

    let want2 = crate::LoginCode {
        id: c2,
        identifier: ident.into(),
        party: p.id.clone(),
        code_hash: format!("{:0>64}", 2),
        salt: "salt-2".into(),
        created_at: t(20),
        expires_at: t(620),
        attempts: 0,
        used_at: None,
    };
    ensure_eq!(
        s.active_login_code(ident, t(100)).await?,
        Some(want2.clone()),
        "the newest unused, unexpired code"
    );

    ensure_eq!(s.count_login_attempt(c2).await?, 1, "first failed attempt");
    ensure_eq!(s.count_login_attempt(c2).await?, 2, "second failed attempt");
    ensure_eq!(
        s.active_login_code(ident, t(100))
            .await?
            .map(|c| c.attempts),
        Some(2),
        "attempts read back"
    );

    ensure!(s.use_login_code(c2, t(110)).await?, "the first use works");
    ensure!(
        !s.use_login_code(c2, t(111)).await?,
        "the second use of a code fails"
    );
    ensure!(
        !s.use_login_code(c1 + c2 + c3 + 100, t(111)).await?,
        "an unknown code cannot be used"
    );
    ensure_eq!(
        s.active_login_code(ident, t(120)).await?.map(|c| c.id),
        Some(c1),
        "a used code is not active; the older one is"
    );
    ensure_eq!(
        s.active_login_code(ident, t(609)).await?.map(|c| c.id),
        Some(c1),
        "active until it expires"
    );
    ensure_eq!(
        s.active_login_code(ident, t(610)).await?,
        None,
        "an expired code is not active"
    );

    // Two requests racing with one code: exactly one wins.
    let (x, y) = tokio::join!(s.use_login_code(c3, t(200)), s.use_login_code(c3, t(200)));
    ensure_eq!(
        [x?, y?].iter().filter(|&&won| won).count(),
        1,
        "one of two concurrent uses succeeds"
    );
    ensure_eq!(
        s.active_login_code("phone:+447700900123", t(200)).await?,
        None,
        "the raced code is used"
    );
    Ok(())
}

async fn erasure_requests_follow_merges(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    let c = new_party(s, 3).await?;
    let request = |party: &Party, secs: i64| ErasureRequest {
        id: 0,
        party: party.id.clone(),
        requested_by: format!("customer:{}", party.id),
        requested_at: t(secs),
        receipts: vec![
            ErasureReceipt {
                source: "kith".into(),
                records: vec![rec("crm", "1"), rec("shop", "9")],
                action: "erased".into(),
                detail: "contributions and sessions".into(),
                at: t(secs),
            },
            ErasureReceipt {
                source: "billing".into(),
                records: vec![rec("billing", "C-17")],
                action: "requested".into(),
                detail: "ticket sent to the billing team".into(),
                at: t(secs + 1),
            },
        ],
    };
    ensure_eq!(
        s.erasure_requests(None).await?.len(),
        0,
        "no requests at first"
    );
    let mut r1 = request(&a, 10);
    r1.id = s.add_erasure_request(&r1).await?;
    let mut r3 = request(&c, 30);
    r3.id = s.add_erasure_request(&r3).await?;
    let mut r2 = request(&b, 20);
    r2.requested_by = "staff:jo@example.com".into();
    r2.receipts.clear();
    r2.id = s.add_erasure_request(&r2).await?;
    ensure!(
        r1.id != r2.id && r2.id != r3.id && r1.id != r3.id,
        "ids differ: {}, {}, {}",
        r1.id,
        r2.id,
        r3.id
    );
    ensure_eq!(
        s.erasure_requests(None).await?,
        vec![r3.clone(), r2.clone(), r1.clone()],
        "every request with its receipts, newest first"
    );
    ensure_eq!(
        s.erasure_requests(Some(&a.id)).await?,
        vec![r1.clone()],
        "one party's requests"
    );
    s.redirect_party(&a.id, &b.id, t(40)).await?;
    let ids = |v: Vec<ErasureRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    ensure_eq!(
        ids(s.erasure_requests(Some(&b.id)).await?),
        vec![r2.id, r1.id],
        "requests under an id since merged into the party are the party's"
    );
    ensure_eq!(
        ids(s.erasure_requests(Some(&a.id)).await?),
        vec![r2.id, r1.id],
        "the merged-away id answers for the survivor"
    );
    ensure_eq!(
        ids(s.erasure_requests(Some(&PartyId::generate(t(5)))).await?),
        Vec::<i64>::new(),
        "an unknown party has none"
    );
    Ok(())
}

// --- change feed ------------------------------------------------------------------

/// The changes appended since `after`, as (kind, subject, party).
async fn feed_since(
    s: &dyn HubStore,
    after: i64,
) -> Result<Vec<(ChangeKind, String, Option<String>)>, Failure> {
    Ok(s.changes_after(after, 10_000)
        .await?
        .into_iter()
        .map(|c| (c.kind, c.subject, c.party.map(|p| p.as_str().to_string())))
        .collect())
}

fn fed(
    kind: ChangeKind,
    subject: &str,
    party: Option<&PartyId>,
) -> (ChangeKind, String, Option<String>) {
    (
        kind,
        subject.to_string(),
        party.map(|p| p.as_str().to_string()),
    )
}

async fn changes_follow_each_write(s: &dyn HubStore) -> Outcome {
    use ChangeKind as K;
    ensure_eq!(
        s.latest_change_seq().await?,
        0,
        "an empty store has no changes"
    );
    ensure_eq!(
        s.changes_after(0, 10).await?,
        Vec::<Change>::new(),
        "nor lists any"
    );

    // Records: new ones, re-sends (nothing), a real update.
    let mut at = 0;
    s.upsert_records(
        &[
            entry("crm", "1", "ann@example.com"),
            entry("crm", "2", "bo@example.com"),
        ],
        t(10),
    )
    .await?;
    ensure_eq!(
        feed_since(s, at).await?,
        vec![
            fed(K::RecordInserted, "crm:1", None),
            fed(K::RecordInserted, "crm:2", None)
        ],
        "an upsert reports each new record"
    );
    at = s.latest_change_seq().await?;
    s.upsert_records(&[entry("crm", "1", "ann@example.com")], t(11))
        .await?;
    ensure_eq!(
        feed_since(s, at).await?,
        vec![],
        "a re-send is not a change"
    );

    // Parties and links.
    let a = party_at(20, rec("crm", "1"));
    s.create_parties(std::slice::from_ref(&a)).await?;
    s.create_parties(std::slice::from_ref(&a)).await?;
    s.set_links(&[link(&rec("crm", "1"), &a.id, 21)]).await?;
    let mut refreshed = link(&rec("crm", "1"), &a.id, 22);
    refreshed.evidence = vec!["email equal".into()];
    s.set_links(&[refreshed]).await?;
    ensure_eq!(
        feed_since(s, at).await?,
        vec![
            fed(K::PartyCreated, a.id.as_str(), Some(&a.id)),
            fed(K::LinkChanged, "crm:1", Some(&a.id)),
        ],
        "a new party once, a new link once (new evidence alone is not news)"
    );
    at = s.latest_change_seq().await?;
    let mut moved = entry("crm", "1", "ann@example.com");
    moved.record.attrs.full_name = Some("Ann Lee-Smith".into());
    s.upsert_records(&[moved], t(23)).await?;
    let b = new_party(s, 24).await?;
    s.set_links(&[link(&rec("crm", "1"), &b.id, 25)]).await?;
    s.redirect_party(&a.id, &b.id, t(26)).await?;
    s.redirect_party(&a.id, &b.id, t(27)).await?;
    let got = s.changes_after(at, 100).await?;
    ensure_eq!(
        got.iter()
            .map(|c| (c.kind, c.subject.clone(), c.party.clone()))
            .collect::<Vec<_>>(),
        vec![
            (K::RecordUpdated, "crm:1".to_string(), Some(a.id.clone())),
            (K::PartyCreated, b.id.to_string(), Some(b.id.clone())),
            (K::LinkChanged, "crm:1".to_string(), Some(b.id.clone())),
            (K::PartyMerged, a.id.to_string(), Some(b.id.clone())),
        ],
        "an update names the record's party; a move and a merge (once) are reported"
    );
    ensure_eq!(
        got[2].data["previous_party"],
        serde_json::json!(a.id.as_str()),
        "a moved link names the party it left"
    );
    ensure_eq!(
        got[3].data,
        serde_json::json!({"from": a.id.as_str(), "into": b.id.as_str()}),
        "a merge names both ids"
    );

    // Unlinking, removal, retirement.
    at = s.latest_change_seq().await?;
    s.unlink(&rec("crm", "2")).await?;
    s.set_links(&[link(&rec("crm", "2"), &b.id, 30)]).await?;
    s.unlink(&rec("crm", "2")).await?;
    s.remove_records(&[rec("crm", "1"), rec("crm", "404")])
        .await?;
    s.retire_party(&b.id).await?;
    s.retire_party(&b.id).await?;
    ensure_eq!(
        feed_since(s, at).await?,
        vec![
            fed(K::LinkChanged, "crm:2", Some(&b.id)),
            fed(K::LinkRemoved, "crm:2", Some(&b.id)),
            fed(K::RecordRemoved, "crm:1", Some(&b.id)),
            fed(K::PartyRetired, b.id.as_str(), Some(&b.id)),
        ],
        "only what existed is reported gone"
    );

    // Contributions, decisions, erasure.
    at = s.latest_change_seq().await?;
    let c = new_party(s, 40).await?;
    let contribution = |kind, attribute: &str, value| NewContribution {
        party: c.id.clone(),
        anchor: Anchor::Identifier {
            value: "email:cy@example.com".into(),
        },
        kind,
        attribute: attribute.into(),
        value,
        by: "staff:jo@example.com".into(),
        created_at: t(41),
    };
    let consent = s
        .add_contribution(&contribution(
            ContributionKind::Consent,
            "newsletter",
            serde_json::json!(false),
        ))
        .await?;
    let correction = s
        .add_contribution(&contribution(
            ContributionKind::Correction,
            "email",
            serde_json::json!("cy.new@example.com"),
        ))
        .await?;
    s.decide_review(
        &rec("shop", "9"),
        &rec("crm", "2"),
        ReviewStatus::Rejected,
        "staff:jo@example.com",
        t(42),
    )
    .await?;
    let erasure = s
        .add_erasure_request(&ErasureRequest {
            id: 0,
            party: c.id.clone(),
            requested_by: format!("customer:{}", c.id),
            requested_at: t(43),
            receipts: vec![ErasureReceipt {
                source: "billing".into(),
                records: vec![rec("billing", "C-17")],
                action: "requested".into(),
                detail: "ticket sent to cy@example.com's account manager".into(),
                at: t(43),
            }],
        })
        .await?;
    let got = s.changes_after(at, 100).await?;
    ensure_eq!(
        got.iter()
            .map(|c| (c.kind, c.subject.clone()))
            .collect::<Vec<_>>(),
        vec![
            (K::PartyCreated, c.id.to_string()),
            (K::ConsentChanged, format!("contribution:{consent}")),
            (K::ContributionAdded, format!("contribution:{correction}")),
            (K::ReviewDecided, "review:crm:2|shop:9".to_string()),
            (K::ErasureRequested, format!("erasure:{erasure}")),
        ],
        "contributions by kind, decisions and erasure requests are reported"
    );
    ensure_eq!(
        (&got[1].data["attribute"], &got[1].data["value"]),
        (&serde_json::json!("newsletter"), &serde_json::json!(false)),
        "a consent carries its attribute and new value"
    );
    ensure_eq!(
        got[4].data["receipts"][0]["records"][0],
        serde_json::json!({"source": "billing", "key": "C-17"}),
        "an erasure names the records each source must erase"
    );

    // Strictly increasing, and nothing personal.
    let all = s.changes_after(0, 10_000).await?;
    ensure!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "seqs are not strictly increasing: {:?}",
        all.iter().map(|c| c.seq).collect::<Vec<_>>()
    );
    ensure_eq!(
        s.latest_change_seq().await?,
        all.last().map(|c| c.seq).unwrap_or(0),
        "the latest seq is the last change's"
    );
    for c in &all {
        let text = c.data.to_string();
        ensure!(
            !text.contains('@') && !text.contains("Ann"),
            "change {} ({}) carries an identity value: {text}",
            c.seq,
            c.kind
        );
    }
    Ok(())
}

async fn failed_writes_emit_no_changes(s: &dyn HubStore) -> Outcome {
    let a = new_party(s, 1).await?;
    let b = new_party(s, 2).await?;
    s.redirect_party(&a.id, &b.id, t(3)).await?;
    s.set_links(&[link(&rec("crm", "1"), &b.id, 4)]).await?;
    let before = s.latest_change_seq().await?;
    ensure!(before > 0, "the setup made changes");

    let stranger = PartyId::generate(t(5));
    expect_invalid(
        s.set_links(&[
            link(&rec("crm", "2"), &b.id, 6),
            link(&rec("crm", "3"), &stranger, 6),
        ])
        .await,
        "a link to an unknown party",
    )?;
    let fresh = party_at(7, rec("crm", "7"));
    let mut clash = b.clone();
    clash.kind = PartyKind::Organisation;
    expect_invalid(
        s.create_parties(&[fresh, clash]).await,
        "a party that exists with other details",
    )?;
    expect_invalid(
        s.redirect_party(&b.id, &a.id, t(8)).await,
        "a redirect that closes a loop",
    )?;
    expect_invalid(s.retire_party(&b.id).await, "retiring a linked party")?;
    expect_invalid(
        s.decide_review(
            &rec("crm", "1"),
            &rec("crm", "1"),
            ReviewStatus::Accepted,
            "cli",
            t(9),
        )
        .await,
        "a record reviewed against itself",
    )?;
    ensure!(
        s.append_changes(&[NewChange::party_retired(&a.id)], Some(("", 1)))
            .await
            .is_err(),
        "a cursor without a consumer name is refused"
    );
    ensure_eq!(
        s.latest_change_seq().await?,
        before,
        "refused writes append no changes"
    );
    ensure_eq!(
        s.changes_after(before, 10).await?,
        Vec::<Change>::new(),
        "nothing to read after them"
    );
    Ok(())
}

async fn changes_resume_from_any_seq(s: &dyn HubStore) -> Outcome {
    let entries: Vec<IndexEntry> = (0..7)
        .map(|i| entry("crm", &i.to_string(), &format!("p{i}@example.com")))
        .collect();
    s.upsert_records(&entries, t(1)).await?;
    let produced: Vec<NewChange> = (0..3)
        .map(|i| NewChange {
            kind: ChangeKind::EventsIngested,
            party: None,
            subject: format!("events:{i}-{i}"),
            data: serde_json::json!({"first_seq": i, "last_seq": i, "count": 1}),
        })
        .collect();
    ensure_eq!(
        s.feed_cursor("ingest.resolver").await?,
        None,
        "an unknown consumer has no position"
    );
    let last = s
        .append_changes(&produced, Some(("ingest.resolver", 3)))
        .await?;
    ensure_eq!(
        s.feed_cursor("ingest.resolver").await?,
        Some(3),
        "the producer's position is stored with its changes"
    );
    let all = s.changes_after(0, 1000).await?;
    ensure_eq!(all.len(), 10, "seven records and three appended changes");
    ensure_eq!(last, all[9].seq, "append returns the last seq");
    ensure_eq!(
        all[9].data,
        serde_json::json!({"first_seq": 2, "last_seq": 2, "count": 1}),
        "appended data reads back"
    );
    // Paging from any position, however small the page, gives the same feed.
    for page in [1, 3, 4] {
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let got = s.changes_after(cursor, page).await?;
            ensure!(got.len() <= page, "a page of {page} held {}", got.len());
            let Some(l) = got.last() else { break };
            cursor = l.seq;
            seen.extend(got);
        }
        ensure_eq!(
            seen,
            all.clone(),
            "paging by {page} reads every change once"
        );
    }
    ensure_eq!(
        s.changes_after(all[4].seq, 1000).await?,
        all[5..].to_vec(),
        "resuming after a seq gives exactly what followed it"
    );
    ensure_eq!(
        s.changes_after(last, 10).await?,
        Vec::<Change>::new(),
        "nothing after the last"
    );
    // Nothing to append still moves the cursor, and reports the latest seq.
    ensure_eq!(
        s.append_changes(&[], Some(("ingest.resolver", 9))).await?,
        last,
        "an empty append returns the latest seq"
    );
    ensure_eq!(s.feed_cursor("ingest.resolver").await?, Some(9), "moved");
    s.set_feed_cursor("webhook:crm", all[2].seq).await?;
    s.set_feed_cursor("webhook:crm", all[6].seq).await?;
    ensure_eq!(
        s.feed_cursor("webhook:crm").await?,
        Some(all[6].seq),
        "a cursor reads back its last position"
    );
    ensure_eq!(
        s.feed_cursor("ingest.resolver").await?,
        Some(9),
        "cursors are kept per consumer"
    );
    Ok(())
}

async fn pruning_keeps_what_consumers_still_need(s: &dyn HubStore) -> Outcome {
    let entries: Vec<IndexEntry> = (0..7)
        .map(|i| entry("crm", &i.to_string(), &format!("p{i}@example.com")))
        .collect();
    s.upsert_records(&entries, t(1)).await?;
    let all = s.changes_after(0, 1000).await?;
    ensure_eq!(all.len(), 7, "one change per record");
    let (first, last) = (all[0].seq, all[6].seq);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let consumers = vec!["webhook:a".to_string(), "webhook:not-started".to_string()];

    ensure_eq!(
        s.prune_changes(t(0), &consumers).await?,
        0,
        "nothing that old"
    );
    ensure_eq!(s.pruned_through().await?, 0, "nothing pruned yet");

    s.set_feed_cursor("webhook:a", first + 2).await?;
    ensure_eq!(
        s.prune_changes(later, &consumers).await?,
        3,
        "only what webhook:a has passed"
    );
    ensure_eq!(s.pruned_through().await?, first + 2, "how far pruning went");
    let rest = s.changes_after(0, 1000).await?;
    ensure_eq!(
        rest.first().map(|c| c.seq),
        Some(first + 3),
        "the rest reads on"
    );

    s.set_feed_cursor("webhook:a", last).await?;
    ensure_eq!(s.prune_changes(later, &consumers).await?, 4, "the rest");
    ensure_eq!(s.changes_after(0, 1000).await?.len(), 0, "all gone");
    ensure_eq!(
        s.latest_change_seq().await?,
        last,
        "the latest seq survives pruning"
    );
    s.upsert_records(&[entry("crm", "new", "new@example.com")], t(2))
        .await?;
    let next = s.changes_after(0, 10).await?;
    ensure!(
        next.len() == 1 && next[0].seq > last,
        "a seq is never given again: {next:?}"
    );
    ensure!(
        s.set_feed_cursor("kith.pruned", 0).await.is_err(),
        "the pruning record is not a consumer's to move"
    );
    Ok(())
}
