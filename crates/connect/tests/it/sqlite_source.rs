use kith_model::CursorValue;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::{build, request, scan_all, source};

const SOURCE: &str = r#"
name = "billing"
verified = true
connection = { kind = "sqlite", path = "billing.db" }
[identity]
from = "customers"
key = "id"
cursor = { column = "updated_at" }
relation_column = "status"
attributes = { given_name = "first", email = "email" }
[facts.invoices]
from = "invoices"
join = "customer_id"
kind = "transaction"
date = "issued_at"
[facts.plan]
from = "customers"
join = "id"
kind = "profile"
cardinality = "one"
fields = ["plan"]
"#;

async fn make_db(path: &std::path::Path, customers: usize) {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    for stmt in [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, first TEXT, email TEXT, status TEXT, plan TEXT, updated_at TEXT)",
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, issued_at TEXT, note BLOB)",
        "CREATE INDEX invoices_customer ON invoices (customer_id)",
    ] {
        sqlx::query(stmt).execute(&pool).await.unwrap();
    }
    for i in 1..=customers {
        sqlx::query("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)")
            .bind(i as i64)
            .bind(format!("Person {i}"))
            .bind(format!("p{i}@example.com"))
            .bind(if i % 2 == 0 { "active" } else { "cancelled" })
            .bind("gold")
            .bind(format!("2024-01-{:02}T10:00:00Z", 1 + i % 28))
            .execute(&pool)
            .await
            .unwrap();
        for j in 0..2 {
            sqlx::query("INSERT INTO invoices (customer_id, amount, issued_at) VALUES (?, ?, ?)")
                .bind(i as i64)
                .bind(10.5 * (j + 1) as f64)
                .bind(format!("2024-0{}-01", j + 1))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    pool.close().await;
}

#[tokio::test]
async fn scan_reads_all_then_only_rows_at_or_after_the_cursor() {
    let d = tempfile::tempdir().unwrap();
    make_db(&d.path().join("billing.db"), 40).await;
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let (all, bad) = scan_all(c.as_ref(), None).await;
    assert_eq!(all.len(), 40);
    assert!(bad.is_empty());
    let first = all.iter().find(|r| r.record.key == "1").unwrap();
    assert_eq!(first.relation, Some(kith_model::Relation::FormerCustomer));
    let since = CursorValue::Time("2024-01-20T10:00:00Z".parse().unwrap());
    let (recent, _) = scan_all(c.as_ref(), Some(since.clone())).await;
    assert!(!recent.is_empty() && recent.len() < 40);
    assert!(recent.iter().all(|r| r.cursor.as_ref().unwrap() >= &since));
}

#[tokio::test]
async fn lookup_batches_keys_and_keeps_types() {
    let d = tempfile::tempdir().unwrap();
    make_db(&d.path().join("billing.db"), 1200).await;
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let (all, _) = scan_all(c.as_ref(), None).await;
    // More keys than one IN list holds.
    let found = c.lookup(&request(&all)).await.unwrap();
    let invoices = found
        .facts
        .iter()
        .filter(|f| f.kind.as_str() == "transaction")
        .count();
    assert_eq!(invoices, 2400);
    let one = found
        .facts
        .iter()
        .find(|f| f.provenance.key == "7" && f.kind.as_str() == "transaction")
        .unwrap();
    assert!(one.value["amount"].is_f64(), "{}", one.value);
    assert!(one.value["id"].is_i64(), "{}", one.value);
    // The join column is how the row was found, not a field of the fact.
    assert_eq!(one.value.get("customer_id"), None);
    assert_eq!(one.value["note"], json!(null));
    let plans = found
        .facts
        .iter()
        .filter(|f| f.attribute.as_deref() == Some("plan"))
        .count();
    assert_eq!(plans, 1200);

    let mut req = request(&all[..1]);
    req.since = Some("2024-02-01T00:00:00Z".parse().unwrap());
    req.fact_sets = vec!["invoices".into()];
    let recent = c.lookup(&req).await.unwrap();
    assert_eq!(recent.facts.len(), 1);
    assert_eq!(
        recent.facts[0].date,
        Some("2024-02-01T00:00:00Z".parse().unwrap())
    );
}

#[tokio::test]
async fn a_missing_database_is_unreachable_not_created() {
    let d = tempfile::tempdir().unwrap();
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let err = match c.scan(None).await {
        Err(e) => e,
        Ok(_) => panic!("must fail"),
    };
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("billing.db"), "{err}");
    assert!(!d.path().join("billing.db").exists());
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_the_fact_set() {
    let d = tempfile::tempdir().unwrap();
    make_db(&d.path().join("billing.db"), 2).await;
    let s = source(&SOURCE.replace("from = \"invoices\"", "from = \"invoice\""));
    let (c, _) = build(&s, d.path());
    let (all, _) = scan_all(c.as_ref(), None).await;
    let err = c.lookup(&request(&all)).await.unwrap_err();
    assert!(!err.is_unreachable());
    assert!(
        err.to_string().contains("invoices") && err.to_string().contains("no such table"),
        "{err}"
    );
}

#[tokio::test]
async fn cursors_kept_as_unix_seconds_and_email_joins_in_any_case() {
    let d = tempfile::tempdir().unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(d.path().join("desk.db"))
                .create_if_missing(true),
        )
        .await
        .unwrap();
    for stmt in [
        "CREATE TABLE contacts (id TEXT PRIMARY KEY, email TEXT, changed INTEGER)",
        "CREATE TABLE tickets (id TEXT, contact_email TEXT, opened TEXT)",
        // 2024-01-01 and 2024-06-01 as Unix seconds.
        "INSERT INTO contacts VALUES ('c1', 'ann@example.com', 1704067200), ('c2', 'bob@example.com', 1717200000)",
        "INSERT INTO tickets VALUES ('t1', 'Ann@Example.COM', '2024-02-01'), ('t2', ' ann@example.com', '2024-03-01'), ('t3', 'bob@example.com', '2024-03-02')",
    ] {
        sqlx::query(stmt).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let s = source(
        r#"
        name = "desk"
        connection = { kind = "sqlite", path = "desk.db" }
        [identity]
        from = "contacts"
        key = "id"
        cursor = { column = "changed", type = "time" }
        attributes = { email = "email" }
        [facts.tickets]
        from = "tickets"
        join = "contact_email"
        on = "email"
        kind = "case"
        date = "opened"
    "#,
    );
    let (c, _) = build(&s, d.path());
    let since = CursorValue::Time("2024-03-01T00:00:00Z".parse().unwrap());
    let (recent, _) = scan_all(c.as_ref(), Some(since)).await;
    assert_eq!(
        recent
            .iter()
            .map(|r| r.record.key.as_str())
            .collect::<Vec<_>>(),
        vec!["c2"]
    );
    let (all, _) = scan_all(c.as_ref(), None).await;
    let ann: Vec<_> = all.into_iter().filter(|r| r.record.key == "c1").collect();
    let found = c.lookup(&request(&ann)).await.unwrap();
    let mut ids: Vec<&str> = found
        .facts
        .iter()
        .map(|f| f.value["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["t1", "t2"]);
}
