//! Staff sign-in with an e-mail address and a password, and sign-out.
//!
//! A wrong password and an unknown address get the same answer after the same
//! work (an unknown address is checked against a decoy hash). Failures are
//! counted per address and per client; past the limit the answer is 429
//! until the window passes, whatever the password.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use kith_store::SessionSubject;
use kith_web::auth::csrf::{self, CsrfForm};
use kith_web::auth::password;
use kith_web::auth::session::{self, Staff};
use kith_web::layout::Chrome;
use kith_web::limiter::{Limiter, client_key, retry_after};
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::Console;

/// Said for a wrong password and for an unknown address alike.
pub(crate) const WRONG: &str = "That e-mail address and password do not match an account.";

/// Failed attempts allowed per e-mail address in one window.
const PER_EMAIL: usize = 5;
/// Failed attempts allowed per client address (or IPv6 /64) in one window.
const PER_CLIENT: usize = 20;
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed staff sign-ins, counted per e-mail address and per client, so
/// password guessing stops after a few tries. Counting both keys stops one
/// address guessing many accounts and many addresses guessing one. Unknown
/// e-mail addresses are counted like known ones, so the counts say nothing
/// about which accounts exist.
#[derive(Debug)]
pub(crate) struct Failures {
    per_email: Limiter,
    per_client: Limiter,
}

impl Default for Failures {
    fn default() -> Self {
        Failures::new(PER_EMAIL, PER_CLIENT, WINDOW)
    }
}

impl Failures {
    fn new(per_email: usize, per_client: usize, window: Duration) -> Self {
        Failures {
            per_email: Limiter::new(per_email, window),
            per_client: Limiter::new(per_client, window),
        }
    }

    /// How long until another attempt may be made, when the e-mail address
    /// or the client (a [`client_key`]) has used up its failures; `None`
    /// when it may try now.
    fn blocked(&self, email: &str, client: &str, now: Instant) -> Option<Duration> {
        let account = self.per_email.wait(&email_key(email), now);
        account.max(self.per_client.wait(client, now))
    }

    /// Counts a failed attempt against both keys.
    fn failed(&self, email: &str, client: &str, now: Instant) {
        self.per_email.count(&email_key(email), now);
        self.per_client.count(client, now);
    }

    /// A successful sign-in forgets the account's failures (not the client's:
    /// one good password must not reset a client that is guessing others).
    fn succeeded(&self, email: &str) {
        self.per_email.forget(&email_key(email));
    }
}

fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

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
    let client = client_key(client.map(|Extension(ConnectInfo(a))| a.ip()));
    if let Some(wait) = console.failures.blocked(&email, &client, Instant::now()) {
        tracing::warn!("staff sign-in refused: too many failed attempts (client {client})");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let refused = again(
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
        return Ok(retry_after(refused, wait));
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
            console.failures.failed(&email, &client, Instant::now());
            tracing::info!("staff sign-in failed (client {client})");
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
    console.failures.succeeded(&email);
    let cookie = session::sign_in(
        &state,
        &jar,
        &headers,
        SessionSubject::Staff { user: user.id },
        format!("staff:{}", user.email),
        String::new(),
    )
    .await?;
    Ok((jar.add(cookie), Redirect::to("/staff")).into_response())
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    staff: Staff,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> PageResult<Response> {
    let jar = session::sign_out(&state, jar, &staff.csrf, &f).await?;
    Ok((jar, Redirect::to("/staff/sign-in?notice=signed-out")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(s: &str) -> String {
        client_key(Some(s.parse().unwrap()))
    }

    #[test]
    fn an_account_is_blocked_after_its_failures_until_the_window_passes() {
        let f = Failures::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = client("10.0.0.1");
        for i in 0..3 {
            assert_eq!(f.blocked("Ann@X.com", &a, t0), None, "attempt {i}");
            f.failed("ann@x.com ", &a, t0 + Duration::from_secs(i));
        }
        let wait = f.blocked(
            "ann@x.com",
            &client("10.0.0.2"),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(
            wait,
            Some(Duration::from_secs(50)),
            "another client is blocked too"
        );
        assert_eq!(
            f.blocked("bob@x.com", &a, t0),
            None,
            "other accounts are not"
        );
        assert_eq!(
            f.blocked("ann@x.com", &a, t0 + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn a_client_is_blocked_after_failures_across_accounts() {
        let f = Failures::new(100, 4, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..4 {
            f.failed(&format!("user{i}@x.com"), &client("2001:db8:1:2::7"), t0);
        }
        // The same /64 is the same client; another /64 is not.
        assert!(
            f.blocked("new@x.com", &client("2001:db8:1:2::99"), t0)
                .is_some()
        );
        assert!(
            f.blocked("new@x.com", &client("2001:db8:1:3::1"), t0)
                .is_none()
        );
    }

    #[test]
    fn success_forgets_the_account_but_not_the_client() {
        let f = Failures::new(2, 3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = client("10.0.0.1");
        f.failed("ann@x.com", &a, t0);
        f.failed("ann@x.com", &a, t0);
        assert!(f.blocked("ann@x.com", &client("10.9.9.9"), t0).is_some());
        f.succeeded("ann@x.com");
        assert!(f.blocked("ann@x.com", &client("10.9.9.9"), t0).is_none());
        f.failed("bob@x.com", &a, t0);
        assert!(
            f.blocked("carl@x.com", &a, t0).is_some(),
            "the client still counts 3"
        );
    }
}
