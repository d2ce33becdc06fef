//! `/me/access`: who at the business looked at the customer's record, and
//! what the customer themself did, from the audit log.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use kith_store::AuditEntry;
use kith_web::auth::session::Customer;
use kith_web::layout::{Chrome, when};
use kith_web::{AppState, PageResult};

use crate::{Section, chrome};

/// How many audit entries the page reads.
const LIMIT: usize = 200;

#[derive(Debug, Clone)]
pub(crate) struct AccessLine {
    pub who: String,
    pub what: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    chrome: Chrome,
    staff: Vec<AccessLine>,
    yours: Vec<AccessLine>,
    others: Vec<AccessLine>,
    limit: usize,
}

/// What an audit action means, for the person it was about.
pub(crate) fn describe(action: &str, detail: &str) -> String {
    let said = match action {
        "view" => "looked at your information",
        "explain" => "looked at why two of your records are linked",
        "export" => "exported your information",
        "download" => "downloaded your information",
        "sign-in" => "signed in",
        "correction" => "sent a correction",
        "consent" => "changed consents",
        "preference" => "changed preferences",
        "dispute" => "said a record is not them",
        "erase" => "asked for erasure",
        a if a.starts_with("review ") => "decided whether two records are the same person",
        other => other,
    };
    // Details of what customers did are theirs to see; staff details (search
    // terms, internal notes) are not shown.
    if matches!(action, "correction" | "consent" | "preference") && !detail.is_empty() {
        format!("{said} ({detail})")
    } else {
        said.to_string()
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    customer: Customer,
) -> PageResult<Html<String>> {
    let log = state
        .store()
        .audit_log(Some(&customer.party), LIMIT)
        .await?;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let (mut staff, mut yours, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for AuditEntry {
        at,
        actor,
        action,
        detail,
        ..
    } in log
    {
        let what = describe(&action, &detail);
        let when = when(&at);
        if let Some(email) = actor.strip_prefix("staff:") {
            if !names.contains_key(email) {
                let name = match state.store().staff_user_by_email(email).await? {
                    Some(u) => format!("{} ({email})", u.name),
                    None => email.to_string(),
                };
                names.insert(email.to_string(), name);
            }
            staff.push(AccessLine {
                who: names[email].clone(),
                what,
                when,
            });
        } else if actor.starts_with("customer:") {
            yours.push(AccessLine {
                who: "You".into(),
                what,
                when,
            });
        } else {
            let who = match actor.split_once(':') {
                Some(("api-key", id)) => format!("an application (API key {id})"),
                _ if actor == "cli" => "kith's command line, run by an administrator".into(),
                _ => actor.clone(),
            };
            others.push(AccessLine { who, what, when });
        }
    }
    let page = AccessPage {
        chrome: chrome(&customer, "Who has looked", Section::Access, None),
        staff,
        yours,
        others,
        limit: LIMIT,
    };
    Ok(Html(page.render()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_like_sentences_without_staff_details() {
        assert_eq!(describe("view", "q=ann"), "looked at your information");
        assert_eq!(describe("consent", "sms: no"), "changed consents (sms: no)");
        assert_eq!(
            describe("review accepted", ""),
            "decided whether two records are the same person"
        );
    }
}
