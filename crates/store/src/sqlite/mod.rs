//! The embedded hub store: one SQLite file, nothing to install.

/// SQL that names a party id (`?1`) and every id merged into it, as the
/// table `aliases (id)`: what is about a merged-away id is about its survivor.
/// A macro so that `concat!` keeps every query a static string.
macro_rules! with_aliases {
    ($rest:literal) => {
        concat!(
            "WITH RECURSIVE aliases (id) AS ( \
                 SELECT ?1 UNION \
                 SELECT r.from_id FROM party_redirects r JOIN aliases a ON r.to_id = a.id \
             ) ",
            $rest
        )
    };
}

mod access;
mod changes;
mod codec;
mod migrate;
mod read;
mod sql;
mod upsert;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kith_model::{
    Anchor, Contribution, ContributionKind, CursorValue, FileStamp, Link, Party, PartyId,
    Quarantined, RecordRef, RelationKind, Relationship, Timestamp,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use self::codec::{
    anchor_key, anchor_keys, from_json, from_opt_json, opt_ts, parse_opt_ts, parse_ts,
    suppression_from_row, suppression_row, to_i64, to_json, to_u64, ts,
};
use self::read::Readers;
use self::sql::{
    Cols, MAX_PARAMS, MAX_REDIRECT_HOPS, delete_refs, get, link_row, numbered, party_exists,
    party_row, query, redirect_of, resolve, stored_record, tuples,
};
use self::upsert::{UPSERT_CHUNK, upsert_chunk};
use crate::error::QueryContext;
use crate::{
    ApiKey, AuditEntry, Change, ChangeKind, ErasureRequest, Error, HubStore, IndexEntry, LoginCode,
    NewApiKey, NewChange, NewContribution, NewLoginCode, NewStaffUser, PartySnapshot, Result,
    ReviewPair, ReviewStatus, Session, SessionSubject, StaffUser, StoredRecord, Suppression,
    SyncState, UpsertCounts,
};

/// Contributions from their rows, each party resolved through redirects
/// (once per distinct id). Columns: those of [`contribution_row`].
async fn contribution_rows(
    conn: &mut sqlx::SqliteConnection,
    rows: &[sqlx::sqlite::SqliteRow],
) -> Result<Vec<Contribution>> {
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let party: String = get(row, "party_id", CONTRIBUTIONS)?;
        let party = match resolved.get(&party) {
            Some(p) => p.clone(),
            None => {
                let p = resolve(&mut *conn, &party).await?;
                resolved.insert(party, p.clone());
                p
            }
        };
        out.push(contribution_row(row, party)?);
    }
    Ok(out)
}

const CONTRIBUTIONS: &str = "contributions";

/// Oldest first, then by id: the order [`HubStore::contributions`] promises.
fn sort_contributions(out: &mut [Contribution]) {
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
}

/// A contribution of `party` (already resolved) from its row. Columns: id,
/// party_id, anchor, kind, attribute, value, author, created_at.
fn contribution_row(row: &impl Cols, party: String) -> Result<Contribution> {
    const W: &str = CONTRIBUTIONS;
    let kind: String = get(row, "kind", W)?;
    Ok(Contribution {
        id: get(row, "id", W)?,
        party: PartyId::from_stored(party),
        anchor: from_json(&get::<String>(row, "anchor", W)?, W)?,
        kind: ContributionKind::parse(&kind).ok_or_else(|| Error::Corrupt {
            what: W,
            detail: format!("kind {kind:?}"),
        })?,
        attribute: get(row, "attribute", W)?,
        value: from_json(&get::<String>(row, "value", W)?, W)?,
        by: get(row, "author", W)?,
        created_at: parse_ts(&get::<String>(row, "created_at", W)?, W)?,
    })
}

/// Columns: from_id, to_id, kind, evidence.
fn relationship_row(row: &impl Cols) -> Result<Relationship> {
    const W: &str = "relationships";
    let kind: String = get(row, "kind", W)?;
    Ok(Relationship {
        from: PartyId::from_stored(get::<String>(row, "from_id", W)?),
        to: PartyId::from_stored(get::<String>(row, "to_id", W)?),
        kind: RelationKind::parse(&kind).ok_or_else(|| Error::Corrupt {
            what: W,
            detail: format!("kind {kind:?}"),
        })?,
        evidence: get(row, "evidence", W)?,
    })
}

/// A link and its record from a row of [`stmt::PARTY_RECORDS`].
fn party_record(row: &impl Cols) -> Result<(Link, StoredRecord)> {
    let identifiers: Vec<String> = from_json(
        &get::<String>(row, "identifiers", "identifiers")?,
        "identifiers",
    )?;
    Ok((link_row(row)?, stored_record(row, identifiers)?))
}

/// The statements both drivers run (`read.rs` runs them on the calling thread).
mod stmt {
    pub(super) const PARTY: &str =
        "SELECT id, kind, created_at, founding_source, founding_key FROM parties WHERE id = ?1";
    pub(super) const REDIRECT: &str = "SELECT to_id FROM party_redirects WHERE from_id = ?1";
    /// A party's links with their records, and each record's identifiers
    /// (sorted, as a JSON array) in the same statement.
    pub(super) const PARTY_RECORDS: &str = "SELECT r.source, r.key, r.kind, r.relation, r.attrs, \
         r.cursor, r.updated_at, r.first_seen, r.last_seen, l.party_id, l.rule, l.score, \
         l.evidence, l.linked_at, \
         (SELECT json_group_array(i.identifier ORDER BY i.identifier) FROM identifiers i \
          WHERE i.source = r.source AND i.key = r.key) AS identifiers \
         FROM links l JOIN records r ON r.source = l.source AND r.key = l.key \
         WHERE l.party_id = ?1 ORDER BY r.source, r.key";
    pub(super) const RELATIONSHIPS: &str = "SELECT from_id, to_id, kind, evidence FROM relationships \
         WHERE from_id IN (?1, ?2) OR to_id IN (?1, ?2) ORDER BY rowid";
    pub(super) const FILE_INDEX_STAMP: &str = "SELECT size, modified_ns FROM file_index_stamps \
         WHERE source = ?1 AND index_name = ?2";

    /// Contributions anchored to any of `n` anchor keys (`?1` …).
    pub(super) fn contributions(n: usize) -> String {
        format!(
            "SELECT id, party_id, anchor, kind, attribute, value, author, created_at \
             FROM contributions WHERE anchor_key IN ({})",
            super::numbered(1, n)
        )
    }

    /// Offsets of `n` keys (`?3` …) of index `?2` of source `?1`.
    pub(super) fn file_index_offsets(n: usize) -> String {
        format!(
            "SELECT key, byte_offset FROM file_index_entries \
             WHERE source = ?1 AND index_name = ?2 AND key IN ({}) \
             ORDER BY key, byte_offset",
            super::numbered(3, n)
        )
    }
}

/// A pair in the order the review table keeps it.
fn ordered<'a>(a: &'a RecordRef, b: &'a RecordRef) -> (&'a RecordRef, &'a RecordRef) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The embedded [`HubStore`]: a single SQLite file in WAL mode.
///
/// Writes and most reads go through an sqlx pool. The reads every view and
/// every file-source lookup makes (a party with its records, contributions,
/// relationships, file index stamps and offsets) run on the calling thread
/// through rusqlite connections to the same file instead, one transaction
/// each: see `read.rs`.
///
/// Cloning is cheap and shares the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Calling-thread readers of the file (`None` in memory).
    readers: Option<Arc<Readers>>,
    target: String,
}

/// How long a connection waits for a lock before it reports the store busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// The schema version this build of kith creates and understands.
    pub const SCHEMA_VERSION: i64 = migrate::LATEST;

    /// Opens (creating it if missing) the store at `path` and migrates it to
    /// [`Self::SCHEMA_VERSION`].
    ///
    /// Fails with [`Error::Open`] when the file cannot be opened or created,
    /// and with [`Error::TooNew`] when a newer kith has written it.
    pub async fn open(path: &Path) -> Result<Self> {
        let target = format!("sqlite:{}", path.display());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL rather than WAL's usual NORMAL: the hub holds what exists
            // nowhere else (contributions, suppressions, audit), so a commit
            // must survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            // A local file does not go away between uses: skip the ping per acquire.
            .test_before_acquire(false)
            // A few readers beside the one writer WAL allows at a time.
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| Error::Open {
                target: target.clone(),
                source,
            })?;
        let mut store = Self::start(pool, target).await?;
        // After the migration, so the readers see the schema they read.
        store.readers = Some(Arc::new(Readers::open(path, BUSY_TIMEOUT)?));
        Ok(store)
    }

    /// A private store in memory, gone when the last clone is dropped. For tests and demos.
    pub async fn open_in_memory() -> Result<Self> {
        let target = "sqlite::memory:".to_string();
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Every connection to `:memory:` is its own database, so the pool holds
        // exactly one connection and never lets it expire.
        let pool = SqlitePoolOptions::new()
            // A local file does not go away between uses: skip the ping per acquire.
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open {
                target: target.clone(),
                source,
            })?;
        Self::start(pool, target).await
    }

    async fn start(pool: SqlitePool, target: String) -> Result<Self> {
        let version = migrate::migrate(&pool, &target).await?;
        tracing::debug!(target: "kith_store", store = %target, version, "hub store open");
        Ok(SqliteStore {
            pool,
            readers: None,
            target,
        })
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        if let Some(r) = &self.readers {
            r.close();
        }
        self.pool.close().await;
    }

    /// A transaction that holds the write lock from its start. A deferred one
    /// that reads first and writes later can fail with SQLITE_BUSY without
    /// waiting when another connection wrote in between.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("begin write transaction")
    }

    /// A read snapshot, for methods that read with more than one statement.
    async fn read(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin().await.ctx("begin read transaction")
    }
}

// --- the store -----------------------------------------------------------------

#[async_trait]
impl HubStore for SqliteStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn schema_version(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await.ctx("acquire connection")?;
        migrate::current_version(&mut conn).await
    }

    // --- sync state ---------------------------------------------------------

    async fn sync_state(&self, source: &str) -> Result<SyncState> {
        let row = sqlx::query(
            "SELECT cursor, last_sync_at, last_reconcile_at FROM sync_state WHERE source = ?",
        )
        .bind(source)
        .fetch_optional(&self.pool)
        .await
        .ctx("read sync state")?;
        let Some(row) = row else {
            return Ok(SyncState::default());
        };
        const W: &str = "sync_state";
        Ok(SyncState {
            cursor: from_opt_json::<CursorValue>(get(&row, "cursor", W)?, W)?,
            last_sync_at: parse_opt_ts(get(&row, "last_sync_at", W)?, W)?,
            last_reconcile_at: parse_opt_ts(get(&row, "last_reconcile_at", W)?, W)?,
        })
    }

    async fn save_sync_state(&self, source: &str, state: &SyncState) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_state (source, cursor, last_sync_at, last_reconcile_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, \
             last_sync_at = excluded.last_sync_at, last_reconcile_at = excluded.last_reconcile_at",
        )
        .bind(source)
        .bind(state.cursor.as_ref().map(to_json))
        .bind(opt_ts(state.last_sync_at))
        .bind(opt_ts(state.last_reconcile_at))
        .execute(&self.pool)
        .await
        .ctx("save sync state")?;
        Ok(())
    }

    // --- identity index -----------------------------------------------------

    async fn upsert_records(
        &self,
        entries: &[IndexEntry],
        seen_at: Timestamp,
    ) -> Result<UpsertCounts> {
        let seen = ts(seen_at);
        let mut counts = UpsertCounts::default();
        let mut feed = Vec::new();
        let mut tx = self.write().await?;
        for chunk in entries.chunks(UPSERT_CHUNK) {
            upsert_chunk(&mut tx, chunk, &seen, &mut counts, &mut feed).await?;
        }
        changes::append(&mut tx, &feed).await?;
        tx.commit().await.ctx("commit upsert")?;
        Ok(counts)
    }

    async fn record(&self, record: &RecordRef) -> Result<Option<StoredRecord>> {
        let mut tx = self.read().await?;
        let row = sqlx::query(
            "SELECT r.source, r.key, r.kind, r.relation, r.attrs, r.cursor, r.updated_at, \
             r.first_seen, r.last_seen, l.party_id, l.rule, l.evidence FROM records r \
             LEFT JOIN links l ON l.source = r.source AND l.key = r.key \
             WHERE r.source = ? AND r.key = ?",
        )
        .bind(record.source.as_str())
        .bind(record.key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .ctx("read record")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let identifiers: Vec<String> = sqlx::query_scalar(
            "SELECT identifier FROM identifiers WHERE source = ? AND key = ? ORDER BY identifier",
        )
        .bind(record.source.as_str())
        .bind(record.key.as_str())
        .fetch_all(&mut *tx)
        .await
        .ctx("read identifiers")?;
        tx.commit().await.ctx("end read")?;
        stored_record(&row, identifiers).map(Some)
    }

    async fn records(&self) -> Result<Vec<StoredRecord>> {
        use futures::TryStreamExt as _;
        // Streamed, row by row: a million rows held at once as sqlx rows
        // would cost several times the records made of them.
        let mut tx = self.read().await?;
        let mut identifiers: HashMap<(String, String), Vec<String>> = HashMap::new();
        {
            let mut rows = sqlx::query(
                "SELECT source, key, identifier FROM identifiers ORDER BY source, key, identifier",
            )
            .fetch(&mut *tx);
            const W: &str = "identifiers";
            while let Some(row) = rows.try_next().await.ctx("read identifiers")? {
                identifiers
                    .entry((get(&row, "source", W)?, get(&row, "key", W)?))
                    .or_default()
                    .push(get(&row, "identifier", W)?);
            }
        }
        let mut out = Vec::new();
        {
            let mut rows = sqlx::query(
                "SELECT r.source, r.key, r.kind, r.relation, r.attrs, r.cursor, r.updated_at, \
                 r.first_seen, r.last_seen, l.party_id, l.rule, l.evidence FROM records r \
                 LEFT JOIN links l ON l.source = r.source AND l.key = r.key \
                 ORDER BY r.source, r.key",
            )
            .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.ctx("read records")? {
                let k: (String, String) = (
                    get(&row, "source", "records")?,
                    get(&row, "key", "records")?,
                );
                out.push(stored_record(
                    &row,
                    identifiers.remove(&k).unwrap_or_default(),
                )?);
            }
        }
        tx.commit().await.ctx("end read")?;
        Ok(out)
    }

    async fn record_keys(&self, source: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT key FROM records WHERE source = ? ORDER BY key")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .ctx("read record keys")
    }

    async fn remove_records(&self, records: &[RecordRef]) -> Result<u64> {
        let unique: BTreeSet<&RecordRef> = records.iter().collect();
        let unique: Vec<&RecordRef> = unique.into_iter().collect();
        let mut tx = self.write().await?;
        let existing = changes::existing_with_parties(&mut tx, &unique).await?;
        delete_refs(&mut tx, "links", &unique, "remove links").await?;
        delete_refs(&mut tx, "identifiers", &unique, "remove identifiers").await?;
        let removed = delete_refs(&mut tx, "records", &unique, "remove records").await?;
        let feed: Vec<NewChange> = existing
            .into_iter()
            .map(|(r, party)| NewChange::record(ChangeKind::RecordRemoved, &r, party))
            .collect();
        changes::append(&mut tx, &feed).await?;
        tx.commit().await.ctx("commit removal")?;
        Ok(removed)
    }

    async fn records_with_identifier(&self, identifier: &str) -> Result<Vec<RecordRef>> {
        let rows = sqlx::query(
            "SELECT source, key FROM identifiers WHERE identifier = ? ORDER BY source, key",
        )
        .bind(identifier)
        .fetch_all(&self.pool)
        .await
        .ctx("find records by identifier")?;
        rows.iter()
            .map(|row| {
                Ok(RecordRef::new(
                    get::<String>(row, "source", "identifiers")?,
                    get::<String>(row, "key", "identifiers")?,
                ))
            })
            .collect()
    }

    // --- parties and links --------------------------------------------------

    async fn create_parties(&self, parties: &[Party]) -> Result<()> {
        // One transaction for the lot: linking creates thousands at once, and
        // a commit per party would be a disk flush per party.
        let mut tx = self.write().await?;
        let mut feed = Vec::new();
        for party in parties {
            if let Some(to) = redirect_of(&mut tx, party.id.as_str()).await? {
                return Err(Error::Invalid(format!(
                    "party {} was merged into {to}; its id cannot be used for a new party",
                    party.id
                )));
            }
            let existing = sqlx::query(
                "SELECT id, kind, created_at, founding_source, founding_key FROM parties WHERE id = ?",
            )
            .bind(party.id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .ctx("look up party")?;
            if let Some(row) = existing {
                if party_row(&row)? == *party {
                    continue;
                }
                return Err(Error::Invalid(format!(
                    "party {} already exists with other details",
                    party.id
                )));
            }
            sqlx::query(
                "INSERT INTO parties (id, kind, created_at, founding_source, founding_key) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(party.id.as_str())
            .bind(party.kind.as_str())
            .bind(ts(party.created_at))
            .bind(party.founding_record.source.as_str())
            .bind(party.founding_record.key.as_str())
            .execute(&mut *tx)
            .await
            .ctx("create party")?;
            feed.push(NewChange::party_created(party));
        }
        changes::append(&mut tx, &feed).await?;
        tx.commit().await.ctx("commit parties")
    }

    async fn party(&self, id: &PartyId) -> Result<Option<Party>> {
        let mut tx = self.read().await?;
        let id = resolve(&mut tx, id.as_str()).await?;
        let row = sqlx::query(
            "SELECT id, kind, created_at, founding_source, founding_key FROM parties WHERE id = ?",
        )
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .ctx("read party")?;
        tx.commit().await.ctx("end read")?;
        row.as_ref().map(party_row).transpose()
    }

    async fn party_snapshot(&self, id: &PartyId) -> Result<Option<Arc<PartySnapshot>>> {
        match &self.readers {
            Some(r) => r.party_snapshot(id.as_str()),
            None => crate::snapshot_by_parts(self, id).await,
        }
    }

    async fn party_records(
        &self,
        id: &PartyId,
    ) -> Result<Option<(Party, Vec<(Link, StoredRecord)>)>> {
        // One read transaction for what a view needs before its fan-out: a
        // call per record would cost a round trip to SQLite's worker each.
        if let Some(r) = &self.readers {
            return r.party_records(id.as_str());
        }
        let mut tx = self.read().await?;
        let id = resolve(&mut tx, id.as_str()).await?;
        let party = sqlx::query(stmt::PARTY)
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .ctx("read party")?;
        let Some(party) = party else {
            tx.commit().await.ctx("end read")?;
            return Ok(None);
        };
        let rows = sqlx::query(stmt::PARTY_RECORDS)
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
            .ctx("read party records")?;
        tx.commit().await.ctx("end read")?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(party_record(row)?);
        }
        Ok(Some((party_row(&party)?, out)))
    }

    async fn parties(&self) -> Result<Vec<Party>> {
        let rows = sqlx::query(
            "SELECT id, kind, created_at, founding_source, founding_key FROM parties \
             WHERE id NOT IN (SELECT from_id FROM party_redirects) ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .ctx("read parties")?;
        rows.iter().map(party_row).collect()
    }

    async fn redirect_party(&self, from: &PartyId, to: &PartyId, at: Timestamp) -> Result<()> {
        if from == to {
            return Err(Error::Invalid(format!(
                "cannot redirect party {from} to itself"
            )));
        }
        let mut tx = self.write().await?;
        if !party_exists(&mut tx, to.as_str()).await? {
            return Err(Error::Invalid(format!(
                "cannot redirect party {from} to unknown party {to}"
            )));
        }
        // Walk from `to`: meeting `from` on the way means the new redirect closes a loop.
        let mut current = to.as_str().to_string();
        let mut hops = 0;
        while let Some(next) = redirect_of(&mut tx, &current).await? {
            if next == from.as_str() {
                return Err(Error::Invalid(format!(
                    "cannot redirect party {from} to {to}: {to} already redirects to {from}"
                )));
            }
            hops += 1;
            if hops > MAX_REDIRECT_HOPS {
                return Err(Error::Corrupt {
                    what: "party_redirects",
                    detail: format!("redirects from {to} loop or run too long"),
                });
            }
            current = next;
        }
        let before = redirect_of(&mut tx, from.as_str()).await?;
        sqlx::query(
            "INSERT INTO party_redirects (from_id, to_id, at) VALUES (?, ?, ?) \
             ON CONFLICT (from_id) DO UPDATE SET to_id = excluded.to_id, at = excluded.at",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .ctx("redirect party")?;
        // Redirecting again to the same party merges nothing new.
        if before.as_deref() != Some(to.as_str()) {
            changes::append(&mut tx, &[NewChange::party_merged(from, to)]).await?;
        }
        tx.commit().await.ctx("commit redirect")
    }

    async fn retire_party(&self, id: &PartyId) -> Result<()> {
        let mut tx = self.write().await?;
        let linked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM links WHERE party_id = ?")
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await
            .ctx("count links")?;
        if linked > 0 {
            return Err(Error::Invalid(format!(
                "cannot retire party {id}: {linked} record(s) are still linked to it"
            )));
        }
        let done = sqlx::query("DELETE FROM parties WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .ctx("retire party")?;
        if done.rows_affected() > 0 {
            changes::append(&mut tx, &[NewChange::party_retired(id)]).await?;
        }
        tx.commit().await.ctx("commit retirement")
    }

    async fn set_founding_record(&self, id: &PartyId, record: &RecordRef) -> Result<()> {
        let mut tx = self.write().await?;
        if let Some(to) = redirect_of(&mut tx, id.as_str()).await? {
            return Err(Error::Invalid(format!(
                "cannot refound party {id}: it was merged into {to}"
            )));
        }
        if !party_exists(&mut tx, id.as_str()).await? {
            return Err(Error::Invalid(format!("cannot refound unknown party {id}")));
        }
        let linked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM links WHERE source = ? AND key = ? AND party_id = ?)",
        )
        .bind(record.source.as_str())
        .bind(record.key.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await
        .ctx("look up link")?;
        if !linked {
            return Err(Error::Invalid(format!(
                "cannot refound party {id} on {record}: the record is not linked to it"
            )));
        }
        sqlx::query("UPDATE parties SET founding_source = ?, founding_key = ? WHERE id = ?")
            .bind(record.source.as_str())
            .bind(record.key.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .ctx("refound party")?;
        tx.commit().await.ctx("commit refounding")
    }

    async fn set_links(&self, links: &[Link]) -> Result<()> {
        let mut tx = self.write().await?;
        let refs: Vec<&RecordRef> = links.iter().map(|l| &l.record).collect();
        // What each record was linked by before, kept current as the batch
        // goes so a record linked twice in one call is compared with its
        // first link.
        let mut before = changes::links_of(&mut tx, &refs).await?;
        let mut feed = Vec::new();
        let mut checked: HashSet<&str> = HashSet::new();
        for link in links {
            let id = link.party.as_str();
            if !checked.contains(id) {
                if let Some(to) = redirect_of(&mut tx, id).await? {
                    return Err(Error::Invalid(format!(
                        "cannot link {} to party {id}: it was merged into {to}",
                        link.record
                    )));
                }
                if !party_exists(&mut tx, id).await? {
                    return Err(Error::Invalid(format!(
                        "cannot link {} to unknown party {id}",
                        link.record
                    )));
                }
                checked.insert(id);
            }
            if !link.score.is_finite() {
                return Err(Error::Invalid(format!(
                    "link of {} has score {}, not a number",
                    link.record, link.score
                )));
            }
            // The feed reports a link that is new or names another party or
            // rule; a rewrite that only refreshes evidence is not news.
            let now = (id.to_string(), link.rule.clone());
            match before.insert(link.record.clone(), now.clone()) {
                Some(was) if was == now => {}
                Some((party, _)) => feed.push(NewChange::link_changed(
                    link,
                    Some(&PartyId::from_stored(party)),
                )),
                None => feed.push(NewChange::link_changed(link, None)),
            }
            sqlx::query(
                "INSERT INTO links (source, key, party_id, rule, score, evidence, linked_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET \
                 party_id = excluded.party_id, rule = excluded.rule, score = excluded.score, \
                 evidence = excluded.evidence, linked_at = excluded.linked_at",
            )
            .bind(link.record.source.as_str())
            .bind(link.record.key.as_str())
            .bind(id)
            .bind(link.rule.as_str())
            .bind(link.score)
            .bind(to_json(&link.evidence))
            .bind(ts(link.linked_at))
            .execute(&mut *tx)
            .await
            .ctx("set link")?;
        }
        changes::append(&mut tx, &feed).await?;
        tx.commit().await.ctx("commit links")
    }

    async fn unlink(&self, record: &RecordRef) -> Result<()> {
        let mut tx = self.write().await?;
        let party: Option<String> =
            sqlx::query_scalar("DELETE FROM links WHERE source = ? AND key = ? RETURNING party_id")
                .bind(record.source.as_str())
                .bind(record.key.as_str())
                .fetch_optional(&mut *tx)
                .await
                .ctx("unlink")?;
        if let Some(party) = party {
            let change = NewChange::link_removed(record, PartyId::from_stored(party));
            changes::append(&mut tx, &[change]).await?;
        }
        tx.commit().await.ctx("commit unlink")
    }

    async fn link(&self, record: &RecordRef) -> Result<Option<Link>> {
        let row = sqlx::query(
            "SELECT source, key, party_id, rule, score, evidence, linked_at FROM links \
             WHERE source = ? AND key = ?",
        )
        .bind(record.source.as_str())
        .bind(record.key.as_str())
        .fetch_optional(&self.pool)
        .await
        .ctx("read link")?;
        row.as_ref().map(link_row).transpose()
    }

    async fn links_of(&self, party: &PartyId) -> Result<Vec<Link>> {
        let mut tx = self.read().await?;
        let id = resolve(&mut tx, party.as_str()).await?;
        let rows = sqlx::query(
            "SELECT source, key, party_id, rule, score, evidence, linked_at FROM links \
             WHERE party_id = ? ORDER BY source, key",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await
        .ctx("read links")?;
        tx.commit().await.ctx("end read")?;
        rows.iter().map(link_row).collect()
    }

    async fn replace_relationships(&self, relationships: &[Relationship]) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM relationships")
            .execute(&mut *tx)
            .await
            .ctx("clear relationships")?;
        for batch in relationships.chunks(MAX_PARAMS / 4) {
            let mut q = query(format!(
                "INSERT INTO relationships (from_id, to_id, kind, evidence) VALUES {}",
                tuples(batch.len(), 4)
            ));
            for r in batch {
                q = q
                    .bind(r.from.as_str())
                    .bind(r.to.as_str())
                    .bind(r.kind.as_str())
                    .bind(r.evidence.as_str());
            }
            q.execute(&mut *tx).await.ctx("insert relationships")?;
        }
        tx.commit().await.ctx("commit relationships")
    }

    async fn relationships_of(&self, party: &PartyId) -> Result<Vec<Relationship>> {
        if let Some(r) = &self.readers {
            return r.relationships_of(party.as_str());
        }
        let mut tx = self.read().await?;
        let id = resolve(&mut tx, party.as_str()).await?;
        let rows = sqlx::query(stmt::RELATIONSHIPS)
            .bind(party.as_str())
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
            .ctx("read relationships")?;
        tx.commit().await.ctx("end read")?;
        rows.iter().map(relationship_row).collect()
    }

    // --- file indexes -------------------------------------------------------

    async fn file_index_stamp(&self, source: &str, index: &str) -> Result<Option<FileStamp>> {
        if let Some(r) = &self.readers {
            return r.file_index_stamp(source, index);
        }
        let row = sqlx::query(stmt::FILE_INDEX_STAMP)
            .bind(source)
            .bind(index)
            .fetch_optional(&self.pool)
            .await
            .ctx("read file index stamp")?;
        let Some(row) = row else { return Ok(None) };
        const W: &str = "file_index_stamps";
        Ok(Some(FileStamp {
            size: to_u64(get(&row, "size", W)?, W)?,
            modified_ns: get(&row, "modified_ns", W)?,
        }))
    }

    async fn file_index_offsets(
        &self,
        source: &str,
        index: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u64>>> {
        let keys: BTreeSet<&String> = keys.iter().collect();
        let keys: Vec<&String> = keys.into_iter().collect();
        if let Some(r) = &self.readers {
            return r.file_index_offsets(source, index, &keys);
        }
        let mut found: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut tx = self.read().await?;
        for batch in keys.chunks(MAX_PARAMS - 2) {
            let mut q = query(stmt::file_index_offsets(batch.len()))
                .bind(source)
                .bind(index);
            for k in batch {
                q = q.bind(k.as_str());
            }
            const W: &str = "file_index_entries";
            for row in q.fetch_all(&mut *tx).await.ctx("read file index")? {
                found
                    .entry(get(&row, "key", W)?)
                    .or_default()
                    .push(to_u64(get(&row, "byte_offset", W)?, W)?);
            }
        }
        tx.commit().await.ctx("end read")?;
        Ok(found)
    }

    async fn replace_file_index(
        &self,
        source: &str,
        index: &str,
        stamp: FileStamp,
        entries: &[(String, u64)],
    ) -> Result<()> {
        let size = to_i64(stamp.size, "file size")?;
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM file_index_entries WHERE source = ? AND index_name = ?")
            .bind(source)
            .bind(index)
            .execute(&mut *tx)
            .await
            .ctx("clear file index")?;
        sqlx::query(
            "INSERT INTO file_index_stamps (source, index_name, size, modified_ns) \
             VALUES (?, ?, ?, ?) ON CONFLICT (source, index_name) DO UPDATE SET \
             size = excluded.size, modified_ns = excluded.modified_ns",
        )
        .bind(source)
        .bind(index)
        .bind(size)
        .bind(stamp.modified_ns)
        .execute(&mut *tx)
        .await
        .ctx("save file index stamp")?;
        // Source and index name are bound once per statement as ?1 and ?2, so
        // each row costs two parameters; the full-size statement is prepared
        // once and reused from the connection's statement cache.
        let rows_per = (MAX_PARAMS - 2) / 2;
        for batch in entries.chunks(rows_per) {
            let values = (0..batch.len())
                .map(|i| format!("(?1, ?2, ?{}, ?{})", 3 + 2 * i, 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let mut q = query(format!(
                "INSERT INTO file_index_entries (source, index_name, key, byte_offset) VALUES {values}"
            ))
            .bind(source)
            .bind(index);
            for (key, offset) in batch {
                q = q.bind(key.as_str()).bind(to_i64(*offset, "file offset")?);
            }
            q.execute(&mut *tx).await.ctx("write file index")?;
        }
        tx.commit().await.ctx("commit file index")
    }

    // --- contributions ------------------------------------------------------

    async fn add_contribution(&self, c: &NewContribution) -> Result<i64> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO contributions (party_id, anchor, anchor_key, kind, attribute, value, \
             author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(c.party.as_str())
        .bind(to_json(&c.anchor))
        .bind(anchor_key(&c.anchor))
        .bind(c.kind.as_str())
        .bind(c.attribute.as_str())
        .bind(to_json(&c.value))
        .bind(c.by.as_str())
        .bind(ts(c.created_at))
        .execute(&mut *tx)
        .await
        .ctx("add contribution")?;
        let id = done.last_insert_rowid();
        changes::append(&mut tx, &[NewChange::contribution(id, c)]).await?;
        tx.commit().await.ctx("commit contribution")?;
        Ok(id)
    }

    async fn contributions(&self, anchors: &[Anchor]) -> Result<Vec<Contribution>> {
        let keys = anchor_keys(anchors);
        if let Some(r) = &self.readers {
            let mut out = r.contributions(&keys)?;
            sort_contributions(&mut out);
            return Ok(out);
        }
        let mut tx = self.read().await?;
        let mut rows = Vec::new();
        for batch in keys.chunks(MAX_PARAMS) {
            let mut q = query(stmt::contributions(batch.len()));
            for k in batch {
                q = q.bind(k.as_str());
            }
            rows.extend(q.fetch_all(&mut *tx).await.ctx("read contributions")?);
        }
        let mut out = contribution_rows(&mut tx, &rows).await?;
        tx.commit().await.ctx("end read")?;
        sort_contributions(&mut out);
        Ok(out)
    }

    async fn recent_contributions(&self, limit: usize) -> Result<Vec<Contribution>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut tx = self.read().await?;
        let rows = sqlx::query(
            "SELECT id, party_id, anchor, kind, attribute, value, author, created_at \
             FROM contributions ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .ctx("read recent contributions")?;
        let out = contribution_rows(&mut tx, &rows).await?;
        tx.commit().await.ctx("end read")?;
        Ok(out)
    }

    async fn delete_contributions(&self, anchors: &[Anchor]) -> Result<u64> {
        let keys = anchor_keys(anchors);
        let mut tx = self.write().await?;
        let mut deleted = 0;
        for batch in keys.chunks(MAX_PARAMS) {
            let mut q = query(format!(
                "DELETE FROM contributions WHERE anchor_key IN ({})",
                vec!["?"; batch.len()].join(", ")
            ));
            for k in batch {
                q = q.bind(k.as_str());
            }
            deleted += q
                .execute(&mut *tx)
                .await
                .ctx("delete contributions")?
                .rows_affected();
        }
        tx.commit().await.ctx("commit contribution deletion")?;
        Ok(deleted)
    }

    // --- review -------------------------------------------------------------

    async fn queue_for_review(
        &self,
        pairs: &[(RecordRef, RecordRef, f64)],
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        for (a, b, p) in pairs {
            let (a, b) = ordered(a, b);
            sqlx::query(
                "INSERT INTO review_pairs (a_source, a_key, b_source, b_key, probability, status, queued_at) \
                 VALUES (?, ?, ?, ?, ?, 'pending', ?) \
                 ON CONFLICT (a_source, a_key, b_source, b_key) DO UPDATE SET \
                 probability = excluded.probability WHERE review_pairs.status = 'pending'",
            )
            .bind(a.source.as_str())
            .bind(a.key.as_str())
            .bind(b.source.as_str())
            .bind(b.key.as_str())
            .bind(*p)
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .ctx("queue review pair")?;
        }
        tx.commit().await.ctx("commit review queue")
    }

    async fn decide_review(
        &self,
        a: &RecordRef,
        b: &RecordRef,
        status: ReviewStatus,
        by: &str,
        at: Timestamp,
    ) -> Result<()> {
        if a == b {
            return Err(Error::Invalid(format!(
                "{a} cannot be reviewed against itself"
            )));
        }
        if status == ReviewStatus::Pending {
            return Err(Error::Invalid(
                "a decision is accepted, rejected or disputed".into(),
            ));
        }
        let (a, b) = ordered(a, b);
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO review_pairs (a_source, a_key, b_source, b_key, status, decided_by, decided_at, queued_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (a_source, a_key, b_source, b_key) DO UPDATE SET \
             status = excluded.status, decided_by = excluded.decided_by, decided_at = excluded.decided_at",
        )
        .bind(a.source.as_str())
        .bind(a.key.as_str())
        .bind(b.source.as_str())
        .bind(b.key.as_str())
        .bind(status.as_str())
        .bind(by)
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .ctx("decide review pair")?;
        changes::append(&mut tx, &[NewChange::review_decided(a, b, status, by)]).await?;
        tx.commit().await.ctx("commit review decision")
    }

    async fn review_pairs(&self, status: Option<ReviewStatus>) -> Result<Vec<ReviewPair>> {
        let rows = sqlx::query(
            "SELECT a_source, a_key, b_source, b_key, probability, status, decided_by, decided_at, queued_at \
             FROM review_pairs WHERE (?1 IS NULL OR status = ?1) \
             ORDER BY status <> 'pending', \
             CASE WHEN status = 'pending' THEN probability END DESC, \
             decided_at DESC, a_source, a_key, b_source, b_key",
        )
        .bind(status.map(ReviewStatus::as_str))
        .fetch_all(&self.pool)
        .await
        .ctx("read review queue")?;
        const W: &str = "review_pairs";
        rows.iter()
            .map(|row| {
                let status: String = get(row, "status", W)?;
                Ok(ReviewPair {
                    a: RecordRef::new(
                        get::<String>(row, "a_source", W)?,
                        get::<String>(row, "a_key", W)?,
                    ),
                    b: RecordRef::new(
                        get::<String>(row, "b_source", W)?,
                        get::<String>(row, "b_key", W)?,
                    ),
                    probability: get(row, "probability", W)?,
                    status: ReviewStatus::parse(&status).ok_or_else(|| Error::Corrupt {
                        what: W,
                        detail: format!("unknown status {status:?}"),
                    })?,
                    decided_by: get(row, "decided_by", W)?,
                    decided_at: parse_opt_ts(get(row, "decided_at", W)?, W)?,
                    queued_at: parse_ts(&get::<String>(row, "queued_at", W)?, W)?,
                })
            })
            .collect()
    }

    // --- suppression --------------------------------------------------------

    async fn suppress(&self, item: &Suppression, reason: &str, at: Timestamp) -> Result<()> {
        let (kind, value) = suppression_row(item);
        sqlx::query(
            "INSERT INTO suppressions (kind, value, reason, at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(kind)
        .bind(value)
        .bind(reason)
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .ctx("suppress")?;
        Ok(())
    }

    async fn is_suppressed(&self, item: &Suppression) -> Result<bool> {
        let (kind, value) = suppression_row(item);
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM suppressions WHERE kind = ? AND value = ?)",
        )
        .bind(kind)
        .bind(value)
        .fetch_one(&self.pool)
        .await
        .ctx("check suppression")
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>> {
        let rows = sqlx::query("SELECT kind, value FROM suppressions ORDER BY at, rowid")
            .fetch_all(&self.pool)
            .await
            .ctx("read suppressions")?;
        rows.iter()
            .map(|row| {
                suppression_from_row(
                    &get::<String>(row, "kind", "suppressions")?,
                    get(row, "value", "suppressions")?,
                )
            })
            .collect()
    }

    // --- quarantine ---------------------------------------------------------

    async fn quarantine(&self, rows: &[Quarantined]) -> Result<()> {
        let mut tx = self.write().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO quarantine (source, location, key, reason, seen_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, location) DO UPDATE SET \
                 key = excluded.key, reason = excluded.reason, seen_at = excluded.seen_at",
            )
            .bind(r.source.as_str())
            .bind(r.location.as_str())
            .bind(r.key.as_deref())
            .bind(r.reason.as_str())
            .bind(ts(r.seen_at))
            .execute(&mut *tx)
            .await
            .ctx("quarantine row")?;
        }
        tx.commit().await.ctx("commit quarantine")
    }

    async fn clear_quarantine(&self, source: &str, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM quarantine WHERE source = ? AND seen_at < ?")
            .bind(source)
            .bind(ts(before))
            .execute(&self.pool)
            .await
            .ctx("clear quarantine")?;
        Ok(done.rows_affected())
    }

    async fn quarantined(&self, source: Option<&str>) -> Result<Vec<Quarantined>> {
        let rows = sqlx::query(
            "SELECT source, location, key, reason, seen_at FROM quarantine \
             WHERE ?1 IS NULL OR source = ?1 ORDER BY source, location",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .ctx("read quarantine")?;
        const W: &str = "quarantine";
        rows.iter()
            .map(|row| {
                Ok(Quarantined {
                    source: get(row, "source", W)?,
                    location: get(row, "location", W)?,
                    key: get(row, "key", W)?,
                    reason: get(row, "reason", W)?,
                    seen_at: parse_ts(&get::<String>(row, "seen_at", W)?, W)?,
                })
            })
            .collect()
    }

    // --- audit --------------------------------------------------------------

    async fn audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, party_id, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(ts(entry.at))
        .bind(entry.actor.as_str())
        .bind(entry.action.as_str())
        .bind(entry.party.as_ref().map(PartyId::as_str))
        .bind(entry.detail.as_str())
        .execute(&self.pool)
        .await
        .ctx("write audit entry")?;
        Ok(())
    }

    async fn audit_log(&self, party: Option<&PartyId>, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut tx = self.read().await?;
        let rows = match party {
            None => {
                sqlx::query(
                    "SELECT at, actor, action, party_id, detail FROM audit \
                     ORDER BY at DESC, id DESC LIMIT ?",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
            }
            Some(party) => {
                // Entries about ids merged into this party are about this party too.
                let id = resolve(&mut tx, party.as_str()).await?;
                sqlx::query(with_aliases!(
                    "SELECT at, actor, action, party_id, detail FROM audit \
                     WHERE party_id IN (SELECT id FROM aliases) \
                     ORDER BY at DESC, id DESC LIMIT ?2"
                ))
                .bind(&id)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
            }
        }
        .ctx("read audit log")?;
        tx.commit().await.ctx("end read")?;
        const W: &str = "audit";
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: parse_ts(&get::<String>(row, "at", W)?, W)?,
                    actor: get(row, "actor", W)?,
                    action: get(row, "action", W)?,
                    party: get::<Option<String>>(row, "party_id", W)?.map(PartyId::from_stored),
                    detail: get(row, "detail", W)?,
                })
            })
            .collect()
    }

    // --- access: API keys ---------------------------------------------------

    async fn create_api_key(&self, key: &NewApiKey) -> Result<i64> {
        access::create_api_key(self, key).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        access::api_key_by_hash(self, hash).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        access::api_keys(self).await
    }

    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<()> {
        access::touch_api_key(self, id, at).await
    }

    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<bool> {
        access::revoke_api_key(self, id, at).await
    }

    // --- access: staff ------------------------------------------------------

    async fn create_staff_user(&self, user: &NewStaffUser) -> Result<i64> {
        access::create_staff_user(self, user).await
    }

    async fn staff_user(&self, id: i64) -> Result<Option<StaffUser>> {
        access::staff_user(self, id).await
    }

    async fn staff_user_by_email(&self, email: &str) -> Result<Option<StaffUser>> {
        access::staff_user_by_email(self, email).await
    }

    async fn staff_users(&self) -> Result<Vec<StaffUser>> {
        access::staff_users(self).await
    }

    async fn set_staff_password(&self, id: i64, password_hash: &str) -> Result<()> {
        access::set_staff_password(self, id, password_hash).await
    }

    async fn set_staff_disabled(&self, id: i64, at: Option<Timestamp>) -> Result<()> {
        access::set_staff_disabled(self, id, at).await
    }

    // --- access: sessions ---------------------------------------------------

    async fn create_session(&self, session: &Session) -> Result<()> {
        access::create_session(self, session).await
    }

    async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        access::session(self, token_hash).await
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        access::touch_session(self, token_hash, at, expires_at).await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        access::delete_session(self, token_hash).await
    }

    async fn delete_sessions_of(&self, subject: &SessionSubject) -> Result<u64> {
        access::delete_sessions_of(self, subject).await
    }

    async fn purge_sessions(&self, before: Timestamp) -> Result<u64> {
        access::purge_sessions(self, before).await
    }

    // --- access: one-time sign-in codes -------------------------------------

    async fn create_login_code(&self, code: &NewLoginCode) -> Result<i64> {
        access::create_login_code(self, code).await
    }

    async fn login_codes_issued_since(&self, identifier: &str, since: Timestamp) -> Result<u32> {
        access::login_codes_issued_since(self, identifier, since).await
    }

    async fn active_login_code(
        &self,
        identifier: &str,
        now: Timestamp,
    ) -> Result<Option<LoginCode>> {
        access::active_login_code(self, identifier, now).await
    }

    async fn count_login_attempt(&self, id: i64) -> Result<u32> {
        access::count_login_attempt(self, id).await
    }

    async fn use_login_code(&self, id: i64, at: Timestamp) -> Result<bool> {
        access::use_login_code(self, id, at).await
    }

    // --- erasure ------------------------------------------------------------

    async fn add_erasure_request(&self, request: &ErasureRequest) -> Result<i64> {
        access::add_erasure_request(self, request).await
    }

    async fn erasure_requests(&self, party: Option<&PartyId>) -> Result<Vec<ErasureRequest>> {
        access::erasure_requests(self, party).await
    }

    // --- change feed --------------------------------------------------------

    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>> {
        changes::changes_after(self, after, limit).await
    }

    async fn latest_change_seq(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await.ctx("acquire connection")?;
        changes::latest_seq(&mut conn).await
    }

    async fn append_changes(
        &self,
        changes: &[NewChange],
        cursor: Option<(&str, i64)>,
    ) -> Result<i64> {
        changes::append_changes(self, changes, cursor).await
    }

    async fn feed_cursor(&self, consumer: &str) -> Result<Option<i64>> {
        changes::feed_cursor(self, consumer).await
    }

    async fn set_feed_cursor(&self, consumer: &str, seq: i64) -> Result<()> {
        if consumer == changes::PRUNED {
            return Err(Error::Invalid(format!(
                "{consumer:?} is kith's own record of pruning, not a consumer"
            )));
        }
        let mut conn = self.pool.acquire().await.ctx("acquire connection")?;
        changes::set_cursor(&mut conn, consumer, seq).await
    }

    async fn prune_changes(&self, before: Timestamp, consumers: &[String]) -> Result<u64> {
        changes::prune(self, before, consumers).await
    }

    async fn pruned_through(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await.ctx("acquire connection")?;
        changes::pruned_through_on(&mut conn).await
    }
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::*;

    #[tokio::test]
    async fn file_stores_are_durable_and_strict() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let text: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(text, "wal");
        for (name, want) in [
            ("synchronous", 2),
            ("foreign_keys", 1),
            ("busy_timeout", 5000),
        ] {
            let got: i64 = sqlx::query_scalar(AssertSqlSafe(format!("PRAGMA {name}")))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            // synchronous 2 is FULL.
            assert_eq!(got, want, "PRAGMA {name}");
        }
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "this is not a database, just some notes ".repeat(100),
        )
        .unwrap();
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "message does not name the file: {err}"
        );
        assert!(matches!(err, Error::Open { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn in_memory_data_outlives_idle_time() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store
            .suppress(
                &Suppression::IdentifierHash { hash: "h".into() },
                "test",
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let clone = store.clone();
        assert_eq!(clone.suppressions().await.unwrap().len(), 1);
        assert_eq!(store.describe(), "sqlite::memory:");
    }
}
