use std::cmp::Ordering;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The position of a source's incremental cursor: an updated-at time or a
/// high-water mark (a sequence number or an id that only grows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum CursorValue {
    Time(Timestamp),
    Int(i64),
}

impl CursorValue {
    /// The cursor moved back by an overlap window, so a re-read catches rows
    /// that were written late with an older cursor value (clock skew, long
    /// transactions). Upserts are idempotent, so re-reading costs only time.
    pub fn minus_overlap(&self, time: Duration, rows: i64) -> CursorValue {
        match self {
            CursorValue::Time(t) => CursorValue::Time(*t - time),
            CursorValue::Int(i) => CursorValue::Int(i.saturating_sub(rows)),
        }
    }

    /// The greater of two cursors of the same type; a time always wins over an int
    /// (a source does not change its cursor type between runs).
    pub fn max(self, other: CursorValue) -> CursorValue {
        match self.partial_cmp(&other) {
            Some(Ordering::Less) => other,
            _ => self,
        }
    }
}

impl PartialOrd for CursorValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (CursorValue::Time(a), CursorValue::Time(b)) => a.partial_cmp(b),
            (CursorValue::Int(a), CursorValue::Int(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_moves_back() {
        let t: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        assert_eq!(
            CursorValue::Time(t).minus_overlap(Duration::minutes(10), 0),
            CursorValue::Time("2024-05-01T09:50:00Z".parse().unwrap())
        );
        assert_eq!(
            CursorValue::Int(100).minus_overlap(Duration::zero(), 5),
            CursorValue::Int(95)
        );
        assert_eq!(
            CursorValue::Int(3).max(CursorValue::Int(9)),
            CursorValue::Int(9)
        );
    }
}
