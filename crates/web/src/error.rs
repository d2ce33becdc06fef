//! Errors of pages: a status, a message for the person, and never an internal detail.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::layout::Chrome;

/// What a page handler returns when it cannot show its page.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): go to this sign-in page.
    SignIn(&'static str),
    /// A status and a message people can act on.
    Status(StatusCode, String),
}

pub type PageResult<T> = Result<T, PageError>;

impl PageError {
    pub fn not_found(what: impl Into<String>) -> Self {
        PageError::Status(StatusCode::NOT_FOUND, what.into())
    }
    pub fn forbidden(what: impl Into<String>) -> Self {
        PageError::Status(StatusCode::FORBIDDEN, what.into())
    }
    pub fn bad_request(what: impl Into<String>) -> Self {
        PageError::Status(StatusCode::BAD_REQUEST, what.into())
    }
    pub fn too_many(what: impl Into<String>) -> Self {
        PageError::Status(StatusCode::TOO_MANY_REQUESTS, what.into())
    }
    /// An internal failure: logged in full, shown as a short apology.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("page failed: {e}");
        PageError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; it has been logged. Please try again.".into(),
        )
    }
}

impl From<kith_hub::Error> for PageError {
    fn from(e: kith_hub::Error) -> Self {
        match e {
            kith_hub::Error::NotFound(m) => PageError::not_found(m),
            kith_hub::Error::Invalid(m) => PageError::bad_request(m),
            other => PageError::internal(other),
        }
    }
}

impl From<kith_store::Error> for PageError {
    fn from(e: kith_store::Error) -> Self {
        PageError::internal(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::internal(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(to) => Redirect::to(to).into_response(),
            PageError::Status(status, message) => {
                let page = ErrorPage {
                    chrome: Chrome::bare(status.canonical_reason().unwrap_or("Error")),
                    status: status.as_u16(),
                    message: &message,
                };
                match page.render() {
                    Ok(html) => (status, Html(html)).into_response(),
                    Err(_) => (status, message).into_response(),
                }
            }
        }
    }
}
