//! The Fellegi–Sunter match model and scoring.
//!
//! For each attribute and level the model holds `m`, the probability of that
//! level among pairs that are the same person, and `u`, among pairs that are
//! not. A pair's match weight is the prior `log2(λ/(1−λ))` plus, for every
//! attribute that is not missing, `log2(m/u)` of its level; an exact match on
//! a value with a term-frequency table adds `log2(u_exact / frequency)`,
//! which is negative for common values and positive for rare ones. The match
//! probability is `2^w / (1 + 2^w)`.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::compare::{Attribute, MISSING, N_ATTRIBUTES, Vector, compare_full};
use crate::hash::FnvBuild;
use crate::record::Prepared;

/// The version of the model file format; a reader refuses other versions.
pub const MODEL_VERSION: u32 = 1;

/// Probabilities are kept inside this range so that no single level can
/// carry an infinite weight.
pub const PROBABILITY_CLAMP: (f64, f64) = (1e-6, 1.0 - 1e-6);

/// A trained model, as written to and read from the model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub version: u32,
    /// λ: the probability that two records drawn at random are the same.
    pub lambda: f64,
    /// One entry per attribute, in the order of [`Attribute::ALL`].
    pub comparisons: Vec<ComparisonParams>,
    /// The seed the u sample was drawn with, so training can be repeated.
    pub seed: u64,
    /// Pairs at or above this match probability are links.
    pub threshold: f64,
    /// Pairs with a probability in `[low, high)` go to clerical review.
    pub uncertain: (f64, f64),
    /// How the model was trained, for people checking it.
    pub training: TrainingSummary,
    /// `log2(m/u)` of every level, computed on first use: the model is not
    /// changed once it scores.
    #[serde(skip)]
    weights: OnceLock<[[f64; MAX_LEVELS]; N_ATTRIBUTES]>,
    /// The term-frequency adjustment of every value in the tables, computed
    /// on first use: looking values up in the `BTreeMap`s of strings and
    /// taking a logarithm cost more than the rest of scoring a pair.
    #[serde(skip)]
    tf_weights: OnceLock<Vec<Option<TfWeights>>>,
}

/// A [`TfTable`] turned into the adjustment of an exact match on each value.
#[derive(Debug, Clone)]
struct TfWeights {
    listed: HashMap<Box<[u8]>, f64, FnvBuild>,
    /// For a value not in the table, which counts as seen once.
    unlisted: f64,
    /// `log2` of the attribute's u of an exact match.
    log2_u: f64,
}

impl TfWeights {
    /// `log2(u_exact / frequency(value))`.
    fn adjustment(&self, value: &[u8]) -> f64 {
        self.listed.get(value).copied().unwrap_or(self.unlisted)
    }
}

pub(crate) const MAX_LEVELS: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonParams {
    pub attribute: Attribute,
    pub levels: Vec<LevelParams>,
    /// Frequencies of values, for the term-frequency adjustment of an exact match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tf: Option<TfTable>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelParams {
    pub label: String,
    pub m: f64,
    pub u: f64,
}

/// How often each value occurs among the records that have the attribute.
/// Values seen once are left out: an unlisted value counts once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TfTable {
    /// Records with a value.
    pub records: u64,
    pub counts: BTreeMap<String, u64>,
}

impl TfTable {
    /// The relative frequency of `value`, at least one record's worth.
    pub fn frequency(&self, value: &str) -> f64 {
        let count = self.counts.get(value).copied().unwrap_or(1).max(1);
        count as f64 / self.records.max(1) as f64
    }
}

/// What went into a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub records: usize,
    /// Random pairs compared to estimate u.
    pub u_pairs: u64,
    pub em_sessions: Vec<EmSession>,
    /// Attributes whose m or u are the shipped priors, for lack of data.
    pub prior_m: Vec<Attribute>,
    pub prior_u: Vec<Attribute>,
    /// Whether λ came from the data or is the shipped prior.
    pub lambda_from_data: bool,
}

/// One expectation–maximisation session, over the pairs of one blocking rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmSession {
    pub rule: String,
    /// Pairs the rule makes.
    pub pairs: u64,
    /// Pairs compared: all of them, or a sample when there are too many
    /// ([`crate::TrainOptions::em_max_pairs`]).
    #[serde(default)]
    pub compared: u64,
    pub iterations: u32,
    pub converged: bool,
    /// The share of matches among this rule's pairs.
    pub lambda: f64,
    /// Attributes whose m this session estimated.
    pub estimated: Vec<Attribute>,
}

/// A pair's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Match weight in bits (log2 of the odds).
    pub weight: f64,
    pub probability: f64,
    pub vector: Vector,
}

/// What to do with a pair, by its probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// At or above the threshold: the records are linked.
    pub link: bool,
    /// In the uncertain band: a person should confirm or reject the decision.
    pub review: bool,
}

impl Model {
    pub(crate) fn from_parts(
        lambda: f64,
        comparisons: Vec<ComparisonParams>,
        seed: u64,
        threshold: f64,
        uncertain: (f64, f64),
        training: TrainingSummary,
    ) -> Self {
        Model {
            version: MODEL_VERSION,
            lambda,
            comparisons,
            seed,
            threshold,
            uncertain,
            training,
            weights: OnceLock::new(),
            tf_weights: OnceLock::new(),
        }
    }

    /// The model of shipped priors, for when there is nothing to learn from.
    pub fn prior() -> Self {
        Model::from_parts(
            crate::train::PRIOR_LAMBDA,
            Attribute::ALL
                .iter()
                .map(|&a| ComparisonParams {
                    attribute: a,
                    levels: a
                        .levels()
                        .iter()
                        .enumerate()
                        .map(|(l, label)| LevelParams {
                            label: label.to_string(),
                            m: crate::train::prior_m(a, l),
                            u: crate::train::prior_u(a, l),
                        })
                        .collect(),
                    tf: None,
                })
                .collect(),
            0,
            0.5,
            crate::train::DEFAULT_UNCERTAIN,
            TrainingSummary::default(),
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model always serialises")
    }

    /// Reads a model file, refusing another format version or a model whose
    /// levels do not fit this version's comparisons.
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        let model: Model = serde_json::from_str(json).map_err(ModelError::Parse)?;
        if model.version != MODEL_VERSION {
            return Err(ModelError::Version(model.version));
        }
        let fits = model.comparisons.len() == N_ATTRIBUTES
            && model
                .comparisons
                .iter()
                .zip(Attribute::ALL)
                .all(|(c, a)| c.attribute == a && c.levels.len() == a.levels().len());
        if !fits {
            return Err(ModelError::Shape);
        }
        Ok(model)
    }

    fn weights(&self) -> &[[f64; MAX_LEVELS]; N_ATTRIBUTES] {
        self.weights.get_or_init(|| {
            let mut w = [[0.0; MAX_LEVELS]; N_ATTRIBUTES];
            for (k, c) in self.comparisons.iter().enumerate() {
                for (l, p) in c.levels.iter().enumerate() {
                    w[k][l] = (p.m / p.u).log2();
                }
            }
            w
        })
    }

    fn tf_weights(&self) -> &[Option<TfWeights>] {
        self.tf_weights.get_or_init(|| {
            self.comparisons
                .iter()
                .map(|c| {
                    let table = c.tf.as_ref()?;
                    let u = c.levels.first().map_or(PROBABILITY_CLAMP.0, |l| l.u);
                    let adjust = |frequency: f64| (u / frequency.max(PROBABILITY_CLAMP.0)).log2();
                    Some(TfWeights {
                        listed: table
                            .counts
                            .keys()
                            .map(|v| (v.as_bytes().into(), adjust(table.frequency(v))))
                            .collect(),
                        // An unlisted value counts once.
                        unlisted: adjust(1.0 / table.records.max(1) as f64),
                        log2_u: u.log2(),
                    })
                })
                .collect()
        })
    }

    /// `log2(λ / (1 − λ))`.
    pub fn prior_weight(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// The weight of one attribute's level for this pair: the level's
    /// `log2(m/u)` and the term-frequency adjustment of an exact match.
    ///
    /// With the names compared crosswise, `a`'s given name matched the other
    /// record's family name, so how common it is *as a family name* is what
    /// makes the match a coincidence or not (and the other way round): a
    /// family name rare as a given name would otherwise weigh as if unique.
    pub(crate) fn term(&self, k: usize, level: u8, a: &Prepared, swapped: bool) -> (f64, f64) {
        if level == MISSING {
            return (0.0, 0.0);
        }
        let base = self.weights()[k][level as usize];
        if level != 0 {
            return (base, 0.0);
        }
        let tables = self.tf_weights();
        let Some(value) = self.comparisons[k].attribute_value(a) else {
            return (base, 0.0);
        };
        let (given, family) = (Attribute::GivenName.index(), Attribute::FamilyName.index());
        let tf = match (swapped, k) {
            (true, k) if k == given || k == family => {
                let other = if k == given { family } else { given };
                match (&tables[k], &tables[other]) {
                    (Some(own), Some(theirs)) => {
                        theirs.adjustment(value) - theirs.log2_u + own.log2_u
                    }
                    _ => 0.0,
                }
            }
            _ => tables[k].as_ref().map_or(0.0, |t| t.adjustment(value)),
        };
        (base, tf)
    }

    /// Scores a pair of records.
    pub fn score(&self, a: &Prepared, b: &Prepared) -> Scored {
        let (vector, swapped) = compare_full(a, b);
        let mut weight = self.prior_weight();
        for (k, &level) in vector.iter().enumerate() {
            let (base, tf) = self.term(k, level, a, swapped);
            weight += base + tf;
        }
        Scored {
            weight,
            probability: probability(weight),
            vector,
        }
    }

    pub fn decide(&self, probability: f64) -> Decision {
        Decision {
            link: probability >= self.threshold,
            review: probability >= self.uncertain.0 && probability < self.uncertain.1,
        }
    }
}

impl ComparisonParams {
    fn attribute_value<'a>(&self, r: &'a Prepared) -> Option<&'a [u8]> {
        r.tf_value(self.attribute)
    }
}

/// The match probability of a match weight.
pub fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

#[derive(Debug)]
pub enum ModelError {
    Parse(serde_json::Error),
    Version(u32),
    Shape,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::Parse(e) => write!(f, "the model file is not a kith model: {e}"),
            ModelError::Version(v) => write!(
                f,
                "the model file has format version {v}, this kith reads version {MODEL_VERSION}: train again"
            ),
            ModelError::Shape => write!(
                f,
                "the model file's comparisons do not match this kith's: train again"
            ),
        }
    }
}

impl std::error::Error for ModelError {}

#[cfg(test)]
mod tests {
    use kith_model::IdentityAttrs;

    use super::*;
    use crate::normalize::NormalizeOptions;

    fn rec(given: &str, family: &str) -> Prepared {
        Prepared::new(
            &IdentityAttrs {
                given_name: Some(given.into()),
                family_name: Some(family.into()),
                ..Default::default()
            },
            &NormalizeOptions::default(),
        )
    }

    #[test]
    fn probability_of_weights() {
        assert_eq!(probability(0.0), 0.5);
        assert!((probability(10.0) - 1024.0 / 1025.0).abs() < 1e-12);
        assert!(probability(-2000.0) >= 0.0);
        assert!(probability(2000.0) <= 1.0);
    }

    #[test]
    fn weights_add_up_and_missing_counts_nothing() {
        let model = Model::prior();
        let a = rec("ann", "zaborowski");
        let s = model.score(&a, &a);
        let by_hand: f64 = model.prior_weight()
            + [Attribute::GivenName, Attribute::FamilyName]
                .iter()
                .map(|&at| {
                    let p = &model.comparisons[at.index()].levels[0];
                    (p.m / p.u).log2()
                })
                .sum::<f64>();
        assert!((s.weight - by_hand).abs() < 1e-9);
        let other = model.score(&a, &rec("bob", "jones"));
        assert!(other.weight < s.weight);
    }

    #[test]
    fn common_values_weigh_less_than_rare_ones() {
        let mut model = Model::prior();
        let fam = Attribute::FamilyName.index();
        model.comparisons[fam].tf = Some(TfTable {
            records: 1000,
            counts: BTreeMap::from([("smith".into(), 50)]),
        });
        let smith = rec("ann", "smith");
        let zab = rec("ann", "zaborowski");
        assert!(model.score(&zab, &zab).weight > model.score(&smith, &smith).weight + 3.0);
    }

    #[test]
    fn swapped_names_weigh_by_how_common_each_value_is_in_its_new_place() {
        // "smith" is common as a family name and rare as a given name.
        let mut model = Model::prior();
        model.comparisons[Attribute::GivenName.index()].tf = Some(TfTable {
            records: 1000,
            counts: BTreeMap::from([("ann".into(), 40)]),
        });
        model.comparisons[Attribute::FamilyName.index()].tf = Some(TfTable {
            records: 1000,
            counts: BTreeMap::from([("smith".into(), 50)]),
        });
        let straight = model.score(&rec("ann", "smith"), &rec("ann", "smith"));
        let swapped = model.score(&rec("smith", "ann"), &rec("ann", "smith"));
        // Either way the pair agrees on "ann" as a given name and "smith" as
        // a family name: the same coincidence, the same weight.
        assert!(
            (straight.weight - swapped.weight).abs() < 1e-9,
            "{} {}",
            straight.weight,
            swapped.weight
        );
        // Looked up in the tables of their own fields, the rare "smith" as a
        // given name and "ann" as a family name would weigh far more.
        let g = Attribute::GivenName.index();
        let f = Attribute::FamilyName.index();
        let naive = model.prior_weight()
            + model.term(g, 0, &rec("smith", "x"), false).0
            + model.term(g, 0, &rec("smith", "x"), false).1
            + model.term(f, 0, &rec("x", "ann"), false).0
            + model.term(f, 0, &rec("x", "ann"), false).1;
        assert!(naive > swapped.weight + 5.0, "{naive} {}", swapped.weight);
    }

    #[test]
    fn model_files_round_trip_and_check_their_version() {
        let model = Model::prior();
        let json = model.to_json();
        let back = Model::from_json(&json).unwrap();
        assert_eq!(back.comparisons, model.comparisons);
        let a = rec("ann", "lee");
        assert_eq!(back.score(&a, &a), model.score(&a, &a));
        let old = json.replacen("\"version\": 1", "\"version\": 0", 1);
        assert!(matches!(
            Model::from_json(&old),
            Err(ModelError::Version(0))
        ));
        assert!(matches!(Model::from_json("{}"), Err(ModelError::Parse(_))));
    }

    #[test]
    fn decisions_by_band() {
        let model = Model::prior();
        let d = |link, review| Decision { link, review };
        assert_eq!(model.decide(0.95), d(true, false));
        assert_eq!(model.decide(0.5), d(true, true));
        assert_eq!(model.decide(0.3), d(false, true));
        assert_eq!(model.decide(0.01), d(false, false));
    }
}
