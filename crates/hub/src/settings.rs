use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[hub]` section of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HubSettings {
    /// The hub store: a SQLite file path (relative to the configuration file).
    #[serde(default = "default_store")]
    pub store: String,
    /// The trained match model file (relative to the configuration file),
    /// written by `kith train` and read by every command that links.
    #[serde(default = "default_model")]
    pub model: String,
    /// Region for phone numbers written without a country code (ISO 3166 alpha-2).
    #[serde(default = "default_region")]
    pub default_region: String,
    /// How far back each incremental sync re-reads before the saved cursor.
    #[serde(default = "default_overlap", with = "kith_connect::duration::required")]
    pub overlap: Duration,
    /// For high-water-mark cursors: how many positions back each sync re-reads.
    #[serde(default = "default_overlap_rows")]
    pub overlap_rows: i64,
    /// How often a sync reads sources whole to notice records deleted at the source.
    #[serde(
        default = "default_reconcile",
        with = "kith_connect::duration::required"
    )]
    pub reconcile_every: Duration,
    /// Default time allowed for each source's lookup in a view.
    #[serde(
        default = "default_view_timeout",
        with = "kith_connect::duration::required"
    )]
    pub view_timeout: Duration,
    /// How a view picks the best value of a conflicting attribute.
    #[serde(default)]
    pub survivorship: Survivorship,
    /// Survivorship priority of what customers contributed (sources declare theirs).
    #[serde(default = "default_contribution_priority")]
    pub contribution_priority: i32,
    /// An identifier shared by more records than this links nothing (a shop's
    /// own phone number typed in as every customer's, `test@test.com`).
    #[serde(default = "default_common_limit")]
    pub common_identifier_limit: usize,
    /// Vetoes on pairs only the match model would link (`[[hub.never_link]]`,
    /// see `kith_resolve::rules`). Naming any replaces kith's defaults
    /// ([`kith_resolve::default_never_link`]); an empty list turns them off.
    #[serde(default = "kith_resolve::default_never_link")]
    pub never_link: Vec<kith_resolve::NeverLinkRule>,
    /// Identifiers that link two records by themselves when both hold the
    /// same one (the deterministic always-link rules). Leave `phone` out
    /// where households share a landline: a shared phone then only counts
    /// in the model's score.
    #[serde(default = "default_always_link")]
    pub always_link: Vec<IdentifierKind>,
}

/// A kind of exact identifier (`email:`, `phone:`, `id:` in the identity index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    Email,
    Phone,
    ExternalId,
}

impl IdentifierKind {
    /// The kind of an identifier as the identity index writes it.
    pub fn of(identifier: &str) -> Option<Self> {
        match identifier.split(':').next()? {
            "email" => Some(IdentifierKind::Email),
            "phone" => Some(IdentifierKind::Phone),
            "id" => Some(IdentifierKind::ExternalId),
            _ => None,
        }
    }
}

fn default_always_link() -> Vec<IdentifierKind> {
    vec![
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::ExternalId,
    ]
}

/// How a view chooses the best value of an attribute sources disagree on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Survivorship {
    /// The value changed most recently wins; ties go to source priority.
    #[default]
    MostRecent,
    /// The source with the highest priority wins; ties go to the most recent.
    SourcePriority,
    /// The value most sources agree on wins (a source counts once); ties go to the most recent.
    MostFrequent,
}

impl Survivorship {
    pub fn as_str(self) -> &'static str {
        match self {
            Survivorship::MostRecent => "most_recent",
            Survivorship::SourcePriority => "source_priority",
            Survivorship::MostFrequent => "most_frequent",
        }
    }
}

fn default_store() -> String {
    "kith-hub.db".into()
}
fn default_model() -> String {
    "kith-model.json".into()
}
fn default_region() -> String {
    "GB".into()
}
fn default_overlap() -> Duration {
    Duration::from_secs(600)
}
fn default_overlap_rows() -> i64 {
    100
}
fn default_reconcile() -> Duration {
    Duration::from_secs(86_400)
}
fn default_view_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_contribution_priority() -> i32 {
    100
}
fn default_common_limit() -> usize {
    25
}

impl HubSettings {
    /// Whether two records holding this identifier link by that alone.
    pub fn links_by_itself(&self, identifier: &str) -> bool {
        IdentifierKind::of(identifier).is_some_and(|k| self.always_link.contains(&k))
    }

    /// Values serde accepts but kith cannot work with, by field.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.common_identifier_limit < 2 {
            out.push((
                "common_identifier_limit",
                "must be at least 2, or no two records could ever share an identifier".into(),
            ));
        }
        if self.overlap_rows < 0 {
            out.push(("overlap_rows", "must not be negative".into()));
        }
        if self.view_timeout.is_zero() {
            out.push(("view_timeout", "must be longer than 0s".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for rule in &self.never_link {
            if rule.name.trim().is_empty() {
                out.push(("never_link", "every rule needs a name".into()));
            } else if !names.insert(rule.name.as_str()) {
                out.push(("never_link", format!("two rules are named `{}`", rule.name)));
            }
        }
        if self.reconcile_every.is_zero() {
            out.push(("reconcile_every", "must be longer than 0s".into()));
        }
        out
    }
}

impl Default for HubSettings {
    fn default() -> Self {
        toml_defaults()
    }
}

fn toml_defaults() -> HubSettings {
    HubSettings {
        store: default_store(),
        model: default_model(),
        default_region: default_region(),
        overlap: default_overlap(),
        overlap_rows: default_overlap_rows(),
        reconcile_every: default_reconcile(),
        view_timeout: default_view_timeout(),
        survivorship: Survivorship::default(),
        contribution_priority: default_contribution_priority(),
        common_identifier_limit: default_common_limit(),
        never_link: kith_resolve::default_never_link(),
        always_link: default_always_link(),
    }
}
