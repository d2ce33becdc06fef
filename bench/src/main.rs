//! kith's benchmarks.
//!
//! `kith-bench view` measures the 360 view of parties linked across five
//! sources (PostgreSQL, MariaDB, SQLite, CSV, JSON lines) beside the same
//! source queries issued directly by the benchmark at the same concurrency.
//! See `docs/benchmarks.md`.

mod ingest;
mod link;
mod load;
mod ops;
mod setup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use kith_connect::SourceConfig;
use kith_hub::{Hub, HubSettings, SyncOptions};
use kith_store::{HubStore, SqliteStore};
use serde::Serialize;

use crate::load::Stats;
use crate::ops::{Bench, Direct, Path, Target};

// The same allocator as the `kith` binary, so kith inside the benchmark runs as it
// runs in production; both paths share it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "kith-bench", about = "kith's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Views per second and latency for parties linked to five sources,
    /// beside the same source queries issued directly.
    View(ViewArgs),
    /// Acknowledged-and-durable events per second and acknowledgement latency
    /// for Segment batches posted to kith's ingest API.
    Ingest(ingest::IngestArgs),
    /// What a sync costs when a few records changed: linking only what
    /// changed against linking everything, on a generated population.
    Link(link::LinkArgs),
}

#[derive(Args, Clone)]
struct ViewArgs {
    /// People (each one party of five records).
    #[arg(long, default_value_t = 2000)]
    parties: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured seconds before each run.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrencies of the closed-loop runs.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    concurrency: Vec<usize>,
    /// Repeat the measurement this many times and report each figure's median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Before each measured run, wait up to this many seconds for other
    /// processes to leave the machine idle.
    #[arg(long, default_value_t = 900.0)]
    wait_idle: f64,
    /// Skip the breakdown of the view into hub-store reads and connector fan-out.
    #[arg(long)]
    no_breakdown: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// PostgreSQL server URL without a database [default: postgres://postgres@127.0.0.1:5432, then postgres://root@127.0.0.1:5432].
    #[arg(long)]
    postgres: Option<String>,
    /// MariaDB/MySQL server URL without a database.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    mysql: String,
    /// Seed of the generated business and of the request mix.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Leave these sources out (billing, support, invoicing, shop, marketing):
    /// for trying the benchmark while a connector is missing. Such figures are
    /// not the benchmark's.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Keep the bench databases and folder afterwards (the folder's path is printed).
    #[arg(long)]
    keep: bool,
    /// For profiling (`perf record -p`): after warm-up, run only this path in
    /// a closed loop at the first `--concurrency` for `--seconds`, print its
    /// figures and stop. Not the benchmark's comparison.
    #[arg(long, value_enum)]
    only: Option<Path>,
    /// With `--only`: an open loop at this many requests per second instead,
    /// so two paths' CPU per request compare at the same load.
    #[arg(long, requires = "only")]
    rate: Option<f64>,
}

/// One concurrency of the closed loop.
#[derive(Debug, Clone, Serialize)]
struct ClosedRow {
    concurrency: usize,
    kith: Stats,
    direct: Stats,
    /// kith throughput / direct throughput.
    ratio: f64,
}

/// The open loop at half the direct path's saturation throughput.
#[derive(Debug, Clone, Serialize)]
struct OpenRun {
    rate: f64,
    kith: Stats,
    direct: Stats,
    p50_overhead_ms: f64,
    p99_overhead_ms: f64,
}

/// One repetition of the whole measurement.
#[derive(Debug, Clone, Serialize)]
struct Run {
    closed: Vec<ClosedRow>,
    /// Highest direct throughput over the concurrencies, and where.
    saturation: f64,
    saturation_concurrency: usize,
    kith_peak: f64,
    kith_peak_concurrency: usize,
    /// kith's peak throughput / the direct path's.
    peak_ratio: f64,
    /// Open loop at half the direct path's saturation (the target's load).
    open: OpenRun,
    /// Open loop at half kith's own peak (for comparison only).
    open_kith_half: OpenRun,
}

#[derive(Debug, Clone, Serialize)]
struct BreakdownRow {
    concurrency: usize,
    path: &'static str,
    stats: Stats,
    /// For the hub-store path: (call, calls, mean µs) of each store call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    store_calls: Vec<(&'static str, u64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
struct Targets {
    throughput_ratio: f64,
    throughput_met: bool,
    p99_overhead_ms: f64,
    p99_overhead_met: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    date: String,
    cores: usize,
    parties: usize,
    seconds: f64,
    warmup: f64,
    repeat: usize,
    facts_per_view: f64,
    setup_seconds: f64,
    sync_seconds: f64,
    /// Each figure the median over the runs.
    median: Run,
    runs: Vec<Run>,
    breakdown: Vec<BreakdownRow>,
    targets: Targets,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::View(args) => rt.block_on(view(args)),
        Command::Ingest(args) => rt.block_on(ingest::run(args)),
        Command::Link(args) => rt.block_on(link::run(args)),
    }
}

async fn view(args: ViewArgs) -> Result<()> {
    if args.parties == 0 || args.concurrency.is_empty() || args.repeat == 0 {
        bail!("--parties, --concurrency and --repeat must not be empty or zero");
    }
    let pg_candidates = match &args.postgres {
        Some(u) => vec![u.trim_end_matches('/').to_string()],
        None => vec![
            "postgres://postgres@127.0.0.1:5432".to_string(),
            "postgres://root@127.0.0.1:5432".to_string(),
        ],
    };
    let pg_base = setup::postgres_base(&pg_candidates).await?;
    let my_base = args.mysql.trim_end_matches('/').to_string();
    let outcome = measure(&args, &pg_base, &my_base).await;
    if !args.keep {
        let pg = setup::drop_postgres(&pg_base).await;
        let my = setup::drop_mysql(&my_base).await;
        if let Err(e) = pg.and(my) {
            eprintln!("warning: could not drop the bench databases: {e:#}");
        }
    }
    outcome
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

async fn measure(args: &ViewArgs, pg_base: &str, my_base: &str) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tmp = tempfile::Builder::new().prefix("kith-bench-").tempdir()?;
    let dir = tmp.path().to_path_buf();
    let mut rng = setup::Rng::new(args.seed);

    // 1. Set-up: five sources, one hub, one sync.
    let started = Instant::now();
    eprintln!(
        "setting up {} people in five sources under {}",
        args.parties,
        dir.display()
    );
    let people = setup::people(args.parties, &mut rng);
    setup::postgres(pg_base, &people, &mut rng)
        .await
        .context("PostgreSQL set-up")?;
    setup::mysql(my_base, &people, &mut rng)
        .await
        .context("MariaDB set-up")?;
    setup::sqlite(&dir.join("invoicing.db"), &people, &mut rng)
        .await
        .context("SQLite set-up")?;
    setup::csv(&dir.join("shop"), &people, &mut rng)?;
    setup::jsonl(&dir.join("marketing"), &people, &mut rng)?;
    let pg_url = format!("{pg_base}/{}", setup::DB);
    let my_url = format!("{my_base}/{}", setup::DB);
    let toml_text = setup::sources_toml(&pg_url, &my_url);
    std::fs::write(dir.join("sources.toml"), &toml_text)?;
    let setup_seconds = started.elapsed().as_secs_f64();

    #[derive(serde::Deserialize)]
    struct Sources {
        sources: Vec<SourceConfig>,
    }
    let mut sources = toml::from_str::<Sources>(&toml_text)?.sources;
    for name in &args.skip {
        if !sources.iter().any(|s| &s.name == name) {
            bail!("--skip {name}: no such source");
        }
    }
    sources.retain(|s| !args.skip.contains(&s.name));
    let linked = sources.len();
    let on = |name: &str| !args.skip.iter().any(|s| s == name);
    if linked < 5 {
        eprintln!(
            "warning: sources left out ({}): these are not the benchmark's figures",
            args.skip.join(", ")
        );
    }
    for s in &mut sources {
        s.connection.resolve_paths(&dir);
        let problems = s.validate();
        if !problems.is_empty() {
            bail!("source {}: {problems:?}", s.name);
        }
    }
    let store: Arc<dyn HubStore> = Arc::new(SqliteStore::open(&dir.join("hub.db")).await?);
    let hub = Hub::new(HubSettings::default(), &sources, store)?;
    let started = Instant::now();
    let report = hub.sync(SyncOptions::default(), &()).await?;
    let sync_seconds = started.elapsed().as_secs_f64();
    if let Some(f) = report.failed_sources().next() {
        bail!("sync failed for a source: {f:?}");
    }
    eprintln!(
        "synced in {sync_seconds:.1}s: {} records, {} parties",
        report.link.records, report.link.parties
    );
    if report.link.parties != args.parties as u64
        || report.link.records != (linked * args.parties) as u64
    {
        bail!(
            "expected {} parties of {linked} records each, linking made {} parties of {} records",
            args.parties,
            report.link.parties,
            report.link.records
        );
    }

    let mut targets = Vec::with_capacity(people.len());
    for p in &people {
        let party = hub.find_party(&p.email).await?;
        let by_source = ops::records_of(&hub, &party).await?;
        if by_source.values().map(Vec::len).sum::<usize>() != linked {
            bail!(
                "party {party} ({}) is not linked to {linked} records",
                p.email
            );
        }
        let facts = [
            ("billing", p.orders),
            ("support", p.tickets),
            ("invoicing", p.invoices),
            ("shop", p.shop_orders),
            ("marketing", p.offers),
        ]
        .iter()
        .filter(|(s, _)| on(s))
        .map(|(_, n)| n)
        .sum();
        targets.push(Target {
            shop: on("shop")
                .then(|| ops::one_record(&by_source, "shop", &p.shop_key()))
                .transpose()?,
            marketing: on("marketing")
                .then(|| ops::one_record(&by_source, "marketing", &p.marketing_key()))
                .transpose()?,
            party,
            billing_id: p.billing_id(),
            email: p.email.clone(),
            invoicing_id: p.invoicing_id(),
            by_source,
            facts,
        });
    }
    let facts_per_view = targets.iter().map(|t| t.facts as f64).sum::<f64>() / targets.len() as f64;

    // The benchmark's own handles, sized as the connectors' pools (4).
    let pool = 4;
    let direct = Direct {
        pg: match on("billing") {
            true => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(pool)
                    .connect(&format!("{pg_url}?sslmode=disable"))
                    .await?,
            ),
            false => None,
        },
        my: match on("support") {
            true => Some(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(pool)
                    .connect(&format!("{my_url}?ssl-mode=disabled"))
                    .await?,
            ),
            false => None,
        },
        lite: match on("invoicing") {
            true => Some(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(pool)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(dir.join("invoicing.db"))
                            .read_only(true),
                    )
                    .await?,
            ),
            false => None,
        },
        shop: on("shop").then(|| connector(&hub, "shop")).transpose()?,
        marketing: on("marketing")
            .then(|| connector(&hub, "marketing"))
            .transpose()?,
    };
    let bench = Arc::new(Bench {
        hub,
        direct,
        targets,
        calls: Default::default(),
    });

    // 2. Warm-up: one view and one direct request per party, checked.
    let started = Instant::now();
    for i in 0..bench.targets.len() {
        bench.run(Path::Kith, i).await.context("warm-up view")?;
        bench.run(Path::Direct, i).await.context("warm-up direct")?;
    }
    eprintln!(
        "warm-up: {} views and direct requests in {:.1}s, all complete",
        bench.targets.len(),
        started.elapsed().as_secs_f64()
    );

    if let Some(p) = args.only {
        let c = args.concurrency[0];
        let (warm, window) = (secs(args.warmup), secs(args.seconds));
        let load = match args.rate {
            Some(r) => format!("{r}/s"),
            None => format!("C={c}"),
        };
        eprintln!(
            "only {} at {load} for {}s (pid {})",
            p.as_str(),
            args.seconds,
            std::process::id()
        );
        let s = match args.rate {
            Some(r) => load::open(&bench, p, r, warm, window, args.seed).await,
            None => load::closed(&bench, p, c, warm, window, args.seed).await,
        };
        println!("{}: {}", p.as_str(), s);
        if args.keep {
            eprintln!("kept {}", tmp.keep().display());
        }
        return Ok(());
    }

    // 3 and 4, `repeat` times.
    let mut runs = Vec::new();
    for r in 0..args.repeat {
        eprintln!("run {} of {}", r + 1, args.repeat);
        runs.push(run_once(&bench, args, r).await);
    }
    let median = median_run(&runs);

    let breakdown = if args.no_breakdown {
        Vec::new()
    } else {
        breakdown(&bench, args, &median).await
    };

    let throughput_ratio = median.peak_ratio;
    let p99_overhead_ms = median.open.p99_overhead_ms;
    let report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        cores,
        parties: args.parties,
        seconds: args.seconds,
        warmup: args.warmup,
        repeat: args.repeat,
        facts_per_view,
        setup_seconds,
        sync_seconds,
        median,
        runs,
        breakdown,
        targets: Targets {
            throughput_ratio,
            throughput_met: throughput_ratio >= 0.8,
            p99_overhead_ms,
            p99_overhead_met: p99_overhead_ms <= 2.0,
        },
    };
    println!("{}", markdown(&report));
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(())
}

fn connector(hub: &Hub, name: &str) -> Result<Arc<dyn kith_connect::Connector>> {
    hub.connectors()
        .iter()
        .find(|c| c.source().name == name)
        .cloned()
        .with_context(|| format!("no connector {name}"))
}

async fn run_once(bench: &Arc<Bench>, args: &ViewArgs, r: usize) -> Run {
    let (warm, window) = (secs(args.warmup), secs(args.seconds));
    let seed = args.seed.wrapping_add(r as u64 * 1000);
    let mut closed = Vec::new();
    for &c in &args.concurrency {
        // Alternate which path goes first, so neither always follows the other.
        let order = if (r + closed.len()).is_multiple_of(2) {
            [Path::Kith, Path::Direct]
        } else {
            [Path::Direct, Path::Kith]
        };
        let mut kith = Stats::default();
        let mut direct = Stats::default();
        for p in order {
            load::wait_idle(secs(args.wait_idle)).await;
            let s = load::closed(bench, p, c, warm, window, seed + c as u64).await;
            eprintln!("  closed C={c:<3} {:<10} {}", p.as_str(), s);
            if let Some(e) = &s.first_error {
                eprintln!("    first error: {e}");
            }
            match p {
                Path::Kith => kith = s,
                _ => direct = s,
            }
        }
        closed.push(ClosedRow {
            concurrency: c,
            ratio: kith.throughput / direct.throughput,
            kith,
            direct,
        });
    }
    let sat = closed
        .iter()
        .max_by(|a, b| a.direct.throughput.total_cmp(&b.direct.throughput))
        .expect("at least one concurrency");
    let peak = closed
        .iter()
        .max_by(|a, b| a.kith.throughput.total_cmp(&b.kith.throughput))
        .expect("at least one concurrency");
    let (saturation, saturation_concurrency) = (sat.direct.throughput, sat.concurrency);
    let (kith_peak, kith_peak_concurrency) = (peak.kith.throughput, peak.concurrency);

    let open = open_pair(bench, args, saturation / 2.0, r, seed + 7).await;
    let open_kith_half = open_pair(bench, args, kith_peak / 2.0, r, seed + 11).await;
    Run {
        saturation,
        saturation_concurrency,
        kith_peak,
        kith_peak_concurrency,
        peak_ratio: kith_peak / saturation,
        open,
        open_kith_half,
        closed,
    }
}

/// Both paths in an open loop at `rate`.
async fn open_pair(bench: &Arc<Bench>, args: &ViewArgs, rate: f64, r: usize, seed: u64) -> OpenRun {
    let (warm, window) = (secs(args.warmup), secs(args.seconds));
    let order = if r.is_multiple_of(2) {
        [Path::Kith, Path::Direct]
    } else {
        [Path::Direct, Path::Kith]
    };
    let mut kith = Stats::default();
    let mut direct = Stats::default();
    for p in order {
        load::wait_idle(secs(args.wait_idle)).await;
        let s = load::open(bench, p, rate, warm, window, seed).await;
        eprintln!("  open {rate:.0}/s {:<10} {}", p.as_str(), s);
        match p {
            Path::Kith => kith = s,
            _ => direct = s,
        }
    }
    OpenRun {
        rate,
        p50_overhead_ms: kith.p50_ms - direct.p50_ms,
        p99_overhead_ms: kith.p99_ms - direct.p99_ms,
        kith,
        direct,
    }
}

/// Where a view's time goes: the hub-store reads alone, the connector fan-out
/// alone, and the whole view, at concurrency 1 and at kith's peak.
async fn breakdown(bench: &Arc<Bench>, args: &ViewArgs, median: &Run) -> Vec<BreakdownRow> {
    let (warm, window) = (secs(args.warmup), secs(args.seconds));
    let mut cs = vec![1, median.kith_peak_concurrency];
    cs.dedup();
    let mut rows = Vec::new();
    for c in cs {
        for p in [Path::HubStore, Path::Fanout, Path::Kith, Path::Direct] {
            load::wait_idle(secs(args.wait_idle)).await;
            bench.calls.reset();
            let stats = load::closed(bench, p, c, warm, window, args.seed + 99).await;
            let store_calls = match p {
                Path::HubStore => bench.calls.snapshot(),
                _ => Vec::new(),
            };
            eprintln!("  breakdown C={c:<3} {:<24} {}", p.as_str(), stats);
            rows.push(BreakdownRow {
                concurrency: c,
                path: p.as_str(),
                stats,
                store_calls,
            });
        }
    }
    rows
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_usize(v: Vec<usize>) -> usize {
    median(v.into_iter().map(|x| x as f64).collect()).round() as usize
}

fn median_stats(all: &[&Stats]) -> Stats {
    let m = |f: fn(&Stats) -> f64| median(all.iter().map(|s| f(s)).collect());
    Stats {
        requests: m(|s| s.requests as f64).round() as u64,
        errors: all.iter().map(|s| s.errors).sum(),
        throughput: m(|s| s.throughput),
        p50_ms: m(|s| s.p50_ms),
        p99_ms: m(|s| s.p99_ms),
        mean_ms: m(|s| s.mean_ms),
        max_ms: m(|s| s.max_ms),
        cpu_us_per_req: m(|s| s.cpu_us_per_req),
        db_cpu_us_per_req: m(|s| s.db_cpu_us_per_req),
        machine_busy_pct: m(|s| s.machine_busy_pct),
        other_busy_pct: all.iter().map(|s| s.other_busy_pct).fold(0.0, f64::max),
        first_error: all.iter().find_map(|s| s.first_error.clone()),
    }
}

/// Every figure the median of the runs' (ratios and overheads too, taken per run).
fn median_run(runs: &[Run]) -> Run {
    let closed = (0..runs[0].closed.len())
        .map(|i| {
            let rows: Vec<&ClosedRow> = runs.iter().map(|r| &r.closed[i]).collect();
            ClosedRow {
                concurrency: rows[0].concurrency,
                kith: median_stats(&rows.iter().map(|r| &r.kith).collect::<Vec<_>>()),
                direct: median_stats(&rows.iter().map(|r| &r.direct).collect::<Vec<_>>()),
                ratio: median(rows.iter().map(|r| r.ratio).collect()),
            }
        })
        .collect();
    let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    Run {
        closed,
        saturation: m(|r| r.saturation),
        saturation_concurrency: median_usize(
            runs.iter().map(|r| r.saturation_concurrency).collect(),
        ),
        kith_peak: m(|r| r.kith_peak),
        kith_peak_concurrency: median_usize(runs.iter().map(|r| r.kith_peak_concurrency).collect()),
        peak_ratio: m(|r| r.peak_ratio),
        open: median_open(&runs.iter().map(|r| &r.open).collect::<Vec<_>>()),
        open_kith_half: median_open(&runs.iter().map(|r| &r.open_kith_half).collect::<Vec<_>>()),
    }
}

fn median_open(runs: &[&OpenRun]) -> OpenRun {
    let m = |f: fn(&OpenRun) -> f64| median(runs.iter().map(|r| f(r)).collect());
    OpenRun {
        rate: m(|r| r.rate),
        kith: median_stats(&runs.iter().map(|r| &r.kith).collect::<Vec<_>>()),
        direct: median_stats(&runs.iter().map(|r| &r.direct).collect::<Vec<_>>()),
        p50_overhead_ms: m(|r| r.p50_overhead_ms),
        p99_overhead_ms: m(|r| r.p99_overhead_ms),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "**met**" } else { "**missed**" }
}

fn open_table(s: &mut String, title: &str, o: &OpenRun) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "## {title} ({:.0} req/s, latency from the scheduled time)\n",
        o.rate
    );
    let _ = writeln!(
        s,
        "| path | achieved req/s | p50 ms | p99 ms | max ms | bench CPU µs/req | DB CPU µs/req | machine busy % | errors | others' CPU % |"
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (name, st) in [("kith", &o.kith), ("direct", &o.direct)] {
        let _ = writeln!(
            s,
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {} | {:.0} |",
            st.throughput,
            st.p50_ms,
            st.p99_ms,
            st.max_ms,
            st.cpu_us_per_req,
            st.db_cpu_us_per_req,
            st.machine_busy_pct,
            st.errors,
            st.other_busy_pct
        );
    }
    let _ = writeln!(
        s,
        "\nOverhead (kith − direct): p50 {:+.2} ms, p99 {:+.2} ms.\n",
        o.p50_overhead_ms, o.p99_overhead_ms
    );
}

fn markdown(r: &Report) -> String {
    use std::fmt::Write as _;
    let m = &r.median;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# kith view benchmark, {} ({} cores, {} parties × 5 sources, {:.1} facts per view; \
         {} s measured per run after {} s warm-up; median of {} run{})\n",
        r.date,
        r.cores,
        r.parties,
        r.facts_per_view,
        r.seconds,
        r.warmup,
        r.repeat,
        if r.repeat == 1 { "" } else { "s" }
    );
    let _ = writeln!(s, "## Closed loop (C requests in flight)\n");
    let _ = writeln!(
        s,
        "| C | kith views/s | kith p50 ms | kith p99 ms | direct req/s | direct p50 ms | direct p99 ms | kith / direct | bench CPU µs/req kith / direct | DB CPU µs/req kith / direct | errors | others' CPU % |"
    );
    let _ = writeln!(s, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for c in &m.closed {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0}% | {:.0} / {:.0} | {:.0} / {:.0} | {} | {:.0} |",
            c.concurrency,
            c.kith.throughput,
            c.kith.p50_ms,
            c.kith.p99_ms,
            c.direct.throughput,
            c.direct.p50_ms,
            c.direct.p99_ms,
            c.ratio * 100.0,
            c.kith.cpu_us_per_req,
            c.direct.cpu_us_per_req,
            c.kith.db_cpu_us_per_req,
            c.direct.db_cpu_us_per_req,
            c.kith.errors + c.direct.errors,
            c.kith.other_busy_pct.max(c.direct.other_busy_pct)
        );
    }
    let _ = writeln!(
        s,
        "\nSaturation (direct peak): {:.0} req/s at C={}. kith peak: {:.0} views/s at C={} = {:.0}% of the direct peak.\n",
        m.saturation,
        m.saturation_concurrency,
        m.kith_peak,
        m.kith_peak_concurrency,
        m.peak_ratio * 100.0
    );
    for (title, o) in [
        ("Open loop at half saturation", &m.open),
        (
            "For comparison: open loop at half of kith's own peak",
            &m.open_kith_half,
        ),
    ] {
        open_table(&mut s, title, o);
    }
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(
        s,
        "- Throughput ≥ 80% of direct: kith peak / direct peak = {:.0}% — {}",
        r.targets.throughput_ratio * 100.0,
        yes(r.targets.throughput_met)
    );
    let _ = writeln!(
        s,
        "- p99 overhead ≤ 2 ms at half saturation: {:+.2} ms — {}",
        r.targets.p99_overhead_ms,
        yes(r.targets.p99_overhead_met)
    );
    if !r.breakdown.is_empty() {
        let _ = writeln!(
            s,
            "\n## Breakdown (closed loop, single run)\n\n| C | path | req/s | p50 ms | p99 ms | mean ms | bench CPU µs/req | DB CPU µs/req | others' CPU % |\n|--:|---|--:|--:|--:|--:|--:|--:|--:|"
        );
        for b in &r.breakdown {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} |",
                b.concurrency,
                b.path,
                b.stats.throughput,
                b.stats.p50_ms,
                b.stats.p99_ms,
                b.stats.mean_ms,
                b.stats.cpu_us_per_req,
                b.stats.db_cpu_us_per_req,
                b.stats.other_busy_pct
            );
        }
    }
    for b in r.breakdown.iter().filter(|b| !b.store_calls.is_empty()) {
        let _ = writeln!(
            s,
            "\nHub-store calls of a view at C={} (mean wall time per call, warm-up included):\n\n| call | per view | mean µs |\n|---|--:|--:|",
            b.concurrency
        );
        let views = b.store_calls[0].1.max(1) as f64;
        for (call, n, us) in &b.store_calls {
            let _ = writeln!(s, "| {call} | {:.1} | {us:.0} |", *n as f64 / views);
        }
    }
    if r.runs.len() > 1 {
        let _ = writeln!(
            s,
            "\n## Runs\n\n| run | direct peak | kith peak | kith / direct | open p99 kith | open p99 direct | p99 overhead |\n|--:|--:|--:|--:|--:|--:|--:|"
        );
        for (i, run) in r.runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.0}% | {:.2} | {:.2} | {:+.2} |",
                i + 1,
                run.saturation,
                run.kith_peak,
                run.peak_ratio * 100.0,
                run.open.kith.p99_ms,
                run.open.direct.p99_ms,
                run.open.p99_overhead_ms
            );
        }
    }
    s
}
