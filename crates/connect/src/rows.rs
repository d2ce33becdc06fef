//! Rows to model: every connector yields rows as JSON objects (column →
//! value); these functions apply the mapping, so all kinds behave alike.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use kith_model::{
    Cardinality, CursorValue, Fact, FactKind, IdentityAttrs, IdentityRecord, PartyKind, Provenance,
    RecordRef, Relation, Timestamp,
};
use serde_json::{Map, Value};

use crate::mapping::{CursorKind, FactSetMapping, SourceConfig};

pub type Row = Map<String, Value>;

/// Nested objects as dotted column names (`{"contact": {"email": …}}` →
/// `contact.email`), so a mapping can name any field of a JSON document.
pub fn flatten(prefix: &str, obj: Map<String, Value>, out: &mut Row) {
    for (k, v) in obj {
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&name, inner, out),
            other => {
                out.insert(name, other);
            }
        }
    }
}

/// A cell as text: trimmed, `None` when empty or null.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// Reads a timestamp written as RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]`,
/// `YYYY-MM-DD`, or Unix seconds/milliseconds. Naive times are taken as UTC.
pub fn timestamp(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => {
            let i = n.as_i64()?;
            // Values past 1e11 are milliseconds (1e11 seconds is the year 5138).
            if i.abs() >= 100_000_000_000 {
                Utc.timestamp_millis_opt(i).single()
            } else {
                Utc.timestamp_opt(i, 0).single()
            }
        }
        Value::String(s) => parse_time_text(s.trim()),
        _ => None,
    }
}

fn parse_time_text(s: &str) -> Option<Timestamp> {
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    // Eight digits are a compact date (20240301), not seconds in 1970.
    if let Some(d) = (s.len() == 8)
        .then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
        .flatten()
    {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|i| timestamp(&Value::from(i)));
    }
    None
}

/// The cursor value of a row, by the cursor's declared type.
pub fn cursor(kind: CursorKind, v: Option<&Value>) -> Result<Option<CursorValue>, String> {
    let Some(v) = v.filter(|v| !v.is_null() && v.as_str() != Some("")) else {
        return Ok(None);
    };
    match kind {
        CursorKind::Time => timestamp(v)
            .map(|t| Some(CursorValue::Time(t)))
            .ok_or_else(|| "the cursor value is not a time".to_string()),
        CursorKind::Int => {
            let i = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            i.map(|i| Some(CursorValue::Int(i)))
                .ok_or_else(|| "the cursor value is not an integer".to_string())
        }
    }
}

/// Applies the identity mapping to a row. The error says what is wrong with the row.
pub fn identity(source: &SourceConfig, row: &Row) -> Result<IdentityRecord, String> {
    let m = &source.identity;
    let key = text(row.get(&m.key)).ok_or_else(|| format!("key column {:?} is empty", m.key))?;
    let a = &m.attributes;
    let col = |c: &Option<String>| c.as_ref().and_then(|c| text(row.get(c)));
    let many = |cs: &Option<crate::mapping::Columns>| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in cs.iter().flat_map(|c| c.iter()) {
            if let Some(v) = text(row.get(c))
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        out
    };
    let attrs = IdentityAttrs {
        full_name: col(&a.full_name),
        given_name: col(&a.given_name),
        family_name: col(&a.family_name),
        emails: many(&a.email),
        phones: many(&a.phone),
        street: col(&a.street),
        city: col(&a.city),
        postcode: col(&a.postcode),
        country: col(&a.country),
        date_of_birth: col(&a.date_of_birth),
        org_name: col(&a.org_name),
        external_ids: a
            .external_ids
            .iter()
            .filter_map(|(name, c)| text(row.get(c)).map(|v| (name.clone(), v)))
            .collect(),
    };
    let kind = match (&m.party_kind, &m.kind_column) {
        (Some(k), _) => PartyKind::from(*k),
        (None, Some(c)) => match text(row.get(c)) {
            Some(v) => PartyKind::parse(&v)
                .ok_or_else(|| format!("column {c:?} says neither person nor organisation"))?,
            None => PartyKind::Person,
        },
        (None, None) => PartyKind::Person,
    };
    let relation = match &m.relation_column {
        Some(c) => text(row.get(c))
            .and_then(|v| Relation::parse(&v))
            .or(source.relation.map(Relation::from)),
        None => source.relation.map(Relation::from),
    };
    let cursor = match &m.cursor {
        Some(c) => cursor(c.kind, row.get(&c.column))
            .map_err(|e| format!("{e} (column {:?})", c.column))?,
        None => None,
    };
    let updated_col = m.updated_at.as_ref().or(m
        .cursor
        .as_ref()
        .filter(|c| c.kind == CursorKind::Time)
        .map(|c| &c.column));
    let updated_at = updated_col.and_then(|c| row.get(c)).and_then(timestamp);
    Ok(IdentityRecord {
        record: RecordRef::new(&source.name, key),
        kind,
        relation,
        attrs,
        cursor,
        updated_at,
    })
}

/// Applies a fact set's mapping to one row found for `record_key`.
pub fn facts(
    source: &SourceConfig,
    set_name: &str,
    set: &FactSetMapping,
    row: &Row,
    record_key: &str,
    fetched_at: Timestamp,
) -> Vec<Fact> {
    let kind = FactKind::parse(&set.kind).expect("fact kinds are validated at start-up");
    let date = set
        .date
        .as_ref()
        .and_then(|c| row.get(c))
        .and_then(timestamp);
    let updated_at = set
        .updated_at
        .as_ref()
        .and_then(|c| row.get(c))
        .and_then(timestamp)
        .or(date);
    let provenance = Provenance {
        source: source.name.clone(),
        key: record_key.to_string(),
        fact_set: set_name.to_string(),
        updated_at,
        fetched_at,
    };
    let pairs: Vec<(&str, &str)> = match &set.fields {
        Some(f) => f.pairs(),
        None => row
            .keys()
            .filter(|c| **c != set.join)
            .map(|c| (c.as_str(), c.as_str()))
            .collect(),
    };
    match set.cardinality {
        Cardinality::Many => {
            let value: Map<String, Value> = pairs
                .iter()
                .map(|(name, c)| (name.to_string(), clean(row.get(*c))))
                .collect();
            vec![Fact {
                kind,
                cardinality: Cardinality::Many,
                attribute: None,
                value: Value::Object(value),
                date,
                provenance,
            }]
        }
        Cardinality::One => pairs
            .iter()
            .filter_map(|(name, c)| {
                let v = clean(row.get(*c));
                (!v.is_null()).then(|| Fact {
                    kind: kind.clone(),
                    cardinality: Cardinality::One,
                    attribute: Some(name.to_string()),
                    value: v,
                    date,
                    provenance: provenance.clone(),
                })
            })
            .collect(),
    }
}

/// Empty strings are missing values; other strings are trimmed.
fn clean(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
        Some(Value::String(s)) => Value::String(s.trim().to_string()),
        Some(other) => other.clone(),
    }
}

/// Keeps the newest `limit` facts per (fact set, record) and drops those before `since`.
pub fn apply_since_limit(facts: &mut Vec<Fact>, since: Option<Timestamp>, limit: Option<usize>) {
    if let Some(since) = since {
        facts.retain(|f| f.date.is_none_or(|d| d >= since));
    }
    if let Some(limit) = limit {
        facts.sort_by(|a, b| {
            (&a.provenance.fact_set, &a.provenance.key)
                .cmp(&(&b.provenance.fact_set, &b.provenance.key))
                .then(b.date.cmp(&a.date))
        });
        let mut seen: std::collections::HashMap<(String, String), usize> = Default::default();
        facts.retain(|f| {
            let n = seen
                .entry((f.provenance.fact_set.clone(), f.provenance.key.clone()))
                .or_default();
            *n += 1;
            *n <= limit
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source() -> SourceConfig {
        toml::from_str(
            r#"
            name = "shop"
            relation = "customer"
            connection = { kind = "csv", dir = "." }
            [identity]
            from = "customers.csv"
            key = "id"
            cursor = { column = "changed" }
            relation_column = "status"
            attributes = { given_name = "first", email = ["email", "email2"], external_ids = { loyalty = "card" } }
            [facts.orders]
            from = "orders.csv"
            join = "customer_id"
            kind = "transaction"
            date = "placed"
            [facts.profile]
            from = "customers.csv"
            join = "id"
            kind = "profile"
            cardinality = "one"
            fields = { city = "town" }
        "#,
        )
        .unwrap()
    }

    fn row(v: Value) -> Row {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn identity_applies_the_mapping() {
        let s = source();
        let r = identity(
            &s,
            &row(
                json!({"id": " 7 ", "first": "Ann", "email": "a@x.com", "email2": "a@x.com",
                         "card": "L-1", "changed": "2024-03-01 10:00:00", "status": "cancelled"}),
            ),
        )
        .unwrap();
        assert_eq!(r.record, RecordRef::new("shop", "7"));
        assert_eq!(r.attrs.emails, vec!["a@x.com"]);
        assert_eq!(r.attrs.external_ids["loyalty"], "L-1");
        assert_eq!(r.relation, Some(Relation::FormerCustomer));
        assert_eq!(
            r.cursor,
            Some(CursorValue::Time("2024-03-01T10:00:00Z".parse().unwrap()))
        );
        assert_eq!(r.updated_at, Some("2024-03-01T10:00:00Z".parse().unwrap()));
    }

    #[test]
    fn identity_rejects_rows_without_key_or_with_bad_cursor() {
        let s = source();
        assert!(
            identity(&s, &row(json!({"id": "", "first": "A"})))
                .unwrap_err()
                .contains("key")
        );
        assert!(
            identity(&s, &row(json!({"id": "1", "changed": "yesterday"})))
                .unwrap_err()
                .contains("not a time")
        );
        // An unknown status falls back to the source's default relation.
        let r = identity(&s, &row(json!({"id": "1", "status": "???"}))).unwrap();
        assert_eq!(r.relation, Some(Relation::Customer));
    }

    #[test]
    fn timestamps_in_many_shapes() {
        let want: Timestamp = "2024-03-01T00:00:00Z".parse().unwrap();
        for v in [
            json!("2024-03-01"),
            json!("2024-03-01T00:00:00Z"),
            json!("2024-03-01T01:00:00+01:00"),
            json!("2024-03-01 00:00:00"),
            json!(1709251200),
            json!(1709251200000i64),
            json!("1709251200"),
            json!("20240301"),
        ] {
            assert_eq!(timestamp(&v), Some(want), "{v}");
        }
        assert_eq!(timestamp(&json!("soon")), None);
        assert_eq!(timestamp(&json!("2024-02-30")), None);
    }

    #[test]
    fn facts_many_and_one() {
        let s = source();
        let t: Timestamp = "2024-05-01T00:00:00Z".parse().unwrap();
        let f = facts(
            &s,
            "orders",
            &s.facts["orders"],
            &row(
                json!({"customer_id": "7", "total": "12.50", "placed": "2024-04-02", "note": " "}),
            ),
            "7",
            t,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].value,
            json!({"total": "12.50", "placed": "2024-04-02", "note": null})
        );
        assert_eq!(f[0].date, Some("2024-04-02T00:00:00Z".parse().unwrap()));
        assert_eq!(f[0].provenance.fact_set, "orders");
        assert_eq!(f[0].provenance.fetched_at, t);

        let p = facts(
            &s,
            "profile",
            &s.facts["profile"],
            &row(json!({"id": "7", "town": "Leeds"})),
            "7",
            t,
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].attribute.as_deref(), Some("city"));
        assert_eq!(p[0].value, json!("Leeds"));
        let empty = facts(
            &s,
            "profile",
            &s.facts["profile"],
            &row(json!({"id": "7", "town": ""})),
            "7",
            t,
        );
        assert!(empty.is_empty());
    }

    #[test]
    fn since_and_limit_keep_the_newest() {
        let s = source();
        let t: Timestamp = "2024-05-01T00:00:00Z".parse().unwrap();
        let mut all = Vec::new();
        for d in ["2024-01-01", "2024-03-01", "2024-02-01", "2023-01-01"] {
            all.extend(facts(
                &s,
                "orders",
                &s.facts["orders"],
                &row(json!({"placed": d})),
                "7",
                t,
            ));
        }
        apply_since_limit(
            &mut all,
            Some("2023-06-01T00:00:00Z".parse().unwrap()),
            Some(2),
        );
        let dates: Vec<String> = all
            .iter()
            .map(|f| f.date.unwrap().format("%m").to_string())
            .collect();
        assert_eq!(dates, vec!["03", "02"]);
    }
}
