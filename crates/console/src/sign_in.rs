//! Staff sign-in with an e-mail address and a password, and sign-out.
//!
//! A wrong password and an unknown address get the same answer after the same
//! work (an unknown address is checked against a decoy hash). Failures are
//! counted per address and per client; past the limit the answer is 429
//! until the window passes, whatever the password.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use kith_store::{AuditEntry, SessionSubject};
use kith_web::auth::session::{self, Staff};
use kith_web::auth::{csrf, password};
use kith_web::layout::Chrome;
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::Console;

/// Said for a wrong password and for an unknown address alike.
pub(crate) const WRONG: &str = "That e-mail address and password do not match an account.";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    pub notice: Option<String>,
}

fn frame(notice: Option<String>) -> Chrome {
    Chrome {
        area: "console",
        notice,
        ..Chrome::bare("Staff sign-in")
    }
}

pub(crate) async fn form(
    State(state): State<AppState>,
    staff: Result<Staff, PageError>,
    jar: CookieJar,
    Query(q): Query<NoticeQuery>,
) -> PageResult<Response> {
    if staff.is_ok() {
        return Ok(Redirect::to("/staff").into_response());
    }
    let (jar, token) = csrf::pre_token(jar, state.settings.secure_cookies());
    let page = SignInPage {
        chrome: frame(crate::notice(q.notice.as_deref())),
        csrf: token,
        email: String::new(),
        error: None,
    };
    Ok((jar, Html(page.render()?)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The form again, with what went wrong.
fn again(
    status: StatusCode,
    jar: CookieJar,
    token: String,
    email: &str,
    error: String,
) -> PageResult<Response> {
    let page = SignInPage {
        chrome: frame(None),
        csrf: token,
        email: email.to_string(),
        error: Some(error),
    };
    Ok((status, jar, Html(page.render()?)).into_response())
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(f): Form<SignInForm>,
) -> PageResult<Response> {
    csrf::check_pre(&jar, &f._csrf)?;
    let token = f._csrf.clone();
    let email = f.email.trim().to_lowercase();
    if email.is_empty() || f.password.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            jar,
            token,
            &email,
            "Enter your e-mail address and your password.".into(),
        );
    }
    // `kith serve` always knows the client; a router without connection
    // info (a test harness) counts every client as one.
    let ip = client.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(a))| a.ip(),
    );
    if let Some(wait) = console.limiter.blocked(&email, ip, Instant::now()) {
        tracing::warn!("staff sign-in refused: too many failed attempts (client {ip})");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut r = again(
            StatusCode::TOO_MANY_REQUESTS,
            jar,
            token,
            &email,
            format!(
                "Too many failed sign-in attempts for this account or from this network. \
                 Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        )?;
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }

    let user = state.store().staff_user_by_email(&email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = f.password;
    // Argon2 is deliberately slow: keep it off the async workers. An unknown
    // address is checked against a decoy so it takes as long as a known one.
    let matches = tokio::task::spawn_blocking(move || match &hash {
        Some(h) => password::verify(&password, h),
        None => password::verify(&password, password::decoy()),
    })
    .await
    .map_err(PageError::internal)?;
    let user = match user {
        Some(u) if matches => u,
        _ => {
            console.limiter.failed(&email, ip, Instant::now());
            tracing::info!("staff sign-in failed (client {ip})");
            return again(StatusCode::OK, jar, token, &email, WRONG.into());
        }
    };
    if user.disabled_at.is_some() {
        return again(
            StatusCode::FORBIDDEN,
            jar,
            token,
            &email,
            "This account is disabled. Ask an admin to enable it.".into(),
        );
    }
    console.limiter.succeeded(&email);
    // Whatever session this browser had (a customer's, an old one) ends here.
    session::end(&state, &jar).await?;
    let cookie = session::start(
        &state,
        SessionSubject::Staff { user: user.id },
        &session::request_user_agent(&headers),
    )
    .await?;
    state
        .store()
        .audit(&AuditEntry {
            at: chrono::Utc::now(),
            actor: format!("staff:{}", user.email),
            action: "sign-in".into(),
            party: None,
            detail: String::new(),
        })
        .await?;
    Ok((jar.add(cookie), Redirect::to("/staff")).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    _csrf: String,
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    staff: Staff,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> PageResult<Response> {
    csrf::check(&staff.csrf, &f._csrf)?;
    let cleared = session::end(&state, &jar).await?;
    Ok((
        jar.add(cleared),
        Redirect::to("/staff/sign-in?notice=signed-out"),
    )
        .into_response())
}
