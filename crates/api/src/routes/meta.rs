//! The OpenAPI document, and the descriptions of the health checks that
//! kith-web serves (documented here so the document lists every route).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;

/// This document (OpenAPI 3.1). No key needed.
#[utoipa::path(
    get,
    operation_id = "get_openapi",
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document of every route", content_type = "application/json", body = Object),
    )
)]
pub async fn openapi_json() -> impl IntoResponse {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        crate::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}

/// The process answers. No key needed.
// Served by kith-web; here only for the document.
#[allow(dead_code)]
#[utoipa::path(
    get,
    operation_id = "healthz",
    path = "/healthz",
    tag = "meta",
    security(()),
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String))
)]
pub async fn healthz() {}

/// The hub store answers. No key needed.
// Served by kith-web; here only for the document.
#[allow(dead_code)]
#[utoipa::path(
    get,
    operation_id = "readyz",
    path = "/readyz",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "`ready`", content_type = "text/plain", body = String),
        (status = 503, description = "The hub store does not answer", content_type = "text/plain", body = String),
    )
)]
pub async fn readyz() {}
