//! Integration tests of the hub store: the conformance suite on SQLite, and
//! what only a file on disk can show (reopening, versions, paths).

mod sqlite_file;

use kith_store::{SqliteStore, conformance};

#[tokio::test]
async fn sqlite_in_memory_conforms() {
    conformance::run_all(|| async { SqliteStore::open_in_memory().await.unwrap() }).await;
}

#[tokio::test]
async fn sqlite_file_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run_all(|| {
        n += 1;
        let path = dir.path().join(format!("hub-{n}.db"));
        async move { SqliteStore::open(&path).await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn conformance_reports_the_failing_check() {
    use kith_store::HubStore;
    // A store that lies about one thing must fail the suite under that check's name.
    let store = SqliteStore::open_in_memory().await.unwrap();
    let check = conformance::CHECKS
        .iter()
        .find(|c| c.name == "suppression_is_idempotent")
        .unwrap();
    store
        .suppress(
            &kith_store::Suppression::IdentifierHash { hash: "x".into() },
            "test",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let outcome = conformance::run_one(check, &store).await;
    let failure = outcome.expect_err("a non-empty store fails the empty-list check");
    assert!(failure.0.contains("empty at first"), "{}", failure.0);
}
