//! Blocking: choosing which pairs of records are worth comparing.
//!
//! Comparing every pair is quadratic, so only pairs that agree exactly on at
//! least one *rule* (a combination of keys, such as phonetic family name and
//! postcode) become candidates. Rules are OR-ed. A block is all records with
//! one key value; a block larger than [`Blocking::max_block`] is skipped and
//! reported, because a value that common (`n/a`, a shop's own phone number)
//! identifies nobody and would explode the pair count.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::LinkType;
use crate::compare::Attribute;
use crate::record::Prepared;

/// One key a rule blocks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKey {
    Email,
    Phone,
    /// Each external id with its name (`loyalty=123`).
    ExternalId,
    GivenName,
    FamilyName,
    /// Given and family name as an unordered pair, so swapped names meet.
    NamePair,
    /// The Soundex code of the family name.
    FamilyPhonetic,
    GivenInitial,
    DateOfBirth,
    Postcode,
    StreetNumber,
    Street,
    City,
    Country,
    OrgName,
}

impl BlockKey {
    pub fn name(self) -> &'static str {
        match self {
            BlockKey::Email => "email",
            BlockKey::Phone => "phone",
            BlockKey::ExternalId => "external_id",
            BlockKey::GivenName => "given_name",
            BlockKey::FamilyName => "family_name",
            BlockKey::NamePair => "name_pair",
            BlockKey::FamilyPhonetic => "family_phonetic",
            BlockKey::GivenInitial => "given_initial",
            BlockKey::DateOfBirth => "date_of_birth",
            BlockKey::Postcode => "postcode",
            BlockKey::StreetNumber => "street_number",
            BlockKey::Street => "street",
            BlockKey::City => "city",
            BlockKey::Country => "country",
            BlockKey::OrgName => "org_name",
        }
    }

    /// The attributes whose comparison a block on this key decides in
    /// advance, and whether records in one block always compare `exact` on them.
    pub(crate) fn attributes(self) -> (&'static [Attribute], bool) {
        use Attribute as A;
        match self {
            BlockKey::Email => (&[A::Email], true),
            BlockKey::Phone => (&[A::Phone], true),
            BlockKey::ExternalId => (&[A::ExternalId], true),
            BlockKey::GivenName => (&[A::GivenName], true),
            BlockKey::FamilyName => (&[A::FamilyName], true),
            BlockKey::NamePair => (&[A::GivenName, A::FamilyName], true),
            BlockKey::FamilyPhonetic => (&[A::FamilyName], false),
            BlockKey::GivenInitial => (&[A::GivenName], false),
            BlockKey::DateOfBirth => (&[A::DateOfBirth], true),
            BlockKey::Postcode => (&[A::Postcode], true),
            BlockKey::StreetNumber => (&[A::StreetNumber], true),
            BlockKey::Street => (&[A::Street], true),
            BlockKey::City => (&[A::City], true),
            BlockKey::Country => (&[A::Country], true),
            BlockKey::OrgName => (&[A::OrgName], true),
        }
    }

    fn values(self, r: &Prepared) -> Vec<String> {
        let one = |v: Option<&str>| v.map(str::to_string).into_iter().collect();
        match self {
            BlockKey::Email => r.emails.clone(),
            BlockKey::Phone => r.phones.clone(),
            BlockKey::ExternalId => r
                .external_ids
                .iter()
                .map(|(k, v)| format!("{}={}", &**k, &**v))
                .collect(),
            BlockKey::GivenName => one(r.given.as_ref().map(|n| &*n.text)),
            BlockKey::FamilyName => one(r.family.as_ref().map(|n| &*n.text)),
            BlockKey::NamePair => match (&r.given, &r.family) {
                (Some(g), Some(f)) => {
                    let (x, y) = if g.text <= f.text {
                        (&g.text, &f.text)
                    } else {
                        (&f.text, &g.text)
                    };
                    vec![format!("{}\u{1f}{}", &**x, &**y)]
                }
                _ => Vec::new(),
            },
            BlockKey::FamilyPhonetic => r
                .family
                .as_ref()
                .and_then(|n| n.soundex)
                .map(|s| String::from_utf8_lossy(&s).into_owned())
                .into_iter()
                .collect(),
            BlockKey::GivenInitial => r
                .given
                .as_ref()
                .and_then(|n| n.initial())
                .map(String::from)
                .into_iter()
                .collect(),
            BlockKey::DateOfBirth => r.dob.map(|d| d.key()).into_iter().collect(),
            BlockKey::Postcode => one(r.postcode.as_deref()),
            BlockKey::StreetNumber => one(r.street_number.as_deref()),
            BlockKey::Street => one(r.street.as_deref()),
            BlockKey::City => one(r.city.as_deref()),
            BlockKey::Country => one(r.country.as_deref()),
            BlockKey::OrgName => one(r.org.as_deref()),
        }
    }
}

/// Records are candidates under a rule when they agree on all its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRule {
    pub keys: Vec<BlockKey>,
}

impl BlockRule {
    pub fn new(keys: &[BlockKey]) -> Self {
        BlockRule {
            keys: keys.to_vec(),
        }
    }

    /// `date_of_birth+given_initial`.
    pub fn name(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Every combination of the record's key values (emails are a list), or
    /// none when it lacks one of the keys.
    fn keys_of(&self, r: &Prepared) -> Vec<String> {
        let mut out = vec![String::new()];
        for (i, key) in self.keys.iter().enumerate() {
            let values = key.values(r);
            out = out
                .iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        if i == 0 {
                            v.clone()
                        } else {
                            format!("{prefix}\u{1e}{v}")
                        }
                    })
                })
                .collect();
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The blocking configuration: rules OR-ed, which pairs count, and the guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Blocking {
    pub rules: Vec<BlockRule>,
    pub link_type: LinkType,
    /// Blocks with more records than this are skipped and reported.
    pub max_block: usize,
}

impl Default for Blocking {
    fn default() -> Self {
        use BlockKey as K;
        Blocking {
            rules: vec![
                BlockRule::new(&[K::Email]),
                BlockRule::new(&[K::Phone]),
                BlockRule::new(&[K::ExternalId]),
                BlockRule::new(&[K::FamilyPhonetic, K::Postcode]),
                BlockRule::new(&[K::DateOfBirth, K::GivenInitial]),
                BlockRule::new(&[K::NamePair]),
            ],
            link_type: LinkType::Dedupe,
            max_block: 1000,
        }
    }
}

/// What blocking did, rule by rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockingReport {
    pub rules: Vec<RuleReport>,
    /// Distinct candidate pairs over all rules.
    pub pairs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    pub rule: String,
    /// Pairs this rule produced.
    pub pairs: u64,
    /// Of those, pairs no earlier rule had produced.
    pub new_pairs: u64,
    pub blocks: usize,
    /// Blocks over the size guard, largest first (at most ten listed).
    pub skipped_blocks: Vec<SkippedBlock>,
    pub skipped_block_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedBlock {
    pub key: String,
    pub records: usize,
}

impl Blocking {
    /// Candidate pairs `(i, j)` with `i < j`, sorted, each once however many
    /// rules produced it.
    pub fn candidate_pairs(&self, records: &[Prepared]) -> (Vec<(u32, u32)>, BlockingReport) {
        let mut seen: HashSet<u64> = HashSet::new();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut report = BlockingReport::default();
        for rule in &self.rules {
            let mut rr = RuleReport {
                rule: rule.name(),
                ..Default::default()
            };
            for (key, members) in self.blocks(rule, records) {
                if members.len() > self.max_block {
                    rr.skipped_block_count += 1;
                    rr.skipped_blocks.push(SkippedBlock {
                        key: key.replace(['\u{1e}', '\u{1f}'], " "),
                        records: members.len(),
                    });
                    continue;
                }
                rr.blocks += 1;
                for (x, &i) in members.iter().enumerate() {
                    for &j in &members[x + 1..] {
                        if self.link_type == LinkType::LinkOnly
                            && records[i as usize].dataset == records[j as usize].dataset
                        {
                            continue;
                        }
                        rr.pairs += 1;
                        if seen.insert(u64::from(i) << 32 | u64::from(j)) {
                            rr.new_pairs += 1;
                            pairs.push((i, j));
                        }
                    }
                }
            }
            rr.skipped_blocks
                .sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.key.cmp(&b.key)));
            rr.skipped_blocks.truncate(10);
            report.rules.push(rr);
        }
        pairs.sort_unstable();
        report.pairs = pairs.len() as u64;
        (pairs, report)
    }

    /// The blocks of one rule with their key, members in record order.
    fn blocks(&self, rule: &BlockRule, records: &[Prepared]) -> Vec<(String, Vec<u32>)> {
        let mut blocks: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            for key in rule.keys_of(r) {
                blocks.entry(key).or_default().push(i as u32);
            }
        }
        let mut blocks: Vec<(String, Vec<u32>)> =
            blocks.into_iter().filter(|(_, m)| m.len() > 1).collect();
        // Hash order would make the per-rule pair order, and so the report, vary.
        blocks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        blocks
    }
}

#[cfg(test)]
mod tests {
    use kith_model::IdentityAttrs;

    use super::*;
    use crate::normalize::NormalizeOptions;

    fn rec(given: &str, family: &str, postcode: &str, email: &str) -> Prepared {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Prepared::new(
            &IdentityAttrs {
                given_name: some(given),
                family_name: some(family),
                postcode: some(postcode),
                emails: some(email).into_iter().collect(),
                ..Default::default()
            },
            &NormalizeOptions::default(),
        )
    }

    #[test]
    fn rules_are_ored_and_pairs_deduplicated() {
        let records = vec![
            rec("ann", "smith", "AB1", "ann@x.com"),
            rec("anne", "smyth", "AB1", "ann@x.com"),
            rec("bob", "jones", "AB1", ""),
            rec("smith", "ann", "ZZ9", ""),
        ];
        let blocking = Blocking {
            rules: vec![
                BlockRule::new(&[BlockKey::Email]),
                BlockRule::new(&[BlockKey::FamilyPhonetic, BlockKey::Postcode]),
                BlockRule::new(&[BlockKey::NamePair]),
            ],
            ..Default::default()
        };
        let (pairs, report) = blocking.candidate_pairs(&records);
        assert_eq!(pairs, vec![(0, 1), (0, 3)]);
        assert_eq!(report.pairs, 2);
        assert_eq!(report.rules[0].pairs, 1);
        assert_eq!(report.rules[1].pairs, 1);
        assert_eq!(report.rules[1].new_pairs, 0);
        assert_eq!(report.rules[2].rule, "name_pair");
        assert_eq!(report.rules[2].new_pairs, 1);
    }

    #[test]
    fn link_only_keeps_cross_dataset_pairs() {
        let records = vec![
            rec("a", "b", "P1", "").with_dataset(0),
            rec("c", "d", "P1", "").with_dataset(0),
            rec("e", "f", "P1", "").with_dataset(1),
        ];
        let blocking = Blocking {
            rules: vec![BlockRule::new(&[BlockKey::Postcode])],
            link_type: LinkType::LinkOnly,
            ..Default::default()
        };
        assert_eq!(blocking.candidate_pairs(&records).0, vec![(0, 2), (1, 2)]);
    }

    #[test]
    fn oversized_blocks_are_skipped_and_reported() {
        let mut records: Vec<Prepared> = (0..5)
            .map(|i| rec(&format!("n{i}"), "x", "COMMON", ""))
            .collect();
        records.push(rec("a", "b", "RARE", ""));
        records.push(rec("c", "d", "RARE", ""));
        let blocking = Blocking {
            rules: vec![BlockRule::new(&[BlockKey::Postcode])],
            max_block: 4,
            ..Default::default()
        };
        let (pairs, report) = blocking.candidate_pairs(&records);
        assert_eq!(pairs, vec![(5, 6)]);
        assert_eq!(report.rules[0].skipped_block_count, 1);
        assert_eq!(
            report.rules[0].skipped_blocks,
            vec![SkippedBlock {
                key: "COMMON".into(),
                records: 5
            }]
        );
    }

    #[test]
    fn records_missing_a_key_are_in_no_block_of_that_rule() {
        let records = vec![rec("", "", "", ""), rec("", "", "", "")];
        let (pairs, report) = Blocking::default().candidate_pairs(&records);
        assert!(pairs.is_empty());
        assert_eq!(report.rules.len(), Blocking::default().rules.len());
        assert_eq!(Blocking::default().candidate_pairs(&[]).0, vec![]);
    }
}
