//! The command line: kith's contract with people and scripts.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kith_hub::SyncOptions;
use kith_store::AuditEntry;

use crate::app::App;
use crate::demo::generate::{GenerateOptions, generate};
use crate::progress::SyncProgress;
use crate::report;

#[derive(Debug, Parser)]
#[command(
    name = "kith",
    version,
    about = "kith — a federated customer-information hub",
    long_about = "kith leaves customer data in the systems where it lives, links the records that \
                  belong to the same person across them, and shows one accurate, current picture of \
                  each customer.\n\nStart with `kith demo`."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "KITH_CONFIG",
        default_value = "kith.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a realistic small business (five sources, thousands of people), sync it and show a customer.
    Demo {
        /// Where to write the demo sources, their kith.toml and the hub store.
        #[arg(long, default_value = "kith-demo")]
        dir: PathBuf,
        /// Only write the sources and DIR/kith.toml; do not sync or show anything.
        #[arg(long)]
        generate_only: bool,
        /// How many people the business knows.
        #[arg(long, default_value_t = 3000)]
        people: usize,
        /// Seed of the generator (the same seed writes the same files).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Where the demo's loyalty platform API listens (port 0 picks a free one).
        #[arg(long, default_value = crate::demo::generate::DEFAULT_LOYALTY_LISTEN)]
        loyalty_listen: std::net::SocketAddr,
        /// Show the customer and stop, instead of serving the portal, the console and the loyalty API until Ctrl-C.
        #[arg(long)]
        no_serve: bool,
        /// Where the demo's portal, console and API listen (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Serve the demo's loyalty platform API for a demo folder (until Ctrl-C).
    DemoApi {
        #[arg(long, default_value = "kith-demo")]
        dir: PathBuf,
        #[arg(long, default_value = crate::demo::generate::DEFAULT_LOYALTY_LISTEN)]
        listen: std::net::SocketAddr,
    },
    /// Read every source's people into the identity index and link them into parties.
    Sync {
        /// Read every source whole and remove records that are gone from it.
        #[arg(long)]
        full: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a party's 360 view, gathered live from every linked source.
    View {
        /// A party id, an e-mail address, a phone number, or source:key.
        query: String,
        /// Print one JSON object instead of a report.
        #[arg(long)]
        json: bool,
        /// Show the party's unified timeline (every dated fact and ingested event, newest first) instead.
        #[arg(long)]
        timeline: bool,
        /// Timeline: only these kinds (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', requires = "timeline")]
        kind: Vec<String>,
        /// Timeline: only these sources (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', requires = "timeline")]
        source: Vec<String>,
        /// Timeline: at most this many entries.
        #[arg(long, default_value_t = 50, requires = "timeline")]
        limit: usize,
    },
    /// Train the match model on the identity index and write it to hub.model.
    Train {
        /// Seed of the random pair sample (the same seed gives the same model).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Most random pairs sampled to estimate u probabilities.
        #[arg(long, default_value_t = 1_000_000)]
        u_pairs: u64,
    },
    /// Sync every source and resolve its records into parties with the match
    /// model (training one first when none exists).
    Resolve {
        /// Write `source,key,party_id` for every source record to this CSV file.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show every comparison between two records and its weight, linked or not.
    Explain {
        /// source:key of the first record.
        a: String,
        /// source:key of the second record.
        b: String,
        #[arg(long)]
        json: bool,
    },
    /// The clerical review queue: pairs the match model was unsure of.
    Review {
        #[command(subcommand)]
        action: Option<ReviewAction>,
    },
    /// Serve the JSON API, the customer portal and the staff console.
    Serve {
        /// Where to listen; overrides server.listen in the configuration.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// API keys for applications: create, list, revoke.
    Keys {
        #[command(subcommand)]
        action: crate::access::KeysAction,
    },
    /// Staff who sign in to the console: add, list, set a password, disable.
    Users {
        #[command(subcommand)]
        action: crate::access::UsersAction,
    },
    /// Validate the configuration and try to reach every source.
    Check,
    /// List rows that could not be read, with where they are and why.
    Quarantine {
        /// Only this source's rows.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewAction {
    /// List pending pairs (the default), or every pair with --all.
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// The two records are the same party: always link them.
    Accept {
        a: String,
        b: String,
        /// Who decided (recorded with the decision and in the audit log).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// The two records are different parties: never link them directly.
    Reject {
        a: String,
        b: String,
        #[arg(long, default_value = "cli")]
        by: String,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo {
            dir,
            generate_only,
            people,
            seed,
            loyalty_listen,
            no_serve,
            listen,
        } => {
            let serve = (!no_serve).then_some(listen);
            demo(dir, generate_only, people, seed, loyalty_listen, serve).await
        }
        Command::Serve { listen } => {
            let app = App::open(&cli.config).await?;
            serve(app, listen).await
        }
        Command::Keys { action } => {
            let app = App::open(&cli.config).await?;
            crate::access::keys(app.hub.store().as_ref(), action).await
        }
        Command::Users { action } => {
            let app = App::open(&cli.config).await?;
            crate::access::users(app.hub.store().as_ref(), action).await
        }
        Command::DemoApi { dir, listen } => {
            let api = crate::demo::loyalty_api::start(&dir, listen).await?;
            println!(
                "demo loyalty API serving {} at {} (Ctrl-C stops it)",
                dir.display(),
                api.base_url()
            );
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Command::Sync { full, json } => {
            let app = App::open(&cli.config).await?;
            sync(&app, full, json).await
        }
        Command::View {
            query,
            json,
            timeline,
            kind,
            source,
            limit,
        } => {
            let app = App::open(&cli.config).await?;
            if timeline {
                let filter = kith_hub::TimelineFilter {
                    kinds: kind,
                    sources: source,
                    before: None,
                    limit,
                };
                show_timeline(&app, &query, &filter, json).await
            } else {
                view(&app, &query, json).await
            }
        }
        Command::Check => check(&cli.config).await,
        Command::Review { action } => {
            let app = App::open(&cli.config).await?;
            review(
                &app,
                action.unwrap_or(ReviewAction::List {
                    all: false,
                    json: false,
                }),
            )
            .await
        }
        Command::Train { seed, u_pairs } => {
            let mut app = App::open(&cli.config).await?;
            train(&mut app, seed, u_pairs).await
        }
        Command::Resolve { export, json } => {
            let mut app = App::open(&cli.config).await?;
            resolve(&mut app, export.as_deref(), json).await
        }
        Command::Explain { a, b, json } => {
            let app = App::open(&cli.config).await?;
            let e = app.hub.explain(&record_ref(&a)?, &record_ref(&b)?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", report::explanation(&a, &b, &e, app.has_model()));
            }
            Ok(())
        }
        Command::Quarantine { source, json } => {
            let app = App::open(&cli.config).await?;
            let rows = app.hub.store().quarantined(source.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no quarantined rows");
            } else {
                for q in rows {
                    println!(
                        "{:<12} {:<28} {}  (seen {})",
                        q.source,
                        q.location,
                        q.reason,
                        q.seen_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
            Ok(())
        }
    }
}

async fn sync(app: &App, full: bool, json: bool) -> Result<()> {
    let progress = SyncProgress::new(!json && std::io::stderr().is_terminal());
    let report = app.hub.sync(SyncOptions { full }, &progress).await?;
    progress.finish();
    app.hub
        .store()
        .audit(&AuditEntry {
            at: chrono::Utc::now(),
            actor: "cli".into(),
            action: "sync".into(),
            party: None,
            detail: format!("{} sources", report.sources.len()),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::sync(&report));
    }
    if report.failed_sources().next().is_some() {
        anyhow::bail!(
            "{} source(s) could not be read: {}",
            report.failed_sources().count(),
            report
                .failed_sources()
                .map(|s| s.source.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn record_ref(s: &str) -> Result<kith_model::RecordRef> {
    kith_model::RecordRef::parse(s)
        .with_context(|| format!("{s:?} is not a record reference (write source:key)"))
}

async fn review(app: &App, action: ReviewAction) -> Result<()> {
    use kith_store::ReviewStatus;
    let store = app.hub.store();
    let (a, b, status, by) = match action {
        ReviewAction::List { all, json } => {
            let pairs = store
                .review_pairs((!all).then_some(ReviewStatus::Pending))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pairs)?);
            } else if pairs.is_empty() {
                println!("the review queue is empty");
            } else {
                for p in &pairs {
                    let prob = p
                        .probability
                        .map(|p| format!("{p:.3}"))
                        .unwrap_or_else(|| "—".into());
                    let who = p.decided_by.as_deref().unwrap_or("");
                    println!(
                        "{:<9} {prob:>6}  {}  {}  {who}",
                        p.status.as_str(),
                        p.a,
                        p.b
                    );
                }
                println!(
                    "\nkith review accept|reject SOURCE:KEY SOURCE:KEY; kith explain shows why"
                );
            }
            return Ok(());
        }
        ReviewAction::Accept { a, b, by } => (a, b, ReviewStatus::Accepted, by),
        ReviewAction::Reject { a, b, by } => (a, b, ReviewStatus::Rejected, by),
    };
    let (a, b) = (record_ref(&a)?, record_ref(&b)?);
    for r in [&a, &b] {
        if store.record(r).await?.is_none() {
            anyhow::bail!("no record {r} in the identity index");
        }
    }
    let now = chrono::Utc::now();
    app.hub.decide_review(&a, &b, status, &by).await?;
    store
        .audit(&AuditEntry {
            at: now,
            actor: by.clone(),
            action: format!("review {}", status.as_str()),
            party: None,
            detail: format!("{a} {b}"),
        })
        .await?;
    // The decision takes effect now, not at the next sync.
    let report = app.hub.link(&()).await?;
    println!(
        "{} {a} and {b}; re-linked: {} parties, {} links changed",
        status.as_str(),
        report.parties,
        report.links_changed
    );
    Ok(())
}

async fn train(app: &mut App, seed: u64, u_pairs: u64) -> Result<()> {
    let options = kith_resolve::TrainOptions {
        seed,
        u_max_pairs: u_pairs,
        ..Default::default()
    };
    let model = app.hub.train(&options).await?;
    let t = &model.training;
    println!(
        "trained on {} records: {} random pairs for u, {} EM session(s), λ = {:.6}",
        t.records,
        t.u_pairs,
        t.em_sessions.len(),
        model.lambda
    );
    for s in &t.em_sessions {
        println!(
            "  EM {:<28} {:>9} pairs {:>3} iterations{}",
            s.rule,
            s.pairs,
            s.iterations,
            if s.converged { "" } else { " (not converged)" }
        );
    }
    if !t.prior_m.is_empty() {
        println!("  shipped priors used for m of: {:?}", t.prior_m);
    }
    app.save_model(model)?;
    println!("model written to {}", app.config.model_path.display());
    Ok(())
}

async fn resolve(app: &mut App, export: Option<&std::path::Path>, json: bool) -> Result<()> {
    if !app.has_model() {
        // A model is trained on the index, so fill the index first.
        let progress = SyncProgress::new(!json && std::io::stderr().is_terminal());
        app.hub.sync(SyncOptions::default(), &progress).await?;
        progress.finish();
        if !json {
            eprintln!(
                "no model at {}: training one",
                app.config.model_path.display()
            );
        }
        let model = app
            .hub
            .train(&kith_resolve::TrainOptions::default())
            .await?;
        app.save_model(model)?;
    }
    sync(app, false, json).await?;
    if let Some(path) = export {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(["source", "key", "party_id"])?;
        let mut n = 0u64;
        for r in app.hub.store().records().await? {
            let party = r.party.as_ref().map(|p| p.to_string()).unwrap_or_default();
            w.write_record([
                r.record.record.source.as_str(),
                r.record.record.key.as_str(),
                party.as_str(),
            ])?;
            n += 1;
        }
        w.flush()?;
        if !json {
            println!("wrote {n} records to {}", path.display());
        }
    }
    Ok(())
}

async fn view(app: &App, query: &str, json: bool) -> Result<()> {
    let v = viewed(app, query, "view", &kith_hub::ViewScope::default()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report::view(&v));
    }
    Ok(())
}

/// The view of the party a query finds, with the audit entry saying the CLI looked.
async fn viewed(
    app: &App,
    query: &str,
    action: &str,
    scope: &kith_hub::ViewScope,
) -> Result<kith_hub::View> {
    let party = app.hub.find_party(query).await?;
    let v = app
        .hub
        .view_scoped(&party, kith_hub::Audience::Staff, scope)
        .await?;
    app.hub
        .store()
        .audit(&AuditEntry {
            at: chrono::Utc::now(),
            actor: "cli".into(),
            action: action.into(),
            party: Some(v.party.clone()),
            detail: String::new(),
        })
        .await?;
    Ok(v)
}

async fn show_timeline(
    app: &App,
    query: &str,
    filter: &kith_hub::TimelineFilter,
    json: bool,
) -> Result<()> {
    // Only the wanted kinds and sources are asked, each for its newest few.
    let scope = kith_hub::ViewScope {
        kinds: filter.kinds.clone(),
        sources: filter.sources.clone(),
        limit: (filter.limit > 0).then_some(filter.limit),
    };
    let v = viewed(app, query, "timeline", &scope).await?;
    let entries = v.timeline(filter);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "party": v.party,
                "sources": v.sources,
                "timeline": entries,
            }))?
        );
    } else {
        print!("{}", report::timeline(&v, &entries));
    }
    Ok(())
}

async fn check(config: &std::path::Path) -> Result<()> {
    let app = App::open(config).await?;
    println!("configuration {} is valid", config.display());
    println!(
        "hub store {} at schema version {}",
        app.hub.store().describe(),
        app.hub.store().schema_version().await?
    );
    let mut failed = 0;
    for c in app.hub.connectors() {
        let s = c.source();
        match c.check().await {
            Ok(()) => println!("  ok  {:<14} {}", s.name, s.connection.kind()),
            Err(e) => {
                failed += 1;
                println!("  !!  {:<14} {}", s.name, e);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} source(s) cannot be reached");
    }
    Ok(())
}

async fn demo(
    dir: PathBuf,
    generate_only: bool,
    people: usize,
    seed: u64,
    loyalty_listen: std::net::SocketAddr,
    serve: Option<std::net::SocketAddr>,
) -> Result<()> {
    let started = std::time::Instant::now();
    // Bind first, so the generated configuration names the port really in use.
    let listener = tokio::net::TcpListener::bind(loyalty_listen)
        .await
        .with_context(|| {
            format!(
                "the demo's loyalty API cannot listen on {loyalty_listen} (choose another with --loyalty-listen, or port 0)"
            )
        })?;
    let loyalty_addr = listener.local_addr()?;
    let options = GenerateOptions {
        people,
        seed,
        loyalty_url: format!("http://{loyalty_addr}/v1"),
    };
    let generated = generate(&dir, &options)
        .await
        .with_context(|| format!("generating the demo business in {}", dir.display()))?;
    let config = generated.config_path.clone();
    println!(
        "Generated Fernleaf, a garden-supplies business with five systems, in {} ({} people, {:.1}s):",
        dir.display(),
        people,
        started.elapsed().as_secs_f64()
    );
    for (what, n) in &generated.counts {
        println!("  {what:<32} {n:>7} rows");
    }
    if generate_only {
        drop(listener);
        println!(
            "\nThe loyalty source is an HTTP API: serve it with `kith demo-api --dir {} --listen {loyalty_addr}`,",
            dir.display()
        );
        println!("then: kith --config {} sync", config.display());
        return Ok(());
    }
    let api = crate::demo::loyalty_api::serve(&dir, listener)?;
    println!("  loyalty platform API              {}", api.base_url());
    let app = App::open(&config).await?;
    println!();
    sync(&app, false, false).await?;
    println!("\nOne customer's 360 view, gathered live from every system:\n");
    view(&app, &generated.showcase_email, false).await?;
    let c = config.display();
    println!("\nExplore further:");
    println!(
        "  kith --config {c} view {}          # this customer again",
        generated.showcase_email
    );
    println!("  kith --config {c} view <e-mail | phone | party id> --json");
    println!("  kith --config {c} sync                 # pick up changes in the sources");
    println!("  kith --config {c} quarantine           # rows that could not be read, and why");
    println!("  kith --config {c} check                # is every source reachable?");
    let Some(listen) = serve else {
        println!(
            "\nThe loyalty API ran for this demo only; later views show loyalty as unreachable \
             (that is how kith shows a source that is down). Keep it up with `kith demo-api --dir {} --listen {loyalty_addr}`.",
            dir.display()
        );
        return Ok(());
    };
    let staff = crate::demo::staff::ensure(app.hub.store().as_ref()).await?;
    let config = app.config.clone();
    let sender = kith_web::build_sender(&config.server.sender, &dir);
    let mut hub = app.hub;
    // A long-running server keeps the resolver's index in memory and links
    // ingested identities one at a time.
    hub.link_incrementally(true);
    let running = crate::serve::start(
        &config,
        std::sync::Arc::new(hub),
        app.events,
        sender,
        listen,
    )
    .await?;
    let base = format!("http://{}", running.addr);
    println!("\nkith is serving Fernleaf at {base} (Ctrl-C stops it):");
    println!("  Customer portal  {base}/");
    println!(
        "    sign in as the customer above with {} — the one-time code is printed here",
        generated.showcase_email
    );
    println!("  Staff console    {base}/staff");
    for (email, role, password) in &staff {
        println!("    {role:<5} {email}  password {password}");
    }
    println!(
        "  JSON API         {base}/api/v1  (OpenAPI at {base}/openapi.json; make a key with `kith --config {c} keys create --scope read`)"
    );
    println!("  Loyalty API      {}", api.base_url());
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        r = running.task => { r??; }
    }
    Ok(())
}

async fn serve(app: App, listen: Option<std::net::SocketAddr>) -> Result<()> {
    let config = app.config.clone();
    let listen = listen.unwrap_or(config.server.listen);
    let base = config.path.parent().unwrap_or(std::path::Path::new("."));
    let sender = kith_web::build_sender(&config.server.sender, base);
    let describe = sender.describe();
    let mut hub = app.hub;
    hub.link_incrementally(true);
    let running = crate::serve::start(
        &config,
        std::sync::Arc::new(hub),
        app.events,
        sender,
        listen,
    )
    .await?;
    let base = format!("http://{}", running.addr);
    println!(
        "kith serving {} at {base} (Ctrl-C stops it)",
        config.path.display()
    );
    println!(
        "  portal {base}/   console {base}/staff   API {base}/api/v1   OpenAPI {base}/openapi.json"
    );
    println!("  sign-in codes are sent by: {describe}");
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        r = running.task => { r??; }
    }
    Ok(())
}
