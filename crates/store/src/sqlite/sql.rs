//! Statement building, row decoding and lookups shared by the store's methods.

use std::collections::{BTreeSet, HashSet};

use kith_model::{IdentityRecord, Link, Party, PartyId, PartyKind, RecordRef, Relation};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection};

use super::codec::{from_json, from_opt_json, parse_opt_ts, parse_ts};
use crate::error::QueryContext;
use crate::{Error, Result, StoredRecord};

/// Bind parameters per statement. SQLite allows far more nowadays, but old
/// builds stop at 999, and statements this size already amortise the per-call cost.
pub(super) const MAX_PARAMS: usize = 500;

/// Redirect chains are a handful of hops; a longer one means a damaged table.
pub(super) const MAX_REDIRECT_HOPS: usize = 1000;

pub(super) type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments>;

// --- statement building --------------------------------------------------

pub(super) fn query(sql: String) -> SqliteQuery<'static> {
    sqlx::query(AssertSqlSafe(sql))
}

/// `(?, ?), (?, ?), …`: `rows` tuples of `width` anonymous parameters.
pub(super) fn tuples(rows: usize, width: usize) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    vec![one; rows].join(", ")
}

/// `k(source, key) AS (VALUES (?, ?), …)`: a table of record refs to join on.
/// A join rather than `(source, key) IN (VALUES …)`, which SQLite answers
/// with a full scan instead of primary key lookups.
pub(super) fn ref_table(rows: usize) -> String {
    format!("k(source, key) AS (VALUES {})", tuples(rows, 2))
}

pub(super) fn bind_refs<'q>(mut q: SqliteQuery<'q>, refs: &[&RecordRef]) -> SqliteQuery<'q> {
    for r in refs {
        q = q.bind(r.source.as_str()).bind(r.key.as_str());
    }
    q
}

/// Deletes the rows of `table` (keyed by source and key) of these records.
pub(super) async fn delete_refs(
    conn: &mut SqliteConnection,
    table: &'static str,
    refs: &[&RecordRef],
    context: &'static str,
) -> Result<u64> {
    let mut removed = 0;
    for batch in refs.chunks(MAX_PARAMS / 2) {
        let q = query(format!(
            "WITH {} DELETE FROM {table} WHERE rowid IN (SELECT t.rowid FROM k \
             JOIN {table} t ON t.source = k.source AND t.key = k.key)",
            ref_table(batch.len())
        ));
        removed += bind_refs(q, batch)
            .execute(&mut *conn)
            .await
            .ctx(context)?
            .rows_affected();
    }
    Ok(removed)
}

/// `?first, ?first+1, …`: numbered parameters, for statements that also use
/// fixed numbered ones (`?1`, `?2`). sqlx binds anonymous parameters by
/// position, which breaks when they are mixed with numbered ones.
pub(super) fn numbered(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// --- row decoding ----------------------------------------------------------

/// A column type both drivers decode: the row decoders below read rows of
/// sqlx (the store's pool) and of rusqlite (its calling-thread reads, `read.rs`) alike.
pub(super) trait ColType:
    for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql
{
}

impl<T> ColType for T where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql
{
}

/// A result row of either driver, read by column name.
pub(super) trait Cols {
    fn col<T: ColType>(&self, col: &str, what: &'static str) -> Result<T>;
}

impl Cols for SqliteRow {
    fn col<T: ColType>(&self, col: &str, what: &'static str) -> Result<T> {
        self.try_get(col).ctx(what)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: ColType>(&self, col: &str, what: &'static str) -> Result<T> {
        self.get(col).map_err(|e| Error::read(what, e))
    }
}

pub(super) fn get<T: ColType>(row: &impl Cols, col: &str, what: &'static str) -> Result<T> {
    row.col(col, what)
}

pub(super) fn party_kind(s: &str) -> Result<PartyKind> {
    PartyKind::parse(s).ok_or_else(|| Error::Corrupt {
        what: "party kind",
        detail: format!("{s:?}"),
    })
}

/// Columns: source, key, kind, relation, attrs, cursor, updated_at.
pub(super) fn identity_record(row: &impl Cols) -> Result<IdentityRecord> {
    const W: &str = "records";
    let relation: Option<String> = get(row, "relation", W)?;
    Ok(IdentityRecord {
        record: RecordRef::new(
            get::<String>(row, "source", W)?,
            get::<String>(row, "key", W)?,
        ),
        kind: party_kind(&get::<String>(row, "kind", W)?)?,
        relation: relation
            .map(|r| {
                Relation::parse(&r).ok_or_else(|| Error::Corrupt {
                    what: W,
                    detail: format!("relation {r:?}"),
                })
            })
            .transpose()?,
        attrs: from_json(&get::<String>(row, "attrs", W)?, W)?,
        cursor: from_opt_json(get(row, "cursor", W)?, W)?,
        updated_at: parse_opt_ts(get(row, "updated_at", W)?, W)?,
    })
}

/// Columns: source, key, party_id, rule, score, evidence, linked_at.
pub(super) fn link_row(row: &impl Cols) -> Result<Link> {
    const W: &str = "links";
    Ok(Link {
        record: RecordRef::new(
            get::<String>(row, "source", W)?,
            get::<String>(row, "key", W)?,
        ),
        party: PartyId::from_stored(get::<String>(row, "party_id", W)?),
        rule: get(row, "rule", W)?,
        score: get(row, "score", W)?,
        evidence: from_json(&get::<String>(row, "evidence", W)?, W)?,
        linked_at: parse_ts(&get::<String>(row, "linked_at", W)?, W)?,
    })
}

pub(super) fn party_row(row: &impl Cols) -> Result<Party> {
    const W: &str = "parties";
    Ok(Party {
        id: PartyId::from_stored(get::<String>(row, "id", W)?),
        kind: party_kind(&get::<String>(row, "kind", W)?)?,
        created_at: parse_ts(&get::<String>(row, "created_at", W)?, W)?,
        founding_record: RecordRef::new(
            get::<String>(row, "founding_source", W)?,
            get::<String>(row, "founding_key", W)?,
        ),
    })
}

// --- shared lookups ----------------------------------------------------------

pub(super) async fn redirect_of(conn: &mut SqliteConnection, id: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT to_id FROM party_redirects WHERE from_id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .ctx("read party redirect")
}

/// Follows redirects from `id` to the id that answers for it now.
pub(super) async fn resolve(conn: &mut SqliteConnection, id: &str) -> Result<String> {
    let mut current = id.to_string();
    let mut visited = HashSet::new();
    while let Some(next) = redirect_of(conn, &current).await? {
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

pub(super) async fn party_exists(conn: &mut SqliteConnection, id: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM parties WHERE id = ?)")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .ctx("look up party")
}

/// Which of `values` are on the suppression list under `kind`.
pub(super) async fn suppressed_values(
    conn: &mut SqliteConnection,
    kind: &str,
    values: &BTreeSet<String>,
) -> Result<HashSet<String>> {
    let values: Vec<&String> = values.iter().collect();
    let mut found = HashSet::new();
    for batch in values.chunks(MAX_PARAMS - 1) {
        let sql = format!(
            "SELECT value FROM suppressions WHERE kind = ?1 AND value IN ({})",
            numbered(2, batch.len())
        );
        let mut q = query(sql).bind(kind);
        for v in batch {
            q = q.bind(v.as_str());
        }
        let rows: Vec<SqliteRow> = q.fetch_all(&mut *conn).await.ctx("read suppressions")?;
        for row in rows {
            found.insert(get::<String>(&row, "value", "suppressions")?);
        }
    }
    Ok(found)
}

/// Columns: those of [`identity_record`] plus first_seen, last_seen, party_id.
pub(super) fn stored_record(row: &impl Cols, identifiers: Vec<String>) -> Result<StoredRecord> {
    const W: &str = "records";
    Ok(StoredRecord {
        record: identity_record(row)?,
        identifiers,
        party: get::<Option<String>>(row, "party_id", W)?.map(PartyId::from_stored),
        rule: get::<Option<String>>(row, "rule", W)?,
        evidence: match get::<Option<String>>(row, "evidence", W)? {
            Some(json) => serde_json::from_str(&json).map_err(|e| Error::Corrupt {
                what: "links",
                detail: format!("evidence is not a JSON list of strings: {e}"),
            })?,
            None => Vec::new(),
        },
        first_seen: parse_ts(&get::<String>(row, "first_seen", W)?, W)?,
        last_seen: parse_ts(&get::<String>(row, "last_seen", W)?, W)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_pieces() {
        assert_eq!(tuples(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(numbered(3, 2), "?3, ?4");
        assert_eq!(ref_table(1), "k(source, key) AS (VALUES (?, ?))");
    }
}
