//! What the running node publishes to the RPC server and other readers: a status snapshot and the stream
//! of node events (committed blocks and transactions), and the consensus events on a channel of their own.

use std::sync::{Arc, RwLock};

use basalt_consensus::types::{Address, Hash};
use tokio::sync::broadcast;

use crate::rpc::backend::{ConsensusEvent, NodeEvent, RoundStep};

/// Events kept for slow subscribers before they lag (they then miss events, never block the node), for
/// blocks of up to `max_block_txs` transactions: a block publishes one event per transaction plus its own,
/// so the buffer holds two of the largest blocks this node proposes and some room — a subscriber that
/// keeps up block by block never lags because a block is full.
pub fn event_buffer(max_block_txs: usize) -> usize {
    max_block_txs
        .saturating_add(1)
        .saturating_mul(2)
        .saturating_add(1024)
}

/// Consensus events kept for subscribers that are behind: a height brings about two votes per
/// validator and a dozen round-state events, so this holds many heights of a 100-validator network.
pub const CONSENSUS_EVENT_BUFFER: usize = 4096;

/// The node's state as of the last change, cheap to copy.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Last committed height (`initial_height - 1` before the first block).
    pub height: u64,
    /// Hash of the last committed block.
    pub last_block_hash: Option<Hash>,
    /// Time of the last committed block (ms since the Unix epoch).
    pub last_block_time_ms: u64,
    /// App hash after the last committed block.
    pub app_hash: Hash,
    /// App hash in the last committed block's header: the state *before* it (what CometBFT's `/status`
    /// reports as `latest_app_hash`).
    pub last_header_app_hash: Hash,
    /// Height consensus is working on.
    pub consensus_height: u64,
    /// Its round.
    pub round: u32,
    /// Its step, as the consensus events name it ([`super::core::events::round_step`]).
    pub step: RoundStep,
    /// The round's proposer and its index.
    pub proposer: Option<(Address, u32)>,
    /// When the round started (ms since the Unix epoch).
    pub round_start_ms: u64,
    /// The locked block of the height, if any.
    pub locked: Option<Hash>,
    /// The valid block of the height, if any.
    pub valid: Option<Hash>,
    /// Whether the node is block-syncing.
    pub catching_up: bool,
    /// Highest height a peer reported.
    pub max_peer_height: u64,
}

/// Shared between the driver (writer) and readers.
#[derive(Debug)]
pub struct Shared {
    snapshot: RwLock<Snapshot>,
    events: broadcast::Sender<NodeEvent>,
    consensus: broadcast::Sender<Arc<ConsensusEvent>>,
}

impl Shared {
    /// A fresh one whose event bus holds [`event_buffer`]`(max_block_txs)` events.
    pub fn new(snapshot: Snapshot, max_block_txs: usize) -> Shared {
        let (events, _) = broadcast::channel(event_buffer(max_block_txs));
        let (consensus, _) = broadcast::channel(CONSENSUS_EVENT_BUFFER);
        Shared {
            snapshot: RwLock::new(snapshot),
            events,
            consensus,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Changes the snapshot.
    pub fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        match self.snapshot.write() {
            Ok(mut s) => change(&mut s),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    /// Announces an event (no subscriber is fine).
    pub fn publish(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    /// Subscribes to events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Whether any client listens to consensus events (the driver builds none otherwise).
    pub fn has_consensus_subscribers(&self) -> bool {
        self.consensus.receiver_count() > 0
    }

    /// Announces a consensus event (no subscriber is fine).
    pub fn publish_consensus(&self, event: ConsensusEvent) {
        let _ = self.consensus.send(Arc::new(event));
    }

    /// Subscribes to consensus events.
    pub fn subscribe_consensus(&self) -> broadcast::Receiver<Arc<ConsensusEvent>> {
        self.consensus.subscribe()
    }
}
