//! A bounded cache of decoded internal tree nodes, in front of RocksDB.
//!
//! Why: every lookup, proof and update walks from the root through ~5 internal nodes (at 1M keys) before
//! it reaches a leaf, and without a cache each step is a RocksDB read plus a borsh decode of a ~900-byte
//! node. The upper levels are shared by every path, so a few tens of thousands of nodes cover nearly all
//! of those steps. Nodes are immutable (a node key names a version), so a cached node can never be stale;
//! pruning deletes nodes only of versions that can no longer be queried.
//!
//! Leaves are not cached: there is one per key, each read about once per update.

use std::sync::Mutex;

use hashlink::LruCache;
use jmt::storage::{Node, NodeKey};

/// Least-recently-used internal nodes, at most `capacity` of them.
pub(crate) struct NodeCache {
    nodes: Option<Mutex<LruCache<NodeKey, Node>>>,
}

impl std::fmt::Debug for NodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self
            .nodes
            .as_ref()
            .and_then(|m| m.lock().ok().map(|c| c.len()));
        f.debug_struct("NodeCache").field("len", &len).finish()
    }
}

impl NodeCache {
    /// A cache of at most `capacity` nodes; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            nodes: (capacity > 0).then(|| Mutex::new(LruCache::new(capacity))),
        }
    }

    /// The cached node under `key`, if any.
    pub(crate) fn get(&self, key: &NodeKey) -> Option<Node> {
        let mut nodes = self.nodes.as_ref()?.lock().ok()?;
        nodes.get(key).cloned()
    }

    /// Remembers `node` if it is an internal node (see the module docs for why leaves are not kept).
    pub(crate) fn insert(&self, key: &NodeKey, node: &Node) {
        if !matches!(node, Node::Internal(_)) {
            return;
        }
        // A poisoned lock only means another thread panicked mid-insert: skip caching, never fail a read.
        if let Some(Ok(mut nodes)) = self.nodes.as_ref().map(Mutex::lock) {
            nodes.insert(key.clone(), node.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merkle::codec;
    use crate::storage::Cf;
    use crate::{StateStore, StoreConfig};

    /// The root node of each of `versions` versions of a small tree (internal nodes), and a leaf.
    fn nodes(versions: u64) -> (Vec<(NodeKey, Node)>, (NodeKey, Node)) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
        let mut roots = Vec::new();
        for v in 1..=versions {
            let writes = (0..20u8)
                .map(|i| (vec![i], Some(vec![i, v as u8])))
                .collect();
            store.apply_batch(v, writes).unwrap();
            let key = codec::root_node_key(v).unwrap();
            let bytes = codec::node_key_bytes(&key).unwrap();
            let raw = store
                .storage()
                .get(Cf::MerkleNodes, &bytes)
                .unwrap()
                .unwrap();
            roots.push((key, codec::decode_node(&bytes, &raw).unwrap()));
        }
        let leaf = (
            codec::root_node_key(0).unwrap(),
            Node::Leaf(jmt::storage::LeafNode::new(
                jmt::KeyHash([1; 32]),
                jmt::ValueHash([2; 32]),
            )),
        );
        (roots, leaf)
    }

    #[test]
    fn keeps_internal_nodes_only_and_evicts_the_least_recent() {
        let (roots, (leaf_key, leaf)) = nodes(3);
        assert!(roots.iter().all(|(_, n)| matches!(n, Node::Internal(_))));
        let cache = NodeCache::new(2);
        cache.insert(&leaf_key, &leaf);
        assert!(cache.get(&leaf_key).is_none());
        cache.insert(&roots[0].0, &roots[0].1);
        cache.insert(&roots[1].0, &roots[1].1);
        assert_eq!(cache.get(&roots[0].0), Some(roots[0].1.clone())); // now the most recent
        cache.insert(&roots[2].0, &roots[2].1);
        assert!(cache.get(&roots[1].0).is_none());
        assert_eq!(cache.get(&roots[0].0), Some(roots[0].1.clone()));
        assert_eq!(cache.get(&roots[2].0), Some(roots[2].1.clone()));
    }

    #[test]
    fn zero_capacity_disables_it() {
        let (roots, _) = nodes(1);
        let cache = NodeCache::new(0);
        cache.insert(&roots[0].0, &roots[0].1);
        assert!(cache.get(&roots[0].0).is_none());
    }
}
