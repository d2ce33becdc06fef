//! Customer sign-in by a one-time code, and sign-out.
//!
//! Whoever asks for a code is told the same thing whether or not the
//! identifier opens an account (only "that is not an e-mail address or phone
//! number" is said), and a wrong code, a used one and an expired one get the
//! same answer, so the forms reveal nothing about who is a customer. Sign-in
//! posts are limited per client address on top of the per-identifier limit
//! in `kith_web::auth::codes`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use kith_store::SessionSubject;
use kith_web::auth::codes::{self, CodeRequest};
use kith_web::auth::csrf::{self, CsrfForm};
use kith_web::auth::session::{self, Customer};
use kith_web::layout::Chrome;
use kith_web::limiter::{client_key, retry_after};
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::{Portal, clean};

/// Said for a wrong, used or expired code alike.
pub(crate) const WRONG_CODE: &str = "That code is not right or has expired; ask for a new one.";
/// The longest identifier the form takes (an e-mail address is at most 254).
const MAX_IDENTIFIER: usize = 254;
/// Sign-in posts (asking for a code, typing a code) one client may make per
/// window, beside the per-identifier limit on codes in `kith_web::auth::codes`:
/// that one stops a guesser hammering one identifier, this one stops one
/// client walking through many identifiers or guessing codes for them.
pub(crate) const POSTS_PER_CLIENT: usize = 10;
pub(crate) const POSTS_WINDOW: Duration = Duration::from_secs(60);

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    identifier: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    chrome: Chrome,
    csrf: String,
    identifier: String,
    minutes: u64,
    error: Option<&'static str>,
}

fn frame(title: &str, notice: Option<&str>) -> Chrome {
    Chrome {
        area: "portal",
        notice: notice.map(str::to_string),
        ..Chrome::bare(title)
    }
}

/// The sign-in form with a fresh pre-sign-in token; signed-in customers go to their page.
pub(crate) async fn form(
    State(state): State<AppState>,
    customer: Result<Customer, PageError>,
    jar: CookieJar,
) -> PageResult<Response> {
    if customer.is_ok() {
        return Ok(Redirect::to("/me").into_response());
    }
    sign_in_page(&state, jar, StatusCode::OK, String::new(), None, None)
}

fn sign_in_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    identifier: String,
    error: Option<String>,
    notice: Option<&str>,
) -> PageResult<Response> {
    let (jar, token) = csrf::pre_token(jar, state.settings.secure_cookies());
    let page = SignInPage {
        chrome: frame("Sign in", notice),
        csrf: token,
        identifier,
        error,
    };
    Ok((status, jar, Html(page.render()?)).into_response())
}

fn code_page(
    state: &AppState,
    status: StatusCode,
    csrf: String,
    identifier: String,
    error: Option<&'static str>,
) -> PageResult<Response> {
    let page = CodePage {
        chrome: frame("Enter your code", None),
        csrf,
        identifier,
        minutes: state.settings.code_ttl.as_secs().div_ceil(60).max(1),
        error,
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// Counts a sign-in post against its client; past the limit, the 429 page to answer with.
fn refused(
    portal: &Portal,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Option<Response> {
    let ip = client.map(|Extension(ConnectInfo(a))| a.ip());
    let wait = portal
        .limiter
        .admit(&client_key(ip), Instant::now())
        .err()?;
    tracing::warn!("customer sign-in posts refused: too many from one client");
    let secs = wait.as_secs().max(1);
    let page = PageError::too_many(format!(
        "Too many sign-in attempts from your network. Wait {secs} second{} and try again.",
        if secs == 1 { "" } else { "s" }
    ));
    Some(retry_after(page.into_response(), wait))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    identifier: String,
}

pub(crate) async fn request_code(
    State(state): State<AppState>,
    Extension(portal): Extension<Arc<Portal>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    jar: CookieJar,
    Form(f): Form<SignInForm>,
) -> PageResult<Response> {
    csrf::check_pre(&jar, &f._csrf)?;
    if let Some(r) = refused(&portal, client) {
        return Ok(r);
    }
    let again = |jar, typed: String, error: &str| {
        sign_in_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            typed,
            Some(error.to_string()),
            None,
        )
    };
    let typed = match clean(&f.identifier) {
        Ok(t) => t,
        Err(why) => return again(jar, String::new(), &format!("What you typed {why}.")),
    };
    if typed.is_empty() {
        return again(
            jar,
            typed,
            "Type the e-mail address or mobile number you gave us.",
        );
    }
    if typed.chars().count() > MAX_IDENTIFIER {
        return again(
            jar,
            String::new(),
            "That is too long for an e-mail address or a phone number.",
        );
    }
    match codes::request(&state, &typed).await? {
        CodeRequest::NotAnIdentifier => again(
            jar,
            typed,
            "That is not an e-mail address or a phone number. Type the e-mail address or mobile number you gave us.",
        ),
        // Sent, not eligible, rate-limited: the same page, so nobody learns which.
        CodeRequest::Sent { .. } | CodeRequest::NotEligible | CodeRequest::RateLimited => {
            code_page(&state, StatusCode::OK, f._csrf, typed, None)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    code: String,
}

pub(crate) async fn enter_code(
    State(state): State<AppState>,
    Extension(portal): Extension<Arc<Portal>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(f): Form<CodeForm>,
) -> PageResult<Response> {
    csrf::check_pre(&jar, &f._csrf)?;
    if let Some(r) = refused(&portal, client) {
        return Ok(r);
    }
    let typed = clean(&f.identifier).unwrap_or_default();
    let code = f.code.trim();
    let target = if typed.is_empty()
        || typed.chars().count() > MAX_IDENTIFIER
        || code.is_empty()
        || code.len() > 16
    {
        None
    } else {
        codes::verify(&state, &typed, code).await?
    };
    let Some(target) = target else {
        return code_page(
            &state,
            StatusCode::UNAUTHORIZED,
            f._csrf,
            typed,
            Some(WRONG_CODE),
        );
    };
    let cookie = session::sign_in(
        &state,
        &jar,
        &headers,
        SessionSubject::Customer {
            party: target.party.clone(),
            identifier: target.identifier.clone(),
        },
        format!("customer:{}", target.party),
        format!("one-time code sent to {}", target.masked),
    )
    .await?;
    let jar = jar
        .remove(Cookie::build(csrf::PRE_COOKIE).path("/"))
        .add(cookie);
    Ok((jar, Redirect::to("/me")).into_response())
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    customer: Customer,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> PageResult<Response> {
    let jar = session::sign_out(&state, jar, &customer.csrf, &f).await?;
    sign_in_page(
        &state,
        jar,
        StatusCode::OK,
        String::new(),
        None,
        Some("You have signed out."),
    )
}
