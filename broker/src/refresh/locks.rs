//! The per-connection refresh locks of this process: the first of the two layers of the single
//! refresh in flight (`refresh/mod.rs` has the whole story).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use crate::ids::SessionHash;

type Key = (SessionHash, String);

/// Per-connection refresh locks of this process.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    map: Mutex<HashMap<Key, Weak<tokio::sync::Mutex<()>>>>,
}

impl Locks {
    pub(super) fn get(&self, key: Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        // Forget locks nobody holds any more, so the map stays as small as the traffic.
        map.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, Arc::downgrade(&lock));
        lock
    }
}
