//! The Segment tracking API's routes, so existing client libraries (Segment's,
//! RudderStack's) work by pointing their host at kith.
//!
//! The write key is an API key with scope `ingest`, sent as Segment clients
//! send it: HTTP Basic with the key as user name (or `Authorization: Bearer`,
//! or `writeKey` in the body). Bodies may be gzip-compressed. An event is
//! acknowledged only once it is durable in the [`EventLog`].

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use base64::Engine;
use chrono::Utc;
use kith_store::ApiScope;
use kith_web::AppState;
use kith_web::auth::keys::{self, ApiAuthError};
use serde_json::{Value, json};

use crate::event::{self, EventType, MAX_BATCH_BYTES, MAX_EVENT_BYTES, Rejected};
use crate::log::{Appended, EventLog};

#[derive(Clone)]
struct Ingest {
    app: AppState,
    log: Arc<EventLog>,
    /// Wakes the resolver once events are committed.
    wake: Arc<tokio::sync::Notify>,
}

/// `/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias`, `/v1/batch`.
pub fn routes(
    app: AppState,
    log: Arc<EventLog>,
    wake: Arc<tokio::sync::Notify>,
) -> Router<AppState> {
    let state = Ingest { app, log, wake };
    let mut r = Router::new().route("/v1/batch", post(batch));
    for t in EventType::ALL {
        r = r.route(
            &format!("/v1/{}", t.as_str()),
            post(move |s: State<Ingest>, h: HeaderMap, b: Bytes| single(s, h, b, t)),
        );
    }
    r.with_state(state)
}

/// A 4xx/5xx with a reason, as JSON.
struct Problem(StatusCode, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "success": false, "error": self.1 }))).into_response()
    }
}

impl From<ApiAuthError> for Problem {
    fn from(e: ApiAuthError) -> Self {
        let status = e.status();
        Problem(status, e.to_string())
    }
}

/// The write key: HTTP Basic user name (Segment's clients), a bearer token, or `writeKey` in the body.
fn write_key(headers: &HeaderMap, body: &Value) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(b64) = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return Some(text.split(':').next().unwrap_or("").to_string());
        }
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim().to_string());
        }
    }
    body.get("writeKey")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The body as JSON: gunzipped when the client says so, within `limit` bytes.
fn read_body(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Value, Problem> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let raw: Vec<u8> = match encoding.as_str() {
        "identity" | "" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            // Read one byte past the limit, so a zip bomb stops there.
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    Problem(
                        StatusCode::BAD_REQUEST,
                        format!("the gzip body cannot be read: {e}"),
                    )
                })?;
            out
        }
        other => {
            return Err(Problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported; send gzip or no encoding"),
            ));
        }
    };
    if raw.len() > limit {
        return Err(Problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} KB, the limit for this request",
                limit / 1024
            ),
        ));
    }
    serde_json::from_slice(&raw).map_err(|e| {
        Problem(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

async fn authorise(s: &Ingest, headers: &HeaderMap, body: &Value) -> Result<(), Problem> {
    let key = write_key(headers, body).ok_or(ApiAuthError::Missing)?;
    let key = keys::check(s.app.store().as_ref(), &key).await?;
    if !key.scope.allows(ApiScope::Ingest) {
        return Err(ApiAuthError::Scope(ApiScope::Ingest).into());
    }
    Ok(())
}

async fn store(
    s: &Ingest,
    events: Vec<event::Event>,
    rejected: &[Rejected],
) -> Result<Value, Problem> {
    let received = events
        .first()
        .map(|e| e.received_at)
        .unwrap_or_else(Utc::now);
    if !rejected.is_empty() {
        for r in rejected {
            tracing::info!(
                "ingest rejected event {} ({:?}): {}",
                r.index,
                r.message_id,
                r.reason
            );
        }
        if let Err(e) = s.log.reject(received, rejected).await {
            tracing::error!("could not record rejected events: {e}");
        }
    }
    let outcomes = s.log.append(events).await.map_err(|e| {
        tracing::error!("ingest: {e}");
        Problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event log cannot take events now; retry".into(),
        )
    })?;
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == Appended::Duplicate)
        .count();
    if duplicates < outcomes.len() {
        s.wake.notify_one();
    }
    Ok(json!({
        "success": true,
        "accepted": outcomes.len() - duplicates,
        "duplicates": duplicates,
        "rejected": rejected,
    }))
}

async fn single(
    State(s): State<Ingest>,
    headers: HeaderMap,
    body: Bytes,
    kind: EventType,
) -> Response {
    let run = async {
        let value = read_body(&headers, &body, MAX_EVENT_BYTES)?;
        authorise(&s, &headers, &value).await?;
        let event = event::parse(value, Some(kind), None, Utc::now(), 0)
            .map_err(|r| Problem(StatusCode::BAD_REQUEST, r.reason))?;
        store(&s, vec![event], &[]).await
    };
    match run.await {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn batch(State(s): State<Ingest>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let value = read_body(&headers, &body, MAX_BATCH_BYTES)?;
        authorise(&s, &headers, &value).await?;
        let (events, rejected) = event::parse_batch(value, Utc::now())
            .map_err(|m| Problem(StatusCode::BAD_REQUEST, m))?;
        store(&s, events, &rejected).await
    };
    match run.await {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(p) => p.into_response(),
    }
}
