//! Why two records are, or are not, the same party: every comparison's
//! level, probabilities and weight, and the total. The CLI prints it and the
//! pages draw it as a waterfall of weights, so it is plain serialisable data.

use serde::{Deserialize, Serialize};

use crate::compare::{Attribute, MISSING, compare_full};
use crate::model::{Decision, Model, probability};
use crate::record::Prepared;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// `log2(λ / (1 − λ))`, where the waterfall starts.
    pub prior_weight: f64,
    pub comparisons: Vec<ComparisonExplanation>,
    /// The prior plus every comparison's weight.
    pub total_weight: f64,
    pub probability: f64,
    pub decision: Decision,
    /// The given and family names were compared crosswise.
    pub names_swapped: bool,
    /// The never-link rule that refuses the pair whatever its score, when
    /// the caller applies rules ([`crate::rules`]); [`explain`] sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonExplanation {
    pub attribute: Attribute,
    /// The level's label, `None` when a value is missing.
    pub level: Option<String>,
    pub m: Option<f64>,
    pub u: Option<f64>,
    /// `log2(m/u)` plus the term-frequency adjustment.
    pub weight: f64,
    /// The part of `weight` due to how common the shared value is.
    pub tf_adjustment: f64,
    /// The normalised values compared.
    pub values: (Option<String>, Option<String>),
}

/// Explains the score of `a` against `b`; its total equals [`Model::score`]'s weight.
pub fn explain(model: &Model, a: &Prepared, b: &Prepared) -> Explanation {
    let (vector, swapped) = compare_full(a, b);
    let prior_weight = model.prior_weight();
    let mut total_weight = prior_weight;
    let comparisons = Attribute::ALL
        .iter()
        .map(|&attribute| {
            let k = attribute.index();
            let level = vector[k];
            let (base, tf) = model.term(k, level, a, swapped);
            total_weight += base + tf;
            let params = (level != MISSING).then(|| &model.comparisons[k].levels[level as usize]);
            ComparisonExplanation {
                attribute,
                level: params.map(|p| p.label.clone()),
                m: params.map(|p| p.m),
                u: params.map(|p| p.u),
                weight: base + tf,
                tf_adjustment: tf,
                values: (a.value(attribute), b.value(attribute)),
            }
        })
        .collect();
    let p = probability(total_weight);
    Explanation {
        prior_weight,
        comparisons,
        total_weight,
        probability: p,
        decision: model.decide(p),
        names_swapped: swapped,
        never_link: None,
    }
}

#[cfg(test)]
mod tests {
    use kith_model::IdentityAttrs;

    use super::*;
    use crate::model::TfTable;
    use crate::normalize::NormalizeOptions;

    fn rec(given: &str, family: &str, dob: &str) -> Prepared {
        Prepared::new(
            &IdentityAttrs {
                given_name: Some(given.into()),
                family_name: Some(family.into()),
                date_of_birth: Some(dob.into()),
                ..Default::default()
            },
            &NormalizeOptions::default(),
        )
    }

    #[test]
    fn explanation_adds_up_to_the_score() {
        let mut model = Model::prior();
        model.comparisons[Attribute::FamilyName.index()].tf = Some(TfTable {
            records: 100,
            counts: [("smith".to_string(), 10)].into(),
        });
        let a = rec("Bill", "Smith", "1980-03-05");
        let b = rec("William", "smith", "1980-05-03");
        let e = explain(&model, &a, &b);
        let s = model.score(&a, &b);
        assert!((e.total_weight - s.weight).abs() < 1e-9);
        assert!((e.probability - s.probability).abs() < 1e-12);
        let sum: f64 = e.prior_weight + e.comparisons.iter().map(|c| c.weight).sum::<f64>();
        assert!((sum - e.total_weight).abs() < 1e-9);

        let by = |attr: Attribute| e.comparisons.iter().find(|c| c.attribute == attr).unwrap();
        assert_eq!(by(Attribute::GivenName).level.as_deref(), Some("nickname"));
        assert_eq!(
            by(Attribute::DateOfBirth).level.as_deref(),
            Some("day_month_swapped")
        );
        let family = by(Attribute::FamilyName);
        assert_eq!(family.level.as_deref(), Some("exact"));
        assert!(family.tf_adjustment < 0.0);
        assert_eq!(
            family.values,
            (Some("smith".to_string()), Some("smith".to_string()))
        );
        let email = by(Attribute::Email);
        assert_eq!(
            (email.level.as_deref(), email.weight, email.m),
            (None, 0.0, None)
        );
        assert!(!e.names_swapped);

        let json = serde_json::to_string(&e).unwrap();
        let back: Explanation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert!(json.contains("\"attribute\":\"given_name\""));
    }
}
