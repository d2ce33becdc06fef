//! The handlers, one module per group of routes, and what they share:
//! finding the party a path names (through merges) and writing the audit log.

pub mod contributions;
pub mod matching;
pub mod meta;
pub mod parties;
pub mod search;

use chrono::Utc;
use kith_model::{Party, PartyId};
use kith_store::AuditEntry;
use kith_web::AppState;
use kith_web::auth::keys::ApiCaller;

use crate::error::{ApiError, ApiResult};
use crate::params;
use crate::schema::Resolved;

/// The party a path's `{id}` names, following merge redirects: an id merged
/// into another answers with the survivor, and says so.
pub async fn resolve(state: &AppState, raw_id: &str) -> ApiResult<(Party, Resolved)> {
    let id = params::party_id("id", raw_id)?;
    let party = state
        .store()
        .party(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no party has id {id}")))?;
    let resolved = Resolved {
        party: party.id.to_string(),
        merged_into: (party.id != id).then(|| party.id.to_string()),
        requested: id.to_string(),
    };
    Ok((party, resolved))
}

/// Writes who read or changed what. A read that cannot be audited is not
/// answered: the customer's right to see who looked comes first.
pub async fn audit(
    state: &AppState,
    caller: &ApiCaller,
    action: &str,
    party: Option<&PartyId>,
    detail: String,
) -> ApiResult<()> {
    state
        .store()
        .audit(&AuditEntry {
            at: Utc::now(),
            actor: caller.actor(),
            action: action.to_string(),
            party: party.cloned(),
            detail,
        })
        .await?;
    Ok(())
}

/// Whether a source's contact details are vouched for (unknown sources are not).
pub fn verified(state: &AppState, source: &str) -> bool {
    state
        .hub
        .connectors()
        .iter()
        .any(|c| c.source().name == source && c.source().verified)
}
