use thiserror::Error;

/// Why the change feed could not start.
#[derive(Debug, Error)]
pub enum Error {
    /// A webhook's signing key is not in the environment (a user can fix this).
    #[error(
        "changes.webhooks[{index}].secret_env: the environment variable {var} is not set or empty; webhook {name} signs its deliveries with the key it holds"
    )]
    MissingSecret {
        index: usize,
        name: String,
        var: String,
    },
    /// A webhook's signing key is too short to resist guessing.
    #[error(
        "changes.webhooks[{index}].secret_env: the key in {var} has {len} bytes; webhook {name} needs at least {min} (e.g. 32 random bytes, hex-encoded)"
    )]
    WeakSecret {
        index: usize,
        name: String,
        var: String,
        len: usize,
        min: usize,
    },
    #[error("change feed: {0}")]
    Store(#[from] kith_store::Error),
    /// The HTTP client for a webhook could not be built.
    #[error("webhook {name}: {source}")]
    Client {
        name: String,
        #[source]
        source: reqwest::Error,
    },
}
