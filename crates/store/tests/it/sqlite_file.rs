//! What only a store on disk can show.

use std::path::Path;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use kith_model::{IdentityAttrs, IdentityRecord, PartyKind, RecordRef};
use kith_store::{AuditEntry, Error, HubStore, IndexEntry, SqliteStore};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

fn entry(key: &str) -> IndexEntry {
    IndexEntry {
        record: IdentityRecord {
            record: RecordRef::new("crm", key),
            kind: PartyKind::Person,
            relation: None,
            attrs: IdentityAttrs {
                full_name: Some(format!("Person {key}")),
                emails: vec![format!("{key}@example.com")],
                ..Default::default()
            },
            cursor: None,
            updated_at: None,
        },
        identifiers: vec![format!("email:{key}@example.com")],
    }
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .unwrap()
}

async fn version_rows(path: &Path) -> Vec<(i64, String)> {
    let mut conn = raw(path).await;
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, applied_at FROM schema_version ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    rows
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_migrate_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.describe(), format!("sqlite:{}", path.display()));
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::SCHEMA_VERSION
    );
    let seen = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    store
        .upsert_records(&[entry("1"), entry("2")], seen)
        .await
        .unwrap();
    store.close().await;
    let before = version_rows(&path).await;
    assert_eq!(before.len() as i64, SqliteStore::SCHEMA_VERSION);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.record_keys("crm").await.unwrap(), vec!["1", "2"]);
    let r = store
        .record(&RecordRef::new("crm", "1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.first_seen, seen);
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::SCHEMA_VERSION
    );
    store.close().await;
    assert_eq!(version_rows(&path).await, before, "migrations ran again");
}

#[tokio::test]
async fn a_store_from_a_newer_kith_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let mut conn = raw(&path).await;
    sqlx::query("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', '2099-01-01T00:00:00Z')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    match SqliteStore::open(&path).await {
        Err(Error::TooNew {
            target,
            found,
            supported,
        }) => {
            assert_eq!(found, 999);
            assert_eq!(supported, SqliteStore::SCHEMA_VERSION);
            assert!(target.contains(&path.display().to_string()), "{target}");
        }
        other => panic!("want TooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_directory_is_an_open_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("hub.db");
    let started = Instant::now();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "want Open, got {err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "message does not name the path: {err}"
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "failing to open took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_write_concurrently_without_busy_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
    let seen = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let key = format!("{w}-{i}");
                store.upsert_records(&[entry(&key)], seen).await.unwrap();
                store
                    .audit(&AuditEntry {
                        at: seen,
                        actor: format!("worker:{w}"),
                        action: "sync".into(),
                        party: None,
                        detail: key.clone(),
                    })
                    .await
                    .unwrap();
                assert!(
                    store
                        .record(&RecordRef::new("crm", key))
                        .await
                        .unwrap()
                        .is_some()
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.record_keys("crm").await.unwrap().len(), 100);
    assert_eq!(store.audit_log(None, 1000).await.unwrap().len(), 100);
}

#[tokio::test]
async fn a_version_2_store_keeps_its_review_queue_and_learns_disputes() {
    use kith_store::ReviewStatus;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    // A store as kith left it at schema version 2, with decisions in its queue.
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(include_str!("../../migrations/sqlite/0001_init.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../../migrations/sqlite/0002_review.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL);
         INSERT INTO schema_version VALUES (1, 'init', '2024-01-01T00:00:00.000000000Z'), (2, 'review', '2024-01-01T00:00:00.000000000Z');
         INSERT INTO review_pairs VALUES
           ('crm', '1', 'shop', '9', 0.6, 'pending', NULL, NULL, '2024-01-01T00:00:10.000000000Z'),
           ('crm', '1', 'crm', '2', 0.9, 'rejected', 'staff:ann', '2024-01-01T00:00:20.000000000Z', '2024-01-01T00:00:10.000000000Z'),
           ('crm', '2', 'shop', '9', NULL, 'accepted', 'staff:bob', '2024-01-01T00:00:30.000000000Z', '2024-01-01T00:00:30.000000000Z');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::SCHEMA_VERSION
    );
    let pairs = store.review_pairs(None).await.unwrap();
    let got: Vec<(String, ReviewStatus, Option<f64>, Option<String>)> = pairs
        .iter()
        .map(|p| {
            (
                p.a.to_string(),
                p.status,
                p.probability,
                p.decided_by.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("crm:1".into(), ReviewStatus::Pending, Some(0.6), None),
            (
                "crm:2".into(),
                ReviewStatus::Accepted,
                None,
                Some("staff:bob".into())
            ),
            (
                "crm:1".into(),
                ReviewStatus::Rejected,
                Some(0.9),
                Some("staff:ann".into())
            ),
        ],
        "every pair survives the rebuild"
    );
    let at = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    let (a, b) = (RecordRef::new("crm", "1"), RecordRef::new("shop", "9"));
    store
        .decide_review(&a, &b, ReviewStatus::Disputed, "customer:p1", at)
        .await
        .unwrap();
    assert_eq!(
        store
            .review_pairs(Some(ReviewStatus::Disputed))
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;

    // The rebuilt table keeps its constraint and its index.
    let mut conn = raw(&path).await;
    let bogus = sqlx::query(
        "INSERT INTO review_pairs (a_source, a_key, b_source, b_key, status, queued_at) \
         VALUES ('x', '1', 'y', '2', 'maybe', '2024-01-01T00:00:00.000000000Z')",
    )
    .execute(&mut conn)
    .await;
    assert!(bogus.is_err(), "an unknown status was stored");
    let index: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'review_pairs' \
         AND name = 'review_pairs_status'",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    assert_eq!(index.as_deref(), Some("review_pairs_status"));
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_code_works_once_across_connections() {
    use kith_store::NewLoginCode;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
    let at = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    for round in 0..10 {
        let id = store
            .create_login_code(&NewLoginCode {
                identifier: format!("email:u{round}@example.com"),
                party: kith_model::PartyId::generate(at),
                code_hash: "h".into(),
                salt: "s".into(),
                created_at: at,
                expires_at: at + chrono::Duration::minutes(10),
            })
            .await
            .unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(4));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.use_login_code(id, at).await.unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}: {won} requests used one code");
    }
}

/// Sizes a real sync produces, on a file store. Run with `--ignored --nocapture`
/// to see the timings; a regression to row-at-a-time writes shows as tens of seconds.
#[tokio::test]
#[ignore = "timing; run by hand"]
async fn bulk_timings() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
    let seen = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();

    let entries: Vec<(String, u64)> = (0..200_000u64)
        .map(|i| (format!("c{}", i % 40_000), i * 80))
        .collect();
    let stamp = kith_model::FileStamp {
        size: 16_000_000,
        modified_ns: 1,
    };
    let started = Instant::now();
    store
        .replace_file_index("files", "by_customer", stamp, &entries)
        .await
        .unwrap();
    println!("replace_file_index 200k entries: {:?}", started.elapsed());
    let keys: Vec<String> = (0..5000).map(|i| format!("c{i}")).collect();
    let started = Instant::now();
    let got = store
        .file_index_offsets("files", "by_customer", &keys)
        .await
        .unwrap();
    println!("file_index_offsets 5k keys: {:?}", started.elapsed());
    assert_eq!(got.len(), 5000);

    let records: Vec<IndexEntry> = (0..50_000).map(|i| entry(&format!("{i:06}"))).collect();
    let started = Instant::now();
    let c = store.upsert_records(&records, seen).await.unwrap();
    println!("upsert 50k new: {:?} {c:?}", started.elapsed());
    let started = Instant::now();
    let c = store.upsert_records(&records, seen).await.unwrap();
    println!("upsert 50k unchanged: {:?} {c:?}", started.elapsed());
    let mut changed = records.clone();
    for e in &mut changed {
        e.record.attrs.city = Some("Leeds".into());
    }
    let started = Instant::now();
    let c = store.upsert_records(&changed, seen).await.unwrap();
    println!("upsert 50k changed: {:?} {c:?}", started.elapsed());
    let started = Instant::now();
    let all = store.records().await.unwrap();
    println!("records() 50k: {:?}", started.elapsed());
    assert_eq!(all.len(), 50_000);
    let refs: Vec<RecordRef> = records.iter().map(|e| e.record.record.clone()).collect();
    let started = Instant::now();
    assert_eq!(store.remove_records(&refs).await.unwrap(), 50_000);
    println!("remove 50k: {:?}", started.elapsed());
}

/// The view's reads run on connections of their own (not the pool's): they
/// must see every commit made before them, by this handle or by another
/// process on the same file, at once — a view that showed a record after it
/// was split off to another person would show one customer another's data.
#[tokio::test]
async fn view_reads_see_other_connections_commits_at_once() {
    use kith_model::{Anchor, ContributionKind, FileStamp, Link, Party, PartyId};
    use kith_store::NewContribution;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let reader = SqliteStore::open(&path).await.unwrap();
    // Another process (`kith sync`, `kith review`) writing the same file.
    let writer = SqliteStore::open(&path).await.unwrap();
    let at = |s| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    writer
        .upsert_records(&[entry("1"), entry("2")], at(0))
        .await
        .unwrap();
    let party = |s: i64, key: &str| Party {
        id: PartyId::generate(at(s)),
        kind: PartyKind::Person,
        created_at: at(s),
        founding_record: RecordRef::new("crm", key),
    };
    let (ann, bob) = (party(1, "1"), party(2, "2"));
    let link = |key: &str, p: &Party| Link {
        record: RecordRef::new("crm", key),
        party: p.id.clone(),
        rule: "test".into(),
        score: 1.0,
        evidence: vec![],
        linked_at: at(3),
    };
    writer
        .create_parties(&[ann.clone(), bob.clone()])
        .await
        .unwrap();
    writer
        .set_links(&[link("1", &ann), link("2", &ann)])
        .await
        .unwrap();
    let keys = |r: Option<(Party, Vec<(Link, kith_store::StoredRecord)>)>| {
        r.unwrap()
            .1
            .into_iter()
            .map(|(l, _)| l.record.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(reader.party_records(&ann.id).await.unwrap()),
        ["1", "2"]
    );

    // A split moves record 2 to Bob: the next read no longer shows it to Ann.
    writer.set_links(&[link("2", &bob)]).await.unwrap();
    assert_eq!(keys(reader.party_records(&ann.id).await.unwrap()), ["1"]);
    assert_eq!(keys(reader.party_records(&bob.id).await.unwrap()), ["2"]);
    // A merge redirects Bob to Ann: Bob's id answers Ann's records.
    writer.set_links(&[link("2", &ann)]).await.unwrap();
    writer
        .redirect_party(&bob.id, &ann.id, at(4))
        .await
        .unwrap();
    let (p, _) = reader.party_records(&bob.id).await.unwrap().unwrap();
    assert_eq!(p.id, ann.id);

    // Contributions and file indexes, likewise.
    let anchor = Anchor::Record(RecordRef::new("crm", "1"));
    assert!(
        reader
            .contributions(std::slice::from_ref(&anchor))
            .await
            .unwrap()
            .is_empty()
    );
    writer
        .add_contribution(&NewContribution {
            party: bob.id.clone(),
            anchor: anchor.clone(),
            kind: ContributionKind::Preference,
            attribute: "newsletter".into(),
            value: serde_json::json!(false),
            by: "customer".into(),
            created_at: at(5),
        })
        .await
        .unwrap();
    let found = reader
        .contributions(std::slice::from_ref(&anchor))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].party, ann.id, "resolved through the redirect");
    // The reads are answered again from a cache while nothing changes; a
    // write through the reading handle's own pool empties it as well, and so
    // does another process's.
    for _ in 0..3 {
        assert_eq!(
            keys(reader.party_records(&ann.id).await.unwrap()),
            ["1", "2"]
        );
        assert_eq!(
            reader
                .contributions(std::slice::from_ref(&anchor))
                .await
                .unwrap()
                .len(),
            1
        );
    }
    let cleo = party(6, "2");
    reader
        .create_parties(std::slice::from_ref(&cleo))
        .await
        .unwrap();
    // A view's snapshot is cached as one answer, and emptied alike.
    let snapshot_keys = |s: Option<std::sync::Arc<kith_store::PartySnapshot>>| {
        let s = s.expect("a party");
        keys(Some((s.party.clone(), s.records.clone())))
    };
    assert_eq!(
        snapshot_keys(reader.party_snapshot(&ann.id).await.unwrap()),
        ["1", "2"]
    );
    reader.set_links(&[link("2", &cleo)]).await.unwrap();
    assert_eq!(keys(reader.party_records(&ann.id).await.unwrap()), ["1"]);
    assert_eq!(keys(reader.party_records(&cleo.id).await.unwrap()), ["2"]);
    assert_eq!(
        snapshot_keys(reader.party_snapshot(&ann.id).await.unwrap()),
        ["1"]
    );
    writer.set_links(&[link("2", &ann)]).await.unwrap();
    assert_eq!(
        snapshot_keys(reader.party_snapshot(&ann.id).await.unwrap()),
        ["1", "2"]
    );
    assert_eq!(
        keys(reader.party_records(&ann.id).await.unwrap()),
        ["1", "2"]
    );
    assert!(keys(reader.party_records(&cleo.id).await.unwrap()).is_empty());
    let stamp = FileStamp {
        size: 10,
        modified_ns: 7,
    };
    assert_eq!(
        reader.file_index_stamp("shop", "orders").await.unwrap(),
        None
    );
    writer
        .replace_file_index("shop", "orders", stamp, &[("k".into(), 3)])
        .await
        .unwrap();
    assert_eq!(
        reader.file_index_stamp("shop", "orders").await.unwrap(),
        Some(stamp)
    );
    assert_eq!(
        reader
            .file_index_offsets("shop", "orders", &["k".into(), "z".into()])
            .await
            .unwrap(),
        [("k".to_string(), vec![3])].into_iter().collect()
    );

    // After close, reads fail as the pool's do rather than reopening the file.
    reader.close().await;
    assert!(reader.party_records(&ann.id).await.is_err());
    writer.close().await;
}
