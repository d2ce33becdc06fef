//! Linking: which records belong to the same party.
//!
//! Records that share a normalised e-mail address, phone number or external
//! id are always linked (a deterministic rule). When a trained model is loaded
//! ([`Hub::set_model`]), candidate pairs from the resolver's blocking rules are
//! scored too, and pairs at or above the model's threshold link as well; the
//! resolver's clustering then splits clusters that conflict on a strong
//! identifier, so one weak edge cannot chain two people together.
//!
//! Whatever decides the clusters, party ids follow one policy:
//!
//! - every prior party id has a *home* cluster: the one holding its founding
//!   record, or (when that record is gone) the one holding most of its records;
//! - a cluster that is home to several ids keeps the oldest and redirects the
//!   others to it (a merge);
//! - a cluster that is home to none gets a new id (a split-off part, or new people);
//! - an id that is home to no cluster any more is retired.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Utc;
use kith_model::{
    Link, Party, PartyId, PartyKind, RecordRef, RelationKind, Relationship, normalize,
};
use kith_store::{ReviewStatus, StoredRecord};
use serde::Serialize;

use crate::{Hub, Result, SyncObserver};

/// What a linking run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkReport {
    pub records: u64,
    pub parties: u64,
    pub new_parties: u64,
    pub merged: u64,
    pub retired: u64,
    pub links_changed: u64,
    /// Identifiers ignored because too many records share them.
    pub common_identifiers: Vec<String>,
    pub relationships: u64,
    /// Pairs the resolver's blocking rules proposed (0 without a model).
    pub candidate_pairs: u64,
    /// Blocks skipped because too many records share their key.
    pub skipped_blocks: u64,
    /// Pairs the model would link that a never-link rule refused.
    pub vetoed: u64,
    /// The same, by the name of the rule that refused them.
    pub vetoed_by: BTreeMap<String, u64>,
    /// Pairs in the model's uncertain band put in the review queue this run.
    pub queued_for_review: u64,
    /// Review decisions (accepted or rejected pairs) applied.
    pub decisions: u64,
    /// Only what changed was resolved ([`Hub::link_changes`]), not every record.
    pub incremental: bool,
    /// Records the change feed said were inserted, updated or removed (incremental runs).
    pub changed_records: u64,
    /// Records whose party was settled again: the changed ones and every
    /// party they left or joined (incremental runs).
    pub affected_records: u64,
    /// Why an incremental run handed over to a full one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_because: Option<String>,
}

impl Hub {
    /// Links every record of the index into parties (a full run): shared
    /// identifiers, accepted pairs and, with a model, the model's matches.
    /// The incremental state ([`Hub::link_changes`]) is rebuilt when next needed.
    pub async fn link(&self, observer: &dyn SyncObserver) -> Result<LinkReport> {
        let mut resolver = self.link_lock.lock().await;
        *resolver = None;
        let (report, built) = self.link_all(observer).await?;
        *resolver = built;
        Ok(report)
    }

    /// The full run, and (when this hub links incrementally) the resolver
    /// built from what it linked.
    pub(crate) async fn link_all(
        &self,
        observer: &dyn SyncObserver,
    ) -> Result<(LinkReport, Option<crate::incremental::Resolver>)> {
        let seq = self.store.latest_change_seq().await?;
        let records = self.store.records().await?;
        observer.linking(records.len() as u64);
        let now = Utc::now();
        let mut report = LinkReport {
            records: records.len() as u64,
            ..Default::default()
        };

        // Cluster by shared identifiers, ignoring ones that are too common to mean a person.
        let mut by_identifier: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            for id in &r.identifiers {
                if self.settings.links_by_itself(id) {
                    by_identifier.entry(id.as_str()).or_default().push(i);
                }
            }
        }
        // People's review decisions, by record index: accepted pairs always
        // link, rejected pairs never link directly.
        let position: HashMap<&RecordRef, u32> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (&r.record.record, i as u32))
            .collect();
        let mut accepted: Vec<(u32, u32)> = Vec::new();
        let mut rejected: std::collections::HashSet<(u32, u32)> = Default::default();
        let mut decided: std::collections::HashSet<(u32, u32)> = Default::default();
        for pair in self.store.review_pairs(None).await? {
            let (Some(&a), Some(&b)) = (position.get(&pair.a), position.get(&pair.b)) else {
                continue;
            };
            let key = (a.min(b), a.max(b));
            match pair.status {
                ReviewStatus::Accepted => {
                    accepted.push(key);
                    decided.insert(key);
                }
                // A customer's "this isn't me" holds until staff decide.
                ReviewStatus::Rejected | ReviewStatus::Disputed => {
                    rejected.insert(key);
                    decided.insert(key);
                }
                ReviewStatus::Pending => {}
            }
        }
        let mut exact: Vec<(u32, u32)> = Vec::new();
        for (id, members) in &by_identifier {
            if members.len() > self.settings.common_identifier_limit {
                report.common_identifiers.push((*id).to_string());
                continue;
            }
            // Every pair (groups are small), so one rejected pair does not
            // cut the others that share the identifier apart.
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let key = (a as u32, b as u32);
                    if !rejected.contains(&key) {
                        exact.push(key);
                    }
                }
            }
        }
        exact.extend(accepted.iter().copied());
        report.decisions = decided.len() as u64;
        let mut scored: HashMap<(u32, u32), f64> = HashMap::new();
        let mut prepared_all: Option<Vec<kith_resolve::Prepared>> = None;
        let clusters: Vec<Vec<usize>> = match &self.model {
            None => {
                // Rejected and disputed pairs are cannot-link constraints: they
                // stay apart even when other records connect them.
                let edges: Vec<(u32, u32, f64)> = exact.iter().map(|&(a, b)| (a, b, 1.0)).collect();
                let labels = kith_resolve::cluster_constrained(
                    records.len(),
                    &edges,
                    &kith_resolve::ClusterOptions {
                        threshold: 0.0,
                        guard: false,
                        ..Default::default()
                    },
                    |_, _| false,
                    &rejected,
                );
                group_by_label(labels)
            }
            Some(model) => {
                let prepared = self.prepare(&records);
                let (pairs, blocking) =
                    kith_resolve::Blocking::default().candidate_pairs(&prepared);
                report.candidate_pairs = pairs.len() as u64;
                report.skipped_blocks = blocking
                    .rules
                    .iter()
                    .map(|r| r.skipped_block_count as u64)
                    .sum();
                let mut edges: Vec<(u32, u32, f64)> = Vec::new();
                let mut unsure: Vec<(RecordRef, RecordRef, f64)> = Vec::new();
                for (a, b, p) in kith_resolve::score_pairs(model, &prepared, &pairs) {
                    let key = (a.min(b), a.max(b));
                    if rejected.contains(&key) {
                        continue;
                    }
                    let veto = self.never_link(&prepared[a as usize], &prepared[b as usize]);
                    if model.decide(p).review && !decided.contains(&key) && veto.is_none() {
                        unsure.push((
                            records[a as usize].record.record.clone(),
                            records[b as usize].record.record.clone(),
                            p,
                        ));
                    }
                    if p < model.threshold {
                        continue;
                    }
                    if let Some(rule) = veto {
                        report.vetoed += 1;
                        *report.vetoed_by.entry(rule.to_string()).or_default() += 1;
                        continue;
                    }
                    scored.insert((a.min(b), a.max(b)), p);
                    edges.push((a, b, p));
                }
                report.queued_for_review = unsure.len() as u64;
                self.store.queue_for_review(&unsure, now).await?;
                // Shared identifiers and accepted pairs always link, whatever the model says.
                edges.extend(exact.iter().map(|&(a, b)| (a, b, 1.0)));
                let labels = kith_resolve::cluster_constrained(
                    prepared.len(),
                    &edges,
                    &kith_resolve::ClusterOptions {
                        threshold: model.threshold,
                        ..Default::default()
                    },
                    |i, j| {
                        kith_resolve::conflict(&prepared[i as usize], &prepared[j as usize])
                            .is_some()
                    },
                    &rejected,
                );
                prepared_all = Some(prepared);
                group_by_label(labels)
            }
        };

        let parties = self.store.parties().await?;
        let common = report.common_identifiers.clone();
        let final_ids = self
            .settle(
                &records,
                &clusters,
                parties,
                &scored,
                &common,
                &mut report,
                now,
            )
            .await?;
        report.parties = final_ids.len() as u64;

        let relationships = derive_relationships(&records, &clusters, &final_ids);
        report.relationships = relationships.len() as u64;
        self.store.replace_relationships(&relationships).await?;
        let resolver = if self.incremental && !records.is_empty() {
            let prepared = prepared_all.unwrap_or_else(|| self.prepare(&records));
            Some(self.build_resolver(&records, prepared, seq).await?)
        } else {
            None
        };
        Ok((report, resolver))
    }

    /// Gives each cluster its party id by the id policy (module docs) and
    /// writes what changed: new parties, merges, links, retirements.
    /// `records` and `parties` may be a part of the index, as long as every
    /// cluster and every prior party touching that part lies wholly in it;
    /// `scored` holds the model's probabilities by position in `records`.
    /// Returns each cluster's id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn settle(
        &self,
        records: &[StoredRecord],
        clusters: &[Vec<usize>],
        parties: Vec<Party>,
        scored: &HashMap<(u32, u32), f64>,
        common: &[String],
        report: &mut LinkReport,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<PartyId>> {
        // Prior ids and their homes.
        let parties: HashMap<PartyId, Party> =
            parties.into_iter().map(|p| (p.id.clone(), p)).collect();
        let index_of: HashMap<&RecordRef, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (&r.record.record, i))
            .collect();
        let mut cluster_of = vec![0usize; records.len()];
        for (c, members) in clusters.iter().enumerate() {
            for &m in members {
                cluster_of[m] = c;
            }
        }
        let mut counts: HashMap<&PartyId, BTreeMap<usize, usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if let Some(p) = &r.party {
                *counts
                    .entry(p)
                    .or_default()
                    .entry(cluster_of[i])
                    .or_default() += 1;
            }
        }
        let mut homes: BTreeMap<usize, Vec<&Party>> = BTreeMap::new();
        let mut homeless: Vec<&Party> = Vec::new();
        for party in parties.values() {
            let home = match index_of.get(&party.founding_record) {
                Some(&i) => Some(cluster_of[i]),
                None => counts.get(&party.id).and_then(|by_cluster| {
                    by_cluster
                        .iter()
                        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                        .map(|(c, _)| *c)
                }),
            };
            match home {
                Some(c) => homes.entry(c).or_default().push(party),
                None => homeless.push(party),
            }
        }

        // Decide each cluster's id.
        let mut links: Vec<Link> = Vec::new();
        let mut created: Vec<Party> = Vec::new();
        let mut final_ids: Vec<PartyId> = Vec::with_capacity(clusters.len());
        for (c, members) in clusters.iter().enumerate() {
            let mut claimants = homes.remove(&c).unwrap_or_default();
            claimants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            let id = match claimants.split_first() {
                Some((keeper, merged)) => {
                    for m in merged {
                        self.store.redirect_party(&m.id, &keeper.id, now).await?;
                        report.merged += 1;
                    }
                    keeper.id.clone()
                }
                None => {
                    let founding = members
                        .iter()
                        .map(|&i| &records[i])
                        .min_by(|a, b| {
                            a.first_seen
                                .cmp(&b.first_seen)
                                .then(a.record.record.cmp(&b.record.record))
                        })
                        .expect("clusters are not empty");
                    let party = Party {
                        id: PartyId::generate(now),
                        kind: cluster_kind(members.iter().map(|&i| &records[i])),
                        created_at: now,
                        founding_record: founding.record.record.clone(),
                    };
                    report.new_parties += 1;
                    let id = party.id.clone();
                    created.push(party);
                    id
                }
            };
            for &i in members {
                let r = &records[i];
                let mut link = self.evidence(r, members, records, &id, common, now);
                model_evidence(&mut link, i, members, records, scored);
                // Rewrite a link when its party or its evidence changed (a record
                // first linked alone gains evidence when someone joins it).
                let same = r.party.as_ref() == Some(&id)
                    && r.rule.as_deref() == Some(link.rule.as_str())
                    && r.evidence == link.evidence;
                if !same {
                    links.push(link);
                }
            }
            final_ids.push(id);
        }
        report.links_changed += links.len() as u64;
        self.store.create_parties(&created).await?;
        for chunk in links.chunks(1000) {
            self.store.set_links(chunk).await?;
        }
        for p in homeless {
            self.store.retire_party(&p.id).await?;
            report.retired += 1;
        }
        Ok(final_ids)
    }

    /// The name of the configured never-link rule that vetoes a pair
    /// (`[[hub.never_link]]`, kith's defaults when none are configured).
    pub(crate) fn never_link(
        &self,
        a: &kith_resolve::Prepared,
        b: &kith_resolve::Prepared,
    ) -> Option<&str> {
        if self.settings.never_link.is_empty() {
            return None;
        }
        kith_resolve::vetoed_by(&self.settings.never_link, &kith_resolve::compare(a, b))
            .map(|r| r.name.as_str())
    }

    /// Why a record belongs to its cluster: the identifiers it shares with the others.
    fn evidence(
        &self,
        r: &StoredRecord,
        members: &[usize],
        records: &[StoredRecord],
        party: &PartyId,
        common: &[String],
        now: chrono::DateTime<Utc>,
    ) -> Link {
        let mut evidence = Vec::new();
        let mut rules = BTreeSet::new();
        for id in &r.identifiers {
            if common.contains(id) || !self.settings.links_by_itself(id) {
                continue;
            }
            // In record order, whatever order the caller holds them in.
            let mut others: Vec<&RecordRef> = members
                .iter()
                .map(|&j| &records[j])
                .filter(|o| o.record.record != r.record.record && o.identifiers.contains(id))
                .map(|o| &o.record.record)
                .collect();
            others.sort();
            let others: Vec<String> = others.iter().map(|o| o.to_string()).collect();
            if !others.is_empty() {
                let kind = id.split(':').next().unwrap_or("id");
                rules.insert(kind.to_string());
                evidence.push(format!(
                    "same {kind} {} as {}",
                    display_identifier(id),
                    others.join(", ")
                ));
            }
        }
        let rule = if rules.is_empty() {
            "single".to_string()
        } else {
            format!("exact:{}", rules.into_iter().collect::<Vec<_>>().join("+"))
        };
        Link {
            record: r.record.record.clone(),
            party: party.clone(),
            rule,
            score: 1.0,
            evidence,
            linked_at: now,
        }
    }
}

/// Adds the model's matches to a record's evidence: the members it scored
/// above the threshold with, and the rule `model` when nothing exact links it.
fn model_evidence(
    link: &mut Link,
    i: usize,
    members: &[usize],
    records: &[StoredRecord],
    scored: &HashMap<(u32, u32), f64>,
) {
    let mut matches: Vec<(f64, &RecordRef)> = members
        .iter()
        .filter(|&&j| j != i)
        .filter_map(|&j| {
            let key = ((i.min(j)) as u32, (i.max(j)) as u32);
            scored.get(&key).map(|p| (*p, &records[j].record.record))
        })
        .collect();
    if matches.is_empty() {
        return;
    }
    matches.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    for (p, other) in matches.iter().take(3) {
        link.evidence
            .push(format!("model: match probability {p:.3} with {other}"));
    }
    if link.rule == "single" {
        link.rule = "model".into();
        link.score = matches[0].0;
    }
}

/// Positions grouped by their cluster label, clusters in label order.
pub(crate) fn group_by_label(labels: impl IntoIterator<Item = u32>) -> Vec<Vec<usize>> {
    let mut clusters: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.into_iter().enumerate() {
        clusters.entry(l).or_default().push(i);
    }
    clusters.into_values().collect()
}

fn display_identifier(id: &str) -> &str {
    match id.split_once(':') {
        Some(("id", rest)) => rest,
        Some((_, rest)) => rest,
        None => id,
    }
}

fn cluster_kind<'a>(mut records: impl Iterator<Item = &'a StoredRecord>) -> PartyKind {
    if records.any(|r| r.record.kind == PartyKind::Organisation) {
        PartyKind::Organisation
    } else {
        PartyKind::Person
    }
}

/// Households (people at the same street and postcode) and employment (a
/// person whose organisation name is an organisation party's name).
fn derive_relationships(
    records: &[StoredRecord],
    clusters: &[Vec<usize>],
    ids: &[PartyId],
) -> Vec<Relationship> {
    let mut at_address: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
    let mut org_by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut works_for: Vec<(usize, String)> = Vec::new();
    for (c, members) in clusters.iter().enumerate() {
        for &i in members {
            let r = &records[i].record;
            let a = &r.attrs;
            match r.kind {
                PartyKind::Person => {
                    if let (Some(street), Some(pc)) = (&a.street, &a.postcode) {
                        let key = (normalize::text(street), normalize::postcode(pc));
                        if !key.0.is_empty() && !key.1.is_empty() {
                            at_address.entry(key).or_default().insert(c);
                        }
                    }
                    if let Some(org) = &a.org_name {
                        works_for.push((c, normalize::text(org)));
                    }
                }
                PartyKind::Organisation => {
                    if let Some(name) = a.org_name.as_ref().or(a.full_name.as_ref()) {
                        org_by_name.entry(normalize::text(name)).or_insert(c);
                    }
                }
            }
        }
    }
    let mut out: BTreeSet<(usize, usize, RelationKind, String)> = BTreeSet::new();
    for ((street, pc), parties) in &at_address {
        // A block of flats or a care home is not a household.
        if parties.len() < 2 || parties.len() > 8 {
            continue;
        }
        let v: Vec<usize> = parties.iter().copied().collect();
        for (i, &a) in v.iter().enumerate() {
            for &b in &v[i + 1..] {
                out.insert((
                    a,
                    b,
                    RelationKind::Household,
                    format!("same address: {street}, {pc}"),
                ));
            }
        }
    }
    for (person, org) in works_for {
        if let Some(&o) = org_by_name.get(&org)
            && o != person
        {
            out.insert((
                person,
                o,
                RelationKind::EmployeeOf,
                format!("organisation name: {org}"),
            ));
        }
    }
    out.into_iter()
        .map(|(a, b, kind, evidence)| Relationship {
            from: ids[a].clone(),
            to: ids[b].clone(),
            kind,
            evidence,
        })
        .collect()
}
