//! The feed's deliveries against real receivers: a webhook receiver served
//! here on a loopback port, and the NATS JetStream server on 127.0.0.1:4222
//! (skipped with a note when it is not running, failed under CI with
//! `KITH_REQUIRE_SERVICES=1`).

mod nats;
mod webhook;

use std::io::Write as _;
use std::sync::Arc;

use kith_feed::Feed;
use kith_store::{ChangeKind, HubStore, NewChange, SqliteStore};

/// A feed over a fresh in-memory store.
async fn feed() -> (Arc<dyn HubStore>, Feed) {
    let store: Arc<dyn HubStore> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let feed = Feed::watch(store.clone()).await.unwrap();
    (store, feed)
}

/// Appends `n` changes, alternating two kinds; returns their seqs.
async fn produce(store: &dyn HubStore, n: usize, tag: &str) -> Vec<i64> {
    let changes: Vec<NewChange> = (0..n)
        .map(|i| NewChange {
            kind: if i % 2 == 0 {
                ChangeKind::ConsentChanged
            } else {
                ChangeKind::RecordUpdated
            },
            party: None,
            subject: format!("{tag}-{i}"),
            data: serde_json::json!({ "tag": tag, "i": i }),
        })
        .collect();
    let last = store.append_changes(&changes, None).await.unwrap();
    (last - n as i64 + 1..=last).collect()
}

fn required() -> bool {
    std::env::var_os("KITH_REQUIRE_SERVICES").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether a server answers at `addr`; when not, says so (or fails under CI).
async fn service(name: &str, addr: &str, test: &str) -> bool {
    let reached = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::TcpStream::connect(addr),
    )
    .await;
    let error = match reached {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_string(),
    };
    if required() {
        panic!(
            "{name} at {addr} is required under CI (KITH_REQUIRE_SERVICES) but unreachable: {error}"
        );
    }
    // Straight to stderr: the harness swallows the output of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: {name} at {addr} unreachable ({error})"
    );
    false
}
