//! PostgreSQL sources. Columns of the common simple types (integers, double
//! precision, boolean, text) are read as the values they are; numeric as
//! text, so no digit is lost; every other type — uuid, arrays, json,
//! timestamps, types of extensions — as the server's own `to_json` of it, so
//! each arrives readable without a decoder per type. Lookups send join
//! values as one bound array per batch, cast to the join column's type as
//! the server's catalog names it, so the column's index answers them.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use kith_model::CursorValue;
use serde_json::Value;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions, PgRow, PgSslMode,
    Postgres,
};
use sqlx::{Connection as _, Row as _, ValueRef as _};

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

/// How PostgreSQL is given a UTC time to compare with.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub(crate) fn build(source: &SourceConfig, config: &SqlServerConfig) -> Result<Arc<dyn Connector>> {
    check_url(source, config, &["postgres", "postgresql"])?;
    let password = sql_common::password(source, config)?;
    let mut options = PgConnectOptions::from_str(&config.url).map_err(|e| Error::Config {
        source_name: source.name.clone(),
        message: format!("connection.url {}: {e}", config.redacted_url()),
    })?;
    if let Some(p) = &password {
        options = options.password(p);
    }
    options = options.ssl_mode(match config.tls {
        TlsMode::Disable => PgSslMode::Disable,
        TlsMode::Prefer => PgSslMode::Prefer,
        TlsMode::Require => PgSslMode::Require,
        TlsMode::VerifyCa => PgSslMode::VerifyCa,
        TlsMode::VerifyFull => PgSslMode::VerifyFull,
    });
    if let Some(ca) = &config.ca_file {
        options = options.ssl_root_cert(ca);
    }
    options = options
        .application_name("kith")
        .options([("statement_timeout", config.query_timeout.as_millis().max(1))]);
    Ok(Arc::new(PostgresConnector {
        source: source.clone(),
        config: config.clone(),
        options,
        pool: OnceLock::new(),
        probe: sql_common::Probe::default(),
        relations: Mutex::new(HashMap::new()),
    }))
}

pub(crate) struct PostgresConnector {
    source: SourceConfig,
    config: SqlServerConfig,
    options: PgConnectOptions,
    /// Made on first use: building a pool needs the runtime, and a source
    /// that is down must not stop kith from starting.
    pool: OnceLock<PgPool>,
    /// The one attempt that says why a pool with no connection cannot get one.
    probe: sql_common::Probe,
    /// Column types by relation, read once from the catalog.
    relations: Mutex<HashMap<String, Arc<Relation>>>,
}

/// The columns of a table or view, as the catalog describes them.
#[derive(Debug)]
struct Relation {
    columns: Vec<PgColumn>,
}

#[derive(Debug)]
struct PgColumn {
    name: String,
    /// The type as `format_type` writes it, usable in a cast.
    sql_type: String,
    class: ColumnClass,
    read: Read,
}

/// How a column's value is selected and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Int2,
    Int4,
    Int8,
    Float8,
    Bool,
    Text,
    /// As text: a JSON number could round it.
    Numeric,
    /// As the text of the server's `to_json`.
    Json,
}

impl Read {
    fn of(base_type: &str) -> Read {
        match base_type {
            "int2" => Read::Int2,
            "int4" => Read::Int4,
            "int8" => Read::Int8,
            "float8" => Read::Float8,
            "bool" => Read::Bool,
            "text" | "varchar" | "bpchar" | "name" => Read::Text,
            "numeric" => Read::Numeric,
            _ => Read::Json,
        }
    }
}

impl Relation {
    fn column(&self, name: &str) -> Option<&PgColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The select list: every column in the catalog's order, each in the
    /// form `decode` reads it.
    fn select_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                let col = format!("t.{}", ident(&c.name));
                match c.read {
                    Read::Numeric => format!("{col}::text"),
                    Read::Json => format!("to_json({col})::text"),
                    _ => col,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn class_of(base_type: &str) -> ColumnClass {
    match base_type {
        "int2" | "int4" | "int8" => ColumnClass::Integer,
        "numeric" | "float4" | "float8" => ColumnClass::Number,
        "timestamptz" | "timestamp" | "date" => ColumnClass::Time,
        "text" | "varchar" | "bpchar" | "name" | "citext" => ColumnClass::Text,
        "uuid" => ColumnClass::Uuid,
        _ => ColumnClass::Other,
    }
}

/// Quotes a configured name as an identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `schema.table` part by part.
fn relation_ident(name: &str) -> String {
    sql_common::name_parts(name)
        .into_iter()
        .map(ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// A server error as PostgreSQL's own clients show it: message, detail and
/// hint. sqlx's own text ends with the line of PostgreSQL's C source that
/// raised it ("at line 433"), which reads as if it pointed into the user's
/// configuration.
#[derive(Debug)]
struct ServerError {
    text: String,
    message: String,
    code: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerError {}

impl DatabaseError for ServerError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed(&self.code))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

fn tidy(error: sqlx::Error) -> sqlx::Error {
    let sqlx::Error::Database(db) = &error else {
        return error;
    };
    let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() else {
        return error;
    };
    let mut text = pg.message().to_string();
    if let Some(detail) = pg.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    if let Some(hint) = pg.hint() {
        text.push_str(&format!(" (hint: {hint})"));
    }
    sqlx::Error::Database(Box::new(ServerError {
        text,
        message: pg.message().to_string(),
        code: pg.code().to_string(),
    }))
}

/// A row selected by `Relation::select_list`, as named values. Domains are
/// read as their base type (their wire format), hence `unchecked`.
fn decode(row: &PgRow, rel: &Relation) -> std::result::Result<Row, String> {
    let mut out = Row::new();
    for (i, c) in rel.columns.iter().enumerate() {
        let unreadable = |e: sqlx::Error| format!("column {:?} could not be read: {e}", c.name);
        let raw = row.try_get_raw(i).map_err(unreadable)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match c.read {
                Read::Int2 => Value::from(row.try_get_unchecked::<i16, _>(i).map_err(unreadable)?),
                Read::Int4 => Value::from(row.try_get_unchecked::<i32, _>(i).map_err(unreadable)?),
                Read::Int8 => Value::from(row.try_get_unchecked::<i64, _>(i).map_err(unreadable)?),
                Read::Float8 => float_json(row.try_get_unchecked::<f64, _>(i).map_err(unreadable)?),
                Read::Bool => Value::Bool(row.try_get_unchecked::<bool, _>(i).map_err(unreadable)?),
                Read::Text => {
                    Value::String(row.try_get_unchecked::<String, _>(i).map_err(unreadable)?)
                }
                Read::Numeric => {
                    decimal_json(&row.try_get_unchecked::<String, _>(i).map_err(unreadable)?)
                }
                Read::Json => {
                    let text = row.try_get_unchecked::<String, _>(i).map_err(unreadable)?;
                    serde_json::from_str(&text)
                        .map_err(|e| format!("column {:?} could not be read: {e}", c.name))?
                }
            }
        };
        out.insert(c.name.clone(), value);
    }
    Ok(out)
}

/// A double as `to_json` gives it: a number, or for the values JSON has no
/// number for, PostgreSQL's spelling of them as a string.
fn float_json(f: f64) -> Value {
    match serde_json::Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

impl PostgresConnector {
    fn pool(&self) -> &PgPool {
        self.pool.get_or_init(|| {
            PgPoolOptions::new()
                .max_connections(self.config.max_connections)
                .acquire_timeout(self.config.connect_timeout)
                .connect_lazy_with(self.options.clone())
        })
    }

    /// A connection from the pool. With none open, one direct attempt comes
    /// first (shared by the callers asking meanwhile, see [`sql_common::Probe`]):
    /// the pool retries a refused connection until its timeout and then
    /// reports only that it timed out, while the attempt says why.
    async fn acquire(&self, context: &str) -> Result<PoolConnection<Postgres>> {
        let pool = self.pool();
        if pool.size() == 0 {
            self.probe
                .run(
                    &self.source,
                    &self.config,
                    || pool.size() > 0,
                    || PgConnection::connect_with(&self.options),
                    tidy,
                )
                .await?;
        }
        pool.acquire()
            .await
            .map_err(|e| use_error(&self.source, &self.config, context, tidy(e)))
    }

    async fn relation(
        &self,
        conn: &mut PgConnection,
        name: &str,
        context: &str,
    ) -> Result<Arc<Relation>> {
        if let Some(r) = self.relations.lock().expect("not poisoned").get(name) {
            return Ok(r.clone());
        }
        let found: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT a.attname::text, format_type(a.atttypid, NULL), \
                    COALESCE(b.typname, t.typname)::text \
             FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype \
             WHERE a.attrelid = CAST($1 AS regclass) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(relation_ident(name))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| use_error(&self.source, &self.config, context, tidy(e)))?;
        let rel = Arc::new(Relation {
            columns: found
                .into_iter()
                .map(|(name, sql_type, base)| PgColumn {
                    name,
                    sql_type,
                    class: class_of(&base),
                    read: Read::of(&base),
                })
                .collect(),
        });
        self.relations
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), rel.clone());
        Ok(rel)
    }
}

#[async_trait]
impl Connector for PostgresConnector {
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
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *conn)
            .await
            .map_err(|e| use_error(&self.source, &self.config, &context, tidy(e)))?;
        let rel = self.relation(&mut conn, &id.from, &context).await?;
        let mut sql = format!(
            "SELECT {} FROM {} AS t",
            rel.select_list(),
            relation_ident(&id.from)
        );
        let mut bound = None;
        if let Some(c) = &id.cursor {
            if let (Some(s), Some(col)) = (&since, rel.column(&c.column))
                && let Some(b) = cursor_bound(c.kind, s, col.class, TIME_FORMAT)
            {
                sql.push_str(&format!(
                    " WHERE t.{} >= CAST($1 AS {})",
                    ident(&c.column),
                    col.sql_type
                ));
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
                    Err(e) => Err(use_error(&source, &config, &context, tidy(e))),
                    Ok(r) => match decode(&r, &rel) {
                        Ok(row) => {
                            match sql_common::scan_item(&source, since.as_ref(), &row, now) {
                                Some(item) => Ok(item),
                                None => continue,
                            }
                        }
                        Err(reason) => Ok(sql_common::quarantined(&source, None, reason, now)),
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
        let mut conn: Option<PoolConnection<Postgres>> = None;
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
            let join = rel.column(&set.join).ok_or_else(|| Error::Mapping {
                source_name: self.source.name.clone(),
                message: format!(
                    "fact set {set_name}: {} has no column {:?}",
                    set.from, set.join
                ),
            })?;
            let values: Vec<String> = wanted
                .values()
                .iter()
                .filter(|v| key_fits(join.class, v))
                .cloned()
                .collect();
            if values.is_empty() {
                continue;
            }
            // `$1` is the join value, or for a batch an array of them. Most
            // parties have one record per source, and PostgreSQL answers
            // `= ANY(array)` with a costlier index scan than `=` (about 40 µs
            // more server CPU per query here), so a single value gets its own
            // statement; both texts stay fixed, so each is prepared once.
            let join_filter = |single: bool| {
                if single {
                    format!("t.{} = CAST($1 AS {})", ident(&set.join), join.sql_type)
                } else {
                    format!(
                        "t.{} = ANY(CAST($1 AS {}[]))",
                        ident(&set.join),
                        join.sql_type
                    )
                }
            };
            let mut filter = String::new();
            let mut next_param = 2;
            let mut since_bound = None;
            let mut order = None;
            if let Some(date) = &set.date {
                let col = rel.column(date);
                if let (Some(since), Some(col)) = (request.since, col)
                    && let Some(b) = time_bound(since, col.class, TIME_FORMAT)
                {
                    filter.push_str(&format!(
                        " AND (t.{0} IS NULL OR t.{0} >= CAST(${next_param} AS {1}))",
                        ident(date),
                        col.sql_type
                    ));
                    next_param += 1;
                    since_bound = Some(b);
                }
                order = Some(format!("t.{} DESC NULLS LAST", ident(date)));
            }
            let from = relation_ident(&set.from);
            let select = rel.select_list();
            let sql = |single: bool| match request.limit {
                // The newest `limit` rows per join value are a superset of the
                // newest `limit` per record, which `apply_since_limit` then keeps.
                Some(_) => format!(
                    "SELECT x.* FROM (SELECT {select}, row_number() OVER (PARTITION BY t.{} {}) AS kith_rank \
                     FROM {from} AS t WHERE {}{filter}) AS x WHERE x.kith_rank <= ${next_param}",
                    ident(&set.join),
                    order
                        .as_ref()
                        .map(|o| format!("ORDER BY {o}"))
                        .unwrap_or_default(),
                    join_filter(single)
                ),
                None => format!(
                    "SELECT {select} FROM {from} AS t WHERE {}{filter}{}",
                    join_filter(single),
                    order
                        .as_ref()
                        .map(|o| format!(" ORDER BY {o}"))
                        .unwrap_or_default()
                ),
            };
            for chunk in values.chunks(BATCH) {
                let mut q = match chunk {
                    [one] => sqlx::query(sqlx::AssertSqlSafe(sql(true))).bind(one.clone()),
                    _ => sqlx::query(sqlx::AssertSqlSafe(sql(false))).bind(chunk.to_vec()),
                };
                if let Some(b) = &since_bound {
                    q = q.bind(b.clone());
                }
                if let Some(limit) = request.limit {
                    q = q.bind(i64::try_from(limit).unwrap_or(i64::MAX));
                }
                let found = match within(self.config.query_timeout, q.fetch_all(&mut **conn)).await
                {
                    Ok(found) => found,
                    Err(Some(e)) => {
                        return Err(use_error(&self.source, &self.config, &context, tidy(e)));
                    }
                    Err(None) => {
                        // The query may still be running on this connection.
                        conn.close_on_drop();
                        return Err(client_timeout(&self.source, &self.config, &context));
                    }
                };
                for r in &found {
                    let row = match decode(r, &rel) {
                        Ok(row) => row,
                        Err(reason) => {
                            result
                                .problems
                                .push(format!("fact set {set_name}: {reason}"));
                            continue;
                        }
                    };
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
            Err(Some(e)) => Err(use_error(&self.source, &self.config, context, tidy(e))),
            Err(None) => {
                conn.close_on_drop();
                Err(client_timeout(&self.source, &self.config, context))
            }
        }
    }
}
