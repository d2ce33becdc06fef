//! The source-mapping contract: how a source's rows become identity records
//! and facts. Configuration deserialises into these structs; `validate`
//! checks what serde cannot, and names the field that is wrong.
//!
//! A source declares one identity entity (where its people or organisations
//! are) and any number of named fact sets (tables, files or endpoints joined to
//! that entity). New fact kinds and attributes need configuration only.

use std::collections::BTreeMap;

use kith_model::{Cardinality, FactKind, PartyKind, Relation};
use serde::{Deserialize, Serialize};

use crate::ConnectorConfig;

/// One source, as the configuration declares it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name; appears in provenance, record references (`name:key`) and the CLI.
    pub name: String,
    /// How to reach the source.
    pub connection: ConnectorConfig,
    /// Whether the business has confirmed this source's contact identifiers
    /// (billing: yes; a newsletter form: no). Only verified identifiers let a customer sign in.
    #[serde(default)]
    pub verified: bool,
    /// Survivorship priority: when a view picks a best value by source priority,
    /// the higher number wins.
    #[serde(default)]
    pub priority: i32,
    /// Time allowed for one lookup during a view, e.g. `"2s"`, `"500ms"`.
    #[serde(default, with = "crate::duration::option")]
    pub timeout: Option<std::time::Duration>,
    /// The relation to the business of this source's people when no column says
    /// (`customer`, `former_customer`, `prospect`).
    #[serde(default)]
    pub relation: Option<RelationName>,
    pub identity: IdentityMapping,
    /// Named fact sets.
    #[serde(default)]
    pub facts: BTreeMap<String, FactSetMapping>,
}

/// A relation word as written in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationName {
    Customer,
    FormerCustomer,
    Prospect,
}

impl From<RelationName> for Relation {
    fn from(r: RelationName) -> Self {
        match r {
            RelationName::Customer => Relation::Customer,
            RelationName::FormerCustomer => Relation::FormerCustomer,
            RelationName::Prospect => Relation::Prospect,
        }
    }
}

/// Where a source's people or organisations are.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityMapping {
    /// Table, file (relative to the connection's `dir`) or endpoint.
    pub from: String,
    /// Column holding the record key.
    pub key: String,
    /// Incremental cursor: a column that only grows when a row changes.
    #[serde(default)]
    pub cursor: Option<CursorMapping>,
    /// Column holding when the row last changed (defaults to a time cursor's column).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `person` (default) or `organisation` for every row…
    #[serde(default)]
    pub party_kind: Option<PartyKindName>,
    /// …or a column saying which, per row (`person`/`organisation`, `individual`/`company`, …).
    #[serde(default)]
    pub kind_column: Option<String>,
    /// A column whose value says the relation (`active`, `cancelled`, `lead`, …).
    #[serde(default)]
    pub relation_column: Option<String>,
    /// Identifying attributes: model attribute → source column.
    #[serde(default)]
    pub attributes: AttributeMapping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKindName {
    Person,
    Organisation,
}

impl From<PartyKindName> for PartyKind {
    fn from(k: PartyKindName) -> Self {
        match k {
            PartyKindName::Person => PartyKind::Person,
            PartyKindName::Organisation => PartyKind::Organisation,
        }
    }
}

/// The cursor column and what its values are.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CursorMapping {
    pub column: String,
    /// `time` (an updated-at column) or `int` (a high-water mark such as a sequence).
    #[serde(default, rename = "type")]
    pub kind: CursorKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorKind {
    #[default]
    Time,
    Int,
}

/// One column, or several (a work and a home e-mail).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let v: Vec<&str> = match self {
            Columns::One(c) => vec![c.as_str()],
            Columns::Many(cs) => cs.iter().map(String::as_str).collect(),
        };
        v.into_iter()
    }
}

/// Model attribute → source column(s). Unknown attribute names are an error,
/// so a typo is caught at start-up rather than silently ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeMapping {
    pub full_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<Columns>,
    pub phone: Option<Columns>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
    pub date_of_birth: Option<String>,
    pub org_name: Option<String>,
    /// External ids: id name → column (`loyalty_no = "card_number"`).
    #[serde(default)]
    pub external_ids: BTreeMap<String, String>,
}

impl AttributeMapping {
    /// Every (attribute, column) pair, for validation and for building projections.
    pub fn columns(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        let singles = [
            ("full_name", &self.full_name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("street", &self.street),
            ("city", &self.city),
            ("postcode", &self.postcode),
            ("country", &self.country),
            ("date_of_birth", &self.date_of_birth),
            ("org_name", &self.org_name),
        ];
        for (attr, col) in singles {
            if let Some(c) = col {
                out.push((attr.to_string(), c.as_str()));
            }
        }
        for (attr, cols) in [("email", &self.email), ("phone", &self.phone)] {
            for c in cols.iter().flat_map(|c| c.iter()) {
                out.push((attr.to_string(), c));
            }
        }
        for (name, c) in &self.external_ids {
            out.push((format!("external_ids.{name}"), c.as_str()));
        }
        out
    }
}

/// A named set of facts joined to the identity entity.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FactSetMapping {
    /// Table, file or endpoint holding the facts.
    pub from: String,
    /// Column of the fact rows that joins them to a person.
    pub join: String,
    /// What the join column holds: the identity `key` (default), or an identity
    /// attribute — `email`, `phone`, or `external_ids.<name>`.
    #[serde(default = "default_on")]
    pub on: String,
    /// The fact's kind: one of kith's well-known kinds or any new one
    /// (lower-case letters, digits, underscores).
    pub kind: String,
    /// `one` (a profile attribute per column, which can conflict across
    /// sources) or `many` (a list of rows: orders, tickets, offers).
    #[serde(default)]
    pub cardinality: Cardinality,
    /// The fact's own date column (order date, ticket opened), used for
    /// ordering and `since` filters.
    #[serde(default)]
    pub date: Option<String>,
    /// Column saying when the fact last changed (defaults to `date`).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Output fields: a list of columns, or a table of name → column.
    /// Defaults to every column except the join column.
    #[serde(default)]
    pub fields: Option<Fields>,
}

fn default_on() -> String {
    "key".to_string()
}

/// The fields a fact set exposes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Fields {
    List(Vec<String>),
    Renamed(BTreeMap<String, String>),
}

impl Fields {
    /// (output name, column) pairs.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        match self {
            Fields::List(cols) => cols.iter().map(|c| (c.as_str(), c.as_str())).collect(),
            Fields::Renamed(m) => m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        }
    }
}

/// A validation problem, with the dotted path of the field inside the source
/// (`identity.cursor.column`) so the caller can point at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    pub field: String,
    pub message: String,
}

impl SourceConfig {
    /// Checks what serde cannot: names, kinds, identifiers and references between fields.
    pub fn validate(&self) -> Vec<MappingProblem> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, message: String| {
            problems.push(MappingProblem {
                field: field.to_string(),
                message,
            })
        };
        if !is_name(&self.name) {
            bad(
                "name",
                format!(
                    "source name {:?} must be letters, digits, '_' or '-', starting with a letter",
                    self.name
                ),
            );
        }
        if self.name == crate::CONTRIBUTIONS_SOURCE {
            bad(
                "name",
                format!(
                    "source name {:?} is reserved for what customers contribute",
                    self.name
                ),
            );
        }
        let id = &self.identity;
        if id.from.trim().is_empty() {
            bad(
                "identity.from",
                "must name a table, file or endpoint".into(),
            );
        }
        if id.key.trim().is_empty() {
            bad("identity.key", "must name the key column".into());
        }
        if id.party_kind.is_some() && id.kind_column.is_some() {
            bad(
                "identity.kind_column",
                "give either party_kind or kind_column, not both".into(),
            );
        }
        if id.attributes.columns().is_empty() {
            bad(
                "identity.attributes",
                "map at least one identifying attribute (e.g. email = \"email\")".into(),
            );
        }
        for (name, ext) in &id.attributes.external_ids {
            if !is_name(name) {
                bad(
                    &format!("identity.attributes.external_ids.{name}"),
                    format!("external id name {name:?} must be letters, digits, '_' or '-'"),
                );
            }
            if ext.trim().is_empty() {
                bad(
                    &format!("identity.attributes.external_ids.{name}"),
                    "must name a column".into(),
                );
            }
        }
        for (set, fs) in &self.facts {
            let at = |f: &str| format!("facts.{set}.{f}");
            if !is_name(set) {
                bad(
                    &format!("facts.{set}"),
                    format!("fact set name {set:?} must be letters, digits, '_' or '-'"),
                );
            }
            if FactKind::parse(&fs.kind).is_none() {
                bad(
                    &at("kind"),
                    format!(
                        "fact kind {:?} must be lower-case letters, digits and '_' (well-known kinds: {})",
                        fs.kind,
                        FactKind::WELL_KNOWN.join(", ")
                    ),
                );
            }
            if fs.from.trim().is_empty() {
                bad(&at("from"), "must name a table, file or endpoint".into());
            }
            if fs.join.trim().is_empty() {
                bad(
                    &at("join"),
                    "must name the column that joins facts to a person".into(),
                );
            }
            let on_ok = match fs.on.as_str() {
                "key" => true,
                "email" => id.attributes.email.is_some(),
                "phone" => id.attributes.phone.is_some(),
                other => other
                    .strip_prefix("external_ids.")
                    .is_some_and(|n| id.attributes.external_ids.contains_key(n)),
            };
            if !on_ok {
                bad(
                    &at("on"),
                    format!(
                        "{:?} is not an identity attribute this source maps (use key, email, phone or external_ids.<name>)",
                        fs.on
                    ),
                );
            }
            if let Some(f) = &fs.fields
                && f.pairs().is_empty()
            {
                bad(
                    &at("fields"),
                    "list at least one field, or leave fields out".into(),
                );
            }
            if fs.cardinality == Cardinality::One && fs.kind != FactKind::PROFILE {
                // Allowed (a single-valued preference, say) — but the combination
                // of `many` and `profile` is the likely mistake, checked below.
            }
            if fs.cardinality == Cardinality::Many && fs.kind == FactKind::PROFILE {
                bad(
                    &at("cardinality"),
                    "profile facts are single-valued: set cardinality = \"one\"".into(),
                );
            }
        }
        problems
    }

    /// The identity attribute values a fact set joins on, for one record.
    pub fn join_values(fs: &FactSetMapping, record: &kith_model::IdentityRecord) -> Vec<String> {
        let a = &record.attrs;
        match fs.on.as_str() {
            "key" => vec![record.record.key.clone()],
            "email" => a.emails.clone(),
            "phone" => a.phones.clone(),
            other => other
                .strip_prefix("external_ids.")
                .and_then(|n| a.external_ids.get(n).cloned())
                .into_iter()
                .collect(),
        }
    }
}

/// Names of sources, fact sets and ids: letters, digits, `_`, `-`, starting with a letter.
pub fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(toml_text: &str) -> SourceConfig {
        toml::from_str(toml_text).expect("parses")
    }

    const GOOD: &str = r#"
        name = "billing"
        verified = true
        connection = { kind = "sqlite", path = "billing.db" }
        [identity]
        from = "customers"
        key = "id"
        cursor = { column = "updated_at" }
        attributes = { given_name = "first", family_name = "last", email = ["email", "email2"] }
        [facts.invoices]
        from = "invoices"
        join = "customer_id"
        kind = "transaction"
        date = "issued_at"
        [facts.address]
        from = "customers"
        join = "id"
        kind = "profile"
        cardinality = "one"
        fields = { street = "street", town = "city" }
        [facts.warranty]
        from = "warranty_claims"
        join = "email"
        on = "email"
        kind = "warranty_claim"
    "#;

    #[test]
    fn a_good_source_validates() {
        let s = source(GOOD);
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert_eq!(s.facts.len(), 3);
        assert_eq!(s.facts["address"].cardinality, Cardinality::One);
        assert_eq!(s.identity.attributes.columns().len(), 4);
    }

    #[test]
    fn unknown_attribute_is_refused_by_name() {
        let err = toml::from_str::<SourceConfig>(&GOOD.replace("given_name", "gvien_name"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gvien_name"), "{err}");
    }

    #[test]
    fn semantic_problems_name_their_field() {
        let s = source(
            &GOOD
                .replace("kind = \"warranty_claim\"", "kind = \"Warranty Claim\"")
                .replace("on = \"email\"", "on = \"fax\""),
        );
        let fields: Vec<String> = s.validate().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, vec!["facts.warranty.kind", "facts.warranty.on"]);
    }

    #[test]
    fn profile_facts_must_be_single_valued() {
        let s = source(&GOOD.replace("cardinality = \"one\"\n", ""));
        let p = s.validate();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "facts.address.cardinality");
    }
}
