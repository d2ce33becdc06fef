//! kith's web core, shared by the JSON API, the customer portal and the staff
//! console: server settings, the application state, sign-in (sessions bound
//! to their browser, one-time codes for customers, passwords for staff, API
//! keys with scopes), anti-forgery tokens, in-memory rate limits, the page
//! layout and the routes every deployment has (`/healthz`, `/readyz`, `/static/…`).
//!
//! The parts plug into one router in the `kith` binary:
//! `kith_web::routes()`, `kith_api::routes()`, `kith_portal::routes()` and
//! `kith_console::routes()`, all over one [`AppState`].

pub mod auth;
mod error;
pub mod layout;
pub mod limiter;
mod sender;
mod settings;
mod state;

pub use error::{PageError, PageResult};
pub use sender::{CodeSender, FileSender, LogSender, SendError, build_sender};
pub use settings::{SenderConfig, ServerSettings, SituationRule};
pub use state::AppState;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// `/healthz` (the process answers), `/readyz` (the hub store answers) and the stylesheet.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/static/kith.css", get(stylesheet))
}

async fn readyz(state: axum::extract::State<AppState>) -> impl IntoResponse {
    match state.hub.store().schema_version().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!("readyz: hub store does not answer: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "hub store unavailable").into_response()
        }
    }
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/kith.css"),
    )
}
