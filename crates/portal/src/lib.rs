//! The customer's own portal: sign in with a one-time code, see your data
//! with provenance, correct it, set consents, download it, ask for erasure,
//! dispute a link.
//!
//! A customer never names a party: every page is about "me", the party the
//! identifier they signed in with proves now ([`Customer`] checks it again on
//! every request), seen as [`Audience::Customer`] so records linked only in
//! the uncertain band never show. Record references a form posts are checked
//! against that view before anything is done with them. Every form that
//! changes something carries the session's anti-forgery token, and every
//! change is written to the audit log as `customer:<party>`.
//!
//! [`Audience::Customer`]: kith_hub::Audience::Customer

mod access;
mod changes;
mod data;
mod links;
mod me;
pub mod picture;
mod sign_in;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};
use kith_store::AuditEntry;
use kith_web::auth::session::Customer;
use kith_web::layout::Chrome;
use kith_web::limiter::Limiter;
use kith_web::{AppState, PageResult};

/// What the portal keeps between requests, beside the shared [`AppState`].
#[derive(Debug)]
pub(crate) struct Portal {
    /// Sign-in posts per client address.
    pub limiter: Limiter,
}

impl Default for Portal {
    fn default() -> Self {
        Portal {
            limiter: Limiter::new(sign_in::POSTS_PER_CLIENT, sign_in::POSTS_WINDOW),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(sign_in::form))
        .route("/sign-in", get(sign_in::form).post(sign_in::request_code))
        .route("/sign-in/code", post(sign_in::enter_code))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/me", get(me::page))
        .route("/me/corrections", post(changes::correct))
        .route("/me/choices", post(changes::choose))
        .route("/me/download", get(data::download))
        .route("/me/erasure", get(data::erasure).post(data::erase))
        .route("/me/links", get(links::page))
        .route("/me/links/dispute", post(links::dispute))
        .route("/me/access", get(access::page))
        .layer(Extension(Arc::new(Portal::default())))
}

/// The portal's pages, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Me,
    Links,
    Access,
    Erasure,
}

/// The page frame for a signed-in customer.
pub(crate) fn chrome(
    customer: &Customer,
    title: &str,
    at: Section,
    notice: Option<&'static str>,
) -> Chrome {
    let nav = [
        ("/me", "Your information", Some(Section::Me)),
        ("/me/links", "Linked records", Some(Section::Links)),
        ("/me/access", "Who has looked", Some(Section::Access)),
        ("/me/download", "Download", None),
        ("/me/erasure", "Erase my data", Some(Section::Erasure)),
    ]
    .into_iter()
    .map(|(href, label, s)| (href.to_string(), label.to_string(), s == Some(at)))
    .collect();
    Chrome {
        title: title.to_string(),
        area: "portal",
        signed_in_as: Some(customer.masked.clone()),
        csrf: Some(customer.csrf.clone()),
        nav,
        notice: notice.map(str::to_string),
    }
}

/// After a change, pages say what happened through `?done=…`: one of a
/// fixed set of messages, never text from the request.
pub(crate) fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "correction" => {
            "Thank you: your correction is saved and shown below, marked as yours. \
             Staff can see it; the system it corrects is not changed by kith."
        }
        "choices" => "Your choices are saved and take effect now.",
        "unchanged" => "Nothing changed: your choices were already as you set them.",
        "dispute" => "That record is no longer part of your picture. Staff will review the link.",
        _ => return None,
    })
}

/// Writes what a customer did to the audit log.
pub(crate) async fn audit(
    state: &AppState,
    customer: &Customer,
    action: &str,
    detail: String,
) -> PageResult<()> {
    state
        .store()
        .audit(&AuditEntry {
            at: chrono::Utc::now(),
            actor: customer.actor(),
            action: action.into(),
            party: Some(customer.party.clone()),
            detail,
        })
        .await?;
    Ok(())
}

/// Which fact kinds each source is configured to give, so a source that
/// could not answer is named where its facts are missing.
pub(crate) fn fact_kinds(state: &AppState) -> BTreeMap<String, BTreeSet<String>> {
    state
        .hub
        .connectors()
        .iter()
        .map(|c| {
            let s = c.source();
            (
                s.name.clone(),
                s.facts.values().map(|f| f.kind.clone()).collect(),
            )
        })
        .collect()
}

/// Form fields are trimmed, and must not hold control characters (which
/// nobody types and which could disguise a value in a log or a report).
pub(crate) fn clean(input: &str) -> Result<String, &'static str> {
    let v = input.trim();
    if v.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters");
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_come_from_a_fixed_set() {
        assert!(notice(Some("correction")).is_some());
        assert!(notice(Some("<script>")).is_none());
        assert!(notice(None).is_none());
    }

    #[test]
    fn fields_are_trimmed_and_control_characters_refused() {
        assert_eq!(clean("  Leeds "), Ok("Leeds".into()));
        assert!(clean("Leeds\u{0}").is_err());
        assert!(clean("a\nb").is_err());
    }
}
