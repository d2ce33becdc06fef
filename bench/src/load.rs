//! Load generation: a closed loop at a fixed concurrency, and an open loop at
//! a fixed rate; latency percentiles and CPU use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::ops::{Bench, Path};
use crate::setup::Rng;

/// What one measured run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Requests completed inside the measured window.
    pub requests: u64,
    pub errors: u64,
    /// Completed requests per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// CPU time of the benchmark process (kith runs inside it) per request, in µs.
    pub cpu_us_per_req: f64,
    /// CPU time of the PostgreSQL and MariaDB server processes per request, in µs.
    pub db_cpu_us_per_req: f64,
    /// Busy share of the whole machine (all cores), in %.
    pub machine_busy_pct: f64,
    /// Busy share taken by other processes (neither this one nor the database
    /// servers: builds, say), in %. Above a few % the run was disturbed.
    pub other_busy_pct: f64,
    /// The first error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl std::fmt::Display for Stats {
    /// The run's figures on one progress line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  cpu {:.0}+{:.0} µs/req  others {:.0}%",
            self.throughput,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.cpu_us_per_req,
            self.db_cpu_us_per_req,
            self.other_busy_pct
        )
    }
}

/// CPU counters: this process's user+system ticks, the database servers'
/// ticks, and the machine's busy and total ticks.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    process: u64,
    db: u64,
    busy: u64,
    total: u64,
}

/// utime + stime of a /proc/<pid>/stat text.
fn ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime); `rest` starts at field 3.
    Some(f.get(11)? + f.get(12)?)
}

/// CPU ticks of the PostgreSQL and MariaDB server processes.
fn db_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            matches!(comm.trim(), "postgres" | "mariadbd" | "mysqld")
                .then(|| std::fs::read_to_string(e.path().join("stat")).ok())
                .flatten()
                .and_then(|s| ticks(&s))
        })
        .sum()
}

/// Clock ticks per second of /proc's counters (USER_HZ, 100 on Linux).
const HZ: f64 = 100.0;

pub fn cpu() -> Cpu {
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .unwrap_or(0);
    let (busy, total) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_string();
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // user nice system idle iowait irq softirq steal (guest is inside user)
            let total: u64 = f.iter().take(8).sum();
            let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
            Some((total - idle, total))
        })
        .unwrap_or((0, 0));
    Cpu {
        process,
        db: db_ticks(),
        busy,
        total,
    }
}

/// Waits (up to `max`) until other processes leave the machine nearly idle:
/// on two cores a build next door would make the figures meaningless.
/// Returns the busy share of others last seen, in %.
pub async fn wait_idle(max: Duration) -> f64 {
    let started = Instant::now();
    let mut warned = false;
    loop {
        let a = cpu();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let b = cpu();
        let total = (b.total - a.total).max(1) as f64;
        let others = (b.busy - a.busy).saturating_sub((b.process - a.process) + (b.db - a.db));
        let pct = others as f64 / total * 100.0;
        if pct < 10.0 || started.elapsed() >= max {
            if pct >= 10.0 {
                eprintln!("    (machine still {pct:.0}% busy with other work; measuring anyway)");
            }
            return pct;
        }
        if !warned {
            eprintln!("    waiting for other work to finish ({pct:.0}% of the machine busy)");
            warned = true;
        }
    }
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

fn stats(
    mut lat_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    window: Duration,
    before: Cpu,
    after: Cpu,
) -> Stats {
    lat_us.sort_unstable();
    let n = lat_us.len() as u64;
    let mean = if n == 0 {
        f64::NAN
    } else {
        lat_us.iter().sum::<u64>() as f64 / n as f64 / 1000.0
    };
    let process_s = (after.process - before.process) as f64 / HZ;
    let db_s = after.db.saturating_sub(before.db) as f64 / HZ;
    let total = (after.total - before.total).max(1) as f64;
    let busy = after.busy - before.busy;
    let others =
        busy.saturating_sub((after.process - before.process) + after.db.saturating_sub(before.db));
    let per_req = |secs: f64| {
        if n == 0 {
            f64::NAN
        } else {
            secs * 1e6 / n as f64
        }
    };
    Stats {
        requests: n,
        errors,
        throughput: n as f64 / window.as_secs_f64(),
        p50_ms: percentile(&lat_us, 0.50),
        p99_ms: percentile(&lat_us, 0.99),
        mean_ms: mean,
        max_ms: lat_us.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
        cpu_us_per_req: per_req(process_s),
        db_cpu_us_per_req: per_req(db_s),
        machine_busy_pct: busy as f64 / total * 100.0,
        other_busy_pct: others as f64 / total * 100.0,
        first_error,
    }
}

/// `concurrency` tasks, each issuing its next request (for a random party)
/// when the previous one returns, for `warmup` (not counted) then `window`.
pub async fn closed(
    bench: &Arc<Bench>,
    path: Path,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    seed: u64,
) -> Stats {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let mut tasks = JoinSet::new();
    for t in 0..concurrency {
        let bench = bench.clone();
        let mut rng = Rng::new(seed ^ ((t as u64 + 1) << 32));
        tasks.spawn(async move {
            let n = bench.targets.len();
            let mut lat = Vec::with_capacity(1 << 14);
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let r = bench.run(path, rng.below(n)).await;
                let done = Instant::now();
                if began >= measure_from && done <= end {
                    lat.push((done - began).as_micros() as u64);
                    if let Err(e) = r {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (lat, errors, first_error)
        });
    }
    // CPU counters over the measured window only.
    tokio::time::sleep_until(measure_from.into()).await;
    let before = cpu();
    tokio::time::sleep_until(end.into()).await;
    let after = cpu();
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        let (l, e, f) = r.expect("load task does not panic");
        lat.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    stats(lat, errors, first_error, window, before, after)
}

/// Requests issued on a fixed schedule at `rate` per second, whatever is
/// still outstanding; each one's latency runs from its scheduled time, so
/// queueing anywhere (including in the scheduler) counts.
pub async fn open(
    bench: &Arc<Bench>,
    path: Path,
    rate: f64,
    warmup: Duration,
    window: Duration,
    seed: u64,
) -> Stats {
    let mut rng = Rng::new(seed);
    let n = bench.targets.len();
    let t0 = Instant::now() + Duration::from_millis(5);
    let measure_from = t0 + warmup;
    let total = ((warmup + window).as_secs_f64() * rate).floor() as u64;
    let due = |i: u64| t0 + Duration::from_secs_f64(i as f64 / rate);
    let mut tasks = JoinSet::new();
    let mut i = 0u64;
    let mut before = None;
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut take = |r: Result<(Instant, Duration, Option<String>), tokio::task::JoinError>| {
        let (scheduled, l, e) = r.expect("load task does not panic");
        if scheduled >= measure_from {
            lat.push(l.as_micros() as u64);
            if let Some(e) = e {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    };
    while i < total {
        tokio::time::sleep_until(due(i).into()).await;
        let now = Instant::now();
        if before.is_none() && now >= measure_from {
            before = Some(cpu());
        }
        // Everything due by now goes out now, each timed from its own schedule.
        while i < total && due(i) <= now {
            let scheduled = due(i);
            let bench = bench.clone();
            let party = rng.below(n);
            tasks.spawn(async move {
                let r = bench.run(path, party).await;
                let lat = Instant::now() - scheduled;
                (scheduled, lat, r.err().map(|e| format!("{e:#}")))
            });
            i += 1;
        }
        // Collect what has finished, so the set stays small.
        while let Some(r) = tasks.try_join_next() {
            take(r);
        }
    }
    while let Some(r) = tasks.join_next().await {
        take(r);
    }
    let after = cpu();
    stats(
        lat,
        errors,
        first_error,
        window,
        before.unwrap_or_else(cpu),
        after,
    )
}
