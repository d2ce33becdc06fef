//! The customer's picture for people: a [`View`] turned into what the `/me`
//! page shows. Pure: no store, no sources; every value keeps where it came from.

use std::collections::{BTreeMap, BTreeSet};

use kith_connect::CONTRIBUTIONS_SOURCE;
use kith_hub::{SourceStatus, SourceView, View};
use kith_model::{Cardinality, Fact, FactKind, Timestamp};
use kith_web::layout::{show, when};

/// Channels a customer can allow or refuse, as (attribute, label).
pub const CHANNELS: [(&str, &str); 4] = [
    ("email", "E-mail"),
    ("sms", "Text messages (SMS)"),
    ("post", "Post"),
    ("phone", "Phone calls"),
];
/// Topics a customer can opt in to or out of, as (attribute, label).
pub const TOPICS: [(&str, &str); 3] = [
    ("newsletter", "Newsletter"),
    ("offers", "Offers and discounts"),
    ("service", "News about services you hold"),
];
/// How often the business may write, as (value, label).
pub const FREQUENCIES: [(&str, &str); 3] = [
    ("weekly", "At most weekly"),
    ("monthly", "At most monthly"),
    ("never", "Never"),
];
/// The preference attribute holding the frequency.
pub const FREQUENCY: &str = "frequency";

/// The attribute of the name row, which the view builds from records rather than facts.
pub const NAME: &str = "name";

/// What the `/me` page shows.
#[derive(Debug, Clone)]
pub struct Picture {
    pub name: Option<String>,
    /// One sentence per source that could not answer.
    pub warnings: Vec<String>,
    pub sources: Vec<SourceLine>,
    pub profile: Vec<ProfileRow>,
    /// Sources that could not answer and would have given profile values.
    pub profile_missing: Vec<String>,
    pub sections: Vec<Section>,
    pub channels: Vec<Choice>,
    pub topics: Vec<Choice>,
    pub frequency: Option<(String, String)>,
    /// Consents and preferences sources hold that the form does not ask about.
    pub other_choices: Vec<ProfileRow>,
    pub choices_missing: Vec<String>,
}

/// One source and how it answered.
#[derive(Debug, Clone)]
pub struct SourceLine {
    pub name: String,
    /// `ok`, `warn`, `bad` or `info` (the stylesheet's badge classes).
    pub badge: &'static str,
    pub status: String,
    pub verified: bool,
}

/// One value and where it came from.
#[derive(Debug, Clone)]
pub struct Sourced {
    pub value: String,
    pub origin: String,
    /// `source:key` of the record it came from, if it came from one.
    pub record: Option<String>,
}

/// One single-valued attribute: the value in use and every other source's.
#[derive(Debug, Clone)]
pub struct ProfileRow {
    pub attribute: String,
    pub label: String,
    pub best: Sourced,
    pub conflict: bool,
    /// The other sources' values, each with where it came from.
    pub others: Vec<Sourced>,
}

/// Many-valued facts of one kind (or two close kinds), newest first.
#[derive(Debug, Clone)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub empty: String,
    pub items: Vec<Item>,
    /// Sources that could not answer and would have had facts of these kinds.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub date: Option<String>,
    pub title: String,
    pub fields: Vec<(String, String)>,
    pub origin: String,
}

/// A consent the form asks about and its effective value.
#[derive(Debug, Clone)]
pub struct Choice {
    pub name: &'static str,
    pub label: &'static str,
    pub current: Option<bool>,
    /// "Yes — from …" or "Not set".
    pub now: String,
}

impl Choice {
    pub fn is_yes(&self) -> bool {
        self.current == Some(true)
    }
    pub fn is_no(&self) -> bool {
        self.current == Some(false)
    }
}

/// The sections after the profile, as (id, title, kinds, what to say when empty).
const SECTIONS: [(&str, &str, &[&str], &str); 6] = [
    ("accounts", "Accounts", &[FactKind::ACCOUNT], "No accounts."),
    (
        "holdings",
        "Products and services you hold",
        &[FactKind::HOLDING],
        "No products or services.",
    ),
    (
        "entitlements",
        "Entitlements",
        &[FactKind::ENTITLEMENT],
        "No entitlements.",
    ),
    (
        "transactions",
        "Orders and transactions",
        &[FactKind::TRANSACTION],
        "No orders or transactions.",
    ),
    (
        "interactions",
        "Interactions and cases",
        &[FactKind::INTERACTION, FactKind::CASE],
        "No interactions or cases.",
    ),
    (
        "offers",
        "Offers you received and what you did",
        &[FactKind::OFFER],
        "No offers.",
    ),
];

/// For people: `email` → `E-mail`, `date_of_birth` → `Date of birth`.
pub fn label(attribute: &str) -> String {
    let known = match attribute {
        "name" => "Name",
        "full_name" => "Full name",
        "given_name" => "Given name",
        "family_name" => "Family name",
        "email" => "E-mail",
        "phone" => "Phone",
        "mobile" | "mobile_phone" => "Mobile",
        "street" => "Street",
        "address" => "Address",
        "city" => "Town or city",
        "postcode" => "Postcode",
        "country" => "Country",
        "date_of_birth" => "Date of birth",
        "response" => "What you did",
        "sent_at" => "Sent",
        "placed_at" => "Placed",
        "issued_at" => "Issued",
        "opened_at" => "Opened",
        "closed_at" => "Closed",
        "started_at" => "Started",
        "renews_at" => "Renews",
        "joined_at" => "Joined",
        "valid_from" => "Valid from",
        "valid_until" => "Valid until",
        "order_id" => "Order",
        "sms" => "Text messages (SMS)",
        "frequency" => "How often",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let spaced = attribute.replace(['_', '.', ':'], " ");
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => attribute.to_string(),
    }
}

/// The date of an item: a day, or a day and time when it has one.
fn day(t: &Timestamp) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Where a fact came from, for people.
pub fn origin(f: &Fact) -> String {
    let p = &f.provenance;
    if p.source == CONTRIBUTIONS_SOURCE {
        let who = match p.fact_set.split_once(':').map(|(_, by)| by) {
            Some(by) if by.starts_with("staff:") => "staff, on your behalf",
            _ => "you told us",
        };
        let at = p.updated_at.as_ref().map(when).unwrap_or_default();
        return format!("{CONTRIBUTIONS_SOURCE} ({who}) · {at}");
    }
    let mut s = format!("{}, record {}", p.source, p.key);
    if let Some(u) = &p.updated_at {
        s.push_str(&format!(" · last updated {}", when(u)));
    }
    s.push_str(&format!(" · fetched {}", when(&p.fetched_at)));
    s
}

/// The `source:key` a fact was read through, when it came from a source record.
fn record_of(f: &Fact) -> Option<String> {
    (f.provenance.source != CONTRIBUTIONS_SOURCE)
        .then(|| format!("{}:{}", f.provenance.source, f.provenance.key))
}

fn sourced(f: &Fact) -> Sourced {
    Sourced {
        value: show(&f.value),
        origin: origin(f),
        record: record_of(f),
    }
}

/// A consent's value as yes or no, when it reads as one.
pub fn as_bool(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => n.as_i64().map(|n| n != 0),
        serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "opt-in" | "opted in" | "in" => Some(true),
            "false" | "no" | "n" | "0" | "opt-out" | "opted out" | "out" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn comparable(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// What a source's status means for the person reading.
fn source_line(s: &SourceView) -> SourceLine {
    let (badge, status) = match s.status {
        SourceStatus::Ok if s.name == CONTRIBUTIONS_SOURCE => ("ok", "what you told us".into()),
        SourceStatus::Ok => ("ok", "answered".into()),
        SourceStatus::Stale => (
            "warn",
            format!(
                "answered from its cache ({})",
                s.reason.as_deref().unwrap_or("not read just now")
            ),
        ),
        SourceStatus::TimedOut => ("bad", "did not answer in time".into()),
        SourceStatus::Unreachable => ("bad", "could not be reached".into()),
        // The reason may name hosts or files: staff see it, customers do not.
        SourceStatus::Error => ("bad", "could not answer (an error on its side)".into()),
        SourceStatus::IdentityOnly => ("info", "holds only your contact details".into()),
        SourceStatus::NotLinked => ("info", "holds nothing about you".into()),
    };
    SourceLine {
        name: s.name.clone(),
        badge,
        status,
        verified: s.verified,
    }
}

fn failed(s: &SourceView) -> bool {
    s.records > 0
        && matches!(
            s.status,
            SourceStatus::TimedOut | SourceStatus::Unreachable | SourceStatus::Error
        )
}

/// Builds the picture. `kinds` says, per source, which fact kinds it is
/// configured to give, so a source that could not answer is named where its
/// facts are missing.
pub fn build(view: &View, kinds: &BTreeMap<String, BTreeSet<String>>) -> Picture {
    let failed_sources: Vec<&SourceView> = view.sources.iter().filter(|s| failed(s)).collect();
    let missing_for = |wanted: &[&str]| -> Vec<String> {
        failed_sources
            .iter()
            .filter(|s| {
                kinds
                    .get(&s.name)
                    .is_some_and(|k| wanted.iter().any(|w| k.contains(*w)))
            })
            .map(|s| format!("{} {}", s.name, source_line(s).status))
            .collect()
    };
    let warnings = failed_sources
        .iter()
        .map(|s| {
            format!(
                "{} {}: what it holds about you is missing below. Try again later.",
                s.name,
                source_line(s).status
            )
        })
        .collect();

    // The profile: the name (from the records themselves), then every
    // single-valued profile attribute.
    let mut profile = Vec::new();
    if let Some(row) = name_row(view) {
        profile.push(row);
    }
    let mut other_choices = Vec::new();
    let mut effective: BTreeMap<(String, String), (serde_json::Value, String)> = BTreeMap::new();
    for a in &view.profile {
        let kind = a.kind.as_str();
        if kind == FactKind::PROFILE && a.attribute == NAME {
            continue; // in the name row already
        }
        let Some(first) = a.values.first() else {
            continue;
        };
        let row = ProfileRow {
            attribute: a.attribute.clone(),
            label: label(&a.attribute),
            best: sourced(first),
            conflict: a.conflict,
            others: a.values.iter().skip(1).map(sourced).collect(),
        };
        match kind {
            FactKind::PROFILE => profile.push(row),
            FactKind::CONSENT | FactKind::PREFERENCE => {
                effective.insert(
                    (kind.to_string(), a.attribute.clone()),
                    (first.value.clone(), origin(first)),
                );
                let asked = (kind == FactKind::CONSENT
                    && CHANNELS
                        .iter()
                        .chain(TOPICS.iter())
                        .any(|(n, _)| *n == a.attribute))
                    || (kind == FactKind::PREFERENCE && a.attribute == FREQUENCY);
                if !asked {
                    other_choices.push(row);
                }
            }
            _ => {}
        }
    }
    let choice = |(name, label): &(&'static str, &'static str)| {
        let found = effective.get(&(FactKind::CONSENT.to_string(), name.to_string()));
        let current = found.and_then(|(v, _)| as_bool(v));
        let now = match (found, current) {
            (Some((_, from)), Some(b)) => {
                format!("Now: {} — {from}", if b { "yes" } else { "no" })
            }
            (Some((v, from)), None) => format!("Now: {} — {from}", show(v)),
            (None, _) => "Not set".into(),
        };
        Choice {
            name,
            label,
            current,
            now,
        }
    };
    let frequency = effective
        .get(&(FactKind::PREFERENCE.to_string(), FREQUENCY.to_string()))
        .map(|(v, from)| (show(v), from.clone()));

    // Many-valued facts, by section; kinds no section names get one each.
    let mut sections: Vec<Section> = SECTIONS
        .iter()
        .map(|(id, title, kinds, empty)| Section {
            id: id.to_string(),
            title: title.to_string(),
            empty: empty.to_string(),
            items: Vec::new(),
            missing: missing_for(kinds),
        })
        .collect();
    let mut extra: BTreeMap<String, Section> = BTreeMap::new();
    for f in view
        .facts
        .iter()
        .filter(|f| f.cardinality == Cardinality::Many)
    {
        let kind = f.kind.as_str();
        let at = SECTIONS.iter().position(|(_, _, ks, _)| ks.contains(&kind));
        let section = match at {
            Some(i) => &mut sections[i],
            None => extra.entry(kind.to_string()).or_insert_with(|| Section {
                id: format!("more-{kind}"),
                title: match kind {
                    FactKind::PROFILE => "More about you".into(),
                    FactKind::CONSENT => "Consent records".into(),
                    FactKind::PREFERENCE => "Preference records".into(),
                    FactKind::FEEDBACK => "Your feedback".into(),
                    other => label(other),
                },
                empty: String::new(),
                items: Vec::new(),
                missing: missing_for(&[kind]),
            }),
        };
        section.items.push(item(f));
    }
    for s in &mut sections {
        // Two kinds in one section: keep newest first across both.
        s.items.sort_by(|a, b| b.date.cmp(&a.date));
    }
    sections.extend(extra.into_values());

    Picture {
        name: view.name.clone(),
        warnings,
        sources: view.sources.iter().map(source_line).collect(),
        profile,
        profile_missing: missing_for(&[FactKind::PROFILE]),
        sections,
        channels: CHANNELS.iter().map(choice).collect(),
        topics: TOPICS.iter().map(choice).collect(),
        frequency,
        other_choices,
        choices_missing: missing_for(&[FactKind::CONSENT, FactKind::PREFERENCE]),
    }
}

/// Fields that name an item best, in order.
const TITLE_FIELDS: [&str; 10] = [
    "offer", "product", "benefit", "subject", "title", "name", "tier", "number", "order_id", "id",
];

fn item(f: &Fact) -> Item {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut title = None;
    match &f.value {
        serde_json::Value::Object(m) => {
            let key = TITLE_FIELDS.iter().find(|k| {
                m.get(**k)
                    .is_some_and(|v| !v.is_null() && !show(v).trim().is_empty())
            });
            for (k, v) in m {
                if v.is_null() {
                    continue;
                }
                if Some(&k.as_str()) == key {
                    title = Some(show(v));
                } else {
                    fields.push((label(k), show(v)));
                }
            }
        }
        other => title = Some(show(other)),
    }
    Item {
        date: f.date.as_ref().map(day),
        title: title.unwrap_or_else(|| label(f.kind.as_str())),
        fields,
        origin: origin(f),
    }
}

/// The name row: the view's name, with every record's name and where it is held.
fn name_row(view: &View) -> Option<ProfileRow> {
    let mut values: Vec<Sourced> = Vec::new();
    let mut updated: Vec<Option<Timestamp>> = Vec::new();
    // Names customers (or staff) gave, and any source with a `name` profile fact.
    if let Some(a) = view
        .profile
        .iter()
        .find(|a| a.kind.as_str() == FactKind::PROFILE && a.attribute == NAME)
    {
        for f in &a.values {
            values.push(sourced(f));
            updated.push(f.provenance.updated_at);
        }
    }
    let mut records: Vec<_> = view.records.iter().collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
    for r in records {
        let Some(n) = r.attrs.display_name() else {
            continue;
        };
        let at = format!("{}:{}", r.source, r.key);
        if values
            .iter()
            .any(|v| v.record.as_deref() == Some(at.as_str()))
        {
            continue;
        }
        let mut o = format!("{}, record {}", r.source, r.key);
        if let Some(u) = &r.updated_at {
            o.push_str(&format!(" · last updated {}", when(u)));
        }
        values.push(Sourced {
            value: n,
            origin: o,
            record: Some(at),
        });
        updated.push(r.updated_at);
    }
    if values.is_empty() {
        return None;
    }
    // The view's name is the one in use; put it first.
    if let Some(n) = &view.name
        && let Some(i) = values.iter().position(|v| &v.value == n)
    {
        let best = values.remove(i);
        values.insert(0, best);
    }
    let first = comparable(&values[0].value);
    let conflict = values.iter().any(|v| comparable(&v.value) != first);
    let mut values = values.into_iter();
    let best = values.next()?;
    Some(ProfileRow {
        attribute: NAME.into(),
        label: label(NAME),
        best,
        conflict,
        others: values.collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use kith_hub::{AttributeView, RecordView, Survivorship};
    use kith_model::{IdentityAttrs, PartyId, PartyKind, Provenance};
    use serde_json::json;

    fn at(d: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 10, d, 9, 0, 0).unwrap()
    }

    fn fact(kind: &str, attr: Option<&str>, value: serde_json::Value, source: &str) -> Fact {
        Fact {
            kind: FactKind::parse(kind).unwrap(),
            cardinality: if attr.is_some() {
                Cardinality::One
            } else {
                Cardinality::Many
            },
            attribute: attr.map(str::to_string),
            value,
            date: Some(at(2)),
            provenance: Provenance {
                source: source.into(),
                key: if source == CONTRIBUTIONS_SOURCE {
                    "email:ann@example.com".into()
                } else {
                    "7".into()
                },
                fact_set: if source == CONTRIBUTIONS_SOURCE {
                    "correction:customer:p_1".into()
                } else {
                    "profile".into()
                },
                updated_at: Some(at(3)),
                fetched_at: at(4),
            },
        }
    }

    fn source(name: &str, status: SourceStatus, records: usize) -> SourceView {
        SourceView {
            name: name.into(),
            status,
            reason: Some("db.internal:5432 refused".into()),
            verified: name == "billing",
            records,
            facts: 0,
            elapsed_ms: 1,
            problems: Vec::new(),
        }
    }

    fn attr(kind: &str, name: &str, values: Vec<Fact>, conflict: bool) -> AttributeView {
        AttributeView {
            attribute: name.into(),
            kind: FactKind::parse(kind).unwrap(),
            best: values[0].value.clone(),
            best_source: values[0].provenance.source.clone(),
            rule: Survivorship::MostRecent,
            conflict,
            values,
        }
    }

    fn view() -> View {
        let city = vec![
            fact("profile", Some("city"), json!("Harrogate"), "billing"),
            fact("profile", Some("city"), json!("Leeds"), "shop"),
        ];
        let sms = vec![fact(
            "consent",
            Some("sms"),
            json!(false),
            CONTRIBUTIONS_SOURCE,
        )];
        let fax = vec![fact("consent", Some("fax"), json!(true), "marketing")];
        let mut facts = vec![
            fact(
                "offer",
                None,
                json!({"offer": "Spring 20% off", "response": "clicked", "x": null}),
                "marketing",
            ),
            fact("warranty_claim", None, json!({"id": 4}), "shop"),
        ];
        facts.extend(city.clone());
        View {
            party: PartyId::from_stored("p_1"),
            kind: PartyKind::Person,
            name: Some("Ann Lee".into()),
            relation: None,
            created_at: at(1),
            generated_at: at(4),
            sources: vec![
                source("billing", SourceStatus::Ok, 1),
                source("loyalty", SourceStatus::Unreachable, 1),
                source("support", SourceStatus::Error, 1),
                source("shop", SourceStatus::NotLinked, 0),
            ],
            records: vec![
                RecordView {
                    source: "billing".into(),
                    key: "7".into(),
                    verified: true,
                    rule: "exact:email".into(),
                    evidence: vec![],
                    attrs: IdentityAttrs {
                        given_name: Some("Ann".into()),
                        family_name: Some("Lee".into()),
                        ..Default::default()
                    },
                    relation: None,
                    updated_at: Some(at(3)),
                },
                RecordView {
                    source: "loyalty".into(),
                    key: "FL-1".into(),
                    verified: true,
                    rule: "exact:email".into(),
                    evidence: vec![],
                    attrs: IdentityAttrs {
                        full_name: Some("Anne Lee".into()),
                        ..Default::default()
                    },
                    relation: None,
                    updated_at: Some(at(1)),
                },
            ],
            profile: vec![
                attr("profile", "city", city, true),
                attr("consent", "sms", sms, false),
                attr("consent", "fax", fax, false),
            ],
            facts,
            relationships: vec![],
        }
    }

    fn kinds() -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::from([
            (
                "loyalty".to_string(),
                BTreeSet::from(["account".to_string(), "entitlement".to_string()]),
            ),
            ("support".to_string(), BTreeSet::from(["case".to_string()])),
        ])
    }

    #[test]
    fn every_value_keeps_its_source_and_conflicts_are_marked() {
        let p = build(&view(), &kinds());
        let name = &p.profile[0];
        assert_eq!(name.attribute, "name");
        assert_eq!(name.best.value, "Ann Lee");
        assert_eq!(name.best.record.as_deref(), Some("billing:7"));
        assert!(name.conflict, "Anne Lee in loyalty disagrees");
        assert_eq!(name.others[0].value, "Anne Lee");
        let city = &p.profile[1];
        assert_eq!(city.label, "Town or city");
        assert!(city.conflict);
        assert_eq!(city.best.value, "Harrogate");
        assert!(
            city.best.origin.starts_with("billing, record 7"),
            "{}",
            city.best.origin
        );
        assert!(city.best.origin.contains("last updated 2026-10-03"));
        assert_eq!(city.others[0].value, "Leeds");
    }

    #[test]
    fn sources_that_did_not_answer_are_named_where_their_facts_are_missing() {
        let p = build(&view(), &kinds());
        assert_eq!(p.warnings.len(), 2);
        assert!(p.warnings[0].starts_with("loyalty could not be reached"));
        let s = |id: &str| p.sections.iter().find(|s| s.id == id).unwrap();
        assert_eq!(s("accounts").missing, vec!["loyalty could not be reached"]);
        assert_eq!(
            s("interactions").missing,
            vec!["support could not answer (an error on its side)"]
        );
        assert!(s("offers").missing.is_empty());
        // An internal reason is never shown to the customer.
        assert!(p.sources.iter().all(|l| !l.status.contains("5432")));
        assert_eq!(p.sources[3].status, "holds nothing about you");
    }

    #[test]
    fn facts_land_in_their_sections_and_unknown_kinds_get_their_own() {
        let p = build(&view(), &kinds());
        let offers = p.sections.iter().find(|s| s.id == "offers").unwrap();
        assert_eq!(offers.items.len(), 1);
        let o = &offers.items[0];
        assert_eq!(o.title, "Spring 20% off");
        assert_eq!(o.fields, vec![("What you did".into(), "clicked".into())]);
        assert_eq!(o.date.as_deref(), Some("2026-10-02"));
        assert!(o.origin.starts_with("marketing, record 7"));
        let last = p.sections.last().unwrap();
        assert_eq!(last.title, "Warranty claim");
        assert_eq!(last.items[0].title, "4");
    }

    #[test]
    fn consents_show_their_effective_value_and_contributions_say_whose() {
        let p = build(&view(), &kinds());
        let sms = p.channels.iter().find(|c| c.name == "sms").unwrap();
        assert_eq!(sms.current, Some(false));
        assert!(sms.is_no());
        assert!(
            sms.now.starts_with("Now: no — contributions (you told us)"),
            "{}",
            sms.now
        );
        let email = p.channels.iter().find(|c| c.name == "email").unwrap();
        assert_eq!(email.current, None);
        assert_eq!(email.now, "Not set");
        assert_eq!(p.other_choices.len(), 1);
        assert_eq!(p.other_choices[0].attribute, "fax");
        assert!(p.frequency.is_none());
    }

    #[test]
    fn labels_and_yes_no_read_like_text() {
        assert_eq!(label("date_of_birth"), "Date of birth");
        assert_eq!(label("loyalty_tier"), "Loyalty tier");
        assert_eq!(as_bool(&json!("Yes")), Some(true));
        assert_eq!(as_bool(&json!(0)), Some(false));
        assert_eq!(as_bool(&json!("maybe")), None);
    }
}
