//! Who may reach what: API keys, staff users, sign-in sessions, one-time
//! sign-in codes for customers, and erasure requests.
//!
//! Secrets are never stored: keys, session tokens and codes are kept as
//! SHA-256 hashes (keys and tokens are long random strings, so a plain hash
//! is enough; codes are short, so their attempts are counted and capped), and
//! staff passwords as Argon2 PHC strings made by the caller.

use kith_model::{PartyId, RecordRef, Timestamp};
use serde::{Deserialize, Serialize};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiScope {
    /// Read parties, views, search, timeline, links, evidence, the review queue.
    Read,
    /// Read, and add contributions (corrections, preferences, consents) and review decisions.
    Contribute,
    /// Send events to the ingest API only; reads nothing.
    Ingest,
}

impl ApiScope {
    pub const ALL: [ApiScope; 3] = [ApiScope::Read, ApiScope::Contribute, ApiScope::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Contribute => "contribute",
            ApiScope::Ingest => "ingest",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Whether a key of this scope may do what `needed` allows.
    pub fn allows(self, needed: ApiScope) -> bool {
        match needed {
            ApiScope::Read => matches!(self, ApiScope::Read | ApiScope::Contribute),
            ApiScope::Contribute => self == ApiScope::Contribute,
            ApiScope::Ingest => self == ApiScope::Ingest,
        }
    }
}

/// An API key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: i64,
    pub label: String,
    pub scope: ApiScope,
    /// The key's first characters (`kith_ab12…`), so people can tell keys apart.
    pub prefix: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub label: String,
    pub scope: ApiScope,
    pub prefix: String,
    /// Lower-case hex SHA-256 of the whole key.
    pub hash: String,
    pub created_at: Timestamp,
}

/// What a member of staff may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Read parties, decide reviews, answer customers' requests.
    Agent,
    /// Everything an agent may, and configuration, API keys and users.
    Admin,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Agent => "agent",
            StaffRole::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(StaffRole::Agent),
            "admin" => Some(StaffRole::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffUser {
    pub id: i64,
    /// Lower-case; unique.
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    /// Argon2 PHC string.
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewStaffUser {
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionSubject {
    /// A customer proven to be `party` by a one-time code sent to `identifier`
    /// (a normalised verified identifier such as `email:ann@example.com`).
    Customer {
        party: PartyId,
        identifier: String,
    },
    Staff {
        user: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Lower-case hex SHA-256 of the session token in the cookie.
    pub token_hash: String,
    pub subject: SessionSubject,
    /// The session's anti-forgery token, echoed by every form.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The User-Agent the session was created with; a request from another is refused.
    pub user_agent: String,
}

/// A one-time sign-in code, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginCode {
    pub id: i64,
    /// The normalised identifier the code was sent to.
    pub identifier: String,
    pub party: PartyId,
    /// Lower-case hex SHA-256 of `"{id-salt}:{code}"`, made by the caller.
    pub code_hash: String,
    pub salt: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewLoginCode {
    pub identifier: String,
    pub party: PartyId,
    pub code_hash: String,
    pub salt: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What was done, or asked of a source, for one erasure request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureReceipt {
    /// A source's name, or `kith` for the hub's own data.
    pub source: String,
    /// The source records concerned.
    pub records: Vec<RecordRef>,
    /// `erased` (kith did it) or `requested` (the source's owner must).
    pub action: String,
    pub detail: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureRequest {
    pub id: i64,
    pub party: PartyId,
    /// `customer:<party>` or `staff:<email>`.
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub receipts: Vec<ErasureReceipt>,
}
