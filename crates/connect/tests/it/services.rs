//! This machine's database servers, for the connector tests and for the
//! binary's test of the server example (`crates/kith/tests/it/servers.rs`):
//! each test gets a database of its own, made fresh and dropped at the end.
//!
//! Without a server a test prints why it did not run and passes; under CI
//! (`KITH_REQUIRE_SERVICES=1`) it fails instead, so a missing server cannot
//! pass for a green run.

use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _};

pub const POSTGRES: &str = "postgres at 127.0.0.1:5432";
pub const MYSQL: &str = "mariadb/mysql at 127.0.0.1:3306";

const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

fn required() -> bool {
    std::env::var_os("KITH_REQUIRE_SERVICES").is_some_and(|v| !v.is_empty() && v != "0")
}

fn unavailable<T>(service: &str, test: &str, error: &str) -> Option<T> {
    if required() {
        panic!("{service} is required under CI (KITH_REQUIRE_SERVICES) but unreachable: {error}");
    }
    // Straight to stderr: the test harness swallows `eprintln!` of passing
    // tests, and this line is the only sign the test did not run.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: {service} unreachable ({error})"
    );
    None
}

/// One connection attempt, which (unlike a pool) fails at once with the
/// reason when nothing listens.
async fn reachable<C: sqlx::Connection>(
    connect: impl Future<Output = sqlx::Result<C>>,
) -> Result<(), String> {
    match tokio::time::timeout(ADMIN_TIMEOUT, connect).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {ADMIN_TIMEOUT:?}")),
    }
}

/// A name no other test run uses: `<prefix>_<16 hex digits>`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}_{:016x}", h.finish())
}

/// A fresh PostgreSQL database for one test.
pub struct PgDb {
    /// The database's name.
    pub name: String,
    /// The user the test connects as (a superuser).
    pub user: String,
    /// Connected to the test database, to set it up.
    pub pool: PgPool,
    admin: PgPool,
    admin_options: PgConnectOptions,
    dropped: bool,
}

/// Connects to the PostgreSQL server as an administrator and makes a
/// database for `test`, or says why not (see the module docs).
pub async fn postgres(test: &str) -> Option<PgDb> {
    let mut errors = Vec::new();
    for user in ["postgres", "root"] {
        let options = PgConnectOptions::new_without_pgpass()
            .host("127.0.0.1")
            .port(5432)
            .username(user)
            .database("postgres")
            .disable_statement_logging();
        if let Err(e) = reachable(options.connect()).await {
            errors.push(format!("as {user}: {e}"));
            continue;
        }
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ADMIN_TIMEOUT)
            .connect_with(options.clone())
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES}: {e}"));
        let name = unique("kith_test");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES}: cannot create database {name}: {e}"));
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.clone().database(&name))
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES}: cannot connect to {name}: {e}"));
        return Some(PgDb {
            name,
            user: user.to_string(),
            pool,
            admin,
            admin_options: options,
            dropped: false,
        });
    }
    unavailable(POSTGRES, test, &errors.join("; "))
}

impl PgDb {
    /// The URL a connector under test uses (no password: trust auth).
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:5432/{}", self.user, self.name)
    }

    /// Runs statements separated by `;` on the test database.
    pub async fn run(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    }

    /// Runs statements on the server as administrator (roles are server-wide).
    pub async fn run_admin(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    }

    /// Drops the database, ending the sessions still connected to it.
    pub async fn drop(mut self) {
        self.pool.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap_or_else(|e| panic!("cannot drop database {}: {e}", self.name));
        self.admin.close().await;
        self.dropped = true;
    }
}

impl Drop for PgDb {
    /// Best effort when a test panicked before `drop().await`.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let options = self.admin_options.clone();
        cleanup(async move {
            if let Ok(admin) = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ADMIN_TIMEOUT)
                .connect_with(options)
                .await
            {
                let _ = sqlx::query(AssertSqlSafe(sql)).execute(&admin).await;
                admin.close().await;
            }
        });
    }
}

/// A fresh MariaDB/MySQL database for one test.
pub struct MyDb {
    pub name: String,
    /// Connected to the test database as root, to set it up.
    pub pool: MySqlPool,
    admin: MySqlPool,
    admin_options: MySqlConnectOptions,
    dropped: bool,
}

/// Connects to the MariaDB/MySQL server as root and makes a database for
/// `test`, or says why not (see the module docs).
pub async fn mysql(test: &str) -> Option<MyDb> {
    let options = MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(3306)
        .username("root")
        .disable_statement_logging();
    if let Err(e) = reachable(options.connect()).await {
        return unavailable(MYSQL, test, &e);
    }
    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ADMIN_TIMEOUT)
        .connect_with(options.clone())
        .await
        .unwrap_or_else(|e| panic!("{MYSQL}: {e}"));
    let name = unique("kith_test");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
        .execute(&admin)
        .await
        .unwrap_or_else(|e| panic!("{MYSQL}: cannot create database {name}: {e}"));
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone().database(&name))
        .await
        .unwrap_or_else(|e| panic!("{MYSQL}: cannot connect to {name}: {e}"));
    Some(MyDb {
        name,
        pool,
        admin,
        admin_options: options,
        dropped: false,
    })
}

impl MyDb {
    /// The URL a connector under test uses, as root.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.name)
    }

    /// Runs statements separated by `;` on the test database.
    pub async fn run(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    }

    /// Runs statements on the server as root (users are server-wide).
    pub async fn run_admin(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    }

    pub async fn drop(mut self) {
        self.pool.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS `{}`",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap_or_else(|e| panic!("cannot drop database {}: {e}", self.name));
        self.admin.close().await;
        self.dropped = true;
    }
}

impl Drop for MyDb {
    /// Best effort when a test panicked before `drop().await`.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        let options = self.admin_options.clone();
        cleanup(async move {
            if let Ok(admin) = MySqlPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ADMIN_TIMEOUT)
                .connect_with(options)
                .await
            {
                let _ = sqlx::query(AssertSqlSafe(sql)).execute(&admin).await;
                admin.close().await;
            }
        });
    }
}

/// Runs `work` to completion on a runtime of its own: `Drop` cannot await,
/// and the test's runtime may be unwinding.
fn cleanup(work: impl Future<Output = ()> + Send + 'static) {
    let done = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(work);
        }
    });
    let _ = done.join();
}
