//! The durable event log: kith's own record of what applications sent.
//!
//! One SQLite file in WAL mode with `synchronous = FULL`: a commit returns
//! only after the write-ahead log is fsynced, and an event is acknowledged
//! only after its commit. One writer task takes every append waiting when it
//! starts a commit (group commit), so many concurrent requests share one
//! fsync. A `messageId` seen in the last [`DEDUP_WINDOW`] is not stored again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::event::{Event, Rejected};

/// How long a `messageId` is remembered for de-duplication (Segment's window).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most events one commit takes (the rest wait for the next).
const MAX_GROUP: usize = 5_000;
/// Rows per INSERT statement (SQLite allows 32,766 parameters).
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the event log {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("event log: {context}: {source}")]
    Query {
        context: &'static str,
        source: sqlx::Error,
    },
    #[error("the event log's writer has stopped")]
    Stopped,
}

type Result<T, E = LogError> = std::result::Result<T, E>;

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}
impl<T> Ctx<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| LogError::Query { context, source })
    }
}

/// What became of one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Appended {
    Stored {
        seq: i64,
    },
    /// Its `messageId` was seen within the de-duplication window.
    Duplicate,
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub group_id: Option<String>,
    pub previous_id: Option<String>,
    pub name: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: serde_json::Value,
}

struct Job {
    events: Vec<Event>,
    reply: oneshot::Sender<Result<Vec<Appended>>>,
}

/// The event log. Cheap to share behind an `Arc`.
pub struct EventLog {
    path: PathBuf,
    reader: SqlitePool,
    jobs: mpsc::Sender<Job>,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id   TEXT NOT NULL,
        type         TEXT NOT NULL,
        user_id      TEXT,
        anonymous_id TEXT,
        group_id     TEXT,
        previous_id  TEXT,
        name         TEXT,
        timestamp    TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        body         TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS events_user ON events (user_id, timestamp) WHERE user_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_anonymous ON events (anonymous_id, timestamp) WHERE anonymous_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_alias ON events (previous_id) WHERE type = 'alias'",
    "CREATE INDEX IF NOT EXISTS events_group ON events (group_id) WHERE group_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS dedup (
        message_id  TEXT PRIMARY KEY NOT NULL,
        received_at TEXT NOT NULL
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS dedup_received ON dedup (received_at)",
    // Events refused by validation: why and where, never their content.
    "CREATE TABLE IF NOT EXISTS rejected (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        position    INTEGER NOT NULL,
        message_id  TEXT,
        reason      TEXT NOT NULL
    )",
];

/// Timestamps as fixed-width UTC text, so they sort as they compare.
fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl EventLog {
    /// Opens (creating) the log at `path` and starts its writer.
    pub async fn open(path: &Path) -> Result<EventLog> {
        let open_err = |source| LogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit, so an acknowledged event survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        for sql in SCHEMA {
            sqlx::query(*sql).execute(&writer).await.map_err(open_err)?;
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(open_err)?;
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(write_loop(writer, rx));
        Ok(EventLog {
            path: path.to_path_buf(),
            reader,
            jobs,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends events; returns once they are durable (or were duplicates), in order.
    pub async fn append(&self, events: Vec<Event>) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { events, reply })
            .await
            .map_err(|_| LogError::Stopped)?;
        rx.await.map_err(|_| LogError::Stopped)?
    }

    /// Records events refused by validation (reason and position, not content).
    pub async fn reject(&self, received_at: DateTime<Utc>, rejected: &[Rejected]) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        // Through the writer's file but on a reader-independent connection: a
        // short write that needs no group commit.
        let mut conn = sqlx::SqliteConnection::connect_with_options(&self.path).await?;
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO rejected (received_at, position, message_id, reason) ");
        q.push_values(rejected, |mut b, r| {
            b.push_bind(ts(&received_at))
                .push_bind(r.index as i64)
                .push_bind(r.message_id.clone())
                .push_bind(r.reason.clone());
        });
        q.build()
            .execute(&mut conn)
            .await
            .ctx("record rejected events")?;
        Ok(())
    }

    /// Events of these users or anonymous ids, newest first.
    pub async fn events_of(
        &self,
        user_ids: &[String],
        anonymous_ids: &[String],
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        if user_ids.is_empty() && anonymous_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT seq, message_id, type, user_id, anonymous_id, group_id, previous_id, name, timestamp, received_at, body FROM events WHERE ",
        );
        q.push("user_id IN (");
        let mut sep = q.separated(", ");
        sep.push_bind("");
        for u in user_ids {
            sep.push_bind(u.clone());
        }
        q.push(") OR anonymous_id IN (");
        let mut sep = q.separated(", ");
        sep.push_bind("");
        for a in anonymous_ids {
            sep.push_bind(a.clone());
        }
        q.push(") ORDER BY timestamp DESC, seq DESC LIMIT ");
        q.push_bind(limit as i64);
        let rows = q
            .build()
            .fetch_all(&self.reader)
            .await
            .ctx("read events of users")?;
        Ok(rows.iter().map(row_event).collect())
    }

    /// Events after `seq` in log order (for consumers that resume from a position).
    pub async fn after(&self, seq: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, message_id, type, user_id, anonymous_id, group_id, previous_id, name, timestamp, received_at, body
             FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await
        .ctx("read events after a position")?;
        Ok(rows.iter().map(row_event).collect())
    }

    /// Identified users (an `identify` or `group` carried their `userId`, or an
    /// `alias` moved an identified id) with events after `seq`, each with its newest seq.
    pub async fn identified_after(&self, seq: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT user_id AS id, MAX(seq) AS last FROM events
               WHERE seq > ? AND user_id IS NOT NULL AND type IN ('identify', 'group')
               GROUP BY user_id
             UNION ALL
             SELECT e.previous_id AS id, MAX(e.seq) AS last FROM events e
               WHERE e.seq > ? AND e.type = 'alias'
                 AND EXISTS (SELECT 1 FROM events i WHERE i.user_id = e.previous_id AND i.type = 'identify')
               GROUP BY e.previous_id",
        )
        .bind(seq)
        .bind(seq)
        .fetch_all(&self.reader)
        .await
        .ctx("read identified users")?;
        let mut out: std::collections::BTreeMap<String, i64> = Default::default();
        for r in rows {
            let id: String = r.get("id");
            let last: i64 = r.get("last");
            let e = out.entry(id).or_insert(last);
            *e = (*e).max(last);
        }
        Ok(out.into_iter().collect())
    }

    /// Groups with `group` events after `seq`, each with its newest seq.
    pub async fn groups_after(&self, seq: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT group_id, MAX(seq) FROM events WHERE seq > ? AND type = 'group' GROUP BY group_id",
        )
        .bind(seq)
        .fetch_all(&self.reader)
        .await
        .ctx("read groups")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// A user's `identify` and `group` events, oldest first.
    pub async fn identity_events_of(&self, user: &str) -> Result<Vec<StoredEvent>> {
        self.select(
            "WHERE user_id = ? AND type IN ('identify', 'group') ORDER BY seq",
            user,
        )
        .await
    }

    /// A group's `group` events, oldest first.
    pub async fn group_events(&self, group: &str) -> Result<Vec<StoredEvent>> {
        self.select("WHERE group_id = ? AND type = 'group' ORDER BY seq", group)
            .await
    }

    /// The id a user id was last aliased to, if any.
    pub async fn alias_target(&self, previous: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT user_id FROM events WHERE type = 'alias' AND previous_id = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(previous)
        .fetch_optional(&self.reader)
        .await
        .ctx("read alias")?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Ids aliased into a user id.
    pub async fn aliased_from(&self, user: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT previous_id FROM events WHERE type = 'alias' AND user_id = ?",
        )
        .bind(user)
        .fetch_all(&self.reader)
        .await
        .ctx("read aliases")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The anonymous ids these users were seen with.
    pub async fn anonymous_ids_of(&self, users: &[String]) -> Result<Vec<String>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT DISTINCT anonymous_id FROM events WHERE anonymous_id IS NOT NULL AND user_id IN (",
        );
        let mut sep = q.separated(", ");
        for u in users {
            sep.push_bind(u.clone());
        }
        q.push(")");
        let rows = q
            .build()
            .fetch_all(&self.reader)
            .await
            .ctx("read anonymous ids")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn select(&self, tail: &'static str, bind: &str) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT seq, message_id, type, user_id, anonymous_id, group_id, previous_id, name, timestamp, received_at, body FROM events {tail}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bind)
            .fetch_all(&self.reader)
            .await
            .ctx("read events")?;
        Ok(rows.iter().map(row_event).collect())
    }

    /// The newest event's seq (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64> {
        sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.reader)
            .await
            .ctx("read the newest seq")?
            .try_get(0)
            .ctx("read the newest seq")
    }

    /// How many events the log holds.
    pub async fn count(&self) -> Result<i64> {
        sqlx::query("SELECT COUNT(*) FROM events")
            .fetch_one(&self.reader)
            .await
            .ctx("count events")?
            .try_get(0)
            .ctx("count events")
    }

    /// Forgets `messageId`s older than the de-duplication window.
    pub async fn purge_dedup(&self, now: DateTime<Utc>) -> Result<u64> {
        let before = now - chrono::TimeDelta::from_std(DEDUP_WINDOW).expect("7 days");
        let mut conn = sqlx::SqliteConnection::connect_with_options(&self.path).await?;
        let r = sqlx::query("DELETE FROM dedup WHERE received_at < ?")
            .bind(ts(&before))
            .execute(&mut conn)
            .await
            .ctx("purge old message ids")?;
        Ok(r.rows_affected())
    }
}

fn row_event(r: &sqlx::sqlite::SqliteRow) -> StoredEvent {
    let body: String = r.get("body");
    StoredEvent {
        seq: r.get("seq"),
        message_id: r.get("message_id"),
        kind: r.get("type"),
        user_id: r.get("user_id"),
        anonymous_id: r.get("anonymous_id"),
        group_id: r.get("group_id"),
        previous_id: r.get("previous_id"),
        name: r.get("name"),
        timestamp: parse_ts(r.get::<&str, _>("timestamp")),
        received_at: parse_ts(r.get::<&str, _>("received_at")),
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    }
}

/// Opening a one-off connection for rare writes beside the writer.
trait ConnectPath {
    async fn connect_with_options(path: &Path) -> Result<sqlx::SqliteConnection>;
}
impl ConnectPath for sqlx::SqliteConnection {
    async fn connect_with_options(path: &Path) -> Result<sqlx::SqliteConnection> {
        use sqlx::ConnectOptions;
        SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|source| LogError::Open {
                path: path.to_path_buf(),
                source,
            })
    }
}

async fn write_loop(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut n = jobs[0].events.len();
        while n < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.events.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let result = commit(&pool, &jobs).await;
        match result {
            Ok(mut outcomes) => {
                for job in jobs.into_iter().rev() {
                    let mine = outcomes.split_off(outcomes.len() - job.events.len());
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::error!("event log commit failed: {e}");
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(LogError::Query {
                        context: "commit events",
                        source: sqlx::Error::Protocol(msg.clone()),
                    }));
                }
            }
        }
    }
}

/// One transaction for every waiting job: claim message ids, store the new events.
async fn commit(pool: &SqlitePool, jobs: &[Job]) -> Result<Vec<Appended>> {
    let events: Vec<&Event> = jobs.iter().flat_map(|j| j.events.iter()).collect();
    let mut tx = pool.begin().await.ctx("begin")?;
    let mut claimed: HashSet<String> = HashSet::new();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT OR IGNORE INTO dedup (message_id, received_at) ");
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.message_id.as_str())
                .push_bind(ts(&e.received_at));
        });
        q.push(" RETURNING message_id");
        for row in q
            .build()
            .fetch_all(&mut *tx)
            .await
            .ctx("claim message ids")?
        {
            claimed.insert(row.get::<String, _>(0));
        }
    }
    // The first of several events with one new id is stored; the rest are duplicates.
    let mut outcomes = Vec::with_capacity(events.len());
    let mut fresh: Vec<&Event> = Vec::new();
    for e in &events {
        if claimed.remove(&e.message_id) {
            fresh.push(e);
            outcomes.push(Appended::Stored { seq: 0 });
        } else {
            outcomes.push(Appended::Duplicate);
        }
    }
    let mut seqs: Vec<i64> = Vec::with_capacity(fresh.len());
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO events (message_id, type, user_id, anonymous_id, group_id, previous_id, name, timestamp, received_at, body) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.message_id.as_str())
                .push_bind(e.kind.as_str())
                .push_bind(e.user_id.as_deref())
                .push_bind(e.anonymous_id.as_deref())
                .push_bind(e.group_id.as_deref())
                .push_bind(e.previous_id.as_deref())
                .push_bind(e.name.as_deref())
                .push_bind(ts(&e.timestamp))
                .push_bind(ts(&e.received_at))
                .push_bind(serde_json::Value::Object(e.body.clone()).to_string());
        });
        let r = q.build().execute(&mut *tx).await.ctx("store events")?;
        // One writer, one multi-row statement: the rows took consecutive seqs.
        let last = r.last_insert_rowid();
        let n = chunk.len() as i64;
        seqs.extend((last - n + 1)..=last);
    }
    tx.commit().await.ctx("commit events")?;
    let mut next = seqs.into_iter();
    for o in &mut outcomes {
        if let Appended::Stored { seq } = o {
            *seq = next.next().expect("one seq per stored event");
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, parse};
    use serde_json::json;

    fn ev(id: &str, user: &str) -> Event {
        parse(
            json!({"messageId": id, "userId": user, "event": "Viewed"}),
            Some(EventType::Track),
            None,
            Utc::now(),
            0,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn appends_are_durable_ordered_and_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let log = EventLog::open(&path).await.unwrap();
        let out = log
            .append(vec![ev("m1", "u1"), ev("m2", "u1"), ev("m1", "u1")])
            .await
            .unwrap();
        assert!(matches!(out[0], Appended::Stored { .. }));
        assert!(matches!(out[1], Appended::Stored { .. }));
        assert_eq!(out[2], Appended::Duplicate);
        let again = log
            .append(vec![ev("m2", "u2"), ev("m3", "u2")])
            .await
            .unwrap();
        assert_eq!(again[0], Appended::Duplicate);
        let Appended::Stored { seq } = again[1] else {
            panic!()
        };
        assert_eq!(seq, 3);
        assert_eq!(log.count().await.unwrap(), 3);
        let mine = log.events_of(&["u1".into()], &[], 10).await.unwrap();
        assert_eq!(mine.len(), 2);
        assert_eq!(log.after(1, 10).await.unwrap().len(), 2);
        drop(log);
        // Reopened: everything is still there and ids are still remembered.
        let log = EventLog::open(&path).await.unwrap();
        assert_eq!(log.count().await.unwrap(), 3);
        assert_eq!(
            log.append(vec![ev("m3", "u2")]).await.unwrap()[0],
            Appended::Duplicate
        );
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(EventLog::open(&dir.path().join("events.db")).await.unwrap());
        let mut tasks = Vec::new();
        for t in 0..20 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let events = (0..50).map(|i| ev(&format!("t{t}-{i}"), "u")).collect();
                log.append(events).await.unwrap()
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            for o in t.await.unwrap() {
                let Appended::Stored { seq } = o else {
                    panic!("no duplicates here")
                };
                seqs.push(seq);
            }
        }
        seqs.sort();
        seqs.dedup();
        assert_eq!(seqs.len(), 1000);
        assert_eq!(log.count().await.unwrap(), 1000);
    }
}
