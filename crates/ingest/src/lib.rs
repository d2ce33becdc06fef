//! Events in from applications, through the API analytics clients already
//! speak: the Segment tracking API (`/v1/identify`, `/v1/track`, `/v1/page`,
//! `/v1/screen`, `/v1/group`, `/v1/alias`, `/v1/batch`).
//!
//! - [`event`] parses and validates messages (pure; no I/O).
//! - [`log`] is the durable event log: an event is committed with fsync
//!   (group commit) before it is acknowledged, and a `messageId` seen in the
//!   last 7 days is not stored twice.
//! - [`changes`] feeds ingested events into the change feed.

pub mod changes;
pub mod event;
pub mod log;
pub mod routes;
pub mod source;

pub use event::{Event, EventType, Rejected};
pub use log::{Appended, EventLog, StoredEvent};
pub use routes::routes;
pub use source::IngestSource;

/// The `[ingest]` section of kith.toml.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Serve the Segment-compatible ingest routes (`/v1/...`) in `kith serve`.
    pub enabled: bool,
    /// The event log file, relative to the configuration file.
    pub log: std::path::PathBuf,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            enabled: true,
            log: "events.db".into(),
        }
    }
}

/// Resolves ingested identities off the acknowledgement path: after events
/// are committed the routes wake this task, which (at most every `pause`)
/// syncs the ingest source into the identity index and relinks, then feeds
/// the new events into the change feed (with the parties just resolved).
pub fn spawn_resolver(
    hub: std::sync::Arc<kith_hub::Hub>,
    log: std::sync::Arc<EventLog>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    pause: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // One cycle at start: events committed before a restart may not have
        // been resolved or fed yet.
        wake.notify_one();
        loop {
            wake.notified().await;
            // Let a burst of requests land before resolving them together.
            tokio::time::sleep(pause).await;
            // Events committed after this point are resolved and fed next cycle
            // (their commit wakes it), never fed before their user is linked.
            let upto = match log.latest_seq().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("{e}; retrying in 5 s");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    wake.notify_one();
                    continue;
                }
            };
            match hub
                .sync_one(source::SOURCE, kith_hub::SyncOptions { full: false }, &())
                .await
            {
                Ok(r) => {
                    for s in &r.sources {
                        if let Some(e) = &s.error {
                            tracing::warn!("resolving ingested identities: {e}");
                        }
                    }
                }
                Err(e) => tracing::error!("resolving ingested identities failed: {e}"),
            }
            // A failure leaves the feed's position where it was; the cycle
            // runs again soon even if no event comes to wake it.
            if let Err(e) = changes::feed_events(hub.store().as_ref(), &log, upto).await {
                tracing::error!("{e}; retrying in 5 s");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                wake.notify_one();
            }
        }
    })
}
