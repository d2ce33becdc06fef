//! The change feed: what kith observed (see `kith_store::changes`), delivered
//! from the hub store's outbox.
//!
//! - [`routes`]: `GET /api/v1/changes` (server-sent events) and
//!   `GET /api/v1/changes/page` (JSON pages), with an API key of scope `read`.
//! - [`webhook`]: signed webhooks, one task each, in order, retried with
//!   backoff ([`backoff`]) and signed ([`signing`]).
//! - [`nats`]: NATS JetStream, when configured.
//!
//! Every consumer resumes from a position: SSE clients from `Last-Event-ID`
//! (or `?after=`), webhooks and NATS from their cursor in the hub store
//! (`webhook:<name>`, `nats`), advanced only after a delivery succeeded. So a
//! change is delivered at least once and in seq order; a consumer that keeps
//! the highest seq it applied ignores repeats.
//!
//! New changes are noticed by one watcher per process that reads the latest
//! seq every [`POLL`]: changes are written by every part of kith, and by
//! other processes (`kith sync`) sharing the store file, so polling one
//! indexed value is simpler and surer than wiring a notification into each.

pub mod backoff;
mod error;
pub mod nats;
pub mod settings;
pub mod signing;
mod sse;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use kith_store::HubStore;
use tokio::sync::watch;

pub use error::Error;
pub use settings::{ChangesSettings, NatsSettings, WebhookSettings};
pub use sse::routes;

/// How often the latest seq is read. New changes reach SSE clients, webhooks
/// and NATS within about this long of their commit.
pub const POLL: Duration = Duration::from_millis(200);

/// The feed as consumers see it: the store, and the latest seq it holds.
/// Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    store: Arc<dyn HubStore>,
    latest: watch::Receiver<i64>,
}

impl Feed {
    /// Starts the watcher that notices new changes.
    pub async fn watch(store: Arc<dyn HubStore>) -> Result<Feed, Error> {
        let first = store.latest_change_seq().await?;
        let (tx, rx) = watch::channel(first);
        let s = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    // Nobody is left to tell.
                    _ = tx.closed() => return,
                }
                match s.latest_change_seq().await {
                    Ok(seq) => {
                        tx.send_if_modified(|v| {
                            let newer = seq > *v;
                            if newer {
                                *v = seq;
                            }
                            newer
                        });
                    }
                    Err(e) => tracing::warn!("change feed: cannot read the latest change: {e}"),
                }
            }
        });
        Ok(Feed { store, latest: rx })
    }

    pub fn store(&self) -> &Arc<dyn HubStore> {
        &self.store
    }

    /// The latest seq the watcher has seen.
    pub fn latest(&self) -> i64 {
        *self.latest.borrow()
    }

    /// Waits until a change after `seq` exists.
    pub async fn wait_beyond(&self, seq: i64) {
        let mut rx = self.latest.clone();
        if rx.wait_for(|latest| *latest > seq).await.is_err() {
            // The watcher stopped (the runtime is shutting down): do not spin.
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The delivery tasks that were started, for logs and tests.
#[derive(Debug, Default)]
pub struct Started {
    pub webhooks: Vec<String>,
    pub nats: Option<String>,
}

/// Starts every configured delivery: one task per enabled webhook and one
/// for NATS. Fails before starting anything when a webhook's secret is
/// missing from the environment; a receiver or NATS server that is down is
/// not an error here — its task retries until it answers.
pub async fn start(settings: &ChangesSettings, feed: &Feed) -> Result<Started, Error> {
    let mut hooks = Vec::new();
    for (index, hook) in settings.webhooks.iter().enumerate() {
        if !hook.enabled {
            continue;
        }
        let secret = webhook::secret(index, hook)?;
        hooks.push((hook.clone(), secret));
    }
    let mut started = Started::default();
    for (hook, secret) in hooks {
        started.webhooks.push(hook.name.clone());
        webhook::spawn(feed.clone(), hook, secret)?;
    }
    if let Some(n) = settings.nats.as_ref().filter(|n| n.enabled) {
        started.nats = Some(format!("{} stream {}", n.url, n.stream));
        nats::spawn(feed.clone(), n.clone());
    }
    spawn_pruning(feed.store().clone(), settings.retain, settings.consumers());
    Ok(started)
}

/// Prunes changes older than `retain` now and hourly, keeping what the
/// deliveries (`consumers`) have not passed yet.
fn spawn_pruning(
    store: std::sync::Arc<dyn kith_store::HubStore>,
    retain: std::time::Duration,
    consumers: Vec<String>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let before = chrono::Utc::now()
                - chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
            match store.prune_changes(before, &consumers).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("change feed: pruned {n} changes older than {before}"),
                Err(e) => tracing::warn!("change feed: could not prune: {e}"),
            }
        }
    });
}

/// Says so when a delivery resumes below what was pruned: it was disabled
/// (or stopped) for longer than `[changes] retain` and missed changes.
pub(crate) async fn warn_if_pruned(feed: &Feed, consumer: &str, cursor: i64) {
    if let Ok(pruned) = feed.store().pruned_through().await
        && cursor < pruned
    {
        tracing::warn!(
            "change feed: {consumer} resumes after {cursor}, but changes up to {pruned} were \
             pruned ([changes] retain): it missed some; re-read the state through the API"
        );
    }
}
