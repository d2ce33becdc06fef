//! The incremental path against the batch path: records added, changed and
//! removed one at a time end in the partition that blocking, scoring and
//! clustering all the records at once gives.

use std::collections::{BTreeMap, HashSet};

use kith_model::IdentityAttrs;
use kith_resolve::{
    BlockKey, BlockRule, Blocking, ClusterOptions, Index, LinkType, Model, NeverLinkRule,
    NormalizeOptions, Prepared, TrainOptions,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

const GIVEN: &[&str] = &[
    "ann", "anne", "bob", "robert", "carl", "dina", "emma", "fred", "gina", "hugo", "ivy", "jack",
    "kate", "liam", "mia", "noah", "olga", "paul", "peggy", "margaret", "bill", "william",
];
const FAMILY: &[&str] = &[
    "smith",
    "smyth",
    "jones",
    "brown",
    "taylor",
    "wilson",
    "davies",
    "evans",
    "thomas",
    "lee",
    "walker",
    "wright",
    "green",
    "hall",
    "wood",
    "harris",
    "zaborowski",
    "ng",
];

fn typo(s: &str, rng: &mut StdRng) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 2 {
        return format!("{s}x");
    }
    let i = rng.random_range(0..c.len() - 1);
    match rng.random_range(0..3) {
        0 => c.swap(i, i + 1),
        1 => {
            c.remove(i);
        }
        _ => c[i] = 'q',
    }
    c.into_iter().collect()
}

/// People with one to three records each, the copies with the mistakes of
/// real data: typos, swapped names, nicknames' formal forms, moves, ids and
/// dates missing or mistyped. Few names and postcodes, so that blocks are
/// crowded, links chain and the guard has work to do.
fn population(people: usize, seed: u64) -> Vec<IdentityAttrs> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..people {
        let base = IdentityAttrs {
            given_name: Some(GIVEN[rng.random_range(0..GIVEN.len())].into()),
            family_name: Some(FAMILY[rng.random_range(0..FAMILY.len())].into()),
            date_of_birth: Some(format!(
                "{}-{:02}-{:02}",
                rng.random_range(1950..1960),
                rng.random_range(1..13),
                rng.random_range(1..29)
            )),
            postcode: Some(format!("P{}", rng.random_range(0..25))),
            street: Some(format!("{} high street", rng.random_range(1..40))),
            external_ids: BTreeMap::from([(
                "ssn".to_string(),
                format!("{}", rng.random_range(10_000..10_400)),
            )]),
            ..Default::default()
        };
        out.push(base.clone());
        for _ in 0..rng.random_range(0..3) {
            let mut d = base.clone();
            match rng.random_range(0..7) {
                0 => d.given_name = d.given_name.map(|g| typo(&g, &mut rng)),
                1 => std::mem::swap(&mut d.given_name, &mut d.family_name),
                2 => d.date_of_birth = None,
                3 => d.postcode = Some(format!("P{}", rng.random_range(0..25))),
                4 => {
                    d.external_ids
                        .values_mut()
                        .for_each(|v| *v = typo(v, &mut rng));
                }
                5 => d.family_name = Some(FAMILY[rng.random_range(0..FAMILY.len())].into()),
                _ => d.external_ids.clear(),
            }
            out.push(d);
        }
    }
    out
}

fn prepare(attrs: &[IdentityAttrs]) -> Vec<Prepared> {
    attrs
        .iter()
        .map(|a| Prepared::new(a, &NormalizeOptions::default()))
        .collect()
}

fn blocking(max_block: usize, link_type: LinkType) -> Blocking {
    use BlockKey as K;
    Blocking {
        rules: vec![
            BlockRule::new(&[K::NamePair]),
            BlockRule::new(&[K::ExternalId]),
            BlockRule::new(&[K::DateOfBirth, K::GivenInitial]),
            BlockRule::new(&[K::Postcode, K::FamilyPhonetic]),
            BlockRule::new(&[K::ExternalIdOneEdit, K::FamilyInitial]),
        ],
        link_type,
        max_block,
    }
}

fn model(records: &[Prepared]) -> Model {
    Model::train(
        records,
        &TrainOptions {
            u_max_pairs: 20_000,
            min_pairs: 20,
            ..Default::default()
        },
    )
}

/// The batch path, as `kith-hub` runs it: block, score, drop rejected
/// pairs, add accepted ones as certain links, cluster under the rejections.
/// Returns the labels and the links at or above the threshold, `(i, j, p)`
/// with `i < j`, sorted.
fn batch(
    records: &[Prepared],
    model: &Model,
    blocking: &Blocking,
    opts: &ClusterOptions,
    forced: &[(u32, u32)],
    apart: &HashSet<(u32, u32)>,
    rules: &[NeverLinkRule],
) -> (Vec<u32>, Vec<(u32, u32, f64)>) {
    let (pairs, _) = blocking.candidate_pairs(records);
    let mut edges: Vec<(u32, u32, f64)> = kith_resolve::score_pairs(model, records, &pairs)
        .into_iter()
        .filter(|&(i, j, _)| !apart.contains(&(i, j)))
        .filter(|&(i, j, p)| {
            p < opts.threshold
                || kith_resolve::vetoed_by(
                    rules,
                    &kith_resolve::compare(&records[i as usize], &records[j as usize]),
                )
                .is_none()
        })
        .collect();
    edges.extend(forced.iter().map(|&(i, j)| (i, j, 1.0)));
    let labels = kith_resolve::cluster_constrained(
        records.len(),
        &edges,
        opts,
        |i, j| kith_resolve::conflict(&records[i as usize], &records[j as usize]).is_some(),
        apart,
    );
    let mut links: BTreeMap<(u32, u32), f64> = BTreeMap::new();
    for (i, j, p) in edges {
        if p >= opts.threshold {
            let slot = links.entry((i, j)).or_insert(p);
            *slot = slot.max(p);
        }
    }
    (
        labels,
        links.into_iter().map(|((i, j), p)| (i, j, p)).collect(),
    )
}

fn check(
    index: &Index,
    records: &[Prepared],
    model: &Model,
    blocking: &Blocking,
    rules: &[NeverLinkRule],
    what: &str,
) {
    let (want, want_links) = batch(
        records,
        model,
        blocking,
        &ClusterOptions::default(),
        &index.forced_links(),
        &index.kept_apart(),
        rules,
    );
    // The same links with the same probabilities, not only the same parties.
    let mut links = Vec::new();
    for i in 0..records.len() as u32 {
        links.extend(
            index
                .links(i)
                .iter()
                .filter(|l| l.0 > i)
                .map(|&(j, p)| (i, j, p)),
        );
    }
    links.sort_by_key(|l| (l.0, l.1));
    let missing: Vec<_> = want_links
        .iter()
        .filter(|l| !links.contains(l))
        .take(3)
        .collect();
    let extra: Vec<_> = links
        .iter()
        .filter(|l| !want_links.contains(l))
        .take(3)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: links differ from the batch path's: missing {missing:?}, extra {extra:?}"
    );
    let got = index.labels();
    let differ: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
    assert!(
        differ.is_empty(),
        "{what}: {} of {} records in another party than the batch path puts them, first {:?}",
        differ.len(),
        want.len(),
        differ
            .iter()
            .take(5)
            .map(|&i| (i, got[i], want[i]))
            .collect::<Vec<_>>()
    );
    // Not trivially equal: the population has parties of several records.
    let parties: HashSet<u32> = want.iter().copied().collect();
    assert!(
        want.len() < 100 || parties.len() < want.len() * 9 / 10,
        "{what}: too few links to test ({} parties of {} records)",
        parties.len(),
        want.len()
    );
}

/// One at a time from empty, then changes, removals and review decisions,
/// with a size guard small enough that blocks cross it both ways.
fn one_at_a_time_matches_batch(
    max_block: usize,
    link_type: LinkType,
    seed: u64,
    rules: &[NeverLinkRule],
) {
    let attrs = population(260, seed);
    let mut records = prepare(&attrs);
    if link_type == LinkType::LinkOnly {
        records = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.with_dataset((i % 2) as u16))
            .collect();
    }
    let model = model(&records);
    let blocking = blocking(max_block, link_type);
    let mut index = Index::new(model.clone(), blocking.clone(), ClusterOptions::default())
        .with_never_link(rules.to_vec());
    for (n, r) in records.iter().enumerate() {
        let before = index.resolve_one(r);
        let labels_before = index.labels().to_vec();
        let res = index.insert(r.clone()).unwrap();
        // The records said to have moved are those whose party changed.
        let changed: Vec<u32> = (0..=n as u32)
            .filter(|&i| {
                labels_before.get(i as usize).copied().unwrap_or(i) != index.labels()[i as usize]
            })
            .collect();
        assert_eq!(res.moved, changed, "record {n}");
        assert_eq!(res.id as usize, n);
        assert_eq!(res.candidates, before.candidates, "record {n}");
        assert_eq!(res.best, before.best, "record {n}");
        assert_eq!(res.party, index.labels()[n]);
        if n % 97 == 0 {
            check(
                &index,
                &records[..=n],
                &model,
                &blocking,
                rules,
                "while adding",
            );
        }
    }
    check(
        &index,
        &records,
        &model,
        &blocking,
        rules,
        "added one at a time",
    );

    // A bulk-built index, with the rest added one at a time, agrees too.
    let half = records.len() / 2;
    let mut bulk = Index::new(model.clone(), blocking.clone(), ClusterOptions::default())
        .with_never_link(rules.to_vec())
        .fill(records[..half].to_vec())
        .unwrap();
    for r in &records[half..] {
        bulk.insert(r.clone()).unwrap();
    }
    assert_eq!(bulk.labels(), index.labels(), "bulk-built then added");

    // Sources change records: some become copies of other people, some get
    // typos, some are deleted.
    let mut rng = StdRng::seed_from_u64(seed + 1);
    for step in 0..60 {
        let id = rng.random_range(0..records.len()) as u32;
        let new = if step % 6 == 5 {
            index.remove(id).unwrap();
            Prepared::default()
        } else {
            let mut a = attrs[rng.random_range(0..attrs.len())].clone();
            if step % 2 == 0 {
                a.given_name = a.given_name.map(|g| typo(&g, &mut rng));
            }
            let mut p = Prepared::new(&a, &NormalizeOptions::default());
            if link_type == LinkType::LinkOnly {
                p = p.with_dataset(records[id as usize].dataset());
            }
            index.update(id, p.clone()).unwrap();
            p
        };
        records[id as usize] = new;
        if step % 10 == 9 {
            check(&index, &records, &model, &blocking, rules, "after changes");
        }
    }
    check(&index, &records, &model, &blocking, rules, "after changes");

    // Review decisions: links people accepted and pairs they rejected.
    let labels = index.labels().to_vec();
    let mut decided = 0;
    for i in 0..records.len() as u32 {
        let j = labels[i as usize];
        if j != i && decided < 12 {
            index.keep_apart(i, j).unwrap();
            decided += 1;
        }
    }
    let mut forced = Vec::new();
    for _ in 0..12 {
        let (a, b) = (
            rng.random_range(0..records.len()) as u32,
            rng.random_range(0..records.len()) as u32,
        );
        if a != b {
            index.force_link(a, b).unwrap();
            forced.push((a, b));
        }
    }
    check(
        &index,
        &records,
        &model,
        &blocking,
        rules,
        "after review decisions",
    );
    // Forced links taken back (the identifier that forced them is gone):
    // the pair links again only as the model says.
    for &(a, b) in forced.iter().step_by(2) {
        let labels_before = index.labels().to_vec();
        let moved = index.unforce(a, b).unwrap();
        let changed: Vec<u32> = (0..records.len() as u32)
            .filter(|&i| labels_before[i as usize] != index.labels()[i as usize])
            .collect();
        assert_eq!(moved, changed, "unforce {a} {b}");
        assert_eq!(index.unforce(a, b).unwrap(), Vec::<u32>::new(), "twice");
    }
    check(
        &index,
        &records,
        &model,
        &blocking,
        rules,
        "after forced links were taken back",
    );
    // A party's members are the records with its label.
    for i in (0..records.len() as u32).step_by(7) {
        let label = index.labels()[i as usize];
        let want: Vec<u32> = (0..records.len() as u32)
            .filter(|&j| index.labels()[j as usize] == label)
            .collect();
        assert_eq!(index.party_members(i), want, "members of {i}'s party");
    }
    // And changes after decisions.
    for _ in 0..20 {
        let id = rng.random_range(0..records.len()) as u32;
        let a = attrs[rng.random_range(0..attrs.len())].clone();
        let mut p = Prepared::new(&a, &NormalizeOptions::default());
        if link_type == LinkType::LinkOnly {
            p = p.with_dataset(records[id as usize].dataset());
        }
        index.update(id, p.clone()).unwrap();
        records[id as usize] = p;
    }
    check(
        &index,
        &records,
        &model,
        &blocking,
        rules,
        "after changes to decided records",
    );
}

/// With kith's never-link rules the index vetoes what the batch path
/// vetoes; the population's look-alikes make sure some pairs are vetoed.
#[test]
fn incremental_resolution_with_never_link_rules_matches_the_batch_path() {
    let rules = kith_resolve::default_never_link();
    let records = prepare(&population(260, 4));
    let model = model(&records);
    let (pairs, _) = blocking(1000, LinkType::Dedupe).candidate_pairs(&records);
    let vetoed = kith_resolve::score_pairs(&model, &records, &pairs)
        .into_iter()
        .filter(|&(i, j, p)| {
            p >= model.threshold
                && kith_resolve::vetoed_by(
                    &rules,
                    &kith_resolve::compare(&records[i as usize], &records[j as usize]),
                )
                .is_some()
        })
        .count();
    assert!(
        vetoed > 0,
        "the rules veto nothing here: the test would prove nothing"
    );
    one_at_a_time_matches_batch(1000, LinkType::Dedupe, 4, &rules);
    one_at_a_time_matches_batch(6, LinkType::Dedupe, 5, &rules);
}

#[test]
fn incremental_resolution_matches_the_batch_path() {
    one_at_a_time_matches_batch(1000, LinkType::Dedupe, 1, &[]);
}

#[test]
fn incremental_resolution_matches_the_batch_path_when_blocks_cross_the_guard() {
    one_at_a_time_matches_batch(6, LinkType::Dedupe, 2, &[]);
}

#[test]
fn incremental_linkage_matches_the_batch_path() {
    one_at_a_time_matches_batch(8, LinkType::LinkOnly, 3, &[]);
}

#[test]
fn unknown_records_and_self_pairs_are_refused() {
    let records = prepare(&population(5, 4));
    let mut index = Index::new(
        Model::prior(),
        Blocking::default(),
        ClusterOptions::default(),
    );
    for r in &records {
        index.insert(r.clone()).unwrap();
    }
    let n = records.len() as u32;
    assert_eq!(
        index.update(n, Prepared::default()),
        Err(kith_resolve::IndexError::UnknownRecord(n))
    );
    assert_eq!(
        index.force_link(1, 1),
        Err(kith_resolve::IndexError::SamePair(1))
    );
    assert!(index.keep_apart(0, n + 5).is_err());
}
