//! What a customer tells kith about themself: corrections to profile values,
//! and consents and preferences. Both are stored as contributions with who
//! and when, shown at once in every view, and never written into a source.

use std::collections::BTreeMap;

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use kith_hub::Audience;
use kith_model::{Anchor, ContributionKind, RecordRef};
use kith_store::NewContribution;
use kith_web::auth::csrf;
use kith_web::auth::session::Customer;
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::picture::{self, CHANNELS, FREQUENCIES, FREQUENCY, ProfileRow, TOPICS};
use crate::{audit, clean, fact_kinds};

/// The longest value a correction may propose.
pub const MAX_VALUE: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CorrectionForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    attribute: String,
    #[serde(default)]
    value: String,
    /// The record whose value is wrong (`source:key`); checked against the row.
    #[serde(default)]
    record: String,
}

/// A proposed value, cleaned and checked against what the attribute holds.
/// `identify` normalises an e-mail address or phone number (`email:…`, `phone:…`).
pub(crate) fn valid_value(
    attribute: &str,
    input: &str,
    identify: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let v = clean(input).map_err(|why| format!("The value {why}."))?;
    if v.is_empty() {
        return Err("Type the right value.".into());
    }
    let n = v.chars().count();
    if n > MAX_VALUE {
        return Err(format!(
            "The value is {n} characters long; at most {MAX_VALUE} fit."
        ));
    }
    let a = attribute.to_ascii_lowercase();
    let as_identifier = identify(&v).unwrap_or_default();
    if a.contains("email") && !as_identifier.starts_with("email:") {
        return Err(format!("{v:?} does not look like an e-mail address."));
    }
    if (a.contains("phone") || a.contains("mobile")) && !as_identifier.starts_with("phone:") {
        return Err(format!("{v:?} does not look like a phone number."));
    }
    Ok(v)
}

/// What a correction is attached to: the record whose value is wrong, or,
/// for a value that came from no record (an earlier correction), the
/// identifier the customer signed in with.
pub(crate) fn anchor_for(
    row: &ProfileRow,
    posted: &str,
    identifier: &str,
) -> Result<Anchor, PageError> {
    let posted = posted.trim();
    let record = if posted.is_empty() {
        row.best.record.clone()
    } else {
        let ours = std::iter::once(&row.best)
            .chain(&row.others)
            .any(|v| v.record.as_deref() == Some(posted));
        if !ours {
            return Err(PageError::bad_request(
                "That value is not one of yours. Reload your page and try again.",
            ));
        }
        Some(posted.to_string())
    };
    Ok(match record.as_deref().and_then(RecordRef::parse) {
        Some(r) => Anchor::Record(r),
        None => Anchor::Identifier {
            value: identifier.to_string(),
        },
    })
}

pub(crate) async fn correct(
    State(state): State<AppState>,
    customer: Customer,
    Form(f): Form<CorrectionForm>,
) -> PageResult<Response> {
    csrf::check(&customer.csrf, &f._csrf)?;
    let view = state
        .hub
        .view_as(&customer.party, Audience::Customer)
        .await?;
    let p = picture::build(&view, &fact_kinds(&state));
    let Some(row) = p.profile.iter().find(|r| r.attribute == f.attribute) else {
        return Err(PageError::bad_request(
            "You can only correct a value shown under “Your details”. Reload your page and try again.",
        ));
    };
    let value = valid_value(&row.attribute, &f.value, |v| {
        state.hub.sign_in_identifier(v)
    })
    .map_err(PageError::bad_request)?;
    let anchor = anchor_for(row, &f.record, &customer.identifier)?;
    let on = match &anchor {
        Anchor::Record(r) => r.to_string(),
        Anchor::Identifier { .. } => customer.masked.clone(),
    };
    state
        .store()
        .add_contribution(&NewContribution {
            party: customer.party.clone(),
            anchor,
            kind: ContributionKind::Correction,
            attribute: row.attribute.clone(),
            value: serde_json::Value::String(value),
            by: customer.actor(),
            created_at: chrono::Utc::now(),
        })
        .await?;
    audit(
        &state,
        &customer,
        "correction",
        format!("{} on {on}", row.attribute),
    )
    .await?;
    Ok(Redirect::to("/me?done=correction#profile").into_response())
}

/// The choices a form posted: consents by attribute, and the frequency.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Choices {
    pub csrf: String,
    pub consents: BTreeMap<&'static str, bool>,
    pub frequency: Option<&'static str>,
}

/// Reads the choices form strictly: a field the form does not have, or a
/// value it does not offer, is refused rather than stored.
pub(crate) fn parse_choices(pairs: &[(String, String)]) -> Result<Choices, String> {
    let mut out = Choices::default();
    for (k, v) in pairs {
        if k == "_csrf" {
            out.csrf = v.clone();
        } else if k == FREQUENCY {
            if v.is_empty() {
                continue;
            }
            let Some((f, _)) = FREQUENCIES.iter().find(|(f, _)| f == v) else {
                return Err(format!(
                    "{v:?} is not a frequency the form offers (weekly, monthly or never)."
                ));
            };
            out.frequency = Some(f);
        } else if let Some(name) = k.strip_prefix("consent:") {
            let Some((name, _)) = CHANNELS
                .iter()
                .chain(TOPICS.iter())
                .find(|(n, _)| *n == name)
            else {
                return Err(format!("{name:?} is not a choice the form offers."));
            };
            let yes = match v.as_str() {
                "yes" => true,
                "no" => false,
                other => return Err(format!("{other:?} is neither yes nor no.")),
            };
            if out.consents.insert(name, yes).is_some() {
                return Err(format!("{name:?} was given twice."));
            }
        } else {
            return Err(format!("{k:?} is not a field of the form."));
        }
    }
    Ok(out)
}

pub(crate) async fn choose(
    State(state): State<AppState>,
    customer: Customer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult<Response> {
    let token = pairs
        .iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    csrf::check(&customer.csrf, token)?;
    let choices = parse_choices(&pairs).map_err(PageError::bad_request)?;
    let view = state
        .hub
        .view_as(&customer.party, Audience::Customer)
        .await?;
    let p = picture::build(&view, &fact_kinds(&state));
    let now = chrono::Utc::now();
    let anchor = Anchor::Identifier {
        value: customer.identifier.clone(),
    };
    let contribution = |kind, attribute: &str, value| NewContribution {
        party: customer.party.clone(),
        anchor: anchor.clone(),
        kind,
        attribute: attribute.to_string(),
        value,
        by: customer.actor(),
        created_at: now,
    };
    // Only what differs from the value in effect now is stored.
    let mut consents = Vec::new();
    for c in p.channels.iter().chain(&p.topics) {
        if let Some(&yes) = choices.consents.get(c.name)
            && c.current != Some(yes)
        {
            state
                .store()
                .add_contribution(&contribution(
                    ContributionKind::Consent,
                    c.name,
                    serde_json::Value::Bool(yes),
                ))
                .await?;
            consents.push(format!("{}: {}", c.name, if yes { "yes" } else { "no" }));
        }
    }
    let mut preferences = Vec::new();
    if let Some(f) = choices.frequency
        && p.frequency.as_ref().map(|(v, _)| v.as_str()) != Some(f)
    {
        state
            .store()
            .add_contribution(&contribution(
                ContributionKind::Preference,
                FREQUENCY,
                serde_json::Value::String(f.to_string()),
            ))
            .await?;
        preferences.push(format!("{FREQUENCY}: {f}"));
    }
    if !consents.is_empty() {
        audit(&state, &customer, "consent", consents.join(", ")).await?;
    }
    if !preferences.is_empty() {
        audit(&state, &customer, "preference", preferences.join(", ")).await?;
    }
    let done = if consents.is_empty() && preferences.is_empty() {
        "unchanged"
    } else {
        "choices"
    };
    Ok(Redirect::to(&format!("/me?done={done}#choices")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::Sourced;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn identify(v: &str) -> Option<String> {
        if v.contains('@') {
            Some(format!("email:{v}"))
        } else if v.chars().all(|c| c.is_ascii_digit() || c == ' ') {
            Some(format!("phone:{v}"))
        } else {
            None
        }
    }

    #[test]
    fn proposed_values_are_checked() {
        assert_eq!(valid_value("city", "  York ", identify), Ok("York".into()));
        assert!(valid_value("city", "   ", identify).is_err());
        assert!(valid_value("city", &"x".repeat(MAX_VALUE + 1), identify).is_err());
        assert!(valid_value("city", &"é".repeat(MAX_VALUE), identify).is_ok());
        assert!(valid_value("city", "York\u{7}", identify).is_err());
        assert!(valid_value("email", "not an address", identify).is_err());
        assert!(valid_value("email", "a@x.com", identify).is_ok());
        assert!(valid_value("mobile_phone", "a@x.com", identify).is_err());
        assert!(valid_value("phone", "07700 900123", identify).is_ok());
    }

    #[test]
    fn the_choices_form_is_read_strictly() {
        let c = parse_choices(&pairs(&[
            ("_csrf", "t"),
            ("consent:sms", "no"),
            ("consent:newsletter", "yes"),
            ("frequency", "monthly"),
        ]))
        .unwrap();
        assert_eq!(c.csrf, "t");
        assert_eq!(
            c.consents,
            BTreeMap::from([("newsletter", true), ("sms", false)])
        );
        assert_eq!(c.frequency, Some("monthly"));
        assert_eq!(
            parse_choices(&pairs(&[("frequency", "")]))
                .unwrap()
                .frequency,
            None
        );
        for bad in [
            &[("consent:fax", "yes")][..],
            &[("consent:sms", "maybe")],
            &[("consent:sms", "yes"), ("consent:sms", "no")],
            &[("frequency", "hourly")],
            &[("party", "p_123")],
        ] {
            assert!(parse_choices(&pairs(bad)).is_err(), "{bad:?}");
        }
    }

    fn row() -> ProfileRow {
        let v = |value: &str, record: Option<&str>| Sourced {
            value: value.into(),
            origin: String::new(),
            record: record.map(str::to_string),
        };
        ProfileRow {
            attribute: "city".into(),
            label: "Town or city".into(),
            best: v("Harrogate", Some("billing:37")),
            conflict: true,
            others: vec![v("Leeds", Some("shop:100040")), v("York", None)],
        }
    }

    #[test]
    fn a_correction_is_anchored_to_a_record_of_the_row_or_the_identifier() {
        let r = row();
        assert_eq!(
            anchor_for(&r, "", "email:a@x.com").unwrap(),
            Anchor::Record(RecordRef::new("billing", "37"))
        );
        assert_eq!(
            anchor_for(&r, " shop:100040 ", "email:a@x.com").unwrap(),
            Anchor::Record(RecordRef::new("shop", "100040"))
        );
        // Another party's record, or one of theirs not behind this value: refused.
        assert!(anchor_for(&r, "billing:38", "email:a@x.com").is_err());
        let mut from_contribution = r.clone();
        from_contribution.best.record = None;
        assert_eq!(
            anchor_for(&from_contribution, "", "email:a@x.com").unwrap(),
            Anchor::Identifier {
                value: "email:a@x.com".into()
            }
        );
    }
}
