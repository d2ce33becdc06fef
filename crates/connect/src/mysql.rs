//! MySQL and MariaDB sources. Values are read by each column's type (exact
//! decimals stay exact, times become RFC 3339); lookups send join values as
//! bound `IN (?, …)` lists per batch; the per-query timeout is the server's
//! own (`max_statement_time` on MariaDB, `max_execution_time` on MySQL).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Utc};
use futures::StreamExt;
use kith_model::CursorValue;
use serde_json::Value;
use sqlx::mysql::{
    MySql, MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions, MySqlRow,
    MySqlSslMode,
};
use sqlx::pool::PoolConnection;
use sqlx::{Column as _, Connection as _, Row as _, TypeInfo as _, ValueRef as _};

use crate::rows::{self, Row};
use crate::server_sql::{SqlServerConfig, TlsMode};
use crate::sql_common::{
    self, BATCH, ColumnClass, Wanted, check_url, client_timeout, cursor_bound, decimal_json,
    key_fits, time_bound, use_error, within,
};
use crate::{
    Capabilities, Connector, Error, LookupCapability, LookupRequest, LookupResult, Result,
    ScanItem, ScanStream, SourceConfig,
};

/// How MySQL is given a UTC time to compare with (the session's time zone is UTC).
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// The rank column a limited lookup adds; removed before rows become facts.
const RANK: &str = "kith__rank";

pub(crate) fn build(source: &SourceConfig, config: &SqlServerConfig) -> Result<Arc<dyn Connector>> {
    check_url(source, config, &["mysql", "mariadb"])?;
    let password = sql_common::password(source, config)?;
    let url = match config.url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => config.url.clone(),
    };
    let mut options = MySqlConnectOptions::from_str(&url).map_err(|e| Error::Config {
        source_name: source.name.clone(),
        message: format!("connection.url {}: {e}", config.redacted_url()),
    })?;
    if let Some(p) = &password {
        options = options.password(p);
    }
    options = options.ssl_mode(match config.tls {
        TlsMode::Disable => MySqlSslMode::Disabled,
        TlsMode::Prefer => MySqlSslMode::Preferred,
        TlsMode::Require => MySqlSslMode::Required,
        TlsMode::VerifyCa => MySqlSslMode::VerifyCa,
        TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
    });
    if let Some(ca) = &config.ca_file {
        options = options.ssl_ca(ca);
    }
    // TIMESTAMP columns are read in the session's zone; UTC makes them (and
    // the bounds kith sends) mean what they say.
    options = options.timezone(Some("+00:00".to_string()));
    Ok(Arc::new(MysqlConnector {
        source: source.clone(),
        config: config.clone(),
        options,
        pool: OnceLock::new(),
        probe: sql_common::Probe::default(),
        relations: Mutex::new(HashMap::new()),
    }))
}

pub(crate) struct MysqlConnector {
    source: SourceConfig,
    config: SqlServerConfig,
    options: MySqlConnectOptions,
    /// Made on first use: building a pool needs the runtime, and a source
    /// that is down must not stop kith from starting.
    pool: OnceLock<MySqlPool>,
    /// The one attempt that says why a pool with no connection cannot get one.
    probe: sql_common::Probe,
    /// Column types by table, read once from `information_schema`.
    relations: Mutex<HashMap<String, Arc<Relation>>>,
}

/// The columns of a table or view; empty when the catalog did not know it
/// (the query then fails with the server's own words).
#[derive(Debug, Default)]
struct Relation {
    columns: Vec<(String, ColumnClass)>,
}

impl Relation {
    fn class(&self, name: &str) -> Option<ColumnClass> {
        self.columns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| *c)
    }
}

fn class_of(data_type: &str) -> ColumnClass {
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            ColumnClass::Integer
        }
        "decimal" | "float" | "double" => ColumnClass::Number,
        "date" | "datetime" | "timestamp" => ColumnClass::Time,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            ColumnClass::Text
        }
        "uuid" => ColumnClass::Uuid,
        _ => ColumnClass::Other,
    }
}

/// Quotes a configured name as an identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes `db.table` part by part.
fn relation_ident(name: &str) -> String {
    sql_common::name_parts(name)
        .into_iter()
        .map(ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// Sets the session's statement timeout: MariaDB's variable first (seconds),
/// then MySQL's (milliseconds, SELECTs only). Zero lifts it.
async fn set_statement_timeout(conn: &mut MySqlConnection, limit: Duration) -> sqlx::Result<()> {
    let mariadb = format!(
        "SET SESSION max_statement_time = {:.3}",
        limit.as_secs_f64()
    );
    if sqlx::query(sqlx::AssertSqlSafe(mariadb))
        .execute(&mut *conn)
        .await
        .is_ok()
    {
        return Ok(());
    }
    let mysql = format!("SET SESSION max_execution_time = {}", limit.as_millis());
    sqlx::query(sqlx::AssertSqlSafe(mysql))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// A row as column → JSON value, by each column's type.
fn to_row(row: &MySqlRow) -> Row {
    let mut out = Row::new();
    for (i, col) in row.columns().iter().enumerate() {
        let v = match row.try_get_raw(i) {
            Ok(raw) if raw.is_null() => Value::Null,
            Ok(raw) => {
                let ty = raw.type_info().name().to_string();
                value(row, i, &ty)
            }
            Err(_) => Value::Null,
        };
        out.insert(col.name().to_string(), v);
    }
    out
}

fn value(row: &MySqlRow, i: usize, ty: &str) -> Value {
    let typed = match ty {
        // TINYINT(1) is how MySQL spells a boolean, but it can hold other small numbers.
        "BOOLEAN" => row.try_get_unchecked::<i64, _>(i).ok().map(|n| match n {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            n => Value::from(n),
        }),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
            row.try_get_unchecked::<i64, _>(i).ok().map(Value::from)
        }
        t if t.ends_with("UNSIGNED") || t == "BIT" => {
            row.try_get_unchecked::<u64, _>(i).ok().map(Value::from)
        }
        // Through its shortest text, so 0.1 stays 0.1 rather than 0.10000000149.
        "FLOAT" => row
            .try_get_unchecked::<f32, _>(i)
            .ok()
            .and_then(|f| f.to_string().parse::<f64>().ok())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "DOUBLE" => row
            .try_get_unchecked::<f64, _>(i)
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "DECIMAL" => row
            .try_get_unchecked::<String, _>(i)
            .ok()
            .map(|s| decimal_json(&s)),
        "DATETIME" | "TIMESTAMP" => row
            .try_get_unchecked::<NaiveDateTime, _>(i)
            .ok()
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())),
        "DATE" => row
            .try_get_unchecked::<NaiveDate, _>(i)
            .ok()
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string())),
        "TIME" => row
            .try_get_unchecked::<NaiveTime, _>(i)
            .ok()
            .map(|t| Value::String(t.format("%H:%M:%S%.f").to_string())),
        "JSON" => row
            .try_get_unchecked::<String, _>(i)
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
        _ => None,
    };
    // Text, blobs, and anything a typed read refused (a zero date, a TIME
    // beyond a day): the bytes as text, so the value is shown rather than lost.
    typed
        .or_else(|| {
            row.try_get_unchecked::<String, _>(i)
                .ok()
                .map(Value::String)
        })
        .or_else(|| {
            row.try_get_unchecked::<Vec<u8>, _>(i)
                .ok()
                .map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))
        })
        .unwrap_or(Value::Null)
}

impl MysqlConnector {
    fn pool(&self) -> &MySqlPool {
        self.pool.get_or_init(|| {
            let limit = self.config.query_timeout;
            MySqlPoolOptions::new()
                .max_connections(self.config.max_connections)
                .acquire_timeout(self.config.connect_timeout)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if let Err(e) = set_statement_timeout(conn, limit).await {
                            // Queries are still bounded by the client-side limit.
                            tracing::warn!(
                                error = %e,
                                "the server takes neither max_statement_time nor max_execution_time"
                            );
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(self.options.clone())
        })
    }

    /// A connection from the pool. With none open, one direct attempt comes
    /// first (shared by the callers asking meanwhile, see [`sql_common::Probe`]):
    /// the pool retries a refused connection until its timeout and then
    /// reports only that it timed out, while the attempt says why.
    async fn acquire(&self, context: &str) -> Result<PoolConnection<MySql>> {
        let pool = self.pool();
        if pool.size() == 0 {
            self.probe
                .run(
                    &self.source,
                    &self.config,
                    || pool.size() > 0,
                    || MySqlConnection::connect_with(&self.options),
                    std::convert::identity,
                )
                .await?;
        }
        pool.acquire()
            .await
            .map_err(|e| use_error(&self.source, &self.config, context, e))
    }

    async fn relation(
        &self,
        conn: &mut MySqlConnection,
        name: &str,
        context: &str,
    ) -> Result<Arc<Relation>> {
        if let Some(r) = self.relations.lock().expect("not poisoned").get(name) {
            return Ok(r.clone());
        }
        let parts = sql_common::name_parts(name);
        let (schema, table) = match parts.as_slice() {
            [schema, table] => (Some(schema.to_string()), table.to_string()),
            _ => (None, name.to_string()),
        };
        let found = sqlx::query(
            "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| use_error(&self.source, &self.config, context, e))?;
        let rel = Arc::new(Relation {
            columns: found
                .iter()
                .filter_map(|r| {
                    let row = to_row(r);
                    let name = rows::text(row.get("name"))?;
                    let ty = rows::text(row.get("type")).unwrap_or_default();
                    Some((name, class_of(&ty)))
                })
                .collect(),
        });
        if !rel.columns.is_empty() {
            self.relations
                .lock()
                .expect("not poisoned")
                .insert(name.to_string(), rel.clone());
        }
        Ok(rel)
    }
}

#[async_trait]
impl Connector for MysqlConnector {
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
        let id = &self.source.identity;
        let context = format!("scan of {}", id.from);
        let mut conn = self.acquire(&context).await?;
        // A scan runs as long as the table is large and its reader slow, so the
        // per-query timeout (meant for lookups) is lifted for it; the connection
        // is closed afterwards rather than returned with the change.
        conn.close_on_drop();
        let _ = set_statement_timeout(&mut conn, Duration::ZERO).await;
        let rel = self.relation(&mut conn, &id.from, &context).await?;
        let mut sql = format!("SELECT t.* FROM {} AS t", relation_ident(&id.from));
        let mut bound = None;
        if let Some(c) = &id.cursor {
            if let (Some(s), Some(class)) = (&since, rel.class(&c.column))
                && let Some(b) = cursor_bound(c.kind, s, class, TIME_FORMAT)
            {
                sql.push_str(&format!(" WHERE t.{} >= ?", ident(&c.column)));
                bound = Some(b);
            }
            sql.push_str(&format!(" ORDER BY t.{}", ident(&c.column)));
        }
        let source = self.source.clone();
        let config = self.config.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ScanItem>>(1024);
        tokio::spawn(async move {
            let mut conn = conn;
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(b) = bound {
                q = q.bind(b);
            }
            let mut found = q.fetch(&mut *conn);
            let now = Utc::now();
            while let Some(next) = found.next().await {
                let item = match next {
                    Err(e) => Err(use_error(&source, &config, &context, e)),
                    Ok(r) => match sql_common::scan_item(&source, since.as_ref(), &to_row(&r), now)
                    {
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
        let fetched_at = Utc::now();
        let mut result = LookupResult::default();
        let mut conn: Option<PoolConnection<MySql>> = None;
        for (set_name, set) in &self.source.facts {
            if !request.fact_sets.is_empty() && !request.fact_sets.contains(set_name) {
                continue;
            }
            let wanted = Wanted::new(set, &request.records);
            if wanted.values().is_empty() {
                continue;
            }
            let context = format!("lookup of fact set {set_name}");
            let conn = match &mut conn {
                Some(c) => c,
                None => conn.insert(self.acquire(&context).await?),
            };
            let rel = self.relation(conn, &set.from, &context).await?;
            let join_class = match rel.class(&set.join) {
                Some(c) => c,
                None if rel.columns.is_empty() => ColumnClass::Other,
                None => {
                    return Err(Error::Mapping {
                        source_name: self.source.name.clone(),
                        message: format!(
                            "fact set {set_name}: {} has no column {:?}",
                            set.from, set.join
                        ),
                    });
                }
            };
            let values: Vec<&String> = wanted
                .values()
                .iter()
                .filter(|v| key_fits(join_class, v))
                .collect();
            let from = relation_ident(&set.from);
            let join = ident(&set.join);
            let mut since_filter = String::new();
            let mut since_bound = None;
            let mut order = String::new();
            if let Some(date) = &set.date {
                if let Some(since) = request.since
                    && let Some(b) = rel
                        .class(date)
                        .and_then(|class| time_bound(since, class, TIME_FORMAT))
                {
                    since_filter = format!(" AND (t.{0} IS NULL OR t.{0} >= ?)", ident(date));
                    since_bound = Some(b);
                }
                // MySQL sorts NULL lowest, so undated facts come last, as in `apply_since_limit`.
                order = format!("ORDER BY t.{} DESC", ident(date));
            }
            for chunk in values.chunks(BATCH) {
                let placeholders = vec!["?"; chunk.len()].join(", ");
                let filter = format!("t.{join} IN ({placeholders}){since_filter}");
                let sql = match request.limit {
                    // The newest `limit` rows per join value are a superset of the
                    // newest `limit` per record, which `apply_since_limit` then keeps.
                    Some(_) => format!(
                        "SELECT x.* FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.{join} {order}) AS {RANK} \
                         FROM {from} AS t WHERE {filter}) AS x WHERE x.{RANK} <= ?"
                    ),
                    None => format!("SELECT t.* FROM {from} AS t WHERE {filter} {order}"),
                };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for v in chunk {
                    q = q.bind(v.as_str());
                }
                if let Some(b) = &since_bound {
                    q = q.bind(b.clone());
                }
                if let Some(limit) = request.limit {
                    q = q.bind(i64::try_from(limit).unwrap_or(i64::MAX));
                }
                let found = match within(self.config.query_timeout, q.fetch_all(&mut **conn)).await
                {
                    Ok(found) => found,
                    Err(Some(e)) => return Err(use_error(&self.source, &self.config, &context, e)),
                    Err(None) => {
                        // The query may still be running on this connection.
                        conn.close_on_drop();
                        return Err(client_timeout(&self.source, &self.config, &context));
                    }
                };
                for r in &found {
                    let mut row = to_row(r);
                    if request.limit.is_some() {
                        row.shift_remove(RANK);
                    }
                    let Some(v) = rows::text(row.get(&set.join)) else {
                        continue;
                    };
                    for key in wanted.keys_for(&v) {
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
        let context = "health check";
        let mut conn = self.acquire(context).await?;
        match within(
            self.config.query_timeout,
            sqlx::query("SELECT 1").execute(&mut *conn),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(Some(e)) => Err(use_error(&self.source, &self.config, context, e)),
            Err(None) => {
                conn.close_on_drop();
                Err(client_timeout(&self.source, &self.config, context))
            }
        }
    }
}
