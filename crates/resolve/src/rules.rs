//! Never-link rules: deterministic vetoes on pairs the model would link.
//!
//! A model scores how alike two records are; some differences mean two
//! people however alike the rest looks (a household shares a surname, an
//! address and often a phone). A rule is data, read from configuration, over
//! the comparison levels of [`compare`](crate::compare):
//!
//! ```toml
//! [[hub.never_link]]
//! name = "given names differ"
//! when = "given_name worse_than jw_0.92"
//!
//! [[hub.never_link]]
//! name = "nothing that belongs to one person agrees"
//! unless = "date_of_birth at_least one_edit or phone at_least one_edit or email is exact"
//! ```
//!
//! A rule vetoes a pair when its `when` holds (or it has none) and its
//! `unless` does not hold (or it has none). A condition is tests joined by
//! `and` and `or` (`and` binds tighter); a test is
//! `<attribute> <is|is_not|at_least|worse_than> <level>`, with the names of
//! [`Attribute::name`] and [`Attribute::levels`]. `at_least one_edit` means
//! that level or a better one. A test on an attribute either record lacks
//! is false, whatever the operator: a missing value proves nothing.
//!
//! Rules apply to what only the model would link. Shared exact identifiers
//! and pairs a person accepted link regardless: they are facts, not guesses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compare::{Attribute, MISSING, Vector};

/// A named veto: pairs it matches are never linked by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeverLinkRule {
    /// Said in reports and explanations when the rule vetoes a pair.
    pub name: String,
    /// The rule applies when this holds; absent: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// …unless this holds; absent: no exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<Condition>,
}

impl NeverLinkRule {
    /// Whether the rule vetoes a pair with these comparison levels.
    pub fn vetoes(&self, v: &Vector) -> bool {
        self.when.as_ref().is_none_or(|c| c.holds(v))
            && !self.unless.as_ref().is_some_and(|c| c.holds(v))
    }
}

/// The first rule of `rules` that vetoes a pair with levels `v`.
pub fn vetoed_by<'a>(rules: &'a [NeverLinkRule], v: &Vector) -> Option<&'a NeverLinkRule> {
    rules.iter().find(|r| r.vetoes(v))
}

/// kith's rules when the configuration names none:
///
/// - given names that differ (not the same name, a nickname or a close
///   spelling: a loose likeness such as Mary/Mark is how household members
///   look), or dates of birth that plainly differ, mean different people;
/// - names alone never link: the pair must also agree on something that
///   belongs to one person — a date of birth (to a typo), a phone (to one
///   typo), an e-mail, an external id, or a street with its postcode. An
///   e-mail one edit away is not enough: `ann.lee2@` is usually another Ann Lee.
///
/// Showing one person another's records is a data leak, so precision wins
/// over recall; a business whose data shows otherwise can configure its own.
pub fn default_never_link() -> Vec<NeverLinkRule> {
    let rule = |name: &str, when: Option<&str>, unless: Option<&str>| NeverLinkRule {
        name: name.into(),
        when: when.map(|c| c.parse().expect("the default rules parse")),
        unless: unless.map(|c| c.parse().expect("the default rules parse")),
    };
    vec![
        rule(
            "given names differ",
            Some("given_name worse_than jw_0.92"),
            None,
        ),
        rule("dates of birth differ", Some("date_of_birth is else"), None),
        rule(
            "nothing that belongs to one person agrees",
            None,
            Some(
                "date_of_birth at_least one_edit or phone at_least one_edit \
                 or email is exact or external_id is exact \
                 or postcode is exact and street at_least jw_0.90",
            ),
        ),
    ]
}

/// Tests joined by `and` and `or`: a list of alternatives, each a list of
/// tests that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    any: Vec<Vec<LevelTest>>,
}

impl Condition {
    pub fn holds(&self, v: &Vector) -> bool {
        self.any
            .iter()
            .any(|all| all.iter().all(|test| test.holds(v)))
    }
}

/// One attribute's level against a named level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelTest {
    pub attribute: Attribute,
    pub op: Op,
    /// Index into [`Attribute::levels`].
    pub level: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Is,
    IsNot,
    /// This level or a better (lower) one.
    AtLeast,
    /// A worse (higher) level than this.
    WorseThan,
}

impl Op {
    const ALL: [(Op, &'static str); 4] = [
        (Op::Is, "is"),
        (Op::IsNot, "is_not"),
        (Op::AtLeast, "at_least"),
        (Op::WorseThan, "worse_than"),
    ];

    fn name(self) -> &'static str {
        Op::ALL.iter().find(|(op, _)| *op == self).expect("named").1
    }
}

impl LevelTest {
    pub fn holds(&self, v: &Vector) -> bool {
        let level = v[self.attribute.index()];
        if level == MISSING {
            return false;
        }
        match self.op {
            Op::Is => level == self.level,
            Op::IsNot => level != self.level,
            Op::AtLeast => level <= self.level,
            Op::WorseThan => level > self.level,
        }
    }
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

impl std::str::FromStr for Condition {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.is_empty() {
            return Err(RuleError("an empty condition".into()));
        }
        let mut any = Vec::new();
        for alternative in words.split(|w| *w == "or") {
            let mut all = Vec::new();
            for test in alternative.split(|w| *w == "and") {
                all.push(parse_test(test)?);
            }
            any.push(all);
        }
        Ok(Condition { any })
    }
}

fn parse_test(words: &[&str]) -> Result<LevelTest, RuleError> {
    let [attribute, op, level] = words else {
        return Err(RuleError(format!(
            "`{}` is not a test: write `<attribute> <is|is_not|at_least|worse_than> <level>`, \
             joined by `and` / `or`",
            words.join(" ")
        )));
    };
    let attribute = Attribute::ALL
        .into_iter()
        .find(|a| a.name() == *attribute)
        .ok_or_else(|| {
            RuleError(format!(
                "unknown attribute `{attribute}` (one of: {})",
                Attribute::ALL.map(Attribute::name).join(", ")
            ))
        })?;
    let op = Op::ALL
        .iter()
        .find(|(_, name)| name == op)
        .map(|(op, _)| *op)
        .ok_or_else(|| {
            RuleError(format!(
                "unknown comparison `{op}` (one of: is, is_not, at_least, worse_than)"
            ))
        })?;
    let levels = attribute.levels();
    let level = levels.iter().position(|l| l == level).ok_or_else(|| {
        RuleError(format!(
            "{} has no level `{level}` (its levels, best first: {})",
            attribute.name(),
            levels.join(", ")
        ))
    })? as u8;
    Ok(LevelTest {
        attribute,
        op,
        level,
    })
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, all) in self.any.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            for (j, t) in all.iter().enumerate() {
                if j > 0 {
                    f.write_str(" and ")?;
                }
                write!(
                    f,
                    "{} {} {}",
                    t.attribute.name(),
                    t.op.name(),
                    t.attribute.levels()[t.level as usize]
                )?;
            }
        }
        Ok(())
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::N_ATTRIBUTES;

    fn levels(set: &[(Attribute, &str)]) -> Vector {
        let mut v = [MISSING; N_ATTRIBUTES];
        for (a, l) in set {
            v[a.index()] = a.levels().iter().position(|x| x == l).unwrap() as u8;
        }
        v
    }

    #[test]
    fn conditions_parse_and_print_back() {
        let text =
            "date_of_birth at_least one_edit or postcode is exact and street at_least jw_0.90";
        let c: Condition = text.parse().unwrap();
        assert_eq!(c.to_string(), text);
        assert_eq!(c.any.len(), 2);
        assert_eq!(c.any[1].len(), 2);
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Condition>().unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("shoe_size is exact").contains("unknown attribute `shoe_size`"));
        assert!(err("email roughly exact").contains("unknown comparison `roughly`"));
        assert!(err("email is jw_0.92").contains("email has no level `jw_0.92`"));
        assert!(err("email is").contains("is not a test"));
        assert!(err("email is exact or").contains("is not a test"));
    }

    #[test]
    fn operators_compare_by_level_order_and_missing_is_never_true() {
        let one_edit = levels(&[(Attribute::Phone, "one_edit")]);
        let t = |s: &str| s.parse::<Condition>().unwrap().holds(&one_edit);
        assert!(t("phone is one_edit"));
        assert!(!t("phone is_not one_edit"));
        assert!(t("phone at_least one_edit"));
        assert!(!t("phone at_least exact"));
        assert!(t("phone worse_than exact"));
        assert!(!t("phone worse_than one_edit"));
        // The e-mail is missing: no test on it holds, not even a negative one.
        assert!(!t("email is_not exact"));
        assert!(!t("email worse_than exact"));
    }

    #[test]
    fn default_rules_veto_households_and_name_only_pairs() {
        let rules = default_never_link();
        let name = |v: &Vector| vetoed_by(&rules, v).map(|r| r.name.as_str());
        // Same surname and address, different given name: a household.
        let household = levels(&[
            (Attribute::GivenName, "jw_0.70"),
            (Attribute::FamilyName, "exact"),
            (Attribute::Postcode, "exact"),
            (Attribute::Street, "exact"),
        ]);
        assert_eq!(name(&household), Some("given names differ"));
        // Same name, nothing else: not enough.
        let names_only = levels(&[
            (Attribute::GivenName, "exact"),
            (Attribute::FamilyName, "exact"),
            (Attribute::Email, "one_edit"),
        ]);
        assert_eq!(
            name(&names_only),
            Some("nothing that belongs to one person agrees")
        );
        // A nickname with a date of birth off by a typo: one person.
        let anchored = levels(&[
            (Attribute::GivenName, "nickname"),
            (Attribute::FamilyName, "exact"),
            (Attribute::DateOfBirth, "one_edit"),
        ]);
        assert_eq!(name(&anchored), None);
        // Street and postcode anchor only together.
        let street = levels(&[
            (Attribute::GivenName, "exact"),
            (Attribute::Postcode, "exact"),
            (Attribute::Street, "jw_0.90"),
        ]);
        assert_eq!(name(&street), None);
        let dob_differs = levels(&[
            (Attribute::GivenName, "exact"),
            (Attribute::DateOfBirth, "else"),
            (Attribute::Phone, "exact"),
        ]);
        assert_eq!(name(&dob_differs), Some("dates of birth differ"));
    }

    #[test]
    fn rules_read_from_toml_shaped_json() {
        let rules: Vec<NeverLinkRule> =
            serde_json::from_str(r#"[{"name": "ids differ", "when": "external_id is else"}]"#)
                .unwrap();
        assert!(rules[0].vetoes(&levels(&[(Attribute::ExternalId, "else")])));
        assert!(!rules[0].vetoes(&levels(&[(Attribute::ExternalId, "exact")])));
        let bad = serde_json::from_str::<Vec<NeverLinkRule>>(
            r#"[{"name": "x", "when": "external_id is close"}]"#,
        )
        .unwrap_err();
        assert!(
            bad.to_string().contains("external_id has no level `close`"),
            "{bad}"
        );
        let unknown = serde_json::from_str::<Vec<NeverLinkRule>>(
            r#"[{"name": "x", "if": "email is exact"}]"#,
        )
        .unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `if`"),
            "{unknown}"
        );
    }
}
