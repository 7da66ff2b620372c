//! Incremental pruning: keep the latest `keep_recent` versions, delete what only older versions used.
//!
//! jmt records, for every node a version replaced, "stale since version s" (the `merkle_stale` family,
//! ordered by s). A node stale since s is only reachable from versions < s, so once the oldest retained
//! version `e` satisfies `s <= e` the node can go. Each call deletes at most
//! [`StoreConfig::prune_batch_limit`](crate::StoreConfig) nodes, so a node catching up after a config
//! change never stalls a block; call it after each commit. The new `earliest_version` is written
//! *before* anything is deleted, so a query never walks into half-pruned versions.
//!
//! Values: when a stale leaf is deleted, the records of its key below the horizon are trimmed to the one
//! still visible at `e` (or to nothing, if that one is a deletion marker). Root nodes of pruned versions
//! are deleted by version, because jmt does not mark an unchanged root (an empty block) stale.

use std::collections::BTreeSet;

use jmt::storage::Node;
use rocksdb::WriteBatch;

use crate::error::Result;
use crate::merkle::codec;
use crate::meta;
use crate::storage::Cf;
use crate::store::{PruneReport, StateStore};

impl StateStore {
    /// Deletes up to `prune_batch_limit` stale nodes of versions older than the latest `keep_recent`.
    /// Does nothing on an archive node (`keep_recent == 0`). Call repeatedly while
    /// [`PruneReport::more`] is true.
    pub fn prune(&self) -> Result<PruneReport> {
        let _guard = self.lock()?;
        let keep = self.config().keep_recent;
        let limit = self.config().prune_batch_limit.max(1);
        let (Some(latest), Some(earliest)) = (self.latest_version()?, self.earliest_version()?)
        else {
            return Ok(PruneReport::default());
        };
        let horizon = latest.saturating_add(1).saturating_sub(keep).max(earliest);
        if keep == 0 {
            return Ok(PruneReport {
                earliest_version: Some(earliest),
                ..PruneReport::default()
            });
        }
        let st = self.storage();
        if horizon > earliest {
            let mut batch = WriteBatch::default();
            st.batch_put(
                &mut batch,
                Cf::Metadata,
                meta::EARLIEST_VERSION,
                &horizon.to_be_bytes(),
            )?;
            // Synced: queries must stop reaching these versions before their nodes disappear.
            st.write_synced(batch)?;
        }

        let mut batch = WriteBatch::default();
        // Roots of pruned versions, and their metadata roots.
        let mut report = PruneReport {
            earliest_version: Some(horizon),
            ..PruneReport::default()
        };
        let first_root = self.oldest_recorded_root()?.unwrap_or(horizon);
        for version in first_root..horizon {
            if report.nodes_deleted >= limit {
                report.more = true;
                break;
            }
            let root_key = codec::node_key_bytes(&codec::root_node_key(version)?)?;
            st.batch_delete(&mut batch, Cf::MerkleNodes, &root_key)?;
            st.batch_delete(&mut batch, Cf::Metadata, &meta::root_key(version))?;
            report.nodes_deleted += 1;
        }

        // Stale nodes with stale_since <= horizon.
        let stale = st.scan(
            Cf::MerkleStale,
            &[],
            &horizon.saturating_add(1).to_be_bytes(),
            limit.saturating_sub(report.nodes_deleted),
        )?;
        if stale.len() == limit.saturating_sub(report.nodes_deleted) {
            report.more = true;
        }
        let mut leaf_keys = BTreeSet::new();
        for (stale_key, _) in &stale {
            let (_, node_key) = codec::split_stale_key(stale_key)?;
            let node_bytes = codec::node_key_bytes(&node_key)?;
            if let Some(raw) = st.get(Cf::MerkleNodes, &node_bytes)? {
                if let Node::Leaf(leaf) = codec::decode_node(&node_bytes, &raw)? {
                    leaf_keys.insert(leaf.key_hash().0);
                }
            }
            st.batch_delete(&mut batch, Cf::MerkleNodes, &node_bytes)?;
            st.batch_delete(&mut batch, Cf::MerkleStale, stale_key)?;
            report.nodes_deleted += 1;
        }
        for key_hash in leaf_keys {
            report.values_deleted += self.trim_values(&mut batch, key_hash, horizon)?;
        }
        // Unsynced: a lost prune batch is simply redone by the next call.
        st.write_unsynced(batch)?;
        Ok(report)
    }

    /// Deletes the value records of `key_hash` that no version `>= horizon` can see.
    fn trim_values(
        &self,
        batch: &mut WriteBatch,
        key_hash: [u8; 32],
        horizon: u64,
    ) -> Result<usize> {
        let st = self.storage();
        let from = codec::value_key(&jmt::KeyHash(key_hash), 0);
        let to = codec::value_key(&jmt::KeyHash(key_hash), horizon.saturating_add(1));
        // Bounded: one key has at most one record per version below the horizon that is still live.
        let records = st.scan(Cf::MerkleValues, &from, &to, usize::MAX)?;
        let Some((last_key, last_value)) = records.last() else {
            return Ok(0);
        };
        let keep_last = codec::decode_value(last_key, last_value)?.is_some();
        let doomed = if keep_last {
            &records[..records.len() - 1]
        } else {
            &records[..]
        };
        for (key, _) in doomed {
            st.batch_delete(batch, Cf::MerkleValues, key)?;
        }
        Ok(doomed.len())
    }

    /// Oldest version whose root is still recorded in metadata.
    fn oldest_recorded_root(&self) -> Result<Option<u64>> {
        let from = meta::root_key(0);
        let to = meta::root_key(u64::MAX);
        let first = self.storage().scan(Cf::Metadata, &from, &to, 1)?;
        Ok(first.first().and_then(|(k, _)| {
            k.get(5..)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_be_bytes)
        }))
    }
}
