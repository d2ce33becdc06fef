//! Versioned schema migrations, embedded in the binary.
//!
//! Each migration runs in its own transaction together with the row that
//! records it in `schema_version`, so a failed migration leaves the store at
//! the previous version, never half-migrated. Migrations are append-only:
//! once released, a file is never edited; a change is a new file.

use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::error::QueryContext;
use crate::{Error, Result};

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "review",
        sql: include_str!("../../migrations/sqlite/0002_review.sql"),
    },
    Migration {
        version: 3,
        name: "access",
        sql: include_str!("../../migrations/sqlite/0003_access.sql"),
    },
    Migration {
        version: 4,
        name: "changes",
        sql: include_str!("../../migrations/sqlite/0004_changes.sql"),
    },
];

/// The schema version this binary creates and understands.
pub(crate) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

pub(crate) async fn current_version(conn: &mut SqliteConnection) -> Result<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *conn)
        .await
        .ctx("read schema version")?;
    row.try_get(0).ctx("read schema version")
}

/// Brings the store to [`LATEST`], refusing a store written by a newer kith.
pub(crate) async fn migrate(pool: &SqlitePool, target: &str) -> Result<i64> {
    sqlx::query(BOOTSTRAP)
        .execute(pool)
        .await
        .ctx("create schema_version")?;
    let found = {
        let mut conn = pool.acquire().await.ctx("acquire connection")?;
        current_version(&mut conn).await?
    };
    check_not_newer(found, target)?;
    let mut version = found;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        // IMMEDIATE takes the write lock before the version is read again, so
        // two processes opening the same new file cannot both apply a migration.
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("begin migration")?;
        let now = current_version(&mut tx).await?;
        check_not_newer(now, target)?;
        if now >= m.version {
            tx.rollback().await.ctx("end migration")?;
            version = now;
            continue;
        }
        let fail = |source| Error::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(super::codec::ts(chrono::Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        version = m.version;
        tracing::info!(target: "kith_store", store = target, version = m.version, name = m.name, "applied migration");
    }
    Ok(version)
}

fn check_not_newer(found: i64, target: &str) -> Result<()> {
    if found > LATEST {
        return Err(Error::TooNew {
            target: target.to_string(),
            found,
            supported: LATEST,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migration {}", m.name);
            assert!(!m.sql.trim().is_empty());
        }
    }
}
