//! kith's orchestrator: the [`Hub`] wires sources, the hub store and the
//! linking rules together.
//!
//! - [`Hub::sync`] scans every source into the identity index (incremental,
//!   with an overlap window; a periodic full reconcile notices deletions),
//!   then links records to parties.
//! - [`Hub::view`] gathers one party's facts live from every linked source,
//!   concurrently and with per-source timeouts, and merges them with
//!   provenance, conflicts and survivorship.

mod customer;
mod error;
mod file_index;
mod identifiers;
mod incremental;
mod link;
mod search;
mod settings;
mod sync;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use kith_connect::{ConnectCtx, Connector, SourceConfig};
use kith_model::{PartyId, RecordRef, normalize};
use kith_store::HubStore;

pub use customer::{Audience, SignInRefusal, SignInTarget, mask_identifier};
pub use error::{Error, Result};
pub use file_index::StoreFileIndex;
pub use identifiers::identifiers_of;
pub use link::LinkReport;
pub use search::SearchHit;
pub use settings::{HubSettings, IdentifierKind, Survivorship};
pub use sync::{SourceSyncReport, SyncObserver, SyncOptions, SyncReport};
pub use view::{
    AttributeView, RecordView, RelationshipView, SourceStatus, SourceView, TimelineFilter, View,
    ViewScope,
};

/// The hub: configuration, the store and one connector per source.
pub struct Hub {
    settings: HubSettings,
    store: Arc<dyn HubStore>,
    connectors: Vec<Arc<dyn Connector>>,
    /// Calling code of the default region, for reading national phone numbers.
    calling_code: &'static str,
    /// The trained match model; without one, only exact identifiers link.
    model: Option<kith_resolve::Model>,
    /// One linking run at a time in this process (sync, ingest and review
    /// decisions all relink): two runs at once would each assign ids to the same records.
    /// The incremental resolver's state lives under it.
    link_lock: tokio::sync::Mutex<Option<incremental::Resolver>>,
    /// Keep the resolver's index in memory and link syncs incrementally
    /// ([`Hub::link_incrementally`]).
    incremental: bool,
}

fn calling_code(settings: &HubSettings) -> Result<&'static str> {
    normalize::calling_code(&settings.default_region).ok_or_else(|| {
        Error::Config(format!(
            "hub.default_region {:?} is not a region kith knows the calling code of",
            settings.default_region
        ))
    })
}

impl Hub {
    /// Builds connectors for `sources` over `store`. Sources are not contacted:
    /// one that is down shows up in views and sync reports, it does not stop kith.
    pub fn new(
        settings: HubSettings,
        sources: &[SourceConfig],
        store: Arc<dyn HubStore>,
    ) -> Result<Self> {
        let calling_code = calling_code(&settings)?;
        let ctx = ConnectCtx {
            file_index: Arc::new(StoreFileIndex::new(store.clone())),
        };
        let connectors = sources
            .iter()
            .map(|s| s.connection.build(s, &ctx))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Hub {
            settings,
            store,
            connectors,
            calling_code,
            model: None,
            link_lock: tokio::sync::Mutex::new(None),
            incremental: false,
        })
    }

    /// Builds a hub from ready-made connectors (tests, custom sources).
    pub fn with_connectors(
        settings: HubSettings,
        connectors: Vec<Arc<dyn Connector>>,
        store: Arc<dyn HubStore>,
    ) -> Result<Self> {
        let calling_code = calling_code(&settings)?;
        Ok(Hub {
            settings,
            store,
            connectors,
            calling_code,
            model: None,
            link_lock: tokio::sync::Mutex::new(None),
            incremental: false,
        })
    }

    /// Adds a source built outside configuration (kith's own event log).
    pub fn add_connector(&mut self, connector: Arc<dyn Connector>) -> Result<()> {
        let name = connector.source().name.clone();
        if self.connector(&name).is_some() {
            return Err(Error::Config(format!(
                "a source named {name:?} is already configured; rename it, {name:?} is kith's own"
            )));
        }
        self.connectors.push(connector);
        Ok(())
    }

    /// Links with this trained model from now on (see [`Hub::train`]).
    pub fn set_model(&mut self, model: kith_resolve::Model) {
        self.model = Some(model);
        // Scores change with the model: the next run is a full one.
        *self.link_lock.get_mut() = None;
    }

    /// Keeps the resolver's index in memory so that a sync links only what
    /// changed ([`Hub::link_changes`]) — for a long-running process
    /// (`kith serve`); a one-shot command links everything, which costs the
    /// same as building the index. Costs memory (~600 bytes a record).
    pub fn link_incrementally(&mut self, on: bool) {
        self.incremental = on;
        if !on {
            *self.link_lock.get_mut() = None;
        }
    }

    pub fn model(&self) -> Option<&kith_resolve::Model> {
        self.model.as_ref()
    }

    fn normalize_options(&self) -> kith_resolve::NormalizeOptions {
        kith_resolve::NormalizeOptions {
            default_region: self.settings.default_region.clone(),
            ..Default::default()
        }
    }

    /// Comparison-ready forms of index records, in the same order.
    fn prepare(&self, records: &[kith_store::StoredRecord]) -> Vec<kith_resolve::Prepared> {
        let opts = self.normalize_options();
        records
            .iter()
            .map(|r| kith_resolve::Prepared::new(&r.record.attrs, &opts))
            .collect()
    }

    /// Trains a match model on the identity index (u by seeded random
    /// sampling, m by expectation–maximisation per blocking rule).
    pub async fn train(&self, options: &kith_resolve::TrainOptions) -> Result<kith_resolve::Model> {
        let records = self.store.records().await?;
        let prepared = self.prepare(&records);
        Ok(kith_resolve::Model::train(&prepared, options))
    }

    /// Every comparison between two records, linked or not, with its weight.
    pub async fn explain(&self, a: &RecordRef, b: &RecordRef) -> Result<kith_resolve::Explanation> {
        let mut found = Vec::new();
        for r in [a, b] {
            let rec =
                self.store.record(r).await?.ok_or_else(|| {
                    Error::NotFound(format!("no record {r} in the identity index"))
                })?;
            found.push(rec);
        }
        let prepared = self.prepare(&found);
        let Some(model) = &self.model else {
            // Without a model nothing links on scores, so no rule vetoes either.
            let prior = kith_resolve::Model::prior();
            return Ok(kith_resolve::explain(&prior, &prepared[0], &prepared[1]));
        };
        let mut e = kith_resolve::explain(model, &prepared[0], &prepared[1]);
        e.never_link = self
            .never_link(&prepared[0], &prepared[1])
            .map(str::to_string);
        Ok(e)
    }

    pub fn store(&self) -> &Arc<dyn HubStore> {
        &self.store
    }

    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    pub fn connectors(&self) -> &[Arc<dyn Connector>] {
        &self.connectors
    }

    fn connector(&self, source: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.iter().find(|c| c.source().name == source)
    }

    /// Finds the party a person means: a party id, a `source:key`, an e-mail
    /// address or a phone number. An identifier held by several parties is
    /// an error listing them, never a guess.
    pub async fn find_party(&self, query: &str) -> Result<PartyId> {
        let q = query.trim();
        if let Some(id) = PartyId::parse(q) {
            return match self.store.party(&id).await? {
                Some(p) => Ok(p.id),
                None => Err(Error::NotFound(format!("no party has id {q}"))),
            };
        }
        let records: Vec<RecordRef> = if let Some(email) = normalize::email(q) {
            self.store
                .records_with_identifier(&format!("email:{email}"))
                .await?
        } else if let Some(phone) = normalize::phone(q, self.calling_code).filter(|_| {
            q.chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        }) {
            self.store
                .records_with_identifier(&format!("phone:{phone}"))
                .await?
        } else if let Some(r) = RecordRef::parse(q).filter(|r| self.connector(&r.source).is_some())
        {
            vec![r]
        } else {
            return Err(Error::NotFound(format!(
                "{q:?} is not a party id, an e-mail address, a phone number or a source:key"
            )));
        };
        let mut parties: BTreeMap<PartyId, ()> = BTreeMap::new();
        for r in &records {
            if let Some(link) = self.store.link(r).await?
                && let Some(p) = self.store.party(&link.party).await?
            {
                parties.insert(p.id, ());
            }
        }
        let parties: Vec<PartyId> = parties.into_keys().collect();
        match parties.len() {
            0 => Err(Error::NotFound(format!("no party is known by {q}"))),
            1 => Ok(parties.into_iter().next().expect("one")),
            _ => Err(Error::Ambiguous {
                query: q.to_string(),
                parties: parties.iter().map(ToString::to_string).collect(),
            }),
        }
    }
}
