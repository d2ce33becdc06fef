//! MySQL and MariaDB sources.

use std::sync::Arc;

use crate::server_sql::SqlServerConfig;
use crate::{Connector, Error, Result, SourceConfig};

pub(crate) fn build(
    source: &SourceConfig,
    _config: &SqlServerConfig,
) -> Result<Arc<dyn Connector>> {
    Err(Error::Config {
        source_name: source.name.clone(),
        message: "the mysql connector is being written".into(),
    })
}
