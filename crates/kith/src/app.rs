//! Opening what a command needs: the configuration, the hub store, the hub.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use kith_hub::Hub;
use kith_store::{HubStore, SqliteStore};

use crate::config::Config;

/// A configured, running kith: its configuration and hub.
pub struct App {
    pub config: Config,
    pub hub: Hub,
    /// kith's own event log (the ingest API's), when `[ingest]` is enabled.
    pub events: Option<Arc<kith_ingest::EventLog>>,
}

impl App {
    /// Loads the configuration, opens (and migrates) the hub store, builds the hub.
    pub async fn open(config_path: &Path) -> Result<App> {
        let config = Config::load(config_path)?;
        Self::from_config(config).await
    }

    pub async fn from_config(config: Config) -> Result<App> {
        if let Some(dir) = config.store_path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            anyhow::bail!(
                "hub.store: the folder of {} does not exist",
                config.store_path.display()
            );
        }
        let store: Arc<dyn HubStore> = Arc::new(
            SqliteStore::open(&config.store_path)
                .await
                .with_context(|| {
                    format!("opening the hub store named in {}", config.path.display())
                })?,
        );
        let mut hub = Hub::new(config.hub.clone(), &config.sources, store)?;
        if let Some(model) = load_model(&config.model_path)? {
            hub.set_model(model);
        }
        let events = if config.ingest.enabled {
            let log = Arc::new(
                kith_ingest::EventLog::open(&config.ingest.log)
                    .await
                    .with_context(|| {
                        format!("opening the event log named in {}", config.path.display())
                    })?,
            );
            hub.add_connector(Arc::new(kith_ingest::IngestSource::new(log.clone())))?;
            Some(log)
        } else {
            None
        };
        Ok(App {
            config,
            hub,
            events,
        })
    }

    /// Writes a trained model where the configuration says, and links with it from now on.
    pub fn save_model(&mut self, model: kith_resolve::Model) -> Result<()> {
        std::fs::write(&self.config.model_path, model.to_json()).with_context(|| {
            format!("writing the model to {}", self.config.model_path.display())
        })?;
        self.hub.set_model(model);
        Ok(())
    }
}

/// The model file, if `kith train` wrote one.
fn load_model(path: &Path) -> Result<Option<kith_resolve::Model>> {
    let json = match std::fs::read_to_string(path) {
        Ok(j) => j,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading the model {}", path.display())),
    };
    kith_resolve::Model::from_json(&json)
        .map(Some)
        .with_context(|| {
            format!(
                "the model {} cannot be used; run `kith train` again",
                path.display()
            )
        })
}

impl App {
    /// True when a trained model is loaded.
    pub fn has_model(&self) -> bool {
        self.hub.model().is_some()
    }
}
