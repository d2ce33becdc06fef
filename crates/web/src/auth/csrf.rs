//! Anti-forgery tokens. Signed-in forms echo the session's token; forms
//! shown before sign-in echo a token that must match the `kith_pre` cookie
//! (double submit). SameSite=Strict cookies are the first line; these are the second.

use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::{random_token, same_secret};
use crate::PageError;

pub const PRE_COOKIE: &str = "kith_pre";

/// A form that carries nothing but the anti-forgery token (sign-out).
#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    pub csrf: String,
}

/// The signed-in form's token must be the session's.
pub fn check(session_csrf: &str, form_csrf: &str) -> Result<(), PageError> {
    if same_secret(session_csrf, form_csrf) {
        Ok(())
    } else {
        tracing::warn!("refused a form without the session's anti-forgery token");
        Err(PageError::forbidden(
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        ))
    }
}

/// The pre-sign-in token: the cookie's if there is one, else a new one set on the jar.
pub fn pre_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(c) = jar.get(PRE_COOKIE)
        && c.value().len() == 32
    {
        let v = c.value().to_string();
        return (jar, v);
    }
    let token = random_token(16);
    let cookie = Cookie::build((PRE_COOKIE, token.clone()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .build();
    (jar.add(cookie), token)
}

/// A pre-sign-in form's token must match its cookie.
pub fn check_pre(jar: &CookieJar, form_csrf: &str) -> Result<(), PageError> {
    match jar.get(PRE_COOKIE) {
        Some(c) if same_secret(c.value(), form_csrf) => Ok(()),
        _ => {
            tracing::warn!("refused a sign-in form without its anti-forgery token");
            Err(PageError::forbidden(
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ))
        }
    }
}
