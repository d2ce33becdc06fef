//! A party's 360 page for staff. It opens with what the customer is in the
//! middle of, then the profile with its conflicts, the sources and how they
//! answered, the timeline across sources, facts by kind, the linked records
//! with their match evidence, relationships, what the customer asked or
//! said, and who looked at the record. Every view is written to the audit
//! log first, so the page's own access log shows it.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use kith_hub::{SourceStatus, View};
use kith_model::{Fact, IdentityAttrs, PartyId, RecordRef};
use kith_store::{AuditEntry, ReviewStatus};
use kith_web::auth::session::Staff;
use kith_web::layout::{Chrome, show, when};
use kith_web::{AppState, PageError, PageResult};
use serde::Deserialize;

use crate::home::{ContributionRow, ErasureRow};
use crate::situations::{self, Situation};
use crate::{Section, chrome, explain_href, when_opt};

/// How many entries of the party's access log the page shows.
const ACCESS_LOG: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TimelineFilter {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

struct ValueRow {
    value: String,
    source: String,
    key: String,
    fact_set: String,
    at: String,
    best: bool,
}

struct AttributeRow {
    attribute: String,
    kind: String,
    best: String,
    best_source: String,
    rule: String,
    conflict: bool,
    values: Vec<ValueRow>,
}

struct SourceRow {
    name: String,
    status: &'static str,
    badge: &'static str,
    reason: String,
    verified: bool,
    records: usize,
    facts: usize,
    elapsed: String,
    problems: Vec<String>,
}

struct FactRow {
    date: String,
    kind: String,
    attribute: String,
    summary: String,
    source: String,
    key: String,
    fact_set: String,
    updated: String,
}

struct KindGroup {
    kind: String,
    facts: Vec<FactRow>,
}

struct RecordRow {
    reference: String,
    verified: bool,
    rule: String,
    score: String,
    uncertain: bool,
    founding: bool,
    evidence: Vec<String>,
    attrs: Vec<(&'static str, String)>,
    updated: String,
    /// The explain page against the party's founding record (or first
    /// record, when the founding one has left): (href, that record).
    explain: Option<(String, String)>,
}

struct RelationshipRow {
    kind: &'static str,
    role: &'static str,
    party: String,
    name: String,
    evidence: String,
}

struct DisputeRow {
    a: String,
    b: String,
    status: &'static str,
    by: String,
    at: String,
    explain: String,
}

struct AccessRow {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "party.html")]
struct PartyPage {
    chrome: Chrome,
    id: String,
    name: String,
    kind: &'static str,
    relation: String,
    created: String,
    generated: String,
    rules: usize,
    situations: Vec<Situation>,
    profile: Vec<AttributeRow>,
    conflicts: usize,
    sources: Vec<SourceRow>,
    timeline: Timeline,
    groups: Vec<KindGroup>,
    records: Vec<RecordRow>,
    relationships: Vec<RelationshipRow>,
    contributions: Vec<ContributionRow>,
    erasures: Vec<ErasureRow>,
    disputes: Vec<DisputeRow>,
    access: Vec<AccessRow>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(filter): Query<TimelineFilter>,
) -> PageResult<Response> {
    let unknown = || PageError::not_found(format!("No party has id {id}."));
    let asked = PartyId::parse(&id).ok_or_else(unknown)?;
    let store = state.store();
    let party = store.party(&asked).await?.ok_or_else(unknown)?;
    if party.id != asked {
        // Merged into another party: its page is the survivor's.
        return Ok(Redirect::to(&format!("/staff/parties/{}", party.id)).into_response());
    }
    let view = state.hub.view(&party.id).await?;
    store
        .audit(&AuditEntry {
            at: Utc::now(),
            actor: staff.actor(),
            action: "view".into(),
            party: Some(view.party.clone()),
            detail: "staff console".into(),
        })
        .await?;

    let (_, linked) = store
        .party_records(&view.party)
        .await?
        .ok_or_else(unknown)?;
    let anchors = kith_store::party_anchors(linked.iter().map(|(_, s)| s));
    let mine: BTreeSet<&RecordRef> = linked.iter().map(|(l, _)| &l.record).collect();
    let contributions = store
        .contributions(&anchors)
        .await?
        .iter()
        .rev()
        .map(ContributionRow::from)
        .collect();
    let erasures = store
        .erasure_requests(Some(&view.party))
        .await?
        .iter()
        .map(ErasureRow::from)
        .collect();
    let disputes = store
        .review_pairs(None)
        .await?
        .into_iter()
        .filter(|p| {
            (mine.contains(&p.a) || mine.contains(&p.b))
                && (p.status == ReviewStatus::Disputed
                    || p.decided_by
                        .as_deref()
                        .is_some_and(|b| b.starts_with("customer:")))
        })
        .map(|p| DisputeRow {
            explain: explain_href(&p.a, &p.b),
            a: p.a.to_string(),
            b: p.b.to_string(),
            status: p.status.as_str(),
            by: p.decided_by.unwrap_or_default(),
            at: when_opt(p.decided_at),
        })
        .collect();
    let access = store
        .audit_log(Some(&view.party), ACCESS_LOG)
        .await?
        .into_iter()
        .map(|e| AccessRow {
            at: when(&e.at),
            actor: e.actor,
            action: e.action,
            detail: e.detail,
        })
        .collect();

    let founding = &party.founding_record;
    let anchor_record = if mine.contains(founding) {
        Some(founding.clone())
    } else {
        linked.first().map(|(l, _)| l.record.clone())
    };
    let records = linked
        .iter()
        .map(|(link, stored)| {
            let r = &link.record;
            let is_anchor = anchor_record.as_ref() == Some(r);
            RecordRow {
                reference: r.to_string(),
                verified: view
                    .records
                    .iter()
                    .any(|v| v.source == r.source && v.key == r.key && v.verified),
                rule: link.rule.clone(),
                score: if link.rule == "model" {
                    format!("{:.3}", link.score)
                } else {
                    String::new()
                },
                uncertain: state.hub.is_uncertain(link),
                founding: *r == party.founding_record,
                evidence: link.evidence.clone(),
                attrs: identity_lines(&stored.record.attrs),
                updated: when_opt(stored.record.updated_at),
                explain: match (&anchor_record, is_anchor) {
                    (Some(a), false) => Some((explain_href(a, r), a.to_string())),
                    _ => None,
                },
            }
        })
        .collect();

    let now = Utc::now();
    let situations = situations::evaluate(&state.settings.situations, &view.facts, now);
    let title = view.name.clone().unwrap_or_else(|| view.party.to_string());
    let page = PartyPage {
        chrome: chrome(&state, &staff, title.clone(), Section::None).await?,
        id: view.party.to_string(),
        name: title,
        kind: view.kind.as_str(),
        relation: view
            .relation
            .map(|r| r.as_str().replace('_', " "))
            .unwrap_or_else(|| "unknown".into()),
        created: when(&view.created_at),
        generated: when(&view.generated_at),
        rules: state.settings.situations.len(),
        situations,
        conflicts: view.profile.iter().filter(|a| a.conflict).count(),
        profile: profile(&view),
        sources: sources(&view),
        timeline: timeline(&view.facts, &filter),
        groups: groups(&view.facts),
        records,
        relationships: view
            .relationships
            .iter()
            .map(|r| RelationshipRow {
                kind: r.kind.as_str(),
                role: r.role,
                party: r.party.to_string(),
                name: r.name.clone().unwrap_or_else(|| r.party.to_string()),
                evidence: r.evidence.clone(),
            })
            .collect(),
        contributions,
        erasures,
        disputes,
        access,
    };
    Ok(Html(page.render()?).into_response())
}

fn status_badge(s: SourceStatus) -> &'static str {
    match s {
        SourceStatus::Ok => "ok",
        SourceStatus::Stale => "warn",
        SourceStatus::TimedOut | SourceStatus::Unreachable | SourceStatus::Error => "bad",
        SourceStatus::IdentityOnly | SourceStatus::NotLinked => "info",
    }
}

fn fact_at(f: &Fact) -> String {
    when_opt(f.provenance.updated_at.or(f.date))
}

fn profile(view: &View) -> Vec<AttributeRow> {
    view.profile
        .iter()
        .map(|a| AttributeRow {
            attribute: a.attribute.clone(),
            kind: a.kind.to_string(),
            best: show(&a.best),
            best_source: a.best_source.clone(),
            rule: a.rule.as_str().replace('_', " "),
            conflict: a.conflict,
            values: a
                .values
                .iter()
                .enumerate()
                .map(|(i, f)| ValueRow {
                    value: show(&f.value),
                    source: f.provenance.source.clone(),
                    key: f.provenance.key.clone(),
                    fact_set: f.provenance.fact_set.clone(),
                    at: fact_at(f),
                    best: i == 0,
                })
                .collect(),
        })
        .collect()
}

fn sources(view: &View) -> Vec<SourceRow> {
    view.sources
        .iter()
        .map(|s| SourceRow {
            name: s.name.clone(),
            status: match s.status {
                SourceStatus::Ok => "ok",
                SourceStatus::Stale => "stale",
                SourceStatus::TimedOut => "timed out",
                SourceStatus::Unreachable => "unreachable",
                SourceStatus::Error => "error",
                SourceStatus::IdentityOnly => "identity only",
                SourceStatus::NotLinked => "not linked",
            },
            badge: status_badge(s.status),
            reason: s.reason.clone().unwrap_or_default(),
            verified: s.verified,
            records: s.records,
            facts: s.facts,
            elapsed: if s.status == SourceStatus::NotLinked {
                "—".into()
            } else {
                format!("{} ms", s.elapsed_ms)
            },
            problems: s.problems.clone(),
        })
        .collect()
}

fn fact_row(f: &Fact) -> FactRow {
    FactRow {
        date: when_opt(f.date),
        kind: f.kind.to_string(),
        attribute: f.attribute.clone().unwrap_or_default(),
        summary: show(&f.value),
        source: f.provenance.source.clone(),
        key: f.provenance.key.clone(),
        fact_set: f.provenance.fact_set.clone(),
        updated: when_opt(f.provenance.updated_at),
    }
}

/// The unified timeline: every dated fact across sources, newest first,
/// narrowed by kind and source when asked, with the choices for the filter form.
struct Timeline {
    rows: Vec<FactRow>,
    /// How many dated facts there are before filtering.
    all: usize,
    /// (value, chosen) for the kind and source drop-downs.
    kinds: Vec<(String, bool)>,
    sources: Vec<(String, bool)>,
    filtered: bool,
}

fn timeline(facts: &[Fact], filter: &TimelineFilter) -> Timeline {
    let want = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (kind, source) = (want(&filter.kind), want(&filter.source));
    let mut dated: Vec<&Fact> = facts.iter().filter(|f| f.date.is_some()).collect();
    dated.sort_by(|a, b| {
        b.date
            .cmp(&a.date)
            .then_with(|| a.provenance.source.cmp(&b.provenance.source))
    });
    let options = |all: BTreeSet<&str>, chosen: &Option<String>| {
        all.into_iter()
            .map(|k| (k.to_string(), chosen.as_deref() == Some(k)))
            .collect::<Vec<_>>()
    };
    Timeline {
        rows: dated
            .iter()
            .filter(|f| kind.as_deref().is_none_or(|k| f.kind.as_str() == k))
            .filter(|f| source.as_deref().is_none_or(|s| f.provenance.source == s))
            .map(|f| fact_row(f))
            .collect(),
        all: dated.len(),
        kinds: options(dated.iter().map(|f| f.kind.as_str()).collect(), &kind),
        sources: options(
            dated.iter().map(|f| f.provenance.source.as_str()).collect(),
            &source,
        ),
        filtered: kind.is_some() || source.is_some(),
    }
}

/// Facts grouped by kind, in the view's order (well-known kinds first, newest first).
fn groups(facts: &[Fact]) -> Vec<KindGroup> {
    let mut out: Vec<KindGroup> = Vec::new();
    for f in facts {
        match out.last_mut() {
            Some(g) if g.kind == f.kind.as_str() => g.facts.push(fact_row(f)),
            _ => out.push(KindGroup {
                kind: f.kind.to_string(),
                facts: vec![fact_row(f)],
            }),
        }
    }
    out
}

/// A record's identifying attributes as (label, value) lines.
pub(crate) fn identity_lines(a: &IdentityAttrs) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(n) = a.display_name() {
        out.push(("Name", n));
    }
    if let Some(o) = &a.org_name {
        out.push(("Organisation", o.clone()));
    }
    if !a.emails.is_empty() {
        out.push(("E-mail", a.emails.join(", ")));
    }
    if !a.phones.is_empty() {
        out.push(("Phone", a.phones.join(", ")));
    }
    let address: Vec<&str> = [&a.street, &a.city, &a.postcode, &a.country]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
    if !address.is_empty() {
        out.push(("Address", address.join(", ")));
    }
    if let Some(d) = &a.date_of_birth {
        out.push(("Born", d.clone()));
    }
    for (k, v) in &a.external_ids {
        out.push(("Id", format!("{k}: {v}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use kith_model::{Cardinality, FactKind, Provenance};
    use serde_json::json;

    use super::*;

    fn fact(kind: &str, source: &str, date: Option<&str>) -> Fact {
        Fact {
            kind: FactKind::parse(kind).unwrap(),
            cardinality: Cardinality::Many,
            attribute: None,
            value: json!({ "what": format!("{kind} from {source}") }),
            date: date.map(|d| d.parse().unwrap()),
            provenance: Provenance {
                source: source.into(),
                key: "1".into(),
                fact_set: "x".into(),
                updated_at: None,
                fetched_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            },
        }
    }

    fn filter(kind: &str, source: &str) -> TimelineFilter {
        let some = |s: &str| Some(s.to_string());
        TimelineFilter {
            kind: some(kind),
            source: some(source),
        }
    }

    #[test]
    fn the_timeline_is_every_dated_fact_newest_first_and_filters() {
        let facts = vec![
            fact("transaction", "shop", Some("2026-10-27T18:00:00Z")),
            fact("case", "support", Some("2026-10-30T11:00:00Z")),
            fact("profile", "billing", None),
            fact("transaction", "billing", Some("2026-10-31T00:00:00Z")),
        ];
        let all = timeline(&facts, &filter("", " "));
        assert!(!all.filtered);
        assert_eq!(all.all, 3, "undated facts are not on the timeline");
        let order: Vec<&str> = all.rows.iter().map(|r| r.summary.as_str()).collect();
        assert_eq!(
            order,
            [
                "what: transaction from billing",
                "what: case from support",
                "what: transaction from shop"
            ]
        );
        assert_eq!(
            all.kinds,
            vec![
                ("case".to_string(), false),
                ("transaction".to_string(), false)
            ]
        );

        let t = timeline(&facts, &filter("transaction", ""));
        assert!(t.filtered);
        assert_eq!((t.rows.len(), t.all), (2, 3));
        assert!(t.kinds.contains(&("transaction".to_string(), true)));
        let t = timeline(&facts, &filter("transaction", "shop"));
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0].source, "shop");
        assert!(timeline(&facts, &filter("offer", "")).rows.is_empty());
    }

    #[test]
    fn facts_group_by_kind_in_view_order() {
        let facts = vec![
            fact("transaction", "shop", Some("2026-10-27T18:00:00Z")),
            fact("transaction", "billing", None),
            fact("case", "support", Some("2026-10-30T11:00:00Z")),
        ];
        let g = groups(&facts);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].kind.as_str(), g[0].facts.len()), ("transaction", 2));
        assert_eq!((g[1].kind.as_str(), g[1].facts.len()), ("case", 1));
    }
}
