//! The PostgreSQL connector against this machine's server (see `services`).

use std::time::{Duration, Instant};

use kith_connect::{ConnectCtx, Connector, Error, MemoryFileIndex};
use kith_model::{CursorValue, Timestamp};
use serde_json::json;

use crate::services::{self, PgDb};
use crate::{build, request, scan_all, source};

/// Identity in a schema-qualified, mixed-case table, to exercise quoting.
fn source_toml(url: &str, extra_connection: &str) -> String {
    format!(
        r#"
name = "billing"
verified = true
connection = {{ kind = "postgres", url = "{url}", max_connections = 2, connect_timeout = "2s", query_timeout = "3s"{extra_connection} }}
[identity]
from = "crm.Customers"
key = "id"
cursor = {{ column = "updated_at" }}
relation_column = "status"
attributes = {{ given_name = "first", email = "email" }}
[facts.invoices]
from = "invoices"
join = "customer_id"
kind = "transaction"
date = "issued_at"
[facts.tickets]
from = "tickets"
join = "email"
on = "email"
kind = "case"
date = "opened"
[facts.plan]
from = "crm.Customers"
join = "id"
kind = "profile"
cardinality = "one"
fields = ["plan"]
"#
    )
}

/// `customers` people; two invoices each (January and February 2024) and one ticket.
async fn fill(db: &PgDb, customers: usize) {
    db.run(&format!(
        r#"
CREATE SCHEMA crm;
CREATE TABLE crm."Customers" (id integer PRIMARY KEY, first text, email varchar(200),
    status text, plan text, updated_at timestamptz NOT NULL);
CREATE TABLE invoices (id serial PRIMARY KEY, customer_id integer NOT NULL,
    amount numeric(12,2), paid boolean, issued_at timestamp, note text);
CREATE INDEX ON invoices (customer_id);
CREATE TABLE tickets (id serial PRIMARY KEY, email text NOT NULL, subject text, opened date);
CREATE INDEX ON tickets (email);
INSERT INTO crm."Customers"
    SELECT i, 'Person ' || i, 'p' || i || '@example.com',
           CASE WHEN i % 2 = 0 THEN 'active' ELSE 'cancelled' END, 'gold',
           timestamptz '2024-01-01 10:00:00+00' + (i % 28) * interval '1 day'
    FROM generate_series(1, {customers}) i;
INSERT INTO invoices (customer_id, amount, paid, issued_at)
    SELECT i, 10.50 * j, j = 1, timestamp '2024-01-01' + (j - 1) * interval '1 month'
    FROM generate_series(1, {customers}) i, generate_series(1, 2) j;
INSERT INTO tickets (email, subject, opened)
    SELECT 'p' || i || '@example.com', 'Help', date '2024-03-01'
    FROM generate_series(1, {customers}) i;
"#
    ))
    .await;
}

fn time(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[tokio::test]
async fn scan_reads_all_then_only_rows_at_or_after_the_cursor() {
    let Some(db) =
        services::postgres("postgres scan_reads_all_then_only_rows_at_or_after_the_cursor").await
    else {
        return;
    };
    fill(&db, 40).await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    assert!(c.capabilities().incremental_scan);
    let (all, bad) = scan_all(c.as_ref(), None).await;
    assert_eq!(all.len(), 40);
    assert!(bad.is_empty(), "{bad:?}");
    let first = all.iter().find(|r| r.record.key == "1").unwrap();
    assert_eq!(first.relation, Some(kith_model::Relation::FormerCustomer));
    assert_eq!(first.attrs.emails, vec!["p1@example.com"]);
    assert_eq!(first.updated_at, Some(time("2024-01-02T10:00:00Z")));
    let cursors: Vec<_> = all.iter().map(|r| r.cursor.clone().unwrap()).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] <= w[1]),
        "read in cursor order"
    );

    // Inclusive: the rows stamped exactly at the cursor are read again.
    let since = CursorValue::Time(time("2024-01-20T10:00:00Z"));
    let (recent, _) = scan_all(c.as_ref(), Some(since.clone())).await;
    let mut keys: Vec<i64> = recent
        .iter()
        .map(|r| r.record.key.parse().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, (19..=27).collect::<Vec<_>>());
    assert!(recent.iter().all(|r| r.cursor.as_ref().unwrap() >= &since));
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn a_row_deleted_at_the_source_is_gone_from_the_next_full_scan() {
    let Some(db) =
        services::postgres("postgres a_row_deleted_at_the_source_is_gone_from_the_next_full_scan")
            .await
    else {
        return;
    };
    fill(&db, 5).await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    assert_eq!(scan_all(c.as_ref(), None).await.0.len(), 5);
    db.run(r#"DELETE FROM crm."Customers" WHERE id = 3"#).await;
    let (after, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(after.len(), 4);
    assert!(after.iter().all(|r| r.record.key != "3"));
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn lookup_batches_keys_joined_by_integer_and_by_email() {
    let Some(db) =
        services::postgres("postgres lookup_batches_keys_joined_by_integer_and_by_email").await
    else {
        return;
    };
    // More people than one batch of join values.
    fill(&db, 1200).await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(all.len(), 1200);
    let found = c.lookup(&request(&all)).await.unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let count = |set: &str| {
        found
            .facts
            .iter()
            .filter(|f| f.provenance.fact_set == set)
            .count()
    };
    assert_eq!(count("invoices"), 2400);
    assert_eq!(count("tickets"), 1200);
    assert_eq!(count("plan"), 1200);
    let ticket = found
        .facts
        .iter()
        .find(|f| f.provenance.fact_set == "tickets" && f.provenance.key == "1100")
        .unwrap();
    assert_eq!(ticket.value["subject"], json!("Help"));
    assert_eq!(ticket.date, Some(time("2024-03-01T00:00:00Z")));
    // The join column is how the row was found, not a field of the fact.
    assert_eq!(ticket.value.get("email"), None);
    let invoice = found
        .facts
        .iter()
        .find(|f| f.provenance.fact_set == "invoices" && f.provenance.key == "7")
        .unwrap();
    assert_eq!(invoice.value.get("customer_id"), None);
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn values_keep_their_types() {
    let Some(db) = services::postgres("postgres values_keep_their_types").await else {
        return;
    };
    db.run(
        r#"
CREATE SCHEMA crm;
CREATE TABLE crm."Customers" (id integer PRIMARY KEY, first text, email text, status text,
    plan text, updated_at timestamptz);
INSERT INTO crm."Customers" VALUES (1, 'Ann', 'ann@example.com', 'active', 'gold',
    '2024-05-01 12:30:00.25+02');
CREATE TABLE invoices (id bigint, customer_id integer, amount numeric(12,2), big numeric,
    rate double precision, paid boolean, issued_at timestamp, due date, note text,
    ref uuid, meta jsonb, tags text[]);
INSERT INTO invoices VALUES (9000000000, 1, 12.50, 12345678901234567890.123456789, 0.25,
    true, '2024-04-02 08:15:00', '2024-05-02', NULL,
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"channel": "web"}', '{a,b}');
CREATE TABLE tickets (email text, subject text, opened date);
"#,
    )
    .await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(
        all[0].cursor,
        Some(CursorValue::Time(time("2024-05-01T10:30:00.25Z")))
    );
    let mut req = request(&all);
    req.fact_sets = vec!["invoices".into()];
    let found = c.lookup(&req).await.unwrap();
    assert_eq!(found.facts.len(), 1);
    let f = &found.facts[0];
    assert_eq!(
        f.value,
        json!({
            "id": 9000000000i64,
            "amount": 12.5,
            "big": "12345678901234567890.123456789",
            "rate": 0.25,
            "paid": true,
            "issued_at": "2024-04-02T08:15:00",
            "due": "2024-05-02",
            "note": null,
            "ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "meta": {"channel": "web"},
            "tags": ["a", "b"],
        })
    );
    assert_eq!(f.date, Some(time("2024-04-02T08:15:00Z")));
    drop(c);
    db.drop().await;
}

/// Domains read as their base type; types read through `to_json` keep its
/// spelling (a real's shortest digits, a timestamptz's offset); doubles JSON
/// has no number for become PostgreSQL's words for them.
#[tokio::test]
async fn domains_and_less_common_types_read_as_postgres_shows_them() {
    let Some(db) = services::postgres("postgres domains_and_less_common_types").await else {
        return;
    };
    db.run(
        r#"
CREATE SCHEMA crm;
CREATE DOMAIN customer_no AS integer CHECK (VALUE > 0);
CREATE DOMAIN label AS varchar(20);
CREATE TABLE crm."Customers" (id customer_no PRIMARY KEY, first label, email text, status text,
    plan char(4), updated_at timestamptz);
INSERT INTO crm."Customers" VALUES (7, 'Ann', 'ann@example.com', 'active', 'gold',
    '2024-05-01 12:30:00+02');
CREATE TABLE invoices (customer_id customer_no, qty smallint, ratio real, score double precision,
    worst double precision, issued_at timestamptz, span interval, hours int4range, code label);
INSERT INTO invoices VALUES (7, 3, 0.1, 'NaN', '-Infinity', '2024-04-02 08:15:00.5+00',
    '1 day 02:00:00', '[1,5)', 'A-1');
CREATE TABLE tickets (email text, subject text, opened date);
"#,
    )
    .await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].record.key, "7");
    assert_eq!(all[0].attrs.given_name.as_deref(), Some("Ann"));
    let found = c.lookup(&request(&all)).await.unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let invoice = found
        .facts
        .iter()
        .find(|f| f.provenance.fact_set == "invoices")
        .expect("the invoice");
    assert_eq!(
        invoice.value,
        json!({
            "qty": 3,
            "ratio": 0.1,
            "score": "NaN",
            "worst": "-Infinity",
            "issued_at": "2024-04-02T08:15:00.5+00:00",
            "span": "1 day 02:00:00",
            "hours": "[1,5)",
            "code": "A-1",
        })
    );
    assert_eq!(invoice.date, Some(time("2024-04-02T08:15:00.5Z")));
    let plan = found
        .facts
        .iter()
        .find(|f| f.provenance.fact_set == "plan")
        .expect("the plan");
    // char(4) keeps its padding, as the server shows it.
    assert_eq!(plan.value, json!("gold"));
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn since_and_limit_are_applied_per_record() {
    let Some(db) = services::postgres("postgres since_and_limit_are_applied_per_record").await
    else {
        return;
    };
    fill(&db, 3).await;
    db.run(
        "INSERT INTO invoices (customer_id, amount, issued_at) VALUES
            (1, 1, '2023-12-01'), (1, 2, '2024-03-01 09:00'), (1, 3, NULL), (2, 4, '2024-04-01')",
    )
    .await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    let one: Vec<_> = all
        .iter()
        .filter(|r| r.record.key == "1")
        .cloned()
        .collect();

    let mut req = request(&one);
    req.fact_sets = vec!["invoices".into()];
    req.since = Some(time("2024-01-15T00:00:00Z"));
    let found = c.lookup(&req).await.unwrap();
    let mut dates: Vec<Option<Timestamp>> = found.facts.iter().map(|f| f.date).collect();
    dates.sort();
    // Undated facts are kept by a since filter.
    assert_eq!(
        dates,
        vec![
            None,
            Some(time("2024-02-01T00:00:00Z")),
            Some(time("2024-03-01T09:00:00Z"))
        ]
    );

    let mut req = request(&all);
    req.fact_sets = vec!["invoices".into(), "tickets".into()];
    req.limit = Some(1);
    let found = c.lookup(&req).await.unwrap();
    let newest = |key: &str, set: &str| -> Vec<Option<Timestamp>> {
        found
            .facts
            .iter()
            .filter(|f| f.provenance.key == key && f.provenance.fact_set == set)
            .map(|f| f.date)
            .collect()
    };
    assert_eq!(
        newest("1", "invoices"),
        vec![Some(time("2024-03-01T09:00:00Z"))]
    );
    assert_eq!(
        newest("2", "invoices"),
        vec![Some(time("2024-04-01T00:00:00Z"))]
    );
    assert_eq!(
        newest("3", "invoices"),
        vec![Some(time("2024-02-01T00:00:00Z"))]
    );
    assert_eq!(newest("3", "tickets").len(), 1);
    // One record alone is asked with the single-value statement: the same answer.
    let mut req = request(&one);
    req.fact_sets = vec!["invoices".into()];
    req.limit = Some(1);
    let found = c.lookup(&req).await.unwrap();
    let dates: Vec<Option<Timestamp>> = found.facts.iter().map(|f| f.date).collect();
    assert_eq!(dates, vec![Some(time("2024-03-01T09:00:00Z"))]);

    // A date column of type `date`, bounded at the second.
    let mut req = request(&one);
    req.fact_sets = vec!["tickets".into()];
    req.since = Some(time("2024-03-01T00:00:00Z"));
    assert_eq!(c.lookup(&req).await.unwrap().facts.len(), 1);
    req.since = Some(time("2024-03-01T00:00:01Z"));
    assert_eq!(c.lookup(&req).await.unwrap().facts.len(), 0);
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn a_hostile_key_is_only_a_value() {
    let Some(db) = services::postgres("postgres a_hostile_key_is_only_a_value").await else {
        return;
    };
    fill(&db, 3).await;
    let s = source(&source_toml(&db.url(), ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    let hostile = "'); DROP TABLE customers; --";
    let mut rec = all[0].clone();
    rec.record.key = hostile.into();
    rec.attrs.emails = vec![hostile.into(), "p2@example.com".into()];
    let found = c.lookup(&request(&[rec])).await.unwrap();
    // Only the honest e-mail found anything.
    assert_eq!(found.facts.len(), 1, "{:?}", found.facts);
    assert_eq!(found.facts[0].provenance.fact_set, "tickets");
    let left: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM crm."Customers""#)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 3);
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable_at_once() {
    // Port 1 on this machine: nothing listens, the connection is refused.
    let s = source(&source_toml("postgres://kith@127.0.0.1:1/billing", ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let started = Instant::now();
    let err = match c.scan(None).await {
        Err(e) => e,
        Ok(_) => panic!("must fail"),
    };
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let row = json!({"id": 1, "email": "a@example.com"});
    let rec = kith_connect::rows::identity(&s, row.as_object().unwrap()).unwrap();
    assert!(
        c.lookup(&request(&[rec]))
            .await
            .unwrap_err()
            .is_unreachable()
    );
    assert!(c.check().await.unwrap_err().is_unreachable());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn concurrent_lookups_at_a_server_that_hangs_share_one_connection_attempt() {
    let (addr, connections) = crate::silent_server().await;
    let s = source(&source_toml(&format!("postgres://kith@{addr}/billing"), ""));
    crate::concurrent_lookups_share_one_connection_attempt(&s).await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_missing_password_variable_is_a_configuration_error_naming_it() {
    let var = "KITH_TEST_PG_PASSWORD_THAT_IS_NOT_SET";
    let s = source(&source_toml(
        "postgres://kith@127.0.0.1:5432/billing",
        &format!(", password_env = \"{var}\""),
    ));
    let err = s
        .connection
        .build(
            &s,
            &ConnectCtx {
                file_index: std::sync::Arc::new(MemoryFileIndex::default()),
            },
        )
        .err()
        .expect("must fail");
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains(var), "{err}");
}

#[test]
fn tls_and_passwords_belong_in_their_own_settings_not_the_url() {
    for url in [
        "postgres://kith@127.0.0.1:5432/billing?sslmode=disable",
        "postgres://kith@127.0.0.1:5432/billing?password=secret",
    ] {
        let s = source(&source_toml(url, ""));
        let err = s
            .connection
            .build(
                &s,
                &ConnectCtx {
                    file_index: std::sync::Arc::new(MemoryFileIndex::default()),
                },
            )
            .err()
            .expect("must fail");
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[tokio::test]
async fn refused_logins_are_unreachable_with_the_reason() {
    let Some(db) =
        services::postgres("postgres refused_logins_are_unreachable_with_the_reason").await
    else {
        return;
    };
    fill(&db, 1).await;
    // This server trusts local connections, so it never checks a password: a
    // login is refused here by a role that may not log in, and by a database
    // that does not exist.
    let role = services::unique("kith_nologin");
    db.run_admin(&format!("CREATE ROLE \"{role}\" NOLOGIN"))
        .await;
    let url = format!("postgres://{role}@127.0.0.1:5432/{}", db.name);
    let s = source(&source_toml(&url, ""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = {
        let (admin, _) = build(
            &source(&source_toml(&db.url(), "")),
            std::path::Path::new("."),
        );
        scan_all(admin.as_ref(), None).await
    };
    let err = c.lookup(&request(&all)).await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("not permitted to log in"), "{err}");

    let missing = format!("postgres://{}@127.0.0.1:5432/{}_gone", db.user, db.name);
    let (c, _) = build(
        &source(&source_toml(&missing, "")),
        std::path::Path::new("."),
    );
    let err = c.check().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    db.run_admin(&format!("DROP ROLE \"{role}\"")).await;
    db.drop().await;
}

#[tokio::test]
async fn a_slow_fact_set_fails_in_time_naming_it_while_others_answer() {
    let Some(db) =
        services::postgres("postgres a_slow_fact_set_fails_in_time_naming_it_while_others_answer")
            .await
    else {
        return;
    };
    fill(&db, 2).await;
    db.run("CREATE VIEW slow_invoices AS SELECT i.* FROM invoices i, (SELECT pg_sleep(3)) s")
        .await;
    let slow_toml = source_toml(&db.url(), "")
        .replace("query_timeout = \"3s\"", "query_timeout = \"500ms\"")
        .replace("name = \"billing\"", "name = \"slowbilling\"")
        .replace("[facts.invoices]", "[facts.slow]")
        .replace("from = \"invoices\"", "from = \"slow_invoices\"");
    let (slow, _) = build(&source(&slow_toml), std::path::Path::new("."));
    let (fast, _) = build(
        &source(&source_toml(&db.url(), "")),
        std::path::Path::new("."),
    );
    let (all, _) = scan_all(fast.as_ref(), None).await;
    let mut req = request(&all);
    req.fact_sets = vec!["slow".into(), "invoices".into()];

    let started = Instant::now();
    let timed = |c: std::sync::Arc<dyn Connector>, req: kith_connect::LookupRequest| async move {
        let r = c.lookup(&req).await;
        (r, started.elapsed())
    };
    let ((slow_result, slow_took), (fast_result, fast_took)) =
        tokio::join!(timed(slow, req.clone()), timed(fast, req));
    let err = slow_result.unwrap_err();
    assert!(err.is_timeout(), "the view shows this as timed out: {err}");
    assert!(!err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("fact set slow"), "{err}");
    assert!(err.to_string().contains("statement timeout"), "{err}");
    assert!(slow_took < Duration::from_secs(2), "{slow_took:?}");
    assert_eq!(fast_result.unwrap().facts.len(), 4);
    assert!(fast_took < Duration::from_secs(1), "{fast_took:?}");
    db.drop().await;
}

#[tokio::test]
async fn tls_is_used_as_configured() {
    let Some(db) = services::postgres("postgres tls_is_used_as_configured").await else {
        return;
    };
    fill(&db, 2).await;
    let connect = |tls: &str| {
        build(
            &source(&source_toml(&db.url(), &format!(", tls = \"{tls}\""))),
            std::path::Path::new("."),
        )
        .0
    };
    // This server offers TLS with a self-signed certificate: encryption
    // without verification works, verification against the public roots fails.
    for tls in ["disable", "prefer", "require"] {
        let c = connect(tls);
        c.check()
            .await
            .unwrap_or_else(|e| panic!("tls = {tls}: {e}"));
        assert_eq!(scan_all(c.as_ref(), None).await.0.len(), 2);
    }
    let err = connect("verify_full").check().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_the_fact_set() {
    let Some(db) =
        services::postgres("postgres a_missing_table_is_an_error_naming_the_fact_set").await
    else {
        return;
    };
    fill(&db, 2).await;
    let s =
        source(&source_toml(&db.url(), "").replace("from = \"invoices\"", "from = \"invoice\""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    let err = c.lookup(&request(&all)).await.unwrap_err();
    assert!(!err.is_unreachable(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("fact set invoices") && msg.contains("does not exist"),
        "{msg}"
    );

    let s =
        source(&source_toml(&db.url(), "").replace("join = \"customer_id\"", "join = \"client\""));
    let (c, _) = build(&s, std::path::Path::new("."));
    let msg = c.lookup(&request(&all)).await.unwrap_err().to_string();
    assert!(
        msg.contains("fact set invoices") && msg.contains("client"),
        "{msg}"
    );
    db.drop().await;
}
