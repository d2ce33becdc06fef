//! Why two records are, or are not, the same party: every comparison's level
//! and weight as a table, and the same numbers drawn as a waterfall.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use kith_model::{PartyId, RecordRef};
use kith_resolve::Explanation;
use kith_store::AuditEntry;
use kith_web::auth::session::Staff;
use kith_web::layout::Chrome;
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::waterfall::{self, Step, Waterfall, signed};
use crate::{Section, chrome};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExplainQuery {
    #[serde(default)]
    a: Option<String>,
    #[serde(default)]
    b: Option<String>,
}

struct Row {
    attribute: String,
    a: String,
    b: String,
    level: String,
    m: String,
    u: String,
    weight: String,
    tf: String,
    /// `for`, `against` or `missing`, for the row's badge.
    effect: &'static str,
}

struct Explained {
    rows: Vec<Row>,
    prior: String,
    total: String,
    probability: String,
    decision: &'static str,
    names_swapped: bool,
    never_link: Option<String>,
    trained: bool,
    wf: Waterfall,
    title: String,
    desc: String,
    parties: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "explain.html")]
struct ExplainPage {
    chrome: Chrome,
    a: String,
    b: String,
    error: Option<String>,
    explained: Option<Explained>,
}

fn value(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "—".into())
}

fn probability(p: f64) -> String {
    if p >= 0.9995 || p <= 0.0005 {
        format!("{p:.6}")
    } else {
        format!("{p:.3}")
    }
}

/// The waterfall in words, for people who cannot see the picture.
pub(crate) fn describe(e: &Explanation) -> String {
    let mut parts = vec![format!(
        "Starts at the prior weight {}.",
        signed(e.prior_weight)
    )];
    let mut running = e.prior_weight;
    for c in &e.comparisons {
        running += c.weight;
        match &c.level {
            None => parts.push(format!("{}: missing, no change.", c.attribute.name())),
            Some(level) => parts.push(format!(
                "{} {level}: {}, running total {}.",
                c.attribute.name(),
                signed(c.weight),
                signed(running)
            )),
        }
    }
    parts.push(format!(
        "Total {}: match probability {}.",
        signed(e.total_weight),
        probability(e.probability)
    ));
    parts.join(" ")
}

pub(crate) async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ExplainQuery>,
) -> PageResult<Response> {
    let a_text = q.a.unwrap_or_default().trim().to_string();
    let b_text = q.b.unwrap_or_default().trim().to_string();
    let mut page = ExplainPage {
        chrome: chrome(&state, &staff, "Match evidence", Section::None).await?,
        a: a_text.clone(),
        b: b_text.clone(),
        error: None,
        explained: None,
    };
    if a_text.is_empty() && b_text.is_empty() {
        return Ok(Html(page.render()?).into_response());
    }
    let parse = |s: &str, which: &str| {
        RecordRef::parse(s).ok_or_else(|| {
            format!(
                "Record {which} {s:?} is not a record reference: write source:key, e.g. billing:37."
            )
        })
    };
    let (a, b) = match (parse(&a_text, "A"), parse(&b_text, "B")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            page.error = Some(e);
            return Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response());
        }
    };
    let e = match state.hub.explain(&a, &b).await {
        Ok(e) => e,
        Err(kith_hub::Error::NotFound(m)) => {
            page.error = Some(format!("Cannot explain: {m}."));
            return Ok((StatusCode::NOT_FOUND, Html(page.render()?)).into_response());
        }
        Err(e) => return Err(PageError::from(e)),
    };

    // Explaining shows both records' identifying data: their parties' access
    // logs say so.
    let store = state.store();
    let mut party_rows = Vec::new();
    let mut parties: BTreeSet<PartyId> = BTreeSet::new();
    for r in [&a, &b] {
        let mut party = String::new();
        if let Some(link) = store.link(r).await?
            && let Some(p) = store.party(&link.party).await?
        {
            party = p.id.to_string();
            parties.insert(p.id);
        }
        party_rows.push((r.to_string(), party));
    }
    for p in &parties {
        store
            .audit(&AuditEntry {
                at: Utc::now(),
                actor: staff.actor(),
                action: "explain".into(),
                party: Some(p.clone()),
                detail: format!("{a} {b}"),
            })
            .await?;
    }

    let model = state.hub.model();
    let threshold = model.and_then(|m| waterfall::weight_of(m.threshold));
    let steps: Vec<Step> = e
        .comparisons
        .iter()
        .map(|c| Step {
            label: c.attribute.name().to_string(),
            level: c.level.clone(),
            weight: c.weight,
        })
        .collect();
    let rows = e
        .comparisons
        .iter()
        .map(|c| Row {
            attribute: c.attribute.name().to_string(),
            a: value(&c.values.0),
            b: value(&c.values.1),
            level: c.level.clone().unwrap_or_else(|| "missing".into()),
            m: c.m.map(|m| format!("{m:.4}")).unwrap_or_else(|| "—".into()),
            u: c.u.map(|u| format!("{u:.4}")).unwrap_or_else(|| "—".into()),
            weight: signed(c.weight),
            tf: if c.tf_adjustment == 0.0 {
                String::new()
            } else {
                signed(c.tf_adjustment)
            },
            effect: match (&c.level, c.weight) {
                (None, _) => "missing",
                (_, w) if w > 0.0 => "for",
                (_, w) if w < 0.0 => "against",
                _ => "missing",
            },
        })
        .collect();
    page.explained = Some(Explained {
        rows,
        prior: signed(e.prior_weight),
        total: signed(e.total_weight),
        probability: probability(e.probability),
        decision: if e.never_link.is_some() {
            "never linked: a never-link rule refuses this pair whatever its score"
        } else if e.decision.link {
            "linked: at or above the model's threshold"
        } else if e.decision.review {
            "uncertain: in the band that goes to clerical review"
        } else {
            "not linked: below the model's threshold"
        },
        names_swapped: e.names_swapped,
        never_link: e.never_link.clone(),
        trained: model.is_some(),
        wf: waterfall::layout(e.prior_weight, &steps, threshold),
        title: format!("Match weights of {a} and {b}"),
        desc: describe(&e),
        parties: party_rows,
    });
    Ok(Html(page.render()?).into_response())
}
