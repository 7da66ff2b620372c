//! The root a write set *will* give, computed without writing anything.
//!
//! [`crate::StateStore::commit_block`] computes the root while committing; `finalize_block` must announce
//! the app hash before the commit, so this runs the same Jellyfish update on a read-only view of the
//! committed tree and throws the node batch away. [`super::Application::commit`] then checks that the
//! store arrived at the same root (a pair of assertions around the write).
//!
//! Cost: the block's Merkle update is computed twice (here and in the commit). A store API that commits a
//! previously computed update would remove that; noted for the store's owner.

use std::collections::BTreeMap;

use basalt_consensus::types::Hash;
use jmt::{JellyfishMerkleTree, KeyHash};

use crate::error::StateError;
use crate::merkle::reader::DbReader;
use crate::merkle::spec::TreeHasher;
use crate::store::{StateStore, Write};

/// The root after applying `writes` on top of `base_version` (the last write of a key wins, as in the
/// store). Needs `base_version` committed; never writes.
pub(crate) fn preview_root(
    store: &StateStore,
    base_version: u64,
    writes: &[Write],
) -> Result<Hash, StateError> {
    let base_root = store.root(base_version)?;
    if writes.is_empty() {
        return Ok(Hash(base_root));
    }
    let version = base_version
        .checked_add(1)
        .ok_or(StateError::NonContiguousVersion {
            version: base_version,
            expected: base_version,
        })?;
    let mut kvs: BTreeMap<[u8; 32], (KeyHash, Option<Vec<u8>>)> = BTreeMap::new();
    for (key, value) in writes {
        let hash = KeyHash::with::<TreeHasher>(key);
        kvs.insert(hash.0, (hash, value.clone()));
    }
    let reader = DbReader {
        storage: store.storage(),
    };
    let tree = JellyfishMerkleTree::<_, TreeHasher>::new(&reader);
    let tree_err = |e: anyhow::Error| StateError::Tree {
        version,
        message: format!("{e:#}"),
    };
    let all_upserts = kvs.values().all(|(_, v)| v.is_some());
    let root = if all_upserts {
        let set: Vec<_> = kvs
            .into_values()
            .filter_map(|(h, v)| v.map(|v| (h, v)))
            .collect();
        let (roots, _) = tree
            .batch_put_value_sets(vec![set], None, version)
            .map_err(tree_err)?;
        roots.last().copied().ok_or_else(|| StateError::Tree {
            version,
            message: "batch update returned no root".to_owned(),
        })?
    } else {
        tree.put_value_set(kvs.into_values(), version)
            .map_err(tree_err)?
            .0
    };
    Ok(Hash(root.0))
}
