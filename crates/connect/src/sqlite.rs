//! SQLite database files, opened read-only. The source's own indexes answer
//! lookups; all values are bound as parameters, and table and column names
//! from the configuration are quoted as identifiers.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use kith_model::CursorValue;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, Row as _, TypeInfo, ValueRef};
use tokio::sync::OnceCell;

use crate::mapping::CursorKind;
use crate::rows::{self, Row};
use crate::{
    Capabilities, Connector, Error, LookupCapability, LookupRequest, LookupResult, Result,
    ScanItem, ScanStream, SourceConfig,
};

/// Parameters per `IN (…)` list; SQLite allows 32,766 but smaller batches keep plans cheap.
const BATCH: usize = 500;

pub(crate) struct SqliteConnector {
    source: SourceConfig,
    path: PathBuf,
    pool: OnceCell<SqlitePool>,
}

impl SqliteConnector {
    pub(crate) fn new(source: SourceConfig, path: PathBuf) -> Self {
        SqliteConnector {
            source,
            path,
            pool: OnceCell::new(),
        }
    }

    async fn pool(&self) -> Result<&SqlitePool> {
        self.pool
            .get_or_try_init(|| async {
                if !self.path.exists() {
                    return Err(Error::Unreachable {
                        source_name: self.source.name.clone(),
                        message: format!("{} does not exist", self.path.display()),
                    });
                }
                let opts = SqliteConnectOptions::new()
                    .filename(&self.path)
                    .read_only(true)
                    .create_if_missing(false);
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(opts)
                    .await
                    .map_err(|e| Error::Unreachable {
                        source_name: self.source.name.clone(),
                        message: format!("cannot open {}: {e}", self.path.display()),
                    })
            })
            .await
    }

    fn query_error(&self, context: String) -> impl FnOnce(sqlx::Error) -> Error + '_ {
        move |error| Error::Query {
            source_name: self.source.name.clone(),
            context,
            error,
        }
    }
}

/// Quotes a configured name as an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A row as column → JSON value, by each value's own storage class.
fn to_row(row: &SqliteRow) -> Row {
    let mut out = Row::new();
    for (i, col) in row.columns().iter().enumerate() {
        let raw = match row.try_get_raw(i) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let v = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => row
                    .try_get_unchecked::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "REAL" => row
                    .try_get_unchecked::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "BLOB" => row
                    .try_get_unchecked::<Vec<u8>, _>(i)
                    .map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))
                    .unwrap_or(Value::Null),
                _ => row
                    .try_get_unchecked::<String, _>(i)
                    .map(Value::String)
                    .unwrap_or(Value::Null),
            }
        };
        out.insert(col.name().to_string(), v);
    }
    out
}

#[async_trait]
impl Connector for SqliteConnector {
    fn source(&self) -> &SourceConfig {
        &self.source
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup: LookupCapability::Indexed,
            incremental_scan: true,
        }
    }

    async fn scan(&self, since: Option<CursorValue>) -> Result<ScanStream> {
        let pool = self.pool().await?.clone();
        let id = &self.source.identity;
        let mut sql = format!("SELECT * FROM {}", ident(&id.from));
        let cursor = id.cursor.clone();
        if let (Some(c), Some(_)) = (&cursor, &since) {
            let col = ident(&c.column);
            // SQLite keeps times as text or as Unix seconds; compare each
            // storage class with the bound value of its own kind.
            if c.kind == CursorKind::Time {
                sql.push_str(&format!(
                    " WHERE (typeof({col}) = 'text' AND {col} >= ?) \
                     OR (typeof({col}) IN ('integer', 'real') AND {col} >= ?) \
                     OR typeof({col}) NOT IN ('text', 'integer', 'real')"
                ));
            } else {
                sql.push_str(&format!(" WHERE {col} >= ?"));
            }
        }
        if let Some(c) = &cursor {
            sql.push_str(&format!(" ORDER BY {}", ident(&c.column)));
        }
        let source = self.source.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ScanItem>>(1024);
        tokio::spawn(async move {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            if let (Some(c), Some(s)) = (&cursor, &since) {
                q = match (c.kind, s) {
                    // Stored times may be text in any of several shapes; compare on
                    // the date alone (a superset) and filter exactly below.
                    (CursorKind::Time, CursorValue::Time(t)) => {
                        q.bind(t.format("%Y-%m-%d").to_string()).bind(t.timestamp())
                    }
                    (_, CursorValue::Int(i)) => q.bind(*i),
                    (CursorKind::Int, CursorValue::Time(t)) => q.bind(t.timestamp()),
                };
            }
            let mut rows = q.fetch(&pool);
            let now = Utc::now();
            while let Some(next) = rows.next().await {
                let item = match next {
                    Err(error) => Err(Error::Query {
                        source_name: source.name.clone(),
                        context: format!("scan of {}", source.identity.from),
                        error,
                    }),
                    Ok(r) => match crate::sql_common::scan_item(
                        &source,
                        since.as_ref(),
                        &to_row(&r),
                        now,
                    ) {
                        Some(item) => Ok(item),
                        None => continue,
                    },
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(crate::channel_stream(rx))
    }

    async fn lookup(&self, request: &LookupRequest) -> Result<LookupResult> {
        let pool = self.pool().await?;
        let fetched_at = Utc::now();
        let mut result = LookupResult::default();
        for (set_name, set) in &self.source.facts {
            if !request.fact_sets.is_empty() && !request.fact_sets.contains(set_name) {
                continue;
            }
            let mut wanted: std::collections::HashMap<String, Vec<String>> = Default::default();
            // E-mail joins ignore case, as file sources do; the column is
            // folded in SQL (at the cost of its index) so `A@X.com` matches.
            let by_email = set.on == "email";
            let fold = |v: &str| {
                if by_email {
                    v.trim().to_lowercase()
                } else {
                    v.to_string()
                }
            };
            for rec in &request.records {
                for v in SourceConfig::join_values(set, rec) {
                    let keys = wanted.entry(fold(&v)).or_default();
                    if !keys.contains(&rec.record.key) {
                        keys.push(rec.record.key.clone());
                    }
                }
            }
            let values: Vec<&String> = wanted.keys().collect();
            for chunk in values.chunks(BATCH) {
                let placeholders = vec!["?"; chunk.len()].join(", ");
                let join = if by_email {
                    format!("lower(trim({}))", ident(&set.join))
                } else {
                    ident(&set.join)
                };
                let mut sql = format!(
                    "SELECT * FROM {} WHERE {join} IN ({placeholders})",
                    ident(&set.from),
                );
                if let (Some(date), Some(_)) = (&set.date, request.since) {
                    sql.push_str(&format!(" AND ({0} IS NULL OR {0} >= ?)", ident(date)));
                }
                if let Some(date) = &set.date {
                    sql.push_str(&format!(" ORDER BY {} DESC", ident(date)));
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for v in chunk {
                    q = q.bind(v.as_str());
                }
                if let (Some(_), Some(since)) = (&set.date, request.since) {
                    q = q.bind(since.format("%Y-%m-%d").to_string());
                }
                let found = q
                    .fetch_all(pool)
                    .await
                    .map_err(self.query_error(format!("lookup of fact set {set_name}")))?;
                for r in &found {
                    let row = to_row(r);
                    let Some(v) = rows::text(row.get(&set.join)) else {
                        continue;
                    };
                    for key in wanted.get(&fold(&v)).into_iter().flatten() {
                        result.facts.extend(rows::facts(
                            &self.source,
                            set_name,
                            set,
                            &row,
                            key,
                            fetched_at,
                        ));
                    }
                }
            }
        }
        rows::apply_since_limit(&mut result.facts, request.since, request.limit);
        Ok(result)
    }

    async fn check(&self) -> Result<()> {
        let pool = self.pool().await?;
        sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map_err(self.query_error("health check".into()))?;
        Ok(())
    }
}
