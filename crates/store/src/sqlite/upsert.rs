//! The identity index upsert: classify each record against what is stored,
//! then write in batches.

use std::collections::{BTreeSet, HashMap, HashSet};

use kith_model::normalize::identifier_hash;
use kith_model::{RecordRef, Relation};
use sqlx::SqliteConnection;

use super::codec::{self, opt_ts, record_key, to_json};
use super::sql::{
    MAX_PARAMS, bind_refs, delete_refs, get, query, ref_table, suppressed_values, tuples,
};
use crate::error::QueryContext;
use crate::{ChangeKind, IndexEntry, NewChange, Result, UpsertCounts};

/// A record in the form it is stored, compared column by column to tell an
/// update from a re-send. The JSON of equal model values is equal, so text
/// comparison suffices.
#[derive(PartialEq)]
struct Encoded {
    kind: &'static str,
    relation: Option<&'static str>,
    attrs: String,
    cursor: Option<String>,
    updated_at: Option<String>,
    identifiers: BTreeSet<String>,
}

/// What the database holds for a record, read before the chunk is applied.
struct StoredState {
    kind: String,
    relation: Option<String>,
    attrs: String,
    cursor: Option<String>,
    updated_at: Option<String>,
    identifiers: BTreeSet<String>,
}

impl StoredState {
    fn same_as(&self, e: &Encoded) -> bool {
        self.kind == e.kind
            && self.relation.as_deref() == e.relation
            && self.attrs == e.attrs
            && self.cursor == e.cursor
            && self.updated_at == e.updated_at
            && self.identifiers == e.identifiers
    }
}

fn encode(entry: &IndexEntry) -> Encoded {
    let r = &entry.record;
    Encoded {
        kind: r.kind.as_str(),
        relation: r.relation.map(Relation::as_str),
        attrs: to_json(&r.attrs),
        cursor: r.cursor.as_ref().map(to_json),
        updated_at: opt_ts(r.updated_at),
        identifiers: entry.identifiers.iter().cloned().collect(),
    }
}

/// What a chunk will write for one record.
struct Pending {
    record: RecordRef,
    /// Absent from the database before this chunk.
    new: bool,
    /// Written by this chunk: `None` while the record only needs its `last_seen`.
    state: Option<Encoded>,
}

/// Records per chunk: at two parameters a record, a chunk's lookups fit one statement.
pub(super) const UPSERT_CHUNK: usize = MAX_PARAMS / 2;

async fn load_stored(
    conn: &mut SqliteConnection,
    refs: &[&RecordRef],
) -> Result<HashMap<RecordRef, StoredState>> {
    let mut stored = HashMap::new();
    if refs.is_empty() {
        return Ok(stored);
    }
    let keys = ref_table(refs.len());
    let q = query(format!(
        "WITH {keys} SELECT r.source, r.key, r.kind, r.relation, r.attrs, r.cursor, \
         r.updated_at FROM k JOIN records r ON r.source = k.source AND r.key = k.key"
    ));
    const W: &str = "records";
    for row in bind_refs(q, refs)
        .fetch_all(&mut *conn)
        .await
        .ctx("read records")?
    {
        stored.insert(
            RecordRef::new(
                get::<String>(&row, "source", W)?,
                get::<String>(&row, "key", W)?,
            ),
            StoredState {
                kind: get(&row, "kind", W)?,
                relation: get(&row, "relation", W)?,
                attrs: get(&row, "attrs", W)?,
                cursor: get(&row, "cursor", W)?,
                updated_at: get(&row, "updated_at", W)?,
                identifiers: BTreeSet::new(),
            },
        );
    }
    let q = query(format!(
        "WITH {keys} SELECT i.source, i.key, i.identifier FROM k \
         JOIN identifiers i ON i.source = k.source AND i.key = k.key"
    ));
    for row in bind_refs(q, refs)
        .fetch_all(&mut *conn)
        .await
        .ctx("read identifiers")?
    {
        let r = RecordRef::new(
            get::<String>(&row, "source", "identifiers")?,
            get::<String>(&row, "key", "identifiers")?,
        );
        if let Some(s) = stored.get_mut(&r) {
            s.identifiers
                .insert(get(&row, "identifier", "identifiers")?);
        }
    }
    Ok(stored)
}

/// Upserts one chunk and adds a `record.inserted` or `record.updated` to
/// `changes` for each record it really wrote (a re-send only moves `last_seen`).
pub(super) async fn upsert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[IndexEntry],
    seen: &str,
    counts: &mut UpsertCounts,
    changes: &mut Vec<NewChange>,
) -> Result<()> {
    let record_keys: BTreeSet<String> =
        chunk.iter().map(|e| record_key(&e.record.record)).collect();
    let hashes_of: Vec<Vec<String>> = chunk
        .iter()
        .map(|e| e.identifiers.iter().map(|i| identifier_hash(i)).collect())
        .collect();
    let hashes: BTreeSet<String> = hashes_of.iter().flatten().cloned().collect();
    let blocked_records = suppressed_values(conn, codec::SUPPRESS_RECORD, &record_keys).await?;
    let blocked_hashes = suppressed_values(conn, codec::SUPPRESS_IDENTIFIER_HASH, &hashes).await?;

    let refs: Vec<&RecordRef> = {
        let mut seen_refs = HashSet::new();
        chunk
            .iter()
            .map(|e| &e.record.record)
            .filter(|r| seen_refs.insert(*r))
            .collect()
    };
    let stored = load_stored(conn, &refs).await?;

    // Entries are classified in order against the state the previous ones
    // left, so a record sent twice in one call counts once as new at most.
    let mut pending: Vec<Pending> = Vec::new();
    let mut slot_of: HashMap<&RecordRef, usize> = HashMap::new();
    for (entry, hashes) in chunk.iter().zip(&hashes_of) {
        let r = &entry.record.record;
        if blocked_records.contains(&record_key(r))
            || hashes.iter().any(|h| blocked_hashes.contains(h))
        {
            continue;
        }
        let enc = encode(entry);
        match slot_of.get(r) {
            Some(&i) => {
                let p = &mut pending[i];
                let same = match &p.state {
                    Some(s) => *s == enc,
                    None => stored.get(r).is_some_and(|s| s.same_as(&enc)),
                };
                if same {
                    counts.unchanged += 1;
                } else {
                    counts.updated += 1;
                    p.state = Some(enc);
                }
            }
            None => {
                let (new, state) = match stored.get(r) {
                    None => {
                        counts.inserted += 1;
                        (true, Some(enc))
                    }
                    Some(s) if s.same_as(&enc) => {
                        counts.unchanged += 1;
                        (false, None)
                    }
                    Some(_) => {
                        counts.updated += 1;
                        (false, Some(enc))
                    }
                };
                slot_of.insert(r, pending.len());
                pending.push(Pending {
                    record: r.clone(),
                    new,
                    state,
                });
            }
        }
    }

    // The feed names the party an updated record is linked to; a new record
    // has none yet.
    let updated_refs: Vec<&RecordRef> = pending
        .iter()
        .filter(|p| !p.new && p.state.is_some())
        .map(|p| &p.record)
        .collect();
    let mut parties = super::changes::parties_of(conn, &updated_refs).await?;
    for p in pending.iter().filter(|p| p.state.is_some()) {
        changes.push(if p.new {
            NewChange::record(ChangeKind::RecordInserted, &p.record, None)
        } else {
            NewChange::record(
                ChangeKind::RecordUpdated,
                &p.record,
                parties.remove(&p.record),
            )
        });
    }

    // New records, several to a statement.
    let new: Vec<(&RecordRef, &Encoded)> = pending
        .iter()
        .filter(|p| p.new)
        .filter_map(|p| p.state.as_ref().map(|s| (&p.record, s)))
        .collect();
    for batch in new.chunks(MAX_PARAMS / 9) {
        let mut q = query(format!(
            "INSERT INTO records (source, key, kind, relation, attrs, cursor, updated_at, \
             first_seen, last_seen) VALUES {}",
            tuples(batch.len(), 9)
        ));
        for (r, s) in batch {
            q = q
                .bind(r.source.as_str())
                .bind(r.key.as_str())
                .bind(s.kind)
                .bind(s.relation)
                .bind(s.attrs.as_str())
                .bind(s.cursor.as_deref())
                .bind(s.updated_at.as_deref())
                .bind(seen)
                .bind(seen);
        }
        q.execute(&mut *conn).await.ctx("insert records")?;
    }

    // Changed records: first_seen stays, identifiers are replaced.
    let changed: Vec<(&RecordRef, &Encoded)> = pending
        .iter()
        .filter(|p| !p.new)
        .filter_map(|p| p.state.as_ref().map(|s| (&p.record, s)))
        .collect();
    for batch in changed.chunks((MAX_PARAMS - 1) / 7) {
        let mut q = query(format!(
            "WITH u(source, key, kind, relation, attrs, cursor, updated_at) AS (VALUES {}) \
             UPDATE records SET kind = u.kind, relation = u.relation, attrs = u.attrs, \
             cursor = u.cursor, updated_at = u.updated_at, last_seen = ? \
             FROM u WHERE records.source = u.source AND records.key = u.key",
            tuples(batch.len(), 7)
        ));
        for (r, s) in batch {
            q = q
                .bind(r.source.as_str())
                .bind(r.key.as_str())
                .bind(s.kind)
                .bind(s.relation)
                .bind(s.attrs.as_str())
                .bind(s.cursor.as_deref())
                .bind(s.updated_at.as_deref());
        }
        q.bind(seen)
            .execute(&mut *conn)
            .await
            .ctx("update records")?;
    }
    let changed_refs: Vec<&RecordRef> = changed.iter().map(|(r, _)| *r).collect();
    delete_refs(conn, "identifiers", &changed_refs, "replace identifiers").await?;

    // Identifiers of new and changed records.
    let identifiers: Vec<(&RecordRef, &String)> = pending
        .iter()
        .filter_map(|p| p.state.as_ref().map(|s| (&p.record, s)))
        .flat_map(|(r, s)| s.identifiers.iter().map(move |i| (r, i)))
        .collect();
    for batch in identifiers.chunks(MAX_PARAMS / 3) {
        let mut q = query(format!(
            "INSERT INTO identifiers (source, key, identifier) VALUES {}",
            tuples(batch.len(), 3)
        ));
        for (r, i) in batch {
            q = q
                .bind(r.source.as_str())
                .bind(r.key.as_str())
                .bind(i.as_str());
        }
        q.execute(&mut *conn).await.ctx("insert identifiers")?;
    }

    // Re-sent records only move their last_seen.
    let unchanged: Vec<&RecordRef> = pending
        .iter()
        .filter(|p| p.state.is_none())
        .map(|p| &p.record)
        .collect();
    for batch in unchanged.chunks((MAX_PARAMS - 1) / 2) {
        let q = query(format!(
            "WITH {} UPDATE records SET last_seen = ? FROM k \
             WHERE records.source = k.source AND records.key = k.key",
            ref_table(batch.len())
        ));
        bind_refs(q, batch)
            .bind(seen)
            .execute(&mut *conn)
            .await
            .ctx("touch records")?;
    }
    Ok(())
}
