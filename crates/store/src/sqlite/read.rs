//! The store's hot reads, made on the calling thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every
//! statement is a message to that thread and an answer back: two thread
//! switches and ~40–70 µs of CPU, several per store call (BEGIN, the
//! statements, COMMIT). A 360 view made about 20 of them, and on a small
//! machine those switches cost more than the reads. The reads every view (and
//! every file-source lookup) makes go through plain rusqlite connections to the
//! same file instead, called directly: SQLite answers them from its page cache
//! in microseconds.
//!
//! What does not change: each call answers as of a snapshot that sees every
//! commit made before it began — by this process's sqlx pool or by another
//! process (`kith sync`, `kith review`) — because the file is in WAL mode.
//! These connections never write (`query_only`); writes stay on the pool,
//! with its one-writer discipline. A reader that meets a lock waits up to the
//! busy timeout, as the pool's do; in WAL mode readers do not wait for
//! writers, so in practice they never do.
//!
//! What a view reads — its party snapshot (a party with its records, the
//! contributions under their anchors, its relationships), and a party's
//! records or contributions asked for alone (portal and console pages) — is
//! kept and answered again while the file has not changed. SQLite itself says whether it has: a connection's `PRAGMA
//! data_version` changes whenever any other connection commits — and these
//! never write, so that is every writer, in this process or another. Each
//! cached call first asks its connection (a few microseconds); a connection
//! that sees the number move empties the cache for all, and an answer read
//! before that is not kept. So a cached answer is never older than the last
//! commit: a split, merge or new record shows in the next view. Each kind of
//! answer keeps at most [`CACHE_ENTRIES`] and starts over when full.
//!
//! An in-memory store has no file to share, so it keeps every read on the pool.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_model::{Contribution, FileStamp, Link, Party, Relationship};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};

use super::codec::{anchor_keys, to_u64};
use super::sql::{MAX_PARAMS, MAX_REDIRECT_HOPS, get, party_row};
use super::{
    CONTRIBUTIONS, contribution_row, party_record, relationship_row, sort_contributions, stmt,
};
use crate::{Error, PartySnapshot, Result, StoredRecord, party_anchors};

/// A party with its links and their records.
type PartyRecords = (Party, Vec<(Link, StoredRecord)>);

/// Connections kept open between reads. More may be open at once (one per
/// thread reading at that moment); those beyond this are closed after use.
const KEEP_IDLE: usize = 4;

/// Statements kept prepared per connection (the reads below use a handful,
/// plus one per distinct size of an `IN` list).
const STATEMENT_CACHE: usize = 32;

/// Answers of each kind kept before that kind starts over: a few thousand
/// parties of a handful of records, a few megabytes.
const CACHE_ENTRIES: usize = 4096;

/// A small pool of read-only rusqlite connections to the store's file.
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Reader>>,
    closed: AtomicBool,
    cache: Mutex<Cache>,
}

/// One connection, and the file's version as it last saw it.
#[derive(Debug)]
struct Reader {
    conn: Connection,
    /// `PRAGMA data_version` at the last look; `None` before the first, so a
    /// new connection empties the cache once (it cannot tell what it missed).
    version: Option<i64>,
}

/// Answers read since the file last changed, as far as any reader has seen.
#[derive(Debug, Default)]
struct Cache {
    /// Moves each time a reader sees the file changed.
    generation: u64,
    party_records: HashMap<String, Option<PartyRecords>>,
    contributions: HashMap<Vec<String>, Vec<Contribution>>,
    snapshots: HashMap<String, Option<Arc<PartySnapshot>>>,
}

impl Reader {
    /// Whether anyone committed since this connection last looked.
    fn changed(&mut self) -> Result<bool> {
        let now = data_version(&self.conn)?;
        let changed = self.version != Some(now);
        self.version = Some(now);
        Ok(changed)
    }
}

fn data_version(conn: &Connection) -> Result<i64> {
    prepare(conn, "PRAGMA data_version")?
        .query_row([], |row| row.get(0))
        .map_err(|e| Error::read("read data version", e))
}

impl Readers {
    /// Readers of the (already opened and migrated) store file at `path`.
    /// Opens one connection now, so a file it cannot read fails at start-up.
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> Result<Self> {
        let readers = Readers {
            path: path.to_path_buf(),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            cache: Mutex::new(Cache::default()),
        };
        let first = readers.connect()?;
        readers.give_back(first);
        Ok(readers)
    }

    fn connect(&self) -> Result<Reader> {
        let conn = Connection::open_with_flags(
            &self.path,
            // Read-write at the file level (a WAL reader maintains the shared
            // memory index), but `query_only` refuses every write.
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::read("open reader", e))?;
        conn.busy_timeout(self.busy_timeout)
            .map_err(|e| Error::read("open reader", e))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| Error::read("open reader", e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Reader {
            conn,
            version: None,
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        // A panic while holding the lock leaves the list itself intact.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, reader: Reader) {
        let mut idle = self.idle();
        if idle.len() < KEEP_IDLE && !self.closed.load(Ordering::Acquire) {
            idle.push(reader);
        }
    }

    /// Closes the idle connections; from now on reads fail as the closed pool's do.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle().clear();
    }

    /// Runs `f` on an idle connection (or a new one), outside a transaction.
    fn with_reader<T>(&self, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Query {
                context: "begin read transaction",
                source: sqlx::Error::PoolClosed,
            });
        }
        let taken = self.idle().pop();
        let mut reader = match taken {
            Some(r) => r,
            None => self.connect()?,
        };
        let out = f(&mut reader);
        // Only a connection outside any transaction goes back (a panic in
        // `f` drops it instead).
        if reader.conn.is_autocommit() {
            self.give_back(reader);
        }
        out
    }

    /// Runs `f` on a connection outside a transaction: for a single
    /// statement, which is a snapshot of its own.
    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader(|r| f(&r.conn))
    }

    /// Runs `f` in one read transaction.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| in_transaction(conn, f))
    }

    /// The answer to `key` from the cache if nobody committed since it was
    /// read, else `f`'s, in one read transaction, kept.
    fn cached<K: Eq + Hash, T: Clone>(
        &self,
        key: K,
        map: fn(&mut Cache) -> &mut HashMap<K, T>,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.with_reader(|r| {
            let changed = r.changed()?;
            let generation = {
                let mut cache = self.cache();
                if changed {
                    let next = cache.generation + 1;
                    *cache = Cache {
                        generation: next,
                        ..Cache::default()
                    };
                } else if let Some(v) = map(&mut cache).get(&key) {
                    return Ok(v.clone());
                }
                cache.generation
            };
            let v = in_transaction(&r.conn, f)?;
            // Another reader may have seen a commit meanwhile; this answer
            // may predate it, so it is not kept.
            let mut cache = self.cache();
            if cache.generation == generation {
                let kept = map(&mut cache);
                if kept.len() >= CACHE_ENTRIES {
                    kept.clear();
                }
                kept.insert(key, v.clone());
            }
            Ok(v)
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves a cache of complete answers.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn party_records(&self, id: &str) -> Result<Option<PartyRecords>> {
        self.cached(
            id.to_string(),
            |c| &mut c.party_records,
            |conn| party_records_in(conn, id),
        )
    }

    /// Not cached: a view reads them through [`Readers::party_snapshot`].
    pub(super) fn relationships_of(&self, party: &str) -> Result<Vec<Relationship>> {
        self.read(|conn| {
            let id = resolve(conn, party)?;
            relationships_in(conn, party, &id)
        })
    }

    /// Contributions under these (distinct) anchor keys, in no particular order.
    pub(super) fn contributions(&self, keys: &[String]) -> Result<Vec<Contribution>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.cached(
            keys.to_vec(),
            |c| &mut c.contributions,
            |conn| contributions_in(conn, keys),
        )
    }

    /// A view's three reads in one transaction, kept as one answer: one
    /// look at the file's version and one copy-free hit per view, where the
    /// three reads apart would make three of each.
    pub(super) fn party_snapshot(&self, id: &str) -> Result<Option<Arc<PartySnapshot>>> {
        self.cached(
            id.to_string(),
            |c| &mut c.snapshots,
            |conn| {
                let Some((party, records)) = party_records_in(conn, id)? else {
                    return Ok(None);
                };
                let anchors = party_anchors(records.iter().map(|(_, s)| s));
                let mut contributions = contributions_in(conn, &anchor_keys(&anchors))?;
                sort_contributions(&mut contributions);
                let relationships = relationships_in(conn, party.id.as_str(), party.id.as_str())?;
                Ok(Some(Arc::new(PartySnapshot {
                    party,
                    records,
                    contributions,
                    relationships,
                })))
            },
        )
    }

    pub(super) fn file_index_stamp(&self, source: &str, index: &str) -> Result<Option<FileStamp>> {
        self.with_conn(|conn| {
            const W: &str = "file_index_stamps";
            let mut q = prepare(conn, stmt::FILE_INDEX_STAMP)?;
            let mut rows = q
                .query(params![source, index])
                .map_err(|e| Error::read("read file index stamp", e))?;
            let Some(row) = rows
                .next()
                .map_err(|e| Error::read("read file index stamp", e))?
            else {
                return Ok(None);
            };
            Ok(Some(FileStamp {
                size: to_u64(get(row, "size", W)?, W)?,
                modified_ns: get(row, "modified_ns", W)?,
            }))
        })
    }

    /// Offsets of these (distinct, sorted) keys.
    pub(super) fn file_index_offsets(
        &self,
        source: &str,
        index: &str,
        keys: &[&String],
    ) -> Result<BTreeMap<String, Vec<u64>>> {
        let mut found: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        if keys.is_empty() {
            return Ok(found);
        }
        self.read(|conn| {
            const W: &str = "file_index_entries";
            for batch in keys.chunks(MAX_PARAMS - 2) {
                let mut q = prepare(conn, &stmt::file_index_offsets(batch.len()))?;
                let params = [source, index]
                    .into_iter()
                    .chain(batch.iter().map(|k| k.as_str()));
                let mut rows = q
                    .query(params_from_iter(params))
                    .map_err(|e| Error::read("read file index", e))?;
                while let Some(row) = rows.next().map_err(|e| Error::read("read file index", e))? {
                    found
                        .entry(get(row, "key", W)?)
                        .or_default()
                        .push(to_u64(get(row, "byte_offset", W)?, W)?);
                }
            }
            Ok(found)
        })
    }
}

/// A party (through redirects) with its links and their records.
fn party_records_in(conn: &Connection, id: &str) -> Result<Option<PartyRecords>> {
    let id = resolve(conn, id)?;
    let mut q = prepare(conn, stmt::PARTY)?;
    let mut rows = q
        .query(params![id])
        .map_err(|e| Error::read("read party", e))?;
    let Some(row) = rows.next().map_err(|e| Error::read("read party", e))? else {
        return Ok(None);
    };
    let party = party_row(row)?;
    drop(rows);

    let mut out = Vec::new();
    let mut q = prepare(conn, stmt::PARTY_RECORDS)?;
    let mut rows = q
        .query(params![id])
        .map_err(|e| Error::read("read party records", e))?;
    while let Some(row) = rows
        .next()
        .map_err(|e| Error::read("read party records", e))?
    {
        out.push(party_record(row)?);
    }
    Ok(Some((party, out)))
}

/// Relationships of `party` as asked for, and of `resolved`, the id it resolves to.
fn relationships_in(conn: &Connection, party: &str, resolved: &str) -> Result<Vec<Relationship>> {
    let mut q = prepare(conn, stmt::RELATIONSHIPS)?;
    let mut rows = q
        .query(params![party, resolved])
        .map_err(|e| Error::read("read relationships", e))?;
    let mut out = Vec::new();
    while let Some(row) = rows
        .next()
        .map_err(|e| Error::read("read relationships", e))?
    {
        out.push(relationship_row(row)?);
    }
    Ok(out)
}

/// Contributions under these anchor keys, each with its party resolved, in no particular order.
fn contributions_in(conn: &Connection, keys: &[String]) -> Result<Vec<Contribution>> {
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for batch in keys.chunks(MAX_PARAMS) {
        let mut q = prepare(conn, &stmt::contributions(batch.len()))?;
        let mut rows = q
            .query(params_from_iter(batch))
            .map_err(|e| Error::read("read contributions", e))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| Error::read("read contributions", e))?
        {
            let party: String = get(row, "party_id", CONTRIBUTIONS)?;
            let party = match resolved.get(&party) {
                Some(p) => p.clone(),
                None => {
                    let p = resolve(conn, &party)?;
                    resolved.insert(party, p.clone());
                    p
                }
            };
            out.push(contribution_row(row, party)?);
        }
    }
    Ok(out)
}

/// Runs `f` in one read transaction. BEGIN and COMMIT are prepared once per
/// connection, like the reads (rusqlite's `transaction()` parses them on
/// every call).
fn in_transaction<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    exec(conn, "BEGIN", "begin read transaction")?;
    match f(conn) {
        Ok(out) => {
            exec(conn, "COMMIT", "end read")?;
            Ok(out)
        }
        Err(e) => {
            // If this fails too the connection stays in its transaction and
            // is closed rather than reused.
            let _ = exec(conn, "ROLLBACK", "end read");
            Err(e)
        }
    }
}

fn exec(conn: &Connection, sql: &str, context: &'static str) -> Result<()> {
    prepare(conn, sql)?
        .execute([])
        .map_err(|e| Error::read(context, e))?;
    Ok(())
}

fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<rusqlite::CachedStatement<'c>> {
    conn.prepare_cached(sql)
        .map_err(|e| Error::read("prepare read", e))
}

/// Follows redirects from `id` to the id that answers for it now (as
/// `sql::resolve` does on the pool).
fn resolve(conn: &Connection, id: &str) -> Result<String> {
    let mut q = prepare(conn, stmt::REDIRECT)?;
    let mut current = id.to_string();
    let mut visited = HashSet::new();
    while let Some(next) = q
        .query_row(params![current], |row| row.get::<_, String>(0))
        .optional()
        .map_err(|e| Error::read("read party redirect", e))?
    {
        if !visited.insert(current.clone()) || visited.len() > MAX_REDIRECT_HOPS {
            return Err(Error::Corrupt {
                what: "party_redirects",
                detail: format!("redirects from {id} loop or run too long"),
            });
        }
        current = next;
    }
    Ok(current)
}
