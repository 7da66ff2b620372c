//! Reading committed blocks and commits back from the block store (for block sync and catch-up answers).

use basalt_consensus::types::encoding::MAX_BLOCK_BYTES;
use basalt_consensus::types::{decode, Block, Commit};
use basalt_p2p::{SyncResponse, MAX_SYNC_BLOCKS};
use basalt_state::StateStore;

/// Most bytes of blocks in one block-sync answer (the p2p response limit is larger).
const MAX_RANGE_BYTES: usize = 48 << 20;

/// Why a stored block could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed.
    #[error("block store: {0}")]
    Store(#[from] basalt_state::StateError),
    /// The stored bytes do not decode.
    #[error("stored {what} at height {height} is corrupt: {reason}")]
    Corrupt {
        /// Block or commit.
        what: &'static str,
        /// Its height.
        height: u64,
        /// The decoder's reason.
        reason: String,
    },
}

/// Block and commit at `height`, if stored.
pub fn read(store: &StateStore, height: u64) -> Result<Option<(Block, Commit)>, ReadError> {
    Ok(read_sized(store, height)?.map(|(block, commit, _)| (block, commit)))
}

/// Block and commit at `height` with the stored block's size in bytes.
fn read_sized(
    store: &StateStore,
    height: u64,
) -> Result<Option<(Block, Commit, usize)>, ReadError> {
    let (Some(block_bytes), Some(commit)) = (store.block(height)?, store.commit(height)?) else {
        return Ok(None);
    };
    let block: Block =
        decode("stored block", &block_bytes, MAX_BLOCK_BYTES).map_err(|e| ReadError::Corrupt {
            what: "block",
            height,
            reason: e.to_string(),
        })?;
    let commit: Commit =
        decode("stored commit", &commit, MAX_BLOCK_BYTES).map_err(|e| ReadError::Corrupt {
            what: "commit",
            height,
            reason: e.to_string(),
        })?;
    Ok(Some((block, commit, block_bytes.len())))
}

/// The answer to a block-sync request for `count` blocks from `from` (never past `latest`, bounded in count
/// and bytes).
pub fn read_range(store: &StateStore, from: u64, count: u32, latest: u64) -> SyncResponse {
    let count = count.min(MAX_SYNC_BLOCKS);
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    let end = from
        .saturating_add(u64::from(count))
        .min(latest.saturating_add(1));
    for height in from..end {
        match read_sized(store, height) {
            Ok(Some((block, commit, size))) => {
                bytes += size;
                blocks.push((block, commit));
                if bytes >= MAX_RANGE_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return SyncResponse::Error(e.to_string()),
        }
    }
    SyncResponse::Blocks(blocks)
}
