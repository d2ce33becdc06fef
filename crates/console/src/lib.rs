//! The staff console under `/staff`: search, a party's 360 page (what the
//! customer is in the middle of first, then conflicts, the unified timeline,
//! facts, match evidence, relationships, the customer's requests and who
//! looked), match explanations drawn as a waterfall, the review queue, the
//! corrections and requests customers made, and, for admins, API keys and
//! staff accounts.
//!
//! Every route takes a [`Staff`] (a live staff session; anyone else is sent
//! to `/staff/sign-in`), every form that changes something checks the
//! session's anti-forgery token, admin pages call `require_admin`, and every
//! view of a party is written to the audit log.

mod admin;
mod explain;
mod home;
mod party;
mod requests;
mod review;
mod sign_in;
pub mod situations;
pub mod waterfall;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};
use kith_store::ReviewStatus;
use kith_web::auth::session::Staff;
use kith_web::layout::Chrome;
use kith_web::{AppState, PageResult};

/// What the console keeps between requests, beside the shared [`AppState`].
#[derive(Debug, Default)]
pub(crate) struct Console {
    /// Failed sign-ins per e-mail address and per client.
    pub failures: sign_in::Failures,
    /// One re-link at a time: two review decisions at once must not race
    /// each other's linking runs.
    pub relink: tokio::sync::Mutex<()>,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/staff/sign-out", post(sign_in::sign_out))
        .route("/staff", get(home::page))
        .route("/staff/search", get(home::search))
        .route("/staff/parties/{id}", get(party::page))
        .route("/staff/explain", get(explain::page))
        .route("/staff/review", get(review::page).post(review::decide))
        .route("/staff/requests", get(requests::page))
        .route("/staff/admin/keys", get(admin::keys).post(admin::keys_post))
        .route(
            "/staff/admin/users",
            get(admin::users).post(admin::users_post),
        )
        .layer(Extension(Arc::new(Console::default())))
}

/// The sections of the console, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Search,
    Review,
    Requests,
    Keys,
    Users,
    /// A page reached from another (a party, an explanation).
    None,
}

/// The page frame for a signed-in member of staff: who, the anti-forgery
/// token for sign-out, and the navigation with the review queue's size.
pub(crate) async fn chrome(
    state: &AppState,
    staff: &Staff,
    title: impl Into<String>,
    current: Section,
) -> PageResult<Chrome> {
    let pending = state
        .store()
        .review_pairs(Some(ReviewStatus::Pending))
        .await?
        .len()
        + state
            .store()
            .review_pairs(Some(ReviewStatus::Disputed))
            .await?
            .len();
    let mut nav = vec![
        (
            "/staff".to_string(),
            "Search".to_string(),
            current == Section::Search,
        ),
        (
            "/staff/review".to_string(),
            if pending == 0 {
                "Review".to_string()
            } else {
                format!("Review ({pending})")
            },
            current == Section::Review,
        ),
        (
            "/staff/requests".to_string(),
            "Requests".to_string(),
            current == Section::Requests,
        ),
    ];
    if staff.is_admin() {
        nav.push((
            "/staff/admin/keys".to_string(),
            "Keys".to_string(),
            current == Section::Keys,
        ));
        nav.push((
            "/staff/admin/users".to_string(),
            "Users".to_string(),
            current == Section::Users,
        ));
    }
    Ok(Chrome {
        title: title.into(),
        area: "console",
        signed_in_as: Some(format!(
            "{} ({})",
            staff.user.name,
            staff.user.role.as_str()
        )),
        csrf: Some(staff.csrf.clone()),
        nav,
        notice: None,
    })
}

/// Notices a redirect asks for by code (`?notice=accepted`): fixed texts, so
/// a crafted link cannot make the console say something it did not.
pub(crate) fn notice(code: Option<&str>) -> Option<String> {
    let text = match code? {
        "accepted" => "Decision saved: the two records are the same party. They were re-linked.",
        "rejected" => "Decision saved: the two records are different parties. They were re-linked.",
        "revoked" => "The key was revoked; it fails on its next request.",
        "not-revoked" => "That key was already revoked or does not exist.",
        "disabled" => "The account was disabled and its sessions ended.",
        "enabled" => "The account was enabled.",
        "signed-out" => "You are signed out.",
        _ => return None,
    };
    Some(text.to_string())
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The explain page's address for two records.
pub(crate) fn explain_href(a: &kith_model::RecordRef, b: &kith_model::RecordRef) -> String {
    format!(
        "/staff/explain?a={}&b={}",
        encode(&a.to_string()),
        encode(&b.to_string())
    )
}

/// A timestamp for people, or a dash.
pub(crate) fn when_opt(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| kith_web::layout::when(&t))
        .unwrap_or_else(|| "—".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_notices_are_fixed() {
        assert_eq!(encode("shop:order 42&x"), "shop%3Aorder%2042%26x");
        assert_eq!(
            explain_href(
                &kith_model::RecordRef::new("billing", "37"),
                &kith_model::RecordRef::new("shop", "10/1")
            ),
            "/staff/explain?a=billing%3A37&b=shop%3A10%2F1"
        );
        assert!(notice(Some("accepted")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
