//! Admin pages: API keys (made, shown once, revoked) and staff accounts
//! (added with a generated password shown once, disabled, enabled). Agents
//! get 403 on every one of them; every change is audited.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use kith_store::{ApiScope, AuditEntry, NewStaffUser, StaffRole};
use kith_web::auth::session::Staff;
use kith_web::auth::{csrf, keys, password};
use kith_web::layout::{Chrome, when};
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::sign_in::NoticeQuery;
use crate::{Section, chrome, when_opt};

/// Labels and names are for people telling things apart, not essays.
const MAX_TEXT: usize = 100;

async fn audit(state: &AppState, staff: &Staff, action: &str, detail: String) -> PageResult<()> {
    state
        .store()
        .audit(&AuditEntry {
            at: Utc::now(),
            actor: staff.actor(),
            action: action.into(),
            party: None,
            detail,
        })
        .await?;
    Ok(())
}

/// What an admin page says besides its list.
enum Said<T> {
    /// The notice a redirect asked for (`?notice=…`), if any.
    Notice(Option<String>),
    /// What was just made, shown this once (a key, a password).
    Made(T),
    /// Why the form was refused, and the status to answer with.
    Refused(StatusCode, String),
}

impl<T> Said<T> {
    fn notice(q: &NoticeQuery) -> Self {
        Said::Notice(crate::notice(q.notice.as_deref()))
    }

    /// (status, notice, what was made, error) for the page.
    fn parts(self) -> (StatusCode, Option<String>, Option<T>, Option<String>) {
        match self {
            Said::Notice(n) => (StatusCode::OK, n, None, None),
            Said::Made(made) => (StatusCode::OK, None, Some(made), None),
            Said::Refused(status, error) => (status, None, None, Some(error)),
        }
    }
}

/// The id of a row a form acts on (`what`: "a key", "an account").
fn id_of(raw: &str, what: &str) -> PageResult<i64> {
    raw.trim()
        .parse()
        .map_err(|_| PageError::bad_request(format!("{raw:?} is not {what} id.")))
}

/// Back to an admin page after a change, saying what was done.
fn done(page: &str, notice: &str) -> Response {
    Redirect::to(&format!("/staff/admin/{page}?notice={notice}")).into_response()
}

/// A short single line of text from a form, or why not.
fn short_text(what: &str, s: &str, required: bool) -> Result<String, String> {
    let s = s.trim();
    if required && s.is_empty() {
        return Err(format!("The {what} must not be empty."));
    }
    if s.chars().count() > MAX_TEXT {
        return Err(format!("The {what} must be at most {MAX_TEXT} characters."));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("The {what} must be a single line of text."));
    }
    Ok(s.to_string())
}

// --- API keys ------------------------------------------------------------

struct KeyRow {
    id: i64,
    label: String,
    scope: &'static str,
    prefix: String,
    created: String,
    last_used: String,
    revoked: String,
    active: bool,
}

struct NewKey {
    id: i64,
    key: String,
    scope: &'static str,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    new_key: Option<NewKey>,
    error: Option<String>,
    label: String,
}

/// The keys page; `label` is what the form holds.
async fn keys_page(
    state: &AppState,
    staff: &Staff,
    said: Said<NewKey>,
    label: String,
) -> PageResult<Response> {
    let (status, notice, new_key, error) = said.parts();
    let mut chrome = chrome(state, staff, "API keys", Section::Keys).await?;
    chrome.notice = notice;
    let keys = state
        .store()
        .api_keys()
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            label: k.label,
            scope: k.scope.as_str(),
            prefix: format!("{}…", k.prefix),
            created: when(&k.created_at),
            last_used: when_opt(k.last_used_at),
            revoked: when_opt(k.revoked_at),
            active: k.revoked_at.is_none(),
        })
        .collect();
    let page = KeysPage {
        chrome,
        keys,
        new_key,
        error,
        label,
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub(crate) async fn keys(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<NoticeQuery>,
) -> PageResult<Response> {
    staff.require_admin()?;
    keys_page(&state, &staff, Said::notice(&q), String::new()).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeyForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    id: String,
}

pub(crate) async fn keys_post(
    State(state): State<AppState>,
    staff: Staff,
    Form(f): Form<KeyForm>,
) -> PageResult<Response> {
    staff.require_admin()?;
    csrf::check(&staff.csrf, &f._csrf)?;
    match f.action.as_str() {
        "create" => {
            let refuse = |error: String| {
                let said = Said::Refused(StatusCode::BAD_REQUEST, error);
                keys_page(&state, &staff, said, f.label.clone())
            };
            let Some(scope) = ApiScope::parse(f.scope.trim()) else {
                return refuse(format!(
                    "{:?} is not a scope: choose read, contribute or ingest.",
                    f.scope
                ))
                .await;
            };
            let label = match short_text("label", &f.label, false) {
                Ok(l) => l,
                Err(e) => return refuse(e).await,
            };
            let (key, stored) = keys::create(state.store().as_ref(), scope, &label).await?;
            audit(
                &state,
                &staff,
                "key.create",
                format!("key {} ({})", stored.id, scope.as_str()),
            )
            .await?;
            let new_key = NewKey {
                id: stored.id,
                key,
                scope: scope.as_str(),
            };
            keys_page(&state, &staff, Said::Made(new_key), String::new()).await
        }
        "revoke" => {
            let id = id_of(&f.id, "a key")?;
            let revoked = state.store().revoke_api_key(id, Utc::now()).await?;
            if revoked {
                audit(&state, &staff, "key.revoke", format!("key {id}")).await?;
            }
            Ok(done(
                "keys",
                if revoked { "revoked" } else { "not-revoked" },
            ))
        }
        other => Err(PageError::bad_request(format!(
            "{other:?} is not something this page does: create or revoke."
        ))),
    }
}

// --- staff accounts ------------------------------------------------------

struct UserRow {
    id: i64,
    email: String,
    name: String,
    role: &'static str,
    created: String,
    disabled: Option<String>,
    me: bool,
}

struct NewUser {
    email: String,
    role: &'static str,
    password: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    created: Option<NewUser>,
    error: Option<String>,
    email: String,
    name: String,
}

/// The staff accounts page; `form` is the (e-mail, name) the form holds.
async fn users_page(
    state: &AppState,
    staff: &Staff,
    said: Said<NewUser>,
    form: (String, String),
) -> PageResult<Response> {
    let (status, notice, created, error) = said.parts();
    let mut chrome = chrome(state, staff, "Staff accounts", Section::Users).await?;
    chrome.notice = notice;
    let users = state
        .store()
        .staff_users()
        .await?
        .into_iter()
        .map(|u| UserRow {
            me: u.id == staff.user.id,
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role.as_str(),
            created: when(&u.created_at),
            disabled: u.disabled_at.map(|t| when(&t)),
        })
        .collect();
    let page = UsersPage {
        chrome,
        users,
        created,
        error,
        email: form.0,
        name: form.1,
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub(crate) async fn users(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<NoticeQuery>,
) -> PageResult<Response> {
    staff.require_admin()?;
    users_page(&state, &staff, Said::notice(&q), Default::default()).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    id: String,
}

pub(crate) async fn users_post(
    State(state): State<AppState>,
    staff: Staff,
    Form(f): Form<UserForm>,
) -> PageResult<Response> {
    staff.require_admin()?;
    csrf::check(&staff.csrf, &f._csrf)?;
    let store = state.store();
    match f.action.as_str() {
        "add" => {
            let form = (f.email.trim().to_string(), f.name.trim().to_string());
            let refuse = |status: StatusCode, error: String| {
                users_page(&state, &staff, Said::Refused(status, error), form.clone())
            };
            let Some(email) = kith_model::normalize::email(&f.email) else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("{:?} is not an e-mail address.", f.email.trim()),
                )
                .await;
            };
            let name = match short_text("name", &f.name, true) {
                Ok(n) => n,
                Err(e) => return refuse(StatusCode::BAD_REQUEST, e).await,
            };
            let Some(role) = StaffRole::parse(f.role.trim()) else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("{:?} is not a role: choose agent or admin.", f.role),
                )
                .await;
            };
            let generated = password::generate();
            let to_hash = generated.clone();
            let hash = tokio::task::spawn_blocking(move || password::hash(&to_hash))
                .await
                .map_err(PageError::internal)?
                .map_err(PageError::internal)?;
            let new = NewStaffUser {
                email: email.clone(),
                name,
                role,
                password_hash: hash,
                created_at: Utc::now(),
            };
            match store.create_staff_user(&new).await {
                Ok(_) => {}
                Err(kith_store::Error::Conflict(_)) => {
                    return refuse(
                        StatusCode::CONFLICT,
                        format!("{email} already has an account."),
                    )
                    .await;
                }
                Err(e) => return Err(e.into()),
            }
            audit(
                &state,
                &staff,
                "user.add",
                format!("{email} ({})", role.as_str()),
            )
            .await?;
            let created = NewUser {
                email,
                role: role.as_str(),
                password: generated,
            };
            users_page(&state, &staff, Said::Made(created), Default::default()).await
        }
        action @ ("disable" | "enable") => {
            let id = id_of(&f.id, "an account")?;
            let user = store
                .staff_user(id)
                .await?
                .ok_or_else(|| PageError::not_found(format!("There is no account {id}.")))?;
            let disable = action == "disable";
            if disable && user.id == staff.user.id {
                return Err(PageError::bad_request(
                    "You cannot disable your own account; ask another admin.",
                ));
            }
            store.set_staff_disabled(id, disable.then(Utc::now)).await?;
            audit(&state, &staff, &format!("user.{action}"), user.email).await?;
            Ok(done("users", if disable { "disabled" } else { "enabled" }))
        }
        other => Err(PageError::bad_request(format!(
            "{other:?} is not something this page does: add, disable or enable."
        ))),
    }
}
