//! Storage tuning knobs, with bounded defaults.

/// RocksDB sizing. Every field is a bound; defaults suit a validator on a 2-core, 24 GiB machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// LRU block cache shared by all column families, index and filter blocks included.
    pub block_cache_bytes: usize,
    /// Upper bound on SST files kept open.
    pub max_open_files: i32,
    /// Memtable size per column family before it is flushed.
    pub write_buffer_bytes: usize,
    /// Bound on RocksDB's own write-ahead log before it forces flushes.
    pub max_total_wal_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            block_cache_bytes: 256 << 20,
            max_open_files: 512,
            write_buffer_bytes: 32 << 20,
            max_total_wal_bytes: 256 << 20,
        }
    }
}
