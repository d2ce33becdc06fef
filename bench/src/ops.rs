//! What one request does, for each path measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::future::join_all;
use kith_connect::{Connector, LookupRequest};
use kith_hub::{Hub, SourceStatus};
use kith_model::{IdentityRecord, PartyId, RecordRef};
use sqlx::{MySqlPool, PgPool, SqlitePool};

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// `hub.view(&party)`.
    Kith,
    /// The same five source queries, issued by the benchmark itself.
    Direct,
    /// Only the hub-store read a view makes: the party with its records,
    /// contributions and relationships, in one call.
    HubStore,
    /// Only the view's fan-out: every connector's `lookup` with the party's
    /// records, concurrently, as the view issues them.
    Fanout,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Kith => "kith view",
            Path::Direct => "direct",
            Path::HubStore => "hub-store reads only",
            Path::Fanout => "connector fan-out only",
        }
    }
}

/// One person as each path needs them.
pub struct Target {
    pub party: PartyId,
    pub billing_id: i32,
    pub email: String,
    pub invoicing_id: i64,
    pub shop: Option<IdentityRecord>,
    pub marketing: Option<IdentityRecord>,
    /// The party's records by source, as the view groups them.
    pub by_source: BTreeMap<String, Vec<IdentityRecord>>,
    /// Facts a complete answer holds.
    pub facts: usize,
}

/// The benchmark's own handles on the sources.
/// (`None` for a source left out with `--skip`.)
pub struct Direct {
    pub pg: Option<PgPool>,
    pub my: Option<MySqlPool>,
    pub lite: Option<SqlitePool>,
    /// File sources have no query of their own: the direct path calls the
    /// very connector kith uses.
    pub shop: Option<Arc<dyn Connector>>,
    pub marketing: Option<Arc<dyn Connector>>,
}

pub struct Bench {
    pub hub: Hub,
    pub direct: Direct,
    pub targets: Vec<Target>,
    /// Time spent in each hub-store call by the `HubStore` path.
    pub calls: StoreCalls,
}

/// The hub-store calls a view makes, in its order.
pub const STORE_CALLS: [&str; 1] = ["party_snapshot"];

/// Total µs and count per hub-store call.
#[derive(Default)]
pub struct StoreCalls {
    micros: [AtomicU64; STORE_CALLS.len()],
    count: [AtomicU64; STORE_CALLS.len()],
}

impl StoreCalls {
    fn add(&self, call: usize, since: Instant) {
        self.micros[call].fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.count[call].fetch_add(1, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for i in 0..STORE_CALLS.len() {
            self.micros[i].store(0, Ordering::Relaxed);
            self.count[i].store(0, Ordering::Relaxed);
        }
    }

    /// (call, calls, mean µs) for each call.
    pub fn snapshot(&self) -> Vec<(&'static str, u64, f64)> {
        (0..STORE_CALLS.len())
            .map(|i| {
                let n = self.count[i].load(Ordering::Relaxed);
                let us = self.micros[i].load(Ordering::Relaxed);
                (STORE_CALLS[i], n, us as f64 / n.max(1) as f64)
            })
            .collect()
    }
}

fn lookup(records: Vec<IdentityRecord>) -> LookupRequest {
    LookupRequest {
        records,
        fact_sets: Vec::new(),
        since: None,
        limit: None,
    }
}

impl Bench {
    pub async fn run(&self, path: Path, i: usize) -> Result<()> {
        let t = &self.targets[i];
        let facts = match path {
            Path::Kith => self.kith(t).await?,
            Path::Direct => self.direct(t).await?,
            Path::HubStore => {
                self.hub_store(t).await?;
                return Ok(());
            }
            Path::Fanout => self.fanout(t).await?,
        };
        if facts != t.facts {
            bail!(
                "{}: {facts} facts for {}, expected {}",
                path.as_str(),
                t.party,
                t.facts
            );
        }
        Ok(())
    }

    async fn kith(&self, t: &Target) -> Result<usize> {
        let v = self.hub.view(&t.party).await?;
        if let Some(s) = v.sources.iter().find(|s| s.status != SourceStatus::Ok) {
            bail!(
                "view of {}: source {} is {} ({})",
                t.party,
                s.name,
                s.status.as_str(),
                s.reason.as_deref().unwrap_or("")
            );
        }
        Ok(v.facts.len())
    }

    /// The five queries, concurrently, each decoding its rows into typed values.
    async fn direct(&self, t: &Target) -> Result<usize> {
        let d = &self.direct;
        let orders = async {
            let Some(pg) = &d.pg else { return Ok(0) };
            let rows = sqlx::query_as::<_, (i32, i32, DateTime<Utc>, i32, String, String)>(
                "SELECT id, customer_id, ordered_at, total_cents, sku, status FROM orders \
                 WHERE customer_id = $1 ORDER BY ordered_at DESC",
            )
            .bind(t.billing_id)
            .fetch_all(pg)
            .await
            .context("PostgreSQL orders")?;
            Ok::<_, anyhow::Error>(rows.len())
        };
        let tickets = async {
            let Some(my) = &d.my else { return Ok(0) };
            let rows = sqlx::query_as::<_, (i32, String, NaiveDateTime, String, String)>(
                "SELECT id, email, opened_at, subject, status FROM tickets \
                 WHERE email = ? ORDER BY opened_at DESC",
            )
            .bind(&t.email)
            .fetch_all(my)
            .await
            .context("MariaDB tickets")?;
            Ok::<_, anyhow::Error>(rows.len())
        };
        let invoices = async {
            let Some(lite) = &d.lite else { return Ok(0) };
            let rows = sqlx::query_as::<_, (i64, i64, String, String, f64)>(
                "SELECT id, customer_id, number, issued_at, amount FROM invoices \
                 WHERE customer_id = ? ORDER BY issued_at DESC",
            )
            .bind(t.invoicing_id)
            .fetch_all(lite)
            .await
            .context("SQLite invoices")?;
            Ok::<_, anyhow::Error>(rows.len())
        };
        let shop = file_lookup(d.shop.as_deref(), t.shop.as_ref());
        let marketing = file_lookup(d.marketing.as_deref(), t.marketing.as_ref());
        let (orders, tickets, invoices, shop, marketing) =
            tokio::join!(orders, tickets, invoices, shop, marketing);
        Ok(orders? + tickets? + invoices? + shop? + marketing?)
    }

    /// The hub-store read of `Hub::view` (the party, its records, their
    /// contributions and its relationships in one call), with nothing else.
    async fn hub_store(&self, t: &Target) -> Result<()> {
        let at = Instant::now();
        self.hub
            .store()
            .party_snapshot(&t.party)
            .await?
            .context("party")?;
        self.calls.add(0, at);
        Ok(())
    }

    /// The view's fan-out alone: each connector's lookup with the records the
    /// view would hand it, all concurrently.
    async fn fanout(&self, t: &Target) -> Result<usize> {
        let answers = join_all(self.hub.connectors().iter().map(|c| {
            let recs = t
                .by_source
                .get(c.source().name.as_str())
                .cloned()
                .unwrap_or_default();
            async move { c.lookup(&lookup(recs)).await }
        }))
        .await;
        let mut n = 0;
        for a in answers {
            n += a?.facts.len();
        }
        Ok(n)
    }
}

/// A file source's facts through its connector (the same one kith uses).
async fn file_lookup(c: Option<&dyn Connector>, record: Option<&IdentityRecord>) -> Result<usize> {
    match (c, record) {
        (Some(c), Some(r)) => {
            let found = c
                .lookup(&lookup(vec![r.clone()]))
                .await
                .with_context(|| format!("{} lookup", c.source().name))?;
            Ok(found.facts.len())
        }
        _ => Ok(0),
    }
}

/// The person's records as the hub store holds them, grouped by source.
pub async fn records_of(
    hub: &Hub,
    party: &PartyId,
) -> Result<BTreeMap<String, Vec<IdentityRecord>>> {
    let store = hub.store();
    let mut out: BTreeMap<String, Vec<IdentityRecord>> = BTreeMap::new();
    for link in store.links_of(party).await? {
        if let Some(r) = store.record(&link.record).await? {
            out.entry(r.record.record.source.clone())
                .or_default()
                .push(r.record);
        }
    }
    Ok(out)
}

/// The single record of `source` in `by_source`, with its expected key.
pub fn one_record(
    by_source: &BTreeMap<String, Vec<IdentityRecord>>,
    source: &str,
    key: &str,
) -> Result<IdentityRecord> {
    let recs = by_source.get(source).map(Vec::as_slice).unwrap_or_default();
    match recs {
        [r] if r.record == RecordRef::new(source, key) => Ok(r.clone()),
        _ => bail!(
            "expected exactly {source}:{key} to be linked, found {:?}",
            recs.iter()
                .map(|r| r.record.to_string())
                .collect::<Vec<_>>()
        ),
    }
}
