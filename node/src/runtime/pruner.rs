//! Background pruning: old blocks (`storage.retain_blocks`) and old state versions
//! (`storage.pruning_keep_recent`), on a thread of its own so that deleting never lengthens a height.
//!
//! The driver reports each committed height; reports are coalesced (a channel of one: a report that finds
//! it full is dropped, the next one carries a later height and the thread prunes up to it anyway). Each
//! store call deletes a bounded batch and releases the store's lock between batches, so commits
//! interleave with a long catch-up prune.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use basalt_state::StateStore;

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
    /// Starts the pruning thread, or returns `None` when everything is kept (an archive node).
    pub fn spawn(store: Arc<StateStore>, retention: Retention) -> std::io::Result<Option<Pruner>> {
        if retention.retain_blocks == 0 && retention.keep_recent == 0 {
            return Ok(None);
        }
        let (committed, heights) = sync_channel(1);
        std::thread::Builder::new()
            .name("pruner".into())
            .spawn(move || run(&store, retention, &heights))?;
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

fn run(store: &StateStore, retention: Retention, heights: &Receiver<u64>) {
    while let Ok(height) = heights.recv() {
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
