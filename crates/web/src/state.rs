use std::sync::Arc;

use kith_hub::Hub;

use crate::{CodeSender, ServerSettings};

/// What every handler gets: the hub, the server's settings and the sender of
/// one-time codes. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub settings: Arc<ServerSettings>,
    pub sender: Arc<dyn CodeSender>,
}

impl AppState {
    pub fn new(hub: Arc<Hub>, settings: ServerSettings, sender: Arc<dyn CodeSender>) -> Self {
        AppState {
            hub,
            settings: Arc::new(settings),
            sender,
        }
    }

    pub fn store(&self) -> &Arc<dyn kith_store::HubStore> {
        self.hub.store()
    }
}
