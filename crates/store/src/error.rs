use thiserror::Error;

/// Errors of the hub store.
#[derive(Debug, Error)]
pub enum Error {
    /// The store could not be opened or reached (a user can fix this: path, permissions, server).
    #[error("cannot open hub store {target}: {source}")]
    Open {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// The store's schema is newer than this kith understands.
    #[error(
        "hub store {target} is at schema version {found}, newer than this kith ({supported}); upgrade kith"
    )]
    TooNew {
        target: String,
        found: i64,
        supported: i64,
    },
    #[error("hub store migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A query failed (an internal error unless the database went away).
    #[error("hub store: {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A read made on the calling thread failed (the same as [`Error::Query`],
    /// from the store's other SQLite driver).
    #[error("hub store: {context}: {source}")]
    Read {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data could not be decoded: the store was written by something else or is damaged.
    #[error("hub store holds unreadable data in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A caller asked for something that contradicts what is stored.
    #[error("{0}")]
    Invalid(String),
    /// Something unique already exists (a staff e-mail address taken).
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn read(context: &'static str, source: rusqlite::Error) -> Self {
        Error::Read {
            context,
            source: Box::new(source),
        }
    }
}

/// Adds a context to sqlx errors at the call site.
pub(crate) trait QueryContext<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> QueryContext<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| Error::Query { context, source })
    }
}
