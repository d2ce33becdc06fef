use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kith_connect::FileIndexStore;
use kith_model::FileStamp;
use kith_store::HubStore;

/// File sources keep their byte-offset indexes in the hub store.
pub struct StoreFileIndex {
    store: Arc<dyn HubStore>,
}

impl StoreFileIndex {
    pub fn new(store: Arc<dyn HubStore>) -> Self {
        StoreFileIndex { store }
    }
}

#[async_trait]
impl FileIndexStore for StoreFileIndex {
    async fn stamp(&self, source: &str, index: &str) -> Result<Option<FileStamp>, String> {
        self.store
            .file_index_stamp(source, index)
            .await
            .map_err(|e| e.to_string())
    }

    async fn offsets(
        &self,
        source: &str,
        index: &str,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u64>>, String> {
        self.store
            .file_index_offsets(source, index, keys)
            .await
            .map_err(|e| e.to_string())
    }

    async fn replace(
        &self,
        source: &str,
        index: &str,
        stamp: FileStamp,
        entries: &[(String, u64)],
    ) -> Result<(), String> {
        self.store
            .replace_file_index(source, index, stamp, entries)
            .await
            .map_err(|e| e.to_string())
    }
}
