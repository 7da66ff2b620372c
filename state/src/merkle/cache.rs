//! Bounded caches in front of RocksDB: decoded inner nodes, and the key and value behind leaves.
//!
//! Both hold immutable records: nodes are immutable under their key (a changed node is written under a new version), so the cache
//! never needs invalidation: it is filled from nodes read from disk and from nodes of a commit *after*
//! its batch is durable (likewise a leaf's value record, keyed by key hash and version), never from a computed but uncommitted update (another block of the same height
//! could still be committed instead). The nodes a commit replaces are dropped from it, so it holds the
//! latest tree rather than history.
//!
//! Eviction is two generations: inserts go to the current map; when it holds half the capacity it
//! becomes the previous one and the old previous one is dropped. Reads look in both and promote hits in
//! the previous one, so what is still used survives a rotation. Memory is bounded by `capacity`
//! entries.

use std::collections::HashMap;
use std::sync::RwLock;

use std::hash::Hash;
use std::sync::Arc;

use super::hash::KeyHash;
use super::node::{InnerNode, NodeKey};

/// Decoded inner nodes of committed versions.
pub(crate) type NodeCache = BoundedCache<NodeKey, InnerNode>;

/// The original key and the value of a leaf, by key hash and the version of its value record.
pub(crate) type LeafCache = BoundedCache<(KeyHash, u64), Arc<LeafRecord>>;

/// What a proof needs behind a leaf besides the tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LeafRecord {
    /// The key (the key hash's preimage).
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// A two-generation cache of at most `capacity` entries; `capacity` 0 disables it.
#[derive(Debug)]
pub(crate) struct BoundedCache<K, V> {
    capacity: usize,
    maps: RwLock<Generations<K, V>>,
}

#[derive(Debug)]
struct Generations<K, V> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    /// A cache of at most `capacity` nodes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            maps: RwLock::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
            }),
        }
    }

    /// The cached node at `key`.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        {
            let maps = self.maps.read().ok()?;
            if let Some(value) = maps.current.get(key) {
                return Some(value.clone());
            }
            if !maps.previous.contains_key(key) {
                return None;
            }
        }
        // A hit in the previous generation is still in use: promote it so the next rotation keeps it.
        let mut maps = self.maps.write().ok()?;
        let value = maps.previous.remove(key)?;
        self.insert_locked(&mut maps, key.clone(), value.clone());
        Some(value)
    }

    fn insert_locked(&self, maps: &mut Generations<K, V>, key: K, value: V) {
        if maps.current.len() >= (self.capacity / 2).max(1) {
            maps.previous = std::mem::take(&mut maps.current);
        }
        maps.current.insert(key, value);
    }

    /// Caches nodes known to be durable.
    pub(crate) fn insert_all(&self, entries: impl IntoIterator<Item = (K, V)>) {
        if self.capacity == 0 {
            return;
        }
        // A poisoned lock only means another thread panicked mid-insert: the maps are still valid.
        let mut maps = match self.maps.write() {
            Ok(maps) => maps,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (key, value) in entries {
            self.insert_locked(&mut maps, key, value);
        }
    }

    /// Forgets records a commit replaced: still valid for older versions, but the cache serves the
    /// latest tree, and keeping them would crowd out live ones.
    pub(crate) fn remove_all<'a>(&self, keys: impl IntoIterator<Item = &'a K>)
    where
        K: 'a,
    {
        if self.capacity == 0 {
            return;
        }
        let mut maps = match self.maps.write() {
            Ok(maps) => maps,
            Err(poisoned) => poisoned.into_inner(),
        };
        for key in keys {
            if maps.current.remove(key).is_none() {
                maps.previous.remove(key);
            }
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
        cache.remove_all([&entry(999).0]);
        assert_eq!(cache.get(&entry(999).0), None);
        let off = NodeCache::new(0);
        off.insert_all((0..10).map(entry));
        assert_eq!(off.get(&entry(1).0), None);
    }
}
