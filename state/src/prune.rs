//! Incremental pruning: keep the latest `keep_recent` versions, delete what only older versions used.
//!
//! Every commit records, in the `merkle_stale` family ordered by version, the inner nodes it replaced
//! and the value records it superseded (a changed or deleted key's previous value, and a deletion
//! marker, which only hides older records). A record stale since s is only reachable from versions
//! < s, so once the oldest retained version `e` satisfies `s <= e` it can go. Each call deletes at most
//! [`StoreConfig::prune_batch_limit`](crate::StoreConfig) records, so a node catching up after a config
//! change never stalls a block; call it after each commit. The new `earliest_version` is written
//! *before* anything is deleted, so a query never walks into half-pruned versions. Entries are deleted
//! in key order, so a deletion marker never goes before the older value it hides.

use rocksdb::WriteBatch;

use crate::error::Result;
use crate::merkle::codec::{self, StaleRecord};
use crate::meta;
use crate::storage::Cf;
use crate::store::{PruneReport, StateStore};

impl StateStore {
    /// Deletes up to `prune_batch_limit` stale records of versions older than the latest
    /// `keep_recent`. Does nothing on an archive node (`keep_recent == 0`). Call repeatedly while
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
            self.set_earliest(horizon);
        }

        let mut batch = WriteBatch::default();
        let mut report = PruneReport {
            earliest_version: Some(horizon),
            ..PruneReport::default()
        };
        // Root records of pruned versions.
        let mut budget = limit;
        let first_root = self.oldest_recorded_root()?.unwrap_or(horizon);
        for version in first_root..horizon {
            if budget == 0 {
                report.more = true;
                break;
            }
            st.batch_delete(&mut batch, Cf::Metadata, &meta::root_key(version))?;
            st.batch_delete(&mut batch, Cf::Metadata, &meta::tree_root_key(version))?;
            budget -= 1;
        }

        // Records stale since a version <= horizon.
        let stale = st.scan(
            Cf::MerkleStale,
            &[],
            &horizon.saturating_add(1).to_be_bytes(),
            budget,
        )?;
        if budget > 0 && stale.len() == budget {
            report.more = true;
        }
        for (stale_key, _) in &stale {
            match codec::split_stale_key(stale_key)?.1 {
                StaleRecord::Node(key) => {
                    st.batch_delete(&mut batch, Cf::MerkleNodes, &key.encode())?;
                    report.nodes_deleted += 1;
                }
                StaleRecord::Value(hash, version) => {
                    let key = codec::value_key(&hash, version);
                    st.batch_delete(&mut batch, Cf::MerkleValues, &key)?;
                    report.values_deleted += 1;
                }
            }
            st.batch_delete(&mut batch, Cf::MerkleStale, stale_key)?;
        }
        // Unsynced: a lost prune batch is simply redone by the next call.
        st.write_unsynced(batch)?;
        Ok(report)
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
