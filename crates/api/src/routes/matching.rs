//! Match evidence between any two records, and the clerical review queue.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use chrono::Utc;
use kith_model::{PartyId, RecordRef};
use kith_store::{ApiScope, ReviewStatus};
use kith_web::AppState;
use kith_web::auth::keys::ApiCaller;
use serde::Deserialize;
use utoipa::IntoParams;

use super::audit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params;
use crate::schema::{
    ExplainRecord, ExplainResponse, LinkSummary, ReviewDecided, ReviewDecision, ReviewDecisionBody,
    ReviewPairDto, ReviewQueue,
};

const QUEUE_DEFAULT: usize = 100;
const QUEUE_MAX: usize = 1000;
/// Longest `by` note kept with a decision.
const BY_MAX: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// One record, as `source:key`.
    #[param(value_type = String, example = "billing:10042")]
    a: Option<String>,
    /// The other record, as `source:key`.
    #[param(value_type = String, example = "shop:C-88120")]
    b: Option<String>,
}

/// Match evidence between any two records.
///
/// Every comparison between two records of the identity index, linked or
/// not: each attribute's level, m and u probabilities and weight, and the
/// total with the model's decision — the evidence behind a link.
#[utoipa::path(
    get,
    operation_id = "explain",
    path = "/api/v1/explain",
    tag = "matching",
    params(ExplainQuery),
    responses(
        (status = 200, description = "The comparisons and the total", body = ExplainResponse),
        (status = 400, description = "`a` or `b` missing or not `source:key`", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 404, description = "A record is not in the identity index", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn explain(
    State(state): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> ApiResult<Json<ExplainResponse>> {
    caller.require(ApiScope::Read)?;
    let Query(q) = query?;
    let a = params::record_ref("a", q.a.as_deref())?;
    let b = params::record_ref("b", q.b.as_deref())?;
    let explanation = state.hub.explain(&a, &b).await?;
    let (a, b) = (
        explain_record(&state, a).await?,
        explain_record(&state, b).await?,
    );
    let same_party = a.party.is_some() && a.party == b.party;
    let mut parties: Vec<&String> = [&a.party, &b.party].into_iter().flatten().collect();
    parties.dedup();
    for p in parties {
        audit(
            &state,
            &caller,
            "explain",
            Some(&PartyId::from_stored(p.clone())),
            format!("{}:{} and {}:{}", a.source, a.key, b.source, b.key),
        )
        .await?;
    }
    Ok(Json(ExplainResponse {
        a,
        b,
        same_party,
        explanation: explanation.into(),
    }))
}

async fn explain_record(state: &AppState, r: RecordRef) -> ApiResult<ExplainRecord> {
    let link = state.store().link(&r).await?;
    Ok(ExplainRecord {
        party: link.as_ref().map(|l| l.party.to_string()),
        rule: link.as_ref().map(|l| l.rule.clone()),
        uncertain: link.as_ref().is_some_and(|l| state.hub.is_uncertain(l)),
        source: r.source,
        key: r.key,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Only pairs in this status; every status when left out.
    #[param(value_type = Option<crate::schema::ReviewStatusDto>)]
    status: Option<String>,
    /// Pairs at most: 1 to 1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// The clerical review queue.
///
/// Pairs the model was unsure of (pending, by falling probability) and
/// decided pairs (newest first), with the party each record is linked to now.
#[utoipa::path(
    get,
    operation_id = "get_review_queue",
    path = "/api/v1/review",
    tag = "matching",
    params(QueueQuery),
    responses(
        (status = 200, description = "Pairs in the queue", body = ReviewQueue),
        (status = 400, description = "A bad `status` or `limit`", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn queue(
    State(state): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> ApiResult<Json<ReviewQueue>> {
    caller.require(ApiScope::Read)?;
    let Query(q) = query?;
    let status = q.status.as_deref().map(review_status).transpose()?;
    let limit = params::limit(q.limit.as_deref(), QUEUE_DEFAULT, QUEUE_MAX)?;
    let all = state.store().review_pairs(status).await?;
    let more = all.len().saturating_sub(limit);
    let mut pairs = Vec::new();
    for p in all.into_iter().take(limit) {
        let a_party = party_of(&state, &p.a).await?;
        let b_party = party_of(&state, &p.b).await?;
        pairs.push(ReviewPairDto {
            a: p.a.to_string(),
            b: p.b.to_string(),
            a_party,
            b_party,
            probability: p.probability,
            status: p.status.into(),
            decided_by: p.decided_by,
            decided_at: p.decided_at,
            queued_at: p.queued_at,
        });
    }
    audit(
        &state,
        &caller,
        "review.list",
        None,
        format!("{} pair(s)", pairs.len()),
    )
    .await?;
    Ok(Json(ReviewQueue { pairs, more }))
}

fn review_status(raw: &str) -> ApiResult<ReviewStatus> {
    ReviewStatus::parse(raw.trim()).ok_or_else(|| {
        ApiError::bad_request(
            "status",
            format!("must be pending, accepted, rejected or disputed, not {raw:?}"),
        )
    })
}

async fn party_of(state: &AppState, r: &RecordRef) -> ApiResult<Option<String>> {
    Ok(state.store().link(r).await?.map(|l| l.party.to_string()))
}

/// Decides a pair of records, queued or not.
///
/// `accept` makes the two records one party, `reject` keeps them apart. The
/// decision is stored (by `api-key:<id>`, with the optional `by` note) and
/// the index is re-linked at once; every later linking run respects it.
/// Needs scope `contribute`.
#[utoipa::path(
    post,
    operation_id = "decide_review",
    path = "/api/v1/review",
    tag = "matching",
    request_body = ReviewDecisionBody,
    responses(
        (status = 200, description = "The decision is stored and the index re-linked", body = ReviewDecided),
        (status = 400, description = "The body is not JSON of this shape, or a record is not `source:key`", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `contribute`", body = ErrorBody),
        (status = 404, description = "A record is not in the identity index", body = ErrorBody),
        (status = 415, description = "The body was not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "`a` and `b` are the same record, or `by` is too long", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn decide(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<ReviewDecisionBody>, JsonRejection>,
) -> ApiResult<Json<ReviewDecided>> {
    caller.require(ApiScope::Contribute)?;
    let Json(body) = body?;
    let a = params::record_ref("a", Some(&body.a))?;
    let b = params::record_ref("b", Some(&body.b))?;
    if a == b {
        return Err(ApiError::unprocessable(format!(
            "a and b are the same record ({a}); a decision is about two records"
        )));
    }
    let by = decided_by(&caller.actor(), body.by.as_deref())?;
    for r in [&a, &b] {
        if state.store().record(r).await?.is_none() {
            return Err(ApiError::not_found(format!(
                "no record {r} in the identity index"
            )));
        }
    }
    let status = match body.decision {
        ReviewDecision::Accept => ReviewStatus::Accepted,
        ReviewDecision::Reject => ReviewStatus::Rejected,
    };
    let at = Utc::now();
    state.hub.decide_review(&a, &b, status, &by).await?;
    // The hub runs one linking at a time, so a concurrent run cannot undo this one.
    let report = state.hub.link(&()).await?;
    let a_party = party_of(&state, &a).await?;
    let b_party = party_of(&state, &b).await?;
    let about = a_party
        .as_deref()
        .or(b_party.as_deref())
        .map(|p| PartyId::from_stored(p.to_string()));
    audit(
        &state,
        &caller,
        &format!("review.{}", status.as_str()),
        about.as_ref(),
        format!("{a} and {b}"),
    )
    .await?;
    Ok(Json(ReviewDecided {
        a: a.to_string(),
        b: b.to_string(),
        status: status.into(),
        decided_by: by,
        decided_at: at,
        a_party,
        b_party,
        link: LinkSummary::from(&report),
    }))
}

/// `api-key:<id>`, with the caller's note after it when there is one.
fn decided_by(actor: &str, note: Option<&str>) -> ApiResult<String> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    match note {
        None => Ok(actor.to_string()),
        Some(n) if n.chars().count() > BY_MAX || n.chars().any(char::is_control) => Err(
            ApiError::unprocessable(format!("by: at most {BY_MAX} characters on one line")),
        ),
        Some(n) => Ok(format!("{actor} ({n})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_name_the_key_and_the_note() {
        assert_eq!(decided_by("api-key:3", None).unwrap(), "api-key:3");
        assert_eq!(decided_by("api-key:3", Some("  ")).unwrap(), "api-key:3");
        assert_eq!(
            decided_by("api-key:3", Some("CRM sync, Jo")).unwrap(),
            "api-key:3 (CRM sync, Jo)"
        );
        assert!(decided_by("api-key:3", Some("a\nb")).is_err());
        assert!(decided_by("api-key:3", Some(&"x".repeat(201))).is_err());
    }

    #[test]
    fn statuses_are_named_in_errors() {
        assert_eq!(review_status("pending").unwrap(), ReviewStatus::Pending);
        assert_eq!(review_status("disputed").unwrap(), ReviewStatus::Disputed);
        let ApiError::Status(_, m) = review_status("maybe").unwrap_err() else {
            panic!()
        };
        assert!(m.starts_with("status: ") && m.contains("\"maybe\""), "{m}");
    }
}
