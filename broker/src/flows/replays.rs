//! The completions in flight in this process: a replayed `POST /v1/flows/complete` (React
//! StrictMode, a double click, a second tab) waits for the first one through [`Completions`]
//! and answers the session it made (a replay that reaches another replica polls the store).

use std::{collections::HashMap, sync::Mutex};

use tokio::sync::watch;

use crate::ids::{FlowKey, SessionHash};

/// Completions in progress in this process, so a replay (React StrictMode, a double click)
/// waits for the first one instead of failing.
#[derive(Debug, Default)]
pub(crate) struct Completions {
    map: Mutex<HashMap<FlowKey, watch::Receiver<Option<SessionHash>>>>,
}

impl Completions {
    pub(super) fn start(&self, key: FlowKey) -> watch::Sender<Option<SessionHash>> {
        let (tx, rx) = watch::channel(None);
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, rx);
        tx
    }

    pub(super) fn waiter(&self, key: &FlowKey) -> Option<watch::Receiver<Option<SessionHash>>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub(super) fn finish(&self, key: &FlowKey) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
