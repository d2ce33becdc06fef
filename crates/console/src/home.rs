//! The console's start page (a search box and what needs attention) and search results.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use kith_model::Contribution;
use kith_store::{ErasureRequest, ReviewStatus};
use kith_web::auth::session::Staff;
use kith_web::layout::{Chrome, show, when};
use kith_web::{AppState, PageResult};
use serde::Deserialize;

use crate::{Section, chrome};

/// How many of the newest contributions and erasure requests the start page lists.
const NEWEST: usize = 10;
/// How many parties a search shows.
const HITS: usize = 50;

/// A contribution as a row: when, party, kind, attribute, value, by.
pub(crate) struct ContributionRow {
    pub at: String,
    pub party: String,
    pub kind: &'static str,
    pub attribute: String,
    pub value: String,
    pub by: String,
    pub anchor: String,
}

impl From<&Contribution> for ContributionRow {
    fn from(c: &Contribution) -> Self {
        ContributionRow {
            at: when(&c.created_at),
            party: c.party.to_string(),
            kind: c.kind.as_str(),
            attribute: c.attribute.clone(),
            value: show(&c.value),
            by: c.by.clone(),
            anchor: match &c.anchor {
                kith_model::Anchor::Record(r) => r.to_string(),
                kith_model::Anchor::Identifier { value } => value.clone(),
            },
        }
    }
}

/// An erasure request as a row, with one line per receipt.
pub(crate) struct ErasureRow {
    pub id: i64,
    pub party: String,
    pub by: String,
    pub at: String,
    /// (source, action, detail, records, at)
    pub receipts: Vec<(String, String, String, String, String)>,
}

impl From<&ErasureRequest> for ErasureRow {
    fn from(e: &ErasureRequest) -> Self {
        ErasureRow {
            id: e.id,
            party: e.party.to_string(),
            by: e.requested_by.clone(),
            at: when(&e.requested_at),
            receipts: e
                .receipts
                .iter()
                .map(|r| {
                    (
                        r.source.clone(),
                        r.action.clone(),
                        r.detail.clone(),
                        r.records
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        when(&r.at),
                    )
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    pending: usize,
    disputed: usize,
    contributions: Vec<ContributionRow>,
    erasures: Vec<ErasureRow>,
    erasure_total: usize,
}

pub(crate) async fn page(State(state): State<AppState>, staff: Staff) -> PageResult<Html<String>> {
    let store = state.store();
    let pending = store.review_pairs(Some(ReviewStatus::Pending)).await?.len();
    let disputed = store
        .review_pairs(Some(ReviewStatus::Disputed))
        .await?
        .len();
    let contributions = store
        .recent_contributions(NEWEST)
        .await?
        .iter()
        .map(ContributionRow::from)
        .collect();
    let all_erasures = store.erasure_requests(None).await?;
    let erasures = all_erasures
        .iter()
        .take(NEWEST)
        .map(ErasureRow::from)
        .collect();
    let page = HomePage {
        chrome: chrome(&state, &staff, "Find a customer", Section::Search).await?,
        pending,
        disputed,
        contributions,
        erasures,
        erasure_total: all_erasures.len(),
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub(crate) struct HitRow {
    pub party: String,
    pub name: String,
    pub emails: String,
    pub phones: String,
    pub sources: String,
    pub matched: String,
    pub score: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    hits: Vec<HitRow>,
    limit: usize,
}

pub(crate) async fn search(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<SearchQuery>,
) -> PageResult<Html<String>> {
    let q: String = query.q.trim().chars().take(200).collect();
    let hits = if q.is_empty() {
        Vec::new()
    } else {
        state.hub.search(&q, HITS).await?
    };
    let hits = hits
        .into_iter()
        .map(|h| HitRow {
            party: h.party.to_string(),
            name: h.name.unwrap_or_else(|| "(no name)".into()),
            emails: h.emails.join(", "),
            phones: h.phones.join(", "),
            sources: h.sources.join(", "),
            matched: h.matched,
            score: format!("{:.0}%", h.score * 100.0),
        })
        .collect();
    let title = if q.is_empty() {
        "Search".to_string()
    } else {
        format!("Search: {q}")
    };
    let page = SearchPage {
        chrome: chrome(&state, &staff, title, Section::Search).await?,
        q,
        hits,
        limit: HITS,
    };
    Ok(Html(page.render()?))
}
