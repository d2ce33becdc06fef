//! How model values are written to and read from SQLite columns.

use chrono::{DateTime, SecondsFormat, Utc};
use kith_model::{Anchor, RecordRef, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, Suppression};

/// Fixed-width RFC 3339 (nanoseconds, `Z`): text order is time order, so SQL
/// can compare and sort timestamps without parsing them.
pub(crate) fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn opt_ts(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn parse_ts(s: &str, what: &'static str) -> Result<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt {
            what,
            detail: format!("timestamp {s:?}: {e}"),
        })
}

pub(crate) fn parse_opt_ts(s: Option<String>, what: &'static str) -> Result<Option<Timestamp>> {
    s.map(|s| parse_ts(&s, what)).transpose()
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // The model's types are plain data with string keys: serialising cannot fail.
    serde_json::to_string(value).expect("model values serialise to JSON")
}

pub(crate) fn from_json<T: DeserializeOwned>(s: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(crate) fn from_opt_json<T: DeserializeOwned>(
    s: Option<String>,
    what: &'static str,
) -> Result<Option<T>> {
    s.map(|s| from_json(&s, what)).transpose()
}

/// A canonical, unambiguous text form of a record ref. A JSON array rather
/// than `source:key` because keys (and in principle sources) may hold colons.
pub(crate) fn record_key(r: &RecordRef) -> String {
    to_json(&[r.source.as_str(), r.key.as_str()])
}

pub(crate) fn parse_record_key(s: &str, what: &'static str) -> Result<RecordRef> {
    let [source, key]: [String; 2] = from_json(s, what)?;
    Ok(RecordRef { source, key })
}

/// The lookup key of an anchor. Kept beside the anchor's JSON rather than
/// derived from it so that the JSON form may grow fields without changing
/// which contributions an anchor finds.
pub(crate) fn anchor_key(a: &Anchor) -> String {
    match a {
        Anchor::Record(r) => format!("record:{}", record_key(r)),
        Anchor::Identifier { value } => format!("identifier:{value}"),
    }
}

/// The distinct keys of these anchors, sorted: what the contributions table is read by.
pub(crate) fn anchor_keys(anchors: &[Anchor]) -> Vec<String> {
    let keys: std::collections::BTreeSet<String> = anchors.iter().map(anchor_key).collect();
    keys.into_iter().collect()
}

pub(crate) const SUPPRESS_RECORD: &str = "record";
pub(crate) const SUPPRESS_IDENTIFIER_HASH: &str = "identifier_hash";

pub(crate) fn suppression_row(item: &Suppression) -> (&'static str, String) {
    match item {
        Suppression::Record(r) => (SUPPRESS_RECORD, record_key(r)),
        Suppression::IdentifierHash { hash } => (SUPPRESS_IDENTIFIER_HASH, hash.clone()),
    }
}

pub(crate) fn suppression_from_row(kind: &str, value: String) -> Result<Suppression> {
    match kind {
        SUPPRESS_RECORD => Ok(Suppression::Record(parse_record_key(
            &value,
            "suppressions",
        )?)),
        SUPPRESS_IDENTIFIER_HASH => Ok(Suppression::IdentifierHash { hash: value }),
        other => Err(Error::Corrupt {
            what: "suppressions",
            detail: format!("unknown kind {other:?}"),
        }),
    }
}

/// Integers the model keeps unsigned are stored as SQLite's signed 64-bit integers.
pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Invalid(format!("{what} {v} is too large to store")))
}

pub(crate) fn to_u64(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_as_text_and_round_trip() {
        let a: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        let b: Timestamp = "2024-05-01T10:00:00.5Z".parse().unwrap();
        let c: Timestamp = "2024-05-01T09:59:59.999999999+00:00".parse().unwrap();
        assert!(ts(c) < ts(a) && ts(a) < ts(b));
        assert_eq!(ts(a).len(), ts(b).len());
        for t in [a, b, c] {
            assert_eq!(parse_ts(&ts(t), "test").unwrap(), t);
        }
        assert!(matches!(
            parse_ts("yesterday", "test"),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn record_keys_are_unambiguous() {
        let a = RecordRef::new("a:b", "c");
        let b = RecordRef::new("a", "b:c");
        assert_ne!(record_key(&a), record_key(&b));
        assert_eq!(parse_record_key(&record_key(&b), "test").unwrap(), b);
        assert_ne!(
            anchor_key(&Anchor::Record(a)),
            anchor_key(&Anchor::Identifier {
                value: "a:b".into()
            })
        );
    }

    #[test]
    fn suppressions_round_trip() {
        for s in [
            Suppression::Record(RecordRef::new("shop", "42")),
            Suppression::IdentifierHash { hash: "ab".into() },
        ] {
            let (kind, value) = suppression_row(&s);
            assert_eq!(suppression_from_row(kind, value).unwrap(), s);
        }
    }
}
