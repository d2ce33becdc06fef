//! The benchmark's business: N people, each present in all five sources with
//! the same e-mail address, and a few fact rows per person in each source.
//!
//! | source      | kind     | identity            | facts (joined by)                 |
//! |-------------|----------|---------------------|-----------------------------------|
//! | `billing`   | postgres | `customers` (int id)| `orders`, ~5 each (customer_id)   |
//! | `support`   | mysql    | `contacts`          | `tickets`, ~3 each (email)        |
//! | `invoicing` | sqlite   | `customers`         | `invoices`, ~4 each (customer_id) |
//! | `shop`      | csv      | `customers.csv`     | `orders.csv`, ~3 each             |
//! | `marketing` | jsonl    | `contacts.jsonl`    | `offers.jsonl`, ~2 each           |

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use sqlx::{AssertSqlSafe, Connection};

/// The bench databases' name on both servers.
pub const DB: &str = "kith_bench";

/// Rows per multi-row INSERT.
const CHUNK: usize = 1000;

/// A small deterministic generator (SplitMix64): the same seed gives the same business.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

const GIVEN: &[&str] = &[
    "Ann", "Bob", "Cara", "Dev", "Eve", "Finn", "Gita", "Hal", "Iris", "Jon", "Kay", "Leo", "Mia",
    "Ned", "Ola", "Pia", "Raj", "Sue", "Tom", "Una", "Vic", "Wen", "Yan", "Zoe",
];
const FAMILY: &[&str] = &[
    "Lee", "Stone", "Park", "Ellison", "Okafor", "Novak", "Silva", "Kaur", "Brennan", "Moreau",
    "Tanaka", "Walsh", "Haddad", "Larsen", "Rossi", "Fischer", "Osei", "Quinn",
];
const SKUS: &[&str] = &[
    "SEED-01",
    "TROWEL-2",
    "HOSE-15M",
    "POT-30",
    "SHEARS",
    "COMPOST-50L",
];
const SUBJECTS: &[&str] = &[
    "Late delivery",
    "Damaged parcel",
    "Refund request",
    "Change of address",
    "Question about an invoice",
];
const OFFERS: &[&str] = &[
    "Spring 20% off",
    "Free delivery",
    "Bulbs bundle",
    "Loyalty bonus",
];
const RESPONSES: &[&str] = &["sent", "opened", "clicked", "redeemed"];

/// One person of the business and how many fact rows each source holds for them.
#[derive(Debug, Clone)]
pub struct Person {
    /// 1-based.
    pub n: usize,
    pub name: String,
    pub email: String,
    pub orders: usize,
    pub tickets: usize,
    pub invoices: usize,
    pub shop_orders: usize,
    pub offers: usize,
}

impl Person {
    /// Key in PostgreSQL `customers` (an integer).
    pub fn billing_id(&self) -> i32 {
        self.n as i32
    }
    /// Key in MariaDB `contacts`.
    pub fn support_key(&self) -> String {
        format!("C{:06}", self.n)
    }
    /// Key in SQLite `customers` (an integer).
    pub fn invoicing_id(&self) -> i64 {
        100_000 + self.n as i64
    }
    pub fn shop_key(&self) -> String {
        format!("S{:06}", self.n)
    }
    pub fn marketing_key(&self) -> String {
        format!("M-{:06}", self.n)
    }
}

pub fn people(count: usize, rng: &mut Rng) -> Vec<Person> {
    (1..=count)
        .map(|n| {
            let given = GIVEN[rng.below(GIVEN.len())];
            let family = FAMILY[rng.below(FAMILY.len())];
            Person {
                n,
                name: format!("{given} {family}"),
                email: format!("{}.{}.{n}@bench.example", given, family).to_ascii_lowercase(),
                orders: rng.between(3, 7),
                tickets: rng.between(1, 5),
                invoices: rng.between(2, 6),
                shop_orders: rng.between(1, 5),
                offers: rng.between(1, 3),
            }
        })
        .collect()
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0)
        .single()
        .expect("valid")
}

/// A random time in 2023–2024, to the second.
fn when(rng: &mut Rng) -> DateTime<Utc> {
    base_time() + ChronoDuration::seconds((rng.next_u64() % (730 * 86_400)) as i64)
}

fn sql_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Fact rows: (person index, time, row-specific number), sorted by time so a
/// person's rows are spread through the table or file as they would be.
fn fact_rows(
    people: &[Person],
    per: impl Fn(&Person) -> usize,
    rng: &mut Rng,
) -> Vec<(usize, DateTime<Utc>, usize)> {
    let mut rows = Vec::new();
    for (i, p) in people.iter().enumerate() {
        for _ in 0..per(p) {
            rows.push((i, when(rng), rng.next_u64() as usize));
        }
    }
    rows.sort_by_key(|r| r.1);
    rows
}

/// Connects to PostgreSQL's `postgres` database, trying each base URL in turn.
/// Returns the base URL that worked.
pub async fn postgres_base(candidates: &[String]) -> Result<String> {
    let mut last = None;
    for base in candidates {
        match sqlx::PgConnection::connect(&format!("{base}/postgres?sslmode=disable")).await {
            Ok(c) => {
                c.close().await.ok();
                return Ok(base.clone());
            }
            Err(e) => last = Some(format!("{base}: {e}")),
        }
    }
    anyhow::bail!(
        "cannot connect to PostgreSQL ({})",
        last.unwrap_or_default()
    )
}

async fn exec_pg(conn: &mut sqlx::PgConnection, sql: String) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("PostgreSQL: {}", &sql[..sql.len().min(120)]))?;
    Ok(())
}

async fn exec_my(conn: &mut sqlx::MySqlConnection, sql: String) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("MariaDB: {}", &sql[..sql.len().min(120)]))?;
    Ok(())
}

/// Inserts `rows` in chunks of multi-row INSERTs; every value is generated
/// here (digits, fixed words, e-mails of letters, digits and dots), so it is
/// written inline.
fn inserts(head: &str, rows: &[String]) -> Vec<String> {
    rows.chunks(CHUNK)
        .map(|c| format!("{head} VALUES {}", c.join(", ")))
        .collect()
}

pub async fn drop_postgres(base: &str) -> Result<()> {
    let mut admin =
        sqlx::PgConnection::connect(&format!("{base}/postgres?sslmode=disable")).await?;
    exec_pg(
        &mut admin,
        format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
    )
    .await?;
    admin.close().await.ok();
    Ok(())
}

pub async fn drop_mysql(base: &str) -> Result<()> {
    let mut admin = sqlx::MySqlConnection::connect(base).await?;
    exec_my(&mut admin, format!("DROP DATABASE IF EXISTS {DB}")).await?;
    admin.close().await.ok();
    Ok(())
}

/// `billing` on PostgreSQL: customers by integer id, ~5 orders each.
pub async fn postgres(base: &str, people: &[Person], rng: &mut Rng) -> Result<()> {
    drop_postgres(base).await?;
    let mut admin =
        sqlx::PgConnection::connect(&format!("{base}/postgres?sslmode=disable")).await?;
    exec_pg(&mut admin, format!("CREATE DATABASE {DB}")).await?;
    admin.close().await.ok();

    let mut c = sqlx::PgConnection::connect(&format!("{base}/{DB}?sslmode=disable")).await?;
    exec_pg(
        &mut c,
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, \
         email TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
            .into(),
    )
    .await?;
    exec_pg(
        &mut c,
        "CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_id INTEGER NOT NULL, \
         ordered_at TIMESTAMPTZ NOT NULL, total_cents INTEGER NOT NULL, sku TEXT NOT NULL, \
         status TEXT NOT NULL)"
            .into(),
    )
    .await?;
    let customers: Vec<String> = people
        .iter()
        .map(|p| {
            format!(
                "({}, '{}', '{}', '{}+00')",
                p.billing_id(),
                p.name,
                p.email,
                sql_time(when(rng))
            )
        })
        .collect();
    for sql in inserts(
        "INSERT INTO customers (id, full_name, email, updated_at)",
        &customers,
    ) {
        exec_pg(&mut c, sql).await?;
    }
    let orders: Vec<String> = fact_rows(people, |p| p.orders, rng)
        .into_iter()
        .map(|(i, t, r)| {
            format!(
                "({}, '{}+00', {}, '{}', '{}')",
                people[i].billing_id(),
                sql_time(t),
                500 + r % 20_000,
                SKUS[r % SKUS.len()],
                if r % 7 == 0 { "returned" } else { "delivered" }
            )
        })
        .collect();
    for sql in inserts(
        "INSERT INTO orders (customer_id, ordered_at, total_cents, sku, status)",
        &orders,
    ) {
        exec_pg(&mut c, sql).await?;
    }
    exec_pg(
        &mut c,
        "CREATE INDEX orders_customer_id ON orders (customer_id)".into(),
    )
    .await?;
    exec_pg(&mut c, "ANALYZE".into()).await?;
    c.close().await.ok();
    Ok(())
}

/// `support` on MariaDB: contacts, ~3 tickets each joined by e-mail.
pub async fn mysql(base: &str, people: &[Person], rng: &mut Rng) -> Result<()> {
    let mut admin = sqlx::MySqlConnection::connect(base).await?;
    exec_my(&mut admin, format!("DROP DATABASE IF EXISTS {DB}")).await?;
    exec_my(
        &mut admin,
        format!("CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    )
    .await?;
    admin.close().await.ok();

    let mut c = sqlx::MySqlConnection::connect(&format!("{base}/{DB}")).await?;
    exec_my(
        &mut c,
        "CREATE TABLE contacts (id VARCHAR(16) PRIMARY KEY, full_name VARCHAR(200) NOT NULL, \
         email VARCHAR(255) NOT NULL, updated_at DATETIME NOT NULL, INDEX contacts_email (email)) \
         ENGINE=InnoDB"
            .into(),
    )
    .await?;
    exec_my(
        &mut c,
        "CREATE TABLE tickets (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL, \
         opened_at DATETIME NOT NULL, subject VARCHAR(200) NOT NULL, status VARCHAR(20) NOT NULL, \
         INDEX tickets_email (email)) ENGINE=InnoDB"
            .into(),
    )
    .await?;
    let contacts: Vec<String> = people
        .iter()
        .map(|p| {
            format!(
                "('{}', '{}', '{}', '{}')",
                p.support_key(),
                p.name,
                p.email,
                sql_time(when(rng))
            )
        })
        .collect();
    for sql in inserts(
        "INSERT INTO contacts (id, full_name, email, updated_at)",
        &contacts,
    ) {
        exec_my(&mut c, sql).await?;
    }
    let tickets: Vec<String> = fact_rows(people, |p| p.tickets, rng)
        .into_iter()
        .map(|(i, t, r)| {
            format!(
                "('{}', '{}', '{}', '{}')",
                people[i].email,
                sql_time(t),
                SUBJECTS[r % SUBJECTS.len()],
                if r % 3 == 0 { "open" } else { "closed" }
            )
        })
        .collect();
    for sql in inserts(
        "INSERT INTO tickets (email, opened_at, subject, status)",
        &tickets,
    ) {
        exec_my(&mut c, sql).await?;
    }
    exec_my(&mut c, "ANALYZE TABLE contacts, tickets".into()).await?;
    c.close().await.ok();
    Ok(())
}

/// `invoicing` in a SQLite file: customers, ~4 invoices each.
pub async fn sqlite(path: &Path, people: &[Person], rng: &mut Rng) -> Result<()> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await?;
    let mut sql = String::from(
        "BEGIN;\n\
         CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, email TEXT NOT NULL, updated_at TEXT NOT NULL);\n\
         CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, number TEXT NOT NULL, issued_at TEXT NOT NULL, amount REAL NOT NULL);\n",
    );
    for p in people {
        writeln!(
            sql,
            "INSERT INTO customers VALUES ({}, '{}', '{}', '{}');",
            p.invoicing_id(),
            p.name,
            p.email,
            sql_time(when(rng))
        )?;
    }
    for (n, (i, t, r)) in fact_rows(people, |p| p.invoices, rng)
        .into_iter()
        .enumerate()
    {
        writeln!(
            sql,
            "INSERT INTO invoices (customer_id, number, issued_at, amount) VALUES ({}, 'INV-{:07}', '{}', {}.{:02});",
            people[i].invoicing_id(),
            n + 1,
            t.format("%Y-%m-%d"),
            5 + r % 400,
            r % 100
        )?;
    }
    sql.push_str(
        "CREATE INDEX invoices_customer_id ON invoices (customer_id);\nANALYZE;\nCOMMIT;\n",
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await?;
    c.close().await.ok();
    Ok(())
}

/// `shop` as CSV files: customers.csv and ~3 orders each in orders.csv.
pub fn csv(dir: &Path, people: &[Person], rng: &mut Rng) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut customers = String::from("id,name,email,updated_at\n");
    for p in people {
        writeln!(
            customers,
            "{},{},{},{}",
            p.shop_key(),
            p.name,
            p.email,
            when(rng).format("%Y-%m-%d")
        )?;
    }
    std::fs::write(dir.join("customers.csv"), customers)?;
    let mut orders = String::from("order_id,customer_id,placed_at,total,items\n");
    for (n, (i, t, r)) in fact_rows(people, |p| p.shop_orders, rng)
        .into_iter()
        .enumerate()
    {
        writeln!(
            orders,
            "W{:07},{},{},{}.{:02},\"{} x{}\"",
            n + 1,
            people[i].shop_key(),
            t.format("%Y-%m-%dT%H:%M:%SZ"),
            3 + r % 200,
            r % 100,
            SKUS[r % SKUS.len()],
            1 + r % 4
        )?;
    }
    std::fs::write(dir.join("orders.csv"), orders)?;
    Ok(())
}

/// `marketing` as JSON-lines files: contacts.jsonl and ~2 offers each in offers.jsonl.
pub fn jsonl(dir: &Path, people: &[Person], rng: &mut Rng) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut contacts = String::new();
    for p in people {
        let row = serde_json::json!({ "id": p.marketing_key(), "name": p.name, "email": p.email });
        writeln!(contacts, "{row}")?;
    }
    std::fs::write(dir.join("contacts.jsonl"), contacts)?;
    let mut offers = String::new();
    for (i, t, r) in fact_rows(people, |p| p.offers, rng) {
        let row = serde_json::json!({
            "contact_id": people[i].marketing_key(),
            "offer": OFFERS[r % OFFERS.len()],
            "sent_at": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "response": RESPONSES[r % RESPONSES.len()],
        });
        writeln!(offers, "{row}")?;
    }
    std::fs::write(dir.join("offers.jsonl"), offers)?;
    Ok(())
}

/// The kith configuration of the five sources (paths relative to the bench folder).
pub fn sources_toml(pg_url: &str, my_url: &str) -> String {
    format!(
        r#"
[[sources]]
name = "billing"
verified = true
relation = "customer"
connection = {{ kind = "postgres", url = "{pg_url}", tls = "disable" }}
[sources.identity]
from = "customers"
key = "id"
attributes = {{ full_name = "full_name", email = "email" }}
[sources.facts.orders]
from = "orders"
join = "customer_id"
kind = "transaction"
date = "ordered_at"

[[sources]]
name = "support"
connection = {{ kind = "mysql", url = "{my_url}", tls = "disable" }}
[sources.identity]
from = "contacts"
key = "id"
attributes = {{ full_name = "full_name", email = "email" }}
[sources.facts.tickets]
from = "tickets"
join = "email"
on = "email"
kind = "case"
date = "opened_at"

[[sources]]
name = "invoicing"
verified = true
relation = "customer"
connection = {{ kind = "sqlite", path = "invoicing.db" }}
[sources.identity]
from = "customers"
key = "id"
attributes = {{ full_name = "full_name", email = "email" }}
[sources.facts.invoices]
from = "invoices"
join = "customer_id"
kind = "transaction"
date = "issued_at"

[[sources]]
name = "shop"
connection = {{ kind = "csv", dir = "shop" }}
[sources.identity]
from = "customers.csv"
key = "id"
attributes = {{ full_name = "name", email = "email" }}
[sources.facts.orders]
from = "orders.csv"
join = "customer_id"
kind = "transaction"
date = "placed_at"

[[sources]]
name = "marketing"
relation = "prospect"
connection = {{ kind = "jsonl", dir = "marketing" }}
[sources.identity]
from = "contacts.jsonl"
key = "id"
attributes = {{ full_name = "name", email = "email" }}
[sources.facts.offers]
from = "offers.jsonl"
join = "contact_id"
kind = "offer"
date = "sent_at"
"#
    )
}
