//! `/me/links`: every source record linked to the customer and why, with
//! "This isn't me" for each one except the record that proves who they are.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kith_model::{Link, RecordRef};
use kith_store::StoredRecord;
use kith_web::auth::csrf;
use kith_web::auth::session::Customer;
use kith_web::layout::{Chrome, when};
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::me::Done;
use crate::{Section, chrome, notice};

/// One linked record as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct LinkRow {
    /// `source:key`, what the dispute form posts.
    pub record: String,
    pub source: String,
    pub key: String,
    pub verified: bool,
    pub because: String,
    pub evidence: Vec<String>,
    pub held: Vec<(String, String)>,
    pub updated: Option<String>,
    /// Holds the identifier the customer signed in with, in a verified
    /// source: it proves who they are, so it cannot be disputed here.
    pub proves_you: bool,
}

#[derive(Template)]
#[template(path = "links.html")]
struct LinksPage {
    chrome: Chrome,
    csrf: String,
    masked: String,
    rows: Vec<LinkRow>,
}

/// The records of the customer's party they may see: every link but those
/// only in the model's uncertain band (the same rule as their view).
pub(crate) async fn visible_records(
    state: &AppState,
    customer: &Customer,
) -> PageResult<Vec<(Link, StoredRecord)>> {
    let Some((_, records)) = state.store().party_records(&customer.party).await? else {
        return Err(PageError::not_found(
            "We could not find your information any more. Sign in again.",
        ));
    };
    Ok(records
        .into_iter()
        .filter(|(l, _)| !state.hub.is_uncertain(l))
        .collect())
}

fn is_verified(state: &AppState, source: &str) -> bool {
    state
        .hub
        .connectors()
        .iter()
        .any(|c| c.source().name == source && c.source().verified)
}

/// `exact:email+phone` → "the same e-mail address and phone number".
pub(crate) fn because(rule: &str) -> String {
    if let Some(what) = rule.strip_prefix("exact:") {
        let parts: Vec<String> = what
            .split('+')
            .map(|p| match p {
                "email" => "e-mail address".to_string(),
                "phone" => "phone number".to_string(),
                "id" => "reference number (a card or account number)".to_string(),
                other => other.replace('_', " "),
            })
            .collect();
        return format!(
            "it has the same {} as your other records",
            parts.join(" and ")
        );
    }
    match rule {
        "model" => "its details match your other records closely".into(),
        "single" => "it is a record of its own: nothing else is linked to it".into(),
        "disputed" => "it was taken out of another person's records".into(),
        other => format!("rule {other}"),
    }
}

fn row(state: &AppState, customer: &Customer, link: &Link, s: &StoredRecord) -> LinkRow {
    let r = &s.record;
    let a = &r.attrs;
    let mut held = Vec::new();
    if let Some(n) = a.display_name() {
        held.push(("Name".into(), n));
    }
    for e in &a.emails {
        held.push(("E-mail".into(), e.clone()));
    }
    for p in &a.phones {
        held.push(("Phone".into(), p.clone()));
    }
    let address: Vec<&str> = [&a.street, &a.city, &a.postcode, &a.country]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
    if !address.is_empty() {
        held.push(("Address".into(), address.join(", ")));
    }
    if let Some(d) = &a.date_of_birth {
        held.push(("Date of birth".into(), d.clone()));
    }
    for (k, v) in &a.external_ids {
        held.push((crate::picture::label(k), v.clone()));
    }
    let verified = is_verified(state, &r.record.source);
    LinkRow {
        record: r.record.to_string(),
        source: r.record.source.clone(),
        key: r.record.key.clone(),
        verified,
        because: because(&link.rule),
        evidence: link.evidence.clone(),
        held,
        updated: r.updated_at.as_ref().map(when),
        proves_you: verified && s.identifiers.contains(&customer.identifier),
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    customer: Customer,
    Query(q): Query<Done>,
) -> PageResult<Html<String>> {
    let rows = visible_records(&state, &customer)
        .await?
        .iter()
        .map(|(l, s)| row(&state, &customer, l, s))
        .collect();
    let page = LinksPage {
        chrome: chrome(
            &customer,
            "Records linked to you",
            Section::Links,
            notice(q.done.as_deref()),
        ),
        csrf: customer.csrf.clone(),
        masked: customer.masked.clone(),
        rows,
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DisputeForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    record: String,
}

pub(crate) async fn dispute(
    State(state): State<AppState>,
    customer: Customer,
    Form(f): Form<DisputeForm>,
) -> PageResult<Response> {
    csrf::check(&customer.csrf, &f._csrf)?;
    let Some(record) = RecordRef::parse(f.record.trim()) else {
        return Err(PageError::bad_request(
            "Choose one of the records on the page (the form sent none).",
        ));
    };
    let records = visible_records(&state, &customer).await?;
    let Some((link, stored)) = records.iter().find(|(l, _)| l.record == record) else {
        return Err(PageError::not_found(
            "That record is not linked to you. Reload the page and try again.",
        ));
    };
    if row(&state, &customer, link, stored).proves_you {
        return Err(PageError::bad_request(format!(
            "This record holds {}, the address you signed in with: it is how we know you are you, \
             so it cannot be taken out here. If it is wrong, contact us.",
            customer.masked
        )));
    }
    state
        .hub
        .dispute(&customer.party, &record, &customer.actor())
        .await?;
    Ok(Redirect::to("/me/links?done=dispute").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_rules_read_like_reasons() {
        assert_eq!(
            because("exact:email+phone"),
            "it has the same e-mail address and phone number as your other records"
        );
        assert_eq!(
            because("exact:email+id"),
            "it has the same e-mail address and reference number (a card or account number) \
             as your other records"
        );
        assert_eq!(
            because("model"),
            "its details match your other records closely"
        );
    }
}
