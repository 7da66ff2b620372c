//! State snapshots for state sync: one version's whole application state as a [`Manifest`] and
//! chunks of leaves, and the restore of a fresh store from them.
//!
//! A snapshot of version `v` lists every key and value of the state at `v` (the tree's reserved
//! sentinel leaves excepted: a store writes them with its first version) in key-hash order, cut into
//! chunks of about a chosen size. The manifest names the version, the root (the app hash that the
//! header of height `v + 1` carries), the number of leaves and the BLAKE2s-256 hash of every chunk.
//!
//! Trust runs as in CometBFT's state sync, with one check earlier: a restore starts only from a
//! manifest whose root is the app hash the node verified with its light client ([`Restore::new`]);
//! each chunk is checked against the manifest's hash of it before it is kept ([`Restore::add`]: a
//! mismatch blames the peer that sent it, [`SnapshotError::blames_sender`]); the restored tree must
//! hash to that root before anything is written ([`Restore::finish`]), so a manifest whose chunks
//! hash as listed but hold another state is refused whole and leaves the store empty. The tree's
//! root depends only on its keys and values (a sparse Merkle tree), so a store rebuilt from the
//! leaves has the same root and serves the same proofs as the one that took the snapshot.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::merkle::hash::{key_hash, Hash, KeyHash};
use crate::merkle::node::{with_bit, Child, NodeKey};
use crate::merkle::tree::NodeSource;
use crate::merkle::RESERVED_PREFIX;
use crate::store::{BlockCommit, RootHash, StateStore};
use crate::StateError;

#[cfg(test)]
mod tests;

/// The chunk encoding this node writes and restores.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Largest chunk accepted (a chunk closes once it reaches its target size, so it holds at most the
/// target plus one key and value).
pub const MAX_CHUNK_BYTES: usize = 16 << 20;

/// Largest chunk target size [`StateStore::export_snapshot`] accepts: with the largest value the
/// store allows (4 MiB) a chunk still fits [`MAX_CHUNK_BYTES`].
pub const MAX_CHUNK_TARGET_BYTES: usize = 8 << 20;

/// Most chunks in a snapshot (the manifest then holds 2 MiB of hashes).
pub const MAX_CHUNKS: usize = 65_536;

/// Largest manifest encoding: version, format, root, leaf count, the chunk count and its hashes.
pub const MAX_MANIFEST_BYTES: usize = 8 + 4 + 32 + 8 + 4 + 32 * MAX_CHUNKS;

/// What a snapshot is; the hash of its encoding ([`Manifest::hash`]) names it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Manifest {
    /// The state version (the height whose block produced it).
    pub version: u64,
    /// Chunk encoding ([`SNAPSHOT_FORMAT`]).
    pub format: u32,
    /// The state's root: the app hash in the header of height `version + 1`.
    pub root: RootHash,
    /// Keys in the snapshot.
    pub leaves: u64,
    /// BLAKE2s-256 of each chunk's bytes, in order.
    pub chunk_hashes: Vec<Hash>,
}

impl Manifest {
    /// The snapshot's name: BLAKE2s-256 of the manifest's encoding.
    pub fn hash(&self) -> Hash {
        key_hash(&borsh::to_vec(self).unwrap_or_default())
    }

    /// Its encoding.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Decodes a manifest of at most [`MAX_CHUNKS`] chunks.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, SnapshotError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(SnapshotError::Malformed(format!(
                "manifest of {} bytes, more than {MAX_MANIFEST_BYTES}",
                bytes.len()
            )));
        }
        let manifest = Manifest::try_from_slice(bytes)
            .map_err(|e| SnapshotError::Malformed(format!("manifest: {e}")))?;
        manifest.check_shape()?;
        Ok(manifest)
    }

    fn check_shape(&self) -> Result<(), SnapshotError> {
        if self.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { got: self.format });
        }
        let count = self.chunk_hashes.len();
        if count == 0 || count > MAX_CHUNKS {
            return Err(SnapshotError::ChunkCount(count));
        }
        Ok(())
    }
}

/// Why a snapshot cannot be taken from or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The manifest uses another chunk encoding.
    #[error("snapshot format {got}; this node restores format {SNAPSHOT_FORMAT}")]
    Format {
        /// Its format.
        got: u32,
    },
    /// The manifest names no chunk or too many.
    #[error("snapshot of {0} chunks: must be 1 to {MAX_CHUNKS}")]
    ChunkCount(usize),
    /// The manifest's root is not the app hash the node trusts for its version.
    #[error("snapshot of version {version} has root {got}; the verified app hash is {expected}")]
    UntrustedRoot {
        /// The snapshot's version.
        version: u64,
        /// Its root, hex.
        got: String,
        /// The trusted app hash, hex.
        expected: String,
    },
    /// A manifest that does not decode.
    #[error("malformed snapshot: {0}")]
    Malformed(String),
    /// A chunk index the manifest does not have.
    #[error("chunk {index} of a snapshot of {count} chunks")]
    NoSuchChunk {
        /// The index given.
        index: u32,
        /// Chunks in the snapshot.
        count: usize,
    },
    /// A chunk whose bytes are not the ones the manifest lists: whoever sent it sent something else.
    #[error("chunk {index} hashes to {got}, the manifest lists {expected}")]
    ChunkHash {
        /// The chunk.
        index: u32,
        /// Its hash, hex.
        got: String,
        /// The manifest's, hex.
        expected: String,
    },
    /// A chunk that is the manifest's but not a valid chunk: the snapshot itself is bad.
    #[error("chunk {index}: {reason}")]
    BadChunk {
        /// The chunk.
        index: u32,
        /// What is wrong.
        reason: String,
    },
    /// The snapshot holds more than the restore may keep.
    #[error("snapshot holds more than {max} bytes of keys and values")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// `finish` before every chunk arrived.
    #[error("chunk {0} has not arrived")]
    Incomplete(u32),
    /// The leaves do not number what the manifest says.
    #[error("snapshot has {got} leaves; its manifest says {expected}")]
    LeafCount {
        /// Leaves received.
        got: u64,
        /// The manifest's count.
        expected: u64,
    },
    /// The restored tree does not hash to the snapshot's root: nothing was written.
    #[error("restored state has root {got}; the snapshot's is {expected}")]
    RootMismatch {
        /// The restored root, hex.
        got: String,
        /// The manifest's, hex.
        expected: String,
    },
    /// Restores go into an empty store only.
    #[error("the store to restore into already holds version {0}")]
    NotEmpty(u64),
    /// The chunk target size is out of range.
    #[error("chunk target of {0} bytes: must be 1 to {MAX_CHUNK_TARGET_BYTES}")]
    ChunkTarget(usize),
    /// Reading or writing the store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl SnapshotError {
    /// Whether the peer that sent the chunk is at fault (it sent bytes the manifest does not list),
    /// rather than the snapshot itself.
    pub fn blames_sender(&self) -> bool {
        matches!(self, SnapshotError::ChunkHash { .. })
    }
}

/// One key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// Bytes an entry counts for against chunk sizes and restore limits (with its two length prefixes).
fn entry_bytes(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + 8
}

fn hex(bytes: &[u8]) -> String {
    crate::merkle::codec::hex(bytes)
}

impl StateStore {
    /// Takes the snapshot of `version`: walks its tree in key-hash order, hands each chunk (of about
    /// `chunk_target_bytes`) to `sink` with its index as it fills, and returns the manifest. Reads
    /// leaves without filling the leaf cache. The version must stay unpruned while this runs.
    pub fn export_snapshot(
        &self,
        version: u64,
        chunk_target_bytes: usize,
        mut sink: impl FnMut(u32, &[u8]) -> Result<(), SnapshotError>,
    ) -> Result<Manifest, SnapshotError> {
        if chunk_target_bytes == 0 || chunk_target_bytes > MAX_CHUNK_TARGET_BYTES {
            return Err(SnapshotError::ChunkTarget(chunk_target_bytes));
        }
        self.check_available(version)?;
        let root = self.root(version)?;
        let nodes = self.nodes();
        let records = self.leaf_records();
        let mut chunk_hashes = Vec::new();
        let mut chunk: Vec<Entry> = Vec::new();
        let mut chunk_bytes = 0usize;
        let mut leaves = 0u64;
        let mut flush =
            |chunk: &mut Vec<Entry>, hashes: &mut Vec<Hash>| -> Result<(), SnapshotError> {
                if hashes.len() >= MAX_CHUNKS {
                    return Err(SnapshotError::ChunkCount(hashes.len() + 1));
                }
                let bytes = borsh::to_vec(&*chunk).map_err(|e| StateError::Corrupt {
                    cf: "snapshot",
                    key_hex: String::new(),
                    reason: format!("cannot encode a chunk: {e}"),
                })?;
                let index = u32::try_from(hashes.len()).unwrap_or(u32::MAX);
                hashes.push(key_hash(&bytes));
                chunk.clear();
                sink(index, &bytes)
            };
        // Depth-first, left before right: leaves come out in key-hash order.
        let mut stack = vec![(self.tree_root(version)?, 0usize, [0u8; 32])];
        while let Some((child, depth, path)) = stack.pop() {
            match child {
                Child::Empty => {}
                Child::Leaf(leaf) => {
                    let record = records.record_uncached(&leaf)?;
                    if record.key.starts_with(RESERVED_PREFIX) {
                        continue;
                    }
                    chunk_bytes += entry_bytes(&record.key, &record.value);
                    chunk.push((record.key.clone(), record.value.clone()));
                    leaves += 1;
                    if chunk_bytes >= chunk_target_bytes {
                        flush(&mut chunk, &mut chunk_hashes)?;
                        chunk_bytes = 0;
                    }
                }
                Child::Inner { version, .. } => {
                    let depth_byte = u8::try_from(depth).map_err(|_| StateError::Corrupt {
                        cf: "merkle_nodes",
                        key_hex: hex(&path),
                        reason: format!("inner node below depth {depth}"),
                    })?;
                    let node = nodes.node(&NodeKey {
                        depth: depth_byte,
                        path,
                        version,
                    })?;
                    stack.push((node.right, depth + 1, with_bit(path, depth)));
                    stack.push((node.left, depth + 1, path));
                }
            }
        }
        if !chunk.is_empty() || chunk_hashes.is_empty() {
            flush(&mut chunk, &mut chunk_hashes)?;
        }
        Ok(Manifest {
            version,
            format: SNAPSHOT_FORMAT,
            root,
            leaves,
            chunk_hashes,
        })
    }
}

/// Limits of one restore.
#[derive(Clone, Copy, Debug)]
pub struct RestoreLimits {
    /// Largest key (the store's `max_key_bytes`).
    pub max_key_bytes: usize,
    /// Largest value (the store's `max_value_bytes`).
    pub max_value_bytes: usize,
    /// Most bytes of keys and values held until the restore is written (all of them are kept in
    /// memory: the tree is built in one version).
    pub max_total_bytes: u64,
}

/// A restore in progress: the trusted manifest and the chunks verified so far.
#[derive(Debug)]
pub struct Restore {
    manifest: Manifest,
    limits: RestoreLimits,
    chunks: Vec<Option<Vec<(KeyHash, Entry)>>>,
    held_bytes: u64,
}

impl Restore {
    /// A restore of `manifest`, accepted only when its root is `trusted_root`, the app hash the node
    /// verified for the snapshot's version.
    pub fn new(
        manifest: Manifest,
        trusted_root: RootHash,
        limits: RestoreLimits,
    ) -> Result<Restore, SnapshotError> {
        manifest.check_shape()?;
        if manifest.root != trusted_root {
            return Err(SnapshotError::UntrustedRoot {
                version: manifest.version,
                got: hex(&manifest.root),
                expected: hex(&trusted_root),
            });
        }
        let count = manifest.chunk_hashes.len();
        Ok(Restore {
            manifest,
            limits,
            chunks: vec![None; count],
            held_bytes: 0,
        })
    }

    /// The manifest being restored.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Indices of the chunks still wanted, in order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_none())
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
    }

    /// Whether every chunk arrived.
    pub fn is_complete(&self) -> bool {
        self.chunks.iter().all(Option::is_some)
    }

    /// Checks chunk `index` against the manifest and keeps it. A chunk that arrived already is
    /// ignored; bytes other than the manifest's are refused ([`SnapshotError::blames_sender`]).
    pub fn add(&mut self, index: u32, bytes: &[u8]) -> Result<(), SnapshotError> {
        let count = self.chunks.len();
        let slot = usize::try_from(index)
            .ok()
            .filter(|i| *i < count)
            .ok_or(SnapshotError::NoSuchChunk { index, count })?;
        if self.chunks[slot].is_some() {
            return Ok(());
        }
        let expected = self.manifest.chunk_hashes[slot];
        let got = key_hash(bytes);
        if bytes.len() > MAX_CHUNK_BYTES || got != expected {
            return Err(SnapshotError::ChunkHash {
                index,
                got: hex(&got),
                expected: hex(&expected),
            });
        }
        let bad = |reason: String| SnapshotError::BadChunk { index, reason };
        let entries: Vec<Entry> =
            borsh::from_slice(bytes).map_err(|e| bad(format!("undecodable: {e}")))?;
        let mut keyed = Vec::with_capacity(entries.len());
        let mut bytes_held = 0u64;
        for (key, value) in entries {
            if key.is_empty() || key.starts_with(RESERVED_PREFIX) {
                return Err(bad(format!("key {} is empty or reserved", hex(&key))));
            }
            if key.len() > self.limits.max_key_bytes || value.len() > self.limits.max_value_bytes {
                return Err(bad(format!(
                    "key of {} bytes or value of {} bytes over the store's limits",
                    key.len(),
                    value.len()
                )));
            }
            if value.is_empty() {
                return Err(bad(format!("key {} has an empty value", hex(&key))));
            }
            let hash = key_hash(&key);
            if keyed.last().is_some_and(|(last, _)| *last >= hash) {
                return Err(bad("keys not in increasing key-hash order".to_owned()));
            }
            bytes_held += entry_bytes(&key, &value) as u64;
            keyed.push((hash, (key, value)));
        }
        let held = self.held_bytes.saturating_add(bytes_held);
        if held > self.limits.max_total_bytes {
            return Err(SnapshotError::TooLarge {
                max: self.limits.max_total_bytes,
            });
        }
        self.held_bytes = held;
        self.chunks[slot] = Some(keyed);
        Ok(())
    }

    /// Builds the snapshot's tree in `store` (which must be empty) as its version, after checking the
    /// chunks follow each other in key-hash order, number the manifest's leaves and hash to its root;
    /// on any failure nothing is written. Returns the root.
    pub fn finish(self, store: &StateStore) -> Result<RootHash, SnapshotError> {
        if let Some(latest) = store.latest_version()? {
            return Err(SnapshotError::NotEmpty(latest));
        }
        let mut writes = Vec::new();
        let mut last: Option<KeyHash> = None;
        for (index, chunk) in self.chunks.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let chunk = chunk.ok_or(SnapshotError::Incomplete(index))?;
            if let (Some(last), Some((first, _))) = (last, chunk.first()) {
                if *first <= last {
                    return Err(SnapshotError::BadChunk {
                        index,
                        reason: "keys not above the previous chunk's".to_owned(),
                    });
                }
            }
            if let Some((hash, _)) = chunk.last() {
                last = Some(*hash);
            }
            writes.extend(chunk.into_iter().map(|(_, (k, v))| (k, Some(v))));
        }
        let leaves = writes.len() as u64;
        if leaves != self.manifest.leaves {
            return Err(SnapshotError::LeafCount {
                got: leaves,
                expected: self.manifest.leaves,
            });
        }
        let version = self.manifest.version;
        let prepared = store.prepare_state(version, writes)?;
        if prepared.root() != self.manifest.root {
            return Err(SnapshotError::RootMismatch {
                got: hex(&prepared.root()),
                expected: hex(&self.manifest.root),
            });
        }
        Ok(store.commit_block(BlockCommit {
            height: version,
            prepared: Some(prepared),
            ..BlockCommit::default()
        })?)
    }
}
