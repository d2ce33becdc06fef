//! `GET /api/v1/changes` (server-sent events) and `GET /api/v1/changes/page`
//! (JSON pages), for consumers holding an API key of scope `read`.
//!
//! Each event is `id: <seq>`, `event: <kind>`, `data: <the change as JSON>`.
//! A client resumes with `Last-Event-ID` (which browsers' `EventSource`
//! send by themselves on reconnecting) or `?after=<seq>`; the header wins,
//! since a reconnecting client repeats its original URL. Without either the
//! stream starts at the oldest change kept; `after=latest` starts at the end.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use kith_store::{ApiScope, Change, ChangeKind};
use kith_web::AppState;
use kith_web::auth::keys::{ApiAuthError, ApiCaller};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use crate::Feed;

/// Changes read from the store at a time for one stream.
const READ: usize = 500;
/// Events buffered for a slow client before the stream waits for it.
const BUFFER: usize = 256;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

/// The feed's routes, for `kith serve` to merge with the others.
pub fn routes(feed: Feed) -> Router<AppState> {
    Router::new()
        .route("/api/v1/changes", get(stream))
        .route("/api/v1/changes/page", get(page))
        // An extension rather than the router's state: the API key check
        // needs kith's `AppState` as the state.
        .layer(Extension(feed))
}

/// The same `{"error": "..."}` body every API refusal has.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ApiAuthError> for Refused {
    fn from(e: ApiAuthError) -> Self {
        if let ApiAuthError::Store(err) = &e {
            tracing::error!("API key check failed: {err}");
        }
        Refused(e.status(), e.to_string())
    }
}

impl From<kith_store::Error> for Refused {
    fn from(e: kith_store::Error) -> Self {
        tracing::error!("change feed: {e}");
        Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the hub store is unavailable; retry".into(),
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// A seq, or `latest`.
    after: Option<String>,
    /// Comma-separated kinds to keep.
    kinds: Option<String>,
    /// Page size (`/page` only).
    limit: Option<usize>,
}

fn bad(message: String) -> Refused {
    Refused(StatusCode::BAD_REQUEST, message)
}

/// Where to start: `Last-Event-ID`, else `after`, else the beginning.
/// Resuming from a seq whose successors were pruned is `410 Gone`: the
/// client would miss changes without knowing.
async fn start_after(
    feed: &Feed,
    headers: &HeaderMap,
    after: Option<&str>,
) -> Result<i64, Refused> {
    let resume = if let Some(v) = headers.get("last-event-id") {
        let text = v.to_str().unwrap_or("").trim();
        text.parse::<i64>()
            .map_err(|_| bad(format!("Last-Event-ID {text:?} is not a change seq")))?
    } else {
        match after.map(str::trim) {
            None | Some("") => return Ok(0),
            Some("latest") => return Ok(feed.store().latest_change_seq().await?),
            Some(s) => s
                .parse::<i64>()
                .map_err(|_| bad(format!("after={s:?} is not a change seq (or `latest`)")))?,
        }
    };
    let pruned = feed.store().pruned_through().await?;
    if resume < pruned {
        return Err(Refused(
            StatusCode::GONE,
            format!(
                "changes up to seq {pruned} were pruned (kept for [changes] retain), so resuming \
                 after {resume} would miss some: read the current state through the API, then \
                 resume with after=latest"
            ),
        ));
    }
    Ok(resume)
}

/// The kinds to keep, all when `None`.
fn kinds(list: Option<&str>) -> Result<Option<Vec<ChangeKind>>, Refused> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    list.split(',')
        .map(|k| {
            ChangeKind::parse(k.trim()).ok_or_else(|| {
                let known: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                bad(format!(
                    "kinds: {:?} is not a change kind; kinds are {}",
                    k.trim(),
                    known.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn keep(kinds: &Option<Vec<ChangeKind>>, c: &Change) -> bool {
    kinds.as_ref().is_none_or(|k| k.contains(&c.kind))
}

fn event(c: &Change) -> Event {
    Event::default()
        .id(c.seq.to_string())
        .event(c.kind.as_str())
        .data(serde_json::to_string(c).expect("changes serialise to JSON"))
}

async fn stream(
    Extension(feed): Extension<Feed>,
    caller: Result<ApiCaller, ApiAuthError>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Refused> {
    caller?.require(ApiScope::Read)?;
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    if params.limit.is_some() {
        return Err(bad(
            "limit is for /api/v1/changes/page; a stream has no pages".into(),
        ));
    }
    let after = start_after(&feed, &headers, params.after.as_deref()).await?;
    let kinds = kinds(params.kinds.as_deref())?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(pump(feed, after, kinds, tx));
    let events =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Reads changes after `after` and sends them to one client until it goes away.
async fn pump(feed: Feed, mut after: i64, kinds: Option<Vec<ChangeKind>>, tx: mpsc::Sender<Event>) {
    loop {
        let batch = match feed.store().changes_after(after, READ).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("change feed stream: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = tx.closed() => return,
                }
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = feed.wait_beyond(after) => continue,
                // The client disconnected while nothing was happening.
                _ = tx.closed() => return,
            }
        }
        for c in &batch {
            after = c.seq;
            if keep(&kinds, c) && tx.send(event(c)).await.is_err() {
                return;
            }
        }
    }
}

/// A page of changes, for consumers that poll.
#[derive(Debug, Serialize)]
struct Page {
    changes: Vec<Change>,
    /// Pass as `after` for the next page (past changes the filter dropped too).
    next_after: i64,
    /// Whether more changes follow `next_after` already.
    more: bool,
    /// The newest seq the store has given out.
    latest_seq: i64,
}

async fn page(
    Extension(feed): Extension<Feed>,
    caller: Result<ApiCaller, ApiAuthError>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Page>, Refused> {
    caller?.require(ApiScope::Read)?;
    let Query(params) = params.map_err(|e| bad(e.body_text()))?;
    let limit = params.limit.unwrap_or(PAGE_DEFAULT);
    if limit == 0 || limit > PAGE_MAX {
        return Err(bad(format!("limit must be 1 to {PAGE_MAX}")));
    }
    let after = start_after(&feed, &headers, params.after.as_deref()).await?;
    let kinds = kinds(params.kinds.as_deref())?;
    let batch = feed.store().changes_after(after, limit).await?;
    let next_after = batch.last().map_or(after, |c| c.seq);
    let latest_seq = feed.store().latest_change_seq().await?;
    Ok(Json(Page {
        changes: batch.into_iter().filter(|c| keep(&kinds, c)).collect(),
        next_after,
        more: latest_seq > next_after,
        latest_seq,
    }))
}
