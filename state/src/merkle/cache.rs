//! A bounded cache of decoded inner nodes in front of RocksDB.
//!
//! Nodes are immutable under their key (a changed node is written under a new version), so the cache
//! never needs invalidation: it is filled from nodes read from disk and from nodes of a commit *after*
//! its batch is durable, never from a computed but uncommitted update (another block of the same height
//! could still be committed instead).
//!
//! Eviction is two generations: inserts go to the current map; when it holds half the capacity it
//! becomes the previous one and the old previous one is dropped. Reads look in both. Memory is bounded
//! by `capacity` entries (about 240 bytes each), and the nodes an update or proof touches again and
//! again (the top of the tree) are re-inserted whenever they are read from disk.

use std::collections::HashMap;
use std::sync::RwLock;

use super::node::{InnerNode, NodeKey};

/// The node cache; `capacity` 0 disables it.
#[derive(Debug)]
pub(crate) struct NodeCache {
    capacity: usize,
    maps: RwLock<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<NodeKey, InnerNode>,
    previous: HashMap<NodeKey, InnerNode>,
}

impl NodeCache {
    /// A cache of at most `capacity` nodes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            maps: RwLock::new(Generations::default()),
        }
    }

    /// The cached node at `key`.
    pub(crate) fn get(&self, key: &NodeKey) -> Option<InnerNode> {
        let maps = self.maps.read().ok()?;
        maps.current
            .get(key)
            .or_else(|| maps.previous.get(key))
            .copied()
    }

    /// Caches nodes known to be durable.
    pub(crate) fn insert_all(&self, nodes: impl IntoIterator<Item = (NodeKey, InnerNode)>) {
        if self.capacity == 0 {
            return;
        }
        let half = (self.capacity / 2).max(1);
        // A poisoned lock only means another thread panicked mid-insert: the maps are still valid.
        let mut maps = match self.maps.write() {
            Ok(maps) => maps,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (key, node) in nodes {
            if maps.current.len() >= half {
                maps.previous = std::mem::take(&mut maps.current);
            }
            maps.current.insert(key, node);
        }
    }

    /// Number of cached nodes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.maps
            .read()
            .map(|m| m.current.len() + m.previous.len())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::merkle::node::{Child, Leaf};

    fn entry(i: u64) -> (NodeKey, InnerNode) {
        let leaf = Child::Leaf(Leaf {
            key_hash: [1; 32],
            hash: [2; 32],
            version: i,
        });
        (
            NodeKey {
                depth: 1,
                path: [0; 32],
                version: i,
            },
            InnerNode {
                left: leaf,
                right: leaf,
            },
        )
    }

    #[test]
    fn stays_within_capacity_and_keeps_recent_entries() {
        let cache = NodeCache::new(100);
        cache.insert_all((0..1000).map(entry));
        assert!(cache.len() <= 100, "{}", cache.len());
        assert_eq!(cache.get(&entry(999).0), Some(entry(999).1));
        assert_eq!(cache.get(&entry(0).0), None);
        let off = NodeCache::new(0);
        off.insert_all((0..10).map(entry));
        assert_eq!(off.get(&entry(1).0), None);
    }
}
