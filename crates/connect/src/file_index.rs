//! Byte-offset indexes for file sources.
//!
//! A CSV or JSON-lines file has no index of its own, so kith keeps one in the
//! hub store: for a fact set, join value → byte offsets of its rows. Each
//! lookup checks the file's size and modification time against the stamp the
//! index was built from, and rebuilds it when the file changed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use kith_model::FileStamp;

/// Where file indexes are kept (the hub store, through an adapter).
/// Errors are plain messages: the connector wraps them with the source's name.
#[async_trait]
pub trait FileIndexStore: Send + Sync {
    async fn stamp(&self, source: &str, index: &str) -> Result<Option<FileStamp>, String>;
    async fn offsets(
        &self,
        source: &str,
        index: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u64>>, String>;
    async fn replace(
        &self,
        source: &str,
        index: &str,
        stamp: FileStamp,
        entries: &[(String, u64)],
    ) -> Result<(), String>;
}

/// One file's index: its stamp and key → offsets.
type Index = (FileStamp, BTreeMap<String, Vec<u64>>);

/// An in-memory index store, for tests and one-off runs.
#[derive(Default)]
pub struct MemoryFileIndex {
    inner: Mutex<HashMap<(String, String), Index>>,
    /// How many times an index was (re)built, so tests can see rebuilds happen.
    pub rebuilds: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl FileIndexStore for MemoryFileIndex {
    async fn stamp(&self, source: &str, index: &str) -> Result<Option<FileStamp>, String> {
        let g = self.inner.lock().expect("index lock");
        Ok(g.get(&(source.to_string(), index.to_string()))
            .map(|(s, _)| *s))
    }

    async fn offsets(
        &self,
        source: &str,
        index: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u64>>, String> {
        let g = self.inner.lock().expect("index lock");
        let Some((_, map)) = g.get(&(source.to_string(), index.to_string())) else {
            return Ok(BTreeMap::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| map.get(k).map(|v| (k.clone(), v.clone())))
            .collect())
    }

    async fn replace(
        &self,
        source: &str,
        index: &str,
        stamp: FileStamp,
        entries: &[(String, u64)],
    ) -> Result<(), String> {
        let mut map: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (k, o) in entries {
            map.entry(k.clone()).or_default().push(*o);
        }
        for v in map.values_mut() {
            v.sort_unstable();
        }
        self.rebuilds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .lock()
            .expect("index lock")
            .insert((source.to_string(), index.to_string()), (stamp, map));
        Ok(())
    }
}

/// The stamp of a file as it is now.
pub(crate) fn stamp_of(path: &Path) -> std::io::Result<FileStamp> {
    let meta = std::fs::metadata(path)?;
    let modified = meta.modified()?;
    let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    };
    Ok(FileStamp {
        size: meta.len(),
        modified_ns: ns,
    })
}

/// How join values are compared in a file index: trimmed, and e-mail
/// addresses without case (the identity side is folded the same way).
pub(crate) fn fold_key(value: &str, on: &str) -> String {
    let t = value.trim();
    if on == "email" {
        t.to_lowercase()
    } else {
        t.to_string()
    }
}

/// The key an index stores for a join value: a hash of the folded value, so
/// the hub never holds the identifiers of people it does not index (a fact
/// file joined by e-mail lists everyone's address) or of people erased.
pub(crate) fn index_key(value: &str, on: &str) -> String {
    kith_model::normalize::identifier_hash(&fold_key(value, on))
}
