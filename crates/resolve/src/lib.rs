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
pub mod model;
pub mod normalize;
pub mod record;
pub mod train;

pub use block::{BlockKey, BlockRule, Blocking, BlockingReport};
pub use cluster::{ClusterOptions, Conflict, cluster, cluster_constrained, cluster_with, conflict};
pub use compare::{Attribute, MISSING, Vector, compare};
pub use explain::{ComparisonExplanation, Explanation, explain};
pub use model::{Decision, Model, ModelError, Scored};
pub use normalize::NormalizeOptions;
pub use record::Prepared;
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

/// Scores candidate pairs: `(i, j, match probability)` for [`cluster`].
pub fn score_pairs(
    model: &Model,
    records: &[Prepared],
    pairs: &[(u32, u32)],
) -> Vec<(u32, u32, f64)> {
    pairs
        .iter()
        .map(|&(i, j)| {
            let s = model.score(&records[i as usize], &records[j as usize]);
            (i, j, s.probability)
        })
        .collect()
}
