//! `kith-bench link`: what a sync costs when a few records changed, linking
//! only what changed (`Hub::link_changes`) against linking everything.
//!
//! A SQLite source of two tables (`crm`, `billing`) holds N people with the
//! noise of real data (typos, other e-mail addresses, missing phones and
//! birthdays, households at one address); a model is trained on it. Then, in
//! rounds, K rows change at the source (a typo, another e-mail, a move) and
//! the hub syncs: the source is read from its cursor, the changed records are
//! upserted, and only they are resolved and their parties settled. At the
//! end a full run over the same store must change nothing.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use kith_connect::SourceConfig;
use kith_hub::{Hub, HubSettings, SyncOptions};
use kith_store::{HubStore, SqliteStore};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[derive(Args, Clone)]
pub struct LinkArgs {
    /// People at the source (about 1.5 records each).
    #[arg(long, default_value_t = 100_000)]
    people: usize,
    /// Rows changed per round, one figure per value.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    changes: Vec<usize>,
    /// Rounds per value of --changes.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Seed of the generated people and of the changes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

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
    "kate", "liam", "mia", "noah", "olga", "paul", "peggy", "margaret", "bill", "william", "zoe",
    "yusuf", "xena", "wendy", "victor", "uma", "tariq", "sara", "rhys", "priya",
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
    "evans",
    "walsh",
    "novak",
    "silva",
    "kowalski",
    "haddad",
    "ito",
    "berg",
];

struct Row {
    given: String,
    family: String,
    email: String,
    phone: String,
    street: String,
    postcode: String,
    dob: String,
}

/// Person `i`, the same every time it is asked for.
fn person(i: usize, seed: u64) -> Row {
    let rng = &mut StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let house = i / 3;
    let given = GIVEN[rng.random_range(0..GIVEN.len())].to_string();
    let family = FAMILY[(house * 7919) % FAMILY.len()].to_string();
    Row {
        email: format!("{given}.{family}{i}@example.org"),
        phone: format!("+447{:09}", rng.random_range(0..1_000_000_000u64)),
        street: format!(
            "{} {} road",
            house % 200 + 1,
            FAMILY[(house / 13) % FAMILY.len()]
        ),
        postcode: format!(
            "LS{} {}{}",
            house % 97,
            house % 9,
            (b'A' + (house % 26) as u8) as char
        ),
        dob: format!(
            "19{}-{:02}-{:02}",
            rng.random_range(30..99),
            rng.random_range(1..13),
            rng.random_range(1..29)
        ),
        given,
        family,
    }
}

/// The person as one system has them: with its noise.
fn noisy(i: usize, mut r: Row, rng: &mut StdRng) -> Row {
    match rng.random_range(0..8) {
        0 => {
            let mut c: Vec<char> = r.given.chars().collect();
            if c.len() > 2 {
                let i = rng.random_range(1..c.len() - 1);
                c.swap(i, i + 1);
            }
            r.given = c.into_iter().collect();
        }
        1 => r.email = format!("{}{i}@mail.example", r.given),
        2 => r.phone.clear(),
        3 => r.dob.clear(),
        _ => {}
    }
    r
}

struct Db {
    pool: sqlx::SqlitePool,
    clock: u64,
}

impl Db {
    async fn put(
        &mut self,
        tx: &mut sqlx::SqliteConnection,
        table: &str,
        id: &str,
        r: &Row,
    ) -> Result<()> {
        self.clock += 1;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (id, given, family, email, phone, street, postcode, dob, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET \
             given = excluded.given, family = excluded.family, email = excluded.email, \
             phone = excluded.phone, street = excluded.street, postcode = excluded.postcode, \
             dob = excluded.dob, updated_at = excluded.updated_at"
        )))
        .bind(id)
        .bind(&r.given)
        .bind(&r.family)
        .bind(&r.email)
        .bind(&r.phone)
        .bind(&r.street)
        .bind(&r.postcode)
        .bind(&r.dob)
        // A minute apart, so that a sync's overlap window re-reads a few rows.
        .bind(
            (chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(self.clock as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// A memory figure of this process from /proc (0 where there is none).
fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn median_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

pub async fn run(args: LinkArgs) -> Result<()> {
    if args.people < 10 || args.rounds == 0 || args.changes.is_empty() {
        bail!("--people must be at least 10, --rounds and --changes not empty");
    }
    let dir = tempfile::tempdir()?;
    let mut sources = toml::from_str::<Sources>(SOURCES)?.sources;
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
        .await?;
    for t in ["crm", "billing"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {t} (id TEXT PRIMARY KEY, given TEXT, family TEXT, email TEXT, \
             phone TEXT, street TEXT, postcode TEXT, dob TEXT, updated_at TEXT)"
        )))
        .execute(&pool)
        .await?;
    }
    let mut db = Db { pool, clock: 0 };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let started = Instant::now();
    let mut tx = db.pool.begin().await?;
    for i in 0..args.people {
        if i % 10 < 8 {
            let r = noisy(i, person(i, args.seed), &mut rng);
            db.put(&mut tx, "crm", &format!("c{i}"), &r).await?;
        }
        if i % 10 > 2 {
            let r = noisy(i, person(i, args.seed), &mut rng);
            db.put(&mut tx, "billing", &format!("b{i}"), &r).await?;
        }
    }
    tx.commit().await?;
    eprintln!(
        "generated {} people in {:.1} s",
        args.people,
        started.elapsed().as_secs_f64()
    );

    let store: std::sync::Arc<dyn HubStore> =
        std::sync::Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await?);
    let mut hub = Hub::new(HubSettings::default(), &sources, store.clone())?;
    let t = Instant::now();
    let first = hub.sync(SyncOptions::default(), &()).await?;
    let first_sync = t.elapsed().as_secs_f64();
    let peak_sync = rss_mib("VmHWM");
    let t = Instant::now();
    let model = hub.train(&kith_resolve::TrainOptions::default()).await?;
    let train = t.elapsed().as_secs_f64();
    let peak_train = rss_mib("VmHWM");
    hub.set_model(model);
    let t = Instant::now();
    let full = hub.link(&()).await?;
    let full_link = t.elapsed().as_secs_f64();
    let peak_link = rss_mib("VmHWM");
    let rss_before = rss_mib("VmRSS");
    hub.link_incrementally(true);
    let t = Instant::now();
    hub.link(&()).await?;
    let full_and_index = t.elapsed().as_secs_f64();
    let rss_after = rss_mib("VmRSS");
    println!(
        "\npeak resident memory after the first sync {peak_sync:.0} MiB, after training \
         {peak_train:.0} MiB, after the full link {peak_link:.0} MiB"
    );
    println!(
        "\n{} records, {} parties; first sync (read + store + exact links) {first_sync:.1} s, \
         training {train:.1} s; a full link with the model {full_link:.2} s, \
         and with the incremental index built after it {full_and_index:.2} s; \
         the index in memory: {:.0} MiB ({:.0} bytes a record; process {rss_after:.0} MiB, peak {:.0} MiB)",
        first.link.records,
        full.parties,
        rss_after - rss_before,
        (rss_after - rss_before) * 1048576.0 / first.link.records.max(1) as f64,
        rss_mib("VmHWM"),
    );

    println!(
        "\n| rows changed | rounds | sync ms p50 | sync ms p99 | of which linking ms p50 | records settled p50 | fell back to a full run |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    let people = args.people;
    for &k in &args.changes {
        let mut sync_ms = Vec::new();
        let mut link_ms = Vec::new();
        let mut settled = Vec::new();
        let mut fallbacks = 0;
        for _ in 0..args.rounds {
            let mut tx = db.pool.begin().await?;
            for _ in 0..k {
                let i = rng.random_range(0..people);
                let (table, key) = if i % 10 < 8 {
                    ("crm", format!("c{i}"))
                } else {
                    ("billing", format!("b{i}"))
                };
                let mut r = noisy(i, person(i, args.seed), &mut rng);
                if rng.random_bool(0.2) {
                    r.street = format!("{} new street", rng.random_range(1..500));
                }
                db.put(&mut tx, table, &key, &r).await?;
            }
            tx.commit().await?;
            let t = Instant::now();
            let report = hub.sync(SyncOptions::default(), &()).await?;
            let total = t.elapsed().as_secs_f64() * 1000.0;
            let reading: f64 = report.sources.iter().map(|s| s.seconds * 1000.0).sum();
            if !report.link.incremental {
                fallbacks += 1;
            }
            sync_ms.push(total);
            link_ms.push(total - reading);
            settled.push(report.link.affected_records as f64);
        }
        let (p50, p99) = median_p99(sync_ms);
        let (l50, _) = median_p99(link_ms);
        let (s50, _) = median_p99(settled);
        println!(
            "| {k} | {} | {p50:.1} | {p99:.1} | {l50:.1} | {s50:.0} | {fallbacks} |",
            args.rounds
        );
    }

    let t = Instant::now();
    let check = hub.link(&()).await.context("the closing full run")?;
    let check_s = t.elapsed().as_secs_f64();
    let same = (
        check.new_parties,
        check.merged,
        check.retired,
        check.links_changed,
    );
    println!(
        "\nA full run afterwards ({check_s:.2} s): {} new parties, {} merged, {} retired, \
         {} links changed{}",
        same.0,
        same.1,
        same.2,
        same.3,
        if same == (0, 0, 0, 0) {
            " — the incremental runs left exactly what a full run makes"
        } else {
            " — DIFFERENT from the incremental runs"
        }
    );
    if same != (0, 0, 0, 0) {
        bail!("the incremental runs left links a full run changes: {check:?}");
    }
    Ok(())
}
