//! HTTP JSON APIs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Connector, Error, Result, SourceConfig};

/// Connection to an HTTP JSON API. (Fields are settled by the connector's author.)
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `https://api.example.com/v1`; `from` in the mapping is a path under it.
    pub base_url: String,
}

pub(crate) fn build(source: &SourceConfig, _config: &HttpConfig) -> Result<Arc<dyn Connector>> {
    Err(Error::Config {
        source_name: source.name.clone(),
        message: "the http connector is being written".into(),
    })
}
