//! NATS JetStream: each change is published to `<subject_prefix>.<kind>`
//! (`kith.changes.consent.changed`) with header `Nats-Msg-Id: <seq>`, in seq
//! order, into a stream created on `<subject_prefix>.>` when missing.
//!
//! A batch is published without waiting, then every publish acknowledgement
//! is awaited, and only then does the cursor (`nats`) move. A crash or a lost
//! connection in between means the batch is published again from the cursor;
//! JetStream drops a message whose `Nats-Msg-Id` it saw within the stream's
//! duplicate window (2 minutes unless the stream says otherwise), so such a
//! redelivery stores nothing twice. A subscriber that was down longer than
//! the window should still skip seqs it has applied.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use kith_store::Change;

use crate::settings::{NATS_CONSUMER, NatsSettings};
use crate::{Feed, backoff};

/// Why publishing stopped (it is retried from the cursor after a backoff).
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("stream {stream}: {detail}")]
    Stream { stream: String, detail: String },
    #[error("publishing change {seq} to {subject}: {source}")]
    Publish {
        seq: i64,
        subject: String,
        #[source]
        source: jetstream::context::PublishError,
    },
    #[error("change feed: {0}")]
    Store(#[from] kith_store::Error),
}

/// The subject a change is published to.
pub fn subject(prefix: &str, change: &Change) -> String {
    format!("{prefix}.{}", change.kind.as_str())
}

/// Whether a stream subject (which may hold `*` and `>`) captures every
/// subject under `prefix`.
pub fn covers(pattern: &str, prefix: &str) -> bool {
    let mut pattern = pattern.split('.');
    for token in prefix.split('.') {
        match pattern.next() {
            Some(">") => return true,
            Some("*") => {}
            Some(p) if p == token => {}
            _ => return false,
        }
    }
    // Past the prefix, only `>` takes every kind (`a.b` is one token more than `a`).
    pattern.next() == Some(">") && pattern.next().is_none()
}

/// Starts publishing to NATS JetStream; runs (reconnecting) until aborted.
pub fn spawn(feed: Feed, settings: NatsSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            let Err(e) = publish(&feed, &settings, &mut attempt).await;
            let wait = backoff::next(attempt);
            tracing::warn!(
                "NATS change feed ({}): {e}; retrying in {:.1}s",
                settings.url,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            attempt = attempt.saturating_add(1);
        }
    })
}

/// Makes sure the stream exists and captures the feed's subjects.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &NatsSettings,
) -> Result<(), NatsError> {
    let wanted = format!("{}.>", settings.subject_prefix);
    let fail = |detail: String| NatsError::Stream {
        stream: settings.stream.clone(),
        detail,
    };
    let stream = js
        .get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![wanted.clone()],
            ..Default::default()
        })
        .await
        .map_err(|e| fail(format!("cannot be found or created: {e}")))?;
    let subjects = &stream.cached_info().config.subjects;
    if !subjects.iter().any(|s| covers(s, &settings.subject_prefix)) {
        return Err(fail(format!(
            "exists with subjects {subjects:?}, which do not take {wanted}; add it to the stream or choose another stream"
        )));
    }
    Ok(())
}

/// Connects and publishes until something fails. `attempt` is reset after
/// every batch that got through.
async fn publish(
    feed: &Feed,
    settings: &NatsSettings,
    attempt: &mut u32,
) -> Result<std::convert::Infallible, NatsError> {
    let client = async_nats::ConnectOptions::new()
        .name("kith change feed")
        .connection_timeout(Duration::from_secs(5))
        .connect(settings.url.as_str())
        .await
        .map_err(|source| NatsError::Connect {
            url: settings.url.clone(),
            source,
        })?;
    let js = jetstream::new(client);
    ensure_stream(&js, settings).await?;
    let store = feed.store();
    let mut cursor = store.feed_cursor(NATS_CONSUMER).await?.unwrap_or(0);
    crate::warn_if_pruned(feed, NATS_CONSUMER, cursor).await;
    tracing::info!(
        "NATS change feed publishing changes after {cursor} to stream {} ({}.>)",
        settings.stream,
        settings.subject_prefix
    );
    loop {
        let batch = store.changes_after(cursor, settings.batch).await?;
        let Some(last) = batch.last().map(|c| c.seq) else {
            feed.wait_beyond(cursor).await;
            continue;
        };
        let mut acks = Vec::with_capacity(batch.len());
        for c in &batch {
            let subject = subject(&settings.subject_prefix, c);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, c.seq.to_string());
            let payload = serde_json::to_vec(c).expect("changes serialise to JSON");
            let ack = js
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .map_err(|source| NatsError::Publish {
                    seq: c.seq,
                    subject: subject.clone(),
                    source,
                })?;
            acks.push((c.seq, subject, ack));
        }
        // In order: the cursor may only pass changes JetStream has stored.
        for (seq, subject, ack) in acks {
            ack.await.map_err(|source| NatsError::Publish {
                seq,
                subject,
                source,
            })?;
        }
        store.set_feed_cursor(NATS_CONSUMER, last).await?;
        cursor = last;
        *attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_subjects_that_take_the_feed() {
        assert!(covers("kith.changes.>", "kith.changes"));
        assert!(covers("kith.>", "kith.changes"));
        assert!(covers(">", "kith.changes"));
        assert!(covers("kith.*.>", "kith.changes"));
        assert!(!covers("kith.changes.*", "kith.changes"), "one token only");
        assert!(!covers("kith.changes", "kith.changes"));
        assert!(!covers("other.>", "kith.changes"));
        assert!(!covers("kith.changes.record.>", "kith.changes"));
    }
}
