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
        let hub = Hub::new(config.hub.clone(), &config.sources, store)?;
        Ok(App { config, hub })
    }
}
