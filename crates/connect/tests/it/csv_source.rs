use std::sync::atomic::Ordering;

use kith_model::{Cardinality, CursorValue};
use serde_json::json;

use crate::{build, request, scan_all, source};

const SOURCE: &str = r#"
name = "shop"
connection = { kind = "csv", dir = "shop" }
[identity]
from = "customers.csv"
key = "id"
cursor = { column = "updated_at" }
attributes = { given_name = "first", family_name = "last", email = "email", street = "address" }
[facts.orders]
from = "orders.csv"
join = "customer_id"
kind = "transaction"
date = "placed_at"
[facts.tickets]
from = "tickets.csv"
join = "contact"
on = "email"
kind = "case"
date = "opened"
[facts.address]
from = "customers.csv"
join = "id"
kind = "profile"
cardinality = "one"
fields = { street = "address" }
updated_at = "updated_at"
"#;

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir.join("shop")).unwrap();
    std::fs::write(dir.join("shop").join(name), bytes).unwrap();
}

fn customers() -> Vec<u8> {
    let mut b = b"id,first,last,email,address,updated_at\n".to_vec();
    b.extend_from_slice(
        b"1,Ann,Lee,Ann.Lee@Example.com,\"Flat 2\n14 Mill Lane, Leeds\",2024-01-05T10:00:00Z\n",
    );
    b.extend_from_slice(b"2,Bob,Stone,bob@example.org,3 High St,2024-02-01T00:00:00Z\n");
    b.extend_from_slice(b"3,too,many,fields,here,2024-02-01,extra\n");
    b.extend_from_slice(b"4,Jos\xe9,Garc\xeda,jose@example.net,1 Plaza,2024-03-01T00:00:00Z\n");
    b.extend_from_slice(b"5,Cy,Day,cy@example.com,9 Low Rd,not a date\n");
    b.extend_from_slice(b",No,Key,nokey@example.com,1 Nowhere,2024-03-01T00:00:00Z\n");
    b
}

#[tokio::test]
async fn scan_reads_quoted_newlines_and_quarantines_bad_rows_with_their_line() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "customers.csv", &customers());
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let (good, bad) = scan_all(c.as_ref(), None).await;
    let keys: Vec<&str> = good.iter().map(|r| r.record.key.as_str()).collect();
    assert_eq!(keys, vec!["1", "2"]);
    assert_eq!(
        good[0].attrs.street.as_deref(),
        Some("Flat 2\n14 Mill Lane, Leeds")
    );
    assert_eq!(good[0].attrs.emails, vec!["Ann.Lee@Example.com"]);

    let reasons: Vec<(String, String)> = bad
        .iter()
        .map(|q| (q.location.clone(), q.reason.clone()))
        .collect();
    assert_eq!(bad.len(), 4, "{reasons:?}");
    // The quoted newline makes row 1 span lines 2-3, so the wrong-width row is on line 5.
    assert_eq!(bad[0].location, "customers.csv line 5");
    assert!(bad[0].reason.contains("expected 6 fields"), "{reasons:?}");
    assert_eq!(bad[1].location, "customers.csv line 6");
    assert!(bad[1].reason.contains("UTF-8"), "{reasons:?}");
    assert_eq!(bad[2].key.as_deref(), Some("5"));
    assert!(bad[2].reason.contains("not a time"), "{reasons:?}");
    assert!(bad[3].reason.contains("key column"), "{reasons:?}");
}

#[tokio::test]
async fn scan_from_a_cursor_drops_older_rows() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "customers.csv", &customers());
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let since = CursorValue::Time("2024-01-10T00:00:00Z".parse().unwrap());
    let (good, _) = scan_all(c.as_ref(), Some(since)).await;
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].record.key, "2");
}

#[tokio::test]
async fn lookup_finds_many_rows_per_key_through_the_index_and_notices_rewrites() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "customers.csv", &customers());
    write(
        d.path(),
        "orders.csv",
        b"order_id,customer_id,placed_at,total,note\n\
          o1,1,2024-01-01,10.00,first\n\
          o2,2,2024-01-02,5.00,\"multi\nline, note\"\n\
          o3,1,2024-03-01,30.00,third\n\
          o4,1,2024-02-01,20.00,second\n",
    );
    write(
        d.path(),
        "tickets.csv",
        b"id,contact,opened,subject\nt1,ann.lee@example.com,2024-04-01,Late box\nt2,bob@example.org,2024-04-02,Hi\n",
    );
    let s = source(SOURCE);
    let (c, index) = build(&s, d.path());
    let (good, _) = scan_all(c.as_ref(), None).await;
    let ann = vec![good[0].clone()];

    let found = c.lookup(&request(&ann)).await.unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let orders: Vec<&str> = found
        .facts
        .iter()
        .filter(|f| f.provenance.fact_set == "orders")
        .map(|f| f.value["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(orders.len(), 3);
    assert!(orders.contains(&"o1") && orders.contains(&"o3") && orders.contains(&"o4"));
    // Tickets join on e-mail, whatever its case in either file.
    let tickets: Vec<_> = found
        .facts
        .iter()
        .filter(|f| f.kind.as_str() == "case")
        .collect();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].value["subject"], json!("Late box"));
    assert_eq!(tickets[0].provenance.key, "1");
    // The profile attribute comes from a row with an embedded newline.
    let street = found
        .facts
        .iter()
        .find(|f| f.cardinality == Cardinality::One)
        .unwrap();
    assert_eq!(street.attribute.as_deref(), Some("street"));
    assert_eq!(street.value, json!("Flat 2\n14 Mill Lane, Leeds"));
    assert_eq!(
        street.provenance.updated_at,
        Some("2024-01-05T10:00:00Z".parse().unwrap())
    );
    let built = index.rebuilds.load(Ordering::Relaxed);
    assert_eq!(built, 3, "one index per fact-set file and join column");

    // A second lookup reuses the indexes.
    c.lookup(&request(&ann)).await.unwrap();
    assert_eq!(index.rebuilds.load(Ordering::Relaxed), built);

    // The orders file is rewritten (rows moved, one added): the index is rebuilt.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(
        d.path(),
        "orders.csv",
        b"order_id,customer_id,placed_at,total,note\n\
          o5,1,2024-05-01,50.00,newest\n\
          o3,1,2024-03-01,30.00,third\n",
    );
    let again = c.lookup(&request(&ann)).await.unwrap();
    let mut orders: Vec<&str> = again
        .facts
        .iter()
        .filter(|f| f.provenance.fact_set == "orders")
        .map(|f| f.value["order_id"].as_str().unwrap())
        .collect();
    orders.sort();
    assert_eq!(orders, vec!["o3", "o5"]);
    assert_eq!(index.rebuilds.load(Ordering::Relaxed), built + 1);

    // since and limit keep the newest.
    let mut req = request(&ann);
    req.fact_sets = vec!["orders".into()];
    req.limit = Some(1);
    let newest = c.lookup(&req).await.unwrap();
    assert_eq!(newest.facts.len(), 1);
    assert_eq!(newest.facts[0].value["order_id"], json!("o5"));
}

#[tokio::test]
async fn a_missing_file_is_unreachable_and_named() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "customers.csv", &customers());
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let (good, _) = scan_all(c.as_ref(), None).await;
    let err = c.lookup(&request(&good[..1])).await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("orders.csv"), "{err}");

    std::fs::remove_file(d.path().join("shop/customers.csv")).unwrap();
    let err = match c.scan(None).await {
        Err(e) => e,
        Ok(_) => panic!("scan of a missing file must fail"),
    };
    assert!(
        err.is_unreachable() && err.to_string().contains("customers.csv"),
        "{err}"
    );
    assert!(c.check().await.is_err());
}
