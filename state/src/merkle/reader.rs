//! The tree's view of the database: inner nodes through the [`NodeCache`], values and key preimages.

use std::sync::Arc;

use super::cache::{LeafCache, LeafRecord, NodeCache};
use super::codec;
use super::hash::KeyHash;
use super::node::{InnerNode, Leaf, NodeKey};
use super::proof::LeafData;
use super::tree::NodeSource;
use crate::error::{Result, StateError};
use crate::storage::{Cf, Storage};

/// Committed inner nodes: the cache first, then RocksDB (caching what it reads).
pub(crate) struct DbNodes<'a> {
    pub(crate) storage: &'a Storage,
    pub(crate) cache: &'a NodeCache,
}

impl NodeSource for DbNodes<'_> {
    fn node(&self, key: &NodeKey) -> Result<InnerNode> {
        if let Some(node) = self.cache.get(key) {
            return Ok(node);
        }
        let raw_key = key.encode();
        let bytes = self
            .storage
            .get(Cf::MerkleNodes, &raw_key)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::MerkleNodes.name(),
                key_hex: codec::hex(&raw_key),
                what: "inner node referenced by its parent",
            })?;
        let node = InnerNode::decode(&bytes).map_err(|reason| StateError::Corrupt {
            cf: Cf::MerkleNodes.name(),
            key_hex: codec::hex(&raw_key),
            reason: format!("undecodable inner node ({} bytes): {reason}", bytes.len()),
        })?;
        self.cache.fill(key, node);
        Ok(node)
    }
}

/// The value of `key_hash` visible at `version` (the newest record at or before it).
pub(crate) fn value_at(
    storage: &Storage,
    key_hash: &KeyHash,
    version: u64,
) -> Result<Option<Vec<u8>>> {
    let seek = codec::value_key(key_hash, version);
    match storage.seek_for_prev(Cf::MerkleValues, &seek, key_hash)? {
        Some((key, value)) => codec::decode_value(&key, &value),
        None => Ok(None),
    }
}

/// Keys and values of leaves, for proofs and reads: a leaf names the version of its value record.
/// Served from the [`LeafCache`] when it holds them.
pub(crate) struct LeafRecords<'a> {
    pub(crate) storage: &'a Storage,
    pub(crate) cache: &'a LeafCache,
}

impl LeafRecords<'_> {
    /// The key and value behind `leaf`, from the cache when it holds them, else from disk without
    /// filling the cache: a walk over every leaf (a snapshot) must not evict the hot entries.
    pub(crate) fn record_uncached(&self, leaf: &Leaf) -> Result<Arc<LeafRecord>> {
        if let Some(record) = self.cache.get(&leaf.key_hash, leaf.version) {
            return Ok(record);
        }
        Ok(Arc::new(LeafRecord {
            key: self.read_key(leaf)?,
            value: self.read_value(leaf)?,
        }))
    }
}

impl LeafData for LeafRecords<'_> {
    /// The key and value behind `leaf`, cached after a disk read.
    fn record(&self, leaf: &Leaf) -> Result<Arc<LeafRecord>> {
        if let Some(record) = self.cache.get(&leaf.key_hash, leaf.version) {
            return Ok(record);
        }
        let record = Arc::new(LeafRecord {
            key: self.read_key(leaf)?,
            value: self.read_value(leaf)?,
        });
        self.cache.fill(leaf.key_hash, leaf.version, record.clone());
        Ok(record)
    }
}

impl LeafRecords<'_> {
    fn read_key(&self, leaf: &Leaf) -> Result<Vec<u8>> {
        self.storage
            .get(Cf::MerklePreimages, &leaf.key_hash)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::MerklePreimages.name(),
                key_hex: codec::hex(&leaf.key_hash),
                what: "preimage of a key in the tree",
            })
    }

    fn read_value(&self, leaf: &Leaf) -> Result<Vec<u8>> {
        // The leaf's own record: exact, and immune to later writes of the key.
        let key = codec::value_key(&leaf.key_hash, leaf.version);
        match self.storage.get(Cf::MerkleValues, &key)? {
            Some(bytes) => codec::decode_value(&key, &bytes)?,
            None => None,
        }
        .ok_or_else(|| StateError::Missing {
            cf: Cf::MerkleValues.name(),
            key_hex: codec::hex(&key),
            what: "value of a leaf in the tree",
        })
    }
}
