//! Everything customers asked or said: corrections, preferences and consents,
//! feedback, "this isn't me" disputes, and erasure requests with their receipts.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use kith_model::ContributionKind;
use kith_store::ReviewStatus;
use kith_web::auth::session::Staff;
use kith_web::layout::Chrome;
use kith_web::{AppState, PageResult};

use crate::home::{ContributionRow, ErasureRow};
use crate::{Section, chrome, explain_href, when_opt};

/// How many of the newest contributions the page lists.
const NEWEST: usize = 200;

struct DisputeRow {
    a: String,
    b: String,
    by: String,
    at: String,
    explain: String,
    party: String,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    chrome: Chrome,
    corrections: Vec<ContributionRow>,
    choices: Vec<ContributionRow>,
    feedback: Vec<ContributionRow>,
    disputes: Vec<DisputeRow>,
    erasures: Vec<ErasureRow>,
}

pub(crate) async fn page(State(state): State<AppState>, staff: Staff) -> PageResult<Html<String>> {
    let store = state.store();
    let recent = store.recent_contributions(NEWEST).await?;
    let of = |kinds: &[ContributionKind]| {
        recent
            .iter()
            .filter(|c| kinds.contains(&c.kind))
            .map(ContributionRow::from)
            .collect::<Vec<_>>()
    };
    let mut disputes = Vec::new();
    for p in store.review_pairs(Some(ReviewStatus::Disputed)).await? {
        // A dispute is decided by `customer:<party>`: the party who said it.
        let by = p.decided_by.clone().unwrap_or_default();
        let party = by
            .strip_prefix("customer:")
            .and_then(kith_model::PartyId::parse)
            .map(|p| p.to_string())
            .unwrap_or_default();
        disputes.push(DisputeRow {
            explain: explain_href(&p.a, &p.b),
            a: p.a.to_string(),
            b: p.b.to_string(),
            by,
            at: when_opt(p.decided_at),
            party,
        });
    }
    let page = RequestsPage {
        chrome: chrome(&state, &staff, "Customers' requests", Section::Requests).await?,
        corrections: of(&[ContributionKind::Correction]),
        choices: of(&[ContributionKind::Preference, ContributionKind::Consent]),
        feedback: of(&[ContributionKind::Feedback]),
        disputes,
        erasures: store
            .erasure_requests(None)
            .await?
            .iter()
            .map(ErasureRow::from)
            .collect(),
    };
    Ok(Html(page.render()?))
}
