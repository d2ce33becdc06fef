//! kith's JSON API over the 360 view, search, timeline, links and match evidence, review and contributions, with its OpenAPI document.

use axum::Router;
use kith_web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
