//! The demo's loyalty platform: a small HTTP JSON API in front of the
//! loyalty scheme's data, the way a SaaS loyalty provider would expose it.
//! `kith demo` starts it so one of the five sources is a live web service.
//!
//! - `GET /v1/members?updated_since=<RFC 3339>&page=<n>` → `{"data": […], "next": "/v1/members?…"}`
//! - `GET /v1/members/{card_no}` → one member, or 404
//! - `GET /v1/members/{card_no}/entitlements` → `{"data": […]}`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Members per page of the listing.
const PAGE: usize = 250;

type Row = Map<String, Value>;

struct Data {
    /// Members in card order.
    members: Vec<Row>,
    by_card: BTreeMap<String, usize>,
    entitlements: BTreeMap<String, Vec<Row>>,
}

/// A running loyalty API; it stops when dropped.
pub struct LoyaltyApi {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl LoyaltyApi {
    /// The base URL sources should use.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for LoyaltyApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn read_csv(path: &Path) -> Result<Vec<Row>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        let row: Row = headers
            .iter()
            .zip(rec.iter())
            .map(|(h, v)| {
                // Points are numbers in the platform's API; everything else is text.
                let value = match (h, v.parse::<i64>()) {
                    ("points", Ok(n)) => json!(n),
                    _ if v.is_empty() => Value::Null,
                    _ => json!(v),
                };
                (h.to_string(), value)
            })
            .collect();
        out.push(row);
    }
    Ok(out)
}

fn load(dir: &Path) -> Result<Data> {
    let members = read_csv(&dir.join("loyalty/members.csv"))?;
    let by_card = members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            m.get("card_no")
                .and_then(Value::as_str)
                .map(|c| (c.to_string(), i))
        })
        .collect();
    let mut entitlements: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for e in read_csv(&dir.join("loyalty/entitlements.csv"))? {
        if let Some(card) = e.get("card_no").and_then(Value::as_str) {
            entitlements
                .entry(card.to_string())
                .or_default()
                .push(e.clone());
        }
    }
    Ok(Data {
        members,
        by_card,
        entitlements,
    })
}

/// Loads the loyalty data from `dir` and serves it on `listen` (port 0 picks one).
pub async fn start(dir: &Path, listen: SocketAddr) -> Result<LoyaltyApi> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("the demo loyalty API cannot listen on {listen}"))?;
    serve(dir, listener)
}

/// Loads the loyalty data from `dir` and serves it on a listener bound
/// earlier (the demo binds first, so the configuration can name the port).
pub fn serve(dir: &Path, listener: tokio::net::TcpListener) -> Result<LoyaltyApi> {
    let data = Arc::new(load(dir)?);
    let app = Router::new()
        .route("/v1/members", get(list))
        .route("/v1/members/{card}", get(member))
        .route("/v1/members/{card}/entitlements", get(entitlements))
        .with_state(data);
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("demo loyalty API stopped: {e}");
        }
    });
    Ok(LoyaltyApi { addr, task })
}

#[derive(Deserialize)]
struct ListQuery {
    updated_since: Option<String>,
    page: Option<usize>,
}

async fn list(State(data): State<Arc<Data>>, Query(q): Query<ListQuery>) -> Response {
    let since = match q
        .updated_since
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "updated_since must be RFC 3339"})),
            )
                .into_response();
        }
        Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
        None => None,
    };
    let page = q.page.unwrap_or(1).max(1);
    let matching: Vec<&Row> = data
        .members
        .iter()
        .filter(|m| match since {
            None => true,
            Some(s) => m
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok())
                .is_none_or(|u| u >= s),
        })
        .collect();
    let items: Vec<&Row> = matching
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .copied()
        .collect();
    let next = (page * PAGE < matching.len()).then(|| {
        let mut n = format!("/v1/members?page={}", page + 1);
        if let Some(s) = &q.updated_since {
            n.push_str(&format!(
                "&updated_since={}",
                s.replace('+', "%2B").replace(':', "%3A")
            ));
        }
        n
    });
    Json(json!({ "data": items, "next": next })).into_response()
}

async fn member(State(data): State<Arc<Data>>, UrlPath(card): UrlPath<String>) -> Response {
    match data.by_card.get(&card) {
        Some(&i) => Json(Value::Object(data.members[i].clone())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such member"})),
        )
            .into_response(),
    }
}

async fn entitlements(State(data): State<Arc<Data>>, UrlPath(card): UrlPath<String>) -> Response {
    if !data.by_card.contains_key(&card) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such member"})),
        )
            .into_response();
    }
    let items = data.entitlements.get(&card).cloned().unwrap_or_default();
    Json(json!({ "data": items })).into_response()
}
