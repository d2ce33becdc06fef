//! What CSV and JSON-lines sources share: scanning a file into identity
//! records with bad rows quarantined, and looking facts up through a
//! byte-offset index kept in the hub store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::Utc;
use kith_model::{CursorValue, Quarantined};

use crate::file_index::{FileIndexStore, index_key, stamp_of};
use crate::rows::{self, Row};
use crate::{Error, LookupRequest, LookupResult, Result, ScanItem, ScanStream, SourceConfig};

/// One row of a file, where it starts, and whether it could be read.
pub(crate) struct RowAt {
    pub offset: u64,
    /// 1-based line number where the row starts.
    pub line: u64,
    pub row: std::result::Result<Row, String>,
}

/// A file format: how to walk its rows, and how to read rows at known offsets.
/// The outer `io::Result` is the file failing; the inner `Err` is a problem
/// with the whole file (no header row, say).
pub(crate) trait RowFormat: Send + Sync + Copy + 'static {
    fn for_each_row(
        &self,
        path: &Path,
        f: &mut dyn FnMut(RowAt) -> bool,
    ) -> std::io::Result<std::result::Result<(), String>>;

    #[allow(clippy::type_complexity)]
    fn rows_at(
        &self,
        path: &Path,
        offsets: &[u64],
    ) -> std::io::Result<std::result::Result<Vec<(u64, std::result::Result<Row, String>)>, String>>;
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn file_error(source: &SourceConfig, path: &Path, error: std::io::Error) -> Error {
    if error.kind() == std::io::ErrorKind::NotFound {
        Error::Unreachable {
            source_name: source.name.clone(),
            message: format!("{} does not exist", path.display()),
        }
    } else {
        Error::File {
            source_name: source.name.clone(),
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Streams the identity file's rows as identity records. Rows older than
/// `since` are dropped (a file cannot be read from a cursor).
pub(crate) async fn scan<F: RowFormat>(
    format: F,
    source: SourceConfig,
    path: PathBuf,
    since: Option<CursorValue>,
) -> Result<ScanStream> {
    // Fail at once when the file is missing, rather than as a stream error.
    std::fs::metadata(&path).map_err(|e| file_error(&source, &path, e))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<ScanItem>>(1024);
    tokio::task::spawn_blocking(move || {
        let name = file_name(&path);
        let now = Utc::now();
        let send = |item: Result<ScanItem>| tx.blocking_send(item).is_ok();
        let outcome = format.for_each_row(&path, &mut |at: RowAt| {
            let quarantine = |key: Option<String>, reason: String| {
                ScanItem::Quarantined(Quarantined {
                    source: source.name.clone(),
                    location: format!("{name} line {}", at.line),
                    key,
                    reason,
                    seen_at: now,
                })
            };
            let item = match &at.row {
                Err(reason) => quarantine(None, reason.clone()),
                Ok(row) => match rows::identity(&source, row) {
                    Ok(rec) => {
                        let older = match (&since, &rec.cursor) {
                            (Some(s), Some(c)) => c < s,
                            _ => false,
                        };
                        if older {
                            return true;
                        }
                        ScanItem::Record(rec)
                    }
                    Err(reason) => {
                        let key = rows::text(row.get(&source.identity.key));
                        quarantine(key, reason)
                    }
                },
            };
            send(Ok(item))
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => {
                send(Err(Error::Mapping {
                    source_name: source.name.clone(),
                    message: format!("{name}: {problem}"),
                }));
            }
            Err(e) => {
                send(Err(file_error(&source, &path, e)));
            }
        }
    });
    Ok(crate::channel_stream(rx))
}

/// Makes sure the index of `path` by `join` matches the file as it is now,
/// rebuilding it when the file changed since it was built.
async fn ensure_index<F: RowFormat>(
    format: F,
    source: &SourceConfig,
    store: &dyn FileIndexStore,
    path: &Path,
    index: &str,
    join: &str,
    on: &str,
) -> Result<()> {
    let index_err = |message: String| Error::Index {
        source_name: source.name.clone(),
        message,
    };
    let stored = store.stamp(&source.name, index).await.map_err(index_err)?;
    let mut now = stamp_of(path).map_err(|e| file_error(source, path, e))?;
    if stored == Some(now) {
        return Ok(());
    }
    // A file may be rewritten while it is indexed; index again until the
    // stamp before and after agree, so an index never claims a stamp it was
    // not built from.
    for _ in 0..3 {
        let (p, j, o) = (path.to_path_buf(), join.to_string(), on.to_string());
        let built: std::io::Result<std::result::Result<Vec<(String, u64)>, String>> =
            tokio::task::spawn_blocking(move || {
                let mut entries = Vec::new();
                let r = format.for_each_row(&p, &mut |at| {
                    if let Ok(row) = &at.row
                        && let Some(v) = rows::text(row.get(&j))
                    {
                        entries.push((index_key(&v, &o), at.offset));
                    }
                    true
                })?;
                Ok(r.map(|()| entries))
            })
            .await
            .expect("index builder does not panic");
        let entries = built
            .map_err(|e| file_error(source, path, e))?
            .map_err(|m| Error::Mapping {
                source_name: source.name.clone(),
                message: format!("{}: {m}", file_name(path)),
            })?;
        let after = stamp_of(path).map_err(|e| file_error(source, path, e))?;
        if after == now {
            store
                .replace(&source.name, index, now, &entries)
                .await
                .map_err(index_err)?;
            return Ok(());
        }
        now = after;
    }
    Err(Error::Index {
        source_name: source.name.clone(),
        message: format!("{} kept changing while it was indexed", path.display()),
    })
}

/// Looks up the requested fact sets of a file source through its indexes.
pub(crate) async fn lookup<F: RowFormat>(
    format: F,
    source: &SourceConfig,
    dir: &Path,
    store: &dyn FileIndexStore,
    request: &LookupRequest,
) -> Result<LookupResult> {
    let fetched_at = Utc::now();
    let mut result = LookupResult::default();
    for (set_name, set) in &source.facts {
        if !request.fact_sets.is_empty() && !request.fact_sets.contains(set_name) {
            continue;
        }
        // join value (as indexed) → keys of the records it belongs to
        let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
        for rec in &request.records {
            for v in SourceConfig::join_values(set, rec) {
                let keys = wanted.entry(index_key(&v, &set.on)).or_default();
                if !keys.contains(&rec.record.key) {
                    keys.push(rec.record.key.clone());
                }
            }
        }
        if wanted.is_empty() {
            continue;
        }
        let path = dir.join(&set.from);
        let index = format!("{}#{}#{}", set.from, set.join, set.on);
        ensure_index(format, source, store, &path, &index, &set.join, &set.on).await?;
        let values: Vec<String> = wanted.keys().cloned().collect();
        let offsets: BTreeMap<String, Vec<u64>> = store
            .offsets(&source.name, &index, &values)
            .await
            .map_err(|message| Error::Index {
                source_name: source.name.clone(),
                message,
            })?;
        let mut all: Vec<u64> = offsets.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        if all.is_empty() {
            continue;
        }
        let p = path.clone();
        let read = tokio::task::spawn_blocking(move || format.rows_at(&p, &all))
            .await
            .expect("row reader does not panic")
            .map_err(|e| file_error(source, &path, e))?
            .map_err(|m| Error::Mapping {
                source_name: source.name.clone(),
                message: format!("{}: {m}", file_name(&path)),
            })?;
        for (offset, row) in read {
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    result
                        .problems
                        .push(format!("{} at byte {offset}: {e}", file_name(&path)));
                    continue;
                }
            };
            let Some(v) = rows::text(row.get(&set.join)).map(|v| index_key(&v, &set.on)) else {
                continue;
            };
            // The offset came from the index; the row's own join value decides.
            for key in wanted.get(&v).into_iter().flatten() {
                result
                    .facts
                    .extend(rows::facts(source, set_name, set, &row, key, fetched_at));
            }
        }
    }
    rows::apply_since_limit(&mut result.facts, request.since, request.limit);
    Ok(result)
}

/// A file source is reachable when its identity file is there.
pub(crate) fn check(source: &SourceConfig, dir: &Path) -> Result<()> {
    let path = dir.join(&source.identity.from);
    std::fs::metadata(&path)
        .map(|_| ())
        .map_err(|e| file_error(source, &path, e))
}
