//! kith's connectors: how kith reads the systems where customer data lives.
//!
//! Adding a source kind means adding one module here and one variant to
//! [`ConnectorConfig`]; see `docs/adding-a-connector.md`.
//!
//! ```text
//!  SourceConfig (mapping.rs) ──ConnectorConfig::build──► Arc<dyn Connector>
//!                                                         ├─ scan(since)   → identity records (+ quarantined rows)
//!                                                         └─ lookup(req)   → facts with provenance
//! ```
//!
//! A connector only yields rows as JSON objects; [`rows`] turns them into
//! identity records and facts by the mapping, so every kind behaves the same.

pub mod duration;
mod error;
pub mod mapping;
pub mod rows;

mod csv_file;
mod file_index;
mod files;
pub mod http;
mod jsonl_file;
mod mysql;
mod postgres;
pub mod server_sql;
pub(crate) mod sql_common;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use kith_model::{CursorValue, Fact, IdentityRecord, Quarantined, Timestamp};
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use file_index::{FileIndexStore, MemoryFileIndex};
pub use mapping::{FactSetMapping, IdentityMapping, SourceConfig};

/// The name under which what customers contribute takes part in a view.
pub const CONTRIBUTIONS_SOURCE: &str = "contributions";

/// How to reach a source: one variant per connector kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConnectorConfig {
    /// A SQLite database file, opened read-only.
    Sqlite { path: PathBuf },
    /// A folder of CSV files with a header row; `from` names a file in it.
    Csv {
        dir: PathBuf,
        #[serde(default = "comma")]
        delimiter: char,
    },
    /// A folder of JSON-lines files (one object per line); `from` names a file in it.
    Jsonl { dir: PathBuf },
    /// A PostgreSQL database; `from` names a table or view.
    Postgres(server_sql::SqlServerConfig),
    /// A MySQL or MariaDB database; `from` names a table or view.
    Mysql(server_sql::SqlServerConfig),
    /// An HTTP JSON API; `from` names a path.
    Http(http::HttpConfig),
    /// kith's own event log, fed by the Segment-compatible ingest API. Added
    /// by the `[ingest]` section, never declared as a source: its connector
    /// lives in `kith-ingest`.
    Ingest,
}

fn comma() -> char {
    ','
}

impl ConnectorConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorConfig::Sqlite { .. } => "sqlite",
            ConnectorConfig::Csv { .. } => "csv",
            ConnectorConfig::Jsonl { .. } => "jsonl",
            ConnectorConfig::Postgres(_) => "postgres",
            ConnectorConfig::Mysql(_) => "mysql",
            ConnectorConfig::Http(_) => "http",
            ConnectorConfig::Ingest => "ingest",
        }
    }

    /// Makes relative paths relative to `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self {
            ConnectorConfig::Sqlite { path } => fix(path),
            ConnectorConfig::Csv { dir, .. } | ConnectorConfig::Jsonl { dir } => fix(dir),
            ConnectorConfig::Postgres(c) | ConnectorConfig::Mysql(c) => {
                if let Some(ca) = &mut c.ca_file {
                    fix(ca);
                }
            }
            ConnectorConfig::Http(_) | ConnectorConfig::Ingest => {}
        }
    }

    /// Builds the connector for `source`. Does not touch the source yet:
    /// a source that is down must not stop kith from starting.
    pub fn build(&self, source: &SourceConfig, ctx: &ConnectCtx) -> Result<Arc<dyn Connector>> {
        Ok(match self {
            ConnectorConfig::Sqlite { path } => {
                Arc::new(sqlite::SqliteConnector::new(source.clone(), path.clone()))
            }
            ConnectorConfig::Csv { dir, delimiter } => {
                let delimiter = u8::try_from(*delimiter)
                    .ok()
                    .filter(u8::is_ascii)
                    .ok_or_else(|| Error::Config {
                        source_name: source.name.clone(),
                        message: format!(
                            "CSV delimiter {delimiter:?} must be a single ASCII character"
                        ),
                    })?;
                Arc::new(csv_file::CsvConnector::new(
                    source.clone(),
                    dir.clone(),
                    delimiter,
                    ctx.file_index.clone(),
                ))
            }
            ConnectorConfig::Jsonl { dir } => Arc::new(jsonl_file::JsonlConnector::new(
                source.clone(),
                dir.clone(),
                ctx.file_index.clone(),
            )),
            ConnectorConfig::Postgres(c) => postgres::build(source, c)?,
            ConnectorConfig::Mysql(c) => mysql::build(source, c)?,
            ConnectorConfig::Http(c) => http::build(source, c)?,
            ConnectorConfig::Ingest => {
                return Err(Error::Config {
                    source_name: source.name.clone(),
                    message: "kind = \"ingest\" is kith's own event log: enable it with the [ingest] section instead of declaring a source".into(),
                });
            }
        })
    }
}

/// What connectors may use from the hub.
#[derive(Clone)]
pub struct ConnectCtx {
    /// Where file sources keep their key → byte-offset indexes.
    pub file_index: Arc<dyn FileIndexStore>,
}

/// How a connector can answer fact lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupCapability {
    /// By key, using an index (a database index, or kith's byte-offset index of a file).
    Indexed,
    /// Only by reading everything and filtering.
    Scan,
    /// Not at all: the source is identity-only.
    None,
}

/// What a connector can do, declared so the hub can plan around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub lookup: LookupCapability,
    /// Whether `scan(since)` reads only rows at or after the cursor (otherwise it reads all and filters).
    pub incremental_scan: bool,
}

/// One item of an identity scan.
#[derive(Debug, Clone, PartialEq)]
// Records are the common case; boxing them would cost an allocation per row.
#[allow(clippy::large_enum_variant)]
pub enum ScanItem {
    Record(IdentityRecord),
    /// A row that could not be read; the scan goes on.
    Quarantined(Quarantined),
}

/// The identity rows of a source, read in order; an `Err` ends the scan.
pub type ScanStream = BoxStream<'static, Result<ScanItem>>;

/// The receiving end of a scan task as a [`ScanStream`]: every connector's
/// scan runs as a task feeding a bounded channel, so a slow consumer applies
/// back-pressure instead of the whole source landing in memory.
pub(crate) fn channel_stream(rx: tokio::sync::mpsc::Receiver<Result<ScanItem>>) -> ScanStream {
    use futures::StreamExt;
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed()
}

/// A batched fact lookup for the records of one party (or several).
#[derive(Debug, Clone)]
pub struct LookupRequest {
    /// The records whose facts are wanted, with their identifying attributes
    /// (a fact set may join on an e-mail rather than the key).
    pub records: Vec<IdentityRecord>,
    /// Fact set names; empty means all of the source's fact sets.
    pub fact_sets: Vec<String>,
    /// Only facts dated at or after this time (facts without a date are kept).
    pub since: Option<Timestamp>,
    /// At most this many facts per fact set and record, newest first.
    pub limit: Option<usize>,
}

/// Facts found by a lookup, and rows that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookupResult {
    pub facts: Vec<Fact>,
    /// Rows skipped, with where and why; the view shows them as warnings.
    pub problems: Vec<String>,
    /// Set when the facts were served from a cache (a source that can only
    /// list, or one that is down) rather than read now: how old they are.
    pub stale_for: Option<std::time::Duration>,
}

/// A source of customer information.
///
/// Required: [`scan`](Connector::scan) and [`lookup`](Connector::lookup).
/// Everything else has a default. Connectors are cheap to build and connect
/// lazily, so a source that is down shows up as a status, not a crash.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The source's configuration (name, mapping).
    fn source(&self) -> &SourceConfig;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup: LookupCapability::Indexed,
            incremental_scan: false,
        }
    }

    /// Reads the identity entity, from `since` (inclusive) when given.
    /// Connectors that cannot filter read everything and drop older rows.
    async fn scan(&self, since: Option<CursorValue>) -> Result<ScanStream>;

    /// Reads the facts of some records.
    async fn lookup(&self, request: &LookupRequest) -> Result<LookupResult>;

    /// Checks the source can be reached (used by `kith check` and readiness probes).
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}
