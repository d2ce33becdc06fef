//! Corrections, preferences, consents and feedback about a party: listed,
//! and added by applications with scope `contribute`. kith never writes
//! them into a source; views show them beside the sources' values.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use kith_model::{Anchor, Contribution, ContributionKind, RecordRef};
use kith_store::{ApiScope, NewContribution, StoredRecord};
use kith_web::AppState;
use kith_web::auth::keys::ApiCaller;

use super::{audit, resolve};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::schema::{AnchorDto, ContributionDto, ContributionList, NewContributionBody};

const ATTRIBUTE_MAX: usize = 64;
const VALUE_MAX: usize = 1000;
const FEEDBACK_MAX: usize = 4000;

/// What was contributed about the party.
///
/// Corrections, preferences, consents and feedback by the customer, staff or
/// applications, anchored to the party's records or identifiers, oldest first.
#[utoipa::path(
    get,
    operation_id = "list_contributions",
    path = "/api/v1/parties/{id}/contributions",
    tag = "contributions",
    params(("id" = String, Path, description = "A party id")),
    responses(
        (status = 200, description = "The contributions", body = ContributionList),
        (status = 400, description = "The id is not a party id", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `read`", body = ErrorBody),
        (status = 404, description = "No such party", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ContributionList>> {
    caller.require(ApiScope::Read)?;
    let Path(id) = id?;
    let (party, resolved) = resolve(&state, &id).await?;
    let records = party_records(&state, &party.id).await?;
    let contributions = state
        .store()
        .contributions(&kith_store::party_anchors(&records))
        .await?;
    audit(
        &state,
        &caller,
        "contributions",
        Some(&party.id),
        String::new(),
    )
    .await?;
    Ok(Json(ContributionList {
        resolved,
        contributions: contributions.into_iter().map(Into::into).collect(),
    }))
}

/// Adds a correction, preference, consent or feedback to the party.
///
/// Stored as made by this key (`api-key:<id>`); it takes effect at once in
/// every view. kith never writes it into a source.
///
/// The anchor must be one of the party's records or identifiers; a record or
/// identifier of anyone else is refused with 422. Needs scope `contribute`.
#[utoipa::path(
    post,
    operation_id = "add_contribution",
    path = "/api/v1/parties/{id}/contributions",
    tag = "contributions",
    params(("id" = String, Path, description = "A party id")),
    request_body = NewContributionBody,
    responses(
        (status = 201, description = "Stored", body = ContributionDto),
        (status = 400, description = "The id is not a party id, or the body is not JSON of this shape", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The key lacks scope `contribute`", body = ErrorBody),
        (status = 404, description = "No such party", body = ErrorBody),
        (status = 415, description = "The body was not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "The anchor is not this party's, or the attribute or value is not acceptable", body = ErrorBody),
        (status = 503, description = "The hub store is unavailable", body = ErrorBody),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: ApiCaller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<NewContributionBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ContributionDto>)> {
    caller.require(ApiScope::Contribute)?;
    let Path(id) = id?;
    let Json(body) = body?;
    let kind = ContributionKind::from(body.kind);
    let attribute = check_attribute(&body.attribute)?;
    check_value(kind, &body.value)?;

    let (party, _) = resolve(&state, &id).await?;
    let records = party_records(&state, &party.id).await?;
    let anchor = match body.anchor {
        Some(a) => own_anchor(&state, &party.id, &records, a)?,
        None => default_anchor(&party.founding_record, &records)
            .ok_or_else(|| ApiError::unprocessable("the party has no records to anchor to"))?,
    };
    let new = NewContribution {
        party: party.id.clone(),
        anchor,
        kind,
        attribute,
        value: body.value,
        by: caller.actor(),
        created_at: Utc::now(),
    };
    let id = state.store().add_contribution(&new).await?;
    audit(
        &state,
        &caller,
        "contribute",
        Some(&party.id),
        format!("{} {} (contribution {id})", kind.as_str(), new.attribute),
    )
    .await?;
    let stored = Contribution {
        id,
        party: new.party,
        anchor: new.anchor,
        kind: new.kind,
        attribute: new.attribute,
        value: new.value,
        by: new.by,
        created_at: new.created_at,
    };
    Ok((StatusCode::CREATED, Json(stored.into())))
}

async fn party_records(
    state: &AppState,
    party: &kith_model::PartyId,
) -> ApiResult<Vec<StoredRecord>> {
    let (_, records) = state
        .store()
        .party_records(party)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no party has id {party}")))?;
    Ok(records.into_iter().map(|(_, s)| s).collect())
}

/// The party's records and identifiers: what its contributions hang on.
/// The anchor asked for, if it is the party's own: one of its records, or
/// an identifier one of its records holds (given normalised or as typed).
fn own_anchor(
    state: &AppState,
    party: &kith_model::PartyId,
    records: &[StoredRecord],
    anchor: AnchorDto,
) -> ApiResult<Anchor> {
    match anchor {
        AnchorDto::Record { source, key } => {
            let r = RecordRef::new(source, key);
            if records.iter().any(|s| s.record.record == r) {
                Ok(Anchor::Record(r))
            } else {
                Err(ApiError::unprocessable(format!(
                    "anchor: record {r} is not linked to party {party}"
                )))
            }
        }
        AnchorDto::Identifier { value } => {
            let held = |id: &str| {
                records
                    .iter()
                    .any(|s| s.identifiers.iter().any(|i| i == id))
            };
            let typed = value.trim();
            let bare = typed
                .strip_prefix("email:")
                .or_else(|| typed.strip_prefix("phone:"))
                .unwrap_or(typed);
            let normalised = state.hub.sign_in_identifier(bare);
            [Some(typed.to_string()), normalised]
                .into_iter()
                .flatten()
                .find(|id| held(id))
                .map(|value| Anchor::Identifier { value })
                .ok_or_else(|| {
                    ApiError::unprocessable(format!(
                        "anchor: identifier {typed:?} is not held by party {party}'s records"
                    ))
                })
        }
    }
}

/// The party's founding record when it is still linked, else its first record.
fn default_anchor(founding: &RecordRef, records: &[StoredRecord]) -> Option<Anchor> {
    records
        .iter()
        .map(|s| &s.record.record)
        .find(|r| *r == founding)
        .or_else(|| records.first().map(|s| &s.record.record))
        .map(|r| Anchor::Record(r.clone()))
}

/// An attribute or topic: lower-case letters, digits and `_ . : -`.
fn check_attribute(raw: &str) -> ApiResult<String> {
    let a = raw.trim();
    let ok = !a.is_empty()
        && a.len() <= ATTRIBUTE_MAX
        && a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c));
    if ok {
        Ok(a.to_string())
    } else {
        Err(ApiError::unprocessable(format!(
            "attribute: {raw:?} must be 1 to {ATTRIBUTE_MAX} lower-case letters, digits or _ . : -"
        )))
    }
}

/// Feedback is text; the rest are one scalar: text, a number or true/false.
fn check_value(kind: ContributionKind, value: &serde_json::Value) -> ApiResult<()> {
    use serde_json::Value;
    let max = if kind == ContributionKind::Feedback {
        FEEDBACK_MAX
    } else {
        VALUE_MAX
    };
    match value {
        Value::String(s) if s.trim().is_empty() => {
            Err(ApiError::unprocessable("value: must not be blank"))
        }
        Value::String(s) if s.chars().count() > max => Err(ApiError::unprocessable(format!(
            "value: at most {max} characters"
        ))),
        Value::String(_) => Ok(()),
        Value::Number(_) | Value::Bool(_) if kind != ContributionKind::Feedback => Ok(()),
        _ if kind == ContributionKind::Feedback => {
            Err(ApiError::unprocessable("value: feedback must be text"))
        }
        _ => Err(ApiError::unprocessable(format!(
            "value: a {} must be text, a number or true/false",
            kind.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_model::{IdentityAttrs, IdentityRecord, PartyKind};
    use serde_json::json;

    fn stored(source: &str, key: &str, identifiers: &[&str]) -> StoredRecord {
        let now = Utc::now();
        StoredRecord {
            record: IdentityRecord {
                record: RecordRef::new(source, key),
                kind: PartyKind::Person,
                relation: None,
                attrs: IdentityAttrs::default(),
                cursor: None,
                updated_at: None,
            },
            identifiers: identifiers.iter().map(|s| s.to_string()).collect(),
            party: None,
            rule: None,
            evidence: vec![],
            first_seen: now,
            last_seen: now,
        }
    }

    #[test]
    fn attributes_are_plain_names() {
        assert_eq!(check_attribute(" email ").unwrap(), "email");
        assert_eq!(check_attribute("channel:sms").unwrap(), "channel:sms");
        for bad in ["", "Email", "a b", "<script>", &"x".repeat(65)] {
            assert!(check_attribute(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_fit_their_kind() {
        use ContributionKind::*;
        assert!(check_value(Consent, &json!(false)).is_ok());
        assert!(check_value(Preference, &json!("weekly")).is_ok());
        assert!(check_value(Correction, &json!(42)).is_ok());
        assert!(check_value(Feedback, &json!("lovely shop")).is_ok());
        assert!(check_value(Feedback, &json!(true)).is_err());
        assert!(check_value(Correction, &json!(null)).is_err());
        assert!(check_value(Correction, &json!({"a": 1})).is_err());
        assert!(check_value(Correction, &json!([1])).is_err());
        assert!(check_value(Correction, &json!("  ")).is_err());
        assert!(check_value(Correction, &json!("x".repeat(1001))).is_err());
        assert!(check_value(Feedback, &json!("x".repeat(1001))).is_ok());
    }

    #[test]
    fn the_default_anchor_is_the_founding_record_while_linked() {
        let records = vec![stored("billing", "1", &[]), stored("shop", "9", &[])];
        assert_eq!(
            default_anchor(&RecordRef::new("shop", "9"), &records),
            Some(Anchor::Record(RecordRef::new("shop", "9")))
        );
        assert_eq!(
            default_anchor(&RecordRef::new("gone", "7"), &records),
            Some(Anchor::Record(RecordRef::new("billing", "1")))
        );
        assert_eq!(default_anchor(&RecordRef::new("gone", "7"), &[]), None);
    }
}
