//! Finding parties by name, e-mail or phone.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use kith_store::ApiScope;
use kith_web::AppState;
use kith_web::auth::keys::ApiCaller;
use serde::Deserialize;
use utoipa::IntoParams;

use super::audit;
use crate::error::{ApiResult, ErrorBody};
use crate::params;
use crate::schema::{SearchHitDto, SearchResults};

const SEARCH_DEFAULT: usize = 10;
const SEARCH_MAX: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A name or part of one (typos are forgiven), an e-mail address or part
    /// of one, or a phone number or its digits.
    #[param(value_type = String, example = "margret elison")]
    q: Option<String>,
    /// Parties at most: 1 to 100, default 10.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Parties matching a query, best first.
///
/// Search reads kith's identity index, so it finds customers, former
/// customers and prospects alike without asking any source.
#[utoipa::path(
    get,
    operation_id = "search",
    path = "/api/v1/search",
    tag = "search",
    params(SearchQuery),
    responses(
        (status = 200, description = "Parties found, best first", body = SearchResults),
        (status = 400, description = "No `q`, or a bad `limit`", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<SearchResults>> {
    caller.require(ApiScope::Read)?;
    let Query(q) = query?;
    let text = params::required("q", q.q.as_deref())?.trim().to_string();
    let limit = params::limit(q.limit.as_deref(), SEARCH_DEFAULT, SEARCH_MAX)?;
    let hits = state.hub.search(&text, limit).await?;
    // Each party found had its name and contacts read: each gets an entry.
    for h in &hits {
        audit(
            &state,
            &caller,
            "search",
            Some(&h.party),
            format!("found by {}", h.matched),
        )
        .await?;
    }
    Ok(Json(SearchResults {
        query: text,
        hits: hits.into_iter().map(SearchHitDto::from).collect(),
    }))
}
