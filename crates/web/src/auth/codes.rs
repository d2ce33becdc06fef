//! One-time sign-in codes for customers.
//!
//! A code is six random digits, valid for `server.code_ttl`, good for one
//! sign-in, and dead after `server.code_attempts` wrong guesses; one
//! identifier is sent at most `server.codes_per_window` codes per
//! `server.code_window`. So a guesser gets at most attempts × codes tries per
//! window against a million codes. The store keeps a salted hash; the code in
//! clear exists only in the message the sender delivers.

use chrono::{TimeDelta, Utc};
use kith_hub::SignInTarget;
use kith_store::NewLoginCode;
use rand::Rng;

use super::{random_token, same_secret, sha256_hex};
use crate::{AppState, PageError};

/// What happened to a request for a code. The person asking is told the same
/// thing in every case, so the form does not reveal who is a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRequest {
    Sent {
        masked: String,
    },
    /// The identifier proves no party (unknown, unverified, ambiguous, uncertain).
    NotEligible,
    /// Too many codes for this identifier lately.
    RateLimited,
    /// Not an e-mail address or phone number at all (this one the person is told).
    NotAnIdentifier,
}

fn code_hash(salt: &str, code: &str) -> String {
    sha256_hex(&format!("{salt}:{code}"))
}

/// Sends a code to what the person typed, if it proves a party.
pub async fn request(state: &AppState, input: &str) -> Result<CodeRequest, PageError> {
    let hub = &state.hub;
    let target = match hub.sign_in_target(input).await? {
        Ok(t) => t,
        Err(kith_hub::SignInRefusal::NotAnIdentifier) => return Ok(CodeRequest::NotAnIdentifier),
        Err(refusal) => {
            tracing::info!("no sign-in code sent: {refusal:?}");
            return Ok(CodeRequest::NotEligible);
        }
    };
    let s = &state.settings;
    let now = Utc::now();
    let window = TimeDelta::from_std(s.code_window).unwrap_or(TimeDelta::MAX);
    let store = state.store();
    let issued = store
        .login_codes_issued_since(&target.identifier, now - window)
        .await?;
    if issued >= s.codes_per_window {
        tracing::warn!("sign-in codes for {} are rate-limited", target.masked);
        return Ok(CodeRequest::RateLimited);
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let salt = random_token(8);
    store
        .create_login_code(&NewLoginCode {
            identifier: target.identifier.clone(),
            party: target.party.clone(),
            code_hash: code_hash(&salt, &code),
            salt,
            created_at: now,
            expires_at: now + TimeDelta::from_std(s.code_ttl).unwrap_or(TimeDelta::MAX),
        })
        .await?;
    // Sent in the background: waiting for a mail relay here would make an
    // address that gets a code answer slower than one that does not.
    let (sender, identifier, minutes) = (
        state.sender.clone(),
        target.identifier.clone(),
        s.code_ttl.as_secs().div_ceil(60),
    );
    tokio::spawn(async move {
        if let Err(e) = sender.send(&identifier, &code, minutes).await {
            tracing::error!("{e}");
        }
    });
    Ok(CodeRequest::Sent {
        masked: target.masked,
    })
}

/// Checks a code typed for an identifier. A right code is used up and returns
/// the party the identifier proves now; a wrong one counts against the code.
pub async fn verify(
    state: &AppState,
    input: &str,
    code: &str,
) -> Result<Option<SignInTarget>, PageError> {
    let hub = &state.hub;
    let Some(identifier) = hub.sign_in_identifier(input) else {
        return Ok(None);
    };
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let store = state.store();
    let now = Utc::now();
    let Some(stored) = store.active_login_code(&identifier, now).await? else {
        return Ok(None);
    };
    let max = state.settings.code_attempts;
    if stored.attempts >= max {
        store.use_login_code(stored.id, now).await?;
        return Ok(None);
    }
    if !same_secret(&code_hash(&stored.salt, &code), &stored.code_hash) {
        let attempts = store.count_login_attempt(stored.id).await?;
        if attempts >= max {
            // Dead after too many guesses: burn it so it can never be used.
            store.use_login_code(stored.id, now).await?;
            tracing::warn!("a sign-in code was burnt after {attempts} wrong guesses");
        }
        return Ok(None);
    }
    if !store.use_login_code(stored.id, now).await? {
        return Ok(None);
    }
    Ok(hub.identifier_target(identifier).await?.ok())
}
