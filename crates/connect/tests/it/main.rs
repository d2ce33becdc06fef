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
