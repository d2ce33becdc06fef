use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A source row that could not be read, kept with its reason so that nobody
/// has to guess why a record is missing. Only the location is kept, never the
/// row's content: the row stays in its source, and the hub holds no facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub source: String,
    /// Where the row is: `customers.csv line 17`, `table customers key 42`.
    pub location: String,
    /// The record key, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub reason: String,
    pub seen_at: Timestamp,
}

/// The size and modification time of a file, recorded beside an index built
/// from it; an index whose stamp no longer matches is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub modified_ns: i64,
}
