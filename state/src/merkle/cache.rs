//! Bounded caches in front of RocksDB: decoded inner nodes, and the key and value behind leaves.
//!
//! Both serve the *latest* tree. An entry is keyed by its position (a node's depth and path, a
//! leaf's key hash) and holds the version it was written at, so a commit's new node simply
//! overwrites the one it replaced at that position (one map operation per changed node, and the map
//! does not grow), and a lookup for another version of that position is a miss that goes to disk.
//! Records are immutable under their (position, version), so an entry never needs invalidation.
//! Entries are filled from disk reads (never displacing a newer version) and from a commit's records
//! while its batch is written: nobody can ask for that version before the write returns, and if it
//! fails the commit takes exactly those entries out again ([`VersionedCache::forget_all`]), because
//! another block of the same height could still be committed instead. A computed but uncommitted
//! update never enters.
//!
//! Eviction is two generations: inserts go to the current map; when it holds half the capacity it
//! becomes the previous one and the old previous one is dropped. Reads look in both and promote hits in
//! the previous one, so what is still used survives a rotation. Memory is bounded by `capacity`
//! entries.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock, RwLockWriteGuard};

use foldhash::fast::RandomState;

use super::hash::KeyHash;
use super::node::{InnerNode, NodeKey};

/// A node's position in the tree: depth and path bits.
pub(crate) type Position = (u8, [u8; 32]);

/// Decoded inner nodes of the latest tree, by position.
#[derive(Debug)]
pub(crate) struct NodeCache(VersionedCache<Position, InnerNode>);

impl NodeCache {
    /// A cache of at most `capacity` nodes; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        Self(VersionedCache::new(capacity))
    }

    /// The cached node at `key`.
    pub(crate) fn get(&self, key: &NodeKey) -> Option<InnerNode> {
        self.0.get(&(key.depth, key.path), key.version)
    }

    /// Caches a node read from disk.
    pub(crate) fn fill(&self, key: &NodeKey, node: InnerNode) {
        self.0.fill((key.depth, key.path), key.version, node);
    }

    /// Caches a commit's new nodes (while its write runs: see the module docs).
    pub(crate) fn insert_committed<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a (NodeKey, InnerNode)>,
    ) {
        self.0.insert_all(
            nodes
                .into_iter()
                .map(|(key, node)| ((key.depth, key.path), key.version, *node)),
        );
    }

    /// Takes out what [`NodeCache::insert_committed`] put in for nodes that did not become durable.
    pub(crate) fn forget_committed(&self, nodes: &[(NodeKey, InnerNode)]) {
        self.0.forget_all(
            nodes
                .iter()
                .map(|(key, _)| ((key.depth, key.path), key.version)),
        );
    }

    /// Number of cached nodes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The original key and the value of leaves of the latest tree, by key hash (a leaf's value record
/// is the version in its slot).
pub(crate) type LeafCache = VersionedCache<KeyHash, Arc<LeafRecord>>;

/// What a proof needs behind a leaf besides the tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LeafRecord {
    /// The key (the key hash's preimage).
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// A two-generation cache of at most `capacity` entries, one version per position; `capacity` 0
/// disables it.
#[derive(Debug)]
pub(crate) struct VersionedCache<P, V> {
    capacity: usize,
    maps: RwLock<Generations<P, V>>,
}

type Map<P, V> = HashMap<P, (u64, V), RandomState>;

#[derive(Debug)]
struct Generations<P, V> {
    current: Map<P, V>,
    previous: Map<P, V>,
}

impl<P: Hash + Eq + Copy, V: Clone> VersionedCache<P, V> {
    /// A cache of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            maps: RwLock::new(Generations {
                current: HashMap::default(),
                previous: HashMap::default(),
            }),
        }
    }

    /// The cached record at `position` if it is the one of `version`.
    pub(crate) fn get(&self, position: &P, version: u64) -> Option<V> {
        {
            let maps = self.maps.read().ok()?;
            if let Some((v, value)) = maps.current.get(position) {
                return (*v == version).then(|| value.clone());
            }
            match maps.previous.get(position) {
                Some((v, _)) if *v == version => {}
                _ => return None,
            }
        }
        // A hit in the previous generation is still in use: promote it so the next rotation keeps it.
        let mut maps = self.write();
        let (v, value) = maps.previous.remove(position)?;
        let hit = (v == version).then(|| value.clone());
        self.insert_locked(&mut maps, *position, v, value);
        hit
    }

    /// Caches a record read from disk, unless a newer version of its position is cached.
    pub(crate) fn fill(&self, position: P, version: u64, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut maps = self.write();
        let newest = [&maps.current, &maps.previous]
            .iter()
            .filter_map(|map| map.get(&position).map(|(v, _)| *v))
            .max();
        if newest.is_none_or(|v| v < version) {
            self.insert_locked(&mut maps, position, version, value);
        }
    }

    /// Caches a commit's records (while its write runs): each is the newest version of its position.
    pub(crate) fn insert_all(&self, entries: impl IntoIterator<Item = (P, u64, V)>) {
        if self.capacity == 0 {
            return;
        }
        let mut maps = self.write();
        for (position, version, value) in entries {
            self.insert_locked(&mut maps, position, version, value);
        }
    }

    /// Removes the entries of exactly these (position, version) pairs.
    pub(crate) fn forget_all(&self, entries: impl IntoIterator<Item = (P, u64)>) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.write();
        let maps = &mut *guard;
        for (position, version) in entries {
            for map in [&mut maps.current, &mut maps.previous] {
                if map.get(&position).is_some_and(|(v, _)| *v == version) {
                    map.remove(&position);
                }
            }
        }
    }

    fn insert_locked(&self, maps: &mut Generations<P, V>, position: P, version: u64, value: V) {
        if maps.current.insert(position, (version, value)).is_some() {
            return; // replaced in place: the map did not grow
        }
        maps.previous.remove(&position);
        let half = (self.capacity / 2).max(1);
        if maps.current.len() >= half {
            // Sized up front: growing a map of a million entries by doubling would copy it again and
            // again inside one commit.
            let fresh = HashMap::with_capacity_and_hasher(half, RandomState::default());
            maps.previous = std::mem::replace(&mut maps.current, fresh);
        }
    }

    /// A poisoned lock only means another thread panicked mid-insert: the maps are still valid.
    fn write(&self) -> RwLockWriteGuard<'_, Generations<P, V>> {
        match self.maps.write() {
            Ok(maps) => maps,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Number of cached entries.
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

    /// A node at position `p` (path byte) written at `version`.
    fn entry(p: u8, version: u64) -> (NodeKey, InnerNode) {
        let leaf = Child::Leaf(Leaf {
            key_hash: [p; 32],
            hash: [2; 32],
            version,
        });
        let mut path = [0; 32];
        path[0] = p;
        (
            NodeKey {
                depth: 8,
                path,
                version,
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
        let entries: Vec<_> = (0..=255u8).map(|p| entry(p, 1)).collect();
        cache.insert_committed(&entries);
        assert!(cache.len() <= 100, "{}", cache.len());
        assert_eq!(cache.get(&entry(255, 1).0), Some(entry(255, 1).1));
        assert_eq!(cache.get(&entry(0, 1).0), None);
        let off = NodeCache::new(0);
        off.insert_committed(&entries);
        assert_eq!(off.get(&entry(1, 1).0), None);
    }

    #[test]
    fn a_commit_replaces_a_position_and_other_versions_miss() {
        let cache = NodeCache::new(100);
        cache.insert_committed(&[entry(7, 1)]);
        cache.insert_committed(&[entry(7, 2)]);
        assert_eq!(cache.len(), 1, "replaced in place");
        assert_eq!(cache.get(&entry(7, 2).0), Some(entry(7, 2).1));
        assert_eq!(
            cache.get(&entry(7, 1).0),
            None,
            "the old version is not served"
        );
        // A disk read of the old version does not displace the newer one.
        let (key, node) = entry(7, 1);
        cache.fill(&key, node);
        assert_eq!(cache.get(&entry(7, 2).0), Some(entry(7, 2).1));
        assert_eq!(cache.get(&entry(7, 1).0), None);
        // A disk read of a newer version than cached does.
        let (key, node) = entry(7, 3);
        cache.fill(&key, node);
        assert_eq!(cache.get(&entry(7, 3).0), Some(entry(7, 3).1));
    }

    #[test]
    fn hits_in_the_previous_generation_survive_rotations() {
        let cache = NodeCache::new(8);
        cache.insert_committed(&[entry(0, 1)]);
        for p in 1..=40u8 {
            // Position 0 is read between every insert, so it is promoted before each rotation.
            assert_eq!(cache.get(&entry(0, 1).0), Some(entry(0, 1).1), "after {p}");
            cache.insert_committed(&[entry(p, 1)]);
        }
        assert!(cache.len() <= 8);
    }
}
