//! What a customer is in the middle of: an open case, an order on its way, a
//! trial ending, a renewal due. Derived from the view's facts by the rules in
//! `[server] situations`, so staff see it first without searching for it.
//!
//! A rule names a fact kind and one or two tests: `field` whose value is one
//! of `any_of`, and `date_field` whose date falls between now and `within`
//! from now. When a rule has both, a fact must pass both ("a trial that ends
//! within 14 days"); a rule with neither matches nothing (configuration
//! validation refuses it anyway). Pure logic: the caller passes `now`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use kith_model::Fact;
use kith_web::SituationRule;
use serde_json::Value;

/// One fact that made one rule fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Situation {
    pub label: String,
    /// Why it fired, for people: `status is open`, `renews_at 2026-12-14 (in 21 days)`.
    pub because: String,
    /// The fact itself, as text.
    pub summary: String,
    pub source: String,
    pub key: String,
    pub date: Option<DateTime<Utc>>,
}

/// Every (rule, fact) pair that fires: rules in configuration order, facts in
/// the view's order (by kind, newest first).
pub fn evaluate(rules: &[SituationRule], facts: &[Fact], now: DateTime<Utc>) -> Vec<Situation> {
    let mut out = Vec::new();
    for rule in rules {
        for fact in facts.iter().filter(|f| f.kind.as_str() == rule.kind) {
            if let Some(because) = fires(rule, fact, now) {
                out.push(Situation {
                    label: rule.label.clone(),
                    because,
                    summary: kith_web::layout::show(&fact.value),
                    source: fact.provenance.source.clone(),
                    key: fact.provenance.key.clone(),
                    date: fact.date,
                });
            }
        }
    }
    out
}

/// Why `rule` fires for `fact`, or `None` when it does not.
fn fires(rule: &SituationRule, fact: &Fact, now: DateTime<Utc>) -> Option<String> {
    if rule.field.is_none() && rule.date_field.is_none() {
        return None;
    }
    let mut because = Vec::new();
    if let Some(field) = &rule.field {
        let value = text(field_value(fact, field)?)?;
        let wanted = value.trim().to_lowercase();
        if !rule
            .any_of
            .iter()
            .any(|v| v.trim().to_lowercase() == wanted)
        {
            return None;
        }
        because.push(format!("{field} is {}", value.trim()));
    }
    if let Some(field) = &rule.date_field {
        let within = rule
            .within
            .and_then(|d| TimeDelta::from_std(d).ok())
            .unwrap_or(TimeDelta::zero());
        let until = now
            .checked_add_signed(within)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let raw = text(field_value(fact, field)?)?;
        let when = parse_when(&raw)?;
        let days = match when {
            When::Day(d) => {
                if d < now.date_naive() || d > until.date_naive() {
                    return None;
                }
                (d - now.date_naive()).num_days()
            }
            When::Instant(t) => {
                if t < now || t > until {
                    return None;
                }
                (t.date_naive() - now.date_naive()).num_days()
            }
        };
        let soon = match days {
            0 => "today".to_string(),
            1 => "tomorrow".to_string(),
            n => format!("in {n} days"),
        };
        because.push(format!("{field} {} ({soon})", raw.trim()));
    }
    Some(because.join("; "))
}

/// A field of a fact: a column of a many-valued fact, or the value of a
/// single-valued fact whose attribute has that name.
fn field_value<'a>(fact: &'a Fact, field: &str) -> Option<&'a Value> {
    match &fact.value {
        Value::Object(m) => m.get(field),
        v if fact.attribute.as_deref() == Some(field) => Some(v),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A date as sources write them: a day (`2026-12-14`) or an instant
/// (RFC 3339, or `2026-12-14 09:30:00` taken as UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

fn parse_when(s: &str) -> Option<When> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(When::Instant(t.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(When::Instant(t.and_utc()));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(When::Day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kith_model::{Cardinality, FactKind, Provenance};
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-01T09:00:00Z".parse().unwrap()
    }

    fn fact(kind: &str, value: Value) -> Fact {
        Fact {
            kind: FactKind::parse(kind).unwrap(),
            cardinality: Cardinality::Many,
            attribute: None,
            value,
            date: None,
            provenance: Provenance {
                source: "billing".into(),
                key: "37".into(),
                fact_set: "x".into(),
                updated_at: None,
                fetched_at: now(),
            },
        }
    }

    fn rule(label: &str, kind: &str) -> SituationRule {
        SituationRule {
            label: label.into(),
            kind: kind.into(),
            field: None,
            any_of: vec![],
            date_field: None,
            within: None,
        }
    }

    fn by_status(label: &str, kind: &str, any_of: &[&str]) -> SituationRule {
        SituationRule {
            field: Some("status".into()),
            any_of: any_of.iter().map(|s| s.to_string()).collect(),
            ..rule(label, kind)
        }
    }

    fn by_date(label: &str, kind: &str, field: &str, days: u64) -> SituationRule {
        SituationRule {
            date_field: Some(field.into()),
            within: Some(Duration::from_secs(days * 86_400)),
            ..rule(label, kind)
        }
    }

    #[test]
    fn a_field_rule_fires_for_listed_values_of_its_kind_only() {
        let facts = vec![
            fact("case", json!({"id": "T-1", "status": "Open "})),
            fact("case", json!({"id": "T-2", "status": "closed"})),
            fact("transaction", json!({"id": "W-1", "status": "open"})),
            fact("case", json!({"id": "T-3"})),
        ];
        let got = evaluate(
            &[by_status("Open case", "case", &["open", "pending"])],
            &facts,
            now(),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].label, "Open case");
        assert_eq!(got[0].because, "status is Open");
        assert!(got[0].summary.contains("T-1"), "{:?}", got[0]);
        assert_eq!(
            (got[0].source.as_str(), got[0].key.as_str()),
            ("billing", "37")
        );
    }

    #[test]
    fn a_date_rule_fires_between_now_and_the_window_end() {
        let r = by_date("Renewal due", "holding", "renews_at", 30);
        let at = |d: &str| fact("holding", json!({ "renews_at": d }));
        let fired = |d: &str| !evaluate(std::slice::from_ref(&r), &[at(d)], now()).is_empty();
        assert!(fired("2026-11-01"), "today counts");
        assert!(fired("2026-11-15"));
        assert!(fired("2026-12-01"), "the last day of the window counts");
        assert!(!fired("2026-12-02"), "after the window");
        assert!(!fired("2026-10-31"), "already past");
        assert!(fired("2026-11-20T10:00:00Z"));
        assert!(
            !fired("2026-11-01T08:59:59Z"),
            "an instant earlier today is past"
        );
        assert!(fired("2026-11-02 12:00:00"));
        assert!(!fired("soon"), "not a date");
        let got = evaluate(&[r], &[at("2026-11-22")], now());
        assert_eq!(got[0].because, "renews_at 2026-11-22 (in 21 days)");
    }

    #[test]
    fn a_rule_with_both_tests_needs_both() {
        let r = SituationRule {
            date_field: Some("renews_at".into()),
            within: Some(Duration::from_secs(14 * 86_400)),
            ..by_status("Trial ending", "holding", &["trial"])
        };
        let f = |status: &str, d: &str| fact("holding", json!({"status": status, "renews_at": d}));
        let got = evaluate(
            &[r],
            &[
                f("trial", "2026-11-11"),
                f("active", "2026-11-11"),
                f("trial", "2027-01-01"),
            ],
            now(),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            got[0].because,
            "status is trial; renews_at 2026-11-11 (in 10 days)"
        );
    }

    #[test]
    fn single_valued_facts_match_by_attribute_and_a_rule_without_tests_matches_nothing() {
        let mut consent = fact("consent", json!(false));
        consent.cardinality = Cardinality::One;
        consent.attribute = Some("newsletter".into());
        let r = SituationRule {
            field: Some("newsletter".into()),
            any_of: vec!["false".into()],
            ..rule("Opted out of the newsletter", "consent")
        };
        assert_eq!(
            evaluate(&[r], std::slice::from_ref(&consent), now()).len(),
            1
        );
        assert!(evaluate(&[rule("Anything", "consent")], &[consent], now()).is_empty());
    }
}
