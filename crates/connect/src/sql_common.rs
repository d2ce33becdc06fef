//! What the PostgreSQL and MySQL/MariaDB connectors share beyond their
//! configuration: reading the password, deciding which filters the server
//! can apply, matching found rows back to records, and telling "cannot
//! reach the server" apart from "the query failed".

use std::collections::HashMap;
use std::time::Duration;

use kith_model::{CursorValue, IdentityRecord, Quarantined, Timestamp};
use serde_json::Value;

use crate::mapping::{CursorKind, FactSetMapping};
use crate::rows::{self, Row};
use crate::server_sql::SqlServerConfig;
use crate::{Error, Result, ScanItem, SourceConfig};

/// Join values per query: enough to make one round trip serve a large
/// party (or a whole sync batch), few enough to keep plans and packets small.
pub(crate) const BATCH: usize = 1000;

/// Time the client waits beyond the server's own statement timeout before it
/// gives up on a query itself; the server's error says more, so it gets the
/// first chance.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// Checks the connection settings and reads the password from its variable.
///
/// A missing variable is a configuration error naming the variable; its value
/// never appears in any message.
pub(crate) fn password(source: &SourceConfig, config: &SqlServerConfig) -> Result<Option<String>> {
    let Some(var) = &config.password_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Err(Error::Config {
            source_name: source.name.clone(),
            message: format!(
                "connection.password_env names {var}, which is not set in the environment"
            ),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Config {
            source_name: source.name.clone(),
            message: format!("connection.password_env: {var} does not hold valid UTF-8"),
        }),
    }
}

/// Refuses URLs that would fight the explicit settings: TLS given in the URL
/// would be silently overridden by `tls` (a downgrade if the URL asked for
/// more), and a password in the URL belongs in `password_env`.
pub(crate) fn check_url(
    source: &SourceConfig,
    config: &SqlServerConfig,
    schemes: &[&str],
) -> Result<()> {
    let mut problems: Vec<String> = config
        .problems(schemes)
        .into_iter()
        .map(|(field, message)| format!("{field} {message}"))
        .collect();
    if let Some((_, query)) = config.url.split_once('?') {
        for pair in query.split('&') {
            let key = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
            let hint = match key.as_str() {
                "sslmode" | "ssl-mode" | "sslrootcert" | "sslca" | "ssl-ca" => {
                    "set TLS with connection.tls and connection.ca_file"
                }
                "password" => "name an environment variable in connection.password_env",
                "options" | "statement_timeout" => "set connection.query_timeout",
                _ => continue,
            };
            problems.push(format!("connection.url must not set {key}: {hint} instead"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config {
            source_name: source.name.clone(),
            message: problems.join("; "),
        })
    }
}

/// What a column holds, as far as pushing filters to the server goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnClass {
    Integer,
    Number,
    Time,
    Text,
    Uuid,
    Other,
}

/// Whether a join value can equal anything in a column of this class.
/// Values that cannot are left out rather than sent: a server asked to read
/// `abc` as an integer fails the whole batch (PostgreSQL) or reads it as 0
/// (MySQL).
pub(crate) fn key_fits(class: ColumnClass, key: &str) -> bool {
    match class {
        ColumnClass::Integer => key.trim().parse::<i64>().is_ok(),
        ColumnClass::Number => key.trim().parse::<f64>().is_ok_and(f64::is_finite),
        ColumnClass::Uuid => {
            let hex: String = key
                .trim()
                .chars()
                .filter(|c| !matches!(c, '-' | '{' | '}'))
                .collect();
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        ColumnClass::Time | ColumnClass::Text | ColumnClass::Other => true,
    }
}

/// The value to compare a column with so the server returns every row at or
/// after `since` (and possibly a few before, which the caller drops), or
/// `None` when the server cannot be trusted to compare and the caller reads
/// everything. `time_format` is how this server reads a UTC time.
pub(crate) fn cursor_bound(
    kind: CursorKind,
    since: &CursorValue,
    class: ColumnClass,
    time_format: &str,
) -> Option<String> {
    match (kind, since, class) {
        (CursorKind::Time, CursorValue::Time(t), _) => time_bound(*t, class, time_format),
        (CursorKind::Int, CursorValue::Int(i), ColumnClass::Integer | ColumnClass::Number) => {
            Some(i.to_string())
        }
        _ => None,
    }
}

/// Like [`cursor_bound`], for a fact set's date column.
pub(crate) fn time_bound(t: Timestamp, class: ColumnClass, time_format: &str) -> Option<String> {
    match class {
        ColumnClass::Time => Some(t.format(time_format).to_string()),
        // Times kept as text come in several shapes that sort differently
        // (`2024-01-20T…` vs `2024-01-20 …`, and collations that ignore
        // punctuation); the day alone is a prefix of all of them, so comparing
        // with it keeps every row of that day and later.
        ColumnClass::Text => Some(t.format("%Y-%m-%d").to_string()),
        _ => None,
    }
}

/// Splits `schema.table` (or `db.table`) so each part can be quoted.
pub(crate) fn name_parts(name: &str) -> Vec<&str> {
    name.split('.').collect()
}

/// The join values wanted from one fact set, and the record keys each serves.
pub(crate) struct Wanted {
    values: Vec<String>,
    exact: HashMap<String, Vec<String>>,
    loose: HashMap<String, Vec<String>>,
}

impl Wanted {
    pub(crate) fn new(set: &FactSetMapping, records: &[IdentityRecord]) -> Self {
        let mut w = Wanted {
            values: Vec::new(),
            exact: HashMap::new(),
            loose: HashMap::new(),
        };
        for rec in records {
            for v in SourceConfig::join_values(set, rec) {
                let keys = w.exact.entry(v.clone()).or_insert_with(|| {
                    w.values.push(v.clone());
                    Vec::new()
                });
                if !keys.contains(&rec.record.key) {
                    keys.push(rec.record.key.clone());
                }
                let loose = w.loose.entry(loose(&v)).or_default();
                if !loose.contains(&rec.record.key) {
                    loose.push(rec.record.key.clone());
                }
            }
        }
        w
    }

    /// Distinct join values, in the order the records gave them.
    pub(crate) fn values(&self) -> &[String] {
        &self.values
    }

    /// The record keys a found join value belongs to. The server may have
    /// matched a value that is written differently (a case-insensitive
    /// collation, `007` for 7, an upper-case UUID), so an inexact match is
    /// tried when there is no exact one.
    pub(crate) fn keys_for(&self, found: &str) -> &[String] {
        self.exact
            .get(found)
            .or_else(|| self.loose.get(&loose(found)))
            .map_or(&[], Vec::as_slice)
    }
}

fn loose(v: &str) -> String {
    let t = v.trim();
    match t.parse::<i64>() {
        Ok(i) => i.to_string(),
        Err(_) => t.to_lowercase(),
    }
}

/// Turns one scanned row into a scan item, or `None` when it is older than
/// `since` (the server may return a few older rows; see [`cursor_bound`]).
pub(crate) fn scan_item(
    source: &SourceConfig,
    since: Option<&CursorValue>,
    row: &Row,
    now: Timestamp,
) -> Option<ScanItem> {
    match rows::identity(source, row) {
        Ok(rec) => {
            if let (Some(s), Some(c)) = (since, &rec.cursor)
                && c < s
            {
                return None;
            }
            Some(ScanItem::Record(rec))
        }
        Err(reason) => Some(quarantined(
            source,
            rows::text(row.get(&source.identity.key)),
            reason,
            now,
        )),
    }
}

/// A row that could not be read at all.
pub(crate) fn quarantined(
    source: &SourceConfig,
    key: Option<String>,
    reason: String,
    now: Timestamp,
) -> ScanItem {
    ScanItem::Quarantined(Quarantined {
        source: source.name.clone(),
        location: format!(
            "table {} key {}",
            source.identity.from,
            key.as_deref().unwrap_or("(none)")
        ),
        key,
        reason,
        seen_at: now,
    })
}

/// Failing to connect, whatever the reason (refused, unknown host, TLS,
/// credentials refused, database missing): the source cannot be used at all.
fn connect_error(source: &SourceConfig, config: &SqlServerConfig, error: sqlx::Error) -> Error {
    Error::Unreachable {
        source_name: source.name.clone(),
        message: format!("cannot connect to {}: {error}", config.redacted_url()),
    }
}

/// A connect attempt that got no answer within the connect timeout.
fn connect_timed_out(source: &SourceConfig, config: &SqlServerConfig) -> Error {
    Error::Unreachable {
        source_name: source.name.clone(),
        message: format!(
            "cannot connect to {}: no answer within {}",
            config.redacted_url(),
            crate::duration::format(config.connect_timeout)
        ),
    }
}

/// The direct connection attempt made while a pool holds no connection (the
/// pool itself retries a refused connection until its timeout and then says
/// only that it timed out; the attempt says why). Callers arriving together
/// share one attempt and its answer, so a burst of views against a server
/// that is down makes one connection, not one each beyond the pool's limit.
#[derive(Default)]
pub(crate) struct Probe {
    /// When the last attempt ended, and why it failed if it did.
    last: tokio::sync::Mutex<Option<(std::time::Instant, Option<String>)>>,
}

impl Probe {
    /// Connects once (`connect`, its error passed through `tidy`) unless an
    /// attempt that ended since this call began already answered, or the
    /// pool has meanwhile opened a connection (`pool_open`).
    pub(crate) async fn run<C, Fut>(
        &self,
        source: &SourceConfig,
        config: &SqlServerConfig,
        pool_open: impl Fn() -> bool,
        connect: impl FnOnce() -> Fut,
        tidy: fn(sqlx::Error) -> sqlx::Error,
    ) -> Result<()>
    where
        C: sqlx::Connection,
        Fut: Future<Output = sqlx::Result<C>>,
    {
        let asked = std::time::Instant::now();
        let mut last = self.last.lock().await;
        let failure = match &*last {
            Some((ended, failure)) if *ended >= asked => failure.clone(),
            _ if pool_open() => None,
            _ => {
                let failure = match tokio::time::timeout(config.connect_timeout, connect()).await {
                    Err(_) => Some(connect_timed_out(source, config)),
                    Ok(Err(e)) => Some(connect_error(source, config, tidy(e))),
                    Ok(Ok(c)) => {
                        let _ = c.close().await;
                        None
                    }
                };
                let failure = failure.map(|e| match e {
                    Error::Unreachable { message, .. } => message,
                    other => other.to_string(),
                });
                *last = Some((std::time::Instant::now(), failure.clone()));
                failure
            }
        };
        match failure {
            None => Ok(()),
            Some(message) => Err(Error::Unreachable {
                source_name: source.name.clone(),
                message,
            }),
        }
    }
}

/// A failure while using the pool or a connection: the connection or the
/// server went away (unreachable), or the query itself failed.
pub(crate) fn use_error(
    source: &SourceConfig,
    config: &SqlServerConfig,
    context: &str,
    error: sqlx::Error,
) -> Error {
    match error {
        sqlx::Error::PoolTimedOut => Error::Unreachable {
            source_name: source.name.clone(),
            message: format!(
                "{context}: no connection to {} within {} (server down, or all {} connections busy)",
                config.redacted_url(),
                crate::duration::format(config.connect_timeout),
                config.max_connections
            ),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Unreachable {
            source_name: source.name.clone(),
            message: format!(
                "{context}: connection to {} lost: {error}",
                config.redacted_url()
            ),
        },
        // The server's own statement timeout: PostgreSQL query_canceled,
        // MariaDB max_statement_time, MySQL max_execution_time.
        sqlx::Error::Database(db) if is_statement_timeout(db.message()) => Error::TimedOut {
            source_name: source.name.clone(),
            message: format!(
                "{context}: no answer within query_timeout {} ({})",
                crate::duration::format(config.query_timeout),
                db.message()
            ),
        },
        error => Error::Query {
            source_name: source.name.clone(),
            context: context.to_string(),
            error,
        },
    }
}

fn is_statement_timeout(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("statement timeout")
        || m.contains("max_statement_time")
        || m.contains("maximum statement execution time exceeded")
        || m.contains("query execution was interrupted")
}

/// Runs a query with a client-side limit a little past the server's, so a
/// server that ignores its statement timeout (or a proxy in between) cannot
/// hang a view. `Err(None)` means the client gave up.
pub(crate) async fn within<T>(
    query_timeout: Duration,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, Option<sqlx::Error>> {
    match tokio::time::timeout(query_timeout + CLIENT_GRACE, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// The error for a query the client gave up on.
pub(crate) fn client_timeout(
    source: &SourceConfig,
    config: &SqlServerConfig,
    context: &str,
) -> Error {
    Error::TimedOut {
        source_name: source.name.clone(),
        message: format!(
            "{context}: no answer within {} (query_timeout {} was not enforced by the server)",
            crate::duration::format(config.query_timeout + CLIENT_GRACE),
            crate::duration::format(config.query_timeout)
        ),
    }
}

/// A decimal written as text, as a JSON number when a number shows the same
/// value (`12.50` → 12.5), otherwise as the text itself so no digit is lost.
pub(crate) fn decimal_json(text: &str) -> Value {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = t.parse::<u64>() {
        return Value::from(u);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && normal_decimal(&f.to_string()) == normal_decimal(t)
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(t.to_string())
}

/// A plain decimal without a sign on zero, leading zeros or trailing fraction zeros.
fn normal_decimal(s: &str) -> String {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    };
    if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_become_numbers_only_when_exact() {
        assert_eq!(decimal_json("12.50"), json!(12.5));
        assert_eq!(decimal_json("-0.10"), json!(-0.1));
        assert_eq!(decimal_json("42"), json!(42));
        assert_eq!(decimal_json("0.000"), json!(0.0));
        assert_eq!(
            decimal_json("12345678901234567890.123456789"),
            json!("12345678901234567890.123456789")
        );
        assert_eq!(decimal_json("18446744073709551615"), json!(u64::MAX));
        assert_eq!(decimal_json("NaN"), json!("NaN"));
    }

    #[test]
    fn keys_that_cannot_match_are_left_out() {
        assert!(key_fits(ColumnClass::Integer, "42"));
        assert!(!key_fits(
            ColumnClass::Integer,
            "'); DROP TABLE customers; --"
        ));
        assert!(key_fits(
            ColumnClass::Uuid,
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
        ));
        assert!(!key_fits(ColumnClass::Uuid, "a0eebc99"));
        assert!(!key_fits(ColumnClass::Number, "inf"));
        assert!(key_fits(ColumnClass::Text, "anything"));
    }

    #[test]
    fn bounds_are_exact_for_typed_columns_and_a_day_for_text() {
        let t: Timestamp = "2024-01-20T10:00:00Z".parse().unwrap();
        let since = CursorValue::Time(t);
        let pg = "%Y-%m-%dT%H:%M:%S%.6fZ";
        assert_eq!(
            cursor_bound(CursorKind::Time, &since, ColumnClass::Time, pg).as_deref(),
            Some("2024-01-20T10:00:00.000000Z")
        );
        assert_eq!(
            cursor_bound(CursorKind::Time, &since, ColumnClass::Text, pg).as_deref(),
            Some("2024-01-20")
        );
        assert_eq!(
            cursor_bound(CursorKind::Time, &since, ColumnClass::Integer, pg),
            None
        );
        assert_eq!(
            cursor_bound(
                CursorKind::Int,
                &CursorValue::Int(7),
                ColumnClass::Integer,
                pg
            )
            .as_deref(),
            Some("7")
        );
    }
}
