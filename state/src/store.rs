//! [`StateStore`]: the versioned Merkle state, and the atomic per-block commit.
//!
//! One version per height. A commit puts the tree's new nodes and values, the stale-node index, the new
//! root, the opaque block and commit bytes, the block's indexes (block hash, transactions, results,
//! events: [`crate::index`]) and the "height h is done" marker (`latest_version`) into one
//! `WriteBatch` written with `sync = true`: after a crash the store is at h or h+1, never between.
//!
//! The Merkle update can be computed ahead of the commit ([`StateStore::prepare_state`], used by the
//! application's `finalize_block` to announce the app hash) and then committed as is
//! ([`BlockCommit::prepared`]), so each block's tree update is computed once. A prepared update records
//! the version it was built on; the commit refuses it on any other.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rocksdb::WriteBatch;

use crate::error::{Result, StateError};
use crate::index::{self, CommittedTx};
use crate::merkle::cache::{LeafCache, LeafRecord, NodeCache};
use crate::merkle::codec::{self, hex, StaleRecord};
use crate::merkle::hash::{key_hash, value_hash, KeyHash};
use crate::merkle::node::{Child, NodeKey};
use crate::merkle::proof::{self, LeafData};
use crate::merkle::reader::{self, DbNodes, LeafRecords};
use crate::merkle::tree::{self, LeafWrite, NodeSource, TreeUpdate};
use crate::merkle::{RESERVED_PREFIX, SENTINEL_KEYS, SENTINEL_VALUE};
use crate::meta;
use crate::storage::{Cf, Storage, StorageConfig};

/// A 32-byte BLAKE2s-256 Merkle root (the application hash).
pub type RootHash = [u8; 32];

/// One write of a block: `(key, Some(value))` sets, `(key, None)` deletes.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// Default [`StoreConfig::node_cache_entries`]. A generation rotates at half the capacity, so the
/// whole live tree of up to 2M keys (one inner node per key) stays cached: with less, nodes off the
/// recently written paths age out and a 10k-key update at 1M keys reads ~2x more from disk
/// (BENCHMARKS.md). Memory grows with the tree, not up front: ~420 MiB at 1M keys (entries of ~200
/// bytes in a power-of-two table), bounded by about 1.7 GiB past 2M keys.
pub const DEFAULT_NODE_CACHE_ENTRIES: usize = 4 << 20;

/// Default [`StoreConfig::leaf_cache_entries`]: like the node cache, the latest records of up to 2M
/// keys (~50 bytes per entry plus the key and value on the heap).
pub const DEFAULT_LEAF_CACHE_ENTRIES: usize = 4 << 20;

/// Configuration of a [`StateStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// RocksDB sizing.
    pub storage: StorageConfig,
    /// Versions to keep queryable (the latest N); 0 keeps every version (archive node).
    pub keep_recent: u64,
    /// Upper bound on stale nodes deleted by one [`StateStore::prune`] call, and (approximately, whole
    /// heights at a time) on records deleted by one [`StateStore::prune_blocks`] call: pruning is
    /// incremental.
    pub prune_batch_limit: usize,
    /// Largest accepted key.
    pub max_key_bytes: usize,
    /// Largest accepted value.
    pub max_value_bytes: usize,
    /// Inner nodes kept decoded in memory (about 200 bytes each; 0 disables the cache). Updates and
    /// proofs read one node per tree level, so the cache should hold twice the live tree's inner
    /// nodes (about one per key; eviction rotates generations at half the capacity).
    pub node_cache_entries: usize,
    /// Keys and values of leaves kept in memory (about 100 bytes plus the key and value each; 0
    /// disables the cache): a proof or a read at the latest version then touches no disk.
    pub leaf_cache_entries: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            keep_recent: 0,
            prune_batch_limit: 50_000,
            max_key_bytes: 1024,
            max_value_bytes: 4 << 20,
            node_cache_entries: DEFAULT_NODE_CACHE_ENTRIES,
            leaf_cache_entries: DEFAULT_LEAF_CACHE_ENTRIES,
        }
    }
}

/// Everything one block commits, written atomically by [`StateStore::commit_block`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockCommit {
    /// Height of the block; also the state version it produces.
    pub height: u64,
    /// The application's writes, in any order; the last write of a key wins. Must be empty when
    /// `prepared` is set (the writes are inside it).
    pub writes: Vec<Write>,
    /// Encoded block (opaque to this crate).
    pub block: Vec<u8>,
    /// Encoded commit (signatures) for the block (opaque to this crate).
    pub commit: Vec<u8>,
    /// The block's id hash (`Block::id().hash`), indexed for [`StateStore::block_height_by_hash`].
    pub block_hash: Option<[u8; 32]>,
    /// The block's transactions with their results, in block order, indexed for [`StateStore::tx`],
    /// [`StateStore::block_results`] and [`StateStore::search_txs`].
    pub txs: Vec<CommittedTx>,
    /// Keys of the evidence the block commits (opaque here), indexed for
    /// [`StateStore::evidence_height`] so the same offence is never committed twice, across restarts.
    pub evidence: Vec<[u8; 32]>,
    /// The state update computed ahead by [`StateStore::prepare_state`] (then `writes` is empty), so
    /// the Merkle update is computed once per block.
    pub prepared: Option<PreparedState>,
    /// The block's validator-set changes, encoded (opaque here; empty: none), kept for
    /// [`StateStore::validator_updates`] with the block, in the same synced write, and never pruned: the
    /// validator set of any height is rebuilt from them.
    pub validator_updates: Vec<u8>,
}

/// A version's Merkle update computed without writing anything ([`StateStore::prepare_state`]); commit
/// it with [`BlockCommit::prepared`]. Only valid on top of the version it was computed from: the
/// commit refuses it otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedState {
    /// The version it builds on (`None`: the first version).
    base: Option<u64>,
    /// The version it produces.
    version: u64,
    /// The root it produces.
    root: RootHash,
    /// Keys whose value this version sets (deleted keys are in `update.deleted`).
    upserts: Vec<Upsert>,
    /// The tree's new nodes and stale records.
    update: TreeUpdate,
}

impl PreparedState {
    /// The root (app hash) the version will have.
    pub fn root(&self) -> RootHash {
        self.root
    }

    /// The version it produces.
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// One key a version sets.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Upsert {
    key_hash: KeyHash,
    key: Vec<u8>,
    value: Vec<u8>,
    /// Absent before: its preimage is written (a key's preimage never changes).
    new_key: bool,
}

/// What one [`StateStore::prune`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Oldest version still queryable after the call.
    pub earliest_version: Option<u64>,
    /// Stale tree nodes deleted.
    pub nodes_deleted: usize,
    /// Superseded value records deleted.
    pub values_deleted: usize,
    /// Whether stale data remains below the horizon (call again).
    pub more: bool,
}

/// The node's versioned, authenticated state over RocksDB.
#[derive(Debug)]
pub struct StateStore {
    storage: Storage,
    config: StoreConfig,
    /// Committed inner nodes, decoded.
    cache: NodeCache,
    /// Keys and values behind committed leaves.
    leaves: LeafCache,
    /// What this store last made durable about its versions, so a read checks availability and
    /// finds the latest root without metadata reads. `None` until the first version.
    committed: Mutex<Option<Committed>>,
    /// Serialises commits and pruning: a version is computed from the previous one, so one writer.
    writer: Mutex<()>,
    /// Tests: the next commit's write fails (RocksDB write errors cannot be provoked on demand).
    #[cfg(test)]
    fail_next_write: std::sync::atomic::AtomicBool,
}

/// The queryable versions and the latest root slot, as last written.
#[derive(Clone, Copy, Debug)]
struct Committed {
    earliest: u64,
    latest: u64,
    /// The root slot of `latest` (immutable once committed, like the nodes).
    latest_root: Child,
}

/// A block's writes, deduplicated and ordered by key hash: key hash → (key, value or deletion).
type PreparedWrites = BTreeMap<KeyHash, (Vec<u8>, Option<Vec<u8>>)>;

impl StateStore {
    /// Opens the store at `path` and checks that the latest committed root is intact.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Self> {
        let storage = Storage::open(path, &config.storage)?;
        let store = Self {
            storage,
            cache: NodeCache::new(config.node_cache_entries),
            leaves: LeafCache::new(config.leaf_cache_entries),
            committed: Mutex::new(None),
            config,
            writer: Mutex::new(()),
            #[cfg(test)]
            fail_next_write: std::sync::atomic::AtomicBool::new(false),
        };
        store.check_format(path)?;
        store.check_latest_root()?;
        if let (Some(earliest), Some(latest)) = (store.earliest_version()?, store.latest_version()?)
        {
            let latest_root = store.tree_root(latest)?;
            store.set_committed(Committed {
                earliest,
                latest,
                latest_root,
            });
        }
        Ok(store)
    }

    /// The underlying database (for the block store and WAL, which share it).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The newest committed version (height), if any.
    pub fn latest_version(&self) -> Result<Option<u64>> {
        meta::get_u64(&self.storage, meta::LATEST_VERSION)
    }

    /// The oldest version still queryable, if any.
    pub fn earliest_version(&self) -> Result<Option<u64>> {
        match meta::get_u64(&self.storage, meta::EARLIEST_VERSION)? {
            Some(v) => Ok(Some(v)),
            None => Ok(None),
        }
    }

    /// The root of `version`.
    pub fn root(&self, version: u64) -> Result<RootHash> {
        self.check_available(version)?;
        self.stored_root(version)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::Metadata.name(),
                key_hex: hex(&meta::root_key(version)),
                what: "root of a committed version",
            })
    }

    /// The value of `key` at `version`.
    pub fn get(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>> {
        self.check_available(version)?;
        let hash = key_hash(key);
        match self.latest_tree_root(version) {
            // The latest tree is in memory: walk it, and read the leaf's own record (cached).
            Some(root) => match proof::find_leaf(&self.nodes(), root, &hash)? {
                Some(leaf) => Ok(Some(self.leaf_records().record(&leaf)?.value.clone())),
                None => Ok(None),
            },
            None => reader::value_at(&self.storage, &hash, version),
        }
    }

    /// The value of `key` at `version` with an ICS-23 proof of it (existence) or of its absence
    /// (non-existence), verifiable against [`StateStore::root`] under [`crate::proof_spec`].
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: u64,
    ) -> Result<(Option<Vec<u8>>, ics23::CommitmentProof)> {
        // The empty key would hash like any other but ics23 refuses to verify it: refuse early.
        if key.is_empty() {
            return Err(StateError::InvalidKey {
                key_hex: String::new(),
                reason: "empty key",
            });
        }
        self.check_available(version)?;
        let root = self.tree_root(version)?;
        let data = self.leaf_records();
        proof::prove(&self.nodes(), &data, root, key)
    }

    /// Applies one version's writes with no block attached; same atomicity as
    /// [`StateStore::commit_block`].
    pub fn apply_batch(&self, version: u64, writes: Vec<Write>) -> Result<RootHash> {
        self.commit_block(BlockCommit {
            height: version,
            writes,
            ..BlockCommit::default()
        })
    }

    /// Computes `version`'s Merkle update from `writes` on top of the latest version, writing nothing.
    /// `version` must be the next one. Pass the result in [`BlockCommit::prepared`].
    pub fn prepare_state(&self, version: u64, writes: Vec<Write>) -> Result<PreparedState> {
        let latest = self.latest_version()?;
        self.compute_state(latest, version, writes)
    }

    fn compute_state(
        &self,
        latest: Option<u64>,
        version: u64,
        writes: Vec<Write>,
    ) -> Result<PreparedState> {
        if let Some(latest) = latest {
            let expected = latest.saturating_add(1);
            if version != expected {
                return Err(StateError::NonContiguousVersion { version, expected });
            }
        }
        let mut kvs = self.prepare_writes(writes, latest.is_none())?;
        let leaf_writes: Vec<LeafWrite> = kvs
            .iter()
            .map(|(hash, (_, value))| LeafWrite {
                key_hash: *hash,
                value_hash: value.as_deref().map(value_hash),
            })
            .collect();
        let previous = match latest {
            Some(latest) => self.tree_root(latest)?,
            None => Child::Empty,
        };
        let update = tree::update(&self.nodes(), previous, version, &leaf_writes)?;
        // Keys that had a value before this version: their preimage is already stored.
        let replaced: std::collections::HashSet<&KeyHash> =
            update.stale_values.iter().map(|(hash, _)| hash).collect();
        let mut upserts = Vec::with_capacity(update.upserted.len());
        for hash in &update.upserted {
            if let Some((key, Some(value))) = kvs.remove(hash) {
                upserts.push(Upsert {
                    key_hash: *hash,
                    key,
                    value,
                    new_key: !replaced.contains(hash),
                });
            }
        }
        let root = update.root.unwrap_or(Child::Empty).hash();
        Ok(PreparedState {
            base: latest,
            version,
            root,
            upserts,
            update,
        })
    }

    /// Commits a block: state writes, new root, block bytes, commit bytes, the block's indexes (block
    /// hash, transactions, results, events; see [`crate::index`]) and the height marker in one synced
    /// The validator-set changes of every block from `from` on that had any, as committed
    /// ([`BlockCommit::validator_updates`]), in height order; at most `limit` of them.
    pub fn validator_updates(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let entries = self.storage.scan(
            Cf::Metadata,
            &meta::validator_updates_key(from),
            &meta::validator_updates_key(u64::MAX),
            limit,
        )?;
        entries
            .into_iter()
            .map(|(key, value)| Ok((meta::validator_updates_height(&key)?, value.into_vec())))
            .collect()
    }

    /// `WriteBatch`. Returns the new root (the app hash of `height`).
    pub fn commit_block(&self, commit: BlockCommit) -> Result<RootHash> {
        let _guard = self.lock()?;
        let latest = self.latest_version()?;
        let state = match commit.prepared {
            None => self.compute_state(latest, commit.height, commit.writes)?,
            Some(prepared) => {
                Self::check_prepared(&prepared, latest, commit.height, commit.writes.len())?;
                prepared
            }
        };
        let mut batch = WriteBatch::default();
        let st = &self.storage;
        // Proofs carry the original key, looked up by key hash for non-existence neighbours.
        for upsert in state.upserts.iter().filter(|u| u.new_key) {
            st.batch_put(
                &mut batch,
                Cf::MerklePreimages,
                &upsert.key_hash,
                &upsert.key,
            )?;
        }
        self.add_tree_update(&mut batch, &state)?;
        let height_key = commit.height.to_be_bytes();
        if !commit.block.is_empty() {
            st.batch_put(&mut batch, Cf::Blocks, &height_key, &commit.block)?;
            if meta::get_u64(st, meta::BLOCKS_BASE)?.is_none() {
                let base = self.first_stored_block()?.unwrap_or(commit.height);
                st.batch_put(
                    &mut batch,
                    Cf::Metadata,
                    meta::BLOCKS_BASE,
                    &base.to_be_bytes(),
                )?;
            }
        }
        if !commit.commit.is_empty() {
            st.batch_put(&mut batch, Cf::Commits, &height_key, &commit.commit)?;
        }
        if !commit.validator_updates.is_empty() {
            st.batch_put(
                &mut batch,
                Cf::Metadata,
                &meta::validator_updates_key(commit.height),
                &commit.validator_updates,
            )?;
        }
        if !commit.block.is_empty() || commit.block_hash.is_some() || !commit.txs.is_empty() {
            index::add_block(
                st,
                &mut batch,
                commit.height,
                commit.block_hash.as_ref(),
                &commit.txs,
                &commit.evidence,
            )?;
        }
        let root = state.root;
        st.batch_put(
            &mut batch,
            Cf::Metadata,
            &meta::root_key(commit.height),
            &root,
        )?;
        st.batch_put(&mut batch, Cf::Metadata, meta::LATEST_VERSION, &height_key)?;
        if latest.is_none() {
            st.batch_put(
                &mut batch,
                Cf::Metadata,
                meta::EARLIEST_VERSION,
                &height_key,
            )?;
        }
        // The caches take the new nodes and leaf records while the synced write runs (filling them
        // costs about as much as the write). That is safe before the write is durable because
        // nothing can ask for this version yet: it becomes readable only below, and each entry
        // serves only its own version, so readers of older versions just miss and read the disk. If
        // the write fails, the entries are taken out again before anything else can run (this
        // thread holds the writer lock), so a different block of this height starts clean.
        let height = commit.height;
        let leaf_records: Vec<_> = state
            .upserts
            .into_iter()
            .map(|u| {
                let record = LeafRecord {
                    key: u.key,
                    value: u.value,
                };
                (u.key_hash, height, Arc::new(record))
            })
            .collect();
        let new_nodes = &state.update.new_nodes;
        let fill = || {
            self.cache.insert_committed(new_nodes);
            self.leaves.insert_all(leaf_records.iter().cloned());
        };
        let fill = &fill;
        let written = std::thread::scope(|scope| {
            let filling = std::thread::Builder::new()
                .name("state-cache-fill".into())
                .spawn_scoped(scope, fill);
            let written = self.write_commit(batch);
            let filled = match filling {
                // A panic while filling leaves entries that are either right or taken out below.
                Ok(handle) => handle.join().is_ok(),
                // No thread to be had: fill after a successful write instead.
                Err(_) => {
                    if written.is_ok() {
                        fill();
                    }
                    true
                }
            };
            (written, filled)
        });
        match written {
            (Ok(()), true) => {}
            (written, _) => {
                self.cache.forget_committed(new_nodes);
                self.leaves
                    .forget_all(leaf_records.iter().map(|(hash, v, _)| (*hash, *v)));
                written?;
            }
        }
        // A commit never moves the earliest version, except the first one, which sets it.
        let earliest = match (latest, self.known()) {
            (None, _) => commit.height,
            (Some(_), Some(known)) => known.earliest,
            (Some(_), None) => self.earliest_version()?.unwrap_or(commit.height),
        };
        self.set_committed(Committed {
            earliest,
            latest: commit.height,
            latest_root: state.update.root.unwrap_or(Child::Empty),
        });
        Ok(root)
    }

    /// The synced write of a commit's batch.
    fn write_commit(&self, batch: WriteBatch) -> Result<()> {
        #[cfg(test)]
        if self
            .fail_next_write
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StateError::LockPoisoned);
        }
        self.storage.write_synced(batch)
    }

    /// A prepared update is only valid on the version it was computed from, for the height committed.
    fn check_prepared(
        prepared: &PreparedState,
        latest: Option<u64>,
        height: u64,
        extra_writes: usize,
    ) -> Result<()> {
        let reason = if prepared.base != latest {
            format!(
                "prepared on top of version {:?} but the latest is {latest:?}",
                prepared.base
            )
        } else if prepared.version != height {
            format!(
                "prepared for version {} but committed as {height}",
                prepared.version
            )
        } else if extra_writes != 0 {
            format!("{extra_writes} writes given besides the prepared update")
        } else {
            return Ok(());
        };
        Err(StateError::StalePreparedState { height, reason })
    }

    /// Block bytes stored at `height` by [`StateStore::commit_block`].
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>> {
        self.storage.get(Cf::Blocks, &height.to_be_bytes())
    }

    /// Commit bytes stored at `height` by [`StateStore::commit_block`].
    pub fn commit(&self, height: u64) -> Result<Option<Vec<u8>>> {
        self.storage.get(Cf::Commits, &height.to_be_bytes())
    }

    /// Number of records in the tree-node column family (for tests and metrics; O(n)).
    pub fn node_count(&self) -> Result<usize> {
        let mut n = 0usize;
        let mut from: Vec<u8> = Vec::new();
        loop {
            let chunk = self
                .storage
                .scan(Cf::MerkleNodes, &from, &[0xff; 64], 10_000)?;
            n += chunk.len();
            match chunk.last() {
                Some((k, _)) if chunk.len() == 10_000 => {
                    from = k.to_vec();
                    from.push(0);
                }
                _ => return Ok(n),
            }
        }
    }

    pub(crate) fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, ()>> {
        self.writer.lock().map_err(|_| StateError::LockPoisoned)
    }

    pub(crate) fn nodes(&self) -> DbNodes<'_> {
        DbNodes {
            storage: &self.storage,
            cache: &self.cache,
        }
    }

    /// Records what a durable write made queryable.
    fn set_committed(&self, committed: Committed) {
        if let Ok(mut slot) = self.committed.lock() {
            *slot = Some(committed);
        }
    }

    /// Pruning raised the earliest queryable version (durably).
    pub(crate) fn set_earliest(&self, earliest: u64) {
        if let Ok(mut slot) = self.committed.lock() {
            if let Some(committed) = slot.as_mut() {
                committed.earliest = earliest;
            }
        }
    }

    /// What the last durable write recorded, if known.
    fn known(&self) -> Option<Committed> {
        *self.committed.lock().ok()?
    }

    pub(crate) fn leaf_records(&self) -> LeafRecords<'_> {
        LeafRecords {
            storage: &self.storage,
            cache: &self.leaves,
        }
    }

    /// The root slot of `version` if it is the latest committed one.
    fn latest_tree_root(&self, version: u64) -> Option<Child> {
        self.known()
            .filter(|known| known.latest == version)
            .map(|known| known.latest_root)
    }

    /// The root slot of a committed `version`.
    pub(crate) fn tree_root(&self, version: u64) -> Result<Child> {
        if let Some(slot) = self.latest_tree_root(version) {
            return Ok(slot);
        }
        let key = meta::tree_root_key(version);
        let bytes = self
            .storage
            .get(Cf::Metadata, &key)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::Metadata.name(),
                key_hex: hex(&key),
                what: "tree root of a committed version",
            })?;
        Child::decode(&bytes).map_err(|reason| StateError::Corrupt {
            cf: Cf::Metadata.name(),
            key_hex: hex(&key),
            reason: format!("undecodable tree root: {reason}"),
        })
    }

    fn stored_root(&self, version: u64) -> Result<Option<RootHash>> {
        let key = meta::root_key(version);
        match self.storage.get(Cf::Metadata, &key)? {
            None => Ok(None),
            Some(bytes) => bytes
                .as_slice()
                .try_into()
                .map(Some)
                .map_err(|_| StateError::Corrupt {
                    cf: Cf::Metadata.name(),
                    key_hex: hex(&key),
                    reason: format!("root is {} bytes, expected 32", bytes.len()),
                }),
        }
    }

    pub(crate) fn check_available(&self, version: u64) -> Result<()> {
        if let Some(known) = self.known() {
            if (known.earliest..=known.latest).contains(&version) {
                return Ok(());
            }
        }
        // Not known available: the records decide, and name the range in the error.
        let latest = self.latest_version()?;
        let earliest = self.earliest_version()?;
        match (earliest, latest) {
            (Some(e), Some(l)) if (e..=l).contains(&version) => Ok(()),
            _ => Err(StateError::VersionUnavailable {
                version,
                earliest,
                latest,
            }),
        }
    }

    /// Refuses a database of another layout; marks a new one with this binary's format.
    fn check_format(&self, path: &Path) -> Result<()> {
        let unsupported = |found: String| StateError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            expected: meta::CURRENT_FORMAT,
        };
        match meta::get_u64(&self.storage, meta::FORMAT)? {
            Some(meta::CURRENT_FORMAT) => Ok(()),
            Some(other) => Err(unsupported(other.to_string())),
            None if self.latest_version()?.is_some() => Err(unsupported("unmarked".into())),
            None => {
                let mut batch = WriteBatch::default();
                self.storage.batch_put(
                    &mut batch,
                    Cf::Metadata,
                    meta::FORMAT,
                    &meta::CURRENT_FORMAT.to_be_bytes(),
                )?;
                self.storage.write_synced(batch)
            }
        }
    }

    /// On open: the latest version's stored root must equal the hash of its root node.
    fn check_latest_root(&self) -> Result<()> {
        let Some(latest) = self.latest_version()? else {
            return Ok(());
        };
        let stored = self.root(latest)?;
        let root = self.tree_root(latest)?;
        let (actual, key_hex) = match root {
            Child::Inner { version, .. } => {
                let key = NodeKey {
                    depth: 0,
                    path: [0; 32],
                    version,
                };
                (self.nodes().node(&key)?.hash(), hex(&key.encode()))
            }
            Child::Leaf(_) | Child::Empty => (root.hash(), hex(&meta::tree_root_key(latest))),
        };
        if actual != stored || root.hash() != stored {
            return Err(StateError::Corrupt {
                cf: Cf::MerkleNodes.name(),
                key_hex,
                reason: format!(
                    "root node of version {latest} hashes to {} but metadata records {}",
                    hex(&actual),
                    hex(&stored)
                ),
            });
        }
        Ok(())
    }

    /// Validates and deduplicates writes (last wins), keyed and ordered by key hash; adds the
    /// sentinels on the first version.
    fn prepare_writes(&self, writes: Vec<Write>, first_version: bool) -> Result<PreparedWrites> {
        let mut kvs = BTreeMap::new();
        for (key, value) in writes {
            self.validate(&key, value.as_deref())?;
            kvs.insert(key_hash(&key), (key, value));
        }
        if first_version {
            for key in SENTINEL_KEYS {
                kvs.insert(key_hash(key), (key.to_vec(), Some(SENTINEL_VALUE.to_vec())));
            }
        }
        Ok(kvs)
    }

    fn validate(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let invalid = |reason| StateError::InvalidKey {
            key_hex: hex(key),
            reason,
        };
        if key.is_empty() {
            return Err(invalid("empty key"));
        }
        if key.starts_with(RESERVED_PREFIX) {
            return Err(invalid("reserved prefix"));
        }
        if key.len() > self.config.max_key_bytes {
            return Err(StateError::TooLarge {
                what: "key",
                len: key.len(),
                max: self.config.max_key_bytes,
            });
        }
        match value {
            Some([]) => Err(StateError::EmptyValue { key_hex: hex(key) }),
            Some(v) if v.len() > self.config.max_value_bytes => Err(StateError::TooLarge {
                what: "value",
                len: v.len(),
                max: self.config.max_value_bytes,
            }),
            _ => Ok(()),
        }
    }

    fn add_tree_update(&self, batch: &mut WriteBatch, state: &PreparedState) -> Result<()> {
        let st = &self.storage;
        let update = &state.update;
        for (key, node) in &update.new_nodes {
            st.batch_put(batch, Cf::MerkleNodes, &key.encode(), &node.encode())?;
        }
        let values = state
            .upserts
            .iter()
            .map(|u| (&u.key_hash, Some(u.value.as_slice())))
            .chain(update.deleted.iter().map(|hash| (hash, None)));
        for (hash, value) in values {
            st.batch_put(
                batch,
                Cf::MerkleValues,
                &codec::value_key(hash, state.version),
                &codec::encode_value(value),
            )?;
        }
        let root = update.root.unwrap_or(Child::Empty);
        st.batch_put(
            batch,
            Cf::Metadata,
            &meta::tree_root_key(state.version),
            &root.encode(),
        )?;
        // An archive node never prunes, so it needs no stale index.
        if self.config.keep_recent > 0 {
            let since = state.version;
            let stale = update
                .stale_nodes
                .iter()
                .map(|key| StaleRecord::Node(*key))
                .chain(
                    update
                        .stale_values
                        .iter()
                        .map(|(hash, version)| StaleRecord::Value(*hash, *version)),
                )
                // A deletion marker only hides older records: it goes when they do.
                .chain(
                    update
                        .deleted
                        .iter()
                        .map(|hash| StaleRecord::Value(*hash, since)),
                );
            for record in stale {
                st.batch_put(
                    batch,
                    Cf::MerkleStale,
                    &codec::stale_key(since, &record),
                    &[],
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn store(path: &Path) -> StateStore {
        StateStore::open(path, StoreConfig::default()).unwrap()
    }

    fn put_raw(store: &StateStore, cf: Cf, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::default();
        store.storage.batch_put(&mut batch, cf, key, value).unwrap();
        store.storage.write_synced(batch).unwrap();
    }

    fn fill(store: &StateStore) {
        for v in 1..=3u64 {
            store
                .apply_batch(v, vec![(b"alice".to_vec(), Some(vec![v as u8]))])
                .unwrap();
        }
    }

    #[test]
    fn corrupt_root_node_is_reported_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            fill(&s);
            let key = NodeKey {
                depth: 0,
                path: [0; 32],
                version: 3,
            };
            put_raw(&s, Cf::MerkleNodes, &key.encode(), &[0xde, 0xad]);
        }
        let err = StateStore::open(dir.path(), StoreConfig::default()).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Corrupt {
                    cf: "merkle_nodes",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_root_node_that_hashes_wrong_is_reported_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            fill(&s);
            let key = NodeKey {
                depth: 0,
                path: [0; 32],
                version: 3,
            };
            let raw = s
                .storage
                .get(Cf::MerkleNodes, &key.encode())
                .unwrap()
                .unwrap();
            let mut node = crate::merkle::node::InnerNode::decode(&raw).unwrap();
            std::mem::swap(&mut node.left, &mut node.right);
            put_raw(&s, Cf::MerkleNodes, &key.encode(), &node.encode());
        }
        let err = StateStore::open(dir.path(), StoreConfig::default()).unwrap_err();
        assert!(err.to_string().contains("hashes to"), "{err}");
    }

    #[test]
    fn corrupt_value_and_metadata_records_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        fill(&s);
        let hash = key_hash(b"alice");
        put_raw(&s, Cf::MerkleValues, &codec::value_key(&hash, 3), &[7]);
        // Reopened: the caches hold what the commit wrote, so only a cold read meets the disk.
        drop(s);
        let s = store(dir.path());
        let err = s.get(b"alice", 3).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Corrupt {
                    cf: "merkle_values",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(s.get(b"alice", 2).unwrap(), Some(vec![2]));
        let err = s.get_with_proof(b"alice", 3).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");

        put_raw(&s, Cf::Metadata, &meta::tree_root_key(2), &[9, 9]);
        let err = s.get_with_proof(b"alice", 2).unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { cf: "metadata", .. }),
            "{err}"
        );

        put_raw(&s, Cf::Metadata, meta::LATEST_VERSION, &[1, 2, 3]);
        let err = s.latest_version().unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { cf: "metadata", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_missing_inner_node_is_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            node_cache_entries: 0,
            ..StoreConfig::default()
        };
        let s = StateStore::open(dir.path(), config).unwrap();
        let writes = (0..64u8)
            .map(|i| (vec![b'k', i], Some(vec![i + 1])))
            .collect();
        s.apply_batch(1, writes).unwrap();
        let key = NodeKey {
            depth: 0,
            path: [0; 32],
            version: 1,
        };
        let mut batch = WriteBatch::default();
        s.storage
            .batch_delete(&mut batch, Cf::MerkleNodes, &key.encode())
            .unwrap();
        s.storage.write_synced(batch).unwrap();
        let errors = [
            s.get_with_proof(b"k\x01", 1).map(|_| ()).unwrap_err(),
            s.apply_batch(2, vec![(b"new".to_vec(), Some(vec![1]))])
                .map(|_| ())
                .unwrap_err(),
        ];
        for err in errors {
            let named = matches!(
                err,
                StateError::Missing {
                    cf: "merkle_nodes",
                    ..
                }
            );
            assert!(named, "{err}");
        }
    }

    #[test]
    fn proofs_are_served_from_the_cache_and_from_disk_alike() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cached = store(da.path());
        let uncached = StateStore::open(
            db.path(),
            StoreConfig {
                node_cache_entries: 0,
                ..StoreConfig::default()
            },
        )
        .unwrap();
        for v in 1..=3u64 {
            let writes: Vec<Write> = (0..3000u32)
                .map(|i| {
                    (
                        format!("k{}", i * v as u32).into_bytes(),
                        Some(vec![v as u8]),
                    )
                })
                .collect();
            assert_eq!(
                cached.apply_batch(v, writes.clone()).unwrap(),
                uncached.apply_batch(v, writes).unwrap()
            );
        }
        assert!(cached.cache.len() > 1000);
        for key in [&b"k6"[..], b"k7", b"absent"] {
            assert_eq!(
                cached.get_with_proof(key, 2).unwrap(),
                uncached.get_with_proof(key, 2).unwrap()
            );
        }
    }

    #[test]
    fn reserved_keys_are_refused_but_sentinels_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        fill(&s);
        let err = s
            .apply_batch(4, vec![(SENTINEL_KEYS[0].to_vec(), None)])
            .unwrap_err();
        assert!(matches!(err, StateError::InvalidKey { .. }), "{err}");
        assert_eq!(
            s.get(SENTINEL_KEYS[1], 3).unwrap(),
            Some(SENTINEL_VALUE.to_vec())
        );
    }

    #[test]
    fn a_failed_commit_leaves_nothing_in_the_caches() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let base: Vec<Write> = (0..200u32)
            .map(|i| (format!("k{i}").into_bytes(), Some(vec![1])))
            .collect();
        s.apply_batch(1, base).unwrap();
        // Height 2 fails with one block's writes, then commits with another's: reads and proofs
        // must see only the second (the first's nodes sit at the same positions and version).
        let first: Vec<Write> = (0..200u32)
            .map(|i| (format!("k{i}").into_bytes(), Some(vec![2])))
            .collect();
        s.fail_next_write
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(s.apply_batch(2, first).is_err());
        let root_node = |version| NodeKey {
            depth: 0,
            path: [0; 32],
            version,
        };
        assert_eq!(
            s.cache.get(&root_node(2)),
            None,
            "the failed block's nodes are gone"
        );
        assert!(s.leaves.get(&key_hash(b"k7"), 2).is_none());
        assert_eq!(s.latest_version().unwrap(), Some(1));
        assert_eq!(s.get(b"k7", 1).unwrap(), Some(vec![1]));
        let second: Vec<Write> = (0..200u32)
            .map(|i| (format!("k{i}").into_bytes(), Some(vec![3])))
            .collect();
        let root = s.apply_batch(2, second).unwrap();
        let keys: Vec<Vec<u8>> = (0..200u32)
            .step_by(17)
            .map(|i| format!("k{i}").into_bytes())
            .collect();
        let mut warm = Vec::new();
        for key in &keys {
            assert_eq!(s.get(key, 2).unwrap(), Some(vec![3]));
            let (value, proof) = s.get_with_proof(key, 2).unwrap();
            assert_eq!(value, Some(vec![3]));
            assert!(crate::verify_membership(&proof, &root, key, &[3]));
            warm.push(proof);
        }
        drop(s);
        let cold = StateStore::open(
            dir.path(),
            StoreConfig {
                node_cache_entries: 0,
                leaf_cache_entries: 0,
                ..StoreConfig::default()
            },
        )
        .unwrap();
        for (key, proof) in keys.iter().zip(warm) {
            assert_eq!(cold.get_with_proof(key, 2).unwrap().1, proof);
        }
    }

    #[test]
    fn a_database_of_another_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        fill(&s);
        put_raw(&s, Cf::Metadata, meta::FORMAT, &2u64.to_be_bytes());
        drop(s);
        let err = StateStore::open(dir.path(), StoreConfig::default()).unwrap_err();
        assert!(
            matches!(&err, StateError::UnsupportedFormat { found, expected: 4, .. } if found == "2"),
            "{err}"
        );
        // A database with state but no marker was written before markers existed.
        let raw = Storage::open(dir.path(), &StorageConfig::default()).unwrap();
        let mut batch = WriteBatch::default();
        raw.batch_delete(&mut batch, Cf::Metadata, meta::FORMAT)
            .unwrap();
        raw.write_synced(batch).unwrap();
        drop(raw);
        let err = StateStore::open(dir.path(), StoreConfig::default()).unwrap_err();
        assert!(err.to_string().contains("format unmarked"), "{err}");
    }
}
