//! Taking your data away: `/me/download` (everything kith holds or can
//! fetch about you, as JSON with provenance) and `/me/erasure` (kith erases
//! its own copy at once and asks each source's owner to erase theirs).

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Form, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::CookieJar;
use kith_hub::Audience;
use kith_store::ErasureRequest;
use kith_web::auth::csrf;
use kith_web::auth::session::{self, Customer};
use kith_web::layout::{Chrome, when};
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::links::visible_records;
use crate::{Section, audit, chrome};

/// The export's relationships name other people (a household member's name
/// and party id): those are theirs, not the customer's, so the download
/// keeps only what the relationship is and why.
pub(crate) fn redact_relationships(export: &mut serde_json::Value) {
    let Some(rels) = export
        .get_mut("view")
        .and_then(|v| v.get_mut("relationships"))
        .and_then(|r| r.as_array_mut())
    else {
        return;
    };
    for r in rels {
        if let Some(o) = r.as_object_mut() {
            let employer = o.get("role").and_then(|v| v.as_str()) == Some("employee");
            o.remove("party");
            // An employer is an organisation: its name is the customer's own information.
            if !employer {
                o.remove("name");
            }
        }
    }
}

pub(crate) async fn download(
    State(state): State<AppState>,
    customer: Customer,
) -> PageResult<Response> {
    let mut export = state
        .hub
        .export(&customer.party, Audience::Customer)
        .await?;
    redact_relationships(&mut export);
    // The export lists contributions anchored to records; the customer's
    // consents and preferences are anchored to their identifiers, so all of
    // theirs are listed here (they are in the view's facts either way).
    let visible = visible_records(&state, &customer).await?;
    let anchors = kith_store::party_anchors(visible.iter().map(|(_, s)| s));
    let contributions = state.store().contributions(&anchors).await?;
    export["contributions"] = serde_json::to_value(contributions).map_err(PageError::internal)?;
    let body = serde_json::to_vec_pretty(&export).map_err(PageError::internal)?;
    audit(&state, &customer, "download", String::new()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"kith-my-data.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "erasure.html")]
struct ErasurePage {
    chrome: Chrome,
    csrf: String,
    masked: String,
    /// (source, how many of the customer's records it holds)
    sources: Vec<(String, usize)>,
    error: Option<&'static str>,
}

async fn erasure_page(
    state: &AppState,
    customer: &Customer,
    status: StatusCode,
    error: Option<&'static str>,
) -> PageResult<Response> {
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for (l, _) in visible_records(state, customer).await? {
        *sources.entry(l.record.source).or_default() += 1;
    }
    let page = ErasurePage {
        chrome: chrome(customer, "Erase my data", Section::Erasure, None),
        csrf: customer.csrf.clone(),
        masked: customer.masked.clone(),
        sources: sources.into_iter().collect(),
        error,
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub(crate) async fn erasure(
    State(state): State<AppState>,
    customer: Customer,
) -> PageResult<Response> {
    erasure_page(&state, &customer, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EraseForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    confirm: String,
}

/// One receipt line as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptLine {
    pub source: String,
    pub done: String,
    pub detail: String,
    /// The records concerned that the customer could see (others are counted).
    pub records: Vec<String>,
    pub more: usize,
}

#[derive(Template)]
#[template(path = "erased.html")]
struct ErasedPage {
    chrome: Chrome,
    id: i64,
    at: String,
    receipts: Vec<ReceiptLine>,
}

pub(crate) fn receipt_lines(
    request: &ErasureRequest,
    visible: &BTreeSet<String>,
) -> Vec<ReceiptLine> {
    request
        .receipts
        .iter()
        .map(|r| {
            let (shown, hidden): (Vec<String>, Vec<String>) = r
                .records
                .iter()
                .map(|x| x.to_string())
                .partition(|x| visible.contains(x));
            ReceiptLine {
                source: r.source.clone(),
                done: match r.action.as_str() {
                    "erased" => "erased".into(),
                    "requested" => "requested of its owner".into(),
                    other => other.to_string(),
                },
                detail: r.detail.clone(),
                records: shown,
                more: hidden.len(),
            }
        })
        .collect()
}

/// Erases the customer. The erasure ends their sessions, so the receipt is
/// shown in this response, on a page that needs no session.
pub(crate) async fn erase(
    State(state): State<AppState>,
    customer: Customer,
    jar: CookieJar,
    Form(f): Form<EraseForm>,
) -> PageResult<Response> {
    csrf::check(&customer.csrf, &f._csrf)?;
    if f.confirm != "yes" {
        return erasure_page(
            &state,
            &customer,
            StatusCode::BAD_REQUEST,
            Some("Tick the box to confirm that you want your data erased."),
        )
        .await;
    }
    let visible: BTreeSet<String> = visible_records(&state, &customer)
        .await?
        .iter()
        .map(|(l, _)| l.record.to_string())
        .collect();
    let request = state.hub.erase(&customer.party, &customer.actor()).await?;
    let cleared = session::end(&state, &jar).await?;
    let page = ErasedPage {
        chrome: Chrome {
            area: "portal",
            ..Chrome::bare("Your data is erased")
        },
        id: request.id,
        at: when(&request.requested_at),
        receipts: receipt_lines(&request, &visible),
    };
    Ok((jar.remove(cleared), Html(page.render()?)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_model::{PartyId, RecordRef};
    use kith_store::ErasureReceipt;
    use serde_json::json;

    #[test]
    fn the_download_names_no_other_person() {
        let mut e = json!({"view": {"relationships": [
            {"kind": "household", "role": "member", "party": "p_2", "name": "Bob Lee", "evidence": "same address"},
            {"kind": "employee_of", "role": "employee", "party": "p_3", "name": "Acme Ltd", "evidence": "organisation name: acme"}
        ]}});
        redact_relationships(&mut e);
        let rels = &e["view"]["relationships"];
        assert_eq!(
            rels[0],
            json!({"kind": "household", "role": "member", "evidence": "same address"})
        );
        assert_eq!(rels[1]["name"], "Acme Ltd");
        assert!(rels[1].get("party").is_none());
        let mut none = json!({"party": "p_1"});
        redact_relationships(&mut none);
        assert_eq!(none, json!({"party": "p_1"}));
    }

    #[test]
    fn receipts_list_what_the_customer_could_see_and_count_the_rest() {
        let at = chrono::Utc::now();
        let receipt = |source: &str, action: &str, keys: &[&str]| ErasureReceipt {
            source: source.into(),
            records: keys.iter().map(|k| RecordRef::new("shop", *k)).collect(),
            action: action.into(),
            detail: "d".into(),
            at,
        };
        let request = ErasureRequest {
            id: 3,
            party: PartyId::from_stored("p_1"),
            requested_by: "customer:p_1".into(),
            requested_at: at,
            receipts: vec![
                receipt("kith", "erased", &["1", "2"]),
                receipt("shop", "requested", &["1", "2"]),
            ],
        };
        let lines = receipt_lines(&request, &BTreeSet::from(["shop:1".to_string()]));
        assert_eq!(lines[0].done, "erased");
        assert_eq!(lines[1].done, "requested of its owner");
        assert_eq!(lines[1].records, vec!["shop:1"]);
        assert_eq!(lines[1].more, 1);
    }
}
