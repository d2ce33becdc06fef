//! Times incremental resolution against a large index: builds an [`Index`]
//! of all but the last `--hold-out` records of `gen_scale.py`'s population
//! (the batch path, in bulk), then inserts, looks up (`resolve_one`) and
//! updates the held-out records one at a time, and prints the time per
//! record (median, p90, p99, max) as one JSON line.
//!
//!     cargo run --release -p kith-resolve --example incremental -- --n 1000000
//!     # --hold-out N (10000)  --verify: check the index's parties against the
//!     # batch path over all records afterwards (twice the memory)
//!
//! The model is trained on the records of the index, as `kith train` would.

#[path = "../scale/data.rs"]
mod data;
#[path = "../scale/rules.rs"]
mod rules;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use kith_resolve::{ClusterOptions, Index, Model, Prepared, TrainOptions};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incremental: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut n = 1_000_000u64;
    let mut hold_out = 10_000usize;
    let mut verify = false;
    let mut dir = std::env::var_os("SCALE_DATA")
        .map_or_else(|| PathBuf::from("/tmp/kith-scale-data"), PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--n" => n = value()?.parse().map_err(|e| format!("--n: {e}"))?,
            "--hold-out" => hold_out = value()?.parse().map_err(|e| format!("--hold-out: {e}"))?,
            "--data" => dir = value()?.into(),
            "--verify" => verify = true,
            _ => {
                return Err(format!(
                    "unknown argument {arg:?}\nusage: incremental [--n N] [--hold-out N] [--data DIR] [--verify]"
                ));
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let path = dir.join(format!("scale_{n}.csv"));
    let start = Instant::now();
    let (_, mut records) = data::load(&path, threads)?;
    if hold_out >= records.len() {
        return Err(format!("--hold-out {hold_out} leaves no index"));
    }
    let held: Vec<Prepared> = records.split_off(records.len() - hold_out);
    let load_s = start.elapsed().as_secs_f64();

    let t = Instant::now();
    let model = Model::train(&records, &TrainOptions::default());
    let train_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let indexed = records.len();
    let mut index = Index::build(model, rules::blocking(), ClusterOptions::default(), records)
        .map_err(|e| e.to_string())?;
    let build_s = t.elapsed().as_secs_f64();
    let index_bytes = index.heap_bytes();
    let rss_built = peak_rss_mib();

    // Adding each record in turn, as a sync finds it new.
    let mut insert_us = Vec::with_capacity(held.len());
    let (mut linked, mut review, mut candidates) = (0usize, 0usize, 0usize);
    for r in &held {
        let t = Instant::now();
        let res = index.insert(r.clone()).map_err(|e| e.to_string())?;
        insert_us.push(t.elapsed().as_secs_f64() * 1e6);
        linked += usize::from(res.best.is_some());
        review += usize::from(!res.review.is_empty());
        candidates += res.candidates;
    }
    // Looking each up without changing anything ("who is this?"); each
    // finds, among others, its own copy added above.
    let mut resolve_us = Vec::with_capacity(held.len());
    for r in held.iter().rev() {
        let t = Instant::now();
        let res = index.resolve_one(r);
        resolve_us.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(&res);
    }
    // A source changes each of them again (here: back to what it was, so
    // that the index ends where the batch path over all records does).
    let mut update_us = Vec::with_capacity(held.len());
    for (k, r) in held.iter().enumerate() {
        let id = (indexed + k) as u32;
        let t = Instant::now();
        index.update(id, r.clone()).map_err(|e| e.to_string())?;
        update_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut out = serde_json::Map::new();
    out.insert("dataset".into(), format!("scale_{n}").into());
    out.insert("index_records".into(), indexed.into());
    out.insert("resolved_one_at_a_time".into(), held.len().into());
    out.insert("load_prepare_s".into(), load_s.into());
    out.insert("train_s".into(), train_s.into());
    out.insert("build_index_s".into(), build_s.into());
    out.insert(
        "index_heap_mib".into(),
        (index_bytes as f64 / 1048576.0).into(),
    );
    out.insert(
        "index_bytes_per_record".into(),
        (index_bytes as f64 / indexed as f64).into(),
    );
    out.insert("peak_rss_mib_built".into(), rss_built.into());
    out.insert(
        "mean_candidates".into(),
        (candidates as f64 / held.len() as f64).into(),
    );
    out.insert("linked".into(), linked.into());
    out.insert("with_review_pairs".into(), review.into());
    for (name, times) in [
        ("resolve_one", &mut resolve_us),
        ("insert", &mut insert_us),
        ("update", &mut update_us),
    ] {
        times.sort_by(f64::total_cmp);
        let q = |f: f64| times[((times.len() as f64 - 1.0) * f).round() as usize];
        out.insert(format!("{name}_us_median"), q(0.5).into());
        out.insert(format!("{name}_us_p90"), q(0.9).into());
        out.insert(format!("{name}_us_p99"), q(0.99).into());
        out.insert(format!("{name}_us_max"), q(1.0).into());
    }
    if verify {
        let t = Instant::now();
        let all: Vec<Prepared> = (0..index.len() as u32)
            .filter_map(|id| index.record(id).cloned())
            .collect();
        let blocking = rules::blocking();
        let (pairs, _) = blocking.candidate_pairs(&all);
        let edges = kith_resolve::score_pairs_at_least(index.model(), &all, &pairs, 0.5);
        let labels = kith_resolve::cluster(&all, &edges, &ClusterOptions::default());
        let differ = labels
            .iter()
            .zip(index.labels())
            .filter(|(a, b)| a != b)
            .count();
        out.insert("verify_s".into(), t.elapsed().as_secs_f64().into());
        out.insert("records_in_another_party_than_batch".into(), differ.into());
        if differ > 0 {
            println!("{}", serde_json::Value::Object(out));
            return Err(format!("{differ} records differ from the batch path"));
        }
    }
    out.insert("peak_rss_mib".into(), peak_rss_mib().into());
    println!("{}", serde_json::Value::Object(out));
    Ok(())
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
