//! Browser sessions: a random token in a cookie, its hash in the store.

use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{TimeDelta, Utc};
use kith_model::PartyId;
use kith_store::{AuditEntry, Session, SessionSubject, StaffRole, StaffUser};

use super::{random_token, sha256_hex};
use crate::{AppState, PageError};

pub const COOKIE: &str = "kith_session";

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Starts a session and returns the cookie that carries it.
pub async fn start(
    state: &AppState,
    subject: SessionSubject,
    user_agent: &str,
) -> Result<Cookie<'static>, PageError> {
    let token = random_token(32);
    let now = Utc::now();
    let s = &state.settings;
    let session = Session {
        token_hash: sha256_hex(&token),
        subject,
        csrf: random_token(16),
        created_at: now,
        expires_at: now + delta(s.session_idle).min(delta(s.session_max)),
        last_seen_at: now,
        user_agent: user_agent.chars().take(512).collect(),
    };
    state.store().create_session(&session).await?;
    Ok(Cookie::build((COOKIE, token))
        .path("/")
        .http_only(true)
        .secure(s.secure_cookies())
        .same_site(SameSite::Strict)
        .build())
}

/// Signs a browser in as `subject`: whatever session it had (a customer's,
/// an old one) ends, a new one starts (a new sign-in always gets a new
/// token), and the sign-in is written to the audit log as `actor` with
/// `detail`. Returns the cookie that carries the new session.
pub async fn sign_in(
    state: &AppState,
    jar: &CookieJar,
    headers: &axum::http::HeaderMap,
    subject: SessionSubject,
    actor: String,
    detail: String,
) -> Result<Cookie<'static>, PageError> {
    end(state, jar).await?;
    let party = match &subject {
        SessionSubject::Customer { party, .. } => Some(party.clone()),
        SessionSubject::Staff { .. } => None,
    };
    let cookie = start(state, subject, &request_user_agent(headers)).await?;
    state
        .store()
        .audit(&AuditEntry {
            at: Utc::now(),
            actor,
            action: "sign-in".into(),
            party,
            detail,
        })
        .await?;
    Ok(cookie)
}

/// The User-Agent of a request, for [`start`].
pub fn request_user_agent(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect()
}

/// Ends the session the request carries, if any, and returns the cookie that clears it.
pub async fn end(state: &AppState, jar: &CookieJar) -> Result<Cookie<'static>, PageError> {
    if let Some(c) = jar.get(COOKIE) {
        state.store().delete_session(&sha256_hex(c.value())).await?;
    }
    Ok(Cookie::build((COOKIE, "")).path("/").build())
}

/// Signs a browser out: the form must carry the session's anti-forgery
/// token; the session ends in the store (the cookie alone is not trusted to
/// go away) and the browser is told to drop the cookie.
pub async fn sign_out(
    state: &AppState,
    jar: CookieJar,
    session_csrf: &str,
    form: &super::csrf::CsrfForm,
) -> Result<CookieJar, PageError> {
    super::csrf::check(session_csrf, &form.csrf)?;
    let cleared = end(state, &jar).await?;
    Ok(jar.remove(cleared))
}

/// The live session a request carries: known, unexpired and from the browser
/// it was made for. An expired or misused session is deleted.
async fn current(parts: &Parts, state: &AppState) -> Result<Option<Session>, PageError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(COOKIE) else {
        return Ok(None);
    };
    let hash = sha256_hex(cookie.value());
    let store = state.store();
    let Some(session) = store.session(&hash).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let s = &state.settings;
    if now >= session.expires_at || now >= session.created_at + delta(s.session_max) {
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    if session.user_agent != request_user_agent(&parts.headers) {
        // A session cookie presented by another browser: treat it as stolen.
        tracing::warn!("ended a session presented by a different browser than it was made for");
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    // Slide the idle expiry, writing at most once a minute per session.
    if now - session.last_seen_at >= TimeDelta::minutes(1) {
        let expires = (now + delta(s.session_idle)).min(session.created_at + delta(s.session_max));
        store.touch_session(&hash, now, expires).await?;
    }
    Ok(Some(session))
}

/// A signed-in customer, proven again on every request: the identifier they
/// signed in with must still prove a party, and that party is theirs.
#[derive(Debug, Clone)]
pub struct Customer {
    pub party: PartyId,
    pub identifier: String,
    pub masked: String,
    pub csrf: String,
    pub token_hash: String,
}

impl Customer {
    /// Who did something, for contributions and the audit log.
    pub fn actor(&self) -> String {
        format!("customer:{}", self.party)
    }
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(session) = current(parts, state).await? else {
            return Err(PageError::SignIn("/sign-in"));
        };
        let SessionSubject::Customer { identifier, .. } = &session.subject else {
            return Err(PageError::SignIn("/sign-in"));
        };
        match state.hub.identifier_target(identifier.clone()).await? {
            Ok(target) => Ok(Customer {
                party: target.party,
                identifier: target.identifier,
                masked: target.masked,
                csrf: session.csrf,
                token_hash: session.token_hash,
            }),
            Err(refusal) => {
                tracing::info!(
                    "ended a customer session: its identifier no longer proves a party ({refusal:?})"
                );
                state.store().delete_session(&session.token_hash).await?;
                Err(PageError::SignIn("/sign-in"))
            }
        }
    }
}

/// A signed-in member of staff whose account is enabled.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user: StaffUser,
    pub csrf: String,
    pub token_hash: String,
}

impl Staff {
    pub fn actor(&self) -> String {
        format!("staff:{}", self.user.email)
    }
    pub fn is_admin(&self) -> bool {
        self.user.role == StaffRole::Admin
    }
    /// Refuses anyone but an admin.
    pub fn require_admin(&self) -> Result<(), PageError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(PageError::forbidden("Only an admin may do this."))
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(session) = current(parts, state).await? else {
            return Err(PageError::SignIn("/staff/sign-in"));
        };
        let SessionSubject::Staff { user } = session.subject else {
            return Err(PageError::SignIn("/staff/sign-in"));
        };
        match state.store().staff_user(user).await? {
            Some(u) if u.disabled_at.is_none() => Ok(Staff {
                user: u,
                csrf: session.csrf,
                token_hash: session.token_hash,
            }),
            _ => {
                state.store().delete_session(&session.token_hash).await?;
                Err(PageError::SignIn("/staff/sign-in"))
            }
        }
    }
}
