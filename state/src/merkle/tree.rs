//! The versioned binary sparse Merkle tree: one version's update, computed from the previous version's
//! nodes without writing anything.
//!
//! Shape (canonical, so equal contents give equal roots whatever the history): a subtree with no leaf
//! is [`Child::Empty`], with one leaf is that leaf, with more is an inner node splitting on the next
//! key-hash bit. An update walks only the paths of the written keys: untouched subtrees are neither
//! read nor re-hashed. Large batches split at the root and run the two halves on two threads.

use super::hash::{bit, inner_hash, leaf_hash, Hash, KeyHash};
use super::node::{with_bit, Child, InnerNode, Leaf, NodeKey};
use crate::error::{Result, StateError};

/// Reads the inner nodes of committed versions.
pub(crate) trait NodeSource: Sync {
    /// The node stored at `key`; an error if it is missing or undecodable.
    fn node(&self, key: &NodeKey) -> Result<InnerNode>;
}

/// One key's write: a new value (by its hash) or a deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeafWrite {
    /// `blake2s(key)`.
    pub key_hash: KeyHash,
    /// `blake2s(value)`, or `None` to delete.
    pub value_hash: Option<Hash>,
}

/// Everything one version's update produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeUpdate {
    /// The version's root.
    pub root: Option<Child>,
    /// Inner nodes written by this version.
    pub new_nodes: Vec<(NodeKey, InnerNode)>,
    /// Nodes of earlier versions this version replaced (stale since this version).
    pub stale_nodes: Vec<NodeKey>,
    /// Value records `(key hash, version)` this version superseded (changed or deleted keys).
    pub stale_values: Vec<(KeyHash, u64)>,
    /// Keys whose value this version sets (new or changed).
    pub upserted: Vec<KeyHash>,
    /// Keys that existed and this version deletes.
    pub deleted: Vec<KeyHash>,
}

/// Batches at least this large split at the root onto two threads.
const PARALLEL_MIN_WRITES: usize = 2048;

/// Computes `version`'s tree from `root` (the previous version's root) and `writes`, which must be
/// sorted by key hash with each key hash at most once.
pub(crate) fn update<S: NodeSource>(
    source: &S,
    root: Child,
    version: u64,
    writes: &[LeafWrite],
) -> Result<TreeUpdate> {
    if writes.windows(2).any(|w| w[0].key_hash >= w[1].key_hash) {
        return Err(StateError::Tree {
            version,
            message: "writes not strictly ordered by key hash".to_owned(),
        });
    }
    let updater = Updater { source, version };
    let mut out = TreeUpdate::default();
    let new_root = match root {
        Child::Inner { version: v, hash } if writes.len() >= PARALLEL_MIN_WRITES => {
            updater.update_root_in_parallel(v, hash, writes, &mut out)?
        }
        _ => updater.update(root, 0, [0; 32], writes, &mut out)?,
    };
    out.root = Some(new_root);
    Ok(out)
}

struct Updater<'a, S> {
    source: &'a S,
    version: u64,
}

impl<S: NodeSource> Updater<'_, S> {
    /// The root's two subtrees on two threads, each into its own output, then merged.
    fn update_root_in_parallel(
        &self,
        root_version: u64,
        root_hash: Hash,
        writes: &[LeafWrite],
        out: &mut TreeUpdate,
    ) -> Result<Child> {
        let key = NodeKey {
            depth: 0,
            path: [0; 32],
            version: root_version,
        };
        let node = self.source.node(&key)?;
        let split = writes.partition_point(|w| !bit(&w.key_hash, 0));
        let (left_writes, right_writes) = writes.split_at(split);
        let mut right_out = TreeUpdate::default();
        let (left, right) = std::thread::scope(|s| {
            let right = s.spawn(|| {
                self.update(
                    node.right,
                    1,
                    with_bit([0; 32], 0),
                    right_writes,
                    &mut right_out,
                )
            });
            let left = self.update(node.left, 1, [0; 32], left_writes, out);
            let right = right.join().unwrap_or_else(|_| {
                Err(StateError::Tree {
                    version: self.version,
                    message: "tree update thread panicked".to_owned(),
                })
            });
            (left, right)
        });
        let (left, right) = (left?, right?);
        out.new_nodes.append(&mut right_out.new_nodes);
        out.stale_nodes.append(&mut right_out.stale_nodes);
        out.stale_values.append(&mut right_out.stale_values);
        out.upserted.append(&mut right_out.upserted);
        out.deleted.append(&mut right_out.deleted);
        if left == node.left && right == node.right {
            return Ok(Child::Inner {
                version: root_version,
                hash: root_hash,
            });
        }
        out.stale_nodes.push(key);
        self.join(0, [0; 32], left, right, out)
    }

    /// The subtree at (`depth`, `path`), now `child`, after `writes` (all under that prefix).
    fn update(
        &self,
        child: Child,
        depth: usize,
        path: [u8; 32],
        writes: &[LeafWrite],
        out: &mut TreeUpdate,
    ) -> Result<Child> {
        if writes.is_empty() {
            return Ok(child);
        }
        match child {
            Child::Empty => {
                let leaves: Vec<Leaf> = writes
                    .iter()
                    .filter_map(|w| w.value_hash.map(|vh| self.new_leaf(w.key_hash, &vh, out)))
                    .collect();
                self.build(depth, path, &leaves, out)
            }
            Child::Leaf(existing) => self.merge_into_leaf(existing, depth, path, writes, out),
            Child::Inner { version, hash } => {
                let key = NodeKey {
                    depth: self.depth_byte(depth)?,
                    path,
                    version,
                };
                let node = self.source.node(&key)?;
                let split = writes.partition_point(|w| !bit(&w.key_hash, depth));
                let (left_writes, right_writes) = writes.split_at(split);
                let left = self.update(node.left, depth + 1, path, left_writes, out)?;
                let right = self.update(
                    node.right,
                    depth + 1,
                    with_bit(path, depth),
                    right_writes,
                    out,
                )?;
                if left == node.left && right == node.right {
                    return Ok(Child::Inner { version, hash });
                }
                out.stale_nodes.push(key);
                self.join(depth, path, left, right, out)
            }
        }
    }

    /// A subtree that was one leaf, after `writes`.
    fn merge_into_leaf(
        &self,
        existing: Leaf,
        depth: usize,
        path: [u8; 32],
        writes: &[LeafWrite],
        out: &mut TreeUpdate,
    ) -> Result<Child> {
        let mut leaves = Vec::with_capacity(writes.len() + 1);
        let mut existing_placed = false;
        let mut changed = false;
        for w in writes {
            if !existing_placed && existing.key_hash < w.key_hash {
                leaves.push(existing);
                existing_placed = true;
            }
            if w.key_hash == existing.key_hash {
                existing_placed = true;
                match &w.value_hash {
                    Some(vh) if leaf_hash(&w.key_hash, vh) == existing.hash => {
                        leaves.push(existing); // Same value again: nothing changes.
                    }
                    Some(vh) => {
                        out.stale_values.push((existing.key_hash, existing.version));
                        leaves.push(self.new_leaf(w.key_hash, vh, out));
                        changed = true;
                    }
                    None => {
                        out.stale_values.push((existing.key_hash, existing.version));
                        out.deleted.push(existing.key_hash);
                        changed = true;
                    }
                }
            } else if let Some(vh) = &w.value_hash {
                leaves.push(self.new_leaf(w.key_hash, vh, out));
                changed = true;
            }
        }
        if !existing_placed {
            leaves.push(existing);
        }
        if !changed {
            return Ok(Child::Leaf(existing));
        }
        self.build(depth, path, &leaves, out)
    }

    /// A fresh subtree at (`depth`, `path`) holding `leaves` (sorted, distinct, all under the prefix).
    fn build(
        &self,
        depth: usize,
        path: [u8; 32],
        leaves: &[Leaf],
        out: &mut TreeUpdate,
    ) -> Result<Child> {
        match leaves {
            [] => Ok(Child::Empty),
            [leaf] => Ok(Child::Leaf(*leaf)),
            _ => {
                // Distinct 256-bit key hashes part at some depth below 256.
                let split = leaves.partition_point(|l| !bit(&l.key_hash, depth));
                let left = self.build(depth + 1, path, &leaves[..split], out)?;
                let right = self.build(depth + 1, with_bit(path, depth), &leaves[split..], out)?;
                self.join(depth, path, left, right, out)
            }
        }
    }

    /// The subtree with children `left` and `right`: nothing, a lifted lone leaf, or a new inner node.
    fn join(
        &self,
        depth: usize,
        path: [u8; 32],
        left: Child,
        right: Child,
        out: &mut TreeUpdate,
    ) -> Result<Child> {
        match (left, right) {
            (Child::Empty, Child::Empty) => Ok(Child::Empty),
            (Child::Leaf(leaf), Child::Empty) | (Child::Empty, Child::Leaf(leaf)) => {
                Ok(Child::Leaf(leaf))
            }
            (left, right) => {
                let key = NodeKey {
                    depth: self.depth_byte(depth)?,
                    path,
                    version: self.version,
                };
                let hash = inner_hash(&left.hash(), &right.hash());
                out.new_nodes.push((key, InnerNode { left, right }));
                Ok(Child::Inner {
                    version: self.version,
                    hash,
                })
            }
        }
    }

    fn new_leaf(&self, key_hash: KeyHash, value_hash: &Hash, out: &mut TreeUpdate) -> Leaf {
        out.upserted.push(key_hash);
        Leaf {
            key_hash,
            hash: leaf_hash(&key_hash, value_hash),
            version: self.version,
        }
    }

    /// Inner nodes sit above bit 255 at the deepest: two distinct key hashes differ at some bit.
    fn depth_byte(&self, depth: usize) -> Result<u8> {
        u8::try_from(depth).map_err(|_| StateError::Tree {
            version: self.version,
            message: format!("inner node at depth {depth}: duplicate key hashes"),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use super::*;
    use crate::merkle::hash::{key_hash, value_hash, EMPTY_CHILD};

    #[derive(Default)]
    struct MemNodes(Mutex<HashMap<NodeKey, InnerNode>>);

    impl NodeSource for MemNodes {
        fn node(&self, key: &NodeKey) -> Result<InnerNode> {
            self.0
                .lock()
                .unwrap()
                .get(key)
                .copied()
                .ok_or(StateError::Missing {
                    cf: "mem",
                    key_hex: String::new(),
                    what: "node",
                })
        }
    }

    /// The canonical root computed from scratch, recursively over sorted (key hash, leaf hash) pairs.
    fn reference_root(leaves: &[(KeyHash, Hash)], depth: usize) -> Hash {
        match leaves {
            [] => EMPTY_CHILD,
            [(_, h)] => *h,
            _ => {
                let split = leaves.partition_point(|(k, _)| !bit(k, depth));
                inner_hash(
                    &reference_root(&leaves[..split], depth + 1),
                    &reference_root(&leaves[split..], depth + 1),
                )
            }
        }
    }

    fn writes(batch: &BTreeMap<KeyHash, Option<Hash>>) -> Vec<LeafWrite> {
        batch
            .iter()
            .map(|(k, v)| LeafWrite {
                key_hash: *k,
                value_hash: *v,
            })
            .collect()
    }

    /// Random versions of upserts and deletes (some large enough for the parallel path) against a
    /// model: every root equals the reference root, and no node is written twice or read missing.
    #[test]
    fn roots_match_the_reference_across_versions() {
        let nodes = MemNodes::default();
        let mut model: BTreeMap<KeyHash, Hash> = BTreeMap::new();
        let mut root = Child::Empty;
        let mut seed = 1u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for version in 1..=40u64 {
            let size = if version % 10 == 0 { 3000 } else { next() % 64 };
            let mut batch = BTreeMap::new();
            for _ in 0..size {
                let k = key_hash(&(next() % 4000).to_le_bytes());
                let v = if next() % 4 == 0 {
                    None
                } else {
                    Some(value_hash(&(next() % 3).to_le_bytes()))
                };
                batch.insert(k, v);
            }
            let update = update(&nodes, root, version, &writes(&batch)).unwrap();
            for (k, v) in &batch {
                match v {
                    Some(v) => model.insert(*k, leaf_hash(k, v)),
                    None => model.remove(k),
                };
            }
            let mut map = nodes.0.lock().unwrap();
            for (key, node) in &update.new_nodes {
                assert!(map.insert(*key, *node).is_none(), "node written twice");
            }
            drop(map);
            root = update.root.unwrap();
            let expected: Vec<_> = model.iter().map(|(k, h)| (*k, *h)).collect();
            assert_eq!(
                root.hash(),
                reference_root(&expected, 0),
                "version {version}"
            );
        }
    }

    #[test]
    fn rewriting_the_same_value_changes_nothing() {
        let nodes = MemNodes::default();
        let batch: BTreeMap<_, _> = (0..50u32)
            .map(|i| (key_hash(&i.to_le_bytes()), Some(value_hash(b"v"))))
            .collect();
        let first = update(&nodes, Child::Empty, 1, &writes(&batch)).unwrap();
        nodes
            .0
            .lock()
            .unwrap()
            .extend(first.new_nodes.iter().copied());
        let again = update(&nodes, first.root.unwrap(), 2, &writes(&batch)).unwrap();
        assert_eq!(again.root, first.root);
        assert!(again.new_nodes.is_empty() && again.stale_nodes.is_empty());
        assert!(again.upserted.is_empty() && again.stale_values.is_empty());
    }

    #[test]
    fn unordered_writes_are_refused() {
        let w = |b: u8| LeafWrite {
            key_hash: [b; 32],
            value_hash: None,
        };
        assert!(update(&MemNodes::default(), Child::Empty, 1, &[w(2), w(1)]).is_err());
        assert!(update(&MemNodes::default(), Child::Empty, 1, &[w(1), w(1)]).is_err());
    }
}
