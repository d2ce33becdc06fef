//! Incremental resolution: an [`Index`] of prepared records with their
//! block keys, their links and their parties, to which records are added,
//! changed or removed one at a time without resolving everything again.
//!
//! The index keeps what the batch path ([`Blocking::candidate_pairs`],
//! [`crate::score_pairs`], [`cluster_constrained`]) would compute, and keeps
//! it *equal* to it: after any sequence of changes its parties are the
//! partition the batch path gives on the same records in the same order.
//! That holds because every step of the batch path is local:
//!
//! - a pair is a candidate when the two records share a key of some rule
//!   whose block is within the size guard, which the index checks from its
//!   postings (and, when a change moves a block across the guard, it takes
//!   back or adds the pairs of that block);
//! - a pair's score depends on the two records alone, always taken in
//!   index order, `(smaller id, larger id)`, as the batch path scores them;
//! - clustering joins only records connected by links at or above the
//!   threshold, and its strongest-first order restricted to one connected
//!   group is the order within that group; so re-clustering just the group a
//!   change touches, with ids mapped in order, gives the batch labels there.
//!
//! A change therefore costs a lookup per block key, a score per candidate
//! and a clustering of one small group: tens of microseconds against a
//! million records, where the batch path takes seconds.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::LinkType;
use crate::block::{Blocking, RuleBlocks};
use crate::cluster::{ClusterOptions, cluster_constrained, conflict};
use crate::hash::FnvBuild;
use crate::model::Model;
use crate::record::Prepared;
use crate::rules::{NeverLinkRule, vetoed_by};

/// A record's id in the [`Index`]: its position in the order records were
/// added, which is also the order the batch path would see them in.
pub type RecordId = u32;

/// What the index found for one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The record's id: the one it was given, or, for [`Index::resolve_one`],
    /// the one it would get.
    pub id: RecordId,
    /// Records that share a block with it and were compared.
    pub candidates: usize,
    /// The candidate with the highest match probability at or above the
    /// model's threshold, if any.
    pub best: Option<Candidate>,
    /// Candidates whose probability falls in the model's uncertain band:
    /// pairs for clerical review.
    pub review: Vec<Candidate>,
    /// Every candidate at or above the threshold, strongest first.
    pub links: Vec<Candidate>,
    /// The party the record belongs to, named by its smallest record id.
    /// For [`Index::resolve_one`], the party of `best` (or its own id),
    /// which the clustering guard could still refuse on insert.
    pub party: RecordId,
    /// Every record whose party changed with this change (this one
    /// included when it joined others), for a caller that keeps stable
    /// party ids: only these need looking at. Empty for `resolve_one`.
    pub moved: Vec<RecordId>,
}

/// A candidate and its match probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: RecordId,
    pub probability: f64,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// No record has this id.
    UnknownRecord(RecordId),
    /// A pair of a record with itself.
    SamePair(RecordId),
    /// The index holds `u32::MAX` records already.
    Full,
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexError::UnknownRecord(id) => write!(f, "no record {id} in the index"),
            IndexError::SamePair(id) => write!(f, "record {id} cannot be paired with itself"),
            IndexError::Full => write!(f, "the index is full ({} records)", u32::MAX),
        }
    }
}

impl std::error::Error for IndexError {}

/// Prepared records, their block keys, links and parties, kept equal to
/// what the batch path gives; see the [module docs](crate::index).
pub struct Index {
    model: Model,
    blocking: Blocking,
    cluster: ClusterOptions,
    records: Vec<Prepared>,
    /// One per blocking rule.
    postings: Vec<Postings>,
    /// Links at or above the threshold, both ways: `(other, probability)`.
    links: Vec<Vec<(RecordId, f64)>>,
    /// Pairs that always link (a person accepted them), `(i, j)` with `i < j`.
    forced: HashSet<(RecordId, RecordId), FnvBuild>,
    /// Pairs that never link (a person rejected them), by record, both ways.
    apart: HashMap<RecordId, Vec<RecordId>, FnvBuild>,
    labels: Vec<RecordId>,
    /// Vetoes on what the model alone would link.
    never_link: Vec<NeverLinkRule>,
    /// Scratch space for block keys.
    keys: Vec<u64>,
}

impl Index {
    /// An empty index. Records are scored with `model`, blocked with
    /// `blocking` and clustered with `cluster` (whose threshold is the one
    /// links are kept at).
    pub fn new(model: Model, blocking: Blocking, cluster: ClusterOptions) -> Self {
        let postings = blocking.rules.iter().map(|_| Postings::default()).collect();
        Index {
            model,
            blocking,
            cluster,
            records: Vec::new(),
            postings,
            links: Vec::new(),
            forced: HashSet::default(),
            apart: HashMap::default(),
            labels: Vec::new(),
            never_link: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// The same index with never-link rules: a pair the model would link
    /// but a rule vetoes is not linked (forced pairs still are). Set them
    /// before adding records.
    pub fn with_never_link(mut self, rules: Vec<NeverLinkRule>) -> Self {
        debug_assert!(self.records.is_empty(), "rules are set on an empty index");
        self.never_link = rules;
        self
    }

    /// An index of `records` built with the batch path, which is much
    /// faster than adding them one at a time; they get ids `0..n` in order.
    pub fn build(
        model: Model,
        blocking: Blocking,
        cluster: ClusterOptions,
        records: Vec<Prepared>,
    ) -> Result<Self, IndexError> {
        Index::new(model, blocking, cluster).fill(records)
    }

    /// Fills an empty index with `records` by the batch path (ids `0..n`),
    /// keeping its never-link rules.
    pub fn fill(mut self, records: Vec<Prepared>) -> Result<Self, IndexError> {
        if records.len() >= u32::MAX as usize {
            return Err(IndexError::Full);
        }
        debug_assert!(self.records.is_empty(), "fill is for an empty index");
        for (rule, postings) in self.blocking.rules.iter().zip(&mut self.postings) {
            postings.set_base(RuleBlocks::new(rule, &records).into_entries());
        }
        let (pairs, _) = self.blocking.candidate_pairs(&records);
        let mut edges =
            crate::score_pairs_at_least(&self.model, &records, &pairs, self.cluster.threshold);
        drop(pairs);
        if !self.never_link.is_empty() {
            edges.retain(|&(i, j, _)| !self.vetoed(&records[i as usize], &records[j as usize]));
        }
        self.links = vec![Vec::new(); records.len()];
        for &(i, j, p) in &edges {
            self.links[i as usize].push((j, p));
            self.links[j as usize].push((i, p));
        }
        self.labels = crate::cluster(&records, &edges, &self.cluster);
        self.records = records;
        Ok(self)
    }

    /// Whether a never-link rule vetoes a pair (`a` first in index order).
    fn vetoed(&self, a: &Prepared, b: &Prepared) -> bool {
        !self.never_link.is_empty() && self.vetoes(&crate::compare(a, b))
    }

    /// The same, from the comparison vector scoring already made.
    fn vetoes(&self, v: &crate::Vector) -> bool {
        !self.never_link.is_empty() && vetoed_by(&self.never_link, v).is_some()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn record(&self, id: RecordId) -> Option<&Prepared> {
        self.records.get(id as usize)
    }

    /// Each record's party, named by its smallest record id: what
    /// [`cluster_constrained`] returns for the same records and links.
    pub fn labels(&self) -> &[RecordId] {
        &self.labels
    }

    pub fn party(&self, id: RecordId) -> Option<RecordId> {
        self.labels.get(id as usize).copied()
    }

    /// The links of a record at or above the threshold.
    pub fn links(&self, id: RecordId) -> &[(RecordId, f64)] {
        self.links.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Resolves a record against the index without adding it: its
    /// candidates, the best match, the pairs for review.
    pub fn resolve_one(&self, record: &Prepared) -> Resolution {
        let id = self.records.len() as RecordId;
        let mut keys = Vec::new();
        let mut candidates = Vec::new();
        for (r, rule) in self.blocking.rules.iter().enumerate() {
            rule.key_hashes(record, &mut keys);
            for &key in &keys {
                let postings = &self.postings[r];
                // The record would join the block, one more member.
                if postings.count(key) < self.blocking.max_block {
                    candidates.extend(postings.members(key));
                }
            }
        }
        let scored = self.score_candidates(record, id, candidates);
        let party = scored.best.map_or(id, |b| self.labels[b.id as usize]);
        scored.into_resolution(id, party, Vec::new())
    }

    /// Adds a record, links it and re-clusters the group it joins.
    pub fn insert(&mut self, record: Prepared) -> Result<Resolution, IndexError> {
        if self.records.len() >= u32::MAX as usize - 1 {
            return Err(IndexError::Full);
        }
        let id = self.records.len() as RecordId;
        self.records.push(record);
        self.links.push(Vec::new());
        self.labels.push(id);
        let mut touched = vec![id];
        let candidates = self.add_keys(id, &mut touched);
        let record = &self.records[id as usize];
        let scored = self.score_candidates(record, id, candidates);
        for s in &scored.links {
            self.add_link(id, s.id, s.probability);
        }
        let moved = self.recluster(&touched);
        let party = self.labels[id as usize];
        Ok(scored.into_resolution(id, party, moved))
    }

    /// Replaces a record (a source changed it): its old keys and links go,
    /// the new ones come, and every group either touches is re-clustered.
    pub fn update(&mut self, id: RecordId, record: Prepared) -> Result<Resolution, IndexError> {
        if id as usize >= self.records.len() {
            return Err(IndexError::UnknownRecord(id));
        }
        let mut touched = vec![id];
        self.remove_keys(id, &mut touched);
        for (other, _) in std::mem::take(&mut self.links[id as usize]) {
            self.links[other as usize].retain(|&(x, _)| x != id);
            touched.push(other);
        }
        self.records[id as usize] = record;
        let candidates = self.add_keys(id, &mut touched);
        let record = &self.records[id as usize];
        let scored = self.score_candidates(record, id, candidates);
        for s in &scored.links {
            self.add_link(id, s.id, s.probability);
        }
        // Accepted pairs hold whatever the record now says.
        let forced: Vec<RecordId> = self
            .forced
            .iter()
            .filter_map(|&(i, j)| match (i == id, j == id) {
                (true, _) => Some(j),
                (_, true) => Some(i),
                _ => None,
            })
            .collect();
        for other in forced {
            self.add_link(id, other, 1.0);
        }
        let moved = self.recluster(&touched);
        let party = self.labels[id as usize];
        Ok(scored.into_resolution(id, party, moved))
    }

    /// Removes a record (a source deleted it). Its id stays taken, by an
    /// empty record that matches nothing, so that other ids do not move.
    /// Returns the records whose party changed.
    pub fn remove(&mut self, id: RecordId) -> Result<Vec<RecordId>, IndexError> {
        self.forced.retain(|&(i, j)| i != id && j != id);
        self.update(id, Prepared::default()).map(|r| r.moved)
    }

    /// Links two records whatever the model says (a person accepted the
    /// pair): the batch path's edge of probability 1. Returns the records
    /// whose party changed.
    pub fn force_link(&mut self, a: RecordId, b: RecordId) -> Result<Vec<RecordId>, IndexError> {
        let (i, j) = self.pair(a, b)?;
        self.forced.insert((i, j));
        self.add_link(i, j, 1.0);
        Ok(self.recluster(&[i, j]))
    }

    /// Takes back a forced link (the identifier the two records shared is
    /// gone, or a person's decision was undone): the pair stays linked only
    /// if the model links it. Returns the records whose party changed.
    pub fn unforce(&mut self, a: RecordId, b: RecordId) -> Result<Vec<RecordId>, IndexError> {
        let (i, j) = self.pair(a, b)?;
        if !self.forced.remove(&(i, j)) {
            return Ok(Vec::new());
        }
        self.links[i as usize].retain(|&(o, _)| o != j);
        self.links[j as usize].retain(|&(o, _)| o != i);
        if let Some(p) = self.model_link(i, j) {
            self.add_link(i, j, p);
        }
        Ok(self.recluster(&[i, j]))
    }

    /// The model's match probability for a pair the batch path would link
    /// on the model's word alone: a candidate, at or above the threshold, not
    /// vetoed by a never-link rule and not kept apart by a person.
    pub fn model_link(&self, a: RecordId, b: RecordId) -> Option<f64> {
        let (i, j) = self.pair(a, b).ok()?;
        if self.is_apart(i, j) || !self.is_candidate(i, j) {
            return None;
        }
        let (ri, rj) = (&self.records[i as usize], &self.records[j as usize]);
        let s = self.model.score(ri, rj);
        (s.probability >= self.cluster.threshold && !self.vetoes(&s.vector))
            .then_some(s.probability)
    }

    /// The records in the same party as `id` (itself included), in id order.
    pub fn party_members(&self, id: RecordId) -> Vec<RecordId> {
        let Some(&label) = self.labels.get(id as usize) else {
            return Vec::new();
        };
        // A party lies inside the group its records' links connect.
        let mut seen: HashSet<RecordId, FnvBuild> = HashSet::default();
        seen.insert(id);
        let mut group = vec![id];
        let mut next = 0;
        while next < group.len() {
            let x = group[next];
            next += 1;
            for &(y, _) in &self.links[x as usize] {
                if seen.insert(y) {
                    group.push(y);
                }
            }
        }
        group.retain(|&x| self.labels[x as usize] == label);
        group.sort_unstable();
        group
    }

    /// Keeps two records in different parties, however strongly others
    /// connect them (a person rejected the pair): the batch path's
    /// cannot-link constraint. Their own link, if any, is dropped. Returns
    /// the records whose party changed.
    pub fn keep_apart(&mut self, a: RecordId, b: RecordId) -> Result<Vec<RecordId>, IndexError> {
        let (i, j) = self.pair(a, b)?;
        self.forced.remove(&(i, j));
        for (x, y) in [(i, j), (j, i)] {
            let list = self.apart.entry(x).or_default();
            if !list.contains(&y) {
                list.push(y);
            }
            self.links[x as usize].retain(|&(o, _)| o != y);
        }
        Ok(self.recluster(&[i, j]))
    }

    /// The pairs a person rejected, `(i, j)` with `i < j`, for the batch path.
    pub fn kept_apart(&self) -> HashSet<(RecordId, RecordId)> {
        self.apart
            .iter()
            .flat_map(|(&x, ys)| ys.iter().map(move |&y| (x.min(y), x.max(y))))
            .collect()
    }

    /// The pairs a person accepted, `(i, j)` with `i < j`, for the batch path.
    pub fn forced_links(&self) -> Vec<(RecordId, RecordId)> {
        let mut v: Vec<_> = self.forced.iter().copied().collect();
        v.sort_unstable();
        v
    }

    fn pair(&self, a: RecordId, b: RecordId) -> Result<(RecordId, RecordId), IndexError> {
        for id in [a, b] {
            if id as usize >= self.records.len() {
                return Err(IndexError::UnknownRecord(id));
            }
        }
        if a == b {
            return Err(IndexError::SamePair(a));
        }
        Ok((a.min(b), a.max(b)))
    }

    fn is_apart(&self, a: RecordId, b: RecordId) -> bool {
        self.apart.get(&a).is_some_and(|v| v.contains(&b))
    }

    /// Adds or strengthens the link between two records.
    fn add_link(&mut self, a: RecordId, b: RecordId, p: f64) {
        if self.is_apart(a, b) {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let list = &mut self.links[x as usize];
            match list.iter_mut().find(|(o, _)| *o == y) {
                Some(slot) => slot.1 = slot.1.max(p),
                None => list.push((y, p)),
            }
        }
    }

    /// Scores `record` (with id `id`) against the candidates: the pairs in
    /// index order, as the batch path scores them.
    fn score_candidates(
        &self,
        record: &Prepared,
        id: RecordId,
        mut candidates: Vec<RecordId>,
    ) -> Scores {
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&c| c != id);
        if self.blocking.link_type == LinkType::LinkOnly {
            candidates.retain(|&c| self.records[c as usize].dataset != record.dataset);
        }
        let mut out = Scores {
            candidates: candidates.len(),
            ..Default::default()
        };
        for &c in &candidates {
            let other = &self.records[c as usize];
            let scored = if c < id {
                self.model.score(other, record)
            } else {
                self.model.score(record, other)
            };
            let p = scored.probability;
            let s = Candidate {
                id: c,
                probability: p,
            };
            let needs_veto = self.model.decide(p).review || p >= self.cluster.threshold;
            if needs_veto && self.vetoes(&scored.vector) {
                continue;
            }
            if self.model.decide(p).review {
                out.review.push(s);
            }
            if p >= self.cluster.threshold && !self.is_apart(id, c) {
                out.links.push(s);
            }
        }
        out.links.sort_by(|a, b| {
            b.probability
                .total_cmp(&a.probability)
                .then(a.id.cmp(&b.id))
        });
        out.best = out
            .links
            .first()
            .copied()
            .filter(|s| s.probability >= self.model.threshold);
        out
    }

    /// Adds the record's keys to the postings; returns its candidates. A
    /// block that grows past the guard stops making pairs: the links that
    /// came only from it are taken back, and their records re-clustered.
    fn add_keys(&mut self, id: RecordId, touched: &mut Vec<RecordId>) -> Vec<RecordId> {
        let mut candidates = Vec::new();
        let mut overflowed = Vec::new();
        let mut keys = std::mem::take(&mut self.keys);
        for r in 0..self.blocking.rules.len() {
            self.blocking.rules[r].key_hashes(&self.records[id as usize], &mut keys);
            for &key in &keys {
                let before = self.postings[r].count(key);
                if before < self.blocking.max_block {
                    candidates.extend(self.postings[r].members(key));
                } else if before == self.blocking.max_block {
                    overflowed.push(self.postings[r].members(key).collect::<Vec<_>>());
                }
                self.postings[r].insert(key, id);
            }
        }
        self.keys = keys;
        for members in overflowed {
            self.take_back_links(&members, touched);
        }
        candidates
    }

    /// Removes the record's keys from the postings. A block that shrinks
    /// back within the guard makes pairs again: they are scored and linked.
    fn remove_keys(&mut self, id: RecordId, touched: &mut Vec<RecordId>) {
        let mut reopened = Vec::new();
        let mut keys = std::mem::take(&mut self.keys);
        for r in 0..self.blocking.rules.len() {
            self.blocking.rules[r].key_hashes(&self.records[id as usize], &mut keys);
            for &key in &keys {
                self.postings[r].remove(key, id);
                if self.postings[r].count(key) == self.blocking.max_block {
                    reopened.push(self.postings[r].members(key).collect::<Vec<_>>());
                }
            }
        }
        self.keys = keys;
        for mut members in reopened {
            members.sort_unstable();
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let (ra, rb) = (&self.records[a as usize], &self.records[b as usize]);
                    if self.blocking.link_type == LinkType::LinkOnly && ra.dataset == rb.dataset {
                        continue;
                    }
                    let s = self.model.score(ra, rb);
                    let p = s.probability;
                    if p >= self.cluster.threshold && !self.vetoes(&s.vector) {
                        self.add_link(a, b, p);
                        touched.extend([a, b]);
                    }
                }
            }
        }
    }

    /// Drops the links among `members` that no usable block makes any more
    /// (and no person forced).
    fn take_back_links(&mut self, members: &[RecordId], touched: &mut Vec<RecordId>) {
        let set: HashSet<RecordId, FnvBuild> = members.iter().copied().collect();
        for &a in members {
            let gone: Vec<RecordId> = self.links[a as usize]
                .iter()
                .map(|&(b, _)| b)
                .filter(|&b| b > a && set.contains(&b))
                .filter(|&b| !self.forced.contains(&(a, b)) && !self.is_candidate(a, b))
                .collect();
            for b in gone {
                self.links[a as usize].retain(|&(o, _)| o != b);
                self.links[b as usize].retain(|&(o, _)| o != a);
                touched.extend([a, b]);
            }
        }
    }

    /// Whether the batch path would compare `a` and `b`.
    fn is_candidate(&self, a: RecordId, b: RecordId) -> bool {
        let (ra, rb) = (&self.records[a as usize], &self.records[b as usize]);
        if self.blocking.link_type == LinkType::LinkOnly && ra.dataset == rb.dataset {
            return false;
        }
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        self.blocking.rules.iter().enumerate().any(|(r, rule)| {
            rule.key_hashes(ra, &mut ka);
            rule.key_hashes(rb, &mut kb);
            ka.iter().any(|k| {
                kb.binary_search(k).is_ok() && self.postings[r].count(*k) <= self.blocking.max_block
            })
        })
    }

    /// Re-clusters the connected groups (by links) that hold `seeds`;
    /// returns the records whose party changed.
    fn recluster(&mut self, seeds: &[RecordId]) -> Vec<RecordId> {
        let mut moved = Vec::new();
        let mut done: HashSet<RecordId, FnvBuild> = HashSet::default();
        for &seed in seeds {
            if done.contains(&seed) {
                continue;
            }
            // The group: everything reachable by links.
            let mut group = vec![seed];
            done.insert(seed);
            let mut next = 0;
            while next < group.len() {
                let x = group[next];
                next += 1;
                for &(y, _) in &self.links[x as usize] {
                    if done.insert(y) {
                        group.push(y);
                    }
                }
            }
            group.sort_unstable();
            let local = |id: RecordId| {
                group
                    .binary_search(&id)
                    .expect("linked records are in the group") as u32
            };
            let mut edges = Vec::new();
            let mut apart = HashSet::new();
            for (x, &a) in group.iter().enumerate() {
                for &(b, p) in &self.links[a as usize] {
                    if b > a {
                        edges.push((x as u32, local(b), p));
                    }
                }
                for &b in self.apart.get(&a).map_or(&[][..], Vec::as_slice) {
                    if b > a
                        && let Ok(y) = group.binary_search(&b)
                    {
                        apart.insert((x as u32, y as u32));
                    }
                }
            }
            let records = &self.records;
            let labels = cluster_constrained(
                group.len(),
                &edges,
                &self.cluster,
                |i, j| {
                    conflict(
                        &records[group[i as usize] as usize],
                        &records[group[j as usize] as usize],
                    )
                    .is_some()
                },
                &apart,
            );
            for (x, &l) in labels.iter().enumerate() {
                let label = &mut self.labels[group[x] as usize];
                if *label != group[l as usize] {
                    *label = group[l as usize];
                    moved.push(group[x]);
                }
            }
        }
        moved.sort_unstable();
        moved
    }

    /// Bytes the index holds per record, roughly: records, postings, links.
    pub fn heap_bytes(&self) -> usize {
        let records = self.records.capacity() * std::mem::size_of::<Prepared>()
            + self.records.iter().map(Prepared::heap_bytes).sum::<usize>();
        let postings: usize = self.postings.iter().map(Postings::heap_bytes).sum();
        let links = self.links.capacity() * std::mem::size_of::<Vec<(RecordId, f64)>>()
            + self
                .links
                .iter()
                .map(|l| l.capacity() * std::mem::size_of::<(RecordId, f64)>())
                .sum::<usize>();
        records + postings + links + self.labels.capacity() * 4
    }
}

#[derive(Default)]
struct Scores {
    candidates: usize,
    best: Option<Candidate>,
    review: Vec<Candidate>,
    links: Vec<Candidate>,
}

impl Scores {
    fn into_resolution(self, id: RecordId, party: RecordId, moved: Vec<RecordId>) -> Resolution {
        Resolution {
            id,
            candidates: self.candidates,
            best: self.best,
            review: self.review,
            links: self.links,
            party,
            moved,
        }
    }
}

/// The members of every block of one rule, by key hash: a sorted base
/// built in bulk (twelve bytes a key, where a hash map of lists costs
/// several times that) and the keys added since in a small map, merged into
/// the base when it grows.
#[derive(Default)]
struct Postings {
    /// Key hashes, sorted, and the record of each.
    hashes: Vec<u64>,
    ids: Vec<RecordId>,
    /// Base entries removed since the last merge.
    removed: HashSet<usize, FnvBuild>,
    /// Where the hashes with each leading-bits prefix start, so a lookup
    /// reads a few neighbouring entries instead of searching a million.
    directory: Vec<u32>,
    shift: u32,
    added: HashMap<u64, Vec<RecordId>, FnvBuild>,
    added_len: usize,
}

impl Postings {
    fn set_base(&mut self, entries: Vec<(u64, u32)>) {
        self.hashes = entries.iter().map(|e| e.0).collect();
        self.ids = entries.iter().map(|e| e.1).collect();
        self.removed.clear();
        self.added.clear();
        self.added_len = 0;
        // About four entries per directory slot.
        let bits = (self.hashes.len() / 4).max(1).ilog2().clamp(1, 24);
        self.shift = 64 - bits;
        let slots = 1usize << bits;
        let mut directory = Vec::with_capacity(slots + 1);
        let mut at = 0usize;
        for slot in 0..=slots {
            while at < self.hashes.len() && ((self.hashes[at] >> self.shift) as usize) < slot {
                at += 1;
            }
            directory.push(at as u32);
        }
        self.directory = directory;
    }

    /// The base positions holding `key`.
    fn base_range(&self, key: u64) -> std::ops::Range<usize> {
        if self.hashes.is_empty() {
            return 0..0;
        }
        let slot = (key >> self.shift) as usize;
        let (lo, hi) = (
            self.directory[slot] as usize,
            self.directory[slot + 1] as usize,
        );
        let run = &self.hashes[lo..hi];
        let start = lo + run.partition_point(|&h| h < key);
        let end = lo + run.partition_point(|&h| h <= key);
        start..end
    }

    fn members(&self, key: u64) -> impl Iterator<Item = RecordId> + '_ {
        self.base_range(key)
            .filter(|at| !self.removed.contains(at))
            .map(|at| self.ids[at])
            .chain(self.added.get(&key).into_iter().flatten().copied())
    }

    fn count(&self, key: u64) -> usize {
        let base = if self.removed.is_empty() {
            self.base_range(key).len()
        } else {
            self.base_range(key)
                .filter(|at| !self.removed.contains(at))
                .count()
        };
        base + self.added.get(&key).map_or(0, Vec::len)
    }

    fn insert(&mut self, key: u64, id: RecordId) {
        self.added.entry(key).or_default().push(id);
        self.added_len += 1;
        if self.added_len > 4096 && self.added_len > self.hashes.len() / 8 {
            self.merge();
        }
    }

    fn remove(&mut self, key: u64, id: RecordId) {
        if let Some(list) = self.added.get_mut(&key)
            && let Some(at) = list.iter().position(|&x| x == id)
        {
            list.swap_remove(at);
            self.added_len -= 1;
            if list.is_empty() {
                self.added.remove(&key);
            }
            return;
        }
        if let Some(at) = self
            .base_range(key)
            .find(|&at| self.ids[at] == id && !self.removed.contains(&at))
        {
            self.removed.insert(at);
        }
    }

    /// Folds the added keys into the base.
    fn merge(&mut self) {
        let mut entries: Vec<(u64, u32)> = (0..self.hashes.len())
            .filter(|at| !self.removed.contains(at))
            .map(|at| (self.hashes[at], self.ids[at]))
            .collect();
        for (&key, ids) in &self.added {
            entries.extend(ids.iter().map(|&id| (key, id)));
        }
        entries.sort_unstable();
        self.set_base(entries);
    }

    fn heap_bytes(&self) -> usize {
        self.hashes.capacity() * 8
            + self.ids.capacity() * 4
            + self.directory.capacity() * 4
            + self.removed.capacity() * 9
            + self.added.capacity() * 33
            + self.added.values().map(|v| v.capacity() * 4).sum::<usize>()
    }
}
