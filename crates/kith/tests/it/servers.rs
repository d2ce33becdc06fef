//! The shipped example for a business whose billing runs on PostgreSQL and
//! whose support desk runs on MariaDB, run by the real binary against this
//! machine's servers: its schema is made in fresh databases, the example is
//! pointed at them, and `check`, `sync` and `view` answer. Then the faults a
//! live server brings — a refused password, a slow table — show in the view
//! as that source's status with its reason while the other source answers.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{json, kith_in, text};
use crate::services;

const EXAMPLE: &str = include_str!("../../../../examples/billing-postgres-support-mariadb.toml");

/// The password of the support desk's reader, set through `password_env`.
const SUPPORT_PASSWORD: &str = "s3cret-support-pw";
/// A password the server refuses; never to appear in kith's output.
const WRONG_PASSWORD: &str = "wr0ng-support-pw";

const BILLING_SCHEMA: &str = "
CREATE TABLE customers (
  id integer PRIMARY KEY, first_name text, last_name text, email text, phone text,
  street text, city text, postcode text, birth_date date, status text,
  updated_at timestamptz NOT NULL);
CREATE TABLE invoices (
  number text PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers,
  issued_at timestamptz NOT NULL, total numeric(10,2), currency char(3), status text);
CREATE INDEX ON invoices (customer_id);
CREATE TABLE subscriptions (
  id serial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers,
  plan text, started_at date NOT NULL);
CREATE INDEX ON subscriptions (customer_id);
INSERT INTO customers VALUES
  (1, 'Ann', 'Lee', 'ann@example.com', '020 7946 0001', '1 Mill Lane', 'Leeds', 'LS1 4AB',
   '1984-03-02', 'active', '2026-11-01T09:00:00Z'),
  (2, 'Bob', 'Roe', 'bob@example.com', NULL, '9 High St', 'York', 'YO1 7HH',
   NULL, 'cancelled', '2026-11-02T09:00:00Z');
INSERT INTO invoices VALUES
  ('INV-1001', 1, '2026-09-01T10:00:00Z', 120.50, 'GBP', 'paid'),
  ('INV-1002', 1, '2026-10-01T10:00:00Z', 99.00, 'GBP', 'open'),
  ('INV-1003', 2, '2026-10-03T10:00:00Z', 12.00, 'GBP', 'paid');
INSERT INTO subscriptions (customer_id, plan, started_at) VALUES (1, 'pro', '2025-01-15');
";

const SUPPORT_SCHEMA: &str = "
CREATE TABLE contacts (
  id int PRIMARY KEY, name varchar(100), email varchar(200), phone varchar(40),
  updated_at datetime NOT NULL);
CREATE TABLE tickets (
  id int PRIMARY KEY, requester_email varchar(200) NOT NULL, subject varchar(200),
  status varchar(20), priority varchar(20), created_at datetime NOT NULL,
  solved_at datetime NULL, INDEX (requester_email));
INSERT INTO contacts VALUES
  (71, 'Ann Lee', 'ANN@example.com', '+44 20 7946 0001', '2026-11-03 08:00:00');
INSERT INTO tickets VALUES
  (501, 'ann@example.com', 'Invoice INV-1002 looks wrong', 'open', 'high',
   '2026-10-02 11:00:00', NULL),
  (502, 'ann@example.com', 'Cannot sign in', 'solved', 'normal',
   '2026-08-20 15:30:00', '2026-08-21 09:00:00'),
  (503, 'someone@example.com', 'Hello', 'open', 'low', '2026-10-05 12:00:00', NULL);
";

/// The example, with its hosts, databases and users made this machine's.
/// Only what a local server forces changes: PostgreSQL's certificate here is
/// self-signed (so `require`, not `verify_full`), this MariaDB may offer no
/// TLS, the loyalty API (tested on its own) is left out, and the query
/// timeout is shortened so the slow case is quick.
fn example_for(pg: &services::PgDb, my: &services::MyDb, user: &str, my_tls: &str) -> String {
    let cut = EXAMPLE
        .find("# Loyalty platform")
        .expect("the example has a loyalty source");
    let text = EXAMPLE[..cut]
        .replace(
            "postgres://kith_reader@billing-db.internal:5432/billing",
            &pg.url(),
        )
        .replace(
            "mysql://kith_reader@support-db.internal:3306/helpdesk",
            &format!("mysql://{user}@127.0.0.1:3306/{}", my.name),
        )
        .replace("tls = \"verify_full\"", "tls = \"require\"")
        .replace(
            "tls = \"require\"\nquery",
            &format!("tls = \"{my_tls}\"\nquery"),
        )
        .replace("query_timeout = \"2s\"", "query_timeout = \"600ms\"");
    for (was, why) in [
        ("billing-db.internal", "the PostgreSQL URL"),
        ("support-db.internal", "the MariaDB URL"),
        ("verify_full", "PostgreSQL's TLS"),
        ("query_timeout = \"2s\"", "the query timeouts"),
    ] {
        assert!(
            !text.contains(was),
            "the example changed: {why} was not rewritten"
        );
    }
    text
}

fn sources(view: &Value) -> Vec<(String, String, String)> {
    view["sources"]
        .as_array()
        .expect("a view lists its sources")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn status_of<'a>(view: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    let s = view
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no source {name} in {view:?}"));
    (&s.1, &s.2)
}

fn facts_from<'a>(view: &'a Value, fact_set: &'a str) -> impl Iterator<Item = &'a Value> {
    view["facts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |f| f["provenance"]["fact_set"] == fact_set)
}

#[tokio::test]
async fn the_postgres_and_mariadb_example_serves_views_and_shows_their_faults() {
    const TEST: &str = "kith the_postgres_and_mariadb_example_serves_views_and_shows_their_faults";
    let Some(pg) = services::postgres(TEST).await else {
        return;
    };
    let Some(my) = services::mysql(TEST).await else {
        pg.drop().await;
        return;
    };
    pg.run(BILLING_SCHEMA).await;
    my.run(SUPPORT_SCHEMA).await;
    // The support desk is read as a user with a password, given only in the
    // environment variable the example names.
    let user = services::unique("kith_reader");
    for host in ["%", "localhost"] {
        my.run_admin(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{SUPPORT_PASSWORD}'; \
             GRANT SELECT ON `{}`.* TO '{user}'@'{host}'",
            my.name
        ))
        .await;
    }
    let tls_offered: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'have_ssl'")
        .fetch_optional(&my.pool)
        .await
        .unwrap();
    let my_tls = if tls_offered.is_some_and(|(_, v)| v == "YES") {
        "require"
    } else {
        "prefer"
    };

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kith.toml");
    std::fs::write(&config, example_for(&pg, &my, &user, my_tls)).unwrap();
    let config = config.to_str().unwrap().to_string();
    let run = |args: &[&str], support_password: &str| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        kith_in(
            &all,
            &[
                // Trust authentication here: PostgreSQL accepts any password.
                ("BILLING_DB_PASSWORD", "unchecked-by-trust-auth"),
                ("SUPPORT_DB_PASSWORD", support_password),
            ],
        )
    };

    let view_ann = || {
        let started = Instant::now();
        let view = json(run(
            &["view", "ann@example.com", "--json"],
            SUPPORT_PASSWORD,
        ));
        (view, started.elapsed())
    };

    let checked = run(&["check"], SUPPORT_PASSWORD);
    assert!(checked.status.success(), "{}", text(&checked));
    let report = json(run(&["sync", "--json"], SUPPORT_PASSWORD));
    let report = report.to_string();
    assert!(!report.contains(SUPPORT_PASSWORD), "{report}");

    // Ann: two billing records' worth of facts and her tickets, found by the
    // e-mail address the two systems share (written in different case).
    let (view, took) = view_ann();
    let s = sources(&view);
    assert_eq!(status_of(&s, "billing").0, "ok", "{s:?}");
    assert_eq!(status_of(&s, "support").0, "ok", "{s:?}");
    let mut records: Vec<&str> = view["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    records.sort_unstable();
    assert_eq!(records, vec!["billing", "support"], "{view:#}");
    let invoices: Vec<&Value> = facts_from(&view, "invoices").collect();
    assert_eq!(invoices.len(), 2, "{view:#}");
    assert_eq!(invoices[0]["value"]["number"], "INV-1002", "newest first");
    assert_eq!(
        invoices[0]["value"]["total"].as_f64(),
        Some(99.0),
        "numeric read as a number: {:#}",
        invoices[0]
    );
    assert_eq!(facts_from(&view, "subscriptions").count(), 1);
    let tickets: Vec<&Value> = facts_from(&view, "tickets").collect();
    assert_eq!(tickets.len(), 2, "only Ann's tickets: {view:#}");
    assert_eq!(
        tickets[0]["value"]["subject"],
        "Invoice INV-1002 looks wrong"
    );
    assert!(
        tickets[1]["value"]["solved_at"].is_string(),
        "{:#}",
        tickets[1]
    );
    assert_eq!(view["relation"], "customer");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // A password the server refuses: support is unreachable with the
    // server's reason, billing still answers, and the password is not shown.
    let refused = run(&["view", "ann@example.com", "--json"], WRONG_PASSWORD);
    let out = text(&refused);
    assert!(!out.contains(WRONG_PASSWORD), "{out}");
    let view = json(refused);
    let s = sources(&view);
    let (status, why) = status_of(&s, "support");
    assert_eq!(status, "unreachable", "{s:?}");
    assert!(why.contains("Access denied"), "{why}");
    assert_eq!(status_of(&s, "billing").0, "ok", "{s:?}");
    assert_eq!(facts_from(&view, "invoices").count(), 2);
    assert_eq!(facts_from(&view, "tickets").count(), 0);

    // Billing's invoices become slow (each read sleeps three seconds): that
    // fact set fails at the query timeout naming it; support answers.
    pg.run(
        "ALTER TABLE invoices RENAME TO invoices_data; \
         CREATE VIEW invoices AS SELECT i.* FROM invoices_data i, (SELECT pg_sleep(3)) s",
    )
    .await;
    let (view, took) = view_ann();
    let s = sources(&view);
    let (status, why) = status_of(&s, "billing");
    assert_eq!(status, "timed_out", "{s:?}");
    assert!(
        why.contains("fact set invoices") && why.contains("query_timeout"),
        "{why}"
    );
    assert_eq!(status_of(&s, "support").0, "ok", "{s:?}");
    assert_eq!(facts_from(&view, "tickets").count(), 2);
    assert!(
        took < Duration::from_millis(2900),
        "the view waited for the slow table: {took:?}"
    );

    for host in ["%", "localhost"] {
        my.run_admin(&format!("DROP USER '{user}'@'{host}'")).await;
    }
    my.drop().await;
    pg.drop().await;
}
