//! Signed webhooks: one task per webhook POSTs batches of changes in seq
//! order, `{"changes": [...]}`, signed with HMAC-SHA256 ([`crate::signing`]).
//!
//! A batch is the next `batch` changes after the webhook's cursor
//! (`webhook:<name>`), less the kinds it does not want. On a 2xx the cursor
//! moves past the batch; on anything else (an error status, a timeout, a
//! refused connection) the same batch — same body, same `X-Kith-Delivery` —
//! is sent again after a backoff ([`crate::backoff`]), or after the
//! receiver's `Retry-After` on a 429 or 503. Nothing is ever skipped: a
//! receiver that keeps failing holds its webhook where it is (and only that
//! one), and the log says why.

use std::time::Duration;

use axum::http::StatusCode;
use kith_store::Change;
use serde::Serialize;

use crate::settings::WebhookSettings;
use crate::signing::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::{Error, Feed, backoff};

/// The shortest signing key accepted.
pub const MIN_SECRET: usize = 16;

/// The webhook's signing key, from the environment variable it names.
pub(crate) fn secret(index: usize, hook: &WebhookSettings) -> Result<Vec<u8>, Error> {
    let value = std::env::var(&hook.secret_env)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::MissingSecret {
            index,
            name: hook.name.clone(),
            var: hook.secret_env.clone(),
        })?;
    if value.len() < MIN_SECRET {
        return Err(Error::WeakSecret {
            index,
            name: hook.name.clone(),
            var: hook.secret_env.clone(),
            len: value.len(),
            min: MIN_SECRET,
        });
    }
    Ok(value.into_bytes())
}

/// The body of one delivery.
#[derive(Serialize)]
struct Body<'a> {
    changes: Vec<&'a Change>,
}

/// Why one attempt failed, and when the receiver asked to be tried again.
#[derive(Debug)]
struct Failed {
    why: String,
    retry_after: Option<Duration>,
}

/// Starts delivering to one webhook with its signing key; runs until aborted.
pub fn spawn(
    feed: Feed,
    hook: WebhookSettings,
    secret: Vec<u8>,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let client = reqwest::Client::builder()
        .timeout(hook.timeout)
        .user_agent(concat!("kith/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| Error::Client {
            name: hook.name.clone(),
            source,
        })?;
    Ok(tokio::spawn(run(feed, hook, secret, client)))
}

async fn run(feed: Feed, hook: WebhookSettings, secret: Vec<u8>, client: reqwest::Client) {
    let consumer = hook.consumer();
    let store = feed.store().clone();
    let mut store_failures = 0;
    let mut cursor = loop {
        match store.feed_cursor(&consumer).await {
            Ok(c) => break c.unwrap_or(0),
            Err(e) => {
                tracing::warn!("webhook {}: cannot read its position: {e}", hook.name);
                tokio::time::sleep(backoff::next(store_failures)).await;
                store_failures += 1;
            }
        }
    };
    crate::warn_if_pruned(&feed, &consumer, cursor).await;
    tracing::info!(
        "webhook {} delivering changes after {cursor} to {}",
        hook.name,
        hook.url
    );
    loop {
        let batch = match store.changes_after(cursor, hook.batch).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("webhook {}: cannot read changes: {e}", hook.name);
                tokio::time::sleep(backoff::next(store_failures)).await;
                store_failures += 1;
                continue;
            }
        };
        let Some(last) = batch.last().map(|c| c.seq) else {
            feed.wait_beyond(cursor).await;
            continue;
        };
        let wanted: Vec<&Change> = batch.iter().filter(|c| hook.wants(c.kind)).collect();
        if let (Some(first), Some(end)) = (wanted.first(), wanted.last()) {
            let body = serde_json::to_vec(&Body {
                changes: wanted.clone(),
            })
            .expect("changes serialise to JSON");
            let delivery = format!("{}-{}", first.seq, end.seq);
            deliver(&hook, &secret, &client, &body, &delivery).await;
        }
        // The position moves only after the receiver took the batch (or it
        // held nothing for this webhook). Failing to store it means the batch
        // is sent again: at least once, never lost.
        loop {
            match store.set_feed_cursor(&consumer, last).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!("webhook {}: cannot store its position: {e}", hook.name);
                    tokio::time::sleep(backoff::next(store_failures)).await;
                    store_failures += 1;
                }
            }
        }
        store_failures = 0;
        cursor = last;
    }
}

/// Sends one batch until the receiver takes it.
async fn deliver(
    hook: &WebhookSettings,
    secret: &[u8],
    client: &reqwest::Client,
    body: &[u8],
    delivery: &str,
) {
    let signature = sign(secret, body);
    let mut attempt = 0;
    loop {
        match post(client, &hook.url, body, &signature, delivery).await {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!(
                        "webhook {}: delivery {delivery} taken after {attempt} retries",
                        hook.name
                    );
                }
                return;
            }
            Err(f) => {
                let wait = f.retry_after.unwrap_or_else(|| backoff::next(attempt));
                tracing::warn!(
                    "webhook {}: delivery {delivery} failed ({}); retrying in {:.1}s",
                    hook.name,
                    f.why,
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: &str,
    delivery: &str,
) -> Result<(), Failed> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(DELIVERY_HEADER, delivery)
        .header(TIMESTAMP_HEADER, chrono::Utc::now().timestamp().to_string())
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| Failed {
            why: describe(&e),
            retry_after: None,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after =
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| backoff::parse_retry_after(v, chrono::Utc::now()))
        } else {
            None
        };
    Err(Failed {
        why: format!("HTTP {status}"),
        retry_after,
    })
}

/// reqwest's error with its causes, which say what actually went wrong.
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
