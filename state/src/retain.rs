//! Block retention: the base height (oldest stored block) and [`StateStore::prune_blocks`].
//!
//! Independent of the Merkle state's pruning ([`StateStore::prune`]): a node may keep every state
//! version and few blocks, or the reverse. Each call deletes whole heights — block, commit, block-hash
//! entry, results, transaction locations and event entries ([`crate::index`]) — and raises the base in
//! the **same** batch, so a reader never sees a half-deleted height and a crash leaves the base where
//! the surviving data starts. The batch is not synced: a lost prune is redone by the next call.

use rocksdb::WriteBatch;

use crate::error::Result;
use crate::index;
use crate::meta;
use crate::storage::Cf;
use crate::store::StateStore;

/// What one [`StateStore::prune_blocks`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlocksPruned {
    /// Oldest height whose block is still stored after the call (`None`: no block stored).
    pub base_height: Option<u64>,
    /// Heights deleted by this call.
    pub heights_deleted: u64,
    /// Records deleted by this call (blocks, commits, index entries).
    pub records_deleted: usize,
    /// Whether heights below the requested retain height remain (call again).
    pub more: bool,
}

impl StateStore {
    /// Oldest height whose block is still stored, if any block is.
    pub fn base_height(&self) -> Result<Option<u64>> {
        match meta::get_u64(self.storage(), meta::BLOCKS_BASE)? {
            Some(base) => Ok(Some(base)),
            // A database written before the base record existed.
            None => self.first_stored_block(),
        }
    }

    /// Deletes the blocks below `retain_height` with everything indexed for them, oldest first, whole
    /// heights at a time until about [`crate::StoreConfig::prune_batch_limit`] records are deleted
    /// (at least one height per call). Never deletes the latest committed version's block: the
    /// effective retain height is `min(retain_height, latest version)`. Call again while
    /// [`BlocksPruned::more`].
    pub fn prune_blocks(&self, retain_height: u64) -> Result<BlocksPruned> {
        let _guard = self.lock()?;
        let (Some(latest), Some(base)) = (self.latest_version()?, self.base_height()?) else {
            return Ok(BlocksPruned::default());
        };
        let target = retain_height.min(latest);
        let mut report = BlocksPruned {
            base_height: Some(base),
            ..BlocksPruned::default()
        };
        if target <= base {
            return Ok(report);
        }
        let limit = self.config().prune_batch_limit.max(1);
        let st = self.storage();
        let mut batch = WriteBatch::default();
        let mut height = base;
        while height < target && (height == base || report.records_deleted < limit) {
            report.records_deleted += index::delete_block(st, &mut batch, height)?;
            report.heights_deleted += 1;
            height += 1;
        }
        st.batch_put(
            &mut batch,
            Cf::Metadata,
            meta::BLOCKS_BASE,
            &height.to_be_bytes(),
        )?;
        st.write_unsynced(batch)?;
        report.base_height = Some(height);
        report.more = height < target;
        Ok(report)
    }

    /// The lowest height with a stored block, by scanning the `blocks` family (height keys are 8
    /// bytes and sort before the `hash/` entries).
    pub(crate) fn first_stored_block(&self) -> Result<Option<u64>> {
        let first =
            self.storage()
                .scan(Cf::Blocks, &[0u8; 8], index::keys::BLOCK_HASH_PREFIX, 1)?;
        Ok(first
            .first()
            .and_then(|(k, _)| <[u8; 8]>::try_from(&k[..]).ok().map(u64::from_be_bytes)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::{BlockCommit, StoreConfig};

    fn commit(store: &StateStore, height: u64) {
        store
            .commit_block(BlockCommit {
                height,
                block: format!("block {height}").into_bytes(),
                block_hash: Some([height as u8; 32]),
                ..BlockCommit::default()
            })
            .unwrap();
    }

    /// A database written before the base record existed: the base is found by scanning, and the next
    /// commit records that (not its own height).
    #[test]
    fn base_height_without_its_record_falls_back_to_the_first_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
        store.apply_batch(4, Vec::new()).unwrap();
        assert_eq!(store.base_height().unwrap(), None);
        for h in 5..=7 {
            commit(&store, h);
        }
        let mut batch = WriteBatch::default();
        let st = store.storage();
        st.batch_delete(&mut batch, Cf::Metadata, meta::BLOCKS_BASE)
            .unwrap();
        st.write_synced(batch).unwrap();
        assert_eq!(store.base_height().unwrap(), Some(5));
        commit(&store, 8);
        assert_eq!(
            meta::get_u64(store.storage(), meta::BLOCKS_BASE).unwrap(),
            Some(5)
        );
        let pruned = store.prune_blocks(7).unwrap();
        assert_eq!(
            pruned,
            BlocksPruned {
                base_height: Some(7),
                heights_deleted: 2,
                records_deleted: 2 * 5, // block, commit, hash entry, block record, tx counts
                more: false,
            }
        );
        assert_eq!(store.block_height_by_hash(&[5; 32]).unwrap(), None);
        assert_eq!(store.block_height_by_hash(&[7; 32]).unwrap(), Some(7));
    }
}
