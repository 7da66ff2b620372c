//! Background pruning: old blocks (`storage.retain_blocks`) and old state versions
//! (`storage.pruning_keep_recent`), on a thread of its own so that deleting never lengthens a height.
//! The same thread takes the state snapshots (`[statesync] snapshot_interval`, [`super::snapshots`])
//! before it prunes, so a version is never pruned while it is being exported.
//!
//! The driver reports each committed height; reports are coalesced (a channel of one: a report that finds
//! it full is dropped, the next one carries a later height and the thread prunes up to it anyway). Each
//! store call deletes a bounded batch and releases the store's lock between batches, so commits
//! interleave with a long catch-up prune.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use basalt_state::StateStore;

use super::snapshots::{self, SnapshotDir, SnapshotPolicy};

/// What to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Blocks kept (0: all).
    pub retain_blocks: u64,
    /// State versions kept (0: all). The store was opened with the same value.
    pub keep_recent: u64,
}

/// The handle the driver reports commits to.
#[derive(Debug)]
pub struct Pruner {
    committed: SyncSender<u64>,
}

impl Pruner {
    /// Starts the pruning thread, or returns `None` when everything is kept (an archive node) and no
    /// snapshots are taken.
    pub fn spawn(
        store: Arc<StateStore>,
        retention: Retention,
        snapshots: Option<(Arc<SnapshotDir>, SnapshotPolicy)>,
    ) -> std::io::Result<Option<Pruner>> {
        if retention.retain_blocks == 0 && retention.keep_recent == 0 && snapshots.is_none() {
            return Ok(None);
        }
        let (committed, heights) = sync_channel(1);
        std::thread::Builder::new()
            .name("pruner".into())
            .spawn(move || run(&store, retention, snapshots, &heights))?;
        Ok(Some(Pruner { committed }))
    }

    /// Height `height` was committed: prune what it makes old (never blocks).
    pub fn committed(&self, height: u64) {
        let _ = self.committed.try_send(height);
    }
}

/// The first height to keep when `height` is the latest and `retain` blocks are kept.
pub fn retain_height(height: u64, retain: u64) -> u64 {
    height.saturating_add(1).saturating_sub(retain)
}

fn run(
    store: &StateStore,
    retention: Retention,
    snapshots: Option<(Arc<SnapshotDir>, SnapshotPolicy)>,
    heights: &Receiver<u64>,
) {
    let mut last_snapshot = snapshots
        .as_ref()
        .and_then(|(dir, _)| dir.heights().ok()?.last().copied());
    while let Ok(height) = heights.recv() {
        if let Some((dir, policy)) = &snapshots {
            if let Some(due) = snapshots::due(height, policy.interval, last_snapshot) {
                last_snapshot = Some(due);
                take_snapshot(store, dir, policy, due);
            }
        }
        if retention.retain_blocks > 0 {
            let keep_from = retain_height(height, retention.retain_blocks);
            loop {
                match store.prune_blocks(keep_from) {
                    Ok(report) if report.more => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, keep_from, "pruning old blocks failed (retried after the next block)");
                        break;
                    }
                }
            }
        }
        if retention.keep_recent > 0 {
            loop {
                match store.prune() {
                    Ok(report) if report.more => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning old state versions failed (retried after the next block)");
                        break;
                    }
                }
            }
        }
    }
}

/// Takes the snapshot of `height` and drops the oldest beyond the policy's count; failures are
/// logged (the next interval tries again), never fatal: snapshots serve other nodes.
fn take_snapshot(store: &StateStore, dir: &SnapshotDir, policy: &SnapshotPolicy, height: u64) {
    let started = std::time::Instant::now();
    match dir.take(store, height, policy.chunk_bytes) {
        Ok(manifest) => tracing::info!(
            height,
            chunks = manifest.chunk_hashes.len(),
            keys = manifest.leaves,
            ms = started.elapsed().as_millis() as u64,
            "state snapshot taken"
        ),
        Err(e) => tracing::warn!(error = %e, height, "state snapshot failed"),
    }
    if let Err(e) = dir.keep_newest(policy.keep_recent) {
        tracing::warn!(error = %e, "removing old state snapshots failed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use basalt_state::StoreConfig;

    use super::*;

    /// The thread's loop over reported heights (run here to its end: the sender is dropped). Every
    /// height is committed before the loop runs, so with 9 versions kept only 15..=23 can still be
    /// exported: the snapshots due at 5 and 10 fail (logged) without stopping the loop, a coalesced
    /// report (17, for the unreported 15) still takes the snapshot it covers, and only the newest
    /// two are kept.
    #[test]
    fn due_snapshots_are_taken_from_coalesced_reports_and_only_the_newest_kept() {
        let db = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            keep_recent: 9,
            ..StoreConfig::default()
        };
        let store = StateStore::open(db.path(), config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let policy = SnapshotPolicy {
            interval: 5,
            keep_recent: 2,
            chunk_bytes: 1024,
        };
        let (tx, rx) = sync_channel(64);
        for height in 1..=23u64 {
            let writes = vec![(
                format!("key{}", height % 7).into_bytes(),
                Some(height.to_be_bytes().to_vec()),
            )];
            store.apply_batch(height, writes).unwrap();
            if height != 15 && height != 16 {
                tx.send(height).unwrap();
            }
        }
        drop(tx);
        let retention = Retention {
            retain_blocks: 0,
            keep_recent: 9,
        };
        let roots: Vec<_> = [15, 20].iter().map(|h| store.root(*h).unwrap()).collect();
        run(
            &store,
            retention,
            Some((Arc::new(SnapshotDir::open(dir.path()).unwrap()), policy)),
            &rx,
        );
        let snapshots = SnapshotDir::open(dir.path()).unwrap();
        assert_eq!(snapshots.heights().unwrap(), vec![15, 20]);
        assert_eq!(snapshots.manifest(15).unwrap().root, roots[0]);
        assert_eq!(snapshots.manifest(20).unwrap().root, roots[1]);
    }
}
