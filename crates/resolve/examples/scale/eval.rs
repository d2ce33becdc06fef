//! The scoring definitions of `shared/peers/er_eval.py`, on record indices.
//!
//! `evaluate_scored_pairs` → [`pairwise`], `evaluate_clusters` → [`clusters`]:
//! the same counts and the same formulas, so kith's figures and the peers'
//! are comparable. `scripts/er-eval-check.py` runs the Python originals on
//! kith's output to show that both give the same numbers.

use std::collections::{BTreeMap, HashMap};

/// `er_eval.prf`.
pub fn prf(tp: u64, n_pred: u64, n_true: u64) -> (f64, f64, f64) {
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

/// Whether `(i, j)` is a true pair; `truth` is sorted with `i < j`.
pub fn is_true(truth: &[(u32, u32)], i: u32, j: u32) -> bool {
    truth.binary_search(&(i.min(j), i.max(j))).is_ok()
}

/// `er_eval.evaluate_scored_pairs` over `scored`, the candidate pairs whose
/// probability is at least `floor` (every candidate when `floor` is 0).
/// Pairs below `floor` cannot be predicted at `threshold >= floor`, so the
/// figures at the threshold are exact; `n_candidates` and
/// `true_in_candidates` count every candidate pair, kept or not. The best F1
/// is swept over the kept scores only, so it is er_eval's value only when
/// every candidate was kept.
pub fn pairwise(
    scored: &[(u32, u32, f64)],
    truth: &[(u32, u32)],
    threshold: f64,
    n_candidates: u64,
    true_in_candidates: u64,
) -> BTreeMap<&'static str, f64> {
    let n_true = truth.len() as u64;
    let flags: Vec<bool> = scored
        .iter()
        .map(|&(i, j, _)| is_true(truth, i, j))
        .collect();
    let (mut n_pred, mut tp) = (0u64, 0u64);
    for (&(_, _, p), &t) in scored.iter().zip(&flags) {
        if p >= threshold {
            n_pred += 1;
            tp += u64::from(t);
        }
    }
    let (p, r, f) = prf(tp, n_pred, n_true);

    // Best F1 over thresholds: a diagnostic of ranking quality, never used to
    // pick the threshold. Evaluated at the last pair of each run of equal
    // scores, highest first, as er_eval does.
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[b].2.total_cmp(&scored[a].2));
    let (mut best, mut tp_cum) = ((0.0, f64::NAN, 0.0, 0.0), 0u64);
    for (n, &k) in order.iter().enumerate() {
        tp_cum += u64::from(flags[k]);
        let last_of_run = n + 1 == order.len() || scored[order[n + 1]].2 != scored[k].2;
        if last_of_run {
            let (bp, br, bf) = prf(tp_cum, n as u64 + 1, n_true);
            if bf > best.0 {
                best = (bf, scored[k].2, bp, br);
            }
        }
    }
    BTreeMap::from([
        ("threshold", threshold),
        ("n_true_pairs", n_true as f64),
        ("n_candidate_pairs", n_candidates as f64),
        ("true_pairs_in_candidates", true_in_candidates as f64),
        (
            "blocking_recall",
            if n_true > 0 {
                true_in_candidates as f64 / n_true as f64
            } else {
                0.0
            },
        ),
        ("n_pred", n_pred as f64),
        ("tp", tp as f64),
        ("precision", p),
        ("recall", r),
        ("f1", f),
        ("best_f1", best.0),
        ("best_threshold", best.1),
        ("best_precision", best.2),
        ("best_recall", best.3),
    ])
}

/// `er_eval.evaluate_clusters` (dedupe: every pair inside a cluster counts).
pub fn clusters(labels: &[u32], truth: &[(u32, u32)]) -> BTreeMap<&'static str, f64> {
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, &l) in labels.iter().enumerate() {
        groups.entry(l).or_default().push(i as u32);
    }
    let (mut n_pred, mut tp) = (0u64, 0u64);
    for members in groups.values() {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                n_pred += 1;
                tp += u64::from(is_true(truth, a, b));
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
