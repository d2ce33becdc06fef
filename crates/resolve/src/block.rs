//! Blocking: choosing which pairs of records are worth comparing.
//!
//! Comparing every pair is quadratic, so only pairs that agree exactly on at
//! least one *rule* (a combination of keys, such as phonetic family name and
//! postcode) become candidates. Rules are OR-ed. A block is all records with
//! one key value; a block larger than [`Blocking::max_block`] is skipped and
//! reported, because a value that common (`n/a`, a shop's own phone number)
//! identifies nobody and would explode the pair count.
//!
//! Keys are hashed, not written out: a million records have millions of
//! keys, and a 64-bit hash of each, grouped by sorting, costs a fraction of
//! the strings and the hash map of them. Two different keys with one hash
//! (odds about `keys² / 2⁶⁵`) would only put their records in one block:
//! extra pairs to compare. Reports still show a skipped block's key as text.

use serde::{Deserialize, Serialize};

use crate::LinkType;
use crate::compare::Attribute;
use crate::hash::{FNV_OFFSET, finish, fnv};
use crate::record::{Field, Prepared, TextRef};

/// One key a rule blocks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKey {
    Email,
    Phone,
    /// Each external id with its name (`loyalty=123`).
    ExternalId,
    /// Each external id with its name, and each variant of it with one
    /// character deleted: ids one typo apart meet in a block.
    ExternalIdOneEdit,
    GivenName,
    FamilyName,
    /// Given and family name as an unordered pair, so swapped names meet.
    NamePair,
    /// The Soundex code of the family name.
    FamilyPhonetic,
    GivenInitial,
    FamilyInitial,
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
            BlockKey::ExternalIdOneEdit => "external_id_one_edit",
            BlockKey::GivenName => "given_name",
            BlockKey::FamilyName => "family_name",
            BlockKey::NamePair => "name_pair",
            BlockKey::FamilyPhonetic => "family_phonetic",
            BlockKey::GivenInitial => "given_initial",
            BlockKey::FamilyInitial => "family_initial",
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
            BlockKey::ExternalIdOneEdit => (&[A::ExternalId], false),
            BlockKey::GivenName => (&[A::GivenName], true),
            BlockKey::FamilyName => (&[A::FamilyName], true),
            BlockKey::NamePair => (&[A::GivenName, A::FamilyName], true),
            BlockKey::FamilyPhonetic => (&[A::FamilyName], false),
            BlockKey::GivenInitial => (&[A::GivenName], false),
            BlockKey::FamilyInitial => (&[A::FamilyName], false),
            BlockKey::DateOfBirth => (&[A::DateOfBirth], true),
            BlockKey::Postcode => (&[A::Postcode], true),
            BlockKey::StreetNumber => (&[A::StreetNumber], true),
            BlockKey::Street => (&[A::Street], true),
            BlockKey::City => (&[A::City], true),
            BlockKey::Country => (&[A::Country], true),
            BlockKey::OrgName => (&[A::OrgName], true),
        }
    }

    /// Calls `f` with each of the record's values of this key (none when it
    /// lacks the key), each given as pieces to be read one after the other:
    /// blocking a million records calls this millions of times, and the
    /// pieces are hashed where they lie, without building the value.
    fn for_each_value(self, r: &Prepared, f: &mut dyn FnMut(&[&[u8]])) {
        let mut one = |v: Option<TextRef>| {
            if let Some(v) = v {
                f(&[v.as_bytes()]);
            }
        };
        match self {
            BlockKey::Email => r.emails().for_each(|e| f(&[e])),
            BlockKey::Phone => r.phones().for_each(|p| f(&[p])),
            BlockKey::ExternalId => {
                for (k, v) in r.external_ids() {
                    f(&[k, b"=", v]);
                }
            }
            BlockKey::ExternalIdOneEdit => {
                // The value and every variant with one character deleted:
                // two values one substitution, insertion, deletion or
                // transposition apart share at least one of them.
                for (k, v) in r.external_ids() {
                    f(&[k, b"=", v]);
                    let starts = (0..v.len()).filter(|&at| !is_continuation(v[at]));
                    for at in starts {
                        let end = (at + 1..v.len())
                            .find(|&e| !is_continuation(v[e]))
                            .unwrap_or(v.len());
                        f(&[k, b"=", &v[..at], &v[end..]]);
                    }
                }
            }
            BlockKey::GivenName => one(r.field(Field::Given)),
            BlockKey::FamilyName => one(r.field(Field::Family)),
            BlockKey::NamePair => {
                if let (Some(g), Some(fam)) = (r.field(Field::Given), r.field(Field::Family)) {
                    let (x, y) = if g.as_bytes() <= fam.as_bytes() {
                        (g, fam)
                    } else {
                        (fam, g)
                    };
                    f(&[x.as_bytes(), &[NAME_SEPARATOR], y.as_bytes()]);
                }
            }
            BlockKey::FamilyPhonetic => {
                if let Some(s) = r.family().and_then(|n| n.soundex) {
                    f(&[&s]);
                }
            }
            BlockKey::GivenInitial | BlockKey::FamilyInitial => {
                let name = if self == BlockKey::GivenInitial {
                    r.given()
                } else {
                    r.family()
                };
                if let Some(c) = name.and_then(|n| n.initial()) {
                    f(&[c.encode_utf8(&mut [0; 4]).as_bytes()]);
                }
            }
            BlockKey::DateOfBirth => {
                if let Some(d) = r.dob {
                    f(&[d.key_bytes(&mut [0; 8])]);
                }
            }
            BlockKey::Postcode => one(r.field(Field::Postcode)),
            BlockKey::StreetNumber => one(r.field(Field::StreetNumber)),
            BlockKey::Street => one(r.field(Field::Street)),
            BlockKey::City => one(r.field(Field::City)),
            BlockKey::Country => one(r.field(Field::Country)),
            BlockKey::OrgName => one(r.field(Field::Org)),
        }
    }
}

/// Whether a UTF-8 byte continues a character rather than starting one.
fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// Between the two names of a [`BlockKey::NamePair`] value.
const NAME_SEPARATOR: u8 = 0x1f;

/// Records are candidates under a rule when they agree on all its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRule {
    pub keys: Vec<BlockKey>,
}

/// The separator between the values of a rule's keys in a block key.
const KEY_SEPARATOR: u8 = 0x1e;

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

    /// The record's block keys under this rule, as [`key_hash`]es: one per
    /// combination of its key values (a record may have several e-mail
    /// addresses), sorted and distinct; none when it lacks one of the keys.
    pub(crate) fn key_hashes(&self, r: &Prepared, out: &mut Vec<u64>) {
        out.clear();
        self.combine(0, r, FNV_OFFSET, out);
        out.sort_unstable();
        out.dedup();
    }

    fn combine(&self, k: usize, r: &Prepared, state: u64, out: &mut Vec<u64>) {
        let Some(key) = self.keys.get(k) else {
            out.push(finish(state));
            return;
        };
        key.for_each_value(r, &mut |pieces| {
            let mut s = state;
            if k > 0 {
                s = fnv(s, &[KEY_SEPARATOR]);
            }
            for p in pieces {
                s = fnv(s, p);
            }
            self.combine(k + 1, r, s, out);
        });
    }

    /// The record's block keys as text, for reports: the bytes
    /// [`BlockRule::key_hashes`] hashes.
    fn keys_text(&self, r: &Prepared) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new()];
        for (i, key) in self.keys.iter().enumerate() {
            let mut values = Vec::new();
            key.for_each_value(r, &mut |pieces| values.push(pieces.concat()));
            out = out
                .iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut k = prefix.clone();
                        if i > 0 {
                            k.push(KEY_SEPARATOR);
                        }
                        k.extend_from_slice(v);
                        k
                    })
                })
                .collect();
        }
        out
    }
}

/// The hash of a block key given as text (see [`BlockRule::key_hashes`]).
fn key_hash(text: &[u8]) -> u64 {
    finish(fnv(FNV_OFFSET, text))
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
    /// Distinct pairs this rule produced.
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

/// Every record's block keys under one rule, `(key hash, record)` sorted:
/// a block is a run of one hash, its members in record order.
///
/// Keys are 64-bit hashes rather than text, which keeps a million records'
/// keys in a few tens of megabytes. Two different keys with one hash (odds
/// about `keys² / 2⁶⁵`, one in ten million for a million keys) would put
/// their records in one block: extra pairs to compare, none lost unless the
/// merged block passes the size guard.
pub(crate) struct RuleBlocks {
    entries: Vec<(u64, u32)>,
}

impl RuleBlocks {
    pub(crate) fn new(rule: &BlockRule, records: &[Prepared]) -> Self {
        const PIECE: usize = 32_768;
        let indexed: Vec<(usize, &Prepared)> = records.iter().enumerate().collect();
        let mut entries = in_pieces(&indexed, PIECE, |part| {
            let mut out = Vec::with_capacity(part.len());
            let mut keys = Vec::new();
            for &(k, r) in part {
                rule.key_hashes(r, &mut keys);
                out.extend(keys.iter().map(|&h| (h, k as u32)));
            }
            out
        })
        .concat();
        entries.sort_unstable();
        RuleBlocks { entries }
    }

    pub(crate) fn into_entries(self) -> Vec<(u64, u32)> {
        self.entries
    }

    /// The blocks with at least two members, each a run of `(hash, record)`.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &[(u64, u32)]> {
        self.entries
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|block| block.len() > 1)
    }
}

/// `f` of each `chunk`-sized piece of `items`, in order, the pieces taken
/// by the machine's cores as each finishes its last. Equal shares would
/// wait for the slowest core, and on a machine shared with other work one
/// core is often slowed; small pieces taken in turn keep both busy.
pub(crate) fn in_pieces<T: Sync, R: Send>(
    items: &[T],
    chunk: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let chunk = chunk.max(1);
    let pieces = items.len().div_ceil(chunk);
    let threads = threads_for(items.len(), chunk).min(pieces);
    if threads <= 1 {
        return items.chunks(chunk).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if k >= pieces {
                            return out;
                        }
                        let end = (k * chunk + chunk).min(items.len());
                        out.push((k, f(&items[k * chunk..end])));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a piece of work does not panic"))
            .collect()
    });
    done.sort_unstable_by_key(|d| d.0);
    done.into_iter().map(|d| d.1).collect()
}

/// How many threads to split `n` items over, at least `per_thread` each.
pub(crate) fn threads_for(n: usize, per_thread: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(8)
        .min(n / per_thread.max(1) + 1)
}

impl Blocking {
    /// Candidate pairs `(i, j)` with `i < j`, sorted, each once however many
    /// rules produced it.
    pub fn candidate_pairs(&self, records: &[Prepared]) -> (Vec<(u32, u32)>, BlockingReport) {
        let mut all: Vec<u64> = Vec::new();
        let mut report = BlockingReport::default();
        for rule in &self.rules {
            let (pairs, mut rr) = self.rule_pairs(rule, records);
            let (union, new) = merge(&all, &pairs);
            rr.new_pairs = new;
            all = union;
            report.rules.push(rr);
        }
        report.pairs = all.len() as u64;
        let pairs = all
            .into_iter()
            .map(|p| ((p >> 32) as u32, p as u32))
            .collect();
        (pairs, report)
    }

    /// One rule's distinct pairs, packed `i << 32 | j` and sorted, and its report.
    fn rule_pairs(&self, rule: &BlockRule, records: &[Prepared]) -> (Vec<u64>, RuleReport) {
        let mut rr = RuleReport {
            rule: rule.name(),
            ..Default::default()
        };
        let blocks = RuleBlocks::new(rule, records);
        let mut pairs: Vec<u64> = Vec::new();
        let mut skipped = Vec::new();
        for block in blocks.blocks() {
            if block.len() > self.max_block {
                skipped.push(block);
                continue;
            }
            rr.blocks += 1;
            for (x, &(_, i)) in block.iter().enumerate() {
                for &(_, j) in &block[x + 1..] {
                    if self.link_type == LinkType::LinkOnly
                        && records[i as usize].dataset == records[j as usize].dataset
                    {
                        continue;
                    }
                    pairs.push(u64::from(i) << 32 | u64::from(j));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        rr.pairs = pairs.len() as u64;
        rr.skipped_block_count = skipped.len();
        rr.skipped_blocks = skipped
            .iter()
            .map(|block| SkippedBlock {
                key: block_text(rule, &records[block[0].1 as usize], block[0].0),
                records: block.len(),
            })
            .collect();
        rr.skipped_blocks
            .sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.key.cmp(&b.key)));
        rr.skipped_blocks.truncate(10);
        (pairs, rr)
    }
}

/// The text of the key with `hash` among a member's keys, for a report.
fn block_text(rule: &BlockRule, member: &Prepared, hash: u64) -> String {
    rule.keys_text(member)
        .into_iter()
        .find(|k| key_hash(k) == hash)
        .map(|k| {
            String::from_utf8_lossy(&k)
                .replace(['\u{1e}', '\u{1f}'], " ")
                .to_string()
        })
        .unwrap_or_default()
}

/// The union of two sorted, distinct lists, and how many of `b` are not in `a`.
fn merge(a: &[u64], b: &[u64]) -> (Vec<u64>, u64) {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut x, mut y, mut new) = (0, 0, 0);
    while x < a.len() && y < b.len() {
        match a[x].cmp(&b[y]) {
            std::cmp::Ordering::Less => {
                out.push(a[x]);
                x += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[y]);
                y += 1;
                new += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[x]);
                x += 1;
                y += 1;
            }
        }
    }
    out.extend_from_slice(&a[x..]);
    new += (b.len() - y) as u64;
    out.extend_from_slice(&b[y..]);
    (out, new)
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

    fn with_id(family: &str, id: &str) -> Prepared {
        Prepared::new(
            &IdentityAttrs {
                family_name: Some(family.into()),
                external_ids: [("ssn".to_string(), id.to_string())].into(),
                ..Default::default()
            },
            &NormalizeOptions::default(),
        )
    }

    #[test]
    fn ids_one_typo_apart_meet_in_a_block() {
        let blocking = Blocking {
            rules: vec![BlockRule::new(&[
                BlockKey::ExternalIdOneEdit,
                BlockKey::FamilyInitial,
            ])],
            ..Default::default()
        };
        let base = "5304218";
        for (other, meet) in [
            ("5304218", true),  // the same
            ("5304318", true),  // one digit changed
            ("5302418", true),  // two neighbours swapped
            ("530418", true),   // one deleted
            ("53042918", true), // one inserted
            ("5403218", false), // two changed
            ("1234567", false),
        ] {
            let records = vec![with_id("lee", base), with_id("lane", other)];
            let (pairs, _) = blocking.candidate_pairs(&records);
            assert_eq!(pairs == vec![(0, 1)], meet, "{base} {other}");
        }
        // The other key of the rule still has to agree.
        let records = vec![with_id("lee", base), with_id("smith", "5304318")];
        assert!(blocking.candidate_pairs(&records).0.is_empty());
    }

    #[test]
    fn block_keys_hash_the_text_a_report_shows() {
        let r = rec("ann", "smith", "AB1", "ann@x.com");
        for rule in Blocking::default().rules {
            let mut hashes = Vec::new();
            rule.key_hashes(&r, &mut hashes);
            let mut texts: Vec<u64> = rule.keys_text(&r).iter().map(|k| key_hash(k)).collect();
            texts.sort_unstable();
            texts.dedup();
            assert_eq!(hashes, texts, "{}", rule.name());
        }
        // Dates of birth are keyed as `DateParts::key` writes them.
        for raw in [
            "1980-03-05",
            "29/02/2000",
            "5 March",
            "0999-12-31",
            "19561309",
        ] {
            let d = crate::normalize::date_lenient(raw, true).unwrap();
            assert_eq!(d.key_bytes(&mut [0; 8]), d.key().as_bytes(), "{raw}");
        }
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
