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

/// One fact that made one rule fire, said so that staff can read it as a
/// sentence: "Open support case: status is open — T-40165, subject “Order
/// sent to my old address”, opened 2026-10-30 11:05 UTC. From support,
/// record C-10079."
#[derive(Debug, Clone, PartialEq)]
pub struct Situation {
    pub label: String,
    /// Why it fired: `status is open`, `renews 2026-12-14 (in 21 days)`.
    pub because: String,
    /// The fact's other values, each a phrase: its reference first
    /// (`T-40165`), then `subject “Order sent to my old address”`, `total
    /// 106.96 GBP`, `placed 2026-10-31 20:48 UTC`… in the source's order. The
    /// fields `because` already names are left out.
    pub facts: Vec<String>,
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
                    facts: phrases(rule, fact),
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
        because.push(format!("{} is {}", name(field), value.trim()));
    }
    if let Some(field) = &rule.date_field {
        let within = rule
            .within
            .and_then(|d| TimeDelta::from_std(d).ok())
            .unwrap_or(TimeDelta::zero());
        let until = now
            .checked_add_signed(within)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let when = parse_when(&text(field_value(fact, field)?)?)?;
        let (days, shown) = match when {
            When::Day(d) => {
                if d < now.date_naive() || d > until.date_naive() {
                    return None;
                }
                ((d - now.date_naive()).num_days(), d.to_string())
            }
            When::Instant(t) => {
                if t < now || t > until {
                    return None;
                }
                (
                    (t.date_naive() - now.date_naive()).num_days(),
                    kith_web::layout::when(&t),
                )
            }
        };
        let soon = match days {
            0 => "today".to_string(),
            1 => "tomorrow".to_string(),
            n => format!("in {n} days"),
        };
        because.push(format!("{} {shown} ({soon})", name(field)));
    }
    Some(because.join(" and "))
}

/// A field's name as the start of a phrase: `renews_at` → `renews`,
/// `valid_until` → `valid until`.
fn name(field: &str) -> String {
    let f = field.trim();
    let f = ["_at", "_on"]
        .iter()
        .find_map(|s| f.strip_suffix(s).filter(|f| !f.is_empty()))
        .unwrap_or(f);
    f.replace('_', " ")
}

/// Whether a field holds the fact's own reference (an order number, a case id).
fn is_reference(field: &str) -> bool {
    let f = field.to_lowercase();
    ["id", "number", "reference", "ref"].contains(&f.as_str())
        || ["_id", "_number", "_no", "_ref"]
            .iter()
            .any(|s| f.ends_with(s))
}

/// Fields that hold money, shown with the fact's `currency` when it has one.
const MONEY: [&str; 4] = ["amount", "total", "price", "balance"];

/// The fact's values as phrases, leaving out what the rule already said.
fn phrases(rule: &SituationRule, fact: &Fact) -> Vec<String> {
    let said = |f: &str| rule.field.as_deref() == Some(f) || rule.date_field.as_deref() == Some(f);
    let Value::Object(fields) = &fact.value else {
        // A single-valued fact: its attribute is the one field it has.
        let attribute = fact.attribute.as_deref().unwrap_or_default();
        if said(attribute) || fact.value.is_null() {
            return Vec::new();
        }
        let value = kith_web::layout::show(&fact.value);
        return vec![if attribute.is_empty() {
            value
        } else {
            format!("{} {value}", name(attribute))
        }];
    };
    let currency = fields
        .get("currency")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let mut references = Vec::new();
    let mut others = Vec::new();
    for (field, v) in fields {
        if said(field) || (field == "currency" && currency.is_some()) {
            continue;
        }
        let value = kith_web::layout::show(v);
        if v.is_null() || value.trim().is_empty() {
            continue;
        }
        if is_reference(field) {
            // `T-40165` says what it is; a bare `4` needs its name.
            references.push(if value.chars().any(char::is_alphabetic) {
                value
            } else {
                format!("{} {value}", name(field))
            });
            continue;
        }
        let value = match (v, currency) {
            (Value::Number(n), Some(c)) if MONEY.contains(&field.as_str()) => match n.as_f64() {
                Some(x) => format!("{x:.2} {c}"),
                None => format!("{value} {c}"),
            },
            // Free text reads as a quotation; a word or a date does not.
            (Value::String(s), _) if s.trim().contains(' ') && parse_when(s).is_none() => {
                format!("“{}”", s.trim())
            }
            _ => value,
        };
        others.push(format!("{} {value}", name(field)));
    }
    references.extend(others);
    references
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
        assert_eq!(got[0].facts, ["T-1"], "the status is said once");
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
        let got = evaluate(std::slice::from_ref(&r), &[at("2026-11-22")], now());
        assert_eq!(got[0].because, "renews 2026-11-22 (in 21 days)");
        let got = evaluate(&[r], &[at("2026-11-02T10:30:00Z")], now());
        assert_eq!(got[0].because, "renews 2026-11-02 10:30 UTC (tomorrow)");
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
            "status is trial and renews 2026-11-11 (in 10 days)"
        );
    }

    #[test]
    fn the_facts_read_as_phrases_reference_first() {
        let case = fact(
            "case",
            json!({
                "subject": "Order sent to my old address ",
                "id": "T-40165",
                "status": "open",
                "priority": "high",
                "opened_at": "2026-10-30T11:05:40Z",
                "closed_at": null
            }),
        );
        let got = evaluate(&[by_status("Open case", "case", &["open"])], &[case], now());
        assert_eq!(
            got[0].facts,
            [
                "T-40165",
                "subject “Order sent to my old address”",
                "priority high",
                "opened 2026-10-30 11:05 UTC"
            ]
        );
        let invoice = fact(
            "transaction",
            json!({"id": 4, "amount": 34.0, "currency": "GBP", "issued_at": "2026-10-31", "status": "due"}),
        );
        let got = evaluate(
            &[by_status("Invoice to pay", "transaction", &["due"])],
            &[invoice],
            now(),
        );
        assert_eq!(
            got[0].facts,
            ["id 4", "amount 34.00 GBP", "issued 2026-10-31"]
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
