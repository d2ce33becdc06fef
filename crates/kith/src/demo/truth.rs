//! Scoring kith's linking against the demo's answer key.
//!
//! `kith demo` writes `truth.csv` (`source,key,entity`): who each good source
//! record really belongs to. kith never reads it. `kith resolve --export`
//! writes `source,key,party_id` for every record kith holds. [`score`]
//! compares the two the usual way for entity resolution: over all pairs of
//! records, a pair is *predicted* when both are in one party and *true* when
//! both belong to one entity, and
//!
//! - precision = correct predicted pairs / predicted pairs (low: over-merging),
//! - recall = correct predicted pairs / true pairs (low: splitting),
//! - F1 = their harmonic mean.
//!
//! The pairs are counted from the (party, entity) contingency table, so
//! scoring is linear in the number of records, not quadratic.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Examples of each kind of mistake listed in a [`Score`].
pub const EXAMPLES: usize = 10;

/// How well a kith export matches the answer key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Records in the answer key; only these are scored.
    pub records: usize,
    /// Answer-key records the export does not list; each is scored as a
    /// party of its own.
    pub missing: usize,
    /// Answer-key records the export lists without a party; each is scored
    /// as a party of its own.
    pub unassigned: usize,
    /// Export records not in the answer key (e.g. quarantined rows); ignored.
    pub unknown: usize,
    /// Parties among the scored records (missing and unassigned ones count
    /// one each).
    pub parties: usize,
    /// Real persons and organisations among the scored records.
    pub entities: usize,
    /// Pairs of records in one party.
    pub predicted_pairs: u64,
    /// Pairs of records of one entity.
    pub true_pairs: u64,
    /// Pairs of records in one party that are of one entity.
    pub correct_pairs: u64,
    /// `correct_pairs / predicted_pairs`, 1 when nothing was linked.
    pub precision: f64,
    /// `correct_pairs / true_pairs`, 1 when nothing should have been linked.
    pub recall: f64,
    /// The harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Parties holding records of two or more entities.
    pub over_merged_parties: usize,
    /// Entities whose records are in two or more parties.
    pub split_entities: usize,
    /// Up to [`EXAMPLES`] over-merged parties, most entities first: the party
    /// id and its records as `source:key`, grouped by entity.
    pub over_merged: Vec<(String, Vec<String>)>,
    /// Up to [`EXAMPLES`] split entities, most parties first: the entity and
    /// its records as `source:key`, grouped by party.
    pub split: Vec<(String, Vec<String>)>,
}

/// Scores the export `export` (`source,key,party_id`, as written by
/// `kith resolve --export`) against the answer key `truth`
/// (`source,key,entity`, as written by `kith demo`).
pub fn score(truth: &Path, export: &Path) -> Result<Score> {
    let t = File::open(truth).with_context(|| format!("cannot read {}", truth.display()))?;
    let e = File::open(export).with_context(|| format!("cannot read {}", export.display()))?;
    score_from(t, e).with_context(|| {
        format!(
            "cannot score {} against {}",
            export.display(),
            truth.display()
        )
    })
}

/// A scored record: indexes into the entity and party tables.
struct Rec {
    label: String,
    entity: usize,
    party: Option<usize>,
}

/// Strings numbered in order of first appearance.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, usize>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len();
        self.ids.insert(s.to_string(), i);
        self.names.push(s.to_string());
        i
    }
}

/// The rows of a three-column CSV whose header must be `source,key,<third>`.
fn rows(input: impl Read, third: &str) -> Result<Vec<[String; 3]>> {
    let mut rdr = csv::Reader::from_reader(input);
    let header: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
    let want = ["source", "key", third];
    let Some(at) = want
        .iter()
        .map(|w| header.iter().position(|h| h == w))
        .collect::<Option<Vec<usize>>>()
    else {
        bail!("expected the columns {want:?}, found {header:?}");
    };
    let mut out = Vec::new();
    for r in rdr.records() {
        let r = r?;
        let field = |i: usize| r.get(at[i]).unwrap_or("").to_string();
        out.push([field(0), field(1), field(2)]);
    }
    Ok(out)
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

fn score_from(truth: impl Read, export: impl Read) -> Result<Score> {
    let mut entities = Interner::default();
    let mut recs: Vec<Rec> = Vec::new();
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for [source, key, entity] in rows(truth, "entity").context("in the answer key")? {
        if entity.is_empty() {
            bail!("the answer key gives {source}:{key} no entity");
        }
        let label = format!("{source}:{key}");
        if by_key.insert((source, key), recs.len()).is_some() {
            bail!("the answer key lists {label} twice");
        }
        recs.push(Rec {
            label,
            entity: entities.id(&entity),
            party: None,
        });
    }

    let mut parties = Interner::default();
    let mut seen = vec![false; recs.len()];
    let (mut unknown, mut unassigned) = (0, 0);
    for [source, key, party] in rows(export, "party_id").context("in the export")? {
        let Some(&i) = by_key.get(&(source, key)) else {
            unknown += 1;
            continue;
        };
        if std::mem::replace(&mut seen[i], true) {
            bail!("the export lists {} twice", recs[i].label);
        }
        if party.is_empty() {
            unassigned += 1;
        } else {
            recs[i].party = Some(parties.id(&party));
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();

    // Records without a party are parties of their own, numbered after the
    // real ones; they have no id to show, but they are never over-merged.
    let named_parties = parties.names.len();
    let mut next = named_parties;
    let party_of: Vec<usize> = recs
        .iter()
        .map(|r| {
            r.party.unwrap_or_else(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let n_parties = next;
    let n_entities = entities.names.len();

    let mut party_size = vec![0u64; n_parties];
    let mut entity_size = vec![0u64; n_entities];
    let mut cells: HashMap<(usize, usize), u64> = HashMap::new();
    for (r, &p) in recs.iter().zip(&party_of) {
        party_size[p] += 1;
        entity_size[r.entity] += 1;
        *cells.entry((p, r.entity)).or_default() += 1;
    }
    let predicted_pairs: u64 = party_size.iter().map(|&n| pairs(n)).sum();
    let true_pairs: u64 = entity_size.iter().map(|&n| pairs(n)).sum();
    let correct_pairs: u64 = cells.values().map(|&n| pairs(n)).sum();
    let precision = ratio(correct_pairs, predicted_pairs);
    let recall = ratio(correct_pairs, true_pairs);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };

    // Entities per party and parties per entity: the non-empty cells.
    let mut entities_in = vec![0usize; n_parties];
    let mut parties_of = vec![0usize; n_entities];
    for &(p, e) in cells.keys() {
        entities_in[p] += 1;
        parties_of[e] += 1;
    }
    let over: Vec<usize> = (0..n_parties).filter(|&p| entities_in[p] > 1).collect();
    let split: Vec<usize> = (0..n_entities).filter(|&e| parties_of[e] > 1).collect();

    // The worst first, ties by name, so the examples are stable.
    let mut worst_over = over.clone();
    worst_over.sort_by(|&a, &b| {
        (entities_in[b], &parties.names[a]).cmp(&(entities_in[a], &parties.names[b]))
    });
    worst_over.truncate(EXAMPLES);
    let mut worst_split = split.clone();
    worst_split.sort_by(|&a, &b| {
        (parties_of[b], &entities.names[a]).cmp(&(parties_of[a], &entities.names[b]))
    });
    worst_split.truncate(EXAMPLES);

    // Records grouped by the other side's name, then by label.
    let entity_name = |r: &Rec| entities.names[r.entity].clone();
    let party_name = |i: usize| match recs[i].party {
        Some(p) => parties.names[p].clone(),
        None => String::new(),
    };
    let mut over_members: HashMap<usize, Vec<(String, &str)>> =
        worst_over.iter().map(|&p| (p, Vec::new())).collect();
    let mut split_members: HashMap<usize, Vec<(String, &str)>> =
        worst_split.iter().map(|&e| (e, Vec::new())).collect();
    for (i, r) in recs.iter().enumerate() {
        if let Some(m) = over_members.get_mut(&party_of[i]) {
            m.push((entity_name(r), &r.label));
        }
        if let Some(m) = split_members.get_mut(&r.entity) {
            m.push((party_name(i), &r.label));
        }
    }
    let listed = |mut m: Vec<(String, &str)>| -> Vec<String> {
        m.sort();
        m.into_iter().map(|(_, label)| label.to_string()).collect()
    };
    let over_merged = worst_over
        .iter()
        .map(|p| {
            let m = over_members.remove(p).unwrap_or_default();
            (parties.names[*p].clone(), listed(m))
        })
        .collect();
    let split_examples = worst_split
        .iter()
        .map(|e| {
            let m = split_members.remove(e).unwrap_or_default();
            (entities.names[*e].clone(), listed(m))
        })
        .collect();

    Ok(Score {
        records: recs.len(),
        missing,
        unassigned,
        unknown,
        parties: n_parties,
        entities: n_entities,
        predicted_pairs,
        true_pairs,
        correct_pairs,
        precision,
        recall,
        f1,
        over_merged_parties: over.len(),
        split_entities: split.len(),
        over_merged,
        split: split_examples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six records of three entities: e1 has three, e2 two, e3 one, so
    /// there are 3 + 1 + 0 = 4 true pairs.
    const TRUTH: &str = "source,key,entity
shop,1,e1
shop,2,e1
support,C-1,e1
shop,3,e2
support,C-2,e2
shop,4,e3
";

    fn scored(export: &str) -> Score {
        score_from(TRUTH.as_bytes(), export.as_bytes()).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_perfect_export_scores_one() {
        let s = scored(
            "source,key,party_id
shop,1,P1
shop,2,P1
support,C-1,P1
shop,3,P2
support,C-2,P2
shop,4,P3
",
        );
        assert_eq!((s.records, s.parties, s.entities), (6, 3, 3), "{s:?}");
        assert_eq!(
            (s.predicted_pairs, s.true_pairs, s.correct_pairs),
            (4, 4, 4)
        );
        assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0));
        assert_eq!((s.missing, s.unassigned, s.unknown), (0, 0, 0));
        assert_eq!((s.over_merged_parties, s.split_entities), (0, 0));
        assert!(s.over_merged.is_empty() && s.split.is_empty());
    }

    #[test]
    fn an_over_merge_costs_precision() {
        // e1 and e2 in one party of five: C(5,2) = 10 predicted pairs, of
        // which 3 + 1 = 4 are right. P = 0.4, R = 1, F1 = 0.8 / 1.4 = 4/7.
        let s = scored(
            "source,key,party_id
shop,1,P1
shop,2,P1
support,C-1,P1
shop,3,P1
support,C-2,P1
shop,4,P3
",
        );
        assert_eq!((s.parties, s.entities), (2, 3));
        assert_eq!(
            (s.predicted_pairs, s.true_pairs, s.correct_pairs),
            (10, 4, 4)
        );
        assert!(close(s.precision, 0.4), "{}", s.precision);
        assert!(close(s.recall, 1.0));
        assert!(close(s.f1, 4.0 / 7.0), "{}", s.f1);
        assert_eq!((s.over_merged_parties, s.split_entities), (1, 0));
        assert_eq!(
            s.over_merged,
            [(
                "P1".to_string(),
                // Grouped by entity: e1's three, then e2's two.
                vec![
                    "shop:1".to_string(),
                    "shop:2".into(),
                    "support:C-1".into(),
                    "shop:3".into(),
                    "support:C-2".into(),
                ]
            )]
        );
        assert!(s.split.is_empty());
    }

    #[test]
    fn a_split_costs_recall() {
        // e1's support record on its own: predicted pairs 1 (P1a) + 1 (P2),
        // both right, of 4 true ones. P = 1, R = 0.5, F1 = 1 / 1.5 = 2/3.
        let s = scored(
            "source,key,party_id
shop,1,P1a
shop,2,P1a
support,C-1,P1b
shop,3,P2
support,C-2,P2
shop,4,P3
",
        );
        assert_eq!((s.parties, s.entities), (4, 3));
        assert_eq!(
            (s.predicted_pairs, s.true_pairs, s.correct_pairs),
            (2, 4, 2)
        );
        assert!(close(s.precision, 1.0));
        assert!(close(s.recall, 0.5));
        assert!(close(s.f1, 2.0 / 3.0), "{}", s.f1);
        assert_eq!((s.over_merged_parties, s.split_entities), (0, 1));
        assert!(s.over_merged.is_empty());
        assert_eq!(
            s.split,
            [(
                "e1".to_string(),
                vec!["shop:1".to_string(), "shop:2".into(), "support:C-1".into()]
            )]
        );
    }

    #[test]
    fn missing_unassigned_and_unknown_records() {
        // support:C-2 is missing and shop:4 has no party: both stand alone.
        // shop:9 and the quarantined row are not in the answer key. The only
        // predicted pairs are P1's 3, all right, of 4 true: R = 0.75.
        // Columns may come in any order.
        let s = scored(
            "party_id,source,key
P1,shop,1
P1,shop,2
P1,support,C-1
P2,shop,3
,shop,4
P9,shop,9
P9,shop,100003
",
        );
        assert_eq!((s.missing, s.unassigned, s.unknown), (1, 1, 2));
        assert_eq!((s.records, s.parties, s.entities), (6, 4, 3));
        assert_eq!(
            (s.predicted_pairs, s.true_pairs, s.correct_pairs),
            (3, 4, 3)
        );
        assert!(close(s.precision, 1.0));
        assert!(close(s.recall, 0.75));
        assert_eq!(s.split_entities, 1);
        // The missing record is listed with no party, so it sorts first.
        assert_eq!(
            s.split[0],
            (
                "e2".to_string(),
                vec!["support:C-2".to_string(), "shop:3".into()]
            )
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let err = |truth: &str, export: &str| {
            format!(
                "{:#}",
                score_from(truth.as_bytes(), export.as_bytes()).unwrap_err()
            )
        };
        let e = err(TRUTH, "source,key,party\nshop,1,P1\n");
        assert!(e.contains("party_id"), "{e}");
        let e = err(
            "source,key,entity\nshop,1,e1\nshop,1,e2\n",
            "source,key,party_id\n",
        );
        assert!(e.contains("shop:1 twice"), "{e}");
        let e = err(TRUTH, "source,key,party_id\nshop,1,P1\nshop,1,P2\n");
        assert!(e.contains("shop:1 twice"), "{e}");
    }

    #[test]
    fn scores_files_and_serialises() {
        let dir = tempfile::tempdir().unwrap();
        let truth = dir.path().join("truth.csv");
        let export = dir.path().join("export.csv");
        std::fs::write(&truth, TRUTH).unwrap();
        std::fs::write(
            &export,
            TRUTH.replace("entity", "party_id").replace(",e", ",P"),
        )
        .unwrap();
        let s = score(&truth, &export).unwrap();
        assert_eq!(s.f1, 1.0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["f1"], 1.0);
        assert_eq!(json["parties"], 3);
        let back: Score = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert!(score(&dir.path().join("nope.csv"), &export).is_err());
    }
}
