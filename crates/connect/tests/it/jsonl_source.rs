use serde_json::json;

use crate::{build, request, scan_all, source};

const SOURCE: &str = r#"
name = "marketing"
connection = { kind = "jsonl", dir = "m" }
[identity]
from = "contacts.jsonl"
key = "id"
attributes = { full_name = "name", email = "contact.email" }
[facts.offers]
from = "offers.jsonl"
join = "contact_id"
kind = "offer"
date = "sent_at"
[facts.consents]
from = "contacts.jsonl"
join = "id"
kind = "consent"
cardinality = "one"
fields = { newsletter = "consent.newsletter" }
"#;

fn write(dir: &std::path::Path, name: &str, text: &[u8]) {
    std::fs::create_dir_all(dir.join("m")).unwrap();
    std::fs::write(dir.join("m").join(name), text).unwrap();
}

#[tokio::test]
async fn scan_flattens_objects_and_quarantines_lines_that_are_not_json() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "contacts.jsonl",
        b"{\"id\":\"M-1\",\"name\":\"Ann Lee\",\"contact\":{\"email\":\"ann@example.com\"},\"consent\":{\"newsletter\":true}}\n\
          \n\
          {\"id\":\"M-2\",\"name\":\"Bob\"\n\
          [1,2,3]\n\
          {\"id\":\"M-3\",\"name\":\"Cy\",\"contact\":{\"email\":\"cy@example.com\"}}\n",
    );
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let (good, bad) = scan_all(c.as_ref(), None).await;
    assert_eq!(
        good.iter()
            .map(|r| r.record.key.as_str())
            .collect::<Vec<_>>(),
        vec!["M-1", "M-3"]
    );
    assert_eq!(good[0].attrs.emails, vec!["ann@example.com"]);
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].location, "contacts.jsonl line 3");
    assert!(bad[0].reason.starts_with("not JSON"), "{}", bad[0].reason);
    assert_eq!(bad[1].location, "contacts.jsonl line 4");
    assert!(bad[1].reason.contains("array"));
}

#[tokio::test]
async fn lookup_reads_rows_at_their_offsets_and_survives_rewrites() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "contacts.jsonl",
        b"{\"id\":\"M-1\",\"name\":\"Ann\",\"contact\":{\"email\":\"a@x.com\"},\"consent\":{\"newsletter\":false}}\n",
    );
    write(
        d.path(),
        "offers.jsonl",
        b"{\"contact_id\":\"M-1\",\"offer\":\"Spring\",\"sent_at\":\"2024-03-01\",\"response\":\"clicked\"}\n\
          {\"contact_id\":\"M-2\",\"offer\":\"Spring\",\"sent_at\":\"2024-03-01\"}\n\
          not json at all\n\
          {\"contact_id\":\"M-1\",\"offer\":\"Summer\",\"sent_at\":\"2024-06-01\",\"response\":\"ignored\"}\n",
    );
    let s = source(SOURCE);
    let (c, _) = build(&s, d.path());
    let (good, _) = scan_all(c.as_ref(), None).await;
    let found = c.lookup(&request(&good)).await.unwrap();
    let offers: Vec<_> = found
        .facts
        .iter()
        .filter(|f| f.kind.as_str() == "offer")
        .collect();
    assert_eq!(offers.len(), 2);
    let consent = found
        .facts
        .iter()
        .find(|f| f.kind.as_str() == "consent")
        .unwrap();
    assert_eq!(consent.value, json!(false));

    write(
        d.path(),
        "offers.jsonl",
        b"{\"contact_id\":\"M-1\",\"offer\":\"Autumn\",\"sent_at\":\"2024-09-01\",\"response\":\"redeemed\"}\n",
    );
    let found = c.lookup(&request(&good)).await.unwrap();
    let offers: Vec<_> = found
        .facts
        .iter()
        .filter(|f| f.kind.as_str() == "offer")
        .map(|f| f.value["offer"].clone())
        .collect();
    assert_eq!(offers, vec![json!("Autumn")]);
}
