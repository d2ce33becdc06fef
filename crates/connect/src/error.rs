use std::path::PathBuf;

use thiserror::Error;

/// Errors of connectors. Each names the source and where in it.
#[derive(Debug, Error)]
pub enum Error {
    #[error("source {source_name}: {message}")]
    Config {
        source_name: String,
        message: String,
    },
    /// A file could not be opened or read.
    #[error("source {source_name}: cannot read {}: {error}", path.display())]
    File {
        source_name: String,
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// The source is not reachable (file or database missing, server down).
    #[error("source {source_name} is unreachable: {message}")]
    Unreachable {
        source_name: String,
        message: String,
    },
    /// A query failed.
    #[error("source {source_name}: {context}: {error}")]
    Query {
        source_name: String,
        context: String,
        #[source]
        error: sqlx::Error,
    },
    /// The source answered something the mapping cannot use (a missing column, say).
    #[error("source {source_name}: {message}")]
    Mapping {
        source_name: String,
        message: String,
    },
    /// An HTTP API answered with an error, not in time, or with a body that cannot be read.
    #[error("source {source_name}: {message}")]
    Http {
        source_name: String,
        message: String,
    },
    /// The source did not answer in time (a server statement timeout, or no
    /// HTTP response within the configured time).
    #[error("source {source_name} timed out: {message}")]
    TimedOut {
        source_name: String,
        message: String,
    },
    /// The hub store failed while a file index was read or written.
    #[error("source {source_name}: file index: {message}")]
    Index {
        source_name: String,
        message: String,
    },
}

impl Error {
    /// Whether the error means the source could not be reached at all (as opposed to failing).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
            || matches!(self, Error::File { error, .. } if error.kind() == std::io::ErrorKind::NotFound)
    }
}

impl Error {
    /// Whether the source was reached but did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
