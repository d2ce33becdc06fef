use std::collections::{BTreeSet, HashMap};

use kith_connect::{ConnectorConfig, SourceConfig};
use sqlx::Row as _;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::*;

async fn generated(people: usize, seed: u64) -> (tempfile::TempDir, Generated) {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(
        dir.path(),
        &GenerateOptions {
            people,
            seed,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (dir, g)
}

async fn open(path: &Path) -> SqliteConnection {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    SqliteConnection::connect_with(&opts).await.unwrap()
}

/// Header and the well-formed rows of a CSV file (the broken ones skipped).
fn read_csv(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .byte_records()
        .map(Result::unwrap)
        .filter(|r| r.len() == header.len())
        .filter_map(|r| {
            r.iter()
                .map(|f| std::str::from_utf8(f).ok().map(String::from))
                .collect::<Option<Vec<String>>>()
        })
        .map(|fields| header.iter().cloned().zip(fields).collect())
        .collect();
    (header, rows)
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Column names of a JSON object, nested objects flattened with dots.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_object() {
                flatten(&name, v, out);
            } else {
                out.insert(name);
            }
        }
    }
}

async fn columns_of(dir: &Path, conn: &ConnectorConfig, from: &str) -> BTreeSet<String> {
    match conn {
        ConnectorConfig::Sqlite { path } => {
            let mut db = open(&dir.join(path)).await;
            sqlx::query("SELECT name FROM pragma_table_info(?)")
                .bind(from)
                .fetch_all(&mut db)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect()
        }
        ConnectorConfig::Csv { dir: d, .. } => {
            read_csv(&dir.join(d).join(from)).0.into_iter().collect()
        }
        ConnectorConfig::Jsonl { dir: d } => {
            let mut out = BTreeSet::new();
            flatten("", &read_jsonl(&dir.join(d).join(from))[0], &mut out);
            out
        }
        // The loyalty platform's API serves the loyalty CSV files' rows.
        ConnectorConfig::Http(_) => {
            let file = if from.ends_with("/entitlements") {
                "loyalty/entitlements.csv"
            } else {
                "loyalty/members.csv"
            };
            read_csv(&dir.join(file)).0.into_iter().collect()
        }
        other => panic!("the demo has no {} source", other.kind()),
    }
}

/// Every (file or table, column) a source's mapping names.
fn mapped_columns(s: &SourceConfig) -> Vec<(String, String)> {
    let id = &s.identity;
    let mut out: Vec<(String, String)> = vec![(id.from.clone(), id.key.clone())];
    let mut named = |from: &str, col: &str| out.push((from.to_string(), col.to_string()));
    if let Some(c) = &id.cursor {
        named(&id.from, &c.column);
    }
    for c in [&id.kind_column, &id.relation_column, &id.updated_at]
        .into_iter()
        .flatten()
    {
        named(&id.from, c);
    }
    for (_, c) in id.attributes.columns() {
        named(&id.from, c);
    }
    for fs in s.facts.values() {
        named(&fs.from, &fs.join);
        for c in [&fs.date, &fs.updated_at].into_iter().flatten() {
            named(&fs.from, c);
        }
        for (_, c) in fs.fields.iter().flat_map(|f| f.pairs()) {
            named(&fs.from, c);
        }
    }
    out
}

#[tokio::test]
async fn the_config_follows_the_mapping_contract() {
    let (dir, g) = generated(40, 1).await;
    assert_eq!(g.config_path, dir.path().join("kith.toml"));
    let text = std::fs::read_to_string(&g.config_path).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    let hub: kith_hub::HubSettings = value["hub"].clone().try_into().unwrap();
    assert_eq!(hub.store, "hub.db");

    let mut names = Vec::new();
    for src in value["sources"].as_array().unwrap() {
        let s: SourceConfig = src.clone().try_into().unwrap();
        assert!(s.validate().is_empty(), "{}: {:?}", s.name, s.validate());
        for (from, col) in mapped_columns(&s) {
            let have = columns_of(dir.path(), &s.connection, &from).await;
            assert!(
                have.contains(&col),
                "{}: {from} has no column {col:?} (has {have:?})",
                s.name
            );
        }
        names.push(s.name);
    }
    assert_eq!(
        names,
        ["billing", "support", "shop", "marketing", "loyalty"]
    );

    // The project's own loader agrees, paths and all.
    let config = crate::config::Config::load(&g.config_path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.sources.len(), 5);
}

/// A table's rows as text, in key order.
async fn dump(db: &Path, table: &str) -> String {
    let mut conn = open(db).await;
    let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info(?)")
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let row = cols
        .iter()
        .map(|c| format!("quote({c})"))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    let sql = format!("SELECT {row} FROM {table} ORDER BY id");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0) + "\n")
        .collect()
}

const FILES: &[&str] = &[
    "kith.toml",
    "shop/customers.csv",
    "shop/orders.csv",
    "marketing/contacts.jsonl",
    "marketing/offers.jsonl",
    "loyalty/members.csv",
    "loyalty/entitlements.csv",
    "truth.csv",
];

const TABLES: &[(&str, &str)] = &[
    ("billing.db", "customers"),
    ("billing.db", "invoices"),
    ("billing.db", "subscriptions"),
    ("support.db", "contacts"),
    ("support.db", "tickets"),
];

#[tokio::test]
async fn the_same_seed_writes_the_same_data() {
    let (a, ga) = generated(200, 11).await;
    let (b, gb) = generated(200, 11).await;
    let (c, _) = generated(200, 12).await;
    assert_eq!(ga.counts, gb.counts);
    for f in FILES {
        let bytes = std::fs::read(a.path().join(f)).unwrap();
        assert_eq!(bytes, std::fs::read(b.path().join(f)).unwrap(), "{f}");
        if *f != "kith.toml" {
            assert_ne!(bytes, std::fs::read(c.path().join(f)).unwrap(), "{f}");
        }
    }
    for (db, table) in TABLES {
        let da = dump(&a.path().join(db), table).await;
        assert_eq!(da, dump(&b.path().join(db), table).await, "{db} {table}");
        assert_eq!(da.lines().count(), ga.counts[&format!("{db}:{table}")]);
    }

    // Generating again into the same folder replaces the data, not adds to it.
    let again = generate(
        a.path(),
        &GenerateOptions {
            people: 200,
            seed: 11,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(again.counts, ga.counts);
    for (db, table) in TABLES {
        assert_eq!(
            dump(&a.path().join(db), table).await,
            dump(&b.path().join(db), table).await
        );
    }
}

#[tokio::test]
async fn the_showcase_is_in_all_five_sources() {
    let (dir, g) = generated(300, 7).await;
    let d = dir.path();
    let email = g.showcase_email.as_str();
    assert_eq!(g.showcase_name, "Margaret Ellison");

    // Billing: current customer, new address, subscriptions and invoices.
    let mut billing = open(&d.join("billing.db")).await;
    let row = sqlx::query(
        "SELECT id, first_name, last_name, street, postcode, status, updated_at
         FROM customers WHERE email = ?",
    )
    .bind(email)
    .fetch_one(&mut billing)
    .await
    .unwrap();
    let id: i64 = row.get("id");
    assert_eq!(row.get::<String, _>("first_name"), "Margaret");
    assert_eq!(row.get::<String, _>("status"), "active");
    let billing_postcode: String = row.get("postcode");
    let billing_updated: String = row.get("updated_at");
    let active: i64 = sqlx::query(
        "SELECT count(*) FROM subscriptions WHERE customer_id = ? AND status = 'active'",
    )
    .bind(id)
    .fetch_one(&mut billing)
    .await
    .unwrap()
    .get(0);
    assert!(active >= 1);
    let invoices: i64 = sqlx::query("SELECT count(*) FROM invoices WHERE customer_id = ?")
        .bind(id)
        .fetch_one(&mut billing)
        .await
        .unwrap()
        .get(0);
    assert!(invoices >= 3);

    // Support: "Family, Given", an open ticket found by e-mail.
    let mut support = open(&d.join("support.db")).await;
    let name: String = sqlx::query("SELECT name FROM contacts WHERE email = ?")
        .bind(email)
        .fetch_one(&mut support)
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Ellison, Margaret");
    let open_tickets: i64 = sqlx::query(
        "SELECT count(*) FROM tickets WHERE contact_email = ? AND status = 'open' AND closed_at IS NULL",
    )
    .bind(email)
    .fetch_one(&mut support)
    .await
    .unwrap()
    .get(0);
    assert!(open_tickets >= 1);

    // Shop: the old address, older than billing's, and an order in progress.
    let (_, shop) = read_csv(&d.join("shop/customers.csv"));
    let mine: Vec<_> = shop
        .iter()
        .filter(|r| r["email"].eq_ignore_ascii_case(email))
        .collect();
    assert_eq!(mine.len(), 1);
    let mine = mine[0];
    assert_ne!(mine["email"], email, "the shop has it in another case");
    assert_ne!(mine["postcode"], billing_postcode);
    assert!(mine["address"].contains('\n'));
    assert!(mine["updated_at"] < billing_updated);
    let (_, orders) = read_csv(&d.join("shop/orders.csv"));
    let statuses: Vec<&str> = orders
        .iter()
        .filter(|o| o["customer_id"] == mine["customer_id"])
        .map(|o| o["status"].as_str())
        .collect();
    assert!(statuses.contains(&"processing"), "{statuses:?}");
    assert!(statuses.len() >= 3);

    // Marketing: the nickname, and offers with responses.
    let contacts = read_jsonl(&d.join("marketing/contacts.jsonl"));
    let me = contacts.iter().find(|c| c["email"] == email).unwrap();
    assert_eq!(me["name"], "Peggy Ellison");
    let offers: Vec<_> = read_jsonl(&d.join("marketing/offers.jsonl"))
        .into_iter()
        .filter(|o| o["contact_id"] == me["id"])
        .collect();
    assert!(offers.iter().any(|o| o["response"] == "redeemed"));

    // Loyalty: a card with benefits.
    let (_, members) = read_csv(&d.join("loyalty/members.csv"));
    let card = members.iter().find(|m| m["email"] == email).unwrap();
    assert_eq!(card["card_no"], "FL-000123");
    let (_, ents) = read_csv(&d.join("loyalty/entitlements.csv"));
    assert_eq!(
        ents.iter()
            .filter(|e| e["card_no"] == card["card_no"])
            .count(),
        3
    );
}

/// A table's `id` column as text.
async fn key_column(db: &Path, table: &str) -> BTreeSet<String> {
    let mut conn = open(db).await;
    let sql = format!("SELECT CAST(id AS TEXT) FROM {table}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// `truth.csv` as (source, key) → entity.
fn read_truth(g: &Generated) -> HashMap<(String, String), String> {
    let (header, rows) = read_csv(&g.truth_path);
    assert_eq!(header, ["source", "key", "entity"]);
    let truth: HashMap<(String, String), String> = rows
        .iter()
        .map(|r| ((r["source"].clone(), r["key"].clone()), r["entity"].clone()))
        .collect();
    assert_eq!(truth.len(), rows.len(), "no record is listed twice");
    truth
}

#[tokio::test]
async fn the_answer_key_names_every_good_record() {
    let (dir, g) = generated(300, 7).await;
    let d = dir.path();
    assert_eq!(g.truth_path, d.join("truth.csv"));
    let truth = read_truth(&g);
    let keys_of = |source: &str| -> BTreeSet<String> {
        truth
            .keys()
            .filter(|(s, _)| s == source)
            .map(|(_, k)| k.clone())
            .collect()
    };

    // One line per good record: the counts include the broken rows.
    let c = |k: &str| g.counts[k];
    let good = [
        ("billing", c("billing.db:customers")),
        ("support", c("support.db:contacts")),
        ("shop", c("shop/customers.csv") - 2),
        ("marketing", c("marketing/contacts.jsonl") - 1),
        ("loyalty", c("loyalty/members.csv")),
    ];
    for (source, n) in good {
        assert_eq!(keys_of(source).len(), n, "{source}");
    }
    assert_eq!(truth.len(), good.iter().map(|(_, n)| n).sum::<usize>());

    // The keys are exactly the good records' keys in each source.
    assert_eq!(
        keys_of("billing"),
        key_column(&d.join("billing.db"), "customers").await
    );
    assert_eq!(
        keys_of("support"),
        key_column(&d.join("support.db"), "contacts").await
    );
    let (_, shop) = read_csv(&d.join("shop/customers.csv"));
    let shop_keys: BTreeSet<String> = shop.iter().map(|r| r["customer_id"].clone()).collect();
    assert_eq!(keys_of("shop"), shop_keys);
    let contacts = read_jsonl(&d.join("marketing/contacts.jsonl"));
    let marketing: BTreeSet<String> = contacts
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys_of("marketing"), marketing);
    let (_, members) = read_csv(&d.join("loyalty/members.csv"));
    let cards: BTreeSet<String> = members.iter().map(|m| m["card_no"].clone()).collect();
    assert_eq!(keys_of("loyalty"), cards);

    // The keys go with the right rows: firms are organisations, and where
    // an entity is in billing, its marketing and loyalty e-mails (recased at
    // most) are billing's, which only its own records carry.
    let mut billing = open(&d.join("billing.db")).await;
    let mut billing_email: HashMap<String, String> = HashMap::new();
    for r in sqlx::query("SELECT CAST(id AS TEXT), kind, email FROM customers")
        .fetch_all(&mut billing)
        .await
        .unwrap()
    {
        let entity = &truth[&("billing".to_string(), r.get::<String, _>(0))];
        let kind: String = r.get(1);
        let prefix = if kind == "organisation" {
            "org-"
        } else {
            "person-"
        };
        assert!(entity.starts_with(prefix), "{kind} {entity}");
        billing_email.insert(entity.clone(), r.get(2));
    }
    let mut checked = 0;
    let others = contacts
        .iter()
        .map(|c| {
            (
                "marketing",
                c["id"].as_str().unwrap().to_string(),
                c["email"].as_str().unwrap().to_string(),
            )
        })
        .chain(
            members
                .iter()
                .map(|m| ("loyalty", m["card_no"].clone(), m["email"].clone())),
        );
    for (source, key, email) in others {
        let entity = &truth[&(source.to_string(), key)];
        if let Some(b) = billing_email.get(entity)
            && !email.is_empty()
        {
            assert_eq!(email.to_lowercase(), *b, "{source} {entity}");
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");

    // The showcase's five records are one person's, and only hers.
    let email = g.showcase_email.as_str();
    let billing_id: String = sqlx::query("SELECT CAST(id AS TEXT) FROM customers WHERE email = ?")
        .bind(email)
        .fetch_one(&mut billing)
        .await
        .unwrap()
        .get(0);
    let mut support = open(&d.join("support.db")).await;
    let support_id: String = sqlx::query("SELECT id FROM contacts WHERE email = ?")
        .bind(email)
        .fetch_one(&mut support)
        .await
        .unwrap()
        .get(0);
    let shop_id = shop
        .iter()
        .find(|r| r["email"].eq_ignore_ascii_case(email))
        .unwrap()["customer_id"]
        .clone();
    let marketing_id = contacts.iter().find(|c| c["email"] == email).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hers: Vec<&String> = [
        ("billing", billing_id),
        ("support", support_id),
        ("shop", shop_id),
        ("marketing", marketing_id),
        ("loyalty", "FL-000123".to_string()),
    ]
    .into_iter()
    .map(|(s, k)| &truth[&(s.to_string(), k)])
    .collect();
    assert!(hers.iter().all(|e| *e == "person-0"), "{hers:?}");
    assert_eq!(truth.values().filter(|e| *e == "person-0").count(), 5);
}

#[tokio::test]
async fn the_answer_key_scores_itself_perfectly() {
    let (dir, g) = generated(300, 7).await;
    let export = dir.path().join("export.csv");
    let text = std::fs::read_to_string(&g.truth_path).unwrap();
    std::fs::write(
        &export,
        text.replacen("source,key,entity", "source,key,party_id", 1),
    )
    .unwrap();
    let s = crate::demo::truth::score(&g.truth_path, &export).unwrap();
    assert_eq!(s.records, text.lines().count() - 1);
    assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0));
    assert_eq!(s.parties, s.entities);
    assert!(s.true_pairs > 100, "people are in several sources");
    // Everyone in one party is all over-merge; the pair counts say how much.
    let lumped: String = std::iter::once("source,key,party_id\n".to_string())
        .chain(
            text.lines()
                .skip(1)
                .map(|l| format!("{},all\n", l.rsplit_once(',').unwrap().0)),
        )
        .collect();
    std::fs::write(&export, lumped).unwrap();
    let s = crate::demo::truth::score(&g.truth_path, &export).unwrap();
    assert_eq!(s.parties, 1);
    assert_eq!(s.recall, 1.0);
    assert_eq!(s.predicted_pairs, (s.records * (s.records - 1) / 2) as u64);
    assert_eq!(s.over_merged.len(), 1);
}

#[tokio::test]
async fn broken_rows_sit_among_good_ones() {
    let (dir, _) = generated(300, 7).await;
    let path = dir.path().join("shop/customers.csv");
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&path)
        .unwrap();
    let width = rdr.byte_headers().unwrap().len();
    let records: Vec<csv::ByteRecord> = rdr.byte_records().map(Result::unwrap).collect();
    let wrong_width: Vec<usize> = (0..records.len())
        .filter(|i| records[*i].len() != width)
        .collect();
    let not_utf8: Vec<usize> = (0..records.len())
        .filter(|i| records[*i].iter().any(|f| std::str::from_utf8(f).is_err()))
        .collect();
    assert_eq!(wrong_width.len(), 1);
    assert_eq!(not_utf8.len(), 1);
    for i in wrong_width.iter().chain(&not_utf8) {
        assert!(*i > 0 && *i < records.len() - 1, "row {i} is among others");
    }
    // Quoted commas and newlines survive a proper CSV reader.
    let (_, rows) = read_csv(&path);
    assert!(rows.iter().any(|r| r["address"].contains(", ")));
    assert!(rows.iter().filter(|r| r["address"].contains('\n')).count() >= 2);

    let text = std::fs::read_to_string(dir.path().join("marketing/contacts.jsonl")).unwrap();
    let bad = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .count();
    assert_eq!(bad, 1);
}

#[tokio::test]
async fn counts_are_plausible() {
    let (dir, g) = generated(300, 7).await;
    let c = |k: &str| g.counts[k];
    let within = |k: &str, lo: usize, hi: usize| {
        assert!(
            (lo..=hi).contains(&c(k)),
            "{k} = {} not in {lo}..={hi}",
            c(k)
        );
    };
    // 55% of 300 persons plus 15 firms; 35%; 45% plus 2 broken rows; 50% plus 1; 25%.
    within("billing.db:customers", 140, 220);
    within("support.db:contacts", 75, 140);
    within("shop/customers.csv", 100, 175);
    within("marketing/contacts.jsonl", 115, 190);
    within("loyalty/members.csv", 50, 105);
    assert!(c("billing.db:invoices") > c("billing.db:customers"));
    assert!(c("billing.db:subscriptions") > c("billing.db:customers") / 2);
    assert!(c("support.db:tickets") > c("support.db:contacts"));
    assert!(c("shop/orders.csv") > 2 * c("shop/customers.csv"));
    assert!(c("marketing/offers.jsonl") > c("marketing/contacts.jsonl"));
    assert!(c("loyalty/entitlements.csv") > c("loyalty/members.csv") / 2);

    let mut billing = open(&dir.path().join("billing.db")).await;
    let kinds: Vec<(String, String, i64)> = sqlx::query(
        "SELECT kind, status, count(*) FROM customers GROUP BY kind, status ORDER BY kind, status",
    )
    .fetch_all(&mut billing)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    let n = |kind: &str, status: &str| {
        kinds
            .iter()
            .find(|(k, s, _)| k == kind && s == status)
            .map_or(0, |(_, _, n)| *n)
    };
    assert_eq!(
        n("organisation", "active") + n("organisation", "cancelled"),
        15
    );
    let persons = n("person", "active") + n("person", "cancelled");
    let cancelled = n("person", "cancelled") as f64 / persons as f64;
    assert!((0.07..0.25).contains(&cancelled), "{cancelled}");

    let (tickets, open_tickets): (i64, i64) = {
        let mut support = open(&dir.path().join("support.db")).await;
        let r = sqlx::query("SELECT count(*), sum(status IN ('open', 'pending')) FROM tickets")
            .fetch_one(&mut support)
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(open_tickets >= 2, "some tickets are still open");
    assert!(tickets > 4 * open_tickets, "most tickets are done");
}

#[test]
fn the_population_has_the_noise_it_promises() {
    let mut rng = StdRng::seed_from_u64(7);
    let (people, orgs) = population(&mut rng, 3000);
    assert_eq!(people.len(), 3000);
    assert_eq!(orgs.len(), 150);
    let n = people.len() as f64;
    let share = |f: &dyn Fn(&Person) -> bool| people.iter().filter(|p| f(p)).count() as f64 / n;
    let around = |what: &str, got: f64, want: f64| {
        eprintln!("{what}: {got:.3} (want about {want})");
        assert!(
            (got - want).abs() <= 0.03,
            "{what}: {got:.3}, want about {want}"
        );
    };
    around("billing", share(&|p| p.presence.billing), 0.55);
    around("support", share(&|p| p.presence.support), 0.35);
    around("shop", share(&|p| p.presence.shop), 0.45);
    around("marketing", share(&|p| p.presence.marketing), 0.50);
    around("loyalty", share(&|p| p.presence.loyalty), 0.25);
    let only_marketing = share(&|p| {
        p.presence.marketing
            && !(p.presence.billing || p.presence.shop || p.presence.support || p.presence.loyalty)
    });
    around("marketing only", only_marketing, 0.15);
    around("old e-mail", share(&|p| p.old_email.is_some()), 0.10);

    let billing = people.iter().filter(|p| p.presence.billing).count() as f64;
    let of_billing = |f: &dyn Fn(&Person) -> bool| {
        people.iter().filter(|p| p.presence.billing && f(p)).count() as f64 / billing
    };
    around("cancelled", of_billing(&|p| p.cancelled), 0.15);
    around("moved", of_billing(&|p| p.old_home.is_some()), 0.08);

    let mut homes: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for p in &people {
        *homes
            .entry((p.home.street.as_str(), p.home.postcode.as_str(), p.family))
            .or_default() += 1;
    }
    let households =
        share(&|p| homes[&(p.home.street.as_str(), p.home.postcode.as_str(), p.family)] > 1);
    around("households", households, 0.10);

    let phones: HashSet<u32> = people
        .iter()
        .map(|p| p.phone)
        .chain(orgs.iter().map(|o| o.phone))
        .collect();
    assert_eq!(phones.len(), people.len() + orgs.len());
    assert!(phones.iter().all(|p| (900_000..=999_999).contains(p)));
    let emails: HashSet<&str> = people
        .iter()
        .flat_map(|p| std::iter::once(p.email.as_str()).chain(p.old_email.as_deref()))
        .chain(orgs.iter().map(|o| o.email.as_str()))
        .collect();
    let expected =
        people.len() + orgs.len() + people.iter().filter(|p| p.old_email.is_some()).count();
    assert_eq!(emails.len(), expected);
}

#[test]
fn noise_helpers_do_what_they_say() {
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(fmt_phone(900123, 0), "07700 900123");
    assert_eq!(fmt_phone(900123, 1), "+44 7700 900123");
    assert_eq!(fmt_phone(900123, 2), "(07700) 900-123");
    assert_eq!(fmt_phone(900123, 3), "0044 7700 900123");
    assert_eq!(phone_number(0), 900_123);
    for _ in 0..50 {
        let t = typo(&mut rng, "Katherine");
        assert_ne!(t, "Katherine");
        assert!(t.starts_with('K'));
        assert!((8..=10).contains(&t.chars().count()));
        let e = recased(&mut rng, "ann.lee@example.com");
        assert_eq!(e.to_lowercase(), "ann.lee@example.com");
        assert_ne!(e, "ann.lee@example.com");
    }
    let mut rng = StdRng::seed_from_u64(3);
    let cased: Vec<String> = (0..20)
        .map(|_| recased(&mut rng, "ann.lee@example.com"))
        .collect();
    assert!(
        cased.iter().any(|e| e == "Ann.Lee@Example.com"),
        "{cased:?}"
    );
}

#[tokio::test]
async fn generating_three_thousand_people_is_quick() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let g = generate(dir.path(), &GenerateOptions::default())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(g.counts["billing.db:customers"] > 1500);
    // Generous: a loaded CI machine in a debug build; typically well under 1s.
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}
