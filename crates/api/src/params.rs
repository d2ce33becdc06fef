//! Reading query strings and paging: pure functions, so every rule about
//! what a caller may send is tested without a server.
//!
//! Query parameters arrive as text and are parsed here rather than by serde,
//! so a bad one is answered with its name, what was sent and what is allowed.

use chrono::{DateTime, Utc};
use kith_model::{FactKind, PartyId, RecordRef, Timestamp};

use crate::error::{ApiError, ApiResult};

/// `limit`: absent gives `default`; otherwise a whole number from 1 to `max`.
pub fn limit(raw: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "limit",
            format!("must be a whole number from 1 to {max}, not {raw:?}"),
        )),
    }
}

/// A party id (`p_` and 26 letters or digits) from a path or query.
pub fn party_id(field: &str, raw: &str) -> ApiResult<PartyId> {
    PartyId::parse(raw.trim()).ok_or_else(|| {
        ApiError::bad_request(
            field,
            format!("{raw:?} is not a party id (`p_` followed by 26 letters or digits)"),
        )
    })
}

/// A source record as `source:key` (the key may contain colons).
pub fn record_ref(field: &str, raw: Option<&str>) -> ApiResult<RecordRef> {
    let raw = required(field, raw)?;
    RecordRef::parse(raw.trim()).ok_or_else(|| {
        ApiError::bad_request(
            field,
            format!("{raw:?} is not a record; write it as source:key, e.g. billing:10042"),
        )
    })
}

/// A parameter that must be present and not blank.
pub fn required<'a>(field: &str, raw: Option<&'a str>) -> ApiResult<&'a str> {
    match raw {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ApiError::bad_request(field, "is required")),
    }
}

/// An RFC 3339 time (`2024-05-01T09:30:00Z`); a plain date means its midnight UTC.
pub fn timestamp(field: &str, raw: &str) -> ApiResult<Timestamp> {
    let t = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(ApiError::bad_request(
        field,
        format!("{raw:?} is not a time; use RFC 3339 such as 2024-05-01T09:30:00Z, or a date"),
    ))
}

/// A comma-separated list (`kind=transaction,case`); blank items are dropped.
pub fn list(raw: Option<&str>) -> Vec<String> {
    raw.map(|r| {
        r.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Fact kinds to keep (`kind=`), each checked for shape.
pub fn kinds(raw: Option<&str>) -> ApiResult<Vec<FactKind>> {
    list(raw)
        .into_iter()
        .map(|k| {
            FactKind::parse(&k).ok_or_else(|| {
                ApiError::bad_request(
                    "kind",
                    format!("{k:?} is not a fact kind (lower-case letters, digits and _)"),
                )
            })
        })
        .collect()
}

/// One page of `items` (sorted by `key`, ascending) after `after`, and the
/// cursor for the next page when there is one.
pub fn page_after<T, K: Ord + Clone>(
    items: Vec<T>,
    key: impl Fn(&T) -> &K,
    after: Option<&K>,
    limit: usize,
) -> (Vec<T>, Option<K>) {
    let mut rest = items
        .into_iter()
        .filter(|i| after.is_none_or(|a| key(i) > a))
        .peekable();
    let page: Vec<T> = rest.by_ref().take(limit).collect();
    let next = match (rest.peek(), page.last()) {
        (Some(_), Some(last)) => Some(key(last).clone()),
        _ => None,
    };
    (page, next)
}

/// One page of `items` (sorted newest first by `at`) strictly older than
/// `before`, and the cursor for the next page.
///
/// A page never splits items that share a time: when the `limit`-th item's
/// time is shared by the next ones, they come on this page too, so passing
/// the last item's time as `before` never skips or repeats an item.
pub fn page_before<T>(
    items: Vec<T>,
    at: impl Fn(&T) -> Timestamp,
    before: Option<Timestamp>,
    limit: usize,
) -> (Vec<T>, Option<Timestamp>) {
    let mut rest = items
        .into_iter()
        .filter(|i| before.is_none_or(|b| at(i) < b))
        .peekable();
    let mut page: Vec<T> = rest.by_ref().take(limit).collect();
    if let Some(last) = page.last().map(&at) {
        while let Some(next) = rest.next_if(|i| at(i) == last) {
            page.push(next);
        }
    }
    let next = match (rest.peek(), page.last()) {
        (Some(_), Some(last)) => Some(at(last)),
        _ => None,
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn message(e: ApiError) -> (StatusCode, String) {
        match e {
            ApiError::Status(s, m) => (s, m),
            ApiError::Auth(_) => panic!("not an auth error"),
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(limit(None, 50, 500).unwrap(), 50);
        assert_eq!(limit(Some("7"), 50, 500).unwrap(), 7);
        assert_eq!(limit(Some(" 500 "), 50, 500).unwrap(), 500);
        for bad in ["0", "501", "-1", "lots", ""] {
            let (status, m) = message(limit(Some(bad), 50, 500).unwrap_err());
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(m.starts_with("limit: "), "{m}");
            assert!(m.contains("1 to 500"), "{m}");
        }
    }

    #[test]
    fn ids_and_records_are_checked_and_named() {
        let id = "p_01hzx5y7k2m3n4p5q6r7s8t9va";
        assert_eq!(party_id("id", id).unwrap().as_str(), id);
        let (_, m) = message(party_id("id", "42").unwrap_err());
        assert!(m.starts_with("id: \"42\" is not a party id"), "{m}");

        let r = record_ref("a", Some("shop:order:7")).unwrap();
        assert_eq!((r.source.as_str(), r.key.as_str()), ("shop", "order:7"));
        let (_, m) = message(record_ref("b", Some("nocolon")).unwrap_err());
        assert!(m.starts_with("b: ") && m.contains("source:key"), "{m}");
        let (_, m) = message(record_ref("a", None).unwrap_err());
        assert_eq!(m, "a: is required");
        let (_, m) = message(record_ref("a", Some("  ")).unwrap_err());
        assert_eq!(m, "a: is required");
    }

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert_eq!(
            timestamp("before", "2024-05-01T10:30:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2024-05-01T09:30:00+00:00"
        );
        assert_eq!(
            timestamp("before", "2024-05-01").unwrap().to_rfc3339(),
            "2024-05-01T00:00:00+00:00"
        );
        let (_, m) = message(timestamp("before", "yesterday").unwrap_err());
        assert!(m.starts_with("before: \"yesterday\" is not a time"), "{m}");
    }

    #[test]
    fn lists_and_kinds() {
        assert_eq!(list(Some("a, b,,c ")), vec!["a", "b", "c"]);
        assert!(list(None).is_empty());
        let k = kinds(Some("transaction,case")).unwrap();
        assert_eq!(k.len(), 2);
        let (_, m) = message(kinds(Some("case,Bad Kind")).unwrap_err());
        assert!(m.starts_with("kind: \"Bad Kind\""), "{m}");
    }

    #[test]
    fn paging_by_key_walks_everything_once() {
        let items: Vec<u32> = (1..=7).collect();
        let (p1, next) = page_after(items.clone(), |i| i, None, 3);
        assert_eq!(p1, vec![1, 2, 3]);
        assert_eq!(next, Some(3));
        let (p2, next) = page_after(items.clone(), |i| i, next.as_ref(), 3);
        assert_eq!(p2, vec![4, 5, 6]);
        let (p3, next) = page_after(items.clone(), |i| i, next.as_ref(), 3);
        assert_eq!(p3, vec![7]);
        assert_eq!(next, None);
        // An exact last page has no next cursor.
        let (p, next) = page_after(items.clone(), |i| i, Some(&4), 3);
        assert_eq!((p, next), (vec![5, 6, 7], None));
        // A cursor past the end is an empty page.
        let (p, next) = page_after(items, |i| i, Some(&99), 3);
        assert!(p.is_empty() && next.is_none());
    }

    #[test]
    fn paging_by_time_never_splits_a_moment() {
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        // Newest first; three items share time 50.
        let items = vec![
            (t(90), "a"),
            (t(50), "b"),
            (t(50), "c"),
            (t(50), "d"),
            (t(20), "e"),
        ];
        let (p1, next) = page_before(items.clone(), |i| i.0, None, 2);
        assert_eq!(
            p1.iter().map(|i| i.1).collect::<Vec<_>>(),
            vec!["a", "b", "c", "d"]
        );
        assert_eq!(next, Some(t(50)));
        let (p2, next) = page_before(items.clone(), |i| i.0, next, 2);
        assert_eq!(p2.iter().map(|i| i.1).collect::<Vec<_>>(), vec!["e"]);
        assert_eq!(next, None);
        let (p, next) = page_before(items, |i| i.0, Some(t(10)), 2);
        assert!(p.is_empty() && next.is_none());
    }
}
