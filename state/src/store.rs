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
use std::sync::{Mutex, MutexGuard};

use jmt::storage::TreeUpdateBatch;
use jmt::{JellyfishMerkleTree, KeyHash};
use rocksdb::WriteBatch;

use crate::error::{Result, StateError};
use crate::index::{self, CommittedTx};
use crate::merkle::codec::{self, hex};
use crate::merkle::reader::DbReader;
use crate::merkle::spec::{retag_proof, TreeHasher};
use crate::merkle::{RESERVED_PREFIX, SENTINEL_KEYS, SENTINEL_VALUE};
use crate::meta;
use crate::storage::{Cf, Storage, StorageConfig};

/// A 32-byte BLAKE2s-256 Merkle root (the application hash).
pub type RootHash = [u8; 32];

/// One write of a block: `(key, Some(value))` sets, `(key, None)` deletes.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

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
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            keep_recent: 0,
            prune_batch_limit: 50_000,
            max_key_bytes: 1024,
            max_value_bytes: 4 << 20,
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
    /// The state update computed ahead by [`StateStore::prepare_state`] (then `writes` is empty), so
    /// the Merkle update is computed once per block.
    pub prepared: Option<PreparedState>,
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
    /// Key preimages of the upserted keys: (key hash, key).
    preimages: Vec<([u8; 32], Vec<u8>)>,
    /// jmt's node, value and stale-index batch.
    update: TreeUpdateBatch,
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
    /// Serialises commits and pruning: jmt computes a version from the previous one, so one writer.
    writer: Mutex<()>,
}

/// A block's writes, deduplicated and ordered by key hash: (key hash, key, value or deletion).
type PreparedWrites = BTreeMap<[u8; 32], (KeyHash, Vec<u8>, Option<Vec<u8>>)>;

type Tree<'a> = JellyfishMerkleTree<'a, DbReader<'a>, TreeHasher>;

impl StateStore {
    /// Opens the store at `path` and checks that the latest committed root is intact.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Self> {
        let storage = Storage::open(path, &config.storage)?;
        let store = Self {
            storage,
            config,
            writer: Mutex::new(()),
        };
        store.check_latest_root()?;
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
        let reader = self.reader();
        Tree::new(&reader)
            .get(KeyHash::with::<TreeHasher>(key), version)
            .map_err(|e| tree_error(version, e))
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
        let reader = self.reader();
        let (value, mut proof) = Tree::new(&reader)
            .get_with_ics23_proof(key.to_vec(), version)
            .map_err(|e| tree_error(version, e))?;
        retag_proof(&mut proof);
        Ok((value, proof))
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
        let kvs = self.prepare_writes(writes, latest.is_none())?;
        // Proofs carry the original key, which jmt looks up by key hash.
        let preimages = kvs
            .values()
            .filter(|(_, _, value)| value.is_some())
            .map(|(hash, key, _)| (hash.0, key.clone()))
            .collect();
        let reader = self.reader();
        let (root, update) = Self::update_tree(&reader, kvs, version, latest.is_some())?;
        Ok(PreparedState {
            base: latest,
            version,
            root: root.0,
            preimages,
            update,
        })
    }

    /// Commits a block: state writes, new root, block bytes, commit bytes, the block's indexes (block
    /// hash, transactions, results, events; see [`crate::index`]) and the height marker in one synced
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
        for (hash, key) in &state.preimages {
            st.batch_put(&mut batch, Cf::MerklePreimages, hash, key)?;
        }
        self.add_tree_update(&mut batch, &state.update)?;
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
        if !commit.block.is_empty() || commit.block_hash.is_some() || !commit.txs.is_empty() {
            index::add_block(
                st,
                &mut batch,
                commit.height,
                commit.block_hash.as_ref(),
                &commit.txs,
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
        self.storage.write_synced(batch)?;
        Ok(root)
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

    fn reader(&self) -> DbReader<'_> {
        DbReader {
            storage: &self.storage,
        }
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

    fn check_available(&self, version: u64) -> Result<()> {
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

    /// On open: the latest version's stored root must equal the hash of its root node.
    fn check_latest_root(&self) -> Result<()> {
        let Some(latest) = self.latest_version()? else {
            return Ok(());
        };
        let stored = self.root(latest)?;
        let reader = self.reader();
        let actual = Tree::new(&reader)
            .get_root_hash(latest)
            .map_err(|e| tree_error(latest, e))?;
        if actual.0 != stored {
            return Err(StateError::Corrupt {
                cf: Cf::MerkleNodes.name(),
                key_hex: hex(&meta::root_key(latest)),
                reason: format!(
                    "root node of version {latest} hashes to {} but metadata records {}",
                    hex(&actual.0),
                    hex(&stored)
                ),
            });
        }
        Ok(())
    }

    /// Runs jmt's update. Blocks without deletions (the common case) take jmt's batch path, which
    /// hashes every touched node once, bottom-up; blocks with deletions take the per-key path (which
    /// re-hashes a node once per key under it; jmt's batch path has no deletions). Both build the same
    /// canonical tree, so the root does not depend on the path. The batch path needs the previous
    /// version's root node, so the first version always takes the per-key path.
    fn update_tree(
        reader: &DbReader<'_>,
        kvs: PreparedWrites,
        version: u64,
        has_previous: bool,
    ) -> Result<(jmt::RootHash, TreeUpdateBatch)> {
        let tree = Tree::new(reader);
        let all_upserts = !kvs.is_empty() && kvs.values().all(|(_, _, v)| v.is_some());
        if has_previous && all_upserts {
            let set: Vec<_> = kvs
                .into_values()
                .filter_map(|(h, _, v)| v.map(|v| (h, v)))
                .collect();
            let (roots, update) = tree
                .batch_put_value_sets(vec![set], None, version)
                .map_err(|e| tree_error(version, e))?;
            let root = roots.last().copied().ok_or_else(|| StateError::Tree {
                version,
                message: "batch update returned no root".to_owned(),
            })?;
            Ok((root, update))
        } else {
            tree.put_value_set(kvs.into_values().map(|(h, _, v)| (h, v)), version)
                .map_err(|e| tree_error(version, e))
        }
    }

    /// Validates and deduplicates writes (last wins), keyed and ordered by key hash; adds the
    /// sentinels on the first version.
    fn prepare_writes(&self, writes: Vec<Write>, first_version: bool) -> Result<PreparedWrites> {
        let mut kvs = BTreeMap::new();
        for (key, value) in writes {
            self.validate(&key, value.as_deref())?;
            let hash = KeyHash::with::<TreeHasher>(&key);
            kvs.insert(hash.0, (hash, key, value));
        }
        if first_version {
            for key in SENTINEL_KEYS {
                let hash = KeyHash::with::<TreeHasher>(key);
                kvs.insert(hash.0, (hash, key.to_vec(), Some(SENTINEL_VALUE.to_vec())));
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

    fn add_tree_update(&self, batch: &mut WriteBatch, update: &TreeUpdateBatch) -> Result<()> {
        let st = &self.storage;
        for (node_key, node) in update.node_batch.nodes() {
            let key = codec::node_key_bytes(node_key)?;
            st.batch_put(
                batch,
                Cf::MerkleNodes,
                &key,
                &codec::encode_node(node_key, node)?,
            )?;
        }
        for ((version, key_hash), value) in update.node_batch.values() {
            let key = codec::value_key(key_hash, *version);
            st.batch_put(
                batch,
                Cf::MerkleValues,
                &key,
                &codec::encode_value(value.as_deref()),
            )?;
        }
        // An archive node never prunes, so it needs no stale index.
        if self.config.keep_recent > 0 {
            for stale in &update.stale_node_index_batch {
                let key = codec::stale_key(stale.stale_since_version, &stale.node_key)?;
                st.batch_put(batch, Cf::MerkleStale, &key, &[])?;
            }
        }
        Ok(())
    }
}

/// Maps a jmt error back to our error if it carries one (storage and corruption errors raised by
/// [`DbReader`]), or flattens it.
fn tree_error(version: u64, err: anyhow::Error) -> StateError {
    match err.downcast::<StateError>() {
        Ok(e) => e,
        Err(e) => StateError::Tree {
            version,
            message: format!("{e:#}"),
        },
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
            let key = codec::node_key_bytes(&codec::root_node_key(3).unwrap()).unwrap();
            put_raw(&s, Cf::MerkleNodes, &key, &[0xde, 0xad]);
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
    fn corrupt_value_and_metadata_records_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        fill(&s);
        let hash = KeyHash::with::<TreeHasher>(b"alice");
        put_raw(&s, Cf::MerkleValues, &codec::value_key(&hash, 3), &[7]);
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

        put_raw(&s, Cf::Metadata, meta::LATEST_VERSION, &[1, 2, 3]);
        let err = s.latest_version().unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { cf: "metadata", .. }),
            "{err}"
        );
    }

    #[test]
    fn batch_and_per_key_paths_give_the_same_roots() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (store(da.path()), store(db.path()));
        for v in 1..=6u64 {
            let writes: Vec<Write> = (0..200u32)
                .map(|i| {
                    (
                        format!("k{}", (i * 7 + v as u32 * 13) % 300).into_bytes(),
                        Some(vec![v as u8, 1]),
                    )
                })
                .collect();
            let mut with_delete = writes.clone();
            // Deleting an absent key changes nothing but forces the per-key path.
            with_delete.push((b"never-written".to_vec(), None));
            assert_eq!(
                a.apply_batch(v, writes).unwrap(),
                b.apply_batch(v, with_delete).unwrap()
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
}
