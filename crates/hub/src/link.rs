//! Exact-match linking: records that share a normalised e-mail address,
//! phone number or external id belong to the same party.
//!
//! This is the foundation's rule until the resolver replaces it. What stays
//! when it does is the id policy below, which keeps party ids stable:
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
use kith_store::StoredRecord;
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
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind((0..n).collect())
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        // The smaller index is the root, so clusters do not depend on union order.
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}

impl Hub {
    /// Links every record of the index into parties by exact identifiers.
    pub async fn link(&self, observer: &dyn SyncObserver) -> Result<LinkReport> {
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
                by_identifier.entry(id.as_str()).or_default().push(i);
            }
        }
        let mut uf = UnionFind::new(records.len());
        for (id, members) in &by_identifier {
            if members.len() > self.settings.common_identifier_limit {
                report.common_identifiers.push((*id).to_string());
                continue;
            }
            for w in members.windows(2) {
                uf.union(w[0], w[1]);
            }
        }
        let mut clusters: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..records.len() {
            clusters.entry(uf.find(i)).or_default().push(i);
        }
        let clusters: Vec<Vec<usize>> = clusters.into_values().collect();

        // Prior ids and their homes.
        let parties: HashMap<PartyId, Party> = self
            .store
            .parties()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
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
                let link =
                    self.evidence(r, members, &records, &id, &report.common_identifiers, now);
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
        report.links_changed = links.len() as u64;
        self.store.create_parties(&created).await?;
        for chunk in links.chunks(1000) {
            self.store.set_links(chunk).await?;
        }
        for p in homeless {
            self.store.retire_party(&p.id).await?;
            report.retired += 1;
        }
        report.parties = final_ids.len() as u64;

        let relationships = derive_relationships(&records, &clusters, &final_ids);
        report.relationships = relationships.len() as u64;
        self.store.replace_relationships(&relationships).await?;
        Ok(report)
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
            if common.contains(id) {
                continue;
            }
            let others: Vec<String> = members
                .iter()
                .map(|&j| &records[j])
                .filter(|o| o.record.record != r.record.record && o.identifiers.contains(id))
                .map(|o| o.record.record.to_string())
                .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_roots_are_order_independent() {
        let mut a = UnionFind::new(4);
        a.union(3, 2);
        a.union(2, 0);
        let mut b = UnionFind::new(4);
        b.union(0, 2);
        b.union(2, 3);
        for i in 0..4 {
            assert_eq!(a.find(i), b.find(i));
        }
        assert_eq!(a.find(1), 1);
    }
}
