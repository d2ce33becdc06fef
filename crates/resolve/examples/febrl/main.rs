//! Resolves a FEBRL set with kith and scores it against the truth, printing
//! one JSON line as the peers' scripts in `shared/peers/` do.
//!
//!     cargo run --release -p kith-resolve --example febrl -- --dataset febrl4
//!     cargo run --release -p kith-resolve --example febrl -- --dataset febrl3 [--data DIR] [--u-max-pairs N]
//!         [--write-model FILE] [--write-scores FILE]   (to check that a change leaves the results alone)
//!
//! The threshold is fixed at 0.5 before looking at the truth; `best_f1` is
//! reported only to show how good the ranking is.

mod common;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let start = Instant::now();
    let mut dataset = String::from("febrl4");
    let mut dir = common::default_dir();
    let mut u_max_pairs = 1_000_000u64;
    let mut threshold = 0.5;
    let mut explain_worst = false;
    let mut guard = true;
    let mut write_model = None;
    let mut write_scores = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--dataset" => dataset = value(),
            "--data" => dir = value().into(),
            "--u-max-pairs" => u_max_pairs = value().parse::<f64>().map_or(0, |v| v as u64),
            "--threshold" => threshold = value().parse().unwrap_or(f64::NAN),
            "--explain-errors" => explain_worst = true,
            "--no-guard" => guard = false,
            "--write-model" => write_model = Some(value()),
            "--write-scores" => write_scores = Some(value()),
            _ => {
                eprintln!(
                    "usage: febrl [--dataset febrl4|febrl3] [--data DIR] [--u-max-pairs N] [--threshold P] [--no-guard] [--explain-errors] [--write-model FILE] [--write-scores FILE]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let ds = match common::load(&dir, &dataset, |_| true) {
        Ok(ds) => ds,
        Err(e) => {
            eprintln!("febrl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let load_s = start.elapsed().as_secs_f64();
    let run = common::run(&ds, u_max_pairs, threshold, guard);
    let pipeline_s = start.elapsed().as_secs_f64();

    // Evaluation, not timed.
    let ids: Vec<String> = ds.records.iter().map(|(id, _, _)| id.clone()).collect();
    let datasets: Vec<u16> = ds.records.iter().map(|(_, d, _)| *d).collect();
    let mut out = serde_json::Map::new();
    let cross_only = ds.link_type == kith_resolve::LinkType::LinkOnly;
    for (k, v) in common::pairwise(&ids, &run.scored, &ds.truth, threshold)
        .into_iter()
        .chain(common::clusters(
            &ids,
            &datasets,
            &run.labels,
            &ds.truth,
            cross_only,
        ))
    {
        out.insert(k.into(), v.into());
    }
    for (k, v) in &run.seconds {
        out.insert((*k).into(), (*v).into());
    }
    out.insert("tool".into(), "kith".into());
    out.insert("tool_version".into(), env!("CARGO_PKG_VERSION").into());
    out.insert("dataset".into(), dataset.into());
    out.insert("n_records".into(), ds.records.len().into());
    out.insert("u_max_pairs".into(), u_max_pairs.into());
    out.insert("load_s".into(), load_s.into());
    out.insert("pipeline_s".into(), pipeline_s.into());
    out.insert("peak_rss_mib".into(), peak_rss_mib().into());
    out.insert("lambda".into(), run.model.lambda.into());
    out.insert(
        "blocking".into(),
        serde_json::to_value(&run.report).unwrap_or_default(),
    );
    out.insert(
        "em_sessions".into(),
        serde_json::to_value(&run.model.training.em_sessions).unwrap_or_default(),
    );
    println!("{}", serde_json::Value::Object(out));

    // The model file and every score with its pair, one a line: two builds
    // whose files are equal resolved the same way.
    let written = write_model
        .map(|path| std::fs::write(path, run.model.to_json()))
        .into_iter()
        .chain(write_scores.map(|path| {
            let lines: String = run
                .scored
                .iter()
                .map(|(i, j, p)| format!("{i} {j} {p:?}\n"))
                .collect();
            std::fs::write(path, lines)
        }));
    for result in written {
        if let Err(e) = result {
            eprintln!("febrl: {e}");
            return ExitCode::FAILURE;
        }
    }
    if explain_worst {
        explain_errors(&ds, &ids, &run, threshold);
    }
    // Ends the process without freeing every record's strings one by one
    // (a hundred thousand frees): the system takes the memory back at once.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// Prints the explanation of each wrong decision, to study the model.
fn explain_errors(ds: &common::Dataset, ids: &[String], run: &common::Run, threshold: f64) {
    let opts = kith_resolve::NormalizeOptions {
        default_region: "AU".into(),
        ..Default::default()
    };
    let prepared: Vec<kith_resolve::Prepared> = ds
        .records
        .iter()
        .map(|(_, d, a)| kith_resolve::Prepared::new(a, &opts).with_dataset(*d))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for &(i, j, p) in &run.scored {
        let pair = common::canon(&ids[i as usize], &ids[j as usize]);
        let truth = ds.truth.contains(&pair);
        seen.insert(pair.clone());
        if truth != (p >= threshold) {
            let e = kith_resolve::explain(&run.model, &prepared[i as usize], &prepared[j as usize]);
            eprintln!("{} {} truth={truth} p={p:.4}", pair.0, pair.1);
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
        }
    }
    let index: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (a, b) in &ds.truth {
        if !seen.contains(&(a.clone(), b.clone())) {
            let (i, j) = (index[a.as_str()], index[b.as_str()]);
            let e = kith_resolve::explain(&run.model, &prepared[i], &prepared[j]);
            eprintln!("{a} {b} not blocked; p would be {:.4}", e.probability);
        }
    }
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
