//! jmt's storage traits backed by the RocksDB column families.

use jmt::storage::{HasPreimage, LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};

use super::codec;
use crate::storage::{Cf, Storage};

/// Read-only view of the committed tree for jmt.
pub(crate) struct DbReader<'a> {
    pub(crate) storage: &'a Storage,
}

impl TreeReader for DbReader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = codec::node_key_bytes(node_key)?;
        match self.storage.get(Cf::MerkleNodes, &key)? {
            Some(bytes) => Ok(Some(codec::decode_node(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let seek = codec::value_key(&key_hash, max_version);
        match self
            .storage
            .seek_for_prev(Cf::MerkleValues, &seek, &key_hash.0)?
        {
            Some((key, value)) => Ok(codec::decode_value(&key, &value)?),
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's snapshot restore calls this; Basalt does not restore trees from chunks.
        Err(anyhow::anyhow!(
            "get_rightmost_leaf is not supported by the RocksDB tree reader"
        ))
    }
}

impl HasPreimage for DbReader<'_> {
    fn preimage(&self, key_hash: KeyHash) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.storage.get(Cf::MerklePreimages, &key_hash.0)?)
    }
}
