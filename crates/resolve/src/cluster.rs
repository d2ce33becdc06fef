//! Clustering scored pairs into parties.
//!
//! Pairs at or above the threshold are edges; parties are the connected
//! components. Components chain: A–B and B–C put A and C together even when
//! A and C plainly differ, and an over-merge shows one customer another's
//! data. So edges are added strongest first, and a *weak* edge (below
//! [`ClusterOptions::strong_edge`]) that would join two groups holding
//! records that *conflict on a strong identifier* (see [`conflict`]) is
//! dropped unless those records are themselves linked directly. The weakest
//! edges are therefore the ones that give way. A strong edge joins whatever
//! it joins: the model has already weighed the conflicting values.
//!
//! The result depends only on the set of edges, not their order: edges are
//! sorted by probability and then by record, and each cluster is labelled
//! by its smallest record index.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::compare::{DATE_ELSE, DATE_WITHIN_YEAR, date_level, one_edit_bytes};
use crate::hash::FnvBuild;
use crate::record::Prepared;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterOptions {
    /// Edges below this match probability are ignored.
    pub threshold: f64,
    /// Whether to refuse weak chains through conflicting strong identifiers.
    pub guard: bool,
    /// Edges at or above this probability join groups despite conflicts.
    pub strong_edge: f64,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            threshold: 0.5,
            guard: true,
            strong_edge: 0.99,
        }
    }
}

/// Why two records cannot be the same party without direct evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Conflict {
    /// Both carry an external id of this name, and the values differ by more
    /// than a typo.
    ExternalId { name: String },
    /// Both have a date of birth, and they differ by more than a typo or a
    /// day–month swap.
    DateOfBirth,
}

/// The strong-identifier conflict between two records, if any.
pub fn conflict(a: &Prepared, b: &Prepared) -> Option<Conflict> {
    for (ka, va) in a.external_ids() {
        for (kb, vb) in b.external_ids() {
            if ka == kb && !one_edit_bytes(va, vb) {
                return Some(Conflict::ExternalId {
                    name: String::from_utf8_lossy(ka).into_owned(),
                });
            }
        }
    }
    if let (Some(x), Some(y)) = (a.dob, b.dob)
        && matches!(date_level(x, y), DATE_WITHIN_YEAR | DATE_ELSE)
    {
        return Some(Conflict::DateOfBirth);
    }
    None
}

/// Clusters `records` by scored edges `(i, j, match probability)`; returns
/// each record's cluster label, the smallest index in its cluster.
pub fn cluster(records: &[Prepared], edges: &[(u32, u32, f64)], opts: &ClusterOptions) -> Vec<u32> {
    cluster_with(records.len(), edges, opts, |i, j| {
        conflict(&records[i as usize], &records[j as usize]).is_some()
    })
}

/// [`cluster`] with the conflict test supplied, for callers that hold
/// records elsewhere.
pub fn cluster_with(
    n: usize,
    edges: &[(u32, u32, f64)],
    opts: &ClusterOptions,
    conflicts: impl Fn(u32, u32) -> bool,
) -> Vec<u32> {
    cluster_constrained(n, edges, opts, conflicts, &HashSet::new())
}

/// [`cluster_with`] under cannot-link constraints: pairs `(i, j)` with
/// `i < j` that a person said are different parties. No edge, however
/// strong, joins two groups when that would put such a pair together, so a
/// rejection holds even when the two records are connected through others.
/// Edges are taken strongest first, so the weakest link of a chain is the one refused.
pub fn cluster_constrained(
    n: usize,
    edges: &[(u32, u32, f64)],
    opts: &ClusterOptions,
    conflicts: impl Fn(u32, u32) -> bool,
    cannot_link: &HashSet<(u32, u32)>,
) -> Vec<u32> {
    let mut kept: Vec<(u32, u32, f64)> = edges
        .iter()
        .filter(|&&(i, j, p)| p >= opts.threshold && i != j && (i as usize) < n && (j as usize) < n)
        .map(|&(i, j, p)| (i.min(j), i.max(j), p))
        .collect();
    // Keep the highest probability of a pair given twice.
    kept.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.total_cmp(&a.2)));
    kept.dedup_by_key(|e| (e.0, e.1));
    let direct: HashSet<(u32, u32), FnvBuild> = kept.iter().map(|&(i, j, _)| (i, j)).collect();
    kept.sort_unstable_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));

    // Union–find, each group's members a list threaded through `next` from
    // its root (a list per record would cost a million allocations).
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut next: Vec<u32> = vec![NONE; n];
    let mut tail: Vec<u32> = (0..n as u32).collect();
    let mut size: Vec<u32> = vec![1; n];
    for &(i, j, p) in &kept {
        let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
        if ri == rj {
            continue;
        }
        let any_pair = |test: &dyn Fn(u32, u32) -> bool| {
            members(&next, ri).any(|x| members(&next, rj).any(|y| test(x.min(y), x.max(y))))
        };
        if !cannot_link.is_empty() && any_pair(&|x, y| cannot_link.contains(&(x, y))) {
            continue;
        }
        if opts.guard
            && p < opts.strong_edge
            && any_pair(&|x, y| !direct.contains(&(x, y)) && conflicts(x, y))
        {
            continue;
        }
        let (big, small) = if size[ri as usize] >= size[rj as usize] {
            (ri, rj)
        } else {
            (rj, ri)
        };
        next[tail[big as usize] as usize] = small;
        tail[big as usize] = tail[small as usize];
        size[big as usize] += size[small as usize];
        parent[small as usize] = big;
    }
    let mut label = vec![0u32; n];
    for root in 0..n as u32 {
        if parent[root as usize] == root {
            let min = members(&next, root).min().unwrap_or(root);
            for x in members(&next, root) {
                label[x as usize] = min;
            }
        }
    }
    label
}

/// The end of a member list.
const NONE: u32 = u32::MAX;

/// The members of the group whose root is `root`.
fn members(next: &[u32], root: u32) -> impl Iterator<Item = u32> + '_ {
    std::iter::successors(Some(root), move |&x| {
        Some(next[x as usize]).filter(|&y| y != NONE)
    })
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let up = parent[parent[x as usize] as usize];
        parent[x as usize] = up;
        x = up;
    }
    x
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kith_model::IdentityAttrs;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::normalize::NormalizeOptions;

    fn rec(dob: &str, id: &str) -> Prepared {
        let mut attrs = IdentityAttrs {
            date_of_birth: (!dob.is_empty()).then(|| dob.into()),
            ..Default::default()
        };
        if !id.is_empty() {
            attrs.external_ids = BTreeMap::from([("ssn".into(), id.into())]);
        }
        Prepared::new(&attrs, &NormalizeOptions::default())
    }

    #[test]
    fn components_above_threshold() {
        let records: Vec<Prepared> = (0..5).map(|_| rec("", "")).collect();
        let edges = [(0, 1, 0.9), (1, 2, 0.6), (3, 4, 0.4)];
        assert_eq!(
            cluster(&records, &edges, &ClusterOptions::default()),
            vec![0, 0, 0, 3, 4]
        );
        assert_eq!(
            cluster(&[], &[], &ClusterOptions::default()),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn conflicts_on_strong_identifiers() {
        assert_eq!(
            conflict(&rec("1980-01-02", ""), &rec("1980-01-02", "")),
            None
        );
        assert_eq!(
            conflict(&rec("1980-01-02", ""), &rec("1980-02-01", "")),
            None
        );
        assert_eq!(
            conflict(&rec("1980-01-02", ""), &rec("1981-01-02", "")),
            None
        );
        assert_eq!(
            conflict(&rec("1980-01-02", ""), &rec("1955-07-19", "")),
            Some(Conflict::DateOfBirth)
        );
        assert_eq!(conflict(&rec("", "123456"), &rec("", "123465")), None);
        assert_eq!(
            conflict(&rec("", "123456"), &rec("", "987654")),
            Some(Conflict::ExternalId { name: "ssn".into() })
        );
        assert_eq!(conflict(&rec("", "123456"), &rec("1980-01-01", "")), None);
    }

    #[test]
    fn a_weak_chain_through_a_conflict_is_split() {
        // 0 and 2 have different dates of birth; 1 has none and links to both.
        let records = vec![rec("1980-01-02", ""), rec("", ""), rec("1955-07-19", "")];
        let edges = [(0, 1, 0.99), (1, 2, 0.7)];
        assert_eq!(
            cluster(&records, &edges, &ClusterOptions::default()),
            vec![0, 0, 2]
        );
        // A direct link between the conflicting records is evidence enough.
        let edges = [(0, 1, 0.99), (1, 2, 0.7), (0, 2, 0.6)];
        assert_eq!(
            cluster(&records, &edges, &ClusterOptions::default()),
            vec![0, 0, 0]
        );
        let off = ClusterOptions {
            guard: false,
            ..Default::default()
        };
        assert_eq!(
            cluster(&records, &[(0, 1, 0.99), (1, 2, 0.7)], &off),
            vec![0, 0, 0]
        );
    }

    /// Random records (a third with one of a few dates of birth) and random
    /// edges with tied probabilities, so that order could matter.
    fn random_case(rng: &mut StdRng) -> (Vec<Prepared>, Vec<(u32, u32, f64)>) {
        let n = rng.random_range(2..40);
        let dobs = ["1980-01-02", "1955-07-19", "1999-12-31"];
        let records: Vec<Prepared> = (0..n)
            .map(|_| match rng.random_range(0..6) {
                0..3 => rec(dobs[rng.random_range(0..3)], ""),
                3 => rec("", &format!("{}", rng.random_range(100_000..100_004))),
                _ => rec("", ""),
            })
            .collect();
        let edges = (0..rng.random_range(0..3 * n))
            .map(|_| {
                (
                    rng.random_range(0..n as u32),
                    rng.random_range(0..n as u32),
                    f64::from(rng.random_range(3..10u8)) / 10.0,
                )
            })
            .collect();
        (records, edges)
    }

    #[test]
    fn property_result_does_not_depend_on_input_order() {
        let mut rng = StdRng::seed_from_u64(11);
        let opts = ClusterOptions::default();
        for _ in 0..300 {
            let (records, mut edges) = random_case(&mut rng);
            let want = cluster(&records, &edges, &opts);
            for _ in 0..5 {
                edges.shuffle(&mut rng);
                for e in edges.iter_mut() {
                    if rng.random_bool(0.5) {
                        *e = (e.1, e.0, e.2);
                    }
                }
                assert_eq!(cluster(&records, &edges, &opts), want);
            }
        }
    }

    #[test]
    fn property_rerunning_is_idempotent() {
        let mut rng = StdRng::seed_from_u64(12);
        let opts = ClusterOptions::default();
        for _ in 0..300 {
            let (records, edges) = random_case(&mut rng);
            let first = cluster(&records, &edges, &opts);
            assert_eq!(cluster(&records, &edges, &opts), first);
            // Re-clustering with only the edges inside the clusters found
            // yields the same clusters.
            let inside: Vec<(u32, u32, f64)> = edges
                .iter()
                .copied()
                .filter(|&(i, j, _)| first[i as usize] == first[j as usize])
                .collect();
            assert_eq!(cluster(&records, &inside, &opts), first);
            // Labels are cluster minima.
            for (i, &l) in first.iter().enumerate() {
                assert!(l as usize <= i);
                assert_eq!(first[l as usize], l);
            }
        }
    }

    #[test]
    fn a_rejected_pair_stays_apart_even_through_others() {
        // 0-1 and 1-2 are certain; a person said 0 and 2 are different people.
        let edges = [(0, 1, 1.0), (1, 2, 0.9), (2, 3, 1.0)];
        let cannot: HashSet<(u32, u32)> = [(0, 2)].into_iter().collect();
        let opts = ClusterOptions {
            guard: false,
            ..Default::default()
        };
        let labels = cluster_constrained(4, &edges, &opts, |_, _| false, &cannot);
        assert_eq!(labels[0], labels[1]);
        assert_ne!(labels[0], labels[2], "{labels:?}");
        assert_eq!(labels[2], labels[3]);
        // Without the constraint they are one group.
        let labels = cluster_constrained(4, &edges, &opts, |_, _| false, &HashSet::new());
        assert!(labels.iter().all(|&l| l == 0));
    }
}
