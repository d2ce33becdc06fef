//! The customer's own portal: sign in with a one-time code, see your data with provenance, correct it, set consents, download it, ask for erasure, dispute a link.

use axum::Router;
use kith_web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
