//! Errors of the API: a status and a message a program's author can act on,
//! always as `{"error": "..."}`, never an internal detail (no SQL, no paths,
//! no stack traces: those go to the server log).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kith_web::auth::keys::ApiAuthError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and for a bad request which field.
    #[schema(example = "limit: must be a whole number from 1 to 500, not \"lots\"")]
    pub error: String,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum ApiError {
    /// The key is missing, unknown or revoked (401), lacks the scope (403), or
    /// cannot be checked (503): answered as the web core words it.
    Auth(ApiAuthError),
    /// Any other refusal, with its status.
    Status(StatusCode, String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A malformed query or body; `field` names what to fix.
    pub fn bad_request(field: &str, problem: impl std::fmt::Display) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, format!("{field}: {problem}"))
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::NOT_FOUND, what.into())
    }
    /// Well-formed but not acceptable (a contribution anchored to someone else's record).
    pub fn unprocessable(what: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::UNPROCESSABLE_ENTITY, what.into())
    }
    /// The hub store did not answer; the detail is logged, not shown.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!("API: hub store failed: {detail}");
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "the hub store is not available now; try again shortly".into(),
        )
    }
    /// A failure that is kith's fault; logged in full, shown as a short apology.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("API: internal error: {detail}");
        ApiError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "something went wrong on kith's side; it has been logged".into(),
        )
    }

    /// The status the answer will carry.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(e) => e_status(e),
            ApiError::Status(s, _) => *s,
        }
    }
}

/// The status kith-web answers an authentication failure with.
fn e_status(e: &ApiAuthError) -> StatusCode {
    match e {
        ApiAuthError::Missing | ApiAuthError::Invalid | ApiAuthError::Revoked => {
            StatusCode::UNAUTHORIZED
        }
        ApiAuthError::Scope(_) => StatusCode::FORBIDDEN,
        ApiAuthError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            // Already JSON, with `WWW-Authenticate` on a 401.
            ApiError::Auth(e) => e.into_response(),
            ApiError::Status(status, error) => (status, Json(ErrorBody { error })).into_response(),
        }
    }
}

impl From<ApiAuthError> for ApiError {
    fn from(e: ApiAuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl From<kith_store::Error> for ApiError {
    fn from(e: kith_store::Error) -> Self {
        match e {
            kith_store::Error::Invalid(m) => ApiError::unprocessable(m),
            kith_store::Error::Conflict(m) => ApiError::Status(StatusCode::CONFLICT, m),
            // Open and query failures are the store being away (locked,
            // gone, out of space); the rest mean a damaged or newer store.
            e @ (kith_store::Error::Open { .. }
            | kith_store::Error::Query { .. }
            | kith_store::Error::Read { .. }) => ApiError::unavailable(e),
            e => ApiError::internal(e),
        }
    }
}

impl From<kith_hub::Error> for ApiError {
    fn from(e: kith_hub::Error) -> Self {
        match e {
            kith_hub::Error::NotFound(m) => ApiError::not_found(m),
            kith_hub::Error::Invalid(m) => ApiError::unprocessable(m),
            e @ kith_hub::Error::Ambiguous { .. } => {
                ApiError::Status(StatusCode::CONFLICT, e.to_string())
            }
            kith_hub::Error::Store(e) => e.into(),
            e => ApiError::internal(e),
        }
    }
}

/// A body that is not JSON is 400 (415 without a JSON content type); JSON
/// of the wrong shape is 400 too, naming the field (axum says 422, but here
/// 422 is kept for requests that are well-formed and still not acceptable).
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::JsonDataError(_) => StatusCode::BAD_REQUEST,
            other => other.status(),
        };
        let text = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON, sent with `Content-Type: application/json`".to_string()
            }
            other => tidy(&other.body_text()),
        };
        ApiError::Status(status, text)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, tidy(&r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, tidy(&r.body_text()))
    }
}

/// axum's rejection texts start with a generic sentence and then say what
/// failed (`kind: unknown variant ...`); keep the part people act on.
fn tidy(text: &str) -> String {
    for prefix in [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
        "Failed to deserialize query string: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let what = if prefix.contains("query") {
                "query"
            } else {
                "body"
            };
            return format!("{what}: {rest}");
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_texts_keep_the_field() {
        assert_eq!(
            tidy("Failed to deserialize query string: limit: invalid digit found in string"),
            "query: limit: invalid digit found in string"
        );
        assert_eq!(
            tidy("Failed to parse the request body as JSON: expected value at line 1 column 1"),
            "body: expected value at line 1 column 1"
        );
        assert_eq!(tidy("something else"), "something else");
    }

    #[test]
    fn store_failures_are_unavailable_and_never_show_sql() {
        let e: ApiError = kith_store::Error::Query {
            context: "reading parties",
            source: sqlx::Error::PoolTimedOut,
        }
        .into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let ApiError::Status(_, text) = e else {
            panic!("a status")
        };
        assert!(!text.contains("reading parties"), "{text}");

        let e: ApiError = kith_hub::Error::NotFound("no party has id p_x".into()).into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e: ApiError = kith_hub::Error::Invalid("the only record".into()).into();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e: ApiError = kith_hub::Error::Store(kith_store::Error::Corrupt {
            what: "links",
            detail: "bad json".into(),
        })
        .into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let e: ApiError = ApiAuthError::Scope(kith_store::ApiScope::Contribute).into();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }
}
