//! What the API answers and accepts: the contract, described in the OpenAPI
//! document by the same types that are serialised.
//!
//! The view's types mirror the hub's (`kith_hub::View` and its parts) field
//! for field, so the API's JSON is the CLI's `kith view --json`; conversions
//! destructure the hub's types whole, so a field added there fails to
//! compile here until the API says what to do with it, and a test checks
//! the two serialise alike. Times are written `DateTime<Utc>` (not the
//! model's `Timestamp` alias) because the OpenAPI derive recognises them by name.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kith_model::{
    Anchor, Cardinality, Contribution, ContributionKind, Fact, IdentityAttrs, Party, PartyKind,
    Provenance, RecordRef, Relation, RelationKind,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// --- parties ----------------------------------------------------------------

/// Person or organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PartyKind)]
pub enum PartyKindDto {
    Person,
    Organisation,
}

impl From<PartyKind> for PartyKindDto {
    fn from(k: PartyKind) -> Self {
        match k {
            PartyKind::Person => PartyKindDto::Person,
            PartyKind::Organisation => PartyKindDto::Organisation,
        }
    }
}

/// A party's relation to the business, from what its records say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Relation)]
pub enum RelationDto {
    Prospect,
    FormerCustomer,
    Customer,
}

impl From<Relation> for RelationDto {
    fn from(r: Relation) -> Self {
        match r {
            Relation::Prospect => RelationDto::Prospect,
            Relation::FormerCustomer => RelationDto::FormerCustomer,
            Relation::Customer => RelationDto::Customer,
        }
    }
}

/// A party: its stable id, kind and when kith first saw it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartySummary {
    #[schema(example = "p_01hzx5y7k2m3n4p5q6r7s8t9va")]
    pub id: String,
    pub kind: PartyKindDto,
    pub created_at: DateTime<Utc>,
}

impl From<&Party> for PartySummary {
    fn from(p: &Party) -> Self {
        PartySummary {
            id: p.id.to_string(),
            kind: p.kind.into(),
            created_at: p.created_at,
        }
    }
}

/// One page of parties, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyPage {
    pub parties: Vec<PartySummary>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Which party answered: ids merged into another keep answering with the survivor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Resolved {
    /// The party's current id.
    #[schema(example = "p_01hzx5y7k2m3n4p5q6r7s8t9va")]
    pub party: String,
    /// The id that was asked for.
    pub requested: String,
    /// When the id asked for was merged into another party: that party's id
    /// (the same as `party`); `null` otherwise.
    pub merged_into: Option<String>,
}

/// A party and its 360 view.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyResponse {
    #[serde(flatten)]
    pub resolved: Resolved,
    pub summary: PartySummary,
    pub view: ViewDto,
}

// --- the 360 view -----------------------------------------------------------

/// How a source answered for this view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SourceStatus)]
pub enum SourceStatusDto {
    Ok,
    Stale,
    TimedOut,
    Unreachable,
    Error,
    IdentityOnly,
    NotLinked,
}

impl From<kith_hub::SourceStatus> for SourceStatusDto {
    fn from(s: kith_hub::SourceStatus) -> Self {
        use kith_hub::SourceStatus as S;
        match s {
            S::Ok => SourceStatusDto::Ok,
            S::Stale => SourceStatusDto::Stale,
            S::TimedOut => SourceStatusDto::TimedOut,
            S::Unreachable => SourceStatusDto::Unreachable,
            S::Error => SourceStatusDto::Error,
            S::IdentityOnly => SourceStatusDto::IdentityOnly,
            S::NotLinked => SourceStatusDto::NotLinked,
        }
    }
}

/// One source's part in a view.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Source)]
pub struct SourceDto {
    pub name: String,
    pub status: SourceStatusDto,
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

impl From<kith_hub::SourceView> for SourceDto {
    fn from(s: kith_hub::SourceView) -> Self {
        let kith_hub::SourceView {
            name,
            status,
            reason,
            verified,
            records,
            facts,
            elapsed_ms,
            problems,
        } = s;
        SourceDto {
            name,
            status: status.into(),
            reason,
            verified,
            records,
            facts,
            elapsed_ms,
            problems,
        }
    }
}

/// The identifying attributes of a source record, as the source holds them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Attrs)]
pub struct AttrsDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// Ids the record carries from other systems (`loyalty_no`, `vat_number`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
}

impl From<IdentityAttrs> for AttrsDto {
    fn from(a: IdentityAttrs) -> Self {
        let IdentityAttrs {
            full_name,
            given_name,
            family_name,
            emails,
            phones,
            street,
            city,
            postcode,
            country,
            date_of_birth,
            org_name,
            external_ids,
        } = a;
        AttrsDto {
            full_name,
            given_name,
            family_name,
            emails,
            phones,
            street,
            city,
            postcode,
            country,
            date_of_birth,
            org_name,
            external_ids,
        }
    }
}

/// A linked source record and why it is linked.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Record)]
pub struct RecordDto {
    pub source: String,
    pub key: String,
    /// Whether the source vouches for the contact details it holds.
    pub verified: bool,
    /// `exact:email+phone`, `model`, `single`, `disputed`, …
    pub rule: String,
    pub evidence: Vec<String>,
    pub attrs: AttrsDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<RelationDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<kith_hub::RecordView> for RecordDto {
    fn from(r: kith_hub::RecordView) -> Self {
        let kith_hub::RecordView {
            source,
            key,
            verified,
            rule,
            evidence,
            attrs,
            relation,
            updated_at,
        } = r;
        RecordDto {
            source,
            key,
            verified,
            rule,
            evidence,
            attrs: attrs.into(),
            relation: relation.map(Into::into),
            updated_at,
        }
    }
}

/// Where a fact came from and how fresh it is.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Provenance)]
pub struct ProvenanceDto {
    /// The source's name (`contributions` for what customers and API clients added).
    pub source: String,
    /// The key of the source record the fact was found through.
    pub key: String,
    /// The fact set it was read from (for contributions: `<kind>:<who>`).
    pub fact_set: String,
    /// When the source says the fact last changed, if it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// When kith read it.
    pub fetched_at: DateTime<Utc>,
}

impl From<Provenance> for ProvenanceDto {
    fn from(p: Provenance) -> Self {
        let Provenance {
            source,
            key,
            fact_set,
            updated_at,
            fetched_at,
        } = p;
        ProvenanceDto {
            source,
            key,
            fact_set,
            updated_at,
            fetched_at,
        }
    }
}

/// One value per party (a profile attribute) or one row of many (an order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Cardinality)]
pub enum CardinalityDto {
    One,
    Many,
}

/// Anything known about a party, with its provenance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Fact)]
pub struct FactDto {
    /// `profile`, `account`, `holding`, `entitlement`, `transaction`,
    /// `interaction`, `case`, `offer`, `preference`, `consent`, `feedback`,
    /// or any kind the configuration names.
    #[schema(example = "transaction")]
    pub kind: String,
    pub cardinality: CardinalityDto,
    /// For a single-valued fact: the attribute's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// A scalar for a single-valued fact; an object of the row's fields otherwise.
    pub value: serde_json::Value,
    /// The fact's own date (an order's date, a ticket's opening).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<Utc>>,
    pub provenance: ProvenanceDto,
}

impl From<Fact> for FactDto {
    fn from(f: Fact) -> Self {
        let Fact {
            kind,
            cardinality,
            attribute,
            value,
            date,
            provenance,
        } = f;
        FactDto {
            kind: kind.as_str().to_string(),
            cardinality: match cardinality {
                Cardinality::One => CardinalityDto::One,
                Cardinality::Many => CardinalityDto::Many,
            },
            attribute,
            value,
            date,
            provenance: provenance.into(),
        }
    }
}

/// How the best value of a conflicting attribute was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Survivorship)]
pub enum SurvivorshipDto {
    MostRecent,
    SourcePriority,
    MostFrequent,
}

impl From<kith_hub::Survivorship> for SurvivorshipDto {
    fn from(s: kith_hub::Survivorship) -> Self {
        use kith_hub::Survivorship as S;
        match s {
            S::MostRecent => SurvivorshipDto::MostRecent,
            S::SourcePriority => SurvivorshipDto::SourcePriority,
            S::MostFrequent => SurvivorshipDto::MostFrequent,
        }
    }
}

/// One single-valued attribute across sources.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Attribute)]
pub struct AttributeDto {
    pub attribute: String,
    pub kind: String,
    /// The value chosen by the survivorship rule.
    pub best: serde_json::Value,
    pub best_source: String,
    pub rule: SurvivorshipDto,
    /// Whether sources disagree (after normalisation).
    pub conflict: bool,
    /// Every source's value, best first.
    pub values: Vec<FactDto>,
}

impl From<kith_hub::AttributeView> for AttributeDto {
    fn from(a: kith_hub::AttributeView) -> Self {
        let kith_hub::AttributeView {
            attribute,
            kind,
            best,
            best_source,
            rule,
            conflict,
            values,
        } = a;
        AttributeDto {
            attribute,
            kind: kind.as_str().to_string(),
            best,
            best_source,
            rule: rule.into(),
            conflict,
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

/// How two parties relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RelationKind)]
pub enum RelationKindDto {
    Household,
    EmployeeOf,
}

/// A relationship to another party.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Relationship)]
pub struct RelationshipDto {
    pub kind: RelationKindDto,
    /// This party's side: `member` (household), `employee` or `employer`.
    pub role: String,
    /// The other party.
    pub party: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub evidence: String,
}

impl From<kith_hub::RelationshipView> for RelationshipDto {
    fn from(r: kith_hub::RelationshipView) -> Self {
        let kith_hub::RelationshipView {
            kind,
            role,
            party,
            name,
            evidence,
        } = r;
        RelationshipDto {
            kind: match kind {
                RelationKind::Household => RelationKindDto::Household,
                RelationKind::EmployeeOf => RelationKindDto::EmployeeOf,
            },
            role: role.to_string(),
            party: party.to_string(),
            name,
            evidence,
        }
    }
}

/// A party's 360 view: every linked source asked now, merged with provenance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = View)]
pub struct ViewDto {
    pub party: String,
    pub kind: PartyKindDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<RelationDto>,
    pub created_at: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// Every source with its status: a source that is down is listed with the reason.
    pub sources: Vec<SourceDto>,
    pub records: Vec<RecordDto>,
    /// Single-valued attributes merged across sources, with conflicts.
    pub profile: Vec<AttributeDto>,
    /// Every fact: by kind, then newest first.
    pub facts: Vec<FactDto>,
    pub relationships: Vec<RelationshipDto>,
}

impl From<kith_hub::View> for ViewDto {
    fn from(v: kith_hub::View) -> Self {
        let kith_hub::View {
            party,
            kind,
            name,
            relation,
            created_at,
            generated_at,
            sources,
            records,
            profile,
            facts,
            relationships,
        } = v;
        ViewDto {
            party: party.to_string(),
            kind: kind.into(),
            name,
            relation: relation.map(Into::into),
            created_at,
            generated_at,
            sources: sources.into_iter().map(Into::into).collect(),
            records: records.into_iter().map(Into::into).collect(),
            profile: profile.into_iter().map(Into::into).collect(),
            facts: facts.into_iter().map(Into::into).collect(),
            relationships: relationships.into_iter().map(Into::into).collect(),
        }
    }
}

// --- search -------------------------------------------------------------------

/// A party found by search, best first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SearchHit)]
pub struct SearchHitDto {
    pub party: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub sources: Vec<String>,
    /// 0 to 1: how well the best of its records matched.
    pub score: f64,
    /// What matched: `name ~ "Jon Smyth"`, `email`, `phone`.
    pub matched: String,
}

impl From<kith_hub::SearchHit> for SearchHitDto {
    fn from(h: kith_hub::SearchHit) -> Self {
        let kith_hub::SearchHit {
            party,
            name,
            emails,
            phones,
            sources,
            score,
            matched,
        } = h;
        SearchHitDto {
            party: party.to_string(),
            name,
            emails,
            phones,
            sources,
            score,
            matched,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub query: String,
    pub hits: Vec<SearchHitDto>,
}

// --- timeline -----------------------------------------------------------------

/// One dated item of a party's timeline. Facts read from sources today;
/// other kinds of item (ingested events) will carry the same fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineItem {
    pub at: DateTime<Utc>,
    /// The fact kind (`transaction`, `case`, `offer`, …).
    pub kind: String,
    /// The source it came from (`contributions` for what was contributed).
    pub source: String,
    /// The source record it was found through.
    pub key: String,
    pub fact_set: String,
    /// For a single-valued fact: the attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    pub value: serde_json::Value,
}

/// A page of a party's timeline, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    #[serde(flatten)]
    pub resolved: Resolved,
    pub items: Vec<TimelineItem>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<DateTime<Utc>>,
    /// Every source and how it answered: items of a source that is not `ok`
    /// may be missing.
    pub sources: Vec<SourceDto>,
}

// --- links and match evidence ---------------------------------------------------

/// A source record linked to the party.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Link)]
pub struct LinkDto {
    pub source: String,
    pub key: String,
    pub verified: bool,
    pub rule: String,
    /// The model's match probability for `model` links; 1 for rules.
    pub score: f64,
    pub evidence: Vec<String>,
    /// Linked only in the model's uncertain band: a person should confirm
    /// it, and customers do not see this record in their own view.
    pub uncertain: bool,
    pub linked_at: DateTime<Utc>,
    pub attrs: AttrsDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinksResponse {
    #[serde(flatten)]
    pub resolved: Resolved,
    pub links: Vec<LinkDto>,
}

/// A record in a match explanation and where it is linked now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainRecord {
    pub source: String,
    pub key: String,
    /// The party it is linked to, if any.
    pub party: Option<String>,
    pub rule: Option<String>,
    pub uncertain: bool,
}

/// One compared attribute: its level, probabilities and weight.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Comparison)]
pub struct ComparisonDto {
    /// `given_name`, `family_name`, `date_of_birth`, `email`, `phone`, …
    pub attribute: String,
    /// The level's label (`exact`, `jw_0.92`, `else`, …); `null` when a value is missing.
    pub level: Option<String>,
    pub m: Option<f64>,
    pub u: Option<f64>,
    /// `log2(m/u)` plus the term-frequency adjustment.
    pub weight: f64,
    pub tf_adjustment: f64,
    /// The two normalised values compared (`a`'s, then `b`'s).
    pub values: Vec<Option<String>>,
}

/// What the model would do with the pair.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Decision)]
pub struct DecisionDto {
    /// At or above the threshold.
    pub link: bool,
    /// In the uncertain band: a person should decide.
    pub review: bool,
}

/// Every comparison between two records and the total: a waterfall of weights.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Explanation)]
pub struct ExplanationDto {
    pub prior_weight: f64,
    pub comparisons: Vec<ComparisonDto>,
    pub total_weight: f64,
    pub probability: f64,
    pub decision: DecisionDto,
    pub names_swapped: bool,
    /// The never-link rule (`[[hub.never_link]]`) that refuses this pair
    /// whatever its score; absent when none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_link: Option<String>,
}

impl From<kith_resolve::Explanation> for ExplanationDto {
    fn from(e: kith_resolve::Explanation) -> Self {
        let kith_resolve::Explanation {
            prior_weight,
            comparisons,
            total_weight,
            probability,
            decision,
            names_swapped,
            never_link,
        } = e;
        ExplanationDto {
            prior_weight,
            comparisons: comparisons
                .into_iter()
                .map(|c| {
                    let kith_resolve::ComparisonExplanation {
                        attribute,
                        level,
                        m,
                        u,
                        weight,
                        tf_adjustment,
                        values,
                    } = c;
                    ComparisonDto {
                        attribute: attribute.name().to_string(),
                        level,
                        m,
                        u,
                        weight,
                        tf_adjustment,
                        values: vec![values.0, values.1],
                    }
                })
                .collect(),
            total_weight,
            probability,
            decision: DecisionDto {
                link: decision.link,
                review: decision.review,
            },
            names_swapped,
            never_link,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainResponse {
    pub a: ExplainRecord,
    pub b: ExplainRecord,
    /// Whether the two records are linked to the same party now.
    pub same_party: bool,
    pub explanation: ExplanationDto,
}

// --- review -----------------------------------------------------------------------

/// Where a pair stands in the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReviewStatus)]
pub enum ReviewStatusDto {
    Pending,
    Accepted,
    Rejected,
    /// A customer said "this isn't me"; holds as a rejection until staff decide.
    Disputed,
}

impl From<kith_store::ReviewStatus> for ReviewStatusDto {
    fn from(s: kith_store::ReviewStatus) -> Self {
        use kith_store::ReviewStatus as S;
        match s {
            S::Pending => ReviewStatusDto::Pending,
            S::Accepted => ReviewStatusDto::Accepted,
            S::Rejected => ReviewStatusDto::Rejected,
            S::Disputed => ReviewStatusDto::Disputed,
        }
    }
}

/// A pair of records in the review queue.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReviewPair)]
pub struct ReviewPairDto {
    /// `source:key`
    #[schema(example = "billing:10042")]
    pub a: String,
    #[schema(example = "shop:C-88120")]
    pub b: String,
    /// The party each is linked to now.
    pub a_party: Option<String>,
    pub b_party: Option<String>,
    /// The model's match probability when it queued the pair.
    pub probability: Option<f64>,
    pub status: ReviewStatusDto,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub pairs: Vec<ReviewPairDto>,
    /// Pairs in the queue (in the status asked for) beyond `limit`.
    pub more: usize,
}

/// accept: the two records are the same party; reject: they never link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Accept,
    Reject,
}

/// A person's decision about two records.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecisionBody {
    /// `source:key`
    #[schema(example = "billing:10042")]
    pub a: String,
    #[schema(example = "shop:C-88120")]
    pub b: String,
    pub decision: ReviewDecision,
    /// Who decided, for the record (stored after the key's own name).
    #[serde(default)]
    pub by: Option<String>,
}

/// What a linking run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSummary {
    pub records: u64,
    pub parties: u64,
    pub new_parties: u64,
    pub merged: u64,
    pub retired: u64,
    pub links_changed: u64,
    pub decisions: u64,
    pub queued_for_review: u64,
}

impl From<&kith_hub::LinkReport> for LinkSummary {
    fn from(r: &kith_hub::LinkReport) -> Self {
        LinkSummary {
            records: r.records,
            parties: r.parties,
            new_parties: r.new_parties,
            merged: r.merged,
            retired: r.retired,
            links_changed: r.links_changed,
            decisions: r.decisions,
            queued_for_review: r.queued_for_review,
        }
    }
}

/// A stored decision and the re-link it caused.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDecided {
    pub a: String,
    pub b: String,
    pub status: ReviewStatusDto,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    /// The party each record is linked to after re-linking.
    pub a_party: Option<String>,
    pub b_party: Option<String>,
    pub link: LinkSummary,
}

// --- contributions ------------------------------------------------------------------

/// What a contribution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ContributionKind)]
pub enum ContributionKindDto {
    /// "This value is wrong; the right one is …": shown beside the source's
    /// value, never written into the source.
    Correction,
    /// A preference (channel, topic, frequency).
    Preference,
    /// A consent given or withdrawn.
    Consent,
    /// Free-text feedback.
    Feedback,
}

impl From<ContributionKindDto> for ContributionKind {
    fn from(k: ContributionKindDto) -> Self {
        match k {
            ContributionKindDto::Correction => ContributionKind::Correction,
            ContributionKindDto::Preference => ContributionKind::Preference,
            ContributionKindDto::Consent => ContributionKind::Consent,
            ContributionKindDto::Feedback => ContributionKind::Feedback,
        }
    }
}

impl From<ContributionKind> for ContributionKindDto {
    fn from(k: ContributionKind) -> Self {
        match k {
            ContributionKind::Correction => ContributionKindDto::Correction,
            ContributionKind::Preference => ContributionKindDto::Preference,
            ContributionKind::Consent => ContributionKindDto::Consent,
            ContributionKind::Feedback => ContributionKindDto::Feedback,
        }
    }
}

/// What a contribution is about, so it follows the person through merges
/// and splits: one of the party's source records, or one of its identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = Anchor)]
pub enum AnchorDto {
    Record {
        source: String,
        key: String,
    },
    /// An identifier the party's records hold: `email:ann@example.com`,
    /// `phone:+447700900123` (a plain address or number is normalised).
    Identifier {
        value: String,
    },
}

impl From<Anchor> for AnchorDto {
    fn from(a: Anchor) -> Self {
        match a {
            Anchor::Record(RecordRef { source, key }) => AnchorDto::Record { source, key },
            Anchor::Identifier { value } => AnchorDto::Identifier { value },
        }
    }
}

/// A correction, preference, consent or feedback to add to a party.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContributionBody {
    pub kind: ContributionKindDto,
    /// The attribute or topic: `email`, `newsletter`, `channel:sms`.
    #[schema(example = "newsletter")]
    pub attribute: String,
    /// A string, number or true/false (feedback: a string).
    #[schema(example = json!(false))]
    pub value: serde_json::Value,
    /// Which of the party's records or identifiers it is about; the party's
    /// founding record when left out.
    #[serde(default)]
    pub anchor: Option<AnchorDto>,
}

/// A stored contribution with its provenance.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Contribution)]
pub struct ContributionDto {
    pub id: i64,
    /// The party it is about now.
    pub party: String,
    pub anchor: AnchorDto,
    pub kind: ContributionKindDto,
    pub attribute: String,
    pub value: serde_json::Value,
    /// Who made it: `customer`, `staff:<name>`, `api-key:<id>`.
    pub by: String,
    pub created_at: DateTime<Utc>,
}

impl From<Contribution> for ContributionDto {
    fn from(c: Contribution) -> Self {
        let Contribution {
            id,
            party,
            anchor,
            kind,
            attribute,
            value,
            by,
            created_at,
        } = c;
        ContributionDto {
            id,
            party: party.to_string(),
            anchor: anchor.into(),
            kind: kind.into(),
            attribute,
            value,
            by,
            created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContributionList {
    #[serde(flatten)]
    pub resolved: Resolved,
    pub contributions: Vec<ContributionDto>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_model::{FactKind, PartyId};

    fn t(s: &str) -> kith_model::Timestamp {
        s.parse().unwrap()
    }

    /// A view with every optional part filled, so every field is compared.
    fn full_view() -> kith_hub::View {
        let fact = Fact {
            kind: FactKind::parse("profile").unwrap(),
            cardinality: Cardinality::One,
            attribute: Some("email".into()),
            value: serde_json::json!("ann@example.com"),
            date: Some(t("2024-01-02T03:04:05Z")),
            provenance: Provenance {
                source: "billing".into(),
                key: "12".into(),
                fact_set: "customer".into(),
                updated_at: Some(t("2024-01-02T03:04:05Z")),
                fetched_at: t("2024-06-01T00:00:00Z"),
            },
        };
        let order = Fact {
            kind: FactKind::parse("transaction").unwrap(),
            cardinality: Cardinality::Many,
            attribute: None,
            value: serde_json::json!({"id": "o1", "total": 12.5}),
            date: None,
            provenance: Provenance {
                updated_at: None,
                ..fact.provenance.clone()
            },
        };
        kith_hub::View {
            party: PartyId::parse("p_01hzx5y7k2m3n4p5q6r7s8t9va").unwrap(),
            kind: PartyKind::Person,
            name: Some("Ann Lee".into()),
            relation: Some(Relation::FormerCustomer),
            created_at: t("2023-01-01T00:00:00Z"),
            generated_at: t("2024-06-01T00:00:00Z"),
            sources: vec![
                kith_hub::SourceView {
                    name: "billing".into(),
                    status: kith_hub::SourceStatus::TimedOut,
                    reason: Some("no answer within 2s".into()),
                    verified: true,
                    records: 1,
                    facts: 0,
                    elapsed_ms: 2000,
                    problems: vec!["row 7: bad date".into()],
                },
                kith_hub::SourceView {
                    name: "shop".into(),
                    status: kith_hub::SourceStatus::NotLinked,
                    reason: None,
                    verified: false,
                    records: 0,
                    facts: 0,
                    elapsed_ms: 0,
                    problems: vec![],
                },
            ],
            records: vec![kith_hub::RecordView {
                source: "billing".into(),
                key: "12".into(),
                verified: true,
                rule: "exact:email".into(),
                evidence: vec!["same email as shop:9".into()],
                attrs: IdentityAttrs {
                    full_name: Some("Ann Lee".into()),
                    given_name: Some("Ann".into()),
                    family_name: Some("Lee".into()),
                    emails: vec!["ann@example.com".into()],
                    phones: vec!["07700 900123".into()],
                    street: Some("1 High St".into()),
                    city: Some("Leeds".into()),
                    postcode: Some("LS1 1AA".into()),
                    country: Some("GB".into()),
                    date_of_birth: Some("1980-02-03".into()),
                    org_name: Some("Acme".into()),
                    external_ids: [("loyalty_no".to_string(), "L1".to_string())].into(),
                },
                relation: Some(Relation::Customer),
                updated_at: Some(t("2024-01-02T03:04:05Z")),
            }],
            profile: vec![kith_hub::AttributeView {
                attribute: "email".into(),
                kind: FactKind::parse("profile").unwrap(),
                best: serde_json::json!("ann@example.com"),
                best_source: "billing".into(),
                rule: kith_hub::Survivorship::SourcePriority,
                conflict: true,
                values: vec![fact.clone()],
            }],
            facts: vec![fact, order],
            relationships: vec![kith_hub::RelationshipView {
                kind: RelationKind::EmployeeOf,
                role: "employee",
                party: PartyId::parse("p_01hzx5y7k2m3n4p5q6r7s8t9vb").unwrap(),
                name: Some("Acme".into()),
                evidence: "works for Acme".into(),
            }],
        }
    }

    #[test]
    fn the_api_view_serialises_as_the_hub_view() {
        let view = full_view();
        let hub = serde_json::to_value(&view).unwrap();
        let api = serde_json::to_value(ViewDto::from(view)).unwrap();
        assert_eq!(api, hub);
    }

    #[test]
    fn the_api_view_serialises_as_the_hub_view_when_sparse() {
        let mut view = full_view();
        view.name = None;
        view.relation = None;
        view.records[0].attrs = IdentityAttrs::default();
        view.records[0].relation = None;
        view.records[0].updated_at = None;
        view.relationships[0].name = None;
        let hub = serde_json::to_value(&view).unwrap();
        let api = serde_json::to_value(ViewDto::from(view)).unwrap();
        assert_eq!(api, hub);
    }

    #[test]
    fn anchors_read_and_write_as_the_model_does() {
        let record = Anchor::Record(RecordRef::new("billing", "12"));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "record", "source": "billing", "key": "12"})
        );
        assert_eq!(serde_json::to_value(AnchorDto::from(record)).unwrap(), json);
        let dto: AnchorDto = serde_json::from_value(
            serde_json::json!({"type": "identifier", "value": "email:a@b.c"}),
        )
        .unwrap();
        assert_eq!(
            dto,
            AnchorDto::Identifier {
                value: "email:a@b.c".into()
            }
        );
        assert!(
            serde_json::from_value::<AnchorDto>(serde_json::json!({"type": "party", "id": "x"}))
                .is_err()
        );
    }

    #[test]
    fn explanations_keep_every_comparison() {
        let a = kith_resolve::Prepared::new(
            &IdentityAttrs {
                given_name: Some("Ann".into()),
                family_name: Some("Lee".into()),
                emails: vec!["ann@example.com".into()],
                ..Default::default()
            },
            &Default::default(),
        );
        let b = kith_resolve::Prepared::new(
            &IdentityAttrs {
                given_name: Some("Anne".into()),
                family_name: Some("Lee".into()),
                ..Default::default()
            },
            &Default::default(),
        );
        let e = kith_resolve::explain(&kith_resolve::Model::prior(), &a, &b);
        let n = e.comparisons.len();
        let total = e.total_weight;
        let dto = ExplanationDto::from(e);
        assert_eq!(dto.comparisons.len(), n);
        assert_eq!(dto.total_weight, total);
        let given = dto
            .comparisons
            .iter()
            .find(|c| c.attribute == "given_name")
            .unwrap();
        assert_eq!(given.values.len(), 2);
        assert!(given.level.is_some());
        let email = dto
            .comparisons
            .iter()
            .find(|c| c.attribute == "email")
            .unwrap();
        assert!(email.level.is_none(), "b has no e-mail");
    }
}
