//! Incremental linking against the full run, on a real SQLite source and two
//! real hub stores fed the same changes: one hub links only what changed,
//! the other links everything each time. Their partitions must agree after
//! every round, and a full run on the incremental hub's store afterwards
//! must change nothing (ids, links and evidence).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kith_connect::SourceConfig;
use kith_hub::{Hub, HubSettings, SyncOptions};
use kith_model::RecordRef;
use kith_store::{HubStore, ReviewStatus, SqliteStore};
use rand::{Rng, SeedableRng, rngs::StdRng};

const SOURCES: &str = r#"
[[sources]]
name = "crm"
connection = { kind = "sqlite", path = "people.db" }
[sources.identity]
from = "crm"
key = "id"
cursor = { column = "updated_at" }
attributes = { given_name = "given", family_name = "family", email = "email", phone = "phone", street = "street", postcode = "postcode", date_of_birth = "dob" }

[[sources]]
name = "billing"
connection = { kind = "sqlite", path = "people.db" }
[sources.identity]
from = "billing"
key = "id"
cursor = { column = "updated_at" }
attributes = { given_name = "given", family_name = "family", email = "email", phone = "phone", street = "street", postcode = "postcode", date_of_birth = "dob" }
"#;

#[derive(serde::Deserialize)]
struct Sources {
    sources: Vec<SourceConfig>,
}

const GIVEN: &[&str] = &[
    "ann", "anne", "bob", "robert", "carl", "dina", "emma", "fred", "gina", "hugo", "ivy", "jack",
    "kate", "liam", "mia", "noah", "olga", "paul", "peggy", "margaret", "bill", "william",
];
const FAMILY: &[&str] = &[
    "smith",
    "smyth",
    "jones",
    "lee",
    "patel",
    "khan",
    "brown",
    "zaborowski",
    "nguyen",
    "okafor",
    "murphy",
    "garcia",
];

#[derive(Clone)]
struct Person {
    given: String,
    family: String,
    email: String,
    phone: String,
    street: String,
    postcode: String,
    dob: String,
}

fn person(i: usize, rng: &mut StdRng) -> Person {
    let given = GIVEN[rng.random_range(0..GIVEN.len())].to_string();
    // Households: people at one address sharing a surname.
    let house = i / 3;
    let family = FAMILY[house % FAMILY.len()].to_string();
    Person {
        email: format!("{given}.{family}{i}@example.org"),
        phone: format!("+4477009{:05}", rng.random_range(0..100_000)),
        street: format!(
            "{} {} road",
            house % 40 + 1,
            FAMILY[(house / 7) % FAMILY.len()]
        ),
        postcode: format!("LS{} {}AB", house % 9 + 1, house % 7),
        dob: format!(
            "19{}-0{}-1{}",
            rng.random_range(40..99),
            rng.random_range(1..10),
            rng.random_range(0..10)
        ),
        given,
        family,
    }
}

fn typo(s: &str, rng: &mut StdRng) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() > 2 {
        let i = rng.random_range(1..c.len() - 1);
        c.swap(i, i + 1);
    }
    c.into_iter().collect()
}

/// A source row: the person as this system knows them, with its noise.
fn row(p: &Person, rng: &mut StdRng) -> Person {
    let mut r = p.clone();
    match rng.random_range(0..8) {
        0 => r.given = typo(&r.given, rng),
        1 => r.email = format!("{}{}@mail.example", r.given, rng.random_range(0..9)),
        2 => r.phone.clear(),
        3 => r.dob.clear(),
        _ => {}
    }
    r
}

struct Db {
    pool: sqlx::SqlitePool,
    clock: i64,
}

impl Db {
    async fn put(&mut self, table: &str, id: &str, p: &Person) {
        self.clock += 1;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (id, given, family, email, phone, street, postcode, dob, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET \
             given = excluded.given, family = excluded.family, email = excluded.email, \
             phone = excluded.phone, street = excluded.street, postcode = excluded.postcode, \
             dob = excluded.dob, updated_at = excluded.updated_at"
        )))
        .bind(id)
        .bind(&p.given)
        .bind(&p.family)
        .bind(&p.email)
        .bind(&p.phone)
        .bind(&p.street)
        .bind(&p.postcode)
        .bind(&p.dob)
        .bind(format!("2030-01-01T00:00:{:02}.{:06}Z", self.clock / 1_000_000, self.clock % 1_000_000))
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

/// Each store's parties as a partition of record refs (ids differ between stores).
async fn partition(store: &dyn HubStore) -> BTreeSet<BTreeSet<RecordRef>> {
    let mut by_party: BTreeMap<String, BTreeSet<RecordRef>> = BTreeMap::new();
    for r in store.records().await.unwrap() {
        let party = r.party.expect("every record is linked").to_string();
        by_party.entry(party).or_default().insert(r.record.record);
    }
    by_party.into_values().collect()
}

#[tokio::test]
async fn linking_only_what_changed_gives_the_full_runs_parties_and_ids() {
    equivalence(true, HubSettings::default(), 0).await;
}

/// Without a model only identifiers link, and with a low limit e-mails
/// taken over by several records cross it both ways: an identifier that
/// becomes too common unlinks its holders, and links them again when it
/// falls back within the limit.
#[tokio::test]
async fn without_a_model_identifiers_crossing_the_common_limit_match_the_full_run() {
    let settings = HubSettings {
        common_identifier_limit: 3,
        ..HubSettings::default()
    };
    equivalence(false, settings, 6).await;
}

/// Two hubs fed the same changes, one linking incrementally; `hot` > 0 makes
/// e-mail takeovers pick among the first `hot` people, so those addresses
/// pile up on several records.
async fn equivalence(with_model: bool, settings: HubSettings, hot: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = toml::from_str::<Sources>(SOURCES).unwrap().sources;
    for s in &mut sources {
        s.connection.resolve_paths(dir.path());
    }
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("people.db"))
                .create_if_missing(true),
        )
        .await
        .unwrap();
    for t in ["crm", "billing"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {t} (id TEXT PRIMARY KEY, given TEXT, family TEXT, email TEXT, \
             phone TEXT, street TEXT, postcode TEXT, dob TEXT, updated_at TEXT)"
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut db = Db { pool, clock: 0 };
    let mut rng = StdRng::seed_from_u64(7);
    let mut people: Vec<Person> = (0..300).map(|i| person(i, &mut rng)).collect();
    for (i, p) in people.iter().enumerate() {
        if i % 10 < 8 {
            let r = row(p, &mut rng);
            db.put("crm", &format!("c{i}"), &r).await;
        }
        if i % 10 > 2 {
            let r = row(p, &mut rng);
            db.put("billing", &format!("b{i}"), &r).await;
        }
    }

    let open = |name: &str| {
        let path = dir.path().join(name);
        async move { Arc::new(SqliteStore::open(&path).await.unwrap()) as Arc<dyn HubStore> }
    };
    let (store_a, store_b) = (open("a.db").await, open("b.db").await);
    let mut hub_a = Hub::new(settings.clone(), &sources, store_a.clone()).unwrap();
    let mut hub_b = Hub::new(settings, &sources, store_b.clone()).unwrap();
    hub_b.sync(SyncOptions::default(), &()).await.unwrap();
    if with_model {
        let model = hub_b
            .train(&kith_resolve::TrainOptions {
                u_max_pairs: 50_000,
                ..Default::default()
            })
            .await
            .unwrap();
        hub_b.set_model(model.clone());
        hub_a.set_model(model);
    }
    hub_a.link_incrementally(true);
    let first = hub_a.sync(SyncOptions::default(), &()).await.unwrap();
    assert!(!first.link.incremental, "the first sync reads everything");
    hub_b.link(&()).await.unwrap();
    assert_eq!(
        partition(store_a.as_ref()).await,
        partition(store_b.as_ref()).await
    );

    let mut next_key = 1000;
    let mut incremental_runs = 0;
    let mut common_seen = false;
    let mut moved_parties = 0;
    for round in 0..8 {
        // Sources change: typos fixed and made, people move house, take
        // another's e-mail (a merge), new records for known and new people.
        for _ in 0..12 {
            let i = rng.random_range(0..people.len());
            let table = if rng.random_bool(0.5) {
                "crm"
            } else {
                "billing"
            };
            let key = format!("{}{i}", &table[..1]);
            let mut r = row(&people[i], &mut rng);
            match rng.random_range(0..5) {
                0 => {
                    let from = if hot > 0 { hot } else { people.len() };
                    r.email = people[rng.random_range(0..from)].email.clone();
                }
                1 => {
                    people[i].street = format!("{} new street", rng.random_range(1..99));
                    r.street = people[i].street.clone();
                }
                2 => r.given = GIVEN[rng.random_range(0..GIVEN.len())].to_string(),
                _ => {}
            }
            db.put(table, &key, &r).await;
        }
        for _ in 0..6 {
            let p = if rng.random_bool(0.5) {
                people[rng.random_range(0..people.len())].clone()
            } else {
                let n = people.len();
                let p = person(n, &mut rng);
                people.push(p.clone());
                p
            };
            let r = row(&p, &mut rng);
            db.put("crm", &format!("n{next_key}"), &r).await;
            next_key += 1;
        }
        let before = partition(store_a.as_ref()).await;
        let a = hub_a.sync(SyncOptions::default(), &()).await.unwrap();
        let b = hub_b.sync(SyncOptions { full: true }, &()).await.unwrap();
        common_seen |= !b.link.common_identifiers.is_empty();
        assert!(
            a.link.incremental,
            "round {round}: fell back to a full run: {:?}",
            a.link.full_because
        );
        assert!(a.link.changed_records > 0, "round {round}: {:?}", a.link);
        incremental_runs += 1;
        let after = partition(store_a.as_ref()).await;
        moved_parties += before.symmetric_difference(&after).count();
        assert_eq!(
            after,
            partition(store_b.as_ref()).await,
            "round {round}: the incremental parties differ from the full run's"
        );
        assert!(
            a.link.affected_records < a.link.records / 4,
            "round {round}: settled {} of {} records: not incremental",
            a.link.affected_records,
            a.link.records
        );
    }
    assert_eq!(incremental_runs, 8);
    assert!(
        hot == 0 || common_seen,
        "no e-mail became too common: the limit was never crossed"
    );
    assert!(
        moved_parties > 10,
        "the changes moved too few parties to prove anything ({moved_parties})"
    );

    // A full run over what the incremental runs wrote changes nothing:
    // the same ids, links and evidence.
    full_run_changes_nothing(&hub_a, store_a.as_ref()).await;

    // A review decision made elsewhere (another process's `kith review`)
    // is noticed: the next run is a full one, and then incremental again.
    let recs = store_a.records().await.unwrap();
    let (x, y) = (&recs[0].record.record, &recs[1].record.record);
    store_a
        .decide_review(x, y, ReviewStatus::Accepted, "test", chrono::Utc::now())
        .await
        .unwrap();
    db.put("crm", "n99999", &row(&people[0], &mut rng)).await;
    let a = hub_a.sync(SyncOptions::default(), &()).await.unwrap();
    assert!(!a.link.incremental);
    assert!(a.link.full_because.is_some(), "{:?}", a.link);
    assert_eq!(
        store_a.link(x).await.unwrap().unwrap().party,
        store_a.link(y).await.unwrap().unwrap().party
    );
    db.put("crm", "n99998", &row(&people[1], &mut rng)).await;
    let a = hub_a.sync(SyncOptions::default(), &()).await.unwrap();
    assert!(a.link.incremental, "{:?}", a.link.full_because);
    full_run_changes_nothing(&hub_a, store_a.as_ref()).await;
}

/// A full run over what the incremental runs wrote changes nothing: the
/// same ids, links and evidence.
async fn full_run_changes_nothing(hub: &Hub, store: &dyn HubStore) {
    let snapshot = |recs: Vec<kith_store::StoredRecord>| {
        recs.into_iter()
            .map(|r| (r.record.record.to_string(), (r.party, r.rule, r.evidence)))
            .collect::<BTreeMap<_, _>>()
    };
    let before = snapshot(store.records().await.unwrap());
    let full = hub.link(&()).await.unwrap();
    let after = snapshot(store.records().await.unwrap());
    let differ: Vec<_> = before
        .iter()
        .filter(|(k, v)| after[*k] != **v)
        .map(|(k, v)| format!("{k}: incremental {v:?}, full {:?}", after[k]))
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    let changes = (
        full.new_parties,
        full.merged,
        full.retired,
        full.links_changed,
    );
    assert_eq!(changes, (0, 0, 0, 0), "{full:?}");
}
