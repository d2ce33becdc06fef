//! Parties: the list, one party's 360 view, its timeline and its links.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use kith_connect::CONTRIBUTIONS_SOURCE;
use kith_hub::TimelineFilter;
use kith_store::ApiScope;
use kith_web::AppState;
use kith_web::auth::keys::ApiCaller;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{audit, resolve, verified};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params;
use crate::schema::{
    LinkDto, LinksResponse, PartyPage, PartyResponse, PartySummary, TimelineItem, TimelinePage,
    ViewDto,
};

const PARTIES_DEFAULT: usize = 50;
const PARTIES_MAX: usize = 500;
const TIMELINE_DEFAULT: usize = 100;
const TIMELINE_MAX: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Parties per page: 1 to 500, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Only parties whose id sorts after this one: the previous page's `next_after`.
    #[param(value_type = Option<String>, example = "p_01hzx5y7k2m3n4p5q6r7s8t9va")]
    after: Option<String>,
}

/// Every party (merged-away ids excluded), by id.
///
/// Ids sort by creation time, so paging by `after` is stable while parties
/// are added.
#[utoipa::path(
    get,
    operation_id = "list_parties",
    path = "/api/v1/parties",
    tag = "parties",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of parties", body = PartyPage),
        (status = 400, description = "A bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<PartyPage>> {
    caller.require(ApiScope::Read)?;
    let Query(q) = query?;
    let limit = params::limit(q.limit.as_deref(), PARTIES_DEFAULT, PARTIES_MAX)?;
    let after = q
        .after
        .as_deref()
        .map(|a| params::party_id("after", a))
        .transpose()?;
    let all = state.store().parties().await?;
    let (page, next) = params::page_after(all, |p| &p.id, after.as_ref(), limit);
    audit(
        &state,
        &caller,
        "list",
        None,
        format!("{} parties", page.len()),
    )
    .await?;
    Ok(Json(PartyPage {
        parties: page.iter().map(PartySummary::from).collect(),
        next_after: next.map(|id| id.to_string()),
    }))
}

/// A party and its 360 view, gathered now from every linked source.
///
/// An id that was merged into another party answers with the survivor's
/// data: `party` is the current id and `merged_into` says it changed (no
/// redirect, so clients keep one request per lookup). Records linked only in
/// the model's uncertain band are included, as staff see them (see `/links`).
#[utoipa::path(
    get,
    operation_id = "get_party",
    path = "/api/v1/parties/{id}",
    tag = "parties",
    params(("id" = String, Path, description = "A party id; a merged-away id answers with the survivor")),
    responses(
        (status = 200, description = "The party (the survivor, for a merged id) and its view", body = PartyResponse),
        (status = 400, description = "The id is not a party id", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 404, description = "No such party", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<PartyResponse>> {
    caller.require(ApiScope::Read)?;
    let Path(id) = id?;
    let (party, resolved) = resolve(&state, &id).await?;
    let view = state.hub.view(&party.id).await?;
    audit(&state, &caller, "view", Some(&party.id), String::new()).await?;
    Ok(Json(PartyResponse {
        resolved,
        summary: PartySummary::from(&party),
        view: ViewDto::from(view),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Only these fact kinds, comma-separated (`transaction,case`).
    #[param(value_type = Option<String>, example = "transaction,case")]
    kind: Option<String>,
    /// Only these sources, comma-separated (`contributions` for what was contributed).
    #[param(value_type = Option<String>, example = "shop")]
    source: Option<String>,
    /// Items per page: 1 to 1000, default 100. A page may hold more when
    /// several items share the last item's time, so none is ever skipped.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Only items strictly older than this (RFC 3339, or a date): the previous page's `next_before`.
    #[param(value_type = Option<String>, format = DateTime, example = "2024-05-01T09:30:00Z")]
    before: Option<String>,
}

/// Every dated fact of the party, across sources, newest first.
#[utoipa::path(
    get,
    operation_id = "get_timeline",
    path = "/api/v1/parties/{id}/timeline",
    tag = "parties",
    params(("id" = String, Path, description = "A party id"), TimelineQuery),
    responses(
        (status = 200, description = "A page of the timeline, newest first", body = TimelinePage),
        (status = 400, description = "A bad id, kind, source, limit or before", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 404, description = "No such party", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn timeline(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> ApiResult<Json<TimelinePage>> {
    caller.require(ApiScope::Read)?;
    let Path(id) = id?;
    let Query(q) = query?;
    let kinds = params::kinds(q.kind.as_deref())?;
    let sources = params::list(q.source.as_deref());
    let known: Vec<&str> = state
        .hub
        .connectors()
        .iter()
        .map(|c| c.source().name.as_str())
        .chain([CONTRIBUTIONS_SOURCE])
        .collect();
    if let Some(unknown) = sources.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(ApiError::bad_request(
            "source",
            format!(
                "no source is named {unknown:?}; sources: {}",
                known.join(", ")
            ),
        ));
    }
    let limit = params::limit(q.limit.as_deref(), TIMELINE_DEFAULT, TIMELINE_MAX)?;
    let before = q
        .before
        .as_deref()
        .map(|b| params::timestamp("before", b))
        .transpose()?;

    let (party, resolved) = resolve(&state, &id).await?;
    // The first page asks each source only for its newest facts of the wanted
    // kinds (twice the page, so facts sharing the page's last moment are not
    // cut); later pages need older facts, so they ask for everything.
    let scope = kith_hub::ViewScope {
        kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
        sources: sources.clone(),
        limit: before.is_none().then_some(limit.saturating_mul(2)),
    };
    let view = state
        .hub
        .view_scoped(&party.id, kith_hub::Audience::Staff, &scope)
        .await?;
    let items = timeline_items(&view, &kinds, &sources);
    let (items, next_before) = params::page_before(items, |i| i.at, before, limit);
    audit(&state, &caller, "timeline", Some(&party.id), String::new()).await?;
    Ok(Json(TimelinePage {
        resolved,
        items,
        next_before,
        sources: view.sources.into_iter().map(Into::into).collect(),
    }))
}

/// The dated facts that pass the filters, newest first, as timeline items.
/// The hub's timeline chooses and orders them (ingested events included);
/// paging is done here, so a page never splits facts of the same moment.
fn timeline_items(
    view: &kith_hub::View,
    kinds: &[kith_model::FactKind],
    sources: &[String],
) -> Vec<TimelineItem> {
    let filter = TimelineFilter {
        kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
        sources: sources.to_vec(),
        before: None,
        limit: 0,
    };
    view.timeline(&filter)
        .into_iter()
        .filter_map(|f| {
            Some(TimelineItem {
                at: f.date?,
                kind: f.kind.as_str().to_string(),
                source: f.provenance.source.clone(),
                key: f.provenance.key.clone(),
                fact_set: f.provenance.fact_set.clone(),
                attribute: f.attribute.clone(),
                value: f.value.clone(),
            })
        })
        .collect()
}

/// The party's linked source records, and why each is linked.
///
/// For each: the rule that linked it, its score and evidence, and whether
/// the link is uncertain (only the model linked it, in its uncertain band).
#[utoipa::path(
    get,
    operation_id = "get_links",
    path = "/api/v1/parties/{id}/links",
    tag = "parties",
    params(("id" = String, Path, description = "A party id")),
    responses(
        (status = 200, description = "The linked records", body = LinksResponse),
        (status = 400, description = "The id is not a party id", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 404, description = "No such party", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn links(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<LinksResponse>> {
    caller.require(ApiScope::Read)?;
    let Path(id) = id?;
    let (party, resolved) = resolve(&state, &id).await?;
    let (_, records) = state
        .store()
        .party_records(&party.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no party has id {}", party.id)))?;
    let links = records
        .into_iter()
        .map(|(link, stored)| LinkDto {
            verified: verified(&state, &link.record.source),
            uncertain: state.hub.is_uncertain(&link),
            source: link.record.source,
            key: link.record.key,
            rule: link.rule,
            score: link.score,
            evidence: link.evidence,
            linked_at: link.linked_at,
            attrs: stored.record.attrs.into(),
        })
        .collect();
    audit(&state, &caller, "links", Some(&party.id), String::new()).await?;
    Ok(Json(LinksResponse { resolved, links }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_model::{Cardinality, Fact, FactKind, Provenance};

    fn fact(kind: &str, source: &str, date: Option<&str>) -> Fact {
        Fact {
            kind: FactKind::parse(kind).unwrap(),
            cardinality: Cardinality::Many,
            attribute: None,
            value: serde_json::json!({}),
            date: date.map(|d| d.parse().unwrap()),
            provenance: Provenance {
                source: source.into(),
                key: "1".into(),
                fact_set: "x".into(),
                updated_at: None,
                fetched_at: "2024-06-01T00:00:00Z".parse().unwrap(),
            },
        }
    }

    fn view(facts: Vec<Fact>) -> kith_hub::View {
        let t = "2024-06-01T00:00:00Z".parse().unwrap();
        kith_hub::View {
            party: kith_model::PartyId::generate(t),
            kind: kith_model::PartyKind::Person,
            name: None,
            relation: None,
            created_at: t,
            generated_at: t,
            sources: vec![],
            records: vec![],
            profile: vec![],
            facts,
            relationships: vec![],
        }
    }

    #[test]
    fn the_timeline_is_dated_facts_newest_first_and_filtered() {
        // As a view orders them: by kind, then newest first.
        let facts = vec![
            fact("profile", "billing", None),
            fact("transaction", "shop", Some("2024-01-01T00:00:00Z")),
            fact("transaction", "shop", Some("2023-01-01T00:00:00Z")),
            fact("case", "support", Some("2024-03-01T00:00:00Z")),
        ];
        let all = timeline_items(&view(facts.clone()), &[], &[]);
        let when: Vec<String> = all.iter().map(|i| i.at.to_rfc3339()).collect();
        assert_eq!(
            when,
            vec![
                "2024-03-01T00:00:00+00:00",
                "2024-01-01T00:00:00+00:00",
                "2023-01-01T00:00:00+00:00"
            ]
        );
        let orders = timeline_items(
            &view(facts.clone()),
            &[FactKind::parse("transaction").unwrap()],
            &[],
        );
        assert_eq!(orders.len(), 2);
        assert!(orders.iter().all(|i| i.kind == "transaction"));
        let support = timeline_items(&view(facts), &[], &["support".to_string()]);
        assert_eq!(support.len(), 1);
        assert_eq!(support[0].kind, "case");
    }
}
