//! The start-up handshake: reconcile the block store, the state version and the application height.
//!
//! Three heights are compared (CometBFT's handshake, simplified by the atomic commit):
//!
//! - `S`, the block store height: the highest stored block, probing upward from `V` (at most
//!   [`MAX_REPLAY_BLOCKS`] past it);
//! - `V`, the block store's state version ([`StateStore::latest_version`]);
//! - `A`, the application's height ([`Application::info`]); `None` before `init_chain`.
//!
//! Rules, in order:
//!
//! 1. `A` is `None`: run `init_chain` with the genesis `app_state` (the app is then at
//!    `initial_height - 1`).
//! 2. `V ≥ initial_height` but block `V` is not stored: the state claims a block the store never saw —
//!    refused ([`HandshakeError::StateWithoutBlock`]).
//! 3. `A > S`: the application is ahead of the blocks — refused ([`HandshakeError::AppAheadOfBlocks`]).
//!    With [`crate::StateStore::commit_block`] writing state and block in one batch this cannot happen
//!    unless the data directory was tampered with.
//! 4. `A < S`: replay blocks `A+1..=S` through `finalize_block` + `commit` (with the stored commit bytes).
//!    Before executing block `h`, its header's `app_hash` must equal the application's hash after `h-1`
//!    ([`HandshakeError::AppHashMismatch`] otherwise: wrong genesis, or a non-deterministic application).
//!    With one store holding both blocks and state this cannot be needed either; it serves rebuilding an
//!    application's state from another node's block store.
//! 5. `A == S`: nothing to do.

use basalt_consensus::types::encoding::MAX_BLOCK_BYTES;
use basalt_consensus::types::{decode, Block, DecodeError, Hash};

use super::{AppError, Application};
use crate::error::StateError;
use crate::store::StateStore;

/// Most blocks one handshake will look for and replay (bounds start-up work).
pub const MAX_REPLAY_BLOCKS: u64 = 100_000;

/// Why the node must not start.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The block store could not be read.
    #[error("block store: {source}")]
    Store {
        /// The store's error.
        #[from]
        source: StateError,
    },
    /// The application failed (init_chain, finalize_block or commit).
    #[error("application: {source}")]
    App {
        /// The application's error.
        #[from]
        source: AppError,
    },
    /// `initial_height` must be at least 1.
    #[error("initial height must be at least 1")]
    BadInitialHeight,
    /// The state version is past the genesis version but its block is missing.
    #[error("state is at height {state_version} but the block store has no block {state_version}")]
    StateWithoutBlock {
        /// The state version.
        state_version: u64,
    },
    /// The application is past the last stored block.
    #[error("application is at height {app_height} but the block store ends at {block_height:?}")]
    AppAheadOfBlocks {
        /// The application's height.
        app_height: u64,
        /// The highest stored block (`None`: no blocks).
        block_height: Option<u64>,
    },
    /// The application's height is below the genesis version.
    #[error("application is at height {app_height}, below the genesis version {genesis_version}")]
    AppBelowGenesis {
        /// The application's height.
        app_height: u64,
        /// `initial_height - 1`.
        genesis_version: u64,
    },
    /// More than [`MAX_REPLAY_BLOCKS`] blocks past the application.
    #[error("more than {max} blocks to replay after height {from}")]
    TooManyBlocks {
        /// The application's height.
        from: u64,
        /// The limit.
        max: u64,
    },
    /// A block needed for the replay is missing (pruned block store?).
    #[error("block {height} is needed for the replay but is not stored")]
    MissingBlock {
        /// Its height.
        height: u64,
    },
    /// A stored block does not decode.
    #[error("stored block {height} is corrupt: {source}")]
    CorruptBlock {
        /// Its height.
        height: u64,
        /// The decoder's reason.
        #[source]
        source: DecodeError,
    },
    /// A stored block is at another height than its key.
    #[error("block stored at height {height} says it is at height {block_height}")]
    MisplacedBlock {
        /// Where it is stored.
        height: u64,
        /// Its header's height.
        block_height: u64,
    },
    /// Replaying would execute a block built on another state than the application's.
    #[error("block {height} carries app hash {in_header} but the application's is {app_hash}")]
    AppHashMismatch {
        /// The block's height.
        height: u64,
        /// Its header's `app_hash`.
        in_header: Hash,
        /// The application's hash after `height - 1`.
        app_hash: Hash,
    },
}

/// What the handshake did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeOutcome {
    /// Whether `init_chain` ran.
    pub initialized: bool,
    /// Heights replayed into the application (empty: none).
    pub replayed: std::ops::Range<u64>,
    /// The application's height now (`initial_height - 1` if no block was ever committed).
    pub height: u64,
    /// The application's hash now.
    pub app_hash: Hash,
}

/// Runs the handshake (see the module docs) between the block store `blocks` and `app`.
pub fn handshake<A: Application>(
    blocks: &StateStore,
    app: &mut A,
    initial_height: u64,
    genesis_app_state: &serde_json::Value,
) -> Result<HandshakeOutcome, HandshakeError> {
    let genesis_version = initial_height
        .checked_sub(1)
        .ok_or(HandshakeError::BadInitialHeight)?;
    let mut initialized = false;
    let mut info = app.info()?;
    if info.last_height.is_none() {
        app.init_chain(initial_height, genesis_app_state)?;
        initialized = true;
        info = app.info()?;
    }
    let app_height = info.last_height.ok_or(AppError::NotInitialized)?;
    if app_height < genesis_version {
        return Err(HandshakeError::AppBelowGenesis {
            app_height,
            genesis_version,
        });
    }
    let state_version = blocks.latest_version()?;
    if let Some(v) = state_version {
        if v > genesis_version && blocks.block(v)?.is_none() {
            return Err(HandshakeError::StateWithoutBlock { state_version: v });
        }
    }
    let block_height = block_store_height(blocks, state_version, genesis_version)?;
    let last_block = block_height.unwrap_or(genesis_version);
    if app_height > last_block {
        return Err(HandshakeError::AppAheadOfBlocks {
            app_height,
            block_height,
        });
    }
    if last_block - app_height > MAX_REPLAY_BLOCKS {
        return Err(HandshakeError::TooManyBlocks {
            from: app_height,
            max: MAX_REPLAY_BLOCKS,
        });
    }
    let mut app_hash = info.last_app_hash;
    for height in app_height + 1..=last_block {
        app_hash = replay_one(blocks, app, height, app_hash)?;
    }
    Ok(HandshakeOutcome {
        initialized,
        replayed: app_height + 1..last_block + 1,
        height: last_block,
        app_hash,
    })
}

/// The highest stored block: blocks are contiguous up to the state version (atomic commits; rule 2
/// checked that block `V` exists), so probe upward from `V` (or the genesis), at most
/// [`MAX_REPLAY_BLOCKS`] steps. `None` if there is no block at all.
fn block_store_height(
    blocks: &StateStore,
    state_version: Option<u64>,
    genesis_version: u64,
) -> Result<Option<u64>, HandshakeError> {
    let base = state_version
        .unwrap_or(genesis_version)
        .max(genesis_version);
    let mut top = (base > genesis_version).then_some(base);
    let mut next = base.saturating_add(1);
    while blocks.block(next)?.is_some() {
        top = Some(next);
        if next - base >= MAX_REPLAY_BLOCKS {
            return Err(HandshakeError::TooManyBlocks {
                from: base,
                max: MAX_REPLAY_BLOCKS,
            });
        }
        next = next.saturating_add(1);
    }
    Ok(top)
}

fn replay_one<A: Application>(
    blocks: &StateStore,
    app: &mut A,
    height: u64,
    app_hash: Hash,
) -> Result<Hash, HandshakeError> {
    let bytes = blocks
        .block(height)?
        .ok_or(HandshakeError::MissingBlock { height })?;
    let block: Block = decode("block", &bytes, MAX_BLOCK_BYTES)
        .map_err(|source| HandshakeError::CorruptBlock { height, source })?;
    if block.height().0 != height {
        return Err(HandshakeError::MisplacedBlock {
            height,
            block_height: block.height().0,
        });
    }
    if block.header().app_hash != app_hash {
        return Err(HandshakeError::AppHashMismatch {
            height,
            in_header: block.header().app_hash,
            app_hash,
        });
    }
    let commit = blocks.commit(height)?.unwrap_or_default();
    app.finalize_block(&block)?;
    Ok(app.commit(commit)?)
}
