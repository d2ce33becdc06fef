//! kith's identity resolution: which source records are the same person or
//! organisation, and why. Pure logic, no I/O: callers hand in
//! [`IdentityAttrs`](kith_model::IdentityAttrs) and get back pairs, scores,
//! clusters and explanations.
//!
//! ```text
//! IdentityAttrs ─► Prepared::new ─► Blocking::candidate_pairs ─► Model::score ─► cluster
//!  (normalize)       (record)          (block)                     (compare,       (cluster)
//!                                                                   model)
//!                        Model::train (train) ─┘                 explain (explain)
//!
//! Index (index): the same, one record at a time — insert, update, remove,
//! resolve_one — kept equal to the batch path's links and parties.
//! ```
//!
//! ```
//! use kith_model::IdentityAttrs;
//! use kith_resolve::{Blocking, ClusterOptions, Model, NormalizeOptions, Prepared, TrainOptions};
//!
//! let people = [
//!     ("Will", "Smith", "1980-03-05"),
//!     ("William", "Smith", "5 March 1980"),
//!     ("Ann", "Lee", "1990-01-01"),
//! ];
//! let opts = NormalizeOptions::default();
//! let records: Vec<Prepared> = people
//!     .iter()
//!     .map(|(g, f, d)| {
//!         let attrs = IdentityAttrs {
//!             given_name: Some(g.to_string()),
//!             family_name: Some(f.to_string()),
//!             date_of_birth: Some(d.to_string()),
//!             ..Default::default()
//!         };
//!         Prepared::new(&attrs, &opts)
//!     })
//!     .collect();
//! let model = Model::train(&records, &TrainOptions::default()); // too few pairs: shipped priors
//! let (pairs, _report) = Blocking::default().candidate_pairs(&records);
//! let edges = kith_resolve::score_pairs(&model, &records, &pairs);
//! let labels = kith_resolve::cluster(&records, &edges, &ClusterOptions::default());
//! assert_eq!(labels, vec![0, 0, 2]);
//! ```

pub mod block;
pub mod cluster;
pub mod compare;
pub mod explain;
mod hash;
pub mod index;
pub mod model;
pub mod normalize;
pub mod record;
pub mod rules;
pub mod train;

pub use block::{BlockKey, BlockRule, Blocking, BlockingReport};
pub use cluster::{ClusterOptions, Conflict, cluster, cluster_constrained, cluster_with, conflict};
pub use compare::{Attribute, MISSING, Vector, compare};
pub use explain::{ComparisonExplanation, Explanation, explain};
pub use index::{Candidate, Index, IndexError, RecordId, Resolution};
pub use model::{Decision, Model, ModelError, Scored};
pub use normalize::NormalizeOptions;
pub use record::Prepared;
pub use rules::{Condition, NeverLinkRule, RuleError, default_never_link, vetoed_by};
pub use train::TrainOptions;

use serde::{Deserialize, Serialize};

/// Which pairs of records may be the same party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    /// Any two records, whatever dataset they come from.
    #[default]
    Dedupe,
    /// Only records of different datasets ([`Prepared::with_dataset`]): each
    /// dataset is known to hold each party at most once.
    LinkOnly,
}

/// Pairs compared per batch whose records are first fetched together.
pub(crate) const TOUCH_BATCH: usize = 16;

/// Records from which [`touch`] fetches ahead.
pub(crate) const TOUCH_FROM: usize = 50_000;

/// Touches the records of a batch of pairs, their fixed parts first and
/// then their texts (which the fixed parts point to), so that the fetches
/// of all of them overlap (see [`Prepared::touch_head`]).
/// Below [`TOUCH_FROM`] records, which stay in the processor's caches
/// (ten thousand FEBRL records are under 3 MB), it does nothing: there is
/// no fetch to overlap, only the reads' cost.
#[inline]
pub(crate) fn touch(records: &[Prepared], batch: &[(u32, u32)]) {
    if records.len() < TOUCH_FROM {
        return;
    }
    let mut sum: usize = 0;
    for &(i, j) in batch {
        sum = sum
            .wrapping_add(records[i as usize].touch_head())
            .wrapping_add(records[j as usize].touch_head());
    }
    for &(i, j) in batch {
        sum = sum
            .wrapping_add(records[i as usize].touch_text())
            .wrapping_add(records[j as usize].touch_text());
    }
    std::hint::black_box(sum);
}

/// Scores candidate pairs: `(i, j, match probability)` for [`cluster()`], in
/// the order of `pairs`.
pub fn score_pairs(
    model: &Model,
    records: &[Prepared],
    pairs: &[(u32, u32)],
) -> Vec<(u32, u32, f64)> {
    score_pairs_at_least(model, records, pairs, f64::NEG_INFINITY)
}

/// [`score_pairs`] keeping only pairs whose probability is at least
/// `min_probability` (e.g. the low end of the review band): at scale most
/// candidate pairs are plainly different people, and keeping them would
/// cost more memory than the records. The pairs are shared out among the
/// machine's cores; the result, in the order of `pairs`, does not depend
/// on how many there are.
pub fn score_pairs_at_least(
    model: &Model,
    records: &[Prepared],
    pairs: &[(u32, u32)],
    min_probability: f64,
) -> Vec<(u32, u32, f64)> {
    let score = |part: &[(u32, u32)]| -> Vec<(u32, u32, f64)> {
        let mut out = Vec::new();
        for batch in part.chunks(TOUCH_BATCH) {
            touch(records, batch);
            for &(i, j) in batch {
                let p = model
                    .score(&records[i as usize], &records[j as usize])
                    .probability;
                if p >= min_probability {
                    out.push((i, j, p));
                }
            }
        }
        out
    };
    block::in_pieces(pairs, PIECE, score).concat()
}

/// Pairs compared in one piece of parallel work: some milliseconds' worth.
pub(crate) const PIECE: usize = 16_384;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_keeps_order_and_drops_only_what_is_below_the_floor() {
        let (records, _) = train::tests::population(3000, 9);
        let model = Model::train(
            &records,
            &TrainOptions {
                u_max_pairs: 20_000,
                ..Default::default()
            },
        );
        let (pairs, _) = Blocking::default().candidate_pairs(&records);
        // Enough pairs to be split over threads.
        assert!(pairs.len() > 40_000, "{}", pairs.len());
        let all = score_pairs(&model, &records, &pairs);
        let by_one: Vec<(u32, u32, f64)> = pairs
            .iter()
            .map(|&(i, j)| {
                (
                    i,
                    j,
                    model
                        .score(&records[i as usize], &records[j as usize])
                        .probability,
                )
            })
            .collect();
        assert_eq!(all, by_one);
        let kept = score_pairs_at_least(&model, &records, &pairs, 0.2);
        let want: Vec<_> = all.iter().copied().filter(|e| e.2 >= 0.2).collect();
        assert_eq!(kept, want);
        assert!(!kept.is_empty() && kept.len() < all.len());
    }
}
