//! Training a [`Model`] from the records themselves, without labels.
//!
//! - **u** by comparing random pairs: nearly all random pairs are different
//!   people, so the share of each level among them is its u. A fixed, seeded
//!   sample (1e6 pairs by default, every pair when there are fewer).
//! - **m** by expectation–maximisation, one session per training blocking
//!   rule (e.g. same date of birth; same postcode). Within a rule's pairs the
//!   attributes of the rule agree by construction, so their m is not
//!   estimated there but in another session; the sessions' estimates are
//!   averaged.
//! - **λ** from the sessions: a session on an exact key finds the number of
//!   matches in its block, and the key's m (from the other sessions) says
//!   what share of all matches agree on that key.
//! - **Term frequencies** by counting values.
//!
//! Where the data is too thin (an attribute nobody fills in, a rule with
//! a handful of pairs), shipped priors stand in, and the summary says so.

use std::collections::HashMap;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::block::{BlockKey, BlockRule, Blocking, RuleBlocks, in_pieces, threads_for};
use crate::compare::{Attribute, Kept, MISSING, N_ATTRIBUTES, Side, Vector, compare, compare_kept};
use crate::hash::FnvBuild;
use crate::model::{
    ComparisonParams, EmSession, LevelParams, MAX_LEVELS, Model, PROBABILITY_CLAMP, TfTable,
    TrainingSummary,
};
use crate::record::Prepared;
use crate::{LinkType, PIECE, TOUCH_BATCH, TOUCH_FROM, touch};

/// λ when the data cannot tell: one pair in ten thousand.
pub const PRIOR_LAMBDA: f64 = 1e-4;
/// The default band of match probabilities that goes to clerical review.
pub const DEFAULT_UNCERTAIN: (f64, f64) = (0.2, 0.8);

/// How a model is trained. Part of the resolver's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    pub link_type: LinkType,
    /// Random pairs compared to estimate u.
    pub u_max_pairs: u64,
    pub seed: u64,
    /// One EM session per rule.
    pub em_rules: Vec<BlockRule>,
    /// The blocking guard for the training rules.
    pub max_block: usize,
    /// A session whose rule yields more pairs than this runs on a seeded
    /// uniform sample of this many of them: a million records blocked on
    /// postcode make hundreds of millions of pairs, and EM's estimates
    /// from a million are as good.
    pub em_max_pairs: u64,
    pub max_iterations: u32,
    /// EM stops when no probability moves by more than this.
    pub tolerance: f64,
    /// Fewer pairs than this (in a session, or with an attribute in the u
    /// sample) and the shipped priors are kept.
    pub min_pairs: u64,
    /// Term-frequency tables keep at most this many of the commonest values.
    pub tf_max_values: usize,
    pub threshold: f64,
    pub uncertain: (f64, f64),
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            link_type: LinkType::Dedupe,
            u_max_pairs: 1_000_000,
            seed: 42,
            em_rules: vec![
                BlockRule::new(&[BlockKey::DateOfBirth]),
                BlockRule::new(&[BlockKey::Postcode]),
            ],
            max_block: 1000,
            em_max_pairs: 1_000_000,
            max_iterations: 25,
            tolerance: 1e-4,
            min_pairs: 100,
            tf_max_values: 100_000,
            threshold: 0.5,
            uncertain: DEFAULT_UNCERTAIN,
        }
    }
}

/// The shipped m of a level: what typical customer data shows.
pub fn prior_m(attribute: Attribute, level: usize) -> f64 {
    prior(attribute, level).0
}

/// The shipped u of a level.
pub fn prior_u(attribute: Attribute, level: usize) -> f64 {
    prior(attribute, level).1
}

fn prior(attribute: Attribute, level: usize) -> (f64, f64) {
    let (m, u): (&[f64], &[f64]) = match attribute.levels().len() {
        7 => (
            &[0.85, 0.03, 0.05, 0.02, 0.02, 0.01, 0.02],
            &[0.005, 0.0005, 0.002, 0.003, 0.05, 0.01, 0.9295],
        ),
        6 => (
            &[0.9, 0.02, 0.01, 0.04, 0.01, 0.02],
            &[0.0001, 0.0001, 0.003, 0.001, 0.02, 0.9758],
        ),
        4 => (&[0.85, 0.07, 0.04, 0.04], &[0.01, 0.01, 0.08, 0.9]),
        3 => (&[0.95, 0.03, 0.02], &[0.0001, 0.0005, 0.9994]),
        _ => (&[0.9, 0.1], &[0.05, 0.95]),
    };
    (m[level], u[level])
}

fn clamp(p: f64) -> f64 {
    p.clamp(PROBABILITY_CLAMP.0, PROBABILITY_CLAMP.1)
}

type Table = [[f64; MAX_LEVELS]; N_ATTRIBUTES];

fn prior_table(f: fn(Attribute, usize) -> f64) -> Table {
    let mut t = [[0.0; MAX_LEVELS]; N_ATTRIBUTES];
    for a in Attribute::ALL {
        for (l, p) in t[a.index()].iter_mut().enumerate().take(a.levels().len()) {
            *p = f(a, l);
        }
    }
    t
}

impl Model {
    /// Trains a model on `records`; see the [module docs](crate::train).
    pub fn train(records: &[Prepared], opts: &TrainOptions) -> Model {
        let mut summary = TrainingSummary {
            records: records.len(),
            ..Default::default()
        };
        // Drawing the u sample's million pairs is one thread's work (one
        // seeded sequence); the EM sessions' pairs do not depend on it, so
        // they are blocked and compared meanwhile, and u is counted after.
        let (sample, sessions) = std::thread::scope(|s| {
            let drawn = s.spawn(|| u_pairs(records, opts));
            let sessions: Vec<Session> = opts
                .em_rules
                .iter()
                .map(|rule| Session::count(rule, records, opts))
                .collect();
            let pairs = drawn.join().expect("drawing pairs does not panic");
            (count_levels(records, &pairs), sessions)
        });
        summary.u_pairs = sample.pairs;
        let mut u = prior_table(prior_u);
        for a in Attribute::ALL {
            let k = a.index();
            if sample.present[k] < opts.min_pairs {
                summary.prior_u.push(a);
                continue;
            }
            for (l, slot) in u[k].iter_mut().enumerate().take(a.levels().len()) {
                // One pseudo-pair spread as the prior keeps unseen levels finite.
                *slot = clamp(
                    (sample.counts[k][l] as f64 + prior_u(a, l)) / (sample.present[k] as f64 + 1.0),
                );
            }
        }

        let mut m_sum = [[0.0; MAX_LEVELS]; N_ATTRIBUTES];
        let mut m_n = [0u32; N_ATTRIBUTES];
        let mut session_blocks = Vec::new();
        for Session {
            rule,
            total,
            compared,
            excluded,
            patterns,
        } in sessions
        {
            let mut session = EmSession {
                rule: rule.name(),
                pairs: total,
                compared,
                iterations: 0,
                converged: false,
                lambda: 0.0,
                estimated: Vec::new(),
            };
            if let Some(patterns) = patterns {
                let fit = em(&patterns, &u, &excluded, opts);
                session.iterations = fit.iterations;
                session.converged = fit.converged;
                session.lambda = fit.lambda;
                for a in Attribute::ALL {
                    if fit.estimated[a.index()] {
                        session.estimated.push(a);
                        m_n[a.index()] += 1;
                        let levels = a.levels().len();
                        for (sum, m) in m_sum[a.index()][..levels].iter_mut().zip(&fit.m[a.index()])
                        {
                            *sum += m;
                        }
                    }
                }
                session_blocks.push((rule.clone(), total, fit.lambda));
            }
            summary.em_sessions.push(session);
        }
        let mut m = prior_table(prior_m);
        for a in Attribute::ALL {
            let k = a.index();
            if m_n[k] == 0 {
                summary.prior_m.push(a);
                continue;
            }
            for l in 0..a.levels().len() {
                m[k][l] = clamp(m_sum[k][l] / f64::from(m_n[k]));
            }
        }

        let lambda = estimate_lambda(&session_blocks, &m, &sample, records, opts);
        summary.lambda_from_data = lambda.is_some();
        let tf = tf_tables(records, opts.tf_max_values);
        let comparisons = Attribute::ALL
            .iter()
            .zip(tf)
            .map(|(&a, tf)| ComparisonParams {
                attribute: a,
                levels: a
                    .levels()
                    .iter()
                    .enumerate()
                    .map(|(l, label)| LevelParams {
                        label: label.to_string(),
                        m: m[a.index()][l],
                        u: u[a.index()][l],
                    })
                    .collect(),
                tf,
            })
            .collect();
        Model::from_parts(
            lambda.unwrap_or(PRIOR_LAMBDA),
            comparisons,
            opts.seed,
            opts.threshold,
            opts.uncertain,
            summary,
        )
    }
}

#[derive(Default)]
struct USample {
    pairs: u64,
    counts: [[u64; MAX_LEVELS]; N_ATTRIBUTES],
    /// Pairs in which both records have the attribute.
    present: [u64; N_ATTRIBUTES],
}

/// The number of pairs the link type allows among `records`.
pub fn comparable_pairs(records: &[Prepared], link_type: LinkType) -> u64 {
    let n = records.len() as u64;
    let all = n * n.saturating_sub(1) / 2;
    match link_type {
        LinkType::Dedupe => all,
        LinkType::LinkOnly => {
            let mut sizes: HashMap<u16, u64> = HashMap::new();
            for r in records {
                *sizes.entry(r.dataset).or_default() += 1;
            }
            (n * n - sizes.values().map(|s| s * s).sum::<u64>()) / 2
        }
    }
}

/// One EM session's rule and its pairs' comparison patterns, counted before
/// u is known (EM itself needs u).
struct Session {
    rule: BlockRule,
    /// Pairs the rule makes, and how many of them were compared.
    total: u64,
    compared: u64,
    /// The rule's own attributes, not estimated in this session.
    excluded: Vec<Attribute>,
    /// None when the rule makes too few pairs to learn from.
    patterns: Option<Vec<(Vector, u64)>>,
}

impl Session {
    fn count(rule: &BlockRule, records: &[Prepared], opts: &TrainOptions) -> Session {
        let blocking = Blocking {
            rules: vec![rule.clone()],
            link_type: opts.link_type,
            max_block: opts.max_block,
        };
        let (pairs, total) = session_pairs(&blocking, records, opts);
        let excluded: Vec<Attribute> = rule
            .keys
            .iter()
            .flat_map(|k| k.attributes().0.iter().copied())
            .collect();
        let patterns =
            (total >= opts.min_pairs).then(|| count_patterns(records, &pairs, &excluded));
        Session {
            rule: rule.clone(),
            total,
            compared: pairs.len() as u64,
            excluded,
            patterns,
        }
    }
}

#[cfg(test)]
fn sample_u(records: &[Prepared], opts: &TrainOptions) -> USample {
    count_levels(records, &u_pairs(records, opts))
}

/// The pairs compared for u: a seeded random sample of `u_max_pairs`, or
/// every pair when there are no more than that.
fn u_pairs(records: &[Prepared], opts: &TrainOptions) -> Vec<(u32, u32)> {
    let link_only = opts.link_type == LinkType::LinkOnly;
    let n = records.len();
    if comparable_pairs(records, opts.link_type) <= opts.u_max_pairs {
        let mut pairs = Vec::new();
        for (i, a) in records.iter().enumerate() {
            for (j, b) in records.iter().enumerate().skip(i + 1) {
                if !link_only || a.dataset != b.dataset {
                    pairs.push((i as u32, j as u32));
                }
            }
        }
        return by_second(pairs, n);
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    // Records ordered by dataset, so "a record of another dataset" is a
    // uniform draw from the positions outside one range: this makes every
    // cross-dataset pair equally likely when there are two datasets.
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&i| records[i as usize].dataset);
    let mut range_of: HashMap<u16, (usize, usize)> = HashMap::new();
    for (pos, &i) in order.iter().enumerate() {
        let e = range_of
            .entry(records[i as usize].dataset)
            .or_insert((pos, pos));
        e.1 = pos + 1;
    }
    let range_of: Vec<(usize, usize)> = records.iter().map(|r| range_of[&r.dataset]).collect();
    let pairs: Vec<(u32, u32)> = (0..opts.u_max_pairs)
        .map(|_| {
            let i = rng.random_range(0..n);
            let j = if link_only {
                let (start, end) = range_of[i];
                let r = rng.random_range(0..n - (end - start));
                order[if r < start { r } else { r + end - start }] as usize
            } else {
                let j = rng.random_range(0..n - 1);
                if j >= i { j + 1 } else { j }
            };
            (i as u32, j as u32)
        })
        .collect();
    by_second(pairs, n)
}

/// The pairs in the order they are best compared in (the counts are sums,
/// so the order changes nothing else): where the records sit in the
/// processor's caches, grouped by their second record, whose Jaro–Winkler
/// tables are then built once for the group ([`count_levels`]); above
/// that, by tiles of both records ([`by_tile`]).
fn by_second(pairs: Vec<(u32, u32)>, n: usize) -> Vec<(u32, u32)> {
    if n >= TOUCH_FROM {
        return by_tile(pairs, n);
    }
    let mut start = vec![0usize; n + 1];
    for &(_, j) in &pairs {
        start[j as usize + 1] += 1;
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut out = vec![(0, 0); pairs.len()];
    for p in pairs {
        let slot = &mut start[p.1 as usize];
        out[*slot] = p;
        *slot += 1;
    }
    out
}

/// The pairs grouped by which stretch of records each side falls in, so that
/// consecutive comparisons find their records in the cache: compared in the
/// order drawn, nearly every record was a fetch from main memory.
fn by_tile(pairs: Vec<(u32, u32)>, n: usize) -> Vec<(u32, u32)> {
    let tile = 256.max(n.div_ceil(128));
    let per_side = n.div_ceil(tile);
    let key = |&(i, j): &(u32, u32)| i as usize / tile * per_side + j as usize / tile;
    let mut start = vec![0usize; per_side * per_side + 1];
    for p in &pairs {
        start[key(p) + 1] += 1;
    }
    for t in 1..start.len() {
        start[t] += start[t - 1];
    }
    let mut out = vec![(0, 0); pairs.len()];
    for p in pairs {
        let slot = &mut start[key(&p)];
        out[*slot] = p;
        *slot += 1;
    }
    out
}

/// Compares the pairs and counts each attribute's levels. The pairs are
/// split over the machine's cores: this is nearly all the work of training,
/// and the counts are sums, so the result does not depend on the split.
fn count_levels(records: &[Prepared], pairs: &[(u32, u32)]) -> USample {
    count_levels_grouped(records, pairs, records.len() < TOUCH_FROM)
}

/// [`count_levels`]; `grouped`: the pairs come grouped by their second
/// record ([`by_second`]), whose tables are then built once for the group.
fn count_levels_grouped(records: &[Prepared], pairs: &[(u32, u32)], grouped: bool) -> USample {
    let count = |part: &[(u32, u32)]| {
        // One more column for MISSING, so that each level is counted
        // without a branch; `present` is the sum of the others.
        let mut tally = [[0u64; MAX_LEVELS + 1]; N_ATTRIBUTES];
        let mut add = |v: Vector| {
            for (row, &l) in tally.iter_mut().zip(&v) {
                row[usize::from(l).min(MAX_LEVELS)] += 1;
            }
        };
        if grouped {
            let mut kept = Kept::new();
            for run in part.chunk_by(|p, q| p.1 == q.1) {
                let b = &records[run[0].1 as usize];
                kept.fill(b);
                let side = Side::of(b);
                for &(i, _) in run {
                    add(compare_kept(&records[i as usize], &side, &kept));
                }
                kept.clear(b);
            }
        } else {
            for batch in part.chunks(TOUCH_BATCH) {
                touch(records, batch);
                for &(i, j) in batch {
                    add(compare(&records[i as usize], &records[j as usize]));
                }
            }
        }
        let mut s = USample {
            pairs: part.len() as u64,
            ..Default::default()
        };
        for (k, row) in tally.iter().enumerate() {
            s.counts[k].copy_from_slice(&row[..MAX_LEVELS]);
            s.present[k] = row[..MAX_LEVELS].iter().sum();
        }
        s
    };
    let mut total = USample::default();
    for s in in_pieces(pairs, PIECE, count) {
        total.pairs += s.pairs;
        for k in 0..N_ATTRIBUTES {
            total.present[k] += s.present[k];
            for l in 0..MAX_LEVELS {
                total.counts[k][l] += s.counts[k][l];
            }
        }
    }
    total
}

/// The pairs of one EM session's rule: all of them (distinct, sorted) when
/// there are at most `em_max_pairs`, else that many drawn uniformly (with
/// replacement, seeded) from every pair in the rule's blocks; and how many
/// pairs the rule makes.
fn session_pairs(
    blocking: &Blocking,
    records: &[Prepared],
    opts: &TrainOptions,
) -> (Vec<(u32, u32)>, u64) {
    let link_only = blocking.link_type == LinkType::LinkOnly;
    let Some(rule) = blocking.rules.first() else {
        return (Vec::new(), 0);
    };
    let blocks = RuleBlocks::new(rule, records);
    let dataset = |x: &(u64, u32)| records[x.1 as usize].dataset;
    let pairs_in = |block: &[(u64, u32)]| -> u64 {
        let n = block.len() as u64;
        if !link_only {
            return n * (n - 1) / 2;
        }
        let mut sizes: HashMap<u16, u64> = HashMap::new();
        for x in block {
            *sizes.entry(dataset(x)).or_default() += 1;
        }
        (n * n - sizes.values().map(|s| s * s).sum::<u64>()) / 2
    };
    let usable: Vec<(&[(u64, u32)], u64)> = blocks
        .blocks()
        .filter(|b| b.len() <= blocking.max_block)
        .map(|b| (b, pairs_in(b)))
        .filter(|&(_, n)| n > 0)
        .collect();
    let total: u64 = usable.iter().map(|&(_, n)| n).sum();
    if total <= opts.em_max_pairs {
        let mut pairs = Vec::with_capacity(total as usize);
        for (block, _) in &usable {
            for (x, a) in block.iter().enumerate() {
                for b in &block[x + 1..] {
                    if !link_only || dataset(a) != dataset(b) {
                        pairs.push((a.1, b.1));
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let n = pairs.len() as u64;
        return (pairs, n);
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut draws: Vec<u64> = (0..opts.em_max_pairs)
        .map(|_| rng.random_range(0..total))
        .collect();
    draws.sort_unstable();
    let mut pairs = Vec::with_capacity(draws.len());
    let (mut next, mut end) = (0, 0u64);
    for (block, n) in usable {
        end += n;
        while next < draws.len() && draws[next] < end {
            next += 1;
            // A pair of the block, uniformly: every pair of the rule is then
            // equally likely, since the block was drawn by its pair count.
            loop {
                let x = rng.random_range(0..block.len());
                let y = rng.random_range(0..block.len() - 1);
                let y = if y >= x { y + 1 } else { y };
                let (a, b) = (&block[x.min(y)], &block[x.max(y)]);
                if !link_only || dataset(a) != dataset(b) {
                    pairs.push((a.1, b.1));
                    break;
                }
            }
        }
    }
    (pairs, total)
}

/// How often each comparison vector occurs among `pairs`, with the
/// `excluded` attributes blanked, in a fixed order. Split over the cores;
/// the counts are sums, so the result does not depend on the split.
fn count_patterns(
    records: &[Prepared],
    pairs: &[(u32, u32)],
    excluded: &[Attribute],
) -> Vec<(Vector, u64)> {
    let count = |part: &[(u32, u32)]| {
        let mut patterns: HashMap<Vector, u64> = HashMap::new();
        for batch in part.chunks(TOUCH_BATCH) {
            touch(records, batch);
            for &(i, j) in batch {
                let mut v = compare(&records[i as usize], &records[j as usize]);
                for a in excluded {
                    v[a.index()] = MISSING;
                }
                *patterns.entry(v).or_default() += 1;
            }
        }
        patterns
    };
    let mut patterns: HashMap<Vector, u64> = HashMap::new();
    for part in in_pieces(pairs, PIECE, count) {
        for (v, c) in part {
            *patterns.entry(v).or_default() += c;
        }
    }
    let mut patterns: Vec<(Vector, u64)> = patterns.into_iter().collect();
    // A fixed order makes the floating-point sums, and the model, repeatable.
    patterns.sort_unstable();
    patterns
}

struct Fit {
    m: Table,
    lambda: f64,
    iterations: u32,
    converged: bool,
    estimated: [bool; N_ATTRIBUTES],
}

/// EM for m and the block's λ, with u held at the sampled values.
fn em(patterns: &[(Vector, u64)], u: &Table, excluded: &[Attribute], opts: &TrainOptions) -> Fit {
    let active: Vec<usize> = Attribute::ALL
        .iter()
        .filter(|a| !excluded.contains(a))
        .map(|a| a.index())
        .collect();
    let mut m = prior_table(prior_m);
    let mut lambda = 0.3;
    let ln_u = u.map(|row| row.map(|p| if p > 0.0 { p.ln() } else { 0.0 }));
    let mut fit = Fit {
        m,
        lambda,
        iterations: 0,
        converged: false,
        estimated: [false; N_ATTRIBUTES],
    };
    let total: f64 = patterns.iter().map(|(_, c)| *c as f64).sum();
    for iteration in 1..=opts.max_iterations {
        let ln_m = m.map(|row| row.map(|p| if p > 0.0 { p.ln() } else { 0.0 }));
        let mut num = [[0.0; MAX_LEVELS]; N_ATTRIBUTES];
        let mut den = [0.0; N_ATTRIBUTES];
        let mut matches = 0.0;
        for (v, c) in patterns {
            let (mut lm, mut lu) = (lambda.ln(), (1.0 - lambda).ln());
            for &k in &active {
                let l = v[k];
                if l != MISSING {
                    lm += ln_m[k][l as usize];
                    lu += ln_u[k][l as usize];
                }
            }
            let p = 1.0 / (1.0 + (lu - lm).exp());
            let w = p * *c as f64;
            matches += w;
            for &k in &active {
                let l = v[k];
                if l != MISSING {
                    num[k][l as usize] += w;
                    den[k] += w;
                }
            }
        }
        let new_lambda = clamp(matches / total);
        let mut delta = (new_lambda - lambda).abs();
        for &k in &active {
            let a = Attribute::ALL[k];
            for l in 0..a.levels().len() {
                let p = clamp((num[k][l] + prior_m(a, l)) / (den[k] + 1.0));
                delta = delta.max((p - m[k][l]).abs());
                m[k][l] = p;
            }
        }
        lambda = new_lambda;
        fit.iterations = iteration;
        // An attribute counts as estimated when a few matches' worth of pairs have it.
        for &k in &active {
            fit.estimated[k] = den[k] >= 5.0;
        }
        if delta < opts.tolerance {
            fit.converged = true;
            break;
        }
    }
    fit.m = m;
    fit.lambda = lambda;
    fit
}

/// λ from each session on exact keys: matches in its block divided by the
/// share of all matches that agree on the keys (m of `exact`, times the
/// share of pairs where both records have the key), over all pairs.
fn estimate_lambda(
    sessions: &[(BlockRule, u64, f64)],
    m: &Table,
    sample: &USample,
    records: &[Prepared],
    opts: &TrainOptions,
) -> Option<f64> {
    let total = comparable_pairs(records, opts.link_type) as f64;
    if total == 0.0 || sample.pairs == 0 {
        return None;
    }
    let estimates: Vec<f64> = sessions
        .iter()
        .filter_map(|(rule, pairs, block_lambda)| {
            let mut recall = 1.0;
            for key in &rule.keys {
                let (attributes, exact) = key.attributes();
                if !exact {
                    return None;
                }
                for a in attributes {
                    let present = sample.present[a.index()] as f64 / sample.pairs as f64;
                    recall *= m[a.index()][0] * present;
                }
            }
            (recall > 0.0).then(|| block_lambda * *pairs as f64 / recall / total)
        })
        .collect();
    (!estimates.is_empty()).then(|| {
        let mean = estimates.iter().sum::<f64>() / estimates.len() as f64;
        mean.clamp(1e-9, 0.5)
    })
}

/// How often each value of the term-frequency attributes occurs; the
/// attributes are counted side by side on the machine's cores.
fn tf_tables(records: &[Prepared], max_values: usize) -> Vec<Option<TfTable>> {
    let table = |a: Attribute| -> Option<TfTable> {
        if !a.term_frequency() {
            return None;
        }
        let mut counts: HashMap<&[u8], u64, FnvBuild> = HashMap::default();
        let mut present = 0u64;
        for r in records {
            if let Some(v) = r.tf_value(a) {
                *counts.entry(v).or_default() += 1;
                present += 1;
            }
        }
        if present == 0 {
            return None;
        }
        let mut common: Vec<(&[u8], u64)> = counts.into_iter().filter(|&(_, c)| c > 1).collect();
        common.sort_unstable_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(y.0)));
        common.truncate(max_values);
        Some(TfTable {
            records: present,
            counts: common
                .into_iter()
                .map(|(v, c)| (String::from_utf8_lossy(v).into_owned(), c))
                .collect(),
        })
    };
    let threads = threads_for(records.len(), 20_000);
    if threads <= 1 {
        return Attribute::ALL.iter().map(|&a| table(a)).collect();
    }
    let mut tables: Vec<Option<TfTable>> = vec![None; N_ATTRIBUTES];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    Attribute::ALL
                        .iter()
                        .filter(|a| a.term_frequency())
                        .enumerate()
                        .filter(|(k, _)| k % threads == t)
                        .map(|(_, &a)| (a.index(), table(a)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (k, t) in h.join().expect("counting values does not panic") {
                tables[k] = t;
            }
        }
    });
    tables
}

#[cfg(test)]
pub(crate) mod tests {
    use kith_model::IdentityAttrs;

    use super::*;
    use crate::normalize::NormalizeOptions;

    /// A small synthetic population: `n` people, each with a second record
    /// carrying a typo in one field.
    pub(crate) fn population(n: usize, seed: u64) -> (Vec<Prepared>, Vec<usize>) {
        const GIVEN: &[&str] = &[
            "ann", "bob", "carl", "dina", "emma", "fred", "gina", "hugo", "ivy", "jack", "kate",
            "liam", "mia", "noah", "olga", "paul",
        ];
        const FAMILY: &[&str] = &[
            "smith",
            "jones",
            "brown",
            "taylor",
            "wilson",
            "davies",
            "evans",
            "thomas",
            "roberts",
            "walker",
            "wright",
            "green",
            "hall",
            "wood",
            "harris",
            "zaborowski",
        ];
        let mut rng = StdRng::seed_from_u64(seed);
        let mut records = Vec::new();
        let mut truth = Vec::new();
        for p in 0..n {
            let attrs = IdentityAttrs {
                given_name: Some(GIVEN[rng.random_range(0..GIVEN.len())].into()),
                family_name: Some(FAMILY[rng.random_range(0..FAMILY.len())].into()),
                date_of_birth: Some(format!(
                    "{}-{:02}-{:02}",
                    rng.random_range(1940..2005),
                    rng.random_range(1..13),
                    rng.random_range(1..29)
                )),
                postcode: Some(format!("P{}", rng.random_range(0..n / 4 + 1))),
                street: Some(format!("{} high street", rng.random_range(1..200))),
                ..Default::default()
            };
            let mut dup = attrs.clone();
            match rng.random_range(0..4) {
                0 => dup.given_name = Some(format!("{}e", dup.given_name.unwrap())),
                1 => dup.postcode = None,
                2 => dup.street = Some(dup.street.unwrap().replace("street", "st")),
                _ => dup.date_of_birth = None,
            }
            for a in [attrs, dup] {
                records.push(Prepared::new(&a, &NormalizeOptions::default()));
                truth.push(p);
            }
        }
        (records, truth)
    }

    #[test]
    fn trains_sensible_parameters_on_synthetic_data() {
        let (records, _) = population(400, 1);
        let opts = TrainOptions {
            u_max_pairs: 50_000,
            min_pairs: 20,
            ..Default::default()
        };
        let model = Model::train(&records, &opts);
        assert_eq!(model.training.u_pairs, 50_000);
        let dob = &model.comparisons[Attribute::DateOfBirth.index()].levels;
        assert!(dob[0].m > 0.8, "{dob:?}");
        assert!(dob[0].u < 0.01, "{dob:?}");
        let given = &model.comparisons[Attribute::GivenName.index()].levels;
        assert!(given[0].m > given[0].u * 5.0, "{given:?}");
        assert!(model.training.lambda_from_data);
        // 400 true pairs among 800·799/2.
        let truth = 400.0 / (800.0 * 799.0 / 2.0);
        assert!(
            model.lambda > truth / 3.0 && model.lambda < truth * 3.0,
            "{} vs {truth}",
            model.lambda
        );
        assert!(model.training.prior_m.contains(&Attribute::Email));
        for c in &model.comparisons {
            for l in &c.levels {
                assert!(l.m >= PROBABILITY_CLAMP.0 && l.m <= PROBABILITY_CLAMP.1);
                assert!(l.u >= PROBABILITY_CLAMP.0 && l.u <= PROBABILITY_CLAMP.1);
            }
        }
    }

    #[test]
    fn training_is_repeatable_with_a_seed() {
        let (records, _) = population(100, 2);
        let opts = TrainOptions {
            u_max_pairs: 5_000,
            min_pairs: 20,
            ..Default::default()
        };
        let a = Model::train(&records, &opts);
        let b = Model::train(&records, &opts);
        assert_eq!(a.to_json(), b.to_json());
    }

    #[test]
    fn tiny_data_falls_back_to_priors() {
        let (records, _) = population(3, 3);
        let model = Model::train(&records, &TrainOptions::default());
        // 15 pairs: every one compared, none enough to learn from.
        assert_eq!(model.training.u_pairs, 15);
        assert_eq!(model.training.prior_u.len(), N_ATTRIBUTES);
        assert_eq!(model.lambda, PRIOR_LAMBDA);
        let empty = Model::train(&[], &TrainOptions::default());
        assert_eq!(empty.training.u_pairs, 0);
        assert_eq!(
            empty.comparisons[0].levels,
            Model::prior().comparisons[0].levels
        );
    }

    #[test]
    fn link_only_samples_only_across_datasets() {
        let (mut records, _) = population(50, 4);
        for (i, r) in records.iter_mut().enumerate() {
            r.dataset = (i % 2) as u16;
        }
        assert_eq!(comparable_pairs(&records, LinkType::LinkOnly), 50 * 50);
        assert_eq!(comparable_pairs(&records, LinkType::Dedupe), 100 * 99 / 2);
        let opts = TrainOptions {
            link_type: LinkType::LinkOnly,
            u_max_pairs: 1000,
            ..Default::default()
        };
        assert_eq!(sample_u(&records, &opts).pairs, 1000);
        let all = TrainOptions {
            u_max_pairs: 1_000_000,
            ..opts
        };
        assert_eq!(sample_u(&records, &all).pairs, 2500);
    }

    #[test]
    fn tiles_keep_every_pair() {
        let mut rng = StdRng::seed_from_u64(6);
        let n = 3000;
        let pairs: Vec<(u32, u32)> = (0..50_000)
            .map(|_| (rng.random_range(0..n), rng.random_range(0..n)))
            .collect();
        let mut tiled = by_tile(pairs.clone(), n as usize);
        let mut sorted = pairs;
        sorted.sort_unstable();
        tiled.sort_unstable();
        assert_eq!(tiled, sorted);
    }

    #[test]
    fn both_ways_of_counting_levels_agree() {
        // Below 50,000 records the pairs are counted grouped by their second
        // record, above that as tiles with fetching ahead: same counts.
        let (records, _) = population(600, 17);
        let mut rng = StdRng::seed_from_u64(17);
        let n = records.len();
        let pairs: Vec<(u32, u32)> = (0..40_000)
            .map(|_| (rng.random_range(0..n) as u32, rng.random_range(0..n) as u32))
            .collect();
        let grouped = count_levels_grouped(&records, &by_second(pairs.clone(), n), true);
        let tiled = count_levels_grouped(&records, &by_tile(pairs, n), false);
        assert_eq!(grouped.pairs, 40_000);
        assert_eq!(
            (grouped.pairs, grouped.counts, grouped.present),
            (tiled.pairs, tiled.counts, tiled.present)
        );
    }

    #[test]
    fn grouping_by_second_record_keeps_every_pair() {
        let mut rng = StdRng::seed_from_u64(16);
        let n = 3000;
        let pairs: Vec<(u32, u32)> = (0..50_000)
            .map(|_| (rng.random_range(0..n), rng.random_range(0..n)))
            .collect();
        let grouped = by_second(pairs.clone(), n as usize);
        assert!(grouped.windows(2).all(|w| w[0].1 <= w[1].1));
        let (mut a, mut b) = (grouped, pairs);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn large_em_sessions_run_on_a_uniform_sample_of_their_pairs() {
        let (records, _) = population(2000, 7);
        let rule = BlockRule::new(&[BlockKey::Postcode]);
        let blocking = Blocking {
            rules: vec![rule.clone()],
            ..Default::default()
        };
        let (every, _) = blocking.candidate_pairs(&records);
        let opts = TrainOptions {
            em_max_pairs: 500,
            ..Default::default()
        };
        let (sample, total) = session_pairs(&blocking, &records, &opts);
        assert_eq!(total, every.len() as u64);
        assert!(total > 500, "{total}");
        assert_eq!(sample.len(), 500);
        for p in &sample {
            assert!(
                every.binary_search(p).is_ok(),
                "{p:?} is no pair of the rule"
            );
        }
        // Seeded: the same sample again.
        assert_eq!(session_pairs(&blocking, &records, &opts).0, sample);
        // At or below the cap, every pair, as blocking makes them.
        let all = TrainOptions {
            em_max_pairs: total,
            ..Default::default()
        };
        assert_eq!(session_pairs(&blocking, &records, &all), (every, total));
        // The session records both counts.
        let model = Model::train(
            &records,
            &TrainOptions {
                em_rules: vec![rule],
                u_max_pairs: 10_000,
                ..opts
            },
        );
        assert_eq!(model.training.em_sessions[0].pairs, total);
        assert_eq!(model.training.em_sessions[0].compared, 500);
    }

    #[test]
    fn tf_tables_keep_repeated_values() {
        let (records, _) = population(200, 5);
        let tf = tf_tables(&records, 3);
        let family = tf[Attribute::FamilyName.index()].as_ref().unwrap();
        assert_eq!(family.records, 400);
        assert_eq!(family.counts.len(), 3);
        assert!(tf[Attribute::DateOfBirth.index()].is_none());
        assert!(tf[Attribute::Email.index()].is_none());
    }
}
