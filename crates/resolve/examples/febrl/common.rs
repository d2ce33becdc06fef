//! Reading the FEBRL sets and scoring a result against their truth, with the
//! definitions of `shared/peers/er_eval.py` so that kith's figures and the
//! peers' are comparable. Shared by the `febrl` example and the end-to-end test.

// Each of the two users reads a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use kith_model::IdentityAttrs;
use kith_resolve::LinkType;

/// The FEBRL directory: `$KITH_FEBRL_DATA`, else `shared/data/febrl` beside the repository.
pub fn default_dir() -> PathBuf {
    std::env::var_os("KITH_FEBRL_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/febrl"),
        PathBuf::from,
    )
}

pub struct Dataset {
    pub link_type: LinkType,
    /// `rec_id`, dataset index (0 = A, 1 = B) and attributes of each record.
    pub records: Vec<(String, u16, IdentityAttrs)>,
    /// True pairs of `rec_id`s, each ordered as strings.
    pub truth: HashSet<(String, String)>,
}

/// Loads `febrl4` (A and B, link only) or `febrl3` (dedupe), keeping records
/// whose `rec_id` passes `keep` and the true pairs between kept records.
pub fn load(dir: &Path, name: &str, keep: impl Fn(&str) -> bool + Sync) -> Result<Dataset, String> {
    let (files, truth, link_type): (&[&str], &str, LinkType) = match name {
        "febrl4" => (
            &["febrl4_a.csv", "febrl4_b.csv"],
            "febrl4_truth.csv",
            LinkType::LinkOnly,
        ),
        "febrl3" => (&["febrl3.csv"], "febrl3_truth.csv", LinkType::Dedupe),
        _ => return Err(format!("unknown dataset {name:?}: febrl4 or febrl3")),
    };
    let texts: Vec<String> = files
        .iter()
        .map(|file| read(&dir.join(file)))
        .collect::<Result<_, _>>()?;
    // Each file's header, and every row with the dataset it belongs to.
    let mut headers: Vec<Vec<&str>> = Vec::new();
    let mut rows: Vec<(u16, &str)> = Vec::new();
    for (d, text) in texts.iter().enumerate() {
        let mut lines = text.lines();
        headers.push(lines.next().unwrap_or_default().split(',').collect());
        rows.extend(lines.filter(|l| !l.is_empty()).map(|l| (d as u16, l)));
    }
    let parse = |part: &[(u16, &str)]| -> Vec<(String, u16, IdentityAttrs)> {
        part.iter()
            .filter_map(|&(d, line)| {
                let row = Row {
                    header: &headers[usize::from(d)],
                    fields: line.split(',').map(str::trim).collect(),
                };
                let id = row.get("rec_id").unwrap_or_default();
                keep(id).then(|| (id.to_string(), d, attrs(&row)))
            })
            .collect()
    };
    // The rows are parsed on every core, in file order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = rows.len().div_ceil(threads).max(1);
    let parse = &parse;
    let records: Vec<(String, u16, IdentityAttrs)> = std::thread::scope(|s| {
        let parts: Vec<_> = rows
            .chunks(per_thread)
            .map(|part| s.spawn(move || parse(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("parsing a row does not panic"))
            .collect()
    });
    let kept: HashSet<&str> = records.iter().map(|(id, _, _)| id.as_str()).collect();
    let truth = read(&dir.join(truth))?
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .map(|(a, b)| canon(a.trim(), b.trim()))
        .filter(|(a, b)| kept.contains(a.as_str()) && kept.contains(b.as_str()))
        .collect();
    Ok(Dataset {
        link_type,
        records,
        truth,
    })
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// One CSV line. FEBRL has no quoted fields, so a split on commas reads it.
struct Row<'a> {
    header: &'a [&'a str],
    fields: Vec<&'a str>,
}

impl Row<'_> {
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.header.iter().position(|h| *h == column)?;
        self.fields.get(i).copied().filter(|v| !v.is_empty())
    }
}

fn attrs(row: &Row) -> IdentityAttrs {
    let get = |k: &str| row.get(k).map(str::to_string);
    let line1: Vec<String> = [get("street_number"), get("address_1")]
        .into_iter()
        .flatten()
        .collect();
    // A comma keeps address_2 a line of its own even when the first line is empty.
    let street = match (line1.join(" "), get("address_2")) {
        (l1, None) if l1.is_empty() => None,
        (l1, None) => Some(l1),
        (l1, Some(l2)) => Some(format!("{l1}, {l2}")),
    };
    IdentityAttrs {
        given_name: get("given_name"),
        family_name: get("surname"),
        street,
        city: get("suburb"),
        postcode: get("postcode"),
        country: get("state"),
        date_of_birth: get("date_of_birth"),
        external_ids: get("soc_sec_id")
            .map(|v| BTreeMap::from([("soc_sec_id".to_string(), v)]))
            .unwrap_or_default(),
        ..Default::default()
    }
}

pub fn canon(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

fn prf(tp: u64, n_pred: u64, n_true: u64) -> (f64, f64, f64) {
    let p = if n_pred > 0 {
        tp as f64 / n_pred as f64
    } else {
        0.0
    };
    let r = if n_true > 0 {
        tp as f64 / n_true as f64
    } else {
        0.0
    };
    let f = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f)
}

/// `er_eval.evaluate_scored_pairs`: every true pair not predicted, scored or
/// not, is a false negative.
pub fn pairwise(
    ids: &[String],
    scored: &[(u32, u32, f64)],
    truth: &HashSet<(String, String)>,
    threshold: f64,
) -> BTreeMap<&'static str, f64> {
    // The truth as pairs of record indices: a lookup without building two
    // strings per scored pair.
    let index: HashMap<&str, u32> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();
    let truth_pairs: HashSet<(u32, u32)> = truth
        .iter()
        .filter_map(|(a, b)| Some((*index.get(a.as_str())?, *index.get(b.as_str())?)))
        .map(|(i, j)| (i.min(j), i.max(j)))
        .collect();
    let is_true: Vec<bool> = scored
        .iter()
        .map(|&(i, j, _)| truth_pairs.contains(&(i.min(j), i.max(j))))
        .collect();
    let n_true = truth.len() as u64;
    let sel: Vec<bool> = scored.iter().map(|e| e.2 >= threshold).collect();
    let n_pred = sel.iter().filter(|&&s| s).count() as u64;
    let tp = sel.iter().zip(&is_true).filter(|(s, t)| **s && **t).count() as u64;
    let (p, r, f) = prf(tp, n_pred, n_true);
    let in_candidates = is_true.iter().filter(|&&t| t).count() as u64;

    // Best F1 over thresholds: a diagnostic of ranking quality, never used to pick the threshold.
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[b].2.total_cmp(&scored[a].2));
    let (mut best_f1, mut best_t, mut tp_cum) = (0.0, f64::NAN, 0u64);
    for (n, &k) in order.iter().enumerate() {
        tp_cum += u64::from(is_true[k]);
        let last_of_run = n + 1 == order.len() || scored[order[n + 1]].2 != scored[k].2;
        if last_of_run {
            let f1 = prf(tp_cum, n as u64 + 1, n_true).2;
            if f1 > best_f1 {
                (best_f1, best_t) = (f1, scored[k].2);
            }
        }
    }
    BTreeMap::from([
        ("threshold", threshold),
        ("n_true_pairs", n_true as f64),
        ("n_candidate_pairs", scored.len() as f64),
        ("true_pairs_in_candidates", in_candidates as f64),
        (
            "blocking_recall",
            if n_true > 0 {
                in_candidates as f64 / n_true as f64
            } else {
                0.0
            },
        ),
        ("n_pred", n_pred as f64),
        ("tp", tp as f64),
        ("precision", p),
        ("recall", r),
        ("f1", f),
        ("best_f1", best_f1),
        ("best_threshold", best_t),
    ])
}

/// `er_eval.evaluate_clusters`: the pairs implied by the clusters; with
/// `cross_only`, only pairs of records from different datasets.
pub fn clusters(
    ids: &[String],
    datasets: &[u16],
    labels: &[u32],
    truth: &HashSet<(String, String)>,
    cross_only: bool,
) -> BTreeMap<&'static str, f64> {
    let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, &l) in labels.iter().enumerate() {
        groups.entry(l).or_default().push(i);
    }
    let (mut n_pred, mut tp) = (0u64, 0u64);
    for members in groups.values() {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                if cross_only && datasets[a] == datasets[b] {
                    continue;
                }
                n_pred += 1;
                tp += u64::from(truth.contains(&canon(&ids[a], &ids[b])));
            }
        }
    }
    let (p, r, f) = prf(tp, n_pred, truth.len() as u64);
    BTreeMap::from([
        ("cluster_n_pred", n_pred as f64),
        ("cluster_tp", tp as f64),
        ("cluster_precision", p),
        ("cluster_recall", r),
        ("cluster_f1", f),
        ("n_clusters", groups.len() as f64),
        (
            "max_cluster_size",
            groups.values().map(Vec::len).max().unwrap_or(0) as f64,
        ),
    ])
}

use std::time::Instant;

use kith_resolve::{
    BlockKey, BlockRule, Blocking, BlockingReport, ClusterOptions, Model, NormalizeOptions,
    Prepared, TrainOptions,
};

/// One resolution of a dataset, with the seconds each phase took.
pub struct Run {
    pub model: Model,
    pub report: BlockingReport,
    pub scored: Vec<(u32, u32, f64)>,
    pub labels: Vec<u32>,
    pub seconds: BTreeMap<&'static str, f64>,
}

/// The prediction rules of the Splink FEBRL script, in kith's keys: names
/// (either order), date of birth, id, state + street, number + street, postcode.
pub fn blocking(link_type: LinkType) -> Blocking {
    use BlockKey as K;
    Blocking {
        rules: vec![
            BlockRule::new(&[K::NamePair]),
            BlockRule::new(&[K::DateOfBirth]),
            BlockRule::new(&[K::ExternalId]),
            BlockRule::new(&[K::Country, K::Street]),
            BlockRule::new(&[K::StreetNumber, K::Street]),
            BlockRule::new(&[K::Postcode]),
        ],
        link_type,
        max_block: 1000,
    }
}

/// Prepares the records, shared out among the machine's cores in file order.
fn prepare(records: &[(String, u16, IdentityAttrs)], opts: &NormalizeOptions) -> Vec<Prepared> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = records.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = records
            .chunks(per_thread)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(_, d, a)| Prepared::new(a, opts).with_dataset(*d))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("preparing a record does not panic"))
            .collect()
    })
}

/// Prepares, trains, blocks, scores and clusters, timing each phase.
pub fn run(ds: &Dataset, u_max_pairs: u64, threshold: f64, guard: bool) -> Run {
    let mut seconds = BTreeMap::new();
    let mut t = Instant::now();
    let mut lap = |name: &'static str| {
        seconds.insert(name, t.elapsed().as_secs_f64());
        t = Instant::now();
    };
    let opts = NormalizeOptions {
        default_region: "AU".into(),
        ..Default::default()
    };
    let records = prepare(&ds.records, &opts);
    lap("prepare_s");
    // Blocking needs no model: it runs beside training, which leaves a
    // core idle while it draws the u sample's pairs. `block_s` is the
    // blocking thread's own time, within `train_s`.
    let (model, (pairs, report, block_s)) = std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            let t = Instant::now();
            let (pairs, report) = blocking(ds.link_type).candidate_pairs(&records);
            (pairs, report, t.elapsed().as_secs_f64())
        });
        let model = Model::train(
            &records,
            &TrainOptions {
                link_type: ds.link_type,
                u_max_pairs,
                threshold,
                ..Default::default()
            },
        );
        (model, blocked.join().expect("blocking does not panic"))
    });
    lap("train_s");
    let scored = kith_resolve::score_pairs(&model, &records, &pairs);
    lap("score_s");
    let labels = kith_resolve::cluster(
        &records,
        &scored,
        &ClusterOptions {
            threshold,
            guard,
            ..Default::default()
        },
    );
    lap("cluster_s");
    seconds.insert("block_s", block_s);
    Run {
        model,
        report,
        scored,
        labels,
        seconds,
    }
}
