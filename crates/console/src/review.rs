//! The clerical review queue: pairs of records the match model was unsure of,
//! and links customers disputed ("this isn't me"). Staff see both records
//! side by side, open the explanation, and decide; the decision is stored,
//! audited, and the index is re-linked at once.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::response::{Html, Redirect};
use chrono::Utc;
use kith_model::{IdentityAttrs, RecordRef, normalize};
use kith_store::{AuditEntry, ReviewPair, ReviewStatus};
use kith_web::auth::csrf;
use kith_web::auth::session::Staff;
use kith_web::layout::Chrome;
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::sign_in::NoticeQuery;
use crate::{Console, Section, chrome, explain_href, when_opt};

/// How many pairs of each kind the page shows (the rest wait their turn).
const SHOWN: usize = 100;

struct PairRow {
    a: String,
    b: String,
    probability: String,
    /// Who disputed (or queued) it and when.
    by: String,
    at: String,
    explain: String,
    lines: Vec<Line>,
    /// Whether both records are in one party now.
    together: bool,
    a_party: String,
    b_party: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    chrome: Chrome,
    disputed: Vec<PairRow>,
    pending: Vec<PairRow>,
    disputed_total: usize,
    pending_total: usize,
}

/// How two records' values of one attribute compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agreement {
    /// Equal once normalised (`07700 900123` and `+44 7700 900123`).
    Same,
    /// Both present and different.
    Differs,
    /// Only one record has a value.
    OneSide,
}

impl Agreement {
    /// The badge's class and text.
    pub(crate) fn badge(self) -> (&'static str, &'static str) {
        match self {
            Agreement::Same => ("ok", "same"),
            Agreement::Differs => ("warn", "differs"),
            Agreement::OneSide => ("info", "one side"),
        }
    }
}

/// One attribute of two records: label, a's value, b's value, how they compare.
pub(crate) struct Line {
    pub label: &'static str,
    pub a: String,
    pub b: String,
    pub agreement: Agreement,
}

/// An attribute's values, as shown and as compared.
type Values = (Vec<String>, Vec<String>);
/// Reads one attribute's values from a record.
type Getter<'a> = Box<dyn Fn(&IdentityAttrs) -> Values + 'a>;

/// The identifying attributes of two records, row by row, leaving out rows
/// both lack. Values are compared after normalisation, and lists (e-mails,
/// phones) agree when they share a value.
pub(crate) fn side_by_side(
    a: Option<&IdentityAttrs>,
    b: Option<&IdentityAttrs>,
    calling_code: &str,
) -> Vec<Line> {
    let one = |v: &Option<String>, norm: &dyn Fn(&str) -> String| -> Values {
        v.iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| (s.clone(), norm(s)))
            .unzip()
    };
    let text = |s: &str| normalize::text(s);
    // "Ellison, Margaret" and "Margaret Ellison" are the same name.
    let name = |s: &str| {
        let mut words: Vec<String> = normalize::text(s)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        words.sort();
        words.join(" ")
    };
    let fields: Vec<(&'static str, Getter<'_>)> = vec![
        ("Name", Box::new(move |x| one(&x.display_name(), &name))),
        ("Organisation", Box::new(move |x| one(&x.org_name, &text))),
        (
            "E-mail",
            Box::new(|x| {
                x.emails
                    .iter()
                    .map(|e| (e.clone(), normalize::email(e).unwrap_or_else(|| e.clone())))
                    .unzip()
            }),
        ),
        (
            "Phone",
            Box::new(move |x| {
                x.phones
                    .iter()
                    .map(|p| {
                        let n = normalize::phone(p, calling_code).unwrap_or_else(|| p.clone());
                        (p.clone(), n)
                    })
                    .unzip()
            }),
        ),
        ("Street", Box::new(move |x| one(&x.street, &text))),
        ("City", Box::new(move |x| one(&x.city, &text))),
        (
            "Postcode",
            Box::new(move |x| one(&x.postcode, &|s| normalize::postcode(s))),
        ),
        ("Born", Box::new(move |x| one(&x.date_of_birth, &text))),
        (
            "Ids",
            Box::new(|x| {
                x.external_ids
                    .iter()
                    .map(|(k, v)| (format!("{k}: {v}"), format!("{k}:{}", v.trim())))
                    .unzip()
            }),
        ),
    ];
    let mut out = Vec::new();
    for (label, get) in &fields {
        let (shown_a, norm_a) = a.map(get).unwrap_or_default();
        let (shown_b, norm_b) = b.map(get).unwrap_or_default();
        if shown_a.is_empty() && shown_b.is_empty() {
            continue;
        }
        let agreement = if shown_a.is_empty() || shown_b.is_empty() {
            Agreement::OneSide
        } else if norm_a.iter().any(|v| norm_b.contains(v)) {
            Agreement::Same
        } else {
            Agreement::Differs
        };
        let show = |v: Vec<String>| {
            if v.is_empty() {
                "\u{2014}".to_string()
            } else {
                v.join(", ")
            }
        };
        out.push(Line {
            label,
            a: show(shown_a),
            b: show(shown_b),
            agreement,
        });
    }
    out
}

async fn row(state: &AppState, p: &ReviewPair) -> PageResult<PairRow> {
    let store = state.store();
    let ra = store.record(&p.a).await?;
    let rb = store.record(&p.b).await?;
    let party = |r: &Option<kith_store::StoredRecord>| match r {
        None => "no longer in the index".to_string(),
        Some(r) => r
            .party
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "not linked".into()),
    };
    Ok(PairRow {
        a: p.a.to_string(),
        b: p.b.to_string(),
        probability: p
            .probability
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "—".into()),
        by: p.decided_by.clone().unwrap_or_default(),
        at: when_opt(p.decided_at.or(Some(p.queued_at))),
        explain: explain_href(&p.a, &p.b),
        lines: side_by_side(
            ra.as_ref().map(|r| &r.record.attrs),
            rb.as_ref().map(|r| &r.record.attrs),
            normalize::calling_code(&state.hub.settings().default_region).unwrap_or(""),
        ),
        together: matches!((&ra, &rb), (Some(x), Some(y)) if x.party.is_some() && x.party == y.party),
        a_party: party(&ra),
        b_party: party(&rb),
    })
}

pub(crate) async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<NoticeQuery>,
) -> PageResult<Html<String>> {
    let store = state.store();
    let disputed_all = store.review_pairs(Some(ReviewStatus::Disputed)).await?;
    let pending_all = store.review_pairs(Some(ReviewStatus::Pending)).await?;
    let mut disputed = Vec::new();
    for p in disputed_all.iter().take(SHOWN) {
        disputed.push(row(&state, p).await?);
    }
    let mut pending = Vec::new();
    for p in pending_all.iter().take(SHOWN) {
        pending.push(row(&state, p).await?);
    }
    let mut chrome = chrome(&state, &staff, "Review queue", Section::Review).await?;
    chrome.notice = crate::notice(q.notice.as_deref());
    let page = ReviewPage {
        chrome,
        disputed,
        pending,
        disputed_total: disputed_all.len(),
        pending_total: pending_all.len(),
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
    #[serde(default)]
    decision: String,
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    staff: Staff,
    Form(f): Form<DecideForm>,
) -> PageResult<Redirect> {
    csrf::check(&staff.csrf, &f._csrf)?;
    let status = match f.decision.as_str() {
        "accept" => ReviewStatus::Accepted,
        "reject" => ReviewStatus::Rejected,
        other => {
            return Err(PageError::bad_request(format!(
                "The decision {other:?} is not one kith knows: choose accept or reject."
            )));
        }
    };
    let parse = |s: &str| {
        RecordRef::parse(s.trim()).ok_or_else(|| {
            PageError::bad_request(format!("{s:?} is not a record reference (source:key)."))
        })
    };
    let (a, b) = (parse(&f.a)?, parse(&f.b)?);
    if a == b {
        return Err(PageError::bad_request(
            "A record cannot be reviewed against itself.",
        ));
    }
    let store = state.store();
    let mut party = None;
    for r in [&a, &b] {
        let Some(stored) = store.record(r).await? else {
            return Err(PageError::not_found(format!(
                "There is no record {r} in the identity index."
            )));
        };
        party = party.or(stored.party);
    }
    let now = Utc::now();
    let actor = staff.actor();
    state.hub.decide_review(&a, &b, status, &actor).await?;
    store
        .audit(&AuditEntry {
            at: now,
            actor,
            action: format!("review {}", status.as_str()),
            party,
            detail: format!("{a} {b}"),
        })
        .await?;
    // The decision takes effect now, not at the next sync.
    {
        let _one_at_a_time = console.relink.lock().await;
        let report = state.hub.link(&()).await?;
        tracing::info!(
            "review {}: re-linked {} parties, {} links changed",
            status.as_str(),
            report.parties,
            report.links_changed
        );
    }
    Ok(Redirect::to(&format!(
        "/staff/review?notice={}",
        status.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_compared_normalised_and_missing_ones_say_so() {
        let a = IdentityAttrs {
            given_name: Some("Sanjay".into()),
            family_name: Some("Harrison".into()),
            emails: vec!["sanjay.harrison@example.net".into()],
            phones: vec!["+44 7700 929593".into()],
            postcode: Some("la1 4wt".into()),
            ..Default::default()
        };
        let b = IdentityAttrs {
            full_name: Some("HARRISON Sanjay".into()),
            emails: vec![
                "old@example.com".into(),
                "Sanjay.Harrison@Example.net".into(),
            ],
            phones: vec!["0044 7700 929594".into()],
            postcode: Some("LA1 4WT".into()),
            street: Some("45 Robin Crescent".into()),
            ..Default::default()
        };
        let lines = side_by_side(Some(&a), Some(&b), "44");
        let by = |l: &str| lines.iter().find(|x| x.label == l).unwrap();
        assert_eq!(
            by("E-mail").agreement,
            Agreement::Same,
            "they share one address"
        );
        assert_eq!(by("Phone").agreement, Agreement::Differs);
        assert_eq!(by("Postcode").agreement, Agreement::Same);
        assert_eq!(
            by("Name").agreement,
            Agreement::Same,
            "word order does not count"
        );
        assert_eq!(by("Street").agreement, Agreement::OneSide);
        assert_eq!(by("Street").a, "\u{2014}");
        assert!(
            lines.iter().all(|l| l.label != "City"),
            "rows both lack are left out"
        );
        let same_phone = IdentityAttrs {
            phones: vec!["07700 929593".into()],
            ..Default::default()
        };
        let lines = side_by_side(Some(&a), Some(&same_phone), "44");
        assert_eq!(
            lines.iter().find(|x| x.label == "Phone").unwrap().agreement,
            Agreement::Same
        );
        // A record gone from the index shows as one side only.
        let lines = side_by_side(Some(&a), None, "44");
        assert!(lines.iter().all(|l| l.agreement == Agreement::OneSide));
    }
}
