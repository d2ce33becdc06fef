use thiserror::Error;

/// Errors of the hub. A source failing is not one of them: it is reported
/// per source in sync reports and views.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Connect(#[from] kith_connect::Error),
    #[error(transparent)]
    Store(#[from] kith_store::Error),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored (dispute the only record of a party).
    #[error("{0}")]
    Invalid(String),
    #[error("{query} is held by several parties: {}; ask by party id", parties.join(", "))]
    Ambiguous { query: String, parties: Vec<String> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
