//! API keys: `kith_` and 40 random hex characters, shown once when made;
//! the store keeps the SHA-256 and the first characters to tell keys apart.
//! A key is checked on every request, so a revoked key fails at once.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use kith_store::{ApiKey, ApiScope, HubStore, NewApiKey};

use super::{random_token, sha256_hex};
use crate::AppState;

/// Makes a key; returns the key itself (shown once, never stored) and its record.
pub async fn create(
    store: &dyn HubStore,
    scope: ApiScope,
    label: &str,
) -> Result<(String, ApiKey), kith_store::Error> {
    let key = format!("kith_{}", random_token(20));
    let now = Utc::now();
    let new = NewApiKey {
        label: label.to_string(),
        scope,
        prefix: key[..13].to_string(),
        hash: sha256_hex(&key),
        created_at: now,
    };
    let id = store.create_api_key(&new).await?;
    Ok((
        key,
        ApiKey {
            id,
            label: new.label,
            scope,
            prefix: new.prefix,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        },
    ))
}

/// Why an API request was refused.
#[derive(Debug)]
pub enum ApiAuthError {
    Missing,
    Invalid,
    Revoked,
    Scope(ApiScope),
    Store(kith_store::Error),
}

impl ApiAuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiAuthError::Missing | ApiAuthError::Invalid | ApiAuthError::Revoked => {
                StatusCode::UNAUTHORIZED
            }
            ApiAuthError::Scope(_) => StatusCode::FORBIDDEN,
            ApiAuthError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for ApiAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiAuthError::Missing => {
                f.write_str("an API key is required: send `Authorization: Bearer <key>`")
            }
            ApiAuthError::Invalid => f.write_str("the API key is not valid"),
            ApiAuthError::Revoked => f.write_str("the API key was revoked"),
            ApiAuthError::Scope(s) => write!(
                f,
                "this API key's scope does not allow this; it needs scope `{}`",
                s.as_str()
            ),
            // The store's error is logged where it happens, not shown.
            ApiAuthError::Store(_) => f.write_str("cannot check the API key now"),
        }
    }
}

impl IntoResponse for ApiAuthError {
    fn into_response(self) -> Response {
        if let ApiAuthError::Store(e) = &self {
            tracing::error!("API key check failed: {e}");
        }
        let status = self.status();
        let mut r = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// The key an API request carries, checked against the store (not revoked).
/// Handlers call [`ApiCaller::require`] with the scope they need.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key: ApiKey,
}

impl ApiCaller {
    pub fn require(&self, scope: ApiScope) -> Result<(), ApiAuthError> {
        if self.key.scope.allows(scope) {
            Ok(())
        } else {
            Err(ApiAuthError::Scope(scope))
        }
    }
    pub fn actor(&self) -> String {
        format!("api-key:{}", self.key.id)
    }
}

/// The key from `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
pub fn presented_key(parts: &Parts) -> Option<String> {
    if let Some(v) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    {
        return Some(k.trim().to_string());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_string())
}

/// Checks a presented key: known and not revoked; marks it used (at most one write a minute).
pub async fn check(store: &dyn HubStore, presented: &str) -> Result<ApiKey, ApiAuthError> {
    if !presented.starts_with("kith_") || presented.len() != 45 {
        return Err(ApiAuthError::Invalid);
    }
    let key = store
        .api_key_by_hash(&sha256_hex(presented))
        .await
        .map_err(ApiAuthError::Store)?
        .ok_or(ApiAuthError::Invalid)?;
    if key.revoked_at.is_some() {
        return Err(ApiAuthError::Revoked);
    }
    let now = Utc::now();
    if key
        .last_used_at
        .is_none_or(|t| now - t >= TimeDelta::minutes(1))
    {
        store
            .touch_api_key(key.id, now)
            .await
            .map_err(ApiAuthError::Store)?;
    }
    Ok(key)
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiAuthError> {
        let presented = presented_key(parts).ok_or(ApiAuthError::Missing)?;
        let key = check(state.store().as_ref(), &presented).await?;
        Ok(ApiCaller { key })
    }
}
