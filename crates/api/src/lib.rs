//! kith's JSON API under `/api/v1`, and its OpenAPI document at `/openapi.json`.
//!
//! Every route is registered through utoipa-axum's `routes!`, which takes the
//! path and method from the handler's `#[utoipa::path]` attribute, so a route
//! cannot be served without being documented. [`ROUTES`] lists them once more
//! for people and for the tests that compare the list, the document and the
//! running server.
//!
//! Access: every route but `/openapi.json` needs an API key
//! (`Authorization: Bearer <key>`), checked against the store on every
//! request (a revoked key fails at once). Reads need scope `read` (or
//! `contribute`); review decisions and contributions need `contribute`; an
//! `ingest` key reaches none of them. Every read of a party's data writes an
//! audit entry (`api-key:<id>`), so the customer can see who looked.

mod error;
mod params;
mod routes;
mod schema;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use kith_web::AppState;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ErrorBody};

/// Every route the document describes: method, path, and who serves it.
/// `kith-web` serves `/healthz` and `/readyz`; this crate serves the rest.
pub const ROUTES: &[(&str, &str, Server)] = &[
    ("GET", "/openapi.json", Server::Api),
    ("GET", "/healthz", Server::Web),
    ("GET", "/readyz", Server::Web),
    ("GET", "/api/v1/parties", Server::Api),
    ("GET", "/api/v1/parties/{id}", Server::Api),
    ("GET", "/api/v1/parties/{id}/timeline", Server::Api),
    ("GET", "/api/v1/parties/{id}/links", Server::Api),
    ("GET", "/api/v1/parties/{id}/contributions", Server::Api),
    ("POST", "/api/v1/parties/{id}/contributions", Server::Api),
    ("GET", "/api/v1/search", Server::Api),
    ("GET", "/api/v1/explain", Server::Api),
    ("GET", "/api/v1/review", Server::Api),
    ("POST", "/api/v1/review", Server::Api),
];

/// Which crate answers a documented route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `kith_api::routes()`
    Api,
    /// `kith_web::routes()`
    Web,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kith API",
        description = "The 360 view of each party, search, timeline, links and match evidence, \
            the review queue and contributions. Send an API key made with \
            `kith keys create --scope read|contribute` as `Authorization: Bearer <key>`. \
            Errors are JSON `{\"error\": \"...\"}`: 400 malformed query or body (the field is \
            named), 401 missing, unknown or revoked key, 403 the key's scope does not allow it, \
            404 unknown party or record, 415 body not sent as JSON, 422 well-formed but not \
            acceptable, 503 the hub store is unavailable.",
    ),
    paths(routes::meta::healthz, routes::meta::readyz),
    modifiers(&BearerKey),
    security(("api_key" = [])),
    tags(
        (name = "parties", description = "Parties, their 360 view, timeline and links"),
        (name = "search", description = "Finding parties"),
        (name = "matching", description = "Match evidence and the review queue"),
        (name = "contributions", description = "Corrections, preferences, consents and feedback"),
        (name = "meta", description = "The document and health checks (no key needed)"),
    )
)]
struct ApiDoc;

/// Declares the bearer key every operation asks for unless it says otherwise.
struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description =
            Some("An API key from `kith keys create`; `X-Api-Key: <key>` works too.".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(http));
    }
}

/// The one place routes are registered: each through `routes!`, so documented.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::meta::openapi_json))
        .routes(routes!(routes::parties::list))
        .routes(routes!(routes::parties::show))
        .routes(routes!(routes::parties::timeline))
        .routes(routes!(routes::parties::links))
        .routes(routes!(
            routes::contributions::list,
            routes::contributions::add
        ))
        .routes(routes!(routes::search::search))
        .routes(routes!(routes::matching::explain))
        .routes(routes!(routes::matching::queue, routes::matching::decide))
}

/// The OpenAPI document of every route, built once.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| {
        let mut doc = api_router().into_openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc
    });
    &DOC
}

/// The API's routes, for `kith serve` to merge with the others.
pub fn routes() -> Router<AppState> {
    let (router, _) = api_router().split_for_parts();
    router
        // Not an endpoint: unknown paths under /api/v1 get a JSON 404 rather
        // than another part's HTML page.
        .route("/api/v1/{*rest}", any(unknown_route))
        .layer(middleware::from_fn(json_method_errors))
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "there is no API route {method} {}; /openapi.json lists them",
        uri.path()
    ))
}

/// axum answers a known path asked with another method by an empty 405;
/// API clients get the JSON error every other refusal has. (axum adds the
/// `Allow` header outside this layer, so the answer still carries it.)
async fn json_method_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    ApiError::Status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed here; the Allow header lists the methods that are, \
             and /openapi.json describes them"
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests;
