//! Connector tests on real files and a real SQLite database.

mod csv_source;
mod http_source;
mod jsonl_source;
mod mysql_source;
mod postgres_source;
mod services;
mod sqlite_source;

use std::sync::Arc;

use futures::StreamExt;
use kith_connect::{ConnectCtx, Connector, LookupRequest, MemoryFileIndex, ScanItem, SourceConfig};
use kith_model::{CursorValue, IdentityRecord, Quarantined};

pub fn source(toml_text: &str) -> SourceConfig {
    let s: SourceConfig = toml::from_str(toml_text).expect("test source parses");
    assert!(s.validate().is_empty(), "{:?}", s.validate());
    s
}

pub fn build(
    s: &SourceConfig,
    base: &std::path::Path,
) -> (Arc<dyn Connector>, Arc<MemoryFileIndex>) {
    let index = Arc::new(MemoryFileIndex::default());
    let mut conn = s.connection.clone();
    conn.resolve_paths(base);
    let c = conn
        .build(
            s,
            &ConnectCtx {
                file_index: index.clone(),
            },
        )
        .expect("builds");
    (c, index)
}

pub async fn scan_all(
    c: &dyn Connector,
    since: Option<CursorValue>,
) -> (Vec<IdentityRecord>, Vec<Quarantined>) {
    let mut stream = c.scan(since).await.expect("scan starts");
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item.expect("scan item") {
            ScanItem::Record(r) => good.push(r),
            ScanItem::Quarantined(q) => bad.push(q),
        }
    }
    (good, bad)
}

pub fn request(records: &[IdentityRecord]) -> LookupRequest {
    LookupRequest {
        records: records.to_vec(),
        fact_sets: Vec::new(),
        since: None,
        limit: None,
    }
}

/// A server that accepts connections and never says a word (a database
/// host that hangs), counting the connections made to it.
pub async fn silent_server() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (addr, count)
}

/// Eight lookups at once against a server that hangs: one connection
/// attempt is made and shared, so all eight fail together at the connect
/// timeout with its reason, and the server sees one connection, not one
/// per caller beyond the pool's limit.
pub async fn concurrent_lookups_share_one_connection_attempt(s: &SourceConfig) {
    let (c, _) = build(s, std::path::Path::new("."));
    let row = serde_json::json!({"id": 1, "email": "a@example.com"});
    let rec = kith_connect::rows::identity(s, row.as_object().unwrap()).unwrap();
    let req = request(&[rec]);
    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..8).map(|_| c.lookup(&req))).await;
    let took = started.elapsed();
    for a in answers {
        let err = a.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains("no answer within 2s"), "{err}");
    }
    assert!(
        took < std::time::Duration::from_millis(3500),
        "the callers waited one after another: {took:?}"
    );
}
