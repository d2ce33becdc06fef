//! The MySQL/MariaDB connector against this machine's server (see `services`).

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta};
use kith_connect::{ConnectCtx, Connector, Error, MemoryFileIndex};
use kith_model::{CursorValue, Timestamp};
use serde_json::json;

use crate::services::{self, MyDb};
use crate::{build, request, scan_all, source};

/// Identity in a database-qualified, mixed-case table, to exercise quoting.
fn source_toml(url: &str, db: &str, extra_connection: &str) -> String {
    format!(
        r#"
name = "shop"
connection = {{ kind = "mysql", url = "{url}", max_connections = 2, connect_timeout = "2s", query_timeout = "3s"{extra_connection} }}
[identity]
from = "{db}.Customers"
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
from = "{db}.Customers"
join = "id"
kind = "profile"
cardinality = "one"
fields = ["plan"]
"#
    )
}

const TABLES: &str = r#"
CREATE TABLE Customers (id INT PRIMARY KEY, first VARCHAR(100), email VARCHAR(200),
    status VARCHAR(20), plan VARCHAR(20), updated_at DATETIME(6));
CREATE TABLE invoices (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL,
    amount DECIMAL(12,2), paid BOOLEAN, issued_at DATETIME, note TEXT, INDEX (customer_id));
CREATE TABLE tickets (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL,
    subject VARCHAR(100), opened DATE, INDEX (email));
"#;

/// `customers` people; two invoices each (January and February 2024) and one ticket.
async fn fill(db: &MyDb, customers: usize) {
    db.run(TABLES).await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let (mut people, mut invoices, mut tickets) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=customers {
        let changed = start + TimeDelta::days((i % 28) as i64);
        let status = if i % 2 == 0 { "active" } else { "cancelled" };
        people.push(format!(
            "({i}, 'Person {i}', 'p{i}@example.com', '{status}', 'gold', '{changed}')"
        ));
        for j in 1..=2 {
            invoices.push(format!(
                "({i}, {}, {}, '2024-0{j}-01')",
                10.5 * j as f64,
                j == 1
            ));
        }
        tickets.push(format!("('p{i}@example.com', 'Help', '2024-03-01')"));
    }
    db.run(&format!(
        "INSERT INTO Customers VALUES {};
         INSERT INTO invoices (customer_id, amount, paid, issued_at) VALUES {};
         INSERT INTO tickets (email, subject, opened) VALUES {}",
        people.join(", "),
        invoices.join(", "),
        tickets.join(", ")
    ))
    .await;
}

fn time(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn connector(db: &MyDb) -> std::sync::Arc<dyn Connector> {
    build(
        &source(&source_toml(&db.url(), &db.name, "")),
        std::path::Path::new("."),
    )
    .0
}

#[tokio::test]
async fn scan_reads_all_then_only_rows_at_or_after_the_cursor() {
    let Some(db) =
        services::mysql("mysql scan_reads_all_then_only_rows_at_or_after_the_cursor").await
    else {
        return;
    };
    fill(&db, 40).await;
    let c = connector(&db);
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
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn a_row_deleted_at_the_source_is_gone_from_the_next_full_scan() {
    let Some(db) =
        services::mysql("mysql a_row_deleted_at_the_source_is_gone_from_the_next_full_scan").await
    else {
        return;
    };
    fill(&db, 5).await;
    let c = connector(&db);
    assert_eq!(scan_all(c.as_ref(), None).await.0.len(), 5);
    db.run("DELETE FROM Customers WHERE id = 3").await;
    let (after, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(after.len(), 4);
    assert!(after.iter().all(|r| r.record.key != "3"));
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn lookup_batches_keys_joined_by_integer_and_by_email() {
    let Some(db) =
        services::mysql("mysql lookup_batches_keys_joined_by_integer_and_by_email").await
    else {
        return;
    };
    // More people than one batch of join values.
    fill(&db, 1200).await;
    // The default collation ignores case, so the server also finds this
    // ticket for p5@example.com; it must still reach that person.
    db.run("INSERT INTO tickets (email, subject, opened) VALUES ('P5@Example.com', 'Shouting', '2024-03-02')")
        .await;
    let c = connector(&db);
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
    assert_eq!(count("tickets"), 1201);
    assert_eq!(count("plan"), 1200);
    let shouting = found
        .facts
        .iter()
        .find(|f| f.value["subject"] == json!("Shouting"))
        .unwrap();
    assert_eq!(shouting.provenance.key, "5");
    let invoice = found
        .facts
        .iter()
        .find(|f| f.provenance.fact_set == "invoices" && f.provenance.key == "1100")
        .unwrap();
    // The join column is how the row was found, not a field of the fact.
    assert_eq!(invoice.value.get("customer_id"), None);
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn values_keep_their_types() {
    let Some(db) = services::mysql("mysql values_keep_their_types").await else {
        return;
    };
    db.run(
        r#"
CREATE TABLE Customers (id INT PRIMARY KEY, first VARCHAR(100), email VARCHAR(200),
    status VARCHAR(20), plan VARCHAR(20), updated_at DATETIME(6));
INSERT INTO Customers VALUES (1, 'Ann', 'ann@example.com', 'active', 'gold', '2024-05-01 10:30:00.25');
CREATE TABLE invoices (id BIGINT, customer_id INT, amount DECIMAL(12,2), big DECIMAL(30,9),
    rate DOUBLE, ratio FLOAT, paid BOOLEAN, qty INT UNSIGNED, issued_at DATETIME, due DATE,
    stamp TIMESTAMP NULL, note TEXT, raw BLOB, size ENUM('s','m','l'), meta JSON);
INSERT INTO invoices VALUES (9000000000, 1, 12.50, 123456789012345678901.123456789, 0.25, 0.1,
    TRUE, 4000000000, '2024-04-02 08:15:00', '2024-05-02', '2024-04-02 08:15:00', NULL,
    'bytes', 'm', '{"channel": "web"}');
CREATE TABLE tickets (email VARCHAR(200), subject TEXT, opened DATE);
"#,
    )
    .await;
    let c = connector(&db);
    let (all, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(
        all[0].cursor,
        Some(CursorValue::Time(time("2024-05-01T10:30:00.25Z")))
    );
    let mut req = request(&all);
    req.fact_sets = vec!["invoices".into()];
    let found = c.lookup(&req).await.unwrap();
    assert_eq!(found.facts.len(), 1);
    let mut v = found.facts[0].value.clone();
    // MariaDB's JSON is text with a check; MySQL's is a type of its own.
    let meta = v.as_object_mut().unwrap().remove("meta").unwrap();
    let meta = match meta {
        serde_json::Value::String(s) => serde_json::from_str(&s).unwrap(),
        other => other,
    };
    assert_eq!(meta, json!({"channel": "web"}));
    assert_eq!(
        v,
        json!({
            "id": 9000000000i64,
            "amount": 12.5,
            "big": "123456789012345678901.123456789",
            "rate": 0.25,
            "ratio": 0.1,
            "paid": true,
            "qty": 4000000000u64,
            "issued_at": "2024-04-02T08:15:00Z",
            "due": "2024-05-02",
            "stamp": "2024-04-02T08:15:00Z",
            "note": null,
            "raw": "bytes",
            "size": "m",
        })
    );
    assert_eq!(found.facts[0].date, Some(time("2024-04-02T08:15:00Z")));
    drop(c);
    db.drop().await;
}

#[tokio::test]
async fn since_and_limit_are_applied_per_record() {
    let Some(db) = services::mysql("mysql since_and_limit_are_applied_per_record").await else {
        return;
    };
    fill(&db, 3).await;
    db.run(
        "INSERT INTO invoices (customer_id, amount, issued_at) VALUES
            (1, 1, '2023-12-01'), (1, 2, '2024-03-01 09:00'), (1, 3, NULL), (2, 4, '2024-04-01')",
    )
    .await;
    let c = connector(&db);
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
    assert!(
        found
            .facts
            .iter()
            .all(|f| f.value.get("kith__rank").is_none()),
        "the rank column is kith's, not a field"
    );

    // A date column of type DATE, bounded at the second.
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
    let Some(db) = services::mysql("mysql a_hostile_key_is_only_a_value").await else {
        return;
    };
    fill(&db, 3).await;
    let c = connector(&db);
    let (all, _) = scan_all(c.as_ref(), None).await;
    let hostile = "'); DROP TABLE Customers; --";
    let mut rec = all[0].clone();
    rec.record.key = hostile.into();
    rec.attrs.emails = vec![hostile.into(), "p2@example.com".into()];
    let found = c.lookup(&request(&[rec])).await.unwrap();
    // Only the honest e-mail found anything.
    assert_eq!(found.facts.len(), 1, "{:?}", found.facts);
    assert_eq!(found.facts[0].provenance.fact_set, "tickets");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM Customers")
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
    let s = source(&source_toml("mysql://kith@127.0.0.1:1/shop", "shop", ""));
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
    let s = source(&source_toml(
        &format!("mysql://kith@{addr}/shop"),
        "shop",
        "",
    ));
    crate::concurrent_lookups_share_one_connection_attempt(&s).await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_missing_password_variable_is_a_configuration_error_naming_it() {
    let var = "KITH_TEST_MYSQL_PASSWORD_THAT_IS_NOT_SET";
    let s = source(&source_toml(
        "mysql://kith@127.0.0.1:3306/shop",
        "shop",
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

#[tokio::test]
async fn refused_logins_are_unreachable_with_the_reason() {
    let Some(db) = services::mysql("mysql refused_logins_are_unreachable_with_the_reason").await
    else {
        return;
    };
    fill(&db, 1).await;
    let (all, _) = scan_all(connector(&db).as_ref(), None).await;
    // A user with a password, asked for without one (the test cannot set the
    // variable `password_env` would name: that needs `unsafe`).
    let user = services::unique("kith_pw");
    db.run_admin(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'not-given'; \
         CREATE USER '{user}'@'localhost' IDENTIFIED BY 'not-given'"
    ))
    .await;
    let url = format!("mysql://{user}@127.0.0.1:3306/{}", db.name);
    let (c, _) = build(
        &source(&source_toml(&url, &db.name, "")),
        std::path::Path::new("."),
    );
    let err = c.lookup(&request(&all)).await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("Access denied"), "{err}");
    assert!(!err.to_string().contains("not-given"), "{err}");

    let missing = format!("mysql://root@127.0.0.1:3306/{}_gone", db.name);
    let (c, _) = build(
        &source(&source_toml(&missing, &db.name, "")),
        std::path::Path::new("."),
    );
    let err = c.check().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("Unknown database"), "{err}");
    db.run_admin(&format!(
        "DROP USER '{user}'@'%'; DROP USER '{user}'@'localhost'"
    ))
    .await;
    db.drop().await;
}

#[tokio::test]
async fn a_slow_fact_set_fails_in_time_naming_it_while_others_answer() {
    let Some(db) =
        services::mysql("mysql a_slow_fact_set_fails_in_time_naming_it_while_others_answer").await
    else {
        return;
    };
    fill(&db, 2).await;
    db.run("CREATE VIEW slow_invoices AS SELECT i.* FROM invoices i WHERE SLEEP(3) = 0")
        .await;
    let slow_toml = source_toml(&db.url(), &db.name, "")
        .replace("query_timeout = \"3s\"", "query_timeout = \"500ms\"")
        .replace("name = \"shop\"", "name = \"slowshop\"")
        .replace("[facts.invoices]", "[facts.slow]")
        .replace("from = \"invoices\"", "from = \"slow_invoices\"");
    let (slow, _) = build(&source(&slow_toml), std::path::Path::new("."));
    let fast = connector(&db);
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
    let msg = err.to_string();
    assert!(
        msg.contains("max_statement_time") || msg.contains("execution time exceeded"),
        "{msg}"
    );
    assert!(slow_took < Duration::from_secs(2), "{slow_took:?}");
    assert_eq!(fast_result.unwrap().facts.len(), 4);
    assert!(fast_took < Duration::from_secs(1), "{fast_took:?}");
    db.drop().await;
}

#[tokio::test]
async fn tls_is_used_as_configured() {
    let Some(db) = services::mysql("mysql tls_is_used_as_configured").await else {
        return;
    };
    fill(&db, 2).await;
    let connect = |tls: &str| {
        build(
            &source(&source_toml(
                &db.url(),
                &db.name,
                &format!(", tls = \"{tls}\""),
            )),
            std::path::Path::new("."),
        )
        .0
    };
    let tls_offered: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'have_ssl'")
        .fetch_optional(&db.pool)
        .await
        .unwrap();
    let tls_offered = tls_offered.is_some_and(|(_, v)| v == "YES");
    for tls in ["disable", "prefer"] {
        connect(tls)
            .check()
            .await
            .unwrap_or_else(|e| panic!("tls = {tls}: {e}"));
    }
    let required = connect("require").check().await;
    if tls_offered {
        required.unwrap();
    } else {
        // A server without TLS must not be used when TLS is required.
        let err = required.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
    }
    db.drop().await;
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_the_fact_set() {
    let Some(db) = services::mysql("mysql a_missing_table_is_an_error_naming_the_fact_set").await
    else {
        return;
    };
    fill(&db, 2).await;
    let s = source(
        &source_toml(&db.url(), &db.name, "").replace("from = \"invoices\"", "from = \"invoice\""),
    );
    let (c, _) = build(&s, std::path::Path::new("."));
    let (all, _) = scan_all(c.as_ref(), None).await;
    let err = c.lookup(&request(&all)).await.unwrap_err();
    assert!(!err.is_unreachable(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("fact set invoices") && msg.contains("doesn't exist"),
        "{msg}"
    );

    let s = source(
        &source_toml(&db.url(), &db.name, "")
            .replace("join = \"customer_id\"", "join = \"client\""),
    );
    let (c, _) = build(&s, std::path::Path::new("."));
    let msg = c.lookup(&request(&all)).await.unwrap_err().to_string();
    assert!(
        msg.contains("fact set invoices") && msg.contains("client"),
        "{msg}"
    );
    db.drop().await;
}
