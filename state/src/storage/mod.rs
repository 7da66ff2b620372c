//! The one RocksDB instance of a node and its column families.
//!
//! # Layout
//!
//! | column family | key | value |
//! |---|---|---|
//! | `merkle_nodes` | version (u64 BE) ‖ depth ‖ path bits (⌈depth/8⌉ bytes) | inner node: two child slots (empty / leaf: key hash, hash, version / inner: hash, version), see [`crate::merkle::node`] |
//! | `merkle_values` | blake2s(key) ‖ version (u64 BE) | `0x01 ‖ value` or `0x00` (deleted at that version) |
//! | `merkle_preimages` | blake2s(key) | key (needed to put keys into ICS-23 proofs) |
//! | `merkle_stale` | stale-since version (u64 BE) ‖ `n` ‖ node key, or ‖ `v` ‖ value key | empty (pruning index) |
//! | `blocks` | height (u64 BE) | opaque block bytes |
//! | `blocks` | `hash/` ‖ block hash | height (u64 BE): the block-hash index ([`crate::index`]) |
//! | `commits` | height (u64 BE) | opaque commit bytes |
//! | `tx_index` | tag byte ‖ … | tx locations, block records, tx results, event index (see [`crate::index`]) |
//! | `consensus_wal` | sequence (u64 BE) | opaque WAL record (reserved) |
//! | `metadata` | ASCII name | small fixed-size records (the state format marker `format`, latest height, earliest retained version, block base height, each version's root hash `root/` and root slot `tree/`) |
//!
//! Big-endian integers make RocksDB's byte order equal numeric order, so "latest value at or before
//! version v" is one `seek_for_prev`, and pruning walks the stale index oldest-first.
//!
//! # Options, and why
//!
//! - **No compression.** Merkle nodes and values are mostly hashes (incompressible), and leaving the
//!   codecs out keeps the C++ build lean (the workspace builds `rocksdb` with no codec features).
//! - **Bounded block cache** shared by every column family ([`StorageConfig::block_cache_bytes`], default
//!   256 MiB), with index and filter blocks charged to it, so memory does not grow with the data.
//! - **Bloom filters** (10 bits/key) on point-lookup families: Merkle node reads are the hot path.
//!   `merkle_values` has a 32-byte prefix extractor (the key hash) with prefix Bloom filters, in its
//!   SST files and memtable, so a key's "value at version v" seek skips files without that key.
//! - **`max_open_files` bounded** (default 512) so the node never exhausts file descriptors.
//! - **Synced writes** ([`Storage::write_synced`]) for everything that acknowledges a commit: the block's
//!   effects land in one `WriteBatch` with `sync = true`, so after a crash the database is at height h
//!   or h+1, never between. Pruning deletes use unsynced writes: losing them only delays reclamation.
//! - **`paranoid_checks`** on, so RocksDB verifies checksums when it opens files and reports the file.

mod config;

pub use config::StorageConfig;

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBWithThreadMode,
    MultiThreaded, Options, WriteBatch, WriteOptions,
};
use std::sync::Arc;

use crate::error::{Result, StateError};

/// The column families of the node's database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cf {
    /// Inner nodes of the Merkle tree.
    MerkleNodes,
    /// Values by key hash and version.
    MerkleValues,
    /// Key preimages by key hash.
    MerklePreimages,
    /// Stale-node index used by pruning.
    MerkleStale,
    /// Blocks by height.
    Blocks,
    /// Commits by height.
    Commits,
    /// Transaction index.
    TxIndex,
    /// Consensus write-ahead log.
    ConsensusWal,
    /// Small metadata records.
    Metadata,
}

impl Cf {
    /// Every column family, in creation order.
    pub const ALL: [Cf; 9] = [
        Cf::MerkleNodes,
        Cf::MerkleValues,
        Cf::MerklePreimages,
        Cf::MerkleStale,
        Cf::Blocks,
        Cf::Commits,
        Cf::TxIndex,
        Cf::ConsensusWal,
        Cf::Metadata,
    ];

    /// The column family's name on disk.
    pub const fn name(self) -> &'static str {
        match self {
            Cf::MerkleNodes => "merkle_nodes",
            Cf::MerkleValues => "merkle_values",
            Cf::MerklePreimages => "merkle_preimages",
            Cf::MerkleStale => "merkle_stale",
            Cf::Blocks => "blocks",
            Cf::Commits => "commits",
            Cf::TxIndex => "tx_index",
            Cf::ConsensusWal => "consensus_wal",
            Cf::Metadata => "metadata",
        }
    }

    /// Whether lookups in this family are point reads (they get a Bloom filter).
    const fn point_lookups(self) -> bool {
        matches!(
            self,
            Cf::MerkleNodes
                | Cf::MerklePreimages
                | Cf::TxIndex
                | Cf::Blocks
                | Cf::Commits
                | Cf::Metadata
        )
    }
}

type Db = DBWithThreadMode<MultiThreaded>;

/// A raw key/value pair read from the database.
pub type RawEntry = (Box<[u8]>, Box<[u8]>);

/// The node's RocksDB instance.
pub struct Storage {
    db: Db,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("path", &self.db.path())
            .finish()
    }
}

impl Storage {
    /// Opens (creating if missing) the database at `path` with every column family.
    pub fn open(path: &Path, config: &StorageConfig) -> Result<Self> {
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(config.max_open_files);
        db_opts.set_paranoid_checks(true);
        db_opts.set_compression_type(rocksdb::DBCompressionType::None);
        db_opts.set_keep_log_file_num(4);
        db_opts.set_max_total_wal_size(config.max_total_wal_bytes);
        db_opts.increase_parallelism(2);

        let descriptors = Cf::ALL.map(|cf| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            if cf.point_lookups() || cf == Cf::MerkleValues {
                table.set_bloom_filter(10.0, false);
            }
            let mut opts = Options::default();
            if cf == Cf::MerkleValues {
                // Every lookup is for one key hash (the first 32 bytes): "newest version at or before
                // v" is a seek within that prefix, which the prefix Bloom filter then serves without
                // touching every level.
                opts.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(32));
                opts.set_memtable_prefix_bloom_ratio(0.1);
            }
            opts.set_compression_type(rocksdb::DBCompressionType::None);
            opts.set_block_based_table_factory(&table);
            opts.set_write_buffer_size(config.write_buffer_bytes);
            ColumnFamilyDescriptor::new(cf.name(), opts)
        });

        let db = Db::open_cf_descriptors(&db_opts, path, descriptors).map_err(|source| {
            StateError::Open {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(Self { db })
    }

    /// The handle of a column family.
    pub(crate) fn cf(&self, cf: Cf) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StateError::Missing {
                cf: cf.name(),
                key_hex: String::new(),
                what: "column family handle",
            })
    }

    /// Point read.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let handle = self.cf(cf)?;
        self.db
            .get_cf(&handle, key)
            .map_err(|source| StateError::Db {
                op: "get",
                cf: cf.name(),
                source,
            })
    }

    /// The last entry whose key is `<= key` and starts with `prefix`, if any.
    pub fn seek_for_prev(&self, cf: Cf, key: &[u8], prefix: &[u8]) -> Result<Option<RawEntry>> {
        let handle = self.cf(cf)?;
        let mut it = self.db.raw_iterator_cf(&handle);
        it.seek_for_prev(key);
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(prefix) => Some((k.into(), v.into())),
            _ => None,
        };
        it.status().map_err(|source| StateError::Db {
            op: "seek_for_prev",
            cf: cf.name(),
            source,
        })?;
        Ok(found)
    }

    /// Up to `limit` entries with keys in `[from, to)`, in key order.
    pub fn scan(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<RawEntry>> {
        let handle = self.cf(cf)?;
        let mut it = self.db.raw_iterator_cf(&handle);
        it.seek(from);
        let mut out = Vec::new();
        while out.len() < limit {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k < to => out.push((k.into(), v.into())),
                _ => break,
            }
            it.next();
        }
        it.status().map_err(|source| StateError::Db {
            op: "scan",
            cf: cf.name(),
            source,
        })?;
        Ok(out)
    }

    /// How many keys lie in `[from, to)`, counting at most `limit` (nothing is copied out).
    pub fn count(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<usize> {
        let handle = self.cf(cf)?;
        let mut it = self.db.raw_iterator_cf(&handle);
        it.seek(from);
        let mut n = 0;
        while n < limit && it.key().is_some_and(|k| k < to) {
            n += 1;
            it.next();
        }
        it.status().map_err(|source| StateError::Db {
            op: "count",
            cf: cf.name(),
            source,
        })?;
        Ok(n)
    }

    /// The keys of `[from, to)` after skipping `skip` of them, at most `take`, in ascending key order
    /// (descending if `rev`). Skipped keys are stepped over, not copied.
    pub fn keys_page(
        &self,
        cf: Cf,
        (from, to): (&[u8], &[u8]),
        skip: usize,
        take: usize,
        rev: bool,
    ) -> Result<Vec<Box<[u8]>>> {
        let handle = self.cf(cf)?;
        let mut it = self.db.raw_iterator_cf(&handle);
        if rev {
            it.seek_for_prev(to);
            if it.key() == Some(to) {
                it.prev(); // `to` is exclusive.
            }
        } else {
            it.seek(from);
        }
        let inside = |k: &[u8]| k >= from && k < to;
        let mut skipped = 0;
        let mut out = Vec::new();
        while out.len() < take {
            match it.key() {
                Some(k) if inside(k) => {
                    if skipped < skip {
                        skipped += 1;
                    } else {
                        out.push(k.into());
                    }
                }
                _ => break,
            }
            if rev {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().map_err(|source| StateError::Db {
            op: "keys_page",
            cf: cf.name(),
            source,
        })?;
        Ok(out)
    }

    /// Up to `limit` entries with keys in `[from, to)`, in descending key order.
    pub fn scan_rev(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<RawEntry>> {
        let handle = self.cf(cf)?;
        let mut it = self.db.raw_iterator_cf(&handle);
        it.seek_for_prev(to);
        if it.key() == Some(to) {
            it.prev(); // `to` is exclusive.
        }
        let mut out = Vec::new();
        while out.len() < limit {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k >= from => out.push((k.into(), v.into())),
                _ => break,
            }
            it.prev();
        }
        it.status().map_err(|source| StateError::Db {
            op: "scan_rev",
            cf: cf.name(),
            source,
        })?;
        Ok(out)
    }

    /// Writes `batch` atomically and fsyncs the WAL before returning: use for anything a commit
    /// acknowledges.
    pub fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .write_opt(batch, &opts)
            .map_err(|source| StateError::Db {
                op: "write (sync)",
                cf: "*",
                source,
            })
    }

    /// Writes `batch` atomically without fsync (still crash-consistent, may be lost on power failure):
    /// for work that is safe to redo, like pruning.
    pub fn write_unsynced(&self, batch: WriteBatch) -> Result<()> {
        self.db.write(batch).map_err(|source| StateError::Db {
            op: "write",
            cf: "*",
            source,
        })
    }

    /// Asks RocksDB to compact a key range so deleted data is reclaimed on disk.
    pub fn compact_range(&self, cf: Cf, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<()> {
        let handle = self.cf(cf)?;
        self.db.compact_range_cf(&handle, from, to);
        Ok(())
    }

    /// Adds a put to `batch` in column family `cf`.
    pub(crate) fn batch_put(
        &self,
        batch: &mut WriteBatch,
        cf: Cf,
        key: &[u8],
        value: &[u8],
    ) -> Result<()> {
        let handle = self.cf(cf)?;
        batch.put_cf(&handle, key, value);
        Ok(())
    }

    /// Adds a delete to `batch` in column family `cf`.
    pub(crate) fn batch_delete(&self, batch: &mut WriteBatch, cf: Cf, key: &[u8]) -> Result<()> {
        let handle = self.cf(cf)?;
        batch.delete_cf(&handle, key);
        Ok(())
    }

    /// Flushes memtables to SST files (used by tests that measure disk use).
    pub fn flush(&self) -> Result<()> {
        for cf in Cf::ALL {
            let handle = self.cf(cf)?;
            self.db.flush_cf(&handle).map_err(|source| StateError::Db {
                op: "flush",
                cf: cf.name(),
                source,
            })?;
        }
        Ok(())
    }
}
