//! The change feed's outbox in SQLite: appending inside a write method's own
//! transaction, reading in seq order, and consumers' cursors.

use std::collections::HashMap;

use kith_model::{PartyId, RecordRef};
use sqlx::SqliteConnection;

use super::SqliteStore;
use super::codec::{from_json, parse_ts, to_json, ts};
use super::sql::{MAX_PARAMS, bind_refs, get, query, ref_table, tuples};
use crate::error::QueryContext;
use crate::{Change, ChangeKind, Error, NewChange, Result};

/// Appends changes on `conn` (inside the caller's transaction), in order.
/// Returns the seq of the last one, or `None` when there were none.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    changes: &[NewChange],
) -> Result<Option<i64>> {
    // One time for the lot: they were made by one write.
    let at = ts(chrono::Utc::now());
    let mut last = None;
    for batch in changes.chunks(MAX_PARAMS / 5) {
        let mut q = query(format!(
            "INSERT INTO changes (at, kind, party, subject, data) VALUES {}",
            tuples(batch.len(), 5)
        ));
        for c in batch {
            q = q
                .bind(at.as_str())
                .bind(c.kind.as_str())
                .bind(c.party.as_ref().map(PartyId::as_str))
                .bind(c.subject.as_str())
                .bind(to_json(&c.data));
        }
        let done = q.execute(&mut *conn).await.ctx("append changes")?;
        // One writer and one multi-row statement: the rows took consecutive
        // seqs, the last of which is the statement's last rowid.
        last = Some(done.last_insert_rowid());
    }
    Ok(last)
}

/// The party each of these records is linked to now, if any.
pub(super) async fn parties_of(
    conn: &mut SqliteConnection,
    refs: &[&RecordRef],
) -> Result<HashMap<RecordRef, PartyId>> {
    let mut out = HashMap::new();
    for batch in refs.chunks(MAX_PARAMS / 2) {
        let q = query(format!(
            "WITH {} SELECT l.source, l.key, l.party_id FROM k \
             JOIN links l ON l.source = k.source AND l.key = k.key",
            ref_table(batch.len())
        ));
        const W: &str = "links";
        for row in bind_refs(q, batch)
            .fetch_all(&mut *conn)
            .await
            .ctx("read parties of records")?
        {
            out.insert(
                RecordRef::new(
                    get::<String>(&row, "source", W)?,
                    get::<String>(&row, "key", W)?,
                ),
                PartyId::from_stored(get::<String>(&row, "party_id", W)?),
            );
        }
    }
    Ok(out)
}

/// The party and rule each of these records is linked by now, if linked.
pub(super) async fn links_of(
    conn: &mut SqliteConnection,
    refs: &[&RecordRef],
) -> Result<HashMap<RecordRef, (String, String)>> {
    let mut out = HashMap::new();
    for batch in refs.chunks(MAX_PARAMS / 2) {
        let q = query(format!(
            "WITH {} SELECT l.source, l.key, l.party_id, l.rule FROM k \
             JOIN links l ON l.source = k.source AND l.key = k.key",
            ref_table(batch.len())
        ));
        const W: &str = "links";
        for row in bind_refs(q, batch)
            .fetch_all(&mut *conn)
            .await
            .ctx("read links")?
        {
            out.insert(
                RecordRef::new(
                    get::<String>(&row, "source", W)?,
                    get::<String>(&row, "key", W)?,
                ),
                (get(&row, "party_id", W)?, get(&row, "rule", W)?),
            );
        }
    }
    Ok(out)
}

/// Of these records, those in the index, each with its party if linked.
pub(super) async fn existing_with_parties(
    conn: &mut SqliteConnection,
    refs: &[&RecordRef],
) -> Result<Vec<(RecordRef, Option<PartyId>)>> {
    let mut out = Vec::new();
    for batch in refs.chunks(MAX_PARAMS / 2) {
        let q = query(format!(
            "WITH {} SELECT r.source, r.key, l.party_id FROM k \
             JOIN records r ON r.source = k.source AND r.key = k.key \
             LEFT JOIN links l ON l.source = r.source AND l.key = r.key",
            ref_table(batch.len())
        ));
        const W: &str = "records";
        for row in bind_refs(q, batch)
            .fetch_all(&mut *conn)
            .await
            .ctx("read records to remove")?
        {
            out.push((
                RecordRef::new(
                    get::<String>(&row, "source", W)?,
                    get::<String>(&row, "key", W)?,
                ),
                get::<Option<String>>(&row, "party_id", W)?.map(PartyId::from_stored),
            ));
        }
    }
    Ok(out)
}

pub(super) async fn changes_after(
    s: &SqliteStore,
    after: i64,
    limit: usize,
) -> Result<Vec<Change>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT seq, at, kind, party, subject, data FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&s.pool)
    .await
    .ctx("read changes")?;
    const W: &str = "changes";
    rows.iter()
        .map(|row| {
            let kind: String = get(row, "kind", W)?;
            Ok(Change {
                seq: get(row, "seq", W)?,
                at: parse_ts(&get::<String>(row, "at", W)?, W)?,
                kind: ChangeKind::parse(&kind).ok_or_else(|| Error::Corrupt {
                    what: W,
                    detail: format!("unknown kind {kind:?}"),
                })?,
                party: get::<Option<String>>(row, "party", W)?.map(PartyId::from_stored),
                subject: get(row, "subject", W)?,
                data: from_json(&get::<String>(row, "data", W)?, W)?,
            })
        })
        .collect()
}

pub(super) async fn latest_seq(conn: &mut SqliteConnection) -> Result<i64> {
    // AUTOINCREMENT's own record: still right when pruning removed every row.
    sqlx::query_scalar(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0), \
                COALESCE((SELECT MAX(seq) FROM changes), 0))",
    )
    .fetch_one(&mut *conn)
    .await
    .ctx("read latest change")
}

pub(super) async fn set_cursor(
    conn: &mut SqliteConnection,
    consumer: &str,
    seq: i64,
) -> Result<()> {
    if consumer.is_empty() {
        return Err(Error::Invalid("a feed consumer needs a name".into()));
    }
    sqlx::query(
        "INSERT INTO feed_cursors (consumer, seq, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
    )
    .bind(consumer)
    .bind(seq)
    .bind(ts(chrono::Utc::now()))
    .execute(&mut *conn)
    .await
    .ctx("set feed cursor")?;
    Ok(())
}

pub(super) async fn append_changes(
    s: &SqliteStore,
    changes: &[NewChange],
    cursor: Option<(&str, i64)>,
) -> Result<i64> {
    let mut tx = s.write().await?;
    let last = match append(&mut tx, changes).await? {
        Some(seq) => seq,
        None => latest_seq(&mut tx).await?,
    };
    if let Some((consumer, seq)) = cursor {
        set_cursor(&mut tx, consumer, seq).await?;
    }
    tx.commit().await.ctx("commit changes")?;
    Ok(last)
}

pub(super) async fn feed_cursor(s: &SqliteStore, consumer: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT seq FROM feed_cursors WHERE consumer = ?")
        .bind(consumer)
        .fetch_optional(&s.pool)
        .await
        .ctx("read feed cursor")
}

/// The feed cursor that records how far pruning went; not a consumer.
pub(super) const PRUNED: &str = "kith.pruned";

/// Rows deleted per statement, so writers are not held up for long.
const PRUNE_CHUNK: i64 = 10_000;

pub(super) async fn prune(
    s: &SqliteStore,
    before: chrono::DateTime<chrono::Utc>,
    consumers: &[String],
) -> Result<u64> {
    let mut deleted = 0u64;
    loop {
        let mut tx = s.write().await?;
        // Nothing a named consumer has not delivered yet; a consumer without
        // a cursor has not started and holds nothing back.
        let mut held: Option<i64> = None;
        for c in consumers {
            let seq: Option<i64> =
                sqlx::query_scalar("SELECT seq FROM feed_cursors WHERE consumer = ?")
                    .bind(c)
                    .fetch_optional(&mut *tx)
                    .await
                    .ctx("read feed cursor")?;
            if let Some(seq) = seq {
                held = Some(held.map_or(seq, |h: i64| h.min(seq)));
            }
        }
        let upto: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM (SELECT seq FROM changes WHERE at < ? AND seq <= ? \
             ORDER BY seq LIMIT ?)",
        )
        .bind(ts(before))
        .bind(held.unwrap_or(i64::MAX))
        .bind(PRUNE_CHUNK)
        .fetch_one(&mut *tx)
        .await
        .ctx("find changes to prune")?;
        let Some(upto) = upto else {
            tx.commit().await.ctx("end prune")?;
            return Ok(deleted);
        };
        let done = sqlx::query("DELETE FROM changes WHERE seq <= ?")
            .bind(upto)
            .execute(&mut *tx)
            .await
            .ctx("prune changes")?;
        deleted += done.rows_affected();
        let through = pruned_through_on(&mut tx).await?.max(upto);
        set_cursor(&mut tx, PRUNED, through).await?;
        tx.commit().await.ctx("commit prune")?;
    }
}

pub(super) async fn pruned_through_on(conn: &mut SqliteConnection) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM feed_cursors WHERE consumer = ?")
        .bind(PRUNED)
        .fetch_optional(&mut *conn)
        .await
        .ctx("read how far the feed was pruned")?;
    Ok(seq.unwrap_or(0))
}
