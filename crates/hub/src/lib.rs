//! kith's orchestrator: the [`Hub`] wires sources, the hub store and the
//! linking rules together.
//!
//! - [`Hub::sync`] scans every source into the identity index (incremental,
//!   with an overlap window; a periodic full reconcile notices deletions),
//!   then links records to parties.
//! - [`Hub::view`] gathers one party's facts live from every linked source,
//!   concurrently and with per-source timeouts, and merges them with
//!   provenance, conflicts and survivorship.

mod error;
mod file_index;
mod identifiers;
mod link;
mod settings;
mod sync;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use kith_connect::{ConnectCtx, Connector, SourceConfig};
use kith_model::{PartyId, RecordRef, normalize};
use kith_store::HubStore;

pub use error::{Error, Result};
pub use file_index::StoreFileIndex;
pub use identifiers::identifiers_of;
pub use link::LinkReport;
pub use settings::{HubSettings, Survivorship};
pub use sync::{SourceSyncReport, SyncObserver, SyncOptions, SyncReport};
pub use view::{AttributeView, RecordView, RelationshipView, SourceStatus, SourceView, View};

/// The hub: configuration, the store and one connector per source.
pub struct Hub {
    settings: HubSettings,
    store: Arc<dyn HubStore>,
    connectors: Vec<Arc<dyn Connector>>,
    /// Calling code of the default region, for reading national phone numbers.
    calling_code: &'static str,
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
        })
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
