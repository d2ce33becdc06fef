//! The 360 view: one party's facts gathered now from every linked source.
//!
//! Each source with linked records gets one batched lookup, all sources
//! concurrently, each under its own timeout. A source that fails is shown
//! with its status and reason; it never fails the view and is never silently
//! missing. Single-valued facts that disagree across sources are shown side
//! by side, with a best value chosen by the configured survivorship rule;
//! what customers contributed takes part as a source of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::join_all;
use kith_connect::{CONTRIBUTIONS_SOURCE, Connector, LookupCapability, LookupRequest};
use kith_model::{
    Anchor, Cardinality, Contribution, ContributionKind, Fact, FactKind, IdentityAttrs, Link,
    PartyId, PartyKind, Provenance, Relation, RelationKind, Relationship, Timestamp, normalize,
};
use kith_store::{StoredRecord, party_anchors};
use serde::Serialize;

use crate::{Hub, Result, Survivorship};

/// How a source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Ok,
    /// Served from the connector's cache, not read now (`reason` says how old).
    Stale,
    TimedOut,
    Unreachable,
    Error,
    /// The source holds identity only (no fact sets, or it cannot be looked up).
    IdentityOnly,
    /// None of the party's records are in this source.
    NotLinked,
}

impl SourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Ok => "ok",
            SourceStatus::Stale => "stale",
            SourceStatus::TimedOut => "timed_out",
            SourceStatus::Unreachable => "unreachable",
            SourceStatus::Error => "error",
            SourceStatus::IdentityOnly => "identity_only",
            SourceStatus::NotLinked => "not_linked",
        }
    }
}

/// One source's part in a view.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub name: String,
    pub status: SourceStatus,
    /// Why, when the status is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub verified: bool,
    pub records: usize,
    pub facts: usize,
    pub elapsed_ms: u64,
    /// Rows the source holds for this party that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A linked source record and why it is linked.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub source: String,
    pub key: String,
    pub verified: bool,
    pub rule: String,
    pub evidence: Vec<String>,
    pub attrs: IdentityAttrs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// One single-valued attribute across sources.
#[derive(Debug, Clone, Serialize)]
pub struct AttributeView {
    pub attribute: String,
    pub kind: FactKind,
    /// The value chosen by the survivorship rule.
    pub best: serde_json::Value,
    pub best_source: String,
    pub rule: Survivorship,
    /// Whether sources disagree (after normalisation).
    pub conflict: bool,
    /// Every source's value, best first.
    pub values: Vec<Fact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelationshipView {
    pub kind: RelationKind,
    /// This party's side of it: `member` (household), `employee` or `employer`.
    pub role: &'static str,
    /// The other party.
    pub party: PartyId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub evidence: String,
}

/// A party's 360 view.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub party: PartyId,
    pub kind: PartyKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The party's relation to the business, from what its records say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    pub created_at: Timestamp,
    pub generated_at: Timestamp,
    pub sources: Vec<SourceView>,
    pub records: Vec<RecordView>,
    /// Single-valued attributes merged across sources.
    pub profile: Vec<AttributeView>,
    /// Every fact, single- and many-valued: by kind, then newest first.
    pub facts: Vec<Fact>,
    pub relationships: Vec<RelationshipView>,
}

/// What a view asks the sources for. The default asks everything.
#[derive(Debug, Clone, Default)]
pub struct ViewScope {
    /// Only fact sets of these kinds (all when empty).
    pub kinds: Vec<String>,
    /// Only these sources (all when empty).
    pub sources: Vec<String>,
    /// Each source returns at most this many facts, newest first.
    pub limit: Option<usize>,
}

/// Which of a party's dated facts a timeline shows.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    /// Only these kinds (all when empty).
    pub kinds: Vec<String>,
    /// Only from these sources (all when empty).
    pub sources: Vec<String>,
    /// Only facts dated strictly before this (the next page starts at the last one shown).
    pub before: Option<Timestamp>,
    /// At most this many (0: no limit).
    pub limit: usize,
}

impl View {
    /// The unified timeline: every dated fact from every source (ingested
    /// events included), newest first, filtered and paged.
    pub fn timeline(&self, filter: &TimelineFilter) -> Vec<&Fact> {
        let mut dated: Vec<&Fact> = self
            .facts
            .iter()
            .filter(|f| f.date.is_some())
            .filter(|f| {
                filter.kinds.is_empty() || filter.kinds.iter().any(|k| k == f.kind.as_str())
            })
            .filter(|f| filter.sources.is_empty() || filter.sources.contains(&f.provenance.source))
            .filter(|f| filter.before.is_none_or(|b| f.date.is_some_and(|d| d < b)))
            .collect();
        dated.sort_by(|a, b| {
            b.date
                .cmp(&a.date)
                .then_with(|| a.provenance.source.cmp(&b.provenance.source))
        });
        if filter.limit > 0 {
            dated.truncate(filter.limit);
        }
        dated
    }

    /// Facts of a kind, newest first.
    pub fn facts_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Fact> {
        self.facts.iter().filter(move |f| f.kind.as_str() == kind)
    }
}

struct SourceAnswer {
    view: SourceView,
    facts: Vec<Fact>,
}

impl Hub {
    /// Gathers the 360 view of a party (any id that redirects to it works), as staff see it.
    pub async fn view(&self, party: &PartyId) -> Result<View> {
        self.view_as(party, crate::Audience::Staff).await
    }

    /// Gathers the 360 view for an audience: a customer's own view leaves out
    /// records linked only in the model's uncertain band, so a doubtful match
    /// never shows one person another's data.
    pub async fn view_as(&self, party: &PartyId, audience: crate::Audience) -> Result<View> {
        self.view_scoped(party, audience, &ViewScope::default())
            .await
    }

    /// A view of only what `scope` asks for, with its filters and limit
    /// pushed down to the sources (a timeline's first page asks each source
    /// for its newest few facts of the wanted kinds, not for everything).
    pub async fn view_scoped(
        &self,
        party: &PartyId,
        audience: crate::Audience,
        scope: &ViewScope,
    ) -> Result<View> {
        let snapshot = self
            .store
            .party_snapshot(party)
            .await?
            .ok_or_else(|| crate::Error::NotFound(format!("no party has id {party}")))?;
        let party = &snapshot.party;
        let mut records: Vec<&(Link, StoredRecord)> = snapshot.records.iter().collect();
        let mut contributions: Vec<&Contribution> = snapshot.contributions.iter().collect();
        if audience == crate::Audience::Customer {
            records.retain(|(link, _)| !self.is_uncertain(link));
            if records.len() < snapshot.records.len() {
                // Only what hangs on the records the customer is shown.
                let anchors = party_anchors(records.iter().map(|(_, s)| s));
                contributions.retain(|c| anchors.contains(&c.anchor));
            }
        }

        let mut by_source: BTreeMap<&str, Vec<kith_model::IdentityRecord>> = BTreeMap::new();
        for (_, s) in &records {
            by_source
                .entry(s.record.record.source.as_str())
                .or_default()
                .push(s.record.clone());
        }
        let fan_out = join_all(self.connectors.iter().map(|c| {
            let recs = by_source
                .remove(c.source().name.as_str())
                .unwrap_or_default();
            self.ask(c.as_ref(), recs, scope)
        }));
        // The relationships' names are read while the sources are asked, not after.
        let (answers, relationships) = tokio::join!(
            fan_out,
            self.relationship_views(&snapshot.relationships, &party.id)
        );
        let relationships = relationships?;

        let mut sources = Vec::new();
        let mut facts: Vec<Fact> = Vec::new();
        for a in answers {
            sources.push(a.view);
            facts.extend(a.facts);
        }

        let fetched_at = Utc::now();
        let contributed = contributions.len();
        for c in contributions {
            let kind = match c.kind {
                ContributionKind::Correction => FactKind::PROFILE,
                ContributionKind::Preference => FactKind::PREFERENCE,
                ContributionKind::Consent => FactKind::CONSENT,
                ContributionKind::Feedback => FactKind::FEEDBACK,
            };
            let key = match &c.anchor {
                Anchor::Record(r) => r.to_string(),
                Anchor::Identifier { value } => value.clone(),
            };
            let single = c.kind != ContributionKind::Feedback;
            facts.push(Fact {
                kind: FactKind::parse(kind).expect("well-known kind"),
                cardinality: if single {
                    Cardinality::One
                } else {
                    Cardinality::Many
                },
                attribute: single.then(|| c.attribute.clone()),
                value: if single {
                    c.value.clone()
                } else {
                    serde_json::json!({ "topic": c.attribute, "text": c.value })
                },
                date: Some(c.created_at),
                provenance: Provenance {
                    source: CONTRIBUTIONS_SOURCE.to_string(),
                    key,
                    fact_set: format!("{}:{}", c.kind.as_str(), c.by),
                    updated_at: Some(c.created_at),
                    fetched_at,
                },
            });
        }
        if contributed > 0 {
            sources.push(SourceView {
                name: CONTRIBUTIONS_SOURCE.to_string(),
                status: SourceStatus::Ok,
                reason: None,
                verified: false,
                records: 0,
                facts: contributed,
                elapsed_ms: 0,
                problems: Vec::new(),
            });
        }

        facts.sort_by(|a, b| {
            a.kind
                .rank()
                .cmp(&b.kind.rank())
                .then_with(|| a.kind.cmp(&b.kind))
                .then(b.date.cmp(&a.date))
                .then_with(|| a.provenance.source.cmp(&b.provenance.source))
        });
        let profile = self.merge_single_valued(&facts);

        let relation = records.iter().filter_map(|(_, s)| s.record.relation).max();
        let name = best_name(&profile).or_else(|| {
            records
                .iter()
                .find_map(|(_, s)| s.record.attrs.display_name())
        });
        let record_views = records
            .iter()
            .map(|(link, s)| RecordView {
                source: s.record.record.source.clone(),
                key: s.record.record.key.clone(),
                verified: self
                    .connector(&s.record.record.source)
                    .is_some_and(|c| c.source().verified),
                rule: link.rule.clone(),
                evidence: link.evidence.clone(),
                attrs: s.record.attrs.clone(),
                relation: s.record.relation,
                updated_at: s.record.updated_at,
            })
            .collect();
        Ok(View {
            party: party.id.clone(),
            kind: party.kind,
            name,
            relation,
            created_at: party.created_at,
            generated_at: Utc::now(),
            sources,
            records: record_views,
            profile,
            facts,
            relationships,
        })
    }

    /// The party's relationships, with the other party's name.
    async fn relationship_views(
        &self,
        relationships: &[Relationship],
        party: &PartyId,
    ) -> Result<Vec<RelationshipView>> {
        let mut out = Vec::new();
        for r in relationships.iter().cloned() {
            let outgoing = &r.from == party;
            let role = match (r.kind, outgoing) {
                (RelationKind::Household, _) => "member",
                (RelationKind::EmployeeOf, true) => "employee",
                (RelationKind::EmployeeOf, false) => "employer",
            };
            let other = if outgoing { r.to } else { r.from };
            let name = self.party_name(&other).await?;
            out.push(RelationshipView {
                kind: r.kind,
                role,
                party: other,
                name,
                evidence: r.evidence,
            });
        }
        Ok(out)
    }

    /// A display name for a party, from its records in the index.
    async fn party_name(&self, id: &PartyId) -> Result<Option<String>> {
        for link in self.store.links_of(id).await? {
            if let Some(r) = self.store.record(&link.record).await?
                && let Some(n) = r.record.attrs.display_name()
            {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    async fn ask(
        &self,
        connector: &dyn Connector,
        records: Vec<kith_model::IdentityRecord>,
        scope: &ViewScope,
    ) -> SourceAnswer {
        let source = connector.source();
        let mut view = SourceView {
            name: source.name.clone(),
            status: SourceStatus::Ok,
            reason: None,
            verified: source.verified,
            records: records.len(),
            facts: 0,
            elapsed_ms: 0,
            problems: Vec::new(),
        };
        if records.is_empty() {
            view.status = SourceStatus::NotLinked;
            return SourceAnswer {
                view,
                facts: Vec::new(),
            };
        }
        if source.facts.is_empty() || connector.capabilities().lookup == LookupCapability::None {
            view.status = SourceStatus::IdentityOnly;
            return SourceAnswer {
                view,
                facts: Vec::new(),
            };
        }
        let timeout: Duration = source.timeout.unwrap_or(self.settings.view_timeout);
        let wanted = !scope.sources.is_empty() && !scope.sources.contains(&source.name);
        let fact_sets: Vec<String> = source
            .facts
            .iter()
            .filter(|(_, set)| scope.kinds.is_empty() || scope.kinds.contains(&set.kind))
            .map(|(name, _)| name.clone())
            .collect();
        if wanted || (!scope.kinds.is_empty() && fact_sets.is_empty()) {
            // Out of scope: not asked at all, and said so.
            view.reason = Some("not asked: outside the requested kinds or sources".into());
            return SourceAnswer {
                view,
                facts: Vec::new(),
            };
        }
        let request = LookupRequest {
            records,
            fact_sets: if scope.kinds.is_empty() {
                Vec::new()
            } else {
                fact_sets
            },
            since: None,
            limit: scope.limit,
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, connector.lookup(&request)).await;
        view.elapsed_ms = started.elapsed().as_millis() as u64;
        let facts = match outcome {
            Err(_) => {
                view.status = SourceStatus::TimedOut;
                view.reason = Some(format!(
                    "no answer within {}",
                    kith_connect::duration::format(timeout)
                ));
                Vec::new()
            }
            Ok(Err(e)) => {
                view.status = if e.is_unreachable() {
                    SourceStatus::Unreachable
                } else if e.is_timeout() {
                    SourceStatus::TimedOut
                } else {
                    SourceStatus::Error
                };
                view.reason = Some(e.to_string());
                Vec::new()
            }
            Ok(Ok(found)) => {
                view.problems = found.problems;
                if let Some(age) = found.stale_for {
                    view.status = SourceStatus::Stale;
                    view.reason = Some(format!(
                        "served from cache, {} old",
                        kith_connect::duration::format(Duration::from_secs(age.as_secs()))
                    ));
                }
                found.facts
            }
        };
        view.facts = facts.len();
        SourceAnswer { view, facts }
    }

    fn priority(&self, source: &str) -> i32 {
        if source == CONTRIBUTIONS_SOURCE {
            return self.settings.contribution_priority;
        }
        self.connector(source).map_or(0, |c| c.source().priority)
    }

    /// Groups single-valued facts by attribute and picks each one's best value.
    fn merge_single_valued(&self, facts: &[Fact]) -> Vec<AttributeView> {
        let mut groups: BTreeMap<(usize, String, String), Vec<Fact>> = BTreeMap::new();
        for f in facts.iter().filter(|f| f.cardinality == Cardinality::One) {
            let Some(attr) = &f.attribute else { continue };
            groups
                .entry((f.kind.rank(), f.kind.as_str().to_string(), attr.clone()))
                .or_default()
                .push(f.clone());
        }
        let rule = self.settings.survivorship;
        groups
            .into_iter()
            .map(|((_, _, attribute), mut values)| {
                let canon = |f: &Fact| comparable(&attribute, &f.value, self.calling_code);
                // How many sources agree with this value (a source repeating
                // itself through several records counts once).
                let freq = |f: &Fact| {
                    let c = canon(f);
                    values
                        .iter()
                        .filter(|o| canon(o) == c)
                        .map(|o| o.provenance.source.as_str())
                        .collect::<std::collections::BTreeSet<_>>()
                        .len()
                };
                let recency = |f: &Fact| f.provenance.updated_at.or(f.date);
                let mut scored: Vec<(Fact, (i64, i64, i32))> = values
                    .iter()
                    .map(|f| {
                        let t = recency(f).map_or(i64::MIN, |t| t.timestamp_millis());
                        let p = self.priority(&f.provenance.source);
                        let n = freq(f) as i64;
                        let key = match rule {
                            Survivorship::MostRecent => (t, p as i64, 0),
                            Survivorship::SourcePriority => (p as i64, t, 0),
                            Survivorship::MostFrequent => (n, t, p),
                        };
                        (f.clone(), key)
                    })
                    .collect();
                scored.sort_by(|a, b| {
                    b.1.cmp(&a.1)
                        .then(a.0.provenance.source.cmp(&b.0.provenance.source))
                });
                values = scored.into_iter().map(|(f, _)| f).collect();
                let first = canon(&values[0]);
                let conflict = values.iter().any(|f| canon(f) != first);
                AttributeView {
                    kind: values[0].kind.clone(),
                    best: values[0].value.clone(),
                    best_source: values[0].provenance.source.clone(),
                    rule,
                    conflict,
                    attribute,
                    values,
                }
            })
            .collect()
    }
}

/// A value as compared for conflicts: "07700 900123" and "+44 7700 900123" agree.
fn comparable(attribute: &str, v: &serde_json::Value, calling_code: &str) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let a = attribute.to_ascii_lowercase();
    if a.contains("email")
        && let Some(e) = normalize::email(&s)
    {
        return e;
    }
    if (a.contains("phone") || a.contains("mobile"))
        && let Some(p) = normalize::phone(&s, calling_code)
    {
        return p;
    }
    if a.contains("postcode") || a.contains("zip") {
        return normalize::postcode(&s);
    }
    normalize::text(&s)
}

fn best_name(profile: &[AttributeView]) -> Option<String> {
    let get = |n: &str| {
        profile
            .iter()
            .find(|a| a.attribute == n)
            .and_then(|a| a.best.as_str().map(str::to_string))
    };
    get("name").or_else(|| match (get("given_name"), get("family_name")) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conflicts_compare_normalised_values() {
        assert_eq!(
            comparable("phone", &json!("07700 900123"), "44"),
            comparable("mobile_phone", &json!("+44 7700 900123"), "44")
        );
        assert_eq!(
            comparable("email", &json!("Ann@X.com"), "44"),
            comparable("email", &json!("ann@x.com"), "44")
        );
        assert_ne!(
            comparable("street", &json!("1 High St"), "44"),
            comparable("street", &json!("2 Low Rd"), "44")
        );
        assert_eq!(comparable("postcode", &json!("ls6 2ab"), "44"), "LS62AB");
    }
}
