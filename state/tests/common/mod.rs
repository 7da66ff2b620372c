//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use basalt_state::{StateStore, StoreConfig};

/// A store with a small cache, suitable for tests.
pub fn open(path: &Path, keep_recent: u64) -> StateStore {
    let mut config = StoreConfig::default();
    config.storage.block_cache_bytes = 8 << 20;
    config.storage.write_buffer_bytes = 4 << 20;
    config.keep_recent = keep_recent;
    StateStore::open(path, config).expect("open store")
}
