//! `kith-bench ingest`: sustained acknowledged-and-durable events per second,
//! and acknowledgement latency, for Segment batches posted to kith's ingest
//! route over HTTP — the same router `kith serve` runs, in this process,
//! with the event log committing with fsync before each acknowledgement.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use kith_hub::{Hub, HubSettings};
use kith_store::{ApiScope, HubStore, SqliteStore};
use serde_json::json;

#[derive(Args, Clone)]
pub struct IngestArgs {
    /// Events per batch request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent clients (closed loop: each sends its next batch when the last is acknowledged).
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32")]
    pub concurrency: Vec<usize>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Also print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct Run {
    concurrency: usize,
    events_per_s: f64,
    batches: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub async fn run(args: IngestArgs) -> Result<()> {
    if args.batch == 0 || args.concurrency.is_empty() || args.seconds <= 0.0 {
        bail!("--batch, --concurrency and --seconds must be positive");
    }
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn HubStore> = Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await?);
    let log = Arc::new(kith_ingest::EventLog::open(&dir.path().join("events.db")).await?);
    let mut hub = Hub::with_connectors(HubSettings::default(), Vec::new(), store.clone())?;
    hub.add_connector(Arc::new(kith_ingest::IngestSource::new(log.clone())))?;
    let hub = Arc::new(hub);
    let (key, _) = kith_web::auth::keys::create(store.as_ref(), ApiScope::Ingest, "bench").await?;
    let state = kith_web::AppState::new(
        hub.clone(),
        kith_web::ServerSettings::default(),
        Arc::new(kith_web::LogSender),
    );
    let wake = Arc::new(tokio::sync::Notify::new());
    kith_ingest::spawn_resolver(hub, log.clone(), wake.clone(), Duration::from_millis(500));
    // The change feed is part of what kith serve runs, so it is part of what is measured.
    let feed = kith_feed::Feed::watch(store.clone()).await?;
    let app = kith::serve::router(state, Some((log.clone(), wake)), feed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/v1/batch");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .context("HTTP client")?;

    println!(
        "kith ingest benchmark: batches of {} events, {:.0} s per run, event log {} (WAL, synchronous=FULL)",
        args.batch,
        args.seconds,
        log.path().display()
    );
    println!("| clients | events/s | batches | p50 ack ms | p99 ack ms | max ms | errors |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    let mut sent_total = 0usize;
    for (round, &conc) in args.concurrency.iter().enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for worker in 0..conc {
            let (client, url, key, stop) = (client.clone(), url.clone(), key.clone(), stop.clone());
            let batch = args.batch;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let events: Vec<_> = (0..batch)
                        .map(|i| {
                            json!({
                                "type": "track", "userId": format!("user-{worker}-{}", n % 50),
                                "event": "Product Viewed", "messageId": format!("r{round}-w{worker}-b{n}-{i}"),
                                "properties": {"sku": format!("SKU-{}", i % 97), "price": 12.5},
                                "timestamp": "2026-11-23T10:00:00Z"
                            })
                        })
                        .collect();
                    let body = json!({ "batch": events, "sentAt": "2026-11-23T10:00:00Z" });
                    n += 1;
                    let t = Instant::now();
                    match client.post(&url).basic_auth(&key, Some("")).json(&body).send().await {
                        Ok(r) if r.status().is_success() => lat.push(t.elapsed().as_secs_f64() * 1e3),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let started_stop = Instant::now();
        let mut lat = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            lat.extend(l);
            errors += e;
        }
        // Requests in flight at the stop finish after it; count the time they took.
        let elapsed = args.seconds + started_stop.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        sent_total += lat.len() * args.batch;
        let r = Run {
            concurrency: conc,
            events_per_s: (lat.len() * args.batch) as f64 / elapsed,
            batches: lat.len(),
            p50_ms: pct(&lat, 0.5),
            p99_ms: pct(&lat, 0.99),
            max_ms: lat.last().copied().unwrap_or(f64::NAN),
            errors,
        };
        println!(
            "| {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {} |",
            r.concurrency, r.events_per_s, r.batches, r.p50_ms, r.p99_ms, r.max_ms, r.errors
        );
        runs.push(r);
    }
    let stored = log.count().await? as usize;
    println!("acknowledged {sent_total} events; the log holds {stored}");
    if stored != sent_total {
        bail!("the log holds {stored} events but {sent_total} were acknowledged");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    }
    Ok(())
}
