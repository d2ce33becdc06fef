//! The staff console: search, a party's 360 page, the timeline, match evidence, the review queue, customers' requests, keys and users.

use axum::Router;
use kith_web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
