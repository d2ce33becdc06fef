//! Resolves `gen_scale.py`'s population with kith and scores it with the
//! definitions of `shared/peers/er_eval.py`, printing one JSON line as the
//! peers' scripts do.
//!
//!     cargo run --release -p kith-resolve --example scale -- --n 1000000
//!
//! The threshold is fixed at 0.5 before looking at the truth.

mod data;
mod eval;
mod rules;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use kith_resolve::{BlockKey, BlockRule, ClusterOptions, Model, TrainOptions};

struct Args {
    n: u64,
    dir: PathBuf,
    threshold: f64,
    u_max_pairs: u64,
    write_clusters: Option<PathBuf>,
    write_pairs: Option<PathBuf>,
    explain_errors: usize,
    rules: Option<Vec<BlockRule>>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        n: 1_000_000,
        dir: std::env::var_os("SCALE_DATA")
            .map_or_else(|| PathBuf::from("/tmp/kith-scale-data"), PathBuf::from),
        threshold: 0.5,
        u_max_pairs: 1_000_000,
        write_clusters: None,
        write_pairs: None,
        explain_errors: 0,
        rules: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--n" => a.n = value()?.parse().map_err(|e| format!("--n: {e}"))?,
            "--data" => a.dir = value()?.into(),
            "--threshold" => {
                a.threshold = value()?.parse().map_err(|e| format!("--threshold: {e}"))?
            }
            "--u-max-pairs" => {
                a.u_max_pairs = value()?
                    .parse::<f64>()
                    .map_err(|e| format!("--u-max-pairs: {e}"))?
                    as u64
            }
            "--write-clusters" => a.write_clusters = Some(value()?.into()),
            "--write-pairs" => a.write_pairs = Some(value()?.into()),
            "--rules" => a.rules = Some(parse_rules(&value()?)?),
            "--explain-errors" => {
                a.explain_errors = value()?
                    .parse()
                    .map_err(|e| format!("--explain-errors: {e}"))?
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(a)
}

/// `name_pair;date_of_birth+postcode`: rules by their names.
fn parse_rules(text: &str) -> Result<Vec<BlockRule>, String> {
    text.split(';')
        .map(|rule| {
            let keys = rule
                .split('+')
                .map(|k| {
                    serde_json::from_value::<BlockKey>(k.trim().into())
                        .map_err(|_| format!("unknown block key {k:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BlockRule::new(&keys))
        })
        .collect()
}

fn main() -> ExitCode {
    let start = Instant::now();
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "scale: {e}\nusage: scale [--n N] [--data DIR] [--threshold P] [--u-max-pairs N] [--write-clusters FILE] [--write-pairs FILE]"
            );
            return ExitCode::from(2);
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stem = a.dir.join(format!("scale_{}", a.n));
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    let (mut t, mut cpu) = (Instant::now(), cpu_seconds());
    let mut lap = |name: &str| {
        seconds.insert(format!("{name}_s"), t.elapsed().as_secs_f64());
        seconds.insert(format!("{name}_cpu_s"), cpu_seconds() - cpu);
        (t, cpu) = (Instant::now(), cpu_seconds());
    };
    let (ids, records) = match data::load(&stem.with_extension("csv"), threads) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("scale: {e}");
            return ExitCode::FAILURE;
        }
    };
    lap("load_prepare");
    let model = Model::train(
        &records,
        &TrainOptions {
            u_max_pairs: a.u_max_pairs,
            threshold: a.threshold,
            ..Default::default()
        },
    );
    lap("train");
    let mut blocking = rules::blocking();
    if let Some(rules) = &a.rules {
        blocking.rules = rules.clone();
    }
    let (pairs, report) = blocking.candidate_pairs(&records);
    lap("block");
    // Pairs below the review band are neither links nor questions; only
    // the cross-check with er_eval.py keeps every score.
    let floor = if a.write_pairs.is_some() {
        f64::NEG_INFINITY
    } else {
        model.uncertain.0.min(a.threshold)
    };
    let scored = kith_resolve::score_pairs_at_least(&model, &records, &pairs, floor);
    lap("score");
    let labels = kith_resolve::cluster(
        &records,
        &scored,
        &ClusterOptions {
            threshold: a.threshold,
            ..Default::default()
        },
    );
    lap("cluster");
    let pipeline_s = start.elapsed().as_secs_f64();
    let pipeline_cpu_s = cpu_seconds();
    let rss_pipeline = peak_rss_mib();

    // Evaluation, not timed.
    let truth = match data::truth(
        &PathBuf::from(format!("{}_truth.csv", stem.display())),
        &ids,
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("scale: {e}");
            return ExitCode::FAILURE;
        }
    };
    let true_in = truth
        .iter()
        .filter(|p| pairs.binary_search(p).is_ok())
        .count() as u64;
    let mut out = serde_json::Map::new();
    for (k, v) in eval::pairwise(&scored, &truth, a.threshold, pairs.len() as u64, true_in)
        .into_iter()
        .chain(eval::clusters(&labels, &truth))
    {
        out.insert(k.into(), v.into());
    }
    for (k, v) in &seconds {
        out.insert(k.clone(), (*v).into());
    }
    out.insert("tool".into(), "kith".into());
    out.insert("tool_version".into(), env!("CARGO_PKG_VERSION").into());
    out.insert("dataset".into(), format!("scale_{}", a.n).into());
    out.insert("n_records".into(), records.len().into());
    out.insert("pipeline_s".into(), pipeline_s.into());
    out.insert("pipeline_cpu_s".into(), pipeline_cpu_s.into());
    out.insert("threads".into(), threads.into());
    out.insert("peak_rss_mib_pipeline".into(), rss_pipeline.into());
    out.insert(
        "bytes_per_record_pipeline".into(),
        (rss_pipeline * 1048576.0 / records.len().max(1) as f64).into(),
    );
    out.insert("lambda".into(), model.lambda.into());
    out.insert("scores_kept_from".into(), floor.max(0.0).into());
    out.insert(
        "blocking".into(),
        serde_json::to_value(&report).unwrap_or_default(),
    );
    out.insert(
        "em_sessions".into(),
        serde_json::to_value(&model.training.em_sessions).unwrap_or_default(),
    );
    out.insert(
        "size_of_prepared".into(),
        std::mem::size_of::<kith_resolve::Prepared>().into(),
    );
    if let Some(path) = &a.write_clusters
        && let Err(e) = write_clusters(path, &ids, &labels)
    {
        eprintln!("scale: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if let Some(path) = &a.write_pairs
        && let Err(e) = write_pairs(path, &ids, &scored)
    {
        eprintln!("scale: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    out.insert("peak_rss_mib".into(), peak_rss_mib().into());
    if a.explain_errors > 0 {
        explain_errors(
            &model,
            &records,
            &ids,
            &scored,
            &truth,
            a.threshold,
            a.explain_errors,
        );
    }
    println!("{}", serde_json::Value::Object(out));
    ExitCode::SUCCESS
}

/// `rec_id,cluster_id`, one line per record, for `scripts/er-eval-check.py`.
fn write_clusters(path: &PathBuf, ids: &data::Ids, labels: &[u32]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "rec_id,cluster_id")?;
    for (i, l) in labels.iter().enumerate() {
        writeln!(w, "{},{}", ids.get(i), l)?;
    }
    w.flush()
}

/// `rec_id_l,rec_id_r,match_probability`, one line per kept scored pair.
fn write_pairs(path: &PathBuf, ids: &data::Ids, scored: &[(u32, u32, f64)]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "rec_id_l,rec_id_r,match_probability")?;
    for &(i, j, p) in scored {
        writeln!(w, "{},{},{p:?}", ids.get(i as usize), ids.get(j as usize))?;
    }
    w.flush()
}

/// CPU seconds (user and system, all threads) this process has used, from
/// `/proc/self/stat`: on a shared machine wall time depends on the load,
/// CPU time much less.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces; the fields after it do not.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| {
        fields
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process, as `/usr/bin/time -v` reports it.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Prints the explanations of up to `limit` wrong decisions of each kind,
/// to study the model (on stderr).
fn explain_errors(
    model: &Model,
    records: &[kith_resolve::Prepared],
    ids: &data::Ids,
    scored: &[(u32, u32, f64)],
    truth: &[(u32, u32)],
    threshold: f64,
    limit: usize,
) {
    let show = |i: u32, j: u32, what: &str| {
        let e = kith_resolve::explain(model, &records[i as usize], &records[j as usize]);
        eprintln!(
            "{what} {} {} p={:.4}",
            ids.get(i as usize),
            ids.get(j as usize),
            e.probability
        );
        for c in &e.comparisons {
            if c.level.is_some() {
                eprintln!(
                    "    {:<14} {:<18} {:>7.2}  {:?}",
                    c.attribute.name(),
                    c.level.as_deref().unwrap_or("-"),
                    c.weight,
                    c.values
                );
            }
        }
    };
    let (mut fp, mut fn_) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    for &(i, j, p) in scored {
        seen.insert((i, j));
        let t = eval::is_true(truth, i, j);
        if t && p < threshold && fn_ < limit {
            fn_ += 1;
            show(i, j, "MISSED");
        } else if !t && p >= threshold && fp < limit {
            fp += 1;
            show(i, j, "WRONG");
        }
    }
    for &(i, j) in truth.iter().filter(|p| !seen.contains(p)).take(limit) {
        // Among pairs kept from scoring; below the floor they count as unblocked here.
        show(i, j, "UNBLOCKED");
    }
}
