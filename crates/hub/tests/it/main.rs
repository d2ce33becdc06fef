//! The hub end to end on real files, a real SQLite source and a real hub store:
//! sync, linking with stable ids, the 360 view, and sources that fail.

mod faults;
mod incremental;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kith_connect::{
    Capabilities, Connector, LookupCapability, LookupRequest, LookupResult, ScanStream,
    SourceConfig,
};
use kith_hub::{Hub, HubSettings, SourceStatus, Survivorship, SyncOptions};
use kith_model::{Anchor, ContributionKind, CursorValue, PartyId, RecordRef};
use kith_store::{HubStore, NewContribution, SqliteStore, Suppression};
use serde_json::json;

const SOURCES: &str = r#"
[[sources]]
name = "billing"
verified = true
priority = 30
relation = "customer"
connection = { kind = "sqlite", path = "billing.db" }
[sources.identity]
from = "customers"
key = "id"
cursor = { column = "updated_at" }
attributes = { given_name = "first", family_name = "last", email = "email", phone = "phone", street = "street", postcode = "postcode" }
[sources.facts.profile]
from = "customers"
join = "id"
kind = "profile"
cardinality = "one"
updated_at = "updated_at"
fields = ["street", "postcode"]
[sources.facts.invoices]
from = "invoices"
join = "customer_id"
kind = "transaction"
date = "issued_at"

[[sources]]
name = "shop"
priority = 10
connection = { kind = "csv", dir = "shop" }
[sources.identity]
from = "customers.csv"
key = "id"
attributes = { full_name = "name", email = "email", phone = "phone" }
[sources.facts.profile]
from = "customers.csv"
join = "id"
kind = "profile"
cardinality = "one"
updated_at = "updated_at"
fields = ["street", "postcode"]
[sources.facts.orders]
from = "orders.csv"
join = "customer_id"
kind = "transaction"
date = "placed_at"

[[sources]]
name = "marketing"
relation = "prospect"
connection = { kind = "jsonl", dir = "marketing" }
[sources.identity]
from = "contacts.jsonl"
key = "id"
attributes = { full_name = "name", email = "email" }
[sources.facts.offers]
from = "offers.jsonl"
join = "contact_id"
kind = "offer"
date = "sent_at"
"#;

#[derive(serde::Deserialize)]
struct Sources {
    sources: Vec<SourceConfig>,
}

struct World {
    dir: tempfile::TempDir,
    sources: Vec<SourceConfig>,
    store: Arc<dyn HubStore>,
}

impl World {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn hub(&self) -> Hub {
        self.hub_with(HubSettings::default())
    }

    fn hub_with(&self, settings: HubSettings) -> Hub {
        Hub::new(settings, &self.sources, self.store.clone()).unwrap()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    async fn sql(&self, stmts: &[&str]) {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.path("billing.db"))
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        for s in stmts {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = toml::from_str::<Sources>(SOURCES).unwrap().sources;
    for s in &mut sources {
        s.connection.resolve_paths(dir.path());
    }
    let store: Arc<dyn HubStore> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    let w = World {
        dir,
        sources,
        store,
    };
    w.sql(&[
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, first TEXT, last TEXT, email TEXT, phone TEXT, street TEXT, postcode TEXT, updated_at TEXT)",
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, issued_at TEXT, memo TEXT)",
        "INSERT INTO customers VALUES (1, 'Ann', 'Lee', 'ann.lee@example.com', '07700 900001', '14 Mill Lane', 'LS6 2AB', '2024-06-01T00:00:00Z')",
        "INSERT INTO customers VALUES (2, 'Bob', 'Stone', 'bob@example.org', NULL, '3 High St', 'YO1 7HH', '2024-01-01T00:00:00Z')",
        "INSERT INTO customers VALUES (3, 'Cara', 'Lee', 'cara@example.com', '07700 900003', '14 Mill Lane', 'LS6 2AB', '2024-01-01T00:00:00Z')",
        "INSERT INTO invoices (customer_id, amount, issued_at, memo) VALUES (1, 19.99, '2024-05-01', 'FACT-MARKER-INVOICE-MEMO')",
        "INSERT INTO invoices (customer_id, amount, issued_at, memo) VALUES (1, 29.99, '2024-06-01', 'second')",
    ])
    .await;
    // Ann in the shop: another e-mail case, a phone in another format, her old address.
    w.write(
        "shop/customers.csv",
        "id,name,email,phone,street,postcode,updated_at\n\
         s1,Annie Lee,Ann.Lee@Example.com,+44 7700 900001,\"2 Old Road\",LS1 1AA,2023-02-01\n\
         s2,Dan Park,dan@example.net,,1 Elm Way,M1 1AA,2023-01-01\n",
    );
    w.write(
        "shop/orders.csv",
        "order_id,customer_id,placed_at,total,gift_note\n\
         o1,s1,2024-04-01,12.00,FACT-MARKER-GIFT-NOTE\n\
         o2,s2,2024-04-02,8.00,\n",
    );
    // Ann changed her e-mail for marketing, but kept her phone? No phone here:
    // this prospect is Eve, known only to marketing.
    w.write(
        "marketing/contacts.jsonl",
        "{\"id\":\"M-1\",\"name\":\"Ann Lee\",\"email\":\"ANN.LEE@example.com\"}\n\
         {\"id\":\"M-9\",\"name\":\"Eve Prospect\",\"email\":\"eve@example.com\"}\n",
    );
    w.write(
        "marketing/offers.jsonl",
        "{\"contact_id\":\"M-1\",\"offer\":\"Spring 20% off\",\"sent_at\":\"2024-03-01\",\"response\":\"clicked\"}\n",
    );
    w
}

/// The view's entry for a source, which every view lists.
fn source_of<'a>(v: &'a kith_hub::View, name: &str) -> &'a kith_hub::SourceView {
    v.sources
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no source {name} in {:?}", v.sources))
}

async fn party_of(store: &dyn HubStore, source: &str, key: &str) -> PartyId {
    store
        .link(&RecordRef::new(source, key))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{source}:{key} is linked"))
        .party
}

#[tokio::test]
async fn sync_links_the_same_person_across_sources_and_keeps_ids_on_resync() {
    let w = world().await;
    let hub = w.hub();
    let report = hub.sync(SyncOptions::default(), &()).await.unwrap();
    assert!(report.failed_sources().next().is_none(), "{report:?}");
    assert_eq!(report.link.records, 7);
    // Ann (3 records), Bob, Cara, Dan, Eve.
    assert_eq!(report.link.parties, 5);
    let ann = party_of(w.store.as_ref(), "billing", "1").await;
    assert_eq!(party_of(w.store.as_ref(), "shop", "s1").await, ann);
    assert_eq!(party_of(w.store.as_ref(), "marketing", "M-1").await, ann);
    assert_ne!(party_of(w.store.as_ref(), "billing", "3").await, ann);

    let again = hub.sync(SyncOptions::default(), &()).await.unwrap();
    assert_eq!(again.link.new_parties, 0);
    assert_eq!(again.link.links_changed, 0);
    assert_eq!(party_of(w.store.as_ref(), "shop", "s1").await, ann);
    assert_eq!(hub.find_party("ann.lee@EXAMPLE.com").await.unwrap(), ann);
    assert_eq!(hub.find_party("07700900001").await.unwrap(), ann);
    assert_eq!(hub.find_party("shop:s1").await.unwrap(), ann);
    assert!(hub.find_party("nobody@example.com").await.is_err());

    // Households: Ann and Cara share an address.
    let view = hub.view(&ann).await.unwrap();
    assert_eq!(view.relationships.len(), 1);
    assert_eq!(view.relationships[0].kind.as_str(), "household");
}

#[tokio::test]
async fn the_view_merges_facts_with_provenance_and_shows_conflicts() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    let v = hub.view(&ann).await.unwrap();

    let status: Vec<(&str, SourceStatus)> = v
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        status,
        vec![
            ("billing", SourceStatus::Ok),
            ("shop", SourceStatus::Ok),
            ("marketing", SourceStatus::Ok)
        ]
    );
    assert_eq!(v.relation, Some(kith_model::Relation::Customer));
    let tx: Vec<_> = v.facts_of("transaction").collect();
    assert_eq!(tx.len(), 3, "two invoices and one order");
    // Newest first, whatever the source.
    assert_eq!(tx[0].provenance.source, "billing");
    assert_eq!(tx[0].date, Some("2024-06-01T00:00:00Z".parse().unwrap()));
    assert_eq!(tx[1].provenance.source, "billing");
    assert_eq!(tx[2].provenance.source, "shop");
    assert_eq!(tx[2].provenance.key, "s1");
    let offer = v.facts_of("offer").next().unwrap();
    assert_eq!(offer.value["response"], json!("clicked"));

    // The street: billing (2024) and the shop (2023) disagree; the newest wins.
    let street = v.profile.iter().find(|a| a.attribute == "street").unwrap();
    assert!(street.conflict);
    assert_eq!(street.best, json!("14 Mill Lane"));
    assert_eq!(street.best_source, "billing");
    assert_eq!(street.values.len(), 2);
    assert_eq!(street.values[1].provenance.source, "shop");

    // By source priority the answer is the same here; by another rule it can differ.
    let s = HubSettings {
        survivorship: Survivorship::SourcePriority,
        ..Default::default()
    };
    let v2 = w.hub_with(s).view(&ann).await.unwrap();
    let street2 = v2.profile.iter().find(|a| a.attribute == "street").unwrap();
    assert_eq!(street2.best_source, "billing");

    // A customer's correction takes part as a source of its own, and is newest.
    w.store
        .add_contribution(&NewContribution {
            party: ann.clone(),
            anchor: Anchor::Record(RecordRef::new("billing", "1")),
            kind: ContributionKind::Correction,
            attribute: "street".into(),
            value: json!("15 Mill Lane"),
            by: "customer".into(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let v3 = hub.view(&ann).await.unwrap();
    let street3 = v3.profile.iter().find(|a| a.attribute == "street").unwrap();
    assert_eq!(street3.best, json!("15 Mill Lane"));
    assert_eq!(street3.best_source, "contributions");
    assert!(v3.sources.iter().any(|s| s.name == "contributions"));
    let json = serde_json::to_value(&v3).unwrap();
    assert_eq!(json["party"], json!(ann.as_str()));
    assert!(json["facts"][0]["provenance"]["fetched_at"].is_string());
}

#[tokio::test]
async fn a_source_that_is_down_or_slow_is_a_status_not_a_failure() {
    let w = world().await;
    w.hub().sync(SyncOptions::default(), &()).await.unwrap();
    std::fs::remove_file(w.path("shop/orders.csv")).unwrap();
    let hub = w.hub();
    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    let v = hub.view(&ann).await.unwrap();
    let shop = source_of(&v, "shop");
    assert_eq!(shop.status, SourceStatus::Unreachable);
    assert!(shop.reason.as_deref().unwrap().contains("orders.csv"));
    assert_eq!(
        v.facts_of("transaction").count(),
        2,
        "billing still answers"
    );

    // A source that hangs times out while the others answer in time.
    let mut connectors: Vec<Arc<dyn Connector>> = hub.connectors().to_vec();
    let slow_source = w.sources[2].clone();
    connectors[2] = Arc::new(Hanging(slow_source));
    let settings = HubSettings {
        view_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let hub = Hub::with_connectors(settings, connectors, w.store.clone()).unwrap();
    let started = std::time::Instant::now();
    let v = hub.view(&ann).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let m = source_of(&v, "marketing");
    assert_eq!(m.status, SourceStatus::TimedOut);
    assert_eq!(source_of(&v, "billing").status, SourceStatus::Ok);
}

/// A source that never answers a lookup (a hung server, in miniature).
struct Hanging(SourceConfig);

#[async_trait]
impl Connector for Hanging {
    fn source(&self) -> &SourceConfig {
        &self.0
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup: LookupCapability::Indexed,
            incremental_scan: false,
        }
    }
    async fn scan(&self, _since: Option<CursorValue>) -> kith_connect::Result<ScanStream> {
        std::future::pending().await
    }
    async fn lookup(&self, _r: &LookupRequest) -> kith_connect::Result<LookupResult> {
        std::future::pending().await
    }
}

/// A source that answers as `inner` does, but only after `delay`.
struct Slow {
    inner: Arc<dyn Connector>,
    delay: Duration,
}

#[async_trait]
impl Connector for Slow {
    fn source(&self) -> &SourceConfig {
        self.inner.source()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn scan(&self, since: Option<CursorValue>) -> kith_connect::Result<ScanStream> {
        self.inner.scan(since).await
    }
    async fn lookup(&self, r: &LookupRequest) -> kith_connect::Result<LookupResult> {
        tokio::time::sleep(self.delay).await;
        self.inner.lookup(r).await
    }
}

#[tokio::test]
async fn each_source_is_held_to_its_own_time_limit_in_a_view() {
    let w = world().await;
    w.hub().sync(SyncOptions::default(), &()).await.unwrap();
    let hub = w.hub();
    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    let limited = |i: usize, ms: u64| {
        let mut s = w.sources[i].clone();
        s.timeout = Some(Duration::from_millis(ms));
        s
    };
    let mut connectors: Vec<Arc<dyn Connector>> = hub.connectors().to_vec();
    // billing hangs with 500ms allowed, marketing hangs with 100ms, and the
    // shop answers after 250ms within the view's 1s.
    connectors[0] = Arc::new(Hanging(limited(0, 500)));
    connectors[2] = Arc::new(Hanging(limited(2, 100)));
    connectors[1] = Arc::new(Slow {
        inner: connectors[1].clone(),
        delay: Duration::from_millis(250),
    });
    let settings = HubSettings {
        view_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let hub = Hub::with_connectors(settings, connectors, w.store.clone()).unwrap();
    let started = std::time::Instant::now();
    let v = hub.view(&ann).await.unwrap();
    let took = started.elapsed();

    let marketing = source_of(&v, "marketing");
    assert_eq!(marketing.status, SourceStatus::TimedOut);
    assert_eq!(marketing.reason.as_deref(), Some("no answer within 100ms"));
    assert!(marketing.elapsed_ms < 250, "{marketing:?}");
    let shop = source_of(&v, "shop");
    assert_eq!(shop.status, SourceStatus::Ok, "{shop:?}");
    assert!(shop.facts > 0 && shop.elapsed_ms >= 250, "{shop:?}");
    let billing = source_of(&v, "billing");
    assert_eq!(billing.status, SourceStatus::TimedOut);
    assert_eq!(billing.reason.as_deref(), Some("no answer within 500ms"));
    assert!(billing.elapsed_ms >= 500, "{billing:?}");
    // The view ends with its last limit, not the view's.
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1000),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_failing_source_during_sync_loses_nothing() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    std::fs::remove_file(w.path("shop/customers.csv")).unwrap();
    let r = hub.sync(SyncOptions { full: true }, &()).await.unwrap();
    let shop = r.sources.iter().find(|s| s.source == "shop").unwrap();
    assert!(shop.error.as_deref().unwrap().contains("customers.csv"));
    assert_eq!(shop.removed, 0);
    assert_eq!(party_of(w.store.as_ref(), "shop", "s1").await, ann);
}

#[tokio::test]
async fn full_reconcile_unlinks_records_gone_from_their_source() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let dan = party_of(w.store.as_ref(), "shop", "s2").await;
    w.write(
        "shop/customers.csv",
        "id,name,email,phone,street,postcode,updated_at\n\
         s1,Annie Lee,Ann.Lee@Example.com,+44 7700 900001,\"2 Old Road\",LS1 1AA,2023-02-01\n",
    );
    let r = hub.sync(SyncOptions { full: true }, &()).await.unwrap();
    assert_eq!(
        r.sources
            .iter()
            .find(|s| s.source == "shop")
            .unwrap()
            .removed,
        1
    );
    assert!(
        w.store
            .link(&RecordRef::new("shop", "s2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.store.party(&dan).await.unwrap().is_none(),
        "a party with no records is retired"
    );
    assert_eq!(r.link.retired, 1);
}

#[tokio::test]
async fn merges_keep_the_oldest_id_and_splits_keep_the_founder() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let bob = party_of(w.store.as_ref(), "billing", "2").await;
    let dan = party_of(w.store.as_ref(), "shop", "s2").await;
    let (older, newer) = {
        let b = w.store.party(&bob).await.unwrap().unwrap();
        let d = w.store.party(&dan).await.unwrap().unwrap();
        if (b.created_at, &b.id) <= (d.created_at, &d.id) {
            (bob.clone(), dan.clone())
        } else {
            (dan.clone(), bob.clone())
        }
    };
    // A marketing contact carrying both Bob's and Dan's e-mails bridges them.
    let mut sources = w.sources.clone();
    w.write(
        "marketing/contacts.jsonl",
        "{\"id\":\"M-1\",\"name\":\"Ann Lee\",\"email\":\"ANN.LEE@example.com\"}\n\
         {\"id\":\"M-9\",\"name\":\"Eve Prospect\",\"email\":\"eve@example.com\"}\n\
         {\"id\":\"M-5\",\"name\":\"B\",\"email\":\"bob@example.org\",\"alt\":\"dan@example.net\"}\n",
    );
    sources[2].identity.attributes.email = Some(kith_connect::mapping::Columns::Many(vec![
        "email".into(),
        "alt".into(),
    ]));
    let hub = Hub::new(HubSettings::default(), &sources, w.store.clone()).unwrap();
    let r = hub.sync(SyncOptions::default(), &()).await.unwrap();
    assert_eq!(r.link.merged, 1);
    assert_eq!(party_of(w.store.as_ref(), "billing", "2").await, older);
    assert_eq!(party_of(w.store.as_ref(), "shop", "s2").await, older);
    // The merged id still answers, redirected.
    assert_eq!(w.store.party(&newer).await.unwrap().unwrap().id, older);

    // The bridge goes away: the part with the older id's founding record keeps it.
    w.write(
        "marketing/contacts.jsonl",
        "{\"id\":\"M-1\",\"name\":\"Ann Lee\",\"email\":\"ANN.LEE@example.com\"}\n\
         {\"id\":\"M-9\",\"name\":\"Eve Prospect\",\"email\":\"eve@example.com\"}\n",
    );
    let r = hub.sync(SyncOptions { full: true }, &()).await.unwrap();
    assert_eq!(r.link.new_parties, 1);
    let founder = w
        .store
        .party(&older)
        .await
        .unwrap()
        .unwrap()
        .founding_record;
    assert_eq!(
        party_of(w.store.as_ref(), &founder.source, &founder.key).await,
        older
    );
    let other = if founder.source == "billing" {
        ("shop", "s2")
    } else {
        ("billing", "2")
    };
    let split_off = party_of(w.store.as_ref(), other.0, other.1).await;
    assert_ne!(split_off, older);
    assert_ne!(
        split_off, newer,
        "a split gets a new id; the merged one stays a redirect"
    );
}

#[tokio::test]
async fn erased_records_and_identifiers_do_not_come_back() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let eve = RecordRef::new("marketing", "M-9");
    w.store
        .remove_records(std::slice::from_ref(&eve))
        .await
        .unwrap();
    w.store
        .suppress(
            &Suppression::Record(eve.clone()),
            "erasure request",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let dan_email = kith_model::normalize::identifier_hash("email:dan@example.net");
    w.store
        .remove_records(&[RecordRef::new("shop", "s2")])
        .await
        .unwrap();
    w.store
        .suppress(
            &Suppression::IdentifierHash { hash: dan_email },
            "erasure request",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let r = hub.sync(SyncOptions { full: true }, &()).await.unwrap();
    assert!(w.store.record(&eve).await.unwrap().is_none());
    assert!(
        w.store
            .record(&RecordRef::new("shop", "s2"))
            .await
            .unwrap()
            .is_none()
    );
    let suppressed: u64 = r.sources.iter().map(|s| s.suppressed).sum();
    assert_eq!(suppressed, 2);
}

#[tokio::test]
async fn the_hub_file_holds_identity_not_facts() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    let v = hub.view(&ann).await.unwrap();
    assert!(
        v.facts
            .iter()
            .any(|f| f.value.to_string().contains("FACT-MARKER-INVOICE-MEMO"))
    );
    assert!(
        v.facts
            .iter()
            .any(|f| f.value.to_string().contains("FACT-MARKER-GIFT-NOTE"))
    );
    drop(hub);
    // Checkpoint the WAL so the main file has everything, then read every byte kith wrote.
    let all = hub_bytes(w.dir.path());
    assert!(!all.is_empty());
    for marker in [
        "FACT-MARKER-INVOICE-MEMO",
        "FACT-MARKER-GIFT-NOTE",
        "Spring 20% off",
        "19.99",
    ] {
        assert!(
            !contains(&all, marker.as_bytes()),
            "the hub store holds the fact value {marker:?}"
        );
    }
    // It does hold identity.
    assert!(contains(&all, b"ann.lee@example.com"));
}

fn hub_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("hub.db") {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_record_linked_alone_gains_evidence_when_someone_joins_it() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let bob = w
        .store
        .link(&RecordRef::new("billing", "2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.rule, "single");
    assert!(bob.evidence.is_empty());
    w.write(
        "marketing/contacts.jsonl",
        "{\"id\":\"M-1\",\"name\":\"Ann Lee\",\"email\":\"ANN.LEE@example.com\"}\n\
         {\"id\":\"M-7\",\"name\":\"Bob Stone\",\"email\":\"bob@example.org\"}\n",
    );
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let bob_again = w
        .store
        .link(&RecordRef::new("billing", "2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_again.party, bob.party, "the id is stable");
    assert_eq!(bob_again.rule, "exact:email");
    assert_eq!(
        bob_again.evidence,
        vec!["same email bob@example.org as marketing:M-7".to_string()]
    );
}

#[tokio::test]
async fn a_model_links_nicknames_at_one_address_but_never_household_members() {
    let w = world().await;
    // The shop knows Bob Stone as Robert, with another e-mail, at his address;
    // the shop's identity mapping has no street, so give it one for this test.
    w.write(
        "shop/customers.csv",
        "id,name,email,phone,street,postcode,updated_at\n\
         s1,Annie Lee,Ann.Lee@Example.com,+44 7700 900001,\"2 Old Road\",LS1 1AA,2023-02-01\n\
         s2,Dan Park,dan@example.net,,1 Elm Way,M1 1AA,2023-01-01\n\
         s3,Robert Stone,rstone@example.net,,3 High St,YO1 7HH,2023-01-01\n",
    );
    let mut sources = w.sources.clone();
    sources[1].identity.attributes.street = Some("street".into());
    sources[1].identity.attributes.postcode = Some("postcode".into());
    let mut hub = Hub::new(HubSettings::default(), &sources, w.store.clone()).unwrap();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let bob = party_of(w.store.as_ref(), "billing", "2").await;
    assert_ne!(
        party_of(w.store.as_ref(), "shop", "s3").await,
        bob,
        "exact rules alone do not link them"
    );

    hub.set_model(kith_resolve::Model::prior());
    let r = hub.link(&()).await.unwrap();
    assert!(r.candidate_pairs > 0);
    let robert = party_of(w.store.as_ref(), "shop", "s3").await;
    assert_eq!(
        party_of(w.store.as_ref(), "billing", "2").await,
        robert,
        "Bob is Robert at his address"
    );
    assert_eq!(r.merged, 1);
    // Whichever id survived, the other redirects to it.
    assert_eq!(w.store.party(&bob).await.unwrap().unwrap().id, robert);
    let link = w
        .store
        .link(&RecordRef::new("shop", "s3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.rule, "model");
    assert!(
        link.evidence[0].contains("billing:2"),
        "{:?}",
        link.evidence
    );
    // Ann and Cara Lee share a surname and an address: a household, not one person.
    assert_ne!(
        party_of(w.store.as_ref(), "billing", "1").await,
        party_of(w.store.as_ref(), "billing", "3").await
    );
    assert!(r.vetoed >= 1, "{r:?}");
    assert_eq!(r.vetoed_by.values().sum::<u64>(), r.vetoed, "{r:?}");
    assert!(r.vetoed_by.contains_key("given names differ"), "{r:?}");
    let (ann, cara) = (
        RecordRef::new("billing", "1"),
        RecordRef::new("billing", "3"),
    );
    let why = hub.explain(&ann, &cara).await.unwrap();
    assert_eq!(
        why.never_link.as_deref(),
        Some("given names differ"),
        "{why:?}"
    );

    // The rules are configuration: a business's own rule vetoes what it says
    // (here: never link across postcodes), and Bob and Robert part again.
    let rule: kith_resolve::NeverLinkRule =
        toml::from_str("name = \"other postcode\"\nwhen = \"postcode worse_than exact\"").unwrap();
    let mut own = Hub::new(
        HubSettings {
            never_link: vec![rule],
            ..HubSettings::default()
        },
        &sources,
        w.store.clone(),
    )
    .unwrap();
    own.set_model(kith_resolve::Model::prior());
    let why = own
        .explain(
            &RecordRef::new("shop", "s3"),
            &RecordRef::new("billing", "2"),
        )
        .await
        .unwrap();
    assert_eq!(
        why.never_link, None,
        "same postcode: the rule does not apply"
    );
    let r = own.link(&()).await.unwrap();
    assert!(r.vetoed_by.keys().all(|k| k == "other postcode"), "{r:?}");
}

#[tokio::test]
async fn a_customers_own_view_leaves_out_an_uncertain_record_and_what_hangs_on_it() {
    let w = world().await;
    let mut hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    hub.set_model(kith_resolve::Model::prior());
    let ann = party_of(w.store.as_ref(), "billing", "1").await;
    let shop = RecordRef::new("shop", "s1");
    assert_eq!(party_of(w.store.as_ref(), "shop", "s1").await, ann);
    // The shop record now hangs on the model's word alone, below its threshold.
    let mut link = w.store.link(&shop).await.unwrap().unwrap();
    link.rule = "model".into();
    link.score = 0.0;
    w.store.set_links(&[link]).await.unwrap();
    for (record, attribute) in [
        (shop.clone(), "via_shop"),
        (RecordRef::new("billing", "1"), "via_billing"),
    ] {
        w.store
            .add_contribution(&NewContribution {
                party: ann.clone(),
                anchor: Anchor::Record(record),
                kind: ContributionKind::Preference,
                attribute: attribute.into(),
                value: json!(true),
                by: "customer".into(),
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    let contributed = |v: &kith_hub::View| {
        let mut a: Vec<String> = v
            .facts
            .iter()
            .filter(|f| f.provenance.source == "contributions")
            .filter_map(|f| f.attribute.clone())
            .collect();
        a.sort();
        a
    };
    let staff = hub.view(&ann).await.unwrap();
    assert!(staff.records.iter().any(|r| r.source == "shop"));
    assert_eq!(contributed(&staff), ["via_billing", "via_shop"]);
    let own = hub
        .view_as(&ann, kith_hub::Audience::Customer)
        .await
        .unwrap();
    assert!(
        own.records.iter().all(|r| r.source != "shop"),
        "{:?}",
        own.records
    );
    assert_eq!(contributed(&own), ["via_billing"]);
    assert_eq!(source_of(&own, "shop").status, SourceStatus::NotLinked);
}

#[tokio::test]
async fn review_decisions_are_respected_by_every_later_run() {
    use kith_store::ReviewStatus;
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let (bob, dan) = (RecordRef::new("billing", "2"), RecordRef::new("shop", "s2"));
    assert_ne!(
        party_of(w.store.as_ref(), "billing", "2").await,
        party_of(w.store.as_ref(), "shop", "s2").await
    );
    // A person says Bob and Dan are one customer: they link, and stay linked.
    w.store
        .decide_review(
            &bob,
            &dan,
            ReviewStatus::Accepted,
            "staff:ann",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let r = hub.link(&()).await.unwrap();
    assert_eq!(r.decisions, 1);
    assert_eq!(
        party_of(w.store.as_ref(), "billing", "2").await,
        party_of(w.store.as_ref(), "shop", "s2").await
    );
    hub.sync(SyncOptions { full: true }, &()).await.unwrap();
    assert_eq!(
        party_of(w.store.as_ref(), "billing", "2").await,
        party_of(w.store.as_ref(), "shop", "s2").await
    );

    // Ann's shop record shares her e-mail and phone, but a person rejects the pair.
    let (ann_billing, ann_shop) = (RecordRef::new("billing", "1"), RecordRef::new("shop", "s1"));
    w.store
        .decide_review(
            &ann_billing,
            &ann_shop,
            ReviewStatus::Rejected,
            "staff:ann",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // Marketing's M-1 shares the e-mail with both, so the two still meet
    // through it; the rejection is a cannot-link constraint and holds anyway.
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let (ann1, ann2) = (
        party_of(w.store.as_ref(), "billing", "1").await,
        party_of(w.store.as_ref(), "shop", "s1").await,
    );
    assert_ne!(ann1, ann2, "a rejected pair is never in one party");
    hub.sync(SyncOptions { full: true }, &()).await.unwrap();
    assert_eq!(
        party_of(w.store.as_ref(), "billing", "1").await,
        ann1,
        "ids stay put"
    );
    assert_eq!(party_of(w.store.as_ref(), "shop", "s1").await, ann2);
}

#[tokio::test]
async fn a_scoped_view_asks_only_for_what_it_needs() {
    let w = world().await;
    let hub = w.hub();
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let party = hub.find_party("ann.lee@example.com").await.unwrap();
    let full = hub.view(&party).await.unwrap();
    let scope = kith_hub::ViewScope {
        kinds: vec!["transaction".into()],
        sources: Vec::new(),
        limit: Some(1),
    };
    let scoped = hub
        .view_scoped(&party, kith_hub::Audience::Staff, &scope)
        .await
        .unwrap();
    assert!(
        scoped
            .facts
            .iter()
            .all(|f| f.kind.as_str() == "transaction")
    );
    assert!(!scoped.facts.is_empty());
    // At most one per fact set and record: the newest.
    let mut seen = std::collections::HashSet::new();
    for f in &scoped.facts {
        assert!(
            seen.insert((f.provenance.fact_set.clone(), f.provenance.key.clone())),
            "{f:?}"
        );
        let newest = full
            .facts
            .iter()
            .filter(|g| {
                g.provenance.fact_set == f.provenance.fact_set
                    && g.provenance.key == f.provenance.key
            })
            .filter_map(|g| g.date)
            .max();
        assert_eq!(f.date, newest);
    }
    // A source without transactions is not asked, and says so.
    let skipped: Vec<_> = scoped
        .sources
        .iter()
        .filter(|s| {
            s.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("not asked"))
        })
        .collect();
    assert!(!skipped.is_empty(), "{:?}", scoped.sources);
}

#[tokio::test]
async fn a_shared_landline_links_only_where_phones_are_always_link_identifiers() {
    // Ann and Cara Lee share the household's landline.
    let w = world().await;
    w.sql(&["UPDATE customers SET phone = '0113 496 0000' WHERE id IN (1, 3)"])
        .await;
    let hub = w.hub();
    let r = hub.sync(SyncOptions::default(), &()).await.unwrap();
    assert_eq!(
        party_of(w.store.as_ref(), "billing", "1").await,
        party_of(w.store.as_ref(), "billing", "3").await,
        "by default a shared phone links: {:?}",
        r.link
    );

    // A business whose customers share landlines leaves phones out.
    let hub = w.hub_with(HubSettings {
        always_link: vec![
            kith_hub::IdentifierKind::Email,
            kith_hub::IdentifierKind::ExternalId,
        ],
        ..HubSettings::default()
    });
    hub.link(&()).await.unwrap();
    let (ann, cara) = (
        party_of(w.store.as_ref(), "billing", "1").await,
        party_of(w.store.as_ref(), "billing", "3").await,
    );
    assert_ne!(ann, cara, "a phone alone no longer links");
    let link = w
        .store
        .link(&RecordRef::new("billing", "3"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        link.evidence.iter().all(|e| !e.contains("phone")),
        "nor is it evidence: {:?}",
        link.evidence
    );
    // Ann's records in other sources still link by e-mail.
    assert_eq!(party_of(w.store.as_ref(), "shop", "s1").await, ann);
}
